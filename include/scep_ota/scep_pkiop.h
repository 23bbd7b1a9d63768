#ifndef SCEP_PKIOP_H
#define SCEP_PKIOP_H

/**
 * @file scep_pkiop.h
 * The server side of one SCEP PKIOperation: decode, authorize, issue (or
 * find, poll, revoke-list) and answer with a signed CertRep. The caller (the
 * httpd glue, the CLI, the tests) hands in the raw message bytes (already
 * base64-decoded for GET) and sends back what the reply says.
 *
 * Whatever can be answered with a signed CertRep is (FAILURE with badAlg,
 * badMessageCheck, badRequest or badCertId); only input that cannot be read
 * as a pkiMessage at all gets BAD_REQUEST. Every decrypt or decode failure of
 * the envelope and its content gives the same answer (no oracle).
 */

#include <apr_pools.h>
#include <apr_tables.h>

#include "scep_ota/scep_ca.h"
#include "scep_ota/scep_caps.h"
#include "scep_ota/scep_log.h"
#include "scep_ota/scep_outcome.h"
#include "scep_ota/scep_policy.h"
#include "scep_ota/scep_store.h"
#include "scep_ota/scep_tally.h"

/** Default of SCEPRenewalWindow: the last half of the validity. */
#define SCEP_DEFAULT_RENEWAL_PERCENT 50

/** How the server answers PKIOperations; built once at startup. */
typedef struct scep_pkiop_cfg_t {
    const scep_ca_t *ca;
    const scep_caps_t *caps;          /* may be NULL */
    const char *challenge_password;   /* static challenge; NULL: none */
    int approval_manual;              /* PKCSReq -> PENDING until approved */
    int allow_legacy;                 /* single DES and MD5 accepted */
    int lifetime_days;                /* <= 0: SCEP_DEFAULT_LIFETIME_DAYS */
    int min_key_size;                 /* RSA bits; <= 0: 2048 */
    int crl_days;                     /* SCEPCRLValidity; <= 0: 7 */
    struct scep_crl_cache_t *crl_cache; /* the process's CRLs, or NULL */
    const apr_array_header_t *next_ca_certs; /* X509 *; NULL: none */
    scep_name_policy_t names;         /* what a certificate may say */
    /* a renewal is accepted from notAfter - window on: the window in days,
     * or in percent of the validity; both <= 0: the default percent */
    int renewal_window_days;
    int renewal_window_percent;
    int revoke_superseded;            /* a renewal revokes what it renews */
    int revoke_previous;              /* a certificate for an OTA device
                                         revokes the device's older ones
                                         (OTARevokePrevious) */
    int max_clock_skew;               /* seconds a signingTime may be off
                                         (FAILURE badTime); 0: not checked */
    /* refused challenges per client address and per user of the page,
     * counted for the log; NULL: not counted */
    scep_tally_t *tally;
} scep_pkiop_cfg_t;

/** The answer to send, and what to log about it. */
typedef struct scep_pkiop_reply_t {
    scep_outcome_kind_t kind;      /* OK, BAD_REQUEST for undecodable
                                      input, SERVER_ERROR: no CertRep */
    const char *content_type;      /* SCEP_CT_PKI_MESSAGE; NULL unless OK */
    const unsigned char *body;     /* NULL unless OK */
    apr_size_t len;
    /* for the caller's log line and counters */
    int message_type;              /* -1 when undecodable */
    const char *transaction_id;    /* NULL when undecodable */
    int pki_status;                /* SCEP_STATUS_*, -1 without a CertRep */
    int fail_info;                 /* SCEP_FAIL_*, SCEP_FAIL_NONE if none */
    const char *serial;            /* certificate issued or returned */
    const char *subject;           /* its subject (RFC 2253), or NULL */
    apr_array_header_t *sans;      /* its SANs (text form), or NULL */
    const char *udid;              /* the OTA device it was issued for */
    /* serials of certificates this request revoked as superseded
     * (SCEPRevokeSuperseded, OTARevokePrevious), or NULL */
    const apr_array_header_t *revoked;
    const char *reason;            /* why a FAILURE, or NULL */
    /* one word: "issued", "renewed", "repeated" (idempotent retry),
     * "pending", "found" (GetCert/CertPoll), "crl", "failed", "invalid" */
    const char *tag;
    /* e.g. "PKCSReq txid=ABC SUCCESS serial=4A1F..." (no secrets) */
    const char *summary;
} scep_pkiop_reply_t;

/**
 * Handles one PKIOperation message (DER/BER bytes). store is required,
 * scoped to cfg->ca (scep_store_scoped) when several CAs may share it.
 * Returns APR_SUCCESS whenever *reply holds an answer (a CertRep, or
 * BAD_REQUEST); anything else means the server itself failed (it could not
 * sign a CertRep: SERVER_ERROR); client input never causes that.
 * Allocations come from p (one request's pool).
 */
apr_status_t scep_pkiop_handle(apr_pool_t *p, const scep_logger_t *log,
                               const scep_pkiop_cfg_t *cfg,
                               scep_store_t *store,
                               const unsigned char *msg, apr_size_t len,
                               scep_pkiop_reply_t *reply);

/**
 * The same, for a request from client (its IP address as text, or NULL),
 * which the log names when a challenge is refused.
 */
apr_status_t scep_pkiop_handle_from(apr_pool_t *p, const scep_logger_t *log,
                                    const scep_pkiop_cfg_t *cfg,
                                    scep_store_t *store, const char *client,
                                    const unsigned char *msg, apr_size_t len,
                                    scep_pkiop_reply_t *reply);

/**
 * The GetNextCACert answer (content type SCEP_CT_NEXT_CA_CERT), signed by
 * the current CA/RA; compute it once at startup. APR_NOTFOUND when
 * cfg->next_ca_certs is empty.
 */
apr_status_t scep_pkiop_next_ca(apr_pool_t *p, const scep_pkiop_cfg_t *cfg,
                                const unsigned char **body, apr_size_t *len);

#endif /* SCEP_PKIOP_H */
