#ifndef MOD_SCEP_OTA_LOG_H
#define MOD_SCEP_OTA_LOG_H

/* The logger bridge: loggers that hand the core's messages to httpd's
 * error log, with the file and line the core gave. */

#include <httpd.h>

#include "scep_ota/scep_log.h"

/** Logs against s (startup, child init, and work outside a request). */
const scep_logger_t *scep_ota_server_logger(apr_pool_t *p, server_rec *s);

/** Logs against r, under the request's LogLevel. */
const scep_logger_t *scep_ota_request_logger(request_rec *r);

#endif /* MOD_SCEP_OTA_LOG_H */
