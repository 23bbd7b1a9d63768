/* The store in httpd: startup (create, migrate, hand the SQLite
 * file to the worker user), per-child connection pools, and mod_dbd's
 * connections for "SCEPStore dbd". */

#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_file_io.h>
#include <apr_file_info.h>
#include <apr_optional.h>
#include <apr_thread_proc.h>
#include <apr_thread_mutex.h>
#include <apr_global_mutex.h>
#include <apr_dbd.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <ap_mpm.h>
#include <util_mutex.h>
#include <mod_dbd.h>
#include <unixd.h>
#include <mod_unixd.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_config.h"
#include "mod_scep_ota_http.h"
#include "mod_scep_ota_log.h"
#include "mod_scep_ota_metrics.h"
#include "mod_scep_ota_store.h"
#include "scep_ota/scep_store_dbd.h"

static APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open_fn;
static APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close_fn;

/* per child: server_rec * -> scep_store_t *, read-only once built */
static apr_hash_t *stores;

/* the CA that records of "SCEPStore dbd" without a CA belong to (see
 * store_owner), fixed before the children fork */
static const char *dbd_owner;

/* The writers of a SQLite file queue on a global mutex (one per file,
 * configured with "Mutex ... scep-ota-store"): without it SQLite lets one
 * in and has the others sleep and retry in growing steps, and apr_dbd's
 * sqlite3 driver sleeps holding the one lock that all its connections in
 * the process share. sqlite3 store URI -> apr_global_mutex_t *, made in
 * post_config, attached again in each child. */
#define STORE_MUTEX_TYPE "scep-ota-store"
static apr_hash_t *write_mutexes;

/* ------------------------------------------------------------------ */
/* the store in force                                                   */

const char *scep_ota_store_uri(apr_pool_t *p, server_rec *s)
{
    const scep_ota_srv_conf_t *sc = scep_ota_srv_conf(s);

    if (sc && sc->store_uri) {
        return sc->store_uri;
    }
    return apr_pstrcat(p, "sqlite3:",
                       ap_server_root_relative(p, SCEP_STORE_DEFAULT_SQLITE),
                       NULL);
}

/* ------------------------------------------------------------------ */
/* startup: the SQLite file belongs to the worker user                  */

/* The store holds pending requests, UDIDs and challenge hashes: the file
 * is the worker user's alone, and so is a directory we make for it. */
#define STORE_FILE_MODE 0600
#define STORE_DIR_MODE  0700

/* SQLite keeps FILE-wal and FILE-shm next to the database. */
static const char *const sqlite_sidecars[] = { "-wal", "-shm", NULL };

static int running_as_root(void)
{
    return geteuid() == 0;
}

static int is_default_file(apr_pool_t *p, const char *path)
{
    const char *def = ap_server_root_relative(p, SCEP_STORE_DEFAULT_SQLITE);

    return def && !strcmp(def, path);
}

/* The worker user can write the directory: SQLite creates its -wal and
 * -shm files there, not only in the database file. */
static int dir_writable_by(const struct stat *sb, uid_t uid, gid_t gid)
{
    if (sb->st_uid == uid) {
        return (sb->st_mode & S_IWUSR) != 0;
    }
    if (sb->st_gid == gid) {
        return (sb->st_mode & S_IWGRP) != 0;
    }
    return (sb->st_mode & S_IWOTH) != 0;
}

/* What is at path, without following a link: APR_SUCCESS when a regular
 * file with one name is there, or nothing we can see (opening it tells
 * more); else why not, in *what. */
static apr_status_t store_file_kind(const char *path, const char **what)
{
    struct stat sb;

    *what = NULL;
    if (lstat(path, &sb)) {
        return APR_SUCCESS;
    }
    if (S_ISLNK(sb.st_mode)) {
        *what = "a symbolic link";
        return APR_EINVAL;
    }
    if (!S_ISREG(sb.st_mode)) {
        *what = "not a regular file";
        return APR_EINVAL;
    }
    if (sb.st_nlink != 1) {
        *what = "a file with other hard links";
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static void log_not_a_file(server_rec *s, int tag_is_check,
                           apr_status_t rv, const char *path,
                           const char *what)
{
    if (tag_is_check) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(4030)
                     "SCEPStore: %s is %s; the store must be a regular "
                     "file (httpd does not follow links where the worker "
                     "user can write): remove it", path, what);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(4031)
                     "SCEPStore: %s is %s; the store must be a regular "
                     "file (httpd does not follow links where the worker "
                     "user can write): remove it", path, what);
    }
}

/* Opened without following a link, checked on the descriptor: a regular
 * file with one name (a hard link would hand over another file). With
 * create, a missing file is made STORE_FILE_MODE; else a missing file is
 * APR_ENOENT. */
static apr_status_t open_store_file(server_rec *s, const char *path,
                                    int create, int *pfd, struct stat *sb)
{
    int fd, flags = O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK;
    const char *what = NULL;

    if (APR_SUCCESS != store_file_kind(path, &what)) {
        log_not_a_file(s, 0, APR_EINVAL, path, what);
        return APR_EINVAL;
    }
    fd = open(path, flags | (create ? O_CREAT : 0), STORE_FILE_MODE);
    if (fd < 0) {
        if (errno == ENOENT && !create) {
            return APR_ENOENT;
        }
        if (errno == ELOOP) {
            log_not_a_file(s, 0, APR_EINVAL, path, "a symbolic link");
            return APR_EINVAL;
        }
        ap_log_error(APLOG_MARK, APLOG_EMERG, errno, s, SCEPLOGNO(4032)
                     "SCEPStore: cannot open %s", path);
        return APR_FROM_OS_ERROR(errno);
    }
    if (fstat(fd, sb) || !S_ISREG(sb->st_mode) || sb->st_nlink != 1) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(4033)
                     "SCEPStore: %s is not a regular file with a single "
                     "name (%s); remove it", path,
                     S_ISREG(sb->st_mode) ? "it has other hard links"
                                          : "a device, FIFO or directory");
        close(fd);
        return APR_EINVAL;
    }
    *pfd = fd;
    return APR_SUCCESS;
}

/* Hands one store file to the worker user and makes it private, through
 * its descriptor only. APR_ENOENT when it is optional and missing. */
static apr_status_t secure_store_file(server_rec *s, const char *path,
                                      int create)
{
    uid_t uid = ap_unixd_config.user_id;
    gid_t gid = ap_unixd_config.group_id;
    struct stat sb;
    apr_status_t rv;
    int fd = -1;

    if (APR_SUCCESS != (rv = open_store_file(s, path, create, &fd, &sb))) {
        return rv;
    }
    if (running_as_root() && (sb.st_uid != uid || sb.st_gid != gid)
        && fchown(fd, uid, gid)) {
        rv = APR_FROM_OS_ERROR(errno);
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(4034)
                     "SCEPStore: cannot give %s to uid %ld", path,
                     (long)uid);
    }
    else if ((sb.st_mode & 07777) != STORE_FILE_MODE
             && (running_as_root() || sb.st_uid == geteuid())) {
        if (fchmod(fd, STORE_FILE_MODE)) {
            rv = APR_FROM_OS_ERROR(errno);
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(4035)
                         "SCEPStore: cannot make %s mode 0600", path);
        }
        else if (sb.st_mode & 077) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SCEPLOGNO(4036)
                         "SCEPStore: %s was mode %04o, readable beyond its "
                         "owner; now 0600", path,
                         (unsigned)(sb.st_mode & 07777));
        }
    }
    close(fd);
    return rv;
}

/* The directory we made (0700 from now on), or the default one (which an
 * admin may have made a link to elsewhere): the worker user's, changed
 * through a descriptor. */
static apr_status_t secure_store_dir(server_rec *s, const char *dir,
                                     int created)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC
                       | (created ? O_NOFOLLOW : 0));
    apr_status_t rv = APR_SUCCESS;

    if (fd < 0
        || (running_as_root() && fchown(fd, ap_unixd_config.user_id,
                                        ap_unixd_config.group_id))
        || (created && fchmod(fd, STORE_DIR_MODE))) {
        rv = APR_FROM_OS_ERROR(errno);
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(4037)
                     "SCEPStore: cannot make the directory %s the worker "
                     "user's", dir);
    }
    if (fd >= 0) {
        close(fd);
    }
    return rv;
}

/* Before opening: the directory exists; one we make (parents 0755, the
 * directory 0700) or the default one is the worker user's. */
static apr_status_t sqlite_dir(apr_pool_t *p, server_rec *s,
                               const char *path, const char **dir)
{
    apr_finfo_t fi;
    char *d = apr_pstrdup(p, path), *parent, *slash = strrchr(d, '/');
    int created = 0;
    apr_status_t rv = APR_SUCCESS;

    if (slash && slash != d) {
        *slash = '\0';
    }
    *dir = d;
    if (APR_SUCCESS != apr_stat(&fi, d, APR_FINFO_TYPE, p)) {
        parent = apr_pstrdup(p, d);
        if ((slash = strrchr(parent, '/')) != NULL && slash != parent) {
            *slash = '\0';
            rv = apr_dir_make_recursive(parent, APR_FPROT_UREAD
                                        | APR_FPROT_UWRITE
                                        | APR_FPROT_UEXECUTE
                                        | APR_FPROT_GREAD
                                        | APR_FPROT_GEXECUTE
                                        | APR_FPROT_WREAD
                                        | APR_FPROT_WEXECUTE, p);
        }
        if (APR_SUCCESS == rv || APR_STATUS_IS_EEXIST(rv)) {
            rv = apr_dir_make(d, APR_FPROT_UREAD | APR_FPROT_UWRITE
                              | APR_FPROT_UEXECUTE, p);
        }
        if (APR_SUCCESS != rv) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(4021)
                         "SCEPStore: cannot create the directory %s", d);
            return rv;
        }
        created = 1;
    }
    return created || is_default_file(p, path)
           ? secure_store_dir(s, d, created) : APR_SUCCESS;
}

/* The database and its -wal and -shm, before SQLite opens them: made or
 * checked, the worker user's, 0600. */
static apr_status_t sqlite_files(apr_pool_t *p, server_rec *s,
                                 const char *path, const char *dir)
{
    const char *const *suffix;
    struct stat sb;
    apr_status_t rv = secure_store_file(s, path, 1);

    for (suffix = sqlite_sidecars; APR_SUCCESS == rv && *suffix; ++suffix) {
        rv = secure_store_file(s, apr_pstrcat(p, path, *suffix, NULL), 0);
        rv = APR_STATUS_IS_ENOENT(rv) ? APR_SUCCESS : rv;
    }
    if (APR_SUCCESS == rv && running_as_root()
        && (stat(dir, &sb) || !dir_writable_by(&sb, ap_unixd_config.user_id,
                                               ap_unixd_config.group_id))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(4022)
                     "SCEPStore: the directory %s must be writable by the "
                     "user httpd's children run as (uid %ld): SQLite creates "
                     "its -wal and -shm files next to %s", dir,
                     (long)ap_unixd_config.user_id, path);
        rv = APR_EACCES;
    }
    return rv;
}

static apr_status_t claim_unowned(apr_pool_t *p, const scep_logger_t *log,
                                  scep_dbd_conn_t *conn, const char *owner,
                                  const char **err);

/* Creates or migrates the schema, and gives records of schema 1 to the
 * store's owner (see store_owner). */
static apr_status_t migrate(apr_pool_t *p, server_rec *s, const char *uri,
                            const char *driver, const char *params,
                            const char *owner)
{
    const scep_logger_t *log = scep_ota_server_logger(p, s);
    scep_dbd_conn_t *conn;
    const char *err = NULL;
    int version = 0;
    apr_status_t rv;

    rv = scep_dbd_connect(p, driver, params, &conn, &err);
    if (APR_SUCCESS == rv) {
        rv = scep_dbd_migrate(conn, p, log, &version, &err);
        if (APR_SUCCESS == rv) {
            rv = claim_unowned(p, log, conn, owner, &err);
        }
        scep_dbd_disconnect(conn);
    }
    if (APR_SUCCESS != rv) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(4024)
                     "SCEPStore %s: %s", uri, err ? err : "cannot open");
        return rv;
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, SCEPLOGNO(4023)
                 "store %s ready (schema version %d, was %d)", uri,
                 SCEP_STORE_SCHEMA_VERSION, version);
    return APR_SUCCESS;
}

/* SQLite opens (and may create) -wal, -shm and journal files by name: as
 * root, in a directory the worker user can write, that would follow what
 * a worker planted there. So a root httpd migrates in a child process
 * that first becomes the worker user, as httpd's children do. */
static apr_status_t migrate_as_worker(apr_pool_t *p, server_rec *s,
                                      const char *uri, const char *driver,
                                      const char *params, const char *owner)
{
    apr_proc_t proc;
    apr_exit_why_e why;
    apr_status_t rv;
    int code = 0;

    if (!running_as_root()) {
        return migrate(p, s, uri, driver, params, owner);
    }
    rv = apr_proc_fork(&proc, p);
    if (APR_INCHILD == rv) {
        if (ap_unixd_setup_child()) {
            _exit(2);            /* httpd has logged why */
        }
        _exit(APR_SUCCESS == migrate(p, s, uri, driver, params, owner)
              ? 0 : 1);
    }
    if (APR_INPARENT != rv) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(4038)
                     "SCEPStore %s: cannot fork to open the store as the "
                     "worker user", uri);
        return rv;
    }
    rv = apr_proc_wait(&proc, &code, &why, APR_WAIT);
    if (APR_CHILD_DONE != rv || why != APR_PROC_EXIT || code != 0) {
        if (code != 1) {         /* 1: migrate() has logged why */
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(4039)
                         "SCEPStore %s: opening the store as uid %ld "
                         "failed (%s %d)", uri,
                         (long)ap_unixd_config.user_id,
                         why == APR_PROC_EXIT ? "exit" : "signal", code);
        }
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

/* The CA that records written before the store kept CAs apart belong
 * to: the one CA of every server on this store; "" when several CAs share
 * it, NULL when none uses it. */
static const char *store_owner(apr_pool_t *p, server_rec *base,
                               const char *uri)
{
    const char *owner = NULL;
    const scep_ota_srv_conf_t *sc;
    server_rec *s;

    for (s = base; s; s = s->next) {
        sc = scep_ota_srv_conf(s);
        if (!sc->ca || strcmp(scep_ota_store_uri(p, s), uri)) {
            continue;
        }
        if (owner && strcmp(owner, sc->ca->id)) {
            return "";
        }
        owner = sc->ca->id;
    }
    return owner;
}

/* Gives records without a CA to the store's owner; refuses when several
 * CAs share the store, since nobody can tell whose they are. */
static apr_status_t claim_unowned(apr_pool_t *p, const scep_logger_t *log,
                                  scep_dbd_conn_t *conn, const char *owner,
                                  const char **err)
{
    apr_status_t rv;
    int rows = 0;

    rv = scep_dbd_claim_unowned(conn, p, NULL, &rows, err);
    if (APR_SUCCESS != rv || rows == 0 || !owner) {
        return rv;
    }
    if (!*owner) {
        *err = apr_psprintf(p, "%d records were written before the store "
                            "kept CAs apart, and several CAs (virtual hosts) "
                            "use this store now: start once with only the "
                            "CA that wrote them, or give each CA its own "
                            "SCEPStore", rows);
        return APR_EINVAL;
    }
    rv = scep_dbd_claim_unowned(conn, p, owner, &rows, err);
    if (APR_SUCCESS == rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_NOTICE, 0, p,
                        SCEPLOGNO(4004) "store: %d records of schema 1 now "
                        "belong to the CA %s (SHA-256 of its name and key)",
                        rows, owner);
    }
    return rv;
}

/* Creates or migrates the database behind a URI (not "dbd"). */
static apr_status_t prepare_store(apr_pool_t *p, server_rec *s,
                                  const char *uri, const char *owner)
{
    const char *driver, *params, *err, *dir = NULL;
    apr_status_t rv;

    rv = scep_store_uri_parse(p, uri, &driver, &params, &err);
    if (APR_SUCCESS != rv) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(4040)
                     "SCEPStore %s: %s", uri, err);
        return rv;
    }
    if (strcmp(driver, "sqlite3")) {
        return migrate(p, s, uri, driver, params, owner);
    }
    if (APR_SUCCESS != (rv = sqlite_dir(p, s, params, &dir))
        || APR_SUCCESS != (rv = sqlite_files(p, s, params, dir))) {
        return rv;
    }
    return migrate_as_worker(p, s, uri, driver, params, owner);
}

/* 0, or logs why the database or one of its -wal, -shm is no file. */
static int store_files_refused(apr_pool_t *p, server_rec *s,
                               const char *path)
{
    const char *const *suffix = sqlite_sidecars;
    const char *f = path, *what;
    apr_status_t rv;

    for (;;) {
        if (APR_SUCCESS != (rv = store_file_kind(f, &what))) {
            log_not_a_file(s, 1, rv, f, what);
            return 1;
        }
        if (!*suffix) {
            return 0;
        }
        f = apr_pstrcat(p, path, *suffix++, NULL);
    }
}

/* Also on "apache2 -t": a store file that is a link or no file at all
 * refuses the configuration before anything opens it. */
static int store_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *base)
{
    const char *driver, *params, *err;
    server_rec *s;

    (void)pconf;
    (void)plog;
    for (s = base; s; s = s->next) {
        if (APR_SUCCESS == scep_store_uri_parse(ptemp,
                                                scep_ota_store_uri(ptemp, s),
                                                &driver, &params, &err)
            && !strcmp(driver, "sqlite3")
            && store_files_refused(ptemp, s, params)) {
            return !OK;
        }
    }
    return OK;
}

static int store_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    write_mutexes = NULL;
    return APR_SUCCESS == ap_mutex_register(pconf, STORE_MUTEX_TYPE, NULL,
                                            APR_LOCK_DEFAULT,
                                            AP_MUTEX_ALLOW_NONE)
           ? OK : !OK;
}

/* The write mutex of a sqlite3 store (none for other drivers, nor with
 * "Mutex none scep-ota-store"). */
static apr_status_t write_mutex_create(apr_pool_t *pconf, server_rec *base,
                                       const char *uri)
{
    apr_global_mutex_t *mutex = NULL;
    const char *id;
    apr_status_t rv;

    if (strncmp(uri, "sqlite3:", 8)) {
        return APR_SUCCESS;
    }
    /* several files: one mutex each, told apart in lock file names */
    id = apr_itoa(pconf, (int)apr_hash_count(write_mutexes));
    rv = ap_global_mutex_create(&mutex, NULL, STORE_MUTEX_TYPE, id, base,
                                pconf, 0);
    if (APR_SUCCESS != rv) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, base, SCEPLOGNO(0500)
                     "SCEPStore %s: cannot create the mutex its writers "
                     "queue on (see the Mutex directive, type %s)", uri + 8,
                     STORE_MUTEX_TYPE);
        return rv;
    }
    if (mutex) {
        apr_hash_set(write_mutexes, apr_pstrdup(pconf, uri),
                     APR_HASH_KEY_STRING, mutex);
    }
    return APR_SUCCESS;
}

static int store_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *base)
{
    apr_hash_t *seen = apr_hash_make(ptemp);
    server_rec *s;
    const char *uri;

    (void)plog;
    dbd_owner = NULL;
    write_mutexes = apr_hash_make(pconf);
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    dbd_open_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd_close_fn = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    for (s = base; s; s = s->next) {
        uri = scep_ota_store_uri(ptemp, s);
        if (!strcmp(uri, "memory")) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, SCEPLOGNO(4029)
                         "SCEPStore memory: certificates and challenges are "
                         "kept per process and lost on restart (for "
                         "benchmarks and tests, never for production)");
            continue;
        }
        if (!strcmp(uri, "dbd")) {
            dbd_owner = store_owner(pconf, base, uri);
            if (!dbd_open_fn || !dbd_close_fn) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(4025)
                             "SCEPStore dbd needs mod_dbd: LoadModule "
                             "dbd_module, with DBDriver and DBDParams");
                return !OK;
            }
            continue;
        }
        if (apr_hash_get(seen, uri, APR_HASH_KEY_STRING)) {
            continue;
        }
        apr_hash_set(seen, uri, APR_HASH_KEY_STRING, uri);
        if (APR_SUCCESS != prepare_store(ptemp, s, uri,
                                         store_owner(ptemp, base, uri))
            || APR_SUCCESS != write_mutex_create(pconf, base, uri)) {
            return !OK;
        }
    }
    return OK;
}

/* ------------------------------------------------------------------ */
/* "SCEPStore dbd": connections from mod_dbd                            */

typedef struct {
    server_rec *s;
    const scep_logger_t *log;
    volatile int migrated;
    scep_dbd_losses_t losses;
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;
#endif
} dbd_glue_t;

/*
 * What we keep of a mod_dbd connection's server session: our settings
 * ran on it, and our statements are prepared in it. Kept with the
 * connection (in its ap_dbd_t's hash, under SESSION_KEY), in a pool of
 * its own under the connection's. It goes when a statement fails: when
 * the connection was lost, mod_dbd's next ap_dbd_open() reopens it in
 * place (apr_dbd_check_conn: pgsql resets the broken connection inside
 * the same handle), so a new server session, without our settings and
 * statements, comes back in the very ap_dbd_t we knew. A failure on a
 * connection that still answers may come from such a session too, when
 * another module's statement broke the shared connection first.
 */
typedef struct {
    scep_dbd_conn_t conn;        /* first: the backend sees only this */
    ap_dbd_t *dbd;
    apr_pool_t *pool;
} glue_session_t;

#define SESSION_KEY "scep_ota:session"

/* connections tried for one operation: each may turn out lost after a
 * server restart, and mod_dbd reopens the one we give back */
#define GLUE_TRIES 8

/* Once per child: mod_dbd's pool opens after fork, so the schema of a
 * "dbd" store is checked by the first request that needs it. */
static apr_status_t glue_migrate(dbd_glue_t *g, scep_dbd_conn_t *conn,
                                 apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;
    const char *err;

#if APR_HAS_THREADS
    apr_thread_mutex_lock(g->mutex);
#endif
    if (!g->migrated) {
        rv = scep_dbd_migrate(conn, p, g->log, NULL, &err);
        if (APR_SUCCESS == rv
            && APR_SUCCESS != (rv = claim_unowned(p, g->log, conn, dbd_owner,
                                                  &err))) {
            scep_log_perror(g->log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                            SCEPLOGNO(4005) "store (mod_dbd): %s", err);
        }
        g->migrated = APR_SUCCESS == rv;
    }
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(g->mutex);
#endif
    return rv;
}

static void glue_forget(glue_session_t *gs)
{
    apr_hash_set(gs->dbd->prepared, SESSION_KEY, APR_HASH_KEY_STRING, NULL);
    apr_pool_destroy(gs->pool);
}

/* Sets our session up on a connection that has none of ours.
 * APR_ECONNRESET: the connection is lost (mod_dbd opens connections
 * before we first use them, and a server restart may come in between). */
static apr_status_t glue_new_session(dbd_glue_t *g, ap_dbd_t *dbd,
                                     apr_pool_t *p, glue_session_t **pgs)
{
    glue_session_t *gs;
    apr_pool_t *sp;
    apr_status_t rv;
    const char *err;

    if (APR_SUCCESS != (rv = apr_pool_create(&sp, dbd->pool))) {
        return rv;
    }
    apr_pool_tag(sp, "scep_ota_dbd_session");
    gs = apr_pcalloc(sp, sizeof(*gs));
    gs->dbd = dbd;
    gs->pool = sp;
    gs->conn.driver = dbd->driver;
    gs->conn.handle = dbd->handle;
    gs->conn.pool = sp;
    gs->conn.prepared = apr_hash_make(sp);
    rv = scep_dbd_session_setup(&gs->conn, p, &err);
    if (APR_SUCCESS != rv && !scep_dbd_alive(&gs->conn, p)) {
        scep_log_perror(g->log, SCEP_LOG_MARK, SCEP_LOG_DEBUG, 0, p,
                        SCEPLOGNO(4054) "store (mod_dbd): a connection was "
                        "lost before its first use; given back to be "
                        "reopened");
        scep_dbd_losses_add(&g->losses);
        rv = APR_ECONNRESET;
    }
    else if (APR_SUCCESS != rv) {
        scep_log_perror(g->log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(4026) "store (mod_dbd): %s", err);
    }
    if (APR_SUCCESS != rv) {
        apr_pool_destroy(sp);
        return rv;
    }
    scep_dbd_losses_session(&g->losses, &gs->conn, g->log, p);
    apr_hash_set(dbd->prepared, SESSION_KEY, APR_HASH_KEY_STRING, gs);
    *pgs = gs;
    return APR_SUCCESS;
}

/* Our session on the connection mod_dbd lent: the one we know if it is
 * still there, else a new one. APR_ECONNRESET: the connection is lost. */
static apr_status_t glue_session(dbd_glue_t *g, ap_dbd_t *dbd,
                                 apr_pool_t *p, glue_session_t **pgs)
{
    glue_session_t *gs = apr_hash_get(dbd->prepared, SESSION_KEY,
                                      APR_HASH_KEY_STRING);
    apr_status_t rv;

    if (!gs) {
        rv = glue_new_session(g, dbd, p, &gs);
    }
    else if (!scep_dbd_losses_check(&g->losses, &gs->conn, p)) {
        scep_log_perror(g->log, SCEP_LOG_MARK, SCEP_LOG_DEBUG, 0, p,
                        SCEPLOGNO(4053) "store (mod_dbd): an idle "
                        "connection was lost too; given back to be "
                        "reopened");
        glue_forget(gs);
        return APR_ECONNRESET;
    }
    else {
        rv = APR_SUCCESS;
    }
    if (APR_SUCCESS == rv && !g->migrated
        && APR_SUCCESS != (rv = glue_migrate(g, &gs->conn, p))
        && !scep_dbd_alive(&gs->conn, p)) {
        /* lost while checking the schema: mod_dbd reopens it */
        scep_dbd_losses_add(&g->losses);
        glue_forget(gs);
        return APR_ECONNRESET;
    }
    *pgs = gs;
    return rv;
}

static apr_status_t glue_acquire(void *baton, apr_pool_t *p,
                                 scep_dbd_conn_t **conn)
{
    dbd_glue_t *g = baton;
    glue_session_t *gs = NULL;
    ap_dbd_t *dbd;
    apr_status_t rv = APR_ECONNRESET;
    int tries;

    for (tries = 0; tries < GLUE_TRIES && APR_STATUS_IS_ECONNRESET(rv);
         ++tries) {
        if (!(dbd = dbd_open_fn(p, g->s))) {
            return APR_EGENERAL; /* mod_dbd has logged why */
        }
        if (APR_SUCCESS == (rv = glue_session(g, dbd, p, &gs))) {
            *conn = &gs->conn;
            return APR_SUCCESS;
        }
        dbd_close_fn(g->s, dbd);
    }
    return rv;
}

static void glue_release(void *baton, scep_dbd_conn_t *conn,
                         scep_dbd_state_t state)
{
    dbd_glue_t *g = baton;
    glue_session_t *gs = (glue_session_t *)conn;
    ap_dbd_t *dbd = gs->dbd;

    if (SCEP_DBD_LOST == state) {
        scep_dbd_losses_add(&g->losses);
    }
    if (SCEP_DBD_OK != state) {
        glue_forget(gs);
    }
    dbd_close_fn(g->s, dbd);
}

static scep_store_t *dbd_store(apr_pool_t *pchild, server_rec *s)
{
    dbd_glue_t *g = apr_pcalloc(pchild, sizeof(*g));
    scep_dbd_provider_t *prov = apr_pcalloc(pchild, sizeof(*prov));

    g->s = s;
    g->log = scep_ota_server_logger(pchild, s);
#if APR_HAS_THREADS
    apr_thread_mutex_create(&g->mutex, APR_THREAD_MUTEX_DEFAULT, pchild);
#endif
    prov->acquire = glue_acquire;
    prov->release = glue_release;
    prov->baton = g;
    return scep_store_dbd_create(pchild, prov, g->log);
}

/* ------------------------------------------------------------------ */
/* per child                                                            */

static apr_status_t write_lock(void *baton)
{
    return apr_global_mutex_lock(baton);
}

static apr_status_t write_unlock(void *baton)
{
    return apr_global_mutex_unlock(baton);
}

/* A child attaches to the write mutexes made before the fork; a store
 * whose mutex fails here writes without it (SQLite still serializes). */
static void write_mutexes_child_init(apr_pool_t *pchild, server_rec *base)
{
    apr_hash_index_t *hi;
    apr_global_mutex_t *mutex;
    const char *uri;
    apr_status_t rv;

    if (!write_mutexes) {
        return;
    }
    for (hi = apr_hash_first(pchild, write_mutexes); hi;
         hi = apr_hash_next(hi)) {
        uri = apr_hash_this_key(hi);
        mutex = apr_hash_this_val(hi);
        rv = apr_global_mutex_child_init(&mutex,
                                         apr_global_mutex_lockfile(mutex),
                                         pchild);
        if (APR_SUCCESS != rv) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, base, SCEPLOGNO(0501)
                         "SCEPStore %s: cannot attach to the writers' "
                         "mutex; this process writes without it", uri + 8);
            mutex = NULL;
        }
        apr_hash_set(write_mutexes, uri, APR_HASH_KEY_STRING, mutex);
    }
}

static scep_store_t *own_store(apr_pool_t *pchild, server_rec *s,
                               const char *uri, int max_conns)
{
    const char *driver, *params, *err;
    scep_dbd_provider_t *prov;
    const scep_logger_t *log = scep_ota_server_logger(pchild, s);
    apr_global_mutex_t *mutex;
    scep_store_t *st;
    apr_status_t rv;

    rv = scep_store_uri_parse(pchild, uri, &driver, &params, &err);
    if (APR_SUCCESS == rv) {
        rv = scep_dbd_pool_create(&prov, pchild, driver, params, max_conns,
                                  log);
    }
    if (APR_SUCCESS != rv) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, SCEPLOGNO(4027)
                     "store %s: no connection pool", uri);
        return NULL;
    }
    st = scep_store_dbd_create(pchild, prov, log);
    mutex = write_mutexes ? apr_hash_get(write_mutexes, uri,
                                         APR_HASH_KEY_STRING) : NULL;
    if (mutex) {
        scep_store_dbd_write_lock(st, write_lock, write_unlock, mutex);
    }
    return st;
}

static void store_child_init(apr_pool_t *pchild, server_rec *base)
{
    apr_hash_t *by_uri = apr_hash_make(pchild);
    server_rec *s, **key;
    scep_store_t *st;
    const char *uri;
    int threads = 1;

    stores = apr_hash_make(pchild);
    write_mutexes_child_init(pchild, base);
    if (APR_SUCCESS != ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads)
        || threads < 1) {
        threads = 1;
    }
    for (s = base; s; s = s->next) {
        uri = scep_ota_store_uri(pchild, s);
        if (!strcmp(uri, "dbd")) {
            st = dbd_open_fn ? dbd_store(pchild, s) : NULL;
        }
        else if (!strcmp(uri, "memory")) {
            st = scep_store_memory_create(pchild);
        }
        else if (!(st = apr_hash_get(by_uri, uri, APR_HASH_KEY_STRING))) {
            st = own_store(pchild, s, uri, threads);
            apr_hash_set(by_uri, uri, APR_HASH_KEY_STRING, st);
        }
        key = apr_palloc(pchild, sizeof(*key));
        *key = s;
        if (st && scep_ota_srv_conf(s)->ca) {
            /* each CA sees its own records only */
            st = scep_store_scoped(pchild, st, scep_ota_srv_conf(s)->ca->id);
        }
        apr_hash_set(stores, key, sizeof(*key), st);
    }
}

apr_status_t scep_ota_store_for_request(request_rec *r, scep_store_t **store)
{
    *store = stores ? apr_hash_get(stores, &r->server, sizeof(r->server))
                    : NULL;
    if (!*store) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(4028)
                      "no store for this server (%s)",
                      scep_ota_store_uri(r->pool, r->server));
        scep_metrics_store_error(scep_ota_metrics());
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

int scep_ota_store_ready(request_rec *r, scep_store_t **store,
                         scep_outcome_t *out, const char *who,
                         const char *reason)
{
    apr_status_t rv = scep_ota_store_for_request(r, store);

    if (APR_SUCCESS == rv) {
        return 1;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(0112)
                  "%s: the store is unavailable", who);
    memset(out, 0, sizeof(*out));
    out->kind = SCEP_OUTCOME_UNAVAILABLE;
    out->reason = reason;
    out->retry_after = SCEP_OTA_STORE_RETRY_AFTER;
    return 0;
}

void scep_ota_store_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(store_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(store_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(store_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(store_child_init, NULL, NULL, APR_HOOK_MIDDLE);
}
