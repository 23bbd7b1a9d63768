#ifndef SCEP_QUERY_H
#define SCEP_QUERY_H

/**
 * @file scep_query.h
 * The SCEP query string: "operation=OP[&message=...]".
 */

#include <apr_pools.h>

typedef enum {
    SCEP_OP_NONE = 0,       /* no operation parameter */
    SCEP_OP_UNKNOWN,        /* an operation this server does not know */
    SCEP_OP_GETCACAPS,
    SCEP_OP_GETCACERT,
    SCEP_OP_GETNEXTCACERT,
    SCEP_OP_PKIOPERATION
} scep_op_t;

typedef struct scep_query_t {
    scep_op_t op;
    const char *operation;  /* the decoded operation value, or NULL */
    const char *message;    /* the message value as sent (still escaped),
                               or NULL when absent */
} scep_query_t;

/**
 * Splits a query string (may be NULL). The first "operation" and "message"
 * parameters count; operation names match case-insensitively.
 */
void scep_query_parse(apr_pool_t *p, const char *args, scep_query_t *q);

/**
 * Decodes the message parameter of a PKIOperation sent by GET: percent
 * escapes are undone with '+' kept as '+' (form decoding would break
 * base64), whitespace and line breaks (sscep's %0A) are dropped, base64url
 * is accepted, and missing padding is tolerated. Results over max_len bytes
 * are refused with APR_ENOSPC; anything that is not base64 with APR_EINVAL.
 */
apr_status_t scep_query_decode_message(apr_pool_t *p, const char *raw,
                                       apr_size_t max_len,
                                       unsigned char **der, apr_size_t *len);

/** The operation's name as RFC 8894 spells it. */
const char *scep_op_name(scep_op_t op);

#endif /* SCEP_QUERY_H */
