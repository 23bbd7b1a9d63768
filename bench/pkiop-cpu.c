/* CPU time of one enrollment in the core alone, against the CPU time of
 * the three RSA private-key operations it cannot do without, in one
 * process and one run. No httpd, no network, no store on disk: what is
 * left is the module's own per-request work, so the ratio does not move
 * with the load other programs put on the machine.
 *
 *   bench/pkiop-cpu CA.pem CA.key LIST [CHALLENGE]
 *
 * LIST names PKCSReq files (DER), one per line, each a transaction of its
 * own (bench/enroll.sh builds them with `scep-ota request`). Every request
 * is handled once with the memory store and must get SUCCESS.
 * Run it under `perf record -g` to see where the time goes. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <apr_general.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <openssl/evp.h>

#include "scep_ota/scep_ca.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_pkimsg.h"
#include "scep_ota/scep_pkiop.h"
#include "scep_ota/scep_store.h"

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "pkiop-cpu: %s: %s\n", what, why ? why : "failed");
    exit(1);
}

static scep_ca_t *load_ca(apr_pool_t *p, const char *cert, const char *key)
{
    scep_ca_material_t m;
    scep_ca_t *ca;
    const char *err = NULL, *warning = NULL;

    memset(&m, 0, sizeof(m));
    m.ca_cert_file = cert;
    m.ca_key_file = key;
    if (APR_SUCCESS != scep_load_certs(p, cert, &m.ca_certs, &err)
        || APR_SUCCESS != scep_load_keys(p, key, &m.ca_keys, &err)
        || APR_SUCCESS != scep_ca_assemble(&ca, p, &m, &err, &warning)) {
        die("the CA", err);
    }
    return ca;
}

/* CPU seconds of one SHA-256 RSA signature with key (what X509_sign and
 * CMS signing pay; decryption costs the same private-key operation). */
static double rsa_op(EVP_PKEY *key, int rounds)
{
    unsigned char sig[1024];
    size_t len;
    double t0 = cpu_seconds();
    int i;

    for (i = 0; i < rounds; ++i) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        len = sizeof(sig);
        if (!ctx || 1 != EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key)
            || 1 != EVP_DigestSign(ctx, sig, &len, (const unsigned char *)"x",
                                   1)) {
            die("RSA signature", NULL);
        }
        EVP_MD_CTX_free(ctx);
    }
    return (cpu_seconds() - t0) / rounds;
}

static apr_array_header_t *read_list(apr_pool_t *p, const char *list)
{
    apr_array_header_t *reqs = apr_array_make(p, 1000, sizeof(char *));
    char line[4096];
    FILE *f = fopen(list, "r");

    if (!f) {
        die(list, "cannot open");
    }
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (*line) {
            APR_ARRAY_PUSH(reqs, char *) = apr_pstrdup(p, line);
        }
    }
    fclose(f);
    return reqs;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p, *rp;
    scep_pkiop_cfg_t cfg;
    scep_store_t *store;
    apr_array_header_t *reqs;
    double op, t0, spent = 0;
    int i, ok = 0;

    if (argc < 4) {
        fprintf(stderr, "usage: pkiop-cpu CA.pem CA.key LIST [CHALLENGE]\n");
        return 2;
    }
    apr_app_initialize(&argc, &argv, NULL);
    apr_pool_create(&p, NULL);
    memset(&cfg, 0, sizeof(cfg));
    cfg.ca = load_ca(p, argv[1], argv[2]);
    cfg.challenge_password = argc > 4 ? argv[4] : "bench-secret";
    store = scep_store_memory_create(p);
    reqs = read_list(p, argv[3]);
    op = rsa_op(cfg.ca->key, 200);
    for (i = 0; i < reqs->nelts; ++i) {
        scep_pkiop_reply_t reply;
        char *der;
        apr_size_t len;
        apr_file_t *f;
        apr_finfo_t fi;

        apr_pool_create(&rp, p);
        if (APR_SUCCESS != apr_file_open(&f, APR_ARRAY_IDX(reqs, i, char *),
                                         APR_FOPEN_READ, 0, rp)
            || APR_SUCCESS != apr_file_info_get(&fi, APR_FINFO_SIZE, f)) {
            die(APR_ARRAY_IDX(reqs, i, char *), "cannot read");
        }
        len = (apr_size_t)fi.size;
        der = apr_palloc(rp, len);
        apr_file_read_full(f, der, len, NULL);
        t0 = cpu_seconds();
        memset(&reply, 0, sizeof(reply));
        if (APR_SUCCESS == scep_pkiop_handle(rp, scep_log_null(), &cfg, store,
                                             (unsigned char *)der, len,
                                             &reply)
            && reply.pki_status == SCEP_STATUS_SUCCESS) {
            ++ok;
        }
        spent += cpu_seconds() - t0;
        apr_pool_destroy(rp);
    }
    op = (op + rsa_op(cfg.ca->key, 200)) / 2;
    printf("enrollments %d of %d SUCCESS\n", ok, reqs->nelts);
    printf("CPU per enrollment %.0f us; three RSA private-key operations "
           "%.0f us; RSA share %.2f\n", 1e6 * spent / reqs->nelts, 3e6 * op,
           3 * op / (spent / reqs->nelts));
    return ok == reqs->nelts ? 0 : 1;
}
