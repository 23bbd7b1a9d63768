/* OTA Phases 1, 2 and 3: the profiles served, and the POST dispatcher. */

#include <string.h>

#include <apr_strings.h>
#include <openssl/objects.h>

#include "scep_ota/scep_challenge.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_policy.h"
#include "ota_private.h"

#define SCEP_PAYLOAD_TYPE "com.apple.security.scep"
#define KEY_USAGE_SIGN_ENCRYPT 5

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
 * the store lists it); *clear is what to hand out. */
static apr_status_t issue_challenge(const ota_t *ota, apr_pool_t *p,
                                    scep_store_t *st,
                                    scep_challenge_purpose_t purpose,
                                    const char *bound_to, const char *user,
                                    const char **clear)
{
    scep_challenge_spec_t spec;

    memset(&spec, 0, sizeof(spec));
    spec.format = SCEP_CHALLENGE_TOKEN192;
    spec.purpose = purpose;
    spec.bound_to = bound_to;
    spec.created_by = user;
    spec.via = SCEP_VIA_OTA;
    spec.lifetime = ota->s.challenge_ttl;
    return scep_challenge_issue(p, st, &spec, clear, NULL);
}

/* ------------------------------------------------------------------ */
/* common payload keys                                                 */

static void payload_keys(const ota_t *ota, apr_pool_t *p, plist_t dict,
                         const char *type, const char *id_suffix,
                         const char *display, const char *description)
{
    ota_plist_set_str(dict, "PayloadType", type);
    ota_plist_set_uint(dict, "PayloadVersion", 1);
    ota_plist_set_str(dict, "PayloadIdentifier",
                      apr_pstrcat(p, ota->s.identifier, id_suffix, NULL));
    ota_plist_set_str(dict, "PayloadUUID", ota_uuid(p));
    ota_plist_set_str(dict, "PayloadDisplayName", display);
    ota_plist_set_str(dict, "PayloadDescription", description);
    if (ota->s.organization) {
        ota_plist_set_str(dict, "PayloadOrganization", ota->s.organization);
    }
}

/* ------------------------------------------------------------------ */
/* Phase 1                                                             */

static plist_t profile_service(const ota_t *ota, apr_pool_t *p,
                               const char *url, const char *challenge)
{
    plist_t top = ota_plist_track(p, plist_new_dict());
    plist_t content = plist_new_dict(), attrs = plist_new_array();
    int i;

    payload_keys(ota, p, top, "Profile Service", ".profile-service",
                 ota->s.display_name,
                 "Enrolls this device: it sends its identity, receives a "
                 "certificate, then its configuration.");
    for (i = 0; i < ota->s.attributes->nelts; ++i) {
        plist_array_append_item(attrs, plist_new_string(
            APR_ARRAY_IDX(ota->s.attributes, i, const char *)));
    }
    ota_plist_set_str(content, "URL", url);
    plist_dict_set_item(content, "DeviceAttributes", attrs);
    ota_plist_set_str(content, "Challenge", challenge);
    plist_dict_set_item(top, "PayloadContent", content);
    return top;
}

apr_status_t ota_phase1(const ota_t *ota, apr_pool_t *p, scep_store_t *st,
                        const scep_logger_t *log, const char *service_url,
                        const char *user, const unsigned char **body,
                        apr_size_t *len)
{
    const char *challenge;
    apr_status_t rv;

    rv = issue_challenge(ota, p, st, SCEP_CHALLENGE_OTA_PHASE1, user, user,
                         &challenge);
    if (APR_SUCCESS != rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5010) "OTA Phase 1: cannot store a "
                        "challenge");
        return rv;
    }
    rv = ota_sign_plist(p, ota->s.signer,
                        profile_service(ota, p, service_url, challenge),
                        body, len);
    if (APR_SUCCESS != rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5011) "OTA Phase 1: cannot sign the "
                        "Profile Service payload");
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

/* The capability list, word by word, in the configured order: the same
 * object the GetCACaps answer is made from. */
static plist_t caps_array(const scep_caps_t *caps)
{
    plist_t a = plist_new_array();
    int i;

    for (i = 0; i < scep_caps_count(caps); ++i) {
        plist_array_append_item(a, plist_new_string(scep_caps_word(caps, i)));
    }
    return a;
}

static plist_t scep_content(const ota_t *ota, apr_pool_t *p,
                            const ota_device_req_t *req,
                            const char *challenge)
{
    plist_t c = plist_new_dict();

    ota_plist_set_str(c, "URL", ota->s.scep_url);
    ota_plist_set_str(c, "Name", ota->s.scep_name);
    plist_dict_set_item(c, "Subject",
                        ota_subject_plist(p, ota->s.subject, req->attrs));
    ota_plist_set_str(c, "Challenge", challenge);
    ota_plist_set_uint(c, "Keysize", (apr_uint64_t)ota->s.key_size);
    ota_plist_set_str(c, "Key Type", "RSA");
    ota_plist_set_uint(c, "Key Usage", KEY_USAGE_SIGN_ENCRYPT);
    ota_plist_set_data(c, "CAFingerprint", ota->ca_fingerprint,
                       sizeof(ota->ca_fingerprint));
    ota_plist_set_uint(c, "Retries", (apr_uint64_t)ota->s.retries);
    ota_plist_set_uint(c, "RetryDelay", (apr_uint64_t)ota->s.retry_delay);
    if (!ota->s.no_caps_array) {
        plist_dict_set_item(c, "GetCACaps", caps_array(ota->caps));
    }
    return c;
}

static plist_t scep_profile(const ota_t *ota, apr_pool_t *p,
                            const ota_device_req_t *req,
                            const char *challenge)
{
    plist_t top = ota_plist_track(p, plist_new_dict());
    plist_t scep = plist_new_dict(), list = plist_new_array();

    payload_keys(ota, p, top, "Configuration", ".scep-enrollment",
                 ota->s.display_name,
                 "Obtains this device's identity certificate by SCEP.");
    payload_keys(ota, p, scep, SCEP_PAYLOAD_TYPE, ".scep-enrollment.scep",
                 "Device Identity", "SCEP enrollment of the device identity");
    plist_dict_set_item(scep, "PayloadContent",
                        scep_content(ota, p, req, challenge));
    plist_array_append_item(list, scep);
    plist_dict_set_item(top, "PayloadContent", list);
    return top;
}

/* Looks at the Phase 1 challenge, or consumes it (strictly once: a
 * replayed Phase 2 gets nothing); 0 or the HTTP status to refuse with.
 * *pbound is the user Phase 1 handed it to. */
static int phase1_challenge(apr_pool_t *p, scep_store_t *st,
                            const scep_logger_t *log, const char *user,
                            const ota_device_req_t *req, int consume,
                            const char **pbound)
{
    const char *challenge = apr_table_get(req->attrs, "CHALLENGE");
    const char *hash = challenge ? ota_challenge_hash(p, challenge) : NULL;
    const char *bound = NULL;
    apr_status_t rv = APR_NOTFOUND;

    *pbound = NULL;
    if (hash) {
        rv = consume ? st->ops->challenge_consume(st, p, hash,
                                                  SCEP_CHALLENGE_OTA_PHASE1,
                                                  NULL, &bound)
                     : st->ops->challenge_peek(st, p, hash,
                                               SCEP_CHALLENGE_OTA_PHASE1,
                                               NULL, &bound);
    }
    if (APR_SUCCESS != rv && !APR_STATUS_IS_NOTFOUND(rv)) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5013) "OTA Phase 2: the store failed while "
                        "consuming a challenge");
        return 503;
    }
    if (APR_SUCCESS != rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_WARNING, APR_SUCCESS, p,
                        SCEPLOGNO(5014) "OTA Phase 2 refused for UDID %s: "
                        "the CHALLENGE is %s", req->udid,
                        challenge ? "wrong, expired or already used"
                                  : "missing");
        return 403;
    }
    if (bound && user && strcmp(bound, user)) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_WARNING, APR_SUCCESS, p,
                        SCEPLOGNO(5015) "OTA Phase 2 refused for UDID %s: "
                        "the challenge was issued to '%s', not '%s'",
                        req->udid, bound, user);
        return 403;
    }
    *pbound = bound;
    return 0;
}

/* The binding of the SCEP challenge: exactly this subject, for this
 * device and user, so that the certificate says so and Phase 3 knows it. */
static const char *scep_binding(apr_pool_t *p, const char *subject,
                                const ota_device_req_t *req,
                                const char *user)
{
    scep_grant_t *g = scep_grant_make(p);

    g->subject = subject;
    g->udid = req->udid;
    g->user = user;
    return scep_grant_format(p, g);
}

apr_status_t ota_phase2(const ota_t *ota, apr_pool_t *p, scep_store_t *st,
                        const scep_logger_t *log, const char *user,
                        const ota_device_req_t *req,
                        const unsigned char **body, apr_size_t *len,
                        int *status)
{
    const char *challenge, *subject, *bound;
    apr_status_t rv;

    if (!req->udid) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                        SCEPLOGNO(5016) "OTA Phase 2: the device sent no "
                        "usable UDID");
        *status = 400;
        return APR_EINVAL;
    }
    /* the SCEP challenge only enrolls the subject this payload asks for;
     * attributes that make no subject (not UTF-8, too long) are the
     * device's fault, refused before its challenge is used up */
    subject = ota_subject_rfc2253(p, ota->s.subject, req->attrs);
    if (!subject) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                        SCEPLOGNO(7000) "OTA Phase 2 refused for UDID %s: "
                        "its attributes do not make a valid OTASubject",
                        req->udid);
        *status = 400;
        return APR_EINVAL;
    }
    /* the Phase 1 challenge is used up only once the SCEP challenge is
     * stored: a store failure leaves the device its retry */
    if ((*status = phase1_challenge(p, st, log, user, req, 0, &bound)) != 0) {
        return APR_EINVAL;
    }
    rv = issue_challenge(ota, p, st, SCEP_CHALLENGE_SCEP,
                         scep_binding(p, subject, req, bound ? bound : user),
                         bound ? bound : user, &challenge);
    if (APR_SUCCESS != rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5017) "OTA Phase 2: cannot store the SCEP "
                        "challenge for UDID %s", req->udid);
        *status = 503;
        return rv;
    }
    if ((*status = phase1_challenge(p, st, log, user, req, 1, &bound)) != 0) {
        return APR_EINVAL;
    }
    rv = ota_sign_plist(p, ota->s.signer,
                        scep_profile(ota, p, req, challenge), body, len);
    if (APR_SUCCESS != rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5018) "OTA Phase 2: cannot sign the SCEP "
                        "profile");
        *status = 500;
        return rv;
    }
    scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                    SCEPLOGNO(5019) "OTA Phase 2: SCEP profile for UDID %s "
                    "(%s, %s), subject %s", req->udid,
                    apr_table_get(req->attrs, "PRODUCT") ? apr_table_get(
                        req->attrs, "PRODUCT") : "?",
                    apr_table_get(req->attrs, "SERIAL") ? apr_table_get(
                        req->attrs, "SERIAL") : "?",
                    ota_subject_text(p, ota->s.subject, req->attrs));
    *status = 200;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Phase 3                                                             */

/* 0 when the signer is a valid certificate of our store. */
static int check_issued(apr_pool_t *p, scep_store_t *st,
                        const scep_logger_t *log, X509 *signer,
                        const char **serial, scep_cert_rec_t **prec)
{
    scep_cert_rec_t *rec = NULL;
    const unsigned char *der;
    apr_size_t len;
    apr_status_t rv;

    *serial = scep_cert_serial_hex(p, signer);
    rv = st->ops->cert_by_serial(st, p, *serial, &rec);
    if (APR_SUCCESS != rv && !APR_STATUS_IS_NOTFOUND(rv)) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5020) "OTA Phase 3: the store failed while "
                        "looking up serial %s", *serial);
        return 503;
    }
    if (APR_SUCCESS != rv || rec->status != SCEP_CERT_VALID
        || (rec->der && (APR_SUCCESS != scep_cert_der(p, signer, &der, &len)
                         || len != rec->der_len
                         || memcmp(der, rec->der, len)))) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_WARNING, APR_SUCCESS, p,
                        SCEPLOGNO(5021) "OTA Phase 3 refused: certificate "
                        "serial %s is %s", *serial,
                        APR_SUCCESS != rv ? "not in the store"
                        : rec->status != SCEP_CERT_VALID ? "revoked"
                        : "not the one the store holds");
        return 403;
    }
    *prec = rec;
    return 0;
}

/* 0 when the certificate was issued through Phase 2 to this device. */
static int check_enrolled(apr_pool_t *p, const scep_logger_t *log,
                          const scep_cert_rec_t *rec,
                          const ota_device_req_t *req)
{
    if (rec->udid && req->udid && !strcmp(rec->udid, req->udid)) {
        return 0;
    }
    scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_WARNING, APR_SUCCESS, p,
                    SCEPLOGNO(5026) "OTA Phase 3 refused: certificate serial "
                    "%s was not issued through OTA Phase 2 to UDID %s",
                    rec->serial, req->udid ? req->udid : "?");
    return 403;
}

/* The OTAProfile with its payloads encrypted to the signer, signed. */
static apr_status_t final_profile(const ota_t *ota, apr_pool_t *p,
                                  X509 *to, const unsigned char **body,
                                  apr_size_t *len)
{
    const ota_profile_t *prof = ota->s.profile;
    const unsigned char *env;
    apr_size_t env_len;
    plist_t shell;
    apr_status_t rv;

    rv = ota_cms_encrypt(p, to, ota->s.cipher_nid, prof->content_xml,
                         prof->content_len, &env, &env_len);
    if (APR_SUCCESS != rv) {
        return rv;
    }
    rv = ota_plist_parse(p, prof->shell_xml, prof->shell_len, 0, &shell);
    if (APR_SUCCESS != rv) {
        return rv;
    }
    ota_plist_set_data(shell, "EncryptedPayloadContent", env, env_len);
    return ota_sign_plist(p, ota->s.signer, shell, body, len);
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

apr_status_t ota_phase3(const ota_t *ota, apr_pool_t *p, scep_store_t *st,
                        const scep_logger_t *log,
                        const ota_device_req_t *req,
                        const unsigned char **body, apr_size_t *len,
                        int *status)
{
    const char *serial, *want, *got;
    scep_cert_rec_t *cert = NULL;
    apr_status_t rv;

    if ((*status = check_issued(p, st, log, req->signer, &serial, &cert)) != 0
        || (*status = check_enrolled(p, log, cert, req)) != 0) {
        return APR_EINVAL;
    }
    /* the attributes must describe the device the certificate was issued
     * to, or one device's identity could record another's UDID */
    want = ota_subject_rfc2253(p, ota->s.subject, req->attrs);
    got = scep_name_rfc2253(p, X509_get_subject_name(req->signer));
    if (!want || !got || strcmp(want, got)) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                        SCEPLOGNO(5025) "OTA Phase 3: the attributes describe "
                        "'%s' but certificate %s is for '%s'",
                        want ? want : "?", serial, got ? got : "?");
        *status = 403;
        return APR_EINVAL;
    }
    rv = final_profile(ota, p, req->signer, body, len);
    if (APR_SUCCESS != rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(5023) "OTA Phase 3: cannot encrypt or sign "
                        "the profile for serial %s", serial);
        *status = 500;
        return rv;
    }
    record_device(p, st, log, req, cert);
    scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, APR_SUCCESS, p,
                    SCEPLOGNO(5024) "OTA Phase 3: profile %s (%d payloads, "
                    "%s) for UDID %s, certificate serial %s",
                    ota->s.profile->identifier, ota->s.profile->count,
                    OBJ_nid2sn(ota->s.cipher_nid),
                    req->udid ? req->udid : "?", serial);
    *status = 200;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* POST                                                                */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "not a signed device request";
    case 403: return "refused";
    case 413: return "request too large";
    case 503: return "store unavailable";
    default:  return "server error";
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
    rv = ota_request_verify(ota, p, log, st, body, len, &req, &ans->status);
    if (APR_SUCCESS == rv) {
        ans->phase = req->phase;
        ans->udid = req->udid;
        rv = req->phase == 2
             ? ota_phase2(ota, p, st, log, user, req, &ans->body, &ans->len,
                          &ans->status)
             : ota_phase3(ota, p, st, log, req, &ans->body, &ans->len,
                          &ans->status);
    }
    ans->content_type = APR_SUCCESS == rv ? OTA_CT_ASPEN_CONFIG : NULL;
    ans->reason = reason(ans->status);
    return rv;
}
