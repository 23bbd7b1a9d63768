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

/**
 * Sends HTTP Basic credentials (RFC 7617) with every request to the origin
 * (scheme, host and port) of url, and to no other. APR_EINVAL when url is
 * not an http:// or https:// URL or the user holds a colon.
 */
apr_status_t scep_http_set_basic(scep_http_t *h, apr_pool_t *p,
                                 const char *url, const char *user,
                                 const char *password);

typedef struct scep_http_resp_t {
    int status;                    /* 0: no answer (transport error) */
    const char *content_type;      /* as sent, NULL if absent */
    const unsigned char *body;
    apr_size_t len;
} scep_http_resp_t;

/**
 * Sends one request. APR_SUCCESS when an HTTP answer came (any status);
 * otherwise *err says what went wrong on the way (connection refused,
 * closed before an answer, TLS failure, bad URL). A URL with credentials
 * in it (user:password@host) is refused, and *err does not repeat them.
 */
apr_status_t scep_http_request(scep_http_t *h, apr_pool_t *p,
                               const char *method, const char *url,
                               const char *content_type, const void *body,
                               apr_size_t len, scep_http_resp_t *resp,
                               const char **err);

/** Percent-encodes a query value (everything but A-Z a-z 0-9 - _ . ~). */
const char *scep_http_escape(apr_pool_t *p, const char *s);

#endif /* SCEP_TOOLS_HTTP_H */
