#include <string.h>

#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "testutil.h"
#include "scep_ota/scep_log.h"

typedef struct {
    int count;
    scep_log_level_t level;
    const char *msg;
    scep_log_level_t max;
} capture_t;

static void cap_print(void *baton, const char *file, int line,
                      scep_log_level_t level, apr_status_t rv, const char *msg)
{
    capture_t *c = baton;

    (void)file;
    (void)line;
    (void)rv;
    c->count++;
    c->level = level;
    c->msg = apr_pstrdup(tpool, msg);
}

static int cap_enabled(void *baton, scep_log_level_t level)
{
    return level <= ((capture_t *)baton)->max;
}

START_TEST(levels_filter_and_format)
{
    capture_t c = { 0, 0, NULL, SCEP_LOG_DEBUG };
    scep_logger_t log = { cap_print, cap_enabled, &c };

    scep_log_perror(&log, SCEP_LOG_MARK, SCEP_LOG_TRACE1, 0, tpool, "hidden");
    ck_assert_int_eq(c.count, 0);
    scep_log_perror(&log, SCEP_LOG_MARK, SCEP_LOG_DEBUG, 0, tpool,
                    SCEPLOGNO(9999) "n=%d", 42);
    ck_assert_int_eq(c.count, 1);
    ck_assert_str_eq(c.msg, "SCEP9999: n=42");
    scep_log_perror(scep_log_null(), SCEP_LOG_MARK, SCEP_LOG_EMERG, 0, tpool,
                    "dropped");
    ck_assert_int_eq(c.count, 1);
}
END_TEST

START_TEST(openssl_queue_appended_and_cleared)
{
    capture_t c = { 0, 0, NULL, SCEP_LOG_ERR };
    scep_logger_t log = { cap_print, cap_enabled, &c };
    const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01 };
    const unsigned char *p = junk;

    ck_assert_ptr_null(d2i_X509(NULL, &p, sizeof(junk)));
    ck_assert_int_ne(ERR_peek_error(), 0);
    scep_log_openssl(&log, SCEP_LOG_MARK, SCEP_LOG_ERR, tpool,
                     SCEPLOGNO(9998) "decode");
    ck_assert_ptr_nonnull(strstr(c.msg, "SCEP9998: decode; error:"));
    ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

Suite *suite_log(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");

    tcase_add_checked_fixture(tc, tpool_setup, tpool_teardown);
    tcase_add_test(tc, levels_filter_and_format);
    tcase_add_test(tc, openssl_queue_appended_and_cleared);
    suite_add_tcase(s, tc);
    return s;
}
