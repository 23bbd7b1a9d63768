#ifndef SCEP_OUTCOME_H
#define SCEP_OUTCOME_H

/**
 * @file scep_outcome.h
 * What the core decided about one request, in its own words: an answer to
 * send, or the kind of refusal. The httpd glue turns it into a status
 * line, headers and a body in one place (mod_scep_ota_http.c); the core
 * never names an HTTP status.
 */

#include <apr.h>

/** The kinds of answer. */
typedef enum scep_outcome_kind_t {
    SCEP_OUTCOME_OK = 0,         /* body and content_type hold the answer */
    SCEP_OUTCOME_BAD_REQUEST,    /* the input cannot be read */
    SCEP_OUTCOME_FORBIDDEN,      /* read, understood and refused */
    SCEP_OUTCOME_NOT_FOUND,      /* nothing of that name is configured */
    SCEP_OUTCOME_NOT_ALLOWED,    /* not with this method (see allow) */
    SCEP_OUTCOME_TOO_LARGE,      /* over a size limit */
    SCEP_OUTCOME_UNAVAILABLE,    /* the store failed: try again later */
    SCEP_OUTCOME_SERVER_ERROR    /* the server itself failed */
} scep_outcome_kind_t;

/** One answer. */
typedef struct scep_outcome_t {
    scep_outcome_kind_t kind;
    const char *content_type;    /* with SCEP_OUTCOME_OK */
    const unsigned char *body;   /* with SCEP_OUTCOME_OK */
    apr_size_t len;
    /* any other kind: one line for the client (and the audit trail);
     * NULL leaves the body to the server's own error page */
    const char *reason;
    int retry_after;             /* seconds to wait before a retry; 0: unsaid */
    const char *allow;           /* NOT_ALLOWED: the methods accepted */
} scep_outcome_t;

#endif /* SCEP_OUTCOME_H */
