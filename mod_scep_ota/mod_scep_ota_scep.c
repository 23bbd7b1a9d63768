/* The "scep" handler: HTTP in, core call, HTTP out. */

#include <apr_strings.h>
#include <apr_buckets.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_config.h"
#include "mod_scep_ota_scep.h"
#include "scep_ota/scep_query.h"

#define SCEP_HANDLER "scep"

/* Sends bytes that live as long as the child (computed at startup). */
static int send_static(request_rec *r, const char *type, const void *body,
                       apr_size_t len)
{
    apr_bucket_brigade *bb;
    apr_status_t rv;

    ap_set_content_type(r, type);
    ap_set_content_length(r, (apr_off_t)len);
    if (r->header_only) {
        return OK;
    }
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(
        body, len, r->connection->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
        r->connection->bucket_alloc));
    rv = ap_pass_brigade(r->output_filters, bb);
    return APR_SUCCESS == rv || r->connection->aborted ? OK : AP_FILTER_ERROR;
}

/* A short text/plain answer for errors the client can fix. */
static int send_error_text(request_rec *r, int status, const char *text)
{
    const char *body = apr_pstrcat(r->pool, text, "\n", NULL);

    r->status = status;
    return send_static(r, "text/plain", body, strlen(body));
}

static int do_getcacaps(request_rec *r, const scep_srv_conf_t *sc)
{
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r, "GetCACaps");
    return send_static(r, "text/plain", sc->caps_body, sc->caps_len);
}

static int do_getcacert(request_rec *r, const scep_srv_conf_t *sc)
{
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r, "GetCACert: %s",
                  sc->ca->getcacert_type);
    return send_static(r, sc->ca->getcacert_type, sc->ca->getcacert_body,
                       sc->ca->getcacert_len);
}

int scep_ota_scep_handler(request_rec *r)
{
    const scep_srv_conf_t *sc;
    scep_query_t q;
    int rc;

    if (!r->handler || strcmp(r->handler, SCEP_HANDLER)) {
        return DECLINED;
    }
    sc = scep_ota_srv_conf(r->server);
    if (r->method_number != M_GET && r->method_number != M_POST) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0100)
                      "method %s not allowed on a SCEP location", r->method);
        if (OK != (rc = ap_discard_request_body(r))) {
            return rc;
        }
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD, POST");
        return send_error_text(r, HTTP_METHOD_NOT_ALLOWED,
                               "SCEP accepts GET and POST only");
    }
    if (!sc->ca) {
        /* only a handler mapped outside the config tree (.htaccess) gets
         * here: startup refuses a mapped handler without a CA */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(0101)
                      "the scep handler is mapped to %s but no CA is "
                      "configured for this server (SCEPCACertificateFile)",
                      r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    scep_query_parse(r->pool, r->args, &q);
    if (q.op != SCEP_OP_PKIOPERATION
        && OK != (rc = ap_discard_request_body(r))) {
        return rc;
    }
    switch (q.op) {
    case SCEP_OP_GETCACAPS:
        return do_getcacaps(r, sc);
    case SCEP_OP_GETCACERT:
        return do_getcacert(r, sc);
    case SCEP_OP_GETNEXTCACERT:
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0102)
                      "GetNextCACert: no next CA certificate is configured");
        return send_error_text(r, HTTP_NOT_IMPLEMENTED,
                               "no next CA certificate is configured");
    case SCEP_OP_PKIOPERATION:
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0103)
                      "PKIOperation is not implemented yet");
        if (OK != (rc = ap_discard_request_body(r))) {
            return rc;
        }
        return send_error_text(r, HTTP_NOT_IMPLEMENTED,
                               "PKIOperation is not implemented");
    case SCEP_OP_NONE:
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0104)
                      "request without an operation parameter");
        return send_error_text(r, HTTP_BAD_REQUEST,
                               "missing operation parameter; expected "
                               "operation=GetCACaps, GetCACert, GetNextCACert "
                               "or PKIOperation");
    case SCEP_OP_UNKNOWN:
    default:
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0105)
                      "unknown operation '%.64s'",
                      q.operation ? q.operation : "(undecodable)");
        return send_error_text(r, HTTP_BAD_REQUEST,
                               "unknown operation; expected GetCACaps, "
                               "GetCACert, GetNextCACert or PKIOperation");
    }
}
