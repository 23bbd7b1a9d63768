/* Assembling the CA and RA identities and the GetCACert answer. */

#include <apr_strings.h>
#include <apr_uri.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "scep_ota/scep_ca.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"

#define KU_BOTH (SCEP_KU_DIGITAL_SIGNATURE | SCEP_KU_KEY_ENCIPHERMENT)

/* Why certificate i of the CA file is out of place, or NULL: each is a
 * CA, and each after the first issued the one before it. */
static const char *chain_link_problem(apr_pool_t *p,
                                      const apr_array_header_t *c, int i)
{
    X509 *x = APR_ARRAY_IDX(c, i, X509 *);

    if (!scep_cert_is_ca(x)) {
        return apr_psprintf(p, "SCEPCACertificateFile: '%s' is not a CA "
                            "certificate (it needs basicConstraints "
                            "CA:TRUE and, with keyUsage, keyCertSign)",
                            scep_cert_subject(p, x));
    }
    if (i > 0 && !scep_cert_issued_by(APR_ARRAY_IDX(c, i - 1, X509 *), x)) {
        return apr_psprintf(p, "SCEPCACertificateFile: certificate %d "
                            "('%s') did not issue certificate %d ('%s'); "
                            "put the issuing CA first, then its issuers "
                            "in order", i + 1, scep_cert_subject(p, x), i,
                            scep_cert_subject(p, APR_ARRAY_IDX(c, i - 1,
                                                               X509 *)));
    }
    return NULL;
}

/* The certificates after the first must be its issuers, in order. */
static apr_status_t check_ca_chain(apr_pool_t *p, const scep_ca_material_t *m,
                                   const char **err)
{
    int i;

    for (i = 0; i < m->ca_certs->nelts; ++i) {
        if ((*err = chain_link_problem(p, m->ca_certs, i))) {
            return APR_EINVAL;
        }
    }
    return APR_SUCCESS;
}

static EVP_PKEY *find_key(apr_array_header_t *keys, X509 *cert)
{
    int i;

    for (i = 0; keys && i < keys->nelts; ++i) {
        if (scep_key_matches_cert(APR_ARRAY_IDX(keys, i, EVP_PKEY *), cert)) {
            return APR_ARRAY_IDX(keys, i, EVP_PKEY *);
        }
    }
    return NULL;
}

static apr_status_t assemble_ca(scep_ca_t *ca, apr_pool_t *p,
                                const scep_ca_material_t *m, const char **err)
{
    apr_status_t rv;

    if (APR_SUCCESS != (rv = check_ca_chain(p, m, err))) {
        return rv;
    }
    ca->cert = APR_ARRAY_IDX(m->ca_certs, 0, X509 *);
    ca->chain = m->ca_certs;
    if (!(ca->key = find_key(m->ca_keys, ca->cert))) {
        *err = apr_psprintf(p, "SCEPCAKeyFile: the key in '%s' does not "
                            "match the CA certificate '%s' of '%s'",
                            m->ca_key_file, scep_cert_subject(p, ca->cert),
                            m->ca_cert_file);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

/* One RA certificate that signs and decrypts, or a sign-only and an
 * encrypt-only pair, each issued by the CA and with its key at hand. */
/* Why x cannot be one of the RA certificates beside the *sign and *enc
 * found so far, or NULL (and x takes its roles). */
static const char *ra_role(apr_pool_t *p, const scep_ca_t *ca, X509 *x,
                           X509 **sign, X509 **enc)
{
    unsigned int ku = scep_cert_key_usage(x) & KU_BOTH;
    const char *who = scep_cert_subject(p, x);

    if (!scep_cert_issued_by(x, ca->cert)) {
        return apr_psprintf(p, "SCEPRACertificateFile: RA certificate '%s' "
                            "was not issued by the CA '%s'", who,
                            scep_cert_subject(p, ca->cert));
    }
    if (ku == 0) {
        return apr_psprintf(p, "SCEPRACertificateFile: RA certificate '%s' "
                            "has no keyUsage digitalSignature or "
                            "keyEncipherment; an RA needs both in one "
                            "certificate, or a sign-only and an "
                            "encrypt-only certificate", who);
    }
    if (((ku & SCEP_KU_DIGITAL_SIGNATURE) && *sign)
        || ((ku & SCEP_KU_KEY_ENCIPHERMENT) && *enc)) {
        return apr_psprintf(p, "SCEPRACertificateFile: more than one RA "
                            "certificate with keyUsage %s ('%s')",
                            (ku & SCEP_KU_DIGITAL_SIGNATURE) && *sign
                            ? "digitalSignature" : "keyEncipherment", who);
    }
    if (ku & SCEP_KU_DIGITAL_SIGNATURE) {
        *sign = x;
    }
    if (ku & SCEP_KU_KEY_ENCIPHERMENT) {
        *enc = x;
    }
    return NULL;
}

/* Gives each RA certificate its roles; why one cannot have them, or NULL. */
static const char *ra_roles(apr_pool_t *p, const scep_ca_t *ca,
                            const scep_ca_material_t *m, X509 **sign,
                            X509 **enc)
{
    const char *why = NULL;
    int i;

    for (i = 0; !why && i < m->ra_certs->nelts; ++i) {
        why = ra_role(p, ca, APR_ARRAY_IDX(m->ra_certs, i, X509 *), sign, enc);
    }
    return why;
}

/* Finds the keys of the RA certificates that sign and decrypt; the
 * certificate whose key is not among keys, or NULL. */
static X509 *find_ra_keys(scep_ca_t *ca, apr_array_header_t *keys)
{
    if (!(ca->sign_key = find_key(keys, ca->sign_cert))) {
        return ca->sign_cert;
    }
    if (!(ca->decrypt_key = find_key(keys, ca->decrypt_cert))) {
        return ca->decrypt_cert;
    }
    return NULL;
}

static apr_status_t assemble_ra(scep_ca_t *ca, apr_pool_t *p,
                                const scep_ca_material_t *m, const char **err)
{
    X509 *sign = NULL, *enc = NULL, *keyless;

    if ((*err = ra_roles(p, ca, m, &sign, &enc))) {
        return APR_EINVAL;
    }
    if (!sign || !enc) {
        *err = apr_psprintf(p, "SCEPRACertificateFile: '%s' has no RA "
                            "certificate with keyUsage %s; an RA needs "
                            "digitalSignature and keyEncipherment in one "
                            "certificate, or a sign-only and an encrypt-only "
                            "certificate", m->ra_cert_file,
                            sign ? "keyEncipherment" : "digitalSignature");
        return APR_EINVAL;
    }
    ca->sign_cert = sign;
    ca->decrypt_cert = enc;
    if ((keyless = find_ra_keys(ca, m->ra_keys))) {
        *err = apr_psprintf(p, "SCEPRAKeyFile: no key in '%s' matches the RA "
                            "certificate '%s'", m->ra_key_file,
                            scep_cert_subject(p, keyless));
        return APR_EINVAL;
    }
    ca->has_ra = 1;
    return APR_SUCCESS;
}

/* GetCACert: the bare CA certificate, or with an RA a certs-only bundle of
 * the RA certificates (encryption first, then signing), the CA and its
 * issuers. */
static apr_status_t build_getcacert(scep_ca_t *ca, apr_pool_t *p)
{
    apr_array_header_t *certs;
    int i;

    if (!ca->has_ra) {
        ca->getcacert_type = SCEP_CT_CA_CERT;
        return scep_cert_der(p, ca->cert, &ca->getcacert_body,
                             &ca->getcacert_len);
    }
    certs = apr_array_make(p, ca->chain->nelts + 2, sizeof(X509 *));
    APR_ARRAY_PUSH(certs, X509 *) = ca->decrypt_cert;
    if (ca->sign_cert != ca->decrypt_cert) {
        APR_ARRAY_PUSH(certs, X509 *) = ca->sign_cert;
    }
    for (i = 0; i < ca->chain->nelts; ++i) {
        APR_ARRAY_PUSH(certs, X509 *) = APR_ARRAY_IDX(ca->chain, i, X509 *);
    }
    ca->getcacert_type = SCEP_CT_CA_RA_CERT;
    return scep_certs_only_der(p, certs, &ca->getcacert_body,
                               &ca->getcacert_len);
}

static const char *check_cms_usage(apr_pool_t *p, X509 *cert)
{
    if (scep_cert_has_key_usage(cert)
        && (scep_cert_key_usage(cert) & KU_BOTH) != KU_BOTH) {
        return apr_psprintf(p, "the CA certificate '%s' signs and decrypts "
                            "SCEP messages but its keyUsage lacks "
                            "digitalSignature or keyEncipherment; Apple "
                            "clients refuse such a CA (configure an RA with "
                            "SCEPRACertificateFile)",
                            scep_cert_subject(p, cert));
    }
    return NULL;
}

/* Why the material cannot make a CA, or NULL. */
static const char *material_missing(const scep_ca_material_t *m)
{
    if (!m->ca_certs && !m->ca_keys) {
        return "an RA is configured (SCEPRACertificateFile/SCEPRAKeyFile) "
               "but no CA: set SCEPCACertificateFile and SCEPCAKeyFile";
    }
    if (!m->ca_certs || !m->ca_keys) {
        return m->ca_certs ? "SCEPCACertificateFile is set but SCEPCAKeyFile "
                             "is not: the CA needs its private key"
                           : "SCEPCAKeyFile is set but SCEPCACertificateFile "
                             "is not";
    }
    if (!m->ra_certs != !m->ra_keys) {
        return m->ra_certs ? "SCEPRACertificateFile is set but SCEPRAKeyFile "
                             "is not"
                           : "SCEPRAKeyFile is set but SCEPRACertificateFile "
                             "is not";
    }
    return NULL;
}

/* The certificate a device pins, and its fingerprint. */
static void choose_top_cert(scep_ca_t *ca, apr_pool_t *p)
{
    /* without an RA GetCACert sends the CA alone, so a device can only
     * check its fingerprint against that one certificate */
    ca->top_cert = ca->has_ra
                   ? APR_ARRAY_IDX(ca->chain, ca->chain->nelts - 1, X509 *)
                   : ca->cert;
    ca->fingerprint_sha1 = scep_cert_fingerprint(p, ca->top_cert, "SHA1");
}

/* What is computed once from the certificates: the top certificate, its
 * fingerprint, the store identity, the extensions of issued certificates
 * and the GetCACert answer. */
static apr_status_t compute_fixed(scep_ca_t *ca, apr_pool_t *p,
                                  const char **err)
{
    choose_top_cert(ca, p);
    if (!(ca->id = scep_ca_id(p, ca->cert))) {
        *err = "cannot compute the CA's identity";
        return APR_EGENERAL;
    }
    if (APR_SUCCESS != scep_issue_exts(p, ca->cert, &ca->issue_exts)) {
        *err = "cannot build the extensions of the certificates it issues";
        return APR_EGENERAL;
    }
    if (APR_SUCCESS != build_getcacert(ca, p)) {
        *err = "cannot encode the GetCACert answer";
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

/* Who signs and decrypts SCEP messages: the RA when there is one, else the
 * CA itself (with a warning when its keyUsage does not allow both). */
static apr_status_t assemble_cms_keys(scep_ca_t *ca, apr_pool_t *p,
                                      const scep_ca_material_t *m,
                                      const char **err, const char **warning)
{
    if (m->ra_certs) {
        return assemble_ra(ca, p, m, err);
    }
    ca->sign_cert = ca->decrypt_cert = ca->cert;
    ca->sign_key = ca->decrypt_key = ca->key;
    *warning = check_cms_usage(p, ca->cert);
    return APR_SUCCESS;
}

/* SCEP clients encrypt their requests with RSA only. */
static apr_status_t check_decrypt_key_rsa(const scep_ca_t *ca, apr_pool_t *p,
                                          const char **err)
{
    if (EVP_PKEY_get_base_id(ca->decrypt_key) == EVP_PKEY_RSA) {
        return APR_SUCCESS;
    }
    *err = apr_psprintf(p, "the key that decrypts SCEP requests ('%s') is "
                        "not RSA; SCEP clients encrypt with RSA, so use an "
                        "RSA RA (SCEPRACertificateFile)",
                        scep_cert_subject(p, ca->decrypt_cert));
    return APR_EINVAL;
}

apr_status_t scep_ca_assemble(scep_ca_t **pca, apr_pool_t *p,
                              const scep_ca_material_t *m,
                              const char **err, const char **warning)
{
    scep_ca_t *ca = apr_pcalloc(p, sizeof(*ca));
    apr_status_t rv;

    *warning = NULL;
    if ((*err = material_missing(m))) {
        return APR_EINVAL;
    }
    if (APR_SUCCESS != (rv = assemble_ca(ca, p, m, err))
        || APR_SUCCESS != (rv = assemble_cms_keys(ca, p, m, err, warning))
        || APR_SUCCESS != (rv = check_decrypt_key_rsa(ca, p, err))
        || APR_SUCCESS != (rv = compute_fixed(ca, p, err))) {
        return rv;
    }
    *pca = ca;
    return APR_SUCCESS;
}

const char *scep_ca_id(apr_pool_t *p, X509 *cert)
{
    unsigned char *name = NULL, *spki = NULL, md[EVP_MAX_MD_SIZE];
    int nlen = i2d_X509_NAME(X509_get_subject_name(cert), &name);
    int klen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    const char *hex = NULL;

    if (nlen > 0 && klen > 0 && ctx
        && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)
        && EVP_DigestUpdate(ctx, name, (size_t)nlen)
        && EVP_DigestUpdate(ctx, spki, (size_t)klen)
        && EVP_DigestFinal_ex(ctx, md, &n)) {
        hex = scep_upper_hex(p, md, n);
    }
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(name);
    OPENSSL_free(spki);
    ERR_clear_error();
    return hex;
}

/* ------------------------------------------------------------------ */
/* cRLDistributionPoints                                               */

apr_status_t scep_crl_dp_check(apr_pool_t *p, const char *url,
                               const char **err)
{
    apr_uri_t u;
    const char *s;

    for (s = url; *s; ++s) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
            *err = apr_psprintf(p, "'%s' holds a space, a control or a "
                                "non-ASCII character; percent-encode it",
                                url);
            return APR_EINVAL;
        }
    }
    if (APR_SUCCESS != apr_uri_parse(p, url, &u) || !u.scheme
        || (strcasecmp(u.scheme, "http") && strcasecmp(u.scheme, "https")
            && strcasecmp(u.scheme, "ldap"))) {
        *err = apr_psprintf(p, "'%s' is not an http, https or ldap URL "
                            "(e.g. http://pki.example.com/ca.crl)", url);
        return APR_EINVAL;
    }
    if (strcasecmp(u.scheme, "ldap") && (!u.hostname || !*u.hostname)) {
        *err = apr_psprintf(p, "'%s' names no host", url);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static apr_status_t free_ext(void *ext)
{
    X509_EXTENSION_free(ext);
    return APR_SUCCESS;
}

/* The pool frees ext; APR_ENOMEM when it could not be built. */
static apr_status_t pool_owns_ext(apr_pool_t *p, X509_EXTENSION *ext)
{
    if (!ext) {
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(p, ext, free_ext, apr_pool_cleanup_null);
    return APR_SUCCESS;
}

static GENERAL_NAME *uri_name(const char *url)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

    if (!gn || !ia5 || !ASN1_STRING_set(ia5, url, (int)strlen(url))) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(ia5);
        return NULL;
    }
    GENERAL_NAME_set0_value(gn, GEN_URI, ia5);
    return gn;
}

/* Adds url to names as a URI; 0 when it cannot. */
static int push_uri_name(GENERAL_NAMES *names, const char *url)
{
    GENERAL_NAME *gn = uri_name(url);

    if (!gn || !sk_GENERAL_NAME_push(names, gn)) {
        GENERAL_NAME_free(gn);
        return 0;
    }
    return 1;
}

/* A DistributionPoint with an empty fullName, or NULL. */
static DIST_POINT *full_name_dp(void)
{
    DIST_POINT *dp = DIST_POINT_new();

    if (!dp || !(dp->distpoint = DIST_POINT_NAME_new())
        || !(dp->distpoint->name.fullname = GENERAL_NAMES_new())) {
        DIST_POINT_free(dp);
        return NULL;
    }
    dp->distpoint->type = 0; /* fullName */
    return dp;
}

/* One DistributionPoint: every URL is a place of the same CRL. */
static X509_EXTENSION *crl_dp_ext(const apr_array_header_t *urls)
{
    CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
    DIST_POINT *dp = full_name_dp();
    X509_EXTENSION *ext = NULL;
    int i, ok = dps && dp;

    for (i = 0; ok && i < urls->nelts; ++i) {
        ok = push_uri_name(dp->distpoint->name.fullname,
                           APR_ARRAY_IDX(urls, i, const char *));
    }
    if (ok && sk_DIST_POINT_push(dps, dp)) {
        dp = NULL;
        ext = X509V3_EXT_i2d(NID_crl_distribution_points, 0, dps);
    }
    DIST_POINT_free(dp);
    CRL_DIST_POINTS_free(dps);
    ERR_clear_error();
    return ext;
}

apr_status_t scep_ca_set_crl_dps(scep_ca_t *ca, apr_pool_t *p,
                                 const apr_array_header_t *urls)
{
    ca->crl_dp = NULL;
    if (!urls || urls->nelts == 0) {
        return APR_SUCCESS;
    }
    ca->crl_dp = crl_dp_ext(urls);
    return pool_owns_ext(p, ca->crl_dp);
}

apr_status_t scep_ocsp_url_check(apr_pool_t *p, const char *url,
                                 const char **err)
{
    apr_uri_t u;

    if (APR_SUCCESS != scep_crl_dp_check(p, url, err)) {
        return APR_EINVAL;
    }
    if (APR_SUCCESS != apr_uri_parse(p, url, &u)
        || (strcasecmp(u.scheme, "http") && strcasecmp(u.scheme, "https"))
        || !u.hostname || !*u.hostname) {
        *err = apr_psprintf(p, "'%s' is not an http URL with a host "
                            "(e.g. http://pki.example.com/ocsp)", url);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static ACCESS_DESCRIPTION *ocsp_access(const char *url)
{
    ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
    GENERAL_NAME *gn = uri_name(url);

    if (!ad || !gn) {
        ACCESS_DESCRIPTION_free(ad);
        GENERAL_NAME_free(gn);
        return NULL;
    }
    ASN1_OBJECT_free(ad->method);
    ad->method = OBJ_nid2obj(NID_ad_OCSP);
    GENERAL_NAME_free(ad->location);
    ad->location = gn;
    return ad;
}

/* Adds an id-ad-ocsp access description of url to aia; 0 when it cannot. */
static int push_ocsp_access(AUTHORITY_INFO_ACCESS *aia, const char *url)
{
    ACCESS_DESCRIPTION *ad = ocsp_access(url);

    if (!ad || !sk_ACCESS_DESCRIPTION_push(aia, ad)) {
        ACCESS_DESCRIPTION_free(ad);
        return 0;
    }
    return 1;
}

/* One id-ad-ocsp access description per URL. */
static X509_EXTENSION *ocsp_aia_ext(const apr_array_header_t *urls)
{
    AUTHORITY_INFO_ACCESS *aia = sk_ACCESS_DESCRIPTION_new_null();
    X509_EXTENSION *ext = NULL;
    int i, ok = aia != NULL;

    for (i = 0; ok && i < urls->nelts; ++i) {
        ok = push_ocsp_access(aia, APR_ARRAY_IDX(urls, i, const char *));
    }
    if (ok) {
        ext = X509V3_EXT_i2d(NID_info_access, 0, aia);
    }
    AUTHORITY_INFO_ACCESS_free(aia);
    ERR_clear_error();
    return ext;
}

apr_status_t scep_ca_set_ocsp_urls(scep_ca_t *ca, apr_pool_t *p,
                                   const apr_array_header_t *urls)
{
    ca->ocsp_aia = NULL;
    if (!urls || urls->nelts == 0) {
        return APR_SUCCESS;
    }
    ca->ocsp_aia = ocsp_aia_ext(urls);
    return pool_owns_ext(p, ca->ocsp_aia);
}
