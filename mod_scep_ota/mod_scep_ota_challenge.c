/* The "scep-challenge" handler: HTTP in (method, transport, user, query),
 * a one-time challenge from the core into the store, the page out. */

#include <apr_strings.h>
#include <apr_shm.h>
#include <apr_network_io.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#if AP_MODULE_MAGIC_AT_LEAST(20120211, 105)
#include <http_ssl.h>
#endif

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_audit.h"
#include "mod_scep_ota_config.h"
#include "mod_scep_ota_challenge.h"
#include "mod_scep_ota_http.h"
#include "mod_scep_ota_store.h"
#include "scep_ota/scep_challenge.h"
#include "scep_ota/scep_ndes.h"
#include "scep_ota/scep_tally.h"

#define CHALLENGE_HANDLER "scep-challenge"

/* ------------------------------------------------------------------ */
/* who may have one                                                    */

static int over_tls(request_rec *r)
{
#if AP_MODULE_MAGIC_AT_LEAST(20120211, 105)
    return ap_ssl_conn_is_ssl(r->connection);
#else
    return !strcasecmp(ap_http_scheme(r), "https");
#endif
}

/* The connection's peer (not a forwarded address: the plain-HTTP hop
 * itself must stay on this machine) is a loopback address. */
static int from_loopback(request_rec *r)
{
    const apr_sockaddr_t *a = r->connection->client_addr;
    const unsigned char *ip = a ? a->ipaddr_ptr : NULL;
    static const unsigned char v6_loop[16] = { [15] = 1 };
    static const unsigned char v4_mapped[12] = { [10] = 0xff, [11] = 0xff };

    if (!ip) {
        return 0;
    }
    if (a->family == APR_INET) {
        return ip[0] == 127;
    }
#if APR_HAVE_IPV6
    if (a->family == APR_INET6) {
        return !memcmp(ip, v6_loop, 16)
               || (!memcmp(ip, v4_mapped, 12) && ip[12] == 127);
    }
#endif
    return 0;
}

/* A challenge handed out: its handle and binding, never the secret. */
static void audit_challenge(request_rec *r, const char *ref,
                            const char *bound)
{
    scep_audit_t ev;

    memset(&ev, 0, sizeof(ev));
    ev.event = "challenge";
    ev.serial = NULL;
    ev.reason = apr_pstrcat(r->pool, "ref ", ref, ", ",
                            scep_challenge_binding_text(r->pool, bound),
                            NULL);
    scep_ota_audit(r, &ev);
}

/* 0, or the status to refuse with (logged). */
static int admitted(request_rec *r, const scep_ota_srv_conf_t *sc)
{
    if (scep_ota_challenge_require_tls(sc) && !over_tls(r)
        && !from_loopback(r)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, SCEPLOGNO(0400)
                      "challenge page %s refused to %s over plain HTTP: it "
                      "answers over TLS, or to loopback clients "
                      "(SCEPChallengeRequireTLS off lifts this, e.g. behind "
                      "a TLS-terminating proxy)", r->uri, r->useragent_ip);
        return HTTP_FORBIDDEN;
    }
    if (!r->user || !*r->user) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(0401)
                      "challenge page %s needs authentication: protect the "
                      "location with an auth module (e.g. AuthType Basic, "
                      "AuthUserFile, Require valid-user); nothing issued",
                      r->uri);
        return HTTP_FORBIDDEN;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* answers                                                             */

static int send_answer(request_rec *r, int status, scep_ndes_format_t fmt,
                       const unsigned char *body, apr_size_t len)
{
    r->status = status;
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "Pragma", "no-cache");
    return scep_ota_send_bytes(r, scep_ndes_content_type(fmt), body, len);
}

/* The user holds as many unused challenges as SCEPChallengeCacheSize:
 * HTML says so (with 200, as NDES does); JSON and text get 429 and a
 * Retry-After. */
static int cache_full(request_rec *r, const scep_ota_srv_conf_t *sc,
                      scep_store_t *st, scep_ndes_format_t fmt)
{
    apr_interval_time_t wait;
    const unsigned char *body;
    apr_size_t len;

    if (APR_SUCCESS != scep_challenge_next_free(r->pool, st, r->user,
                                                SCEP_VIA_PAGE, &wait)) {
        wait = scep_ota_challenge_lifetime(sc);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0402)
                  "challenge page: the password cache of user '%s' is full "
                  "(%d unused; SCEPChallengeCacheSize)", r->user,
                  scep_ota_challenge_cache(sc));
    if (APR_SUCCESS != scep_ndes_render_full(r->pool, fmt,
                                             scep_ota_challenge_cache(sc),
                                             wait, &body, &len)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (fmt == SCEP_NDES_HTML) {
        return send_answer(r, HTTP_OK, fmt, body, len);
    }
    apr_table_setn(r->err_headers_out, "Retry-After",
                   apr_psprintf(r->pool, "%" APR_TIME_T_FMT,
                                apr_time_sec(wait + apr_time_from_sec(1)
                                             - 1)));
    return send_answer(r, HTTP_TOO_MANY_REQUESTS, fmt, body, len);
}

/* Issues one challenge for r->user, bound as asked, and answers it. */
static int issue(request_rec *r, const scep_ota_srv_conf_t *sc,
                 scep_ndes_format_t fmt, const char *bound)
{
    scep_challenge_spec_t spec;
    scep_challenge_rec_t *rec;
    scep_ndes_answer_t a;
    scep_store_t *st;
    const unsigned char *body;
    apr_size_t len;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = scep_ota_store_for_request(r, &st))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(0403)
                      "challenge page: the store is unavailable");
        apr_table_setn(r->err_headers_out, "Retry-After", "10");
        return scep_ota_send_text(r, HTTP_SERVICE_UNAVAILABLE,
                                  "the challenge store is unavailable");
    }
    memset(&spec, 0, sizeof(spec));
    spec.format = SCEP_CHALLENGE_HEX64;
    spec.purpose = SCEP_CHALLENGE_SCEP;
    spec.bound_to = bound;
    spec.created_by = r->user;
    spec.via = SCEP_VIA_PAGE;
    spec.lifetime = scep_ota_challenge_lifetime(sc);
    spec.limit = scep_ota_challenge_cache(sc);
    memset(&a, 0, sizeof(a));
    rv = scep_challenge_issue(r->pool, st, &spec, &a.challenge, &rec);
    if (APR_STATUS_IS_ENOSPC(rv)) {
        return cache_full(r, sc, st, fmt);
    }
    if (APR_SUCCESS != rv) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(0404)
                      "challenge page: cannot store a challenge");
        apr_table_setn(r->err_headers_out, "Retry-After", "10");
        return scep_ota_send_text(r, HTTP_SERVICE_UNAVAILABLE,
                                  "the challenge store is unavailable");
    }
    audit_challenge(r, rec->ref, bound);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0405)
                  "challenge page: one-time challenge %s for user '%s', "
                  "%s, valid until %s", rec->ref, r->user,
                  scep_challenge_binding_text(r->pool, bound),
                  scep_ndes_rfc3339(r->pool, rec->expires));
    a.expires = rec->expires;
    a.lifetime = spec.lifetime;
    a.ca_sha1 = sc->ca_sha1;
    a.ca_sha256 = sc->ca_sha256;
    if (APR_SUCCESS != scep_ndes_render(r->pool, fmt, &a, &body, &len)) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return send_answer(r, HTTP_OK, fmt, body, len);
}

/* ------------------------------------------------------------------ */
/* the handler                                                         */

static int not_allowed(request_rec *r)
{
    int rc;

    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, SCEPLOGNO(0406)
                  "method %s not allowed on the challenge page", r->method);
    if (OK != (rc = ap_discard_request_body(r))) {
        return rc;
    }
    apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
    return scep_ota_send_text(r, HTTP_METHOD_NOT_ALLOWED,
                              "the challenge page answers GET and HEAD only");
}

/* What the query asks: the format and the binding; 0 or 400 (sent). */
static int read_query(request_rec *r, scep_ndes_format_t *fmt,
                      const char **bound)
{
    scep_ndes_query_t q;
    const char *err = NULL;

    if (APR_SUCCESS == scep_ndes_query_parse(r->pool, r->args, &q, &err)) {
        *fmt = q.format >= 0 ? (scep_ndes_format_t)q.format
               : scep_ndes_format_accepted(apr_table_get(r->headers_in,
                                                         "Accept"));
        if (APR_SUCCESS == scep_challenge_binding(r->pool, q.subject,
                                                  q.sans, r->user, bound,
                                                  &err)) {
            return 0;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SCEPLOGNO(0407)
                  "challenge page: query refused: %s", err);
    return HTTP_BAD_REQUEST;
}

int scep_ota_challenge_handler(request_rec *r)
{
    const scep_ota_srv_conf_t *sc;
    scep_ndes_format_t fmt;
    const char *bound;
    int rc;

    if (!r->handler || strcmp(r->handler, CHALLENGE_HANDLER)) {
        return DECLINED;
    }
    sc = scep_ota_srv_conf(r->server);
    if (r->method_number != M_GET) {
        return not_allowed(r);
    }
    if (!sc->ca) {
        /* only a handler mapped outside the config tree (.htaccess) gets
         * here: startup refuses a mapped handler without a CA */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SCEPLOGNO(0408)
                      "the scep-challenge handler is mapped to %s but no CA "
                      "is configured for this server", r->uri);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (OK != (rc = ap_discard_request_body(r))) {
        return rc;
    }
    if ((rc = admitted(r, sc)) != 0) {
        return scep_ota_send_text(r, rc, "forbidden");
    }
    if ((rc = read_query(r, &fmt, &bound)) != 0) {
        return scep_ota_send_text(r, rc, "bad query: see the server's log");
    }
    if (r->header_only) {
        /* HEAD shows what GET would send, and issues nothing */
        apr_table_setn(r->headers_out, "Cache-Control", "no-store");
        ap_set_content_type(r, scep_ndes_content_type(fmt));
        return OK;
    }
    return issue(r, sc, fmt, bound);
}

/* ------------------------------------------------------------------ */
/* refused challenges, counted across the server's processes           */

int scep_ota_challenge_post_config(apr_pool_t *pconf, server_rec *base)
{
    apr_shm_t *shm = NULL;
    scep_tally_t *tally;
    server_rec *s;
    apr_status_t rv;

    /* anonymous shared memory: the children inherit it; a restart makes
     * a new one (the counts start again) */
    rv = apr_shm_create(&shm, scep_tally_size(), NULL, pconf);
    if (APR_SUCCESS == rv) {
        tally = scep_tally_init(apr_shm_baseaddr_get(shm));
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, rv, base, SCEPLOGNO(0409)
                     "no anonymous shared memory: refused challenges are "
                     "counted per process");
        tally = scep_tally_init(apr_pcalloc(pconf, scep_tally_size()));
    }
    for (s = base; s; s = s->next) {
        scep_ota_srv_conf(s)->pkiop.tally = tally;
    }
    return OK;
}
