#ifndef MOD_SCEP_OTA_HTTP_H
#define MOD_SCEP_OTA_HTTP_H

/* What every handler of the module needs from HTTP: sending bytes and
 * short error texts, reading a bounded request body. */

#include <httpd.h>

/** Sends bytes that live as long as the child (computed at startup). */
int scep_ota_send_static(request_rec *r, const char *type, const void *body,
                         apr_size_t len);

/** Sends bytes allocated from the request pool. */
int scep_ota_send_bytes(request_rec *r, const char *type, const void *body,
                        apr_size_t len);

/** A short text/plain answer with the given status; returns OK. */
int scep_ota_send_text(request_rec *r, int status, const char *text);

/**
 * Reads the whole request body, up to limit bytes. OK, or the HTTP status
 * to answer (413 over the limit, 400 on a broken body), already logged.
 */
int scep_ota_read_body(request_rec *r, apr_off_t limit,
                       const unsigned char **data, apr_size_t *len);

#endif /* MOD_SCEP_OTA_HTTP_H */
