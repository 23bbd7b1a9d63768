/* The challenge page: its query and its answers (HTML in UTF-16LE as
 * NDES sends it, JSON, text). */

#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_escape.h>

#include "scep_ota/scep_ndes.h"

/* ------------------------------------------------------------------ */
/* the query                                                            */

static const char *const format_names[] = { "html", "json", "text" };

/* The value of one parameter: percent escapes and '+' decoded; no
 * control character (NUL included), at most SCEP_NDES_MAX_VALUE bytes. */
static apr_status_t decode_value(apr_pool_t *p, const char *name,
                                 const char *s, apr_size_t n,
                                 const char **out, const char **err)
{
    char *v;
    apr_size_t len = 0, i;
    apr_status_t rv;

    if (n == 0) {
        *err = apr_psprintf(p, "%s= is empty", name);
        return APR_EINVAL;
    }
    if (n > 3 * SCEP_NDES_MAX_VALUE) {
        *err = apr_psprintf(p, "%s= is longer than %d bytes", name,
                            SCEP_NDES_MAX_VALUE);
        return APR_EINVAL;
    }
    v = apr_palloc(p, n + 1);
    rv = apr_unescape_url(v, s, (apr_ssize_t)n, NULL, NULL, 1, &len);
    if (APR_STATUS_IS_NOTFOUND(rv)) {     /* nothing to decode */
        memcpy(v, s, n);
        len = n;
    }
    else if (APR_SUCCESS != rv) {
        *err = apr_psprintf(p, "%s= has a bad %%-escape", name);
        return APR_EINVAL;
    }
    else if (len > 0) {
        --len;                  /* the count includes the terminating NUL */
    }
    v[len] = '\0';
    for (i = 0; i < len; ++i) {
        if (apr_iscntrl(v[i])) {
            *err = apr_psprintf(p, "%s= holds a control character", name);
            return APR_EINVAL;
        }
    }
    if (len > SCEP_NDES_MAX_VALUE) {
        *err = apr_psprintf(p, "%s= is longer than %d bytes", name,
                            SCEP_NDES_MAX_VALUE);
        return APR_EINVAL;
    }
    *out = v;
    return APR_SUCCESS;
}

static apr_status_t set_format(apr_pool_t *p, scep_ndes_query_t *q,
                               const char *v, const char **err)
{
    int i;

    if (q->format >= 0) {
        *err = "format= is given twice";
        return APR_EINVAL;
    }
    for (i = 0; i < 3; ++i) {
        if (!strcasecmp(v, format_names[i])) {
            q->format = i;
            return APR_SUCCESS;
        }
    }
    *err = "format= must be html, json or text";
    return APR_EINVAL;
}

/* One name=value pair (s, n: the raw text). */
static apr_status_t one_param(apr_pool_t *p, scep_ndes_query_t *q,
                              const char *s, apr_size_t n, const char **err)
{
    const char *eq = memchr(s, '=', n), *v;
    apr_size_t nlen = eq ? (apr_size_t)(eq - s) : n;
    apr_size_t vlen = eq ? n - nlen - 1 : 0;
    static const char *const names[] = { "format", "subject", "san" };
    int which;
    apr_status_t rv;

    for (which = 0; which < 3; ++which) {
        if (nlen == strlen(names[which])
            && !strncasecmp(s, names[which], nlen)) {
            break;
        }
    }
    if (which == 3) {
        *err = "unknown parameter: the page takes format=, subject= and "
               "san=";
        return APR_EINVAL;
    }
    rv = decode_value(p, names[which], eq ? eq + 1 : s + n, vlen, &v, err);
    if (APR_SUCCESS != rv) {
        return rv;
    }
    if (which == 0) {
        return set_format(p, q, v, err);
    }
    if (which == 1) {
        if (q->subject) {
            *err = "subject= is given twice";
            return APR_EINVAL;
        }
        q->subject = v;
        return APR_SUCCESS;
    }
    if (q->sans->nelts >= SCEP_NDES_MAX_SANS) {
        *err = apr_psprintf(p, "more than %d san= parameters",
                            SCEP_NDES_MAX_SANS);
        return APR_EINVAL;
    }
    APR_ARRAY_PUSH(q->sans, const char *) = v;
    return APR_SUCCESS;
}

apr_status_t scep_ndes_query_parse(apr_pool_t *p, const char *args,
                                   scep_ndes_query_t *q, const char **err)
{
    const char *s = args, *end;
    apr_status_t rv;

    q->format = -1;
    q->subject = NULL;
    q->sans = apr_array_make(p, 2, sizeof(const char *));
    *err = NULL;
    while (s && *s) {
        end = strchr(s, '&');
        if (!end) {
            end = s + strlen(s);
        }
        if (end > s && APR_SUCCESS != (rv = one_param(p, q, s,
                                                      (apr_size_t)(end - s),
                                                      err))) {
            return rv;
        }
        s = *end ? end + 1 : end;
    }
    return APR_SUCCESS;
}

/* Whether the parameters of a media range (after its ';') say q=0. */
static int refused(const char *params, apr_size_t n)
{
    const char *q = params, *end = params + n;

    for (; q < end; ++q) {
        if ((*q == 'q' || *q == 'Q') && q + 1 < end && q[1] == '=') {
            for (q += 2; q < end && (*q == '0' || *q == '.'); ++q) {
            }
            return q == end || *q == ';' || *q == ' ';
        }
    }
    return 0;
}

scep_ndes_format_t scep_ndes_format_accepted(const char *accept)
{
    static const char json_type[] = "application/json";
    const char *s = accept, *end, *semi;
    apr_size_t n;

    while (s && *s) {
        while (*s == ' ' || *s == ',') {
            ++s;
        }
        end = s + strcspn(s, ",");
        semi = memchr(s, ';', (apr_size_t)(end - s));
        n = (apr_size_t)((semi ? semi : end) - s);
        while (n && s[n - 1] == ' ') {
            --n;
        }
        if (n == sizeof(json_type) - 1 && !strncasecmp(s, json_type, n)
            && !(semi && refused(semi, (apr_size_t)(end - semi)))) {
            return SCEP_NDES_JSON;
        }
        s = end;
    }
    return SCEP_NDES_HTML;
}

const char *scep_ndes_content_type(scep_ndes_format_t fmt)
{
    switch (fmt) {
    case SCEP_NDES_JSON:
        return "application/json";
    case SCEP_NDES_TEXT:
        return "text/plain; charset=us-ascii";
    default:
        return "text/html; charset=utf-16";
    }
}

/* ------------------------------------------------------------------ */
/* the answers                                                          */

const char *scep_ndes_rfc3339(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t tm;
    char buf[32];
    apr_size_t n;

    apr_time_exp_gmt(&tm, t);
    apr_strftime(buf, &n, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return apr_pstrdup(p, buf);
}

/* The page as NDES's readers read it: UTF-16LE after a byte-order mark.
 * Everything on it is ASCII (the password, hex digits, numbers and our
 * own words): each character becomes its code unit, low byte first; any
 * other byte is refused rather than mangled. */
static apr_status_t utf16le(apr_pool_t *p, const char *ascii,
                            const unsigned char **body, apr_size_t *len)
{
    apr_size_t n = strlen(ascii), i;
    unsigned char *out = apr_palloc(p, 2 * n + 2);

    out[0] = 0xFF;
    out[1] = 0xFE;
    for (i = 0; i < n; ++i) {
        if ((unsigned char)ascii[i] >= 0x80) {
            return APR_EINVAL;
        }
        out[2 + 2 * i] = (unsigned char)ascii[i];
        out[3 + 2 * i] = 0;
    }
    *body = out;
    *len = 2 * n + 2;
    return APR_SUCCESS;
}

#define PAGE_HEAD \
    "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; " \
    "charset=UTF-16\"><Title>Network Device Enrollment</Title></Head>\r\n" \
    "<Body BgColor=#FFFFFF><Font Face=\"Arial\">\r\n" \
    "<P> mod_scep_ota hands out one-time passwords for the Simple " \
    "Certificate Enrollment Protocol (SCEP) here, as NDES does. </P>\r\n"
#define PAGE_TAIL "</Font></Body></HTML>\r\n"

static int minutes(apr_interval_time_t t)
{
    apr_int64_t s = apr_time_sec(t);

    return (int)((s + 59) / 60);
}

static const char *page(apr_pool_t *p, const scep_ndes_answer_t *a)
{
    return apr_psprintf(p, PAGE_HEAD
        "<P> To enroll a device you need: </P>\r\n"
        "<P> The thumbprint (hash value) for the CA certificate is: "
        "<B> %s </B> </P>\r\n"
        "<P> The enrollment challenge password is: <B> %s </B> </P>\r\n"
        "<P> This password can be used once only and will expire within "
        "%d minutes. </P>\r\n"
        "<P> Every enrollment needs a password of its own: load this page "
        "again for another. </P>\r\n" PAGE_TAIL,
        a->ca_sha1, a->challenge, minutes(a->lifetime));
}

static const char *json(apr_pool_t *p, const scep_ndes_answer_t *a)
{
    /* every value is hex digits or a date: nothing to escape */
    return apr_psprintf(p, "{\"challenge\": \"%s\", \"expires\": \"%s\", "
                        "\"ca_thumbprint_sha1\": \"%s\", "
                        "\"ca_thumbprint_sha256\": \"%s\"}\n",
                        a->challenge, scep_ndes_rfc3339(p, a->expires),
                        a->ca_sha1, a->ca_sha256);
}

static apr_status_t finish(apr_pool_t *p, scep_ndes_format_t fmt,
                           const char *text, const unsigned char **body,
                           apr_size_t *len)
{
    if (fmt == SCEP_NDES_HTML) {
        return utf16le(p, text, body, len);
    }
    *body = (const unsigned char *)text;
    *len = strlen(text);
    return APR_SUCCESS;
}

apr_status_t scep_ndes_render(apr_pool_t *p, scep_ndes_format_t fmt,
                              const scep_ndes_answer_t *a,
                              const unsigned char **body, apr_size_t *len)
{
    const char *text = fmt == SCEP_NDES_JSON ? json(p, a)
                     : fmt == SCEP_NDES_TEXT
                       ? apr_pstrcat(p, a->challenge, "\n", NULL)
                       : page(p, a);

    return finish(p, fmt, text, body, len);
}

apr_status_t scep_ndes_render_full(apr_pool_t *p, scep_ndes_format_t fmt,
                                   int cache_size, apr_interval_time_t wait,
                                   const unsigned char **body,
                                   apr_size_t *len)
{
    apr_int64_t secs = apr_time_sec(wait + apr_time_from_sec(1) - 1);
    const char *text;

    if (fmt == SCEP_NDES_JSON) {
        text = apr_psprintf(p, "{\"error\": \"the password cache is full\", "
                            "\"cache_size\": %d, \"retry_after\": %"
                            APR_INT64_T_FMT "}\n", cache_size, secs);
    }
    else if (fmt == SCEP_NDES_TEXT) {
        text = apr_psprintf(p, "the password cache is full (%d unused "
                            "passwords); retry in %" APR_INT64_T_FMT
                            " seconds\n", cache_size, secs);
    }
    else {
        text = apr_psprintf(p, PAGE_HEAD
            "<P> The password cache is full. </P>\r\n"
            "<P> You hold %d passwords that are neither used nor expired, "
            "as many as this server lets one user hold. A new password can "
            "be had once one of them is used or expires (in %d minutes at "
            "most), or after an administrator revokes them. </P>\r\n"
            PAGE_TAIL, cache_size, minutes(wait));
    }
    return finish(p, fmt, text, body, len);
}
