#include <string.h>

#include "testutil.h"
#include "scep_ota/scep_caps.h"

START_TEST(default_list_in_order)
{
    scep_caps_t *caps = scep_caps_default(tpool);
    apr_size_t len;
    const char *body = scep_caps_body(caps, tpool, &len);

    ck_assert_str_eq(body, "AES\nDES3\nPOSTPKIOperation\nRenewal\n"
                           "SCEPStandard\nSHA-1\nSHA-256\nSHA-512\n");
    ck_assert_uint_eq(len, strlen(body));
    ck_assert_int_eq(scep_caps_count(caps), 8);
    ck_assert(scep_caps_has(caps, SCEP_CAP_AES));
    ck_assert(!scep_caps_has(caps, SCEP_CAP_GETNEXTCACERT));
}
END_TEST

START_TEST(words_are_canonicalised_and_keep_order)
{
    scep_caps_t *caps = scep_caps_make(tpool);
    const char *err = NULL;
    apr_size_t len;

    ck_assert_int_eq(scep_caps_add(caps, "sha-256", &err), APR_SUCCESS);
    ck_assert_int_eq(scep_caps_add(caps, "postpkioperation", &err),
                     APR_SUCCESS);
    ck_assert_int_eq(scep_caps_add(caps, "AES", &err), APR_SUCCESS);
    ck_assert_str_eq(scep_caps_body(caps, tpool, &len),
                     "SHA-256\nPOSTPKIOperation\nAES\n");
    ck_assert_str_eq(scep_caps_word(caps, 1), "POSTPKIOperation");
    ck_assert_ptr_null(scep_caps_word(caps, 3));
}
END_TEST

START_TEST(unknown_word_lists_known_ones)
{
    scep_caps_t *caps = scep_caps_make(tpool);
    const char *err = NULL;

    ck_assert_int_ne(scep_caps_add(caps, "Update", &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "unknown capability 'Update'"));
    ck_assert_ptr_nonnull(strstr(err, scep_caps_known()));
    ck_assert_int_eq(scep_caps_count(caps), 0);
}
END_TEST

START_TEST(duplicate_word_refused)
{
    scep_caps_t *caps = scep_caps_make(tpool);
    const char *err = NULL;

    ck_assert_int_eq(scep_caps_add(caps, "DES3", &err), APR_SUCCESS);
    ck_assert_int_ne(scep_caps_add(caps, "des3", &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "twice"));
}
END_TEST

START_TEST(empty_list_has_empty_body)
{
    apr_size_t len = 99;

    ck_assert_str_eq(scep_caps_body(scep_caps_make(tpool), tpool, &len), "");
    ck_assert_uint_eq(len, 0);
}
END_TEST

Suite *suite_caps(void)
{
    Suite *s = suite_create("caps");
    TCase *tc = tcase_create("caps");

    tcase_add_checked_fixture(tc, tpool_setup, tpool_teardown);
    tcase_add_test(tc, default_list_in_order);
    tcase_add_test(tc, words_are_canonicalised_and_keep_order);
    tcase_add_test(tc, unknown_word_lists_known_ones);
    tcase_add_test(tc, duplicate_word_refused);
    tcase_add_test(tc, empty_list_has_empty_body);
    suite_add_tcase(s, tc);
    return s;
}
