#ifndef SCEP_TOOLS_HTTP_H
#define SCEP_TOOLS_HTTP_H

/* A minimal HTTP/1.1 client for scep-ota device: one request per
 * connection ("Connection: close"), http and https (OpenSSL BIOs). */

#include <apr_pools.h>
#include <apr_time.h>

typedef struct scep_http_t scep_http_t;

/** cafile: PEM file to verify https servers with (NULL: the system's);
 * insecure: do not verify at all. */
scep_http_t *scep_http_make(apr_pool_t *p, const char *cafile, int insecure,
                            apr_interval_time_t timeout);

typedef struct scep_http_resp_t {
    int status;                    /* 0: no answer (transport error) */
    const char *content_type;      /* as sent, NULL if absent */
    const unsigned char *body;
    apr_size_t len;
} scep_http_resp_t;

/**
 * Sends one request. APR_SUCCESS when an HTTP answer came (any status);
 * otherwise *err says what went wrong on the way (connection refused,
 * closed before an answer, TLS failure, bad URL).
 */
apr_status_t scep_http_request(scep_http_t *h, apr_pool_t *p,
                               const char *method, const char *url,
                               const char *content_type, const void *body,
                               apr_size_t len, scep_http_resp_t *resp,
                               const char **err);

/** Percent-encodes a query value (everything but A-Z a-z 0-9 - _ . ~). */
const char *scep_http_escape(apr_pool_t *p, const char *s);

#endif /* SCEP_TOOLS_HTTP_H */
