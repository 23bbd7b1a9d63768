/* The challenge page's query and Accept header: scep_ndes_query_parse,
 * then scep_challenge_binding of its subject= and san= (scep_subject_parse,
 * scep_san_parse, scep_grant_format, read back with scep_grant_parse), as
 * the scep-challenge handler does; scep_ndes_format_accepted; and the
 * answers rendered in the format asked for. Input: the query string. */

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "fuzz.h"
#include "scep_ota/scep_challenge.h"
#include "scep_ota/scep_ndes.h"
#include "scep_ota/scep_policy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_ready();
    return 0;
}

/* What the handler sends once the query passed. */
static void render(apr_pool_t *p, scep_ndes_format_t fmt)
{
    scep_ndes_answer_t a;
    const unsigned char *body;
    apr_size_t len;

    memset(&a, 0, sizeof(a));
    a.challenge = "0123456789ABCDEF";
    a.expires = apr_time_now();
    a.lifetime = apr_time_from_sec(3600);
    a.ca_sha1 = "00";
    a.ca_sha256 = "00";
    if (APR_SUCCESS != scep_ndes_render(p, fmt, &a, &body, &len) || !len
        || APR_SUCCESS != scep_ndes_render_full(p, fmt, 5, 1, &body, &len)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_input_pool();
    const char *args = apr_pstrmemdup(p, (const char *)data, size);
    scep_ndes_query_t q;
    scep_grant_t *g;
    const char *err = NULL, *bound = NULL;
    int fmt;

    fmt = (int)scep_ndes_format_accepted(args);
    if (APR_SUCCESS == scep_ndes_query_parse(p, args, &q, &err)) {
        if (q.format >= 0) {
            fmt = q.format;
        }
        if (q.subject && strlen(q.subject) > SCEP_NDES_MAX_VALUE) {
            abort();
        }
        if (APR_SUCCESS == scep_challenge_binding(p, q.subject, q.sans,
                                                  "alice", &bound, &err)) {
            /* what is stored must read back */
            if (!bound || APR_SUCCESS != scep_grant_parse(p, bound, &g)
                || !g->user || strcmp(g->user, "alice")
                || (q.subject && !g->subject)) {
                abort();
            }
            (void)scep_challenge_binding_text(p, bound);
        }
        else if (!err) {
            abort();
        }
        render(p, (scep_ndes_format_t)fmt);
    }
    else if (!err) {
        abort();
    }
    apr_pool_destroy(p);
    return 0;
}
