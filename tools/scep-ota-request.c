/* scep-ota request / scep-ota certrep: a SCEP client's two halves, offline.
 *
 * "request" builds a request pkiMessage (PKCSReq, RenewalReq, CertPoll,
 * GetCert, GetCRL) with the core's scep_request_build; the caller sends the
 * bytes however it likes (the integration tests POST them, or GET them as
 * base64 in message=). "certrep" reads the answer: pkiStatus, failInfo,
 * nonces, signer, and with the client's key the certificates or CRL inside
 * the envelope, written to files. Both print key=value lines so that
 * scripts can read them. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_base64.h>
#include <apr_file_io.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_pkimsg.h"
#include "scep-ota-request.h"

#define REQ_MAX_INPUT (4 * 1024 * 1024)

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static int req_fail(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int req_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "scep-ota %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ERR_clear_error();
    return 1;
}

/* A whole file (or standard input for "-"), at most REQ_MAX_INPUT bytes. */
static int slurp(apr_pool_t *p, const char *path, unsigned char **data,
                 apr_size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    apr_size_t cap = 16 * 1024, n = 0, got;
    unsigned char *buf;

    if (!f) {
        return 0;
    }
    buf = apr_palloc(p, cap);
    for (;;) {
        if (n == cap) {
            unsigned char *bigger;
            if (cap >= REQ_MAX_INPUT) {
                break;
            }
            bigger = apr_palloc(p, cap * 2);
            memcpy(bigger, buf, n);
            buf = bigger;
            cap *= 2;
        }
        got = fread(buf + n, 1, cap - n, f);
        if (got == 0) {
            break;
        }
        n += got;
    }
    if (f != stdin) {
        fclose(f);
    }
    if (n >= REQ_MAX_INPUT) {
        return 0;
    }
    *data = buf;
    *len = n;
    return 1;
}

static const char *hex(apr_pool_t *p, const unsigned char *b, apr_size_t n)
{
    char *s = apr_palloc(p, 2 * n + 1);
    apr_size_t i;

    for (i = 0; i < n; ++i) {
        apr_snprintf(s + 2 * i, 3, "%02X", b[i]);
    }
    s[2 * n] = '\0';
    return s;
}

static int unhex(apr_pool_t *p, const char *s, unsigned char **out,
                 apr_size_t *len)
{
    apr_size_t n = strlen(s), i;
    unsigned char *b;

    if (n == 0 || n % 2) {
        return 0;
    }
    b = apr_palloc(p, n / 2);
    for (i = 0; i < n / 2; ++i) {
        char two[3] = { s[2 * i], s[2 * i + 1], '\0' };
        char *end;
        if (!apr_isxdigit(two[0]) || !apr_isxdigit(two[1])) {
            return 0;
        }
        b[i] = (unsigned char)strtoul(two, &end, 16);
    }
    *out = b;
    *len = n / 2;
    return 1;
}

static int write_bytes(const char *path, const void *data, apr_size_t len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "wb") : stdout;
    int ok;

    if (!f) {
        return 0;
    }
    ok = fwrite(data, 1, len, f) == len;
    if (f != stdout) {
        ok = (fclose(f) == 0) && ok;
    }
    else {
        fflush(f);
    }
    return ok;
}

static const char *name_line(apr_pool_t *p, const X509_NAME *name)
{
    char *s = X509_NAME_oneline(name, NULL, 0);
    const char *out = apr_pstrdup(p, s ? s : "?");

    OPENSSL_free(s);
    return out;
}

static EVP_PKEY *load_key(apr_pool_t *p, const char *path, const char **err)
{
    apr_array_header_t *keys;

    if (APR_SUCCESS != scep_load_keys(p, path, &keys, err)) {
        return NULL;
    }
    return APR_ARRAY_IDX(keys, 0, EVP_PKEY *);
}

static apr_array_header_t *load_certs(apr_pool_t *p, const char *path,
                                      const char **err)
{
    apr_array_header_t *certs;

    if (APR_SUCCESS != scep_load_certs(p, path, &certs, err)) {
        return NULL;
    }
    return certs;
}

/* ------------------------------------------------------------------ */
/* scep-ota request                                                    */

static int request_usage(FILE *out)
{
    fprintf(out,
        "usage: scep-ota request --type TYPE --recipient CERT --key KEY "
        "[OPTIONS] -o OUT\n"
        "\n"
        "Builds a SCEP request pkiMessage (DER) offline and prints\n"
        "transactionID=, senderNonce= and messageType= lines.\n"
        "\n"
        "  --type T          pkcsreq, renewalreq, certpoll, getcert, getcrl,\n"
        "                    or a number (any messageType, to test servers)\n"
        "  --recipient CERT  the RA (or CA) certificate to encrypt to; of\n"
        "                    several in the file, the first with\n"
        "                    keyEncipherment\n"
        "  --key KEY         the signing key (and the CSR's key unless\n"
        "                    --new-key)\n"
        "  --cert CERT       sign with this certificate (renewal: the one\n"
        "                    issued before); default a fresh self-signed one\n"
        "  --csr CSR         the PKCS#10 to send (PEM or DER)\n"
        "  --subject /CN=x/O=y\n"
        "                    build the CSR with this subject instead\n"
        "  --new-key KEY     the key of the built CSR (renewal with a new key)\n"
        "  --challenge PW    challengePassword of the built CSR\n"
        "  --cipher C        des, 3des, aes128 (default), aes192, aes256\n"
        "  --digest D        md5, sha1, sha224, sha256 (default), sha384,\n"
        "                    sha512\n"
        "  --oaep            RSAES-OAEP key transport (default PKCS#1 v1.5)\n"
        "  --keyid           name the recipient by its subjectKeyIdentifier\n"
        "                    (default issuerAndSerialNumber)\n"
        "  --txid ID         transactionID (default: hex SHA-1 of the\n"
        "                    CSR's public key, else random)\n"
        "  --nonce HEX       senderNonce (default 16 random bytes)\n"
        "  --signing-time T  signingTime, seconds since the epoch, or\n"
        "                    +N/-N from now (default now)\n"
        "  --serial HEX      getcert/getcrl: the certificate's serial\n"
        "  --issuer CERT     getcert/getcrl/certpoll: the issuer's name\n"
        "                    (default: the recipient's subject)\n"
        "  --out-signer FILE write the signer certificate (PEM)\n"
        "  --out-csr FILE    write the CSR sent (PEM)\n"
        "  -o FILE           the request, DER (\"-\": standard output)\n");
    return out == stdout ? 0 : 2;
}

typedef struct {
    const char *type, *recipient, *key, *cert, *csr, *subject, *new_key;
    const char *challenge, *cipher, *digest, *txid, *nonce, *serial;
    const char *signing_time;
    const char *issuer, *out, *out_signer, *out_csr;
    int oaep, keyid;
} req_opts_t;

static int message_type(const char *t)
{
    if (!strcasecmp(t, "pkcsreq")) {
        return SCEP_MSG_PKCSREQ;
    }
    if (!strcasecmp(t, "renewalreq")) {
        return SCEP_MSG_RENEWALREQ;
    }
    if (!strcasecmp(t, "certpoll") || !strcasecmp(t, "getcertinitial")) {
        return SCEP_MSG_CERTPOLL;
    }
    if (!strcasecmp(t, "getcert")) {
        return SCEP_MSG_GETCERT;
    }
    if (!strcasecmp(t, "getcrl")) {
        return SCEP_MSG_GETCRL;
    }
    if (t[0] && strspn(t, "0123456789") == strlen(t) && strlen(t) <= 3) {
        return atoi(t);         /* any other number, to test servers */
    }
    return -1;
}

static int cipher_nid(const char *c)
{
    static const struct { const char *name; int nid; } t[] = {
        { "des", NID_des_cbc }, { "3des", NID_des_ede3_cbc },
        { "des3", NID_des_ede3_cbc }, { "aes128", NID_aes_128_cbc },
        { "aes", NID_aes_128_cbc }, { "aes192", NID_aes_192_cbc },
        { "aes256", NID_aes_256_cbc },
    };
    apr_size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); ++i) {
        if (!strcasecmp(c, t[i].name)) {
            return t[i].nid;
        }
    }
    return NID_undef;
}

static int digest_nid(const char *d)
{
    static const struct { const char *name; int nid; } t[] = {
        { "md5", NID_md5 }, { "sha1", NID_sha1 }, { "sha224", NID_sha224 },
        { "sha256", NID_sha256 }, { "sha384", NID_sha384 },
        { "sha512", NID_sha512 },
    };
    apr_size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); ++i) {
        if (!strcasecmp(d, t[i].name)) {
            return t[i].nid;
        }
    }
    return NID_undef;
}

/* "/CN=x/O=y" (a "\/" is a slash inside a value) as a name. */
static X509_NAME *parse_subject(apr_pool_t *p, const char *s)
{
    X509_NAME *name = X509_NAME_new();
    char *buf = apr_pstrdup(p, s), *r = buf, *w, *field, *eq;

    if (!name || *r != '/') {
        X509_NAME_free(name);
        return NULL;
    }
    ++r;
    while (*r) {
        field = w = r;
        while (*r && *r != '/') {
            if (*r == '\\' && r[1]) {
                ++r;
            }
            *w++ = *r++;
        }
        if (*r == '/') {
            ++r;
        }
        *w = '\0';
        if (!(eq = strchr(field, '=')) || eq == field) {
            X509_NAME_free(name);
            return NULL;
        }
        *eq = '\0';
        if (!X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                        (const unsigned char *)eq + 1, -1,
                                        -1, 0)) {
            X509_NAME_free(name);
            return NULL;
        }
    }
    return name;
}

static const unsigned char *csr_der(apr_pool_t *p, X509_REQ *req,
                                    apr_size_t *len)
{
    unsigned char *buf = NULL;
    int n = i2d_X509_REQ(req, &buf);
    const unsigned char *out;

    if (n <= 0) {
        return NULL;
    }
    out = apr_pmemdup(p, buf, (apr_size_t)n);
    *len = (apr_size_t)n;
    OPENSSL_free(buf);
    return out;
}

static X509_REQ *build_csr(apr_pool_t *p, EVP_PKEY *key,
                           const X509_NAME *name, const char *challenge)
{
    X509_REQ *req = scep_track_req(p, X509_REQ_new());

    if (!req || !X509_REQ_set_version(req, 0)
        || !X509_REQ_set_subject_name(req, name)
        || !X509_REQ_set_pubkey(req, key)
        || (challenge && !X509_REQ_add1_attr_by_NID(
                req, NID_pkcs9_challengePassword, MBSTRING_UTF8,
                (const unsigned char *)challenge, -1))
        || X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        return NULL;
    }
    return req;
}

static X509_REQ *read_csr(apr_pool_t *p, const char *path)
{
    unsigned char *data;
    apr_size_t len;
    const unsigned char *d;
    X509_REQ *req;

    if (!slurp(p, path, &data, &len)) {
        return NULL;
    }
    d = data;
    scep_unarmour(p, &d, &len);
    req = d2i_X509_REQ(NULL, &d, (long)len);
    return scep_track_req(p, req);
}

/* The self-signed certificate a client signs its first request with. */
static X509 *self_signed(apr_pool_t *p, EVP_PKEY *key, const X509_NAME *name)
{
    X509 *x = scep_track_x509(p, X509_new());
    X509_NAME *fallback = NULL;
    ASN1_INTEGER *serial = NULL;
    BIGNUM *bn = BN_new();
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok = 0;

    if (!name) {
        fallback = X509_NAME_new();
        X509_NAME_add_entry_by_txt(fallback, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"scep-ota request",
                                   -1, -1, 0);
        name = fallback;
    }
    if (!x || !bn || !BN_rand(bn, 64, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY)
        || !(serial = BN_to_ASN1_INTEGER(bn, NULL))
        || !X509_set_version(x, 2) || !X509_set_serialNumber(x, serial)
        || !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name)
        || !X509_gmtime_adj(X509_getm_notBefore(x), -3600)
        || !X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400)
        || !X509_set_pubkey(x, key)) {
        goto leave;
    }
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
                              "critical,digitalSignature,keyEncipherment");
    if (!ext || !X509_add_ext(x, ext, -1)) {
        X509_EXTENSION_free(ext);
        goto leave;
    }
    X509_EXTENSION_free(ext);
    ok = X509_sign(x, key, EVP_sha256()) > 0;
leave:
    X509_NAME_free(fallback);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return ok ? x : NULL;
}

/* IssuerAndSerialNumber, DER. */
static const unsigned char *ias_der(apr_pool_t *p, const X509_NAME *issuer,
                                    const char *serial_hex, apr_size_t *len)
{
    PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ser = NULL;
    unsigned char *buf = NULL;
    const unsigned char *out = NULL;
    int n;

    if (ias && BN_hex2bn(&bn, serial_hex) == (int)strlen(serial_hex)
        && (ser = BN_to_ASN1_INTEGER(bn, NULL))
        && X509_NAME_set(&ias->issuer, issuer)) {
        ASN1_INTEGER_free(ias->serial);
        ias->serial = ser;
        ser = NULL;
        if ((n = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &buf)) > 0) {
            out = apr_pmemdup(p, buf, (apr_size_t)n);
            *len = (apr_size_t)n;
        }
    }
    OPENSSL_free(buf);
    ASN1_INTEGER_free(ser);
    BN_free(bn);
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    return out;
}

/* DER length octets of n; returns how many were written (at most 5). */
static apr_size_t der_len(unsigned char *o, apr_size_t n)
{
    if (n < 0x80) {
        o[0] = (unsigned char)n;
        return 1;
    }
    if (n < 0x100) {
        o[0] = 0x81;
        o[1] = (unsigned char)n;
        return 2;
    }
    if (n < 0x10000) {
        o[0] = 0x82;
        o[1] = (unsigned char)(n >> 8);
        o[2] = (unsigned char)n;
        return 3;
    }
    o[0] = 0x83;
    o[1] = (unsigned char)(n >> 16);
    o[2] = (unsigned char)(n >> 8);
    o[3] = (unsigned char)n;
    return 4;
}

/* IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }, DER. */
static const unsigned char *ias_subject_der(apr_pool_t *p,
                                            const X509_NAME *issuer,
                                            const X509_NAME *subject,
                                            apr_size_t *len)
{
    unsigned char *a = NULL, *b = NULL, *out = NULL;
    int na = i2d_X509_NAME(issuer, &a), nb = i2d_X509_NAME(subject, &b);
    apr_size_t hl;

    if (na > 0 && nb > 0) {
        out = apr_palloc(p, (apr_size_t)na + (apr_size_t)nb + 6);
        out[0] = 0x30;
        hl = 1 + der_len(out + 1, (apr_size_t)na + (apr_size_t)nb);
        memcpy(out + hl, a, (apr_size_t)na);
        memcpy(out + hl + (apr_size_t)na, b, (apr_size_t)nb);
        *len = hl + (apr_size_t)na + (apr_size_t)nb;
    }
    OPENSSL_free(a);
    OPENSSL_free(b);
    return out;
}

/* The first certificate that can receive an envelope. */
static X509 *pick_recipient(const apr_array_header_t *certs)
{
    int i;

    for (i = 0; i < certs->nelts; ++i) {
        X509 *x = APR_ARRAY_IDX(certs, i, X509 *);
        if (!scep_cert_has_key_usage(x)
            || (scep_cert_key_usage(x) & SCEP_KU_KEY_ENCIPHERMENT)) {
            return x;
        }
    }
    return certs->nelts ? APR_ARRAY_IDX(certs, 0, X509 *) : NULL;
}

/* Upper-case hex SHA-1 of the DER SubjectPublicKeyInfo (as iOS does). */
static const char *key_txid(apr_pool_t *p, EVP_PKEY *key)
{
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = i2d_PUBKEY(key, &der);
    const char *out = NULL;

    if (n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha1(), NULL)) {
        out = hex(p, md, mdlen);
    }
    OPENSSL_free(der);
    return out;
}

static int parse_request_opts(int argc, const char *const *argv,
                              req_opts_t *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    for (i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char **slot = NULL;

        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            return request_usage(stdout) - 1;   /* -1: done, exit 0 */
        }
        if (!strcmp(a, "--oaep")) {
            o->oaep = 1;
            continue;
        }
        if (!strcmp(a, "--keyid")) {
            o->keyid = 1;
            continue;
        }
        if (!strcmp(a, "--type")) slot = &o->type;
        else if (!strcmp(a, "--recipient")) slot = &o->recipient;
        else if (!strcmp(a, "--key")) slot = &o->key;
        else if (!strcmp(a, "--cert")) slot = &o->cert;
        else if (!strcmp(a, "--csr")) slot = &o->csr;
        else if (!strcmp(a, "--subject")) slot = &o->subject;
        else if (!strcmp(a, "--new-key")) slot = &o->new_key;
        else if (!strcmp(a, "--challenge")) slot = &o->challenge;
        else if (!strcmp(a, "--cipher")) slot = &o->cipher;
        else if (!strcmp(a, "--digest")) slot = &o->digest;
        else if (!strcmp(a, "--txid")) slot = &o->txid;
        else if (!strcmp(a, "--nonce")) slot = &o->nonce;
        else if (!strcmp(a, "--signing-time")) slot = &o->signing_time;
        else if (!strcmp(a, "--serial")) slot = &o->serial;
        else if (!strcmp(a, "--issuer")) slot = &o->issuer;
        else if (!strcmp(a, "--out-signer")) slot = &o->out_signer;
        else if (!strcmp(a, "--out-csr")) slot = &o->out_csr;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) slot = &o->out;
        if (!slot) {
            fprintf(stderr, "scep-ota request: unknown option '%s'\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "scep-ota request: %s needs a value\n", a);
            return 2;
        }
        *slot = argv[++i];
    }
    if (o->csr && (o->subject || o->challenge || o->new_key)) {
        fprintf(stderr, "scep-ota request: --subject, --challenge and "
                "--new-key build a CSR; they do not go with --csr\n");
        return 2;
    }
    if (!o->type || !o->recipient || !o->key || !o->out) {
        fprintf(stderr, "scep-ota request: --type, --recipient, --key and "
                "-o are required\n");
        return request_usage(stderr);
    }
    return 0;
}

static int write_pem_cert(const char *path, X509 *x)
{
    BIO *b = BIO_new_file(path, "w");
    int ok = b && PEM_write_bio_X509(b, x);

    BIO_free(b);
    return ok;
}

static int write_pem_csr(const char *path, X509_REQ *r)
{
    BIO *b = BIO_new_file(path, "w");
    int ok = b && PEM_write_bio_X509_REQ(b, r);

    BIO_free(b);
    return ok;
}

int scep_cli_request(apr_pool_t *p, int argc, const char *const *argv)
{
    static const char *const C = "request";
    req_opts_t o;
    scep_request_t r;
    apr_array_header_t *certs;
    EVP_PKEY *key, *csr_key;
    X509_NAME *subject = NULL, *issuer_name;
    X509_REQ *req = NULL;
    X509 *issuer_cert = NULL;
    const unsigned char *der;
    unsigned char *nonce;
    apr_size_t dlen, nlen;
    const char *err = NULL;
    int rc, type, needs_csr;

    if ((rc = parse_request_opts(argc, argv, &o))) {
        return rc < 0 ? 0 : rc;
    }
    memset(&r, 0, sizeof(r));
    if ((type = message_type(o.type)) < 0) {
        return req_fail(C, "--type: '%s' is not pkcsreq, renewalreq, "
                        "certpoll, getcert or getcrl", o.type);
    }
    r.message_type = type;
    r.cipher_nid = cipher_nid(o.cipher ? o.cipher : "aes128");
    r.digest_nid = digest_nid(o.digest ? o.digest : "sha256");
    if (r.cipher_nid == NID_undef) {
        return req_fail(C, "--cipher: unknown '%s'", o.cipher);
    }
    if (r.digest_nid == NID_undef) {
        return req_fail(C, "--digest: unknown '%s'", o.digest);
    }
    r.key_transport = o.oaep ? SCEP_KT_OAEP : SCEP_KT_PKCS1;
    r.recipient_keyid = o.keyid;
    if (o.signing_time) {
        r.signing_time = apr_atoi64(o.signing_time);
        if (o.signing_time[0] == '+' || o.signing_time[0] == '-') {
            r.signing_time += apr_time_sec(apr_time_now());
        }
        if (r.signing_time <= 0) {
            return req_fail(C, "--signing-time: '%s' is no time",
                            o.signing_time);
        }
    }
    if ((r.cipher_nid == NID_des_cbc || r.digest_nid == NID_md5)
        && APR_SUCCESS != scep_crypt_enable_legacy(p, &err)) {
        return req_fail(C, "single DES and MD5 need OpenSSL's legacy "
                        "provider: %s", err);
    }

    if (!(certs = load_certs(p, o.recipient, &err))
        || !(r.recipient = pick_recipient(certs))) {
        return req_fail(C, "--recipient %s: %s", o.recipient,
                        err ? err : "no certificate");
    }
    if (!(key = load_key(p, o.key, &err))) {
        return req_fail(C, "--key %s: %s", o.key, err);
    }
    r.signer_key = key;
    if (o.issuer) {
        if (!(certs = load_certs(p, o.issuer, &err))) {
            return req_fail(C, "--issuer %s: %s", o.issuer, err);
        }
        issuer_cert = APR_ARRAY_IDX(certs, 0, X509 *);
    }
    issuer_name = issuer_cert ? X509_get_subject_name(issuer_cert)
                              : X509_get_subject_name(r.recipient);

    /* the CSR: given, or built (a type given by number carries one when
     * asked to, else the IssuerAndSerialNumber of --serial) */
    needs_csr = type == SCEP_MSG_PKCSREQ || type == SCEP_MSG_RENEWALREQ
                || type == SCEP_MSG_CERTPOLL
                || (!o.serial && type != SCEP_MSG_GETCERT
                    && type != SCEP_MSG_GETCRL);
    if (o.subject && !(subject = parse_subject(p, o.subject))) {
        return req_fail(C, "--subject: '%s' is not of the form /CN=x/O=y",
                        o.subject);
    }
    if (o.csr) {
        if (!(req = read_csr(p, o.csr))) {
            X509_NAME_free(subject);
            return req_fail(C, "--csr %s: not a PKCS#10 request", o.csr);
        }
    }
    else if (needs_csr && subject) {
        csr_key = key;
        if (o.new_key && !(csr_key = load_key(p, o.new_key, &err))) {
            X509_NAME_free(subject);
            return req_fail(C, "--new-key %s: %s", o.new_key, err);
        }
        if (!(req = build_csr(p, csr_key, subject, o.challenge))) {
            X509_NAME_free(subject);
            return req_fail(C, "cannot build the CSR");
        }
    }
    else if (needs_csr && type != SCEP_MSG_CERTPOLL) {
        return req_fail(C, "--type %s needs --csr or --subject", o.type);
    }
    else if (type == SCEP_MSG_CERTPOLL) {
        return req_fail(C, "--type certpoll needs --csr or --subject (the "
                        "subject polled for)");
    }

    /* the signer */
    if (o.cert) {
        if (!(certs = load_certs(p, o.cert, &err))) {
            X509_NAME_free(subject);
            return req_fail(C, "--cert %s: %s", o.cert, err);
        }
        r.signer = APR_ARRAY_IDX(certs, 0, X509 *);
        if (!scep_key_matches_cert(key, r.signer)) {
            X509_NAME_free(subject);
            return req_fail(C, "--key does not belong to --cert");
        }
    }
    else {
        r.signer = self_signed(p, key, req ? X509_REQ_get_subject_name(req)
                                           : subject);
        if (!r.signer) {
            X509_NAME_free(subject);
            return req_fail(C, "cannot make the self-signed signer");
        }
    }
    X509_NAME_free(subject);

    /* the messageData */
    if (type == SCEP_MSG_PKCSREQ || type == SCEP_MSG_RENEWALREQ
        || (req && type != SCEP_MSG_CERTPOLL && !o.serial)) {
        r.data = csr_der(p, req, &r.data_len);
    }
    else if (type == SCEP_MSG_CERTPOLL) {
        r.data = ias_subject_der(p, issuer_name,
                                 X509_REQ_get_subject_name(req), &r.data_len);
    }
    else {
        if (!o.serial) {
            return req_fail(C, "--type %s needs --serial", o.type);
        }
        r.data = ias_der(p, issuer_name, o.serial, &r.data_len);
        if (!r.data) {
            return req_fail(C, "--serial: '%s' is not a hex number",
                            o.serial);
        }
    }
    if (!r.data) {
        return req_fail(C, "cannot encode the messageData");
    }

    /* transactionID and senderNonce */
    r.transaction_id = o.txid;
    if (!r.transaction_id && req) {
        r.transaction_id = key_txid(p, X509_REQ_get0_pubkey(req));
    }
    if (!r.transaction_id) {
        unsigned char rnd[16];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            return req_fail(C, "no randomness");
        }
        r.transaction_id = hex(p, rnd, sizeof(rnd));
    }
    if (o.nonce) {
        if (!unhex(p, o.nonce, &nonce, &nlen)) {
            return req_fail(C, "--nonce: not hex");
        }
    }
    else {
        nlen = SCEP_NONCE_LEN;
        nonce = apr_palloc(p, nlen);
        if (RAND_bytes(nonce, (int)nlen) != 1) {
            return req_fail(C, "no randomness");
        }
    }
    r.sender_nonce = nonce;
    r.sender_nonce_len = nlen;

    if (APR_SUCCESS != scep_request_build(p, &r, &der, &dlen)) {
        return req_fail(C, "cannot build the pkiMessage (cipher %s, digest "
                        "%s)", scep_pkimsg_alg_name(r.cipher_nid),
                        scep_pkimsg_alg_name(r.digest_nid));
    }
    if (o.out_signer && !write_pem_cert(o.out_signer, r.signer)) {
        return req_fail(C, "cannot write %s", o.out_signer);
    }
    if (o.out_csr && req && !write_pem_csr(o.out_csr, req)) {
        return req_fail(C, "cannot write %s", o.out_csr);
    }
    if (!write_bytes(o.out, der, dlen)) {
        return req_fail(C, "cannot write %s", o.out);
    }
    if (strcmp(o.out, "-")) {
        printf("messageType=%d\n", type);
        printf("transactionID=%s\n", r.transaction_id);
        printf("senderNonce=%s\n", hex(p, nonce, nlen));
        printf("signerSerial=%s\n", scep_cert_serial_hex(p, r.signer));
        printf("recipient=%s\n", name_line(p, X509_get_subject_name(
                                                   r.recipient)));
        printf("length=%lu\n", (unsigned long)dlen);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* scep-ota certrep                                                    */

static int certrep_usage(FILE *out)
{
    fprintf(out,
        "usage: scep-ota certrep [--key KEY] [--out-cert FILE] "
        "[--out-certs FILE]\n"
        "                        [--out-crl FILE] [--out-content FILE] "
        "FILE|-\n"
        "\n"
        "Reads a CertRep (DER or base64) and prints key=value lines:\n"
        "(a request is read too; with the RA/CA key, --out-content gives\n"
        "its messageData)\n"
        "messageType, transactionID, pkiStatus, failInfo, failInfoText,\n"
        "senderNonce, recipientNonce, digest, signature, signer, envelope.\n"
        "With KEY (the client's key) a SUCCESS envelope is decrypted:\n"
        "  --out-cert FILE     the first certificate (the issued one), PEM\n"
        "  --out-certs FILE    every certificate carried inside, PEM\n"
        "  --out-crl FILE      the CRL(s) inside, PEM\n"
        "  --out-content FILE  the decrypted messageData, DER\n"
        "Exit status: 0 read, 1 not a pkiMessage, 3 the envelope could not\n"
        "be opened with KEY.\n");
    return out == stdout ? 0 : 2;
}

static void kv(const char *k, const char *v)
{
    printf("%s=%s\n", k, v ? v : "");
}

static void print_cert_kv(apr_pool_t *p, const char *prefix, X509 *x)
{
    printf("%s.subject=%s\n", prefix,
           name_line(p, X509_get_subject_name(x)));
    printf("%s.issuer=%s\n", prefix, name_line(p, X509_get_issuer_name(x)));
    printf("%s.serial=%s\n", prefix, scep_cert_serial_hex(p, x));
}

/* The certificates and CRLs of the decrypted degenerate SignedData. */
static int open_content(apr_pool_t *p, const scep_pkimsg_t *m,
                        const char *out_cert, const char *out_certs,
                        const char *out_crl)
{
    const unsigned char *d = m->data;
    PKCS7 *p7 = d2i_PKCS7(NULL, &d, (long)m->data_len);
    STACK_OF(X509) *certs;
    STACK_OF(X509_CRL) *crls;
    BIO *b;
    int i, ok = 1;

    if (!p7 || !PKCS7_type_is_signed(p7) || !p7->d.sign) {
        PKCS7_free(p7);
        kv("content", "not a SignedData");
        return 0;
    }
    certs = p7->d.sign->cert;
    crls = p7->d.sign->crl;
    /* an absent stack counts -1 */
    printf("content.certificates=%d\n", certs ? sk_X509_num(certs) : 0);
    printf("content.crls=%d\n", crls ? sk_X509_CRL_num(crls) : 0);
    for (i = 0; i < sk_X509_num(certs); ++i) {
        print_cert_kv(p, apr_psprintf(p, "cert%d", i),
                      sk_X509_value(certs, i));
    }
    for (i = 0; i < sk_X509_CRL_num(crls); ++i) {
        X509_CRL *c = sk_X509_CRL_value(crls, i);
        printf("crl%d.issuer=%s\n", i,
               name_line(p, X509_CRL_get_issuer(c)));
        printf("crl%d.revoked=%d\n", i,
               sk_X509_REVOKED_num(X509_CRL_get_REVOKED(c)));
    }
    if (out_cert && sk_X509_num(certs) > 0) {
        ok = write_pem_cert(out_cert, sk_X509_value(certs, 0)) && ok;
    }
    if (out_certs && (b = BIO_new_file(out_certs, "w"))) {
        for (i = 0; i < sk_X509_num(certs); ++i) {
            ok = PEM_write_bio_X509(b, sk_X509_value(certs, i)) && ok;
        }
        BIO_free(b);
    }
    if (out_crl && sk_X509_CRL_num(crls) > 0
        && (b = BIO_new_file(out_crl, "w"))) {
        for (i = 0; i < sk_X509_CRL_num(crls); ++i) {
            ok = PEM_write_bio_X509_CRL(b, sk_X509_CRL_value(crls, i)) && ok;
        }
        BIO_free(b);
    }
    PKCS7_free(p7);
    return ok;
}

int scep_cli_certrep(apr_pool_t *p, int argc, const char *const *argv)
{
    static const char *const C = "certrep";
    const char *key_path = NULL, *out_cert = NULL, *out_certs = NULL;
    const char *out_crl = NULL, *out_content = NULL, *path = NULL;
    const char *err = NULL;
    unsigned char *data;
    const unsigned char *msg;
    apr_size_t len;
    scep_pkimsg_t *m;
    EVP_PKEY *key = NULL;
    apr_status_t rv;
    int i;

    for (i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char **slot = NULL;

        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            return certrep_usage(stdout);
        }
        if (!strcmp(a, "--key")) slot = &key_path;
        else if (!strcmp(a, "--out-cert")) slot = &out_cert;
        else if (!strcmp(a, "--out-certs")) slot = &out_certs;
        else if (!strcmp(a, "--out-crl")) slot = &out_crl;
        else if (!strcmp(a, "--out-content")) slot = &out_content;
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "scep-ota certrep: %s needs a value\n", a);
                return 2;
            }
            *slot = argv[++i];
        }
        else if (!path && (a[0] != '-' || !strcmp(a, "-"))) {
            path = a;
        }
        else {
            fprintf(stderr, "scep-ota certrep: unexpected '%s'\n", a);
            return certrep_usage(stderr);
        }
    }
    if (!path) {
        return certrep_usage(stderr);
    }
    if (key_path) {
        if (!(key = load_key(p, key_path, &err))) {
            return req_fail(C, "--key %s: %s", key_path, err);
        }
        /* a legacy client's single DES envelope must open too */
        (void)scep_crypt_enable_legacy(p, &err);
    }
    if (!slurp(p, path, &data, &len)) {
        return req_fail(C, "cannot read %s", path);
    }
    msg = data;
    scep_unarmour(p, &msg, &len);
    if (APR_SUCCESS != scep_pkimsg_parse(p, msg, len, &m)) {
        return req_fail(C, "%s is not a SCEP pkiMessage", path);
    }
    printf("messageType=%d\n", m->message_type);
    kv("messageTypeName", scep_pkimsg_type_name(m->message_type));
    kv("transactionID", m->transaction_id);
    if (m->pki_status >= 0) {
        kv("pkiStatus", scep_pkimsg_status_name(m->pki_status));
    }
    if (m->fail_info != SCEP_FAIL_NONE) {
        kv("failInfo", scep_pkimsg_fail_name(m->fail_info));
    }
    if (m->fail_info_text) {
        kv("failInfoText", m->fail_info_text);
    }
    kv("senderNonce", hex(p, m->sender_nonce, m->sender_nonce_len));
    if (m->recipient_nonce) {
        kv("recipientNonce", hex(p, m->recipient_nonce,
                                 m->recipient_nonce_len));
    }
    kv("digest", scep_pkimsg_alg_name(m->digest_nid));
    kv("signature", m->signature_ok ? "ok" : "bad");
    if (m->signer) {
        kv("signer", name_line(p, X509_get_subject_name(m->signer)));
        kv("signerSerial", scep_cert_serial_hex(p, m->signer));
    }
    printf("certificates=%d\n", m->certs->nelts);
    if (!m->envelope) {
        kv("envelope", "none");
        return 0;
    }
    printf("envelope=%s %s\n", scep_pkimsg_alg_name(m->cipher_nid),
           m->key_transport == SCEP_KT_OAEP ? "oaep" : "pkcs1");
    if (!key) {
        return 0;
    }
    rv = scep_pkimsg_decrypt(p, m, key, 1);
    if (APR_SUCCESS != rv) {
        kv("decrypted", "no");
        fflush(stdout);
        req_fail(C, "the envelope cannot be opened with %s", key_path);
        return 3;
    }
    kv("decrypted", "yes");
    if (out_content && !write_bytes(out_content, m->data, m->data_len)) {
        return req_fail(C, "cannot write %s", out_content);
    }
    if (m->message_type != SCEP_MSG_CERTREP) {
        return 0;               /* a request: its content is not ours to read */
    }
    if (!open_content(p, m, out_cert, out_certs, out_crl)) {
        return req_fail(C, "cannot read or write the envelope's content");
    }
    return 0;
}
