#include <string.h>
#include <sys/stat.h>

#include <openssl/pkcs7.h>

#include "testutil.h"
#include "scep_ota/scep_crypt.h"

#define KU_CA (0x80 | 0x20 | 0x04 | 0x02)

START_TEST(load_certs_in_file_order)
{
    EVP_PKEY *k1 = tu_key(1024, 0), *k2 = tu_key(1024, 1);
    tu_cert_opts_t ro = { "root", 1, KU_CA }, io = { "issuing", 1, KU_CA };
    X509 *root = tu_cert(&ro, k1, NULL, NULL);
    X509 *issuing = tu_cert(&io, k2, root, k1);
    X509 *both[2] = { issuing, root };
    apr_array_header_t *certs;
    const char *err = NULL;

    ck_assert_int_eq(scep_load_certs(tpool, tu_write_certs(both, 2), &certs,
                                     &err), APR_SUCCESS);
    ck_assert_int_eq(certs->nelts, 2);
    ck_assert_int_eq(X509_cmp(APR_ARRAY_IDX(certs, 0, X509 *), issuing), 0);
    ck_assert_int_eq(X509_cmp(APR_ARRAY_IDX(certs, 1, X509 *), root), 0);
    ck_assert(scep_cert_issued_by(issuing, root));
    ck_assert(!scep_cert_issued_by(root, issuing));
    ck_assert(scep_cert_is_ca(root));
    X509_free(root);
    X509_free(issuing);
}
END_TEST

START_TEST(load_errors_say_what_is_wrong)
{
    apr_array_header_t *items;
    const char *err = NULL, *garbage = tu_write_bytes("hello\n", 6);

    ck_assert_int_ne(scep_load_certs(tpool, "/nonexistent/ca.pem", &items,
                                     &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "does not exist"));
    ck_assert_int_ne(scep_load_certs(tpool, garbage, &items, &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "contains no certificate"));
    ck_assert_int_ne(scep_load_keys(tpool, garbage, &items, &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "no usable private key"));
    ck_assert_int_ne(scep_load_certs(tpool, "/tmp", &items, &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
}
END_TEST

START_TEST(key_match_and_usage)
{
    EVP_PKEY *k1 = tu_key(1024, 0), *k2 = tu_key(1024, 1);
    tu_cert_opts_t lo = { "leaf", 0, 0x80 | 0x20 }, no = { "noku", 0, 0 };
    X509 *leaf = tu_cert(&lo, k1, NULL, NULL);
    X509 *noku = tu_cert(&no, k2, NULL, NULL);
    apr_array_header_t *keys;
    const char *err;

    ck_assert_int_eq(scep_load_keys(tpool, tu_write_key(k1), &keys, &err),
                     APR_SUCCESS);
    ck_assert(scep_key_matches_cert(APR_ARRAY_IDX(keys, 0, EVP_PKEY *), leaf));
    ck_assert(!scep_key_matches_cert(k2, leaf));
    ck_assert(!scep_cert_is_ca(leaf));
    ck_assert_uint_eq(scep_cert_key_usage(leaf), 0x80 | 0x20);
    ck_assert(scep_cert_has_key_usage(leaf));
    ck_assert(!scep_cert_has_key_usage(noku));
    ck_assert_uint_eq(scep_cert_key_usage(noku), 0);
    X509_free(leaf);
    X509_free(noku);
}
END_TEST

START_TEST(certs_only_keeps_order)
{
    EVP_PKEY *k1 = tu_key(1024, 0), *k2 = tu_key(1024, 1);
    /* "z" sorts after "a" in DER: a SET OF would reorder these */
    tu_cert_opts_t zo = { "zzz", 1, KU_CA }, ao = { "aaa", 0, 0x80 };
    X509 *z = tu_cert(&zo, k1, NULL, NULL), *a = tu_cert(&ao, k2, z, k1);
    apr_array_header_t *in = apr_array_make(tpool, 2, sizeof(X509 *));
    const unsigned char *der, *d;
    apr_size_t len;
    PKCS7 *p7;

    APR_ARRAY_PUSH(in, X509 *) = z;
    APR_ARRAY_PUSH(in, X509 *) = a;
    ck_assert_int_eq(scep_certs_only_der(tpool, in, &der, &len), APR_SUCCESS);
    d = der;
    p7 = d2i_PKCS7(NULL, &d, (long)len);
    ck_assert_ptr_nonnull(p7);
    ck_assert(PKCS7_type_is_signed(p7));
    ck_assert_int_eq(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
    ck_assert_ptr_null(p7->d.sign->contents->d.ptr);
    ck_assert_int_eq(sk_X509_num(p7->d.sign->cert), 2);
    ck_assert_int_eq(X509_cmp(sk_X509_value(p7->d.sign->cert, 0), z), 0);
    ck_assert_int_eq(X509_cmp(sk_X509_value(p7->d.sign->cert, 1), a), 0);
    PKCS7_free(p7);
    X509_free(z);
    X509_free(a);
}
END_TEST

START_TEST(uri_detection_and_fingerprint)
{
    EVP_PKEY *k1 = tu_key(1024, 0);
    tu_cert_opts_t o = { "fp", 1, KU_CA };
    X509 *x = tu_cert(&o, k1, NULL, NULL);
    const char *fp = scep_cert_fingerprint(tpool, x, "SHA1");

    ck_assert(scep_is_uri("file:/etc/ca.pem"));
    ck_assert(scep_is_uri("pkcs11:token=ca"));
    ck_assert(!scep_is_uri("/etc/ca.pem"));
    ck_assert(!scep_is_uri("C:/ca.pem"));
    ck_assert(!scep_is_uri("ca.pem"));
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(strlen(fp), 40);
    X509_free(x);
}
END_TEST

Suite *suite_crypt(void)
{
    Suite *s = suite_create("crypt");
    TCase *tc = tcase_create("crypt");

    tcase_add_checked_fixture(tc, tpool_setup, tpool_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, load_certs_in_file_order);
    tcase_add_test(tc, load_errors_say_what_is_wrong);
    tcase_add_test(tc, key_match_and_usage);
    tcase_add_test(tc, certs_only_keeps_order);
    tcase_add_test(tc, uri_detection_and_fingerprint);
    suite_add_tcase(s, tc);
    return s;
}
