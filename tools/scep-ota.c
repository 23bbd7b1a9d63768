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
#include "scep_ota/scep_version.h"

#define SCEP_OTA_MAX_INPUT (16 * 1024 * 1024)

typedef int cmd_fn(apr_pool_t *p, int argc, const char *const *argv);

static int usage(FILE *out)
{
    fprintf(out,
            "usage: scep-ota COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  decode FILE|-   print a certificate, certs-only PKCS#7 bundle\n"
            "                  (a GetCACert answer) or CSR, DER or base64/PEM\n"
            "  caps            list the capability words SCEPCACaps knows\n"
            "  version         print the version\n");
    return out == stdout ? 0 : 2;
}

/* Reads a whole file, or standard input for "-". */
static apr_status_t read_input(apr_pool_t *p, const char *path,
                               unsigned char **data, apr_size_t *len)
{
    apr_file_t *f;
    apr_status_t rv;
    apr_size_t cap = 64 * 1024, n = 0, got;
    unsigned char *buf = apr_palloc(p, cap);

    rv = strcmp(path, "-") ? apr_file_open(&f, path, APR_FOPEN_READ,
                                           APR_FPROT_OS_DEFAULT, p)
                           : apr_file_open_stdin(&f, p);
    if (APR_SUCCESS != rv) {
        return rv;
    }
    for (;;) {
        if (n == cap) {
            unsigned char *bigger;
            if (cap >= SCEP_OTA_MAX_INPUT) {
                return APR_ENOSPC;
            }
            bigger = apr_palloc(p, cap * 2);
            memcpy(bigger, buf, n);
            buf = bigger;
            cap *= 2;
        }
        got = cap - n;
        rv = apr_file_read(f, buf + n, &got);
        n += got;
        if (APR_STATUS_IS_EOF(rv)) {
            break;
        }
        if (APR_SUCCESS != rv) {
            return rv;
        }
    }
    *data = buf;
    *len = n;
    return APR_SUCCESS;
}

/* PEM armour or bare base64 becomes DER; DER stays as it is. */
static void to_der(apr_pool_t *p, unsigned char **data, apr_size_t *len)
{
    char *text, *b64, *o;
    const char *s;
    apr_size_t i;
    int n;

    if (*len == 0 || (*data)[0] == 0x30) {
        return;
    }
    text = apr_pstrmemdup(p, (const char *)*data, *len);
    if ((s = strstr(text, "-----BEGIN")) && (s = strchr(s, '\n'))) {
        text = (char *)s + 1;
        if ((o = strstr(text, "-----END"))) {
            *o = '\0';
        }
    }
    b64 = o = apr_palloc(p, strlen(text) + 1);
    for (i = 0; text[i]; ++i) {
        if (!apr_isspace(text[i])) {
            *o++ = text[i];
        }
    }
    *o = '\0';
    *data = apr_palloc(p, (apr_size_t)apr_base64_decode_len(b64));
    n = apr_base64_decode_binary(*data, b64);
    *len = n > 0 ? (apr_size_t)n : 0;
}

static int print_certs_only(BIO *out, const unsigned char *der, long len)
{
    const unsigned char *d = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &d, len);
    STACK_OF(X509) *certs;
    int i;

    if (!p7 || !PKCS7_type_is_signed(p7)) {
        PKCS7_free(p7);
        return 0;
    }
    certs = p7->d.sign->cert;
    BIO_printf(out, "PKCS#7 SignedData, %d signer(s), %d certificate(s)\n",
               sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info),
               sk_X509_num(certs));
    for (i = 0; i < sk_X509_num(certs); ++i) {
        X509 *x = sk_X509_value(certs, i);
        BIO_printf(out, "certificate %d:\n  subject: ", i + 1);
        X509_NAME_print_ex(out, X509_get_subject_name(x), 0, XN_FLAG_ONELINE);
        BIO_printf(out, "\n  issuer:  ");
        X509_NAME_print_ex(out, X509_get_issuer_name(x), 0, XN_FLAG_ONELINE);
        BIO_printf(out, "\n  keyUsage: 0x%02x  CA: %s\n",
                   scep_cert_key_usage(x), X509_check_ca(x) ? "yes" : "no");
    }
    PKCS7_free(p7);
    return 1;
}

static int cmd_decode(apr_pool_t *p, int argc, const char *const *argv)
{
    unsigned char *data;
    const unsigned char *d;
    apr_size_t len;
    BIO *out;
    X509 *x;
    X509_REQ *req;
    int ok = 0;

    if (argc != 2) {
        return usage(stderr);
    }
    if (APR_SUCCESS != read_input(p, argv[1], &data, &len)) {
        fprintf(stderr, "scep-ota decode: cannot read %s\n", argv[1]);
        return 1;
    }
    to_der(p, &data, &len);
    out = BIO_new_fp(stdout, BIO_NOCLOSE);
    d = data;
    if ((x = d2i_X509(NULL, &d, (long)len))) {
        BIO_printf(out, "X.509 certificate\n");
        ok = X509_print_ex(out, x, XN_FLAG_ONELINE, 0);
        X509_free(x);
    }
    else if ((d = data, req = d2i_X509_REQ(NULL, &d, (long)len))) {
        BIO_printf(out, "PKCS#10 certificate request\n");
        ok = X509_REQ_print_ex(out, req, XN_FLAG_ONELINE, 0);
        X509_REQ_free(req);
    }
    else {
        ok = print_certs_only(out, data, (long)len);
    }
    BIO_free(out);
    ERR_clear_error();
    if (!ok) {
        fprintf(stderr, "scep-ota decode: %s is not a certificate, CSR or "
                "PKCS#7 bundle\n", argv[1]);
        return 1;
    }
    return 0;
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
};

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    apr_size_t i;
    int rc = -1;

    if (argc < 2) {
        return usage(stderr);
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        return usage(stdout);
    }
    apr_app_initialize(&argc, &argv, NULL);
    apr_pool_create(&p, NULL);
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); ++i) {
        if (!strcmp(argv[1], commands[i].name)) {
            rc = commands[i].fn(p, argc - 1, argv + 1);
            break;
        }
    }
    if (rc < 0) {
        fprintf(stderr, "scep-ota: unknown command '%s'\n", argv[1]);
        rc = usage(stderr);
    }
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
