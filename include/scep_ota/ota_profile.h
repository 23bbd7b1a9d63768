#ifndef OTA_PROFILE_H
#define OTA_PROFILE_H

/**
 * @file ota_profile.h
 * Apple Over-the-Air profile delivery, server side (Phases 1, 2 and 3 in
 * Apple's numbering; see shared/reference/ota-protocol.md).
 *
 * Configuration time: every OTA directive has a loader below that checks
 * its argument and returns what the request path needs; ota_create() then
 * ties them to the SCEP CA and the capability list once per server.
 *
 * Request time: ota_phase1() answers GET; ota_post() answers POST (Phase 2
 * or Phase 3, told apart by who issued the signer). Both give an outcome
 * (scep_outcome.h): the bytes of the body, or the kind of refusal; the
 * caller never sees ASN.1 or plists.
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

#include "scep_ota/scep_ca.h"
#include "scep_ota/scep_caps.h"
#include "scep_ota/scep_log.h"
#include "scep_ota/scep_outcome.h"
#include "scep_ota/scep_store.h"

/** Content type of every profile served (Phase 1, 2, 3). */
#define OTA_CT_ASPEN_CONFIG     "application/x-apple-aspen-config"
/** Content type of the device's POSTs. */
#define OTA_CT_PKCS7_SIGNATURE  "application/pkcs7-signature"

/** Largest device POST ota_post() looks at (bytes); larger is
 * SCEP_OUTCOME_TOO_LARGE. */
#define OTA_MAX_REQUEST         (64 * 1024)
/** Largest attribute plist inside a device POST. */
#define OTA_MAX_ATTRIBUTES      (16 * 1024)
/** Most certificates a device POST may carry. */
#define OTA_MAX_CERTS           8

/** Defaults applied by ota_create() to unset (0/NULL) settings. */
#define OTA_DEFAULT_ATTRIBUTES  "UDID VERSION PRODUCT SERIAL IMEI MEID"
#define OTA_DEFAULT_SUBJECT     "/CN=%{UDID}"
#define OTA_DEFAULT_KEY_SIZE    2048
#define OTA_DEFAULT_IDENTIFIER  "org.example.scep-ota"
#define OTA_DEFAULT_DISPLAY_NAME "Device Enrollment"
#define OTA_DEFAULT_SCEP_NAME   "scep-ota"
#define OTA_DEFAULT_RETRIES     3
#define OTA_DEFAULT_RETRY_DELAY 10
#define OTA_DEFAULT_CHALLENGE_TTL apr_time_from_sec(3600)

/* ------------------------------------------------------------------ */
/* configuration-time loaders, one per directive                       */

/** A signing identity: certificate, its key, and the chain to send. */
typedef struct ota_identity_t {
    X509 *cert;
    EVP_PKEY *key;
    apr_array_header_t *chain;   /* X509 *: further certs of the file */
} ota_identity_t;

/**
 * OTASigningCertificateFile + OTASigningKeyFile: loads both and checks
 * that the key is the certificate's. Certificates after the first in the
 * file are sent along as its chain.
 */
apr_status_t ota_identity_load(apr_pool_t *p, const char *cert_file,
                               const char *key_file, ota_identity_t **pid,
                               const char **err);

/** OTADeviceCACertificateFile: the trust anchors (X509 *) for Phase 2. */
apr_status_t ota_anchors_load(apr_pool_t *p, const char *file,
                              apr_array_header_t **anchors, const char **err);

/** A loaded OTAProfile (a Configuration profile), immutable. */
typedef struct ota_profile_t ota_profile_t;

/**
 * OTAProfile: reads the file (XML or binary plist) and checks that it is a
 * Configuration profile: PayloadType "Configuration", a PayloadContent
 * array of dictionaries, PayloadIdentifier, PayloadUUID, PayloadVersion.
 */
apr_status_t ota_profile_load(apr_pool_t *p, const char *file,
                              ota_profile_t **pprof, const char **err);
/** The same from bytes (name is used in messages). */
apr_status_t ota_profile_parse(apr_pool_t *p, const char *name,
                               const void *data, apr_size_t len,
                               ota_profile_t **pprof, const char **err);
/** Number of payloads in its PayloadContent. */
int ota_profile_payload_count(const ota_profile_t *prof);

/** A parsed OTASubject template. */
typedef struct ota_subject_t ota_subject_t;

/**
 * OTASubject: "/O=Example/OU=Devices/CN=%{UDID}". Each "/" starts an RDN,
 * "+" adds an attribute to the same RDN, "\" escapes the next character.
 * Names: C L ST O OU CN as they are, other names OpenSSL knows (e.g.
 * serialNumber) and dotted OIDs become dotted OIDs. Variables: %{UDID}
 * %{SERIAL} %{PRODUCT} %{VERSION} %{IMEI} %{MEID} %{DEVICE_NAME}; any
 * other is an error.
 */
apr_status_t ota_subject_parse(apr_pool_t *p, const char *tmpl,
                               ota_subject_t **psubj, const char **err);

/**
 * The subject for a device, as Apple's three-level array in XML-ish text
 * form for logs and tests: [[["O","Example"]],[["CN","0000-1111"]]].
 * attrs: device attributes (may be NULL).
 */
const char *ota_subject_text(apr_pool_t *p, const ota_subject_t *subj,
                             const apr_table_t *attrs);

/** OTADeviceAttributes: one word; names are upper-case A-Z, 0-9, "_". */
apr_status_t ota_attribute_check(apr_pool_t *p, const char *word,
                                 const char **err);

/** OTAKeySize: 1024, 2048 or 4096 (the only sizes iOS accepts). */
apr_status_t ota_key_size_parse(apr_pool_t *p, const char *arg, int *bits,
                                const char **err);

/** Phase 3 cipher: "3DES" (default), "AES-128" or "AES-256" -> NID. */
apr_status_t ota_cipher_parse(apr_pool_t *p, const char *arg, int *nid,
                              const char **err);

/** OTASCEPURL: an absolute http(s) URL without query or fragment. */
apr_status_t ota_url_check(apr_pool_t *p, const char *url, const char **err);

/** Everything the directives gave; unset fields are 0/NULL. */
typedef struct ota_settings_t {
    ota_identity_t *signer;          /* required */
    apr_array_header_t *device_cas;  /* X509 *, required */
    const char *scep_url;            /* OTASCEPURL, required */
    ota_profile_t *profile;          /* OTAProfile, required */
    apr_array_header_t *attributes;  /* const char *: OTADeviceAttributes */
    ota_subject_t *subject;          /* OTASubject */
    int key_size;                    /* OTAKeySize */
    const char *organization;        /* OTAOrganization */
    const char *identifier;          /* OTAProfileIdentifier */
    const char *display_name;        /* OTAProfileDisplayName */
    const char *scep_name;           /* SCEP payload Name */
    int cipher_nid;                  /* Phase 3 cipher; 0: 3DES */
    int retries;                     /* SCEP payload Retries; 0: default */
    int retry_delay;                 /* SCEP payload RetryDelay; 0: default */
    apr_interval_time_t challenge_ttl; /* Phase 1 and SCEP challenges */
    int no_caps_array;               /* 1: leave GetCACaps out (tests) */
} ota_settings_t;

/** The OTA service of one server, built once at startup. */
typedef struct ota_t ota_t;

/**
 * Checks that the settings fit together and precomputes what requests
 * need. ca and caps are the SCEP server's own (same objects the SCEP
 * handler answers GetCACert and GetCACaps from); they must outlive p.
 */
apr_status_t ota_create(ota_t **pota, apr_pool_t *p, const ota_settings_t *s,
                        const scep_ca_t *ca, const scep_caps_t *caps,
                        const char **err);

/**
 * A file name for Content-Disposition, e.g. "org.example.scep-ota.mobileconfig"
 * (only [A-Za-z0-9._-]).
 */
const char *ota_filename(const ota_t *ota);

/* ------------------------------------------------------------------ */
/* request time                                                        */

/**
 * Phase 1 (GET): a fresh one-time challenge (bound to user when not NULL,
 * e.g. r->user) stored in st, and the signed Profile Service payload whose
 * URL is service_url (the absolute URL of the ota-profile location), as
 * out->body with content type OTA_CT_ASPEN_CONFIG. Non-success: the store
 * or signing failed and out->kind is SCEP_OUTCOME_SERVER_ERROR, without a
 * reason.
 */
apr_status_t ota_phase1(const ota_t *ota, apr_pool_t *p, scep_store_t *st,
                        const scep_logger_t *log, const char *service_url,
                        const char *user, scep_outcome_t *out);

/** What ota_post() decided. */
typedef struct ota_answer_t {
    scep_outcome_t out;          /* the answer; every refusal has a reason */
    int phase;                   /* 2 or 3; 0 when it was not found out */
    const char *udid;            /* the device's, when known */
} ota_answer_t;

/**
 * Phase 2 or Phase 3 (POST). ans->out.kind: SCEP_OUTCOME_OK with a signed
 * profile; BAD_REQUEST unsigned or undecodable body; FORBIDDEN bad
 * signature, signer from an unknown CA, a revoked/unknown/invalid Phase 3
 * certificate, a wrong, expired or reused challenge; TOO_LARGE; UNAVAILABLE
 * store failure; SERVER_ERROR anything else. Every refusal is logged with
 * a tag. user: the authenticated user of the POST, or NULL. Returns
 * APR_SUCCESS when the kind is SCEP_OUTCOME_OK.
 */
apr_status_t ota_post(const ota_t *ota, apr_pool_t *p, scep_store_t *st,
                      const scep_logger_t *log, const char *user,
                      const unsigned char *body, apr_size_t len,
                      ota_answer_t *ans);

/* ------------------------------------------------------------------ */
/* the steps of ota_post(), for tests and tools                        */

/** A verified device POST. */
typedef struct ota_device_req_t {
    int phase;                   /* 2 or 3 */
    X509 *signer;
    apr_table_t *attrs;          /* string attributes (CHALLENGE too) */
    const char *udid;            /* attrs' UDID, sanitized, or NULL */
} ota_device_req_t;

/**
 * Decodes and verifies a device POST and classifies its signer: Phase 2
 * when a CA certificate of OTADeviceCACertificateFile issued it directly,
 * Phase 3 when our CA did. With st, a Phase 3 signer must be a valid
 * certificate of the store before its attributes are parsed. On failure
 * *kind is BAD_REQUEST, FORBIDDEN, TOO_LARGE or UNAVAILABLE and the reason
 * is logged.
 */
apr_status_t ota_request_verify(const ota_t *ota, apr_pool_t *p,
                                const scep_logger_t *log, scep_store_t *st,
                                const unsigned char *body, apr_size_t len,
                                ota_device_req_t **preq,
                                scep_outcome_kind_t *kind);

/** Phase 2 answer for a verified request (consumes its CHALLENGE). */
apr_status_t ota_phase2(const ota_t *ota, apr_pool_t *p, scep_store_t *st,
                        const scep_logger_t *log, const char *user,
                        const ota_device_req_t *req, scep_outcome_t *out);

/** Phase 3 answer for a verified request (checks the store). */
apr_status_t ota_phase3(const ota_t *ota, apr_pool_t *p, scep_store_t *st,
                        const scep_logger_t *log,
                        const ota_device_req_t *req, scep_outcome_t *out);

/* ------------------------------------------------------------------ */
/* one-time challenges                                                 */

/** Bytes of randomness in a challenge (URL-safe base64 text of it). */
#define OTA_CHALLENGE_BYTES 24

/**
 * A fresh one-time challenge: *clear is URL-safe text (A-Z a-z 0-9 - _)
 * to hand out, *hash its SHA-256 hex as the store keeps it.
 */
apr_status_t ota_challenge_make(apr_pool_t *p, const char **clear,
                                const char **hash);

/** The store form (lower-case SHA-256 hex) of a challenge text. */
const char *ota_challenge_hash(apr_pool_t *p, const char *clear);

#endif /* OTA_PROFILE_H */
