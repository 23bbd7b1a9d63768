#include <apr_strings.h>

#include "testutil.h"
#include "scep_ota/scep_query.h"

START_TEST(operation_and_message)
{
    scep_query_t q;

    scep_query_parse(tpool, "operation=GetCACert&message=Device%20CA", &q);
    ck_assert_int_eq(q.op, SCEP_OP_GETCACERT);
    ck_assert_str_eq(q.operation, "GetCACert");
    ck_assert_str_eq(q.message, "Device%20CA"); /* left escaped */
}
END_TEST

START_TEST(message_first_and_case)
{
    scep_query_t q;

    scep_query_parse(tpool, "message=&operation=getcacaps", &q);
    ck_assert_int_eq(q.op, SCEP_OP_GETCACAPS);
    ck_assert_str_eq(q.message, "");
}
END_TEST

START_TEST(missing_and_unknown)
{
    scep_query_t q;

    scep_query_parse(tpool, NULL, &q);
    ck_assert_int_eq(q.op, SCEP_OP_NONE);
    scep_query_parse(tpool, "", &q);
    ck_assert_int_eq(q.op, SCEP_OP_NONE);
    scep_query_parse(tpool, "message=x", &q);
    ck_assert_int_eq(q.op, SCEP_OP_NONE);
    scep_query_parse(tpool, "operation=GetCRL", &q);
    ck_assert_int_eq(q.op, SCEP_OP_UNKNOWN);
    scep_query_parse(tpool, "operation=", &q);
    ck_assert_int_eq(q.op, SCEP_OP_UNKNOWN);
    scep_query_parse(tpool, "operation=GetCACert%00", &q);
    ck_assert_int_eq(q.op, SCEP_OP_UNKNOWN);
    scep_query_parse(tpool, "operation=%zz", &q);
    ck_assert_int_eq(q.op, SCEP_OP_UNKNOWN);
    scep_query_parse(tpool, "operation=GetCACert%", &q);
    ck_assert_int_eq(q.op, SCEP_OP_UNKNOWN);
}
END_TEST

START_TEST(escaped_operation_and_first_wins)
{
    scep_query_t q;

    scep_query_parse(tpool, "operation=PKI%4Fperation&operation=GetCACert", &q);
    ck_assert_int_eq(q.op, SCEP_OP_PKIOPERATION);
    scep_query_parse(tpool, "&&operation=GetNextCACert&", &q);
    ck_assert_int_eq(q.op, SCEP_OP_GETNEXTCACERT);
    ck_assert_str_eq(scep_op_name(SCEP_OP_GETNEXTCACERT), "GetNextCACert");
}
END_TEST

static const char *decoded(const char *raw)
{
    unsigned char *der;
    apr_size_t len;

    if (APR_SUCCESS != scep_query_decode_message(tpool, raw, 1024, &der,
                                                 &len)) {
        return NULL;
    }
    return apr_pstrmemdup(tpool, (const char *)der, len);
}

START_TEST(message_base64_variants)
{
    unsigned char *der;
    apr_size_t len;

    /* "\xfb\xff\xbf" is "+/+/" in base64 and "-_-_" in base64url */
    ck_assert_str_eq(decoded("+/+/"), "\xfb\xff\xbf");
    ck_assert_str_eq(decoded("-_-_"), "\xfb\xff\xbf");
    ck_assert_str_eq(decoded("%2B%2F%2b%2f"), "\xfb\xff\xbf");
    ck_assert_str_eq(decoded("aGVsbG8%3D"), "hello");       /* Apple: = escaped */
    ck_assert_str_eq(decoded("aGVsbG8"), "hello");          /* no padding */
    ck_assert_str_eq(decoded("aGVs%0AbG8=%0A"), "hello");   /* sscep breaks */
    ck_assert_str_eq(decoded("aGVs\r\nbG8="), "hello");
    ck_assert_ptr_null(decoded(""));
    ck_assert_ptr_null(decoded("a"));
    ck_assert_ptr_null(decoded("aGVs*bG8="));
    ck_assert_ptr_null(decoded("aGVs%zzbG8="));
    ck_assert_ptr_null(decoded("aG==VsbG8"));
    ck_assert_int_eq(scep_query_decode_message(tpool, "aGVsbG8=", 4, &der,
                                               &len), APR_ENOSPC);
}
END_TEST

Suite *suite_query(void)
{
    Suite *s = suite_create("query");
    TCase *tc = tcase_create("query");

    tcase_add_checked_fixture(tc, tpool_setup, tpool_teardown);
    tcase_add_test(tc, operation_and_message);
    tcase_add_test(tc, message_first_and_case);
    tcase_add_test(tc, missing_and_unknown);
    tcase_add_test(tc, escaped_operation_and_first_wins);
    tcase_add_test(tc, message_base64_variants);
    suite_add_tcase(s, tc);
    return s;
}
