/* Pretty-printing SCEP objects for admins (scep-ota decode) and fuzzing. */

#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>
#include <apr_lib.h>
#include <apr_base64.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "scep_ota/scep_pkimsg.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"

#define MAX_B64 (16 * 1024 * 1024)

void scep_unarmour(apr_pool_t *p, const unsigned char **data,
                   apr_size_t *len)
{
    char *text, *b64, *o;
    const char *s;
    unsigned char *bin;
    apr_size_t i;
    int n;

    if (*len == 0 || (*data)[0] == 0x30 || *len > MAX_B64) {
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
    bin = apr_palloc(p, (apr_size_t)apr_base64_decode_len(b64) + 1);
    n = apr_base64_decode_binary(bin, b64);
    if (n > 0) {
        *data = bin;
        *len = (apr_size_t)n;
    }
}

static void print_hex(apr_pool_t *p, BIO *out, const char *label,
                      const unsigned char *b, apr_size_t n)
{
    const char *hex = b ? scep_upper_hex(p, b, n) : NULL;

    if (hex) {
        BIO_printf(out, "  %-16s%s (%lu bytes)\n", label, hex,
                   (unsigned long)n);
    }
}

static void print_name(BIO *out, const char *label, const X509_NAME *name)
{
    BIO_printf(out, "%s", label);
    X509_NAME_print_ex(out, name, 0, XN_FLAG_ONELINE);
    BIO_printf(out, "\n");
}

static void print_cert_line(apr_pool_t *p, BIO *out, const char *indent,
                            X509 *x)
{
    print_name(out, apr_pstrcat(p, indent, "subject: ", NULL),
               X509_get_subject_name(x));
    print_name(out, apr_pstrcat(p, indent, "issuer:  ", NULL),
               X509_get_issuer_name(x));
    BIO_printf(out, "%sserial:  %s  keyUsage: 0x%02x  CA: %s\n", indent,
               scep_cert_serial_hex(p, x), scep_cert_key_usage(x),
               X509_check_ca(x) ? "yes" : "no");
}

static int print_degenerate(apr_pool_t *p, BIO *out, const unsigned char *der,
                            apr_size_t len)
{
    const unsigned char *d = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &d, (long)len);
    STACK_OF(X509) *certs;
    STACK_OF(X509_CRL) *crls;
    int i;

    if (!p7 || !PKCS7_type_is_signed(p7) || !p7->d.sign) {
        PKCS7_free(p7);
        return 0;
    }
    certs = p7->d.sign->cert;
    crls = p7->d.sign->crl;
    BIO_printf(out, "PKCS#7 SignedData, %d signer(s), %d certificate(s), "
               "%d CRL(s)\n",
               sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info) > 0
               ? sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info) : 0,
               certs ? sk_X509_num(certs) : 0, crls ? sk_X509_CRL_num(crls) : 0);
    for (i = 0; i < sk_X509_num(certs); ++i) {
        BIO_printf(out, "certificate %d:\n", i + 1);
        print_cert_line(p, out, "  ", sk_X509_value(certs, i));
    }
    for (i = 0; i < sk_X509_CRL_num(crls); ++i) {
        BIO_printf(out, "CRL %d:\n", i + 1);
        X509_CRL_print_ex(out, sk_X509_CRL_value(crls, i), XN_FLAG_ONELINE);
    }
    PKCS7_free(p7);
    return 1;
}

static int print_ias(apr_pool_t *p, BIO *out, const unsigned char *der,
                     apr_size_t len)
{
    const unsigned char *d = der;
    PKCS7_ISSUER_AND_SERIAL *ias;

    ias = d2i_PKCS7_ISSUER_AND_SERIAL(NULL, &d, (long)len);
    if (!ias) {
        return 0;
    }
    BIO_printf(out, "IssuerAndSerialNumber\n");
    print_name(out, "  issuer: ", ias->issuer);
    BIO_printf(out, "  serial: %s\n", scep_serial_hex(p, ias->serial));
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    return 1;
}

static int print_x509(apr_pool_t *p, BIO *out, const unsigned char *der,
                      apr_size_t len)
{
    const unsigned char *d = der;
    X509 *x = scep_track_x509(p, d2i_X509(NULL, &d, (long)len));

    if (!x) {
        return 0;
    }
    BIO_printf(out, "X.509 certificate\n");
    return X509_print_ex(out, x, XN_FLAG_ONELINE, 0) > 0;
}

static int print_csr(apr_pool_t *p, BIO *out, const unsigned char *der,
                     apr_size_t len)
{
    const unsigned char *d = der;
    X509_REQ *req = scep_track_req(p, d2i_X509_REQ(NULL, &d, (long)len));

    if (!req) {
        return 0;
    }
    BIO_printf(out, "PKCS#10 certificate request\n");
    return X509_REQ_print_ex(out, req, XN_FLAG_ONELINE, 0) > 0;
}

/* The messageData: whichever structure it decodes as. */
static void print_content(apr_pool_t *p, BIO *out, const unsigned char *der,
                          apr_size_t len)
{
    BIO_printf(out, "messageData (%lu bytes):\n", (unsigned long)len);
    if (!print_csr(p, out, der, len) && !print_degenerate(p, out, der, len)
        && !print_ias(p, out, der, len)) {
        BIO_printf(out, "  (not a CSR, certs-only bundle or "
                   "IssuerAndSerialNumber)\n");
    }
    ERR_clear_error();
}

static void print_decrypted(apr_pool_t *p, BIO *out, scep_pkimsg_t *msg,
                            EVP_PKEY *key)
{
    apr_status_t rv;

    if (!msg->envelope) {
        return;
    }
    rv = scep_pkimsg_decrypt(p, msg, key, 1);
    if (APR_SUCCESS != rv) {
        BIO_printf(out, "envelope: cannot be decrypted with this key\n");
        return;
    }
    print_content(p, out, msg->data, msg->data_len);
}

static void print_pkimsg(apr_pool_t *p, BIO *out, scep_pkimsg_t *msg,
                         EVP_PKEY *key)
{
    BIO_printf(out, "SCEP pkiMessage\n");
    BIO_printf(out, "  messageType:    %d (%s)\n", msg->message_type,
               scep_pkimsg_type_name(msg->message_type));
    BIO_printf(out, "  transactionID:  %s\n", msg->transaction_id);
    if (msg->has_signing_time) {
        char when[APR_RFC822_DATE_LEN];

        apr_rfc822_date(when, apr_time_from_sec(msg->signing_time));
        BIO_printf(out, "  signingTime:    %s\n", when);
    }
    print_hex(p, out, "senderNonce:", msg->sender_nonce,
              msg->sender_nonce_len);
    print_hex(p, out, "recipientNonce:", msg->recipient_nonce,
              msg->recipient_nonce_len);
    if (msg->pki_status >= 0) {
        BIO_printf(out, "  pkiStatus:      %d (%s)\n", msg->pki_status,
                   scep_pkimsg_status_name(msg->pki_status));
    }
    if (msg->fail_info != SCEP_FAIL_NONE) {
        BIO_printf(out, "  failInfo:       %d (%s)\n", msg->fail_info,
                   scep_pkimsg_fail_name(msg->fail_info));
    }
    if (msg->fail_info_text) {
        BIO_printf(out, "  failInfoText:   %s\n", msg->fail_info_text);
    }
    BIO_printf(out, "  digest:         %s\n",
               scep_pkimsg_alg_name(msg->digest_nid));
    BIO_printf(out, "  signature:      %s\n", msg->signature_ok
               ? "verified (signer certificate not chain-checked)"
               : "NOT VERIFIED");
    if (msg->signer) {
        BIO_printf(out, "  signer:\n");
        print_cert_line(p, out, "    ", msg->signer);
    }
    BIO_printf(out, "  certificates:   %d\n", msg->certs->nelts);
    if (msg->envelope) {
        BIO_printf(out, "  envelope:       %s, key transport %s, %lu bytes\n",
                   scep_pkimsg_alg_name(msg->cipher_nid),
                   msg->key_transport == SCEP_KT_OAEP ? "RSAES-OAEP"
                                                      : "RSA PKCS#1 v1.5",
                   (unsigned long)msg->envelope_len);
    }
    else {
        BIO_printf(out, "  envelope:       none\n");
    }
    if (key) {
        print_decrypted(p, out, msg, key);
    }
}

apr_status_t scep_pkimsg_print(apr_pool_t *p, BIO *out,
                               const unsigned char *data, apr_size_t len,
                               EVP_PKEY *key)
{
    scep_pkimsg_t *msg;
    apr_status_t rv = APR_SUCCESS;

    scep_unarmour(p, &data, &len);
    if (len == 0 || len > 0x7fffffff) {
        rv = APR_EINVAL;
    }
    else if (APR_SUCCESS == scep_pkimsg_parse(p, data, len, &msg)) {
        print_pkimsg(p, out, msg, key);
    }
    else if (!print_x509(p, out, data, len) && !print_csr(p, out, data, len)
             && !print_degenerate(p, out, data, len)) {
        rv = APR_EINVAL;
    }
    ERR_clear_error();
    return rv;
}
