/* One-time challenges: the secret, its hash, its binding, its record. */

#include <string.h>

#include <apr_strings.h>
#include <apr_base64.h>
#include <apr_escape.h>
#include <openssl/rand.h>
#include <openssl/err.h>

#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_challenge.h"
#include "scep_ota/scep_policy.h"

#define TOKEN_BYTES 24           /* 32 base64 characters, no padding */
#define HEX_BYTES 8              /* 16 hex digits */
#define REF_BYTES 6              /* 12 lower-case hex digits */
#define ISSUE_TRIES 4

static apr_status_t random_bytes(unsigned char *b, apr_size_t n)
{
    if (1 != RAND_bytes(b, (int)n)) {
        ERR_clear_error();
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

static apr_status_t make_token(apr_pool_t *p, const char **clear)
{
    unsigned char raw[TOKEN_BYTES];
    char *text, *c;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = random_bytes(raw, sizeof(raw)))) {
        return rv;
    }
    text = apr_palloc(p, (apr_size_t)apr_base64_encode_len(sizeof(raw)));
    apr_base64_encode_binary(text, raw, sizeof(raw));
    /* URL-safe alphabet; 24 bytes encode without padding */
    for (c = text; *c; ++c) {
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    }
    *clear = text;
    return APR_SUCCESS;
}

/* The NDES form of a secret: upper-case hex. */
static apr_status_t make_hex(apr_pool_t *p, const char **clear)
{
    unsigned char raw[HEX_BYTES];
    apr_status_t rv = random_bytes(raw, sizeof(raw));

    *clear = APR_SUCCESS == rv ? scep_upper_hex(p, raw, sizeof(raw)) : NULL;
    return APR_SUCCESS != rv || *clear ? rv : APR_EGENERAL;
}

apr_status_t scep_challenge_make(apr_pool_t *p, scep_challenge_format_t fmt,
                                 const char **clear, const char **hash)
{
    apr_status_t rv = fmt == SCEP_CHALLENGE_HEX64 ? make_hex(p, clear)
                                                  : make_token(p, clear);

    if (APR_SUCCESS != rv) {
        return rv;
    }
    *hash = scep_challenge_hash(p, *clear);
    return *hash ? APR_SUCCESS : APR_EGENERAL;
}

const char *scep_challenge_hash(apr_pool_t *p, const char *clear)
{
    return scep_sha256_hex(p, clear, strlen(clear));
}

/* A record of what spec says, still without its secret, ref and times. */
static scep_challenge_rec_t *rec_of_spec(apr_pool_t *p,
                                         const scep_challenge_spec_t *spec)
{
    scep_challenge_rec_t *rec = apr_pcalloc(p, sizeof(*rec));

    rec->purpose = spec->purpose;
    rec->bound_to = spec->bound_to;
    rec->created_by = spec->created_by;
    rec->via = spec->via;
    return rec;
}

apr_status_t scep_challenge_issue(apr_pool_t *p, scep_store_t *st,
                                  const scep_challenge_spec_t *spec,
                                  const char **clear,
                                  scep_challenge_rec_t **prec)
{
    scep_challenge_rec_t *rec = rec_of_spec(p, spec);
    unsigned char ref[REF_BYTES];
    apr_status_t rv = APR_EEXIST;
    int tries;

    /* a clash of 64 random bits (or of a ref) is not worth an error: the
     * next secret will do */
    for (tries = 0; tries < ISSUE_TRIES && APR_STATUS_IS_EEXIST(rv);
         ++tries) {
        if (APR_SUCCESS != (rv = scep_challenge_make(p, spec->format, clear,
                                                     &rec->hash))
            || APR_SUCCESS != (rv = random_bytes(ref, sizeof(ref)))) {
            return rv;
        }
        rec->ref = apr_pescape_hex(p, ref, sizeof(ref), 0);
        rec->created = apr_time_now();
        rec->expires = rec->created + spec->lifetime;
        rv = spec->replaces
             ? st->ops->challenge_exchange(st, p, spec->replaces,
                                           spec->replaces_purpose, rec)
             : st->ops->challenge_issue(st, p, rec, spec->limit);
    }
    if (APR_SUCCESS == rv && prec) {
        *prec = rec;
    }
    return rv;
}

apr_status_t scep_challenge_binding(apr_pool_t *p, const char *subject,
                                    const apr_array_header_t *sans,
                                    const char *user, const char **bound_to,
                                    const char **err)
{
    scep_grant_t *g = scep_grant_make(p);
    const char *san, *why;
    int i;

    *bound_to = NULL;
    *err = NULL;
    if (!subject && sans && sans->nelts) {
        *err = "a subjectAltName needs a subject: a bound challenge fixes "
               "the whole name set";
        return APR_EINVAL;
    }
    if (subject && APR_SUCCESS != scep_subject_parse(p, subject,
                                                     &g->subject, &why)) {
        *err = apr_pstrcat(p, "subject: ", why, NULL);
        return APR_EINVAL;
    }
    for (i = 0; sans && i < sans->nelts; ++i) {
        if (APR_SUCCESS != scep_san_parse(p, APR_ARRAY_IDX(sans, i,
                                                           const char *),
                                          &san, &why)) {
            *err = apr_pstrcat(p, "subjectAltName: ", why, NULL);
            return APR_EINVAL;
        }
        APR_ARRAY_PUSH(g->sans, const char *) = san;
    }
    g->user = user;
    if (g->subject || g->user) {
        *bound_to = scep_grant_format(p, g);
    }
    return APR_SUCCESS;
}

const char *scep_challenge_binding_text(apr_pool_t *p, const char *bound_to)
{
    scep_grant_t *g;
    const char *out;
    int i;

    if (!bound_to) {
        return "(any names)";
    }
    if (APR_SUCCESS != scep_grant_parse(p, bound_to, &g)) {
        return "(unreadable binding)";
    }
    if (!g->subject) {
        return g->udid ? apr_pstrcat(p, "(device ", g->udid, ")", NULL)
                       : "(any names)";
    }
    out = apr_pstrcat(p, "subject ", g->subject, NULL);
    for (i = 0; i < g->sans->nelts; ++i) {
        out = apr_pstrcat(p, out, ", ", APR_ARRAY_IDX(g->sans, i,
                                                      const char *), NULL);
    }
    return out;
}

apr_status_t scep_challenge_next_free(apr_pool_t *p, scep_store_t *st,
                                      const char *user, const char *via,
                                      apr_interval_time_t *wait)
{
    apr_array_header_t *recs;
    apr_time_t now = apr_time_now(), first = 0;
    const scep_challenge_rec_t *r;
    apr_status_t rv;
    int i;

    *wait = apr_time_from_sec(1);
    if (APR_SUCCESS != (rv = st->ops->challenge_list(st, p, user, &recs))) {
        return rv;
    }
    for (i = 0; i < recs->nelts; ++i) {
        r = APR_ARRAY_IDX(recs, i, const scep_challenge_rec_t *);
        if (via && (!r->via || strcmp(r->via, via))) {
            continue;
        }
        if (!first || r->expires < first) {
            first = r->expires;
        }
    }
    if (first > now + *wait) {
        *wait = first - now;
    }
    return APR_SUCCESS;
}

const char *scep_challenge_why(apr_pool_t *p, scep_store_t *st,
                               const char *hash,
                               scep_challenge_purpose_t purpose,
                               const char **creator)
{
    scep_challenge_rec_t *rec = NULL;

    *creator = NULL;
    if (!hash || APR_SUCCESS != st->ops->challenge_find(st, p, hash, &rec)) {
        return "unknown";
    }
    *creator = rec->created_by;
    return rec->purpose != purpose ? "for another use"
           : rec->revoked ? "revoked"
           : rec->consumed ? "already used"
           : rec->expires <= apr_time_now() ? "expired"
           : "usable";
}
