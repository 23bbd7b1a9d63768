#ifndef SCEP_STORE_DBD_H
#define SCEP_STORE_DBD_H

/**
 * @file scep_store_dbd.h
 * The scep_store_t backend over APR DBD (apr_dbd.h): SQLite 3 and
 * PostgreSQL with the same SQL; the few dialect differences (connection
 * setup, the migration lock) live in one table in store_dbd_conn.c.
 *
 * The backend never opens connections itself: a provider lends it one per
 * operation. Two providers exist:
 *  - scep_dbd_pool_create(): the core's own connections (a file for
 *    sqlite3, a params string for pgsql), one per thread through an
 *    apr_reslist; used by the default SQLite store, the CLI and the tests;
 *  - the httpd glue's mod_dbd provider (ap_dbd_open/ap_dbd_close), for
 *    "SCEPStore dbd".
 *
 * Store URIs: "sqlite3:/path/file.db", "pgsql:host=... dbname=...",
 * "dbd" (only the glue knows what that means), and "memory" (the
 * process-local store of scep_store.h: benchmarks and tests only).
 */

#include <apr_pools.h>
#include <apr_hash.h>
#include <apr_dbd.h>

#include "scep_ota/scep_log.h"
#include "scep_ota/scep_store.h"

/** The default store: this SQLite file under httpd's ServerRoot (like
 * mod_md's "md" directory), shared by the module and the CLI. */
#define SCEP_STORE_DEFAULT_SQLITE "state/scep_ota.db"

/** The schema version this code creates and understands. */
#define SCEP_STORE_SCHEMA_VERSION 3

/** A connection lent to the backend for one operation. */
typedef struct scep_dbd_conn_t {
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    apr_pool_t *pool;        /* lives exactly as long as the server session
                              * (statements are prepared in it) */
    apr_hash_t *prepared;    /* label -> apr_dbd_prepared_t *, in pool */
    apr_uint32_t checked;    /* the provider's: its count of lost
                              * connections when this one last answered */
} scep_dbd_conn_t;

/** How an operation leaves the connection it borrowed. */
typedef enum {
    SCEP_DBD_OK = 0,         /* every statement ran */
    SCEP_DBD_FAILED,         /* a statement failed, the server still
                              * answers on the connection */
    SCEP_DBD_LOST            /* the connection to the server is gone */
} scep_dbd_state_t;

/** Lends a connection; *conn stays valid until release. The session
 * setup (scep_dbd_session_setup) has run on the server session behind
 * it, and conn->prepared holds only statements of that session. */
typedef apr_status_t scep_dbd_acquire_fn(void *baton, apr_pool_t *p,
                                         scep_dbd_conn_t **conn);
/** Gives it back. A provider never lends a LOST connection again with
 * its session state (statements, settings): it drops it, or sets a new
 * session up before lending it again; and it checks (scep_dbd_alive) its
 * other connections that are older than the loss before lending them, as
 * a server restart takes all of them at once. */
typedef void scep_dbd_release_fn(void *baton, scep_dbd_conn_t *conn,
                                 scep_dbd_state_t state);

/** A provider's count of lost connections: a connection older than the
 * last loss is checked before it is lent again. */
typedef struct {
    volatile apr_uint32_t lost;    /* connections reported LOST */
    volatile apr_uint32_t told;    /* `lost` when a reconnection was logged */
} scep_dbd_losses_t;

/** Counts a connection reported LOST. */
void scep_dbd_losses_add(scep_dbd_losses_t *l);

/** Before lending conn: 1 when it is newer than the last loss or still
 * answers (it is then marked checked), 0 when it is lost too. */
int scep_dbd_losses_check(scep_dbd_losses_t *l, scep_dbd_conn_t *conn,
                          apr_pool_t *p);

/** After a new session was set up on conn: marks it checked and, the
 * first time after a loss, logs that the store is connected again. */
void scep_dbd_losses_session(scep_dbd_losses_t *l, scep_dbd_conn_t *conn,
                             const scep_logger_t *log, apr_pool_t *p);

typedef struct scep_dbd_provider_t {
    scep_dbd_acquire_fn *acquire;
    scep_dbd_release_fn *release;
    void *baton;
} scep_dbd_provider_t;

/**
 * Splits a store URI into an apr_dbd driver name and its params string.
 * "sqlite3:PATH" (PATH as given: resolve it before), "pgsql:PARAMS";
 * "dbd" and "memory" give that driver name and params NULL.
 */
apr_status_t scep_store_uri_parse(apr_pool_t *p, const char *uri,
                                  const char **driver, const char **params,
                                  const char **err);

/**
 * Opens one connection of our own and applies the driver's session setup
 * (for sqlite3: busy timeout, WAL, synchronous). Close it with
 * scep_dbd_disconnect(); pool cleanup does not close it.
 */
apr_status_t scep_dbd_connect(apr_pool_t *p, const char *driver,
                              const char *params, scep_dbd_conn_t **conn,
                              const char **err);
void scep_dbd_disconnect(scep_dbd_conn_t *conn);

/** Applies the driver's session setup to a connection someone else opened
 * (a mod_dbd connection); harmless to repeat. */
apr_status_t scep_dbd_session_setup(scep_dbd_conn_t *conn, apr_pool_t *p,
                                    const char **err);

/** Whether the server still answers on this connection (one trivial
 * query). A failed statement on a connection that answers is an error of
 * the statement; on one that does not, the connection is lost. */
int scep_dbd_alive(scep_dbd_conn_t *conn, apr_pool_t *p);

/**
 * Drops the server-side prepared statement of that label from the
 * session, for a label the session holds although conn->prepared does not
 * know it (a session set up again on a connection that had not been
 * lost). APR_ENOTIMPL for drivers without server-side labels (sqlite3).
 */
apr_status_t scep_dbd_unprepare(scep_dbd_conn_t *conn, apr_pool_t *p,
                                const char *label);

/**
 * Creates the schema or migrates it to SCEP_STORE_SCHEMA_VERSION, in one
 * transaction under a lock, so several processes or nodes starting at once
 * do it once. Fails when the database is newer than this code.
 * *version (if not NULL) receives the version found before migrating
 * (0 for a new database).
 */
apr_status_t scep_dbd_migrate(scep_dbd_conn_t *conn, apr_pool_t *p,
                              const scep_logger_t *log, int *version,
                              const char **err);

/**
 * Records written before they carried a CA (schema 1): *rows counts them
 * on a migrated database; with ca (a scep_ca_t id) not NULL they are given
 * to that CA, in one transaction.
 */
apr_status_t scep_dbd_claim_unowned(scep_dbd_conn_t *conn, apr_pool_t *p,
                                    const char *ca, int *rows,
                                    const char **err);

/**
 * A provider over our own connections: at most max_conns open at once
 * (threads wait for one), created on demand, kept for reuse. The pool's
 * lifetime bounds the provider's (create it in the child, not before
 * fork).
 */
apr_status_t scep_dbd_pool_create(scep_dbd_provider_t **prov, apr_pool_t *p,
                                  const char *driver, const char *params,
                                  int max_conns, const scep_logger_t *log);

/** The store over a provider. log may be NULL. */
scep_store_t *scep_store_dbd_create(apr_pool_t *p,
                                    const scep_dbd_provider_t *prov,
                                    const scep_logger_t *log);

/** The SQL of the store's statement of that label (apr_dbd's %s
 * placeholders), to look at its plan; NULL when there is none. */
const char *scep_store_dbd_sql(const char *label);

/** Takes and gives back a lock; APR_SUCCESS when taken. */
typedef apr_status_t scep_dbd_lock_fn(void *baton);

/**
 * Has the store take a lock around each statement that writes (and
 * around nothing else: not reads, not the work between statements), so
 * that the writers of a database queue on it instead of polling for the
 * database's own write lock. The httpd glue passes a global mutex for a
 * SQLite file: SQLite lets one writer at a time in and has the others
 * sleep and retry in growing steps. Not for PostgreSQL, which runs
 * writers side by side. st is what scep_store_dbd_create() returned;
 * without a call, writes take no lock.
 */
void scep_store_dbd_write_lock(scep_store_t *st, scep_dbd_lock_fn *lock,
                               scep_dbd_lock_fn *unlock, void *baton);

/**
 * All in one, for the CLI and tests: parses the URI (not "dbd"), migrates
 * the schema, and returns a store over a connection pool of max_conns.
 */
apr_status_t scep_store_dbd_open(scep_store_t **st, apr_pool_t *p,
                                 const char *uri, int max_conns,
                                 const scep_logger_t *log, const char **err);

#endif /* SCEP_STORE_DBD_H */
