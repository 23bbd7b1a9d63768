/* The server's counters in shared memory, and how a scrape reads them. */

#include <string.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "scep_ota/scep_metrics.h"
#include "scep_ota/scep_pkimsg.h"

static const char *const op_names[SCEP_MOP_COUNT] = {
    "GetCACaps", "GetCACert", "GetNextCACert", "PKIOperation", "other"
};
static const char *const msg_names[SCEP_MMSG_COUNT] = {
    "PKCSReq", "RenewalReq", "CertPoll", "GetCert", "GetCRL", "invalid"
};
static const char *const out_names[SCEP_MOUT_COUNT] = {
    "SUCCESS", "PENDING", "badAlg", "badMessageCheck", "badRequest",
    "badTime", "badCertId", "invalid"
};
static const double buckets[SCEP_METRICS_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5
};

struct scep_metrics_t {
    apr_uint64_t requests[SCEP_MOP_COUNT];
    apr_uint64_t messages[SCEP_MMSG_COUNT][SCEP_MOUT_COUNT];
    apr_uint64_t issued, renewed, refused;
    apr_uint64_t ota[4][2];              /* [phase][served] */
    apr_uint64_t store_errors;
    apr_uint64_t latency[SCEP_METRICS_BUCKETS + 1]; /* last: +Inf */
    apr_uint64_t latency_us, latency_count;
};

apr_size_t scep_metrics_size(void)
{
    return sizeof(scep_metrics_t);
}

scep_metrics_t *scep_metrics_at(void *base)
{
    return base;
}

static void inc(apr_uint64_t *c)
{
    apr_atomic_inc64(c);
}

static apr_uint64_t get(const apr_uint64_t *c)
{
    return apr_atomic_read64((volatile apr_uint64_t *)c);
}

void scep_metrics_request(scep_metrics_t *m, scep_metric_op_t op)
{
    if (m && op >= 0 && op < SCEP_MOP_COUNT) {
        inc(&m->requests[op]);
    }
}

static scep_metric_msg_t msg_of(int type)
{
    switch (type) {
    case SCEP_MSG_PKCSREQ: return SCEP_MMSG_PKCSREQ;
    case SCEP_MSG_RENEWALREQ: return SCEP_MMSG_RENEWALREQ;
    case SCEP_MSG_CERTPOLL: return SCEP_MMSG_CERTPOLL;
    case SCEP_MSG_GETCERT: return SCEP_MMSG_GETCERT;
    case SCEP_MSG_GETCRL: return SCEP_MMSG_GETCRL;
    default: return SCEP_MMSG_INVALID;
    }
}

static scep_metric_outcome_t outcome_of(int status, int fail_info)
{
    if (status == SCEP_STATUS_SUCCESS) {
        return SCEP_MOUT_SUCCESS;
    }
    if (status == SCEP_STATUS_PENDING) {
        return SCEP_MOUT_PENDING;
    }
    if (status != SCEP_STATUS_FAILURE) {
        return SCEP_MOUT_INVALID;
    }
    switch (fail_info) {
    case SCEP_FAIL_BADALG: return SCEP_MOUT_BADALG;
    case SCEP_FAIL_BADMESSAGECHECK: return SCEP_MOUT_BADMESSAGECHECK;
    case SCEP_FAIL_BADTIME: return SCEP_MOUT_BADTIME;
    case SCEP_FAIL_BADCERTID: return SCEP_MOUT_BADCERTID;
    default: return SCEP_MOUT_BADREQUEST;
    }
}

void scep_metrics_pkiop(scep_metrics_t *m, int message_type, int pki_status,
                        int fail_info, const char *tag,
                        apr_interval_time_t took)
{
    scep_metric_msg_t msg = msg_of(message_type);
    int i;

    if (!m) {
        return;
    }
    inc(&m->messages[msg][outcome_of(pki_status, fail_info)]);
    if (tag && !strcmp(tag, "issued")) {
        inc(&m->issued);
    }
    else if (tag && !strcmp(tag, "renewed")) {
        inc(&m->renewed);
    }
    else if (pki_status == SCEP_STATUS_FAILURE
             && (msg == SCEP_MMSG_PKCSREQ || msg == SCEP_MMSG_RENEWALREQ)) {
        inc(&m->refused);
    }
    for (i = 0; i < SCEP_METRICS_BUCKETS; ++i) {
        if ((double)took <= buckets[i] * APR_USEC_PER_SEC) {
            break;
        }
    }
    inc(&m->latency[i]);
    apr_atomic_add64(&m->latency_us, (apr_uint64_t)(took > 0 ? took : 0));
    inc(&m->latency_count);
}

void scep_metrics_ota(scep_metrics_t *m, int phase, int served)
{
    if (m) {
        inc(&m->ota[phase >= 1 && phase <= 3 ? phase : 0][served ? 1 : 0]);
    }
}

void scep_metrics_store_error(scep_metrics_t *m)
{
    if (m) {
        inc(&m->store_errors);
    }
}

/* ------------------------------------------------------------------ */
/* rendering                                                           */

static void family(apr_array_header_t *out, const char *name,
                   const char *type, const char *help)
{
    APR_ARRAY_PUSH(out, const char *) = apr_psprintf(
        out->pool, "# HELP scep_ota_%s %s\n# TYPE scep_ota_%s %s\n", name,
        help, name, type);
}

static void sample(apr_array_header_t *out, const char *name,
                   const char *labels, apr_uint64_t v)
{
    APR_ARRAY_PUSH(out, const char *) = apr_psprintf(
        out->pool, "scep_ota_%s%s%s%s %" APR_UINT64_T_FMT "\n", name,
        *labels ? "{" : "", labels, *labels ? "}" : "", v);
}

static void counters(apr_array_header_t *o, const scep_metrics_t *m)
{
    apr_pool_t *p = o->pool;
    int i, j;

    family(o, "requests_total", "counter", "SCEP requests per operation.");
    for (i = 0; i < SCEP_MOP_COUNT; ++i) {
        sample(o, "requests_total",
               apr_psprintf(p, "operation=\"%s\"", op_names[i]),
               get(&m->requests[i]));
    }
    family(o, "pkimessages_total", "counter",
           "PKIOperation messages per type and outcome (SUCCESS, PENDING, "
           "the failInfo of a FAILURE, or invalid: no PKIMessage).");
    for (i = 0; i < SCEP_MMSG_COUNT; ++i) {
        for (j = 0; j < SCEP_MOUT_COUNT; ++j) {
            if ((i == SCEP_MMSG_INVALID) != (j == SCEP_MOUT_INVALID)
                && get(&m->messages[i][j]) == 0) {
                continue; /* combinations that cannot happen */
            }
            sample(o, "pkimessages_total",
                   apr_psprintf(p, "type=\"%s\",outcome=\"%s\"",
                                msg_names[i], out_names[j]),
                   get(&m->messages[i][j]));
        }
    }
    family(o, "certificates_issued_total", "counter",
           "Certificates issued to new enrollments.");
    sample(o, "certificates_issued_total", "", get(&m->issued));
    family(o, "certificates_renewed_total", "counter",
           "Certificates issued to renewals.");
    sample(o, "certificates_renewed_total", "", get(&m->renewed));
    family(o, "certificates_refused_total", "counter",
           "Enrollment and renewal requests answered FAILURE.");
    sample(o, "certificates_refused_total", "", get(&m->refused));
    family(o, "ota_requests_total", "counter",
           "OTA profile requests per phase (0: not found out) and outcome.");
    for (i = 0; i < 4; ++i) {
        for (j = 0; j < 2; ++j) {
            sample(o, "ota_requests_total",
                   apr_psprintf(p, "phase=\"%d\",outcome=\"%s\"", i,
                                j ? "served" : "refused"),
                   get(&m->ota[i][j]));
        }
    }
    family(o, "store_errors_total", "counter",
           "Requests that found the store unavailable.");
    sample(o, "store_errors_total", "", get(&m->store_errors));
}

static void histogram(apr_array_header_t *o, const scep_metrics_t *m)
{
    apr_uint64_t cum = 0;
    int i;

    family(o, "pkioperation_duration_seconds", "histogram",
           "Time to answer a PKIOperation.");
    for (i = 0; i <= SCEP_METRICS_BUCKETS; ++i) {
        cum += get(&m->latency[i]);
        sample(o, "pkioperation_duration_seconds_bucket",
               i < SCEP_METRICS_BUCKETS
               ? apr_psprintf(o->pool, "le=\"%g\"", buckets[i])
               : "le=\"+Inf\"", cum);
    }
    APR_ARRAY_PUSH(o, const char *) = apr_psprintf(
        o->pool, "scep_ota_pkioperation_duration_seconds_sum %.6f\n",
        (double)get(&m->latency_us) / APR_USEC_PER_SEC);
    sample(o, "pkioperation_duration_seconds_count", "",
           get(&m->latency_count));
}

static void gauges(apr_array_header_t *o, const apr_array_header_t *g)
{
    const char *last = "";
    int i;

    for (i = 0; g && i < g->nelts; ++i) {
        const scep_gauge_t *x = &APR_ARRAY_IDX(g, i, scep_gauge_t);
        if (strcmp(last, x->name)) {
            family(o, x->name, "gauge", x->help);
            last = x->name;
        }
        APR_ARRAY_PUSH(o, const char *) = apr_psprintf(
            o->pool, "scep_ota_%s%s%s%s %.0f\n", x->name,
            *x->labels ? "{" : "", x->labels, *x->labels ? "}" : "",
            x->value);
    }
}

static const char *joined(apr_array_header_t *o)
{
    return apr_array_pstrcat(o->pool, o, '\0');
}

const char *scep_metrics_prometheus(apr_pool_t *p, const scep_metrics_t *m,
                                    const apr_array_header_t *g)
{
    apr_array_header_t *o = apr_array_make(p, 128, sizeof(const char *));

    counters(o, m);
    histogram(o, m);
    gauges(o, g);
    return joined(o);
}

const char *scep_metrics_keyvalue(apr_pool_t *p, const scep_metrics_t *m)
{
    apr_array_header_t *o = apr_array_make(p, 64, sizeof(const char *));
    apr_uint64_t failures = 0;
    int i, j;

#define KV(k, v) (APR_ARRAY_PUSH(o, const char *) = apr_psprintf( \
    p, "SCEP%s: %" APR_UINT64_T_FMT "\n", k, (apr_uint64_t)(v)))
    for (i = 0; i < SCEP_MOP_COUNT; ++i) {
        KV(apr_pstrcat(p, "Requests", op_names[i], NULL),
           get(&m->requests[i]));
    }
    for (i = 0; i < SCEP_MMSG_COUNT; ++i) {
        for (j = SCEP_MOUT_BADALG; j < SCEP_MOUT_INVALID; ++j) {
            failures += get(&m->messages[i][j]);
        }
    }
    KV("CertificatesIssued", get(&m->issued));
    KV("CertificatesRenewed", get(&m->renewed));
    KV("CertificatesRefused", get(&m->refused));
    KV("PKIMessageFailures", failures);
    KV("OTAServed", get(&m->ota[1][1]) + get(&m->ota[2][1])
                    + get(&m->ota[3][1]));
    KV("OTARefused", get(&m->ota[0][0]) + get(&m->ota[1][0])
                     + get(&m->ota[2][0]) + get(&m->ota[3][0]));
    KV("StoreErrors", get(&m->store_errors));
    KV("PKIOperationCount", get(&m->latency_count));
#undef KV
    return joined(o);
}
