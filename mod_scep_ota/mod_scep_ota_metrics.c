/* The server's counters: one block of anonymous shared memory that the
 * parent makes once and keeps across graceful restarts, so every child
 * counts into the same numbers; the "scep-metrics" handler and a section
 * of mod_status show them. */

#include <apr_shm.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <mod_status.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_config.h"
#include "mod_scep_ota_http.h"
#include "mod_scep_ota_metrics.h"
#include "mod_scep_ota_store.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_store.h"

#define METRICS_HANDLER "scep-metrics"
#define SHM_KEY "scep_ota_metrics_shm"

/* set in the parent by post_config; children inherit the mapping */
static scep_metrics_t *metrics;

scep_metrics_t *scep_ota_metrics(void)
{
    return metrics;
}

/* The block lives in the process pool: a graceful restart keeps it (and
 * the counts); only a full stop ends it. */
static int metrics_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                               apr_pool_t *ptemp, server_rec *s)
{
    apr_pool_t *proc = s->process->pool;
    apr_shm_t *shm = NULL;
    apr_status_t rv;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    apr_pool_userdata_get((void **)&shm, SHM_KEY, proc);
    if (shm && apr_shm_size_get(shm) < scep_metrics_size()) {
        shm = NULL; /* a newer module with more counters: start again */
    }
    if (!shm) {
        if (APR_SUCCESS != (rv = apr_shm_create(&shm, scep_metrics_size(),
                                                NULL, proc))) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(6200)
                         "cannot make the shared memory of the counters");
            return !OK;
        }
        memset(apr_shm_baseaddr_get(shm), 0, scep_metrics_size());
        apr_pool_userdata_set(shm, SHM_KEY, apr_pool_cleanup_null, proc);
    }
    metrics = scep_metrics_at(apr_shm_baseaddr_get(shm));
    return OK;
}

static double not_after(X509 *x)
{
    int days = 0, secs = 0;

    if (!x || !ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x))) {
        return 0;
    }
    return (double)apr_time_sec(apr_time_now()) + (double)days * 86400
           + secs;
}

static void add_gauge(apr_array_header_t *g, const char *name,
                      const char *help, const char *labels, double value)
{
    scep_gauge_t *x = apr_array_push(g);

    x->name = name;
    x->help = help;
    x->labels = labels;
    x->value = value;
}

/* host:port as a label value: backslash, quote and newline escaped as
 * the exposition format wants */
static const char *vhost_label(apr_pool_t *p, const server_rec *s)
{
    const char *name = apr_psprintf(p, "%s:%u", s->server_hostname
                                                ? s->server_hostname : "-",
                                    s->port);
    char *out = apr_palloc(p, strlen(name) * 2 + 1), *w = out;

    for (; *name; ++name) {
        if (*name == '\\' || *name == '"') {
            *w++ = '\\';
            *w++ = *name;
        }
        else if (*name == '\n') {
            *w++ = '\\';
            *w++ = 'n';
        }
        else {
            *w++ = *name;
        }
    }
    *w = '\0';
    return out;
}

/* The notAfter of every certificate the servers sign with. */
static void expiry_gauges(request_rec *r, apr_array_header_t *g)
{
    static const char name[] = "certificate_not_after_seconds";
    static const char help[] = "notAfter (Unix time) of the CA, the RA and "
                               "the OTA signing certificate, per virtual "
                               "host.";
    const server_rec *s;

    for (s = ap_server_conf; s; s = s->next) {
        const scep_ota_srv_conf_t *sc = scep_ota_srv_conf(s);
        const char *v = vhost_label(r->pool, s);
        if (!sc->ca) {
            continue;
        }
        add_gauge(g, name, help, apr_psprintf(r->pool, "vhost=\"%s\","
                                              "cert=\"ca\"", v),
                  not_after(sc->ca->cert));
        if (sc->ca->has_ra) {
            add_gauge(g, name, help, apr_psprintf(r->pool, "vhost=\"%s\","
                                                  "cert=\"ra\"", v),
                      not_after(sc->ca->sign_cert));
            if (sc->ca->decrypt_cert != sc->ca->sign_cert) {
                add_gauge(g, name, help,
                          apr_psprintf(r->pool, "vhost=\"%s\","
                                       "cert=\"ra-encryption\"", v),
                          not_after(sc->ca->decrypt_cert));
            }
        }
        if (sc->ota && sc->ota_set.signer) {
            add_gauge(g, name, help, apr_psprintf(r->pool, "vhost=\"%s\","
                                                  "cert=\"ota-signer\"", v),
                      not_after(sc->ota_set.signer->cert));
        }
    }
}

/* What waits in the store of this virtual host's CA. */
static void store_gauges(request_rec *r, apr_array_header_t *g)
{
    const scep_ota_srv_conf_t *sc = scep_ota_srv_conf(r->server);
    const char *labels = apr_psprintf(r->pool, "vhost=\"%s\"",
                                      vhost_label(r->pool, r->server));
    apr_array_header_t *recs;
    scep_store_t *st;
    int i, waiting = 0;

    if (!sc->ca || APR_SUCCESS != scep_ota_store_for_request(r, &st)) {
        return;
    }
    if (APR_SUCCESS == st->ops->challenge_list(st, r->pool, NULL, &recs)) {
        add_gauge(g, "challenges_outstanding", "One-time challenges unused, "
                  "unrevoked and unexpired.", labels, recs->nelts);
    }
    if (APR_SUCCESS == st->ops->pending_list(st, r->pool, &recs)) {
        for (i = 0; i < recs->nelts; ++i) {
            waiting += APR_ARRAY_IDX(recs, i, scep_pending_rec_t *)->state
                       == SCEP_PENDING_WAITING;
        }
        add_gauge(g, "pending_requests", "Requests waiting for approval "
                  "(SCEPApproval manual).", labels, waiting);
    }
}

int scep_ota_metrics_handler(request_rec *r)
{
    apr_array_header_t *g;
    const char *text;
    int rc;

    if (!r->handler || strcmp(r->handler, METRICS_HANDLER)) {
        return DECLINED;
    }
    if (OK != (rc = ap_discard_request_body(r))) {
        return rc;
    }
    if (r->method_number != M_GET) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(6201)
                      "method %s not allowed on the metrics location",
                      r->method);
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
        return scep_ota_send_text(r, HTTP_METHOD_NOT_ALLOWED,
                                  "the metrics are read with GET or HEAD");
    }
    if (!metrics) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    g = apr_array_make(r->pool, 8, sizeof(scep_gauge_t));
    expiry_gauges(r, g);
    store_gauges(r, g);
    text = scep_metrics_prometheus(r->pool, metrics, g);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return scep_ota_send_bytes(r, "text/plain; version=0.0.4", text,
                               strlen(text));
}

/* mod_status: a section of its own, and "Key: value" lines with ?auto. */
static int status_section(request_rec *r, int flags)
{
    const char *kv;

    if (!metrics) {
        return OK;
    }
    kv = scep_metrics_keyvalue(r->pool, metrics);
    if (flags & AP_STATUS_SHORT) {
        ap_rputs(kv, r);
    }
    else {
        ap_rputs("<hr />\n<h2>mod_scep_ota</h2>\n<pre>", r);
        ap_rputs(ap_escape_html(r->pool, kv), r);
        ap_rputs("</pre>\n", r);
    }
    return OK;
}

void scep_ota_metrics_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_post_config(metrics_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(scep_ota_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, status_section, NULL, NULL,
                      APR_HOOK_MIDDLE);
}
