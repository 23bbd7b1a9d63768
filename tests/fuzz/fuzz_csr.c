/* PKCS#10 requests: scep_csr_parse, the challengePassword, the key policy
 * and the issuance template (SAN copying) of scep_issue.c. Input: a DER
 * CSR. A mutated CSR rarely keeps a valid self-signature, so the request
 * is also decoded without it, given a fixed P-256 key, re-signed, and run
 * through the same steps: the attributes and extensions stay the fuzzer's. */

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "fuzz.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_policy.h"

static scep_ca_t ca;
static EVP_PKEY *resign_key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    memset(&ca, 0, sizeof(ca));
    ca.cert = fuzz_load_cert("tests/fuzz/pki/csr-ca.pem");
    ca.key = fuzz_load_key("tests/fuzz/pki/csr-ca.key");
    resign_key = fuzz_load_key("tests/fuzz/pki/csr-key.pem");
    fuzz_ready();
    return 0;
}

/* The name policy the requests meet: a few rules of every type. */
static const scep_name_policy_t *policy(apr_pool_t *p)
{
    static const char *const rules[][2] = {
        { "dns", "*.fuzz.example" }, { "email", "*@fuzz.example" },
        { "uri", "https://fuzz.example/*" }, { "ip", "10.0.0.0/8" },
        { "ip", "2001:db8::/32" }
    };
    apr_array_header_t *a = apr_array_make(p, 5, sizeof(scep_san_rule_t));
    scep_name_policy_t *pol = apr_pcalloc(p, sizeof(*pol));
    apr_array_header_t *reserved = apr_array_make(p, 1, sizeof(X509 *));
    const char *err;
    apr_size_t i;

    for (i = 0; i < sizeof(rules) / sizeof(rules[0]); ++i) {
        if (APR_SUCCESS != scep_san_rule_make(p, rules[i][0], rules[i][1],
                                              apr_array_push(a), &err)) {
            abort();
        }
    }
    APR_ARRAY_PUSH(reserved, X509 *) = ca.cert;
    pol->san_rules = a;
    pol->reserved = reserved;
    return pol;
}

/* Every name the certificate carries was decided by the server. */
static void check_names(apr_pool_t *p, const scep_name_policy_t *pol,
                        X509 *cert, const apr_array_header_t *decided)
{
    apr_array_header_t *got;
    const char *why;
    int i;

    if (X509_NAME_cmp(X509_get_subject_name(cert),
                      X509_get_subject_name(ca.cert)) == 0
        || APR_SUCCESS != scep_cert_sans(p, cert, &got, &why)
        || got->nelts != decided->nelts) {
        abort();
    }
    for (i = 0; i < got->nelts; ++i) {
        if (strcmp(APR_ARRAY_IDX(got, i, const char *),
                   APR_ARRAY_IDX(decided, i, const char *))) {
            abort();
        }
    }
    (void)pol;
}

/* What PKCSReq does with a request whose self-signature verified. */
static void use(apr_pool_t *p, X509_REQ *req)
{
    EVP_PKEY *key = X509_REQ_get0_pubkey(req);
    const scep_name_policy_t *pol = policy(p);
    apr_array_header_t *sans = NULL;
    const char *why = NULL, *c;
    X509 *cert = NULL;

    c = scep_csr_challenge(p, req);
    if (c && strlen(c) > 255) {
        abort();
    }
    (void)scep_key_hash(p, key);
    (void)scep_name_rfc2253(p, X509_REQ_get_subject_name(req));
    if (APR_SUCCESS == scep_key_check(p, key, 1024, &why)
        && APR_SUCCESS == scep_names_decide(p, pol, NULL, req, &sans, &why)
        && APR_SUCCESS == scep_issue_cert(p, &ca, req, NULL, sans, 30, &cert)) {
        /* never a CA, whatever the request asked for */
        if (X509_check_ca(cert) != 0) {
            abort();
        }
        check_names(p, pol, cert, sans);
        (void)scep_cert_serial_hex(p, cert);
    }
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_input_pool();
    const unsigned char *d = data;
    unsigned char *der = NULL;
    X509_REQ *req, *raw;
    int n;

    if (APR_SUCCESS == scep_csr_parse(p, data, size, &req)) {
        use(p, req);
    }
    raw = size < 0x7fffffff ? d2i_X509_REQ(NULL, &d, (long)size) : NULL;
    if (raw) {
        (void)scep_csr_challenge(p, raw);
        if (X509_REQ_set_pubkey(raw, resign_key)
            && X509_REQ_sign(raw, resign_key, EVP_sha256()) > 0
            && (n = i2d_X509_REQ(raw, &der)) > 0
            && APR_SUCCESS == scep_csr_parse(p, der, (apr_size_t)n, &req)) {
            use(p, req);
        }
        OPENSSL_free(der);
        X509_REQ_free(raw);
    }
    ERR_clear_error();
    apr_pool_destroy(p);
    return 0;
}
