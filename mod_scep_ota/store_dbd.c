/* The store over APR DBD: every operation of scep_store_ops_t as one
 * prepared statement (two for a consume or a revoke that must tell why
 * nothing matched) on a connection lent by a provider. The SQL is the
 * same for sqlite3 and pgsql; uniqueness is the database's job
 * (ON CONFLICT DO NOTHING, then nrows tells a clash from an insert). */

#include <stdlib.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_base64.h>
#include <apr_atomic.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "scep_ota/scep_store_dbd.h"

typedef struct group_t group_t;

typedef struct {
    apr_pool_t *pool;
    const scep_dbd_provider_t *prov;
    const scep_logger_t *log;
    volatile apr_uint32_t last_purge;   /* seconds; see purge_if_due */
    scep_dbd_lock_fn *lock;             /* around writes, or NULL */
    scep_dbd_lock_fn *unlock;
    void *lock_baton;
    group_t *group;                     /* writes committed together, or
                                         * NULL: each on its own */
} dbd_store_t;

/* ------------------------------------------------------------------ */
/* the statements                                                       */

typedef enum {
    Q_CERT_INSERT, Q_CERT_BY_SERIAL, Q_CERT_BY_TXID, Q_CERT_BY_KEY,
    Q_CERT_BY_ORIGIN, Q_KEY_COMPROMISED, Q_CERT_LIST_ALL, Q_CERT_LIST_STATUS,
    Q_CERT_REVOKE, Q_CERT_SUPERSEDE, Q_CERT_BY_UDID,
    Q_CHAL_ADD, Q_CHAL_PEEK, Q_CHAL_CONSUME, Q_CHAL_BOUND, Q_CHAL_PURGE,
    Q_CHAL_ISSUE, Q_CHAL_COUNT, Q_CHAL_FIND, Q_CHAL_LIST_ALL,
    Q_CHAL_LIST_USER, Q_CHAL_REVOKE_REF, Q_CHAL_REVOKE_USER,
    Q_PEND_PUT, Q_PEND_GET, Q_PEND_STATE, Q_PEND_LIST,
    Q_DEV_UPSERT, Q_DEV_GET,
    Q_REVOCATION_MARK, Q_CRL_LATEST, Q_CRL_GET, Q_CRL_PUBLISH, Q_CRL_PRUNE,
    Q_COUNT
} query_t;

/* Every statement but the purge and keyCompromise names the CA first:
 * a record belongs to one CA, and another CA sharing the store never
 * finds it. */
#define CERT_COLS "SELECT serial, subject, transaction_id, key_hash," \
    " not_before, not_after, status, revoked_at, reason, der, origin," \
    " request_txid, udid, enrolled_by, superseded_by FROM certificates"
#define PEND_COLS "SELECT transaction_id, subject, key_hash, state," \
    " created, csr, requester, cert_serial, plan FROM pending"
#define CHAL_COLS "SELECT ref, purpose, bound_to, created_by, via, created," \
    " expires, consumed, revoked FROM challenges"
/* unused, unrevoked, unexpired (the time follows) */
#define CHAL_OUTSTANDING "consumed = 0 AND revoked = 0 AND expires > %lld"

/* Labels name server-side prepared statements (PostgreSQL) on connections
 * that mod_dbd may share with other modules: keep the prefix. */
static const struct {
    const char *label;
    const char *sql;
} queries[Q_COUNT] = {
    { "scep_ota_cert_insert2",
      "INSERT INTO certificates (ca, serial, subject, transaction_id,"
      " key_hash, not_before, not_after, status, revoked_at, reason,"
      " issued_at, der, origin, request_txid, udid, enrolled_by)"
      " VALUES (%s, %s, %s, %s, %s, %lld, %lld, %d, %lld, %d, %lld, %s, %s,"
      " %s, %s, %s) ON CONFLICT DO NOTHING" },
    { "scep_ota_cert_by_serial2", CERT_COLS " WHERE ca = %s AND serial = %s" },
    { "scep_ota_cert_by_txid2",
      CERT_COLS " WHERE ca = %s AND transaction_id = %s AND key_hash = %s" },
    /* by the key's index: a key has a certificate or two, a CA has them
     * all. Without statistics SQLite takes (ca, status) for two equalities
     * against one and reads every valid certificate of the CA; "ca || ''"
     * (the same value on both drivers) is no index column. */
    { "scep_ota_cert_by_key2",
      CERT_COLS " WHERE ca || '' = %s AND key_hash = %s AND status = 0"
      " ORDER BY not_before DESC, issued_at DESC LIMIT 1" },
    { "scep_ota_cert_by_origin",
      CERT_COLS " WHERE ca = %s AND origin = %s" },
    /* a compromised key is compromised for every CA */
    { "scep_ota_key_compromised",
      "SELECT serial FROM certificates WHERE key_hash = %s AND status = 1"
      " AND reason = 1 LIMIT 1" },
    { "scep_ota_cert_list_all2",
      CERT_COLS " WHERE ca = %s ORDER BY issued_at, serial" },
    { "scep_ota_cert_list_status2",
      CERT_COLS " WHERE ca = %s AND status = %d ORDER BY issued_at, serial" },
    { "scep_ota_cert_revoke2",
      "UPDATE certificates SET status = 1, revoked_at = %lld, reason = %d"
      " WHERE ca = %s AND serial = %s AND status = 0" },
    { "scep_ota_cert_supersede",
      "UPDATE certificates SET superseded_by = %s"
      " WHERE ca = %s AND serial = %s" },
    { "scep_ota_cert_by_udid",
      CERT_COLS " WHERE ca = %s AND udid = %s AND status = 0"
      " ORDER BY issued_at, serial" },
    { "scep_ota_chal_add2",
      "INSERT INTO challenges (ca, hash, purpose, bound_to, expires,"
      " consumed, created) VALUES (%s, %s, %d, %s, %lld, 0, %lld)"
      " ON CONFLICT DO NOTHING" },
    { "scep_ota_chal_peek2",
      "SELECT bound_to FROM challenges WHERE ca = %s AND hash = %s"
      " AND purpose = %d AND expires > %lld AND revoked = 0"
      " AND (consumed = 0 OR consumed_by = %s)" },
    /* the one statement that decides who gets a challenge: of any number
     * of racers one changes the row, and only its own retry may again */
    { "scep_ota_chal_consume3",
      "UPDATE challenges SET consumed = 1, consumed_by = %s"
      " WHERE ca = %s AND hash = %s AND purpose = %d AND expires > %lld"
      " AND revoked = 0 AND (consumed = 0 OR consumed_by = %s)" },
    { "scep_ota_chal_bound2",
      "SELECT bound_to FROM challenges WHERE ca = %s AND hash = %s" },
    { "scep_ota_chal_purge",
      "DELETE FROM challenges WHERE expires < %lld" },
    /* the insert and the count of the creator's outstanding challenges
     * in one statement (SQLite runs it under its write lock; two nodes
     * racing on PostgreSQL may each pass a count taken before the other's
     * insert). The limit is cast: apr_dbd's sqlite3 driver binds every
     * value as text, and SQLite compares a number with text as smaller
     * unless a column's affinity converts it. */
    { "scep_ota_chal_issue",
      "INSERT INTO challenges (ca, hash, purpose, bound_to, expires,"
      " consumed, created, ref, created_by, via, revoked)"
      " SELECT %s, %s, %d, %s, %lld, 0, %lld, %s, %s, %s, 0"
      " WHERE CAST(%d AS INTEGER) <= 0 OR (SELECT COUNT(*) FROM challenges"
      " WHERE ca = %s AND created_by = %s AND via = %s AND "
      CHAL_OUTSTANDING ") < CAST(%d AS INTEGER) ON CONFLICT DO NOTHING" },
    { "scep_ota_chal_count",
      "SELECT COUNT(*) FROM challenges WHERE ca = %s AND created_by = %s"
      " AND via = %s AND " CHAL_OUTSTANDING },
    { "scep_ota_chal_find", CHAL_COLS " WHERE ca = %s AND hash = %s" },
    { "scep_ota_chal_list_all",
      CHAL_COLS " WHERE ca = %s AND " CHAL_OUTSTANDING
      " ORDER BY COALESCE(created_by, ''), created, ref" },
    { "scep_ota_chal_list_user",
      CHAL_COLS " WHERE ca = %s AND created_by = %s AND " CHAL_OUTSTANDING
      " ORDER BY created, ref" },
    { "scep_ota_chal_revoke_ref",
      "UPDATE challenges SET revoked = 1"
      " WHERE ca = %s AND ref = %s AND " CHAL_OUTSTANDING },
    { "scep_ota_chal_revoke_user",
      "UPDATE challenges SET revoked = 1"
      " WHERE ca = %s AND created_by = %s AND " CHAL_OUTSTANDING },
    { "scep_ota_pend_put2",
      "INSERT INTO pending (ca, transaction_id, subject, key_hash, state,"
      " created, csr, requester, cert_serial, plan)"
      " VALUES (%s, %s, %s, %s, %d, %lld, %s, %s, %s, %s)"
      " ON CONFLICT DO NOTHING" },
    { "scep_ota_pend_get2",
      PEND_COLS " WHERE ca = %s AND transaction_id = %s" },
    { "scep_ota_pend_state2",
      "UPDATE pending SET state = %d, cert_serial = COALESCE(%s, cert_serial)"
      " WHERE ca = %s AND transaction_id = %s" },
    { "scep_ota_pend_list2",
      PEND_COLS " WHERE ca = %s ORDER BY created, transaction_id" },
    { "scep_ota_dev_upsert2",
      "INSERT INTO devices (ca, udid, serial_number, product, cert_serial,"
      " last_seen, enrolled_by) VALUES (%s, %s, %s, %s, %s, %lld, %s)"
      " ON CONFLICT (ca, udid) DO UPDATE SET"
      " serial_number = COALESCE(excluded.serial_number,"
      " devices.serial_number),"
      " product = COALESCE(excluded.product, devices.product),"
      " cert_serial = COALESCE(excluded.cert_serial, devices.cert_serial),"
      " last_seen = excluded.last_seen,"
      " enrolled_by = COALESCE(excluded.enrolled_by, devices.enrolled_by)" },
    { "scep_ota_dev_get2",
      "SELECT udid, serial_number, product, cert_serial, last_seen,"
      " enrolled_by FROM devices WHERE ca = %s AND udid = %s" },
    /* "status = 1" as written: the partial index certificates_revoked */
    { "scep_ota_revocation_mark",
      "SELECT COUNT(*), COALESCE(MAX(revoked_at), 0) FROM certificates"
      " WHERE ca = %s AND status = 1" },
    { "scep_ota_crl_latest",
      "SELECT number, this_update, next_update, revocations FROM crls"
      " WHERE ca = %s ORDER BY number DESC LIMIT 1" },
    { "scep_ota_crl_get",
      "SELECT number, this_update, next_update, revocations, der FROM crls"
      " WHERE ca = %s AND number = %lld" },
    { "scep_ota_crl_publish",
      "INSERT INTO crls (ca, number, this_update, next_update, revocations,"
      " der) VALUES (%s, %lld, %lld, %lld, %s, %s) ON CONFLICT DO NOTHING" },
    { "scep_ota_crl_prune",
      "DELETE FROM crls WHERE ca = %s AND number < %lld" },
};

/* ------------------------------------------------------------------ */
/* one operation: a connection, its statements, its failures            */

typedef struct {
    dbd_store_t *ds;
    scep_dbd_conn_t *conn;   /* NULL once given back */
    apr_pool_t *p;
    scep_dbd_state_t state;
    int renewed;             /* the connection was replaced once already */
    const char *why;         /* the driver's message of the last failure */
} op_t;

static apr_status_t op_acquire(op_t *op)
{
    apr_status_t rv;

    op->conn = NULL;
    op->state = SCEP_DBD_OK;
    rv = op->ds->prov->acquire(op->ds->prov->baton, op->p, &op->conn);
    if (APR_SUCCESS != rv || !op->conn) {
        op->conn = NULL;
        scep_log_perror(op->ds->log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, op->p,
                        SCEPLOGNO(4010) "store: no database connection");
        return APR_SUCCESS != rv ? rv : APR_EGENERAL;
    }
    return APR_SUCCESS;
}

static apr_status_t op_begin(op_t *op, scep_store_t *st, apr_pool_t *p)
{
    op->ds = st->backend;
    op->p = p;
    op->renewed = 0;
    op->why = NULL;
    return op_acquire(op);
}

static void op_end(op_t *op)
{
    if (op->conn) {
        op->ds->prov->release(op->ds->prov->baton, op->conn, op->state);
        op->conn = NULL;
    }
}

/* The driver's message for the failure just seen, copied (the next call
 * on the connection replaces it) on one line: pgsql's may hold several. */
static const char *driver_error(op_t *op, int rc)
{
    const char *e = apr_dbd_error(op->conn->driver, op->conn->handle, rc);
    char *out = apr_pstrdup(op->p, e ? e : ""), *r, *w;

    for (r = w = out; *r; ++r) {
        if (!apr_isspace(*r)) {
            *w++ = *r;
        }
        else if (w > out && w[-1] != ' ') {
            *w++ = ' ';
        }
    }
    while (w > out && w[-1] == ' ') {
        --w;
    }
    *w = '\0';
    return *out ? out : "unknown error";
}

/*
 * Whether q may run a second time when the fate of its first run is
 * unknown: the connection was lost after the statement left, and the
 * server may have executed and committed it before the loss. Reads may,
 * and writes whose second run leaves the rows as the first left them and
 * reports the same; a statement named here must stay so.
 * Not the INSERTs with ON CONFLICT DO NOTHING, the consume or the revoke:
 * after a first run that committed, the second would report our own row
 * as "exists" or "nothing matched". For cert_insert the caller would cope
 * when the certificate records a transactionID (on "exists" it looks the
 * transaction up and answers with the recorded certificate), but a
 * renewal that records none would issue a second certificate, and a
 * consumed challenge would be refused to the client that just used it.
 * Those fail instead; the client's retry then finds what a committed
 * first run recorded. Any statement runs again when it never left
 * (preparing it failed).
 */
static int repeatable(query_t q)
{
    switch (q) {
    case Q_PEND_STATE:           /* sets fixed values */
    case Q_DEV_UPSERT:           /* the same values again */
    case Q_CHAL_PURGE:           /* nobody reads its count */
    case Q_CRL_PRUNE:
        return 1;
    default:
        return !strncmp(queries[q].sql, "SELECT ", 7);
    }
}

/* What was sent on the connection failed. If the server still answers,
 * it is the failure of what was sent (label). Otherwise the connection is
 * lost: the provider must not lend it again as it is, and what was sent
 * runs once more on another connection when it may (may_repeat). Returns
 * 1 to run it again. */
static int conn_failed(op_t *op, const char *label, const char *why,
                       int may_repeat)
{
    int again;

    if (scep_dbd_alive(op->conn, op->p)) {
        op->state = SCEP_DBD_FAILED;
        scep_log_perror(op->ds->log, SCEP_LOG_MARK, SCEP_LOG_ERR, 0, op->p,
                        SCEPLOGNO(4011) "store: %s failed: %s", label, why);
        return 0;
    }
    op->state = SCEP_DBD_LOST;
    again = !op->renewed && may_repeat;
    scep_log_perror(op->ds->log, SCEP_LOG_MARK,
                    again ? SCEP_LOG_WARNING : SCEP_LOG_ERR, 0, op->p,
                    SCEPLOGNO(4050) "store: the connection to the database "
                    "was lost (%s: %s)%s", label, why,
                    again ? "; running it again on another connection"
                    : (op->renewed ? ""
                       : "; not run again, as it may have taken effect"));
    if (!again) {
        return 0;
    }
    op->renewed = 1;
    op_end(op);
    return APR_SUCCESS == op_acquire(op);
}

/* A statement failed (sent: it reached the server). */
static int op_failed(op_t *op, query_t q, const char *why, int sent)
{
    return conn_failed(op, queries[q].label, why, !sent || repeatable(q));
}

/* The statement prepared on this connection's session, prepared once per
 * session and kept with it. */
static int prepared(op_t *op, query_t q, apr_dbd_prepared_t **stmt)
{
    scep_dbd_conn_t *c = op->conn;
    int rc;

    *stmt = apr_hash_get(c->prepared, queries[q].label, APR_HASH_KEY_STRING);
    if (*stmt) {
        return 0;
    }
    rc = apr_dbd_prepare(c->driver, c->pool, c->handle, queries[q].sql,
                         queries[q].label, stmt);
    if (rc) {
        op->why = driver_error(op, rc);
        /* the session may hold the label from before its provider set it
         * up anew (after a failure on a connection that answers) */
        if (APR_SUCCESS == scep_dbd_unprepare(c, op->p, queries[q].label)) {
            rc = apr_dbd_prepare(c->driver, c->pool, c->handle,
                                 queries[q].sql, queries[q].label, stmt);
        }
    }
    if (rc) {
        *stmt = NULL;
        return rc;
    }
    apr_hash_set(c->prepared, queries[q].label, APR_HASH_KEY_STRING, *stmt);
    return 0;
}

/* 1 when the write lock is held now. Without it the write still runs:
 * the database serializes writers itself, only less smoothly. */
static int op_lock(op_t *op)
{
    dbd_store_t *ds = op->ds;
    apr_status_t rv;

    if (!ds->lock) {
        return 0;
    }
    if (APR_SUCCESS != (rv = ds->lock(ds->lock_baton))) {
        scep_log_perror(ds->log, SCEP_LOG_MARK, SCEP_LOG_WARNING, rv, op->p,
                        SCEPLOGNO(4090) "store: cannot take the write lock; "
                        "writing without it");
        return 0;
    }
    return 1;
}

static void op_unlock(op_t *op, int locked)
{
    dbd_store_t *ds = op->ds;
    apr_status_t rv;

    if (locked && APR_SUCCESS != (rv = ds->unlock(ds->lock_baton))) {
        scep_log_perror(ds->log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, op->p,
                        SCEPLOGNO(4091) "store: cannot give back the write "
                        "lock");
    }
}

/* Runs q: its rows into *res when res is not NULL, else the count of rows
 * it changed into *nrows (a write: under the write lock unless the caller
 * holds it, one statement is one transaction). */
static apr_status_t op_run_now(op_t *op, query_t q, const char **args,
                               int nargs, int *nrows, apr_dbd_results_t **res,
                               int take_lock)
{
    apr_dbd_prepared_t *stmt;
    int rc, locked;

    for (;;) {
        if (nrows) {
            *nrows = 0;
        }
        if (res) {
            *res = NULL;
        }
        if (!op->conn) {
            return APR_EGENERAL;   /* a new one could not be had */
        }
        if ((rc = prepared(op, q, &stmt))) {
            if (!op_failed(op, q, op->why, 0)) {
                return APR_EGENERAL;
            }
            continue;
        }
        if (res) {
            rc = apr_dbd_pselect(op->conn->driver, op->p, op->conn->handle,
                                 res, stmt, 1, nargs, args);
        }
        else {
            locked = take_lock && op_lock(op);
            rc = apr_dbd_pquery(op->conn->driver, op->p, op->conn->handle,
                                nrows, stmt, nargs, args);
            op_unlock(op, locked);
        }
        if (!rc) {
            return APR_SUCCESS;
        }
        if (!op_failed(op, q, driver_error(op, rc), 1)) {
            return APR_EGENERAL;
        }
    }
}

/* ------------------------------------------------------------------ */
/* group commit                                                         */

/*
 * With a write lock (SQLite), every commit pays an fsync while the other
 * writers of every process wait for the lock. The writes that the threads
 * of one process queue meanwhile are run by one of them, the leader, in
 * one transaction with one commit: one fsync for the lot. A thread whose
 * write was in it returns only after that commit, so a certificate is on
 * disk before its CertRep leaves, as without grouping. Every statement
 * sees the rows of those run before it, as when run one by one. If any
 * statement of a group fails, or the commit does, the group is rolled
 * back and each statement runs again on its own, so that a failure
 * belongs to the statement that caused it and to no other.
 */
typedef struct entry_t {
    struct entry_t *next;
    query_t q;
    const char **args;
    int nargs;
    int nrows;
    apr_status_t rv;
    int done;
} entry_t;

struct group_t {
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
#endif
    entry_t *head, **tail;
    int leading;                 /* a thread runs a group now */
};

/* 1 when sql ran; else op->why says why */
static int sql_ok(op_t *op, const char *sql)
{
    int nrows = 0;
    int rc = apr_dbd_query(op->conn->driver, op->conn->handle, &nrows, sql);

    if (rc) {
        op->why = apr_pstrcat(op->p, sql, ": ", driver_error(op, rc), NULL);
    }
    return !rc;
}

/* 1 when no transaction is open on the connection: a BEGIN succeeds (and
 * is ended at once). */
static int no_transaction(op_t *op)
{
    if (!sql_ok(op, "BEGIN")) {
        return 0;
    }
    sql_ok(op, "ROLLBACK");
    return 1;
}

/* The group in one transaction: 1 committed; 0 rolled back; -1 when the
 * transaction may still be open (the connection must go: it may hold
 * SQLite's write lock). */
static int run_together(op_t *op, entry_t *batch)
{
    apr_dbd_prepared_t *stmt;
    entry_t *e;

    if (!sql_ok(op, "BEGIN IMMEDIATE")) {
        return 0;
    }
    for (e = batch; e; e = e->next) {
        if (prepared(op, e->q, &stmt)
            || apr_dbd_pquery(op->conn->driver, op->p, op->conn->handle,
                              &e->nrows, stmt, e->nargs, e->args)) {
            break;
        }
        e->rv = APR_SUCCESS;
    }
    if (!e && sql_ok(op, "COMMIT")) {
        return 1;
    }
    return sql_ok(op, "ROLLBACK") || no_transaction(op) ? 0 : -1;
}

/* After a group was rolled back, each statement on its own, each with the
 * one retry on a new connection it would have had alone; none when the
 * transaction could not be ended. */
static void run_each(op_t *op, entry_t *batch, int ended)
{
    int renewed = op->renewed;
    entry_t *e;

    if (!ended) {
        op->state = SCEP_DBD_LOST;
        op_end(op);
        op_acquire(op);
    }
    for (e = batch; e; e = e->next) {
        op->renewed = 0;
        e->rv = ended && op->conn
                ? op_run_now(op, e->q, e->args, e->nargs, &e->nrows, NULL, 0)
                : APR_EGENERAL;
    }
    op->renewed = renewed;
}

static void run_group(op_t *op, entry_t *batch)
{
    int r = 0;

    /* PostgreSQL groups the commits of its sessions itself */
    if (batch->next && op->conn
        && !strcmp(apr_dbd_name(op->conn->driver), "sqlite3")) {
        r = run_together(op, batch);
    }
    if (r <= 0) {
        run_each(op, batch, r == 0);
    }
}

#if APR_HAS_THREADS
/* Called and returns with g->mutex held; runs what is queued. */
static void lead(op_t *op, group_t *g)
{
    entry_t *batch, *e;
    int locked;

    g->leading = 1;
    apr_thread_mutex_unlock(g->mutex);
    locked = op_lock(op);
    apr_thread_mutex_lock(g->mutex);
    batch = g->head;
    g->head = NULL;
    g->tail = &g->head;
    apr_thread_mutex_unlock(g->mutex);
    run_group(op, batch);
    op_unlock(op, locked);
    apr_thread_mutex_lock(g->mutex);
    for (e = batch; e; e = e->next) {
        e->done = 1;
    }
    g->leading = 0;
    apr_thread_cond_broadcast(g->cond);
}

static apr_status_t group_write(op_t *op, query_t q, const char **args,
                                int nargs, int *nrows)
{
    group_t *g = op->ds->group;
    entry_t me;

    memset(&me, 0, sizeof(me));
    me.q = q;
    me.args = args;
    me.nargs = nargs;
    me.rv = APR_EGENERAL;
    apr_thread_mutex_lock(g->mutex);
    *g->tail = &me;
    g->tail = &me.next;
    while (!me.done) {
        if (!g->leading) {
            lead(op, g);
        }
        else {
            apr_thread_cond_wait(g->cond, g->mutex);
        }
    }
    apr_thread_mutex_unlock(g->mutex);
    *nrows = me.nrows;
    return me.rv;
}
#endif

static apr_status_t op_run(op_t *op, query_t q, const char **args,
                           int nargs, int *nrows, apr_dbd_results_t **res)
{
#if APR_HAS_THREADS
    if (!res && op->ds->group) {
        return group_write(op, q, args, nargs, nrows);
    }
#endif
    return op_run_now(op, q, args, nargs, nrows, res, 1);
}

static apr_status_t op_exec(op_t *op, query_t q, const char **args,
                            int nargs, int *nrows)
{
    return op_run(op, q, args, nargs, nrows, NULL);
}

static apr_status_t op_select(op_t *op, query_t q, const char **args,
                              int nargs, apr_dbd_results_t **res)
{
    return op_run(op, q, args, nargs, NULL, res);
}

/* 0 while there is a row; *row must start NULL (pgsql steps from it) */
static int next_row(op_t *op, apr_dbd_results_t *res, apr_dbd_row_t **row)
{
    return apr_dbd_get_row(op->conn->driver, op->p, res, row, -1);
}

/* ------------------------------------------------------------------ */
/* values in and out                                                    */

/* ------------------------------------------------------------------ */
/* statements that take effect together                                 */

/* One statement of a transaction; it must change exactly one row. */
typedef struct {
    query_t q;
    const char **args;
    int nargs;
} step_t;

#define MAX_STEPS 2

/* What the log calls the transaction: its statements' labels. */
static const char *steps_label(apr_pool_t *p, const step_t *steps, int n)
{
    const char *label = "transaction";
    int i;

    for (i = 0; i < n; ++i) {
        label = apr_pstrcat(p, label, i ? " + " : " ",
                            queries[steps[i].q].label, NULL);
    }
    return label;
}

/* The steps in the open transaction: 0 when each changed one row, i + 1
 * when step i changed none, -1 when one failed. */
static int run_steps(op_t *op, const step_t *steps, int n,
                     apr_dbd_prepared_t **stmts)
{
    int i, nrows, rc;

    for (i = 0; i < n; ++i) {
        nrows = 0;
        rc = apr_dbd_pquery(op->conn->driver, op->p, op->conn->handle,
                            &nrows, stmts[i], steps[i].nargs, steps[i].args);
        if (rc) {
            op->why = driver_error(op, rc);
            return -1;
        }
        if (nrows != 1) {
            return i + 1;
        }
    }
    return 0;
}

/* Ends the transaction without effect; a connection where that fails
 * goes (it may hold the write lock of an open transaction). */
static void roll_back(op_t *op)
{
    if (!sql_ok(op, "ROLLBACK") && !no_transaction(op)) {
        op->state = SCEP_DBD_LOST;
    }
}

/* One attempt at the transaction: APR_SUCCESS when it ran (*short_at is
 * the step that changed nothing and undid it all, or -1: committed),
 * APR_EAGAIN to try again on the new connection, else a failure. The
 * statements are prepared first: a failed prepare inside a transaction
 * would abort it on PostgreSQL. */
static apr_status_t atomic_once(op_t *op, const step_t *steps, int n,
                                int *short_at)
{
    apr_dbd_prepared_t *stmts[MAX_STEPS];
    int i, r, committing = 0;

    *short_at = -1;
    for (i = 0; i < n; ++i) {
        if (!op->conn) {
            return APR_EGENERAL;   /* a new one could not be had */
        }
        if (prepared(op, steps[i].q, &stmts[i])) {
            return op_failed(op, steps[i].q, op->why, 0) ? APR_EAGAIN
                                                          : APR_EGENERAL;
        }
    }
    if (sql_ok(op, strcmp(apr_dbd_name(op->conn->driver), "sqlite3")
                   ? "BEGIN" : "BEGIN IMMEDIATE")) {
        if (!(r = run_steps(op, steps, n, stmts))) {
            committing = 1;
            if (sql_ok(op, "COMMIT")) {
                return APR_SUCCESS;
            }
        }
        roll_back(op);
        if (r > 0) {
            *short_at = r - 1;
            return APR_SUCCESS;
        }
    }
    /* a transaction lost before its COMMIT took no effect */
    return conn_failed(op, steps_label(op->p, steps, n), op->why,
                       !committing) ? APR_EAGAIN : APR_EGENERAL;
}

/* The steps as one transaction under the write lock: all take effect or
 * none does (see atomic_once). */
static apr_status_t run_atomic(op_t *op, const step_t *steps, int n,
                               int *short_at)
{
    int locked = op_lock(op);
    apr_status_t rv;

    while (APR_EAGAIN == (rv = atomic_once(op, steps, n, short_at))) {
        continue;
    }
    op_unlock(op, locked);
    return rv;
}

static const char *i64(apr_pool_t *p, apr_int64_t v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

static const char *b64(apr_pool_t *p, const unsigned char *d, apr_size_t n)
{
    char *out;

    if (!d) {
        return NULL;
    }
    out = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)n));
    apr_base64_encode_binary(out, d, (int)n);
    return out;
}

/* NULL for SQL NULL; a copy, as pgsql frees the result after its last
 * row */
static const char *col_str(op_t *op, apr_dbd_row_t *row, int n)
{
    char *v = NULL;

    if (APR_SUCCESS != apr_dbd_datum_get(op->conn->driver, row, n,
                                         APR_DBD_TYPE_STRING, &v) || !v) {
        return NULL;
    }
    return apr_pstrdup(op->p, v);
}

static apr_int64_t col_i64(op_t *op, apr_dbd_row_t *row, int n)
{
    const char *v = col_str(op, row, n);

    return v ? apr_atoi64(v) : 0;
}

static void col_bin(op_t *op, apr_dbd_row_t *row, int n,
                    const unsigned char **d, apr_size_t *len)
{
    const char *v = col_str(op, row, n);
    unsigned char *out;
    int got;

    *d = NULL;
    *len = 0;
    if (!v || !*v) {
        return;
    }
    out = apr_palloc(op->p, (apr_size_t)apr_base64_decode_len(v));
    got = apr_base64_decode_binary(out, v);
    *d = out;
    *len = got > 0 ? (apr_size_t)got : 0;
}

static scep_cert_rec_t *cert_from_row(op_t *op, apr_dbd_row_t *row)
{
    scep_cert_rec_t *rec = apr_pcalloc(op->p, sizeof(*rec));

    rec->serial = col_str(op, row, 0);
    rec->subject = col_str(op, row, 1);
    rec->transaction_id = col_str(op, row, 2);
    rec->key_hash = col_str(op, row, 3);
    rec->not_before = col_i64(op, row, 4);
    rec->not_after = col_i64(op, row, 5);
    rec->status = col_i64(op, row, 6) ? SCEP_CERT_REVOKED : SCEP_CERT_VALID;
    rec->revoked_at = col_i64(op, row, 7);
    rec->revocation_reason = (int)col_i64(op, row, 8);
    col_bin(op, row, 9, &rec->der, &rec->der_len);
    rec->origin = col_str(op, row, 10);
    rec->request_txid = col_str(op, row, 11);
    rec->udid = col_str(op, row, 12);
    rec->enrolled_by = col_str(op, row, 13);
    rec->superseded_by = col_str(op, row, 14);
    return rec;
}

static scep_pending_rec_t *pending_from_row(op_t *op, apr_dbd_row_t *row)
{
    scep_pending_rec_t *rec = apr_pcalloc(op->p, sizeof(*rec));

    rec->transaction_id = col_str(op, row, 0);
    rec->subject = col_str(op, row, 1);
    rec->key_hash = col_str(op, row, 2);
    rec->state = (scep_pending_state_t)col_i64(op, row, 3);
    rec->created = col_i64(op, row, 4);
    col_bin(op, row, 5, &rec->csr, &rec->csr_len);
    col_bin(op, row, 6, &rec->requester, &rec->requester_len);
    rec->cert_serial = col_str(op, row, 7);
    rec->plan = col_str(op, row, 8);
    return rec;
}

static scep_device_rec_t *device_from_row(op_t *op, apr_dbd_row_t *row)
{
    scep_device_rec_t *rec = apr_pcalloc(op->p, sizeof(*rec));

    rec->udid = col_str(op, row, 0);
    rec->serial_number = col_str(op, row, 1);
    rec->product = col_str(op, row, 2);
    rec->cert_serial = col_str(op, row, 3);
    rec->last_seen = col_i64(op, row, 4);
    rec->enrolled_by = col_str(op, row, 5);
    return rec;
}

static scep_challenge_rec_t *challenge_from_row(op_t *op, apr_dbd_row_t *row)
{
    scep_challenge_rec_t *rec = apr_pcalloc(op->p, sizeof(*rec));

    rec->ref = col_str(op, row, 0);
    rec->purpose = (scep_challenge_purpose_t)col_i64(op, row, 1);
    rec->bound_to = col_str(op, row, 2);
    rec->created_by = col_str(op, row, 3);
    rec->via = col_str(op, row, 4);
    rec->created = col_i64(op, row, 5);
    rec->expires = col_i64(op, row, 6);
    rec->consumed = col_i64(op, row, 7) != 0;
    rec->revoked = col_i64(op, row, 8) != 0;
    return rec;
}

typedef void *row_fn(op_t *op, apr_dbd_row_t *row);

/* The first row of a select as a record; APR_NOTFOUND if none. */
static apr_status_t select_one(scep_store_t *st, apr_pool_t *p, query_t q,
                               const char **args, int nargs, row_fn *conv,
                               void **rec)
{
    op_t op;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    apr_status_t rv;

    *rec = NULL;
    if (APR_SUCCESS != (rv = op_begin(&op, st, p))) {
        return rv;
    }
    if (APR_SUCCESS != (rv = op_select(&op, q, args, nargs, &res))) {
        goto leave;
    }
    rv = APR_NOTFOUND;
    while (!next_row(&op, res, &row)) {
        if (!*rec) {
            *rec = conv(&op, row);
            rv = APR_SUCCESS;
        }
    }
leave:
    op_end(&op);
    return rv;
}

/* Every row of a select, converted, into an array of pointers. */
static apr_status_t select_all(scep_store_t *st, apr_pool_t *p, query_t q,
                               const char **args, int nargs, row_fn *conv,
                               apr_array_header_t **recs)
{
    op_t op;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    apr_status_t rv;

    *recs = apr_array_make(p, 16, sizeof(void *));
    if (APR_SUCCESS != (rv = op_begin(&op, st, p))) {
        return rv;
    }
    if (APR_SUCCESS == (rv = op_select(&op, q, args, nargs, &res))) {
        while (!next_row(&op, res, &row)) {
            APR_ARRAY_PUSH(*recs, void *) = conv(&op, row);
        }
    }
    op_end(&op);
    return rv;
}

/* One statement that changes rows; *nrows says how many. */
static apr_status_t exec_one(scep_store_t *st, apr_pool_t *p, query_t q,
                             const char **args, int nargs, int *nrows)
{
    op_t op;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = op_begin(&op, st, p))) {
        return rv;
    }
    rv = op_exec(&op, q, args, nargs, nrows);
    op_end(&op);
    return rv;
}

static void *cert_conv(op_t *op, apr_dbd_row_t *row)
{
    return cert_from_row(op, row);
}

static void *pending_conv(op_t *op, apr_dbd_row_t *row)
{
    return pending_from_row(op, row);
}

static void *device_conv(op_t *op, apr_dbd_row_t *row)
{
    return device_from_row(op, row);
}

static void *challenge_conv(op_t *op, apr_dbd_row_t *row)
{
    return challenge_from_row(op, row);
}

static void *first_col_conv(op_t *op, apr_dbd_row_t *row)
{
    return (void *)col_str(op, row, 0);
}

/* ------------------------------------------------------------------ */
/* certificates                                                         */

#define CA(st) scep_store_ca(st)

static apr_status_t dbd_cert_insert(scep_store_t *st, apr_pool_t *p,
                                    const scep_cert_rec_t *rec)
{
    const char *args[16];
    int nrows = 0;
    apr_status_t rv;

    if (!rec->serial || !rec->subject || !rec->der) {
        return APR_EINVAL;
    }
    args[0] = CA(st);
    args[1] = rec->serial;
    args[2] = rec->subject;
    args[3] = rec->transaction_id;
    args[4] = rec->key_hash;
    args[5] = i64(p, rec->not_before);
    args[6] = i64(p, rec->not_after);
    args[7] = apr_itoa(p, rec->status == SCEP_CERT_REVOKED ? 1 : 0);
    args[8] = i64(p, rec->status == SCEP_CERT_REVOKED ? rec->revoked_at : 0);
    args[9] = apr_itoa(p, rec->status == SCEP_CERT_REVOKED
                          ? rec->revocation_reason : -1);
    args[10] = i64(p, apr_time_now());
    args[11] = b64(p, rec->der, rec->der_len);
    args[12] = rec->origin;
    args[13] = rec->request_txid;
    args[14] = rec->udid;
    args[15] = rec->enrolled_by;
    rv = exec_one(st, p, Q_CERT_INSERT, args, 16, &nrows);
    /* nothing inserted: the serial, (transactionID, key) or origin
     * exists */
    return APR_SUCCESS == rv && nrows != 1 ? APR_EEXIST : rv;
}

/* A select of certificates by the CA and n more values. */
static apr_status_t cert_one(scep_store_t *st, apr_pool_t *p, query_t q,
                             const char *a1, const char *a2,
                             scep_cert_rec_t **rec)
{
    const char *args[3] = { CA(st), a1, a2 };

    *rec = NULL;
    if (!a1 || (q == Q_CERT_BY_TXID && !a2)) {
        return APR_NOTFOUND;
    }
    return select_one(st, p, q, args, a2 ? 3 : 2, cert_conv, (void **)rec);
}

static apr_status_t dbd_cert_by_serial(scep_store_t *st, apr_pool_t *p,
                                       const char *serial,
                                       scep_cert_rec_t **rec)
{
    return cert_one(st, p, Q_CERT_BY_SERIAL, serial, NULL, rec);
}

static apr_status_t dbd_cert_by_transaction(scep_store_t *st, apr_pool_t *p,
                                            const char *transaction_id,
                                            const char *key_hash,
                                            scep_cert_rec_t **rec)
{
    return cert_one(st, p, Q_CERT_BY_TXID, transaction_id, key_hash, rec);
}

static apr_status_t dbd_cert_by_key(scep_store_t *st, apr_pool_t *p,
                                    const char *key_hash,
                                    scep_cert_rec_t **rec)
{
    return cert_one(st, p, Q_CERT_BY_KEY, key_hash, NULL, rec);
}

static apr_status_t dbd_cert_by_origin(scep_store_t *st, apr_pool_t *p,
                                       const char *origin,
                                       scep_cert_rec_t **rec)
{
    return cert_one(st, p, Q_CERT_BY_ORIGIN, origin, NULL, rec);
}

static apr_status_t dbd_key_compromised(scep_store_t *st, apr_pool_t *p,
                                        const char *key_hash)
{
    const char *args[1] = { key_hash };
    apr_array_header_t *rows;
    apr_status_t rv;

    rv = select_all(st, p, Q_KEY_COMPROMISED, args, 1, first_col_conv,
                    &rows);
    return APR_SUCCESS == rv && rows->nelts == 0 ? APR_NOTFOUND : rv;
}

static apr_status_t dbd_cert_list(scep_store_t *st, apr_pool_t *p,
                                  int status, apr_array_header_t **recs)
{
    const char *args[2];

    args[0] = CA(st);
    if (status < 0) {
        return select_all(st, p, Q_CERT_LIST_ALL, args, 1, cert_conv, recs);
    }
    args[1] = apr_itoa(p, status);
    return select_all(st, p, Q_CERT_LIST_STATUS, args, 2, cert_conv, recs);
}

static apr_status_t dbd_cert_by_udid(scep_store_t *st, apr_pool_t *p,
                                     const char *udid,
                                     apr_array_header_t **recs)
{
    const char *args[2] = { CA(st), udid };

    return select_all(st, p, Q_CERT_BY_UDID, args, 2, cert_conv, recs);
}

/* APR_NOTFOUND: no such certificate; APR_EEXIST: revoked already. */
static apr_status_t dbd_cert_revoke(scep_store_t *st, apr_pool_t *p,
                                    const char *serial, int reason,
                                    apr_time_t when)
{
    const char *args[4] = { i64(p, when), apr_itoa(p, reason), CA(st),
                            serial };
    scep_cert_rec_t *rec;
    int nrows = 0;
    apr_status_t rv;

    rv = exec_one(st, p, Q_CERT_REVOKE, args, 4, &nrows);
    if (APR_SUCCESS != rv || nrows == 1) {
        return rv;
    }
    rv = dbd_cert_by_serial(st, p, serial, &rec);
    return APR_SUCCESS == rv ? APR_EEXIST : rv;
}

static apr_status_t dbd_cert_supersede(scep_store_t *st, apr_pool_t *p,
                                       const char *serial,
                                       const char *by_serial)
{
    const char *args[3] = { by_serial, CA(st), serial };
    int nrows = 0;
    apr_status_t rv;

    rv = exec_one(st, p, Q_CERT_SUPERSEDE, args, 3, &nrows);
    return APR_SUCCESS == rv && nrows != 1 ? APR_NOTFOUND : rv;
}

/* ------------------------------------------------------------------ */
/* challenges                                                           */

/* Expired challenges serve nobody: each process deletes them before it
 * adds a challenge when it has not purged for this long (and at its first
 * add). */
#define CHAL_PURGE_EVERY_SECS 600

static void purge_if_due(dbd_store_t *ds, scep_store_t *st, apr_pool_t *p)
{
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    apr_uint32_t last = apr_atomic_read32(&ds->last_purge);
    const char *args[1];
    int purged = 0;

    if (now - last < CHAL_PURGE_EVERY_SECS
        || apr_atomic_cas32(&ds->last_purge, now, last) != last) {
        return;                  /* not due, or another thread does it */
    }
    args[0] = i64(p, apr_time_now());
    exec_one(st, p, Q_CHAL_PURGE, args, 1, &purged);
}

static apr_status_t dbd_challenge_add(scep_store_t *st, apr_pool_t *p,
                                      const char *hash,
                                      scep_challenge_purpose_t purpose,
                                      const char *bound_to,
                                      apr_time_t expires)
{
    const char *args[6] = { CA(st), hash, apr_itoa(p, (int)purpose), bound_to,
                            i64(p, expires), i64(p, apr_time_now()) };
    int nrows = 0;
    apr_status_t rv;

    purge_if_due(st->backend, st, p);
    rv = exec_one(st, p, Q_CHAL_ADD, args, 6, &nrows);
    return APR_SUCCESS == rv && nrows != 1 ? APR_EEXIST : rv;
}

static apr_status_t dbd_challenge_peek(scep_store_t *st, apr_pool_t *p,
                                       const char *hash,
                                       scep_challenge_purpose_t purpose,
                                       const char *consumer,
                                       const char **bound_to)
{
    const char *args[5] = { CA(st), hash, apr_itoa(p, (int)purpose),
                            i64(p, apr_time_now()), consumer };
    apr_array_header_t *rows;
    apr_status_t rv;

    *bound_to = NULL;
    rv = select_all(st, p, Q_CHAL_PEEK, args, 5, first_col_conv, &rows);
    if (APR_SUCCESS == rv && rows->nelts == 0) {
        return APR_NOTFOUND;
    }
    if (APR_SUCCESS == rv) {
        *bound_to = APR_ARRAY_IDX(rows, 0, const char *);
    }
    return rv;
}

/* Q_CHAL_CONSUME's arguments */
static const char **consume_args(scep_store_t *st, apr_pool_t *p,
                                 const char *hash,
                                 scep_challenge_purpose_t purpose,
                                 const char *consumer)
{
    const char *args[6] = { consumer, CA(st), hash, apr_itoa(p, (int)purpose),
                            i64(p, apr_time_now()), consumer };

    return apr_pmemdup(p, args, sizeof(args));
}

static apr_status_t dbd_challenge_consume(scep_store_t *st, apr_pool_t *p,
                                          const char *hash,
                                          scep_challenge_purpose_t purpose,
                                          const char *consumer,
                                          const char **bound_to)
{
    const char **args;
    op_t op;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    int nrows = 0;
    apr_status_t rv;

    if (bound_to) {
        *bound_to = NULL;
    }
    args = consume_args(st, p, hash, purpose, consumer);
    if (APR_SUCCESS != (rv = op_begin(&op, st, p))) {
        return rv;
    }
    rv = op_exec(&op, Q_CHAL_CONSUME, args, 6, &nrows);
    if (APR_SUCCESS != rv) {
        goto leave;
    }
    if (nrows != 1) {
        rv = APR_NOTFOUND;
        goto leave;
    }
    if (bound_to && APR_SUCCESS == op_select(&op, Q_CHAL_BOUND, args + 1, 2,
                                             &res)) {
        while (!next_row(&op, res, &row)) {
            *bound_to = col_str(&op, row, 0);
        }
    }
leave:
    op_end(&op);
    return rv;
}

/* The number of outstanding challenges user made through via. */
static apr_status_t challenge_count(scep_store_t *st, apr_pool_t *p,
                                    const char *user, const char *via,
                                    int *n)
{
    const char *args[4] = { CA(st), user, via, i64(p, apr_time_now()) };
    apr_array_header_t *rows;
    apr_status_t rv;

    *n = 0;
    rv = select_all(st, p, Q_CHAL_COUNT, args, 4, first_col_conv, &rows);
    if (APR_SUCCESS == rv && rows->nelts > 0
        && APR_ARRAY_IDX(rows, 0, const char *)) {
        *n = atoi(APR_ARRAY_IDX(rows, 0, const char *));
    }
    return rv;
}

/* Q_CHAL_ISSUE's arguments */
static const char **issue_args(scep_store_t *st, apr_pool_t *p,
                               const scep_challenge_rec_t *rec, int limit)
{
    const char **args = apr_palloc(p, 15 * sizeof(*args));

    args[0] = CA(st);
    args[1] = rec->hash;
    args[2] = apr_itoa(p, (int)rec->purpose);
    args[3] = rec->bound_to;
    args[4] = i64(p, rec->expires);
    args[5] = i64(p, apr_time_now());
    args[6] = rec->ref;
    args[7] = rec->created_by;
    args[8] = rec->via;
    args[9] = apr_itoa(p, limit);
    args[10] = CA(st);
    args[11] = rec->created_by;
    args[12] = rec->via;
    args[13] = args[5];
    args[14] = args[9];
    return args;
}

static apr_status_t dbd_challenge_issue(scep_store_t *st, apr_pool_t *p,
                                        const scep_challenge_rec_t *rec,
                                        int limit)
{
    int nrows = 0, n;
    apr_status_t rv;

    if (!rec->hash) {
        return APR_EINVAL;
    }
    if (limit > 0 && (!rec->created_by || !rec->via)) {
        limit = 0;               /* nobody to count */
    }
    purge_if_due(st->backend, st, p);
    rv = exec_one(st, p, Q_CHAL_ISSUE, issue_args(st, p, rec, limit), 15,
                  &nrows);
    if (APR_SUCCESS != rv || nrows == 1) {
        return rv;
    }
    /* nothing inserted: the limit, or a hash or ref that exists */
    if (limit > 0) {
        rv = challenge_count(st, p, rec->created_by, rec->via, &n);
        if (APR_SUCCESS != rv) {
            return rv;
        }
        if (n >= limit) {
            return APR_ENOSPC;
        }
    }
    return APR_EEXIST;
}

static apr_status_t dbd_challenge_exchange(scep_store_t *st, apr_pool_t *p,
                                           const char *hash,
                                           scep_challenge_purpose_t purpose,
                                           const scep_challenge_rec_t *rec)
{
    step_t steps[2];
    op_t op;
    int short_at = -1;
    apr_status_t rv;

    if (!hash || !rec->hash) {
        return APR_EINVAL;
    }
    purge_if_due(st->backend, st, p);
    steps[0].q = Q_CHAL_CONSUME;
    steps[0].args = consume_args(st, p, hash, purpose, NULL);
    steps[0].nargs = 6;
    steps[1].q = Q_CHAL_ISSUE;
    steps[1].args = issue_args(st, p, rec, 0);
    steps[1].nargs = 15;
    if (APR_SUCCESS != (rv = op_begin(&op, st, p))) {
        return rv;
    }
    rv = run_atomic(&op, steps, 2, &short_at);
    op_end(&op);
    if (APR_SUCCESS == rv && short_at >= 0) {
        rv = short_at == 0 ? APR_NOTFOUND : APR_EEXIST;
    }
    return rv;
}

static apr_status_t dbd_challenge_find(scep_store_t *st, apr_pool_t *p,
                                       const char *hash,
                                       scep_challenge_rec_t **rec)
{
    const char *args[2] = { CA(st), hash };
    apr_status_t rv;

    *rec = NULL;
    if (!hash) {
        return APR_NOTFOUND;
    }
    rv = select_one(st, p, Q_CHAL_FIND, args, 2, challenge_conv,
                    (void **)rec);
    if (APR_SUCCESS == rv) {
        (*rec)->hash = apr_pstrdup(p, hash);
    }
    return rv;
}

static apr_status_t dbd_challenge_list(scep_store_t *st, apr_pool_t *p,
                                       const char *user,
                                       apr_array_header_t **recs)
{
    const char *args[3];

    args[0] = CA(st);
    if (!user) {
        args[1] = i64(p, apr_time_now());
        return select_all(st, p, Q_CHAL_LIST_ALL, args, 2, challenge_conv,
                          recs);
    }
    args[1] = user;
    args[2] = i64(p, apr_time_now());
    return select_all(st, p, Q_CHAL_LIST_USER, args, 3, challenge_conv,
                      recs);
}

static apr_status_t dbd_challenge_revoke(scep_store_t *st, apr_pool_t *p,
                                         const char *ref, const char *user,
                                         int *n)
{
    const char *args[3] = { CA(st), ref ? ref : user, i64(p, apr_time_now()) };

    *n = 0;
    if (!ref && !user) {
        return APR_EINVAL;
    }
    return exec_one(st, p, ref ? Q_CHAL_REVOKE_REF : Q_CHAL_REVOKE_USER,
                    args, 3, n);
}

/* ------------------------------------------------------------------ */
/* pending requests                                                     */

/* Inserts; APR_EEXIST when the transactionID is pending already (a
 * resent request never replaces the one an admin may have approved). */
static apr_status_t dbd_pending_put(scep_store_t *st, apr_pool_t *p,
                                    const scep_pending_rec_t *rec)
{
    const char *args[10] = { CA(st), rec->transaction_id, rec->subject,
                             rec->key_hash, apr_itoa(p, (int)rec->state),
                             i64(p, rec->created ? rec->created
                                                 : apr_time_now()),
                             b64(p, rec->csr, rec->csr_len),
                             b64(p, rec->requester, rec->requester_len),
                             rec->cert_serial, rec->plan };
    int nrows = 0;
    apr_status_t rv;

    if (!rec->transaction_id) {
        return APR_EINVAL;
    }
    rv = exec_one(st, p, Q_PEND_PUT, args, 10, &nrows);
    return APR_SUCCESS == rv && nrows != 1 ? APR_EEXIST : rv;
}

static apr_status_t dbd_pending_get(scep_store_t *st, apr_pool_t *p,
                                    const char *transaction_id,
                                    scep_pending_rec_t **rec)
{
    const char *args[2] = { CA(st), transaction_id };

    return select_one(st, p, Q_PEND_GET, args, 2, pending_conv,
                      (void **)rec);
}

static apr_status_t dbd_pending_set_state(scep_store_t *st, apr_pool_t *p,
                                          const char *transaction_id,
                                          scep_pending_state_t state,
                                          const char *cert_serial)
{
    const char *args[4] = { apr_itoa(p, (int)state), cert_serial, CA(st),
                            transaction_id };
    int nrows = 0;
    apr_status_t rv;

    rv = exec_one(st, p, Q_PEND_STATE, args, 4, &nrows);
    return APR_SUCCESS == rv && nrows != 1 ? APR_NOTFOUND : rv;
}

static apr_status_t dbd_pending_list(scep_store_t *st, apr_pool_t *p,
                                     apr_array_header_t **recs)
{
    const char *args[1] = { CA(st) };

    return select_all(st, p, Q_PEND_LIST, args, 1, pending_conv, recs);
}

/* ------------------------------------------------------------------ */
/* OTA devices                                                          */

/* Fields left NULL keep what the record had. */
static apr_status_t dbd_device_upsert(scep_store_t *st, apr_pool_t *p,
                                      const scep_device_rec_t *rec)
{
    const char *args[7] = { CA(st), rec->udid, rec->serial_number,
                            rec->product, rec->cert_serial,
                            i64(p, rec->last_seen ? rec->last_seen
                                                  : apr_time_now()),
                            rec->enrolled_by };
    int nrows = 0;

    if (!rec->udid) {
        return APR_EINVAL;
    }
    return exec_one(st, p, Q_DEV_UPSERT, args, 7, &nrows);
}

static apr_status_t dbd_device_get(scep_store_t *st, apr_pool_t *p,
                                   const char *udid, scep_device_rec_t **rec)
{
    const char *args[2] = { CA(st), udid };

    return select_one(st, p, Q_DEV_GET, args, 2, device_conv, (void **)rec);
}

/* ------------------------------------------------------------------ */
/* CRLs                                                                 */

static apr_status_t dbd_revocation_mark(scep_store_t *st, apr_pool_t *p,
                                        apr_int64_t *count,
                                        apr_time_t *latest)
{
    const char *args[1] = { CA(st) };
    op_t op;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    apr_status_t rv;

    *count = 0;
    *latest = 0;
    if (APR_SUCCESS != (rv = op_begin(&op, st, p))) {
        return rv;
    }
    if (APR_SUCCESS == (rv = op_select(&op, Q_REVOCATION_MARK, args, 1,
                                       &res))) {
        while (!next_row(&op, res, &row)) {
            *count = col_i64(&op, row, 0);
            *latest = col_i64(&op, row, 1);
        }
    }
    op_end(&op);
    return rv;
}

static void *crl_conv(op_t *op, apr_dbd_row_t *row)
{
    scep_crl_rec_t *rec = apr_pcalloc(op->p, sizeof(*rec));

    rec->number = col_i64(op, row, 0);
    rec->this_update = col_i64(op, row, 1);
    rec->next_update = col_i64(op, row, 2);
    rec->revocations = col_str(op, row, 3);
    return rec;
}

static void *crl_der_conv(op_t *op, apr_dbd_row_t *row)
{
    scep_crl_rec_t *rec = crl_conv(op, row);

    col_bin(op, row, 4, &rec->der, &rec->der_len);
    return rec;
}

static apr_status_t dbd_crl_latest(scep_store_t *st, apr_pool_t *p,
                                   scep_crl_rec_t **rec)
{
    const char *args[1] = { CA(st) };

    return select_one(st, p, Q_CRL_LATEST, args, 1, crl_conv, (void **)rec);
}

static apr_status_t dbd_crl_get(scep_store_t *st, apr_pool_t *p,
                                apr_int64_t number, scep_crl_rec_t **rec)
{
    const char *args[2] = { CA(st), i64(p, number) };
    apr_status_t rv;

    rv = select_one(st, p, Q_CRL_GET, args, 2, crl_der_conv, (void **)rec);
    return APR_SUCCESS == rv && !(*rec)->der ? APR_NOTFOUND : rv;
}

static apr_status_t dbd_crl_publish(scep_store_t *st, apr_pool_t *p,
                                    const scep_crl_rec_t *rec)
{
    const char *args[6] = { CA(st), i64(p, rec->number),
                            i64(p, rec->this_update), i64(p, rec->next_update),
                            rec->revocations, b64(p, rec->der, rec->der_len) };
    op_t op;
    int nrows = 0, pruned = 0;
    apr_status_t rv;

    if (!rec->der || !rec->revocations) {
        return APR_EINVAL;
    }
    if (APR_SUCCESS != (rv = op_begin(&op, st, p))) {
        return rv;
    }
    rv = op_exec(&op, Q_CRL_PUBLISH, args, 6, &nrows);
    if (APR_SUCCESS == rv && nrows != 1) {
        rv = APR_EEXIST;
    }
    else if (APR_SUCCESS == rv) {
        /* the one before stays for a reader that just found it */
        args[1] = i64(p, rec->number - 1);
        op_exec(&op, Q_CRL_PRUNE, args, 2, &pruned);
    }
    op_end(&op);
    return rv;
}

/* ------------------------------------------------------------------ */

static const scep_store_ops_t dbd_ops = {
    .cert_insert = dbd_cert_insert,
    .cert_by_serial = dbd_cert_by_serial,
    .cert_by_transaction = dbd_cert_by_transaction,
    .cert_by_key = dbd_cert_by_key,
    .cert_by_origin = dbd_cert_by_origin,
    .key_compromised = dbd_key_compromised,
    .cert_supersede = dbd_cert_supersede,
    .cert_list = dbd_cert_list,
    .cert_by_udid = dbd_cert_by_udid,
    .cert_revoke = dbd_cert_revoke,
    .challenge_add = dbd_challenge_add,
    .challenge_peek = dbd_challenge_peek,
    .challenge_consume = dbd_challenge_consume,
    .challenge_issue = dbd_challenge_issue,
    .challenge_exchange = dbd_challenge_exchange,
    .challenge_find = dbd_challenge_find,
    .challenge_list = dbd_challenge_list,
    .challenge_revoke = dbd_challenge_revoke,
    .pending_put = dbd_pending_put,
    .pending_get = dbd_pending_get,
    .pending_set_state = dbd_pending_set_state,
    .pending_list = dbd_pending_list,
    .device_upsert = dbd_device_upsert,
    .device_get = dbd_device_get,
    .revocation_mark = dbd_revocation_mark,
    .crl_latest = dbd_crl_latest,
    .crl_get = dbd_crl_get,
    .crl_publish = dbd_crl_publish,
};

scep_store_t *scep_store_dbd_create(apr_pool_t *p,
                                    const scep_dbd_provider_t *prov,
                                    const scep_logger_t *log)
{
    scep_store_t *st = apr_pcalloc(p, sizeof(*st));
    dbd_store_t *ds = apr_pcalloc(p, sizeof(*ds));

    ds->pool = p;
    ds->prov = prov;
    ds->log = log ? log : scep_log_null();
    st->ops = &dbd_ops;
    st->backend = ds;
    return st;
}

const char *scep_store_dbd_sql(const char *label)
{
    int q;

    for (q = 0; q < Q_COUNT; ++q) {
        if (!strcmp(queries[q].label, label)) {
            return queries[q].sql;
        }
    }
    return NULL;
}

static group_t *group_create(apr_pool_t *p)
{
#if APR_HAS_THREADS
    group_t *g = apr_pcalloc(p, sizeof(*g));

    if (APR_SUCCESS != apr_thread_mutex_create(&g->mutex,
                                               APR_THREAD_MUTEX_DEFAULT, p)
        || APR_SUCCESS != apr_thread_cond_create(&g->cond, p)) {
        return NULL;
    }
    g->tail = &g->head;
    return g;
#else
    (void)p;
    return NULL;
#endif
}

void scep_store_dbd_write_lock(scep_store_t *st, scep_dbd_lock_fn *lock,
                               scep_dbd_lock_fn *unlock, void *baton)
{
    dbd_store_t *ds = st->backend;

    if (st->ops == &dbd_ops) {
        ds->lock = lock && unlock ? lock : NULL;
        ds->unlock = unlock;
        ds->lock_baton = baton;
        ds->group = ds->lock ? group_create(ds->pool) : NULL;
    }
}
