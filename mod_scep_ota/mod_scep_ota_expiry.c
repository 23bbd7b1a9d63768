/* SCEPExpiryWarning: a line in the error log before a certificate the
 * module serves with (the CA, an RA, the next CA, the OTA signer)
 * expires, and an error once it has.
 *
 * The check runs in httpd's parent process: once in post_config, and
 * then from the monitor hook, which every MPM (prefork, worker, event)
 * runs in the parent about every ten seconds. So there is one check a day
 * per certificate for the whole server, whatever the number of children,
 * with no thread, timer or shared memory of our own. */

#include <time.h>

#include <apr_hash.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_core.h>
#include <http_main.h>
#include <mpm_common.h>

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_config.h"
#include "mod_scep_ota_expiry.h"
#include "scep_ota/scep_crypt.h"

#define EXPIRY_CHECK_INTERVAL apr_time_from_sec(86400)

/* One certificate, however many virtual hosts use it. */
typedef struct {
    const char *what;            /* "CA certificate", ... */
    const char *file;            /* the directive's file */
    const char *subject;
    X509 *cert;
    int days;                    /* the largest SCEPExpiryWarning using it */
    server_rec *s;               /* the first server using it */
} watched_cert_t;

/* In the configuration pool of this generation; NULL between two. */
static apr_array_header_t *watched;
static apr_time_t next_check;

static void watch(apr_pool_t *p, apr_hash_t *seen, server_rec *s, int days,
                  const char *what, const char *file, X509 *cert)
{
    const char *key;
    watched_cert_t *w;

    if (!cert) {
        return;
    }
    /* the certificate, whichever file or virtual host names it */
    if (!(key = scep_cert_fingerprint(p, cert, "SHA256"))) {
        key = apr_psprintf(p, "%pp", (void *)cert);
    }
    if ((w = apr_hash_get(seen, key, APR_HASH_KEY_STRING))) {
        w->days = days > w->days ? days : w->days;
        return;
    }
    w = apr_array_push(watched);
    w->what = what;
    w->file = file ? file : "?";
    w->subject = scep_cert_subject(p, cert);
    w->cert = cert;
    w->days = days;
    w->s = s;
    apr_hash_set(seen, key, APR_HASH_KEY_STRING, w);
}

/* The certificates of every server whose SCEPExpiryWarning is not 0. */
static void watch_servers(apr_pool_t *pconf, server_rec *base)
{
    apr_hash_t *seen = apr_hash_make(pconf);
    const scep_ota_srv_conf_t *sc;
    server_rec *s;
    int days, i;

    watched = apr_array_make(pconf, 4, sizeof(watched_cert_t));
    for (s = base; s; s = s->next) {
        sc = scep_ota_srv_conf(s);
        days = scep_ota_expiry_warning_days(sc);
        if (!sc->ca || days == 0) {
            continue;
        }
        watch(pconf, seen, s, days, "CA certificate",
              sc->material.ca_cert_file, sc->ca->cert);
        if (sc->ca->has_ra) {
            watch(pconf, seen, s, days, "RA certificate",
                  sc->material.ra_cert_file, sc->ca->sign_cert);
            watch(pconf, seen, s, days, "RA certificate",
                  sc->material.ra_cert_file, sc->ca->decrypt_cert);
        }
        for (i = 0; sc->next_ca_certs && i < sc->next_ca_certs->nelts; ++i) {
            watch(pconf, seen, s, days, "next CA certificate",
                  sc->next_ca_file,
                  APR_ARRAY_IDX(sc->next_ca_certs, i, X509 *));
        }
        if (sc->ota && sc->ota_set.signer) {
            watch(pconf, seen, s, days, "OTA signing certificate",
                  sc->ota_sign_cert_file, sc->ota_set.signer->cert);
        }
    }
}

/* notAfter as "YYYY-MM-DD HH:MM:SS UTC". */
static const char *not_after(apr_pool_t *p, X509 *cert)
{
    struct tm tm;
    char buf[32];

    if (!ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm)
        || !strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm)) {
        return "(unreadable date)";
    }
    return apr_pstrdup(p, buf);
}

static void check_one(apr_pool_t *p, const watched_cert_t *w)
{
    int days = 0, secs = 0;

    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(w->cert))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s, SCEPLOGNO(6302)
                     "the %s in %s (%s) has an end date that cannot be "
                     "read", w->what, w->file, w->subject);
        return;
    }
    if (days < 0 || secs < 0 || (days == 0 && secs == 0)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, w->s, SCEPLOGNO(6301)
                     "the %s in %s (%s) expired on %s", w->what, w->file,
                     w->subject, not_after(p, w->cert));
    }
    else if (days < w->days) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, w->s, SCEPLOGNO(6300)
                     "the %s in %s (%s) expires on %s, in %d day%s "
                     "(SCEPExpiryWarning %d)", w->what, w->file, w->subject,
                     not_after(p, w->cert), days, days == 1 ? "" : "s",
                     w->days);
    }
}

static void check_all(apr_pool_t *parent)
{
    apr_pool_t *p;
    int i;

    if (APR_SUCCESS != apr_pool_create(&p, parent)) {
        return;
    }
    for (i = 0; i < watched->nelts; ++i) {
        check_one(p, &APR_ARRAY_IDX(watched, i, watched_cert_t));
    }
    apr_pool_destroy(p);
    next_check = apr_time_now() + EXPIRY_CHECK_INTERVAL;
}

static int expiry_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    watched = NULL;
    return OK;
}

/* After check_config has loaded every server's certificates. */
static int expiry_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                              apr_pool_t *ptemp, server_rec *base)
{
    (void)plog;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    watch_servers(pconf, base);
    check_all(ptemp);
    return OK;
}

static int expiry_monitor(apr_pool_t *p, server_rec *s)
{
    (void)s;
    if (watched && watched->nelts && apr_time_now() >= next_check) {
        check_all(p);
    }
    return DECLINED;
}

void scep_ota_expiry_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(expiry_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(expiry_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(expiry_monitor, NULL, NULL, APR_HOOK_MIDDLE);
}
