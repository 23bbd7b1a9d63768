#ifndef MOD_SCEP_OTA_HTTP_H
#define MOD_SCEP_OTA_HTTP_H

/* What every handler of the module needs from HTTP: sending bytes and
 * short error texts, reading a bounded request body. */

#include <httpd.h>

#include "scep_ota/scep_outcome.h"

/** Seconds a client is asked to wait (Retry-After) when the store is
 * down. */
#define SCEP_OTA_STORE_RETRY_AFTER 10

/** Sends bytes that live as long as the child (computed at startup). */
int scep_ota_send_static(request_rec *r, const char *type, const void *body,
                         apr_size_t len);

/** Sends bytes allocated from the request pool. */
int scep_ota_send_bytes(request_rec *r, const char *type, const void *body,
                        apr_size_t len);

/** A short text/plain answer with the given status; returns OK. */
int scep_ota_send_text(request_rec *r, int status, const char *text);

/** The HTTP status of a kind of outcome (for log lines). */
int scep_ota_outcome_status(scep_outcome_kind_t kind);

/**
 * Answers with an outcome of the core, the handlers' one way out: OK sends
 * the body; any other kind sets its status, Retry-After and Allow when the
 * outcome says so, and sends its reason as text/plain (returning OK), or
 * without a reason returns the status for httpd's own error page.
 */
int scep_ota_answer(request_rec *r, const scep_outcome_t *out);

/** The same for a refusal of the glue's own: kind and reason only. */
int scep_ota_refuse(request_rec *r, scep_outcome_kind_t kind,
                    const char *reason);

/** 405 with Allow: the methods the resource takes. */
int scep_ota_not_allowed(request_rec *r, const char *allow,
                         const char *reason);

/**
 * Reads the whole request body, up to limit bytes. OK, or the HTTP status
 * to answer (413 over the limit, 400 on a broken body), already logged.
 */
int scep_ota_read_body(request_rec *r, apr_off_t limit,
                       const unsigned char **data, apr_size_t *len);

#endif /* MOD_SCEP_OTA_HTTP_H */
