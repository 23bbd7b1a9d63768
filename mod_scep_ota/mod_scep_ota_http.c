/* HTTP helpers shared by the module's handlers. */

#include <apr_strings.h>
#include <apr_buckets.h>

#include <httpd.h>
#include <http_log.h>
#include <http_protocol.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_http.h"
#include "scep_ota/scep_log.h"

/* Sends a body held by one bucket, and the end of the response. */
static int send_body(request_rec *r, const char *type, apr_size_t len,
                     apr_bucket *body)
{
    apr_bucket_brigade *bb;
    apr_status_t rv;

    ap_set_content_type(r, type);
    ap_set_content_length(r, (apr_off_t)len);
    if (r->header_only) {
        apr_bucket_destroy(body);
        return OK;
    }
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, body);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
        r->connection->bucket_alloc));
    rv = ap_pass_brigade(r->output_filters, bb);
    return APR_SUCCESS == rv || r->connection->aborted ? OK : AP_FILTER_ERROR;
}

/* Bytes computed at startup live as long as the child: no copy. */
int scep_ota_send_static(request_rec *r, const char *type, const void *body,
                         apr_size_t len)
{
    return send_body(r, type, len, apr_bucket_immortal_create(
        body, len, r->connection->bucket_alloc));
}

/* Bytes from the request pool: copied if a filter sets them aside. */
int scep_ota_send_bytes(request_rec *r, const char *type, const void *body,
                        apr_size_t len)
{
    return send_body(r, type, len, apr_bucket_pool_create(
        body, len, r->pool, r->connection->bucket_alloc));
}

/* A short text/plain answer for errors the client can fix. */
int scep_ota_send_text(request_rec *r, int status, const char *text)
{
    const char *body = apr_pstrcat(r->pool, text, "\n", NULL);

    r->status = status;
    return scep_ota_send_bytes(r, "text/plain", body, strlen(body));
}

/* The status line of each kind of outcome. */
int scep_ota_outcome_status(scep_outcome_kind_t kind)
{
    switch (kind) {
    case SCEP_OUTCOME_OK:          return HTTP_OK;
    case SCEP_OUTCOME_BAD_REQUEST: return HTTP_BAD_REQUEST;
    case SCEP_OUTCOME_FORBIDDEN:   return HTTP_FORBIDDEN;
    case SCEP_OUTCOME_NOT_FOUND:   return HTTP_NOT_FOUND;
    case SCEP_OUTCOME_NOT_ALLOWED: return HTTP_METHOD_NOT_ALLOWED;
    case SCEP_OUTCOME_TOO_LARGE:   return HTTP_REQUEST_ENTITY_TOO_LARGE;
    case SCEP_OUTCOME_UNAVAILABLE: return HTTP_SERVICE_UNAVAILABLE;
    default:                       return HTTP_INTERNAL_SERVER_ERROR;
    }
}

/* The one place an outcome becomes an HTTP answer. A body (the answer,
 * or the refusal's reason as text) is sent here and OK returned; a
 * refusal without a reason returns its status, for httpd's error page. */
int scep_ota_answer(request_rec *r, const scep_outcome_t *out)
{
    int status = scep_ota_outcome_status(out->kind);

    if (out->kind == SCEP_OUTCOME_OK && out->body && out->content_type) {
        return scep_ota_send_bytes(r, out->content_type, out->body, out->len);
    }
    if (out->kind == SCEP_OUTCOME_OK) {
        /* a zeroed outcome is not an answer */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(0116)
                      "an answer without a body; answering 500");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (out->retry_after > 0) {
        apr_table_setn(r->err_headers_out, "Retry-After",
                       apr_itoa(r->pool, out->retry_after));
    }
    if (out->allow) {
        apr_table_setn(r->headers_out, "Allow", out->allow);
    }
    return out->reason ? scep_ota_send_text(r, status, out->reason) : status;
}

/* A refusal made by the glue itself. */
int scep_ota_refuse(request_rec *r, scep_outcome_kind_t kind,
                    const char *reason)
{
    scep_outcome_t out;

    memset(&out, 0, sizeof(out));
    out.kind = kind;
    out.reason = reason;
    return scep_ota_answer(r, &out);
}

/* A method the resource does not take; allow lists those it does. */
int scep_ota_not_allowed(request_rec *r, const char *allow,
                         const char *reason)
{
    scep_outcome_t out;

    memset(&out, 0, sizeof(out));
    out.kind = SCEP_OUTCOME_NOT_ALLOWED;
    out.allow = allow;
    out.reason = reason;
    return scep_ota_answer(r, &out);
}

/* Reads the whole request body, up to limit bytes. OK, or the HTTP status
 * to answer (413 over the limit, 400 on a broken body). */
int scep_ota_read_body(request_rec *r, apr_off_t limit,
                     const unsigned char **data, apr_size_t *len)
{
    apr_bucket_brigade *bb;
    apr_off_t total = 0;
    apr_size_t n;
    char *buf;
    int rc;

    if (OK != (rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK))) {
        return rc;
    }
    if (r->remaining > limit) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0106)
                      "request body of %" APR_OFF_T_FMT " bytes is over "
                      "SCEPMaxRequestSize (%" APR_OFF_T_FMT ")",
                      r->remaining, limit);
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    buf = apr_palloc(r->pool, HUGE_STRING_LEN);
    if (ap_should_client_block(r)) {
        long got;
        while ((got = ap_get_client_block(r, buf, HUGE_STRING_LEN)) > 0) {
            total += got;
            if (total > limit) {
                ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0107)
                              "request body over SCEPMaxRequestSize "
                              "(%" APR_OFF_T_FMT " bytes)", limit);
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            apr_brigade_write(bb, NULL, NULL, buf, (apr_size_t)got);
        }
        if (got < 0) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0108)
                          "reading the request body failed");
            return HTTP_BAD_REQUEST;
        }
    }
    if (APR_SUCCESS != apr_brigade_pflatten(bb, &buf, &n, r->pool)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    *data = (const unsigned char *)buf;
    *len = n;
    return OK;
}

