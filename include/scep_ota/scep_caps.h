#ifndef SCEP_CAPS_H
#define SCEP_CAPS_H

/**
 * @file scep_caps.h
 * The CA capability list. One list is both the GetCACaps answer and the
 * GetCACaps array of the Phase 2 SCEP payload, so the two cannot differ.
 */

#include <apr_pools.h>
#include <apr_tables.h>

typedef enum {
    SCEP_CAP_AES = 0,
    SCEP_CAP_DES3,
    SCEP_CAP_GETNEXTCACERT,
    SCEP_CAP_POSTPKIOPERATION,
    SCEP_CAP_RENEWAL,
    SCEP_CAP_SCEPSTANDARD,
    SCEP_CAP_SHA1,
    SCEP_CAP_SHA256,
    SCEP_CAP_SHA512,
    SCEP_CAP_COUNT
} scep_cap_t;

/** The default list, as served with no SCEPCACaps directive. */
#define SCEP_CAPS_DEFAULT \
    "AES DES3 POSTPKIOperation Renewal SCEPStandard SHA-1 SHA-256 SHA-512"

typedef struct scep_caps_t scep_caps_t;

/** An empty list. */
scep_caps_t *scep_caps_make(apr_pool_t *p);

/** The default list (SCEP_CAPS_DEFAULT). */
scep_caps_t *scep_caps_default(apr_pool_t *p);

/**
 * Appends one word, matched case-insensitively and kept in its canonical
 * case. Unknown and repeated words are errors; *err then says why and, for
 * an unknown word, lists the known ones.
 */
apr_status_t scep_caps_add(scep_caps_t *caps, const char *word,
                           const char **err);

int scep_caps_has(const scep_caps_t *caps, scep_cap_t cap);
int scep_caps_count(const scep_caps_t *caps);

/** The canonical word of the i-th entry, in configured order. */
const char *scep_caps_word(const scep_caps_t *caps, int i);

/** Every known word, space separated, for messages. */
const char *scep_caps_known(void);

/** The GetCACaps body: each word followed by LF. */
const char *scep_caps_body(const scep_caps_t *caps, apr_pool_t *p,
                           apr_size_t *len);

#endif /* SCEP_CAPS_H */
