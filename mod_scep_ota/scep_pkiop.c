/* One SCEP PKIOperation: decode, authorize, issue, answer. */

#include <string.h>

#include <apr_strings.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>

#include "scep_ota/scep_pkiop.h"
#include "scep_ota/scep_pkimsg.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_crl.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_challenge.h"

#define ISSUE_TRIES 4

/* The one answer to every failure to decrypt or decode the envelope and
 * what it carries, so that none of them can be told apart. */
#define TEXT_UNDECODABLE "the message content could not be decoded"

typedef struct {
    apr_pool_t *p;
    const scep_logger_t *log;
    const scep_pkiop_cfg_t *cfg;
    scep_store_t *store;
    const char *client;          /* the client's address, or NULL */
    scep_pkimsg_t *msg;
    scep_certrep_t rep;
    const char *tag;
    const char *serial;
    X509 *cert;                  /* the certificate answered, if any */
    const char *udid;            /* the device it was issued for */
    apr_array_header_t *revoked; /* serials it revoked as superseded */
} op_t;

/* A certificate this request revoked (superseded), for the audit trail. */
static void note_revoked(op_t *op, const char *serial)
{
    if (!op->revoked) {
        op->revoked = apr_array_make(op->p, 2, sizeof(const char *));
    }
    APR_ARRAY_PUSH(op->revoked, const char *) = apr_pstrdup(op->p, serial);
}

/* ------------------------------------------------------------------ */
/* outcomes                                                            */

static void fail(op_t *op, int fail_info, const char *text)
{
    op->rep.pki_status = SCEP_STATUS_FAILURE;
    op->rep.fail_info = fail_info;
    op->rep.fail_info_text = text;
    op->tag = "failed";
    scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_DEBUG, 0, op->p,
                    SCEPLOGNO(2000) "%s txid=%s: FAILURE %s: %s",
                    scep_pkimsg_type_name(op->msg->message_type),
                    op->msg->transaction_id, scep_pkimsg_fail_name(fail_info),
                    text);
}

static void pending(op_t *op)
{
    op->rep.pki_status = SCEP_STATUS_PENDING;
    op->tag = "pending";
}

/* SUCCESS carrying a degenerate SignedData, encrypted to the requester. */
static void succeed(op_t *op, const apr_array_header_t *certs,
                    const apr_array_header_t *crls, const char *tag)
{
    if (APR_SUCCESS != scep_degenerate_der(op->p, certs, crls,
                                           &op->rep.content,
                                           &op->rep.content_len)) {
        fail(op, SCEP_FAIL_BADREQUEST, "the reply could not be built");
        return;
    }
    op->rep.pki_status = SCEP_STATUS_SUCCESS;
    op->rep.recipient = op->msg->signer;
    op->tag = tag;
}

static void succeed_cert(op_t *op, X509 *cert, const char *tag)
{
    apr_array_header_t *certs = apr_array_make(op->p, 1, sizeof(X509 *));

    APR_ARRAY_PUSH(certs, X509 *) = cert;
    op->serial = scep_cert_serial_hex(op->p, cert);
    op->cert = cert;
    succeed(op, certs, NULL, tag);
}

static void succeed_der(op_t *op, const scep_cert_rec_t *rec, const char *tag)
{
    const unsigned char *d = rec->der;
    X509 *x = scep_track_x509(op->p, d2i_X509(NULL, &d, (long)rec->der_len));

    ERR_clear_error();
    if (!x) {
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_ERR, 0, op->p,
                        SCEPLOGNO(2001) "store: certificate %s does not "
                        "decode", rec->serial);
        fail(op, SCEP_FAIL_BADREQUEST, "the certificate could not be read");
        return;
    }
    succeed_cert(op, x, tag);
}

static void store_failed(op_t *op, apr_status_t rv, const char *what)
{
    scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, op->p,
                    SCEPLOGNO(2002) "store: %s failed (txid %s)", what,
                    op->msg->transaction_id);
    fail(op, SCEP_FAIL_BADREQUEST, "the server could not complete the "
         "request; try again later");
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static apr_time_t asn1_time(const ASN1_TIME *t)
{
    int days = 0, secs = 0;

    if (!ASN1_TIME_diff(&days, &secs, NULL, t)) {
        ERR_clear_error();
        return 0;
    }
    return apr_time_from_sec(apr_time_sec(apr_time_now())
                             + (apr_time_t)days * 86400 + secs);
}

static int lifetime(const scep_pkiop_cfg_t *cfg)
{
    return cfg->lifetime_days > 0 ? cfg->lifetime_days
                                  : SCEP_DEFAULT_LIFETIME_DAYS;
}

static int min_key(const scep_pkiop_cfg_t *cfg)
{
    return cfg->min_key_size > 0 ? cfg->min_key_size
                                 : SCEP_DEFAULT_MIN_KEY_SIZE;
}

static apr_status_t fill_rec(op_t *op, X509 *x, const char *key_hash,
                             const char *txid, const scep_grant_t *plan,
                             scep_cert_rec_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->serial = scep_cert_serial_hex(op->p, x);
    rec->subject = scep_name_rfc2253(op->p, X509_get_subject_name(x));
    rec->transaction_id = txid;
    rec->key_hash = key_hash;
    rec->not_before = asn1_time(X509_get0_notBefore(x));
    rec->not_after = asn1_time(X509_get0_notAfter(x));
    rec->status = SCEP_CERT_VALID;
    rec->revocation_reason = -1;
    rec->origin = plan->origin;
    rec->request_txid = op->msg->transaction_id;
    rec->udid = plan->udid;
    rec->enrolled_by = plan->user;
    if (!rec->serial || !rec->subject) {
        return APR_EGENERAL;
    }
    return scep_cert_der(op->p, x, &rec->der, &rec->der_len);
}

/* What the request already made, found after its insert clashed: 1 when
 * it answered. The same transactionID and key, or the same origin with
 * the same key and request, is the same request; another request for a
 * renewal already made is refused. */
static int answer_clash(op_t *op, const char *txid, const char *key_hash,
                        const scep_grant_t *plan)
{
    scep_cert_rec_t *prev;

    if (txid && APR_SUCCESS == op->store->ops->cert_by_transaction(
            op->store, op->p, txid, key_hash, &prev)) {
        succeed_der(op, prev, "repeated");
        return 1;
    }
    if (!plan->origin || APR_SUCCESS != op->store->ops->cert_by_origin(
            op->store, op->p, plan->origin, &prev)) {
        return 0;
    }
    if (!strncmp(plan->origin, SCEP_ORIGIN_PENDING,
                 strlen(SCEP_ORIGIN_PENDING))
        || (prev->key_hash && !strcmp(prev->key_hash, key_hash)
            && prev->request_txid
            && !strcmp(prev->request_txid, op->msg->transaction_id))) {
        succeed_der(op, prev, "repeated");
    }
    else {
        fail(op, SCEP_FAIL_BADREQUEST, "this certificate was renewed "
             "already");
    }
    return 1;
}

/* A renewal supersedes the certificate it renews. */
static void supersede(op_t *op, const scep_grant_t *plan, const char *by)
{
    const char *old = plan->origin;
    apr_size_t n = strlen(SCEP_ORIGIN_RENEWAL);
    apr_status_t rv;

    if (!old || strncmp(old, SCEP_ORIGIN_RENEWAL, n)) {
        return;
    }
    old += n;
    rv = op->store->ops->cert_supersede(op->store, op->p, old, by);
    if (APR_SUCCESS == rv && op->cfg->revoke_superseded) {
        rv = op->store->ops->cert_revoke(op->store, op->p, old,
                                         SCEP_REASON_SUPERSEDED,
                                         apr_time_now());
        if (APR_SUCCESS == rv) {
            note_revoked(op, old);
        }
    }
    if (APR_SUCCESS != rv && !APR_STATUS_IS_EEXIST(rv)) {
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_WARNING, rv, op->p,
                        SCEPLOGNO(2011) "store: could not mark certificate "
                        "%s superseded by %s", old, by);
    }
}

/* Both unknown, or the same user. */
static int same_user(const char *a, const char *b)
{
    return (!a || !*a) ? (!b || !*b) : (b && !strcmp(a, b));
}

/* A device that enrolled again through OTA (the plan's UDID, bound by
 * the server in Phase 2) keeps only its newest certificate: those of the
 * device recorded before the one just issued, by the same user of Phase 1
 * (or both without one), are revoked as superseded.
 * Records come oldest first in the same order to every process, so two
 * racing enrollments leave the later one valid, never neither. */
static void revoke_previous(op_t *op, const scep_grant_t *plan,
                            const char *serial)
{
    apr_array_header_t *recs;
    const scep_cert_rec_t *r;
    apr_status_t rv;
    int i, n;

    if (!op->cfg->revoke_previous || !plan->udid) {
        return;
    }
    if (APR_SUCCESS != (rv = op->store->ops->cert_by_udid(
                            op->store, op->p, plan->udid, &recs))) {
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_WARNING, rv, op->p,
                        SCEPLOGNO(6150) "store: could not look up the older "
                        "certificates of device %s", plan->udid);
        return;
    }
    for (n = 0; n < recs->nelts; ++n) {
        if (!strcmp(APR_ARRAY_IDX(recs, n, scep_cert_rec_t *)->serial,
                    serial)) {
            break;
        }
    }
    for (i = 0; i < n && i < recs->nelts; ++i) {
        r = APR_ARRAY_IDX(recs, i, scep_cert_rec_t *);
        if (!same_user(r->enrolled_by, plan->user)) {
            /* a UDID is what the device says: another user's
             * certificates are not its to end */
            scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_INFO, 0, op->p,
                            SCEPLOGNO(6153) "certificate %s of device %s "
                            "kept: enrolled by %s, not %s", r->serial,
                            plan->udid, r->enrolled_by ? r->enrolled_by
                                                       : "nobody known",
                            plan->user ? plan->user : "nobody known");
            continue;
        }
        rv = op->store->ops->cert_revoke(op->store, op->p, r->serial,
                                         SCEP_REASON_SUPERSEDED,
                                         apr_time_now());
        if (APR_SUCCESS == rv) {
            note_revoked(op, r->serial);
            scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_INFO, 0, op->p,
                            SCEPLOGNO(6151) "revoked certificate %s of device "
                            "%s: superseded by %s (OTARevokePrevious)",
                            r->serial, plan->udid, serial);
        }
        else if (!APR_STATUS_IS_EEXIST(rv)) {
            scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_WARNING, rv,
                            op->p, SCEPLOGNO(6152) "store: could not revoke "
                            "certificate %s of device %s", r->serial,
                            plan->udid);
        }
    }
}

/* Issues and records a certificate with the names of the plan; the record
 * is committed before any reply is built. A serial collision is retried
 * with a new serial; a concurrent retry of the same request returns what
 * it recorded. txid is the transactionID recorded with it (NULL when an
 * earlier certificate of the same key already holds it: a renewal that
 * kept key and ID). */
static apr_status_t issue(op_t *op, X509_REQ *req, X509_PUBKEY *spki,
                          const char *key_hash, const char *txid,
                          const scep_grant_t *plan, const char *tag)
{
    scep_cert_rec_t rec;
    X509 *x = NULL;
    apr_status_t rv = APR_EGENERAL;
    int i;

    for (i = 0; i < ISSUE_TRIES; ++i) {
        rv = scep_issue_cert(op->p, op->cfg->ca, req, spki, plan->sans,
                             lifetime(op->cfg), &x);
        if (APR_EINVAL == rv) {
            fail(op, SCEP_FAIL_BADREQUEST, "the request has neither a "
                 "subject nor an accepted subjectAltName");
            return rv;
        }
        if (APR_SUCCESS != rv || APR_SUCCESS != (rv = fill_rec(
                op, x, key_hash, txid, plan, &rec))) {
            scep_log_openssl(op->log, SCEP_LOG_MARK, SCEP_LOG_ERR, op->p,
                             SCEPLOGNO(2009) "cannot issue a certificate "
                             "(txid %s)", op->msg->transaction_id);
            fail(op, SCEP_FAIL_BADREQUEST, "the certificate could not be "
                 "issued");
            return APR_EGENERAL;
        }
        rv = op->store->ops->cert_insert(op->store, op->p, &rec);
        if (!APR_STATUS_IS_EEXIST(rv)) {
            break;
        }
        if (answer_clash(op, txid, key_hash, plan)) {
            return op->rep.pki_status == SCEP_STATUS_SUCCESS ? APR_SUCCESS
                                                             : APR_EEXIST;
        }
    }
    if (APR_SUCCESS != rv) {
        store_failed(op, rv, "recording the certificate");
        return rv;
    }
    scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_INFO, 0, op->p,
                    SCEPLOGNO(2003) "issued certificate %s to %s (txid %s)",
                    rec.serial, rec.subject, op->msg->transaction_id);
    supersede(op, plan, rec.serial);
    revoke_previous(op, plan, rec.serial);
    op->udid = plan->udid;
    succeed_cert(op, x, tag);
    return APR_SUCCESS;
}

/* The transactionID to record with a new certificate of this key: NULL
 * when an earlier certificate of the key already holds it. */
static const char *free_txid(op_t *op, const char *txid, const char *key_hash)
{
    scep_cert_rec_t *rec;

    return APR_SUCCESS == op->store->ops->cert_by_transaction(
               op->store, op->p, txid, key_hash, &rec) ? NULL : txid;
}

/* The same key (or the very certificate) that made the pending request. */
static int same_requester(op_t *op, const scep_pending_rec_t *pend)
{
    X509 *s = op->msg->signer;
    const unsigned char *der;
    apr_size_t len;
    const char *kh = scep_spki_hash(op->p, X509_get_X509_PUBKEY(s));

    if (kh && pend->key_hash && !strcmp(kh, pend->key_hash)) {
        return 1;
    }
    return pend->requester && APR_SUCCESS == scep_cert_der(op->p, s, &der, &len)
           && len == pend->requester_len
           && !memcmp(der, pend->requester, len);
}

/* Issues an approved request with what was decided when it arrived; one
 * certificate whatever number of polls race (its origin is unique). */
static void issue_approved(op_t *op, const scep_pending_rec_t *pend)
{
    scep_grant_t *plan;
    X509_REQ *req;
    apr_status_t rv;

    if (APR_SUCCESS != scep_csr_parse(op->p, pend->csr, pend->csr_len, &req)
        || APR_SUCCESS != scep_grant_parse(op->p, pend->plan, &plan)) {
        fail(op, SCEP_FAIL_BADREQUEST, "the stored request is invalid");
        return;
    }
    if (!plan->origin) {
        plan->origin = apr_pstrcat(op->p, SCEP_ORIGIN_PENDING,
                                   pend->transaction_id, NULL);
    }
    if (APR_SUCCESS == issue(op, req, NULL, pend->key_hash,
                             free_txid(op, pend->transaction_id,
                                       pend->key_hash), plan, "issued")
        && op->serial
        && APR_SUCCESS != (rv = op->store->ops->pending_set_state(
               op->store, op->p, pend->transaction_id, SCEP_PENDING_ISSUED,
               op->serial))) {
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_WARNING, rv,
                        op->p, SCEPLOGNO(2004) "store: could not mark "
                        "request %s issued", pend->transaction_id);
    }
}

/* Answers from a pending request: wait, refuse, or issue once approved. */
static void from_pending(op_t *op, const scep_pending_rec_t *pend)
{
    scep_cert_rec_t *rec;
    apr_status_t rv;

    switch (pend->state) {
    case SCEP_PENDING_WAITING:
        pending(op);
        break;
    case SCEP_PENDING_REJECTED:
        fail(op, SCEP_FAIL_BADREQUEST, "the request was rejected");
        break;
    case SCEP_PENDING_ISSUED:
        rv = op->store->ops->cert_by_serial(op->store, op->p,
                                            pend->cert_serial, &rec);
        if (APR_SUCCESS == rv && rec->status != SCEP_CERT_VALID) {
            fail(op, SCEP_FAIL_BADREQUEST, "the certificate of this "
                 "request is revoked");
        }
        else if (APR_SUCCESS == rv) {
            succeed_der(op, rec, "found");
        }
        else {
            store_failed(op, rv, "finding the issued certificate");
        }
        break;
    case SCEP_PENDING_APPROVED:
    default:
        issue_approved(op, pend);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* PKCSReq and RenewalReq                                              */

typedef struct {
    X509_REQ *req;
    X509_PUBKEY *spki;         /* the key to certify, encoded */
    EVP_PKEY *key;             /* and decoded */
    const char *key_hash;
    const char *subject;
    int renewal;
    const char *record_txid;   /* transactionID to record, NULL if taken */
    const char *consumer;      /* who consumes a one-time challenge */
    const char *challenge;     /* its hash, NULL when none is used */
    scep_grant_t *plan;        /* what the certificate will say */
    scep_cert_rec_t *renewed;  /* the record of the certificate renewed */
} enroll_t;

/* The signer is a valid, unrevoked certificate of ours for the subject
 * (or one revoked as superseded by its renewal: the retry of that renewal
 * still gets its answer). */
static int is_renewal(op_t *op, enroll_t *e)
{
    X509 *s = op->msg->signer;
    scep_cert_rec_t *rec;
    const unsigned char *der;
    apr_size_t len;

    if (!scep_cert_issued_by(s, op->cfg->ca->cert)
        || X509_NAME_cmp(X509_get_subject_name(s),
                         X509_REQ_get_subject_name(e->req)) != 0
        || X509_cmp_current_time(X509_get0_notBefore(s)) >= 0
        || X509_cmp_current_time(X509_get0_notAfter(s)) <= 0
        || APR_SUCCESS != op->store->ops->cert_by_serial(
               op->store, op->p, scep_cert_serial_hex(op->p, s), &rec)
        || (rec->status != SCEP_CERT_VALID
            && rec->revocation_reason != SCEP_REASON_SUPERSEDED)
        || APR_SUCCESS != scep_cert_der(op->p, s, &der, &len)
        || len != rec->der_len || memcmp(der, rec->der, len)) {
        ERR_clear_error();
        return 0;
    }
    e->renewed = rec;
    return 1;
}

/* A renewal already answered: what this renewal of the signer made, for
 * the same key and request; a second renewal of one certificate is
 * refused. 1 when it answered. */
static int answer_renewal_retry(op_t *op, enroll_t *e)
{
    scep_cert_rec_t *rec;
    apr_status_t rv;

    rv = op->store->ops->cert_by_origin(op->store, op->p, e->plan->origin,
                                        &rec);
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        return 0;
    }
    if (APR_SUCCESS != rv) {
        store_failed(op, rv, "looking up the renewal");
    }
    else if (!rec->key_hash || strcmp(rec->key_hash, e->key_hash)
             || !rec->request_txid
             || strcmp(rec->request_txid, op->msg->transaction_id)) {
        fail(op, SCEP_FAIL_BADREQUEST, "this certificate was renewed "
             "already");
    }
    else if (rec->status != SCEP_CERT_VALID) {
        fail(op, SCEP_FAIL_BADREQUEST, "the certificate of this "
             "transaction is revoked");
    }
    else {
        succeed_der(op, rec, "repeated");
    }
    return 1;
}

/* The pending request of this transaction, if it is this one. */
static int answer_pending(op_t *op, enroll_t *e)
{
    scep_pending_rec_t *pend;
    apr_status_t rv;

    rv = op->store->ops->pending_get(op->store, op->p,
                                     op->msg->transaction_id, &pend);
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        return 0;
    }
    if (APR_SUCCESS != rv) {
        store_failed(op, rv, "looking up the pending request");
    }
    else if (!pend->key_hash || strcmp(pend->key_hash, e->key_hash)) {
        fail(op, SCEP_FAIL_BADREQUEST, "transactionID already used for "
             "another key");
    }
    else {
        from_pending(op, pend);
    }
    return 1;
}

/* A retry of a request already answered: the same certificate again, or
 * the state of the pending request. The same transactionID and key are a
 * retry only for the same subject (clients derive the ID from the key, so
 * it says nothing about who asks); a renewal is a retry when this renewal
 * of its signer was made for the same key and transaction. Returns 1 when
 * it answered. */
static int answer_retry(op_t *op, enroll_t *e)
{
    scep_cert_rec_t *rec;
    apr_status_t rv;

    e->record_txid = op->msg->transaction_id;
    rv = op->store->ops->cert_by_transaction(op->store, op->p,
                                             op->msg->transaction_id,
                                             e->key_hash, &rec);
    if (!APR_STATUS_IS_NOTFOUND(rv) && APR_SUCCESS != rv) {
        store_failed(op, rv, "looking up the transaction");
        return 1;
    }
    if (APR_SUCCESS == rv) {
        e->record_txid = NULL;   /* taken: a new certificate records none */
    }
    if (e->renewal) {
        return answer_renewal_retry(op, e) || answer_pending(op, e);
    }
    if (APR_SUCCESS == rv) {
        if (!rec->subject || strcmp(rec->subject, e->subject)) {
            return 0;            /* another subject: the policy decides */
        }
        if (rec->status != SCEP_CERT_VALID) {
            fail(op, SCEP_FAIL_BADREQUEST, "the certificate of this "
                 "transaction is revoked");
        }
        else {
            succeed_der(op, rec, "repeated");
        }
        return 1;
    }
    return answer_pending(op, e);
}

/* Policy checks before authorization: key, compromised key, key reuse
 * across subjects. */
static int policy_ok(op_t *op, enroll_t *e)
{
    scep_cert_rec_t *rec;
    const char *why = NULL;
    apr_status_t rv;

    if (APR_SUCCESS != scep_key_check(op->p, e->key, min_key(op->cfg), &why)) {
        fail(op, SCEP_FAIL_BADREQUEST, why);
        return 0;
    }
    rv = op->store->ops->key_compromised(op->store, op->p, e->key_hash);
    if (APR_SUCCESS == rv) {
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_INFO, 0, op->p,
                        SCEPLOGNO(2012) "txid %s: refused, the key was "
                        "revoked for keyCompromise", op->msg->transaction_id);
        fail(op, SCEP_FAIL_BADREQUEST, "this key was revoked for "
             "keyCompromise");
        return 0;
    }
    if (!APR_STATUS_IS_NOTFOUND(rv)) {
        store_failed(op, rv, "looking up the key");
        return 0;
    }
    rv = op->store->ops->cert_by_key(op->store, op->p, e->key_hash, &rec);
    if (APR_SUCCESS == rv && rec->subject && e->subject
        && strcmp(rec->subject, e->subject)) {
        fail(op, SCEP_FAIL_BADREQUEST, "this key is already certified to "
             "another subject");
        return 0;
    }
    if (APR_SUCCESS != rv && !APR_STATUS_IS_NOTFOUND(rv)) {
        store_failed(op, rv, "looking up the key");
        return 0;
    }
    return 1;
}

/* The renewal window: from notAfter less the window on. */
static int renewal_due(op_t *op, enroll_t *e, const char **from)
{
    const scep_cert_rec_t *r = e->renewed;
    apr_time_t window, start;
    int pct = op->cfg->renewal_window_percent;

    if (op->cfg->renewal_window_days > 0) {
        window = apr_time_from_sec((apr_time_t)op->cfg->renewal_window_days
                                   * 86400);
    }
    else {
        pct = pct > 0 ? pct : SCEP_DEFAULT_RENEWAL_PERCENT;
        window = (r->not_after - r->not_before) / 100 * pct;
    }
    start = r->not_after - window;
    if (apr_time_now() >= start) {
        return 1;
    }
    *from = apr_psprintf(op->p, "%" APR_TIME_T_FMT, apr_time_sec(start));
    return 0;
}

/* A renewal keeps the names of what it renews, once, inside its window. */
static int renewal_grant(op_t *op, enroll_t *e)
{
    const char *why = NULL, *from = NULL;
    X509 *old = op->msg->signer;

    e->plan = scep_grant_make(op->p);
    e->plan->subject = e->renewed->subject;
    e->plan->udid = e->renewed->udid;
    e->plan->user = e->renewed->enrolled_by;
    e->plan->origin = apr_pstrcat(op->p, SCEP_ORIGIN_RENEWAL,
                                  e->renewed->serial, NULL);
    if (APR_SUCCESS != scep_cert_sans(op->p, old, &e->plan->sans, &why)) {
        fail(op, SCEP_FAIL_BADREQUEST, why);
        return 0;
    }
    if (answer_retry(op, e)) {
        return 0;
    }
    if (e->renewed->status != SCEP_CERT_VALID) {
        fail(op, SCEP_FAIL_BADREQUEST, "the certificate that signed the "
             "renewal is revoked");
        return 0;
    }
    if (!renewal_due(op, e, &from)) {
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_INFO, 0, op->p,
                        SCEPLOGNO(2013) "txid %s: renewal of %s refused, it "
                        "is due from %s (Unix time; SCEPRenewalWindow)",
                        op->msg->transaction_id, e->renewed->serial, from);
        fail(op, SCEP_FAIL_BADREQUEST, "the certificate is not due for "
             "renewal yet");
        return 0;
    }
    return 1;
}

/* A one-time challenge was refused: one line at notice level naming the
 * client's address and the user who asked for the challenge (when the
 * store knows it was one), with how many refusals each had this hour on
 * this server, so that guessing shows; a warning at 100, 1000... */
static void count_refusal(op_t *op, const enroll_t *e)
{
    const char *creator, *why, *whose = "", *user_count = "";
    const char *ca = scep_store_ca(op->store);
    const char *addr = op->client ? op->client : "an unknown address";
    apr_uint32_t by_addr = 0, by_user = 0;
    apr_time_t now = apr_time_now();

    why = scep_challenge_why(op->p, op->store, e->challenge,
                             SCEP_CHALLENGE_SCEP, &creator);
    if (op->cfg->tally) {
        by_addr = scep_tally_add(op->cfg->tally, apr_pstrcat(
            op->p, "addr ", ca, " ", addr, NULL), now);
        by_user = creator ? scep_tally_add(op->cfg->tally, apr_pstrcat(
            op->p, "user ", ca, " ", creator, NULL), now) : 0;
    }
    if (creator) {
        whose = apr_pstrcat(op->p, ", a challenge of user '", creator, "'",
                            NULL);
        user_count = apr_psprintf(op->p, ", %u for user '%s'", by_user,
                                  creator);
    }
    scep_log_perror(op->log, SCEP_LOG_MARK,
                    scep_tally_milestone(by_addr)
                    || scep_tally_milestone(by_user) ? SCEP_LOG_WARNING
                                                     : SCEP_LOG_NOTICE,
                    0, op->p, SCEPLOGNO(2200) "txid %s: wrong challenge from "
                    "%s (%s%s); refused this hour: %u from this address%s",
                    op->msg->transaction_id, addr, why, whose, by_addr,
                    user_count);
}

/* The challenge of a new enrollment, and what it grants. A one-time
 * challenge is only looked at here; it is consumed once the request
 * passed every other check (use_challenge). */
static int challenge_grant(op_t *op, enroll_t *e)
{
    const char *c = scep_csr_challenge(op->p, e->req);
    const char *want = op->cfg->challenge_password;
    const char *bound = NULL;
    apr_status_t rv;

    e->plan = NULL;
    if (!c) {
        fail(op, SCEP_FAIL_BADREQUEST, "the request carries no challenge "
             "password");
        return 0;
    }
    if (want && strlen(want) == strlen(c)
        && 0 == CRYPTO_memcmp(want, c, strlen(c))) {
        return 1;                /* the static one: the policy decides */
    }
    /* the retry that may pass again is this very request: its
     * transaction, key and CSR */
    e->consumer = apr_pstrcat(op->p, op->msg->transaction_id, " ",
                              e->key_hash, " ",
                              scep_sha256_hex(op->p, op->msg->data,
                                              op->msg->data_len), NULL);
    e->challenge = scep_sha256_hex(op->p, c, strlen(c));
    rv = e->challenge ? op->store->ops->challenge_peek(
             op->store, op->p, e->challenge, SCEP_CHALLENGE_SCEP,
             e->consumer, &bound) : APR_NOTFOUND;
    if (APR_SUCCESS != rv && !APR_STATUS_IS_NOTFOUND(rv)) {
        store_failed(op, rv, "looking up the challenge");
        return 0;
    }
    if (APR_SUCCESS != rv) {
        count_refusal(op, e);
        fail(op, SCEP_FAIL_BADREQUEST, "the challenge password was not "
             "accepted");
        return 0;
    }
    if (bound && APR_SUCCESS != scep_grant_parse(op->p, bound, &e->plan)) {
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_WARNING, 0, op->p,
                        SCEPLOGNO(2014) "txid %s: the one-time challenge's "
                        "binding cannot be read; refused",
                        op->msg->transaction_id);
        fail(op, SCEP_FAIL_BADREQUEST, "the challenge password was not "
             "accepted");
        return 0;
    }
    return 1;
}

/* The names of the certificate, decided by the server. */
static int decide_names(op_t *op, enroll_t *e)
{
    apr_array_header_t *sans;
    const char *why = NULL;
    scep_grant_t *granted = e->plan;

    if (APR_SUCCESS != scep_names_decide(op->p, &op->cfg->names, granted,
                                         e->req, &sans, &why)) {
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_INFO, 0, op->p,
                        SCEPLOGNO(2010) "txid %s: refused: %s",
                        op->msg->transaction_id, why);
        fail(op, SCEP_FAIL_BADREQUEST, why);
        return 0;
    }
    if (!e->plan) {
        e->plan = scep_grant_make(op->p);
    }
    e->plan->subject = e->subject;
    e->plan->sans = sans;
    return 1;
}

/* Consumes the one-time challenge; its retry (same transaction and key)
 * may pass again, nobody else. */
static int use_challenge(op_t *op, enroll_t *e)
{
    apr_status_t rv;

    if (!e->challenge) {
        return 1;
    }
    rv = op->store->ops->challenge_consume(op->store, op->p, e->challenge,
                                           SCEP_CHALLENGE_SCEP, e->consumer,
                                           NULL);
    if (APR_SUCCESS == rv) {
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_DEBUG, 0, op->p,
                        SCEPLOGNO(2005) "txid %s: one-time challenge "
                        "consumed", op->msg->transaction_id);
        return 1;
    }
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        count_refusal(op, e);
        fail(op, SCEP_FAIL_BADREQUEST, "the challenge password was not "
             "accepted");
    }
    else {
        store_failed(op, rv, "consuming the challenge");
    }
    return 0;
}

static void put_pending(op_t *op, enroll_t *e)
{
    scep_pending_rec_t pend;
    apr_status_t rv;

    memset(&pend, 0, sizeof(pend));
    pend.transaction_id = op->msg->transaction_id;
    pend.subject = e->subject;
    pend.key_hash = e->key_hash;
    pend.state = SCEP_PENDING_WAITING;
    pend.created = apr_time_now();
    pend.csr = op->msg->data;
    pend.csr_len = op->msg->data_len;
    pend.plan = scep_grant_format(op->p, e->plan);
    rv = scep_cert_der(op->p, op->msg->signer, &pend.requester,
                       &pend.requester_len);
    if (APR_SUCCESS == rv) {
        rv = op->store->ops->pending_put(op->store, op->p, &pend);
    }
    if (APR_STATUS_IS_EEXIST(rv)) {
        fail(op, SCEP_FAIL_BADREQUEST, "transactionID already used");
        return;
    }
    if (APR_SUCCESS != rv) {
        store_failed(op, rv, "recording the pending request");
        return;
    }
    scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_INFO, 0, op->p,
                    SCEPLOGNO(2006) "request %s for %s waits for approval",
                    pend.transaction_id, pend.subject);
    pending(op);
}

static int read_csr(op_t *op, enroll_t *e)
{
    memset(e, 0, sizeof(*e));
    if (APR_SUCCESS != scep_csr_parse_for(op->p, op->msg->data,
                                          op->msg->data_len, op->msg->signer,
                                          &e->req, &e->spki, &e->key)) {
        fail(op, SCEP_FAIL_BADMESSAGECHECK, TEXT_UNDECODABLE);
        return 0;
    }
    e->key_hash = e->key ? scep_spki_hash(op->p, e->spki) : NULL;
    e->subject = scep_name_rfc2253(op->p, X509_REQ_get_subject_name(e->req));
    if (!e->key_hash || !e->subject) {
        fail(op, SCEP_FAIL_BADMESSAGECHECK, TEXT_UNDECODABLE);
        return 0;
    }
    return 1;
}

/* Who may have this certificate: a renewal keeps what it renews; a new
 * enrollment is what its challenge grants, within the policy. Nothing is
 * consumed before every check passed. */
static int authorize(op_t *op, enroll_t *e)
{
    if (e->renewal) {
        return renewal_grant(op, e) && policy_ok(op, e)
               && decide_names(op, e);
    }
    return !answer_retry(op, e) && policy_ok(op, e)
           && challenge_grant(op, e) && decide_names(op, e)
           && use_challenge(op, e);
}

static void enroll(op_t *op)
{
    enroll_t e;
    int renewal_req = op->msg->message_type == SCEP_MSG_RENEWALREQ;

    if (!read_csr(op, &e)) {
        return;
    }
    e.renewal = is_renewal(op, &e);
    if (renewal_req && !e.renewal) {
        fail(op, SCEP_FAIL_BADREQUEST, "a RenewalReq must be signed by a "
             "valid certificate of this CA for the same subject");
        return;
    }
    if (!e.renewal && !EVP_PKEY_eq(X509_get0_pubkey(op->msg->signer), e.key)) {
        ERR_clear_error();
        fail(op, SCEP_FAIL_BADMESSAGECHECK, "the message is not signed with "
             "the key of the request");
        return;
    }
    if (!authorize(op, &e)) {
        return;
    }
    if (op->cfg->approval_manual) {
        put_pending(op, &e);
        return;
    }
    issue(op, e.req, e.spki, e.key_hash, e.record_txid, e.plan,
          e.renewal ? "renewed" : "issued");
}

/* ------------------------------------------------------------------ */
/* CertPoll, GetCert, GetCRL                                           */

static void poll(op_t *op)
{
    scep_pending_rec_t *pend;
    scep_cert_rec_t *rec;
    apr_status_t rv;
    const char *kh = scep_spki_hash(op->p,
                                    X509_get_X509_PUBKEY(op->msg->signer));

    rv = op->store->ops->pending_get(op->store, op->p,
                                     op->msg->transaction_id, &pend);
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        /* issued without approval: the client polls anyway */
        if (kh && APR_SUCCESS == op->store->ops->cert_by_transaction(
                op->store, op->p, op->msg->transaction_id, kh, &rec)) {
            succeed_der(op, rec, "found");
        }
        else {
            fail(op, SCEP_FAIL_BADREQUEST, "no request with this "
                 "transactionID");
        }
    }
    else if (APR_SUCCESS != rv) {
        store_failed(op, rv, "looking up the pending request");
    }
    else if (!same_requester(op, pend)) {
        fail(op, SCEP_FAIL_BADMESSAGECHECK, "the poll is not signed by the "
             "requester");
    }
    else {
        from_pending(op, pend);
    }
}

/* The IssuerAndSerialNumber of GetCert and GetCRL, naming our CA. */
static PKCS7_ISSUER_AND_SERIAL *read_ias(op_t *op)
{
    const unsigned char *d = op->msg->data;
    PKCS7_ISSUER_AND_SERIAL *ias;

    ias = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &d, (long)op->msg->data_len);
    ERR_clear_error();
    if (!ias) {
        fail(op, SCEP_FAIL_BADMESSAGECHECK, TEXT_UNDECODABLE);
    }
    else if (X509_NAME_cmp(ias->issuer,
                           X509_get_subject_name(op->cfg->ca->cert)) != 0) {
        fail(op, SCEP_FAIL_BADCERTID, "not an issuer of this CA");
        PKCS7_ISSUER_AND_SERIAL_free(ias);
        ias = NULL;
    }
    return ias;
}

static void get_cert(op_t *op)
{
    PKCS7_ISSUER_AND_SERIAL *ias = read_ias(op);
    const char *serial;
    scep_cert_rec_t *rec;
    apr_status_t rv;

    if (!ias) {
        return;
    }
    serial = scep_serial_hex(op->p, ias->serial);
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    rv = serial ? op->store->ops->cert_by_serial(op->store, op->p, serial,
                                                 &rec) : APR_NOTFOUND;
    if (APR_SUCCESS == rv) {
        succeed_der(op, rec, "found");
    }
    else if (APR_STATUS_IS_NOTFOUND(rv)) {
        fail(op, SCEP_FAIL_BADCERTID, "no such certificate");
    }
    else {
        store_failed(op, rv, "finding the certificate");
    }
}

/* The CA's published CRL, the one its CRL distribution point serves. */
static void get_crl(op_t *op)
{
    PKCS7_ISSUER_AND_SERIAL *ias = read_ias(op);
    apr_array_header_t *crls;
    const scep_crl_rec_t *rec;
    const unsigned char *d;
    X509_CRL *crl;
    apr_status_t rv;

    if (!ias) {
        return;
    }
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    rv = scep_crl_current(op->p, op->log, op->cfg->ca, op->cfg->crl_days,
                          op->store, op->cfg->crl_cache, &rec);
    if (APR_SUCCESS != rv) {
        store_failed(op, rv, "publishing the CRL");
        return;
    }
    d = rec->der;
    if (!(crl = scep_track_crl(op->p, d2i_X509_CRL(NULL, &d,
                                                   (long)rec->der_len)))) {
        ERR_clear_error();
        fail(op, SCEP_FAIL_BADREQUEST, "the CRL could not be built");
        return;
    }
    crls = apr_array_make(op->p, 1, sizeof(X509_CRL *));
    APR_ARRAY_PUSH(crls, X509_CRL *) = crl;
    succeed(op, NULL, crls, "crl");
}

/* ------------------------------------------------------------------ */
/* dispatch                                                            */

static int known_type(int t)
{
    return t == SCEP_MSG_PKCSREQ || t == SCEP_MSG_RENEWALREQ
           || t == SCEP_MSG_CERTPOLL || t == SCEP_MSG_GETCERT
           || t == SCEP_MSG_GETCRL;
}

/* Signature, type and envelope; 1 when the messageData is at hand. The
 * envelope is opened with the encryption certificate, so only the recipient
 * that names it costs an RSA decryption. */
static int open_message(op_t *op)
{
    scep_pkimsg_t *msg = op->msg;
    const scep_ca_t *ca = op->cfg->ca;
    apr_status_t rv;

    if (!scep_pkimsg_digest_allowed(msg->digest_nid, op->cfg->allow_legacy)) {
        fail(op, SCEP_FAIL_BADALG, op->cfg->allow_legacy
             ? "digest algorithm not accepted"
             : "digest algorithm not accepted (MD5 needs "
               "SCEPAllowLegacyAlgorithms on)");
    }
    else if (!msg->signature_ok) {
        fail(op, SCEP_FAIL_BADMESSAGECHECK, "the signature does not verify");
    }
    else if (!known_type(msg->message_type)) {
        fail(op, SCEP_FAIL_BADREQUEST, "unsupported messageType");
    }
    else if (!msg->content_is_data || !msg->envelope) {
        fail(op, SCEP_FAIL_BADMESSAGECHECK, TEXT_UNDECODABLE);
    }
    else if (APR_ENOTIMPL == (rv = scep_pkimsg_decrypt_as(
                 op->p, msg, ca->decrypt_cert, ca->decrypt_key,
                 op->cfg->allow_legacy))) {
        fail(op, SCEP_FAIL_BADALG, op->cfg->allow_legacy
             ? "content encryption or key transport algorithm not accepted"
             : "content encryption or key transport algorithm not accepted "
               "(single DES needs SCEPAllowLegacyAlgorithms on)");
    }
    else if (APR_EINVAL == rv) {
        scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_DEBUG, 0, op->p,
                        SCEPLOGNO(2100) "txid=%s: the envelope has %d "
                        "recipients (at most %d): not decrypted",
                        msg->transaction_id, msg->recipients,
                        SCEP_MAX_RECIPIENTS);
        fail(op, SCEP_FAIL_BADMESSAGECHECK, "too many recipients in the "
             "envelope");
    }
    else if (APR_SUCCESS != rv) {
        fail(op, SCEP_FAIL_BADMESSAGECHECK, TEXT_UNDECODABLE);
    }
    else {
        /* the reply goes back with the key transport of the recipient
         * that was decrypted */
        op->rep.key_transport = msg->key_transport;
        return 1;
    }
    return 0;
}

/* SCEPMaxClockSkew: a signingTime too far from now is refused (a message
 * without one passes: network gear often has no clock yet). */
static int time_ok(op_t *op)
{
    apr_time_t skew = op->cfg->max_clock_skew, off;

    if (skew <= 0 || !op->msg->has_signing_time) {
        return 1;
    }
    off = op->msg->signing_time - apr_time_sec(apr_time_now());
    if (off <= skew && off >= -skew) {
        return 1;
    }
    scep_log_perror(op->log, SCEP_LOG_MARK, SCEP_LOG_INFO, 0, op->p,
                    SCEPLOGNO(2015) "txid %s: signingTime is %" APR_TIME_T_FMT
                    " s %s the server's clock (SCEPMaxClockSkew %"
                    APR_TIME_T_FMT ")", op->msg->transaction_id,
                    off < 0 ? -off : off, off < 0 ? "behind" : "ahead of",
                    skew);
    fail(op, SCEP_FAIL_BADTIME, "the message's signingTime is too far from "
         "the server's clock");
    return 0;
}

static void dispatch(op_t *op)
{
    if (!open_message(op) || !time_ok(op)) {
        return;
    }
    switch (op->msg->message_type) {
    case SCEP_MSG_PKCSREQ:
    case SCEP_MSG_RENEWALREQ:
        enroll(op);
        break;
    case SCEP_MSG_CERTPOLL:
        poll(op);
        break;
    case SCEP_MSG_GETCERT:
        get_cert(op);
        break;
    default:
        get_crl(op);
        break;
    }
}

/* The reply mirrors the request's algorithms where they are allowed. */
static void init_rep(op_t *op)
{
    scep_pkimsg_t *msg = op->msg;
    int legacy = op->cfg->allow_legacy;

    memset(&op->rep, 0, sizeof(op->rep));
    op->rep.transaction_id = msg->transaction_id;
    op->rep.recipient_nonce = msg->sender_nonce;
    op->rep.recipient_nonce_len = msg->sender_nonce_len;
    op->rep.fail_info = SCEP_FAIL_NONE;
    op->rep.digest_nid = scep_pkimsg_digest_allowed(msg->digest_nid, legacy)
                         ? msg->digest_nid : NID_sha256;
    op->rep.cipher_nid = scep_pkimsg_cipher_allowed(msg->cipher_nid, legacy)
                         ? msg->cipher_nid : NID_aes_128_cbc;
    op->rep.key_transport = msg->key_transport;
    op->rep.allow_legacy = legacy;
}

static void summarize(op_t *op, scep_pkiop_reply_t *reply)
{
    reply->message_type = op->msg->message_type;
    reply->transaction_id = op->msg->transaction_id;
    reply->pki_status = op->rep.pki_status;
    reply->fail_info = op->rep.pki_status == SCEP_STATUS_FAILURE
                       ? op->rep.fail_info : SCEP_FAIL_NONE;
    reply->serial = op->serial;
    reply->tag = op->tag;
    reply->udid = op->udid;
    reply->revoked = op->revoked;
    reply->reason = op->rep.pki_status == SCEP_STATUS_FAILURE
                    ? op->rep.fail_info_text : NULL;
    if (op->cert && op->rep.pki_status == SCEP_STATUS_SUCCESS) {
        const char *why;
        reply->subject = scep_name_rfc2253(op->p,
                                           X509_get_subject_name(op->cert));
        if (APR_SUCCESS != scep_cert_sans(op->p, op->cert, &reply->sans,
                                          &why)) {
            reply->sans = NULL;
        }
    }
    reply->summary = apr_psprintf(op->p, "%s txid=%s %s%s%s%s%s",
                                  scep_pkimsg_type_name(reply->message_type),
                                  reply->transaction_id,
                                  scep_pkimsg_status_name(reply->pki_status),
                                  reply->fail_info != SCEP_FAIL_NONE ? " " : "",
                                  reply->fail_info != SCEP_FAIL_NONE
                                  ? scep_pkimsg_fail_name(reply->fail_info)
                                  : "",
                                  op->serial ? " serial=" : "",
                                  op->serial ? op->serial : "");
}

static void invalid(scep_pkiop_reply_t *reply)
{
    reply->kind = SCEP_OUTCOME_BAD_REQUEST;
    reply->tag = "invalid";
    reply->summary = "undecodable pkiMessage";
}

apr_status_t scep_pkiop_handle(apr_pool_t *p, const scep_logger_t *log,
                               const scep_pkiop_cfg_t *cfg,
                               scep_store_t *store,
                               const unsigned char *msg, apr_size_t len,
                               scep_pkiop_reply_t *reply)
{
    return scep_pkiop_handle_from(p, log, cfg, store, NULL, msg, len, reply);
}

apr_status_t scep_pkiop_handle_from(apr_pool_t *p, const scep_logger_t *log,
                                    const scep_pkiop_cfg_t *cfg,
                                    scep_store_t *store, const char *client,
                                    const unsigned char *msg, apr_size_t len,
                                    scep_pkiop_reply_t *reply)
{
    op_t op;
    apr_status_t rv;

    memset(reply, 0, sizeof(*reply));
    memset(&op, 0, sizeof(op));
    reply->message_type = reply->pki_status = -1;
    reply->fail_info = SCEP_FAIL_NONE;
    if (!cfg || !cfg->ca || !store) {
        return APR_EINVAL;
    }
    if (APR_SUCCESS != scep_pkimsg_parse(p, msg, len, &op.msg)) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_DEBUG, 0, p,
                        SCEPLOGNO(2007) "PKIOperation: %" APR_SIZE_T_FMT
                        " bytes are not a pkiMessage", len);
        invalid(reply);
        return APR_SUCCESS;
    }
    op.p = p;
    op.log = log;
    op.cfg = cfg;
    op.store = store;
    op.client = client;
    init_rep(&op);
    dispatch(&op);
    summarize(&op, reply);
    rv = scep_certrep_build(p, cfg->ca, &op.rep, &reply->body, &reply->len);
    if (APR_SUCCESS != rv && op.rep.pki_status == SCEP_STATUS_SUCCESS) {
        /* e.g. the requester's key cannot receive an envelope */
        fail(&op, SCEP_FAIL_BADALG, "the reply could not be encrypted to "
             "the requester");
        summarize(&op, reply);
        rv = scep_certrep_build(p, cfg->ca, &op.rep, &reply->body,
                                &reply->len);
    }
    if (APR_SUCCESS != rv) {
        scep_log_openssl(log, SCEP_LOG_MARK, SCEP_LOG_ERR, p,
                         SCEPLOGNO(2008) "PKIOperation: cannot sign the "
                         "CertRep for %s", reply->summary);
        reply->kind = SCEP_OUTCOME_SERVER_ERROR;
        return rv;
    }
    reply->kind = SCEP_OUTCOME_OK;
    reply->content_type = SCEP_CT_PKI_MESSAGE;
    return APR_SUCCESS;
}

apr_status_t scep_pkiop_next_ca(apr_pool_t *p, const scep_pkiop_cfg_t *cfg,
                                const unsigned char **body, apr_size_t *len)
{
    if (!cfg->next_ca_certs || cfg->next_ca_certs->nelts == 0) {
        return APR_NOTFOUND;
    }
    return scep_next_ca_build(p, cfg->ca, cfg->next_ca_certs, body, len);
}
