#ifndef SCEP_STORE_H
#define SCEP_STORE_H

/**
 * @file scep_store.h
 * The one store interface for everything the server must remember:
 * issued certificates, one-time challenges, pending requests, revocations
 * and OTA devices. Backends implement scep_store_ops_t; callers call
 * through st->ops and never see SQL.
 *
 * Guarantees every backend gives (DESIGN.md, "State, durability and
 * scale-out"): serial numbers unique by constraint; a certificate record is
 * durable when cert_insert returns APR_SUCCESS; consuming a challenge is one
 * atomic statement; (transaction_id, key_hash) identifies one issuance.
 *
 * Every record that belongs to a CA carries that CA's identity (st->ca,
 * see scep_store_scoped): several CAs (virtual hosts) may share one store
 * and each sees only its own certificates, challenges, pending requests
 * and devices.
 *
 * Return values: APR_SUCCESS; APR_NOTFOUND when nothing matches; APR_EEXIST
 * when an insert hits a unique constraint; anything else is a store failure
 * (the caller answers FAILURE or "unavailable" and never hands out a
 * certificate it could not record).
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef enum {
    SCEP_CERT_VALID = 0,
    SCEP_CERT_REVOKED = 1
} scep_cert_status_t;

typedef struct scep_cert_rec_t {
    const char *serial;          /* upper-case hex, no leading zeros */
    const char *subject;         /* one-line RFC 2253 subject */
    const char *transaction_id;  /* SCEP transactionID (or NULL) */
    const char *key_hash;        /* hex SHA-256 of the SubjectPublicKeyInfo */
    apr_time_t not_before;
    apr_time_t not_after;
    scep_cert_status_t status;
    apr_time_t revoked_at;       /* 0 unless revoked */
    int revocation_reason;       /* CRLReason code, -1 unless revoked */
    const unsigned char *der;    /* the certificate */
    apr_size_t der_len;
    /* what made it: unique per CA when set, so that one approved request
     * or one renewal yields one certificate whatever races (see
     * SCEP_ORIGIN_*) */
    const char *origin;
    const char *request_txid;    /* transactionID of the request, always */
    const char *udid;            /* enrolled through OTA Phase 2 for it */
    const char *enrolled_by;     /* the authenticated user, if known */
    const char *superseded_by;   /* serial of its renewal, once renewed */
} scep_cert_rec_t;

/** Origins: the certificate of an approved pending request, of the
 * renewal of a certificate (followed by its transactionID or serial). */
#define SCEP_ORIGIN_PENDING "pending:"
#define SCEP_ORIGIN_RENEWAL "renewal:"

/** CRLReason keyCompromise: a key revoked for it is never certified
 * again. */
#define SCEP_REASON_KEY_COMPROMISE 1
/** CRLReason superseded (SCEPRevokeSuperseded). */
#define SCEP_REASON_SUPERSEDED 4

/** A SCEP challenge whose bound_to starts with this prefix enrolls only
 * the names it lists (scep_grant_parse reads it). */
#define SCEP_BOUND_SUBJECT "subject="

typedef enum {
    SCEP_CHALLENGE_SCEP = 1,     /* accepted by PKIOperation */
    SCEP_CHALLENGE_OTA_PHASE1 = 2 /* handed out in Phase 1, used by Phase 2 */
} scep_challenge_purpose_t;

/** Who made a challenge (scep_challenge_rec_t's via). */
#define SCEP_VIA_PAGE "page"     /* the scep-challenge handler */
#define SCEP_VIA_CLI "cli"       /* scep-ota store challenge */
#define SCEP_VIA_OTA "ota"       /* OTA Phase 1 and Phase 2 */

/** A one-time challenge as the store keeps it: never the secret, only its
 * hash (which lists leave out). */
typedef struct scep_challenge_rec_t {
    const char *hash;            /* hex SHA-256 of the secret */
    const char *ref;             /* a random handle for admins (revoke) */
    scep_challenge_purpose_t purpose;
    const char *bound_to;        /* a grant (scep_grant_format) or NULL */
    const char *created_by;      /* the authenticated user who asked */
    const char *via;             /* SCEP_VIA_* */
    apr_time_t created;
    apr_time_t expires;
    int consumed;
    int revoked;
} scep_challenge_rec_t;

typedef enum {
    SCEP_PENDING_WAITING = 0,
    SCEP_PENDING_APPROVED = 1,
    SCEP_PENDING_REJECTED = 2,
    SCEP_PENDING_ISSUED = 3
} scep_pending_state_t;

typedef struct scep_pending_rec_t {
    const char *transaction_id;
    const char *subject;
    const char *key_hash;
    scep_pending_state_t state;
    apr_time_t created;
    const unsigned char *csr;          /* DER PKCS#10 */
    apr_size_t csr_len;
    const unsigned char *requester;    /* DER cert that signed the request */
    apr_size_t requester_len;
    const char *cert_serial;           /* once issued */
    /* what was decided when it arrived: the names, the renewed
     * certificate, the device and user (scep_grant_format) */
    const char *plan;
} scep_pending_rec_t;

typedef struct scep_device_rec_t {
    const char *udid;
    const char *serial_number;   /* the device's hardware serial */
    const char *product;
    const char *cert_serial;     /* certificate issued to it */
    apr_time_t last_seen;
    const char *enrolled_by;     /* the user of Phase 1, if known */
} scep_device_rec_t;

/** A CRL as published in the store: the one every process and node
 * serves until the revocations change or it is due for renewal. */
typedef struct scep_crl_rec_t {
    apr_int64_t number;          /* its cRLNumber: one more each time */
    apr_time_t this_update;
    apr_time_t next_update;
    const char *revocations;     /* scep_crl_mark of what it lists */
    const unsigned char *der;    /* NULL when only its header was read */
    apr_size_t der_len;
} scep_crl_rec_t;

typedef struct scep_store_t scep_store_t;

typedef struct scep_store_ops_t {
    /* certificates */
    apr_status_t (*cert_insert)(scep_store_t *st, apr_pool_t *p,
                                const scep_cert_rec_t *rec);
    apr_status_t (*cert_by_serial)(scep_store_t *st, apr_pool_t *p,
                                   const char *serial, scep_cert_rec_t **rec);
    apr_status_t (*cert_by_transaction)(scep_store_t *st, apr_pool_t *p,
                                        const char *transaction_id,
                                        const char *key_hash,
                                        scep_cert_rec_t **rec);
    /* the newest valid certificate for a public key, any subject */
    apr_status_t (*cert_by_key)(scep_store_t *st, apr_pool_t *p,
                                const char *key_hash, scep_cert_rec_t **rec);
    /* the certificate made by that origin (SCEP_ORIGIN_*) */
    apr_status_t (*cert_by_origin)(scep_store_t *st, apr_pool_t *p,
                                   const char *origin,
                                   scep_cert_rec_t **rec);
    /* APR_SUCCESS when a certificate of the key was revoked for
     * keyCompromise, APR_NOTFOUND when none was */
    apr_status_t (*key_compromised)(scep_store_t *st, apr_pool_t *p,
                                    const char *key_hash);
    /* records that serial was renewed by by_serial */
    apr_status_t (*cert_supersede)(scep_store_t *st, apr_pool_t *p,
                                   const char *serial, const char *by_serial);
    /* status < 0: all; array of scep_cert_rec_t * */
    apr_status_t (*cert_list)(scep_store_t *st, apr_pool_t *p, int status,
                              apr_array_header_t **recs);
    apr_status_t (*cert_revoke)(scep_store_t *st, apr_pool_t *p,
                                const char *serial, int reason,
                                apr_time_t when);
    /* the valid certificates enrolled for an OTA device (their udid),
     * oldest first; array of scep_cert_rec_t * */
    apr_status_t (*cert_by_udid)(scep_store_t *st, apr_pool_t *p,
                                 const char *udid,
                                 apr_array_header_t **recs);
    /* one-time challenges: only a hash is stored (challenge_issue below
     * records who made it too) */
    apr_status_t (*challenge_add)(scep_store_t *st, apr_pool_t *p,
                                  const char *hash,
                                  scep_challenge_purpose_t purpose,
                                  const char *bound_to, apr_time_t expires);
    /* an unexpired, unrevoked challenge that is unconsumed or was
     * consumed by the same consumer, and what it is bound to; consumes
     * nothing. APR_NOTFOUND if there is none (wrong, expired, revoked or
     * already used) */
    apr_status_t (*challenge_peek)(scep_store_t *st, apr_pool_t *p,
                                   const char *hash,
                                   scep_challenge_purpose_t purpose,
                                   const char *consumer,
                                   const char **bound_to);
    /* atomically marks such a challenge consumed by consumer (a request's
     * identity: its retry may pass again, nobody else); APR_NOTFOUND if
     * there is none. consumer may be NULL (nobody may pass again). */
    apr_status_t (*challenge_consume)(scep_store_t *st, apr_pool_t *p,
                                      const char *hash,
                                      scep_challenge_purpose_t purpose,
                                      const char *consumer,
                                      const char **bound_to);
    /* adds rec (hash, ref, purpose, bound_to, created_by, via, expires)
     * unless created_by has limit or more outstanding challenges (unused,
     * unrevoked, unexpired ones made the same way); limit <= 0: no limit.
     * APR_ENOSPC when over the limit, APR_EEXIST when the hash or the ref
     * is taken. */
    apr_status_t (*challenge_issue)(scep_store_t *st, apr_pool_t *p,
                                    const scep_challenge_rec_t *rec,
                                    int limit);
    /* consumes the challenge hash of purpose for nobody (as
     * challenge_consume with no consumer) and adds rec (as challenge_issue
     * without a limit) in one transaction: both or neither, one commit.
     * APR_NOTFOUND when there is no such challenge to consume, APR_EEXIST
     * when rec's hash or ref is taken. */
    apr_status_t (*challenge_exchange)(scep_store_t *st, apr_pool_t *p,
                                       const char *hash,
                                       scep_challenge_purpose_t purpose,
                                       const scep_challenge_rec_t *rec);
    /* the challenge with that hash, whatever its state (for logs) */
    apr_status_t (*challenge_find)(scep_store_t *st, apr_pool_t *p,
                                   const char *hash,
                                   scep_challenge_rec_t **rec);
    /* the outstanding challenges (unused, unrevoked, unexpired), of one
     * creator or (user NULL) all, ordered by creator and age; array of
     * scep_challenge_rec_t * without their hashes */
    apr_status_t (*challenge_list)(scep_store_t *st, apr_pool_t *p,
                                   const char *user,
                                   apr_array_header_t **recs);
    /* revokes the outstanding challenge ref, or (ref NULL) every
     * outstanding one of user; *n says how many */
    apr_status_t (*challenge_revoke)(scep_store_t *st, apr_pool_t *p,
                                     const char *ref, const char *user,
                                     int *n);
    /* pending requests (SCEPApproval manual) */
    apr_status_t (*pending_put)(scep_store_t *st, apr_pool_t *p,
                                const scep_pending_rec_t *rec);
    apr_status_t (*pending_get)(scep_store_t *st, apr_pool_t *p,
                                const char *transaction_id,
                                scep_pending_rec_t **rec);
    apr_status_t (*pending_set_state)(scep_store_t *st, apr_pool_t *p,
                                      const char *transaction_id,
                                      scep_pending_state_t state,
                                      const char *cert_serial);
    apr_status_t (*pending_list)(scep_store_t *st, apr_pool_t *p,
                                 apr_array_header_t **recs);
    /* OTA devices */
    apr_status_t (*device_upsert)(scep_store_t *st, apr_pool_t *p,
                                  const scep_device_rec_t *rec);
    apr_status_t (*device_get)(scep_store_t *st, apr_pool_t *p,
                               const char *udid, scep_device_rec_t **rec);
    /* CRLs: how many certificates are revoked and the latest revocation
     * time (0 when none), which say whether a CRL is still complete, as
     * revocations are never undone */
    apr_status_t (*revocation_mark)(scep_store_t *st, apr_pool_t *p,
                                    apr_int64_t *count, apr_time_t *latest);
    /* the published CRL with the highest number, without its der;
     * APR_NOTFOUND when none */
    apr_status_t (*crl_latest)(scep_store_t *st, apr_pool_t *p,
                               scep_crl_rec_t **rec);
    /* the published CRL of that number, with its der */
    apr_status_t (*crl_get)(scep_store_t *st, apr_pool_t *p,
                            apr_int64_t number, scep_crl_rec_t **rec);
    /* publishes rec; APR_EEXIST when that number is published already
     * (another process won: read what it published). CRLs older than
     * the one before are dropped. */
    apr_status_t (*crl_publish)(scep_store_t *st, apr_pool_t *p,
                                const scep_crl_rec_t *rec);
} scep_store_ops_t;

struct scep_store_t {
    const scep_store_ops_t *ops;
    void *backend;               /* the backend's own state */
    const char *ca;              /* the CA whose records this handle sees */
};

/**
 * A handle on the same backend that sees only the records of one CA
 * (scep_ca_t's id: the hex SHA-256 of its certificate).
 */
scep_store_t *scep_store_scoped(apr_pool_t *p, const scep_store_t *st,
                                const char *ca_id);

/** The CA identity a handle writes: st->ca, or "" when unscoped. */
const char *scep_store_ca(const scep_store_t *st);

/**
 * A process-local, in-memory store (mutex-protected). For unit tests and
 * the CLI's offline commands; never shared between processes.
 */
scep_store_t *scep_store_memory_create(apr_pool_t *p);

#endif /* SCEP_STORE_H */
