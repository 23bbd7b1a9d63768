/* One-time challenges (scep_challenge.c), the challenge page's query and
 * answers (scep_ndes.c), and the tally of refused ones (scep_tally.c). */

#include <stdlib.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "testutil.h"
#include "scep_ota/scep_challenge.h"
#include "scep_ota/scep_ndes.h"
#include "scep_ota/scep_tally.h"

static int all_of(const char *s, const char *alphabet)
{
    for (; *s; ++s) {
        if (!strchr(alphabet, *s)) {
            return 0;
        }
    }
    return 1;
}

START_TEST(make_formats)
{
    const char *a, *b, *ha, *hb;

    ck_assert_int_eq(scep_challenge_make(tpool, SCEP_CHALLENGE_HEX64, &a,
                                         &ha), APR_SUCCESS);
    ck_assert_int_eq(strlen(a), 16);
    ck_assert(all_of(a, "0123456789ABCDEF"));
    ck_assert_str_eq(ha, scep_challenge_hash(tpool, a));
    ck_assert_int_eq(strlen(ha), 64);
    ck_assert_int_eq(scep_challenge_make(tpool, SCEP_CHALLENGE_HEX64, &b,
                                         &hb), APR_SUCCESS);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(scep_challenge_make(tpool, SCEP_CHALLENGE_TOKEN192, &a,
                                         &ha), APR_SUCCESS);
    ck_assert_int_eq(strlen(a), 32);
    ck_assert(all_of(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789-_"));
    /* the store form: SHA-256 of the text, lower-case hex */
    ck_assert_str_eq(scep_challenge_hash(tpool, "abc"),
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff6"
                     "1f20015ad");
}
END_TEST

START_TEST(binding)
{
    apr_array_header_t *sans = apr_array_make(tpool, 2, sizeof(char *));
    const char *bound, *err;

    ck_assert_int_eq(scep_challenge_binding(tpool, NULL, NULL, NULL, &bound,
                                            &err), APR_SUCCESS);
    ck_assert_ptr_null(bound);
    ck_assert_str_eq(scep_challenge_binding_text(tpool, bound),
                     "(any names)");
    ck_assert_int_eq(scep_challenge_binding(tpool, NULL, sans, "alice",
                                            &bound, &err), APR_SUCCESS);
    ck_assert_str_eq(bound, "user=alice\n");
    ck_assert_str_eq(scep_challenge_binding_text(tpool, bound),
                     "(any names)");
    APR_ARRAY_PUSH(sans, const char *) = "DNS:Host.Example.COM";
    APR_ARRAY_PUSH(sans, const char *) = "ip:10.0.0.1";
    ck_assert_int_eq(scep_challenge_binding(tpool, NULL, sans, "alice",
                                            &bound, &err), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "needs a subject"));
    ck_assert_int_eq(scep_challenge_binding(tpool, "/O=Example/CN=dev 1",
                                            sans, "alice", &bound, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(scep_challenge_binding_text(tpool, bound),
                     "subject CN=dev 1,O=Example, DNS:host.example.com, "
                     "IP:10.0.0.1");
    ck_assert_ptr_nonnull(strstr(bound, "user=alice"));
    ck_assert_int_eq(scep_challenge_binding(tpool, "no-equals", NULL, NULL,
                                            &bound, &err), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "subject"));
    APR_ARRAY_PUSH(sans, const char *) = "smtp:x@example.com";
    ck_assert_int_eq(scep_challenge_binding(tpool, "/CN=x", sans, NULL,
                                            &bound, &err), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "subjectAltName"));
}
END_TEST

START_TEST(issue_and_why)
{
    scep_store_t *st = scep_store_memory_create(tpool);
    scep_challenge_spec_t spec;
    scep_challenge_rec_t *rec;
    apr_interval_time_t wait;
    const char *clear, *who;
    int i;

    memset(&spec, 0, sizeof(spec));
    spec.format = SCEP_CHALLENGE_HEX64;
    spec.purpose = SCEP_CHALLENGE_SCEP;
    spec.created_by = "alice";
    spec.via = SCEP_VIA_PAGE;
    spec.lifetime = apr_time_from_sec(600);
    spec.limit = 2;
    for (i = 0; i < 2; ++i) {
        ck_assert_int_eq(scep_challenge_issue(tpool, st, &spec, &clear, &rec),
                         APR_SUCCESS);
        ck_assert_int_eq(strlen(clear), 16);
        ck_assert_int_eq(strlen(rec->ref), 12);
        ck_assert_str_eq(rec->hash, scep_challenge_hash(tpool, clear));
        ck_assert(rec->expires - rec->created == spec.lifetime);
    }
    ck_assert_int_eq(scep_challenge_issue(tpool, st, &spec, &clear, &rec),
                     APR_ENOSPC);
    ck_assert_int_eq(scep_challenge_next_free(tpool, st, "alice",
                                              SCEP_VIA_PAGE, &wait),
                     APR_SUCCESS);
    ck_assert(wait > apr_time_from_sec(590) && wait <= spec.lifetime);
    ck_assert_int_eq(scep_challenge_next_free(tpool, st, "bob",
                                              SCEP_VIA_PAGE, &wait),
                     APR_SUCCESS);
    ck_assert(wait == apr_time_from_sec(1));
    /* why a presented challenge fails */
    spec.limit = 0;
    ck_assert_int_eq(scep_challenge_issue(tpool, st, &spec, &clear, &rec),
                     APR_SUCCESS);
    ck_assert_str_eq(scep_challenge_why(tpool, st, "nope",
                                        SCEP_CHALLENGE_SCEP, &who),
                     "unknown");
    ck_assert_ptr_null(who);
    ck_assert_str_eq(scep_challenge_why(tpool, st, rec->hash,
                                        SCEP_CHALLENGE_OTA_PHASE1, &who),
                     "for another use");
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, rec->hash,
                                                SCEP_CHALLENGE_SCEP, NULL,
                                                NULL), APR_SUCCESS);
    ck_assert_str_eq(scep_challenge_why(tpool, st, rec->hash,
                                        SCEP_CHALLENGE_SCEP, &who),
                     "already used");
    ck_assert_str_eq(who, "alice");
}
END_TEST

/* ------------------------------------------------------------------ */
/* the page's query                                                    */

static const char *parse_err(const char *args)
{
    scep_ndes_query_t q;
    const char *err = NULL;

    ck_assert_int_eq(scep_ndes_query_parse(tpool, args, &q, &err),
                     APR_EINVAL);
    ck_assert_ptr_nonnull(err);
    return err;
}

START_TEST(query_parse)
{
    scep_ndes_query_t q;
    const char *err;
    char *big;
    int i;

    ck_assert_int_eq(scep_ndes_query_parse(tpool, NULL, &q, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(q.format, -1);
    ck_assert_ptr_null(q.subject);
    ck_assert_int_eq(q.sans->nelts, 0);
    ck_assert_int_eq(scep_ndes_query_parse(tpool, "&&format=JSON&", &q,
                                           &err), APR_SUCCESS);
    ck_assert_int_eq(q.format, SCEP_NDES_JSON);
    ck_assert_int_eq(scep_ndes_query_parse(
        tpool, "subject=%2FCN%3Ddev+1%2FO%3DEx&san=dns:a.example&"
        "SAN=email:x%2By@example.com&format=text", &q, &err), APR_SUCCESS);
    ck_assert_str_eq(q.subject, "/CN=dev 1/O=Ex");
    ck_assert_int_eq(q.sans->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(q.sans, 1, const char *),
                     "email:x+y@example.com");
    ck_assert_int_eq(q.format, SCEP_NDES_TEXT);
    ck_assert_ptr_nonnull(strstr(parse_err("format=xml"), "format"));
    ck_assert_ptr_nonnull(strstr(parse_err("format=json&format=json"),
                                 "twice"));
    ck_assert_ptr_nonnull(strstr(parse_err("subject=a&subject=b"), "twice"));
    ck_assert_ptr_nonnull(strstr(parse_err("subject="), "empty"));
    ck_assert_ptr_nonnull(strstr(parse_err("subject"), "empty"));
    ck_assert_ptr_nonnull(strstr(parse_err("subject=%ZZ"), "escape"));
    parse_err("subject=a%00b");     /* APR refuses the escape itself */
    ck_assert_ptr_nonnull(strstr(parse_err("subject=a%0Ab"), "control"));
    ck_assert_ptr_nonnull(strstr(parse_err("operation=GetCACaps"),
                                 "unknown parameter"));
    ck_assert_ptr_nonnull(strstr(parse_err("=x"), "unknown parameter"));
    big = apr_palloc(tpool, 2000);
    memset(big, 'A', 1999);
    big[1999] = '\0';
    ck_assert_ptr_nonnull(strstr(parse_err(apr_pstrcat(tpool, "subject=",
                                                       big, NULL)),
                                 "longer"));
    ck_assert_ptr_nonnull(strstr(parse_err(apr_pstrcat(
        tpool, "san=", apr_pstrndup(tpool, big, 1025), NULL)), "longer"));
    big = apr_pstrdup(tpool, "");
    for (i = 0; i < SCEP_NDES_MAX_SANS + 1; ++i) {
        big = apr_pstrcat(tpool, big, "san=dns:x&", NULL);
    }
    ck_assert_ptr_nonnull(strstr(parse_err(big), "more than"));
}
END_TEST

START_TEST(accept_header)
{
    ck_assert_int_eq(scep_ndes_format_accepted(NULL), SCEP_NDES_HTML);
    ck_assert_int_eq(scep_ndes_format_accepted("*/*"), SCEP_NDES_HTML);
    ck_assert_int_eq(scep_ndes_format_accepted("application/json"),
                     SCEP_NDES_JSON);
    ck_assert_int_eq(scep_ndes_format_accepted(
        "text/html, Application/JSON ;q=0.5"), SCEP_NDES_JSON);
    ck_assert_int_eq(scep_ndes_format_accepted("application/json;q=0"),
                     SCEP_NDES_HTML);
    ck_assert_int_eq(scep_ndes_format_accepted("application/json; q=0.0, "
                                               "text/html"), SCEP_NDES_HTML);
    ck_assert_int_eq(scep_ndes_format_accepted("application/jsonx"),
                     SCEP_NDES_HTML);
    ck_assert_int_eq(scep_ndes_format_accepted("application/problem+json"),
                     SCEP_NDES_HTML);
}
END_TEST

/* The UTF-16LE page back to ASCII; NULL when it is not BOM + ASCII. */
static const char *from_utf16le(const unsigned char *b, apr_size_t n)
{
    char *out = apr_palloc(tpool, n / 2);
    apr_size_t i;

    if (n < 2 || n % 2 || b[0] != 0xFF || b[1] != 0xFE) {
        return NULL;
    }
    for (i = 2; i < n; i += 2) {
        if (b[i + 1] || b[i] >= 0x80 || !b[i]) {
            return NULL;
        }
        out[i / 2 - 1] = (char)b[i];
    }
    out[n / 2 - 1] = '\0';
    return out;
}

START_TEST(render)
{
    scep_ndes_answer_t a;
    const unsigned char *body;
    const char *text;
    apr_size_t len;

    memset(&a, 0, sizeof(a));
    a.challenge = "0123456789ABCDEF";
    a.expires = apr_time_from_sec(1714564800);   /* 2024-05-01T12:00:00Z */
    a.lifetime = apr_time_from_sec(3600);
    a.ca_sha1 = "AA11";
    a.ca_sha256 = "BB22";
    ck_assert_int_eq(scep_ndes_render(tpool, SCEP_NDES_HTML, &a, &body,
                                      &len), APR_SUCCESS);
    text = from_utf16le(body, len);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "The enrollment challenge password "
                                       "is: <B> 0123456789ABCDEF </B>"));
    ck_assert_ptr_nonnull(strstr(text, "The thumbprint (hash value) for the "
                                       "CA certificate is: <B> AA11 </B>"));
    ck_assert_ptr_nonnull(strstr(text, "expire within 60 minutes"));
    ck_assert_int_eq(scep_ndes_render(tpool, SCEP_NDES_JSON, &a, &body,
                                      &len), APR_SUCCESS);
    ck_assert_str_eq(apr_pstrmemdup(tpool, (const char *)body, len),
                     "{\"challenge\": \"0123456789ABCDEF\", \"expires\": "
                     "\"2024-05-01T12:00:00Z\", \"ca_thumbprint_sha1\": "
                     "\"AA11\", \"ca_thumbprint_sha256\": \"BB22\"}\n");
    ck_assert_int_eq(scep_ndes_render(tpool, SCEP_NDES_TEXT, &a, &body,
                                      &len), APR_SUCCESS);
    ck_assert_str_eq(apr_pstrmemdup(tpool, (const char *)body, len),
                     "0123456789ABCDEF\n");
    /* anything but ASCII is refused, not mangled */
    a.challenge = "caf\xc3\xa9";
    ck_assert_int_eq(scep_ndes_render(tpool, SCEP_NDES_HTML, &a, &body,
                                      &len), APR_EINVAL);
    /* a full cache */
    ck_assert_int_eq(scep_ndes_render_full(tpool, SCEP_NDES_HTML, 5,
                                           apr_time_from_sec(61), &body,
                                           &len), APR_SUCCESS);
    text = from_utf16le(body, len);
    ck_assert_ptr_nonnull(strstr(text, "The password cache is full."));
    ck_assert_ptr_nonnull(strstr(text, "in 2 minutes"));
    ck_assert_ptr_null(strstr(text, "challenge password is"));
    ck_assert_int_eq(scep_ndes_render_full(tpool, SCEP_NDES_JSON, 5,
                                           apr_time_from_msec(1500), &body,
                                           &len), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(apr_pstrmemdup(tpool, (const char *)body,
                                                len), "\"retry_after\": 2}"));
}
END_TEST

/* ------------------------------------------------------------------ */
/* the tally                                                           */

START_TEST(tally)
{
    scep_tally_t *t = scep_tally_init(apr_palloc(tpool, scep_tally_size()));
    apr_time_t now = apr_time_from_sec(1714564800), next;
    char key[32];
    int i;

    ck_assert_uint_eq(scep_tally_add(t, "addr 10.0.0.1", now), 1);
    ck_assert_uint_eq(scep_tally_add(t, "addr 10.0.0.1", now), 2);
    ck_assert_uint_eq(scep_tally_add(t, "addr 10.0.0.2", now), 1);
    ck_assert_uint_eq(scep_tally_add(t, "user alice", now + 1), 1);
    ck_assert_uint_eq(scep_tally_add(t, "addr 10.0.0.1", now), 3);
    /* the next hour starts again */
    next = now + apr_time_from_sec(3600);
    ck_assert_uint_eq(scep_tally_add(t, "addr 10.0.0.1", next), 1);
    /* many keys: each counted on its own (or, sharing a slot, from 1) */
    for (i = 0; i < 500; ++i) {
        apr_snprintf(key, sizeof(key), "addr 192.0.2.%d", i);
        ck_assert_uint_eq(scep_tally_add(t, key, next), 1);
    }
    ck_assert_uint_le(scep_tally_add(t, "addr 10.0.0.1", next), 2);
    ck_assert(!scep_tally_milestone(1));
    ck_assert(!scep_tally_milestone(99));
    ck_assert(scep_tally_milestone(100));
    ck_assert(!scep_tally_milestone(101));
    ck_assert(scep_tally_milestone(1000));
    ck_assert(scep_tally_milestone(1000000000));
    ck_assert(!scep_tally_milestone(0xFFFFFFFFu));
}
END_TEST

Suite *suite_challenge(void)
{
    Suite *s = suite_create("challenge");
    TCase *tc = tcase_create("challenge");

    tcase_add_checked_fixture(tc, tpool_setup, tpool_teardown);
    tcase_add_test(tc, make_formats);
    tcase_add_test(tc, binding);
    tcase_add_test(tc, issue_and_why);
    tcase_add_test(tc, query_parse);
    tcase_add_test(tc, accept_header);
    tcase_add_test(tc, render);
    tcase_add_test(tc, tally);
    suite_add_tcase(s, tc);
    return s;
}
