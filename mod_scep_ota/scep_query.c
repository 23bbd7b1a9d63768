/* The SCEP query string. */

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_escape.h>

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
