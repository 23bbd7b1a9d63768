/* The SCEP query string. */

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_escape.h>
#include <apr_base64.h>

#include "scep_ota/scep_query.h"

static const struct {
    const char *name;
    scep_op_t op;
} ops[] = {
    { "GetCACaps", SCEP_OP_GETCACAPS },
    { "GetCACert", SCEP_OP_GETCACERT },
    { "GetNextCACert", SCEP_OP_GETNEXTCACERT },
    { "PKIOperation", SCEP_OP_PKIOPERATION },
};

/* Percent-decoding for the operation name only; a bad escape, or one that
 * decodes to a control character, makes the value unknown. */
static const char *unescape(apr_pool_t *p, const char *s, apr_size_t len)
{
    const char *out = apr_punescape_url(p, apr_pstrmemdup(p, s, len), NULL,
                                        NULL, 1);
    const char *c;

    for (c = out; c && *c; ++c) {
        if (apr_iscntrl(*c)) {
            return NULL;
        }
    }
    return out;
}

static scep_op_t lookup(const char *name)
{
    apr_size_t i;

    if (!name) {
        return SCEP_OP_UNKNOWN;
    }
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); ++i) {
        if (!strcasecmp(name, ops[i].name)) {
            return ops[i].op;
        }
    }
    return SCEP_OP_UNKNOWN;
}

void scep_query_parse(apr_pool_t *p, const char *args, scep_query_t *q)
{
    const char *s = args, *end, *eq;
    int have_op = 0;

    q->op = SCEP_OP_NONE;
    q->operation = NULL;
    q->message = NULL;
    while (s && *s) {
        end = strchr(s, '&');
        if (!end) {
            end = s + strlen(s);
        }
        eq = memchr(s, '=', (apr_size_t)(end - s));
        if (eq && eq - s == 9 && !strncasecmp(s, "operation", 9) && !have_op) {
            have_op = 1;
            q->operation = unescape(p, eq + 1, (apr_size_t)(end - eq - 1));
            q->op = lookup(q->operation);
        }
        else if (eq && eq - s == 7 && !strncasecmp(s, "message", 7)
                 && !q->message) {
            q->message = apr_pstrmemdup(p, eq + 1, (apr_size_t)(end - eq - 1));
        }
        s = *end ? end + 1 : end;
    }
}

const char *scep_op_name(scep_op_t op)
{
    apr_size_t i;

    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); ++i) {
        if (ops[i].op == op) {
            return ops[i].name;
        }
    }
    return op == SCEP_OP_NONE ? "(none)" : "(unknown)";
}

/* Keeps the base64 alphabet (mapping base64url onto it), drops whitespace,
 * and pads to a multiple of four. NULL for anything else. */
static char *normalise_base64(apr_pool_t *p, const char *in)
{
    apr_size_t n = strlen(in), i, o = 0, pad = 0;
    char *out = apr_palloc(p, n + 4);

    for (i = 0; i < n; ++i) {
        char c = in[i];
        if (apr_isspace(c)) {
            continue;
        }
        if (c == '=') {
            ++pad;
            continue;
        }
        if (pad) {
            return NULL;    /* data after padding */
        }
        if (c == '-') {
            c = '+';
        }
        else if (c == '_') {
            c = '/';
        }
        else if (!apr_isalnum(c) && c != '+' && c != '/') {
            return NULL;
        }
        out[o++] = c;
    }
    if (o % 4 == 1 || pad > 2) {
        return NULL;
    }
    while (o % 4) {
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

apr_status_t scep_query_decode_message(apr_pool_t *p, const char *raw,
                                       apr_size_t max_len,
                                       unsigned char **der, apr_size_t *len)
{
    const char *unescaped;
    char *b64;
    int n;

    if (!raw || !*raw) {
        return APR_EINVAL;
    }
    /* a base64 text of 4n/3 characters, plus escapes and line breaks */
    if (strlen(raw) / 4 > max_len) {
        return APR_ENOSPC;
    }
    unescaped = apr_punescape_url(p, raw, NULL, NULL, 0);
    if (!unescaped || !(b64 = normalise_base64(p, unescaped)) || !*b64) {
        return APR_EINVAL;
    }
    if ((apr_size_t)apr_base64_decode_len(b64) > max_len + 3) {
        return APR_ENOSPC;
    }
    *der = apr_palloc(p, (apr_size_t)apr_base64_decode_len(b64));
    n = apr_base64_decode_binary(*der, b64);
    if (n <= 0) {
        return APR_EINVAL;
    }
    if ((apr_size_t)n > max_len) {
        return APR_ENOSPC;
    }
    *len = (apr_size_t)n;
    return APR_SUCCESS;
}
