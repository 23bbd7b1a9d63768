/* The OCSP responder: scep_ocsp_respond with the captured fixtures' CA as
 * signer, over a fresh memory store per input in which the fuzz client's
 * certificate is valid, then revoked. Input: the DER OCSPRequest (POST
 * body, or a GET path's decoded base64). The answer must always be an
 * OCSPResponse, successful only when the input was a request. */

#include <stdlib.h>

#include <openssl/ocsp.h>

#include "fuzz.h"
#include "scep_ota/scep_ocsp.h"

static scep_ocsp_cfg_t cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    fuzz_store_prepare();
    cfg.ca = fuzz_captured_ca();
    cfg.signer = cfg.ca->cert;
    cfg.signer_key = cfg.ca->key;
    fuzz_ready();
    return 0;
}

/* The answer is one DER OCSPResponse with a status OpenSSL knows. */
static void check(const scep_ocsp_answer_t *ans)
{
    const unsigned char *in = ans->der;
    OCSP_RESPONSE *resp;
    int status;

    if (!ans->der || !ans->len
        || !(resp = d2i_OCSP_RESPONSE(NULL, &in, (long)ans->len))) {
        abort();
    }
    status = OCSP_response_status(resp);
    OCSP_RESPONSE_free(resp);
    if (in != ans->der + ans->len || status != ans->status
        || (status == OCSP_RESPONSE_STATUS_SUCCESSFUL
            && ans->good + ans->revoked + ans->unknown < 1)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_input_pool();
    unsigned state;

    for (state = 0; state <= 8; state += 8) {
        scep_ocsp_answer_t ans;

        if (APR_SUCCESS != scep_ocsp_respond(p, fuzz_logger(), &cfg,
                                             fuzz_store(p, state), data,
                                             size, &ans)) {
            abort();
        }
        check(&ans);
    }
    apr_pool_destroy(p);
    return 0;
}
