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
#include "scep_ota/scep_pkimsg.h"
#include "mod_scep_ota_store.h"

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

/* Reads the whole request body, up to limit bytes. OK, or the HTTP status
 * to answer (413 over the limit, 400 on a broken body). */
static int read_body(request_rec *r, apr_off_t limit,
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

/* The PKIOperation message: the POST body, or (for GET, or a POST with an
 * empty body) the base64 message= parameter. */
static int read_message(request_rec *r, const scep_srv_conf_t *sc,
                        const scep_query_t *q, const unsigned char **msg,
                        apr_size_t *len)
{
    apr_off_t limit = scep_ota_max_request(sc);
    unsigned char *der;
    apr_status_t rv;
    int rc;

    *len = 0;
    if (r->method_number == M_POST
        && OK != (rc = read_body(r, limit, msg, len))) {
        return rc;
    }
    if (*len > 0) {
        return OK;
    }
    if (!q->message) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0109)
                      "PKIOperation without a message");
        return HTTP_BAD_REQUEST;
    }
    rv = scep_query_decode_message(r->pool, q->message, (apr_size_t)limit,
                                   &der, len);
    if (APR_STATUS_IS_ENOSPC(rv)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0110)
                      "message parameter over SCEPMaxRequestSize");
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    if (APR_SUCCESS != rv) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0111)
                      "message parameter is not base64");
        return HTTP_BAD_REQUEST;
    }
    *msg = der;
    return OK;
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

/* Sends bytes allocated from the request pool. */
static int send_reply(request_rec *r, const char *type,
                      const unsigned char *body, apr_size_t len)
{
    ap_set_content_type(r, type);
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) {
        ap_rwrite(body, (int)len, r);
    }
    return OK;
}

static int do_getnextcacert(request_rec *r, const scep_srv_conf_t *sc)
{
    if (!sc->next_ca_body) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0102)
                      "GetNextCACert: no next CA certificate is configured");
        return send_error_text(r, HTTP_NOT_FOUND,
                               "no next CA certificate is configured");
    }
    return send_static(r, SCEP_CT_NEXT_CA_CERT, sc->next_ca_body,
                       sc->next_ca_len);
}

static int do_pkioperation(request_rec *r, const scep_srv_conf_t *sc,
                           const scep_query_t *q)
{
    const unsigned char *msg = NULL;
    apr_size_t len = 0;
    scep_store_t *store;
    scep_pkiop_reply_t reply;
    apr_status_t rv;
    int rc;

    if (OK != (rc = read_message(r, sc, q, &msg, &len))) {
        return send_error_text(r, rc, rc == HTTP_REQUEST_ENTITY_TOO_LARGE
                               ? "SCEP message too large"
                               : "no readable SCEP message");
    }
    if (APR_SUCCESS != (rv = scep_ota_store_for_request(r, &store))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(0112)
                      "PKIOperation: the store is unavailable");
        apr_table_setn(r->err_headers_out, "Retry-After", "10");
        return send_error_text(r, HTTP_SERVICE_UNAVAILABLE,
                               "the certificate store is unavailable");
    }
    rv = scep_pkiop_handle(r->pool, scep_ota_request_logger(r), &sc->pkiop,
                           store, msg, len, &reply);
    if (APR_SUCCESS != rv) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(0113)
                      "PKIOperation: cannot build a signed reply");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_log_rerror(APLOG_MARK, reply.http_status == HTTP_OK ? APLOG_INFO
                                                           : APLOG_DEBUG,
                  0, r, SCEPLOGNO(0114) "PKIOperation %s: %s",
                  reply.tag ? reply.tag : "-",
                  reply.summary ? reply.summary : "-");
    if (reply.http_status != HTTP_OK || !reply.body) {
        return send_error_text(r, HTTP_BAD_REQUEST,
                               "not a SCEP pkiMessage");
    }
    apr_table_setn(r->notes, "scep-ota-result", reply.tag ? reply.tag : "-");
    return send_reply(r, reply.content_type, reply.body, reply.len);
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
        return do_getnextcacert(r, sc);
    case SCEP_OP_PKIOPERATION:
        return do_pkioperation(r, sc, &q);
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
