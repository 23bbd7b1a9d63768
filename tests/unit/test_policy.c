/* What a certificate may say: SAN rules, grants, reserved subjects. */

#include <string.h>

#include <apr_strings.h>

#include "testscep.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_policy.h"
#include "scep_ota/scep_store.h"

static X509_REQ *csr_with(const char *cn, const char *san)
{
    const char *exts[2][2] = { { "subjectAltName", san }, { NULL, NULL } };
    const unsigned char *der;
    apr_size_t len;
    X509_REQ *req = NULL;

    ts_csr(tu_key(2048, 4), cn, NULL, san ? exts : NULL, &der, &len);
    ck_assert_int_eq(scep_csr_parse(tpool, der, len, &req), APR_SUCCESS);
    return req;
}

static scep_name_policy_t *policy(const char *rules[][2])
{
    scep_name_policy_t *pol = apr_pcalloc(tpool, sizeof(*pol));
    apr_array_header_t *a = apr_array_make(tpool, 4, sizeof(scep_san_rule_t));
    apr_array_header_t *reserved = apr_array_make(tpool, 1, sizeof(X509 *));
    const char *err = NULL;
    int i;

    for (i = 0; rules && rules[i][0]; ++i) {
        ck_assert_msg(APR_SUCCESS == scep_san_rule_make(
                          tpool, rules[i][0], rules[i][1], apr_array_push(a),
                          &err), "%s %s: %s", rules[i][0], rules[i][1], err);
    }
    APR_ARRAY_PUSH(reserved, X509 *) = ts_ca()->cert;
    pol->san_rules = a;
    pol->reserved = reserved;
    return pol;
}

/* APR_SUCCESS and the decided SANs joined by ',', or the refusal. */
static const char *decide(const scep_name_policy_t *pol,
                          const scep_grant_t *grant, X509_REQ *req)
{
    apr_array_header_t *sans;
    const char *why = NULL;

    if (APR_SUCCESS != scep_names_decide(tpool, pol, grant, req, &sans,
                                         &why)) {
        ck_assert_ptr_nonnull(why);
        return apr_pstrcat(tpool, "refused: ", why, NULL);
    }
    return apr_array_pstrcat(tpool, sans, ',');
}

START_TEST(no_rule_no_san)
{
    scep_name_policy_t *pol = policy(NULL);

    ck_assert_str_eq(decide(pol, NULL, csr_with("a", NULL)), "");
    ck_assert_str_eq(decide(pol, NULL, csr_with("a", "DNS:vpn.corp.example")),
                     "refused: the subjectAltName DNS:vpn.corp.example is not "
                     "allowed (SCEPAllowSubjectAltName)");
    ck_assert_str_eq(decide(pol, NULL, csr_with("a", "email:ceo@corp.example")),
                     "refused: the subjectAltName email:ceo@corp.example is "
                     "not allowed (SCEPAllowSubjectAltName)");
}
END_TEST

START_TEST(rules_of_each_type)
{
    static const char *rules[][2] = {
        { "dns", "*.dev.example" }, { "email", "*@dev.example" },
        { "uri", "https://dev.example/*" }, { "ip", "10.0.0.0/8" },
        { "IP", "2001:db8::/32" }, { NULL, NULL }
    };
    scep_name_policy_t *pol = policy(rules);

    ck_assert_str_eq(decide(pol, NULL, csr_with("a", "DNS:A.Dev.Example")),
                     "DNS:a.dev.example");
    ck_assert_str_eq(decide(pol, NULL, csr_with(
        "a", "DNS:a.dev.example,email:Bob@DEV.example,"
        "URI:https://dev.example/x,IP:10.1.2.3,IP:2001:db8::1")),
        "DNS:a.dev.example,email:Bob@dev.example,URI:https://dev.example/x,"
        "IP:10.1.2.3,IP:2001:db8::1");
    /* one name outside the rules refuses the request */
    ck_assert_str_eq(decide(pol, NULL, csr_with(
        "a", "DNS:a.dev.example,DNS:vpn.corp.example")),
        "refused: the subjectAltName DNS:vpn.corp.example is not allowed "
        "(SCEPAllowSubjectAltName)");
    ck_assert_str_eq(decide(pol, NULL, csr_with("a", "IP:11.0.0.1")),
                     "refused: the subjectAltName IP:11.0.0.1 is not allowed "
                     "(SCEPAllowSubjectAltName)");
    ck_assert_str_eq(decide(pol, NULL, csr_with("a", "IP:2001:db9::1")),
                     "refused: the subjectAltName IP:2001:db9::1 is not "
                     "allowed (SCEPAllowSubjectAltName)");
    ck_assert_str_eq(decide(pol, NULL, csr_with(
        "a", "URI:https://evil.example/?https://dev.example/")),
        "refused: the subjectAltName URI:https://evil.example/?https://"
        "dev.example/ is not allowed (SCEPAllowSubjectAltName)");
    /* a glob never makes a wildcard certificate */
    ck_assert(!strncmp(decide(pol, NULL, csr_with("a", "DNS:*.dev.example")),
                       "refused: the subjectAltName DNS:*.dev.example is not "
                       "a valid host name", 60));
    /* types no certificate of ours carries */
    ck_assert(!strncmp(decide(pol, NULL, csr_with("a", "RID:1.2.3.4")),
                       "refused: a subjectAltName of a type", 35));
    ck_assert(!strncmp(decide(pol, NULL, csr_with(
        "a", "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:ceo@corp.example")),
        "refused: a subjectAltName of a type", 35));
}
END_TEST

START_TEST(bad_rules)
{
    scep_san_rule_t r;
    const char *err;

    ck_assert_int_eq(scep_san_rule_make(tpool, "upn", "*", &r, &err),
                     APR_EINVAL);
    ck_assert_int_eq(scep_san_rule_make(tpool, "ip", "10.0.0.0/33", &r, &err),
                     APR_EINVAL);
    ck_assert_int_eq(scep_san_rule_make(tpool, "ip", "host.example", &r,
                                        &err), APR_EINVAL);
    ck_assert_int_eq(scep_san_rule_make(tpool, "ip", "10.0.0.0/x", &r, &err),
                     APR_EINVAL);
    ck_assert_int_eq(scep_san_rule_make(tpool, "dns", "a b", &r, &err),
                     APR_EINVAL);
    ck_assert_int_eq(scep_san_rule_make(tpool, "ip", "192.0.2.7", &r, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(r.ip_len, 4);
    ck_assert_int_eq(r.mask[3], 0xff);
    ck_assert_int_eq(scep_san_rule_make(tpool, "ip", "10.1.2.3/12", &r, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(r.ip[1], 0);   /* host bits dropped */
    ck_assert_int_eq(r.mask[1], 0xf0);
}
END_TEST

START_TEST(reserved_subjects)
{
    scep_name_policy_t *pol = policy(NULL);
    X509_REQ *req = csr_with(NULL, NULL);

    /* the CA's own subject on a leaf */
    X509_REQ_set_subject_name(req, X509_get_subject_name(ts_ca()->cert));
    ck_assert(!strncmp(decide(pol, NULL, req), "refused: the subject '", 22));
    ck_assert_ptr_nonnull(strstr(decide(pol, NULL, req),
                                 "is a CA certificate's"));
}
END_TEST

START_TEST(grants_fix_the_names)
{
    static const char *rules[][2] = { { "dns", "*" }, { NULL, NULL } };
    scep_name_policy_t *pol = policy(rules);
    scep_grant_t *g = scep_grant_make(tpool);

    g->subject = "CN=dev-1,O=scep-unit";
    ck_assert_str_eq(decide(pol, g, csr_with("dev-1", NULL)), "");
    /* the policy allows any DNS name; the grant allows none */
    ck_assert(!strncmp(decide(pol, g, csr_with("dev-1", "DNS:x.example")),
                       "refused: the subjectAltName DNS:x.example is not "
                       "allowed (the request's grant", 70));
    ck_assert_str_eq(decide(pol, g, csr_with("dev-2", NULL)),
                     "refused: the subject 'CN=dev-2,O=scep-unit' is not the "
                     "'CN=dev-1,O=scep-unit' this request may have");
    APR_ARRAY_PUSH(g->sans, const char *) = "DNS:dev-1.example";
    APR_ARRAY_PUSH(g->sans, const char *) = "IP:192.0.2.1";
    /* a subset is asked for; the certificate gets the grant's names */
    ck_assert_str_eq(decide(pol, g, csr_with("dev-1", "DNS:DEV-1.example")),
                     "DNS:dev-1.example,IP:192.0.2.1");
    ck_assert_str_eq(decide(pol, g, csr_with("dev-1", NULL)),
                     "DNS:dev-1.example,IP:192.0.2.1");
    /* a grant that only says who asked leaves the names to the policy */
    g = scep_grant_make(tpool);
    g->user = "mdm";
    ck_assert_str_eq(decide(pol, g, csr_with("any", "DNS:x.example")),
                     "DNS:x.example");
}
END_TEST

START_TEST(grant_text)
{
    scep_grant_t *g = scep_grant_make(tpool), *back;
    const char *t;

    g->subject = "CN=a\\,b,O=x";
    g->user = "eve\nsan=DNS:evil.example";
    g->udid = "00008020-000A1B2C3D4E5F6G";
    g->origin = "renewal:4A1F";
    APR_ARRAY_PUSH(g->sans, const char *) = "DNS:a.example";
    APR_ARRAY_PUSH(g->sans, const char *) = "email:a%b@example";
    t = scep_grant_format(tpool, g);
    ck_assert_ptr_null(strstr(t, "\nsan=DNS:evil"));
    ck_assert_int_eq(scep_grant_parse(tpool, t, &back), APR_SUCCESS);
    ck_assert_str_eq(back->subject, g->subject);
    ck_assert_str_eq(back->user, g->user);
    ck_assert_str_eq(back->udid, g->udid);
    ck_assert_str_eq(back->origin, g->origin);
    ck_assert_int_eq(back->sans->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(back->sans, 1, const char *),
                     "email:a%b@example");
    /* the binding OTA Phase 2 wrote before grants had more lines */
    ck_assert_int_eq(scep_grant_parse(tpool, SCEP_BOUND_SUBJECT
                                      "CN=x,O=Example", &back), APR_SUCCESS);
    ck_assert_str_eq(back->subject, "CN=x,O=Example");
    /* what cannot be read binds nothing: refused */
    ck_assert_int_eq(scep_grant_parse(tpool, "alice", &back), APR_EINVAL);
    ck_assert_int_eq(scep_grant_parse(tpool, "role=admin", &back),
                     APR_EINVAL);
    ck_assert_int_eq(scep_grant_parse(tpool, "san=RID:1.2.3", &back),
                     APR_EINVAL);
}
END_TEST

START_TEST(typed_names)
{
    const char *out, *err;

    ck_assert_int_eq(scep_subject_parse(tpool, "/O=Example/CN=dev 1", &out,
                                        &err), APR_SUCCESS);
    ck_assert_str_eq(out, "CN=dev 1,O=Example");
    ck_assert_int_eq(scep_subject_parse(tpool, "CN=dev 1,O=Example", &out,
                                        &err), APR_SUCCESS);
    ck_assert_str_eq(out, "CN=dev 1,O=Example");
    ck_assert_int_eq(scep_subject_parse(tpool, "CN=a\\,b", &out, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(out, "CN=a\\,b");
    ck_assert_int_eq(scep_subject_parse(tpool, "", &out, &err), APR_EINVAL);
    ck_assert_int_eq(scep_subject_parse(tpool, "/CN", &out, &err),
                     APR_EINVAL);
    ck_assert_int_eq(scep_subject_parse(tpool, "/XYZ=1", &out, &err),
                     APR_EINVAL);
    ck_assert_int_eq(scep_san_parse(tpool, "dns:Host.Example", &out, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(out, "DNS:host.example");
    ck_assert_int_eq(scep_san_parse(tpool, "ip:2001:DB8:0::1", &out, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(out, "IP:2001:db8::1");
    ck_assert_int_eq(scep_san_parse(tpool, "ip:300.1.1.1", &out, &err),
                     APR_EINVAL);
    ck_assert_int_eq(scep_san_parse(tpool, "dns:*.example", &out, &err),
                     APR_EINVAL);
    ck_assert_int_eq(scep_san_parse(tpool, "email:nobody", &out, &err),
                     APR_EINVAL);
    ck_assert_int_eq(scep_san_parse(tpool, "uri:no scheme", &out, &err),
                     APR_EINVAL);
    ck_assert_int_eq(scep_san_parse(tpool, "upn:x@y", &out, &err),
                     APR_EINVAL);
}
END_TEST

Suite *suite_policy(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");

    tcase_add_checked_fixture(tc, ts_setup, ts_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, no_rule_no_san);
    tcase_add_test(tc, rules_of_each_type);
    tcase_add_test(tc, bad_rules);
    tcase_add_test(tc, reserved_subjects);
    tcase_add_test(tc, grants_fix_the_names);
    tcase_add_test(tc, grant_text);
    tcase_add_test(tc, typed_names);
    suite_add_tcase(s, tc);
    return s;
}
