/* The core's base: OpenSSL objects tied to pools, loading, hashes and
 * names, certificate checks. SCEP, OTA and the store stand on it; it
 * stands on nothing of theirs. */

#include <string.h>

#include <apr_escape.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/ui.h>
#include <openssl/x509v3.h>

#include "scep_ota/scep_crypt.h"

/* ------------------------------------------------------------------ */
/* hashes and names                                                    */

const char *scep_upper_hex(apr_pool_t *p, const unsigned char *b,
                           apr_size_t n)
{
    char *s = apr_palloc(p, 2 * n + 1);

    return OPENSSL_buf2hexstr_ex(s, 2 * n + 1, NULL, b, n, '\0') ? s : NULL;
}

const char *scep_sha256_hex(apr_pool_t *p, const void *data, apr_size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL)) {
        ERR_clear_error();
        return NULL;
    }
    return apr_pescape_hex(p, md, n, 0);
}

/* 1 when der is one SEQUENCE of two INTEGERs in DER, nothing after it:
 * an RSAPublicKey exactly as OpenSSL's encoder writes it. */
static int rsa_public_der(const unsigned char *der, int len)
{
    const unsigned char *in = der;
    ASN1_SEQUENCE_ANY *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &in, len);
    unsigned char *out = NULL;
    int n = -1, ok;

    ok = seq && in == der + len && sk_ASN1_TYPE_num(seq) == 2
         && ASN1_TYPE_get(sk_ASN1_TYPE_value(seq, 0)) == V_ASN1_INTEGER
         && ASN1_TYPE_get(sk_ASN1_TYPE_value(seq, 1)) == V_ASN1_INTEGER
         && (n = i2d_ASN1_SEQUENCE_ANY(seq, &out)) == len
         && !memcmp(out, der, (size_t)len);
    OPENSSL_free(out);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    return ok;
}

/*
 * Copies a parsed SubjectPublicKeyInfo into to, field by field, when that
 * gives the bytes OpenSSL's encoder writes for its key: an RSA key with
 * NULL parameters and a DER RSAPublicKey. Going through the EVP_PKEY
 * instead (X509_set_pubkey, i2d_PUBKEY) builds OpenSSL 3's encoder and
 * decoder contexts, whose lookups by name cost about a tenth of an
 * enrollment's CPU. 1: copied; 0: not such a key (take the long way);
 * -1: out of memory.
 */
int scep_spki_copy(X509_PUBKEY *to, X509_PUBKEY *from)
{
    ASN1_OBJECT *alg = NULL;
    const unsigned char *pk = NULL;
    unsigned char *copy;
    X509_ALGOR *pa = NULL;
    int len = 0, ptype = V_ASN1_UNDEF;

    if (X509_PUBKEY_get0_param(&alg, &pk, &len, &pa, from)) {
        X509_ALGOR_get0(NULL, &ptype, NULL, pa);
    }
    if (!to || !alg || OBJ_obj2nid(alg) != NID_rsaEncryption
        || ptype != V_ASN1_NULL || !X509_PUBKEY_get0(from)
        || !rsa_public_der(pk, len)) {
        ERR_clear_error();
        return 0;
    }
    if (!(copy = OPENSSL_memdup(pk, (size_t)len))) {
        return -1;
    }
    if (!X509_PUBKEY_set0_param(to, OBJ_nid2obj(NID_rsaEncryption),
                                V_ASN1_NULL, NULL, copy, len)) {
        OPENSSL_free(copy);
        return -1;
    }
    return 1;
}

const char *scep_spki_hash(apr_pool_t *p, X509_PUBKEY *pub)
{
    X509_PUBKEY *canon = pub ? X509_PUBKEY_new() : NULL;
    unsigned char *der = NULL;
    const char *h = NULL;
    int n;

    if (canon && scep_spki_copy(canon, pub) > 0
        && (n = i2d_X509_PUBKEY(canon, &der)) > 0) {
        h = scep_sha256_hex(p, der, (apr_size_t)n);
    }
    else if (pub) {
        h = scep_key_hash(p, X509_PUBKEY_get0(pub));
    }
    OPENSSL_free(der);
    X509_PUBKEY_free(canon);
    ERR_clear_error();
    return h;
}

const char *scep_key_hash(apr_pool_t *p, EVP_PKEY *key)
{
    unsigned char *der = NULL;
    int n = key ? i2d_PUBKEY(key, &der) : -1;
    const char *h = n > 0 ? scep_sha256_hex(p, der, (apr_size_t)n) : NULL;

    OPENSSL_free(der);
    ERR_clear_error();
    return h;
}

const char *scep_serial_hex(apr_pool_t *p, const ASN1_INTEGER *serial)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *s = bn ? BN_bn2hex(bn) : NULL;
    const char *out = s ? apr_pstrdup(p, s) : NULL;

    OPENSSL_free(s);
    BN_free(bn);
    ERR_clear_error();
    return out;
}

const char *scep_cert_serial_hex(apr_pool_t *p, X509 *cert)
{
    return scep_serial_hex(p, X509_get0_serialNumber(cert));
}

const char *scep_name_rfc2253(apr_pool_t *p, const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long n;
    const char *out = NULL;

    if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_get_mem_data(b, &data);
        out = apr_pstrmemdup(p, n > 0 ? data : "", n > 0 ? (apr_size_t)n : 0);
    }
    BIO_free(b);
    ERR_clear_error();
    return out;
}

/* ------------------------------------------------------------------ */
/* lifetimes                                                           */

static apr_status_t x509_cleanup(void *data)
{
    X509_free(data);
    return APR_SUCCESS;
}

static apr_status_t pkey_cleanup(void *data)
{
    EVP_PKEY_free(data);
    return APR_SUCCESS;
}

static apr_status_t crl_cleanup(void *data)
{
    X509_CRL_free(data);
    return APR_SUCCESS;
}

static apr_status_t req_cleanup(void *data)
{
    X509_REQ_free(data);
    return APR_SUCCESS;
}

static apr_status_t cms_cleanup(void *data)
{
    CMS_ContentInfo_free(data);
    return APR_SUCCESS;
}

CMS_ContentInfo *scep_track_cms(apr_pool_t *p, CMS_ContentInfo *cms)
{
    if (cms) {
        apr_pool_cleanup_register(p, cms, cms_cleanup, apr_pool_cleanup_null);
    }
    return cms;
}

static apr_status_t store_cleanup(void *data)
{
    X509_STORE_free(data);
    return APR_SUCCESS;
}

X509_STORE *scep_x509_store(apr_pool_t *p, const apr_array_header_t *certs)
{
    X509_STORE *store = X509_STORE_new();
    int i;

    if (!store) {
        return NULL;
    }
    apr_pool_cleanup_register(p, store, store_cleanup, apr_pool_cleanup_null);
    for (i = 0; i < certs->nelts; ++i) {
        if (!X509_STORE_add_cert(store, APR_ARRAY_IDX(certs, i, X509 *))) {
            ERR_clear_error();   /* a duplicate is harmless */
        }
    }
    return store;
}

X509 *scep_track_x509(apr_pool_t *p, X509 *x)
{
    if (x) {
        apr_pool_cleanup_register(p, x, x509_cleanup, apr_pool_cleanup_null);
    }
    return x;
}

EVP_PKEY *scep_track_pkey(apr_pool_t *p, EVP_PKEY *k)
{
    if (k) {
        apr_pool_cleanup_register(p, k, pkey_cleanup, apr_pool_cleanup_null);
    }
    return k;
}

X509_CRL *scep_track_crl(apr_pool_t *p, X509_CRL *crl)
{
    if (crl) {
        apr_pool_cleanup_register(p, crl, crl_cleanup, apr_pool_cleanup_null);
    }
    return crl;
}

X509_REQ *scep_track_req(apr_pool_t *p, X509_REQ *req)
{
    if (req) {
        apr_pool_cleanup_register(p, req, req_cleanup, apr_pool_cleanup_null);
    }
    return req;
}

/* ------------------------------------------------------------------ */
/* loading                                                             */

int scep_is_uri(const char *s)
{
    const char *c = s;

    if (!apr_isalpha(*c)) {
        return 0;
    }
    while (*c && (apr_isalnum(*c) || *c == '+' || *c == '-' || *c == '.')) {
        ++c;
    }
    /* "C:" style drive letters are paths, not schemes */
    return *c == ':' && (c - s) > 1;
}

/* Before OpenSSL gets the path, tell "missing" and "unreadable" apart. */
static apr_status_t check_readable(apr_pool_t *p, const char *path,
                                   const char **err)
{
    apr_finfo_t finfo;
    apr_file_t *f;
    apr_status_t rv;

    if (scep_is_uri(path)) {
        return APR_SUCCESS;
    }
    rv = apr_stat(&finfo, path, APR_FINFO_TYPE, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        *err = apr_psprintf(p, "'%s' does not exist", path);
        return rv;
    }
    if (APR_SUCCESS == rv && finfo.filetype != APR_REG) {
        *err = apr_psprintf(p, "'%s' is not a regular file", path);
        return APR_EINVAL;
    }
    rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p);
    if (APR_SUCCESS != rv) {
        char buf[120];
        *err = apr_psprintf(p, "'%s' is not readable: %s", path,
                            apr_strerror(rv, buf, sizeof(buf)));
        return rv;
    }
    apr_file_close(f);
    return APR_SUCCESS;
}

static apr_status_t store_load(apr_pool_t *p, const char *path, int want,
                               apr_array_header_t **out, const char **err)
{
    OSSL_STORE_CTX *ctx;
    OSSL_STORE_INFO *info;
    apr_array_header_t *items;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = check_readable(p, path, err))) {
        return rv;
    }
    items = apr_array_make(p, 4, sizeof(void *));
    /* UI_null: an encrypted key fails instead of prompting on a tty */
    ctx = OSSL_STORE_open(path, UI_null(), NULL, NULL, NULL);
    if (!ctx) {
        ERR_clear_error();
        *err = apr_psprintf(p, "'%s' cannot be opened by OpenSSL", path);
        return APR_EINVAL;
    }
    OSSL_STORE_expect(ctx, want);
    while (!OSSL_STORE_eof(ctx)) {
        info = OSSL_STORE_load(ctx);
        if (!info) {
            continue;
        }
        if (want == OSSL_STORE_INFO_CERT
            && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_CERT) {
            APR_ARRAY_PUSH(items, X509 *) =
                scep_track_x509(p, OSSL_STORE_INFO_get1_CERT(info));
        }
        else if (want == OSSL_STORE_INFO_PKEY
                 && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY) {
            APR_ARRAY_PUSH(items, EVP_PKEY *) =
                scep_track_pkey(p, OSSL_STORE_INFO_get1_PKEY(info));
        }
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(ctx);
    ERR_clear_error();
    if (items->nelts == 0) {
        *err = apr_psprintf(p, "'%s' contains no %s", path,
                            want == OSSL_STORE_INFO_CERT
                            ? "certificate (PEM or DER expected)"
                            : "usable private key (unencrypted PEM or DER "
                              "expected)");
        return APR_ENOENT;
    }
    *out = items;
    return APR_SUCCESS;
}

apr_status_t scep_load_certs(apr_pool_t *p, const char *path,
                             apr_array_header_t **certs, const char **err)
{
    return store_load(p, path, OSSL_STORE_INFO_CERT, certs, err);
}

apr_status_t scep_load_keys(apr_pool_t *p, const char *path,
                            apr_array_header_t **keys, const char **err)
{
    return store_load(p, path, OSSL_STORE_INFO_PKEY, keys, err);
}

/* ------------------------------------------------------------------ */
/* checks                                                              */

int scep_key_matches_cert(EVP_PKEY *key, X509 *cert)
{
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    int rc = pub && key && 1 == EVP_PKEY_eq(pub, key);

    ERR_clear_error();
    return rc;
}

int scep_cert_is_ca(X509 *cert)
{
    int rc = X509_check_ca(cert);

    /* 1: CA:TRUE; 3: a self-signed v1 root; 4/5: Netscape cert types */
    return rc == 1 || rc == 3;
}

int scep_cert_issued_by(X509 *cert, X509 *issuer)
{
    EVP_PKEY *ikey = X509_get0_pubkey(issuer);
    int rc = X509_V_OK == X509_check_issued(issuer, cert)
             && ikey && 1 == X509_verify(cert, ikey);

    ERR_clear_error();
    return rc;
}

int scep_cert_has_key_usage(X509 *cert)
{
    return (X509_get_extension_flags(cert) & EXFLAG_KUSAGE) != 0;
}

unsigned int scep_cert_key_usage(X509 *cert)
{
    return scep_cert_has_key_usage(cert) ? X509_get_key_usage(cert) : 0;
}

const char *scep_cert_subject(apr_pool_t *p, X509 *cert)
{
    char *s = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
    const char *out = apr_pstrdup(p, s ? s : "?");

    OPENSSL_free(s);
    return out;
}

/* ------------------------------------------------------------------ */
/* encodings                                                           */

/* The n bytes an i2d function wrote to buf, copied into p; frees buf. */
static apr_status_t keep_der(apr_pool_t *p, unsigned char *buf, int n,
                             const unsigned char **der, apr_size_t *len)
{
    if (n <= 0) {
        ERR_clear_error();
        return APR_EGENERAL;
    }
    *der = apr_pmemdup(p, buf, (apr_size_t)n);
    *len = (apr_size_t)n;
    OPENSSL_free(buf);
    return APR_SUCCESS;
}

apr_status_t scep_cert_der(apr_pool_t *p, X509 *cert,
                           const unsigned char **der, apr_size_t *len)
{
    unsigned char *buf = NULL;
    int n = i2d_X509(cert, &buf);

    return keep_der(p, buf, n, der, len);
}

apr_status_t scep_certs_only_der(apr_pool_t *p, const apr_array_header_t *certs,
                                 const unsigned char **der, apr_size_t *len)
{
    return scep_degenerate_der(p, certs, NULL, der, len);
}

/* An empty signed-data to carry certificates and CRLs, or NULL. */
static PKCS7 *degenerate_p7(void)
{
    PKCS7 *p7 = PKCS7_new();

    if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed)) {
        PKCS7_free(p7);
        return NULL;
    }
    /* degenerate: inner content type "data" with the content absent */
    ASN1_OBJECT_free(p7->d.sign->contents->type);
    p7->d.sign->contents->type = OBJ_nid2obj(NID_pkcs7_data);
    return p7;
}

apr_status_t scep_degenerate_der(apr_pool_t *p,
                                 const apr_array_header_t *certs,
                                 const apr_array_header_t *crls,
                                 const unsigned char **der, apr_size_t *len)
{
    PKCS7 *p7 = degenerate_p7();
    unsigned char *buf = NULL;
    apr_status_t rv = APR_EGENERAL;
    int i, n;

    if (!p7) {
        goto leave;
    }
    for (i = 0; certs && i < certs->nelts; ++i) {
        if (!PKCS7_add_certificate(p7, APR_ARRAY_IDX(certs, i, X509 *))) {
            goto leave;
        }
    }
    for (i = 0; crls && i < crls->nelts; ++i) {
        if (!PKCS7_add_crl(p7, APR_ARRAY_IDX(crls, i, X509_CRL *))) {
            goto leave;
        }
    }
    n = i2d_PKCS7(p7, &buf);
    rv = keep_der(p, buf, n, der, len);
leave:
    ERR_clear_error();
    PKCS7_free(p7);
    return rv;
}

apr_status_t scep_cms_der(apr_pool_t *p, CMS_ContentInfo *cms,
                          const unsigned char **der, apr_size_t *len)
{
    unsigned char *buf = NULL;
    int n = i2d_CMS_ContentInfo(cms, &buf);

    return keep_der(p, buf, n, der, len);
}

const char *scep_cert_fingerprint(apr_pool_t *p, X509 *cert, const char *md)
{
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    const EVP_MD *type = EVP_get_digestbyname(md);

    if (!type || !X509_digest(cert, type, buf, &n)) {
        ERR_clear_error();
        return NULL;
    }
    return scep_upper_hex(p, buf, n);
}

/* ------------------------------------------------------------------ */
/* providers                                                           */

/* Where the library context is remembered in the pool given to
 * scep_crypt_enable_legacy: a module reloaded at a restart finds it there
 * instead of making another. */
#define LEGACY_CTX_KEY "scep_ota:legacy_libctx"

/* Single DES lives here and nowhere else in the process. */
static OSSL_LIB_CTX *legacy_ctx;

static OSSL_LIB_CTX *new_legacy_ctx(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    /* a context of its own has no provider until one is loaded; the
     * default one brings RSA, AES and the digests, the legacy one DES */
    if (ctx && (!OSSL_PROVIDER_load(ctx, "default")
                || !OSSL_PROVIDER_load(ctx, "legacy"))) {
        OSSL_LIB_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

apr_status_t scep_crypt_enable_legacy(apr_pool_t *p, const char **err)
{
    void *kept = NULL;

    if (legacy_ctx) {
        return APR_SUCCESS;
    }
    apr_pool_userdata_get(&kept, LEGACY_CTX_KEY, p);
    if (!kept && (kept = new_legacy_ctx())) {
        /* never freed: keys and certificates of every configuration
         * generation may hold material exported into it */
        apr_pool_userdata_set(kept, LEGACY_CTX_KEY, apr_pool_cleanup_null, p);
    }
    if (!kept) {
        ERR_clear_error();
        *err = "OpenSSL's legacy provider cannot be loaded (is legacy.so "
               "installed in the OpenSSL modules directory?)";
        return APR_ENOTIMPL;
    }
    legacy_ctx = kept;
    return APR_SUCCESS;
}

OSSL_LIB_CTX *scep_crypt_libctx(int allow_legacy)
{
    return allow_legacy ? legacy_ctx : NULL;
}

/* A context with no algorithm at all ("null" provider): what is parsed in
 * it keeps its public keys as bytes. Made once per load of the module; a
 * reload makes another, a few hundred bytes, since libcrypto outlives it. */
static OSSL_LIB_CTX *bare_ctx;
static CRYPTO_ONCE bare_once = CRYPTO_ONCE_STATIC_INIT;

static void new_bare_ctx(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();

    if (ctx && !OSSL_PROVIDER_load(ctx, "null")) {
        OSSL_LIB_CTX_free(ctx);
        ctx = NULL;
    }
    ERR_clear_error();
    bare_ctx = ctx;
}

OSSL_LIB_CTX *scep_crypt_bare_libctx(void)
{
    return CRYPTO_THREAD_run_once(&bare_once, new_bare_ctx) ? bare_ctx
                                                             : NULL;
}
