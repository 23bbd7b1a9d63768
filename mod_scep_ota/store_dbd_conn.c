/* The DBD store's connections: store URIs, the per-driver dialect table,
 * session setup, schema creation and migration, and the core's own
 * connection pool (one connection per thread, through an apr_reslist). */

#include <stdlib.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_thread_mutex.h>
#include <apu.h>
#include <apr_reslist.h>

#include "scep_ota/scep_store_dbd.h"

/* ------------------------------------------------------------------ */
/* the dialect table: every difference between the drivers lives here  */

/*
 * Durability of SQLite commits. The store promises that a record is on
 * disk when cert_insert returns, before the CertRep leaves the server.
 * In WAL mode a commit appends to the -wal file:
 *  - synchronous=NORMAL writes the WAL without fsync: a commit survives
 *    the death of the process (kill -9 of a child: the data is in the
 *    kernel's page cache and reaches the file), but a power cut or kernel
 *    crash may lose the last commits.
 *  - synchronous=FULL also fsyncs the WAL at every commit.
 * "A killed child loses nothing a client was told had succeeded" holds
 * with either. We take FULL all the same: a certificate record lost to a
 * power cut is a valid certificate in a client's hands that the CA can no
 * longer list or revoke. The price is one fsync of the append-only WAL per
 * commit, and commits are serialized: on a virtual disk that fsync can
 * cost several times the three RSA private-key operations of an
 * enrollment (bench/store.py measures it); PostgreSQL, which groups
 * commits, is the answer for heavy load.
 * busy_timeout makes a writer wait for another process's write lock
 * instead of failing at once; WAL lets readers run during a write.
 */
static const char *const sqlite_session[] = {
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    NULL
};

/* a DBA may turn synchronous_commit off server-wide: not for us */
static const char *const pgsql_session[] = {
    "SET synchronous_commit TO on",
    NULL
};

/* Opens the migration transaction, exclusive among all processes and
 * nodes: IMMEDIATE takes SQLite's write lock at once; PostgreSQL
 * serializes on an advisory lock ("SCEP"). */
static const char *const sqlite_lock[] = { "BEGIN IMMEDIATE", NULL };
static const char *const pgsql_lock[] = {
    "BEGIN",
    "SELECT pg_advisory_xact_lock(1396917584)",
    NULL
};

typedef struct {
    const char *driver;
    const char *const *session;
    const char *const *lock;
    const char *unprepare;   /* drops a labelled statement (the label
                              * follows); NULL: labels are client-side */
} dialect_t;

static const dialect_t dialects[] = {
    { "sqlite3", sqlite_session, sqlite_lock, NULL },
    { "pgsql", pgsql_session, pgsql_lock, "DEALLOCATE " },
};

static const dialect_t *dialect_of(const scep_dbd_conn_t *conn)
{
    const char *name = apr_dbd_name(conn->driver);
    apr_size_t i;

    for (i = 0; i < sizeof(dialects) / sizeof(dialects[0]); ++i) {
        if (!strcmp(name, dialects[i].driver)) {
            return &dialects[i];
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* the schema: the same SQL on both drivers                             */

/* Times are apr_time_t (microseconds since the epoch) in BIGINT; DER is
 * base64 text, which both drivers carry as a plain string. */
static const char *const schema_v1[] = {
    "CREATE TABLE IF NOT EXISTS certificates ("
    " serial TEXT PRIMARY KEY,"
    " subject TEXT NOT NULL,"
    " transaction_id TEXT,"
    " key_hash TEXT,"
    " not_before BIGINT NOT NULL,"
    " not_after BIGINT NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " revoked_at BIGINT NOT NULL DEFAULT 0,"
    " reason INTEGER NOT NULL DEFAULT -1,"
    " issued_at BIGINT NOT NULL,"
    " der TEXT NOT NULL)",
    "CREATE UNIQUE INDEX IF NOT EXISTS certificates_issuance"
    " ON certificates (transaction_id, key_hash)"
    " WHERE transaction_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS certificates_key"
    " ON certificates (key_hash)",
    "CREATE INDEX IF NOT EXISTS certificates_status"
    " ON certificates (status)",
    "CREATE TABLE IF NOT EXISTS challenges ("
    " hash TEXT PRIMARY KEY,"
    " purpose INTEGER NOT NULL,"
    " bound_to TEXT,"
    " expires BIGINT NOT NULL,"
    " consumed INTEGER NOT NULL DEFAULT 0,"
    " created BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pending ("
    " transaction_id TEXT PRIMARY KEY,"
    " subject TEXT,"
    " key_hash TEXT,"
    " state INTEGER NOT NULL,"
    " created BIGINT NOT NULL,"
    " csr TEXT,"
    " requester TEXT,"
    " cert_serial TEXT)",
    "CREATE TABLE IF NOT EXISTS devices ("
    " udid TEXT PRIMARY KEY,"
    " serial_number TEXT,"
    " product TEXT,"
    " cert_serial TEXT,"
    " last_seen BIGINT NOT NULL)",
    NULL
};

/* Version 2: every record carries its CA ("" for rows written before:
 * the store hands them to the one CA that uses it, see claim_unowned);
 * certificates say what made them (origin: one certificate per approved
 * request and per renewal, by constraint), for which device and user, and
 * what renewed them; challenges say who consumed them, so that the retry
 * of a request whose child died passes again, who asked for them and
 * through what (a user's outstanding challenges are counted by the
 * indexed creator), whether an admin revoked them, and carry a random
 * handle (ref) to name them by, never the secret; pending requests keep what
 * was decided when they arrived. Pending requests and devices are unique
 * per CA: their tables are rebuilt with the CA in the key. */
static const char *const schema_v2[] = {
    "ALTER TABLE certificates ADD COLUMN ca TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE certificates ADD COLUMN origin TEXT",
    "ALTER TABLE certificates ADD COLUMN request_txid TEXT",
    "ALTER TABLE certificates ADD COLUMN udid TEXT",
    "ALTER TABLE certificates ADD COLUMN enrolled_by TEXT",
    "ALTER TABLE certificates ADD COLUMN superseded_by TEXT",
    "DROP INDEX certificates_issuance",
    "CREATE UNIQUE INDEX certificates_issuance"
    " ON certificates (ca, transaction_id, key_hash)"
    " WHERE transaction_id IS NOT NULL",
    "CREATE UNIQUE INDEX certificates_origin"
    " ON certificates (ca, origin) WHERE origin IS NOT NULL",
    "DROP INDEX certificates_status",
    "CREATE INDEX certificates_status ON certificates (ca, status)",
    "ALTER TABLE challenges ADD COLUMN ca TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE challenges ADD COLUMN consumed_by TEXT",
    "ALTER TABLE challenges ADD COLUMN ref TEXT",
    "ALTER TABLE challenges ADD COLUMN created_by TEXT",
    "ALTER TABLE challenges ADD COLUMN via TEXT",
    "ALTER TABLE challenges ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX challenges_expires ON challenges (expires)",
    "CREATE INDEX challenges_creator ON challenges (ca, created_by)",
    "CREATE UNIQUE INDEX challenges_ref ON challenges (ca, ref)"
    " WHERE ref IS NOT NULL",
    "CREATE TABLE pending_v2 ("
    " ca TEXT NOT NULL DEFAULT '',"
    " transaction_id TEXT NOT NULL,"
    " subject TEXT,"
    " key_hash TEXT,"
    " state INTEGER NOT NULL,"
    " created BIGINT NOT NULL,"
    " csr TEXT,"
    " requester TEXT,"
    " cert_serial TEXT,"
    " plan TEXT,"
    " PRIMARY KEY (ca, transaction_id))",
    "INSERT INTO pending_v2 (transaction_id, subject, key_hash, state,"
    " created, csr, requester, cert_serial)"
    " SELECT transaction_id, subject, key_hash, state, created, csr,"
    " requester, cert_serial FROM pending",
    "DROP TABLE pending",
    "ALTER TABLE pending_v2 RENAME TO pending",
    "CREATE TABLE devices_v2 ("
    " ca TEXT NOT NULL DEFAULT '',"
    " udid TEXT NOT NULL,"
    " serial_number TEXT,"
    " product TEXT,"
    " cert_serial TEXT,"
    " last_seen BIGINT NOT NULL,"
    " enrolled_by TEXT,"
    " PRIMARY KEY (ca, udid))",
    "INSERT INTO devices_v2 (udid, serial_number, product, cert_serial,"
    " last_seen) SELECT udid, serial_number, product, cert_serial,"
    " last_seen FROM devices",
    "DROP TABLE devices",
    "ALTER TABLE devices_v2 RENAME TO devices",
    NULL
};

/* Version 3: the CRL each CA publishes, kept so that every process and
 * node serves the same one (same cRLNumber) until the revocations change
 * or it is due for renewal; (ca, number) is the key, so two processes
 * racing to publish the next number publish one CRL. The revoked
 * certificates of a CA, counted at each CRL request, get an index of
 * their own that answers the count alone (only they are in it: issuing
 * pays nothing for it; with status in it, SQLite prefers it to
 * certificates_status). */
static const char *const schema_v3[] = {
    "CREATE TABLE crls ("
    " ca TEXT NOT NULL,"
    " number BIGINT NOT NULL,"
    " this_update BIGINT NOT NULL,"
    " next_update BIGINT NOT NULL,"
    " revocations TEXT NOT NULL,"
    " der TEXT NOT NULL,"
    " PRIMARY KEY (ca, number))",
    "CREATE INDEX certificates_revoked"
    " ON certificates (ca, status, revoked_at) WHERE status = 1",
    /* a device's certificates (OTARevokePrevious) */
    "CREATE INDEX certificates_udid"
    " ON certificates (ca, udid) WHERE udid IS NOT NULL",
    NULL
};

/* migrations[v] takes the schema from version v to v + 1 */
static const char *const *const migrations[SCEP_STORE_SCHEMA_VERSION] = {
    schema_v1,
    schema_v2,
    schema_v3,
};

/* ------------------------------------------------------------------ */
/* URIs and connections                                                 */

apr_status_t scep_store_uri_parse(apr_pool_t *p, const char *uri,
                                  const char **driver, const char **params,
                                  const char **err)
{
    const char *colon;

    *err = NULL;
    if (!strcasecmp(uri, "dbd") || !strcasecmp(uri, "memory")) {
        *driver = strcasecmp(uri, "dbd") ? "memory" : "dbd";
        *params = NULL;
        return APR_SUCCESS;
    }
    colon = strchr(uri, ':');
    if (colon && colon[1]) {
        *driver = apr_pstrmemdup(p, uri, (apr_size_t)(colon - uri));
        *params = colon + 1;
        if (!strcmp(*driver, "sqlite3") || !strcmp(*driver, "pgsql")) {
            return APR_SUCCESS;
        }
    }
    *err = apr_psprintf(p, "'%s' is no store: use sqlite3:/path/file.db, "
                        "pgsql:PARAMS, dbd or memory", uri);
    return APR_EINVAL;
}

/* Runs statements that may return rows (PRAGMAs do) and drops the rows. */
static apr_status_t run_all(scep_dbd_conn_t *conn, apr_pool_t *p,
                            const char *const *sql, const char **err)
{
    apr_dbd_results_t *res;
    apr_dbd_row_t *row = NULL;
    int rc;

    for (; *sql; ++sql) {
        res = NULL;
        row = NULL;
        rc = apr_dbd_select(conn->driver, p, conn->handle, &res, *sql, 1);
        if (rc) {
            *err = apr_psprintf(p, "%s: %s", *sql,
                                apr_dbd_error(conn->driver, conn->handle,
                                              rc));
            return APR_EGENERAL;
        }
        while (!apr_dbd_get_row(conn->driver, p, res, &row, -1)) {
            /* drain */
        }
    }
    return APR_SUCCESS;
}

apr_status_t scep_dbd_session_setup(scep_dbd_conn_t *conn, apr_pool_t *p,
                                    const char **err)
{
    const dialect_t *d = dialect_of(conn);

    if (!d) {
        *err = apr_psprintf(p, "the store does not speak DBD driver '%s' "
                            "(use sqlite3 or pgsql)",
                            apr_dbd_name(conn->driver));
        return APR_ENOTIMPL;
    }
    return run_all(conn, p, d->session, err);
}

int scep_dbd_alive(scep_dbd_conn_t *conn, apr_pool_t *p)
{
    static const char *const probe[] = { "SELECT 1", NULL };
    const char *err;

    return APR_SUCCESS == run_all(conn, p, probe, &err);
}

apr_status_t scep_dbd_unprepare(scep_dbd_conn_t *conn, apr_pool_t *p,
                                const char *label)
{
    const dialect_t *d = dialect_of(conn);
    int nrows = 0;

    if (!d || !d->unprepare) {
        return APR_ENOTIMPL;
    }
    /* the label is one of our constants, not client data */
    return apr_dbd_query(conn->driver, conn->handle, &nrows,
                         apr_pstrcat(p, d->unprepare, label, NULL))
           ? APR_EGENERAL : APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* lost connections                                                     */

void scep_dbd_losses_add(scep_dbd_losses_t *l)
{
    apr_atomic_inc32(&l->lost);
}

int scep_dbd_losses_check(scep_dbd_losses_t *l, scep_dbd_conn_t *conn,
                          apr_pool_t *p)
{
    apr_uint32_t lost = apr_atomic_read32(&l->lost);

    if (conn->checked == lost) {
        return 1;
    }
    if (!scep_dbd_alive(conn, p)) {
        return 0;
    }
    conn->checked = lost;
    return 1;
}

void scep_dbd_losses_session(scep_dbd_losses_t *l, scep_dbd_conn_t *conn,
                             const scep_logger_t *log, apr_pool_t *p)
{
    apr_uint32_t lost = apr_atomic_read32(&l->lost);
    apr_uint32_t told = apr_atomic_read32(&l->told);

    conn->checked = lost;
    if (lost != told && apr_atomic_cas32(&l->told, lost, told) == told) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_NOTICE, 0, p,
                        SCEPLOGNO(4051) "store: connected to the database "
                        "again after losing a connection; session settings "
                        "and statements are set up anew on each new "
                        "connection");
    }
}

/* Opens a connection whose memory lives in cp (which the caller owns);
 * the driver is looked up with dp, which outlives cp (apr_dbd keeps the
 * name in its process-wide driver table). */
static apr_status_t connect_in(apr_pool_t *cp, apr_pool_t *dp,
                               const char *driver,
                               const char *params, scep_dbd_conn_t **pconn,
                               const char **err)
{
    scep_dbd_conn_t *conn = apr_pcalloc(cp, sizeof(*conn));
    const char *why = NULL;
    apr_status_t rv;

    *err = NULL;
    conn->pool = cp;
    conn->prepared = apr_hash_make(cp);
    rv = apr_dbd_get_driver(dp, driver, &conn->driver);
    if (APR_SUCCESS != rv) {
        *err = apr_psprintf(cp, "APR DBD driver '%s' is not available "
                            "(Debian: install libaprutil1-dbd-%s)", driver,
                            driver);
        goto leave;
    }
    rv = apr_dbd_open_ex(conn->driver, cp, params, &conn->handle, &why);
    if (APR_SUCCESS != rv) {
        *err = apr_psprintf(cp, "cannot open the %s store: %s", driver,
                            why ? why : "connection failed");
        conn->handle = NULL;
        goto leave;
    }
    rv = scep_dbd_session_setup(conn, cp, err);
    if (APR_SUCCESS != rv) {
        apr_dbd_close(conn->driver, conn->handle);
        goto leave;
    }
    *pconn = conn;
leave:
    return rv;
}

apr_status_t scep_dbd_connect(apr_pool_t *p, const char *driver,
                              const char *params, scep_dbd_conn_t **conn,
                              const char **err)
{
    apr_pool_t *cp;
    apr_status_t rv;

    apr_dbd_init(p);
    apr_pool_create(&cp, p);
    rv = connect_in(cp, p, driver, params, conn, err);
    if (APR_SUCCESS != rv) {
        *err = apr_pstrdup(p, *err);
        apr_pool_destroy(cp);
    }
    return rv;
}

void scep_dbd_disconnect(scep_dbd_conn_t *conn)
{
    if (conn) {
        apr_dbd_close(conn->driver, conn->handle);
        apr_pool_destroy(conn->pool);
    }
}

/* ------------------------------------------------------------------ */
/* schema migration                                                     */

static apr_status_t exec_sql(scep_dbd_conn_t *conn, apr_pool_t *p,
                             const char *sql, const char **err)
{
    int nrows = 0;
    int rc = apr_dbd_query(conn->driver, conn->handle, &nrows, sql);

    if (rc) {
        *err = apr_psprintf(p, "%s: %s", sql,
                            apr_dbd_error(conn->driver, conn->handle, rc));
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

/* The number in the first column of the last row a query gives; 0 when
 * there is none. */
static apr_status_t count_rows(scep_dbd_conn_t *conn, apr_pool_t *p,
                               const char *sql, int *n, const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *v;
    int rc;

    *n = 0;
    rc = apr_dbd_select(conn->driver, p, conn->handle, &res, sql, 1);
    if (rc) {
        *err = apr_psprintf(p, "%s: %s", sql,
                            apr_dbd_error(conn->driver, conn->handle, rc));
        return APR_EGENERAL;
    }
    while (!apr_dbd_get_row(conn->driver, p, res, &row, -1)) {
        if ((v = apr_dbd_get_entry(conn->driver, row, 0))) {
            *n = atoi(v);
        }
    }
    return APR_SUCCESS;
}

/* The version recorded in the database; 0 when there is none yet. */
static apr_status_t read_version(scep_dbd_conn_t *conn, apr_pool_t *p,
                                 int *version, const char **err)
{
    return count_rows(conn, p, "SELECT version FROM scep_schema WHERE id = 1",
                      version, err);
}

static apr_status_t migrate_locked(scep_dbd_conn_t *conn, apr_pool_t *p,
                                   const scep_logger_t *log, int *found,
                                   const char **err)
{
    apr_status_t rv;
    int v;

    rv = exec_sql(conn, p, "CREATE TABLE IF NOT EXISTS scep_schema ("
                  "id INTEGER PRIMARY KEY, version INTEGER NOT NULL)", err);
    if (APR_SUCCESS != rv
        || APR_SUCCESS != (rv = read_version(conn, p, found, err))) {
        return rv;
    }
    if (*found > SCEP_STORE_SCHEMA_VERSION) {
        *err = apr_psprintf(p, "the store's schema version %d is newer than "
                            "this mod_scep_ota understands (%d)", *found,
                            SCEP_STORE_SCHEMA_VERSION);
        return APR_EINVAL;
    }
    for (v = *found; v < SCEP_STORE_SCHEMA_VERSION; ++v) {
        const char *const *sql;
        for (sql = migrations[v]; *sql; ++sql) {
            if (APR_SUCCESS != (rv = exec_sql(conn, p, *sql, err))) {
                return rv;
            }
        }
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, 0, p,
                        SCEPLOGNO(4001) "store schema migrated from version "
                        "%d to %d", v, v + 1);
    }
    if (*found == SCEP_STORE_SCHEMA_VERSION) {
        return APR_SUCCESS;
    }
    /* our own constant, not client data */
    return exec_sql(conn, p, apr_psprintf(p, *found
                    ? "UPDATE scep_schema SET version = %d WHERE id = 1"
                    : "INSERT INTO scep_schema (id, version) VALUES (1, %d)",
                    SCEP_STORE_SCHEMA_VERSION), err);
}

apr_status_t scep_dbd_migrate(scep_dbd_conn_t *conn, apr_pool_t *p,
                              const scep_logger_t *log, int *version,
                              const char **err)
{
    const dialect_t *d = dialect_of(conn);
    apr_status_t rv;
    const char *ignored;
    int found = 0;

    *err = NULL;
    if (!d) {
        return scep_dbd_session_setup(conn, p, err);
    }
    rv = run_all(conn, p, d->lock, err);
    if (APR_SUCCESS != rv) {
        exec_sql(conn, p, "ROLLBACK", &ignored);
        goto leave;
    }
    rv = migrate_locked(conn, p, log, &found, err);
    if (APR_SUCCESS != rv) {
        exec_sql(conn, p, "ROLLBACK", &ignored);
        goto leave;
    }
    rv = exec_sql(conn, p, "COMMIT", err);
leave:
    if (version) {
        *version = found;
    }
    if (APR_SUCCESS != rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(4002) "store schema: %s", *err);
    }
    return rv;
}

/* ------------------------------------------------------------------ */
/* records of schema 1, which carried no CA                             */

static const char *const owned_tables[] = {
    "certificates", "challenges", "pending", "devices", NULL
};

/* A CA identity is the hex of a digest: safe to write into SQL. */
static int is_hex(const char *s)
{
    for (; *s; ++s) {
        if (!apr_isxdigit(*s)) {
            return 0;
        }
    }
    return 1;
}

apr_status_t scep_dbd_claim_unowned(scep_dbd_conn_t *conn, apr_pool_t *p,
                                    const char *ca, int *rows,
                                    const char **err)
{
    const char *const *t;
    const char *ignored;
    apr_status_t rv = APR_SUCCESS;
    int n;

    *rows = 0;
    for (t = owned_tables; *t && APR_SUCCESS == rv; ++t) {
        rv = count_rows(conn, p, apr_pstrcat(p, "SELECT COUNT(*) FROM ", *t,
                                             " WHERE ca = ''", NULL),
                        &n, err);
        *rows += n;
    }
    if (APR_SUCCESS != rv || !ca || *rows == 0) {
        return rv;
    }
    if (!*ca || !is_hex(ca)) {
        *err = "not a CA identity";
        return APR_EINVAL;
    }
    rv = exec_sql(conn, p, "BEGIN", err);
    for (t = owned_tables; *t && APR_SUCCESS == rv; ++t) {
        rv = exec_sql(conn, p, apr_pstrcat(p, "UPDATE ", *t, " SET ca = '",
                                           ca, "' WHERE ca = ''", NULL), err);
    }
    if (APR_SUCCESS != rv) {
        exec_sql(conn, p, "ROLLBACK", &ignored);
        return rv;
    }
    return exec_sql(conn, p, "COMMIT", err);
}

/* ------------------------------------------------------------------ */
/* the core's own connections                                           */

typedef struct {
    const char *driver;
    const char *params;
    const scep_logger_t *log;
    apr_pool_t *pool;
    scep_dbd_losses_t losses;
#if APR_HAS_THREADS
    int max_conns;
    apr_reslist_t *list;
#else
    scep_dbd_conn_t *single;
#endif
} own_pool_t;

/* Each connection owns an unmanaged pool: the reslist may construct
 * connections in several threads at once. */
static apr_status_t own_open(own_pool_t *op, scep_dbd_conn_t **conn)
{
    apr_pool_t *cp;
    apr_status_t rv;
    const char *err;

    rv = apr_pool_create_unmanaged_ex(&cp, NULL, NULL);
    if (APR_SUCCESS != rv) {
        return rv;
    }
    rv = connect_in(cp, op->pool, op->driver, op->params, conn, &err);
    if (APR_SUCCESS != rv) {
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, cp,
                        SCEPLOGNO(4003) "%s", err);
        apr_pool_destroy(cp);
        return rv;
    }
    scep_dbd_losses_session(&op->losses, *conn, op->log, cp);
    return rv;
}

#if APR_HAS_THREADS

static apr_status_t own_construct(void **res, void *params, apr_pool_t *p)
{
    (void)p;
    return own_open(params, (scep_dbd_conn_t **)res);
}

static apr_status_t own_destruct(void *res, void *params, apr_pool_t *p)
{
    (void)params;
    (void)p;
    scep_dbd_disconnect(res);
    return APR_SUCCESS;
}

/* A connection from the list, checked when it is older than the last
 * lost one: a server restart takes every connection at once. Not
 * apr_dbd_check_conn(): it tells nothing of a connection the server
 * closed while it was idle, and pgsql's reopens a broken one in place,
 * a new session without our settings and statements. */
static apr_status_t own_acquire(void *baton, apr_pool_t *p,
                                scep_dbd_conn_t **conn)
{
    own_pool_t *op = baton;
    void *res;
    apr_status_t rv;
    int tries;

    /* each idle connection may be lost, then a new one is made */
    for (tries = 0; tries <= op->max_conns; ++tries) {
        if (APR_SUCCESS != (rv = apr_reslist_acquire(op->list, &res))) {
            return rv;
        }
        if (scep_dbd_losses_check(&op->losses, res, p)) {
            *conn = res;
            return APR_SUCCESS;
        }
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_DEBUG, 0, p,
                        SCEPLOGNO(4052) "store: an idle connection was lost "
                        "too; dropped");
        apr_reslist_invalidate(op->list, res);
    }
    return APR_ECONNRESET;
}

static void own_release(void *baton, scep_dbd_conn_t *conn,
                        scep_dbd_state_t state)
{
    own_pool_t *op = baton;

    if (SCEP_DBD_LOST == state) {
        scep_dbd_losses_add(&op->losses);
    }
    /* after any failure a new connection: nothing of the old session
     * (a statement half-prepared, an odd state) is carried on */
    if (SCEP_DBD_OK != state) {
        apr_reslist_invalidate(op->list, conn);
    }
    else {
        apr_reslist_release(op->list, conn);
    }
}

static apr_status_t own_setup(own_pool_t *op, int max_conns)
{
    apr_status_t rv;

    op->max_conns = max_conns;
    rv = apr_reslist_create(&op->list, 0, max_conns, max_conns, 0,
                            own_construct, own_destruct, op, op->pool);
    if (APR_SUCCESS == rv) {
        apr_reslist_timeout_set(op->list, apr_time_from_sec(30));
    }
    return rv;
}

#else /* !APR_HAS_THREADS: one connection per process */

static apr_status_t own_acquire(void *baton, apr_pool_t *p,
                                scep_dbd_conn_t **conn)
{
    own_pool_t *op = baton;
    apr_status_t rv = APR_SUCCESS;

    (void)p;
    if (!op->single) {
        rv = own_open(op, &op->single);
    }
    *conn = op->single;
    return rv;
}

static void own_release(void *baton, scep_dbd_conn_t *conn,
                        scep_dbd_state_t state)
{
    own_pool_t *op = baton;

    if (SCEP_DBD_LOST == state) {
        scep_dbd_losses_add(&op->losses);
    }
    if (SCEP_DBD_OK != state) {
        scep_dbd_disconnect(conn);
        op->single = NULL;
    }
}

static apr_status_t own_setup(own_pool_t *op, int max_conns)
{
    (void)op;
    (void)max_conns;
    return APR_SUCCESS;
}

#endif /* APR_HAS_THREADS */

apr_status_t scep_dbd_pool_create(scep_dbd_provider_t **prov, apr_pool_t *p,
                                  const char *driver, const char *params,
                                  int max_conns, const scep_logger_t *log)
{
    own_pool_t *op = apr_pcalloc(p, sizeof(*op));
    scep_dbd_provider_t *pr = apr_pcalloc(p, sizeof(*pr));
    const apr_dbd_driver_t *drv;
    apr_status_t rv;

    apr_dbd_init(p);
    /* load the driver now, not in several threads at once later */
    if (APR_SUCCESS != (rv = apr_dbd_get_driver(p, driver, &drv))) {
        return rv;
    }
    op->driver = apr_pstrdup(p, driver);
    op->params = apr_pstrdup(p, params);
    op->log = log ? log : scep_log_null();
    op->pool = p;
    rv = own_setup(op, max_conns > 0 ? max_conns : 1);
    if (APR_SUCCESS == rv) {
        pr->acquire = own_acquire;
        pr->release = own_release;
        pr->baton = op;
        *prov = pr;
    }
    return rv;
}

apr_status_t scep_store_dbd_open(scep_store_t **st, apr_pool_t *p,
                                 const char *uri, int max_conns,
                                 const scep_logger_t *log, const char **err)
{
    const char *driver, *params;
    scep_dbd_conn_t *conn = NULL;
    scep_dbd_provider_t *prov;
    apr_status_t rv;

    rv = scep_store_uri_parse(p, uri, &driver, &params, err);
    if (APR_SUCCESS != rv) {
        goto leave;
    }
    if (!params) {
        *err = strcmp(driver, "memory")
               ? "the store 'dbd' needs httpd's mod_dbd"
               : "the store 'memory' lives inside each httpd process and "
                 "cannot be opened from outside";
        rv = APR_EINVAL;
        goto leave;
    }
    rv = scep_dbd_connect(p, driver, params, &conn, err);
    if (APR_SUCCESS != rv) {
        goto leave;
    }
    rv = scep_dbd_migrate(conn, p, log, NULL, err);
    scep_dbd_disconnect(conn);
    if (APR_SUCCESS != rv) {
        goto leave;
    }
    rv = scep_dbd_pool_create(&prov, p, driver, params, max_conns, log);
    if (APR_SUCCESS != rv) {
        *err = "cannot create the store's connection pool";
        goto leave;
    }
    *st = scep_store_dbd_create(p, prov, log);
leave:
    return rv;
}
