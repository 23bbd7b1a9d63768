#ifndef SCEP_CRL_H
#define SCEP_CRL_H

/**
 * @file scep_crl.h
 * The CRL a CA publishes. One CRL per CA lives in the store, shared by
 * every process and node: it is served as it is until the revocations
 * change or half of its validity has passed, and then the first request
 * to notice builds the next one (cRLNumber one more) and publishes it.
 * Two processes racing to publish the same number publish one CRL: the
 * store refuses the second, which serves the first.
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>

#include "scep_ota/scep_ca.h"
#include "scep_ota/scep_log.h"
#include "scep_ota/scep_store.h"

/** SCEPCRLValidity: days from thisUpdate to nextUpdate. */
#define SCEP_CRL_VALIDITY_DEFAULT 7
#define SCEP_CRL_VALIDITY_MIN 1
#define SCEP_CRL_VALIDITY_MAX 366

/** The content type of a DER CRL (RFC 2585). */
#define SCEP_CT_PKIX_CRL "application/pkix-crl"

/** What a process remembers of the CRL it served last (one cache per CA):
 * its DER, so a request that finds it still current reads no more than
 * its header from the store. Thread-safe; make it before the fork. */
typedef struct scep_crl_cache_t scep_crl_cache_t;

/** A cache living as long as p; NULL when it cannot be made (then
 * callers go without). */
scep_crl_cache_t *scep_crl_cache_create(apr_pool_t *p);

/** The revocation set a CRL lists, as the store counts it (see
 * revocation_mark in scep_store.h). */
const char *scep_crl_mark(apr_pool_t *p, apr_int64_t count,
                          apr_time_t latest);

/**
 * Whether crl may still be served at now: it lists the revocations mark
 * says, and less than half of its validity (validity_days, or its own
 * nextUpdate when that is sooner) has passed.
 */
int scep_crl_fresh(const scep_crl_rec_t *crl, const char *mark,
                   int validity_days, apr_time_t now);

/**
 * Signs a CRL of the revoked certificates in recs (scep_cert_rec_t *;
 * others are skipped) with that cRLNumber, thisUpdate and nextUpdate
 * (whole seconds). Tracked by p.
 */
apr_status_t scep_crl_sign(apr_pool_t *p, const scep_ca_t *ca,
                           const apr_array_header_t *recs,
                           apr_int64_t number, apr_time_t this_update,
                           apr_time_t next_update, X509_CRL **crl);

/**
 * The CRL to serve now for the store's CA (st scoped to ca): the
 * published one while it is fresh, else a new one, published. cache may
 * be NULL. *crl (with its der) is allocated from p. A failure of the
 * store is returned as it is, and logged.
 */
apr_status_t scep_crl_current(apr_pool_t *p, const scep_logger_t *log,
                              const scep_ca_t *ca, int validity_days,
                              scep_store_t *st, scep_crl_cache_t *cache,
                              const scep_crl_rec_t **crl);

#endif /* SCEP_CRL_H */
