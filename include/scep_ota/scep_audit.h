#ifndef SCEP_AUDIT_H
#define SCEP_AUDIT_H

/**
 * @file scep_audit.h
 * The audit trail: one JSON object per line for every decision the server
 * or an admin makes (issued, renewed, pending, approved, rejected,
 * refused, revoked, a challenge handed out, an OTA phase served or
 * refused). A line never holds a challenge, a key or any other secret:
 * only the fields below, each escaped as JSON wants (control characters
 * as \u00XX, invalid UTF-8 as U+FFFD).
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef struct scep_audit_t {
    apr_time_t time;             /* 0: now */
    const char *event;           /* "issued", "refused", "ota-phase2"... */
    const char *outcome;         /* e.g. "served", "refused"; or NULL */
    const char *vhost;
    const char *client;          /* the client's address, or "cli" */
    const char *user;            /* the authenticated user / admin */
    const char *transaction_id;
    const char *serial;
    const char *subject;
    const apr_array_header_t *sans; /* const char * ("dns:x"), or NULL */
    const char *udid;
    const char *reason;          /* why it was refused, revoked... */
    const char *fail_info;       /* the failInfo of a FAILURE */
} scep_audit_t;

/** A line longer than this is cut (fields shortened, never split): one
 * write of it stays atomic on a pipe (PIPE_BUF is 4096 on Linux). */
#define SCEP_AUDIT_MAX_LINE 4000

/** SANs written; more are counted as "sans_omitted". */
#define SCEP_AUDIT_MAX_SANS 32

/** The JSON line of ev, newline included; fields that are NULL are left
 * out. */
const char *scep_audit_line(apr_pool_t *p, const scep_audit_t *ev);

#endif /* SCEP_AUDIT_H */
