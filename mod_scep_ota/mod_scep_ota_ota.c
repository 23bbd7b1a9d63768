/* The "ota-profile" handler: Apple OTA profile delivery over HTTP. */

#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_config.h"
#include "mod_scep_ota_log.h"
#include "mod_scep_ota_http.h"
#include "mod_scep_ota_ota.h"
#include "mod_scep_ota_audit.h"
#include "mod_scep_ota_metrics.h"
#include "mod_scep_ota_store.h"

#define SCEP_OTA_OTA_HANDLER "ota-profile"

static void profile_headers(request_rec *r, const scep_ota_srv_conf_t *sc)
{
    apr_table_setn(r->headers_out, "Content-Disposition",
                   apr_psprintf(r->pool, "attachment; filename=\"%s\"",
                                ota_filename(sc->ota)));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
}

/* HEAD: the headers a GET would get, without storing a challenge or
 * signing a profile nobody will read. */
static int phase1_head(request_rec *r, const scep_ota_srv_conf_t *sc)
{
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0300)
                  "OTA Phase 1: HEAD answered with headers only");
    profile_headers(r, sc);
    ap_set_content_type(r, OTA_CT_ASPEN_CONFIG);
    return OK;
}

static void audit_ota(request_rec *r, int phase, const char *outcome,
                      const char *udid, const char *reason)
{
    scep_audit_t ev;

    memset(&ev, 0, sizeof(ev));
    ev.event = phase >= 1 && phase <= 3
               ? apr_psprintf(r->pool, "ota-phase%d", phase) : "ota";
    ev.outcome = outcome;
    ev.udid = udid;
    ev.reason = reason;
    scep_ota_audit(r, &ev);
}

/* Phase 1: the signed Profile Service payload with a fresh challenge,
 * bound to the authenticated user when an auth module protects us. */
static int phase1(request_rec *r, const scep_ota_srv_conf_t *sc)
{
    scep_outcome_t out;
    scep_store_t *store;
    apr_status_t rv;

    if (r->header_only) {
        return phase1_head(r, sc);
    }
    if (!scep_ota_store_ready(r, &store, &out, "OTA",
                              "the enrollment store is unavailable")) {
        scep_metrics_ota(scep_ota_metrics(), 1, 0);
        return scep_ota_answer(r, &out);
    }
    rv = ota_phase1(sc->ota, r->pool, store, scep_ota_request_logger(r),
                    ap_construct_url(r->pool, r->uri, r), r->user, &out);
    if (APR_SUCCESS != rv) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(0201)
                      "OTA Phase 1: cannot build the Profile Service "
                      "payload");
        scep_metrics_ota(scep_ota_metrics(), 1, 0);
        return scep_ota_answer(r, &out);
    }
    scep_metrics_ota(scep_ota_metrics(), 1, 1);
    audit_ota(r, 1, "served", NULL, NULL);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0202)
                  "OTA Phase 1: Profile Service payload served%s%s",
                  r->user ? " to " : "", r->user ? r->user : "");
    profile_headers(r, sc);
    return scep_ota_answer(r, &out);
}

/* Counts, audits and logs what Phase 2 or 3 answered. */
static void phase23_done(request_rec *r, const ota_answer_t *ans)
{
    int ok = ans->out.kind == SCEP_OUTCOME_OK;

    scep_metrics_ota(scep_ota_metrics(), ans->phase, ok);
    audit_ota(r, ans->phase, ok ? "served" : "refused", ans->udid,
              ok ? NULL : ans->out.reason);
    if (!ok) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0203)
                      "OTA Phase %d refused (%d): %s%s%s", ans->phase,
                      scep_ota_outcome_status(ans->out.kind),
                      ans->out.reason ? ans->out.reason : "-",
                      ans->udid ? ", device " : "",
                      ans->udid ? ans->udid : "");
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0204)
                  "OTA Phase %d: profile served to device %s", ans->phase,
                  ans->udid ? ans->udid : "?");
}

/* Phase 2 or 3, told apart by who issued the signer. */
static int phase23(request_rec *r, const scep_ota_srv_conf_t *sc)
{
    const unsigned char *body;
    apr_size_t len;
    scep_store_t *store;
    ota_answer_t ans;
    int rc;

    if (OK != (rc = scep_ota_read_body(r, OTA_MAX_REQUEST, &body, &len))) {
        /* a transport fault: the status httpd gave */
        scep_metrics_ota(scep_ota_metrics(), 0, 0);
        return scep_ota_send_text(r, rc, rc == HTTP_REQUEST_ENTITY_TOO_LARGE
                                  ? "request too large"
                                  : "unreadable request body");
    }
    if (!scep_ota_store_ready(r, &store, &ans.out, "OTA",
                              "the enrollment store is unavailable")) {
        scep_metrics_ota(scep_ota_metrics(), 0, 0);
        return scep_ota_answer(r, &ans.out);
    }
    ota_post(sc->ota, r->pool, store, scep_ota_request_logger(r), r->user,
             body, len, &ans);
    phase23_done(r, &ans);
    if (ans.out.kind == SCEP_OUTCOME_OK) {
        profile_headers(r, sc);
    }
    return scep_ota_answer(r, &ans.out);
}

int scep_ota_ota_handler(request_rec *r)
{
    const scep_ota_srv_conf_t *sc;
    int rc;

    if (!r->handler || strcmp(r->handler, SCEP_OTA_OTA_HANDLER)) {
        return DECLINED;
    }
    sc = scep_ota_srv_conf(r->server);
    if (!sc->ota) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(0205)
                      "the ota-profile handler is mapped to %s but OTA is "
                      "not configured for this server", r->uri);
        return scep_ota_refuse(r, SCEP_OUTCOME_SERVER_ERROR, NULL);
    }
    if (r->method_number == M_GET) {
        return phase1(r, sc);
    }
    if (r->method_number == M_POST) {
        return phase23(r, sc);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0206)
                  "method %s not allowed on an OTA location", r->method);
    if (OK != (rc = ap_discard_request_body(r))) {
        return rc;
    }
    return scep_ota_not_allowed(r, "GET, HEAD, POST",
                                "OTA accepts GET and POST only");
}
