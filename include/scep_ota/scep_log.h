#ifndef SCEP_LOG_H
#define SCEP_LOG_H

/**
 * @file scep_log.h
 * Logging for the core library. The core knows nothing of httpd: it logs
 * through a logger (a callback plus a baton) that its caller supplies. The
 * httpd glue forwards to ap_log_rerror/ap_log_error, the CLI to stderr.
 *
 * Every message at debug level or above starts with its own tag,
 * SCEPLOGNO(nnnn) -> "SCEPnnnn: ". A tag belongs to one call site, is never
 * reused, and stays when only the wording changes.
 */

#include <apr_pools.h>
#include <apr_errno.h>

#define SCEPLOGNO(n) "SCEP" #n ": "

/** Levels mirror httpd's APLOG_* values so the glue can pass them through. */
typedef enum {
    SCEP_LOG_EMERG = 0,
    SCEP_LOG_ALERT,
    SCEP_LOG_CRIT,
    SCEP_LOG_ERR,
    SCEP_LOG_WARNING,
    SCEP_LOG_NOTICE,
    SCEP_LOG_INFO,
    SCEP_LOG_DEBUG,
    SCEP_LOG_TRACE1,
    SCEP_LOG_TRACE2,
    SCEP_LOG_TRACE3,
    SCEP_LOG_TRACE4,
    SCEP_LOG_TRACE5,
    SCEP_LOG_TRACE6,
    SCEP_LOG_TRACE7,
    SCEP_LOG_TRACE8
} scep_log_level_t;

#define SCEP_LOG_MARK __FILE__, __LINE__

/** Writes one finished message. */
typedef void scep_log_print_fn(void *baton, const char *file, int line,
                               scep_log_level_t level, apr_status_t rv,
                               const char *msg);
/** Tells whether a level is enabled, so disabled messages cost nothing. */
typedef int scep_log_enabled_fn(void *baton, scep_log_level_t level);

typedef struct scep_logger_t {
    scep_log_print_fn *print;
    scep_log_enabled_fn *enabled;
    void *baton;
} scep_logger_t;

/** A logger that writes to stderr up to a level (for the CLI and tests). */
scep_logger_t *scep_log_stderr(apr_pool_t *p, scep_log_level_t max_level);

/** A logger that drops everything. */
const scep_logger_t *scep_log_null(void);

int scep_log_is_enabled(const scep_logger_t *log, scep_log_level_t level);

/** Formats and writes a message when its level is enabled. */
void scep_log_perror(const scep_logger_t *log, const char *file, int line,
                     scep_log_level_t level, apr_status_t rv, apr_pool_t *p,
                     const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/**
 * Logs a message followed by everything in OpenSSL's error queue for this
 * thread, then clears the queue.
 */
void scep_log_openssl(const scep_logger_t *log, const char *file, int line,
                      scep_log_level_t level, apr_pool_t *p,
                      const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif /* SCEP_LOG_H */
