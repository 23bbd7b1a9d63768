/* The OCSP responder: a DER OCSPRequest in, a signed OCSPResponse out,
 * every status read from the store. */

#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_ocsp.h"

/* Why cert with key cannot sign the CA's OCSP responses, or NULL. */
static const char *signer_problem(apr_pool_t *p, const scep_ca_t *ca,
                                  X509 *cert, EVP_PKEY *key)
{
    if (!scep_cert_issued_by(cert, ca->cert)) {
        return apr_psprintf(p, "'%s' is not issued by the CA '%s'",
                            scep_cert_subject(p, cert),
                            scep_cert_subject(p, ca->cert));
    }
    if (!(X509_get_extension_flags(cert) & EXFLAG_XKUSAGE)
        || !(X509_get_extended_key_usage(cert) & XKU_OCSP_SIGN)) {
        return apr_psprintf(p, "'%s' lacks the extendedKeyUsage "
                            "OCSPSigning", scep_cert_subject(p, cert));
    }
    if (!scep_key_matches_cert(key, cert)) {
        return apr_psprintf(p, "the key does not match '%s'",
                            scep_cert_subject(p, cert));
    }
    return NULL;
}

/* A signer without id-pkix-ocsp-nocheck works, but is worth a warning. */
static const char *nocheck_warning(apr_pool_t *p, X509 *cert)
{
    if (X509_get_ext_by_NID(cert, NID_id_pkix_OCSP_noCheck, -1) < 0) {
        return apr_psprintf(p, "'%s' has no id-pkix-ocsp-nocheck: "
                            "relying parties may look for its own "
                            "revocation status", scep_cert_subject(p, cert));
    }
    return NULL;
}

apr_status_t scep_ocsp_signer_check(apr_pool_t *p, const scep_ca_t *ca,
                                    X509 *cert, EVP_PKEY *key,
                                    const char **err, const char **warning)
{
    *warning = NULL;
    if ((*err = signer_problem(p, ca, cert, key))) {
        return APR_EINVAL;
    }
    *warning = nocheck_warning(p, cert);
    ERR_clear_error();
    return APR_SUCCESS;
}

static apr_status_t free_resp(void *r)
{
    OCSP_RESPONSE_free(r);
    return APR_SUCCESS;
}

static apr_status_t free_req(void *r)
{
    OCSP_REQUEST_free(r);
    return APR_SUCCESS;
}

static apr_status_t free_basic(void *b)
{
    OCSP_BASICRESP_free(b);
    return APR_SUCCESS;
}

static apr_status_t free_certid(void *id)
{
    OCSP_CERTID_free(id);
    return APR_SUCCESS;
}

static apr_status_t free_time(void *t)
{
    ASN1_TIME_free(t);
    return APR_SUCCESS;
}

static ASN1_TIME *track_time(apr_pool_t *p, ASN1_TIME *t)
{
    if (t) {
        apr_pool_cleanup_register(p, t, free_time, apr_pool_cleanup_null);
    }
    return t;
}

/* Encodes a response (tracked by p) into ans. */
static apr_status_t encode(apr_pool_t *p, OCSP_RESPONSE *resp,
                           scep_ocsp_answer_t *ans)
{
    unsigned char *der = NULL, *out;
    int len;

    if (!resp) {
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(p, resp, free_resp, apr_pool_cleanup_null);
    if ((len = i2d_OCSP_RESPONSE(resp, &der)) <= 0) {
        return APR_ENOMEM;
    }
    out = apr_pmemdup(p, der, (apr_size_t)len);
    OPENSSL_free(der);
    ans->der = out;
    ans->len = (apr_size_t)len;
    ans->status = OCSP_response_status(resp);
    return APR_SUCCESS;
}

/* An unsigned error response: malformedRequest, tryLater... */
static apr_status_t refuse(apr_pool_t *p, int status, scep_ocsp_answer_t *ans)
{
    ERR_clear_error();
    return encode(p, OCSP_response_create(status, NULL), ans);
}

/* The CertID our CA would have with the same hash algorithm, to compare
 * issuer name and key hashes with; NULL for an algorithm we do not know. */
static OCSP_CERTID *our_id(apr_pool_t *p, const scep_ca_t *ca,
                           OCSP_CERTID *cid)
{
    ASN1_OBJECT *alg = NULL;
    const EVP_MD *md;
    OCSP_CERTID *id;

    OCSP_id_get0_info(NULL, &alg, NULL, NULL, cid);
    if (!alg || !(md = EVP_get_digestbyobj(alg))
        || !(id = OCSP_cert_id_new(md, X509_get_subject_name(ca->cert),
                                   X509_get0_pubkey_bitstr(ca->cert),
                                   NULL))) {
        return NULL;
    }
    apr_pool_cleanup_register(p, id, free_certid, apr_pool_cleanup_null);
    return id;
}

typedef struct one_status_t {
    int status;                  /* V_OCSP_CERTSTATUS_* */
    int reason;                  /* OCSP_REVOKED_STATUS_* or -1 */
    apr_time_t revoked_at;
} one_status_t;

/* The serial number cid asks about, in hex, into *serial_hex; 1 when
 * cid names our CA as its issuer, so the store may say. */
static int ours_to_say(apr_pool_t *p, const scep_ca_t *ca, OCSP_CERTID *cid,
                       const char **serial_hex)
{
    OCSP_CERTID *ours = our_id(p, ca, cid);
    ASN1_INTEGER *serial = NULL;

    OCSP_id_get0_info(NULL, NULL, NULL, &serial, cid);
    *serial_hex = serial ? scep_serial_hex(p, serial) : NULL;
    return ours && !OCSP_id_issuer_cmp(ours, cid) && *serial_hex;
}

/* The status the store's record of a certificate gives. */
static void status_of_rec(const scep_cert_rec_t *rec, one_status_t *out)
{
    if (rec->status == SCEP_CERT_REVOKED) {
        out->status = V_OCSP_CERTSTATUS_REVOKED;
        out->reason = rec->revocation_reason > 0 ? rec->revocation_reason
                                                 : OCSP_REVOKED_STATUS_NOSTATUS;
        out->revoked_at = rec->revoked_at;
    }
    else {
        out->status = V_OCSP_CERTSTATUS_GOOD;
    }
}

/* The status of one CertID; APR_SUCCESS, or a store failure. */
static apr_status_t lookup(apr_pool_t *p, const scep_ocsp_cfg_t *cfg,
                           scep_store_t *st, OCSP_CERTID *cid,
                           const char **serial_hex, one_status_t *out)
{
    scep_cert_rec_t *rec;
    apr_status_t rv;

    out->status = V_OCSP_CERTSTATUS_UNKNOWN;
    out->reason = OCSP_REVOKED_STATUS_NOSTATUS;
    if (!ours_to_say(p, cfg->ca, cid, serial_hex)) {
        return APR_SUCCESS; /* another issuer's, or not ours to say */
    }
    rv = st->ops->cert_by_serial(st, p, *serial_hex, &rec);
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        return APR_SUCCESS;
    }
    if (APR_SUCCESS != rv) {
        return rv;
    }
    status_of_rec(rec, out);
    return APR_SUCCESS;
}

static int add_status(apr_pool_t *p, OCSP_BASICRESP *basic, OCSP_CERTID *cid,
                      const one_status_t *s, ASN1_TIME *now, ASN1_TIME *next)
{
    ASN1_TIME *revtime = NULL;

    if (s->status == V_OCSP_CERTSTATUS_REVOKED
        && !(revtime = track_time(p, ASN1_TIME_set(
                                      NULL, (time_t)apr_time_sec(
                                                s->revoked_at))))) {
        return 0;
    }
    return OCSP_basic_add1_status(basic, cid, s->status, s->reason, revtime,
                                  now, next) != NULL;
}

static void count(scep_ocsp_answer_t *ans, int status)
{
    if (status == V_OCSP_CERTSTATUS_GOOD) {
        ans->good++;
    }
    else if (status == V_OCSP_CERTSTATUS_REVOKED) {
        ans->revoked++;
    }
    else {
        ans->unknown++;
    }
}

/* One status per CertID asked about; -1 when the store failed, 0 on an
 * encoding failure, 1 done. */
static int add_statuses(apr_pool_t *p, const scep_logger_t *log,
                        const scep_ocsp_cfg_t *cfg, scep_store_t *st,
                        OCSP_REQUEST *req, OCSP_BASICRESP *basic,
                        scep_ocsp_answer_t *ans)
{
    int i, n = OCSP_request_onereq_count(req);
    ASN1_TIME *now = track_time(p, X509_gmtime_adj(NULL, 0));
    ASN1_TIME *next = track_time(p, X509_gmtime_adj(NULL,
                                                    SCEP_OCSP_VALIDITY));
    const char *serial;
    one_status_t s;
    apr_status_t rv;

    if (!now || !next) {
        return 0;
    }
    for (i = 0; i < n; ++i) {
        OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req,
                                                                        i));
        if (APR_SUCCESS != (rv = lookup(p, cfg, st, cid, &serial, &s))) {
            scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                            SCEPLOGNO(6050) "OCSP: the store did not answer "
                            "for serial %s", serial);
            return -1;
        }
        if (!add_status(p, basic, cid, &s, now, next)) {
            return 0;
        }
        if (i == 0) {
            ans->first_serial = serial;
        }
        count(ans, s.status);
    }
    return 1;
}

/* The request, if it is one DER OCSPRequest and nothing else, asking
 * about 1 to SCEP_OCSP_MAX_IDS certificates. */
static OCSP_REQUEST *parse(apr_pool_t *p, const unsigned char *der,
                           apr_size_t len)
{
    const unsigned char *in = der;
    OCSP_REQUEST *req;
    int n;

    if (len == 0 || len > SCEP_OCSP_MAX_REQUEST
        || !(req = d2i_OCSP_REQUEST(NULL, &in, (long)len))) {
        return NULL;
    }
    apr_pool_cleanup_register(p, req, free_req, apr_pool_cleanup_null);
    n = OCSP_request_onereq_count(req);
    if (in != der + len || n < 1 || n > SCEP_OCSP_MAX_IDS) {
        return NULL;
    }
    return req;
}

/* Echoes the request's nonce and signs with the configured signer. */
static int sign_basic(OCSP_BASICRESP *basic, OCSP_REQUEST *req,
                      const scep_ocsp_cfg_t *cfg)
{
    return OCSP_copy_nonce(basic, req) > 0
           && OCSP_basic_sign(basic, cfg->signer, cfg->signer_key,
                              EVP_sha256(), NULL,
                              cfg->delegated ? 0 : OCSP_NOCERTS);
}

apr_status_t scep_ocsp_respond(apr_pool_t *p, const scep_logger_t *log,
                               const scep_ocsp_cfg_t *cfg, scep_store_t *st,
                               const unsigned char *der, apr_size_t len,
                               scep_ocsp_answer_t *ans)
{
    OCSP_REQUEST *req;
    OCSP_BASICRESP *basic;
    int done;

    memset(ans, 0, sizeof(*ans));
    if (!(req = parse(p, der, len))) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, 0, p,
                        SCEPLOGNO(6051) "OCSP: malformed request (%"
                        APR_SIZE_T_FMT " bytes)", len);
        return refuse(p, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, ans);
    }
    if (!(basic = OCSP_BASICRESP_new())) {
        return refuse(p, OCSP_RESPONSE_STATUS_INTERNALERROR, ans);
    }
    apr_pool_cleanup_register(p, basic, free_basic, apr_pool_cleanup_null);
    if ((done = add_statuses(p, log, cfg, st, req, basic, ans)) < 0) {
        return refuse(p, OCSP_RESPONSE_STATUS_TRYLATER, ans);
    }
    if (!done || !sign_basic(basic, req, cfg)) {
        scep_log_openssl(log, SCEP_LOG_MARK, SCEP_LOG_ERR, p,
                         SCEPLOGNO(6052) "OCSP: cannot build the response");
        return refuse(p, OCSP_RESPONSE_STATUS_INTERNALERROR, ans);
    }
    return encode(p, OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL,
                                          basic), ans);
}
