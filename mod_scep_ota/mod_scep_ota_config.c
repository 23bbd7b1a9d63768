/* Directives, the per-server configuration (create and merge), and the
 * values in force. */

#include <errno.h>

#include <apr_general.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_config.h"
#include "scep_ota/scep_crl.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_store_dbd.h"

/* ------------------------------------------------------------------ */
/* create / merge                                                      */

void *scep_ota_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    scep_ota_srv_conf_t *sc = apr_pcalloc(p, sizeof(*sc));

    (void)s;
    /* pointers NULL = unset; numbers SCEP_OTA_UNSET */
    sc->lifetime_days = SCEP_OTA_UNSET;
    sc->approval_manual = SCEP_OTA_UNSET;
    sc->allow_legacy = SCEP_OTA_UNSET;
    sc->max_request = SCEP_OTA_UNSET;
    sc->min_key_size = SCEP_OTA_UNSET;
    sc->renewal_days = SCEP_OTA_UNSET;
    sc->renewal_percent = SCEP_OTA_UNSET;
    sc->revoke_superseded = SCEP_OTA_UNSET;
    sc->revoke_previous = SCEP_OTA_UNSET;
    sc->max_clock_skew = SCEP_OTA_UNSET;
    sc->challenge_lifetime = SCEP_OTA_UNSET;
    sc->challenge_cache = SCEP_OTA_UNSET;
    sc->challenge_require_tls = SCEP_OTA_UNSET;
    sc->expiry_warning_days = SCEP_OTA_UNSET;
    sc->crl_validity = SCEP_OTA_UNSET;
    return sc;
}

#define MERGE_PTR(f) (add->f ? add->f : base->f)
#define MERGE_VAL(f) (add->f != SCEP_OTA_UNSET ? add->f : base->f)

/* A file and what it loaded travel together: the CA and RA material, the
 * next CA, and the delegated OCSP signer (its certificate with its key). */
static void merge_files(scep_ota_srv_conf_t *sc, const scep_ota_srv_conf_t *base,
                        const scep_ota_srv_conf_t *add)
{
    sc->material.ca_cert_file = MERGE_PTR(material.ca_cert_file);
    sc->material.ca_certs = MERGE_PTR(material.ca_certs);
    sc->material.ca_key_file = MERGE_PTR(material.ca_key_file);
    sc->material.ca_keys = MERGE_PTR(material.ca_keys);
    sc->material.ra_cert_file = MERGE_PTR(material.ra_cert_file);
    sc->material.ra_certs = MERGE_PTR(material.ra_certs);
    sc->material.ra_key_file = MERGE_PTR(material.ra_key_file);
    sc->material.ra_keys = MERGE_PTR(material.ra_keys);
    sc->next_ca_file = MERGE_PTR(next_ca_file);
    sc->next_ca_certs = MERGE_PTR(next_ca_certs);
    sc->ocsp_cert_file = MERGE_PTR(ocsp_cert_file);
    sc->ocsp_certs = MERGE_PTR(ocsp_certs);
    sc->ocsp_key_file = MERGE_PTR(ocsp_key_file);
    sc->ocsp_keys = MERGE_PTR(ocsp_keys);
}

/* What the SCEP, challenge, CRL and OCSP handlers are told. */
static void merge_scep(scep_ota_srv_conf_t *sc, const scep_ota_srv_conf_t *base,
                       const scep_ota_srv_conf_t *add)
{
    sc->caps = MERGE_PTR(caps);
    sc->caps_line = MERGE_PTR(caps_line);
    sc->challenge = MERGE_PTR(challenge);
    sc->lifetime_days = MERGE_VAL(lifetime_days);
    sc->approval_manual = MERGE_VAL(approval_manual);
    sc->allow_legacy = MERGE_VAL(allow_legacy);
    sc->max_request = MERGE_VAL(max_request);
    sc->min_key_size = MERGE_VAL(min_key_size);
    sc->store_uri = MERGE_PTR(store_uri);
    /* a virtual host that allows any name replaces the inherited list */
    sc->san_rules = MERGE_PTR(san_rules);
    sc->renewal_days = MERGE_VAL(renewal_days);
    sc->renewal_percent = MERGE_VAL(renewal_percent);
    sc->revoke_superseded = MERGE_VAL(revoke_superseded);
    sc->revoke_previous = MERGE_VAL(revoke_previous);
    sc->max_clock_skew = MERGE_VAL(max_clock_skew);
    sc->challenge_lifetime = MERGE_VAL(challenge_lifetime);
    sc->challenge_cache = MERGE_VAL(challenge_cache);
    sc->challenge_require_tls = MERGE_VAL(challenge_require_tls);
    sc->expiry_warning_days = MERGE_VAL(expiry_warning_days);
    /* a virtual host that names any distribution point replaces the
     * inherited ones */
    sc->crl_dps = MERGE_PTR(crl_dps);
    sc->crl_validity = MERGE_VAL(crl_validity);
    sc->ocsp_urls = MERGE_PTR(ocsp_urls);
    sc->audit_log = MERGE_PTR(audit_log);
}

static void merge_ota(scep_ota_srv_conf_t *sc, const scep_ota_srv_conf_t *base,
                      const scep_ota_srv_conf_t *add)
{
    sc->ota_sign_cert_file = MERGE_PTR(ota_sign_cert_file);
    sc->ota_sign_key_file = MERGE_PTR(ota_sign_key_file);
    sc->ota_attr_line = MERGE_PTR(ota_attr_line);
    sc->ota_set.signer = NULL;  /* loaded per server at startup */
    sc->ota_set.device_cas = MERGE_PTR(ota_set.device_cas);
    sc->ota_set.scep_url = MERGE_PTR(ota_set.scep_url);
    sc->ota_set.profile = MERGE_PTR(ota_set.profile);
    sc->ota_set.attributes = MERGE_PTR(ota_set.attributes);
    sc->ota_set.subject = MERGE_PTR(ota_set.subject);
    sc->ota_set.key_size = MERGE_PTR(ota_set.key_size);
    sc->ota_set.organization = MERGE_PTR(ota_set.organization);
    sc->ota_set.identifier = MERGE_PTR(ota_set.identifier);
    sc->ota_set.display_name = MERGE_PTR(ota_set.display_name);
    sc->ota_set.scep_name = MERGE_PTR(ota_set.scep_name);
    sc->ota_set.cipher_nid = MERGE_PTR(ota_set.cipher_nid);
    sc->ota_set.retries = MERGE_PTR(ota_set.retries);
    sc->ota_set.retry_delay = MERGE_PTR(ota_set.retry_delay);
    sc->ota_set.challenge_ttl = MERGE_PTR(ota_set.challenge_ttl);
    sc->ota_set.no_caps_array = 0; /* never configurable */
}

/* Computed per server at startup, never inherited. */
static void merge_computed(scep_ota_srv_conf_t *sc)
{
    sc->ca = NULL;
    sc->caps_body = NULL;
    sc->caps_len = 0;
    sc->uses_scep_handler = 0;
    sc->uses_challenge_handler = 0;
    sc->uses_crl_handler = 0;
    sc->uses_ocsp_handler = 0;
    sc->uses_ota_handler = 0;
    memset(&sc->ocsp, 0, sizeof(sc->ocsp));
    sc->audit_file = NULL;
    sc->ca_sha1 = NULL;
    sc->ca_sha256 = NULL;
    memset(&sc->pkiop, 0, sizeof(sc->pkiop));
    sc->ota = NULL;
    sc->next_ca_body = NULL;
    sc->next_ca_len = 0;
}

/* Every field: the virtual host's if set, else the base's
 * (tools/check-config-fields.sh checks that none is left out). */
void *scep_ota_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    const scep_ota_srv_conf_t *base = basev, *add = addv;
    scep_ota_srv_conf_t *sc = apr_pcalloc(p, sizeof(*sc));

    merge_files(sc, base, add);
    merge_scep(sc, base, add);
    merge_ota(sc, base, add);
    merge_computed(sc);
    return sc;
}

scep_ota_srv_conf_t *scep_ota_srv_conf(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &scep_ota_module);
}

/* ------------------------------------------------------------------ */
/* directives                                                          */

typedef enum {
    FILE_CA_CERT, FILE_CA_KEY, FILE_RA_CERT, FILE_RA_KEY, FILE_NEXT_CA,
    FILE_OCSP_CERT, FILE_OCSP_KEY
} file_kind_t;

/* Where a file of that kind and what it loaded are kept. */
static void put_pki_file(scep_ota_srv_conf_t *sc, file_kind_t kind,
                         const char *path, apr_array_header_t *items)
{
    switch (kind) {
    case FILE_CA_CERT:
        sc->material.ca_cert_file = path;
        sc->material.ca_certs = items;
        break;
    case FILE_CA_KEY:
        sc->material.ca_key_file = path;
        sc->material.ca_keys = items;
        break;
    case FILE_RA_CERT:
        sc->material.ra_cert_file = path;
        sc->material.ra_certs = items;
        break;
    case FILE_RA_KEY:
        sc->material.ra_key_file = path;
        sc->material.ra_keys = items;
        break;
    case FILE_NEXT_CA:
        sc->next_ca_file = path;
        sc->next_ca_certs = items;
        break;
    case FILE_OCSP_CERT:
        sc->ocsp_cert_file = path;
        sc->ocsp_certs = items;
        break;
    case FILE_OCSP_KEY:
        sc->ocsp_key_file = path;
        sc->ocsp_keys = items;
        break;
    }
}

/* Resolves the path against ServerRoot and loads it now, so a missing or
 * unusable file stops httpd at the line that names it. */
static const char *set_pki_file(cmd_parms *cmd, void *dc, const char *arg)
{
    file_kind_t kind = (file_kind_t)(apr_uintptr_t)cmd->info;
    const char *err, *path;
    apr_array_header_t *items = NULL;
    apr_status_t rv;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    if ((kind == FILE_RA_CERT || kind == FILE_RA_KEY)
        && !strcasecmp(arg, "none")) {
        /* no RA here, whatever the main server has */
        path = SCEP_OTA_NONE;
        items = apr_array_make(cmd->pool, 1, sizeof(void *));
        rv = APR_SUCCESS;
    }
    else if (!(path = scep_is_uri(arg) ? arg
                      : ap_server_root_relative(cmd->pool, arg))) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": invalid path '",
                           arg, "'", NULL);
    }
    else if (kind == FILE_CA_CERT || kind == FILE_RA_CERT
        || kind == FILE_NEXT_CA || kind == FILE_OCSP_CERT) {
        rv = scep_load_certs(cmd->pool, path, &items, &err);
    }
    else {
        rv = scep_load_keys(cmd->pool, path, &items, &err);
    }
    if (APR_SUCCESS != rv) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
    }
    put_pki_file(scep_ota_srv_conf(cmd->server), kind, path, items);
    return NULL;
}

static const char *set_caps(cmd_parms *cmd, void *dc, const char *word)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    /* the words of one line make the list; a later line replaces it */
    if (!sc->caps || sc->caps_line != cmd->directive) {
        sc->caps = scep_caps_make(cmd->pool);
        sc->caps_line = cmd->directive;
    }
    if (APR_SUCCESS != scep_caps_add(sc->caps, word, &err)) {
        return apr_pstrcat(cmd->pool, "SCEPCACaps: ", err, NULL);
    }
    return NULL;
}

static const char *set_challenge(cmd_parms *cmd, void *dc, const char *arg)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    if (!*arg) {
        return "SCEPChallengePassword: the password must not be empty";
    }
    /* "none" switches off an inherited password */
    sc->challenge = strcasecmp(arg, "none") ? arg : SCEP_OTA_NONE;
    return NULL;
}

/* A whole number within [min, max], or a message naming the directive. */
static const char *parse_range(cmd_parms *cmd, const char *arg,
                               apr_int64_t min, apr_int64_t max,
                               apr_int64_t *out)
{
    char *end;
    apr_int64_t v;

    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (errno || end == arg || *end || v < min || v > max) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number from "
                            "%" APR_INT64_T_FMT " to %" APR_INT64_T_FMT,
                            cmd->cmd->name, arg, min, max);
    }
    *out = v;
    return NULL;
}

/* A whole-number directive: its bounds and the field it sets. */
typedef struct {
    apr_int64_t min, max;
    apr_size_t offset;           /* of an int in scep_ota_srv_conf_t */
} bounded_int_t;

static const bounded_int_t lifetime_days = {
    SCEP_OTA_MIN_LIFETIME_DAYS, SCEP_OTA_MAX_LIFETIME_DAYS,
    APR_OFFSETOF(scep_ota_srv_conf_t, lifetime_days)
};
static const bounded_int_t max_request = {
    SCEP_OTA_MIN_MAX_REQUEST, SCEP_OTA_MAX_MAX_REQUEST,
    APR_OFFSETOF(scep_ota_srv_conf_t, max_request)
};
static const bounded_int_t max_clock_skew = {
    0, SCEP_OTA_MAX_CLOCK_SKEW, APR_OFFSETOF(scep_ota_srv_conf_t, max_clock_skew)
};
static const bounded_int_t min_key_size = {
    SCEP_OTA_MIN_MIN_KEY_SIZE, SCEP_OTA_MAX_MIN_KEY_SIZE,
    APR_OFFSETOF(scep_ota_srv_conf_t, min_key_size)
};
static const bounded_int_t challenge_lifetime = {
    SCEP_CHALLENGE_LIFETIME_MIN, SCEP_CHALLENGE_LIFETIME_MAX,
    APR_OFFSETOF(scep_ota_srv_conf_t, challenge_lifetime)
};
static const bounded_int_t crl_validity = {
    SCEP_CRL_VALIDITY_MIN, SCEP_CRL_VALIDITY_MAX,
    APR_OFFSETOF(scep_ota_srv_conf_t, crl_validity)
};
static const bounded_int_t challenge_cache = {
    0, SCEP_CHALLENGE_CACHE_MAX,
    APR_OFFSETOF(scep_ota_srv_conf_t, challenge_cache)
};

static const bounded_int_t expiry_warning = {
    0, SCEP_OTA_MAX_EXPIRY_WARNING_DAYS,
    APR_OFFSETOF(scep_ota_srv_conf_t, expiry_warning_days)
};

static const char *set_bounded_int(cmd_parms *cmd, void *dc, const char *arg)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    const bounded_int_t *b = cmd->info;
    const char *err;
    apr_int64_t v;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))
        || (err = parse_range(cmd, arg, b->min, b->max, &v))) {
        return err;
    }
    *(int *)((char *)sc + b->offset) = (int)v;
    return NULL;
}

static const char *set_approval(cmd_parms *cmd, void *dc, const char *arg)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    if (!strcasecmp(arg, "auto")) {
        sc->approval_manual = 0;
    }
    else if (!strcasecmp(arg, "manual")) {
        sc->approval_manual = 1;
    }
    else {
        return "SCEPApproval: expected 'auto' or 'manual'";
    }
    return NULL;
}

static const char *set_legacy(cmd_parms *cmd, void *dc, int flag)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    sc->allow_legacy = flag;
    return NULL;
}

static const char *set_allow_san(cmd_parms *cmd, void *dc, const char *type,
                                 const char *pattern)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    scep_san_rule_t rule;
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    if (APR_SUCCESS != scep_san_rule_make(cmd->pool, type, pattern, &rule,
                                          &err)) {
        return apr_pstrcat(cmd->pool, "SCEPAllowSubjectAltName: ", err, NULL);
    }
    if (!sc->san_rules) {
        sc->san_rules = apr_array_make(cmd->pool, 4, sizeof(rule));
    }
    APR_ARRAY_PUSH(sc->san_rules, scep_san_rule_t) = rule;
    return NULL;
}

/* DAYS before notAfter, or PERCENT% of the validity */
static const char *set_renewal_window(cmd_parms *cmd, void *dc,
                                      const char *arg)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    apr_size_t n = strlen(arg);
    const char *err;
    apr_int64_t v;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    if (n > 1 && arg[n - 1] == '%') {
        err = parse_range(cmd, apr_pstrmemdup(cmd->pool, arg, n - 1), 1, 100,
                          &v);
        sc->renewal_percent = (int)v;
        sc->renewal_days = 0;
    }
    else {
        err = parse_range(cmd, arg, 1, SCEP_OTA_MAX_RENEWAL_DAYS, &v);
        sc->renewal_days = (int)v;
        sc->renewal_percent = 0;
    }
    return err;
}

static const char *set_revoke_previous(cmd_parms *cmd, void *dc, int flag)
{
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    scep_ota_srv_conf(cmd->server)->revoke_previous = flag;
    return NULL;
}

static const char *set_revoke_superseded(cmd_parms *cmd, void *dc, int flag)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    sc->revoke_superseded = flag;
    return NULL;
}

/* Checked now, so a typo stops httpd at its line; the extension itself
 * is built once per CA at startup. */
static const char *set_crl_dp(cmd_parms *cmd, void *dc, const char *url)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    if (APR_SUCCESS != scep_crl_dp_check(cmd->pool, url, &err)) {
        return apr_pstrcat(cmd->pool, "SCEPCRLDistributionPoint: ", err,
                           NULL);
    }
    if (!sc->crl_dps) {
        sc->crl_dps = apr_array_make(cmd->pool, 2, sizeof(const char *));
    }
    APR_ARRAY_PUSH(sc->crl_dps, const char *) = url;
    return NULL;
}

static const char *set_audit_log(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    if (!*arg || !strcmp(arg, "|")) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": a file or "
                           "\"|program\" is needed", NULL);
    }
    scep_ota_srv_conf(cmd->server)->audit_log = arg;
    return NULL;
}

static const char *set_ocsp_url(cmd_parms *cmd, void *dc, const char *url)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    if (APR_SUCCESS != scep_ocsp_url_check(cmd->pool, url, &err)) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
    }
    if (!sc->ocsp_urls) {
        sc->ocsp_urls = apr_array_make(cmd->pool, 1, sizeof(const char *));
    }
    APR_ARRAY_PUSH(sc->ocsp_urls, const char *) = url;
    return NULL;
}

static const char *set_challenge_tls(cmd_parms *cmd, void *dc, int flag)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    sc->challenge_require_tls = flag;
    return NULL;
}

/* sqlite3:/path/file.db (the path resolved against ServerRoot now),
 * pgsql:PARAMS or dbd */
static const char *set_store(cmd_parms *cmd, void *dc, const char *arg)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    const char *driver, *params, *err, *path;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    if (APR_SUCCESS != scep_store_uri_parse(cmd->pool, arg, &driver, &params,
                                            &err)) {
        return apr_pstrcat(cmd->pool, "SCEPStore: ", err, NULL);
    }
    if (strcmp(driver, "sqlite3")) {
        sc->store_uri = apr_pstrdup(cmd->pool, arg);
        return NULL;
    }
    if (!(path = ap_server_root_relative(cmd->pool, params))) {
        return apr_pstrcat(cmd->pool, "SCEPStore: invalid path '", params,
                           "'", NULL);
    }
    sc->store_uri = apr_pstrcat(cmd->pool, "sqlite3:", path, NULL);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* OTA directives                                                      */

typedef enum {
    SCEP_OTA_SIGN_CERT, SCEP_OTA_SIGN_KEY, SCEP_OTA_DEVICE_CA, SCEP_OTA_PROFILE
} scep_ota_file_t;

static const char *set_ota_file(cmd_parms *cmd, void *dc, const char *arg)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    scep_ota_file_t kind = (scep_ota_file_t)(apr_uintptr_t)cmd->info;
    apr_array_header_t *items;
    const char *err, *path;
    apr_status_t rv = APR_SUCCESS;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    path = scep_is_uri(arg) ? arg : ap_server_root_relative(cmd->pool, arg);
    if (!path) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": invalid path '",
                           arg, "'", NULL);
    }
    switch (kind) {
    case SCEP_OTA_SIGN_CERT:   /* loaded with its key at startup; checked now */
        rv = scep_load_certs(cmd->pool, path, &items, &err);
        sc->ota_sign_cert_file = path;
        break;
    case SCEP_OTA_SIGN_KEY:
        rv = scep_load_keys(cmd->pool, path, &items, &err);
        sc->ota_sign_key_file = path;
        break;
    case SCEP_OTA_DEVICE_CA:
        rv = ota_anchors_load(cmd->pool, path, &sc->ota_set.device_cas, &err);
        break;
    case SCEP_OTA_PROFILE:
        rv = ota_profile_load(cmd->pool, path, &sc->ota_set.profile, &err);
        break;
    }
    if (APR_SUCCESS != rv) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
    }
    return NULL;
}

typedef enum {
    SCEP_OTA_URL, SCEP_OTA_SUBJECT, SCEP_OTA_KEY_SIZE, SCEP_OTA_ORG, SCEP_OTA_IDENT, SCEP_OTA_NAME,
    SCEP_OTA_SCEP_NAME, SCEP_OTA_CIPHER, SCEP_OTA_RETRIES, SCEP_OTA_RETRY_DELAY, SCEP_OTA_TTL
} scep_ota_arg_t;

/* A count within [min, max] for the integer OTA settings. */
static const char *set_ota_int(cmd_parms *cmd, const char *arg, int min,
                               int max, int *out)
{
    apr_int64_t v;
    const char *err = parse_range(cmd, arg, min, max, &v);

    if (!err) {
        *out = (int)v;
    }
    return err;
}

static const char *set_ota_arg(cmd_parms *cmd, void *dc, const char *arg)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    ota_settings_t *o = &sc->ota_set;
    const char *err = NULL;
    apr_status_t rv = APR_SUCCESS;
    int secs;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    switch ((scep_ota_arg_t)(apr_uintptr_t)cmd->info) {
    case SCEP_OTA_URL:
        if (APR_SUCCESS == (rv = ota_url_check(cmd->pool, arg, &err))) {
            o->scep_url = arg;
        }
        break;
    case SCEP_OTA_SUBJECT:
        rv = ota_subject_parse(cmd->pool, arg, &o->subject, &err);
        break;
    case SCEP_OTA_KEY_SIZE:
        rv = ota_key_size_parse(cmd->pool, arg, &o->key_size, &err);
        break;
    case SCEP_OTA_CIPHER:
        rv = ota_cipher_parse(cmd->pool, arg, &o->cipher_nid, &err);
        break;
    case SCEP_OTA_ORG:
        o->organization = arg;
        break;
    case SCEP_OTA_IDENT:
        o->identifier = arg;
        break;
    case SCEP_OTA_NAME:
        o->display_name = arg;
        break;
    case SCEP_OTA_SCEP_NAME:
        o->scep_name = arg;
        break;
    case SCEP_OTA_RETRIES:
        return set_ota_int(cmd, arg, 1, 100, &o->retries);
    case SCEP_OTA_RETRY_DELAY:
        return set_ota_int(cmd, arg, 1, 3600, &o->retry_delay);
    case SCEP_OTA_TTL:
        if (!(err = set_ota_int(cmd, arg, 60, 30 * 86400, &secs))) {
            o->challenge_ttl = apr_time_from_sec(secs);
        }
        return err;
    }
    if (APR_SUCCESS != rv) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
    }
    return NULL;
}

static const char *set_ota_attribute(cmd_parms *cmd, void *dc,
                                     const char *word)
{
    scep_ota_srv_conf_t *sc = scep_ota_srv_conf(cmd->server);
    const char *err;

    (void)dc;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE))) {
        return err;
    }
    if (APR_SUCCESS != ota_attribute_check(cmd->pool, word, &err)) {
        return apr_pstrcat(cmd->pool, "OTADeviceAttributes: ", err, NULL);
    }
    /* the words of one line make the list; a later line replaces it */
    if (!sc->ota_set.attributes || sc->ota_attr_line != cmd->directive) {
        sc->ota_set.attributes = apr_array_make(cmd->pool, 8,
                                                sizeof(const char *));
        sc->ota_attr_line = cmd->directive;
    }
    APR_ARRAY_PUSH(sc->ota_set.attributes, const char *) = word;
    return NULL;
}

#define SCEP_OTA_FILE(name, kind, help) \
    AP_INIT_TAKE1(name, set_ota_file, (void *)kind, RSRC_CONF, help)
#define SCEP_OTA_ARG(name, kind, help) \
    AP_INIT_TAKE1(name, set_ota_arg, (void *)kind, RSRC_CONF, help)

const command_rec scep_ota_cmds[] = {
    AP_INIT_TAKE1("SCEPCACertificateFile", set_pki_file,
                  (void *)FILE_CA_CERT, RSRC_CONF,
                  "the issuing CA certificate (PEM or DER); further "
                  "certificates in the file are its chain, issuer after "
                  "issuer"),
    AP_INIT_TAKE1("SCEPCAKeyFile", set_pki_file, (void *)FILE_CA_KEY,
                  RSRC_CONF, "the CA private key (unencrypted PEM or DER, "
                  "or an OpenSSL store URI)"),
    AP_INIT_TAKE1("SCEPRACertificateFile", set_pki_file,
                  (void *)FILE_RA_CERT, RSRC_CONF,
                  "RA certificate(s) that sign replies and decrypt requests "
                  "instead of the CA: one with digitalSignature and "
                  "keyEncipherment, or a sign-only and an encrypt-only one; "
                  "none: no RA, whatever is inherited"),
    AP_INIT_TAKE1("SCEPRAKeyFile", set_pki_file, (void *)FILE_RA_KEY,
                  RSRC_CONF, "the RA private key(s); none: no RA"),
    AP_INIT_ITERATE("SCEPCACaps", set_caps, NULL, RSRC_CONF,
                    "the CA capabilities, answered to GetCACaps and written "
                    "into the OTA SCEP payload: " SCEP_CAPS_DEFAULT
                    " (default), GetNextCACert"),
    AP_INIT_TAKE1("SCEPNextCACertificateFile", set_pki_file,
                  (void *)FILE_NEXT_CA, RSRC_CONF,
                  "the next CA certificate(s), served by GetNextCACert "
                  "during a CA rollover"),
    AP_INIT_TAKE1("SCEPChallengePassword", set_challenge, NULL, RSRC_CONF,
                  "a static challenge password every PKCSReq must carry "
                  "(one-time challenges from the store are accepted too); "
                  "none: no static password, whatever is inherited"),
    AP_INIT_TAKE2("SCEPAllowSubjectAltName", set_allow_san, NULL, RSRC_CONF,
                  "dns|email|uri|ip PATTERN: a subjectAltName a request may "
                  "ask for (a shell glob, or an address/prefix for ip); "
                  "repeatable; default: none"),
    AP_INIT_TAKE1("SCEPRenewalWindow", set_renewal_window, NULL, RSRC_CONF,
                  "DAYS or PERCENT%: a certificate is renewed in that last "
                  "part of its validity only (default "
                  APR_STRINGIFY(SCEP_DEFAULT_RENEWAL_PERCENT) "%)"),
    AP_INIT_FLAG("SCEPRevokeSuperseded", set_revoke_superseded, NULL,
                 RSRC_CONF, "revoke a certificate when it is renewed "
                 "(reason superseded; default off)"),
    AP_INIT_TAKE1("SCEPMaxClockSkew", set_bounded_int,
                  (void *)&max_clock_skew, RSRC_CONF,
                  "seconds a PKIOperation's signingTime may be off the "
                  "server's clock (FAILURE badTime); 0 (default): not "
                  "checked"),
    AP_INIT_TAKE1("SCEPChallengeLifetime", set_bounded_int,
                  (void *)&challenge_lifetime, RSRC_CONF,
                  "seconds a one-time challenge from the scep-challenge page "
                  "or 'scep-ota store challenge' stays valid (default "
                  APR_STRINGIFY(SCEP_CHALLENGE_LIFETIME_DEFAULT) ")"),
    AP_INIT_TAKE1("SCEPChallengeCacheSize", set_bounded_int,
                  (void *)&challenge_cache, RSRC_CONF,
                  "unused challenges one user of the scep-challenge page "
                  "may hold (default "
                  APR_STRINGIFY(SCEP_CHALLENGE_CACHE_DEFAULT)
                  "; 0: no limit)"),
    AP_INIT_FLAG("SCEPChallengeRequireTLS", set_challenge_tls, NULL,
                 RSRC_CONF, "on (default): over plain HTTP the "
                 "scep-challenge page answers loopback clients only"),
    AP_INIT_TAKE1("SCEPCRLDistributionPoint", set_crl_dp, NULL, RSRC_CONF,
                  "an http, https or ldap URL of the CA's CRL, written into "
                  "the cRLDistributionPoints of issued certificates; "
                  "repeatable (places of the same CRL)"),
    AP_INIT_TAKE1("SCEPAuditLog", set_audit_log, NULL, RSRC_CONF,
                  "a file (relative to ServerRoot) or \"|program\" that gets "
                  "one JSON line per decision: issued, renewed, pending, "
                  "refused, revoked, approved, rejected, challenges, OTA"),
    AP_INIT_TAKE1("SCEPOCSPURL", set_ocsp_url, NULL, RSRC_CONF,
                  "the http URL of the CA's OCSP responder, written into "
                  "the authorityInfoAccess of issued certificates; "
                  "repeatable"),
    AP_INIT_TAKE1("SCEPOCSPSigningCertificateFile", set_pki_file,
                  (void *)FILE_OCSP_CERT, RSRC_CONF,
                  "a delegated OCSP signer issued by the CA (extendedKeyUsage "
                  "OCSPSigning); default: the CA signs OCSP responses"),
    AP_INIT_TAKE1("SCEPOCSPSigningKeyFile", set_pki_file,
                  (void *)FILE_OCSP_KEY, RSRC_CONF,
                  "the key of SCEPOCSPSigningCertificateFile"),
    AP_INIT_TAKE1("SCEPCRLValidity", set_bounded_int,
                  (void *)&crl_validity, RSRC_CONF,
                  "days from a CRL's thisUpdate to its nextUpdate (default "
                  APR_STRINGIFY(SCEP_CRL_VALIDITY_DEFAULT) "); a new one is "
                  "published after half of them"),
    AP_INIT_TAKE1("SCEPCertificateLifetime", set_bounded_int,
                  (void *)&lifetime_days, RSRC_CONF,
                  "days an issued certificate is valid (default "
                  APR_STRINGIFY(SCEP_DEFAULT_LIFETIME_DAYS) ")"),
    AP_INIT_TAKE1("SCEPExpiryWarning", set_bounded_int,
                  (void *)&expiry_warning, RSRC_CONF,
                  "days before the CA, an RA, the next CA or the OTA "
                  "signing certificate expires that the error log warns "
                  "about it, at start and daily (default "
                  APR_STRINGIFY(SCEP_OTA_DEFAULT_EXPIRY_WARNING_DAYS) "; 0: off)"),
    AP_INIT_TAKE1("SCEPApproval", set_approval, NULL, RSRC_CONF,
                  "auto (default) or manual: PENDING until an admin runs "
                  "'scep-ota store approve'"),
    AP_INIT_FLAG("SCEPAllowLegacyAlgorithms", set_legacy, NULL, RSRC_CONF,
                 "accept single DES and MD5 from old clients (default off)"),
    AP_INIT_TAKE1("SCEPMaxRequestSize", set_bounded_int,
                  (void *)&max_request, RSRC_CONF,
                  "largest PKIOperation accepted, in bytes (default "
                  APR_STRINGIFY(SCEP_OTA_DEFAULT_MAX_REQUEST) ")"),
    AP_INIT_TAKE1("SCEPMinKeySize", set_bounded_int,
                  (void *)&min_key_size, RSRC_CONF,
                  "smallest RSA key certified, in bits (default "
                  APR_STRINGIFY(SCEP_DEFAULT_MIN_KEY_SIZE) ")"),
    AP_INIT_FLAG("OTARevokePrevious", set_revoke_previous, NULL, RSRC_CONF,
                 "when a device (UDID) enrolls again through OTA, revoke its "
                 "older certificates (reason superseded; default off)"),
    SCEP_OTA_FILE("OTASigningCertificateFile", SCEP_OTA_SIGN_CERT,
             "the certificate that signs every profile served (further "
             "certificates in the file are sent as its chain)"),
    SCEP_OTA_FILE("OTASigningKeyFile", SCEP_OTA_SIGN_KEY,
             "the key of OTASigningCertificateFile"),
    SCEP_OTA_FILE("OTADeviceCACertificateFile", SCEP_OTA_DEVICE_CA,
             "trust anchors for the device signatures of Phase 2 (Apple's "
             "iPhone Device CA)"),
    SCEP_OTA_FILE("OTAProfile", SCEP_OTA_PROFILE,
             "the Configuration profile delivered, encrypted, in Phase 3"),
    SCEP_OTA_ARG("OTASCEPURL", SCEP_OTA_URL,
            "the SCEP URL written into the Phase 2 SCEP payload"),
    SCEP_OTA_ARG("OTASubject", SCEP_OTA_SUBJECT,
            "subject of the device certificate, e.g. /O=Example/CN=%{UDID}"),
    SCEP_OTA_ARG("OTAKeySize", SCEP_OTA_KEY_SIZE,
            "the key size the device generates: 1024, 2048 (default) or "
            "4096"),
    SCEP_OTA_ARG("OTAOrganization", SCEP_OTA_ORG,
            "PayloadOrganization of the profiles served"),
    SCEP_OTA_ARG("OTAProfileIdentifier", SCEP_OTA_IDENT,
            "PayloadIdentifier prefix of the profiles served"),
    SCEP_OTA_ARG("OTAProfileDisplayName", SCEP_OTA_NAME,
            "PayloadDisplayName of the profiles served"),
    SCEP_OTA_ARG("OTASCEPPayloadName", SCEP_OTA_SCEP_NAME,
            "the Name of the SCEP payload (sent by devices as GetCACert's "
            "message)"),
    SCEP_OTA_ARG("OTAPayloadCipher", SCEP_OTA_CIPHER,
            "cipher of the Phase 3 EncryptedPayloadContent: 3DES (default), "
            "AES-128 or AES-256"),
    SCEP_OTA_ARG("OTASCEPRetries", SCEP_OTA_RETRIES,
            "Retries in the SCEP payload (polls while PENDING; default "
            APR_STRINGIFY(OTA_DEFAULT_RETRIES) ")"),
    SCEP_OTA_ARG("OTASCEPRetryDelay", SCEP_OTA_RETRY_DELAY,
            "RetryDelay in the SCEP payload, seconds (default "
            APR_STRINGIFY(OTA_DEFAULT_RETRY_DELAY) ")"),
    SCEP_OTA_ARG("OTAChallengeLifetime", SCEP_OTA_TTL,
            "seconds a Phase 1 or SCEP one-time challenge stays valid "
            "(default 3600)"),
    AP_INIT_ITERATE("OTADeviceAttributes", set_ota_attribute, NULL, RSRC_CONF,
                    "the attributes the device is asked for (default "
                    OTA_DEFAULT_ATTRIBUTES ")"),
    AP_INIT_TAKE1("SCEPStore", set_store, NULL, RSRC_CONF,
                  "where issued certificates, challenges and pending "
                  "requests are kept: sqlite3:/path/file.db (default: "
                  SCEP_STORE_DEFAULT_SQLITE " under ServerRoot), "
                  "pgsql:PARAMS, or dbd (mod_dbd's connection pool)"),
    { NULL }
};

int scep_ota_approval_manual(const scep_ota_srv_conf_t *sc)
{
    return sc->approval_manual == 1;
}

int scep_ota_allow_legacy(const scep_ota_srv_conf_t *sc)
{
    return sc->allow_legacy == 1;
}

apr_off_t scep_ota_max_request(const scep_ota_srv_conf_t *sc)
{
    return sc->max_request != SCEP_OTA_UNSET ? (apr_off_t)sc->max_request
                                         : SCEP_OTA_DEFAULT_MAX_REQUEST;
}

int scep_ota_revoke_previous(const scep_ota_srv_conf_t *sc)
{
    return sc->revoke_previous == 1;
}

int scep_ota_revoke_superseded(const scep_ota_srv_conf_t *sc)
{
    return sc->revoke_superseded == 1;
}

apr_interval_time_t scep_ota_challenge_lifetime(const scep_ota_srv_conf_t *sc)
{
    return apr_time_from_sec(sc->challenge_lifetime != SCEP_OTA_UNSET
                             ? sc->challenge_lifetime
                             : SCEP_CHALLENGE_LIFETIME_DEFAULT);
}

int scep_ota_challenge_cache(const scep_ota_srv_conf_t *sc)
{
    return sc->challenge_cache != SCEP_OTA_UNSET ? sc->challenge_cache
                                             : SCEP_CHALLENGE_CACHE_DEFAULT;
}

int scep_ota_challenge_require_tls(const scep_ota_srv_conf_t *sc)
{
    return sc->challenge_require_tls != 0;
}

int scep_ota_expiry_warning_days(const scep_ota_srv_conf_t *sc)
{
    return sc->expiry_warning_days != SCEP_OTA_UNSET
           ? sc->expiry_warning_days : SCEP_OTA_DEFAULT_EXPIRY_WARNING_DAYS;
}
