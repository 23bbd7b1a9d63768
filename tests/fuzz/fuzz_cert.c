/* Certificate and key files, as the configuration loads them: PEM (one or
 * more objects) or DER through scep_load_certs / scep_load_keys, then the
 * checks of SCEPCACertificateFile and SCEPRACertificateFile
 * (scep_ca_assemble) and the helpers GetCACert and the logs use.
 * OTADeviceCACertificateFile (ota_anchors_load) is scep_load_certs too.
 * Input: the file's bytes. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include <openssl/err.h>

#include "fuzz.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"

static const char *path;
static EVP_PKEY *ca_key;

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("TMPDIR");

    (void)argc;
    (void)argv;
    fuzz_init();
    if (!dir || !*dir) {
        dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    }
    path = apr_psprintf(fuzz_root(), "%s/scep-fuzz-cert-%ld.pem", dir,
                        (long)getpid());
    atexit(remove_file);
    fuzz_captured_ca();
    ca_key = fuzz_load_key("tests/data/captured/ca.key");
    fuzz_ready();
    return 0;
}

static int write_input(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f) {
        return 0;
    }
    ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

static apr_array_header_t *one_key(apr_pool_t *p)
{
    apr_array_header_t *a = apr_array_make(p, 1, sizeof(EVP_PKEY *));

    APR_ARRAY_PUSH(a, EVP_PKEY *) = ca_key;
    return a;
}

static void use_certs(apr_pool_t *p, apr_array_header_t *certs)
{
    const scep_ca_t *captured = fuzz_captured_ca();
    scep_ca_material_t m;
    scep_ca_t *ca;
    const char *err, *warn;
    const unsigned char *der;
    apr_size_t len;
    int i;

    for (i = 0; i < certs->nelts; ++i) {
        X509 *x = APR_ARRAY_IDX(certs, i, X509 *);
        (void)scep_cert_is_ca(x);
        (void)scep_cert_key_usage(x);
        (void)scep_cert_subject(p, x);
        (void)scep_cert_serial_hex(p, x);
        (void)scep_name_rfc2253(p, X509_get_subject_name(x));
        (void)scep_cert_fingerprint(p, x, "SHA1");
        (void)scep_cert_der(p, x, &der, &len);
        (void)scep_cert_issued_by(x, captured->cert);
        (void)scep_key_matches_cert(ca_key, x);
        (void)scep_key_hash(p, X509_get0_pubkey(x));
    }
    (void)scep_certs_only_der(p, certs, &der, &len);

    /* as SCEPCACertificateFile, with the captured CA's key */
    memset(&m, 0, sizeof(m));
    m.ca_cert_file = path;
    m.ca_certs = certs;
    m.ca_key_file = "ca.key";
    m.ca_keys = one_key(p);
    err = warn = NULL;
    (void)scep_ca_assemble(&ca, p, &m, &err, &warn);

    /* as SCEPRACertificateFile under the captured CA */
    m.ca_certs = captured->chain;
    m.ra_cert_file = path;
    m.ra_certs = certs;
    m.ra_key_file = "ra.key";
    m.ra_keys = one_key(p);
    err = warn = NULL;
    (void)scep_ca_assemble(&ca, p, &m, &err, &warn);
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    apr_array_header_t *certs, *keys;
    const char *err = NULL, *why;
    int i;

    if (!write_input(data, size)) {
        return 0;
    }
    p = fuzz_input_pool();
    if (APR_SUCCESS == scep_load_certs(p, path, &certs, &err)) {
        use_certs(p, certs);
    }
    err = NULL;
    if (APR_SUCCESS == scep_load_keys(p, path, &keys, &err)) {
        for (i = 0; i < keys->nelts; ++i) {
            EVP_PKEY *k = APR_ARRAY_IDX(keys, i, EVP_PKEY *);
            why = NULL;
            (void)scep_key_check(p, k, 2048, &why);
            (void)scep_key_hash(p, k);
        }
    }
    ERR_clear_error();
    apr_pool_destroy(p);
    return 0;
}
