/* PKIOperation by GET: the query string through scep_query_parse and
 * scep_query_decode_message into scep_pkiop_handle, as the SCEP handler
 * does. Input: the query string (what follows '?'). Inputs of odd length
 * run with SCEPAllowLegacyAlgorithms on. */

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "fuzz.h"
#include "scep_ota/scep_pkiop.h"
#include "scep_ota/scep_query.h"

/* SCEPMaxRequestSize default */
#define MAX_MESSAGE (256 * 1024)

static scep_pkiop_cfg_t cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    memset(&cfg, 0, sizeof(cfg));
    cfg.ca = fuzz_captured_ca();
    cfg.challenge_password = FUZZ_STATIC_CHALLENGE;
    cfg.min_key_size = 1024;
    fuzz_store_prepare();
    fuzz_ready();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_input_pool();
    scep_pkiop_cfg_t c = cfg;
    scep_pkiop_reply_t reply;
    scep_query_t q;
    unsigned char *der = NULL;
    apr_size_t len = 0;
    apr_status_t rv;

    /* httpd hands the handler a NUL-terminated r->args */
    scep_query_parse(p, apr_pstrmemdup(p, (const char *)data, size), &q);
    (void)scep_op_name(q.op);
    if (q.op == SCEP_OP_PKIOPERATION && q.message
        && APR_SUCCESS == scep_query_decode_message(p, q.message, MAX_MESSAGE,
                                                    &der, &len)) {
        if (!der || !len || len > MAX_MESSAGE) {
            abort();
        }
        c.allow_legacy = size & 1;
        rv = scep_pkiop_handle(p, fuzz_logger(), &c, fuzz_store(p, 0),
                               der, len, &reply);
        if (APR_SUCCESS != rv || (reply.kind != SCEP_OUTCOME_OK
                                  && reply.kind != SCEP_OUTCOME_BAD_REQUEST)) {
            abort();
        }
    }
    apr_pool_destroy(p);
    return 0;
}
