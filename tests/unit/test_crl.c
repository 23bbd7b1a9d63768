/* The published CRL: distribution points in issued certificates, one CRL
 * per CA shared through the store, renewed on revocation or age, and the
 * race of two processes publishing the same number. */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include <openssl/x509v3.h>

#include "testscep.h"
#include "scep_ota/scep_crl.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_store.h"
#include "scep_ota/scep_store_dbd.h"

static scep_store_t *st;
static const char *db_path;

static apr_status_t unlink_db(void *data)
{
    const char *path = data;

    unlink(path);
    unlink(apr_pstrcat(tpool, path, "-wal", NULL));
    unlink(apr_pstrcat(tpool, path, "-shm", NULL));
    return APR_SUCCESS;
}

static void memory_setup(void)
{
    ts_setup();
    db_path = NULL;
    st = scep_store_scoped(tpool, scep_store_memory_create(tpool),
                           ts_ca()->id);
}

static void sqlite_setup(void)
{
    scep_store_t *s = NULL;
    const char *err = NULL;
    char *path;
    int fd;

    ts_setup();
    path = apr_pstrdup(tpool, "/tmp/scep-crl-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    apr_pool_cleanup_register(tpool, path, unlink_db, apr_pool_cleanup_null);
    db_path = path;
    ck_assert_int_eq(scep_store_dbd_open(&s, tpool,
                                         apr_pstrcat(tpool, "sqlite3:", path,
                                                     NULL), 4, NULL, &err),
                     APR_SUCCESS);
    st = scep_store_scoped(tpool, s, ts_ca()->id);
}

static void teardown(void)
{
    st = NULL;
    ts_teardown();
}

/* A certificate of the CA in the store, revoked with reason when >= 0. */
static void add_cert(const char *serial, int reason)
{
    scep_cert_rec_t *r = apr_pcalloc(tpool, sizeof(*r));

    r->serial = serial;
    r->subject = apr_pstrcat(tpool, "CN=", serial, NULL);
    r->key_hash = serial;
    r->not_before = apr_time_now();
    r->not_after = apr_time_now() + apr_time_from_sec(86400);
    r->status = SCEP_CERT_VALID;
    r->revocation_reason = -1;
    r->der = (const unsigned char *)"\x30\x00";
    r->der_len = 2;
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, r), APR_SUCCESS);
    if (reason >= 0) {
        ck_assert_int_eq(st->ops->cert_revoke(st, tpool, serial, reason,
                                              apr_time_now()), APR_SUCCESS);
    }
}

static X509_CRL *crl_of(const scep_crl_rec_t *rec)
{
    const unsigned char *d = rec->der;
    X509_CRL *crl = scep_track_crl(tpool, d2i_X509_CRL(NULL, &d,
                                                       (long)rec->der_len));

    ck_assert_ptr_nonnull(crl);
    ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(ts_ca()->cert)),
                     1);
    return crl;
}

static long crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    long v;

    ck_assert_ptr_nonnull(n);
    v = ASN1_INTEGER_get(n);
    ASN1_INTEGER_free(n);
    return v;
}

static int lists(X509_CRL *crl, const char *serial)
{
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai;
    X509_REVOKED *rev = NULL;
    int found;

    ck_assert_int_gt(BN_hex2bn(&bn, serial), 0);
    ai = BN_to_ASN1_INTEGER(bn, NULL);
    found = X509_CRL_get0_by_serial(crl, &rev, ai) == 1;
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return found;
}

static const scep_crl_rec_t *current(scep_crl_cache_t *cache)
{
    const scep_crl_rec_t *rec = NULL;

    ck_assert_int_eq(scep_crl_current(tpool, NULL, ts_ca(), 7, st, cache,
                                      &rec), APR_SUCCESS);
    ck_assert_ptr_nonnull(rec->der);
    return rec;
}

START_TEST(published_once_renewed_on_revocation)
{
    scep_crl_cache_t *a = scep_crl_cache_create(tpool);
    scep_crl_cache_t *b = scep_crl_cache_create(tpool);
    const scep_crl_rec_t *one, *again, *other, *two;
    X509_CRL *crl;

    add_cert("4A01", -1);
    one = current(a);
    ck_assert_int_eq(one->number, 1);
    crl = crl_of(one);
    ck_assert_int_eq(crl_number(crl), 1);
    ck_assert_int_le(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 0);
    /* the same bytes from this process, another one, and none */
    again = current(a);
    other = current(b);
    ck_assert_int_eq(again->number, 1);
    ck_assert_int_eq(other->number, 1);
    ck_assert(again->der_len == one->der_len
              && !memcmp(again->der, one->der, one->der_len));
    ck_assert(other->der_len == one->der_len
              && !memcmp(other->der, one->der, one->der_len));
    ck_assert_int_eq(current(NULL)->number, 1);
    /* a revocation: the next number, listing it, in every process */
    ck_assert_int_eq(st->ops->cert_revoke(st, tpool, "4A01",
                                          SCEP_REASON_KEY_COMPROMISE,
                                          apr_time_now()), APR_SUCCESS);
    two = current(b);
    ck_assert_int_eq(two->number, 2);
    crl = crl_of(two);
    ck_assert_int_eq(crl_number(crl), 2);
    ck_assert(lists(crl, "4A01"));
    ck_assert_int_eq(current(a)->number, 2);
    ck_assert(lists(crl_of(current(a)), "4A01"));
    /* thisUpdate/nextUpdate as recorded, SCEPCRLValidity apart */
    ck_assert(two->next_update - two->this_update
              == apr_time_from_sec(7 * 86400));
    ck_assert(apr_time_now() - two->this_update < apr_time_from_sec(60));
}
END_TEST

START_TEST(renewed_after_half_its_validity)
{
    apr_int64_t count;
    apr_time_t latest, now = apr_time_now();
    scep_crl_rec_t old;
    X509_CRL *crl;
    unsigned char *der = NULL;
    int n;

    add_cert("4B01", 0);
    ck_assert_int_eq(st->ops->revocation_mark(st, tpool, &count, &latest),
                     APR_SUCCESS);
    ck_assert_int_eq(count, 1);
    /* published 4 days ago with 7 days of validity: due */
    memset(&old, 0, sizeof(old));
    old.number = 41;
    old.this_update = apr_time_from_sec(apr_time_sec(now) - 4 * 86400);
    old.next_update = old.this_update + apr_time_from_sec(7 * 86400);
    old.revocations = scep_crl_mark(tpool, count, latest);
    ck_assert_int_eq(scep_crl_sign(tpool, ts_ca(), NULL, old.number,
                                   old.this_update, old.next_update, &crl),
                     APR_SUCCESS);
    ck_assert_int_gt(n = i2d_X509_CRL(crl, &der), 0);
    old.der = apr_pmemdup(tpool, der, (apr_size_t)n);
    old.der_len = (apr_size_t)n;
    OPENSSL_free(der);
    ck_assert_int_eq(st->ops->crl_publish(st, tpool, &old), APR_SUCCESS);
    ck_assert_int_eq(st->ops->crl_publish(st, tpool, &old), APR_EEXIST);
    ck_assert(!scep_crl_fresh(&old, old.revocations, 7, now));
    ck_assert(scep_crl_fresh(&old, old.revocations, 7,
                             old.this_update + apr_time_from_sec(3 * 86400)));
    ck_assert_int_eq(current(NULL)->number, 42);
    ck_assert(lists(crl_of(current(NULL)), "4B01"));
}
END_TEST

START_TEST(freshness)
{
    scep_crl_rec_t c;
    apr_time_t t0 = apr_time_from_sec(1700000000), day = apr_time_from_sec(86400);

    memset(&c, 0, sizeof(c));
    c.this_update = t0;
    c.next_update = t0 + 7 * day;
    c.revocations = "2:99";
    ck_assert(scep_crl_fresh(&c, "2:99", 7, t0 + day));
    ck_assert(!scep_crl_fresh(&c, "3:120", 7, t0 + day));
    ck_assert(!scep_crl_fresh(&c, "2:99", 7, t0 + 4 * day));
    /* a shorter SCEPCRLValidity applies to a CRL made under a longer */
    ck_assert(!scep_crl_fresh(&c, "2:99", 1, t0 + day));
    /* a longer one does not carry a CRL past half its own */
    ck_assert(!scep_crl_fresh(&c, "2:99", 30, t0 + 4 * day));
    ck_assert(!scep_crl_fresh(NULL, "2:99", 7, t0));
}
END_TEST

/* A store whose first crl_latest answers the CRL before the newest, as
 * a process sees it when another publishes in between. */
static scep_store_ops_t lagging_ops;
static const scep_store_ops_t *real_ops;
static int lag_once;

static apr_status_t lagging_latest(scep_store_t *s, apr_pool_t *p,
                                   scep_crl_rec_t **rec)
{
    apr_status_t rv = real_ops->crl_latest(s, p, rec);

    if (APR_SUCCESS == rv && lag_once && (*rec)->number > 1) {
        lag_once = 0;
        rv = real_ops->crl_get(s, p, (*rec)->number - 1, rec);
        (*rec)->revocations = "stale";
    }
    return rv;
}

START_TEST(race_loser_serves_the_winner)
{
    scep_store_t *lagging;
    const scep_crl_rec_t *rec;

    ck_assert_int_eq(current(NULL)->number, 1);
    add_cert("4C01", 1);
    ck_assert_int_eq(current(NULL)->number, 2);
    /* this process still sees 1: it builds 2, the store refuses it, and
     * it serves the 2 that was published */
    real_ops = st->ops;
    lagging_ops = *st->ops;
    lagging_ops.crl_latest = lagging_latest;
    lagging = apr_pmemdup(tpool, st, sizeof(*st));
    lagging->ops = &lagging_ops;
    lag_once = 1;
    ck_assert_int_eq(scep_crl_current(tpool, NULL, ts_ca(), 7, lagging, NULL,
                                      &rec), APR_SUCCESS);
    ck_assert_int_eq(lag_once, 0);
    ck_assert_int_eq(rec->number, 2);
    ck_assert(lists(crl_of(rec), "4C01"));
}
END_TEST

START_TEST(older_crls_dropped)
{
    scep_crl_rec_t *rec;

    ck_assert_int_eq(current(NULL)->number, 1);
    add_cert("4D01", 1);
    ck_assert_int_eq(current(NULL)->number, 2);
    add_cert("4D02", 1);
    ck_assert_int_eq(current(NULL)->number, 3);
    ck_assert_int_eq(st->ops->crl_get(st, tpool, 1, &rec), APR_NOTFOUND);
    ck_assert_int_eq(st->ops->crl_get(st, tpool, 2, &rec), APR_SUCCESS);
    ck_assert_int_eq(st->ops->crl_latest(st, tpool, &rec), APR_SUCCESS);
    ck_assert_int_eq(rec->number, 3);
    ck_assert_ptr_null(rec->der);
}
END_TEST

/* Another CA on the same store has CRLs of its own. */
START_TEST(cas_apart)
{
    scep_store_t *other = scep_store_scoped(tpool, st, "0123ABCD");
    scep_crl_rec_t *rec;
    apr_int64_t count;
    apr_time_t latest;

    add_cert("4E01", 1);
    ck_assert_int_eq(current(NULL)->number, 1);
    ck_assert_int_eq(other->ops->crl_latest(other, tpool, &rec),
                     APR_NOTFOUND);
    ck_assert_int_eq(other->ops->revocation_mark(other, tpool, &count,
                                                 &latest), APR_SUCCESS);
    ck_assert_int_eq(count, 0);
    ck_assert(latest == 0);
}
END_TEST

START_TEST(distribution_point_urls)
{
    static const char *const good[] = {
        "http://pki.example.com/ca.crl", "https://pki.example.com:8443/x",
        "HTTP://PKI.EXAMPLE.COM/", "ldap:///cn=CA,o=Example?certificateRevocationList",
        "ldap://ldap.example.com/cn=CA%20One,o=Example", NULL
    };
    static const char *const bad[] = {
        "ftp://pki.example.com/ca.crl", "pki.example.com/ca.crl", "",
        "http:///ca.crl", "http://pki.example.com/a b", "file:///etc/ca.crl",
        "http://pki.example.com/\xc3\xa9", "urn:x", NULL
    };
    const char *err;
    int i;

    for (i = 0; good[i]; ++i) {
        err = NULL;
        ck_assert_msg(scep_crl_dp_check(tpool, good[i], &err) == APR_SUCCESS,
                      "%s: %s", good[i], err ? err : "");
    }
    for (i = 0; bad[i]; ++i) {
        err = NULL;
        ck_assert_msg(scep_crl_dp_check(tpool, bad[i], &err) != APR_SUCCESS,
                      "%s accepted", bad[i]);
        ck_assert_ptr_nonnull(err);
    }
}
END_TEST

START_TEST(distribution_points_in_issued_certificates)
{
    scep_ca_t ca = *ts_ca();
    apr_array_header_t *urls = apr_array_make(tpool, 2, sizeof(char *));
    const unsigned char *der;
    apr_size_t len;
    X509_REQ *req = NULL;
    X509 *x = NULL;
    CRL_DIST_POINTS *dps;
    DIST_POINT *dp;
    GENERAL_NAME *gn;
    int crit = -1, i;

    APR_ARRAY_PUSH(urls, const char *) = "http://pki.example.com/ca.crl";
    APR_ARRAY_PUSH(urls, const char *) = "ldap://ldap.example.com/cn=CA";
    ck_assert_int_eq(scep_ca_set_crl_dps(&ca, tpool, urls), APR_SUCCESS);
    ts_csr(tu_key(2048, 5), "cdp", NULL, NULL, &der, &len);
    ck_assert_int_eq(scep_csr_parse(tpool, der, len, &req), APR_SUCCESS);
    /* twice: the extension is the CA's, each certificate gets a copy */
    for (i = 0; i < 2; ++i) {
        ck_assert_int_eq(scep_issue_cert(tpool, &ca, req, NULL, NULL, 10, &x),
                         APR_SUCCESS);
        dps = X509_get_ext_d2i(x, NID_crl_distribution_points, &crit, NULL);
        ck_assert_ptr_nonnull(dps);
        ck_assert_int_eq(crit, 0);
        ck_assert_int_eq(sk_DIST_POINT_num(dps), 1);
        dp = sk_DIST_POINT_value(dps, 0);
        ck_assert_int_eq(dp->distpoint->type, 0);
        ck_assert_int_eq(sk_GENERAL_NAME_num(dp->distpoint->name.fullname), 2);
        gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 1);
        ck_assert_int_eq(gn->type, GEN_URI);
        ck_assert_str_eq((const char *)ASN1_STRING_get0_data(
                             gn->d.uniformResourceIdentifier),
                         "ldap://ldap.example.com/cn=CA");
        ck_assert_ptr_null(dp->reasons);
        CRL_DIST_POINTS_free(dps);
    }
    /* none configured: no extension */
    ck_assert_int_eq(scep_issue_cert(tpool, ts_ca(), req, NULL, NULL, 10, &x),
                     APR_SUCCESS);
    ck_assert_int_lt(X509_get_ext_by_NID(x, NID_crl_distribution_points, -1),
                     0);
}
END_TEST

static TCase *store_tcase(const char *name, void (*setup)(void))
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, published_once_renewed_on_revocation);
    tcase_add_test(tc, renewed_after_half_its_validity);
    tcase_add_test(tc, race_loser_serves_the_winner);
    tcase_add_test(tc, cas_apart);
    return tc;
}

Suite *suite_crl(void)
{
    Suite *s = suite_create("crl");
    TCase *tc = store_tcase("crl-sqlite", sqlite_setup);

    tcase_add_test(tc, older_crls_dropped);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, store_tcase("crl-memory", memory_setup));
    tc = tcase_create("crl-extension");
    tcase_add_checked_fixture(tc, ts_setup, ts_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, freshness);
    tcase_add_test(tc, distribution_point_urls);
    tcase_add_test(tc, distribution_points_in_issued_certificates);
    suite_add_tcase(s, tc);
    return s;
}
