/* The "scep-ocsp" handler: the OCSP responder of the virtual host's CA.
 * HTTP in (POST body, or the base64 request in a GET's path), the core's
 * OCSPResponse out. */

#include <apr_base64.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_config.h"
#include "mod_scep_ota_log.h"
#include "mod_scep_ota_http.h"
#include "mod_scep_ota_ocsp.h"
#include "mod_scep_ota_store.h"
#include "scep_ota/scep_ocsp.h"

#define OCSP_HANDLER "scep-ocsp"

/* Most tails of a GET path tried as the request: the location's own
 * segments, and the slashes of a base64 request sent unescaped. */
#define OCSP_GET_TRIES 16

/* The base64 at text, if it decodes to something that may be an OCSP
 * request (a DER SEQUENCE); out has room for the largest request. */
static int decode_b64(const char *text, unsigned char *out, apr_size_t *len)
{
    apr_size_t n = strlen(text);
    int got;

    if (!n || n > (apr_size_t)apr_base64_encode_len(SCEP_OCSP_MAX_REQUEST)
        || strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789+/=") != n
        || (got = apr_base64_decode_binary(out, text)) <= 2
        || out[0] != 0x30) {
        return 0;
    }
    *len = (apr_size_t)got;
    return 1;
}

/* RFC 6960 A.1: GET {url}/{percent-encoded base64 of the request}. The
 * location's own path is not known here, so the tails of the path after
 * its first slashes are tried from the left, in one unescaped copy; the
 * first that decodes is the request (an encoded request carries %2F, not
 * a slash, but some clients send slashes as they are). */
static int get_request(request_rec *r, const unsigned char **der,
                       apr_size_t *len)
{
    char *path = apr_pstrdup(r->pool, r->parsed_uri.path
                                      ? r->parsed_uri.path : "");
    unsigned char *out;
    const char *slash;
    int tries = 0;

    /* "+" stays "+" */
    if (ap_unescape_all(path) != OK
        || strlen(path) > (apr_size_t)apr_base64_encode_len(
                              SCEP_OCSP_MAX_REQUEST) + 1024) {
        return HTTP_BAD_REQUEST;
    }
    out = apr_palloc(r->pool, (apr_size_t)apr_base64_decode_len(path));
    for (slash = strchr(path, '/'); slash && tries < OCSP_GET_TRIES;
         slash = strchr(slash + 1, '/'), ++tries) {
        if (decode_b64(slash + 1, out, len)) {
            *der = out;
            return OK;
        }
    }
    return HTTP_BAD_REQUEST;
}

static int respond(request_rec *r, const scep_ota_srv_conf_t *sc,
                   const unsigned char *der, apr_size_t len)
{
    scep_ocsp_answer_t ans;
    scep_store_t *store;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = scep_ota_store_for_request(r, &store))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(6060)
                      "OCSP: the store is unavailable");
        apr_table_setn(r->err_headers_out, "Retry-After", "10");
        return scep_ota_send_text(r, HTTP_SERVICE_UNAVAILABLE,
                                  "the certificate store is unavailable");
    }
    if (APR_SUCCESS != scep_ocsp_respond(r->pool, scep_ota_request_logger(r),
                                         &sc->ocsp, store, der, len, &ans)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(6061)
                  "OCSP: status %d, %d good, %d revoked, %d unknown "
                  "(first serial %s)", ans.status, ans.good, ans.revoked,
                  ans.unknown, ans.first_serial ? ans.first_serial : "-");
    /* a response is made for this request: caches keep none */
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    return scep_ota_send_bytes(r, SCEP_CT_OCSP_RESPONSE, ans.der, ans.len);
}

static int method_not_allowed(request_rec *r)
{
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(6062)
                  "method %s not allowed on an OCSP location", r->method);
    apr_table_setn(r->headers_out, "Allow", "GET, HEAD, POST");
    return scep_ota_send_text(r, HTTP_METHOD_NOT_ALLOWED,
                              "OCSP requests come with GET or POST");
}

int scep_ota_ocsp_handler(request_rec *r)
{
    const scep_ota_srv_conf_t *sc;
    const unsigned char *der = NULL;
    apr_size_t len = 0;
    int rc;

    if (!r->handler || strcmp(r->handler, OCSP_HANDLER)) {
        return DECLINED;
    }
    sc = scep_ota_srv_conf(r->server);
    if (!sc->ca) {
        /* only a handler mapped outside the config tree (.htaccess) gets
         * here: startup refuses a mapped handler without a CA */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(6063)
                      "the scep-ocsp handler is mapped to %s but no CA is "
                      "configured for this server (SCEPCACertificateFile)",
                      r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (r->method_number == M_POST) {
        rc = scep_ota_read_body(r, SCEP_OCSP_MAX_REQUEST, &der, &len);
    }
    else if (r->method_number == M_GET) {
        if (OK != (rc = ap_discard_request_body(r))) {
            return rc;
        }
        rc = get_request(r, &der, &len);
    }
    else {
        if (OK != (rc = ap_discard_request_body(r))) {
            return rc;
        }
        return method_not_allowed(r);
    }
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return scep_ota_send_text(r, rc, "the OCSP request is too large");
    }
    /* an unreadable GET path is a malformed request: the core says so in
     * OCSP's own terms */
    if (rc != OK && rc != HTTP_BAD_REQUEST) {
        return rc;
    }
    return respond(r, sc, rc == OK ? der : NULL, rc == OK ? len : 0);
}
