/* The CRL a CA publishes: read from the store while it is fresh, built,
 * numbered and published when it is not. */

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <openssl/err.h>

#include "scep_ota/scep_crl.h"

/* how often a request goes round when other processes keep publishing
 * (or pruning) under it */
#define CURRENT_TRIES 4

/* ------------------------------------------------------------------ */
/* the cache of one process                                            */

/* One CRL: a cache serves one CA (one per virtual host). Its memory is
 * malloc'd, not the pool's: it changes in the children, whose threads
 * must not allocate from a pool made before the fork. */
struct scep_crl_cache_t {
#if APR_HAS_THREADS
    apr_thread_mutex_t *lock;
#endif
    char *ca;                    /* the CA id of the CRL held */
    apr_int64_t number;
    unsigned char *der;
    apr_size_t der_len;
};

static void cache_lock(scep_crl_cache_t *c)
{
#if APR_HAS_THREADS
    apr_thread_mutex_lock(c->lock);
#else
    (void)c;
#endif
}

static void cache_unlock(scep_crl_cache_t *c)
{
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(c->lock);
#else
    (void)c;
#endif
}

static apr_status_t cache_free(void *data)
{
    scep_crl_cache_t *c = data;

    free(c->ca);
    free(c->der);
    c->ca = NULL;
    c->der = NULL;
    return APR_SUCCESS;
}

scep_crl_cache_t *scep_crl_cache_create(apr_pool_t *p)
{
    scep_crl_cache_t *c = apr_pcalloc(p, sizeof(*c));

#if APR_HAS_THREADS
    if (APR_SUCCESS != apr_thread_mutex_create(&c->lock,
                                               APR_THREAD_MUTEX_DEFAULT, p)) {
        return NULL;
    }
#endif
    apr_pool_cleanup_register(p, c, cache_free, apr_pool_cleanup_null);
    return c;
}

/* The DER of crl (by its number) of that CA, copied into p, if the
 * cache holds it. */
static int cache_get(scep_crl_cache_t *c, apr_pool_t *p, const char *ca,
                     scep_crl_rec_t *crl)
{
    int hit = 0;

    if (!c) {
        return 0;
    }
    cache_lock(c);
    if (c->der && c->number == crl->number && !strcmp(c->ca, ca)) {
        crl->der = apr_pmemdup(p, c->der, c->der_len);
        crl->der_len = c->der_len;
        hit = 1;
    }
    cache_unlock(c);
    return hit;
}

/* Holds a CRL, unless a newer one of the same CA is held already. */
static void cache_put(scep_crl_cache_t *c, const char *ca,
                      const scep_crl_rec_t *crl)
{
    unsigned char *der;
    char *id;

    if (!c || !crl->der || !(der = malloc(crl->der_len ? crl->der_len : 1))) {
        return;
    }
    if (!(id = strdup(ca))) {
        free(der);
        return;
    }
    memcpy(der, crl->der, crl->der_len);
    cache_lock(c);
    if (!c->der || strcmp(c->ca, ca) || c->number < crl->number) {
        free(c->ca);
        free(c->der);
        c->ca = id;
        c->number = crl->number;
        c->der = der;
        c->der_len = crl->der_len;
        id = NULL;
        der = NULL;
    }
    cache_unlock(c);
    free(id);
    free(der);
}

/* ------------------------------------------------------------------ */
/* deciding                                                            */

const char *scep_crl_mark(apr_pool_t *p, apr_int64_t count,
                          apr_time_t latest)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT ":%" APR_INT64_T_FMT, count,
                        (apr_int64_t)latest);
}

int scep_crl_fresh(const scep_crl_rec_t *crl, const char *mark,
                   int validity_days, apr_time_t now)
{
    apr_interval_time_t span = apr_time_from_sec((apr_int64_t)validity_days
                                                 * 86400);

    if (!crl || !crl->revocations || !mark
        || strcmp(crl->revocations, mark)) {
        return 0;
    }
    if (crl->next_update - crl->this_update < span) {
        span = crl->next_update - crl->this_update;
    }
    return now < crl->this_update + span / 2 && now < crl->next_update;
}

/* The mark of the revocations a list holds, counted as the store
 * counts them. */
static const char *mark_of(apr_pool_t *p, const apr_array_header_t *recs)
{
    const scep_cert_rec_t *rec;
    apr_int64_t count = 0;
    apr_time_t latest = 0;
    int i;

    for (i = 0; i < recs->nelts; ++i) {
        rec = APR_ARRAY_IDX(recs, i, const scep_cert_rec_t *);
        if (rec->status == SCEP_CERT_REVOKED) {
            ++count;
            latest = rec->revoked_at > latest ? rec->revoked_at : latest;
        }
    }
    return scep_crl_mark(p, count, latest);
}

/* ------------------------------------------------------------------ */
/* publishing                                                          */

/* The number and the validity, from now, of the CRL that follows last (or
 * of the first). */
static void number_and_dates(scep_crl_rec_t *rec, const scep_crl_rec_t *last,
                             int validity_days)
{
    rec->number = last ? last->number + 1 : 1;
    rec->this_update = apr_time_from_sec(apr_time_sec(apr_time_now()));
    rec->next_update = rec->this_update
        + apr_time_from_sec((apr_int64_t)validity_days * 86400);
}

/* Builds the CRL that follows last (or the first) from the revocations
 * the store holds now, and publishes it. APR_EEXIST: another process
 * published that number first. */
static apr_status_t publish_next(apr_pool_t *p, const scep_logger_t *log,
                                 const scep_ca_t *ca, int validity_days,
                                 scep_store_t *st, const scep_crl_rec_t *last,
                                 scep_crl_rec_t **out)
{
    scep_crl_rec_t *rec = apr_pcalloc(p, sizeof(*rec));
    apr_array_header_t *recs;
    X509_CRL *crl;
    unsigned char *der = NULL;
    apr_status_t rv;
    int n;

    rv = st->ops->cert_list(st, p, SCEP_CERT_REVOKED, &recs);
    if (APR_SUCCESS != rv) {
        return rv;
    }
    number_and_dates(rec, last, validity_days);
    rec->revocations = mark_of(p, recs);
    rv = scep_crl_sign(p, ca, recs, rec->number, rec->this_update,
                       rec->next_update, &crl);
    if (APR_SUCCESS != rv || (n = i2d_X509_CRL(crl, &der)) <= 0) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(6001) "CRL %" APR_INT64_T_FMT ": cannot "
                        "sign it", rec->number);
        ERR_clear_error();
        return APR_SUCCESS != rv ? rv : APR_EGENERAL;
    }
    rec->der = apr_pmemdup(p, der, (apr_size_t)n);
    rec->der_len = (apr_size_t)n;
    OPENSSL_free(der);
    rv = st->ops->crl_publish(st, p, rec);
    if (APR_SUCCESS == rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_INFO, 0, p,
                        SCEPLOGNO(6002) "CRL %" APR_INT64_T_FMT " published "
                        "(%d revoked, next update in %d days)", rec->number,
                        recs->nelts, validity_days);
        *out = rec;
    }
    else if (APR_STATUS_IS_EEXIST(rv)) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_DEBUG, 0, p,
                        SCEPLOGNO(6003) "CRL %" APR_INT64_T_FMT " was "
                        "published by another process first; serving "
                        "that one", rec->number);
    }
    return rv;
}

/* The published CRL if it is fresh, with its der: *crl NULL when it is
 * not (or there is none). APR_NOTFOUND: it went while we read it. */
static apr_status_t published(apr_pool_t *p, const scep_ca_t *ca,
                              int validity_days, scep_store_t *st,
                              scep_crl_cache_t *cache,
                              scep_crl_rec_t **last, scep_crl_rec_t **crl)
{
    apr_int64_t count;
    apr_time_t latest;
    scep_crl_rec_t *full;
    apr_status_t rv;

    *last = *crl = NULL;
    rv = st->ops->revocation_mark(st, p, &count, &latest);
    if (APR_SUCCESS == rv) {
        rv = st->ops->crl_latest(st, p, last);
    }
    if (APR_STATUS_IS_NOTFOUND(rv)) {
        return APR_SUCCESS;
    }
    if (APR_SUCCESS != rv
        || !scep_crl_fresh(*last, scep_crl_mark(p, count, latest),
                           validity_days, apr_time_now())) {
        return rv;
    }
    if (cache_get(cache, p, ca->id, *last)) {
        *crl = *last;
        return APR_SUCCESS;
    }
    rv = st->ops->crl_get(st, p, (*last)->number, &full);
    if (APR_SUCCESS == rv) {
        cache_put(cache, ca->id, full);
        *crl = full;
    }
    return rv;
}

apr_status_t scep_crl_current(apr_pool_t *p, const scep_logger_t *log,
                              const scep_ca_t *ca, int validity_days,
                              scep_store_t *st, scep_crl_cache_t *cache,
                              const scep_crl_rec_t **crl)
{
    scep_crl_rec_t *last, *found;
    apr_status_t rv = APR_EGENERAL;
    int tries;

    if (validity_days <= 0) {
        validity_days = SCEP_CRL_VALIDITY_DEFAULT;
    }
    for (tries = 0; tries < CURRENT_TRIES; ++tries) {
        rv = published(p, ca, validity_days, st, cache, &last, &found);
        if (APR_STATUS_IS_NOTFOUND(rv)) {
            continue;
        }
        if (APR_SUCCESS == rv && !found) {
            rv = publish_next(p, log, ca, validity_days, st, last, &found);
            if (APR_STATUS_IS_EEXIST(rv)) {
                continue;
            }
            if (APR_SUCCESS == rv) {
                cache_put(cache, ca->id, found);
            }
        }
        if (APR_SUCCESS == rv) {
            *crl = found;
        }
        break;
    }
    if (APR_SUCCESS != rv) {
        scep_log_perror(log, SCEP_LOG_MARK, SCEP_LOG_ERR, rv, p,
                        SCEPLOGNO(6004) "CRL: %s",
                        tries == CURRENT_TRIES
                        ? "other processes kept publishing; gave up"
                        : "the store failed");
    }
    return rv;
}
