/* The "scep" handler: HTTP in, core call, HTTP out. */

#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_config.h"
#include "mod_scep_ota_log.h"
#include "mod_scep_ota_scep.h"
#include "scep_ota/scep_query.h"
#include "scep_ota/scep_pkimsg.h"
#include "mod_scep_ota_store.h"
#include "mod_scep_ota_audit.h"
#include "mod_scep_ota_http.h"
#include "mod_scep_ota_metrics.h"

#define SCEP_OTA_SCEP_HANDLER "scep"

/* The PKIOperation message: the POST body, or (for GET, or a POST with an
 * empty body) the base64 message= parameter. */
static int read_message(request_rec *r, const scep_ota_srv_conf_t *sc,
                        const scep_query_t *q, const unsigned char **msg,
                        apr_size_t *len)
{
    apr_off_t limit = scep_ota_max_request(sc);
    unsigned char *der;
    apr_status_t rv;
    int rc;

    *len = 0;
    if (r->method_number == M_POST
        && OK != (rc = scep_ota_read_body(r, limit, msg, len))) {
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

static int do_getcacaps(request_rec *r, const scep_ota_srv_conf_t *sc)
{
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r, "GetCACaps");
    return scep_ota_send_static(r, "text/plain", sc->caps_body, sc->caps_len);
}

static int do_getcacert(request_rec *r, const scep_ota_srv_conf_t *sc)
{
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r, "GetCACert: %s",
                  sc->ca->getcacert_type);
    return scep_ota_send_static(r, sc->ca->getcacert_type, sc->ca->getcacert_body,
                       sc->ca->getcacert_len);
}

static int do_getnextcacert(request_rec *r, const scep_ota_srv_conf_t *sc)
{
    if (!sc->next_ca_body) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0102)
                      "GetNextCACert: no next CA certificate is configured");
        return scep_ota_refuse(r, SCEP_OUTCOME_NOT_FOUND,
                               "no next CA certificate is configured");
    }
    return scep_ota_send_static(r, SCEP_CT_NEXT_CA_CERT, sc->next_ca_body,
                       sc->next_ca_len);
}

/* The certificates a PKIOperation revoked as superseded, a line each. */
static void audit_revoked(request_rec *r, const scep_pkiop_reply_t *reply)
{
    scep_audit_t ev;
    int i;

    for (i = 0; reply->revoked && i < reply->revoked->nelts; ++i) {
        memset(&ev, 0, sizeof(ev));
        ev.event = "revoked";
        ev.transaction_id = reply->transaction_id;
        ev.serial = APR_ARRAY_IDX(reply->revoked, i, const char *);
        ev.udid = reply->udid;
        ev.reason = "superseded";
        scep_ota_audit(r, &ev);
    }
}

/* The decisions of a PKIOperation in the audit trail: a certificate
 * issued or renewed (and those it revoked), a request pending or refused.
 * Answers that decide nothing (a retry, GetCert, GetCRL) are left out. */
static void audit_pkiop(request_rec *r, const scep_pkiop_reply_t *reply)
{
    scep_audit_t ev;

    memset(&ev, 0, sizeof(ev));
    if (!reply->tag || (strcmp(reply->tag, "issued")
                        && strcmp(reply->tag, "renewed")
                        && strcmp(reply->tag, "pending")
                        && reply->pki_status != SCEP_STATUS_FAILURE)) {
        return;
    }
    ev.event = reply->pki_status == SCEP_STATUS_FAILURE ? "refused"
                                                        : reply->tag;
    ev.transaction_id = reply->transaction_id;
    ev.serial = reply->serial;
    ev.subject = reply->subject;
    ev.sans = reply->sans;
    ev.udid = reply->udid;
    ev.reason = reply->reason;
    ev.fail_info = reply->pki_status == SCEP_STATUS_FAILURE
                   ? scep_pkimsg_fail_name(reply->fail_info) : NULL;
    scep_ota_audit(r, &ev);
    audit_revoked(r, reply);
}

/* The outcome of a PKIOperation: a CertRep, or a message that could not
 * be read at all. */
static void pkiop_outcome(const scep_pkiop_reply_t *reply,
                          scep_outcome_t *out)
{
    memset(out, 0, sizeof(*out));
    if (reply->kind != SCEP_OUTCOME_OK || !reply->body) {
        out->kind = SCEP_OUTCOME_BAD_REQUEST;
        out->reason = "not a SCEP pkiMessage";
        return;
    }
    out->kind = SCEP_OUTCOME_OK;
    out->content_type = reply->content_type;
    out->body = reply->body;
    out->len = reply->len;
}

static int do_pkioperation(request_rec *r, const scep_ota_srv_conf_t *sc,
                           const scep_query_t *q)
{
    const unsigned char *msg = NULL;
    apr_size_t len = 0;
    scep_store_t *store;
    scep_pkiop_reply_t reply;
    scep_outcome_t out;
    apr_status_t rv;
    int rc;

    if (OK != (rc = read_message(r, sc, q, &msg, &len))) {
        /* a transport fault: the status read_message gave */
        scep_metrics_pkiop(scep_ota_metrics(), -1, -1, SCEP_FAIL_NONE,
                           "invalid", apr_time_now() - r->request_time);
        return scep_ota_send_text(r, rc, rc == HTTP_REQUEST_ENTITY_TOO_LARGE
                               ? "SCEP message too large"
                               : "no readable SCEP message");
    }
    if (!scep_ota_store_ready(r, &store, &out, "PKIOperation",
                              "the certificate store is unavailable")) {
        return scep_ota_answer(r, &out);
    }
    rv = scep_pkiop_handle_from(r->pool, scep_ota_request_logger(r),
                                &sc->pkiop, store, r->useragent_ip, msg, len,
                                &reply);
    if (APR_SUCCESS != rv) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(0113)
                      "PKIOperation: cannot build a signed reply");
        return scep_ota_refuse(r, SCEP_OUTCOME_SERVER_ERROR, NULL);
    }
    scep_metrics_pkiop(scep_ota_metrics(), reply.message_type,
                       reply.pki_status, reply.fail_info, reply.tag,
                       apr_time_now() - r->request_time);
    audit_pkiop(r, &reply);
    ap_log_rerror(APLOG_MARK, reply.kind == SCEP_OUTCOME_OK ? APLOG_INFO
                                                           : APLOG_DEBUG,
                  0, r, SCEPLOGNO(0114) "PKIOperation %s: %s",
                  reply.tag ? reply.tag : "-",
                  reply.summary ? reply.summary : "-");
    pkiop_outcome(&reply, &out);
    if (out.kind == SCEP_OUTCOME_OK) {
        apr_table_setn(r->notes, "scep-ota-result",
                       reply.tag ? reply.tag : "-");
    }
    return scep_ota_answer(r, &out);
}

static scep_metric_op_t metric_op(scep_op_t op)
{
    switch (op) {
    case SCEP_OP_GETCACAPS: return SCEP_MOP_GETCACAPS;
    case SCEP_OP_GETCACERT: return SCEP_MOP_GETCACERT;
    case SCEP_OP_GETNEXTCACERT: return SCEP_MOP_GETNEXTCACERT;
    case SCEP_OP_PKIOPERATION: return SCEP_MOP_PKIOPERATION;
    default: return SCEP_MOP_OTHER;
    }
}

/* PKIOperation, but never for HEAD: HEAD must not enroll anybody. */
static int do_pkioperation_or_head(request_rec *r, const scep_ota_srv_conf_t *sc,
                                   const scep_query_t *q)
{
    if (r->header_only) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0115)
                      "HEAD refused for PKIOperation");
        return scep_ota_not_allowed(r, "GET, POST",
                                    "PKIOperation needs GET or POST");
    }
    return do_pkioperation(r, sc, q);
}

/* The operation= parameter names one of the four operations. */
static int do_operation(request_rec *r, const scep_ota_srv_conf_t *sc,
                        const scep_query_t *q)
{
    switch (q->op) {
    case SCEP_OP_GETCACAPS:
        return do_getcacaps(r, sc);
    case SCEP_OP_GETCACERT:
        return do_getcacert(r, sc);
    case SCEP_OP_GETNEXTCACERT:
        return do_getnextcacert(r, sc);
    case SCEP_OP_PKIOPERATION:
        return do_pkioperation_or_head(r, sc, q);
    case SCEP_OP_NONE:
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0104)
                      "request without an operation parameter");
        return scep_ota_refuse(r, SCEP_OUTCOME_BAD_REQUEST,
                               "missing operation parameter; expected "
                               "operation=GetCACaps, GetCACert, GetNextCACert "
                               "or PKIOperation");
    case SCEP_OP_UNKNOWN:
    default:
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0105)
                      "unknown operation '%.64s'",
                      q->operation ? q->operation : "(undecodable)");
        return scep_ota_refuse(r, SCEP_OUTCOME_BAD_REQUEST,
                               "unknown operation; expected GetCACaps, "
                               "GetCACert, GetNextCACert or PKIOperation");
    }
}

int scep_ota_scep_handler(request_rec *r)
{
    const scep_ota_srv_conf_t *sc;
    scep_query_t q;
    int rc;

    if (!r->handler || strcmp(r->handler, SCEP_OTA_SCEP_HANDLER)) {
        return DECLINED;
    }
    sc = scep_ota_srv_conf(r->server);
    if (r->method_number != M_GET && r->method_number != M_POST) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0100)
                      "method %s not allowed on a SCEP location", r->method);
        if (OK != (rc = ap_discard_request_body(r))) {
            return rc;
        }
        return scep_ota_not_allowed(r, "GET, HEAD, POST",
                                    "SCEP accepts GET and POST only");
    }
    if (!sc->ca) {
        /* only a handler mapped outside the config tree (.htaccess) gets
         * here: startup refuses a mapped handler without a CA */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(0101)
                      "the scep handler is mapped to %s but no CA is "
                      "configured for this server (SCEPCACertificateFile)",
                      r->uri);
        return scep_ota_refuse(r, SCEP_OUTCOME_SERVER_ERROR, NULL);
    }
    scep_query_parse(r->pool, r->args, &q);
    scep_metrics_request(scep_ota_metrics(), metric_op(q.op));
    if (q.op != SCEP_OP_PKIOPERATION
        && OK != (rc = ap_discard_request_body(r))) {
        return rc;
    }
    return do_operation(r, sc, &q);
}
