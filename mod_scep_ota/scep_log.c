/* Core logging: formatting, level checks and the OpenSSL error queue. */

#include <stdio.h>
#include <stdarg.h>

#include <apr_strings.h>
#include <openssl/err.h>

#include "scep_ota/scep_log.h"

typedef struct {
    scep_log_level_t max_level;
} stderr_baton_t;

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
    "trace1", "trace2", "trace3", "trace4", "trace5", "trace6", "trace7",
    "trace8"
};

static void stderr_print(void *baton, const char *file, int line,
                         scep_log_level_t level, apr_status_t rv,
                         const char *msg)
{
    (void)baton;
    (void)file;
    (void)line;
    if (APR_SUCCESS != rv) {
        char buf[128];
        fprintf(stderr, "[%s] %s (%s)\n", level_names[level], msg,
                apr_strerror(rv, buf, sizeof(buf)));
    }
    else {
        fprintf(stderr, "[%s] %s\n", level_names[level], msg);
    }
}

static int stderr_enabled(void *baton, scep_log_level_t level)
{
    const stderr_baton_t *b = baton;
    return level <= b->max_level;
}

scep_logger_t *scep_log_stderr(apr_pool_t *p, scep_log_level_t max_level)
{
    scep_logger_t *log = apr_pcalloc(p, sizeof(*log));
    stderr_baton_t *b = apr_pcalloc(p, sizeof(*b));

    b->max_level = max_level;
    log->print = stderr_print;
    log->enabled = stderr_enabled;
    log->baton = b;
    return log;
}

static int null_enabled(void *baton, scep_log_level_t level)
{
    (void)baton;
    (void)level;
    return 0;
}

static const scep_logger_t null_logger = { NULL, null_enabled, NULL };

const scep_logger_t *scep_log_null(void)
{
    return &null_logger;
}

int scep_log_is_enabled(const scep_logger_t *log, scep_log_level_t level)
{
    if (!log || !log->print) {
        return 0;
    }
    return log->enabled ? log->enabled(log->baton, level) : 1;
}

void scep_log_perror(const scep_logger_t *log, const char *file, int line,
                     scep_log_level_t level, apr_status_t rv, apr_pool_t *p,
                     const char *fmt, ...)
{
    va_list ap;
    const char *msg;

    if (!scep_log_is_enabled(log, level)) {
        return;
    }
    va_start(ap, fmt);
    msg = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    log->print(log->baton, file, line, level, rv, msg);
}

/* Appends the queued OpenSSL errors, oldest first, as "; lib: reason". */
static const char *openssl_errors(apr_pool_t *p)
{
    const char *out = "";
    const char *data, *func;
    unsigned long e;
    int flags;
    char buf[256];

    while (0 != (e = ERR_get_error_all(NULL, NULL, &func, &data, &flags))) {
        ERR_error_string_n(e, buf, sizeof(buf));
        out = apr_pstrcat(p, out, "; ", buf,
                          (flags & ERR_TXT_STRING) && data && *data ? " (" : "",
                          (flags & ERR_TXT_STRING) && data ? data : "",
                          (flags & ERR_TXT_STRING) && data && *data ? ")" : "",
                          NULL);
    }
    return out;
}

void scep_log_openssl(const scep_logger_t *log, const char *file, int line,
                      scep_log_level_t level, apr_pool_t *p,
                      const char *fmt, ...)
{
    va_list ap;
    const char *msg;

    if (!scep_log_is_enabled(log, level)) {
        ERR_clear_error();
        return;
    }
    va_start(ap, fmt);
    msg = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    msg = apr_pstrcat(p, msg, openssl_errors(p), NULL);
    log->print(log->baton, file, line, level, APR_SUCCESS, msg);
}
