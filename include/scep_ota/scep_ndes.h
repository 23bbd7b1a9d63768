#ifndef SCEP_NDES_H
#define SCEP_NDES_H

/**
 * @file scep_ndes.h
 * The challenge page: what its query asks for, and its answers. By
 * default the page of Windows NDES's mscep_admin, which MDMs (and people)
 * read: HTML in UTF-16LE with a byte-order mark, with the phrases those
 * readers look for. Scripts ask for JSON or a bare line of text.
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef enum {
    SCEP_NDES_HTML = 0,
    SCEP_NDES_JSON,
    SCEP_NDES_TEXT
} scep_ndes_format_t;

/** The longest value of one parameter, after decoding, and the most
 * san= parameters a query may have. */
#define SCEP_NDES_MAX_VALUE 1024
#define SCEP_NDES_MAX_SANS 32

/** The query: format=html|json|text, subject=DN, san=TYPE:VALUE... */
typedef struct scep_ndes_query_t {
    int format;                  /* a scep_ndes_format_t, or -1: not
                                    asked for */
    const char *subject;         /* decoded, or NULL */
    apr_array_header_t *sans;    /* const char *, decoded */
} scep_ndes_query_t;

/**
 * Reads a query string (NULL: none). Percent escapes and '+' for a space
 * are decoded. Refused with APR_EINVAL and *err: an unknown parameter, a
 * repeated format= or subject=, an unknown format, a bad escape, a
 * control character, an empty or over-long value, too many san=.
 */
apr_status_t scep_ndes_query_parse(apr_pool_t *p, const char *args,
                                   scep_ndes_query_t *q, const char **err);

/** The format an Accept header asks for: JSON when it names
 * application/json, else HTML. */
scep_ndes_format_t scep_ndes_format_accepted(const char *accept);

/** The Content-Type of a format's answers. */
const char *scep_ndes_content_type(scep_ndes_format_t fmt);

/** What a fresh challenge's answer says. */
typedef struct scep_ndes_answer_t {
    const char *challenge;
    apr_time_t expires;
    apr_interval_time_t lifetime;
    const char *ca_sha1;         /* upper-case hex, no separators */
    const char *ca_sha256;
} scep_ndes_answer_t;

/** The answer with a challenge. */
apr_status_t scep_ndes_render(apr_pool_t *p, scep_ndes_format_t fmt,
                              const scep_ndes_answer_t *a,
                              const unsigned char **body, apr_size_t *len);

/** The answer when the user's cache of passwords is full (cache_size
 * outstanding); wait: until one expires. */
apr_status_t scep_ndes_render_full(apr_pool_t *p, scep_ndes_format_t fmt,
                                   int cache_size, apr_interval_time_t wait,
                                   const unsigned char **body,
                                   apr_size_t *len);

/** RFC 3339 UTC, "2024-05-01T12:00:00Z". */
const char *scep_ndes_rfc3339(apr_pool_t *p, apr_time_t t);

#endif /* SCEP_NDES_H */
