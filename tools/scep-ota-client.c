/* The pieces the scep-ota commands share (scep-ota-client.h). */

#include <stdlib.h>
#include <string.h>

#include <apr_escape.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep-ota-client.h"

/* ------------------------------------------------------------------ */
/* messages and options                                                */

int scep_cli_vfail(const char *cmd, const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "scep-ota %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    ERR_clear_error();
    return 1;
}

int scep_cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    scep_cli_vfail(cmd, fmt, ap);
    va_end(ap);
    return 1;
}

int scep_cli_usage(FILE *out, const char *const *text)
{
    for (; *text; ++text) {
        fputs(*text, out);
    }
    return out == stdout ? 0 : 2;
}

const char **scep_cli_opt_slot(const scep_cli_opt_t *table, void *base,
                               const char *arg)
{
    for (; table->name; ++table) {
        if (!strcmp(arg, table->name)
            || (table->alias && !strcmp(arg, table->alias))) {
            return (const char **)(void *)((char *)base + table->offset);
        }
    }
    return NULL;
}

int scep_cli_is_help(const char *arg)
{
    return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

/* ------------------------------------------------------------------ */
/* files and text                                                      */

/* Reads f to its end into a buffer that doubles as it fills; at most max
 * bytes (then *n == max). */
static unsigned char *read_stream(apr_pool_t *p, FILE *f, apr_size_t max,
                                  apr_size_t *n)
{
    apr_size_t cap = 16 * 1024, got;
    unsigned char *buf = apr_palloc(p, cap), *bigger;

    for (*n = 0; !(*n == cap && cap >= max); *n += got) {
        if (*n == cap) {
            bigger = apr_palloc(p, cap * 2);
            memcpy(bigger, buf, *n);
            buf = bigger;
            cap *= 2;
        }
        if ((got = fread(buf + *n, 1, cap - *n, f)) == 0) {
            break;
        }
    }
    return buf;
}

apr_status_t scep_cli_read(apr_pool_t *p, const char *path, apr_size_t max,
                           int strict, unsigned char **data,
                           apr_size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    apr_size_t n;
    int bad;

    if (!f) {
        return APR_ENOENT;
    }
    *data = read_stream(p, f, max, &n);
    bad = (strict && ferror(f)) || n >= max;
    if (f != stdin) {
        fclose(f);
    }
    *len = n;
    return bad ? APR_EGENERAL : APR_SUCCESS;
}

int scep_cli_write(const char *path, const void *data, apr_size_t len)
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

int scep_cli_write_cert(const char *path, X509 *x)
{
    BIO *b = BIO_new_file(path, "w");
    int ok = b && PEM_write_bio_X509(b, x);

    BIO_free(b);
    return ok;
}

int scep_cli_write_csr(const char *path, X509_REQ *req)
{
    BIO *b = BIO_new_file(path, "w");
    int ok = b && PEM_write_bio_X509_REQ(b, req);

    BIO_free(b);
    return ok;
}

const char *scep_cli_hex(apr_pool_t *p, const unsigned char *b,
                         apr_size_t n, char sep)
{
    size_t size = n * 3 + 1;
    char *out = apr_palloc(p, size);

    if (n == 0 || !OPENSSL_buf2hexstr_ex(out, size, NULL, b, n, sep)) {
        *out = '\0';
    }
    return out;
}

int scep_cli_unhex(apr_pool_t *p, const char *s, unsigned char **out,
                   apr_size_t *len)
{
    *out = *s ? (unsigned char *)apr_punescape_hex(p, s, 0, len) : NULL;
    return *out != NULL;
}

/* The fields of "/O=Example/CN=Example CA", unescaped. */
static apr_array_header_t *subject_fields(apr_pool_t *p, const char *text)
{
    apr_array_header_t *fields = apr_array_make(p, 4, sizeof(char *));
    char *buf = apr_palloc(p, strlen(text) + 1), *w = buf, *start = buf;
    const char *s;

    for (s = text + 1; ; ++s) {
        if (*s == '\\' && s[1]) {
            *w++ = *++s;
        }
        else if (*s == '/' || !*s) {
            *w++ = '\0';
            APR_ARRAY_PUSH(fields, char *) = start;
            start = w;
            if (!*s) {
                break;
            }
        }
        else {
            *w++ = *s;
        }
    }
    return fields;
}

/* Adds "NAME=VALUE" to name; 0 when it is no such pair. An empty VALUE
 * only when not strict. */
static int add_field(X509_NAME *name, char *field, int strict)
{
    char *eq = strchr(field, '=');

    if (!eq || eq == field || (strict && !eq[1])) {
        return 0;
    }
    *eq = '\0';
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                      (const unsigned char *)eq + 1, -1, -1,
                                      0);
}

/* The fields to take: not strict, a last empty one ("/CN=x/", "/") is
 * no field. */
static int field_count(const apr_array_header_t *fields, int strict)
{
    int n = fields->nelts;

    return !strict && !*APR_ARRAY_IDX(fields, n - 1, char *) ? n - 1 : n;
}

X509_NAME *scep_cli_subject(apr_pool_t *p, const char *text, int strict)
{
    apr_array_header_t *fields;
    X509_NAME *name;
    int i, n;

    if (*text != '/' || !(name = X509_NAME_new())) {
        return NULL;
    }
    fields = subject_fields(p, text);
    n = field_count(fields, strict);
    for (i = 0; i < n; ++i) {
        if (!add_field(name, APR_ARRAY_IDX(fields, i, char *), strict)) {
            break;
        }
    }
    if (i < n || (strict && X509_NAME_entry_count(name) == 0)) {
        X509_NAME_free(name);
        ERR_clear_error();
        return NULL;
    }
    return name;
}

/* ------------------------------------------------------------------ */
/* keys and certificates                                               */

EVP_PKEY *scep_cli_load_key(apr_pool_t *p, const char *path,
                            const char **err)
{
    apr_array_header_t *keys;

    if (APR_SUCCESS != scep_load_keys(p, path, &keys, err)) {
        return NULL;
    }
    return APR_ARRAY_IDX(keys, 0, EVP_PKEY *);
}

apr_array_header_t *scep_cli_load_certs(apr_pool_t *p, const char *path,
                                        const char **err)
{
    apr_array_header_t *certs;

    if (APR_SUCCESS != scep_load_certs(p, path, &certs, err)) {
        return NULL;
    }
    return certs;
}

apr_status_t scep_cli_load_pair(apr_pool_t *p, const char *cert_file,
                                const char *key_file,
                                apr_array_header_t **certs, EVP_PKEY **key,
                                const char **err)
{
    if (!(*certs = scep_cli_load_certs(p, cert_file, err))
        || !(*key = scep_cli_load_key(p, key_file, err))) {
        return APR_EINVAL;
    }
    if (!scep_key_matches_cert(*key, APR_ARRAY_IDX(*certs, 0, X509 *))) {
        *err = apr_psprintf(p, "the key in %s does not match %s", key_file,
                            cert_file);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static int set_serial(X509 *x, const scep_cli_cert_t *s)
{
    BIGNUM *bn;
    int ok;

    if (s->serial > 0) {
        return ASN1_INTEGER_set(X509_get_serialNumber(x), s->serial);
    }
    bn = BN_new();
    ok = bn && BN_rand(bn, s->serial_bits, s->serial_top, BN_RAND_BOTTOM_ANY)
         && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    return ok;
}

static int set_validity(X509 *x, const scep_cli_cert_t *s)
{
    if (!X509_gmtime_adj(X509_getm_notBefore(x), s->not_before)
        || !X509_gmtime_adj(X509_getm_notAfter(x), s->not_after)) {
        return 0;
    }
    if (s->not_after_max
        && ASN1_TIME_compare(s->not_after_max, X509_get0_notAfter(x)) < 0) {
        return X509_set1_notAfter(x, s->not_after_max);
    }
    return 1;
}

static int add_cert_exts(X509 *x, const scep_cli_cert_t *s)
{
    const scep_cli_ext_t *e;

    for (e = s->exts; e && e->nid != NID_undef; ++e) {
        if (!scep_x509_add_ext(x, s->issuer ? s->issuer : x, e->nid,
                               e->value)) {
            return 0;
        }
    }
    return 1;
}

X509 *scep_cli_cert(apr_pool_t *p, const scep_cli_cert_t *s)
{
    X509 *x = scep_track_x509(p, X509_new());

    if (!x || !X509_set_version(x, X509_VERSION_3) || !set_serial(x, s)
        || !X509_set_subject_name(x, s->subject)
        || !X509_set_issuer_name(x, s->issuer
                                    ? X509_get_subject_name(s->issuer)
                                    : s->subject)
        || !set_validity(x, s) || !X509_set_pubkey(x, s->key)
        || !add_cert_exts(x, s)
        || X509_sign(x, s->issuer ? s->issuer_key : s->key,
                     s->md ? s->md : EVP_sha256()) <= 0) {
        return NULL;
    }
    return x;
}

static int add_csr_exts(X509_REQ *req, const char *const *exts)
{
    STACK_OF(X509_EXTENSION) *sk;
    X509V3_CTX ctx;
    int ok = 1, i;

    if (!exts || !exts[0]) {
        return 1;
    }
    sk = sk_X509_EXTENSION_new_null();
    X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
    for (i = 0; ok && exts[i]; i += 2) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i], exts[i + 1]);
        ok = e && sk_X509_EXTENSION_push(sk, e);
    }
    ok = ok && sk && X509_REQ_add_extensions(req, sk);
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    return ok;
}

X509_REQ *scep_cli_csr(apr_pool_t *p, const scep_cli_csr_t *s)
{
    X509_REQ *req = scep_track_req(p, X509_REQ_new());

    if (!req || !X509_REQ_set_version(req, X509_REQ_VERSION_1)
        || !X509_REQ_set_subject_name(req, s->subject)
        || !X509_REQ_set_pubkey(req, s->key)
        || (s->challenge && !X509_REQ_add1_attr_by_NID(
                req, NID_pkcs9_challengePassword, MBSTRING_UTF8,
                (const unsigned char *)s->challenge, -1))
        || !add_csr_exts(req, s->exts)
        || X509_REQ_sign(req, s->key, s->md ? s->md : EVP_sha256()) <= 0) {
        return NULL;
    }
    return req;
}

const unsigned char *scep_cli_csr_der(apr_pool_t *p, X509_REQ *req,
                                      apr_size_t *len)
{
    unsigned char *buf = NULL;
    int n = req ? i2d_X509_REQ(req, &buf) : 0;
    const unsigned char *out;

    if (n <= 0) {
        return NULL;
    }
    out = apr_pmemdup(p, buf, (apr_size_t)n);
    *len = (apr_size_t)n;
    OPENSSL_free(buf);
    return out;
}

/* ------------------------------------------------------------------ */
/* the SCEP messages                                                   */

/* A name as an element of a SEQUENCE OF ANY; 1 on success. */
static int push_name(ASN1_SEQUENCE_ANY *seq, const X509_NAME *name)
{
    ASN1_STRING *str = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    ASN1_TYPE *t = ASN1_TYPE_new();
    unsigned char *der = NULL;
    int n = i2d_X509_NAME(name, &der);

    if (n <= 0 || !str || !t || !ASN1_STRING_set(str, der, n)) {
        ASN1_STRING_free(str);
        ASN1_TYPE_free(t);
        OPENSSL_free(der);
        return 0;
    }
    OPENSSL_free(der);
    ASN1_TYPE_set(t, V_ASN1_SEQUENCE, str);
    if (!sk_ASN1_TYPE_push(seq, t)) {
        ASN1_TYPE_free(t);
        return 0;
    }
    return 1;
}

const unsigned char *scep_cli_issuer_and_subject(apr_pool_t *p,
                                                 const X509_NAME *issuer,
                                                 const X509_NAME *subject,
                                                 apr_size_t *len)
{
    ASN1_SEQUENCE_ANY *seq = sk_ASN1_TYPE_new_null();
    const unsigned char *out = NULL;
    unsigned char *der = NULL;
    int n;

    if (seq && push_name(seq, issuer) && push_name(seq, subject)
        && (n = i2d_ASN1_SEQUENCE_ANY(seq, &der)) > 0) {
        out = apr_pmemdup(p, der, (apr_size_t)n);
        *len = (apr_size_t)n;
    }
    OPENSSL_free(der);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    return out;
}

/* The serial of hex digits (all of them), or NULL. */
static ASN1_INTEGER *hex_serial(const char *serial_hex)
{
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ser = NULL;

    if (BN_hex2bn(&bn, serial_hex) == (int)strlen(serial_hex)) {
        ser = BN_to_ASN1_INTEGER(bn, NULL);
    }
    BN_free(bn);
    return ser;
}

/* IssuerAndSerialNumber of issuer and ser (taken), DER; NULL on failure. */
static const unsigned char *ias_der(apr_pool_t *p, const X509_NAME *issuer,
                                    ASN1_INTEGER *ser, apr_size_t *len)
{
    PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
    unsigned char *buf = NULL;
    const unsigned char *out = NULL;
    int n;

    if (ias && X509_NAME_set(&ias->issuer, issuer)) {
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
    PKCS7_ISSUER_AND_SERIAL_free(ias);
    return out;
}

const unsigned char *scep_cli_issuer_and_serial(apr_pool_t *p,
                                                const X509_NAME *issuer,
                                                const char *serial_hex,
                                                apr_size_t *len)
{
    ASN1_INTEGER *ser = hex_serial(serial_hex);

    return ser ? ias_der(p, issuer, ser, len) : NULL;
}

X509 *scep_cli_pick_recipient(const apr_array_header_t *certs)
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

/* The senderNonce: the bytes of hex, else 16 random ones. */
static apr_status_t sender_nonce(apr_pool_t *p, const char *hex,
                                 scep_request_t *req)
{
    unsigned char *nonce;
    apr_size_t len = SCEP_NONCE_LEN;

    if (hex) {
        if (!scep_cli_unhex(p, hex, &nonce, &len)) {
            return APR_EINVAL;
        }
    }
    else if (RAND_bytes(nonce = apr_palloc(p, len), (int)len) != 1) {
        return APR_EGENERAL;
    }
    req->sender_nonce = nonce;
    req->sender_nonce_len = len;
    return APR_SUCCESS;
}

apr_status_t scep_cli_build_request(apr_pool_t *p, scep_request_t *req,
                                    const char *nonce_hex,
                                    const unsigned char **der,
                                    apr_size_t *len)
{
    apr_status_t rv = sender_nonce(p, nonce_hex, req);

    if (APR_SUCCESS != rv) {
        return rv;
    }
    if (!req->data || !req->signer
        || APR_SUCCESS != scep_request_build(p, req, der, len)) {
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

static apr_status_t p7_cleanup(void *p7)
{
    PKCS7_free(p7);
    return APR_SUCCESS;
}

apr_status_t scep_cli_certrep_content(apr_pool_t *p, const scep_pkimsg_t *m,
                                      STACK_OF(X509) **certs,
                                      STACK_OF(X509_CRL) **crls)
{
    const unsigned char *d = m->data;
    PKCS7 *p7 = d ? d2i_PKCS7(NULL, &d, (long)m->data_len) : NULL;

    if (!p7 || !PKCS7_type_is_signed(p7) || !p7->d.sign) {
        PKCS7_free(p7);
        ERR_clear_error();
        return APR_EINVAL;
    }
    apr_pool_cleanup_register(p, p7, p7_cleanup, apr_pool_cleanup_null);
    *certs = p7->d.sign->cert;
    *crls = p7->d.sign->crl;
    return APR_SUCCESS;
}
