#ifndef SCEP_OCSP_H
#define SCEP_OCSP_H

/**
 * @file scep_ocsp.h
 * An OCSP responder (RFC 6960) over the store: for each certificate a
 * relying party asks about, good, revoked (with the time and reason the
 * store recorded) or unknown, signed by the CA or by a delegated OCSP
 * signer. Bad requests get an OCSPResponse with malformedRequest, a store
 * failure tryLater; nothing a client sends makes a server error.
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

#include "scep_ota/scep_ca.h"
#include "scep_ota/scep_log.h"
#include "scep_ota/scep_store.h"

/** Largest OCSP request read (POST body, or decoded GET), in bytes. */
#define SCEP_OCSP_MAX_REQUEST 16384
/** Most certificates asked about in one request. */
#define SCEP_OCSP_MAX_IDS 32
/** Seconds from a response's thisUpdate to its nextUpdate. */
#define SCEP_OCSP_VALIDITY 3600
#define SCEP_CT_OCSP_REQUEST "application/ocsp-request"
#define SCEP_CT_OCSP_RESPONSE "application/ocsp-response"

/** Who signs the responses of one CA. */
typedef struct scep_ocsp_cfg_t {
    const scep_ca_t *ca;
    X509 *signer;                /* ca->cert, or the delegated signer */
    EVP_PKEY *signer_key;
    int delegated;               /* the signer's certificate goes along */
} scep_ocsp_cfg_t;

/** What a request got. */
typedef struct scep_ocsp_answer_t {
    const unsigned char *der;    /* the OCSPResponse, from the pool */
    apr_size_t len;
    int status;                  /* OCSP_RESPONSE_STATUS_* */
    int good, revoked, unknown;  /* per certificate asked about */
    const char *first_serial;    /* the first serial asked about, or NULL */
} scep_ocsp_answer_t;

/**
 * Checks a delegated OCSP signer: issued by the CA, extendedKeyUsage
 * id-kp-OCSPSigning, key matching. *warning (NULL when none) says when it
 * lacks id-pkix-ocsp-nocheck (relying parties then look for its own
 * revocation status). On refusal *err says why.
 */
apr_status_t scep_ocsp_signer_check(apr_pool_t *p, const scep_ca_t *ca,
                                    X509 *cert, EVP_PKEY *key,
                                    const char **err, const char **warning);

/**
 * Answers one DER OCSPRequest from the store st (scoped to cfg->ca). Always
 * fills *ans with a response to send; APR_SUCCESS unless even an error
 * response could not be encoded.
 */
apr_status_t scep_ocsp_respond(apr_pool_t *p, const scep_logger_t *log,
                               const scep_ocsp_cfg_t *cfg, scep_store_t *st,
                               const unsigned char *req, apr_size_t len,
                               scep_ocsp_answer_t *ans);

#endif /* SCEP_OCSP_H */
