#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "testscep.h"
#include "scep-ota-client.h"
#include "scep_ota/scep_crypt.h"

void ts_load_legacy(void)
{
    const char *err = NULL;

    /* as the module does: single DES in a library context of its own, the
     * default context left without it */
    ck_assert_int_eq(scep_crypt_enable_legacy(tpool, &err), APR_SUCCESS);
}

const char *ts_path(const char *name)
{
    const char *top = getenv("top_srcdir");

    return apr_pstrcat(tpool, top ? top : ".", "/tests/data/captured/", name,
                       NULL);
}

void ts_read(const char *name, const unsigned char **der, apr_size_t *len)
{
    FILE *f = fopen(ts_path(name), "rb");
    unsigned char *buf = apr_palloc(tpool, 65536);

    ck_assert_ptr_nonnull(f);
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    ck_assert_uint_gt(*len, 0);
    *der = buf;
}

EVP_PKEY *ts_load_key(const char *name)
{
    apr_array_header_t *keys;
    const char *err = NULL;

    ck_assert_int_eq(scep_load_keys(tpool, ts_path(name), &keys, &err),
                     APR_SUCCESS);
    return APR_ARRAY_IDX(keys, 0, EVP_PKEY *);
}

static scep_ca_t *the_ca;

void ts_setup(void)
{
    tpool_setup();
    ts_load_legacy();
    the_ca = NULL;
}

void ts_teardown(void)
{
    the_ca = NULL;
    tpool_teardown();
}

static scep_ca_t *load_ca(void)
{
    scep_ca_material_t m;
    scep_ca_t *ca = NULL;
    const char *err = NULL, *warn = NULL;

    memset(&m, 0, sizeof(m));
    m.ca_cert_file = ts_path("ca.pem");
    m.ca_key_file = ts_path("ca.key");
    ck_assert_int_eq(scep_load_certs(tpool, m.ca_cert_file, &m.ca_certs, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(scep_load_keys(tpool, m.ca_key_file, &m.ca_keys, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    return ca;
}

scep_ca_t *ts_ca(void)
{
    if (!the_ca) {
        the_ca = load_ca();
    }
    return the_ca;
}

void ts_csr(EVP_PKEY *key, const char *cn, const char *challenge,
            const char *exts[][2], const unsigned char **der, apr_size_t *len)
{
    X509_NAME *name = X509_NAME_new();
    const char **flat;
    scep_cli_csr_t s;
    int i, n;

    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               (const unsigned char *)"scep-unit", -1, -1, 0);
    if (cn) {
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)cn, -1, -1, 0);
    }
    for (n = 0; exts && exts[n][0]; ++n) {
    }
    flat = apr_pcalloc(tpool, sizeof(*flat) * (apr_size_t)(2 * n + 1));
    for (i = 0; i < n; ++i) {
        flat[2 * i] = exts[i][0];
        flat[2 * i + 1] = exts[i][1];
    }
    memset(&s, 0, sizeof(s));
    s.subject = name;
    s.key = key;
    s.challenge = challenge;
    s.exts = flat;
    *der = scep_cli_csr_der(tpool, scep_cli_csr(tpool, &s), len);
    X509_NAME_free(name);
    ck_assert_ptr_nonnull(*der);
}

X509 *ts_selfsigned(EVP_PKEY *key, const char *cn)
{
    tu_cert_opts_t o = { cn, 0, 0x80 | 0x20 };

    return scep_track_x509(tpool, tu_cert(&o, key, NULL, NULL));
}

void ts_request(int type, const char *txid, const unsigned char *data,
                apr_size_t len, X509 *signer, EVP_PKEY *key, int cipher,
                int digest, const unsigned char **der, apr_size_t *dlen)
{
    scep_request_t r;

    memset(&r, 0, sizeof(r));
    r.message_type = type;
    r.transaction_id = txid;
    r.data = data;
    r.data_len = len;
    r.signer = signer;
    r.signer_key = key;
    r.recipient = ts_ca()->decrypt_cert;
    r.cipher_nid = cipher;
    r.digest_nid = digest;
    ck_assert_int_eq(scep_request_build(tpool, &r, der, dlen), APR_SUCCESS);
}

scep_pkimsg_t *ts_certrep(const unsigned char *der, apr_size_t len,
                          EVP_PKEY *key)
{
    scep_pkimsg_t *m = NULL;

    ck_assert_int_eq(scep_pkimsg_parse(tpool, der, len, &m), APR_SUCCESS);
    ck_assert(m->signature_ok);
    ck_assert_int_eq(m->message_type, SCEP_MSG_CERTREP);
    ck_assert_ptr_nonnull(m->signer);
    ck_assert_int_eq(X509_cmp(m->signer, ts_ca()->sign_cert), 0);
    ck_assert_uint_eq(m->sender_nonce_len, SCEP_NONCE_LEN);
    if (key && m->pki_status == SCEP_STATUS_SUCCESS) {
        ck_assert_ptr_nonnull(m->envelope);
        ck_assert_int_eq(scep_pkimsg_decrypt(tpool, m, key, 1), APR_SUCCESS);
    }
    if (m->pki_status != SCEP_STATUS_SUCCESS) {
        ck_assert_ptr_null(m->envelope);
    }
    return m;
}

static PKCS7 *degenerate(scep_pkimsg_t *rep)
{
    const unsigned char *d = rep->data;
    PKCS7 *p7;

    ck_assert_ptr_nonnull(d);
    p7 = d2i_PKCS7(NULL, &d, (long)rep->data_len);
    ck_assert_ptr_nonnull(p7);
    ck_assert(PKCS7_type_is_signed(p7));
    return p7;
}

X509 *ts_certrep_cert(scep_pkimsg_t *rep)
{
    PKCS7 *p7 = degenerate(rep);
    X509 *x;

    ck_assert_int_ge(sk_X509_num(p7->d.sign->cert), 1);
    x = X509_dup(sk_X509_value(p7->d.sign->cert, 0));
    PKCS7_free(p7);
    return scep_track_x509(tpool, x);
}

X509_CRL *ts_certrep_crl(scep_pkimsg_t *rep)
{
    PKCS7 *p7 = degenerate(rep);
    X509_CRL *crl;

    ck_assert_int_ge(sk_X509_CRL_num(p7->d.sign->crl), 1);
    crl = X509_CRL_dup(sk_X509_CRL_value(p7->d.sign->crl, 0));
    PKCS7_free(p7);
    return scep_track_crl(tpool, crl);
}
