/* The "scep-crl" handler: the CRL distribution point of the virtual
 * host's CA. HTTP in (method, conditions), the published CRL from the
 * core, DER out with the validators a cache needs. */

#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_config.h"
#include "mod_scep_ota_log.h"
#include "mod_scep_ota_crl.h"
#include "mod_scep_ota_http.h"
#include "mod_scep_ota_store.h"
#include "scep_ota/scep_crl.h"

#define CRL_HANDLER "scep-crl"

/* Validators: thisUpdate, and a strong ETag naming the CA and the
 * cRLNumber (one number is one CRL, in every process and node). */
static void set_validators(request_rec *r, const scep_ota_srv_conf_t *sc,
                           const scep_crl_rec_t *crl)
{
    ap_update_mtime(r, crl->this_update);
    ap_set_last_modified(r);
    apr_table_setn(r->headers_out, "ETag",
                   apr_psprintf(r->pool, "\"%.16s-%" APR_INT64_T_FMT "\"",
                                sc->ca->id, crl->number));
    /* caches keep it but ask again: a revocation shows at once */
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
}

static int serve(request_rec *r, const scep_ota_srv_conf_t *sc)
{
    const scep_crl_rec_t *crl;
    scep_store_t *store;
    apr_status_t rv;
    int rc;

    if (APR_SUCCESS != (rv = scep_ota_store_for_request(r, &store))
        || APR_SUCCESS != (rv = scep_crl_current(
                               r->pool, scep_ota_request_logger(r), sc->ca,
                               sc->pkiop.crl_days, store, sc->pkiop.crl_cache,
                               &crl))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(6020)
                      "CRL: the store is unavailable");
        apr_table_setn(r->err_headers_out, "Retry-After", "10");
        return scep_ota_send_text(r, HTTP_SERVICE_UNAVAILABLE,
                                  "the certificate store is unavailable");
    }
    set_validators(r, sc, crl);
    if (OK != (rc = ap_meets_conditions(r))) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r, "CRL %" APR_INT64_T_FMT
                      ": conditions give %d", crl->number, rc);
        return rc;
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r, "CRL %" APR_INT64_T_FMT
                  " (%" APR_SIZE_T_FMT " bytes)", crl->number, crl->der_len);
    return scep_ota_send_bytes(r, SCEP_CT_PKIX_CRL, crl->der, crl->der_len);
}

int scep_ota_crl_handler(request_rec *r)
{
    const scep_ota_srv_conf_t *sc;
    int rc;

    if (!r->handler || strcmp(r->handler, CRL_HANDLER)) {
        return DECLINED;
    }
    sc = scep_ota_srv_conf(r->server);
    if (OK != (rc = ap_discard_request_body(r))) {
        return rc;
    }
    if (r->method_number != M_GET) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(6021)
                      "method %s not allowed on a CRL location", r->method);
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
        return scep_ota_send_text(r, HTTP_METHOD_NOT_ALLOWED,
                                  "the CRL is read with GET or HEAD");
    }
    if (!sc->ca) {
        /* only a handler mapped outside the config tree (.htaccess) gets
         * here: startup refuses a mapped handler without a CA */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(6022)
                      "the scep-crl handler is mapped to %s but no CA is "
                      "configured for this server (SCEPCACertificateFile)",
                      r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* a query string (a cache buster) changes nothing */
    return serve(r, sc);
}
