/* OTA configuration: the directives' loaders and ota_create(). */

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_file_io.h>
#include <apr_file_info.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "scep_ota/scep_crypt.h"
#include "ota_private.h"

#define PROFILE_MAX_LEN (1024 * 1024)
#define ATTRIBUTE_MAX_LEN 32

/* ------------------------------------------------------------------ */
/* signing identity and anchors                                        */

/* The key of keys (EVP_PKEY *) that belongs to cert, or NULL. */
static EVP_PKEY *matching_key(const apr_array_header_t *keys, X509 *cert)
{
    int i;

    for (i = 0; i < keys->nelts; ++i) {
        if (scep_key_matches_cert(APR_ARRAY_IDX(keys, i, EVP_PKEY *), cert)) {
            return APR_ARRAY_IDX(keys, i, EVP_PKEY *);
        }
    }
    return NULL;
}

/* The certificates after the first: the chain sent along. */
static apr_array_header_t *chain_after_first(apr_pool_t *p,
                                             const apr_array_header_t *certs)
{
    apr_array_header_t *chain = apr_array_make(p, certs->nelts,
                                               sizeof(X509 *));
    int i;

    for (i = 1; i < certs->nelts; ++i) {
        APR_ARRAY_PUSH(chain, X509 *) = APR_ARRAY_IDX(certs, i, X509 *);
    }
    return chain;
}

apr_status_t ota_identity_load(apr_pool_t *p, const char *cert_file,
                               const char *key_file, ota_identity_t **pid,
                               const char **err)
{
    apr_array_header_t *certs, *keys;
    ota_identity_t *id;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = scep_load_certs(p, cert_file, &certs, err))) {
        *err = apr_pstrcat(p, "OTASigningCertificateFile: ", *err, NULL);
        return rv;
    }
    if (APR_SUCCESS != (rv = scep_load_keys(p, key_file, &keys, err))) {
        *err = apr_pstrcat(p, "OTASigningKeyFile: ", *err, NULL);
        return rv;
    }
    id = apr_pcalloc(p, sizeof(*id));
    id->cert = APR_ARRAY_IDX(certs, 0, X509 *);
    if (!(id->key = matching_key(keys, id->cert))) {
        *err = apr_psprintf(p, "OTASigningKeyFile: the key in '%s' does not "
                            "match the certificate '%s' of '%s'", key_file,
                            scep_cert_subject(p, id->cert), cert_file);
        return APR_EINVAL;
    }
    id->chain = chain_after_first(p, certs);
    *pid = id;
    return APR_SUCCESS;
}

apr_status_t ota_anchors_load(apr_pool_t *p, const char *file,
                              apr_array_header_t **anchors, const char **err)
{
    apr_status_t rv = scep_load_certs(p, file, anchors, err);

    if (APR_SUCCESS != rv) {
        *err = apr_pstrcat(p, "OTADeviceCACertificateFile: ", *err, NULL);
    }
    return rv;
}

/* ------------------------------------------------------------------ */
/* OTAProfile                                                          */

static const char *cannot_read(apr_pool_t *p, const char *file,
                               apr_status_t rv)
{
    char buf[120];

    return apr_psprintf(p, "OTAProfile: cannot read '%s': %s", file,
                        apr_strerror(rv, buf, sizeof(buf)));
}

static apr_status_t read_file(apr_pool_t *p, const char *file, char **data,
                              apr_size_t *len, const char **err)
{
    apr_finfo_t fi;
    apr_file_t *f;
    apr_status_t rv;

    rv = apr_stat(&fi, file, APR_FINFO_SIZE | APR_FINFO_TYPE, p);
    if (APR_SUCCESS == rv && (fi.filetype != APR_REG
                              || fi.size > PROFILE_MAX_LEN)) {
        *err = apr_psprintf(p, "OTAProfile: '%s' is not a regular file of "
                            "at most 1 MiB", file);
        return APR_EINVAL;
    }
    if (APR_SUCCESS == rv) {
        rv = apr_file_open(&f, file, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p);
    }
    if (APR_SUCCESS != rv) {
        *err = cannot_read(p, file, rv);
        return rv;
    }
    *len = (apr_size_t)fi.size;
    *data = apr_palloc(p, *len + 1);
    rv = apr_file_read_full(f, *data, *len, len);
    apr_file_close(f);
    if (APR_SUCCESS != rv) {
        *err = cannot_read(p, file, rv);
    }
    return rv;
}

apr_status_t ota_profile_load(apr_pool_t *p, const char *file,
                              ota_profile_t **pprof, const char **err)
{
    char *data;
    apr_size_t len;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = read_file(p, file, &data, &len, err))) {
        return rv;
    }
    return ota_profile_parse(p, file, data, len, pprof, err);
}

/* Every element of PayloadContent is a payload dictionary with a type. */
static const char *check_payloads(apr_pool_t *p, plist_t content)
{
    apr_size_t i, n = ota_plist_count(content);
    plist_t item;

    for (i = 0; i < n; ++i) {
        item = ota_plist_item(content, i);
        if (!ota_plist_is(item, PLIST_DICT)) {
            return apr_psprintf(p, "PayloadContent item %" APR_SIZE_T_FMT
                                " is not a dictionary", i + 1);
        }
        if (!ota_plist_str(p, item, "PayloadType")) {
            return apr_psprintf(p, "PayloadContent item %" APR_SIZE_T_FMT
                                " has no PayloadType", i + 1);
        }
    }
    return NULL;
}

static const char *check_profile(apr_pool_t *p, plist_t dict)
{
    const char *type = ota_plist_str(p, dict, "PayloadType");
    const char *id = ota_plist_str(p, dict, "PayloadIdentifier");
    const char *uuid = ota_plist_str(p, dict, "PayloadUUID");
    plist_t content = ota_plist_get(dict, "PayloadContent", PLIST_ARRAY);
    apr_uint64_t version;

    if (!ota_plist_is(dict, PLIST_DICT)) {
        return "it is not a dictionary";
    }
    if (!type || strcmp(type, "Configuration")) {
        return "PayloadType is not \"Configuration\"";
    }
    if (!content) {
        return ota_plist_get(dict, "EncryptedPayloadContent", PLIST_DATA)
               ? "it is already encrypted (give the profile with its "
                 "PayloadContent array; the server encrypts it per device)"
               : "it has no PayloadContent array";
    }
    if (!id || !*id || !uuid || !*uuid) {
        return "PayloadIdentifier or PayloadUUID is missing";
    }
    if (APR_SUCCESS != ota_plist_uint(dict, "PayloadVersion", &version)) {
        return "PayloadVersion (an integer) is missing";
    }
    return check_payloads(p, content);
}

/* Serializes the content array and the profile without it, once. */
static apr_status_t split_profile(apr_pool_t *p, ota_profile_t *prof,
                                  plist_t dict)
{
    plist_t content = ota_plist_get(dict, "PayloadContent", PLIST_ARRAY);
    plist_t shell;
    apr_status_t rv;

    prof->count = (int)ota_plist_count(content);
    rv = ota_plist_xml(p, content, &prof->content_xml, &prof->content_len);
    if (APR_SUCCESS != rv) {
        return rv;
    }
    shell = ota_plist_copy_without(p, dict, "PayloadContent");
    return ota_plist_xml(p, shell, &prof->shell_xml, &prof->shell_len);
}

apr_status_t ota_profile_parse(apr_pool_t *p, const char *name,
                               const void *data, apr_size_t len,
                               ota_profile_t **pprof, const char **err)
{
    ota_profile_t *prof = apr_pcalloc(p, sizeof(*prof));
    plist_t dict;
    const char *why;

    if (APR_SUCCESS != ota_plist_parse(p, data, len, PROFILE_MAX_LEN,
                                       &dict)) {
        *err = apr_psprintf(p, "OTAProfile: '%s' is not a property list "
                            "(XML or binary)", name);
        return APR_EINVAL;
    }
    if ((why = check_profile(p, dict)) != NULL) {
        *err = apr_psprintf(p, "OTAProfile: '%s' is not a Configuration "
                            "profile: %s", name, why);
        return APR_EINVAL;
    }
    prof->name = apr_pstrdup(p, name);
    prof->identifier = ota_plist_str(p, dict, "PayloadIdentifier");
    if (APR_SUCCESS != split_profile(p, prof, dict)) {
        *err = apr_psprintf(p, "OTAProfile: cannot serialize '%s'", name);
        return APR_EGENERAL;
    }
    *pprof = prof;
    return APR_SUCCESS;
}

int ota_profile_payload_count(const ota_profile_t *prof)
{
    return prof->count;
}

/* ------------------------------------------------------------------ */
/* small directives                                                    */

apr_status_t ota_attribute_check(apr_pool_t *p, const char *word,
                                 const char **err)
{
    const char *c;

    for (c = word; *c; ++c) {
        if (!apr_isupper(*c) && !apr_isdigit(*c) && *c != '_') {
            break;
        }
    }
    if (!*word || *c || strlen(word) > ATTRIBUTE_MAX_LEN) {
        *err = apr_psprintf(p, "OTADeviceAttributes: '%s' is not an "
                            "attribute name (upper case, e.g. UDID VERSION "
                            "PRODUCT SERIAL IMEI MEID DEVICE_NAME)", word);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_status_t ota_key_size_parse(apr_pool_t *p, const char *arg, int *bits,
                                const char **err)
{
    if (strcmp(arg, "1024") && strcmp(arg, "2048") && strcmp(arg, "4096")) {
        *err = apr_psprintf(p, "OTAKeySize: '%s' is not 1024, 2048 or 4096 "
                            "(the only sizes iOS accepts)", arg);
        return APR_EINVAL;
    }
    *bits = atoi(arg);
    return APR_SUCCESS;
}

apr_status_t ota_cipher_parse(apr_pool_t *p, const char *arg, int *nid,
                              const char **err)
{
    if (!strcasecmp(arg, "3DES") || !strcasecmp(arg, "DES3")
        || !strcasecmp(arg, "DES-EDE3-CBC")) {
        *nid = NID_des_ede3_cbc;
    }
    else if (!strcasecmp(arg, "AES-128") || !strcasecmp(arg, "AES128")
             || !strcasecmp(arg, "AES-128-CBC")) {
        *nid = NID_aes_128_cbc;
    }
    else if (!strcasecmp(arg, "AES-256") || !strcasecmp(arg, "AES256")
             || !strcasecmp(arg, "AES-256-CBC")) {
        *nid = NID_aes_256_cbc;
    }
    else {
        *err = apr_psprintf(p, "'%s' is not a profile cipher: use 3DES "
                            "(what iOS is known to decrypt), AES-128 or "
                            "AES-256", arg);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_status_t ota_url_check(apr_pool_t *p, const char *url, const char **err)
{
    if (strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8)) {
        *err = apr_psprintf(p, "OTASCEPURL: '%s' is not an absolute http:// "
                            "or https:// URL", url);
        return APR_EINVAL;
    }
    if (strchr(url, '?') || strchr(url, '#')) {
        *err = apr_psprintf(p, "OTASCEPURL: '%s' must not have a query or "
                            "fragment; the device appends ?operation=...",
                            url);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* ota_create                                                          */

static apr_array_header_t *default_attributes(apr_pool_t *p)
{
    apr_array_header_t *a = apr_array_make(p, 6, sizeof(const char *));
    char *list = apr_pstrdup(p, OTA_DEFAULT_ATTRIBUTES), *last, *w;

    for (w = apr_strtok(list, " ", &last); w; w = apr_strtok(NULL, " ", &last)) {
        APR_ARRAY_PUSH(a, const char *) = w;
    }
    return a;
}

static int has_attribute(const apr_array_header_t *a, const char *name)
{
    int i;

    for (i = 0; i < a->nelts; ++i) {
        if (!strcmp(APR_ARRAY_IDX(a, i, const char *), name)) {
            return 1;
        }
    }
    return 0;
}

/* A variable of OTASubject whose attribute the device is not asked for
 * would always be empty. */
static const char *check_subject_vars(apr_pool_t *p, const ota_settings_t *s)
{
    const char *t = s->subject->tmpl, *v, *end;

    while ((v = strstr(t, "%{")) != NULL && (end = strchr(v, '}')) != NULL) {
        const char *name = apr_pstrmemdup(p, v + 2, (apr_size_t)(end - v - 2));
        if (!has_attribute(s->attributes, name)) {
            return apr_psprintf(p, "OTASubject uses %%{%s} but %s is not in "
                                "OTADeviceAttributes", name, name);
        }
        t = end + 1;
    }
    return NULL;
}

static const char *missing_setting(const ota_settings_t *s,
                                   const scep_ca_t *ca,
                                   const scep_caps_t *caps)
{
    if (!s->signer) {
        return "OTA needs OTASigningCertificateFile and OTASigningKeyFile";
    }
    if (!s->device_cas) {
        return "OTA needs OTADeviceCACertificateFile (the device CA that "
               "signs Phase 2 requests)";
    }
    if (!s->scep_url) {
        return "OTA needs OTASCEPURL (the SCEP URL for the Phase 2 payload)";
    }
    if (!s->profile) {
        return "OTA needs OTAProfile (the profile delivered in Phase 3)";
    }
    if (!ca || !caps) {
        return "OTA needs the SCEP CA (SCEPCACertificateFile, SCEPCAKeyFile)";
    }
    return NULL;
}

static void apply_defaults(apr_pool_t *p, ota_settings_t *s)
{
    const char *err;

    if (!s->attributes) {
        s->attributes = default_attributes(p);
    }
    if (!s->subject) {
        ota_subject_parse(p, OTA_DEFAULT_SUBJECT, &s->subject, &err);
    }
    s->key_size = s->key_size ? s->key_size : OTA_DEFAULT_KEY_SIZE;
    s->identifier = s->identifier ? s->identifier : OTA_DEFAULT_IDENTIFIER;
    s->display_name = s->display_name ? s->display_name
                                      : OTA_DEFAULT_DISPLAY_NAME;
    s->scep_name = s->scep_name ? s->scep_name : OTA_DEFAULT_SCEP_NAME;
    s->cipher_nid = s->cipher_nid ? s->cipher_nid : NID_des_ede3_cbc;
    s->retries = s->retries > 0 ? s->retries : OTA_DEFAULT_RETRIES;
    s->retry_delay = s->retry_delay > 0 ? s->retry_delay
                                         : OTA_DEFAULT_RETRY_DELAY;
    s->challenge_ttl = s->challenge_ttl > 0 ? s->challenge_ttl
                                            : OTA_DEFAULT_CHALLENGE_TTL;
}

static const char *make_filename(apr_pool_t *p, const char *identifier)
{
    char *name = apr_pstrcat(p, identifier, ".mobileconfig", NULL), *c;

    for (c = name; *c; ++c) {
        if (!apr_isalnum(*c) && *c != '.' && *c != '-' && *c != '_') {
            *c = '_';
        }
    }
    return name;
}

/* What every request needs: the trust stores, the CA fingerprint, the
 * file name. */
static apr_status_t precompute(ota_t *ota, apr_pool_t *p, const char **err)
{
    unsigned int n = 0;

    ota->device_store = scep_x509_store(p, ota->s.device_cas);
    ota->ca_store = scep_x509_store(p, ota->ca->chain);
    if (!ota->device_store || !ota->ca_store
        || !X509_digest(ota->ca->top_cert, EVP_sha1(), ota->ca_fingerprint,
                        &n) || n != 20) {
        ERR_clear_error();
        *err = "OTA: out of memory or no SHA-1 for the CA fingerprint";
        return APR_EGENERAL;
    }
    ota->filename = make_filename(p, ota->s.identifier);
    return APR_SUCCESS;
}

apr_status_t ota_create(ota_t **pota, apr_pool_t *p, const ota_settings_t *s,
                        const scep_ca_t *ca, const scep_caps_t *caps,
                        const char **err)
{
    ota_t *ota = apr_pcalloc(p, sizeof(*ota));

    if ((*err = missing_setting(s, ca, caps)) != NULL) {
        return APR_EINVAL;
    }
    if (APR_SUCCESS != ota_url_check(p, s->scep_url, err)) {
        return APR_EINVAL;
    }
    ota->pool = p;
    ota->s = *s;
    apply_defaults(p, &ota->s);
    if ((*err = check_subject_vars(p, &ota->s)) != NULL) {
        return APR_EINVAL;
    }
    ota->ca = ca;
    ota->caps = caps;
    if (APR_SUCCESS != precompute(ota, p, err)) {
        return APR_EGENERAL;
    }
    *pota = ota;
    return APR_SUCCESS;
}

const char *ota_filename(const ota_t *ota)
{
    return ota->filename;
}
