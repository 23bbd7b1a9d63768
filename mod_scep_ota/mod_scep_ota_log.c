/* The logger bridge: the core's scep_log messages into httpd's error log,
 * under this module's LogLevel (LogLevel scep_ota:trace4). */

#include <httpd.h>
#include <http_log.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_log.h"

static void server_print(void *baton, const char *file, int line,
                         scep_log_level_t level, apr_status_t rv,
                         const char *msg)
{
    ap_log_error_(file, line, APLOG_MODULE_INDEX, (int)level, rv,
                  (server_rec *)baton, "%s", msg);
}

static int server_enabled(void *baton, scep_log_level_t level)
{
    return APLOG_MODULE_IS_LEVEL((server_rec *)baton, APLOG_MODULE_INDEX,
                                 (int)level);
}

static void request_print(void *baton, const char *file, int line,
                          scep_log_level_t level, apr_status_t rv,
                          const char *msg)
{
    ap_log_rerror_(file, line, APLOG_MODULE_INDEX, (int)level, rv,
                   (request_rec *)baton, "%s", msg);
}

static int request_enabled(void *baton, scep_log_level_t level)
{
    return APLOG_R_MODULE_IS_LEVEL((request_rec *)baton, APLOG_MODULE_INDEX,
                                   (int)level);
}

const scep_logger_t *scep_ota_server_logger(apr_pool_t *p, server_rec *s)
{
    scep_logger_t *log = apr_palloc(p, sizeof(*log));

    log->print = server_print;
    log->enabled = server_enabled;
    log->baton = s;
    return log;
}

const scep_logger_t *scep_ota_request_logger(request_rec *r)
{
    scep_logger_t *log = apr_palloc(r->pool, sizeof(*log));

    log->print = request_print;
    log->enabled = request_enabled;
    log->baton = r;
    return log;
}
