/* SCEP pkiMessages: decoding, decrypting and building (RFC 8894 section 3). */

#include <string.h>

#include <apr_strings.h>
#include <openssl/asn1t.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "scep_ota/scep_pkimsg.h"
#include "scep_ota/scep_crypt.h"

#define OID_MESSAGE_TYPE    "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS      "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO       "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE    "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID  "2.16.840.1.113733.1.9.7"
#define OID_FAIL_INFO_TEXT  "1.3.6.1.5.5.7.24.1"

/* More certificates than this in one request is not a SCEP client. */
#define MAX_CERTS 16
#define MAX_TEXT 1024

typedef struct {
    const char *oid;
    int type;
    const void *data;
    int len;
} attr_t;

/* ------------------------------------------------------------------ */
/* lifetimes                                                           */

static apr_status_t obj_cleanup(void *data)
{
    ASN1_OBJECT_free(data);
    return APR_SUCCESS;
}

static ASN1_OBJECT *oid(apr_pool_t *p, const char *txt)
{
    ASN1_OBJECT *o = OBJ_txt2obj(txt, 1);

    if (o) {
        apr_pool_cleanup_register(p, o, obj_cleanup, apr_pool_cleanup_null);
    }
    return o;
}

/* Copies what a memory BIO holds into the pool. */
static apr_status_t bio_bytes(apr_pool_t *p, BIO *b, const unsigned char **out,
                              apr_size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);

    if (n < 0) {
        return APR_EGENERAL;
    }
    *out = apr_pmemdup(p, n ? data : "", (apr_size_t)n);
    *len = (apr_size_t)n;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* names and policy                                                    */

int scep_pkimsg_digest_allowed(int nid, int allow_legacy)
{
    switch (nid) {
    case NID_sha1:
    case NID_sha224:
    case NID_sha256:
    case NID_sha384:
    case NID_sha512:
        return 1;
    case NID_md5:
        return allow_legacy;
    default:
        return 0;
    }
}

int scep_pkimsg_cipher_allowed(int nid, int allow_legacy)
{
    switch (nid) {
    case NID_des_ede3_cbc:
    case NID_aes_128_cbc:
    case NID_aes_192_cbc:
    case NID_aes_256_cbc:
        return 1;
    case NID_des_cbc:
        return allow_legacy;
    default:
        return 0;
    }
}

const char *scep_pkimsg_alg_name(int nid)
{
    const char *sn = nid == NID_undef ? NULL : OBJ_nid2sn(nid);

    return sn ? sn : "?";
}

const char *scep_pkimsg_type_name(int t)
{
    switch (t) {
    case SCEP_MSG_CERTREP:    return "CertRep";
    case SCEP_MSG_RENEWALREQ: return "RenewalReq";
    case SCEP_MSG_PKCSREQ:    return "PKCSReq";
    case SCEP_MSG_CERTPOLL:   return "CertPoll";
    case SCEP_MSG_GETCERT:    return "GetCert";
    case SCEP_MSG_GETCRL:     return "GetCRL";
    default:                  return "unknown";
    }
}

const char *scep_pkimsg_status_name(int s)
{
    switch (s) {
    case SCEP_STATUS_SUCCESS: return "SUCCESS";
    case SCEP_STATUS_FAILURE: return "FAILURE";
    case SCEP_STATUS_PENDING: return "PENDING";
    default:                  return "unknown";
    }
}

const char *scep_pkimsg_fail_name(int f)
{
    switch (f) {
    case SCEP_FAIL_BADALG:          return "badAlg";
    case SCEP_FAIL_BADMESSAGECHECK: return "badMessageCheck";
    case SCEP_FAIL_BADREQUEST:      return "badRequest";
    case SCEP_FAIL_BADTIME:         return "badTime";
    case SCEP_FAIL_BADCERTID:       return "badCertId";
    default:                        return "none";
    }
}

/* ------------------------------------------------------------------ */
/* reading signed attributes                                           */

/* The single value of the single attribute with that OID, or NULL. */
static ASN1_TYPE *attr_value(apr_pool_t *p, CMS_SignerInfo *si,
                             const char *txt)
{
    ASN1_OBJECT *o = oid(p, txt);
    X509_ATTRIBUTE *at;
    int i;

    if (!o || (i = CMS_signed_get_attr_by_OBJ(si, o, -1)) < 0
        || CMS_signed_get_attr_by_OBJ(si, o, i) >= 0
        || !(at = CMS_signed_get_attr(si, i))
        || X509_ATTRIBUTE_count(at) != 1) {
        return NULL;
    }
    return X509_ATTRIBUTE_get0_type(at, 0);
}

static int printable(const unsigned char *s, int n)
{
    int i;

    for (i = 0; i < n; ++i) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* A short text attribute: PrintableString, tolerating IA5/UTF8 strings of
 * printable ASCII. NULL when absent, empty, too long or of another type. */
static const char *attr_text(apr_pool_t *p, CMS_SignerInfo *si,
                             const char *txt, int max)
{
    ASN1_TYPE *t = attr_value(p, si, txt);
    int type = t ? ASN1_TYPE_get(t) : -1;
    const ASN1_STRING *s;

    if (type != V_ASN1_PRINTABLESTRING && type != V_ASN1_IA5STRING
        && type != V_ASN1_UTF8STRING) {
        return NULL;
    }
    s = t->value.asn1_string;
    if (ASN1_STRING_length(s) < 1 || ASN1_STRING_length(s) > max
        || !printable(ASN1_STRING_get0_data(s), ASN1_STRING_length(s))) {
        return NULL;
    }
    return apr_pstrmemdup(p, (const char *)ASN1_STRING_get0_data(s),
                          (apr_size_t)ASN1_STRING_length(s));
}

/* A small decimal number attribute; -1 when absent or not a number. */
static int attr_number(apr_pool_t *p, CMS_SignerInfo *si, const char *txt)
{
    const char *s = attr_text(p, si, txt, 3);
    int n = 0;

    if (!s) {
        return -1;
    }
    for (; *s; ++s) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        n = n * 10 + (*s - '0');
    }
    return n;
}

static const unsigned char *attr_octets(apr_pool_t *p, CMS_SignerInfo *si,
                                        const char *txt, apr_size_t *len)
{
    ASN1_TYPE *t = attr_value(p, si, txt);
    const ASN1_STRING *s;

    if (!t || ASN1_TYPE_get(t) != V_ASN1_OCTET_STRING) {
        return NULL;
    }
    s = t->value.octet_string;
    if (ASN1_STRING_length(s) < 1 || ASN1_STRING_length(s) > SCEP_NONCE_MAX) {
        return NULL;
    }
    *len = (apr_size_t)ASN1_STRING_length(s);
    return apr_pmemdup(p, ASN1_STRING_get0_data(s), *len);
}

/* The signingTime attribute (RFC 5652 11.3): UTCTime or GeneralizedTime,
 * once. */
static void read_signing_time(CMS_SignerInfo *si, scep_pkimsg_t *msg)
{
    int i = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
    X509_ATTRIBUTE *at = i >= 0 ? CMS_signed_get_attr(si, i) : NULL;
    ASN1_TYPE *t = at && X509_ATTRIBUTE_count(at) == 1
                   && CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime,
                                                 i) < 0
                   ? X509_ATTRIBUTE_get0_type(at, 0) : NULL;
    int type = t ? ASN1_TYPE_get(t) : -1, days = 0, secs = 0;

    if ((type == V_ASN1_UTCTIME || type == V_ASN1_GENERALIZEDTIME)
        && ASN1_TIME_check(t->value.utctime)
        && ASN1_TIME_diff(&days, &secs, NULL, t->value.utctime)) {
        msg->has_signing_time = 1;
        msg->signing_time = apr_time_sec(apr_time_now())
                            + (apr_time_t)days * 86400 + secs;
    }
    ERR_clear_error();
}

static void read_attrs(apr_pool_t *p, CMS_SignerInfo *si, scep_pkimsg_t *msg)
{
    msg->transaction_id = attr_text(p, si, OID_TRANSACTION_ID, SCEP_TXID_MAX);
    msg->message_type = attr_number(p, si, OID_MESSAGE_TYPE);
    msg->sender_nonce = attr_octets(p, si, OID_SENDER_NONCE,
                                    &msg->sender_nonce_len);
    msg->recipient_nonce = attr_octets(p, si, OID_RECIPIENT_NONCE,
                                       &msg->recipient_nonce_len);
    msg->pki_status = attr_number(p, si, OID_PKI_STATUS);
    msg->fail_info = attr_number(p, si, OID_FAIL_INFO);
    if (msg->fail_info < 0) {
        msg->fail_info = SCEP_FAIL_NONE;
    }
    msg->fail_info_text = attr_text(p, si, OID_FAIL_INFO_TEXT, MAX_TEXT);
    read_signing_time(si, msg);
}

/* ------------------------------------------------------------------ */
/* the envelope                                                        */

/* OpenSSL 3.0's CMS API parses an EnvelopedData but has no accessor for its
 * content-encryption algorithm. These templates (RFC 5652 6.1) read that
 * one field from the same bytes, with the recipients left opaque; what they
 * read counts only when it agrees with the CMS parse (the same number of
 * recipients, the same encrypted content). */
typedef struct {
    ASN1_OBJECT *type;
    X509_ALGOR *algorithm;
    ASN1_OCTET_STRING *content;
} ENV_ECI;

typedef struct {
    ASN1_INTEGER *version;
    STACK_OF(ASN1_TYPE) *originator;
    STACK_OF(ASN1_TYPE) *recipients;
    ENV_ECI *eci;
    STACK_OF(ASN1_TYPE) *attrs;
} ENV_DATA;

typedef struct {
    ASN1_OBJECT *type;
    ENV_DATA *data;
} ENV_INFO;

ASN1_SEQUENCE(ENV_ECI) = {
    ASN1_SIMPLE(ENV_ECI, type, ASN1_OBJECT),
    ASN1_SIMPLE(ENV_ECI, algorithm, X509_ALGOR),
    ASN1_IMP_OPT(ENV_ECI, content, ASN1_OCTET_STRING, 0)
} static_ASN1_SEQUENCE_END(ENV_ECI)

ASN1_SEQUENCE(ENV_DATA) = {
    ASN1_SIMPLE(ENV_DATA, version, ASN1_INTEGER),
    ASN1_IMP_SEQUENCE_OF_OPT(ENV_DATA, originator, ASN1_ANY, 0),
    ASN1_SET_OF(ENV_DATA, recipients, ASN1_ANY),
    ASN1_SIMPLE(ENV_DATA, eci, ENV_ECI),
    ASN1_IMP_SET_OF_OPT(ENV_DATA, attrs, ASN1_ANY, 1)
} static_ASN1_SEQUENCE_END(ENV_DATA)

ASN1_SEQUENCE(ENV_INFO) = {
    ASN1_SIMPLE(ENV_INFO, type, ASN1_OBJECT),
    ASN1_EXP(ENV_INFO, data, ENV_DATA, 0)
} static_ASN1_SEQUENCE_END(ENV_INFO)

typedef struct {
    CMS_ContentInfo *cms;
    int recipients;
    int cipher_nid;
} envelope_t;

/* The content cipher of the EnvelopedData that cms is parsed from der;
 * NID_undef when the two readings differ. */
static int content_cipher(CMS_ContentInfo *cms, const unsigned char *der,
                          apr_size_t len)
{
    ENV_INFO *info = (ENV_INFO *)ASN1_item_d2i(NULL, &der, (long)len,
                                               ASN1_ITEM_rptr(ENV_INFO));
    ASN1_OCTET_STRING **content = CMS_get0_content(cms);
    int nid = NID_undef;

    if (info && OBJ_obj2nid(info->type) == NID_pkcs7_enveloped
        && sk_ASN1_TYPE_num(info->data->recipients)
           == sk_CMS_RecipientInfo_num(CMS_get0_RecipientInfos(cms))
        && content && *content && info->data->eci->content
        && 0 == ASN1_OCTET_STRING_cmp(*content, info->data->eci->content)) {
        nid = OBJ_obj2nid(info->data->eci->algorithm->algorithm);
    }
    ASN1_item_free((ASN1_VALUE *)info, ASN1_ITEM_rptr(ENV_INFO));
    return nid;
}

/* Parses an EnvelopedData in libctx: env->cms (for the caller to free),
 * its number of recipients and, unless they are too many to bother, its
 * content cipher. APR_EGENERAL when it is not one, or its cipher cannot be
 * read (or it carries no content). */
static apr_status_t open_envelope(const unsigned char *der, apr_size_t len,
                                  OSSL_LIB_CTX *libctx, envelope_t *env)
{
    const unsigned char *d = der;
    CMS_ContentInfo *cms = NULL;
    apr_status_t rv = APR_EGENERAL;

    memset(env, 0, sizeof(*env));
    if (!der || len == 0 || len > 0x7fffffff
        || !(cms = CMS_ContentInfo_new_ex(libctx, NULL))) {
        goto leave;
    }
    /* d2i into an object made with the context keeps the context; when it
     * fails it frees that object and sets cms to NULL */
    if (!d2i_CMS_ContentInfo(&cms, &d, (long)len)
        || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped) {
        goto leave;
    }
    env->recipients = sk_CMS_RecipientInfo_num(CMS_get0_RecipientInfos(cms));
    if (env->recipients <= SCEP_MAX_RECIPIENTS
        && (env->cipher_nid = content_cipher(cms, der, len)) == NID_undef) {
        goto leave;
    }
    env->cms = cms;
    cms = NULL;
    rv = APR_SUCCESS;
leave:
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rv;
}

static int oaep_md_allowed(const X509_ALGOR *md)
{
    /* absent: SHA-1, the default */
    return !md || scep_pkimsg_digest_allowed(OBJ_obj2nid(md->algorithm), 0);
}

/* RSAES-OAEP with SHA-1 or SHA-2 as the hash and in MGF1, and no label. */
static int oaep_allowed(const X509_ALGOR *alg)
{
    RSA_OAEP_PARAMS *o = ASN1_TYPE_unpack_sequence(
        ASN1_ITEM_rptr(RSA_OAEP_PARAMS), alg->parameter);
    X509_ALGOR *mgf_md = NULL;
    const ASN1_TYPE *label;
    int ok = o && oaep_md_allowed(o->hashFunc);

    if (ok && o->maskGenFunc) {
        ok = OBJ_obj2nid(o->maskGenFunc->algorithm) == NID_mgf1
             && (mgf_md = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR),
                                                    o->maskGenFunc->parameter))
             && oaep_md_allowed(mgf_md);
    }
    if (ok && o->pSourceFunc) {
        label = o->pSourceFunc->parameter;
        ok = OBJ_obj2nid(o->pSourceFunc->algorithm) == NID_pSpecified
             && label && ASN1_TYPE_get(label) == V_ASN1_OCTET_STRING
             && ASN1_STRING_length(label->value.octet_string) == 0;
    }
    X509_ALGOR_free(mgf_md);
    RSA_OAEP_PARAMS_free(o);
    return ok;
}

#define KT_NONE    -1   /* no key transport recipient (for cert) */
#define KT_REFUSED -2   /* one with a key transport not allowed */

static int ri_key_transport(CMS_RecipientInfo *ri)
{
    X509_ALGOR *alg = NULL;

    CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg);
    switch (alg ? OBJ_obj2nid(alg->algorithm) : NID_undef) {
    case NID_rsaEncryption:
        return SCEP_KT_PKCS1;
    case NID_rsaesOaep:
        return oaep_allowed(alg) ? SCEP_KT_OAEP : KT_REFUSED;
    default:
        return KT_REFUSED;
    }
}

/* The key transport of the recipient(s) CMS_decrypt will try with an RSA
 * key: the first KeyTransRecipientInfo naming cert (by
 * issuerAndSerialNumber or subjectKeyIdentifier), or without cert every one
 * of them (a client's EC key may find a key agreement recipient instead). */
static int recipient_kt(CMS_ContentInfo *cms, X509 *cert)
{
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
    CMS_RecipientInfo *ri;
    int i, kt, found = KT_NONE;

    for (i = 0; i < sk_CMS_RecipientInfo_num(ris); ++i) {
        ri = sk_CMS_RecipientInfo_value(ris, i);
        if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS
            || (cert && 0 != CMS_RecipientInfo_ktri_cert_cmp(ri, cert))) {
            continue;
        }
        kt = ri_key_transport(ri);
        if (cert || kt == KT_REFUSED) {
            return kt;
        }
        if (found == KT_NONE) {
            found = kt;
        }
    }
    return found;
}

/* What the envelope says without decrypting, for the reply and for logs:
 * the cipher, the first key transport recipient's key transport and the
 * number of recipients. */
static void peek_envelope(scep_pkimsg_t *msg)
{
    envelope_t env;
    int kt;

    if (APR_SUCCESS != open_envelope(msg->envelope, msg->envelope_len, NULL,
                                     &env)) {
        return;
    }
    msg->cipher_nid = env.cipher_nid;
    msg->recipients = env.recipients;
    if (env.recipients <= SCEP_MAX_RECIPIENTS
        && (kt = recipient_kt(env.cms, NULL)) >= 0) {
        msg->key_transport = kt;
    }
    CMS_ContentInfo_free(env.cms);
    ERR_clear_error();
}

/* ------------------------------------------------------------------ */
/* decoding                                                            */

static apr_status_t read_certs(apr_pool_t *p, CMS_ContentInfo *cms,
                               CMS_SignerInfo *si, scep_pkimsg_t *msg)
{
    STACK_OF(X509) *certs = CMS_get1_certs(cms);
    int i, n = certs ? sk_X509_num(certs) : 0;

    msg->certs = apr_array_make(p, n ? n : 1, sizeof(X509 *));
    for (i = 0; i < n; ++i) {
        X509 *x = scep_track_x509(p, sk_X509_value(certs, i));
        APR_ARRAY_PUSH(msg->certs, X509 *) = x;
        if (!msg->signer && 0 == CMS_SignerInfo_cert_cmp(si, x)) {
            msg->signer = x;
        }
    }
    sk_X509_free(certs);
    return n > MAX_CERTS ? APR_EINVAL : APR_SUCCESS;
}

static void read_content(apr_pool_t *p, CMS_ContentInfo *cms,
                         scep_pkimsg_t *msg)
{
    ASN1_OCTET_STRING **pos = CMS_get0_content(cms);

    msg->content_is_data =
        OBJ_obj2nid(CMS_get0_eContentType(cms)) == NID_pkcs7_data;
    if (pos && *pos && ASN1_STRING_length(*pos) > 0) {
        msg->envelope_len = (apr_size_t)ASN1_STRING_length(*pos);
        msg->envelope = apr_pmemdup(p, ASN1_STRING_get0_data(*pos),
                                    msg->envelope_len);
    }
}

static void verify(CMS_ContentInfo *cms, scep_pkimsg_t *msg)
{
    BIO *dcont = NULL;
    int flags = CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY;

    if (!msg->signer) {
        return;
    }
    if (CMS_is_detached(cms)) {
        dcont = BIO_new_mem_buf("", 0);
    }
    msg->signature_ok = 1 == CMS_verify(cms, NULL, NULL, dcont, NULL, flags);
    BIO_free(dcont);
}

apr_status_t scep_pkimsg_parse(apr_pool_t *p, const unsigned char *der,
                               apr_size_t len, scep_pkimsg_t **pmsg)
{
    scep_pkimsg_t *msg = apr_pcalloc(p, sizeof(*msg));
    const unsigned char *d = der;
    CMS_ContentInfo *cms = NULL;
    STACK_OF(CMS_SignerInfo) *sis;
    CMS_SignerInfo *si;
    X509_ALGOR *dig;
    apr_status_t rv = APR_EINVAL;

    msg->message_type = msg->pki_status = msg->recipients = -1;
    msg->fail_info = SCEP_FAIL_NONE;
    if (len == 0 || len > 0x7fffffff
        || !(cms = scep_track_cms(p, d2i_CMS_ContentInfo(NULL, &d, (long)len)))
        || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed
        || !(sis = CMS_get0_SignerInfos(cms))
        || sk_CMS_SignerInfo_num(sis) != 1) {
        goto leave;
    }
    si = sk_CMS_SignerInfo_value(sis, 0);
    read_attrs(p, si, msg);
    if (!msg->transaction_id || !msg->sender_nonce
        || APR_SUCCESS != read_certs(p, cms, si, msg)) {
        goto leave;
    }
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
    msg->digest_nid = dig ? OBJ_obj2nid(dig->algorithm) : NID_undef;
    read_content(p, cms, msg);
    if (msg->envelope) {
        peek_envelope(msg);
    }
    verify(cms, msg);
    *pmsg = msg;
    rv = APR_SUCCESS;
leave:
    ERR_clear_error();
    return rv;
}

/* ------------------------------------------------------------------ */
/* decrypting                                                          */

apr_status_t scep_pkimsg_decrypt_as(apr_pool_t *p, scep_pkimsg_t *msg,
                                    X509 *cert, EVP_PKEY *key,
                                    int allow_legacy)
{
    envelope_t env;
    BIO *out = NULL;
    apr_status_t rv;
    int kt;

    /* counted when the message was parsed: no second parse for a flood */
    if (msg->recipients > SCEP_MAX_RECIPIENTS) {
        return APR_EINVAL;
    }
    rv = open_envelope(msg->envelope, msg->envelope_len,
                       scep_crypt_libctx(allow_legacy), &env);
    if (APR_SUCCESS != rv) {
        return rv;
    }
    if (env.recipients > SCEP_MAX_RECIPIENTS) {
        rv = APR_EINVAL;
    }
    else if (!scep_pkimsg_cipher_allowed(env.cipher_nid, allow_legacy)) {
        rv = APR_ENOTIMPL;
    }
    else if ((kt = recipient_kt(env.cms, cert)) == KT_REFUSED) {
        rv = APR_ENOTIMPL;
    }
    else if (kt == KT_NONE && cert) {
        rv = APR_EGENERAL;      /* public knowledge: no RSA work for it */
    }
    /* with cert, OpenSSL decrypts the first key transport recipient that
     * names it (the one recipient_kt read); whatever fails there goes on
     * with a random key and the content fails to decrypt or to parse
     * later, which hides where it failed (the MMA countermeasure) */
    else if ((out = BIO_new(BIO_s_mem()))
             && 1 == CMS_decrypt(env.cms, key, cert, NULL, out, CMS_BINARY)) {
        msg->cipher_nid = env.cipher_nid;
        msg->key_transport = kt >= 0 ? kt : msg->key_transport;
        rv = bio_bytes(p, out, &msg->data, &msg->data_len);
    }
    else {
        rv = APR_EGENERAL;
    }
    BIO_free(out);
    CMS_ContentInfo_free(env.cms);
    ERR_clear_error();
    return rv;
}

apr_status_t scep_pkimsg_decrypt(apr_pool_t *p, scep_pkimsg_t *msg,
                                 EVP_PKEY *key, int allow_legacy)
{
    return scep_pkimsg_decrypt_as(p, msg, NULL, key, allow_legacy);
}

/* ------------------------------------------------------------------ */
/* building                                                            */

/* What to put in an envelope, and how. */
typedef struct {
    OSSL_LIB_CTX *libctx;
    const unsigned char *content;
    apr_size_t len;
    X509 *to;
    int cipher_nid;
    int key_transport;
    int keyid;                  /* name "to" by subjectKeyIdentifier */
} seal_t;

static apr_status_t envelope(apr_pool_t *p, const seal_t *s,
                             const unsigned char **der, apr_size_t *len)
{
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(s->libctx, OBJ_nid2sn(s->cipher_nid),
                                          NULL);
    int oaep = s->key_transport == SCEP_KT_OAEP
               && EVP_PKEY_is_a(X509_get0_pubkey(s->to), "RSA");
    int flags = CMS_BINARY | CMS_PARTIAL;
    int rflags = flags | (oaep ? CMS_KEY_PARAM : 0)
                 | (s->keyid ? CMS_USE_KEYID : 0);
    CMS_ContentInfo *cms = NULL;
    CMS_RecipientInfo *ri;
    BIO *in = NULL;
    apr_status_t rv = APR_EGENERAL;

    if (!cipher
        || !(cms = CMS_encrypt_ex(NULL, NULL, cipher, flags, s->libctx, NULL))
        || !(ri = CMS_add1_recipient_cert(cms, s->to, rflags))
        || (oaep && EVP_PKEY_CTX_set_rsa_padding(
                        CMS_RecipientInfo_get0_pkey_ctx(ri),
                        RSA_PKCS1_OAEP_PADDING) <= 0)
        || !(in = BIO_new_mem_buf(s->content, (int)s->len))
        || 1 != CMS_final(cms, in, NULL, CMS_BINARY)) {
        goto leave;
    }
    rv = scep_cms_der(p, cms, der, len);
leave:
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    EVP_CIPHER_free(cipher);
    ERR_clear_error();
    return rv;
}

static int add_attrs(apr_pool_t *p, CMS_SignerInfo *si, const attr_t *attrs,
                     int n)
{
    ASN1_OBJECT *o;
    int i;

    for (i = 0; i < n; ++i) {
        if (!attrs[i].data) {
            continue;
        }
        if (!(o = oid(p, attrs[i].oid))
            || !CMS_signed_add1_attr_by_OBJ(si, o, attrs[i].type,
                                            attrs[i].data, attrs[i].len)) {
            return 0;
        }
    }
    return 1;
}

/* A signingTime other than now (CMS adds now when there is none). */
static int add_signing_time(CMS_SignerInfo *si, apr_time_t when)
{
    ASN1_TIME *t = when > 0 ? ASN1_TIME_set(NULL, (time_t)when) : NULL;
    int ok = when <= 0 || (t && CMS_signed_add1_attr_by_NID(
                              si, NID_pkcs9_signingTime, t->type, t, -1));

    ASN1_TIME_free(t);
    return ok;
}

/* SignedData over content (absent when NULL) with extra signed attrs,
 * signed at when (0: now). */
static apr_status_t sign(apr_pool_t *p, OSSL_LIB_CTX *libctx, X509 *cert,
                         EVP_PKEY *key, int md_nid,
                         const unsigned char *content, apr_size_t clen,
                         const attr_t *attrs, int nattrs, apr_time_t when,
                         const unsigned char **der, apr_size_t *len)
{
    const EVP_MD *md = EVP_get_digestbynid(md_nid);
    int flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si;
    BIO *in = NULL;
    apr_status_t rv = APR_EGENERAL;

    if (!md || !(cms = CMS_sign_ex(NULL, NULL, NULL, NULL, flags, libctx,
                                   NULL))
        || !CMS_set_detached(cms, content == NULL)
        || !(si = CMS_add1_signer(cms, cert, key, md, flags))
        || !add_attrs(p, si, attrs, nattrs)
        || !add_signing_time(si, when)
        || !(in = BIO_new_mem_buf(content ? (const void *)content : "",
                                  (int)clen))
        || 1 != CMS_final(cms, in, NULL, CMS_BINARY)) {
        goto leave;
    }
    rv = scep_cms_der(p, cms, der, len);
leave:
    BIO_free(in);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rv;
}

static const char *decimal(apr_pool_t *p, int n)
{
    return apr_itoa(p, n);
}

static unsigned char *fresh_nonce(apr_pool_t *p)
{
    unsigned char *n = apr_palloc(p, SCEP_NONCE_LEN);

    return RAND_bytes(n, SCEP_NONCE_LEN) == 1 ? n : NULL;
}

apr_status_t scep_certrep_build(apr_pool_t *p, const scep_ca_t *ca,
                                const scep_certrep_t *rep,
                                const unsigned char **der, apr_size_t *len)
{
    const unsigned char *env = NULL, *nonce = fresh_nonce(p);
    apr_size_t envlen = 0;
    const char *type = decimal(p, SCEP_MSG_CERTREP);
    const char *status = decimal(p, rep->pki_status);
    const char *fail = NULL, *text = NULL;
    int failure = rep->pki_status == SCEP_STATUS_FAILURE;
    OSSL_LIB_CTX *libctx = scep_crypt_libctx(rep->allow_legacy);
    seal_t seal;
    apr_status_t rv;
    attr_t attrs[7];

    if (!nonce) {
        return APR_EGENERAL;
    }
    if (failure) {
        fail = decimal(p, rep->fail_info < 0 ? SCEP_FAIL_BADREQUEST
                                             : rep->fail_info);
        text = rep->fail_info_text;
    }
    seal = (seal_t){ libctx, rep->content, rep->content_len, rep->recipient,
                     rep->cipher_nid != NID_undef ? rep->cipher_nid
                                                  : NID_aes_128_cbc,
                     rep->key_transport, 0 };
    if (rep->pki_status == SCEP_STATUS_SUCCESS
        && APR_SUCCESS != (rv = envelope(p, &seal, &env, &envlen))) {
        return rv;
    }
    attrs[0] = (attr_t){ OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING,
                         rep->transaction_id, (int)strlen(rep->transaction_id) };
    attrs[1] = (attr_t){ OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, type,
                         (int)strlen(type) };
    attrs[2] = (attr_t){ OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, status,
                         (int)strlen(status) };
    attrs[3] = (attr_t){ OID_FAIL_INFO, V_ASN1_PRINTABLESTRING, fail,
                         fail ? (int)strlen(fail) : 0 };
    attrs[4] = (attr_t){ OID_FAIL_INFO_TEXT, V_ASN1_UTF8STRING, text,
                         text ? (int)strlen(text) : 0 };
    attrs[5] = (attr_t){ OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce,
                         SCEP_NONCE_LEN };
    attrs[6] = (attr_t){ OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING,
                         rep->recipient_nonce, (int)rep->recipient_nonce_len };
    return sign(p, libctx, ca->sign_cert, ca->sign_key,
                rep->digest_nid != NID_undef ? rep->digest_nid : NID_sha256,
                env, envlen, attrs, 7, 0, der, len);
}

apr_status_t scep_request_build(apr_pool_t *p, const scep_request_t *req,
                                const unsigned char **der, apr_size_t *len)
{
    const unsigned char *env, *nonce = req->sender_nonce;
    apr_size_t envlen, nlen = req->sender_nonce_len;
    const char *type = decimal(p, req->message_type);
    /* a client sends what it is asked to: single DES too, once enabled */
    seal_t seal = { scep_crypt_libctx(1), req->data, req->data_len,
                    req->recipient, req->cipher_nid, req->key_transport,
                    req->recipient_keyid };
    apr_status_t rv;
    attr_t attrs[3];

    if (!nonce) {
        nonce = fresh_nonce(p);
        nlen = SCEP_NONCE_LEN;
    }
    rv = envelope(p, &seal, &env, &envlen);
    if (APR_SUCCESS != rv || !nonce) {
        return APR_EGENERAL;
    }
    attrs[0] = (attr_t){ OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING,
                         req->transaction_id,
                         (int)strlen(req->transaction_id) };
    attrs[1] = (attr_t){ OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, type,
                         (int)strlen(type) };
    attrs[2] = (attr_t){ OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce,
                         (int)nlen };
    return sign(p, seal.libctx, req->signer, req->signer_key, req->digest_nid,
                env, envlen, attrs, 3, req->signing_time, der, len);
}

apr_status_t scep_next_ca_build(apr_pool_t *p, const scep_ca_t *ca,
                                const apr_array_header_t *next_certs,
                                const unsigned char **der, apr_size_t *len)
{
    const unsigned char *inner;
    apr_size_t ilen;
    apr_status_t rv;

    rv = scep_degenerate_der(p, next_certs, NULL, &inner, &ilen);
    if (APR_SUCCESS == rv) {
        rv = sign(p, NULL, ca->sign_cert, ca->sign_key, NID_sha256, inner,
                  ilen, NULL, 0, 0, der, len);
    }
    return rv;
}
