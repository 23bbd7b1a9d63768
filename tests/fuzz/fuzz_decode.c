/* scep-ota decode: scep_pkimsg_print on any input (DER, base64 or PEM of a
 * pkiMessage, certificate, CSR or certs-only bundle), with and without a
 * key. Input: one byte choosing the key, modulo 4 (0: none, 1: the
 * captured CA's, which opens requests, 2: the captured sscep client's, which
 * opens micromdm's CertRep to it, 3: the fuzz client's, which opens the
 * CertReps gen_seeds made), then the data. */

#include <openssl/bio.h>

#include "fuzz.h"
#include "scep_ota/scep_pkimsg.h"

static EVP_PKEY *keys[4];
static BIO *out;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    keys[0] = NULL;
    keys[1] = fuzz_load_key("tests/data/captured/ca.key");
    keys[2] = fuzz_load_key("tests/data/captured/sscep-pkcsreq.key");
    keys[3] = fuzz_client_key();
    out = BIO_new(BIO_s_null());
    fuzz_ready();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;

    if (size < 1) {
        return 0;
    }
    p = fuzz_input_pool();
    (void)scep_pkimsg_print(p, out, data + 1, size - 1, keys[data[0] % 4]);
    apr_pool_destroy(p);
    return 0;
}
