/* Writes the fuzzers' fixed PKI (tests/fuzz/pki, only when it is missing
 * or with --pki) and their seed corpora (tests/fuzz/corpus/TARGET/seed-*)
 * from the captured requests and from messages built here with the core
 * library, in the input formats the targets document.
 *
 *   gen_seeds [--pki]      run from the top of the source tree
 *
 * The outputs are committed; rerun it only to refresh them. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_base64.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>
#include <plist/plist.h>

#include "fuzz.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_pkimsg.h"
#include "scep_ota/scep_pkiop.h"

#define UDID "00008101-001938611EE9001E"
#define DAY 86400L

static apr_pool_t *p;
static int seq;

static void die(const char *what) __attribute__((noreturn));

static void die(const char *what)
{
    fprintf(stderr, "gen_seeds: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* ------------------------------------------------------------------ */
/* files                                                               */

static void put(const char *target, const char *name, int prefix,
                const void *data, apr_size_t len)
{
    const char *dir = fuzz_path(apr_pstrcat(p, "tests/fuzz/corpus/", target,
                                            NULL));
    const char *path = apr_psprintf(p, "%s/seed-%03d-%s", dir, ++seq, name);
    FILE *f;
    unsigned char b = (unsigned char)prefix;

    mkdir(fuzz_path("tests/fuzz/corpus"), 0755);
    mkdir(dir, 0755);
    if (!(f = fopen(path, "wb"))) {
        die(path);
    }
    if (prefix >= 0) {
        fwrite(&b, 1, 1, f);
    }
    fwrite(data, 1, len, f);
    fclose(f);
}

static void put2(const char *target, const char *name, int b0, int b1, int b2,
                 const void *data, apr_size_t len)
{
    unsigned char *buf = apr_palloc(p, len + 2);

    buf[0] = (unsigned char)b1;
    buf[1] = (unsigned char)b2;
    memcpy(buf + 2, data, len);
    put(target, name, b0, buf, len + 2);
}

static void read_file(const char *rel, const unsigned char **data,
                      apr_size_t *len)
{
    FILE *f = fopen(fuzz_path(rel), "rb");
    unsigned char *buf = apr_palloc(p, 1 << 20);

    if (!f) {
        die(rel);
    }
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    *data = buf;
}

static void write_pem(const char *rel, X509 *x, X509 *x2, EVP_PKEY *k)
{
    FILE *f = fopen(fuzz_path(rel), "w");

    if (!f) {
        die(rel);
    }
    if (x) {
        PEM_write_X509(f, x);
    }
    if (x2) {
        PEM_write_X509(f, x2);
    }
    if (k) {
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    }
    fclose(f);
}

/* ------------------------------------------------------------------ */
/* PKI                                                                 */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    if (!(ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value))) {
        die(value);
    }
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
}

/* from/to: "YYYYMMDDhhmmssZ", or NULL for now-1h / now+10y */
static X509 *cert(const char *o, const char *cn, EVP_PKEY *key, X509 *issuer,
                  EVP_PKEY *ikey, int is_ca, const char *from, const char *to,
                  const EVP_MD *md, long serial)
{
    X509 *x = scep_track_x509(p, X509_new());
    X509_NAME *name = X509_NAME_new();

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    if (o) {
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   (const unsigned char *)o, -1, -1, 0);
    }
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);
    if (from) {
        ASN1_TIME_set_string(X509_getm_notBefore(x), from);
        ASN1_TIME_set_string(X509_getm_notAfter(x), to);
    }
    else {
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 3650 * DAY);
    }
    X509_set_pubkey(x, key);
    add_ext(x, issuer, NID_basic_constraints,
            is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, issuer, NID_key_usage, is_ca
            ? "critical,digitalSignature,keyCertSign,cRLSign"
            : "critical,digitalSignature,keyEncipherment");
    add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (X509_sign(x, ikey ? ikey : key, md) <= 0) {
        die("sign");
    }
    return x;
}

static EVP_PKEY *rsa(int bits)
{
    EVP_PKEY *k = scep_track_pkey(p, EVP_RSA_gen((unsigned int)bits));

    if (!k) {
        die("rsa");
    }
    return k;
}

static EVP_PKEY *p256(void)
{
    EVP_PKEY *k = scep_track_pkey(p, EVP_EC_gen("P-256"));

    if (!k) {
        die("ec");
    }
    return k;
}

static void make_pki(void)
{
    const scep_ca_t *ca = fuzz_captured_ca();
    EVP_PKEY *client, *k;
    X509 *devca, *x;
    EVP_PKEY *kdevca;

    mkdir(fuzz_path("tests/fuzz/pki"), 0755);
    write_pem("tests/fuzz/pki/client.key", NULL, NULL, rsa(1024));
    client = fuzz_client_key();
    write_pem("tests/fuzz/pki/client-selfsigned.pem",
              cert("scep-fuzz", "fuzz-client", client, NULL, NULL, 0, NULL,
                   NULL, EVP_sha256(), 0x1001), NULL, NULL);
    write_pem("tests/fuzz/pki/client-issued.pem",
              cert("scep-fuzz", "fuzz-client", client, ca->cert, ca->key, 0,
                   NULL, NULL, EVP_sha256(), 0x4655a1), NULL, NULL);
    /* Apple's device CA: RSA-1024, SHA-1, expired */
    kdevca = rsa(1024);
    devca = cert("Fuzz Inc.", "Fuzz iPhone Device CA", kdevca, NULL, NULL, 1,
                 "20070416000000Z", "20140416000000Z", EVP_sha1(), 0x2001);
    write_pem("tests/fuzz/pki/device-ca.pem", devca, NULL, NULL);
    write_pem("tests/fuzz/pki/device-ca.key", NULL, NULL, kdevca);
    k = rsa(1024);
    write_pem("tests/fuzz/pki/device.pem",
              cert(NULL, UDID, k, devca, kdevca, 0, "20100101000000Z",
                   "20130101000000Z", EVP_sha1(), 0x2002), NULL, NULL);
    write_pem("tests/fuzz/pki/device.key", NULL, NULL, k);
    k = rsa(1024);
    write_pem("tests/fuzz/pki/ota-signer.pem",
              cert("Example Inc.", "Fuzz OTA Profile Signer", k, ca->cert,
                   ca->key, 0, NULL, NULL, EVP_sha256(), 0x3001), ca->cert,
              NULL);
    write_pem("tests/fuzz/pki/ota-signer.key", NULL, NULL, k);
    k = rsa(1024);
    write_pem("tests/fuzz/pki/identity.pem",
              cert("Example", UDID, k, ca->cert, ca->key, 0, NULL, NULL,
                   EVP_sha256(), 0x3002), NULL, NULL);
    write_pem("tests/fuzz/pki/identity.key", NULL, NULL, k);
    k = p256();
    x = cert("scep-fuzz", "Fuzz CSR CA", k, NULL, NULL, 1, NULL, NULL,
             EVP_sha256(), 0x4001);
    write_pem("tests/fuzz/pki/csr-ca.pem", x, NULL, NULL);
    write_pem("tests/fuzz/pki/csr-ca.key", NULL, NULL, k);
    write_pem("tests/fuzz/pki/csr-key.pem", NULL, NULL, p256());
}

/* ------------------------------------------------------------------ */
/* messages                                                            */

/* A CSR; exts: "name", "value" pairs as for openssl req, NULL-ended. */
static void csr(EVP_PKEY *key, const char *cn, const char *challenge,
                const char *const *exts, const EVP_MD *md,
                const unsigned char **der, apr_size_t *len)
{
    X509_REQ *req = scep_track_req(p, X509_REQ_new());
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
    X509V3_CTX ctx;
    unsigned char *buf = NULL;
    int i, n;

    if (cn) {
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   (const unsigned char *)"scep-fuzz", -1,
                                   -1, 0);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)cn, -1, -1, 0);
    }
    X509_REQ_set_subject_name(req, name);
    X509_NAME_free(name);
    X509_REQ_set_pubkey(req, key);
    if (challenge) {
        X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
                                  MBSTRING_ASC,
                                  (const unsigned char *)challenge, -1);
    }
    X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
    for (i = 0; exts && exts[i]; i += 2) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i], exts[i + 1]);
        if (!e) {
            die(exts[i + 1]);
        }
        sk_X509_EXTENSION_push(sk, e);
    }
    if (sk_X509_EXTENSION_num(sk) > 0) {
        X509_REQ_add_extensions(req, sk);
    }
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    if (X509_REQ_sign(req, key, md) <= 0
        || (n = i2d_X509_REQ(req, &buf)) <= 0) {
        die("csr");
    }
    *der = apr_pmemdup(p, buf, (apr_size_t)n);
    *len = (apr_size_t)n;
    OPENSSL_free(buf);
}

static void ias(X509 *issuer, X509 *of, const unsigned char **der,
                apr_size_t *len)
{
    PKCS7_ISSUER_AND_SERIAL *x = PKCS7_ISSUER_AND_SERIAL_new();
    unsigned char *buf = NULL;
    int n;

    X509_NAME_set(&x->issuer, X509_get_subject_name(issuer));
    ASN1_INTEGER_free(x->serial);
    x->serial = ASN1_INTEGER_dup(X509_get0_serialNumber(of));
    if ((n = i2d_PKCS7_ISSUER_AND_SERIAL(x, &buf)) <= 0) {
        die("ias");
    }
    *der = apr_pmemdup(p, buf, (apr_size_t)n);
    *len = (apr_size_t)n;
    OPENSSL_free(buf);
    PKCS7_ISSUER_AND_SERIAL_free(x);
}

static void request(int type, const char *txid, const unsigned char *data,
                    apr_size_t len, X509 *signer, EVP_PKEY *key, int cipher,
                    int digest, int kt, const unsigned char **der,
                    apr_size_t *dlen)
{
    scep_request_t r;

    memset(&r, 0, sizeof(r));
    r.message_type = type;
    r.transaction_id = txid;
    r.data = data;
    r.data_len = len;
    r.signer = signer;
    r.signer_key = key;
    r.recipient = fuzz_captured_ca()->decrypt_cert;
    r.cipher_nid = cipher;
    r.digest_nid = digest;
    r.key_transport = kt;
    if (APR_SUCCESS != scep_request_build(p, &r, der, dlen)) {
        die("request");
    }
}

/* The CertRep the server gives for a request. */
static void certrep(const unsigned char *req, apr_size_t len, int legacy,
                    int manual, unsigned state,
                    const unsigned char **der, apr_size_t *dlen)
{
    scep_pkiop_cfg_t cfg;
    scep_pkiop_reply_t reply;

    memset(&cfg, 0, sizeof(cfg));
    cfg.ca = fuzz_captured_ca();
    cfg.challenge_password = FUZZ_STATIC_CHALLENGE;
    cfg.min_key_size = 1024;
    cfg.allow_legacy = legacy;
    cfg.approval_manual = manual;
    if (APR_SUCCESS != scep_pkiop_handle(p, scep_log_null(), &cfg,
                                         fuzz_store(p, state),
                                         req, len, &reply)
        || reply.kind != SCEP_OUTCOME_OK) {
        die("certrep");
    }
    *der = reply.body;
    *dlen = reply.len;
}

static const char *b64(const unsigned char *d, apr_size_t n)
{
    char *s = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)n));

    apr_base64_encode_binary(s, d, (int)n);
    return s;
}

/* Percent-escapes '+', '/' and '=' as most clients do. */
static const char *url_escape(const char *s)
{
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;

    for (; *s; ++s) {
        if (*s == '+' || *s == '/' || *s == '=') {
            o += sprintf(o, "%%%02X", (unsigned char)*s);
        }
        else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static const char *b64url_nopad(const char *s)
{
    char *out = apr_pstrdup(p, s), *c;

    for (c = out; *c; ++c) {
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    }
    while (c > out && c[-1] == '=') {
        *--c = '\0';
    }
    return out;
}

/* base64 with a line break every 64 characters, as sscep sends it */
static const char *b64_lines(const char *s)
{
    char *out = apr_palloc(p, strlen(s) * 2 + 1), *o = out;
    apr_size_t i;

    for (i = 0; s[i]; ++i) {
        if (i && i % 64 == 0) {
            o += sprintf(o, "%%0A");
        }
        *o++ = s[i];
    }
    *o = '\0';
    return url_escape(out);
}

static const char *pem(const char *label, const unsigned char *d,
                       apr_size_t n)
{
    const char *s = b64(d, n);
    char *out = apr_palloc(p, strlen(s) * 2 + 128), *o = out;
    apr_size_t i;

    o += sprintf(o, "-----BEGIN %s-----\n", label);
    for (i = 0; s[i]; ++i) {
        *o++ = s[i];
        if (i % 64 == 63) {
            *o++ = '\n';
        }
    }
    o += sprintf(o, "\n-----END %s-----\n", label);
    return out;
}

static void der_of_cert(X509 *x, const unsigned char **d, apr_size_t *n)
{
    if (APR_SUCCESS != scep_cert_der(p, x, d, n)) {
        die("cert der");
    }
}

/* ------------------------------------------------------------------ */
/* OTA                                                                 */

static const char *plist_xml(plist_t node, apr_size_t *len)
{
    char *xml = NULL;
    uint32_t n = 0;
    const char *out;

    plist_to_xml(node, &xml, &n);
    out = apr_pstrmemdup(p, xml, n);
    *len = n;
    free(xml);
    return out;
}

static const char *plist_bin(plist_t node, apr_size_t *len)
{
    char *bin = NULL;
    uint32_t n = 0;
    const char *out;

    plist_to_bin(node, &bin, &n);
    out = apr_pmemdup(p, bin, n);
    *len = n;
    free(bin);
    return out;
}

static plist_t device_attrs(const char *udid, const char *challenge,
                            int challenge_as_data)
{
    plist_t d = plist_new_dict();

    if (udid) {
        plist_dict_set_item(d, "UDID", plist_new_string(udid));
    }
    if (challenge && challenge_as_data) {
        plist_dict_set_item(d, "CHALLENGE",
                            plist_new_data(challenge, strlen(challenge)));
    }
    else if (challenge) {
        plist_dict_set_item(d, "CHALLENGE", plist_new_string(challenge));
    }
    plist_dict_set_item(d, "VERSION", plist_new_string("21A329"));
    plist_dict_set_item(d, "PRODUCT", plist_new_string("iPhone14,2"));
    plist_dict_set_item(d, "SERIAL", plist_new_string("F2LXK0AAPLJY"));
    plist_dict_set_item(d, "IMEI", plist_new_string("35 123456 789012 3"));
    plist_dict_set_item(d, "MEID", plist_new_string("35123456789012"));
    plist_dict_set_item(d, "DEVICE_NAME", plist_new_string("Fuzz's iPhone"));
    return d;
}

static void ota_signed(const char *name, int mode, X509 *signer,
                       EVP_PKEY *key, X509 *chain1, const void *content,
                       apr_size_t clen)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    BIO *in = BIO_new_mem_buf(content, (int)clen);
    CMS_ContentInfo *cms;
    unsigned char *buf = NULL;
    int n;

    if (chain1) {
        sk_X509_push(chain, chain1);
    }
    if (!(cms = CMS_sign(signer, key, chain, in, CMS_BINARY))
        || (n = i2d_CMS_ContentInfo(cms, &buf)) <= 0) {
        die("ota sign");
    }
    put("ota", name, mode, buf, (apr_size_t)n);
    OPENSSL_free(buf);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    sk_X509_free(chain);
}

/* A binary plist {"UDID": a1} where array i holds array i+1 twice: each
 * object is written once, but a parser that reads an object again at
 * every reference builds 2^depth arrays. 1-byte offsets and references. */
static const unsigned char *shared_arrays_bplist(int depth, apr_size_t *len)
{
    unsigned char *b = apr_pcalloc(p, 512), *t;
    unsigned char offs[256];
    apr_size_t pos = 8, table;
    int i, n = 0;

    memcpy(b, "bplist00", 8);
    offs[n++] = (unsigned char)pos;
    memcpy(b + pos, "\xd1\x01\x02", 3);
    pos += 3;
    offs[n++] = (unsigned char)pos;
    memcpy(b + pos, "\x54UDID", 5);
    pos += 5;
    for (i = 0; i < depth; ++i) {
        offs[n++] = (unsigned char)pos;      /* object n - 1 holds n */
        b[pos++] = 0xa2;
        b[pos++] = (unsigned char)n;
        b[pos++] = (unsigned char)n;
    }
    offs[n++] = (unsigned char)pos;
    b[pos++] = 0xa0;
    table = pos;
    memcpy(b + pos, offs, (apr_size_t)n);
    pos += (apr_size_t)n;
    t = b + pos;
    t[6] = 1;
    t[7] = 1;
    t[15] = (unsigned char)n;
    t[31] = (unsigned char)table;
    *len = pos + 32;
    return b;
}

/* Phase 2 and Phase 3 as POSTed, and their signed content alone. */
static void seeds_ota_signed(void)
{
    X509 *device = fuzz_load_cert("tests/fuzz/pki/device.pem");
    EVP_PKEY *device_key = fuzz_load_key("tests/fuzz/pki/device.key");
    X509 *devca = fuzz_load_cert("tests/fuzz/pki/device-ca.pem");
    X509 *identity = fuzz_load_cert("tests/fuzz/pki/identity.pem");
    EVP_PKEY *identity_key = fuzz_load_key("tests/fuzz/pki/identity.key");
    plist_t d = device_attrs(UDID, FUZZ_PHASE1_CHALLENGE, 0);
    apr_size_t n, bn;
    const char *xml = plist_xml(d, &n), *bin = plist_bin(d, &bn);

    plist_free(d);
    /* raw POST bodies */
    ota_signed("phase2.der", 0, device, device_key, devca, xml, n);
    ota_signed("phase2-user.der", 4, device, device_key, devca, xml, n);
    ota_signed("phase2-binary.der", 0, device, device_key, devca, bin, bn);
    ota_signed("phase3.der", 0, identity, identity_key,
               fuzz_captured_ca()->cert, xml, n);
    ota_signed("foreign.der", 0, fuzz_client_selfsigned(), fuzz_client_key(),
               NULL, xml, n);
    /* signed content, signed by the target */
    put("ota", "phase2.xml", 1, xml, n);
    put("ota", "phase2-user.xml", 5, xml, n);
    put("ota", "phase2-nochain.xml", 9, xml, n);
    put("ota", "phase2.bplist", 1, bin, bn);
    put("ota", "phase3.xml", 2, xml, n);
    put("ota", "phase3.bplist", 2, bin, bn);
    put("ota", "foreign.xml", 3, xml, n);
}

/* Phase 2 attributes as XML, under name. */
static void put_attrs(const char *name, const char *udid,
                      const char *challenge, int as_data)
{
    plist_t d = device_attrs(udid, challenge, as_data);
    apr_size_t n;
    const char *xml = plist_xml(d, &n);

    put("ota", name, 1, xml, n);
    plist_free(d);
}

/* An array eight deep. */
static plist_t nested_arrays(void)
{
    plist_t deep = plist_new_array(), a = deep;
    int i;

    for (i = 0; i < 8; ++i) {
        plist_t inner = plist_new_array();
        plist_array_append_item(a, inner);
        a = inner;
    }
    return deep;
}

static void add_keys(plist_t d, int from, int to)
{
    int i;

    for (i = from; i < to; ++i) {
        plist_dict_set_item(d, apr_psprintf(p, "K%02d", i),
                            plist_new_string("v"));
    }
}

/* values of other types, nesting, many keys */
static void seeds_ota_types(void)
{
    plist_t d = device_attrs(UDID, FUZZ_PHASE1_CHALLENGE, 0);
    const char *xml, *bin;
    apr_size_t n, bn;

    plist_dict_set_item(d, "NESTED", nested_arrays());
    plist_dict_set_item(d, "COUNT", plist_new_uint(42));
    plist_dict_set_item(d, "FLAG", plist_new_bool(1));
    plist_dict_set_item(d, "REAL", plist_new_real(1.5));
    plist_dict_set_item(d, "WHEN", plist_new_date(0, 0));
    add_keys(d, 0, 50);
    xml = plist_xml(d, &n);
    bin = plist_bin(d, &bn);
    put("ota", "phase2-types.xml", 1, xml, n);
    put("ota", "phase2-types.bplist", 1, bin, bn);
    add_keys(d, 50, 70);
    xml = plist_xml(d, &n);
    put("ota", "phase2-too-many.xml", 1, xml, n);
    plist_free(d);
}

static void seeds_ota(void)
{
    plist_t a;
    const char *xml, *bin;
    apr_size_t n, bn;

    seeds_ota_signed();
    put_attrs("phase2-challenge-data.xml", UDID, FUZZ_PHASE1_CHALLENGE, 1);
    put_attrs("phase2-no-udid.xml", NULL, FUZZ_PHASE1_CHALLENGE, 0);
    put_attrs("phase2-bad-udid.xml", "../../etc/passwd%00<script>", "wrong",
              0);
    seeds_ota_types();
    a = plist_new_array();
    plist_array_append_item(a, plist_new_string(UDID));
    xml = plist_xml(a, &n);
    put("ota", "phase2-array.xml", 1, xml, n);
    plist_free(a);
    /* shared containers: 2^24 nodes if parsed as libplist parses them */
    bin = (const char *)shared_arrays_bplist(24, &bn);
    put("ota", "phase2-shared-arrays.bplist", 1, bin, bn);
    put("ota", "phase3-shared-arrays.bplist", 2, bin, bn);
}

/* ------------------------------------------------------------------ */
/* SCEP                                                                */

static const char *const sans[] = {
    "subjectAltName",
    "DNS:fuzz.example,email:fuzz@example.org,IP:192.0.2.1,IP:2001:db8::1,"
    "URI:https://fuzz.example/,RID:1.2.3.4,dirName:dir_sect",
    NULL
};
static const char *const sans_simple[] = {
    "subjectAltName", "DNS:fuzz.example,DNS:*.fuzz.example,"
    "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:fuzz@example.org",
    NULL
};
static const char *const greedy[] = {
    "basicConstraints", "critical,CA:TRUE,pathlen:3",
    "keyUsage", "critical,keyCertSign,cRLSign,digitalSignature",
    "extendedKeyUsage", "serverAuth,codeSigning,OCSPSigning",
    "subjectAltName", "DNS:fuzz.example",
    "nameConstraints", "permitted;DNS:example.org",
    NULL
};

/* A DER blob. */
typedef struct {
    const unsigned char *d;
    apr_size_t n;
} blob_t;

/* The CSRs the PKIOperation seeds carry. */
typedef struct {
    blob_t onetime;      /* with the one-time challenge */
    blob_t sans;         /* static challenge, simple SANs */
    blob_t nosubject;    /* the same without a subject */
    blob_t greedy;       /* asks for CA powers, SHA-1 */
    blob_t small;        /* RSA-1024 */
    blob_t ias;          /* IssuerAndSerial of the issued certificate */
} scep_seeds_t;

/* the captured requests: POST, GET, decode, and their CSRs */
static void seeds_captured(const scep_ca_t *ca)
{
    static const char *const captured[] = {
        "sscep-pkcsreq.der", "certmonger-pkcsreq.der",
        "scepclient-pkcsreq.der", "micromdm-certrep-for-sscep.der"
    };
    const unsigned char *d;
    apr_size_t n;
    scep_pkimsg_t *msg;
    const char *q;
    int i;

    for (i = 0; i < 4; ++i) {
        read_file(apr_pstrcat(p, "tests/data/captured/", captured[i], NULL),
                  &d, &n);
        put("pkiop_post", captured[i], 0x01, d, n);
        put("decode", captured[i], i == 3 ? 2 : 1, d, n);
        if (i < 3 && APR_SUCCESS == scep_pkimsg_parse(p, d, n, &msg)
            && APR_SUCCESS == scep_pkimsg_decrypt(p, msg, ca->decrypt_key, 1)) {
            put("csr", captured[i], -1, msg->data, msg->data_len);
            put2("pkiop_post", apr_pstrcat(p, "wrap-", captured[i], NULL),
                 0x03, 0x00, 0x20, msg->data, msg->data_len);
        }
        if (i == 1) {
            q = apr_pstrcat(p, "operation=PKIOperation&message=",
                            url_escape(b64(d, n)), NULL);
            put("pkiop_get", "certmonger.query", -1, q, strlen(q));
        }
        if (i == 0) {
            q = apr_pstrcat(p, "operation=PKIOperation&message=",
                            b64_lines(b64(d, n)), NULL);
            put("pkiop_get", "sscep-lines.query", -1, q, strlen(q));
        }
    }
}

/* The CSRs of ss, each also written as a seed, and a few more. */
static void seeds_csrs(scep_seeds_t *ss)
{
    EVP_PKEY *client = fuzz_client_key(), *small = rsa(1024), *ec = p256();
    const unsigned char *d;
    apr_size_t n;

    csr(client, "fuzz-client", FUZZ_ONETIME_CHALLENGE, NULL, EVP_sha256(),
        &ss->onetime.d, &ss->onetime.n);
    csr(client, "fuzz-client", FUZZ_STATIC_CHALLENGE, sans_simple,
        EVP_sha256(), &ss->sans.d, &ss->sans.n);
    csr(client, NULL, FUZZ_STATIC_CHALLENGE, sans_simple, EVP_sha256(),
        &ss->nosubject.d, &ss->nosubject.n);
    csr(client, "fuzz-client", FUZZ_STATIC_CHALLENGE, greedy, EVP_sha1(),
        &ss->greedy.d, &ss->greedy.n);
    put("csr", "onetime.der", -1, ss->onetime.d, ss->onetime.n);
    csr(client, "fuzz-client", FUZZ_BOUND_CHALLENGE, NULL, EVP_sha256(), &d,
        &n);
    put2("pkiop_post", "wrap-pkcsreq-bound.der", 0x02, 0x00, 0x00, d, n);
    csr(client, "someone-else", FUZZ_BOUND_CHALLENGE, NULL, EVP_sha256(), &d,
        &n);
    put2("pkiop_post", "wrap-pkcsreq-bound-other.der", 0x02, 0x00, 0x20, d, n);
    put("csr", "sans.der", -1, ss->sans.d, ss->sans.n);
    put("csr", "empty-subject.der", -1, ss->nosubject.d, ss->nosubject.n);
    put("csr", "greedy.der", -1, ss->greedy.d, ss->greedy.n);
    csr(ec, "fuzz-ec", "\xc3\xa9t\xc3\xa9", sans_simple, EVP_sha384(), &d, &n);
    put("csr", "ec-utf8-challenge.der", -1, d, n);
    csr(small, "fuzz-small", FUZZ_STATIC_CHALLENGE, NULL, EVP_sha256(),
        &ss->small.d, &ss->small.n);
    put("csr", "rsa1024.der", -1, ss->small.d, ss->small.n);
}

/* dirName SANs need a section: the extensions built through a config */
static STACK_OF(X509_EXTENSION) *all_sans(CONF *conf, X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *e;
    X509V3_CTX ctx;
    long eline;
    BIO *cb = BIO_new_mem_buf("[dir_sect]\nC=US\nO=Fuzz\nCN=dir\n", -1);

    NCONF_load_bio(conf, cb, &eline);
    BIO_free(cb);
    X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
    X509V3_set_nconf(&ctx, conf);
    if (!(e = X509V3_EXT_nconf(conf, &ctx, sans[0], sans[1]))) {
        die("dirName");
    }
    sk_X509_EXTENSION_push(sk, e);
    return sk;
}

/* a UTF8String challenge, as some clients send it */
static void utf8_challenge(X509_REQ *req)
{
    ASN1_UTF8STRING *u = ASN1_UTF8STRING_new();

    ASN1_STRING_set(u, FUZZ_STATIC_CHALLENGE, -1);
    X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
                              V_ASN1_UTF8STRING, (const unsigned char *)u,
                              -1);
    ASN1_UTF8STRING_free(u);
}

/* A CSR with every kind of SAN. */
static void seeds_all_sans(void)
{
    EVP_PKEY *client = fuzz_client_key();
    CONF *conf = NCONF_new(NULL);
    X509_REQ *req = scep_track_req(p, X509_REQ_new());
    STACK_OF(X509_EXTENSION) *sk;
    unsigned char *buf = NULL;
    apr_size_t n;

    X509_REQ_set_pubkey(req, client);
    sk = all_sans(conf, req);
    X509_REQ_add_extensions(req, sk);
    utf8_challenge(req);
    X509_REQ_sign(req, client, EVP_sha256());
    n = (apr_size_t)i2d_X509_REQ(req, &buf);
    put("csr", "all-sans.der", -1, buf, n);
    put2("pkiop_post", "wrap-all-sans.der", 0x02, 0x00, 0x20, buf, n);
    OPENSSL_free(buf);
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    NCONF_free(conf);
}

static void wrap(const char *name, int flags, int alg, int state,
                 const blob_t *b)
{
    put2("pkiop_post", name, flags, alg, state, b->d, b->n);
}

/* structured PKIOperations: [flags][alg][state] messageData */
static void seeds_wrapped(const scep_seeds_t *ss)
{
    int i;

    wrap("wrap-pkcsreq.der", 0x02, 0x00, 0x00, &ss->onetime);
    wrap("wrap-pkcsreq-manual.der", 0x06, 0x00, 0x00, &ss->onetime);
    wrap("wrap-pkcsreq-sans.der", 0x02, 0x10, 0x00, &ss->sans);
    wrap("wrap-pkcsreq-nosubject.der", 0x02, 0x20, 0x30, &ss->nosubject);
    wrap("wrap-pkcsreq-greedy.der", 0x02, 0x40, 0x00, &ss->greedy);
    wrap("wrap-pkcsreq-des-md5.der", 0x03, 0xf0, 0x00, &ss->onetime);
    wrap("wrap-renewal.der", 0x02, 0x09, 0x00, &ss->sans);
    wrap("wrap-renewal-revoked.der", 0x02, 0x09, 0x08, &ss->sans);
    wrap("wrap-pkcsreq-pending.der", 0x02, 0x00, 0x01, &ss->onetime);
    for (i = 0; i < 4; ++i) {
        wrap(apr_psprintf(p, "wrap-certpoll-%d.der", i), 0x02, 0x02,
             0x01 | (i << 1), &ss->ias);
    }
    wrap("wrap-certpoll-issued.der", 0x02, 0x0a, 0x00, &ss->ias);
    wrap("wrap-getcert.der", 0x02, 0x03, 0x00, &ss->ias);
    wrap("wrap-getcrl-revoked.der", 0x02, 0x04, 0x08, &ss->ias);
    wrap("wrap-certrep.der", 0x02, 0x05, 0x00, &ss->onetime);
    wrap("wrap-resign-small.der", 0x02, 0x00, 0x60, &ss->small);
}

/* A PKIOperation of the fuzz client's key, signed with signer. */
static void raw(int type, const char *txid, const blob_t *data, X509 *signer,
                int cipher, int digest, int kt, blob_t *out)
{
    request(type, txid, data->d, data->n, signer, fuzz_client_key(), cipher,
            digest, kt, &out->d, &out->n);
}

/* raw PKCSReqs, and what the server answers to them */
static void seeds_raw_pkcsreq(const scep_seeds_t *ss, X509 *self)
{
    blob_t r, rep;
    const char *q;

    raw(SCEP_MSG_PKCSREQ, "fuzz-oaep", &ss->onetime, self, NID_aes_256_cbc,
        NID_sha512, SCEP_KT_OAEP, &r);
    put("pkiop_post", "pkcsreq-oaep.der", 0x00, r.d, r.n);
    certrep(r.d, r.n, 0, 0, 0, &rep.d, &rep.n);
    put("decode", "certrep-success.der", 3, rep.d, rep.n);
    put("decode", "certrep-success.pem", 3, pem("PKCS7", rep.d, rep.n),
        strlen(pem("PKCS7", rep.d, rep.n)));
    q = apr_pstrcat(p, "operation=PKIOperation&message=",
                    b64url_nopad(b64(r.d, r.n)), NULL);
    put("pkiop_get", "oaep-b64url.query", -1, q, strlen(q));
    raw(SCEP_MSG_PKCSREQ, "fuzz-des", &ss->sans, self, NID_des_cbc, NID_md5,
        SCEP_KT_PKCS1, &r);
    put("pkiop_post", "pkcsreq-des-md5.der", 0x01, r.d, r.n);
    certrep(r.d, r.n, 0, 0, 0, &rep.d, &rep.n);
    put("decode", "certrep-badalg.der", 0, rep.d, rep.n);
    raw(SCEP_MSG_PKCSREQ, "fuzz-manual", &ss->sans, self, NID_des_ede3_cbc,
        NID_sha1, SCEP_KT_PKCS1, &r);
    put("pkiop_post", "pkcsreq-manual.der", 0x04, r.d, r.n);
    certrep(r.d, r.n, 0, 1, 0, &rep.d, &rep.n);
    put("decode", "certrep-pending.der", 0, rep.d, rep.n);
}

/* the other raw message types */
static void seeds_raw_others(const scep_seeds_t *ss, X509 *self,
                             X509 *issued)
{
    blob_t r, rep;
    const char *q;

    raw(SCEP_MSG_RENEWALREQ, "fuzz-renew", &ss->sans, issued,
        NID_aes_128_cbc, NID_sha256, SCEP_KT_PKCS1, &r);
    put("pkiop_post", "renewal.der", 0x00, r.d, r.n);
    raw(SCEP_MSG_CERTPOLL, FUZZ_TXID_PENDING, &ss->ias, self,
        NID_aes_128_cbc, NID_sha256, SCEP_KT_PKCS1, &r);
    put("pkiop_post", "certpoll.der", 0x00, r.d, r.n);
    raw(SCEP_MSG_GETCERT, "fuzz-getcert", &ss->ias, issued, NID_aes_128_cbc,
        NID_sha256, SCEP_KT_PKCS1, &r);
    put("pkiop_post", "getcert.der", 0x00, r.d, r.n);
    raw(SCEP_MSG_GETCRL, "fuzz-getcrl", &ss->ias, issued, NID_aes_128_cbc,
        NID_sha256, SCEP_KT_PKCS1, &r);
    put("pkiop_post", "getcrl.der", 0x00, r.d, r.n);
    certrep(r.d, r.n, 0, 0, 0x08, &rep.d, &rep.n);
    put("decode", "certrep-crl.der", 3, rep.d, rep.n);
    q = apr_pstrcat(p, "message=", url_escape(b64(r.d, r.n)),
                    "&operation=PKIOperation", NULL);
    put("pkiop_get", "getcrl-reversed.query", -1, q, strlen(q));
    raw(99, "fuzz-unknown", &ss->onetime, self, NID_aes_128_cbc, NID_sha256,
        SCEP_KT_PKCS1, &r);
    put("pkiop_post", "unknown-type.der", 0x00, r.d, r.n);
    certrep(r.d, r.n, 0, 0, 0, &rep.d, &rep.n);
    put("decode", "certrep-badrequest.der", 0, rep.d, rep.n);
}

/* other GET queries */
static void seeds_queries(void)
{
    static const char *const qs[] = {
        "operation=GetCACaps",
        "operation=GetCACert&message=CA",
        "operation=GetNextCACert",
        "operation=%50KIOperation&message=MIAGCSqGSIb3DQEHAqCAMIACAQEx%0AAA",
        "OPERATION=pkioperation&MESSAGE=MA%3D%3D&operation=GetCACaps",
        "operation=PKIOperation&message=",
        "operation=PKIOperation&message=%ZZ%",
    };
    int i;

    for (i = 0; i < (int)(sizeof(qs) / sizeof(qs[0])); ++i) {
        put("pkiop_get", "other.query", -1, qs[i], strlen(qs[i]));
    }
}

/* decode: certificates, CSRs, bundles, base64 */
static void seeds_decode(const scep_ca_t *ca, const scep_seeds_t *ss)
{
    const unsigned char *d;
    apr_size_t n;

    der_of_cert(fuzz_client_issued(), &d, &n);
    put("decode", "cert.der", 0, d, n);
    put("decode", "cert.pem", 0, pem("CERTIFICATE", d, n),
        strlen(pem("CERTIFICATE", d, n)));
    put("decode", "csr.pem", 0, pem("CERTIFICATE REQUEST", ss->sans.d,
                                    ss->sans.n),
        strlen(pem("CERTIFICATE REQUEST", ss->sans.d, ss->sans.n)));
    put("decode", "csr.b64", 1, b64(ss->greedy.d, ss->greedy.n),
        strlen(b64(ss->greedy.d, ss->greedy.n)));
    put("decode", "getcacert.der", 0, ca->getcacert_body, ca->getcacert_len);
}

/* A file of the tree as a seed of the cert target. */
static void put_file(const char *name, const char *rel)
{
    const unsigned char *d;
    apr_size_t n;

    read_file(rel, &d, &n);
    put("cert", name, -1, d, n);
}

/* an RA certificate, alone and in a PEM file with other things */
static void seeds_ra(const scep_ca_t *ca)
{
    X509 *ra = cert("scep-fuzz", "Fuzz RA", fuzz_client_key(), ca->cert,
                    ca->key, 0, NULL, NULL, EVP_sha256(), 0x5001);
    const unsigned char *rd;
    apr_size_t rl;
    char *mixed;

    der_of_cert(ra, &rd, &rl);
    put("cert", "ra.der", -1, rd, rl);
    mixed = apr_pstrcat(p, "junk before\n", pem("CERTIFICATE", rd, rl),
                        "# a comment\n", pem("X509 CRL", rd, 16), NULL);
    put("cert", "mixed.pem", -1, mixed, strlen(mixed));
}

/* certificate files */
static void seeds_cert_files(const scep_ca_t *ca)
{
    const unsigned char *d;
    apr_size_t n;
    unsigned char *b;

    put_file("ca.pem", "tests/data/captured/ca.pem");
    der_of_cert(ca->cert, &d, &n);
    put("cert", "ca.der", -1, d, n);
    put_file("chain.pem", "tests/fuzz/pki/ota-signer.pem");
    put_file("device-ca.pem", "tests/fuzz/pki/device-ca.pem");
    put_file("ec.key", "tests/fuzz/pki/csr-ca.key");
    put_file("rsa.key", "tests/fuzz/pki/device.key");
    seeds_ra(ca);
    put("cert", "certs-only.der", -1, ca->getcacert_body, ca->getcacert_len);
    b = apr_palloc(p, 64);
    memset(b, 0, 64);
    put("cert", "zeros.bin", -1, b, 64);
}

static void seeds_scep(void)
{
    const scep_ca_t *ca = fuzz_captured_ca();
    X509 *self = fuzz_client_selfsigned(), *issued = fuzz_client_issued();
    scep_seeds_t ss;

    memset(&ss, 0, sizeof(ss));
    seeds_captured(ca);
    seeds_csrs(&ss);
    seeds_all_sans();
    ias(ca->cert, issued, &ss.ias.d, &ss.ias.n);
    seeds_wrapped(&ss);
    seeds_raw_pkcsreq(&ss, self);
    seeds_raw_others(&ss, self, issued);
    seeds_queries();
    seeds_decode(ca, &ss);
    seeds_cert_files(ca);
}

int main(int argc, char **argv)
{
    fuzz_init();
    p = fuzz_root();
    if ((argc > 1 && !strcmp(argv[1], "--pki"))
        || access(fuzz_path("tests/fuzz/pki/identity.pem"), R_OK) != 0) {
        make_pki();
        printf("gen_seeds: wrote tests/fuzz/pki\n");
    }
    seeds_scep();
    seeds_ota();
    printf("gen_seeds: wrote %d seeds under tests/fuzz/corpus\n", seq);
    return 0;
}
