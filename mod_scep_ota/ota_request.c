/* OTA device POSTs: decode, verify the signature, classify the signer. */

#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "scep_ota/scep_crypt.h"
#include "ota_private.h"

/* A binary plist nests by object references; keep those small. */
#define BINARY_ATTRIBUTES_MAX 4096
#define ATTR_MAX_KEYS   64
#define ATTR_KEY_MAX    64
#define ATTR_VALUE_MAX  256
#define CHAIN_MAX_DEPTH 4

typedef struct {
    const unsigned char *body;   /* as it came */
    apr_size_t body_len;
    CMS_ContentInfo *cms;
    STACK_OF(X509) *certs;       /* every certificate carried */
    X509 *signer;
    const unsigned char *content;
    apr_size_t content_len;
} signed_msg_t;

static apr_status_t cms_cleanup(void *data)
{
    CMS_ContentInfo_free(data);
    return APR_SUCCESS;
}

static apr_status_t certs_cleanup(void *data)
{
    sk_X509_pop_free(data, X509_free);
    return APR_SUCCESS;
}

static int is_attached_signed(CMS_ContentInfo *cms)
{
    ASN1_OCTET_STRING **pos = CMS_get0_content(cms);

    return OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed && pos && *pos;
}

/* The certificates carried, at most OTA_MAX_CERTS, and the content, at
 * most OTA_MAX_ATTRIBUTES bytes. */
static scep_outcome_kind_t take_certs(apr_pool_t *p, const scep_logger_t *log,
                                      signed_msg_t *m)
{
    ASN1_OCTET_STRING **pos = CMS_get0_content(m->cms);

    m->certs = CMS_get1_certs(m->cms);
    if (m->certs) {
        apr_pool_cleanup_register(p, m->certs, certs_cleanup,
                                  apr_pool_cleanup_null);
    }
    if (!m->certs || sk_X509_num(m->certs) > OTA_MAX_CERTS
        || (apr_size_t)ASN1_STRING_length(*pos) > OTA_MAX_ATTRIBUTES) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                        SCEPLOGNO(5004) "OTA POST: no certificates, more than "
                        "%d, or attributes over %d bytes", OTA_MAX_CERTS,
                        OTA_MAX_ATTRIBUTES);
        return SCEP_OUTCOME_BAD_REQUEST;
    }
    return SCEP_OUTCOME_OK;
}

/* BAD_REQUEST for anything that is not one attached, signed content. */
static scep_outcome_kind_t decode(apr_pool_t *p, const scep_logger_t *log,
                                  const unsigned char *body, apr_size_t len,
                                  signed_msg_t *m)
{
    const unsigned char *d = body;

    m->cms = d2i_CMS_ContentInfo(NULL, &d, (long)len);
    if (!m->cms) {
        scep_log_openssl(log, SCEP_LOG_MARK, SCEP_LOG_INFO, p,
                         SCEPLOGNO(5001) "OTA POST: the body (%" APR_SIZE_T_FMT
                         " bytes) is not CMS", len);
        return SCEP_OUTCOME_BAD_REQUEST;
    }
    apr_pool_cleanup_register(p, m->cms, cms_cleanup, apr_pool_cleanup_null);
    if (!is_attached_signed(m->cms)) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                        SCEPLOGNO(5002) "OTA POST: the body is not a CMS "
                        "SignedData with attached content");
        return SCEP_OUTCOME_BAD_REQUEST;
    }
    if (sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(m->cms)) != 1) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                        SCEPLOGNO(5003) "OTA POST: %d signers (unsigned or "
                        "more than one signer)",
                        sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(m->cms)));
        return SCEP_OUTCOME_BAD_REQUEST;
    }
    return take_certs(p, log, m);
}

/* The one signer and the content of a verified message, kept in p. */
static int take_signer(apr_pool_t *p, signed_msg_t *m, BIO *content)
{
    STACK_OF(X509) *signers = CMS_get0_signers(m->cms);
    char *data;
    long n;
    int ok = signers && sk_X509_num(signers) == 1;

    if (ok) {
        m->signer = sk_X509_value(signers, 0);
        X509_up_ref(m->signer);
        scep_track_x509(p, m->signer);
        n = BIO_get_mem_data(content, &data);
        m->content = apr_pmemdup(p, data, (apr_size_t)n);
        m->content_len = (apr_size_t)n;
    }
    sk_X509_free(signers);
    return ok;
}

/* FORBIDDEN unless the signature verifies with the signer certificate
 * carried in the message (the chain is judged later). */
static scep_outcome_kind_t verify_signature(apr_pool_t *p,
                                            const scep_logger_t *log,
                                            signed_msg_t *m)
{
    BIO *out = BIO_new(BIO_s_mem());
    int ok = out && 1 == CMS_verify(m->cms, NULL, NULL, NULL, out,
                                    CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY)
             && take_signer(p, m, out);

    if (!ok) {
        scep_log_openssl(log, SCEP_LOG_MARK, SCEP_LOG_WARNING, p,
                         SCEPLOGNO(5005) "OTA POST refused: the signature "
                         "does not verify");
    }
    BIO_free(out);
    ERR_clear_error();
    return ok ? SCEP_OUTCOME_OK : SCEP_OUTCOME_FORBIDDEN;
}

static void chain_params(X509_VERIFY_PARAM *param, int lenient)
{
    X509_VERIFY_PARAM_set_depth(param, CHAIN_MAX_DEPTH);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    if (lenient) {
        /* Apple's device CAs expired in 2014 and 2022 and are SHA-1
         * signed RSA-1024: accepted on this context, nowhere else. */
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_NO_CHECK_TIME);
        X509_VERIFY_PARAM_set_auth_level(param, 0);
    }
    else {
        X509_VERIFY_PARAM_set_auth_level(param, 1);
    }
}

/* Chain check. lenient: Phase 2 only. */
static int chain_ok(X509_STORE *store, X509 *leaf, STACK_OF(X509) *untrusted,
                    int lenient, const char **why)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = 0;

    *why = "out of memory";
    if (ctx && X509_STORE_CTX_init(ctx, store, leaf, untrusted)) {
        chain_params(X509_STORE_CTX_get0_param(ctx), lenient);
        ok = 1 == X509_verify_cert(ctx);
        *why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    }
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* Phase 2: the signer must be issued by a CA certificate of
 * OTADeviceCACertificateFile itself (its name, its key). Every certificate
 * there is an anchor, so a chain through other CAs would let a root in
 * that file vouch for the leaves of all its intermediates. The chain is
 * then checked against that one CA alone, without the certificates the
 * device sent. */
static int device_signer_ok(const ota_t *ota, X509 *signer, const char **why)
{
    const apr_array_header_t *cas = ota->s.device_cas;
    X509_STORE *one;
    X509 *ca = NULL;
    int i, ok = 0;

    for (i = 0; !ca && cas && i < cas->nelts; ++i) {
        if (scep_cert_issued_by(signer, APR_ARRAY_IDX(cas, i, X509 *))) {
            ca = APR_ARRAY_IDX(cas, i, X509 *);
        }
    }
    if (!ca) {
        *why = "not issued directly by a CA certificate of the file";
        return 0;
    }
    *why = "out of memory";
    if ((one = X509_STORE_new()) != NULL && X509_STORE_add_cert(one, ca)) {
        ok = chain_ok(one, signer, NULL, 1, why);
    }
    X509_STORE_free(one);
    ERR_clear_error();
    return ok;
}

/* A signer our CA issued must be valid. */
static scep_outcome_kind_t our_signer(const ota_t *ota, apr_pool_t *p,
                                      const scep_logger_t *log,
                                      const signed_msg_t *m)
{
    const char *why;

    if (chain_ok(ota->ca_store, m->signer, m->certs, 0, &why)) {
        return SCEP_OUTCOME_OK;
    }
    scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_WARNING, APR_SUCCESS, p,
                    SCEPLOGNO(5006) "OTA Phase 3 refused: the signer '%s' "
                    "was issued by our CA but is not valid: %s",
                    scep_cert_subject(p, m->signer), why);
    return SCEP_OUTCOME_FORBIDDEN;
}

/* Any other signer must be a device's. */
static scep_outcome_kind_t device_signer(const ota_t *ota, apr_pool_t *p,
                                         const scep_logger_t *log,
                                         const signed_msg_t *m)
{
    const char *why;

    if (device_signer_ok(ota, m->signer, &why)) {
        return SCEP_OUTCOME_OK;
    }
    scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_WARNING, APR_SUCCESS, p,
                    SCEPLOGNO(5007) "OTA POST refused: the signer '%s' "
                    "(issuer '%s') is neither from a device CA of "
                    "OTADeviceCACertificateFile nor from our CA: %s",
                    scep_cert_subject(p, m->signer),
                    X509_NAME_oneline(X509_get_issuer_name(m->signer),
                                      apr_palloc(p, 256), 256), why);
    return SCEP_OUTCOME_FORBIDDEN;
}

/* Our CA's certificates are Phase 3 (and must be valid); a device CA's
 * are Phase 2; anything else is refused. */
static scep_outcome_kind_t classify(const ota_t *ota, apr_pool_t *p,
                                    const scep_logger_t *log,
                                    const signed_msg_t *m, int *phase)
{
    *phase = scep_cert_issued_by(m->signer, ota->ca->cert) ? 3 : 2;
    return *phase == 3 ? our_signer(ota, p, log, m)
                       : device_signer(ota, p, log, m);
}

/* Phase 3: the signer is a valid certificate the store holds, checked
 * before its attributes are parsed; ota_phase3 looks again, with the
 * certificate's bytes. */
static scep_outcome_kind_t phase3_signer_known(apr_pool_t *p,
                                               const scep_logger_t *log,
                                               scep_store_t *st, X509 *signer)
{
    const char *serial = scep_cert_serial_hex(p, signer);
    scep_cert_rec_t *rec = NULL;
    apr_status_t rv = st->ops->cert_by_serial(st, p, serial, &rec);

    if (APR_SUCCESS != rv && !APR_STATUS_IS_NOTFOUND(rv)) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5100) "OTA Phase 3: the store failed while "
                        "looking up serial %s", serial);
        return SCEP_OUTCOME_UNAVAILABLE;
    }
    if (APR_SUCCESS != rv || rec->status != SCEP_CERT_VALID) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_WARNING, APR_SUCCESS, p,
                        SCEPLOGNO(5101) "OTA Phase 3 refused: certificate "
                        "serial %s is %s", serial, APR_SUCCESS != rv
                        ? "not in the store" : "revoked");
        return SCEP_OUTCOME_FORBIDDEN;
    }
    return SCEP_OUTCOME_OK;
}

/* Printable text of at most max bytes, or NULL. */
static const char *clean_value(apr_pool_t *p, const char *v, apr_size_t n)
{
    apr_size_t i;

    if (n > ATTR_VALUE_MAX) {
        return NULL;
    }
    for (i = 0; i < n; ++i) {
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
            return NULL;
        }
    }
    return apr_pstrmemdup(p, v, n);
}

typedef struct {
    apr_pool_t *p;
    apr_table_t *attrs;
    int count;
} attr_walk_t;

static int add_attr(void *baton, const char *key, plist_t val)
{
    attr_walk_t *w = baton;
    const char *s, *k;
    apr_size_t n;

    if (++w->count > ATTR_MAX_KEYS) {
        return 1;
    }
    for (k = key; *k && (apr_isalnum(*k) || *k == '_'); ++k) {
    }
    if (*k || k == key || k - key > ATTR_KEY_MAX) {
        return 0;                /* not an attribute name: ignored */
    }
    /* a string, or data (a Challenge given as data) */
    if ((s = ota_plist_bytes(val, &n)) != NULL
        && (s = clean_value(w->p, s, n)) != NULL) {
        apr_table_setn(w->attrs, apr_pstrdup(w->p, key), s);
    }
    return 0;
}

/* The device's attributes into attrs; 0 when there are too many. */
static int walk_attributes(apr_pool_t *p, plist_t dict, apr_table_t *attrs)
{
    attr_walk_t w;

    w.p = p;
    w.attrs = attrs;
    w.count = 0;
    return !ota_plist_dict_each(dict, add_attr, &w);
}

/* A UDID is hex with dashes; anything else is not one. */
static const char *clean_udid(const char *udid)
{
    const char *c;

    if (!udid || !*udid || strlen(udid) > 64) {
        return NULL;
    }
    for (c = udid; *c; ++c) {
        if (!apr_isalnum(*c) && *c != '-') {
            return NULL;
        }
    }
    return udid;
}

/* The signed content as a dictionary; a binary plist only when small,
 * since it nests by object references. */
static plist_t attributes_dict(apr_pool_t *p, const signed_msg_t *m)
{
    plist_t dict = NULL;

    if ((m->content_len > BINARY_ATTRIBUTES_MAX
         && ota_plist_is_binary(m->content, m->content_len))
        || APR_SUCCESS != ota_plist_parse(p, m->content, m->content_len,
                                          OTA_MAX_ATTRIBUTES, &dict)
        || !ota_plist_is(dict, PLIST_DICT)) {
        return NULL;
    }
    return dict;
}

static scep_outcome_kind_t read_attributes(apr_pool_t *p,
                                           const scep_logger_t *log,
                                           const signed_msg_t *m,
                                           ota_device_req_t *req)
{
    plist_t dict = attributes_dict(p, m);

    if (!dict) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                        SCEPLOGNO(5008) "OTA POST: the signed content is not "
                        "a property list dictionary");
        return SCEP_OUTCOME_BAD_REQUEST;
    }
    req->attrs = apr_table_make(p, 8);
    if (!walk_attributes(p, dict, req->attrs)) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                        SCEPLOGNO(5009) "OTA POST: more than %d attributes",
                        ATTR_MAX_KEYS);
        return SCEP_OUTCOME_BAD_REQUEST;
    }
    req->udid = clean_udid(apr_table_get(req->attrs, "UDID"));
    return SCEP_OUTCOME_OK;
}

/* Decodes, verifies and classifies the message, then reads its
 * attributes: the steps in order, stopping at the first refusal. */
static scep_outcome_kind_t verify_steps(const ota_t *ota, apr_pool_t *p,
                                        const scep_logger_t *log,
                                        scep_store_t *st, signed_msg_t *m,
                                        ota_device_req_t *req)
{
    scep_outcome_kind_t kind;

    if (SCEP_OUTCOME_OK != (kind = decode(p, log, m->body, m->body_len, m))
        || SCEP_OUTCOME_OK != (kind = verify_signature(p, log, m))
        || SCEP_OUTCOME_OK != (kind = classify(ota, p, log, m, &req->phase))
        || (req->phase == 3 && st && SCEP_OUTCOME_OK
            != (kind = phase3_signer_known(p, log, st, m->signer)))) {
        return kind;
    }
    req->signer = m->signer;
    return read_attributes(p, log, m, req);
}

apr_status_t ota_request_verify(const ota_t *ota, apr_pool_t *p,
                                const scep_logger_t *log, scep_store_t *st,
                                const unsigned char *body, apr_size_t len,
                                ota_device_req_t **preq,
                                scep_outcome_kind_t *kind)
{
    signed_msg_t m;
    ota_device_req_t *req = apr_pcalloc(p, sizeof(*req));

    if (len > OTA_MAX_REQUEST) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                        SCEPLOGNO(5000) "OTA POST: %" APR_SIZE_T_FMT " bytes "
                        "is over the limit of %d", len, OTA_MAX_REQUEST);
        *kind = SCEP_OUTCOME_TOO_LARGE;
        return APR_EINVAL;
    }
    memset(&m, 0, sizeof(m));
    m.body = body;
    m.body_len = len;
    if (SCEP_OUTCOME_OK != (*kind = verify_steps(ota, p, log, st, &m, req))) {
        return APR_EINVAL;
    }
    *preq = req;
    return APR_SUCCESS;
}
