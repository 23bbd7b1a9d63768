/* The audit trail's JSON lines. */

#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>

#include "scep_ota/scep_audit.h"

/* Bytes of a well-formed UTF-8 sequence at s (of n left), or 0. */
static apr_size_t utf8_len(const unsigned char *s, apr_size_t n)
{
    apr_size_t len, i;
    unsigned long cp;

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2, cp = s[0] & 0x1f;
    }
    else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3, cp = s[0] & 0x0f;
    }
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4, cp = s[0] & 0x07;
    }
    else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (i = 1; i < len; ++i) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* no overlong forms, surrogates or code points past U+10FFFF */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
        || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
        return 0;
    }
    return len;
}

/* A JSON string of s, at most max bytes of it. */
static const char *json_string(apr_pool_t *p, const char *s, apr_size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t n = strlen(s), i, k;
    char *out = apr_palloc(p, (n < max ? n : max) * 6 + 3), *w = out;

    *w++ = '"';
    for (i = 0; i < n && i < max; ) {
        if (u[i] == '"' || u[i] == '\\') {
            *w++ = '\\';
            *w++ = (char)u[i++];
        }
        else if (u[i] < 0x20 || u[i] == 0x7f) {
            w += apr_snprintf(w, 7, "\\u%04x", u[i++]);
        }
        else if (u[i] < 0x80) {
            *w++ = (char)u[i++];
        }
        else if ((k = utf8_len(u + i, n - i)) && i + k <= max) {
            memcpy(w, u + i, k);
            w += k;
            i += k;
        }
        else {
            memcpy(w, "\\ufffd", 6);
            w += 6;
            i++;
        }
    }
    *w++ = '"';
    *w = '\0';
    return out;
}

static void field(apr_array_header_t *o, const char *name, const char *v,
                  apr_size_t max)
{
    if (v) {
        APR_ARRAY_PUSH(o, const char *) = apr_psprintf(
            o->pool, ",\"%s\":%s", name, json_string(o->pool, v, max));
    }
}

static void sans_field(apr_array_header_t *o, const apr_array_header_t *sans,
                       apr_size_t max)
{
    int i;

    if (!sans) {
        return;
    }
    APR_ARRAY_PUSH(o, const char *) = ",\"sans\":[";
    for (i = 0; i < sans->nelts && i < SCEP_AUDIT_MAX_SANS; ++i) {
        APR_ARRAY_PUSH(o, const char *) = apr_pstrcat(
            o->pool, i ? "," : "",
            json_string(o->pool, APR_ARRAY_IDX(sans, i, const char *), max),
            NULL);
    }
    APR_ARRAY_PUSH(o, const char *) = "]";
    if (sans->nelts > SCEP_AUDIT_MAX_SANS) {
        APR_ARRAY_PUSH(o, const char *) = apr_psprintf(
            o->pool, ",\"sans_omitted\":%d", sans->nelts - SCEP_AUDIT_MAX_SANS);
    }
}

static const char *render(apr_pool_t *p, const scep_audit_t *ev,
                          apr_size_t max)
{
    apr_array_header_t *o = apr_array_make(p, 16, sizeof(const char *));
    apr_time_exp_t t;

    apr_time_exp_gmt(&t, ev->time ? ev->time : apr_time_now());
    APR_ARRAY_PUSH(o, const char *) = apr_psprintf(
        p, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
        t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
        t.tm_sec, t.tm_usec / 1000);
    field(o, "event", ev->event ? ev->event : "-", max);
    field(o, "outcome", ev->outcome, max);
    field(o, "vhost", ev->vhost, max);
    field(o, "client", ev->client, max);
    field(o, "user", ev->user, max);
    field(o, "transaction_id", ev->transaction_id, max);
    field(o, "serial", ev->serial, max);
    field(o, "subject", ev->subject, max);
    sans_field(o, ev->sans, max);
    field(o, "udid", ev->udid, max);
    field(o, "fail_info", ev->fail_info, max);
    field(o, "reason", ev->reason, max);
    APR_ARRAY_PUSH(o, const char *) = "}\n";
    return apr_array_pstrcat(p, o, '\0');
}

const char *scep_audit_line(apr_pool_t *p, const scep_audit_t *ev)
{
    apr_size_t max = SCEP_AUDIT_MAX_LINE;
    const char *line = render(p, ev, max);

    /* shorter fields until the line fits (a field of n bytes takes at
     * most 6n escaped) */
    while (strlen(line) > SCEP_AUDIT_MAX_LINE && max > 8) {
        max /= 2;
        line = render(p, ev, max);
    }
    if (strlen(line) > SCEP_AUDIT_MAX_LINE) {
        /* only the SANs can still be too many: leave them out */
        scep_audit_t shorter = *ev;
        shorter.sans = NULL;
        line = render(p, &shorter, max);
    }
    return line;
}
