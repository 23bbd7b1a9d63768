/* scep-ota: the command-line companion of mod_scep_ota, on the same core
 * library. */

#include <stdio.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_file_io.h>
#include <apr_base64.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "scep_ota/scep_caps.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_pkimsg.h"
#include "scep_ota/scep_version.h"
#include "scep-ota-client.h"
#include "scep-ota-store.h"
#include "scep-ota-request.h"
#include "scep-ota-device.h"
#include "scep-ota-init.h"

#define SCEP_OTA_MAX_INPUT (16 * 1024 * 1024)

typedef int cmd_fn(apr_pool_t *p, int argc, const char *const *argv);

static const char *const usage_text[] = {
    "usage: scep-ota COMMAND [ARGS]\n",
    "\n",
    "commands:\n",
    "  decode [--key KEY] FILE|-\n",
    "                  print a SCEP request or CertRep (type, status,\n",
    "                  failInfo, nonces, transactionID, signer), a\n",
    "                  certificate, certs-only PKCS#7 bundle or CSR,\n",
    "                  DER or base64/PEM; with KEY (the RA/CA key for\n",
    "                  a request, the client's for a CertRep) the\n",
    "                  envelope is decrypted and its content printed\n",
    "  store ...       list, approve, revoke, CRL, challenges, export\n",
    "                  (the store and CA httpd.conf gives mod_scep_ota,\n",
    "                  read with httpd's rules; scep-ota store -h)\n",
    "  device URL ...  play an iPhone through OTA Phase 1, 2, SCEP and\n",
    "                  Phase 3 (scep-ota device -h)\n",
    "  request ...     build a SCEP request offline (scep-ota request -h)\n",
    "  init DIR ...    create a CA (and RA, OTA and OCSP signers) with\n",
    "                  the key usages the module checks (scep-ota init)\n",
    "  certrep [--key KEY] FILE\n",
    "                  read a CertRep; with KEY write what it carries\n",
    "  caps            list the capability words SCEPCACaps knows\n",
    "  version         print the version\n",
    NULL
};

static int usage(FILE *out)
{
    return scep_cli_usage(out, usage_text);
}

/* Loads the private key for --key (and the legacy provider, so that a
 * single DES envelope can be opened). */
static EVP_PKEY *decode_key(apr_pool_t *p, const char *path)
{
    EVP_PKEY *key;
    const char *err = NULL;

    if (!(key = scep_cli_load_key(p, path, &err))) {
        fprintf(stderr, "scep-ota decode: --key: %s\n", err);
        return NULL;
    }
    if (APR_SUCCESS != scep_crypt_enable_legacy(p, &err)) {
        fprintf(stderr, "scep-ota decode: %s (single DES envelopes cannot "
                "be opened)\n", err);
    }
    return key;
}

/* Prints what the bytes are; 1 (said why) when none of what it knows. */
static int print_decoded(apr_pool_t *p, const char *path,
                         const unsigned char *data, apr_size_t len,
                         EVP_PKEY *key)
{
    BIO *out = BIO_new_fp(stdout, BIO_NOCLOSE);
    apr_status_t rv = scep_pkimsg_print(p, out, data, len, key);

    BIO_free(out);
    if (APR_SUCCESS != rv) {
        fprintf(stderr, "scep-ota decode: %s is not a SCEP message, "
                "certificate, CSR or PKCS#7 bundle\n", path);
        return 1;
    }
    return 0;
}

static int cmd_decode(apr_pool_t *p, int argc, const char *const *argv)
{
    unsigned char *data;
    apr_size_t len;
    EVP_PKEY *key = NULL;
    const char *path = argv[argc - 1];

    if (argc == 4 && !strcmp(argv[1], "--key")) {
        if (!(key = decode_key(p, argv[2]))) {
            return 1;
        }
    }
    else if (argc != 2) {
        return usage(stderr);
    }
    if (APR_SUCCESS != scep_cli_read(p, path, SCEP_OTA_MAX_INPUT, 1, &data,
                                      &len)) {
        fprintf(stderr, "scep-ota decode: cannot read %s\n", path);
        return 1;
    }
    return print_decoded(p, path, data, len, key);
}

static int cmd_caps(apr_pool_t *p, int argc, const char *const *argv)
{
    (void)p;
    (void)argc;
    (void)argv;
    printf("known:   %s\ndefault: %s\n", scep_caps_known(), SCEP_CAPS_DEFAULT);
    return 0;
}

static int cmd_version(apr_pool_t *p, int argc, const char *const *argv)
{
    (void)p;
    (void)argc;
    (void)argv;
    printf("scep-ota %s (%s)\n", SCEP_OTA_VERSION,
           OpenSSL_version(OPENSSL_VERSION));
    return 0;
}

static const struct {
    const char *name;
    cmd_fn *fn;
} commands[] = {
    { "decode", cmd_decode },
    { "caps", cmd_caps },
    { "version", cmd_version },
    { "store", scep_cli_store },
    { "request", scep_cli_request },
    { "certrep", scep_cli_certrep },
    { "device", scep_cli_device },
    { "init", scep_cli_init },
};

/* The command of argv[1], or -1 when there is none of that name. */
static int dispatch(apr_pool_t *p, int argc, const char *const *argv)
{
    apr_size_t i;

    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); ++i) {
        if (!strcmp(argv[1], commands[i].name)) {
            return commands[i].fn(p, argc - 1, argv + 1);
        }
    }
    return -1;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    int rc;

    if (argc < 2) {
        return usage(stderr);
    }
    if (scep_cli_is_help(argv[1])) {
        return usage(stdout);
    }
    apr_app_initialize(&argc, &argv, NULL);
    apr_pool_create(&p, NULL);
    if ((rc = dispatch(p, argc, argv)) < 0) {
        fprintf(stderr, "scep-ota: unknown command '%s'\n", argv[1]);
        rc = usage(stderr);
    }
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
