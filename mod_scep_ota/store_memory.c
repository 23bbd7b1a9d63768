/* A process-local store in memory, for unit tests and benchmarks. Same
 * constraints as the database backends: unique serials, one issuance per
 * (transactionID, key) and per origin, atomic challenge consumption, and
 * every record scoped to its CA. */

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "scep_ota/scep_store.h"

typedef struct {
    const char *ca;
    scep_challenge_rec_t rec;
    const char *consumed_by;
} challenge_t;

/* a record and the CA it belongs to */
typedef struct {
    const char *ca;
    void *rec;
} owned_t;

typedef struct {
    apr_pool_t *pool;
    apr_thread_mutex_t *lock;
    apr_array_header_t *certs;       /* owned_t: scep_cert_rec_t * */
    apr_array_header_t *challenges;  /* challenge_t * */
    apr_array_header_t *pending;     /* owned_t: scep_pending_rec_t * */
    apr_array_header_t *devices;     /* owned_t: scep_device_rec_t * */
    apr_array_header_t *crls;        /* owned_t: scep_crl_rec_t * */
} mem_t;

#define MEM(st) ((mem_t *)(st)->backend)

static const char *dup_s(apr_pool_t *p, const char *s)
{
    return s ? apr_pstrdup(p, s) : NULL;
}

static const unsigned char *dup_b(apr_pool_t *p, const unsigned char *b,
                                  apr_size_t n)
{
    return b ? apr_pmemdup(p, b, n) : NULL;
}

static int same(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

static scep_cert_rec_t *copy_cert(apr_pool_t *p, const scep_cert_rec_t *r)
{
    scep_cert_rec_t *c = apr_pmemdup(p, r, sizeof(*r));

    c->serial = dup_s(p, r->serial);
    c->subject = dup_s(p, r->subject);
    c->transaction_id = dup_s(p, r->transaction_id);
    c->key_hash = dup_s(p, r->key_hash);
    c->der = dup_b(p, r->der, r->der_len);
    c->origin = dup_s(p, r->origin);
    c->request_txid = dup_s(p, r->request_txid);
    c->udid = dup_s(p, r->udid);
    c->enrolled_by = dup_s(p, r->enrolled_by);
    c->superseded_by = dup_s(p, r->superseded_by);
    return c;
}

static scep_pending_rec_t *copy_pending(apr_pool_t *p,
                                        const scep_pending_rec_t *r)
{
    scep_pending_rec_t *c = apr_pmemdup(p, r, sizeof(*r));

    c->transaction_id = dup_s(p, r->transaction_id);
    c->subject = dup_s(p, r->subject);
    c->key_hash = dup_s(p, r->key_hash);
    c->csr = dup_b(p, r->csr, r->csr_len);
    c->requester = dup_b(p, r->requester, r->requester_len);
    c->cert_serial = dup_s(p, r->cert_serial);
    c->plan = dup_s(p, r->plan);
    return c;
}

static scep_device_rec_t *copy_device(apr_pool_t *p, const scep_device_rec_t *r)
{
    scep_device_rec_t *c = apr_pmemdup(p, r, sizeof(*r));

    c->udid = dup_s(p, r->udid);
    c->serial_number = dup_s(p, r->serial_number);
    c->product = dup_s(p, r->product);
    c->cert_serial = dup_s(p, r->cert_serial);
    c->enrolled_by = dup_s(p, r->enrolled_by);
    return c;
}

#define EACH(arr, type, var, i) \
    for ((i) = 0; (i) < (arr)->nelts \
         && ((var) = APR_ARRAY_IDX((arr), (i), type), 1); ++(i))

/* the records of st's CA, one by one */
#define OWNED(st, arr, type, var, i) \
    for ((i) = 0; (i) < (arr)->nelts; ++(i)) \
        if (!strcmp(APR_ARRAY_IDX((arr), (i), owned_t).ca, \
                    scep_store_ca(st)) \
            && ((var) = APR_ARRAY_IDX((arr), (i), owned_t).rec, 1))

static void own(mem_t *m, apr_array_header_t *arr, const scep_store_t *st,
                void *rec)
{
    owned_t *o = apr_array_push(arr);

    o->ca = apr_pstrdup(m->pool, scep_store_ca(st));
    o->rec = rec;
}

/* The record of st's CA in arr whose string field at offset equals
 * value. */
static void *find_by(const apr_array_header_t *arr, const scep_store_t *st,
                     apr_size_t offset, const char *value)
{
    void *r;
    int i;

    OWNED(st, arr, void *, r, i) {
        if (same(*(const char *const *)((const char *)r + offset), value)) {
            return r;
        }
    }
    return NULL;
}

static scep_cert_rec_t *find_origin(mem_t *m, const scep_store_t *st,
                                    const char *origin)
{
    return find_by(m->certs, st, offsetof(scep_cert_rec_t, origin),
                   origin);
}

static scep_pending_rec_t *find_pending(mem_t *m, const scep_store_t *st,
                                        const char *txid)
{
    return find_by(m->pending, st,
                   offsetof(scep_pending_rec_t, transaction_id), txid);
}

static scep_device_rec_t *find_device(mem_t *m, const scep_store_t *st,
                                      const char *udid)
{
    return find_by(m->devices, st, offsetof(scep_device_rec_t, udid),
                   udid);
}

/* ------------------------------------------------------------------ */
/* certificates                                                        */

static scep_cert_rec_t *find_serial(mem_t *m, const scep_store_t *st,
                                    const char *serial)
{
    scep_cert_rec_t *r;
    int i;

    OWNED(st, m->certs, scep_cert_rec_t *, r, i) {
        if (serial && !strcasecmp(r->serial, serial)) {
            return r;
        }
    }
    return NULL;
}

static scep_cert_rec_t *find_txn(mem_t *m, const scep_store_t *st,
                                 const char *txid, const char *kh)
{
    scep_cert_rec_t *r;
    int i;

    OWNED(st, m->certs, scep_cert_rec_t *, r, i) {
        if (same(r->transaction_id, txid) && same(r->key_hash, kh)) {
            return r;
        }
    }
    return NULL;
}

/* serials are unique across CAs, as in the database */
static int serial_taken(mem_t *m, const char *serial)
{
    owned_t *o;
    int i;

    for (i = 0; i < m->certs->nelts; ++i) {
        o = &APR_ARRAY_IDX(m->certs, i, owned_t);
        if (!strcasecmp(((scep_cert_rec_t *)o->rec)->serial, serial)) {
            return 1;
        }
    }
    return 0;
}

static apr_status_t cert_insert(scep_store_t *st, apr_pool_t *p,
                                const scep_cert_rec_t *rec)
{
    mem_t *m = MEM(st);
    apr_status_t rv = APR_SUCCESS;

    (void)p;
    apr_thread_mutex_lock(m->lock);
    if (!rec->serial || serial_taken(m, rec->serial)
        || (rec->transaction_id
            && find_txn(m, st, rec->transaction_id, rec->key_hash))
        || (rec->origin && find_origin(m, st, rec->origin))) {
        rv = APR_EEXIST;
    }
    else {
        own(m, m->certs, st, copy_cert(m->pool, rec));
    }
    apr_thread_mutex_unlock(m->lock);
    return rv;
}

static apr_status_t found_cert(apr_pool_t *p, const scep_cert_rec_t *r,
                               scep_cert_rec_t **out)
{
    if (!r) {
        return APR_NOTFOUND;
    }
    *out = copy_cert(p, r);
    return APR_SUCCESS;
}

static apr_status_t cert_by_serial(scep_store_t *st, apr_pool_t *p,
                                   const char *serial, scep_cert_rec_t **rec)
{
    mem_t *m = MEM(st);
    apr_status_t rv;

    apr_thread_mutex_lock(m->lock);
    rv = found_cert(p, find_serial(m, st, serial), rec);
    apr_thread_mutex_unlock(m->lock);
    return rv;
}

static apr_status_t cert_by_transaction(scep_store_t *st, apr_pool_t *p,
                                        const char *txid, const char *kh,
                                        scep_cert_rec_t **rec)
{
    mem_t *m = MEM(st);
    apr_status_t rv;

    apr_thread_mutex_lock(m->lock);
    rv = found_cert(p, find_txn(m, st, txid, kh), rec);
    apr_thread_mutex_unlock(m->lock);
    return rv;
}

static apr_status_t cert_by_origin(scep_store_t *st, apr_pool_t *p,
                                   const char *origin, scep_cert_rec_t **rec)
{
    mem_t *m = MEM(st);
    apr_status_t rv;

    apr_thread_mutex_lock(m->lock);
    rv = found_cert(p, find_origin(m, st, origin), rec);
    apr_thread_mutex_unlock(m->lock);
    return rv;
}

static apr_status_t cert_by_key(scep_store_t *st, apr_pool_t *p,
                                const char *kh, scep_cert_rec_t **rec)
{
    mem_t *m = MEM(st);
    scep_cert_rec_t *r, *best = NULL;
    apr_status_t rv;
    int i;

    apr_thread_mutex_lock(m->lock);
    OWNED(st, m->certs, scep_cert_rec_t *, r, i) {
        if (r->status == SCEP_CERT_VALID && same(r->key_hash, kh)
            && (!best || r->not_before >= best->not_before)) {
            best = r;
        }
    }
    rv = found_cert(p, best, rec);
    apr_thread_mutex_unlock(m->lock);
    return rv;
}

/* any CA's revocation for keyCompromise counts */
static apr_status_t key_compromised(scep_store_t *st, apr_pool_t *p,
                                    const char *kh)
{
    mem_t *m = MEM(st);
    scep_cert_rec_t *r;
    apr_status_t rv = APR_NOTFOUND;
    int i;

    (void)p;
    apr_thread_mutex_lock(m->lock);
    for (i = 0; i < m->certs->nelts; ++i) {
        r = APR_ARRAY_IDX(m->certs, i, owned_t).rec;
        if (r->status == SCEP_CERT_REVOKED && same(r->key_hash, kh)
            && r->revocation_reason == SCEP_REASON_KEY_COMPROMISE) {
            rv = APR_SUCCESS;
        }
    }
    apr_thread_mutex_unlock(m->lock);
    return rv;
}

static apr_status_t cert_list(scep_store_t *st, apr_pool_t *p, int status,
                              apr_array_header_t **recs)
{
    mem_t *m = MEM(st);
    scep_cert_rec_t *r;
    int i;

    apr_thread_mutex_lock(m->lock);
    *recs = apr_array_make(p, m->certs->nelts + 1, sizeof(scep_cert_rec_t *));
    OWNED(st, m->certs, scep_cert_rec_t *, r, i) {
        if (status < 0 || (int)r->status == status) {
            APR_ARRAY_PUSH(*recs, scep_cert_rec_t *) = copy_cert(p, r);
        }
    }
    apr_thread_mutex_unlock(m->lock);
    return APR_SUCCESS;
}

static apr_status_t cert_by_udid(scep_store_t *st, apr_pool_t *p,
                                 const char *udid, apr_array_header_t **recs)
{
    mem_t *m = MEM(st);
    scep_cert_rec_t *r;
    int i;

    apr_thread_mutex_lock(m->lock);
    *recs = apr_array_make(p, 2, sizeof(scep_cert_rec_t *));
    OWNED(st, m->certs, scep_cert_rec_t *, r, i) {
        if (r->status == SCEP_CERT_VALID && same(r->udid, udid)) {
            APR_ARRAY_PUSH(*recs, scep_cert_rec_t *) = copy_cert(p, r);
        }
    }
    apr_thread_mutex_unlock(m->lock);
    return APR_SUCCESS;
}

static apr_status_t cert_revoke(scep_store_t *st, apr_pool_t *p,
                                const char *serial, int reason,
                                apr_time_t when)
{
    mem_t *m = MEM(st);
    scep_cert_rec_t *r;
    apr_status_t rv = APR_NOTFOUND;

    (void)p;
    apr_thread_mutex_lock(m->lock);
    if ((r = find_serial(m, st, serial))) {
        rv = r->status == SCEP_CERT_REVOKED ? APR_EEXIST : APR_SUCCESS;
        if (APR_SUCCESS == rv) {
            r->status = SCEP_CERT_REVOKED;
            r->revoked_at = when;
            r->revocation_reason = reason;
        }
    }
    apr_thread_mutex_unlock(m->lock);
    return rv;
}

static apr_status_t cert_supersede(scep_store_t *st, apr_pool_t *p,
                                   const char *serial, const char *by)
{
    mem_t *m = MEM(st);
    scep_cert_rec_t *r;

    (void)p;
    apr_thread_mutex_lock(m->lock);
    if ((r = find_serial(m, st, serial))) {
        r->superseded_by = dup_s(m->pool, by);
    }
    apr_thread_mutex_unlock(m->lock);
    return r ? APR_SUCCESS : APR_NOTFOUND;
}

/* ------------------------------------------------------------------ */
/* challenges                                                          */

static challenge_t *find_challenge(mem_t *m, const char *hash)
{
    challenge_t *c;
    int i;

    EACH(m->challenges, challenge_t *, c, i) {
        if (same(c->rec.hash, hash)) {
            return c;
        }
    }
    return NULL;
}

static int mine(const scep_store_t *st, const challenge_t *c)
{
    return !strcmp(c->ca, scep_store_ca(st));
}

/* unused, unrevoked, unexpired */
static int outstanding(const challenge_t *c, apr_time_t now)
{
    return !c->rec.consumed && !c->rec.revoked && c->rec.expires > now;
}

/* the outstanding challenges of st's CA that user made through via */
static int count_made(mem_t *m, const scep_store_t *st, const char *user,
                      const char *via)
{
    apr_time_t now = apr_time_now();
    challenge_t *c;
    int i, n = 0;

    EACH(m->challenges, challenge_t *, c, i) {
        n += mine(st, c) && outstanding(c, now)
             && same(c->rec.created_by, user) && same(c->rec.via, via);
    }
    return n;
}

static int ref_taken(mem_t *m, const scep_store_t *st, const char *ref)
{
    challenge_t *c;
    int i;

    EACH(m->challenges, challenge_t *, c, i) {
        if (mine(st, c) && same(c->rec.ref, ref)) {
            return 1;
        }
    }
    return 0;
}

static scep_challenge_rec_t *copy_challenge(apr_pool_t *p,
                                            const scep_challenge_rec_t *r)
{
    scep_challenge_rec_t *c = apr_pmemdup(p, r, sizeof(*r));

    c->hash = dup_s(p, r->hash);
    c->ref = dup_s(p, r->ref);
    c->bound_to = dup_s(p, r->bound_to);
    c->created_by = dup_s(p, r->created_by);
    c->via = dup_s(p, r->via);
    return c;
}

/* Adds rec unless its hash or ref is taken; m->lock is held. */
static apr_status_t add_locked(mem_t *m, const scep_store_t *st,
                               const scep_challenge_rec_t *rec)
{
    challenge_t *c;

    if (find_challenge(m, rec->hash) || (rec->ref && ref_taken(m, st,
                                                               rec->ref))) {
        return APR_EEXIST;
    }
    c = apr_pcalloc(m->pool, sizeof(*c));
    c->ca = apr_pstrdup(m->pool, scep_store_ca(st));
    c->rec = *copy_challenge(m->pool, rec);
    c->rec.created = apr_time_now();
    c->rec.consumed = c->rec.revoked = 0;
    APR_ARRAY_PUSH(m->challenges, challenge_t *) = c;
    return APR_SUCCESS;
}

static apr_status_t challenge_issue(scep_store_t *st, apr_pool_t *p,
                                    const scep_challenge_rec_t *rec,
                                    int limit)
{
    mem_t *m = MEM(st);
    apr_status_t rv;

    (void)p;
    if (!rec->hash) {
        return APR_EINVAL;
    }
    apr_thread_mutex_lock(m->lock);
    if (limit > 0 && rec->created_by && rec->via
        && count_made(m, st, rec->created_by, rec->via) >= limit) {
        rv = APR_ENOSPC;
    }
    else {
        rv = add_locked(m, st, rec);
    }
    apr_thread_mutex_unlock(m->lock);
    return rv;
}

static apr_status_t challenge_add(scep_store_t *st, apr_pool_t *p,
                                  const char *hash,
                                  scep_challenge_purpose_t purpose,
                                  const char *bound_to, apr_time_t expires)
{
    scep_challenge_rec_t rec = { .hash = hash, .purpose = purpose,
                                 .bound_to = bound_to, .expires = expires };

    return challenge_issue(st, p, &rec, 0);
}

/* unexpired, unrevoked, of st's CA, and free for this consumer */
static challenge_t *usable(mem_t *m, const scep_store_t *st,
                           const char *hash, scep_challenge_purpose_t purpose,
                           const char *consumer)
{
    challenge_t *c = find_challenge(m, hash);

    if (c && mine(st, c) && c->rec.purpose == purpose
        && c->rec.expires > apr_time_now() && !c->rec.revoked
        && (!c->rec.consumed || same(c->consumed_by, consumer))) {
        return c;
    }
    return NULL;
}

static apr_status_t challenge_peek(scep_store_t *st, apr_pool_t *p,
                                   const char *hash,
                                   scep_challenge_purpose_t purpose,
                                   const char *consumer,
                                   const char **bound_to)
{
    mem_t *m = MEM(st);
    challenge_t *c;

    apr_thread_mutex_lock(m->lock);
    c = usable(m, st, hash, purpose, consumer);
    *bound_to = c ? dup_s(p, c->rec.bound_to) : NULL;
    apr_thread_mutex_unlock(m->lock);
    return c ? APR_SUCCESS : APR_NOTFOUND;
}

static apr_status_t challenge_consume(scep_store_t *st, apr_pool_t *p,
                                      const char *hash,
                                      scep_challenge_purpose_t purpose,
                                      const char *consumer,
                                      const char **bound_to)
{
    mem_t *m = MEM(st);
    challenge_t *c;

    if (bound_to) {
        *bound_to = NULL;
    }
    apr_thread_mutex_lock(m->lock);
    if ((c = usable(m, st, hash, purpose, consumer))) {
        c->rec.consumed = 1;
        c->consumed_by = dup_s(m->pool, consumer);
        if (bound_to) {
            *bound_to = dup_s(p, c->rec.bound_to);
        }
    }
    apr_thread_mutex_unlock(m->lock);
    return c ? APR_SUCCESS : APR_NOTFOUND;
}

static apr_status_t challenge_exchange(scep_store_t *st, apr_pool_t *p,
                                       const char *hash,
                                       scep_challenge_purpose_t purpose,
                                       const scep_challenge_rec_t *rec)
{
    mem_t *m = MEM(st);
    challenge_t *c;
    apr_status_t rv = APR_NOTFOUND;

    (void)p;
    if (!hash || !rec->hash) {
        return APR_EINVAL;
    }
    apr_thread_mutex_lock(m->lock);
    if ((c = usable(m, st, hash, purpose, NULL))
        && APR_SUCCESS == (rv = add_locked(m, st, rec))) {
        c->rec.consumed = 1;
        c->consumed_by = NULL;
    }
    apr_thread_mutex_unlock(m->lock);
    return rv;
}

static apr_status_t challenge_find(scep_store_t *st, apr_pool_t *p,
                                   const char *hash,
                                   scep_challenge_rec_t **rec)
{
    mem_t *m = MEM(st);
    challenge_t *c;

    apr_thread_mutex_lock(m->lock);
    c = hash ? find_challenge(m, hash) : NULL;
    if (c && !mine(st, c)) {
        c = NULL;
    }
    *rec = c ? copy_challenge(p, &c->rec) : NULL;
    apr_thread_mutex_unlock(m->lock);
    return c ? APR_SUCCESS : APR_NOTFOUND;
}

static int by_creator(const void *a, const void *b)
{
    const scep_challenge_rec_t *x = *(scep_challenge_rec_t *const *)a;
    const scep_challenge_rec_t *y = *(scep_challenge_rec_t *const *)b;
    int d = strcmp(x->created_by ? x->created_by : "",
                   y->created_by ? y->created_by : "");

    if (d) {
        return d;
    }
    if (x->created != y->created) {
        return x->created < y->created ? -1 : 1;
    }
    return strcmp(x->ref ? x->ref : "", y->ref ? y->ref : "");
}

static apr_status_t challenge_list(scep_store_t *st, apr_pool_t *p,
                                   const char *user,
                                   apr_array_header_t **recs)
{
    mem_t *m = MEM(st);
    apr_time_t now = apr_time_now();
    scep_challenge_rec_t *r;
    challenge_t *c;
    int i;

    apr_thread_mutex_lock(m->lock);
    *recs = apr_array_make(p, 8, sizeof(scep_challenge_rec_t *));
    EACH(m->challenges, challenge_t *, c, i) {
        if (mine(st, c) && outstanding(c, now)
            && (!user || same(c->rec.created_by, user))) {
            r = copy_challenge(p, &c->rec);
            r->hash = NULL;
            APR_ARRAY_PUSH(*recs, scep_challenge_rec_t *) = r;
        }
    }
    apr_thread_mutex_unlock(m->lock);
    qsort((*recs)->elts, (apr_size_t)(*recs)->nelts, sizeof(void *),
          by_creator);
    return APR_SUCCESS;
}

static apr_status_t challenge_revoke(scep_store_t *st, apr_pool_t *p,
                                     const char *ref, const char *user,
                                     int *n)
{
    mem_t *m = MEM(st);
    apr_time_t now = apr_time_now();
    challenge_t *c;
    int i;

    (void)p;
    *n = 0;
    if (!ref && !user) {
        return APR_EINVAL;
    }
    apr_thread_mutex_lock(m->lock);
    EACH(m->challenges, challenge_t *, c, i) {
        if (mine(st, c) && outstanding(c, now)
            && (ref ? same(c->rec.ref, ref) : same(c->rec.created_by, user))) {
            c->rec.revoked = 1;
            ++*n;
        }
    }
    apr_thread_mutex_unlock(m->lock);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* pending requests                                                    */

/* APR_EEXIST when the transactionID is pending already, as in the
 * database */
static apr_status_t pending_put(scep_store_t *st, apr_pool_t *p,
                                const scep_pending_rec_t *rec)
{
    mem_t *m = MEM(st);
    apr_status_t rv = APR_EEXIST;

    (void)p;
    apr_thread_mutex_lock(m->lock);
    if (!find_pending(m, st, rec->transaction_id)) {
        own(m, m->pending, st, copy_pending(m->pool, rec));
        rv = APR_SUCCESS;
    }
    apr_thread_mutex_unlock(m->lock);
    return rv;
}

static apr_status_t pending_get(scep_store_t *st, apr_pool_t *p,
                                const char *txid, scep_pending_rec_t **rec)
{
    mem_t *m = MEM(st);
    scep_pending_rec_t *r;

    apr_thread_mutex_lock(m->lock);
    if ((r = find_pending(m, st, txid))) {
        *rec = copy_pending(p, r);
    }
    apr_thread_mutex_unlock(m->lock);
    return r ? APR_SUCCESS : APR_NOTFOUND;
}

static apr_status_t pending_set_state(scep_store_t *st, apr_pool_t *p,
                                      const char *txid,
                                      scep_pending_state_t state,
                                      const char *cert_serial)
{
    mem_t *m = MEM(st);
    scep_pending_rec_t *r;

    (void)p;
    apr_thread_mutex_lock(m->lock);
    if ((r = find_pending(m, st, txid))) {
        r->state = state;
        if (cert_serial) {
            r->cert_serial = apr_pstrdup(m->pool, cert_serial);
        }
    }
    apr_thread_mutex_unlock(m->lock);
    return r ? APR_SUCCESS : APR_NOTFOUND;
}

static apr_status_t pending_list(scep_store_t *st, apr_pool_t *p,
                                 apr_array_header_t **recs)
{
    mem_t *m = MEM(st);
    scep_pending_rec_t *r;
    int i;

    apr_thread_mutex_lock(m->lock);
    *recs = apr_array_make(p, m->pending->nelts + 1,
                           sizeof(scep_pending_rec_t *));
    OWNED(st, m->pending, scep_pending_rec_t *, r, i) {
        APR_ARRAY_PUSH(*recs, scep_pending_rec_t *) = copy_pending(p, r);
    }
    apr_thread_mutex_unlock(m->lock);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* devices                                                             */

static const char *keep(apr_pool_t *p, const char *now, const char *before)
{
    return dup_s(p, now ? now : before);
}

/* Fields left NULL keep what the record had, as in the database. */
static apr_status_t device_upsert(scep_store_t *st, apr_pool_t *p,
                                  const scep_device_rec_t *rec)
{
    mem_t *m = MEM(st);
    scep_device_rec_t *r;

    (void)p;
    if (!rec->udid) {
        return APR_EINVAL;
    }
    apr_thread_mutex_lock(m->lock);
    if ((r = find_device(m, st, rec->udid))) {
        r->serial_number = keep(m->pool, rec->serial_number,
                                r->serial_number);
        r->product = keep(m->pool, rec->product, r->product);
        r->cert_serial = keep(m->pool, rec->cert_serial, r->cert_serial);
        r->enrolled_by = keep(m->pool, rec->enrolled_by, r->enrolled_by);
        r->last_seen = rec->last_seen;
    }
    else {
        own(m, m->devices, st, copy_device(m->pool, rec));
    }
    apr_thread_mutex_unlock(m->lock);
    return APR_SUCCESS;
}

static apr_status_t device_get(scep_store_t *st, apr_pool_t *p,
                               const char *udid, scep_device_rec_t **rec)
{
    mem_t *m = MEM(st);
    scep_device_rec_t *r;

    apr_thread_mutex_lock(m->lock);
    if ((r = find_device(m, st, udid))) {
        *rec = copy_device(p, r);
    }
    apr_thread_mutex_unlock(m->lock);
    return r ? APR_SUCCESS : APR_NOTFOUND;
}

/* ------------------------------------------------------------------ */
/* CRLs                                                                 */

static apr_status_t revocation_mark(scep_store_t *st, apr_pool_t *p,
                                    apr_int64_t *count, apr_time_t *latest)
{
    mem_t *m = MEM(st);
    scep_cert_rec_t *r;
    int i;

    (void)p;
    *count = 0;
    *latest = 0;
    apr_thread_mutex_lock(m->lock);
    OWNED(st, m->certs, scep_cert_rec_t *, r, i) {
        if (r->status == SCEP_CERT_REVOKED) {
            ++*count;
            *latest = r->revoked_at > *latest ? r->revoked_at : *latest;
        }
    }
    apr_thread_mutex_unlock(m->lock);
    return APR_SUCCESS;
}

static scep_crl_rec_t *copy_crl(apr_pool_t *p, const scep_crl_rec_t *r,
                                int with_der)
{
    scep_crl_rec_t *c = apr_pmemdup(p, r, sizeof(*r));

    c->revocations = dup_s(p, r->revocations);
    c->der = with_der ? dup_b(p, r->der, r->der_len) : NULL;
    c->der_len = with_der ? r->der_len : 0;
    return c;
}

/* The CRL of st's CA with that number, or (number < 0) the highest. */
static scep_crl_rec_t *find_crl(mem_t *m, const scep_store_t *st,
                                apr_int64_t number)
{
    scep_crl_rec_t *r, *found = NULL;
    int i;

    OWNED(st, m->crls, scep_crl_rec_t *, r, i) {
        if (number < 0 ? !found || r->number > found->number
                       : r->number == number) {
            found = r;
        }
    }
    return found;
}

static apr_status_t crl_latest(scep_store_t *st, apr_pool_t *p,
                               scep_crl_rec_t **rec)
{
    mem_t *m = MEM(st);
    scep_crl_rec_t *r;

    apr_thread_mutex_lock(m->lock);
    if ((r = find_crl(m, st, -1))) {
        *rec = copy_crl(p, r, 0);
    }
    apr_thread_mutex_unlock(m->lock);
    return r ? APR_SUCCESS : APR_NOTFOUND;
}

static apr_status_t crl_get(scep_store_t *st, apr_pool_t *p,
                            apr_int64_t number, scep_crl_rec_t **rec)
{
    mem_t *m = MEM(st);
    scep_crl_rec_t *r;

    apr_thread_mutex_lock(m->lock);
    if ((r = number >= 0 ? find_crl(m, st, number) : NULL)) {
        *rec = copy_crl(p, r, 1);
    }
    apr_thread_mutex_unlock(m->lock);
    return r ? APR_SUCCESS : APR_NOTFOUND;
}

/* Older CRLs are not dropped: this store lives as long as its process. */
static apr_status_t crl_publish(scep_store_t *st, apr_pool_t *p,
                                const scep_crl_rec_t *rec)
{
    mem_t *m = MEM(st);
    apr_status_t rv = APR_EEXIST;

    (void)p;
    if (!rec->der || !rec->revocations) {
        return APR_EINVAL;
    }
    apr_thread_mutex_lock(m->lock);
    if (!find_crl(m, st, rec->number)) {
        own(m, m->crls, st, copy_crl(m->pool, rec, 1));
        rv = APR_SUCCESS;
    }
    apr_thread_mutex_unlock(m->lock);
    return rv;
}

static const scep_store_ops_t memory_ops = {
    .cert_insert = cert_insert,
    .cert_by_serial = cert_by_serial,
    .cert_by_transaction = cert_by_transaction,
    .cert_by_key = cert_by_key,
    .cert_by_origin = cert_by_origin,
    .key_compromised = key_compromised,
    .cert_supersede = cert_supersede,
    .cert_list = cert_list,
    .cert_by_udid = cert_by_udid,
    .cert_revoke = cert_revoke,
    .challenge_add = challenge_add,
    .challenge_peek = challenge_peek,
    .challenge_consume = challenge_consume,
    .challenge_issue = challenge_issue,
    .challenge_exchange = challenge_exchange,
    .challenge_find = challenge_find,
    .challenge_list = challenge_list,
    .challenge_revoke = challenge_revoke,
    .pending_put = pending_put,
    .pending_get = pending_get,
    .pending_set_state = pending_set_state,
    .pending_list = pending_list,
    .device_upsert = device_upsert,
    .device_get = device_get,
    .revocation_mark = revocation_mark,
    .crl_latest = crl_latest,
    .crl_get = crl_get,
    .crl_publish = crl_publish
};

scep_store_t *scep_store_memory_create(apr_pool_t *p)
{
    scep_store_t *st = apr_pcalloc(p, sizeof(*st));
    mem_t *m = apr_pcalloc(p, sizeof(*m));

    m->pool = p;
    if (APR_SUCCESS != apr_thread_mutex_create(&m->lock,
                                               APR_THREAD_MUTEX_DEFAULT, p)) {
        return NULL;
    }
    m->certs = apr_array_make(p, 16, sizeof(owned_t));
    m->challenges = apr_array_make(p, 16, sizeof(challenge_t *));
    m->pending = apr_array_make(p, 16, sizeof(owned_t));
    m->devices = apr_array_make(p, 16, sizeof(owned_t));
    m->crls = apr_array_make(p, 4, sizeof(owned_t));
    st->ops = &memory_ops;
    st->backend = m;
    return st;
}
