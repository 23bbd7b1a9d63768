/* scep-ota device: plays an iPhone through OTA Phase 1, Phase 2, SCEP and
 * Phase 3 against a server, printing every exchange. */

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_base64.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "scep_ota/ota_plist.h"
#include "scep_ota/ota_profile.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_pkimsg.h"
#include "scep-ota-client.h"
#include "scep-ota-device.h"
#include "scep-ota-http.h"

#define IOS_CURRENT 0
#define LOST_CONNECTION "A network error has occurred. The network " \
                        "connection was lost."
#define NO_CAPABILITY "The Certification Authority does not have the " \
                      "required capability"

typedef struct {
    apr_pool_t *p;
    scep_http_t *http;
    const char *url;             /* Phase 1 */
    const char *cert_file;       /* --identity */
    const char *key_file;        /* --key */
    const char *cafile;          /* --cacert */
    int insecure;                /* --insecure */
    X509 *dev_cert;              /* --identity/--key: the device identity */
    EVP_PKEY *dev_key;
    apr_array_header_t *dev_chain;
    apr_table_t *given;          /* --attr K=V */
    int ios;
    int no_caps_array;
    int verbose;
    const char *save;            /* --save PREFIX */
    const char *user;            /* --user: Basic auth for the OTA URL */
    const char *password_file;   /* --password-file */
    const char *profile_ca_file; /* --profile-ca FILE */
    X509_STORE *profile_ca;
    /* learned on the way */
    const char *service_url;
    plist_t wanted;              /* DeviceAttributes */
    const char *challenge;
    plist_t scep;                /* the SCEP payload's PayloadContent */
    const char *scep_url;
    X509 *ca, *ra_enc, *ra_sign;
    int cipher_nid, digest_nid, use_post;
    X509 *cert;                  /* issued by SCEP */
    EVP_PKEY *key;
} device_t;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    scep_cli_vfail("device", fmt, ap);
    va_end(ap);
    return 1;
}

static const char *const usage_text[] = {
    "usage: scep-ota device URL --identity CERT --key KEY\n",
    "           [--attr NAME=VALUE ...] [--ios 3|4|current]\n",
    "           [--no-caps-array] [--cacert FILE] [--insecure]\n",
    "           [--profile-ca FILE] [--save PREFIX] [-v]\n",
    "           [--user NAME --password-file FILE]\n",
    "\n",
    "Plays an iPhone: GET URL (Phase 1), POST attributes signed with\n",
    "the device identity CERT/KEY (Phase 2), SCEP enrollment with the\n",
    "payload it gets, POST signed with the new identity (Phase 3),\n",
    "and decrypts the final profile. Attributes the server asks for\n",
    "default to UDID=<CN of CERT> VERSION=22C152 PRODUCT=iPhone17,1\n",
    "SERIAL=F2LTESTDEVICE; IMEI, MEID and others only with --attr.\n",
    "  --ios 3|4|current  GetCACaps behaviour when the payload has no\n",
    "                     GetCACaps array: 3 asks twice, then GET/3DES/\n",
    "                     SHA-1; 4 asks three times, then fails;\n",
    "                     current (default) asks once\n",
    "  --no-caps-array    ignore the payload's GetCACaps array\n",
    "  --user NAME        HTTP Basic authentication as NAME for every\n",
    "                     request to URL's host (Phase 1 behind an\n",
    "                     auth module); never to another host\n",
    "  --password-file FILE  the password: the first line of FILE,\n",
    "                     which others may not read; never printed\n",
    "  --cacert FILE      verify https servers with these CAs\n",
    "  --insecure         do not verify https servers\n",
    "  --profile-ca FILE  check that the signer of every profile\n",
    "                     chains to a certificate of FILE (printed;\n",
    "                     like a device, it goes on either way)\n",
    "  --save PREFIX      write PREFIX.crt and PREFIX.key (the new\n",
    "                     identity) and PREFIX.mobileconfig (Phase 3);\n",
    "                     the key and the profile are made mode 0600\n",
    NULL
};

static int usage(void)
{
    return scep_cli_usage(stderr, usage_text);
}

/* ------------------------------------------------------------------ */
/* trace                                                               */

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void trace(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

static const char *subject(apr_pool_t *p, X509 *x)
{
    return scep_cert_subject(p, x);
}

/* ">> METHOD URL", a long URL (a GET PKIOperation) shortened. */
static void trace_request(device_t *d, const char *method, const char *url,
                          const char *ctype, const void *body, apr_size_t len)
{
    const char *shown = url;

    if (strlen(url) > 120) {    /* GET PKIOperation: a long message */
        shown = apr_psprintf(d->p, "%.100s...(%" APR_SIZE_T_FMT " characters)",
                             url, strlen(url));
    }
    if (body) {
        trace(">> %s %s  [%s, %" APR_SIZE_T_FMT " bytes]", method, shown,
              ctype, len);
    }
    else {
        trace(">> %s %s", method, shown);
    }
}

/* One HTTP exchange, traced. Returns the status (0: no answer). */
static int exchange(device_t *d, const char *method, const char *url,
                    const char *ctype, const void *body, apr_size_t len,
                    scep_http_resp_t *resp)
{
    const char *err = NULL;

    trace_request(d, method, url, ctype, body, len);
    if (APR_SUCCESS != scep_http_request(d->http, d->p, method, url, ctype,
                                         body, len, resp, &err)) {
        trace("<< no answer: %s", err);
        return 0;
    }
    trace("<< %d %s  [%" APR_SIZE_T_FMT " bytes]", resp->status,
          resp->content_type ? resp->content_type : "(no content type)",
          resp->len);
    return resp->status;
}

static int expect(const scep_http_resp_t *r, int status, const char *type)
{
    if (r->status != status) {
        if (r->content_type && !strncmp(r->content_type, "text/plain", 10)) {
            trace("   %.*s", (int)(r->len > 300 ? 300 : r->len),
                  (const char *)r->body);
        }
        return fail("expected HTTP %d, got %d", status, r->status);
    }
    if (type && (!r->content_type || strcmp(r->content_type, type))) {
        return fail("expected content type '%s' exactly, got '%s'", type,
                    r->content_type ? r->content_type : "(none)");
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* CMS                                                                 */

/* Whether the signer chains to --profile-ca, through the certificates the
 * profile carries: what a device shows as "Verified" or "Not Verified". */
static int chains_to_profile_ca(device_t *d, X509 *signer,
                                STACK_OF(X509) *certs, const char **why)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = 0;

    *why = "out of memory";
    if (ctx && X509_STORE_CTX_init(ctx, d->profile_ca, signer, certs)) {
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN);
        ok = 1 == X509_verify_cert(ctx);
        *why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
    }
    X509_STORE_CTX_free(ctx);
    return ok;
}

static void trace_signer_trust(device_t *d, CMS_ContentInfo *cms,
                               X509 *signer)
{
    STACK_OF(X509) *certs;
    const char *why;

    if (!d->profile_ca) {
        trace("   signer chain: not checked (no --profile-ca)");
        return;
    }
    certs = CMS_get1_certs(cms);
    if (chains_to_profile_ca(d, signer, certs, &why)) {
        trace("   signer chain: verified against %s", d->profile_ca_file);
    }
    else {
        trace("   signer chain: NOT verified against %s: %s",
              d->profile_ca_file, why);
    }
    sk_X509_pop_free(certs, X509_free);
    ERR_clear_error();
}

/* The verified content, a plist dictionary. */
static int parse_signed_content(device_t *d, BIO *bio, plist_t *out)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);

    if (APR_SUCCESS != ota_plist_parse(d->p, data, (apr_size_t)n, 0, out)
        || plist_get_node_type(*out) != PLIST_DICT) {
        return fail("the signed content is not a plist dictionary");
    }
    return 0;
}

/* Verifies a signed profile with the signer certificate it carries and
 * parses its content. */
static int open_signed(device_t *d, const scep_http_resp_t *r, plist_t *out)
{
    const unsigned char *der = r->body;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &der, (long)r->len);
    BIO *bio = BIO_new(BIO_s_mem());
    STACK_OF(X509) *signers = NULL;
    int rc;

    if (cms && 1 == CMS_verify(cms, NULL, NULL, NULL, bio,
                               CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY)
        && (signers = CMS_get0_signers(cms)) && sk_X509_num(signers) > 0) {
        trace("   signed by %s (signature OK)",
              subject(d->p, sk_X509_value(signers, 0)));
        trace_signer_trust(d, cms, sk_X509_value(signers, 0));
        rc = parse_signed_content(d, bio, out);
    }
    else {
        ERR_print_errors_fp(stderr);
        rc = fail("the answer is not a signed profile (CMS SignedData)");
    }
    sk_X509_free(signers);
    BIO_free(bio);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rc;
}

/* The certificates to send beside the signer's. */
static STACK_OF(X509) *chain_stack(const apr_array_header_t *chain)
{
    STACK_OF(X509) *extra = sk_X509_new_null();
    int i;

    for (i = 0; extra && chain && i < chain->nelts; ++i) {
        sk_X509_push(extra, APR_ARRAY_IDX(chain, i, X509 *));
    }
    return extra;
}

/* SignedData over content, attached, with chain, like MCMachineInfo. */
static int sign_content(device_t *d, X509 *cert, EVP_PKEY *key,
                        const apr_array_header_t *chain, const EVP_MD *md,
                        const char *content, const unsigned char **der,
                        apr_size_t *len)
{
    STACK_OF(X509) *extra = chain_stack(chain);
    BIO *in = BIO_new_mem_buf(content, (int)strlen(content));
    CMS_ContentInfo *cms;
    unsigned char *buf = NULL;
    int n = 0;

    cms = CMS_sign(NULL, NULL, extra, NULL, CMS_BINARY | CMS_PARTIAL);
    if (cms && CMS_add1_signer(cms, cert, key, md, CMS_BINARY)
        && CMS_final(cms, in, NULL, CMS_BINARY)
        && (n = i2d_CMS_ContentInfo(cms, &buf)) > 0) {
        *der = apr_pmemdup(d->p, buf, (apr_size_t)n);
        *len = (apr_size_t)n;
        OPENSSL_free(buf);
    }
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    sk_X509_free(extra);
    ERR_clear_error();
    return n > 0 ? 0 : fail("cannot sign the attributes");
}

/* ------------------------------------------------------------------ */
/* device attributes                                                   */

static const char *cn_of(apr_pool_t *p, X509 *x)
{
    char buf[256];

    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                  buf, sizeof(buf)) <= 0) {
        return NULL;
    }
    return apr_pstrdup(p, buf);
}

static const char *attr_value(device_t *d, const char *name)
{
    static const char *const defaults[][2] = {
        { "VERSION", "22C152" }, { "PRODUCT", "iPhone17,1" },
        { "SERIAL", "F2LTESTDEVICE" },
    };
    const char *v = apr_table_get(d->given, name);
    apr_size_t i;

    if (v) {
        return v;
    }
    if (!strcmp(name, "UDID")) {
        return cn_of(d->p, d->dev_cert);
    }
    for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); ++i) {
        if (!strcmp(name, defaults[i][0])) {
            return defaults[i][1];
        }
    }
    return NULL;                 /* iOS omits what it does not have */
}

/* The attributes the Profile Service asked for, as an XML plist. */
static const char *attributes_xml(device_t *d, int with_challenge)
{
    plist_t dict = ota_plist_track(d->p, plist_new_dict());
    uint32_t i, n = d->wanted ? plist_array_get_size(d->wanted) : 0;
    const char *xml, *name, *v;
    apr_size_t len;

    for (i = 0; i < n; ++i) {
        name = plist_get_string_ptr(plist_array_get_item(d->wanted, i), NULL);
        if (name && (v = attr_value(d, name)) != NULL) {
            ota_plist_set_str(dict, name, v);
            trace("   %s = %s", name, v);
        }
    }
    if (with_challenge && d->challenge) {
        ota_plist_set_str(dict, "CHALLENGE", d->challenge);
        trace("   CHALLENGE = (%d characters)", (int)strlen(d->challenge));
    }
    return APR_SUCCESS == ota_plist_xml(d->p, dict, &xml, &len) ? xml : "";
}

/* Signs the attributes, POSTs them to the Profile Service and opens the
 * signed answer. */
static int post_attributes(device_t *d, X509 *cert, EVP_PKEY *key,
                           const apr_array_header_t *chain, const EVP_MD *md,
                           int with_challenge, plist_t *top)
{
    scep_http_resp_t r;
    const unsigned char *der = NULL;
    apr_size_t len = 0;

    if (sign_content(d, cert, key, chain, md,
                     attributes_xml(d, with_challenge), &der, &len)
        || !exchange(d, "POST", d->service_url, OTA_CT_PKCS7_SIGNATURE, der,
                     len, &r)
        || expect(&r, 200, OTA_CT_ASPEN_CONFIG) || open_signed(d, &r, top)) {
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Phase 1 and Phase 2                                                 */

/* "   LABEL: a b c" for an array of strings, without the line's end. */
static void print_strings(const char *label, plist_t arr)
{
    uint32_t i;

    printf("   %s:", label);
    for (i = 0; arr && i < plist_array_get_size(arr); ++i) {
        printf(" %s", plist_get_string_ptr(plist_array_get_item(arr, i),
                                           NULL));
    }
}

static void show_service(device_t *d, plist_t top)
{
    trace("   PayloadType: Profile Service  \"%s\"  (%s)",
          ota_plist_str(d->p, top, "PayloadDisplayName"),
          ota_plist_str(d->p, top, "PayloadIdentifier"));
    trace("   URL: %s", d->service_url);
    print_strings("DeviceAttributes", d->wanted);
    trace("%s", "");
    trace("   Challenge: %s", d->challenge ? "(one-time, present)" : "none");
}

/* The Profile Service payload: its URL, DeviceAttributes, Challenge. */
static int read_service(device_t *d, plist_t top)
{
    const char *type = ota_plist_str(d->p, top, "PayloadType");
    plist_t content = ota_plist_get(top, "PayloadContent", PLIST_DICT);

    if (!type || strcmp(type, "Profile Service") || !content
        || !(d->service_url = ota_plist_str(d->p, content, "URL"))) {
        return fail("not a Profile Service payload with a URL");
    }
    d->wanted = ota_plist_get(content, "DeviceAttributes", PLIST_ARRAY);
    d->challenge = ota_plist_str(d->p, content, "Challenge");
    show_service(d, top);
    return 0;
}

static int phase1(device_t *d)
{
    scep_http_resp_t r;
    plist_t top;

    trace("== Phase 1: Profile Service");
    if (!exchange(d, "GET", d->url, NULL, NULL, 0, &r)
        || expect(&r, 200, OTA_CT_ASPEN_CONFIG) || open_signed(d, &r, &top)) {
        return 1;
    }
    return read_service(d, top);
}

static const char *subject_text(apr_pool_t *p, plist_t subj)
{
    const char *out = "";
    uint32_t i, j;

    for (i = 0; subj && i < plist_array_get_size(subj); ++i) {
        plist_t set = plist_array_get_item(subj, i);
        for (j = 0; plist_get_node_type(set) == PLIST_ARRAY
                    && j < plist_array_get_size(set); ++j) {
            plist_t pair = plist_array_get_item(set, j);
            out = apr_psprintf(p, "%s%s%s=%s", out, j ? "+" : "/",
                plist_get_string_ptr(plist_array_get_item(pair, 0), NULL),
                plist_get_string_ptr(plist_array_get_item(pair, 1), NULL));
        }
    }
    return out;
}

static void show_scep_key(device_t *d)
{
    apr_uint64_t v = 0;

    ota_plist_uint(d->scep, "Keysize", &v);
    printf("   Keysize: %d", (int)v);
    v = 0;
    ota_plist_uint(d->scep, "Key Usage", &v);
    trace("   Key Type: %s   Key Usage: %d",
          ota_plist_str(d->p, d->scep, "Key Type"), (int)v);
}

static void show_scep_payload(device_t *d)
{
    plist_t caps = ota_plist_get(d->scep, "GetCACaps", PLIST_ARRAY);
    const unsigned char *fp;
    apr_size_t fp_len;

    trace("   SCEP URL: %s   Name: %s", d->scep_url,
          ota_plist_str(d->p, d->scep, "Name"));
    trace("   Subject: %s", subject_text(d->p, ota_plist_get(
        d->scep, "Subject", PLIST_ARRAY)));
    show_scep_key(d);
    fp = ota_plist_data(d->p, d->scep, "CAFingerprint", &fp_len);
    trace("   CAFingerprint: %s", fp ? scep_cli_hex(d->p, fp, fp_len, ':')
                                     : "none");
    trace("   Challenge: %s", ota_plist_str(d->p, d->scep, "Challenge")
                              ? "(one-time, present)" : "none");
    print_strings("GetCACaps", caps);
    trace("%s", caps ? (d->no_caps_array ? "  (ignored: --no-caps-array)" : "")
                     : " (absent)");
}

/* The one payload of Phase 2's profile: com.apple.security.scep. */
static int read_scep_payload(device_t *d, plist_t payload)
{
    const char *type = ota_plist_str(d->p, payload, "PayloadType");

    d->scep = ota_plist_get(payload, "PayloadContent", PLIST_DICT);
    trace("   PayloadType: Configuration with one %s payload",
          type ? type : "(untyped)");
    if (!type || strcmp(type, "com.apple.security.scep") || !d->scep
        || !(d->scep_url = ota_plist_str(d->p, d->scep, "URL"))) {
        return fail("the payload is not a com.apple.security.scep payload "
                    "with a URL");
    }
    show_scep_payload(d);
    return 0;
}

static int phase2(device_t *d)
{
    plist_t top, list;
    const char *type;

    trace("\n== Phase 2: device-signed attributes (signed by %s)",
          subject(d->p, d->dev_cert));
    if (post_attributes(d, d->dev_cert, d->dev_key, d->dev_chain, EVP_sha1(),
                        1, &top)) {
        return 1;
    }
    type = ota_plist_str(d->p, top, "PayloadType");
    list = ota_plist_get(top, "PayloadContent", PLIST_ARRAY);
    if (!type || strcmp(type, "Configuration") || !list
        || plist_array_get_size(list) != 1) {
        return fail("OTA_SERVER_RETURNED_BAD_IDENTITY: not a Configuration "
                    "profile with exactly one payload");
    }
    return read_scep_payload(d, plist_array_get_item(list, 0));
}

/* ------------------------------------------------------------------ */
/* SCEP: GetCACert                                                     */

static const char *op_url(device_t *d, const char *op)
{
    const char *name = ota_plist_str(d->p, d->scep, "Name");

    return apr_pstrcat(d->p, d->scep_url, "?operation=", op,
                       name ? "&message=" : "",
                       name ? scep_http_escape(d->p, name) : "", NULL);
}

/* The CA of a bundle: a CA certificate no other certificate issued. */
static X509 *bundle_top(STACK_OF(X509) *certs)
{
    int i, j, issued;

    for (i = 0; i < sk_X509_num(certs); ++i) {
        X509 *c = sk_X509_value(certs, i);
        if (!scep_cert_is_ca(c)) {
            continue;
        }
        for (issued = 0, j = 0; j < sk_X509_num(certs); ++j) {
            X509 *o = sk_X509_value(certs, j);
            issued |= o != c && scep_cert_issued_by(c, o);
        }
        if (!issued) {
            return c;
        }
    }
    return NULL;
}

/* Takes note of a certificate of the RA bundle: the CA, or the RA's for
 * encryption and for signatures. */
static void note_ra_cert(device_t *d, X509 *x)
{
    unsigned int ku = scep_cert_key_usage(x);

    trace("   certificate: %s%s", subject(d->p, x),
          scep_cert_is_ca(x) ? " (CA)" : "");
    if (scep_cert_is_ca(x)) {
        d->ca = d->ca ? d->ca : x;
        return;
    }
    if (ku & SCEP_KU_KEY_ENCIPHERMENT) {
        d->ra_enc = x;
    }
    if (ku & SCEP_KU_DIGITAL_SIGNATURE) {
        d->ra_sign = x;
    }
}

static int read_ra_bundle(device_t *d, const scep_http_resp_t *r, X509 **top)
{
    const unsigned char *der = r->body;
    PKCS7 *p7 = d2i_PKCS7(NULL, &der, (long)r->len);
    STACK_OF(X509) *certs;
    int i;

    if (!p7 || !PKCS7_type_is_signed(p7) || !p7->d.sign
        || !(certs = p7->d.sign->cert)) {
        PKCS7_free(p7);
        return fail("GetCACert: not a certs-only PKCS#7 bundle");
    }
    *top = bundle_top(certs);
    for (i = 0; i < sk_X509_num(certs); ++i) {
        X509 *x = scep_track_x509(d->p, X509_dup(sk_X509_value(certs, i)));
        note_ra_cert(d, x);
        *top = sk_X509_value(certs, i) == *top ? x : *top;
    }
    PKCS7_free(p7);
    if (!*top || !d->ra_enc || !d->ra_sign) {
        return fail("The Registration Authority's response is invalid: no "
                    "RA certificate with the right key usage, or no CA");
    }
    return 0;
}

static int check_fingerprint(device_t *d, X509 *top)
{
    const unsigned char *want;
    unsigned char got[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    apr_size_t len;

    want = ota_plist_data(d->p, d->scep, "CAFingerprint", &len);
    if (!want) {
        return 0;
    }
    if ((len != 20 && len != 16)
        || !X509_digest(top, len == 20 ? EVP_sha1() : EVP_md5(), got, &n)
        || n != len || memcmp(got, want, len)) {
        return fail("CAFingerprint does not match the CA certificate '%s'",
                    subject(d->p, top));
    }
    trace("   CAFingerprint matches %s", subject(d->p, top));
    return 0;
}

/* A GetCACert answer of one certificate: the CA does it all. */
static int read_ca_cert(device_t *d, const scep_http_resp_t *r, X509 **top)
{
    const unsigned char *der = r->body;

    *top = scep_track_x509(d->p, d2i_X509(NULL, &der, (long)r->len));
    if (!*top) {
        return fail("GetCACert: not a DER certificate");
    }
    trace("   CA: %s", subject(d->p, *top));
    d->ca = d->ra_enc = d->ra_sign = *top;
    return 0;
}

/* The GetCACert answer by its content type: one CA certificate, or an
 * RA bundle. */
static int read_ca_answer(device_t *d, const scep_http_resp_t *r, X509 **top)
{
    const char *ct = r->content_type;

    if (ct && !strcmp(ct, SCEP_CT_CA_CERT)) {
        return read_ca_cert(d, r, top);
    }
    if (ct && !strcmp(ct, SCEP_CT_CA_RA_CERT)) {
        return read_ra_bundle(d, r, top);
    }
    return fail("The SCEP server configuration is not supported "
                "(GetCACert content type '%s')", ct ? ct : "(none)");
}

static int get_ca_cert(device_t *d)
{
    scep_http_resp_t r;
    X509 *top = NULL;

    if (!exchange(d, "GET", op_url(d, "GetCACert"), NULL, NULL, 0, &r)
        || expect(&r, 200, NULL) || read_ca_answer(d, &r, &top)) {
        return 1;
    }
    return check_fingerprint(d, top);
}

/* ------------------------------------------------------------------ */
/* SCEP: capabilities, as iOS decides                                  */

static int has_cap(const apr_array_header_t *caps, const char *word)
{
    int i;

    for (i = 0; i < caps->nelts; ++i) {
        if (!strcmp(APR_ARRAY_IDX(caps, i, const char *), word)) {
            return 1;
        }
    }
    return 0;
}

static apr_array_header_t *split_caps(apr_pool_t *p, const scep_http_resp_t *r)
{
    apr_array_header_t *caps = apr_array_make(p, 8, sizeof(const char *));
    char *text = apr_pstrmemdup(p, (const char *)r->body, r->len), *last, *w;

    for (w = apr_strtok(text, "\r\n", &last); w;
         w = apr_strtok(NULL, "\r\n", &last)) {
        APR_ARRAY_PUSH(caps, const char *) = w;
    }
    return caps;
}

/* One GetCACaps; 1 when a 2xx answer came, *caps its words (NULL when
 * empty: SHA-1 only). */
static int ask_caps_once(device_t *d, apr_array_header_t **caps)
{
    scep_http_resp_t r;

    if (exchange(d, "GET", op_url(d, "GetCACaps"), NULL, NULL, 0, &r) < 200
        || r.status >= 300) {
        return 0;
    }
    *caps = split_caps(d->p, &r);
    trace("   GetCACaps: %s", apr_array_pstrcat(d->p, *caps, ' '));
    if ((*caps)->nelts == 0) {
        trace("   empty answer: assuming support for SHA-1 only");
        *caps = NULL;
    }
    return 1;
}

/* Asks GetCACaps as the chosen iOS generation does; *caps NULL: use the
 * defaults (GET, 3DES, SHA-1). */
static int ask_caps(device_t *d, apr_array_header_t **caps)
{
    int tries = d->ios == 3 ? 2 : d->ios == 4 ? 3 : 1, i;

    for (i = 1; i <= tries; ++i) {
        if (ask_caps_once(d, caps)) {
            return 0;
        }
        trace("   GetCACaps attempt %d of %d: no usable answer", i, tries);
    }
    if (d->ios == 3) {
        trace("   iOS 3: no answer, falling back to GET, 3DES, SHA-1");
        *caps = NULL;
        return 0;
    }
    return fail("%s", d->ios == 4 ? LOST_CONNECTION
                                  : "GetCACaps failed; iOS aborts the "
                                    "enrollment");
}

/* The payload's GetCACaps array as words. */
static apr_array_header_t *profile_caps(device_t *d, plist_t arr)
{
    apr_array_header_t *caps = apr_array_make(d->p, 8, sizeof(const char *));
    uint32_t i;

    for (i = 0; i < plist_array_get_size(arr); ++i) {
        const char *w = plist_get_string_ptr(plist_array_get_item(arr, i),
                                             NULL);
        APR_ARRAY_PUSH(caps, const char *) = w ? w : "";
    }
    trace("   GetCACaps from the profile: no GetCACaps request");
    return caps;
}

/* The algorithms iOS picks from the capabilities (NULL: none known). */
static int pick_algorithms(device_t *d, const apr_array_header_t *caps)
{
    if (!caps) {
        d->cipher_nid = NID_des_ede3_cbc;
        d->digest_nid = NID_sha1;
        d->use_post = 0;
        return 0;
    }
    d->cipher_nid = has_cap(caps, "AES") ? NID_aes_128_cbc : NID_des_ede3_cbc;
    d->digest_nid = has_cap(caps, "SHA-512") ? NID_sha512
                    : has_cap(caps, "SHA-256") ? NID_sha256
                    : has_cap(caps, "SHA-1") ? NID_sha1 : NID_undef;
    d->use_post = has_cap(caps, "POSTPKIOperation");
    if (d->digest_nid == NID_undef) {
        return fail("%s (no SHA-1, SHA-256 or SHA-512)", NO_CAPABILITY);
    }
    return 0;
}

static int choose_algorithms(device_t *d)
{
    plist_t arr = ota_plist_get(d->scep, "GetCACaps", PLIST_ARRAY);
    apr_array_header_t *caps = NULL;

    if (arr && !d->no_caps_array) {
        caps = profile_caps(d, arr);
    }
    else if (ask_caps(d, &caps)) {
        return 1;
    }
    if (pick_algorithms(d, caps)) {
        return 1;
    }
    trace("   using %s, %s, %s", d->use_post ? "POST" : "GET",
          OBJ_nid2sn(d->cipher_nid), OBJ_nid2sn(d->digest_nid));
    return 0;
}

/* ------------------------------------------------------------------ */
/* SCEP: the request                                                   */

/* One RDN of the payload's Subject: [[OID, value], ...]. */
static void add_rdn(X509_NAME *name, plist_t set)
{
    uint32_t j;

    for (j = 0; plist_get_node_type(set) == PLIST_ARRAY
                && j < plist_array_get_size(set); ++j) {
        plist_t pair = plist_array_get_item(set, j);
        const char *oid = plist_get_string_ptr(plist_array_get_item(pair, 0),
                                               NULL);
        const char *val = plist_get_string_ptr(plist_array_get_item(pair, 1),
                                               NULL);
        if (oid && val && *val
            && !X509_NAME_add_entry_by_txt(name, oid, MBSTRING_UTF8,
                                           (const unsigned char *)val, -1,
                                           -1, j ? -1 : 0)) {
            trace("   Subject entry %s=%s refused", oid, val);
        }
    }
}

static X509_NAME *payload_name(device_t *d)
{
    plist_t subj = ota_plist_get(d->scep, "Subject", PLIST_ARRAY);
    X509_NAME *name = X509_NAME_new();
    uint32_t i;

    for (i = 0; subj && i < plist_array_get_size(subj); ++i) {
        add_rdn(name, plist_array_get_item(subj, i));
    }
    return name;
}

/* The CSR: the payload's Subject, Challenge and Key Usage. */
static const unsigned char *make_csr(device_t *d, X509_NAME *name,
                                     apr_size_t *len)
{
    apr_uint64_t usage = 1;
    const char *exts[] = { "keyUsage", NULL, NULL };
    scep_cli_csr_t s;

    ota_plist_uint(d->scep, "Key Usage", &usage);
    exts[1] = usage == 1 ? "critical,digitalSignature"
              : usage == 4 ? "critical,keyEncipherment"
              : "critical,digitalSignature,keyEncipherment";
    memset(&s, 0, sizeof(s));
    s.subject = name;
    s.key = d->key;
    s.challenge = ota_plist_str(d->p, d->scep, "Challenge");
    s.exts = exts;
    s.md = EVP_get_digestbynid(d->digest_nid);
    return scep_cli_csr_der(d->p, scep_cli_csr(d->p, &s), len);
}

/* The temporary self-signed identity that signs the request. */
static X509 *self_signed(device_t *d, X509_NAME *name)
{
    scep_cli_cert_t s;

    memset(&s, 0, sizeof(s));
    s.subject = name;
    s.key = d->key;
    s.serial_bits = 63;
    s.serial_top = BN_RAND_TOP_ANY;
    s.not_before = -300;
    s.not_after = 86400;
    s.md = EVP_get_digestbynid(d->digest_nid);
    return scep_cli_cert(d->p, &s);
}

static int make_key(device_t *d)
{
    apr_uint64_t bits = 1024;

    ota_plist_uint(d->scep, "Keysize", &bits);
    if (bits != 1024 && bits != 2048 && bits != 4096) {
        return fail("Keysize %d is not 1024, 2048 or 4096 (iOS error 2004)",
                    (int)bits);
    }
    trace("   generating an RSA-%d key", (int)bits);
    d->key = scep_track_pkey(d->p, EVP_RSA_gen((unsigned int)bits));
    return d->key ? 0 : fail("cannot generate the key");
}

/* ------------------------------------------------------------------ */
/* SCEP: the exchange                                                  */

static int send_pkiop(device_t *d, const unsigned char *der, apr_size_t len,
                      scep_http_resp_t *r)
{
    char *b64;

    if (d->use_post) {
        return exchange(d, "POST", apr_pstrcat(d->p, d->scep_url,
                                               "?operation=PKIOperation",
                                               NULL),
                        SCEP_CT_PKI_MESSAGE, der, len, r);
    }
    b64 = apr_palloc(d->p, (apr_size_t)apr_base64_encode_len((int)len));
    apr_base64_encode_binary(b64, der, (int)len);
    return exchange(d, "GET", apr_pstrcat(
        d->p, d->scep_url, "?operation=PKIOperation&message=",
        scep_http_escape(d->p, b64), NULL), NULL, NULL, 0, r);
}

/* The first certificate of the decrypted CertRep (iOS takes that one). */
static int first_issued(device_t *d, scep_pkimsg_t *rep)
{
    STACK_OF(X509) *certs = NULL;
    STACK_OF(X509_CRL) *crls;

    if (APR_SUCCESS != scep_cli_certrep_content(d->p, rep, &certs, &crls)
        || !certs || sk_X509_num(certs) < 1) {
        return fail("the CertRep holds no certificate");
    }
    d->cert = scep_track_x509(d->p, X509_dup(sk_X509_value(certs, 0)));
    return 0;
}

static int read_issued(device_t *d, scep_pkimsg_t *rep)
{
    if (APR_SUCCESS != scep_pkimsg_decrypt(d->p, rep, d->key, 0)) {
        return fail("cannot decrypt the CertRep envelope");
    }
    if (first_issued(d, rep)) {
        return 1;
    }
    if (!scep_key_matches_cert(d->key, d->cert)) {
        return fail("the issued certificate is not for our key");
    }
    trace("   issued: %s, serial %s, by %s", subject(d->p, d->cert),
          scep_cert_serial_hex(d->p, d->cert),
          scep_cert_subject(d->p, d->ca));
    return 0;
}

static void trace_certrep(const scep_pkimsg_t *rep)
{
    int failed = rep->pki_status == SCEP_STATUS_FAILURE;

    trace("   CertRep: %s%s%s, signed with %s",
          scep_pkimsg_status_name(rep->pki_status),
          failed ? " failInfo " : "",
          failed ? scep_pkimsg_fail_name(rep->fail_info) : "",
          scep_pkimsg_alg_name(rep->digest_nid));
}

/* The CertRep answers our request: its transactionID and our nonce. */
static int answers(const scep_pkimsg_t *rep, const unsigned char *nonce,
                   const char *txid)
{
    return rep->transaction_id && !strcmp(rep->transaction_id, txid)
           && rep->recipient_nonce_len == SCEP_NONCE_LEN
           && !memcmp(rep->recipient_nonce, nonce, SCEP_NONCE_LEN);
}

static int check_certrep(device_t *d, const scep_http_resp_t *r,
                         const unsigned char *nonce, const char *txid,
                         scep_pkimsg_t **prep)
{
    scep_pkimsg_t *rep = NULL;

    if (APR_SUCCESS != scep_pkimsg_parse(d->p, r->body, r->len, &rep)
        || !rep->signature_ok || rep->message_type != SCEP_MSG_CERTREP) {
        return fail("The SCEP server returned an invalid response (not a "
                    "signed CertRep)");
    }
    if (!rep->signer || X509_cmp(rep->signer, d->ra_sign)) {
        return fail("the CertRep is not signed by the RA/CA of GetCACert");
    }
    if (!answers(rep, nonce, txid)) {
        return fail("the CertRep's transactionID or recipientNonce do not "
                    "match the request");
    }
    trace_certrep(rep);
    *prep = rep;
    return 0;
}

/* One request/CertRep round trip with a fresh senderNonce. */
static int round_trip(device_t *d, scep_request_t *req, scep_pkimsg_t **rep)
{
    const unsigned char *der;
    apr_size_t len = 0;
    scep_http_resp_t r;

    if (APR_SUCCESS != scep_cli_build_request(d->p, req, NULL, &der, &len)) {
        return fail("cannot build the %s",
                    scep_pkimsg_type_name(req->message_type));
    }
    trace("   %s transactionID %s", scep_pkimsg_type_name(req->message_type),
          req->transaction_id);
    *rep = NULL;
    if (!send_pkiop(d, der, len, &r) || expect(&r, 200, NULL)
        || check_certrep(d, &r, req->sender_nonce, req->transaction_id, rep)
        || !*rep) {
        return 1;
    }
    return 0;
}

/* The payload's Retries and RetryDelay, else iOS's defaults. */
static void retry_plan(device_t *d, apr_uint64_t *retries,
                       apr_uint64_t *delay)
{
    *retries = OTA_DEFAULT_RETRIES;
    *delay = OTA_DEFAULT_RETRY_DELAY;
    ota_plist_uint(d->scep, "Retries", retries);
    ota_plist_uint(d->scep, "RetryDelay", delay);
}

/* PENDING: GetCertInitial, Retries times, RetryDelay seconds apart (the
 * first retry at once), as iOS does. */
static int poll_pending(device_t *d, scep_request_t *req, X509_NAME *name,
                        scep_pkimsg_t **rep)
{
    apr_uint64_t retries, delay, i;

    retry_plan(d, &retries, &delay);
    req->message_type = SCEP_MSG_CERTPOLL;
    req->data = scep_cli_issuer_and_subject(d->p, X509_get_subject_name(d->ca),
                                            name, &req->data_len);
    for (i = 0; i < retries && (*rep)->pki_status == SCEP_STATUS_PENDING;
         ++i) {
        if (i > 0) {
            trace("   PENDING: polling again in %d s", (int)delay);
            apr_sleep(apr_time_from_sec((apr_time_t)delay));
        }
        if (round_trip(d, req, rep)) {
            return 1;
        }
    }
    return 0;
}

/* The PKCSReq: the payload's name for the new key, signed by a
 * self-signed certificate, to the RA. */
static void first_request(device_t *d, scep_request_t *req, X509_NAME *name)
{
    memset(req, 0, sizeof(*req));
    req->message_type = SCEP_MSG_PKCSREQ;
    req->transaction_id = scep_key_hash(d->p, d->key);
    req->data = make_csr(d, name, &req->data_len);
    req->signer = self_signed(d, name);
    req->signer_key = d->key;
    req->recipient = d->ra_enc;
    req->cipher_nid = d->cipher_nid;
    req->digest_nid = d->digest_nid;
    req->key_transport = SCEP_KT_PKCS1;
}

/* What the last CertRep says. */
static int enroll_result(device_t *d, scep_pkimsg_t *rep)
{
    if (rep->pki_status == SCEP_STATUS_PENDING) {
        return fail("still PENDING after the payload's Retries; approve the "
                    "request (scep-ota store approve) and run again");
    }
    if (rep->pki_status != SCEP_STATUS_SUCCESS) {
        return fail("enrollment refused: %s", scep_pkimsg_fail_name(
            rep->fail_info));
    }
    return read_issued(d, rep);
}

static int enroll(device_t *d)
{
    scep_request_t req;
    X509_NAME *name;
    scep_pkimsg_t *rep = NULL;
    int rc;

    trace("\n== SCEP enrollment at %s", d->scep_url);
    if (get_ca_cert(d) || choose_algorithms(d) || make_key(d)) {
        return 1;
    }
    name = payload_name(d);
    first_request(d, &req, name);
    rc = round_trip(d, &req, &rep);
    if (!rc && rep && rep->pki_status == SCEP_STATUS_PENDING) {
        rc = poll_pending(d, &req, name, &rep);
    }
    X509_NAME_free(name);
    return rc || !rep ? 1 : enroll_result(d, rep);
}

/* ------------------------------------------------------------------ */
/* Phase 3                                                             */

/* The envelope's content encryption, as a device could show it. */
static void trace_envelope(const unsigned char *env, apr_size_t len)
{
    const unsigned char *der = env;
    PKCS7 *p7 = d2i_PKCS7(NULL, &der, (long)len);

    if (p7 && PKCS7_type_is_enveloped(p7) && p7->d.enveloped) {
        trace("   EncryptedPayloadContent: EnvelopedData, %s",
              OBJ_nid2sn(OBJ_obj2nid(
                  p7->d.enveloped->enc_data->algorithm->algorithm)));
    }
    PKCS7_free(p7);
}

static plist_t decrypt_payloads(device_t *d, const unsigned char *env,
                                apr_size_t len)
{
    const unsigned char *der = env;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &der, (long)len);
    BIO *out = BIO_new(BIO_s_mem());
    plist_t node = NULL;
    char *data;
    long n;

    trace_envelope(env, len);
    if (cms && 1 == CMS_decrypt(cms, d->key, d->cert, NULL, out, CMS_BINARY)) {
        n = BIO_get_mem_data(out, &data);
        if (APR_SUCCESS != ota_plist_parse(d->p, data, (apr_size_t)n, 0,
                                           &node)) {
            node = NULL;
        }
    }
    CMS_ContentInfo_free(cms);
    BIO_free(out);
    ERR_clear_error();
    return node;
}

static void show_payloads(device_t *d, plist_t list)
{
    uint32_t i;
    const char *xml;
    apr_size_t len;

    for (i = 0; i < plist_array_get_size(list); ++i) {
        plist_t pl = plist_array_get_item(list, i);
        trace("   payload %u: %s  %s  \"%s\"", i + 1,
              ota_plist_str(d->p, pl, "PayloadType"),
              ota_plist_str(d->p, pl, "PayloadIdentifier"),
              ota_plist_str(d->p, pl, "PayloadDisplayName"));
    }
    if (d->verbose && APR_SUCCESS == ota_plist_xml(d->p, list, &xml, &len)) {
        fwrite(xml, 1, len, stdout);
    }
}

/* The final profile's payloads: decrypted, or as they came. */
static int final_payloads(device_t *d, plist_t top)
{
    const unsigned char *env;
    apr_size_t env_len;
    plist_t list;

    env = ota_plist_data(d->p, top, "EncryptedPayloadContent", &env_len);
    list = env ? decrypt_payloads(d, env, env_len)
               : ota_plist_get(top, "PayloadContent", PLIST_ARRAY);
    if (!list || plist_get_node_type(list) != PLIST_ARRAY) {
        return fail("cannot %s the payloads", env ? "decrypt" : "find");
    }
    trace("   %u payload(s)%s:", plist_array_get_size(list),
          env ? ", decrypted with the new identity" : " (not encrypted)");
    show_payloads(d, list);
    return 0;
}

static int phase3(device_t *d, plist_t *top)
{
    const char *type;

    trace("\n== Phase 3: attributes signed by the new identity");
    if (post_attributes(d, d->cert, d->key, NULL, EVP_sha256(), 0, top)) {
        return 1;
    }
    type = ota_plist_str(d->p, *top, "PayloadType");
    if (!type || strcmp(type, "Configuration")) {
        return fail("OTA_SERVER_RETURNED_BAD_PROFILE: not a Configuration "
                    "profile");
    }
    trace("   PayloadType: Configuration  \"%s\"  (%s)",
          ota_plist_str(d->p, *top, "PayloadDisplayName"),
          ota_plist_str(d->p, *top, "PayloadIdentifier"));
    return final_payloads(d, *top);
}

/* ------------------------------------------------------------------ */
/* setup                                                               */

static int load_identity(device_t *d)
{
    apr_array_header_t *certs;
    const char *err = NULL;
    int i;

    if (APR_SUCCESS != scep_cli_load_pair(d->p, d->cert_file, d->key_file,
                                          &certs, &d->dev_key, &err)) {
        return fail("%s", err);
    }
    d->dev_cert = APR_ARRAY_IDX(certs, 0, X509 *);
    d->dev_chain = apr_array_make(d->p, certs->nelts, sizeof(X509 *));
    for (i = 1; i < certs->nelts; ++i) {
        APR_ARRAY_PUSH(d->dev_chain, X509 *) = APR_ARRAY_IDX(certs, i, X509 *);
    }
    return 0;
}

#define DEV_OPT(name, field) { name, NULL, offsetof(device_t, field) }

static const scep_cli_opt_t device_opts[] = {
    DEV_OPT("--identity", cert_file),
    DEV_OPT("--key", key_file),
    DEV_OPT("--cacert", cafile),
    DEV_OPT("--save", save),
    DEV_OPT("--user", user),
    DEV_OPT("--password-file", password_file),
    DEV_OPT("--profile-ca", profile_ca_file),
    { NULL, NULL, 0 }
};

/* The options without a value; 0 when arg is none of them. */
static int device_flag(device_t *d, const char *arg)
{
    if (!strcmp(arg, "--no-caps-array")) {
        return d->no_caps_array = 1;
    }
    if (!strcmp(arg, "--insecure") || !strcmp(arg, "-k")) {
        return d->insecure = 1;
    }
    if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
        return d->verbose = 1;
    }
    return 0;
}

/* --ios 3|4|current */
static int set_ios(device_t *d, const char *v)
{
    if (strcmp(v, "3") && strcmp(v, "4") && strcmp(v, "current")) {
        return usage();
    }
    d->ios = !strcmp(v, "current") ? IOS_CURRENT : atoi(v);
    return 0;
}

/* --attr NAME=VALUE */
static int set_attr(device_t *d, const char *v)
{
    const char *eq = strchr(v, '=');

    if (!eq || eq == v) {
        return usage();
    }
    apr_table_set(d->given, apr_pstrmemdup(d->p, v, (apr_size_t)(eq - v)),
                  eq + 1);
    return 0;
}

/* An option with a value (v, never NULL): 0 taken, 1 unknown, else the
 * exit status. */
static int device_option(device_t *d, const char *a, const char *v)
{
    const char **slot = scep_cli_opt_slot(device_opts, d, a);

    if (slot) {
        *slot = v;
        return 0;
    }
    if (!strcmp(a, "--ios")) {
        return set_ios(d, v);
    }
    if (!strcmp(a, "--attr")) {
        return set_attr(d, v);
    }
    return 1;
}

static int check_args(device_t *d)
{
    if (!d->url || !d->cert_file || !d->key_file
        || !d->user != !d->password_file) {
        return usage();
    }
    if (strchr(d->url, '@')) {
        return fail("a URL with credentials in it is not accepted (the "
                    "password would show): use --user and --password-file");
    }
    return 0;
}

static int parse_args(device_t *d, int argc, const char *const *argv)
{
    int i, rc;

    for (i = 1; i < argc; ++i) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (device_flag(d, a)) {
            continue;
        }
        if (a[0] == '-' && a[1] && !v) {
            return usage();
        }
        if (v && (rc = device_option(d, a, v)) != 1) {
            if (rc) {
                return rc;
            }
            ++i;
        }
        else if (a[0] != '-' && !d->url) {
            d->url = a;
        }
        else {
            return usage();
        }
    }
    return check_args(d);
}

/* The password file opened, if only its owner (and root) may read it. */
static int open_password_file(device_t *d, FILE **f)
{
    struct stat sb;
    int fd;

    if ((fd = open(d->password_file, O_RDONLY | O_CLOEXEC)) < 0
        || fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        if (fd >= 0) {
            close(fd);
        }
        return fail("--password-file %s: not a readable file",
                    d->password_file);
    }
    if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return fail("--password-file %s: others may read it (chmod 600)",
                    d->password_file);
    }
    if (!(*f = fdopen(fd, "r"))) {
        close(fd);
        return fail("--password-file %s: %s", d->password_file,
                    strerror(errno));
    }
    return 0;
}

/* The first line of a file that only its owner (and root) may read. */
static int read_password(device_t *d, const char **password)
{
    char buf[1024];
    FILE *f;

    if (open_password_file(d, &f)) {
        return 1;
    }
    buf[0] = '\0';
    if (!fgets(buf, sizeof(buf), f)) {
        buf[0] = '\0';
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!*buf) {
        return fail("--password-file %s: the first line is empty",
                    d->password_file);
    }
    *password = apr_pstrdup(d->p, buf);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

/* --user and --password-file: Basic credentials for the OTA URL's host. */
static int setup_auth(device_t *d)
{
    const char *password = NULL;
    int rc;

    if (!d->user) {
        return 0;
    }
    if ((rc = read_password(d, &password))) {
        return rc;
    }
    if (APR_SUCCESS != scep_http_set_basic(d->http, d->p, d->url, d->user,
                                           password)) {
        return fail("--user: a user name holds no colon, and %s must be an "
                    "http:// or https:// URL", "the OTA URL");
    }
    trace("== HTTP Basic authentication as %s for %s", d->user, d->url);
    return 0;
}

/* A file to write; a private one is created 0600 (and an existing one
 * made so), never through a symbolic link. */
static FILE *open_out(const char *path, int private)
{
    int fd;
    FILE *f;

    if (!private) {
        return fopen(path, "w");
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
              S_IRUSR | S_IWUSR);
    if (fd < 0) {
        return NULL;
    }
    if (fchmod(fd, S_IRUSR | S_IWUSR) || !(f = fdopen(fd, "w"))) {
        close(fd);
        return NULL;
    }
    return f;
}

static int save_pem(device_t *d, const char *suffix, X509 *x, EVP_PKEY *k)
{
    const char *path = apr_pstrcat(d->p, d->save, suffix, NULL);
    FILE *f = open_out(path, k != NULL);
    int ok;

    if (!f) {
        return fail("cannot write %s: %s", path, strerror(errno));
    }
    ok = x ? PEM_write_X509(f, x)
           : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    ok = fclose(f) == 0 && ok;
    return ok ? 0 : fail("cannot write %s", path);
}

/* PREFIX.mobileconfig: the decrypted payloads may hold secrets (Wi-Fi,
 * VPN), so it is private. */
static int save_profile(device_t *d, plist_t profile, const char *path)
{
    const char *xml;
    apr_size_t len;
    FILE *f;
    int ok;

    if (APR_SUCCESS != ota_plist_xml(d->p, profile, &xml, &len)
        || !(f = open_out(path, 1))) {
        return fail("cannot write %s", path);
    }
    ok = fwrite(xml, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    return ok ? 0 : fail("cannot write %s", path);
}

static int save_all(device_t *d, plist_t profile)
{
    const char *path;

    if (!d->save) {
        return 0;
    }
    if (save_pem(d, ".crt", d->cert, NULL) || save_pem(d, ".key", NULL,
                                                       d->key)) {
        return 1;
    }
    path = apr_pstrcat(d->p, d->save, ".mobileconfig", NULL);
    if (save_profile(d, profile, path)) {
        return 1;
    }
    trace("   saved %s.crt, %s.key, %s", d->save, d->save, path);
    return 0;
}

/* --profile-ca: every certificate of the file is an anchor. */
static int load_profile_ca(device_t *d)
{
    apr_array_header_t *certs;
    const char *err = NULL;

    if (!d->profile_ca_file) {
        return 0;
    }
    if (!(certs = scep_cli_load_certs(d->p, d->profile_ca_file, &err))) {
        return fail("--profile-ca: %s", err);
    }
    if (!(d->profile_ca = scep_x509_store(d->p, certs))) {
        return fail("out of memory");
    }
    return 0;
}

/* The phases, as a device goes through them. */
static int run(device_t *d)
{
    plist_t final = NULL;
    int rc;

    if ((rc = setup_auth(d)) || (rc = phase1(d)) || (rc = phase2(d))
        || (rc = enroll(d)) || (rc = phase3(d, &final))
        || (rc = save_all(d, final))) {
        return rc;
    }
    trace("\n== enrolled: %s (serial %s); final profile installed",
          subject(d->p, d->cert), scep_cert_serial_hex(d->p, d->cert));
    return 0;
}

int scep_cli_device(apr_pool_t *p, int argc, const char *const *argv)
{
    device_t d;
    int rc;

    memset(&d, 0, sizeof(d));
    d.p = p;
    d.ios = IOS_CURRENT;
    d.given = apr_table_make(p, 8);
    if ((rc = parse_args(&d, argc, argv)) || (rc = load_identity(&d))
        || (rc = load_profile_ca(&d))) {
        return rc;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    d.http = scep_http_make(p, d.cafile, d.insecure, apr_time_from_sec(45));
    return run(&d);
}
