/* The store over APR DBD: every operation of scep_store_ops_t as one
 * prepared statement (two for a consume or a revoke that must tell why
 * nothing matched) on a connection lent by a provider. The SQL is the
 * same for sqlite3 and pgsql; uniqueness is the database's job
 * (ON CONFLICT DO NOTHING, then nrows tells a clash from an insert). */

#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_base64.h>

#include "scep_ota/scep_store_dbd.h"

typedef struct {
    const scep_dbd_provider_t *prov;
    const scep_logger_t *log;
} dbd_store_t;

/* ------------------------------------------------------------------ */
/* the statements                                                       */

typedef enum {
    Q_CERT_INSERT, Q_CERT_BY_SERIAL, Q_CERT_BY_TXID, Q_CERT_BY_KEY,
    Q_CERT_LIST_ALL, Q_CERT_LIST_STATUS, Q_CERT_REVOKE,
    Q_CHAL_ADD, Q_CHAL_CONSUME, Q_CHAL_BOUND, Q_CHAL_PURGE,
    Q_PEND_PUT, Q_PEND_GET, Q_PEND_STATE, Q_PEND_LIST,
    Q_DEV_UPSERT, Q_DEV_GET,
    Q_COUNT
} query_t;

#define CERT_COLS "SELECT serial, subject, transaction_id, key_hash," \
    " not_before, not_after, status, revoked_at, reason, der" \
    " FROM certificates"
#define PEND_COLS "SELECT transaction_id, subject, key_hash, state," \
    " created, csr, requester, cert_serial FROM pending"

/* Labels name server-side prepared statements (PostgreSQL) on connections
 * that mod_dbd may share with other modules: keep the prefix. */
static const struct {
    const char *label;
    const char *sql;
} queries[Q_COUNT] = {
    { "scep_ota_cert_insert",
      "INSERT INTO certificates (serial, subject, transaction_id, key_hash,"
      " not_before, not_after, status, revoked_at, reason, issued_at, der)"
      " VALUES (%s, %s, %s, %s, %lld, %lld, %d, %lld, %d, %lld, %s)"
      " ON CONFLICT DO NOTHING" },
    { "scep_ota_cert_by_serial", CERT_COLS " WHERE serial = %s" },
    { "scep_ota_cert_by_txid",
      CERT_COLS " WHERE transaction_id = %s AND key_hash = %s" },
    { "scep_ota_cert_by_key",
      CERT_COLS " WHERE key_hash = %s AND status = 0"
      " ORDER BY not_before DESC, issued_at DESC LIMIT 1" },
    { "scep_ota_cert_list_all", CERT_COLS " ORDER BY issued_at, serial" },
    { "scep_ota_cert_list_status",
      CERT_COLS " WHERE status = %d ORDER BY issued_at, serial" },
    { "scep_ota_cert_revoke",
      "UPDATE certificates SET status = 1, revoked_at = %lld, reason = %d"
      " WHERE serial = %s AND status = 0" },
    { "scep_ota_chal_add",
      "INSERT INTO challenges (hash, purpose, bound_to, expires, consumed,"
      " created) VALUES (%s, %d, %s, %lld, 0, %lld)"
      " ON CONFLICT DO NOTHING" },
    /* the one statement that decides who gets a challenge */
    { "scep_ota_chal_consume",
      "UPDATE challenges SET consumed = 1 WHERE hash = %s AND purpose = %d"
      " AND consumed = 0 AND expires > %lld" },
    { "scep_ota_chal_bound",
      "SELECT bound_to FROM challenges WHERE hash = %s" },
    { "scep_ota_chal_purge",
      "DELETE FROM challenges WHERE expires < %lld" },
    { "scep_ota_pend_put",
      "INSERT INTO pending (transaction_id, subject, key_hash, state,"
      " created, csr, requester, cert_serial)"
      " VALUES (%s, %s, %s, %d, %lld, %s, %s, %s)"
      " ON CONFLICT DO NOTHING" },
    { "scep_ota_pend_get", PEND_COLS " WHERE transaction_id = %s" },
    { "scep_ota_pend_state",
      "UPDATE pending SET state = %d, cert_serial = COALESCE(%s, cert_serial)"
      " WHERE transaction_id = %s" },
    { "scep_ota_pend_list", PEND_COLS " ORDER BY created, transaction_id" },
    { "scep_ota_dev_upsert",
      "INSERT INTO devices (udid, serial_number, product, cert_serial,"
      " last_seen) VALUES (%s, %s, %s, %s, %lld)"
      " ON CONFLICT (udid) DO UPDATE SET"
      " serial_number = COALESCE(excluded.serial_number,"
      " devices.serial_number),"
      " product = COALESCE(excluded.product, devices.product),"
      " cert_serial = COALESCE(excluded.cert_serial, devices.cert_serial),"
      " last_seen = excluded.last_seen" },
    { "scep_ota_dev_get",
      "SELECT udid, serial_number, product, cert_serial, last_seen"
      " FROM devices WHERE udid = %s" },
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
        return 1;
    default:
        return !strncmp(queries[q].sql, "SELECT ", 7);
    }
}

/* A statement failed. If the server still answers on the connection, it
 * is the statement's failure. Otherwise the connection is lost: the
 * provider must not lend it again as it is, and the statement runs once
 * more on another connection when it may. Returns 1 to run it again. */
static int op_failed(op_t *op, query_t q, const char *why, int sent)
{
    int again;

    if (scep_dbd_alive(op->conn, op->p)) {
        op->state = SCEP_DBD_FAILED;
        scep_log_perror(op->ds->log, SCEP_LOG_MARK, SCEP_LOG_ERR, 0, op->p,
                        SCEPLOGNO(4011) "store: %s failed: %s",
                        queries[q].label, why);
        return 0;
    }
    op->state = SCEP_DBD_LOST;
    again = !op->renewed && (!sent || repeatable(q));
    scep_log_perror(op->ds->log, SCEP_LOG_MARK,
                    again ? SCEP_LOG_WARNING : SCEP_LOG_ERR, 0, op->p,
                    SCEPLOGNO(4050) "store: the connection to the database "
                    "was lost (%s: %s)%s", queries[q].label, why,
                    again ? "; running it again on another connection"
                    : (op->renewed || !sent ? ""
                       : "; not run again, as it may have taken effect"));
    if (!again) {
        return 0;
    }
    op->renewed = 1;
    op_end(op);
    return APR_SUCCESS == op_acquire(op);
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

/* Runs q: its rows into *res when res is not NULL, else the count of rows
 * it changed into *nrows. */
static apr_status_t op_run(op_t *op, query_t q, const char **args,
                           int nargs, int *nrows, apr_dbd_results_t **res)
{
    apr_dbd_prepared_t *stmt;
    int rc;

    for (;;) {
        if (nrows) {
            *nrows = 0;
        }
        if (res) {
            *res = NULL;
        }
        if ((rc = prepared(op, q, &stmt))) {
            if (!op_failed(op, q, op->why, 0)) {
                return APR_EGENERAL;
            }
            continue;
        }
        rc = res ? apr_dbd_pselect(op->conn->driver, op->p, op->conn->handle,
                                   res, stmt, 1, nargs, args)
                 : apr_dbd_pquery(op->conn->driver, op->p, op->conn->handle,
                                  nrows, stmt, nargs, args);
        if (!rc) {
            return APR_SUCCESS;
        }
        if (!op_failed(op, q, driver_error(op, rc), 1)) {
            return APR_EGENERAL;
        }
    }
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

/* ------------------------------------------------------------------ */
/* certificates                                                         */

static apr_status_t dbd_cert_insert(scep_store_t *st, apr_pool_t *p,
                                    const scep_cert_rec_t *rec)
{
    const char *args[11];
    int nrows = 0;
    apr_status_t rv;

    if (!rec->serial || !rec->subject || !rec->der) {
        return APR_EINVAL;
    }
    args[0] = rec->serial;
    args[1] = rec->subject;
    args[2] = rec->transaction_id;
    args[3] = rec->key_hash;
    args[4] = i64(p, rec->not_before);
    args[5] = i64(p, rec->not_after);
    args[6] = apr_itoa(p, rec->status == SCEP_CERT_REVOKED ? 1 : 0);
    args[7] = i64(p, rec->status == SCEP_CERT_REVOKED ? rec->revoked_at : 0);
    args[8] = apr_itoa(p, rec->status == SCEP_CERT_REVOKED
                          ? rec->revocation_reason : -1);
    args[9] = i64(p, apr_time_now());
    args[10] = b64(p, rec->der, rec->der_len);
    rv = exec_one(st, p, Q_CERT_INSERT, args, 11, &nrows);
    /* nothing inserted: the serial or (transactionID, key) exists */
    return APR_SUCCESS == rv && nrows != 1 ? APR_EEXIST : rv;
}

static apr_status_t dbd_cert_by_serial(scep_store_t *st, apr_pool_t *p,
                                       const char *serial,
                                       scep_cert_rec_t **rec)
{
    const char *args[1];

    args[0] = serial;
    return select_one(st, p, Q_CERT_BY_SERIAL, args, 1, cert_conv,
                      (void **)rec);
}

static apr_status_t dbd_cert_by_transaction(scep_store_t *st, apr_pool_t *p,
                                            const char *transaction_id,
                                            const char *key_hash,
                                            scep_cert_rec_t **rec)
{
    const char *args[2];

    if (!transaction_id || !key_hash) {
        *rec = NULL;
        return APR_NOTFOUND;
    }
    args[0] = transaction_id;
    args[1] = key_hash;
    return select_one(st, p, Q_CERT_BY_TXID, args, 2, cert_conv,
                      (void **)rec);
}

static apr_status_t dbd_cert_by_key(scep_store_t *st, apr_pool_t *p,
                                    const char *key_hash,
                                    scep_cert_rec_t **rec)
{
    const char *args[1];

    args[0] = key_hash;
    return select_one(st, p, Q_CERT_BY_KEY, args, 1, cert_conv,
                      (void **)rec);
}

static apr_status_t dbd_cert_list(scep_store_t *st, apr_pool_t *p,
                                  int status, apr_array_header_t **recs)
{
    const char *args[1];

    if (status < 0) {
        return select_all(st, p, Q_CERT_LIST_ALL, args, 0, cert_conv, recs);
    }
    args[0] = apr_itoa(p, status);
    return select_all(st, p, Q_CERT_LIST_STATUS, args, 1, cert_conv, recs);
}

/* APR_NOTFOUND: no such certificate; APR_EEXIST: revoked already. */
static apr_status_t dbd_cert_revoke(scep_store_t *st, apr_pool_t *p,
                                    const char *serial, int reason,
                                    apr_time_t when)
{
    const char *args[3];
    scep_cert_rec_t *rec;
    int nrows = 0;
    apr_status_t rv;

    args[0] = i64(p, when);
    args[1] = apr_itoa(p, reason);
    args[2] = serial;
    rv = exec_one(st, p, Q_CERT_REVOKE, args, 3, &nrows);
    if (APR_SUCCESS != rv || nrows == 1) {
        return rv;
    }
    rv = dbd_cert_by_serial(st, p, serial, &rec);
    return APR_SUCCESS == rv ? APR_EEXIST : rv;
}

/* ------------------------------------------------------------------ */
/* challenges                                                           */

/* Expired challenges are kept this long (for an admin's questions), then
 * purged. */
#define CHAL_KEEP_SECS 86400

/* One call in 32, chosen by the (random) challenge hash itself. */
static int purge_due(const char *hash)
{
    return hash[0] == '0' && hash[1] && strchr("01234567", hash[1]) != NULL;
}

static apr_status_t dbd_challenge_add(scep_store_t *st, apr_pool_t *p,
                                      const char *hash,
                                      scep_challenge_purpose_t purpose,
                                      const char *bound_to,
                                      apr_time_t expires)
{
    const char *args[5];
    int nrows = 0, purged = 0;
    apr_status_t rv;

    args[0] = hash;
    args[1] = apr_itoa(p, (int)purpose);
    args[2] = bound_to;
    args[3] = i64(p, expires);
    args[4] = i64(p, apr_time_now());
    rv = exec_one(st, p, Q_CHAL_ADD, args, 5, &nrows);
    if (APR_SUCCESS == rv && nrows == 1 && purge_due(hash)) {
        /* rows a day past their expiry serve nobody: drop them, now and
         * then (the hash is random, so one add in 32 does it) */
        args[0] = i64(p, apr_time_now() - apr_time_from_sec(CHAL_KEEP_SECS));
        exec_one(st, p, Q_CHAL_PURGE, args, 1, &purged);
    }
    return APR_SUCCESS == rv && nrows != 1 ? APR_EEXIST : rv;
}

static apr_status_t dbd_challenge_consume(scep_store_t *st, apr_pool_t *p,
                                          const char *hash,
                                          scep_challenge_purpose_t purpose,
                                          const char **bound_to)
{
    const char *args[3];
    op_t op;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    int nrows = 0;
    apr_status_t rv;

    if (bound_to) {
        *bound_to = NULL;
    }
    args[0] = hash;
    args[1] = apr_itoa(p, (int)purpose);
    args[2] = i64(p, apr_time_now());
    if (APR_SUCCESS != (rv = op_begin(&op, st, p))) {
        return rv;
    }
    /* one atomic statement: of any number of racers, one sees nrows 1 */
    rv = op_exec(&op, Q_CHAL_CONSUME, args, 3, &nrows);
    if (APR_SUCCESS != rv) {
        goto leave;
    }
    if (nrows != 1) {
        rv = APR_NOTFOUND;
        goto leave;
    }
    if (bound_to && APR_SUCCESS == op_select(&op, Q_CHAL_BOUND, args, 1,
                                             &res)) {
        while (!next_row(&op, res, &row)) {
            *bound_to = col_str(&op, row, 0);
        }
    }
leave:
    op_end(&op);
    return rv;
}

/* ------------------------------------------------------------------ */
/* pending requests                                                     */

/* Inserts; APR_EEXIST when the transactionID is pending already (a
 * resent request never replaces the one an admin may have approved). */
static apr_status_t dbd_pending_put(scep_store_t *st, apr_pool_t *p,
                                    const scep_pending_rec_t *rec)
{
    const char *args[8];
    int nrows = 0;
    apr_status_t rv;

    if (!rec->transaction_id) {
        return APR_EINVAL;
    }
    args[0] = rec->transaction_id;
    args[1] = rec->subject;
    args[2] = rec->key_hash;
    args[3] = apr_itoa(p, (int)rec->state);
    args[4] = i64(p, rec->created ? rec->created : apr_time_now());
    args[5] = b64(p, rec->csr, rec->csr_len);
    args[6] = b64(p, rec->requester, rec->requester_len);
    args[7] = rec->cert_serial;
    rv = exec_one(st, p, Q_PEND_PUT, args, 8, &nrows);
    return APR_SUCCESS == rv && nrows != 1 ? APR_EEXIST : rv;
}

static apr_status_t dbd_pending_get(scep_store_t *st, apr_pool_t *p,
                                    const char *transaction_id,
                                    scep_pending_rec_t **rec)
{
    const char *args[1];

    args[0] = transaction_id;
    return select_one(st, p, Q_PEND_GET, args, 1, pending_conv,
                      (void **)rec);
}

static apr_status_t dbd_pending_set_state(scep_store_t *st, apr_pool_t *p,
                                          const char *transaction_id,
                                          scep_pending_state_t state,
                                          const char *cert_serial)
{
    const char *args[3];
    int nrows = 0;
    apr_status_t rv;

    args[0] = apr_itoa(p, (int)state);
    args[1] = cert_serial;
    args[2] = transaction_id;
    rv = exec_one(st, p, Q_PEND_STATE, args, 3, &nrows);
    return APR_SUCCESS == rv && nrows != 1 ? APR_NOTFOUND : rv;
}

static apr_status_t dbd_pending_list(scep_store_t *st, apr_pool_t *p,
                                     apr_array_header_t **recs)
{
    const char *args[1];

    return select_all(st, p, Q_PEND_LIST, args, 0, pending_conv, recs);
}

/* ------------------------------------------------------------------ */
/* OTA devices                                                          */

/* Fields left NULL keep what the record had. */
static apr_status_t dbd_device_upsert(scep_store_t *st, apr_pool_t *p,
                                      const scep_device_rec_t *rec)
{
    const char *args[5];
    int nrows = 0;

    if (!rec->udid) {
        return APR_EINVAL;
    }
    args[0] = rec->udid;
    args[1] = rec->serial_number;
    args[2] = rec->product;
    args[3] = rec->cert_serial;
    args[4] = i64(p, rec->last_seen ? rec->last_seen : apr_time_now());
    return exec_one(st, p, Q_DEV_UPSERT, args, 5, &nrows);
}

static apr_status_t dbd_device_get(scep_store_t *st, apr_pool_t *p,
                                   const char *udid, scep_device_rec_t **rec)
{
    const char *args[1];

    args[0] = udid;
    return select_one(st, p, Q_DEV_GET, args, 1, device_conv, (void **)rec);
}

/* ------------------------------------------------------------------ */

static const scep_store_ops_t dbd_ops = {
    dbd_cert_insert,
    dbd_cert_by_serial,
    dbd_cert_by_transaction,
    dbd_cert_by_key,
    dbd_cert_list,
    dbd_cert_revoke,
    dbd_challenge_add,
    dbd_challenge_consume,
    dbd_pending_put,
    dbd_pending_get,
    dbd_pending_set_state,
    dbd_pending_list,
    dbd_device_upsert,
    dbd_device_get,
};

scep_store_t *scep_store_dbd_create(apr_pool_t *p,
                                    const scep_dbd_provider_t *prov,
                                    const scep_logger_t *log)
{
    scep_store_t *st = apr_pcalloc(p, sizeof(*st));
    dbd_store_t *ds = apr_pcalloc(p, sizeof(*ds));

    ds->prov = prov;
    ds->log = log ? log : scep_log_null();
    st->ops = &dbd_ops;
    st->backend = ds;
    return st;
}
