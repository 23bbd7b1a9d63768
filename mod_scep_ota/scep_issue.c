/* Issuing certificates and CRLs from the server's template. */

#include <string.h>

#include <apr_strings.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_crl.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_policy.h"
#include "scep_ota/scep_store.h"

#define CLOCK_SKEW_SECONDS 300
#define MAX_CHALLENGE 255

/* ------------------------------------------------------------------ */
/* requests                                                            */

apr_status_t scep_csr_parse(apr_pool_t *p, const unsigned char *der,
                            apr_size_t len, X509_REQ **preq)
{
    const unsigned char *d = der;
    X509_REQ *req;
    EVP_PKEY *key;
    apr_status_t rv = APR_EINVAL;

    if (der && len > 0 && len < 0x7fffffff
        && (req = scep_track_req(p, d2i_X509_REQ(NULL, &d, (long)len)))
        && (key = X509_REQ_get0_pubkey(req))
        && 1 == X509_REQ_verify(req, key)) {
        *preq = req;
        rv = APR_SUCCESS;
    }
    ERR_clear_error();
    return rv;
}

/* 1 when the two encode to the same bytes */
static int same_spki(X509_PUBKEY *a, X509_PUBKEY *b)
{
    unsigned char *da = NULL, *db = NULL;
    int na = a ? i2d_X509_PUBKEY(a, &da) : -1;
    int nb = b ? i2d_X509_PUBKEY(b, &db) : -1;
    int same = na > 0 && na == nb && !memcmp(da, db, (size_t)na);

    OPENSSL_free(da);
    OPENSSL_free(db);
    return same;
}

apr_status_t scep_csr_parse_for(apr_pool_t *p, const unsigned char *der,
                                apr_size_t len, X509 *holder,
                                X509_REQ **preq, X509_PUBKEY **spki,
                                EVP_PKEY **key)
{
    OSSL_LIB_CTX *bare = holder ? scep_crypt_bare_libctx() : NULL;
    const unsigned char *d = der;
    EVP_PKEY *hkey = holder ? X509_get0_pubkey(holder) : NULL;
    X509_REQ *req = NULL;
    apr_status_t rv;

    if (bare && hkey && der && len > 0 && len < 0x7fffffff
        && (req = scep_track_req(p, (X509_REQ *)ASN1_item_d2i_ex(
                NULL, &d, (long)len, ASN1_ITEM_rptr(X509_REQ), bare, NULL)))
        && same_spki(X509_REQ_get_X509_PUBKEY(req),
                     X509_get_X509_PUBKEY(holder))) {
        rv = 1 == X509_REQ_verify_ex(req, hkey, NULL, NULL) ? APR_SUCCESS
                                                            : APR_EINVAL;
        *preq = req;
        *spki = X509_get_X509_PUBKEY(holder);
        *key = hkey;
        ERR_clear_error();
        return rv;
    }
    ERR_clear_error();
    rv = scep_csr_parse(p, der, len, preq);
    if (APR_SUCCESS == rv) {
        *spki = X509_REQ_get_X509_PUBKEY(*preq);
        *key = X509_REQ_get0_pubkey(*preq);
    }
    return rv;
}

const char *scep_csr_challenge(apr_pool_t *p, X509_REQ *req)
{
    int i = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
    X509_ATTRIBUTE *at = i >= 0 ? X509_REQ_get_attr(req, i) : NULL;
    ASN1_TYPE *t = at && X509_ATTRIBUTE_count(at) == 1
                   ? X509_ATTRIBUTE_get0_type(at, 0) : NULL;
    unsigned char *utf8 = NULL;
    const char *out = NULL;
    int n;

    switch (t ? ASN1_TYPE_get(t) : -1) {
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_UTF8STRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_T61STRING:
    case V_ASN1_BMPSTRING:
    case V_ASN1_UNIVERSALSTRING:
        n = ASN1_STRING_to_UTF8(&utf8, t->value.asn1_string);
        if (n > 0 && n <= MAX_CHALLENGE && !memchr(utf8, 0, (size_t)n)) {
            out = apr_pstrmemdup(p, (const char *)utf8, (apr_size_t)n);
        }
        break;
    default:
        break;
    }
    OPENSSL_free(utf8);
    ERR_clear_error();
    return out;
}

/* 1 for an EC key on P-256, P-384 or P-521; its group name into group. */
static int accepted_ec(EVP_PKEY *key, char *group, size_t size)
{
    return EVP_PKEY_is_a(key, "EC")
           && EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                             group, size, NULL)
           && (!strcmp(group, "prime256v1") || !strcmp(group, "secp384r1")
               || !strcmp(group, "secp521r1"));
}

apr_status_t scep_key_check(apr_pool_t *p, EVP_PKEY *key, int min_rsa_bits,
                            const char **why)
{
    char group[64] = "";
    int bits = EVP_PKEY_get_bits(key);

    if (EVP_PKEY_is_a(key, "RSA")) {
        if (bits >= min_rsa_bits) {
            return APR_SUCCESS;
        }
        *why = apr_psprintf(p, "RSA key of %d bits, at least %d required",
                            bits, min_rsa_bits);
        return APR_EINVAL;
    }
    if (accepted_ec(key, group, sizeof(group))) {
        return APR_SUCCESS;
    }
    ERR_clear_error();
    *why = apr_psprintf(p, "key type %s%s%s is not accepted (RSA or EC "
                        "P-256/P-384/P-521)", EVP_PKEY_get0_type_name(key)
                        ? EVP_PKEY_get0_type_name(key) : "?",
                        *group ? " " : "", group);
    return APR_EINVAL;
}

/* ------------------------------------------------------------------ */
/* certificates                                                        */

static int random_serial(X509 *x)
{
    unsigned char b[SCEP_SERIAL_BYTES];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(b, sizeof(b)) != 1) {
        return 0;
    }
    /* positive, and a first byte that is never zero: always 16 octets */
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(b, sizeof(b), NULL);
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

static int set_validity(X509 *x, X509 *ca, int days)
{
    if (!X509_time_adj_ex(X509_getm_notBefore(x), 0, -CLOCK_SKEW_SECONDS,
                          NULL)
        || !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL)) {
        return 0;
    }
    if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)) > 0) {
        return X509_set1_notAfter(x, X509_get0_notAfter(ca));
    }
    return 1;
}

int scep_x509_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* The SANs the server decided on (critical when the subject is empty,
 * RFC 5280 4.2.1.6). */
static int add_sans(X509 *x, const apr_array_header_t *sans, int critical)
{
    GENERAL_NAMES *names;
    int ok;

    if (!sans || sans->nelts == 0) {
        return 1;
    }
    names = scep_sans_to_names(sans);
    ok = names && X509_add1_ext_i2d(x, NID_subject_alt_name, names, critical,
                                    X509V3_ADD_DEFAULT);
    GENERAL_NAMES_free(names);
    return ok;
}

/* authorityKeyIdentifier = the CA's subjectKeyIdentifier, or, for a CA
 * certificate without one, the SHA-1 of its public key (RFC 5280 4.2.1.2
 * method 1), so a CA made without SKI still issues. */
static AUTHORITY_KEYID *authority_key_id(X509 *ca)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned int n = 0;

    if (!akid || !(akid->keyid = ASN1_OCTET_STRING_new())) {
        AUTHORITY_KEYID_free(akid);
        return NULL;
    }
    if (ski ? !ASN1_OCTET_STRING_set(akid->keyid, ski->data, ski->length)
            : (!X509_pubkey_digest(ca, EVP_sha1(), md, &n)
               || !ASN1_OCTET_STRING_set(akid->keyid, md, (int)n))) {
        AUTHORITY_KEYID_free(akid);
        return NULL;
    }
    return akid;
}

static apr_status_t free_ext(void *ext)
{
    X509_EXTENSION_free(ext);
    return APR_SUCCESS;
}

static X509_EXTENSION *aki_ext(X509 *ca)
{
    AUTHORITY_KEYID *akid = authority_key_id(ca);
    X509_EXTENSION *ext = akid ? X509V3_EXT_i2d(NID_authority_key_identifier,
                                                0, akid) : NULL;

    AUTHORITY_KEYID_free(akid);
    return ext;
}

apr_status_t scep_issue_exts(apr_pool_t *p, X509 *ca,
                             apr_array_header_t **exts)
{
    X509_EXTENSION *ext[SCEP_ISSUE_EXTS];
    int i;

    ext[0] = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
                                 "critical,CA:FALSE");
    ext[1] = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
                                 "critical,digitalSignature,keyEncipherment");
    ext[2] = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "clientAuth");
    ext[3] = aki_ext(ca);
    *exts = apr_array_make(p, SCEP_ISSUE_EXTS, sizeof(X509_EXTENSION *));
    for (i = 0; i < SCEP_ISSUE_EXTS; ++i) {
        if (ext[i]) {
            apr_pool_cleanup_register(p, ext[i], free_ext,
                                      apr_pool_cleanup_null);
        }
        APR_ARRAY_PUSH(*exts, X509_EXTENSION *) = ext[i];
    }
    ERR_clear_error();
    for (i = 0; i < SCEP_ISSUE_EXTS; ++i) {
        if (!ext[i]) {
            *exts = NULL;
            return APR_EGENERAL;
        }
    }
    return APR_SUCCESS;
}

/* subjectKeyIdentifier: the SHA-1 of the subject's public key (RFC 5280
 * 4.2.1.2 method 1) */
static int add_ski(X509 *x)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned int n = 0;
    ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
    int ok = ski && X509_pubkey_digest(x, EVP_sha1(), md, &n)
             && ASN1_OCTET_STRING_set(ski, md, (int)n)
             && X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0,
                                  X509V3_ADD_DEFAULT);

    ASN1_OCTET_STRING_free(ski);
    return ok;
}

/* basicConstraints, keyUsage, extendedKeyUsage as the CA built them once,
 * then the subject's key identifier, then the CA's */
static int template_exts(X509 *x, const apr_array_header_t *exts)
{
    return exts && exts->nelts == SCEP_ISSUE_EXTS
           && X509_add_ext(x, APR_ARRAY_IDX(exts, 0, X509_EXTENSION *), -1)
           && X509_add_ext(x, APR_ARRAY_IDX(exts, 1, X509_EXTENSION *), -1)
           && X509_add_ext(x, APR_ARRAY_IDX(exts, 2, X509_EXTENSION *), -1)
           && add_ski(x)
           && X509_add_ext(x, APR_ARRAY_IDX(exts, 3, X509_EXTENSION *), -1);
}

static int set_pubkey(X509 *x, X509_PUBKEY *from)
{
    int copied = from ? scep_spki_copy(X509_get_X509_PUBKEY(x), from) : 0;

    return copied > 0
           || (copied == 0 && X509_set_pubkey(x, X509_PUBKEY_get0(from)));
}

apr_status_t scep_issue_cert(apr_pool_t *p, const scep_ca_t *ca,
                             X509_REQ *req, X509_PUBKEY *spki, const apr_array_header_t *sans,
                             int lifetime_days, X509 **cert)
{
    X509 *x = scep_track_x509(p, X509_new());
    const X509_NAME *subject = X509_REQ_get_subject_name(req);
    int empty = X509_NAME_entry_count(subject) == 0;
    int nsans = sans ? sans->nelts : 0;
    apr_status_t rv = APR_EGENERAL;

    if (!x || !X509_set_version(x, X509_VERSION_3) || !random_serial(x)
        || !X509_set_subject_name(x, subject)
        || !X509_set_issuer_name(x, X509_get_subject_name(ca->cert))
        || !set_pubkey(x, spki ? spki : X509_REQ_get_X509_PUBKEY(req))
        || !set_validity(x, ca->cert, lifetime_days)
        || !template_exts(x, ca->issue_exts)
        || (ca->crl_dp && !X509_add_ext(x, ca->crl_dp, -1))
        || (ca->ocsp_aia && !X509_add_ext(x, ca->ocsp_aia, -1))
        || !add_sans(x, sans, empty)) {
        goto leave;
    }
    if (empty && nsans == 0) {
        rv = APR_EINVAL;
        goto leave;
    }
    if (X509_sign(x, ca->key, EVP_sha256()) <= 0) {
        goto leave;
    }
    *cert = x;
    rv = APR_SUCCESS;
leave:
    ERR_clear_error();
    return rv;
}

/* ------------------------------------------------------------------ */
/* CRLs                                                                */

static int add_revoked(X509_CRL *crl, const scep_cert_rec_t *rec)
{
    X509_REVOKED *r = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)apr_time_sec(rec->revoked_at));
    ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
    int ok;

    ok = r && when && reason && BN_hex2bn(&bn, rec->serial)
         && (serial = BN_to_ASN1_INTEGER(bn, NULL))
         && X509_REVOKED_set_serialNumber(r, serial)
         && X509_REVOKED_set_revocationDate(r, when)
         && (rec->revocation_reason <= 0
             || (ASN1_ENUMERATED_set(reason, rec->revocation_reason)
                 && X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0,
                                              0)))
         && X509_CRL_add0_revoked(crl, r);
    if (!ok) {
        X509_REVOKED_free(r);
    }
    ASN1_ENUMERATED_free(reason);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return ok;
}

static int crl_header(X509_CRL *crl, X509 *ca, apr_int64_t crl_number,
                      apr_time_t this_update, apr_time_t next_update)
{
    ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)apr_time_sec(this_update));
    ASN1_TIME *next = ASN1_TIME_set(NULL, (time_t)apr_time_sec(next_update));
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    AUTHORITY_KEYID *aki = authority_key_id(ca);
    int ok;

    ok = aki && last && next && number
         && X509_CRL_set_version(crl, X509_CRL_VERSION_2)
         && X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca))
         && X509_CRL_set1_lastUpdate(crl, last)
         && X509_CRL_set1_nextUpdate(crl, next)
         && ASN1_INTEGER_set_int64(number, (int64_t)crl_number)
         && X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0)
         && X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, aki, 0,
                                  X509V3_ADD_DEFAULT);
    AUTHORITY_KEYID_free(aki);
    ASN1_INTEGER_free(number);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    return ok;
}

apr_status_t scep_crl_sign(apr_pool_t *p, const scep_ca_t *ca,
                           const apr_array_header_t *recs,
                           apr_int64_t number, apr_time_t this_update,
                           apr_time_t next_update, X509_CRL **pcrl)
{
    X509_CRL *crl = scep_track_crl(p, X509_CRL_new());
    const scep_cert_rec_t *rec;
    apr_status_t rv = APR_EGENERAL;
    int i;

    if (!crl || !crl_header(crl, ca->cert, number, this_update,
                            next_update)) {
        goto leave;
    }
    for (i = 0; recs && i < recs->nelts; ++i) {
        rec = APR_ARRAY_IDX(recs, i, const scep_cert_rec_t *);
        if (rec->status == SCEP_CERT_REVOKED && !add_revoked(crl, rec)) {
            goto leave;
        }
    }
    if (!X509_CRL_sort(crl) || X509_CRL_sign(crl, ca->key, EVP_sha256()) <= 0) {
        goto leave;
    }
    *pcrl = crl;
    rv = APR_SUCCESS;
leave:
    ERR_clear_error();
    return rv;
}

/* numbered by the time: a CRL on its own, published nowhere */
apr_status_t scep_crl_build(apr_pool_t *p, const scep_ca_t *ca,
                            const apr_array_header_t *recs,
                            int next_update_days, X509_CRL **pcrl)
{
    apr_time_t now = apr_time_from_sec(apr_time_sec(apr_time_now()));

    return scep_crl_sign(p, ca, recs, (apr_int64_t)apr_time_sec(now), now,
                         now + apr_time_from_sec((apr_int64_t)next_update_days
                                                 * 86400), pcrl);
}
