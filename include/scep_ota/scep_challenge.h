#ifndef SCEP_CHALLENGE_H
#define SCEP_CHALLENGE_H

/**
 * @file scep_challenge.h
 * One-time challenges, made in one place for every way they are handed
 * out: the scep-challenge page (NDES's admin page), `scep-ota store
 * challenge` and OTA. A challenge is a random secret shown once; the store
 * keeps its SHA-256 (scep_challenge_hash), its purpose, what it is bound
 * to (a grant, scep_policy.h), who asked for it, through what, and until
 * when it is valid; a PKIOperation consumes it once.
 *
 * Why 64 bits are enough for NDES's 16 hexadecimal digits: a challenge
 * can only be tried online, one PKCSReq (an RSA decryption and a
 * signature on the server) per guess, against the challenges outstanding
 * at that moment, each of which lives for SCEPChallengeLifetime at most
 * and dies at its first use; the page lets each user hold
 * SCEPChallengeCacheSize of them. With U users, C outstanding each and G
 * guesses per second, a guess hits with probability U*C/2^64, so a whole
 * lifetime T of guessing succeeds with about G*T*U*C/2^64: for 1000
 * guesses/s (more than a server does) over an hour against 1000 users
 * with 5 each, 1e-9. Every refused challenge is counted per client
 * address and per user in the log (scep_tally.h).
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "scep_ota/scep_store.h"

/** How a secret is written. */
typedef enum {
    SCEP_CHALLENGE_HEX64 = 0,   /* 16 upper-case hex digits, 64 bits: the
                                   NDES form, typed by people and MDMs */
    SCEP_CHALLENGE_TOKEN192     /* 32 characters of URL-safe base64, 192
                                   bits: the CLI and OTA */
} scep_challenge_format_t;

/** SCEPChallengeLifetime, seconds: its default and bounds. */
#define SCEP_CHALLENGE_LIFETIME_DEFAULT 3600
#define SCEP_CHALLENGE_LIFETIME_MIN 60
#define SCEP_CHALLENGE_LIFETIME_MAX (30 * 86400)
/** SCEPChallengeCacheSize: outstanding page challenges per user. */
#define SCEP_CHALLENGE_CACHE_DEFAULT 5
#define SCEP_CHALLENGE_CACHE_MAX 100000

/** A fresh secret in the given form and its stored hash. */
apr_status_t scep_challenge_make(apr_pool_t *p, scep_challenge_format_t fmt,
                                 const char **clear, const char **hash);

/** What the store keeps of a secret: its hex SHA-256. */
const char *scep_challenge_hash(apr_pool_t *p, const char *clear);

/** What to hand out. */
typedef struct scep_challenge_spec_t {
    scep_challenge_format_t format;
    scep_challenge_purpose_t purpose;
    const char *bound_to;           /* scep_grant_format text, or NULL */
    const char *created_by;         /* the authenticated user, or NULL */
    const char *via;                /* SCEP_VIA_* */
    apr_interval_time_t lifetime;
    int limit;                      /* outstanding ones per created_by made
                                       the same way; <= 0: no limit */
    const char *replaces;           /* the hash of a challenge of purpose
                                       replaces_purpose that the new one
                                       replaces (no limit then), or NULL */
    scep_challenge_purpose_t replaces_purpose;
} scep_challenge_spec_t;

/**
 * Makes a challenge and stores it. *clear is the secret to show once,
 * *rec what was stored (with its ref). APR_ENOSPC when created_by holds
 * spec->limit outstanding challenges already. With spec->replaces, the
 * challenge replaced is used up in the same transaction, and APR_NOTFOUND
 * says it was not there to use up (wrong, expired or used already);
 * nothing is stored then. Any other failure is the store's.
 */
apr_status_t scep_challenge_issue(apr_pool_t *p, scep_store_t *st,
                                  const scep_challenge_spec_t *spec,
                                  const char **clear,
                                  scep_challenge_rec_t **rec);

/**
 * The binding of a challenge, as `scep-ota store challenge --for
 * subject=DN --san TYPE:VALUE` and the page's subject= and san= give it:
 * a subject (openssl's /CN=x/O=y or RFC 2253) fixes the whole name set,
 * the SANs ("TYPE:VALUE") only come with one; user says who asked. NULL in
 * *bound_to when there is nothing to bind. On error *err says why.
 */
apr_status_t scep_challenge_binding(apr_pool_t *p, const char *subject,
                                    const apr_array_header_t *sans,
                                    const char *user, const char **bound_to,
                                    const char **err);

/** A binding as an admin reads it: "subject CN=x, DNS:y", "(any names)". */
const char *scep_challenge_binding_text(apr_pool_t *p, const char *bound_to);

/**
 * How long until one of user's outstanding challenges made through via
 * expires (at least a second), for a Retry-After.
 */
apr_status_t scep_challenge_next_free(apr_pool_t *p, scep_store_t *st,
                                      const char *user, const char *via,
                                      apr_interval_time_t *wait);

/**
 * Why a challenge with this hash cannot be used now, for the log:
 * "unknown", "already used", "expired", "revoked" or "for another use";
 * *creator the user who asked for it, when the store knows.
 */
const char *scep_challenge_why(apr_pool_t *p, scep_store_t *st,
                               const char *hash,
                               scep_challenge_purpose_t purpose,
                               const char **creator);

#endif /* SCEP_CHALLENGE_H */
