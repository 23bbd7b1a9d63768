/* The DBD store against a temporary SQLite file, and against PostgreSQL
 * too when SCEP_TEST_PGSQL holds an apr_dbd pgsql params string. */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "testutil.h"
#include "scep_ota/scep_store.h"
#include "scep_ota/scep_store_dbd.h"

static const char *store_uri;   /* of the backend the current tcase tests */
static scep_store_t *st;

static apr_status_t unlink_db(void *data)
{
    const char *path = data;

    unlink(path);
    unlink(apr_pstrcat(tpool, path, "-wal", NULL));
    unlink(apr_pstrcat(tpool, path, "-shm", NULL));
    return APR_SUCCESS;
}

static scep_store_t *open_store(void)
{
    scep_store_t *s = NULL;
    const char *err = NULL;
    apr_status_t rv;

    rv = scep_store_dbd_open(&s, tpool, store_uri, 8, NULL, &err);
    ck_assert_msg(rv == APR_SUCCESS, "open %s: %s", store_uri,
                  err ? err : "?");
    return s;
}

static void sqlite_setup(void)
{
    char *path;
    int fd;

    tpool_setup();
    path = apr_pstrdup(tpool, "/tmp/scep-store-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    apr_pool_cleanup_register(tpool, path, unlink_db, apr_pool_cleanup_null);
    store_uri = apr_pstrcat(tpool, "sqlite3:", path, NULL);
    st = open_store();
}

static void pgsql_setup(void)
{
    scep_dbd_conn_t *conn;
    const char *err = NULL;
    int nrows;

    tpool_setup();
    ck_assert_int_eq(scep_dbd_connect(tpool, "pgsql",
                                      getenv("SCEP_TEST_PGSQL"), &conn,
                                      &err), APR_SUCCESS);
    ck_assert_int_eq(apr_dbd_query(conn->driver, conn->handle, &nrows,
                                   "DROP TABLE IF EXISTS certificates, "
                                   "challenges, pending, devices, "
                                   "crls, scep_schema"), 0);
    scep_dbd_disconnect(conn);
    store_uri = apr_pstrcat(tpool, "pgsql:", getenv("SCEP_TEST_PGSQL"),
                            NULL);
    st = open_store();
}

static void store_teardown(void)
{
    st = NULL;
    tpool_teardown();
}

/* A certificate record with a DER that holds NUL bytes. */
static scep_cert_rec_t *cert(const char *serial, const char *txid,
                             const char *key)
{
    scep_cert_rec_t *r = apr_pcalloc(tpool, sizeof(*r));
    unsigned char *der = apr_palloc(tpool, 300);
    int i;

    for (i = 0; i < 300; ++i) {
        der[i] = (unsigned char)(i * 7);
    }
    der[0] = 0x30;
    r->serial = serial;
    r->subject = apr_pstrcat(tpool, "CN=device ", serial, ",O=Example",
                             NULL);
    r->transaction_id = txid;
    r->key_hash = key;
    r->not_before = apr_time_from_sec(1700000000);
    r->not_after = apr_time_from_sec(1700000000 + 86400 * 365);
    r->status = SCEP_CERT_VALID;
    r->revocation_reason = -1;
    r->der = der;
    r->der_len = 300;
    return r;
}

static void same_cert(const scep_cert_rec_t *a, const scep_cert_rec_t *b)
{
    ck_assert_str_eq(a->serial, b->serial);
    ck_assert_str_eq(a->subject, b->subject);
    ck_assert_pstr_eq(a->transaction_id, b->transaction_id);
    ck_assert_pstr_eq(a->key_hash, b->key_hash);
    ck_assert(a->not_before == b->not_before);
    ck_assert(a->not_after == b->not_after);
    ck_assert_int_eq(a->status, b->status);
    ck_assert_uint_eq(a->der_len, b->der_len);
    ck_assert_mem_eq(a->der, b->der, a->der_len);
}

START_TEST(cert_insert_and_find)
{
    scep_cert_rec_t *in = cert("0A1B2C3D4E5F6071", "tx-1", "aa01");
    scep_cert_rec_t *out;

    ck_assert_int_eq(st->ops->cert_insert(st, tpool, in), APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_by_serial(st, tpool, in->serial, &out),
                     APR_SUCCESS);
    same_cert(in, out);
    ck_assert(out->revoked_at == 0);
    ck_assert_int_eq(out->revocation_reason, -1);
    ck_assert_int_eq(st->ops->cert_by_key(st, tpool, "aa01", &out),
                     APR_SUCCESS);
    same_cert(in, out);
    ck_assert_int_eq(st->ops->cert_by_serial(st, tpool, "FF", &out),
                     APR_NOTFOUND);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(st->ops->cert_by_key(st, tpool, "bb02", &out),
                     APR_NOTFOUND);
}
END_TEST

START_TEST(cert_serial_unique)
{
    ck_assert_int_eq(st->ops->cert_insert(st, tpool,
                                          cert("77", "tx-1", "aa01")),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool,
                                          cert("77", "tx-2", "bb02")),
                     APR_EEXIST);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool,
                                          cert("77", NULL, NULL)),
                     APR_EEXIST);
}
END_TEST

START_TEST(cert_issuance_unique)
{
    scep_cert_rec_t *out;

    ck_assert_int_eq(st->ops->cert_insert(st, tpool,
                                          cert("01", "tx-1", "aa01")),
                     APR_SUCCESS);
    /* the same transactionID and key never get a second certificate */
    ck_assert_int_eq(st->ops->cert_insert(st, tpool,
                                          cert("02", "tx-1", "aa01")),
                     APR_EEXIST);
    /* same transaction, other key; no transaction at all, twice */
    ck_assert_int_eq(st->ops->cert_insert(st, tpool,
                                          cert("03", "tx-1", "bb02")),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool,
                                          cert("04", NULL, "aa01")),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool,
                                          cert("05", NULL, "aa01")),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_by_serial(st, tpool, "02", &out),
                     APR_NOTFOUND);
}
END_TEST

START_TEST(cert_retry_is_idempotent)
{
    scep_cert_rec_t *in = cert("0C", "tx-9", "cc03");
    scep_cert_rec_t *out;

    ck_assert_int_eq(st->ops->cert_by_transaction(st, tpool, "tx-9", "cc03",
                                                  &out), APR_NOTFOUND);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, in), APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_by_transaction(st, tpool, "tx-9", "cc03",
                                                  &out), APR_SUCCESS);
    same_cert(in, out);
    ck_assert_int_eq(st->ops->cert_by_transaction(st, tpool, "tx-9", "dd04",
                                                  &out), APR_NOTFOUND);
    ck_assert_int_eq(st->ops->cert_by_transaction(st, tpool, "tx-8", "cc03",
                                                  &out), APR_NOTFOUND);
}
END_TEST

START_TEST(cert_revoke)
{
    scep_cert_rec_t *out;
    apr_time_t when = apr_time_from_sec(1750000000);

    ck_assert_int_eq(st->ops->cert_insert(st, tpool,
                                          cert("AB", "tx-1", "aa01")),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_revoke(st, tpool, "AB", 1, when),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_by_serial(st, tpool, "AB", &out),
                     APR_SUCCESS);
    ck_assert_int_eq(out->status, SCEP_CERT_REVOKED);
    ck_assert(out->revoked_at == when);
    ck_assert_int_eq(out->revocation_reason, 1);
    /* a revoked certificate is no longer the key's valid one */
    ck_assert_int_eq(st->ops->cert_by_key(st, tpool, "aa01", &out),
                     APR_NOTFOUND);
    ck_assert_int_eq(st->ops->cert_revoke(st, tpool, "AB", 4, when),
                     APR_EEXIST);
    ck_assert_int_eq(st->ops->cert_revoke(st, tpool, "CD", 1, when),
                     APR_NOTFOUND);
}
END_TEST

START_TEST(cert_list_filters)
{
    apr_array_header_t *recs;

    ck_assert_int_eq(st->ops->cert_list(st, tpool, -1, &recs), APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 0);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, cert("01", "a", "k1")),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, cert("02", "b", "k2")),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, cert("03", "c", "k3")),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_revoke(st, tpool, "02", 0,
                                          apr_time_now()), APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_list(st, tpool, -1, &recs), APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 3);
    ck_assert_int_eq(st->ops->cert_list(st, tpool, SCEP_CERT_VALID, &recs),
                     APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(recs, 0, scep_cert_rec_t *)->serial, "01");
    ck_assert_str_eq(APR_ARRAY_IDX(recs, 1, scep_cert_rec_t *)->serial, "03");
    ck_assert_int_eq(st->ops->cert_list(st, tpool, SCEP_CERT_REVOKED, &recs),
                     APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 1);
    ck_assert_str_eq(APR_ARRAY_IDX(recs, 0, scep_cert_rec_t *)->serial, "02");
    ck_assert_uint_eq(APR_ARRAY_IDX(recs, 0, scep_cert_rec_t *)->der_len,
                      300);
}
END_TEST

/* A device's valid certificates, of this CA only, oldest first. */
START_TEST(cert_by_udid_finds_the_device)
{
    scep_store_t *other = scep_store_scoped(tpool, st, "OTHER-CA");
    apr_array_header_t *recs;
    scep_cert_rec_t *a = cert("11", "a", "k1"), *b = cert("12", "b", "k2"),
                    *c = cert("13", "c", "k3"), *d = cert("14", "d", "k4");

    a->udid = b->udid = d->udid = "UDID-1";
    c->udid = "UDID-2";
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, a), APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, b), APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, c), APR_SUCCESS);
    ck_assert_int_eq(other->ops->cert_insert(other, tpool, d), APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_by_udid(st, tpool, "UDID-1", &recs),
                     APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(recs, 0, scep_cert_rec_t *)->serial, "11");
    ck_assert_str_eq(APR_ARRAY_IDX(recs, 1, scep_cert_rec_t *)->serial, "12");
    ck_assert_str_eq(APR_ARRAY_IDX(recs, 1, scep_cert_rec_t *)->udid,
                     "UDID-1");
    ck_assert_int_eq(st->ops->cert_revoke(st, tpool, "11", 4,
                                          apr_time_now()), APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_by_udid(st, tpool, "UDID-1", &recs),
                     APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 1);
    ck_assert_str_eq(APR_ARRAY_IDX(recs, 0, scep_cert_rec_t *)->serial, "12");
    ck_assert_int_eq(st->ops->cert_by_udid(st, tpool, "UDID-3", &recs),
                     APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 0);
}
END_TEST

/* One certificate per origin (an approved request, a renewal): the
 * constraint decides, whatever races. */
START_TEST(cert_origin_unique)
{
    scep_cert_rec_t *a = cert("A01", NULL, "k1"), *b = cert("A02", NULL, "k2");
    scep_cert_rec_t *got;

    a->origin = b->origin = "pending:T1";
    a->request_txid = "T1";
    a->udid = "UDID-1";
    a->enrolled_by = "alice";
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, a), APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, b), APR_EEXIST);
    ck_assert_int_eq(st->ops->cert_by_origin(st, tpool, "pending:T1", &got),
                     APR_SUCCESS);
    ck_assert_str_eq(got->serial, "A01");
    ck_assert_pstr_eq(got->request_txid, "T1");
    ck_assert_pstr_eq(got->udid, "UDID-1");
    ck_assert_pstr_eq(got->enrolled_by, "alice");
    ck_assert_int_eq(st->ops->cert_supersede(st, tpool, "A01", "B07"),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_by_serial(st, tpool, "A01", &got),
                     APR_SUCCESS);
    ck_assert_pstr_eq(got->superseded_by, "B07");
    ck_assert_int_eq(st->ops->key_compromised(st, tpool, "k1"), APR_NOTFOUND);
    ck_assert_int_eq(st->ops->cert_revoke(st, tpool, "A01",
                                          SCEP_REASON_KEY_COMPROMISE,
                                          apr_time_now()), APR_SUCCESS);
    ck_assert_int_eq(st->ops->key_compromised(st, tpool, "k1"), APR_SUCCESS);
}
END_TEST

/* Two CAs on one store see their own records only (the compromise of a
 * key is everybody's business): certificates, */
static void certs_apart(scep_store_t *a, scep_store_t *b)
{
    scep_cert_rec_t *got;
    apr_array_header_t *recs;

    ck_assert_int_eq(a->ops->cert_insert(a, tpool, cert("B01", "T", "k")),
                     APR_SUCCESS);
    ck_assert_int_eq(b->ops->cert_by_serial(b, tpool, "B01", &got),
                     APR_NOTFOUND);
    ck_assert_int_eq(b->ops->cert_by_transaction(b, tpool, "T", "k", &got),
                     APR_NOTFOUND);
    ck_assert_int_eq(b->ops->cert_by_key(b, tpool, "k", &got), APR_NOTFOUND);
    /* the same transaction and key at the other CA is another issuance */
    ck_assert_int_eq(b->ops->cert_insert(b, tpool, cert("B02", "T", "k")),
                     APR_SUCCESS);
    ck_assert_int_eq(b->ops->cert_revoke(b, tpool, "B01", 1, apr_time_now()),
                     APR_NOTFOUND);
    ck_assert_int_eq(b->ops->cert_list(b, tpool, -1, &recs), APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 1);
}

/* challenges, */
static void challenges_apart(scep_store_t *a, scep_store_t *b)
{
    const char *bound;

    ck_assert_int_eq(a->ops->challenge_add(a, tpool, "hA", SCEP_CHALLENGE_SCEP,
                                           NULL, apr_time_now()
                                           + apr_time_from_sec(60)),
                     APR_SUCCESS);
    ck_assert_int_eq(b->ops->challenge_peek(b, tpool, "hA",
                                            SCEP_CHALLENGE_SCEP, NULL,
                                            &bound), APR_NOTFOUND);
    ck_assert_int_eq(b->ops->challenge_consume(b, tpool, "hA",
                                               SCEP_CHALLENGE_SCEP, NULL,
                                               NULL), APR_NOTFOUND);
    ck_assert_int_eq(a->ops->challenge_consume(a, tpool, "hA",
                                               SCEP_CHALLENGE_SCEP, NULL,
                                               NULL), APR_SUCCESS);
}

/* pending requests, */
static void pending_apart(scep_store_t *a, scep_store_t *b)
{
    scep_pending_rec_t pend, *pgot;

    memset(&pend, 0, sizeof(pend));
    pend.transaction_id = "P1";
    pend.key_hash = "k";
    pend.plan = "subject=CN%3Dx\n";
    ck_assert_int_eq(a->ops->pending_put(a, tpool, &pend), APR_SUCCESS);
    ck_assert_int_eq(b->ops->pending_get(b, tpool, "P1", &pgot),
                     APR_NOTFOUND);
    ck_assert_int_eq(b->ops->pending_set_state(b, tpool, "P1",
                                               SCEP_PENDING_APPROVED, NULL),
                     APR_NOTFOUND);
    ck_assert_int_eq(b->ops->pending_put(b, tpool, &pend), APR_SUCCESS);
    ck_assert_int_eq(a->ops->pending_get(a, tpool, "P1", &pgot), APR_SUCCESS);
    ck_assert_pstr_eq(pgot->plan, pend.plan);
}

/* and devices. */
static void devices_apart(scep_store_t *a, scep_store_t *b)
{
    scep_device_rec_t dev, *dgot;

    memset(&dev, 0, sizeof(dev));
    dev.udid = "U1";
    dev.enrolled_by = "alice";
    ck_assert_int_eq(a->ops->device_upsert(a, tpool, &dev), APR_SUCCESS);
    ck_assert_int_eq(b->ops->device_get(b, tpool, "U1", &dgot), APR_NOTFOUND);
    ck_assert_int_eq(a->ops->device_get(a, tpool, "U1", &dgot), APR_SUCCESS);
    ck_assert_pstr_eq(dgot->enrolled_by, "alice");
}

START_TEST(cas_apart)
{
    scep_store_t *a = scep_store_scoped(tpool, st, "AAAA");
    scep_store_t *b = scep_store_scoped(tpool, st, "BBBB");

    certs_apart(a, b);
    challenges_apart(a, b);
    pending_apart(a, b);
    devices_apart(a, b);
    ck_assert_int_eq(a->ops->cert_revoke(a, tpool, "B01",
                                         SCEP_REASON_KEY_COMPROMISE,
                                         apr_time_now()), APR_SUCCESS);
    ck_assert_int_eq(b->ops->key_compromised(b, tpool, "k"), APR_SUCCESS);
}
END_TEST

START_TEST(challenge_once)
{
    apr_time_t later = apr_time_now() + apr_time_from_sec(600);
    const char *bound = NULL;

    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "h1",
                                            SCEP_CHALLENGE_SCEP, "UDID-1",
                                            later), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "h1",
                                            SCEP_CHALLENGE_SCEP, "UDID-2",
                                            later), APR_EEXIST);
    /* the wrong purpose does not use it up */
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "h1",
                                                SCEP_CHALLENGE_OTA_PHASE1,
                                                NULL, &bound), APR_NOTFOUND);
    /* a look uses nothing up */
    ck_assert_int_eq(st->ops->challenge_peek(st, tpool, "h1",
                                             SCEP_CHALLENGE_SCEP, "req-a",
                                             &bound), APR_SUCCESS);
    ck_assert_pstr_eq(bound, "UDID-1");
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "h1",
                                                SCEP_CHALLENGE_SCEP, "req-a",
                                                &bound), APR_SUCCESS);
    ck_assert_pstr_eq(bound, "UDID-1");
    /* nobody else, but the same request again (its child may have died
     * before it recorded what the challenge was for) */
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "h1",
                                                SCEP_CHALLENGE_SCEP, "req-b",
                                                &bound), APR_NOTFOUND);
    ck_assert_ptr_null(bound);
    ck_assert_int_eq(st->ops->challenge_peek(st, tpool, "h1",
                                             SCEP_CHALLENGE_SCEP, "req-b",
                                             &bound), APR_NOTFOUND);
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "h1",
                                                SCEP_CHALLENGE_SCEP, NULL,
                                                &bound), APR_NOTFOUND);
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "h1",
                                                SCEP_CHALLENGE_SCEP, "req-a",
                                                &bound), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "nope",
                                                SCEP_CHALLENGE_SCEP, NULL,
                                                NULL), APR_NOTFOUND);
}
END_TEST

START_TEST(challenge_unbound_and_expired)
{
    const char *bound = "x";

    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "h2",
                                            SCEP_CHALLENGE_OTA_PHASE1, NULL,
                                            apr_time_now()
                                            + apr_time_from_sec(60)),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "h2",
                                                SCEP_CHALLENGE_OTA_PHASE1,
                                                NULL, &bound), APR_SUCCESS);
    ck_assert_ptr_null(bound);
    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "h3",
                                            SCEP_CHALLENGE_SCEP, "u",
                                            apr_time_now()
                                            - apr_time_from_sec(1)),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "h3",
                                                SCEP_CHALLENGE_SCEP, NULL,
                                                &bound), APR_NOTFOUND);
}
END_TEST

/* Threads, each through its own connection, race for one challenge. */
typedef struct {
    apr_status_t rv;
} racer_t;

static void *APR_THREAD_FUNC race(apr_thread_t *t, void *data)
{
    racer_t *r = data;
    apr_pool_t *p;

    apr_pool_create(&p, NULL);
    r->rv = st->ops->challenge_consume(st, p, "race", SCEP_CHALLENGE_SCEP,
                                       apr_psprintf(p, "%pp", (void *)t),
                                       NULL);
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Expired challenges are purged by the first add of a process, then
 * every few minutes. A purged hash can be added again (the insert of a
 * present one is refused). */
START_TEST(challenge_purge)
{
    apr_time_t long_ago = apr_time_now() - apr_time_from_sec(3600);
    apr_time_t later = apr_time_now() + apr_time_from_sec(600);
    scep_store_t *other;

    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "old", SCEP_CHALLENGE_SCEP,
                                            NULL, long_ago), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "fresh",
                                            SCEP_CHALLENGE_SCEP, NULL, later),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "old", SCEP_CHALLENGE_SCEP,
                                            NULL, long_ago), APR_EEXIST);
    /* another process starts: its first add purges */
    other = open_store();
    ck_assert_int_eq(other->ops->challenge_add(other, tpool, "new",
                                               SCEP_CHALLENGE_SCEP, NULL,
                                               later), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "old", SCEP_CHALLENGE_SCEP,
                                            NULL, long_ago), APR_SUCCESS);
    /* a live one stays */
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "fresh",
                                                SCEP_CHALLENGE_SCEP, NULL,
                                                NULL), APR_SUCCESS);
}
END_TEST

START_TEST(challenge_race)
{
    apr_thread_t *threads[8];
    racer_t racers[8];
    apr_status_t trv;
    int i, wins = 0;

    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "race",
                                            SCEP_CHALLENGE_SCEP, NULL,
                                            apr_time_now()
                                            + apr_time_from_sec(60)),
                     APR_SUCCESS);
    for (i = 0; i < 8; ++i) {
        ck_assert_int_eq(apr_thread_create(&threads[i], NULL, race,
                                           &racers[i], tpool), APR_SUCCESS);
    }
    for (i = 0; i < 8; ++i) {
        apr_thread_join(&trv, threads[i]);
        if (racers[i].rv == APR_SUCCESS) {
            ++wins;
        }
        else {
            ck_assert_int_eq(racers[i].rv, APR_NOTFOUND);
        }
    }
    ck_assert_int_eq(wins, 1);
}
END_TEST

/* Processes, each with its own connections, race for one challenge and
 * write certificates at the same time: one wins, no write is lost. */
static int race_child(int i)
{
    apr_pool_t *p;
    scep_store_t *s = NULL;
    const char *err;
    char serial[16];
    apr_status_t rv;
    int j;

    apr_pool_create(&p, NULL);
    if (APR_SUCCESS != scep_store_dbd_open(&s, p, store_uri, 1, NULL, &err)) {
        return 3;
    }
    rv = s->ops->challenge_consume(s, p, "prace", SCEP_CHALLENGE_SCEP, NULL,
                                   NULL);
    for (j = 0; j < 10; ++j) {
        apr_snprintf(serial, sizeof(serial), "%X%02X", i + 1, j);
        if (APR_SUCCESS != s->ops->cert_insert(s, p, cert(serial, NULL,
                                                          NULL))) {
            return 4;
        }
    }
    return rv == APR_SUCCESS ? 0 : rv == APR_NOTFOUND ? 1 : 2;
}

START_TEST(challenge_race_processes)
{
    apr_array_header_t *recs;
    pid_t pids[8];
    int i, status, wins = 0;

    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "prace",
                                            SCEP_CHALLENGE_SCEP, NULL,
                                            apr_time_now()
                                            + apr_time_from_sec(60)),
                     APR_SUCCESS);
    for (i = 0; i < 8; ++i) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            _exit(race_child(i));
        }
    }
    for (i = 0; i < 8; ++i) {
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert(WIFEXITED(status));
        ck_assert_int_le(WEXITSTATUS(status), 1);
        wins += WEXITSTATUS(status) == 0;
    }
    ck_assert_int_eq(wins, 1);
    ck_assert_int_eq(st->ops->cert_list(st, tpool, -1, &recs), APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 80);
}
END_TEST

/* A challenge record as the page makes them. */
static scep_challenge_rec_t *page_rec(const char *hash, const char *ref,
                                      const char *user, apr_time_t expires)
{
    scep_challenge_rec_t *r = apr_pcalloc(tpool, sizeof(*r));

    r->hash = hash;
    r->ref = ref;
    r->purpose = SCEP_CHALLENGE_SCEP;
    r->bound_to = user ? apr_pstrcat(tpool, "user=", user, NULL) : NULL;
    r->created_by = user;
    r->via = SCEP_VIA_PAGE;
    r->expires = expires;
    return r;
}

/* The page's per-user limit: used, expired and revoked challenges stop
 * counting at once; other users, other ways of making them and other CAs
 * are apart. */
START_TEST(challenge_issue_limit)
{
    apr_time_t later = apr_time_now() + apr_time_from_sec(600);
    scep_challenge_rec_t *cli;
    scep_store_t *other = scep_store_scoped(tpool, st, "other-ca");
    int n;

    st = scep_store_scoped(tpool, st, "this-ca");
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "l1", "r1", "alice", later), 2), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "l2", "r2", "alice", later), 2), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "l3", "r3", "alice", later), 2), APR_ENOSPC);
    /* the same hash, or the same ref, is a clash, not a limit */
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "l1", "r9", "bob", later), 2), APR_EEXIST);
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "l9", "r1", "bob", later), 2), APR_EEXIST);
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "b1", "rb1", "bob", later), 2), APR_SUCCESS);
    ck_assert_int_eq(other->ops->challenge_issue(other, tpool, page_rec(
        "o1", "ro1", "alice", later), 2), APR_SUCCESS);
    cli = page_rec("c1", "rc1", "alice", later);
    cli->via = SCEP_VIA_CLI;
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, cli, 2),
                     APR_SUCCESS);
    /* no limit */
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "l4", "r4", "alice", later), 0), APR_SUCCESS);
    /* used: frees a place */
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "l1",
                                                SCEP_CHALLENGE_SCEP, "x",
                                                NULL), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "l5", "r5", "alice", later), 3), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "l6", "r6", "alice", later), 3), APR_ENOSPC);
    /* revoked: frees a place, and is no longer accepted */
    ck_assert_int_eq(st->ops->challenge_revoke(st, tpool, "r2", NULL, &n),
                     APR_SUCCESS);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(st->ops->challenge_revoke(st, tpool, "r2", NULL, &n),
                     APR_SUCCESS);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "l2",
                                                SCEP_CHALLENGE_SCEP, "x",
                                                NULL), APR_NOTFOUND);
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "l6", "r6", "alice", later), 3), APR_SUCCESS);
    /* expired: frees a place */
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "e1", "re1", "carol", apr_time_now() - 1), 1), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "e2", "re2", "carol", later), 1), APR_SUCCESS);
}
END_TEST

/* Phase 2's one write: the Phase 1 challenge is used up and the SCEP
 * challenge stored together, or neither is. */
static apr_status_t exchange(const char *phase1, const char *hash,
                             const char *ref)
{
    return st->ops->challenge_exchange(
        st, tpool, phase1, SCEP_CHALLENGE_OTA_PHASE1,
        page_rec(hash, ref, "alice", apr_time_now() + apr_time_from_sec(600)));
}

static void add_phase1(const char *hash, apr_time_t expires)
{
    ck_assert_int_eq(st->ops->challenge_add(st, tpool, hash,
                                            SCEP_CHALLENGE_OTA_PHASE1,
                                            "alice", expires), APR_SUCCESS);
}

static int phase1_usable(const char *hash)
{
    const char *bound;

    return APR_SUCCESS == st->ops->challenge_peek(
        st, tpool, hash, SCEP_CHALLENGE_OTA_PHASE1, NULL, &bound);
}

START_TEST(challenge_exchange_both_or_neither)
{
    apr_time_t later = apr_time_now() + apr_time_from_sec(600);
    scep_challenge_rec_t *rec;

    st = scep_store_scoped(tpool, st, "this-ca");
    add_phase1("p1", later);
    ck_assert_int_eq(exchange("p1", "s1", "rs1"), APR_SUCCESS);
    ck_assert(!phase1_usable("p1"));
    ck_assert_int_eq(st->ops->challenge_find(st, tpool, "s1", &rec),
                     APR_SUCCESS);
    ck_assert_int_eq(rec->purpose, SCEP_CHALLENGE_SCEP);
    ck_assert(!rec->consumed);
    /* used up: nothing is stored */
    ck_assert_int_eq(exchange("p1", "s2", "rs2"), APR_NOTFOUND);
    ck_assert_int_eq(st->ops->challenge_find(st, tpool, "s2", &rec),
                     APR_NOTFOUND);
    /* a taken hash or ref: the Phase 1 challenge stays usable */
    add_phase1("p2", later);
    ck_assert_int_eq(exchange("p2", "s1", "rs3"), APR_EEXIST);
    ck_assert_int_eq(exchange("p2", "s3", "rs1"), APR_EEXIST);
    ck_assert(phase1_usable("p2"));
    /* expired, of another CA, or unknown: nothing is stored */
    add_phase1("p3", apr_time_now() - 1);
    ck_assert_int_eq(exchange("p3", "s4", "rs4"), APR_NOTFOUND);
    st = scep_store_scoped(tpool, st, "other-ca");
    ck_assert_int_eq(exchange("p2", "s5", "rs5"), APR_NOTFOUND);
    ck_assert_int_eq(exchange("nope", "s6", "rs6"), APR_NOTFOUND);
    st = scep_store_scoped(tpool, st, "this-ca");
    ck_assert_int_eq(st->ops->challenge_find(st, tpool, "s4", &rec),
                     APR_NOTFOUND);
    ck_assert_int_eq(st->ops->challenge_find(st, tpool, "s5", &rec),
                     APR_NOTFOUND);
    ck_assert_int_eq(st->ops->challenge_find(st, tpool, "s6", &rec),
                     APR_NOTFOUND);
    ck_assert(phase1_usable("p2"));
    ck_assert_int_eq(exchange("p2", "s7", "rs7"), APR_SUCCESS);
    ck_assert(!phase1_usable("p2"));
    ck_assert_int_eq(st->ops->challenge_exchange(
                         st, tpool, NULL, SCEP_CHALLENGE_OTA_PHASE1,
                         page_rec("s8", "rs8", "alice", later)), APR_EINVAL);
}
END_TEST

/* Five challenges of this CA made every way, and one of another CA. */
static void challenges_of_two_cas(scep_store_t *other, apr_time_t later)
{
    scep_challenge_rec_t *cli;

    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "f1", "rf1", "bob", later), 0), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "f2", "rf2", "alice", later), 0), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, page_rec(
        "f3", "rf3", "alice", later), 0), APR_SUCCESS);
    cli = page_rec("f4", "rf4", NULL, later);
    cli->via = SCEP_VIA_CLI;
    ck_assert_int_eq(st->ops->challenge_issue(st, tpool, cli, 0),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "f5",
                                            SCEP_CHALLENGE_SCEP, NULL,
                                            later), APR_SUCCESS);
    ck_assert_int_eq(other->ops->challenge_issue(other, tpool, page_rec(
        "f6", "rf6", "alice", later), 0), APR_SUCCESS);
}

/* what the store knows of one, whatever its state */
static void challenge_found(apr_time_t later)
{
    scep_challenge_rec_t *r;

    ck_assert_int_eq(st->ops->challenge_find(st, tpool, "f2", &r),
                     APR_SUCCESS);
    ck_assert_str_eq(r->ref, "rf2");
    ck_assert_str_eq(r->created_by, "alice");
    ck_assert_str_eq(r->via, SCEP_VIA_PAGE);
    ck_assert_str_eq(r->bound_to, "user=alice");
    ck_assert_int_eq(r->purpose, SCEP_CHALLENGE_SCEP);
    ck_assert(r->expires == later);
    ck_assert(r->created > 0 && r->created <= apr_time_now());
    ck_assert(!r->consumed && !r->revoked);
    ck_assert_int_eq(st->ops->challenge_find(st, tpool, "f6", &r),
                     APR_NOTFOUND);
    ck_assert_int_eq(st->ops->challenge_find(st, tpool, "nope", &r),
                     APR_NOTFOUND);
}

/* all outstanding, by creator (none first), never a hash */
static void challenges_listed(void)
{
    apr_array_header_t *recs;
    int n;

    ck_assert_int_eq(st->ops->challenge_list(st, tpool, NULL, &recs),
                     APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 5);
    ck_assert_ptr_null(APR_ARRAY_IDX(recs, 0, scep_challenge_rec_t *)
                       ->created_by);
    ck_assert_str_eq(APR_ARRAY_IDX(recs, 2, scep_challenge_rec_t *)
                     ->created_by, "alice");
    ck_assert_str_eq(APR_ARRAY_IDX(recs, 4, scep_challenge_rec_t *)
                     ->created_by, "bob");
    for (n = 0; n < recs->nelts; ++n) {
        ck_assert_ptr_null(APR_ARRAY_IDX(recs, n, scep_challenge_rec_t *)
                           ->hash);
    }
    ck_assert_int_eq(st->ops->challenge_list(st, tpool, "alice", &recs),
                     APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 2);
}

/* used ones leave the list; revoking a user's takes the rest */
static void challenges_used_and_revoked(void)
{
    apr_array_header_t *recs;
    scep_challenge_rec_t *r;
    const char *bound;
    int n;

    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "f2",
                                                SCEP_CHALLENGE_SCEP, NULL,
                                                NULL), APR_SUCCESS);
    ck_assert_int_eq(st->ops->challenge_find(st, tpool, "f2", &r),
                     APR_SUCCESS);
    ck_assert(r->consumed);
    ck_assert_int_eq(st->ops->challenge_revoke(st, tpool, NULL, "alice", &n),
                     APR_SUCCESS);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(st->ops->challenge_find(st, tpool, "f3", &r),
                     APR_SUCCESS);
    ck_assert(r->revoked);
    ck_assert_int_eq(st->ops->challenge_peek(st, tpool, "f3",
                                             SCEP_CHALLENGE_SCEP, NULL,
                                             &bound), APR_NOTFOUND);
    ck_assert_int_eq(st->ops->challenge_list(st, tpool, "alice", &recs),
                     APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 0);
}

START_TEST(challenge_list_find_revoke)
{
    apr_time_t later = apr_time_now() + apr_time_from_sec(600);
    scep_store_t *other = scep_store_scoped(tpool, st, "other-ca");
    apr_array_header_t *recs;
    int n;

    st = scep_store_scoped(tpool, st, "this-ca");
    challenges_of_two_cas(other, later);
    challenge_found(later);
    challenges_listed();
    challenges_used_and_revoked();
    /* the other CA's alice keeps hers */
    ck_assert_int_eq(other->ops->challenge_list(other, tpool, "alice",
                                                &recs), APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 1);
    ck_assert_int_eq(st->ops->challenge_revoke(st, tpool, NULL, NULL, &n),
                     APR_EINVAL);
}
END_TEST

START_TEST(pending_lifecycle)
{
    scep_pending_rec_t in, *out;
    apr_array_header_t *recs;
    static const unsigned char csr[] = { 0x30, 0x00, 0x01, 0xff, 0x00 };

    memset(&in, 0, sizeof(in));
    in.transaction_id = "tx-p";
    in.subject = "CN=pending";
    in.key_hash = "ee05";
    in.state = SCEP_PENDING_WAITING;
    in.csr = csr;
    in.csr_len = sizeof(csr);
    ck_assert_int_eq(st->ops->pending_put(st, tpool, &in), APR_SUCCESS);
    ck_assert_int_eq(st->ops->pending_put(st, tpool, &in), APR_EEXIST);
    ck_assert_int_eq(st->ops->pending_get(st, tpool, "tx-p", &out),
                     APR_SUCCESS);
    ck_assert_str_eq(out->subject, "CN=pending");
    ck_assert_int_eq(out->state, SCEP_PENDING_WAITING);
    ck_assert_uint_eq(out->csr_len, sizeof(csr));
    ck_assert_mem_eq(out->csr, csr, sizeof(csr));
    ck_assert_ptr_null(out->requester);
    ck_assert_ptr_null(out->cert_serial);
    ck_assert(out->created > 0);
    ck_assert_int_eq(st->ops->pending_set_state(st, tpool, "tx-p",
                                                SCEP_PENDING_APPROVED, NULL),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->pending_set_state(st, tpool, "tx-p",
                                                SCEP_PENDING_ISSUED, "1F"),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->pending_get(st, tpool, "tx-p", &out),
                     APR_SUCCESS);
    ck_assert_int_eq(out->state, SCEP_PENDING_ISSUED);
    ck_assert_pstr_eq(out->cert_serial, "1F");
    ck_assert_int_eq(st->ops->pending_set_state(st, tpool, "tx-none",
                                                SCEP_PENDING_REJECTED, NULL),
                     APR_NOTFOUND);
    ck_assert_int_eq(st->ops->pending_get(st, tpool, "tx-none", &out),
                     APR_NOTFOUND);
    ck_assert_int_eq(st->ops->pending_list(st, tpool, &recs), APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 1);
}
END_TEST

START_TEST(device_upsert)
{
    scep_device_rec_t in, *out;

    memset(&in, 0, sizeof(in));
    in.udid = "UDID-9";
    in.serial_number = "F2LXK";
    in.product = "iPhone3,1";
    in.last_seen = apr_time_from_sec(1000);
    ck_assert_int_eq(st->ops->device_upsert(st, tpool, &in), APR_SUCCESS);
    in.serial_number = NULL;
    in.cert_serial = "2A";
    in.last_seen = apr_time_from_sec(2000);
    ck_assert_int_eq(st->ops->device_upsert(st, tpool, &in), APR_SUCCESS);
    ck_assert_int_eq(st->ops->device_get(st, tpool, "UDID-9", &out),
                     APR_SUCCESS);
    ck_assert_pstr_eq(out->serial_number, "F2LXK");
    ck_assert_pstr_eq(out->product, "iPhone3,1");
    ck_assert_pstr_eq(out->cert_serial, "2A");
    ck_assert(out->last_seen == apr_time_from_sec(2000));
    ck_assert_int_eq(st->ops->device_get(st, tpool, "UDID-0", &out),
                     APR_NOTFOUND);
}
END_TEST

/* What a write lock saw: how often it was taken and given back, and
 * whether a second handle on the database saw the watched certificate
 * then (it must appear between the two). */
typedef struct {
    scep_store_t *other;
    const char *serial;
    apr_status_t answer;    /* what taking the lock returns */
    int taken, given, held, seen_taken, seen_given;
} lock_probe_t;

static int probe_sees(lock_probe_t *lp)
{
    scep_cert_rec_t *rec;

    return lp->serial && APR_SUCCESS == lp->other->ops->cert_by_serial(
               lp->other, tpool, lp->serial, &rec);
}

static apr_status_t probe_lock(void *baton)
{
    lock_probe_t *lp = baton;

    ck_assert_int_eq(lp->held, 0);
    ++lp->taken;
    lp->seen_taken += probe_sees(lp);
    lp->held = APR_SUCCESS == lp->answer;
    return lp->answer;
}

static apr_status_t probe_unlock(void *baton)
{
    lock_probe_t *lp = baton;

    ck_assert_int_eq(lp->held, 1);
    lp->held = 0;
    ++lp->given;
    lp->seen_given += probe_sees(lp);
    return APR_SUCCESS;
}

/* The lock is taken around each statement that writes, and only there:
 * a certificate's insert (while nobody else sees it yet), */
static void cert_insert_locked(lock_probe_t *lp)
{
    scep_cert_rec_t *out;

    ck_assert_int_eq(st->ops->cert_by_serial(st, tpool, "5A", &out),
                     APR_NOTFOUND);
    ck_assert_int_eq(lp->taken, 0);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, cert("5A", "tx-5",
                                                          "ab05")),
                     APR_SUCCESS);
    ck_assert_int_eq(lp->taken, 1);
    ck_assert_int_eq(lp->given, 1);
    ck_assert_int_eq(lp->seen_taken, 0);
    ck_assert_int_eq(lp->seen_given, 1);
    lp->serial = NULL;
}

/* not the reads, */
static void reads_unlocked(lock_probe_t *lp)
{
    scep_cert_rec_t *out;
    apr_array_header_t *recs;

    ck_assert_int_eq(st->ops->cert_by_transaction(st, tpool, "tx-5", "ab05",
                                                  &out), APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_by_key(st, tpool, "ab05", &out),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->key_compromised(st, tpool, "ab05"),
                     APR_NOTFOUND);
    ck_assert_int_eq(st->ops->cert_list(st, tpool, -1, &recs), APR_SUCCESS);
    ck_assert_int_eq(lp->taken, 1);
}

/* each challenge write once (a purge may come first), the exchange's two
 * statements once for both, */
static int challenge_writes_locked(lock_probe_t *lp)
{
    const char *bound;
    int before = lp->taken;

    ck_assert_int_eq(st->ops->challenge_add(st, tpool, "h5",
                                            SCEP_CHALLENGE_SCEP, NULL,
                                            apr_time_now()
                                            + apr_time_from_sec(60)),
                     APR_SUCCESS);
    ck_assert_int_ge(lp->taken, before + 1);
    before = lp->taken;
    ck_assert_int_eq(st->ops->challenge_peek(st, tpool, "h5",
                                             SCEP_CHALLENGE_SCEP, "r",
                                             &bound), APR_SUCCESS);
    ck_assert_int_eq(lp->taken, before);
    ck_assert_int_eq(st->ops->challenge_consume(st, tpool, "h5",
                                                SCEP_CHALLENGE_SCEP, "r",
                                                &bound), APR_SUCCESS);
    ck_assert_int_eq(lp->taken, before + 1);
    ck_assert_int_eq(st->ops->challenge_exchange(
                         st, tpool, "h5", SCEP_CHALLENGE_SCEP,
                         page_rec("h6", "r6", NULL, apr_time_now()
                                  + apr_time_from_sec(60))), APR_NOTFOUND);
    ck_assert_int_eq(lp->taken, before + 2);
    return before + 2;
}

/* and each write of a pending request or a device. */
static void pending_and_device_locked(lock_probe_t *lp, int before)
{
    scep_pending_rec_t pend, *pout;
    scep_device_rec_t dev, *dout;

    memset(&pend, 0, sizeof(pend));
    pend.transaction_id = "tx-p5";
    pend.state = SCEP_PENDING_WAITING;
    ck_assert_int_eq(st->ops->pending_put(st, tpool, &pend), APR_SUCCESS);
    ck_assert_int_eq(st->ops->pending_get(st, tpool, "tx-p5", &pout),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->pending_set_state(st, tpool, "tx-p5",
                                                SCEP_PENDING_REJECTED, NULL),
                     APR_SUCCESS);
    memset(&dev, 0, sizeof(dev));
    dev.udid = "UDID-5";
    ck_assert_int_eq(st->ops->device_upsert(st, tpool, &dev), APR_SUCCESS);
    ck_assert_int_eq(st->ops->device_get(st, tpool, "UDID-5", &dout),
                     APR_SUCCESS);
    ck_assert_int_eq(lp->taken, before + 3);
    ck_assert_int_eq(lp->given, lp->taken);
}

START_TEST(write_lock_around_writes)
{
    lock_probe_t lp;
    scep_cert_rec_t *out;
    int before;

    memset(&lp, 0, sizeof(lp));
    lp.other = open_store();
    lp.serial = "5A";
    scep_store_dbd_write_lock(st, probe_lock, probe_unlock, &lp);
    cert_insert_locked(&lp);
    reads_unlocked(&lp);
    ck_assert_int_eq(st->ops->cert_revoke(st, tpool, "5A", 1,
                                          apr_time_now()), APR_SUCCESS);
    ck_assert_int_eq(lp.taken, 2);
    before = challenge_writes_locked(&lp);
    pending_and_device_locked(&lp, before);
    /* a lock that cannot be taken does not stop the write */
    lp.answer = APR_EGENERAL;
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, cert("5B", "tx-6",
                                                          "ab06")),
                     APR_SUCCESS);
    ck_assert_int_eq(lp.taken, before + 4);
    ck_assert_int_eq(lp.given, before + 3);
    ck_assert_int_eq(st->ops->cert_by_serial(st, tpool, "5B", &out),
                     APR_SUCCESS);
}
END_TEST

/* A write lock that is slow to give back, as an fsync is: the writes the
 * threads queue meanwhile go in together. */
typedef struct {
    apr_thread_mutex_t *mutex;
    int taken;
} slow_lock_t;

static apr_status_t slow_lock(void *baton)
{
    slow_lock_t *sl = baton;

    apr_thread_mutex_lock(sl->mutex);
    ++sl->taken;
    return APR_SUCCESS;
}

static apr_status_t slow_unlock(void *baton)
{
    slow_lock_t *sl = baton;

    apr_sleep(apr_time_from_msec(5));
    return apr_thread_mutex_unlock(sl->mutex);
}

/* The database itself refuses to record that serial (a failure of the
 * statement, as a full disk would be, not a clash). */
static void refuse_serial(const char *serial)
{
    scep_dbd_conn_t *conn;
    const char *driver, *params, *err = NULL;
    int nrows;

    ck_assert_int_eq(scep_store_uri_parse(tpool, store_uri, &driver, &params,
                                          &err), APR_SUCCESS);
    ck_assert_int_eq(scep_dbd_connect(tpool, driver, params, &conn, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(apr_dbd_query(conn->driver, conn->handle, &nrows,
                                   apr_psprintf(tpool,
                                       "CREATE TRIGGER refuse BEFORE INSERT "
                                       "ON certificates WHEN NEW.serial = "
                                       "'%s' BEGIN SELECT RAISE(ABORT, "
                                       "'refused'); END", serial)), 0);
    scep_dbd_disconnect(conn);
}

#define GROUP_THREADS 8
#define GROUP_WRITES 12

typedef struct {
    apr_pool_t *p;
    scep_cert_rec_t *recs[GROUP_WRITES + 1];  /* the last one is shared */
    apr_status_t rv[GROUP_WRITES + 1];
} writer_t;

static void *APR_THREAD_FUNC write_all(apr_thread_t *t, void *data)
{
    writer_t *w = data;
    int i;

    for (i = 0; i <= GROUP_WRITES; ++i) {
        w->rv[i] = st->ops->cert_insert(st, w->p, w->recs[i]);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Threads that write at once are committed in groups: every write is
 * there and answered as if alone (the shared serial once, the one the
 * database refuses refused and no other), in fewer turns of the lock
 * than writes. */
START_TEST(group_commit_under_contention)
{
    apr_thread_t *threads[GROUP_THREADS];
    writer_t w[GROUP_THREADS];
    slow_lock_t sl;
    apr_array_header_t *recs;
    apr_status_t trv;
    int i, j, shared = 0;
    char serial[16];

    memset(&sl, 0, sizeof(sl));
    ck_assert_int_eq(apr_thread_mutex_create(&sl.mutex,
                                             APR_THREAD_MUTEX_DEFAULT, tpool),
                     APR_SUCCESS);
    scep_store_dbd_write_lock(st, slow_lock, slow_unlock, &sl);
    for (i = 0; i < GROUP_THREADS; ++i) {
        apr_pool_create(&w[i].p, tpool);
        for (j = 0; j < GROUP_WRITES; ++j) {
            apr_snprintf(serial, sizeof(serial), "6%X%02X", i, j);
            w[i].recs[j] = cert(apr_pstrdup(tpool, serial), NULL, NULL);
        }
        w[i].recs[GROUP_WRITES] = cert("6FFFF", NULL, NULL);
    }
    refuse_serial("6005");
    for (i = 0; i < GROUP_THREADS; ++i) {
        ck_assert_int_eq(apr_thread_create(&threads[i], NULL, write_all,
                                           &w[i], tpool), APR_SUCCESS);
    }
    for (i = 0; i < GROUP_THREADS; ++i) {
        apr_thread_join(&trv, threads[i]);
        for (j = 0; j < GROUP_WRITES; ++j) {
            ck_assert_int_eq(w[i].rv[j], i == 0 && j == 5 ? APR_EGENERAL
                                                          : APR_SUCCESS);
        }
        if (w[i].rv[GROUP_WRITES] == APR_SUCCESS) {
            ++shared;
        }
        else {
            ck_assert_int_eq(w[i].rv[GROUP_WRITES], APR_EEXIST);
        }
    }
    ck_assert_int_eq(shared, 1);
    ck_assert_int_eq(st->ops->cert_list(st, tpool, -1, &recs), APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, GROUP_THREADS * GROUP_WRITES);
    ck_assert_int_lt(sl.taken, GROUP_THREADS * (GROUP_WRITES + 1) / 2);
}
END_TEST

/* SQLite's plan for a statement of the store: its detail lines. */
static const char *sqlite_plan(const char *label)
{
    static const char *args[] = { "a", "b", "c", "d", "e", "f" };
    const char *sql = scep_store_dbd_sql(label), *driver, *params;
    const char *err = NULL, *plan = "";
    scep_dbd_conn_t *conn;
    apr_dbd_prepared_t *stmt = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_pool_t *sp;
    int n = 0;
    const char *c;

    ck_assert_msg(sql != NULL, "no statement %s", label);
    for (c = sql; (c = strchr(c, '%')); ++c) {
        ++n;
    }
    ck_assert_int_eq(scep_store_uri_parse(tpool, store_uri, &driver, &params,
                                          &err), APR_SUCCESS);
    ck_assert_int_eq(scep_dbd_connect(tpool, driver, params, &conn, &err),
                     APR_SUCCESS);
    apr_pool_create(&sp, tpool);
    ck_assert_int_eq(apr_dbd_prepare(conn->driver, sp, conn->handle,
                                     apr_pstrcat(sp, "EXPLAIN QUERY PLAN ",
                                                 sql, NULL), NULL, &stmt),
                     0);
    ck_assert_int_eq(apr_dbd_pselect(conn->driver, sp, conn->handle, &res,
                                     stmt, 0, n, args), 0);
    while (!apr_dbd_get_row(conn->driver, sp, res, &row, -1)) {
        plan = apr_pstrcat(tpool, plan, apr_dbd_get_entry(conn->driver, row,
                                                          3), "; ", NULL);
    }
    apr_pool_destroy(sp);
    scep_dbd_disconnect(conn);
    return plan;
}

/* Lookups of one record go through the index of what names it, never
 * through every certificate of the CA (SQLite has no statistics to tell
 * a key from a CA). */
START_TEST(sqlite_lookups_use_their_index)
{
    static const struct {
        const char *label, *index;
    } want[] = {
        { "scep_ota_cert_by_key2", "INDEX certificates_key (key_hash=?)" },
        { "scep_ota_key_compromised", "INDEX certificates_key (key_hash=?)" },
        { "scep_ota_cert_by_txid2", "INDEX certificates_issuance (ca=? AND "
                                    "transaction_id=? AND key_hash=?)" },
        { "scep_ota_cert_by_origin", "INDEX certificates_origin (ca=? AND "
                                     "origin=?)" },
        { "scep_ota_cert_by_serial2", "(serial=?)" },
        { "scep_ota_cert_by_udid", "INDEX certificates_udid (ca=? AND "
                                   "udid=?)" },
        /* counted at every CRL request, from the revoked alone */
        { "scep_ota_revocation_mark", "COVERING INDEX certificates_revoked "
                                      "(ca=? AND status=?)" },
        { "scep_ota_crl_latest", "INDEX sqlite_autoindex_crls_1 (ca=?)" },
    };
    const char *plan;
    apr_size_t i;

    for (i = 0; i < sizeof(want) / sizeof(want[0]); ++i) {
        plan = sqlite_plan(want[i].label);
        ck_assert_msg(strstr(plan, want[i].index) != NULL, "%s: %s",
                      want[i].label, plan);
    }
}
END_TEST

START_TEST(schema_reopen)
{
    const char *driver, *params, *err = NULL;
    scep_dbd_conn_t *conn;
    scep_cert_rec_t *out;
    scep_store_t *again;
    int version = -1;

    ck_assert_int_eq(st->ops->cert_insert(st, tpool, cert("0D", "t", "k")),
                     APR_SUCCESS);
    ck_assert_int_eq(scep_store_uri_parse(tpool, store_uri, &driver,
                                          &params, &err), APR_SUCCESS);
    ck_assert_int_eq(scep_dbd_connect(tpool, driver, params, &conn, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(scep_dbd_migrate(conn, tpool, NULL, &version, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(version, SCEP_STORE_SCHEMA_VERSION);
    scep_dbd_disconnect(conn);
    again = open_store();
    ck_assert_int_eq(again->ops->cert_by_serial(again, tpool, "0D", &out),
                     APR_SUCCESS);
}
END_TEST

START_TEST(schema_newer_refused)
{
    const char *driver, *params, *err = NULL;
    scep_dbd_conn_t *conn;
    int nrows;

    ck_assert_int_eq(scep_store_uri_parse(tpool, store_uri, &driver,
                                          &params, &err), APR_SUCCESS);
    ck_assert_int_eq(scep_dbd_connect(tpool, driver, params, &conn, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(apr_dbd_query(conn->driver, conn->handle, &nrows,
                                   "UPDATE scep_schema SET version = 99"), 0);
    ck_assert_int_eq(scep_dbd_migrate(conn, tpool, NULL, NULL, &err),
                     APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "newer"));
    scep_dbd_disconnect(conn);
}
END_TEST

START_TEST(uri_parse)
{
    const char *driver, *params, *err;

    ck_assert_int_eq(scep_store_uri_parse(tpool, "sqlite3:/x/y.db", &driver,
                                          &params, &err), APR_SUCCESS);
    ck_assert_str_eq(driver, "sqlite3");
    ck_assert_str_eq(params, "/x/y.db");
    ck_assert_int_eq(scep_store_uri_parse(tpool, "pgsql:host=h dbname=d",
                                          &driver, &params, &err),
                     APR_SUCCESS);
    ck_assert_str_eq(driver, "pgsql");
    ck_assert_str_eq(params, "host=h dbname=d");
    ck_assert_int_eq(scep_store_uri_parse(tpool, "dbd", &driver, &params,
                                          &err), APR_SUCCESS);
    ck_assert_str_eq(driver, "dbd");
    ck_assert_ptr_null(params);
    ck_assert_int_eq(scep_store_uri_parse(tpool, "mysql:x", &driver,
                                          &params, &err), APR_EINVAL);
    ck_assert_int_eq(scep_store_uri_parse(tpool, "/plain/path", &driver,
                                          &params, &err), APR_EINVAL);
    ck_assert_int_eq(scep_store_uri_parse(tpool, "sqlite3:", &driver,
                                          &params, &err), APR_EINVAL);
}
END_TEST

static TCase *store_tcase(const char *name, void (*setup)(void))
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, setup, store_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, cert_insert_and_find);
    tcase_add_test(tc, cert_serial_unique);
    tcase_add_test(tc, cert_issuance_unique);
    tcase_add_test(tc, cert_retry_is_idempotent);
    tcase_add_test(tc, cert_revoke);
    tcase_add_test(tc, cert_list_filters);
    tcase_add_test(tc, cert_by_udid_finds_the_device);
    tcase_add_test(tc, cert_origin_unique);
    tcase_add_test(tc, cas_apart);
    tcase_add_test(tc, challenge_once);
    tcase_add_test(tc, challenge_unbound_and_expired);
    tcase_add_test(tc, challenge_purge);
    tcase_add_test(tc, challenge_race);
    tcase_add_test(tc, challenge_race_processes);
    tcase_add_test(tc, challenge_issue_limit);
    tcase_add_test(tc, challenge_exchange_both_or_neither);
    tcase_add_test(tc, challenge_list_find_revoke);
    tcase_add_test(tc, pending_lifecycle);
    tcase_add_test(tc, device_upsert);
    tcase_add_test(tc, write_lock_around_writes);
    tcase_add_test(tc, schema_reopen);
    tcase_add_test(tc, schema_newer_refused);
    return tc;
}

static void memory_setup(void)
{
    tpool_setup();
    store_uri = NULL;
    st = scep_store_memory_create(tpool);
}

/* The in-memory store keeps the same promises about challenges. */
static TCase *memory_tcase(void)
{
    TCase *tc = tcase_create("store-memory");

    tcase_add_checked_fixture(tc, memory_setup, store_teardown);
    tcase_add_test(tc, cert_by_udid_finds_the_device);
    tcase_add_test(tc, challenge_once);
    tcase_add_test(tc, challenge_unbound_and_expired);
    tcase_add_test(tc, challenge_race);
    tcase_add_test(tc, challenge_issue_limit);
    tcase_add_test(tc, challenge_exchange_both_or_neither);
    tcase_add_test(tc, challenge_list_find_revoke);
    return tc;
}

Suite *suite_store(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store-uri");

    tcase_add_checked_fixture(tc, tpool_setup, tpool_teardown);
    tcase_add_test(tc, uri_parse);
    suite_add_tcase(s, tc);
    tc = store_tcase("store-sqlite3", sqlite_setup);
    tcase_add_test(tc, sqlite_lookups_use_their_index);
    tcase_add_test(tc, group_commit_under_contention);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, memory_tcase());
    if (getenv("SCEP_TEST_PGSQL") && *getenv("SCEP_TEST_PGSQL")) {
        suite_add_tcase(s, store_tcase("store-pgsql", pgsql_setup));
    }
    return s;
}
