#ifndef SCEP_METRICS_H
#define SCEP_METRICS_H

/**
 * @file scep_metrics.h
 * The server's counters: one block of 64-bit counters that the caller
 * places in memory every process shares (httpd: anonymous shared memory
 * made by the parent), updated with atomic adds, so every count is the
 * whole server's. Rendered in the Prometheus text exposition format and
 * as "Key: value" lines (mod_status's ?auto).
 */

#include <apr_pools.h>
#include <apr_time.h>

/** SCEP operations counted per request. */
typedef enum {
    SCEP_MOP_GETCACAPS, SCEP_MOP_GETCACERT, SCEP_MOP_GETNEXTCACERT,
    SCEP_MOP_PKIOPERATION, SCEP_MOP_OTHER, SCEP_MOP_COUNT
} scep_metric_op_t;

/** PKIMessage types counted. */
typedef enum {
    SCEP_MMSG_PKCSREQ, SCEP_MMSG_RENEWALREQ, SCEP_MMSG_CERTPOLL,
    SCEP_MMSG_GETCERT, SCEP_MMSG_GETCRL, SCEP_MMSG_INVALID, SCEP_MMSG_COUNT
} scep_metric_msg_t;

/** Outcomes of a PKIMessage: SUCCESS, PENDING, FAILURE per failInfo,
 * and not a PKIMessage at all (a bad request). */
typedef enum {
    SCEP_MOUT_SUCCESS, SCEP_MOUT_PENDING, SCEP_MOUT_BADALG,
    SCEP_MOUT_BADMESSAGECHECK, SCEP_MOUT_BADREQUEST, SCEP_MOUT_BADTIME,
    SCEP_MOUT_BADCERTID, SCEP_MOUT_INVALID, SCEP_MOUT_COUNT
} scep_metric_outcome_t;

/** Upper bounds (seconds) of the PKIOperation latency histogram. */
#define SCEP_METRICS_BUCKETS 10

typedef struct scep_metrics_t scep_metrics_t;

/** Bytes the counters take. */
apr_size_t scep_metrics_size(void);

/** The counters in base (scep_metrics_size() bytes, zeroed by the caller
 * once; every process maps the same bytes). */
scep_metrics_t *scep_metrics_at(void *base);

void scep_metrics_request(scep_metrics_t *m, scep_metric_op_t op);

/**
 * One PKIOperation: its message type (SCEP_MSG_*, -1 undecodable), its
 * pkiStatus (SCEP_STATUS_*, -1 without a CertRep), failInfo, the reply's
 * tag ("issued", "renewed"...) and how long it took.
 */
void scep_metrics_pkiop(scep_metrics_t *m, int message_type, int pki_status,
                        int fail_info, const char *tag,
                        apr_interval_time_t took);

/** One OTA request: phase 1, 2 or 3 (0 unknown), served or refused. */
void scep_metrics_ota(scep_metrics_t *m, int phase, int served);

/** The store could not be used. */
void scep_metrics_store_error(scep_metrics_t *m);

/** A gauge a scrape adds: name (without the prefix), help, one label
 * ("" for none) and its value. */
typedef struct scep_gauge_t {
    const char *name;
    const char *help;
    const char *labels;          /* e.g. "vhost=\"a\",cert=\"ca\"" or "" */
    double value;
} scep_gauge_t;

/**
 * The Prometheus text exposition (version 0.0.4) of the counters and the
 * gauges (scep_gauge_t array, may be NULL), names prefixed scep_ota_.
 */
const char *scep_metrics_prometheus(apr_pool_t *p, const scep_metrics_t *m,
                                    const apr_array_header_t *gauges);

/** The same counters as "Key: value" lines (mod_status's ?auto). */
const char *scep_metrics_keyvalue(apr_pool_t *p, const scep_metrics_t *m);

#endif /* SCEP_METRICS_H */
