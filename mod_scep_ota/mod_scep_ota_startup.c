/* Startup assembly: the cross-directive checks and what every server
 * computes once before the children start (its CA from the loaded CA and
 * RA material, the PKIOperation and OCSP settings, the OTA service, the
 * GetCACaps and GetNextCACert answers). */

#include <apr_hash.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <util_cfgtree.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_config.h"
#include "mod_scep_ota_startup.h"
#include "scep_ota/scep_crl.h"
#include "scep_ota/scep_crypt.h"

/* The server a <VirtualHost> section of the config tree defined. */
static server_rec *vhost_of(server_rec *base, const ap_directive_t *node)
{
    server_rec *s;

    for (s = base->next; s; s = s->next) {
        if (s->defn_name && node->filename
            && !strcmp(s->defn_name, node->filename)
            && s->defn_line_number == (unsigned)node->line_num) {
            return s;
        }
    }
    return NULL;
}

/* The handler a SetHandler/AddHandler line maps, or NULL. */
static const char *mapped_handler(apr_pool_t *p, const ap_directive_t *node)
{
    const char *args = node->args;

    if (strcasecmp(node->directive, "SetHandler")
        && strcasecmp(node->directive, "AddHandler")) {
        return NULL;
    }
    return ap_getword_conf(p, &args);
}

/* Marks each server whose configuration maps the "scep", "ota-profile"
 * or "scep-challenge" handler. */
static void find_handler_use(apr_pool_t *p, const ap_directive_t *node,
                             server_rec *s, server_rec *base)
{
    for (; node; node = node->next) {
        server_rec *here = s;
        const char *handler;

        if (!strcasecmp(node->directive, "<VirtualHost")) {
            server_rec *v = vhost_of(base, node);
            here = v ? v : s;
        }
        if ((handler = mapped_handler(p, node))) {
            if (!strcasecmp(handler, "scep")) {
                scep_ota_srv_conf(here)->uses_scep_handler = 1;
            }
            else if (!strcasecmp(handler, "scep-challenge")) {
                scep_ota_srv_conf(here)->uses_challenge_handler = 1;
            }
            else if (!strcasecmp(handler, "scep-crl")) {
                scep_ota_srv_conf(here)->uses_crl_handler = 1;
            }
            else if (!strcasecmp(handler, "scep-ocsp")) {
                scep_ota_srv_conf(here)->uses_ocsp_handler = 1;
            }
            else if (!strcasecmp(handler, "ota-profile")) {
                scep_ota_srv_conf(here)->uses_ota_handler = 1;
            }
        }
        if (node->first_child) {
            find_handler_use(p, node->first_child, here, base);
        }
    }
}

/* The CA of s, or the one already built for a server it inherits all of
 * its material from. */
static scep_ca_t *shared_ca(server_rec *base, server_rec *s)
{
    const scep_ca_material_t *m = &scep_ota_srv_conf(s)->material;
    server_rec *o;

    for (o = base; o && o != s; o = o->next) {
        const scep_ota_srv_conf_t *oc = scep_ota_srv_conf(o);
        if (oc->ca && oc->material.ca_certs == m->ca_certs
            && oc->material.ca_keys == m->ca_keys
            && oc->material.ra_certs == m->ra_certs
            && oc->material.ra_keys == m->ra_keys
            && oc->crl_dps == scep_ota_srv_conf(s)->crl_dps
            && oc->ocsp_urls == scep_ota_srv_conf(s)->ocsp_urls) {
            return oc->ca;
        }
    }
    return NULL;
}

/* Certificates whose subjects no leaf may take: the CA, its chain, the RA
 * and the next CA. */
static const apr_array_header_t *reserved_names(apr_pool_t *p,
                                                const scep_ota_srv_conf_t *sc)
{
    apr_array_header_t *r = apr_array_copy(p, sc->ca->chain);

    if (sc->ca->has_ra) {
        APR_ARRAY_PUSH(r, X509 *) = sc->ca->sign_cert;
        APR_ARRAY_PUSH(r, X509 *) = sc->ca->decrypt_cert;
    }
    if (sc->next_ca_certs) {
        apr_array_cat(r, sc->next_ca_certs);
    }
    return r;
}

/* What PKIOperation needs, fixed at startup; GetNextCACert signed once. */
static int setup_pkiop(apr_pool_t *pconf, server_rec *s, scep_ota_srv_conf_t *sc,
                       const scep_caps_t *caps)
{
    scep_pkiop_cfg_t *c = &sc->pkiop;
    const char *err;

    c->ca = sc->ca;
    c->caps = caps;
    sc->ca_sha1 = scep_cert_fingerprint(pconf, sc->ca->cert, "SHA1");
    sc->ca_sha256 = scep_cert_fingerprint(pconf, sc->ca->cert, "SHA256");
    c->challenge_password = sc->challenge && *sc->challenge ? sc->challenge
                                                            : NULL;
    c->names.san_rules = sc->san_rules;
    c->names.reserved = reserved_names(pconf, sc);
    c->renewal_window_days = sc->renewal_days > 0 ? sc->renewal_days : 0;
    c->renewal_window_percent = sc->renewal_percent > 0 ? sc->renewal_percent
                                                        : 0;
    c->revoke_superseded = scep_ota_revoke_superseded(sc);
    c->revoke_previous = scep_ota_revoke_previous(sc);
    c->max_clock_skew = sc->max_clock_skew > 0 ? sc->max_clock_skew : 0;
    c->approval_manual = scep_ota_approval_manual(sc);
    c->allow_legacy = scep_ota_allow_legacy(sc);
    /* unset: 0, and the core applies its default */
    c->lifetime_days = sc->lifetime_days > 0 ? sc->lifetime_days : 0;
    c->min_key_size = sc->min_key_size > 0 ? sc->min_key_size : 0;
    c->next_ca_certs = sc->next_ca_certs;
    c->crl_days = sc->crl_validity > 0 ? sc->crl_validity : 0;
    c->crl_cache = scep_crl_cache_create(pconf);
    if (c->allow_legacy
        && APR_SUCCESS != scep_crypt_enable_legacy(s->process->pool, &err)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(0005)
                     "SCEPAllowLegacyAlgorithms: %s", err);
        return !OK;
    }
    if (scep_caps_has(caps, SCEP_CAP_GETNEXTCACERT) && !sc->next_ca_certs) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(0006)
                     "SCEPCACaps lists GetNextCACert but no "
                     "SCEPNextCACertificateFile is configured");
        return !OK;
    }
    if (sc->next_ca_certs
        && APR_SUCCESS != scep_pkiop_next_ca(pconf, c, &sc->next_ca_body,
                                             &sc->next_ca_len)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(0007)
                     "SCEPNextCACertificateFile: cannot build the "
                     "GetNextCACert answer from '%s'", sc->next_ca_file);
        return !OK;
    }
    return OK;
}

/* Whether a startup warning is new in this configuration: the same
 * material in several virtual hosts is warned about once. */
static int first_time(apr_pool_t *pconf, const char *warning)
{
    static const char key[] = "scep_ota_warned";
    apr_hash_t *seen = NULL;

    apr_pool_userdata_get((void **)&seen, key, pconf);
    if (!seen) {
        seen = apr_hash_make(pconf);
        apr_pool_userdata_set(seen, key, apr_pool_cleanup_null, pconf);
    }
    if (apr_hash_get(seen, warning, APR_HASH_KEY_STRING)) {
        return 0;
    }
    apr_hash_set(seen, apr_pstrdup(pconf, warning), APR_HASH_KEY_STRING, "");
    return 1;
}

/* Who signs OCSP responses: the delegated signer when both of its
 * files are set ("none" for neither), else the CA. */
static int setup_ocsp(apr_pool_t *pconf, server_rec *s, scep_ota_srv_conf_t *sc)
{
    scep_ocsp_cfg_t *o = &sc->ocsp;
    const char *err = NULL, *warning = NULL;

    o->ca = sc->ca;
    o->signer = sc->ca->cert;
    o->signer_key = sc->ca->key;
    o->delegated = 0;
    if (!sc->ocsp_cert_file && !sc->ocsp_key_file) {
        return OK;
    }
    if (!sc->ocsp_cert_file || !sc->ocsp_key_file
        || sc->ocsp_certs->nelts < 1 || sc->ocsp_keys->nelts < 1) {
        err = "SCEPOCSPSigningCertificateFile and SCEPOCSPSigningKeyFile "
              "go together";
    }
    else if (APR_SUCCESS == scep_ocsp_signer_check(
                 pconf, sc->ca, APR_ARRAY_IDX(sc->ocsp_certs, 0, X509 *),
                 APR_ARRAY_IDX(sc->ocsp_keys, 0, EVP_PKEY *), &err,
                 &warning)) {
        o->signer = APR_ARRAY_IDX(sc->ocsp_certs, 0, X509 *);
        o->signer_key = APR_ARRAY_IDX(sc->ocsp_keys, 0, EVP_PKEY *);
        o->delegated = 1;
    }
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(6054)
                     "SCEPOCSPSigningCertificateFile: %s (server %s)", err,
                     s->server_hostname ? s->server_hostname : "?");
        return !OK;
    }
    if (warning && first_time(pconf, warning)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCEPLOGNO(6055)
                     "SCEPOCSPSigningCertificateFile: %s", warning);
    }
    return OK;
}

/* Any OTA directive in force for this server. */
static int scep_ota_ota_configured(const scep_ota_srv_conf_t *sc)
{
    const ota_settings_t *o = &sc->ota_set;

    return sc->ota_sign_cert_file || sc->ota_sign_key_file || o->device_cas
           || o->scep_url || o->profile || o->subject || o->attributes;
}

/* The OTA service: needs the SCEP CA, since the device enrolls there and
 * Phase 3 trusts what it issued. */
static int setup_ota(apr_pool_t *pconf, server_rec *s, scep_ota_srv_conf_t *sc,
                     const scep_caps_t *caps)
{
    const char *err = NULL;
    apr_status_t rv;

    if (!scep_ota_ota_configured(sc)) {
        if (sc->uses_ota_handler) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(0020)
                         "the ota-profile handler is mapped (server %s) but "
                         "OTA is not configured there: set "
                         "OTASigningCertificateFile, OTASigningKeyFile, "
                         "OTADeviceCACertificateFile, OTASCEPURL and "
                         "OTAProfile", s->server_hostname ? s->server_hostname
                                                          : "?");
            return !OK;
        }
        return OK;
    }
    if (!sc->ca) {
        err = "OTA profile delivery needs the SCEP CA of the same server: "
              "set SCEPCACertificateFile and SCEPCAKeyFile";
    }
    else if (!sc->ota_sign_cert_file || !sc->ota_sign_key_file) {
        err = "OTASigningCertificateFile and OTASigningKeyFile are both "
              "required: every profile served is signed";
    }
    else if (APR_SUCCESS != (rv = ota_identity_load(pconf,
                                                    sc->ota_sign_cert_file,
                                                    sc->ota_sign_key_file,
                                                    &sc->ota_set.signer,
                                                    &err))
             || APR_SUCCESS != (rv = ota_create(&sc->ota, pconf, &sc->ota_set,
                                                sc->ca, caps, &err))) {
        /* err says which */
    }
    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(0021)
                     "%s (server %s)", err,
                     s->server_hostname ? s->server_hostname : "?");
        return !OK;
    }
    return OK;
}

/* The configured list, else the default; a configured next CA is
 * advertised even when the list does not name it. */
static const scep_caps_t *caps_in_force(apr_pool_t *pconf,
                                        const scep_ota_srv_conf_t *sc)
{
    scep_caps_t *caps;
    const char *err;
    int i;

    if (!sc->next_ca_certs) {
        return sc->caps ? sc->caps : scep_caps_default(pconf);
    }
    if (sc->caps && scep_caps_has(sc->caps, SCEP_CAP_GETNEXTCACERT)) {
        return sc->caps;
    }
    caps = scep_caps_make(pconf);
    if (sc->caps) {
        for (i = 0; i < scep_caps_count(sc->caps); ++i) {
            scep_caps_add(caps, scep_caps_word(sc->caps, i), &err);
        }
    }
    else {
        caps = scep_caps_default(pconf);
    }
    scep_caps_add(caps, "GetNextCACert", &err);
    return caps;
}

/* The material with "SCEPRACertificateFile none" taken at its word. */
static const scep_ca_material_t *without_none(apr_pool_t *p,
                                              const scep_ca_material_t *m)
{
    scep_ca_material_t *c;

    if ((!m->ra_cert_file || *m->ra_cert_file)
        && (!m->ra_key_file || *m->ra_key_file)) {
        return m;
    }
    c = apr_pmemdup(p, m, sizeof(*m));
    c->ra_cert_file = c->ra_key_file = NULL;
    c->ra_certs = c->ra_keys = NULL;
    return c;
}

/* A server without CA material: refused when a handler that needs a CA
 * is mapped there. */
static int check_no_ca(server_rec *s, const scep_ota_srv_conf_t *sc)
{
    if ((sc->uses_crl_handler || sc->uses_ocsp_handler)
        && !sc->uses_scep_handler && !sc->uses_challenge_handler) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(6010)
                     "the %s handler is mapped in %s:%d (server "
                     "%s) but no CA is configured there: set "
                     "SCEPCACertificateFile and SCEPCAKeyFile",
                     sc->uses_crl_handler ? "scep-crl" : "scep-ocsp",
                     s->defn_name ? s->defn_name : "the main config",
                     (int)s->defn_line_number,
                     s->server_hostname ? s->server_hostname : "?");
        return !OK;
    }
    if (sc->uses_scep_handler || sc->uses_challenge_handler) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(0001)
                     "the %s handler is mapped in %s:%d (server %s) "
                     "but no CA is configured there: set "
                     "SCEPCACertificateFile and SCEPCAKeyFile",
                     sc->uses_scep_handler ? "scep" : "scep-challenge",
                     s->defn_name ? s->defn_name : "the main config",
                     (int)s->defn_line_number,
                     s->server_hostname ? s->server_hostname : "?");
        return !OK;
    }
    return OK;
}

/* The server's own CA, from its material, with the extensions that name
 * its CRL and OCSP responder. */
static int build_ca(apr_pool_t *pconf, server_rec *s, scep_ota_srv_conf_t *sc,
                    const scep_ca_material_t *m)
{
    const char *err, *warning;

    if (APR_SUCCESS != scep_ca_assemble(&sc->ca, pconf, m, &err, &warning)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(0002)
                     "%s (server %s)", err,
                     s->server_hostname ? s->server_hostname : "?");
        return !OK;
    }
    if (APR_SUCCESS != scep_ca_set_crl_dps(sc->ca, pconf, sc->crl_dps)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(6011)
                     "SCEPCRLDistributionPoint: cannot build the "
                     "extension (server %s)",
                     s->server_hostname ? s->server_hostname : "?");
        return !OK;
    }
    if (APR_SUCCESS != scep_ca_set_ocsp_urls(sc->ca, pconf, sc->ocsp_urls)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(6053)
                     "SCEPOCSPURL: cannot build the extension (server %s)",
                     s->server_hostname ? s->server_hostname : "?");
        return !OK;
    }
    if (warning && first_time(pconf, warning)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SCEPLOGNO(0003)
                     "%s", warning);
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, SCEPLOGNO(0004)
                 "CA '%s'%s%s, GetCACert %s (%" APR_SIZE_T_FMT " bytes)",
                 scep_cert_subject(pconf, sc->ca->cert),
                 sc->ca->has_ra ? ", RA " : "",
                 sc->ca->has_ra ? scep_cert_subject(pconf, sc->ca->sign_cert)
                                : "",
                 sc->ca->getcacert_type, sc->ca->getcacert_len);
    return OK;
}

/* The server's CA (shared with an earlier server of the same material, or
 * built), then what PKIOperation and OCSP need of it. */
static int check_ca(apr_pool_t *pconf, server_rec *base, server_rec *s,
                    scep_ota_srv_conf_t *sc, const scep_caps_t *caps)
{
    const scep_ca_material_t *m = without_none(pconf, &sc->material);

    if (!m->ca_certs && !m->ca_keys && !m->ra_certs && !m->ra_keys) {
        return check_no_ca(s, sc);
    }
    if (!(sc->ca = shared_ca(base, s)) && OK != build_ca(pconf, s, sc, m)) {
        return !OK;
    }
    return setup_pkiop(pconf, s, sc, caps) == OK ? setup_ocsp(pconf, s, sc)
                                                 : !OK;
}

static int check_server(apr_pool_t *pconf, server_rec *base, server_rec *s)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(s);
    const scep_caps_t *caps = caps_in_force(pconf, sc);

    sc->caps_body = scep_caps_body(caps, pconf, &sc->caps_len);
    if (OK != check_ca(pconf, base, s, sc, caps)) {
        return !OK;
    }
    return setup_ota(pconf, s, sc, caps);
}

int scep_ota_config_check(apr_pool_t *pconf, server_rec *base)
{
    server_rec *s;
    int rc = OK;

    find_handler_use(pconf, ap_conftree, base, base);
    for (s = base; s; s = s->next) {
        if (OK != check_server(pconf, base, s)) {
            rc = !OK;
        }
    }
    return rc;
}
