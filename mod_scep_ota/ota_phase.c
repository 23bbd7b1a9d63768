/* OTA Phases 1, 2 and 3: who gets which profile, and the POST dispatcher.
 * Every answer is built (ota_payload.c), serialized (ota_plist.c), then
 * signed (ota_cms.c), in that order. */

#include <string.h>

#include <apr_strings.h>
#include <openssl/objects.h>

#include "scep_ota/scep_challenge.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_policy.h"
#include "ota_private.h"

#define OUT_OK SCEP_OUTCOME_OK

/* ------------------------------------------------------------------ */
/* one-time challenges                                                 */

apr_status_t ota_challenge_make(apr_pool_t *p, const char **clear,
                                const char **hash)
{
    return scep_challenge_make(p, SCEP_CHALLENGE_TOKEN192, clear, hash);
}

const char *ota_challenge_hash(apr_pool_t *p, const char *clear)
{
    return scep_challenge_hash(p, clear);
}

/* Creates and stores a challenge for the user of Phase 1 (who asked, as
 * the store lists it), using up the Phase 1 challenge whose hash is
 * replaces in the same transaction; *clear is what to hand out. */
static apr_status_t issue_challenge(const ota_t *ota, apr_pool_t *p,
                                    scep_store_t *st,
                                    scep_challenge_purpose_t purpose,
                                    const char *bound_to, const char *user,
                                    const char *replaces, const char **clear)
{
    scep_challenge_spec_t spec;

    memset(&spec, 0, sizeof(spec));
    spec.format = SCEP_CHALLENGE_TOKEN192;
    spec.purpose = purpose;
    spec.bound_to = bound_to;
    spec.created_by = user;
    spec.via = SCEP_VIA_OTA;
    spec.lifetime = ota->s.challenge_ttl;
    spec.replaces = replaces;
    spec.replaces_purpose = SCEP_CHALLENGE_OTA_PHASE1;
    return scep_challenge_issue(p, st, &spec, clear, NULL);
}

/* ------------------------------------------------------------------ */
/* the body of every answer                                            */

/* Serializes a payload and signs the XML: out becomes the answer. */
static apr_status_t sign_payload(const ota_t *ota, apr_pool_t *p, plist_t top,
                                 scep_outcome_t *out)
{
    const char *xml;
    apr_size_t len;
    apr_status_t rv;

    if (APR_SUCCESS == (rv = ota_plist_xml(p, top, &xml, &len))
        && APR_SUCCESS == (rv = ota_cms_sign(p, ota->s.signer, xml, len,
                                             &out->body, &out->len))) {
        out->kind = OUT_OK;
        out->content_type = OTA_CT_ASPEN_CONFIG;
    }
    return rv;
}

/* ------------------------------------------------------------------ */
/* Phase 1                                                             */

/* The challenge Phase 1 hands out, bound to user. */
static apr_status_t phase1_issue(const ota_t *ota, apr_pool_t *p,
                                 scep_store_t *st, const scep_logger_t *log,
                                 const char *user, const char **challenge)
{
    apr_status_t rv = issue_challenge(ota, p, st, SCEP_CHALLENGE_OTA_PHASE1,
                                      user, user, NULL, challenge);

    if (APR_SUCCESS != rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5010) "OTA Phase 1: cannot store a "
                        "challenge");
    }
    return rv;
}

static apr_status_t phase1_sign(const ota_t *ota, apr_pool_t *p,
                                const scep_logger_t *log, const char *url,
                                const char *challenge, scep_outcome_t *out)
{
    plist_t top = ota_payload_service(ota, p, url, challenge);
    apr_status_t rv = sign_payload(ota, p, top, out);

    if (APR_SUCCESS != rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5011) "OTA Phase 1: cannot sign the "
                        "Profile Service payload");
    }
    return rv;
}

apr_status_t ota_phase1(const ota_t *ota, apr_pool_t *p, scep_store_t *st,
                        const scep_logger_t *log, const char *service_url,
                        const char *user, scep_outcome_t *out)
{
    const char *challenge;
    apr_status_t rv;

    memset(out, 0, sizeof(*out));
    out->kind = SCEP_OUTCOME_SERVER_ERROR;
    if (APR_SUCCESS != (rv = phase1_issue(ota, p, st, log, user, &challenge))
        || APR_SUCCESS != (rv = phase1_sign(ota, p, log, service_url,
                                            challenge, out))) {
        return rv;
    }
    scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                    SCEPLOGNO(5012) "OTA Phase 1: Profile Service for %s "
                    "(URL %s)", user ? user : "an anonymous user",
                    service_url);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Phase 2                                                             */

/* One Phase 2 request on its way. */
typedef struct {
    const ota_t *ota;
    apr_pool_t *p;
    scep_store_t *st;
    const scep_logger_t *log;
    const ota_device_req_t *req;
    const char *user;            /* who POSTs, or NULL */
    const char *phase1;          /* the Phase 1 challenge's hash */
    const char *bound;           /* to whom Phase 1 gave the challenge */
    const ota_subject_t *dev;    /* the subject, filled in once */
    const char *dn;              /* the same, RFC 2253 */
    const char *challenge;       /* the SCEP challenge, clear text */
} phase2_t;

/* The device and the subject its attributes make. Attributes that make no
 * subject (not UTF-8, too long) are the device's fault, refused before its
 * challenge is used up. */
static scep_outcome_kind_t phase2_subject(phase2_t *ph)
{
    if (!ph->req->udid) {
        scep_log_perror(ph->log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS,
                        ph->p, SCEPLOGNO(5016) "OTA Phase 2: the device sent "
                        "no usable UDID");
        return SCEP_OUTCOME_BAD_REQUEST;
    }
    ph->dev = ota_subject_fill(ph->p, ph->ota->s.subject, ph->req->attrs);
    if (!(ph->dn = ota_subject_rfc2253(ph->p, ph->dev))) {
        scep_log_perror(ph->log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS,
                        ph->p, SCEPLOGNO(7000) "OTA Phase 2 refused for UDID "
                        "%s: its attributes do not make a valid OTASubject",
                        ph->req->udid);
        return SCEP_OUTCOME_BAD_REQUEST;
    }
    return OUT_OK;
}

/* The store's look at the Phase 1 challenge. */
static apr_status_t lookup_challenge(phase2_t *ph, const char *challenge)
{
    ph->phase1 = challenge ? ota_challenge_hash(ph->p, challenge) : NULL;
    ph->bound = NULL;
    if (!ph->phase1) {
        return APR_NOTFOUND;
    }
    return ph->st->ops->challenge_peek(ph->st, ph->p, ph->phase1,
                                       SCEP_CHALLENGE_OTA_PHASE1, NULL,
                                       &ph->bound);
}

/* A Phase 1 challenge that is not there to use (or, after a store
 * failure, could not be looked at). */
static scep_outcome_kind_t challenge_refused(phase2_t *ph, apr_status_t rv)
{
    const char *challenge = apr_table_get(ph->req->attrs, "CHALLENGE");

    if (!APR_STATUS_IS_NOTFOUND(rv)) {
        scep_log_perror(ph->log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, ph->p,
                        SCEPLOGNO(5013) "OTA Phase 2: the store failed while "
                        "consuming a challenge");
        return SCEP_OUTCOME_UNAVAILABLE;
    }
    scep_log_perror(ph->log, SCEP_LOG_MARK, SCEP_LOG_WARNING, APR_SUCCESS,
                    ph->p, SCEPLOGNO(5014) "OTA Phase 2 refused for UDID "
                    "%s: the CHALLENGE is %s", ph->req->udid,
                    challenge ? "wrong, expired or already used"
                              : "missing");
    return SCEP_OUTCOME_FORBIDDEN;
}

/* Looks at the Phase 1 challenge (used up later, strictly once, with the
 * SCEP challenge's creation: a replayed Phase 2 gets nothing); ph->bound
 * is the user Phase 1 handed it to. */
static scep_outcome_kind_t phase1_challenge(phase2_t *ph)
{
    apr_status_t rv = lookup_challenge(ph, apr_table_get(ph->req->attrs,
                                                         "CHALLENGE"));

    if (APR_SUCCESS != rv) {
        return challenge_refused(ph, rv);
    }
    if (ph->bound && ph->user && strcmp(ph->bound, ph->user)) {
        scep_log_perror(ph->log, SCEP_LOG_MARK, SCEP_LOG_WARNING, APR_SUCCESS,
                        ph->p, SCEPLOGNO(5015) "OTA Phase 2 refused for UDID "
                        "%s: the challenge was issued to '%s', not '%s'",
                        ph->req->udid, ph->bound, ph->user);
        return SCEP_OUTCOME_FORBIDDEN;
    }
    return OUT_OK;
}

/* The SCEP challenge, bound to exactly this subject, device and user, so
 * that the certificate says so and Phase 3 knows it. It is stored in the
 * transaction that uses up the Phase 1 challenge: a store failure leaves
 * the device its retry, and of two racing requests one gets it. */
static scep_outcome_kind_t scep_challenge(phase2_t *ph)
{
    const char *owner = ph->bound ? ph->bound : ph->user;
    scep_grant_t *g = scep_grant_make(ph->p);
    apr_status_t rv;

    g->subject = ph->dn;
    g->udid = ph->req->udid;
    g->user = owner;
    rv = issue_challenge(ph->ota, ph->p, ph->st, SCEP_CHALLENGE_SCEP,
                         scep_grant_format(ph->p, g), owner, ph->phase1,
                         &ph->challenge);
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        return challenge_refused(ph, rv);
    }
    if (APR_SUCCESS != rv) {
        scep_log_perror(ph->log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, ph->p,
                        SCEPLOGNO(5017) "OTA Phase 2: cannot store the SCEP "
                        "challenge for UDID %s", ph->req->udid);
        return SCEP_OUTCOME_UNAVAILABLE;
    }
    return OUT_OK;
}

static scep_outcome_kind_t phase2_sign(phase2_t *ph, scep_outcome_t *out)
{
    plist_t top = ota_payload_scep(ph->ota, ph->p, ph->dev, ph->challenge);
    apr_status_t rv = sign_payload(ph->ota, ph->p, top, out);

    if (APR_SUCCESS != rv) {
        scep_log_perror(ph->log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, ph->p,
                        SCEPLOGNO(5018) "OTA Phase 2: cannot sign the SCEP "
                        "profile");
        return SCEP_OUTCOME_SERVER_ERROR;
    }
    return OUT_OK;
}

static void phase2_served(const phase2_t *ph)
{
    const char *product = apr_table_get(ph->req->attrs, "PRODUCT");
    const char *serial = apr_table_get(ph->req->attrs, "SERIAL");

    scep_log_perror(ph->log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, ph->p,
                    SCEPLOGNO(5019) "OTA Phase 2: SCEP profile for UDID %s "
                    "(%s, %s), subject %s", ph->req->udid,
                    product ? product : "?", serial ? serial : "?",
                    ota_subject_show(ph->p, ph->dev));
}

apr_status_t ota_phase2(const ota_t *ota, apr_pool_t *p, scep_store_t *st,
                        const scep_logger_t *log, const char *user,
                        const ota_device_req_t *req, scep_outcome_t *out)
{
    phase2_t ph = { ota, p, st, log, req, user, NULL, NULL, NULL, NULL,
                    NULL };

    memset(out, 0, sizeof(*out));
    if (OUT_OK != (out->kind = phase2_subject(&ph))
        || OUT_OK != (out->kind = phase1_challenge(&ph))
        || OUT_OK != (out->kind = scep_challenge(&ph))
        || OUT_OK != (out->kind = phase2_sign(&ph, out))) {
        return APR_EINVAL;
    }
    phase2_served(&ph);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Phase 3                                                             */

/* Why the store's record (NULL: none) does not vouch for the signer, or
 * NULL when it does: valid, and this very certificate when the store
 * keeps its bytes. */
static const char *not_valid(apr_pool_t *p, X509 *signer,
                             const scep_cert_rec_t *rec)
{
    const unsigned char *der;
    apr_size_t len;

    if (!rec) {
        return "not in the store";
    }
    if (rec->status != SCEP_CERT_VALID) {
        return "revoked";
    }
    return !rec->der || (APR_SUCCESS == scep_cert_der(p, signer, &der, &len)
                         && len == rec->der_len
                         && !memcmp(der, rec->der, len))
           ? NULL : "not the one the store holds";
}

/* OK when the signer is a valid certificate of our store. */
static scep_outcome_kind_t check_issued(apr_pool_t *p, scep_store_t *st,
                                        const scep_logger_t *log,
                                        X509 *signer, const char **serial,
                                        scep_cert_rec_t **prec)
{
    scep_cert_rec_t *rec = NULL;
    const char *why;
    apr_status_t rv;

    *serial = scep_cert_serial_hex(p, signer);
    rv = st->ops->cert_by_serial(st, p, *serial, &rec);
    if (APR_SUCCESS != rv && !APR_STATUS_IS_NOTFOUND(rv)) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5020) "OTA Phase 3: the store failed while "
                        "looking up serial %s", *serial);
        return SCEP_OUTCOME_UNAVAILABLE;
    }
    if ((why = not_valid(p, signer, APR_SUCCESS == rv ? rec : NULL)) != NULL) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_WARNING, APR_SUCCESS, p,
                        SCEPLOGNO(5021) "OTA Phase 3 refused: certificate "
                        "serial %s is %s", *serial, why);
        return SCEP_OUTCOME_FORBIDDEN;
    }
    *prec = rec;
    return OUT_OK;
}

/* OK when the certificate was issued through Phase 2 to this device. */
static scep_outcome_kind_t check_enrolled(apr_pool_t *p,
                                          const scep_logger_t *log,
                                          const scep_cert_rec_t *rec,
                                          const ota_device_req_t *req)
{
    if (rec->udid && req->udid && !strcmp(rec->udid, req->udid)) {
        return OUT_OK;
    }
    scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_WARNING, APR_SUCCESS, p,
                    SCEPLOGNO(5026) "OTA Phase 3 refused: certificate serial "
                    "%s was not issued through OTA Phase 2 to UDID %s",
                    rec->serial, req->udid ? req->udid : "?");
    return SCEP_OUTCOME_FORBIDDEN;
}

/* The attributes must describe the device the certificate was issued to,
 * or one device's identity could record another's UDID. */
static scep_outcome_kind_t check_subject(const ota_t *ota, apr_pool_t *p,
                                         const scep_logger_t *log,
                                         const ota_device_req_t *req,
                                         const char *serial)
{
    const char *want, *got;

    want = ota_subject_rfc2253(p, ota_subject_fill(p, ota->s.subject,
                                                   req->attrs));
    got = scep_name_rfc2253(p, X509_get_subject_name(req->signer));
    if (!want || !got || strcmp(want, got)) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                        SCEPLOGNO(5025) "OTA Phase 3: the attributes describe "
                        "'%s' but certificate %s is for '%s'",
                        want ? want : "?", serial, got ? got : "?");
        return SCEP_OUTCOME_FORBIDDEN;
    }
    return OUT_OK;
}

/* The OTAProfile with its payloads encrypted to the signer, signed. */
static apr_status_t final_profile(const ota_t *ota, apr_pool_t *p, X509 *to,
                                  scep_outcome_t *out)
{
    const ota_profile_t *prof = ota->s.profile;
    const unsigned char *env;
    apr_size_t env_len;
    plist_t top;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = ota_cms_encrypt(p, to, ota->s.cipher_nid,
                                             prof->content_xml,
                                             prof->content_len, &env,
                                             &env_len))
        || APR_SUCCESS != (rv = ota_payload_final(ota, p, env, env_len,
                                                  &top))) {
        return rv;
    }
    return sign_payload(ota, p, top, out);
}

static void record_device(apr_pool_t *p, scep_store_t *st,
                          const scep_logger_t *log,
                          const ota_device_req_t *req,
                          const scep_cert_rec_t *cert)
{
    scep_device_rec_t rec;
    apr_status_t rv;

    if (!req->udid) {
        return;
    }
    memset(&rec, 0, sizeof(rec));
    rec.udid = req->udid;
    rec.serial_number = apr_table_get(req->attrs, "SERIAL");
    rec.product = apr_table_get(req->attrs, "PRODUCT");
    rec.cert_serial = cert->serial;
    rec.enrolled_by = cert->enrolled_by;
    rec.last_seen = apr_time_now();
    if (APR_SUCCESS != (rv = st->ops->device_upsert(st, p, &rec))) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_WARNING, rv, p,
                        SCEPLOGNO(5022) "OTA Phase 3: cannot record device "
                        "%s", req->udid);
    }
}

static void phase3_served(const ota_t *ota, apr_pool_t *p,
                          const scep_logger_t *log,
                          const ota_device_req_t *req, const char *serial)
{
    scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                    SCEPLOGNO(5024) "OTA Phase 3: profile %s (%d payloads, "
                    "%s) for UDID %s, certificate serial %s",
                    ota->s.profile->identifier, ota->s.profile->count,
                    OBJ_nid2sn(ota->s.cipher_nid),
                    req->udid ? req->udid : "?", serial);
}

apr_status_t ota_phase3(const ota_t *ota, apr_pool_t *p, scep_store_t *st,
                        const scep_logger_t *log,
                        const ota_device_req_t *req, scep_outcome_t *out)
{
    const char *serial = NULL;
    scep_cert_rec_t *cert = NULL;
    apr_status_t rv;

    memset(out, 0, sizeof(*out));
    if (OUT_OK != (out->kind = check_issued(p, st, log, req->signer, &serial,
                                            &cert))
        || OUT_OK != (out->kind = check_enrolled(p, log, cert, req))
        || OUT_OK != (out->kind = check_subject(ota, p, log, req, serial))) {
        return APR_EINVAL;
    }
    if (APR_SUCCESS != (rv = final_profile(ota, p, req->signer, out))) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5023) "OTA Phase 3: cannot encrypt or sign "
                        "the profile for serial %s", serial);
        out->kind = SCEP_OUTCOME_SERVER_ERROR;
        return rv;
    }
    record_device(p, st, log, req, cert);
    phase3_served(ota, p, log, req, serial);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* POST                                                                */

/* What a refused device is told. */
static const char *reason(scep_outcome_kind_t kind)
{
    switch (kind) {
    case SCEP_OUTCOME_BAD_REQUEST: return "not a signed device request";
    case SCEP_OUTCOME_FORBIDDEN:   return "refused";
    case SCEP_OUTCOME_TOO_LARGE:   return "request too large";
    case SCEP_OUTCOME_UNAVAILABLE: return "store unavailable";
    default:                       return "server error";
    }
}

apr_status_t ota_post(const ota_t *ota, apr_pool_t *p, scep_store_t *st,
                      const scep_logger_t *log, const char *user,
                      const unsigned char *body, apr_size_t len,
                      ota_answer_t *ans)
{
    ota_device_req_t *req = NULL;
    apr_status_t rv;

    memset(ans, 0, sizeof(*ans));
    rv = ota_request_verify(ota, p, log, st, body, len, &req, &ans->out.kind);
    if (APR_SUCCESS == rv) {
        ans->phase = req->phase;
        ans->udid = req->udid;
        rv = req->phase == 2
             ? ota_phase2(ota, p, st, log, user, req, &ans->out)
             : ota_phase3(ota, p, st, log, req, &ans->out);
    }
    if (ans->out.kind != OUT_OK) {
        ans->out.reason = reason(ans->out.kind);
    }
    return rv;
}
