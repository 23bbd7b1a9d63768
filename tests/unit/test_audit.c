/* The audit trail's JSON lines: every field escaped as JSON wants, bad
 * UTF-8 replaced, NULL fields left out, long lines cut to fit one atomic
 * write. */

#include <string.h>

#include <apr_strings.h>

#include "testutil.h"
#include "scep_ota/scep_audit.h"

START_TEST(line_has_the_fields)
{
    scep_audit_t ev;
    apr_array_header_t *sans = apr_array_make(tpool, 2, sizeof(char *));
    const char *line;

    APR_ARRAY_PUSH(sans, const char *) = "dns:a.example.com";
    APR_ARRAY_PUSH(sans, const char *) = "email:x@example.com";
    memset(&ev, 0, sizeof(ev));
    ev.time = apr_time_from_sec(1764806400) + 123000; /* 2025-12-04 */
    ev.event = "issued";
    ev.client = "192.0.2.1";
    ev.serial = "4A1F";
    ev.subject = "CN=dev\"ice\\1,O=Ex\x01" "ample";
    ev.sans = sans;
    line = scep_audit_line(tpool, &ev);
    ck_assert_str_eq(line,
                     "{\"time\":\"2025-12-04T00:00:00.123Z\",\"event\":\"issued\","
                     "\"client\":\"192.0.2.1\",\"serial\":\"4A1F\","
                     "\"subject\":\"CN=dev\\\"ice\\\\1,O=Ex\\u0001ample\","
                     "\"sans\":[\"dns:a.example.com\",\"email:x@example.com\"]}\n");
}
END_TEST

START_TEST(utf8_kept_and_bad_bytes_replaced)
{
    scep_audit_t ev;
    const char *line;

    memset(&ev, 0, sizeof(ev));
    ev.event = "refused";
    /* é, then a lone continuation byte, an overlong slash, a surrogate */
    ev.subject = "CN=Jos\xc3\xa9 \x80 \xc0\xaf \xed\xa0\x80";
    line = scep_audit_line(tpool, &ev);
    ck_assert_ptr_nonnull(strstr(line, "\"subject\":\"CN=Jos\xc3\xa9 \\ufffd "
                                       "\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd\""));
    ck_assert_ptr_null(strchr(line, '\x80'));
}
END_TEST

START_TEST(long_lines_are_cut)
{
    scep_audit_t ev;
    char *big = apr_palloc(tpool, 20001);
    const char *line;

    memset(big, '\x01', 20000);
    big[20000] = '\0';
    memset(&ev, 0, sizeof(ev));
    ev.event = "refused";
    ev.subject = big;
    ev.reason = big;
    line = scep_audit_line(tpool, &ev);
    ck_assert_uint_le(strlen(line), SCEP_AUDIT_MAX_LINE);
    ck_assert_int_eq(line[strlen(line) - 1], '\n');
    ck_assert_ptr_nonnull(strstr(line, "\"event\":\"refused\""));
    ck_assert_int_eq(line[strlen(line) - 2], '}');
}
END_TEST

START_TEST(many_sans_are_counted_not_written)
{
    apr_array_header_t *sans = apr_array_make(tpool, 1000, sizeof(char *));
    scep_audit_t ev;
    const char *line;
    int i;

    for (i = 0; i < 1000; ++i) {
        APR_ARRAY_PUSH(sans, const char *) =
            apr_psprintf(tpool, "dns:host%04d.example.com", i);
    }
    memset(&ev, 0, sizeof(ev));
    ev.event = "issued";
    ev.sans = sans;
    line = scep_audit_line(tpool, &ev);
    ck_assert_uint_le(strlen(line), SCEP_AUDIT_MAX_LINE);
    ck_assert_ptr_nonnull(strstr(line, "\"sans_omitted\":968"));
    ck_assert_ptr_nonnull(strstr(line, "\"dns:host0031.example.com\"]"));
}
END_TEST

Suite *suite_audit(void)
{
    Suite *s = suite_create("audit");
    TCase *tc = tcase_create("audit-line");

    tcase_add_checked_fixture(tc, tpool_setup, tpool_teardown);
    tcase_add_test(tc, line_has_the_fields);
    tcase_add_test(tc, utf8_kept_and_bad_bytes_replaced);
    tcase_add_test(tc, long_lines_are_cut);
    tcase_add_test(tc, many_sans_are_counted_not_written);
    suite_add_tcase(s, tc);
    return s;
}
