/* pkiMessage decoding, decrypting, building and printing. */

#include <string.h>

#include <apr_strings.h>
#include <apr_base64.h>
#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/rsa.h>

#include "testscep.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"

static const struct {
    const char *file, *txid;
    int digest, cipher;
} reqs[] = {
    { "sscep-pkcsreq.der", "20E572D41A6B4C8285E2F6D699A9CF3F", NID_sha256,
      NID_aes_128_cbc },
    { "certmonger-pkcsreq.der", "5719934813468359932880242742307357803524"
      "6899590516677383556528438175079837836", NID_sha256, NID_aes_256_cbc },
    { "scepclient-pkcsreq.der", "hK+J8zK+Fbrq+HFVOwWh0D/X77g=", NID_sha1,
      NID_des_cbc },
};

START_TEST(decode_captured_requests)
{
    const unsigned char *der;
    apr_size_t len;
    scep_pkimsg_t *m;
    X509_REQ *req;

    ts_read(reqs[_i].file, &der, &len);
    ck_assert_int_eq(scep_pkimsg_parse(tpool, der, len, &m), APR_SUCCESS);
    ck_assert(m->signature_ok);
    ck_assert(m->content_is_data);
    ck_assert_int_eq(m->message_type, SCEP_MSG_PKCSREQ);
    ck_assert_str_eq(m->transaction_id, reqs[_i].txid);
    ck_assert_uint_eq(m->sender_nonce_len, 16);
    ck_assert_ptr_null(m->recipient_nonce);
    ck_assert_int_eq(m->pki_status, -1);
    ck_assert_int_eq(m->digest_nid, reqs[_i].digest);
    ck_assert_int_eq(m->cipher_nid, reqs[_i].cipher);
    ck_assert_int_eq(m->key_transport, SCEP_KT_PKCS1);
    ck_assert_ptr_nonnull(m->signer);
    ck_assert_int_eq(scep_pkimsg_decrypt(tpool, m, ts_ca()->decrypt_key, 1),
                     APR_SUCCESS);
    ck_assert_int_eq(scep_csr_parse(tpool, m->data, m->data_len, &req),
                     APR_SUCCESS);
    ck_assert_str_eq(scep_csr_challenge(tpool, req), "peers-secret");
    /* the signer's key is the CSR's */
    ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(m->signer),
                                 X509_REQ_get0_pubkey(req)), 1);
}
END_TEST

START_TEST(single_des_needs_legacy)
{
    const unsigned char *der;
    apr_size_t len;
    scep_pkimsg_t *m;

    ts_read("scepclient-pkcsreq.der", &der, &len);
    ck_assert_int_eq(scep_pkimsg_parse(tpool, der, len, &m), APR_SUCCESS);
    ck_assert_int_eq(scep_pkimsg_decrypt(tpool, m, ts_ca()->decrypt_key, 0),
                     APR_ENOTIMPL);
    ck_assert(!scep_pkimsg_digest_allowed(NID_md5, 0));
    ck_assert(scep_pkimsg_digest_allowed(NID_md5, 1));
    ck_assert(!scep_pkimsg_cipher_allowed(NID_rc2_cbc, 1));
}
END_TEST

START_TEST(decode_micromdm_certrep)
{
    const unsigned char *der;
    apr_size_t len;
    scep_pkimsg_t *m;

    ts_read("micromdm-certrep-for-sscep.der", &der, &len);
    ck_assert_int_eq(scep_pkimsg_parse(tpool, der, len, &m), APR_SUCCESS);
    ck_assert(m->signature_ok);
    ck_assert_int_eq(m->message_type, SCEP_MSG_CERTREP);
    ck_assert_int_eq(m->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_int_eq(m->fail_info, SCEP_FAIL_NONE);
    ck_assert_str_eq(m->transaction_id, "154575E3AFD504520230326C30AA43A7");
    ck_assert_uint_eq(m->recipient_nonce_len, 16);
    ck_assert_int_eq(m->cipher_nid, NID_des_cbc);
    ck_assert_ptr_nonnull(m->signer);
    ck_assert_int_ge(m->certs->nelts, 1);
    /* it answers another sscep run (CN=sscep-5) than the captured request,
     * whose key is not in the fixtures: only the structure is checked */
    /* a key it is not for fails like any other decryption failure */
    ck_assert_int_eq(scep_pkimsg_decrypt(tpool, m,
                                         ts_load_key("sscep-pkcsreq.key"), 1),
                     APR_EGENERAL);
}
END_TEST

START_TEST(undecodable_input)
{
    static const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
    const unsigned char *der;
    apr_size_t len;
    scep_pkimsg_t *m;
    apr_array_header_t *certs = apr_array_make(tpool, 1, sizeof(X509 *));
    apr_size_t i;

    ck_assert_int_eq(scep_pkimsg_parse(tpool, junk, sizeof(junk), &m),
                     APR_EINVAL);
    ck_assert_int_eq(scep_pkimsg_parse(tpool, junk, 0, &m), APR_EINVAL);
    ts_read("sscep-pkcsreq.der", &der, &len);
    for (i = 1; i < len; i += 97) {
        scep_pkimsg_parse(tpool, der, i, &m); /* must not crash */
    }
    /* a certs-only bundle is a SignedData without signers */
    APR_ARRAY_PUSH(certs, X509 *) = ts_ca()->cert;
    ck_assert_int_eq(scep_degenerate_der(tpool, certs, NULL, &der, &len),
                     APR_SUCCESS);
    ck_assert_int_eq(scep_pkimsg_parse(tpool, der, len, &m), APR_EINVAL);
}
END_TEST

/* Finds a PrintableString of value in der: tag 0x13, short length. */
static int has_printable(const unsigned char *der, apr_size_t len,
                         const char *value)
{
    apr_size_t n = strlen(value), i;

    for (i = 0; i + 2 + n <= len; ++i) {
        if (der[i] == 0x13 && der[i + 1] == n
            && !memcmp(der + i + 2, value, n)) {
            return 1;
        }
    }
    return 0;
}

START_TEST(certrep_failure_roundtrip)
{
    static const unsigned char nonce[16] = "0123456789abcdef";
    scep_certrep_t rep;
    const unsigned char *der;
    apr_size_t len;
    scep_pkimsg_t *m;

    memset(&rep, 0, sizeof(rep));
    rep.transaction_id = "TXID-42";
    rep.recipient_nonce = nonce;
    rep.recipient_nonce_len = sizeof(nonce);
    rep.pki_status = SCEP_STATUS_FAILURE;
    rep.fail_info = SCEP_FAIL_BADCERTID;
    rep.fail_info_text = "no such certificate";
    rep.digest_nid = NID_sha1;
    ck_assert_int_eq(scep_certrep_build(tpool, ts_ca(), &rep, &der, &len),
                     APR_SUCCESS);
    ck_assert(has_printable(der, len, "TXID-42"));
    ck_assert(has_printable(der, len, "3"));
    ck_assert(has_printable(der, len, "2"));
    ck_assert(has_printable(der, len, "4"));
    m = ts_certrep(der, len, NULL);
    ck_assert_str_eq(m->transaction_id, "TXID-42");
    ck_assert_int_eq(m->pki_status, SCEP_STATUS_FAILURE);
    ck_assert_int_eq(m->fail_info, SCEP_FAIL_BADCERTID);
    ck_assert_str_eq(m->fail_info_text, "no such certificate");
    ck_assert_int_eq(m->digest_nid, NID_sha1);
    ck_assert(!memcmp(m->recipient_nonce, nonce, 16));
    /* PENDING: no failInfo, no envelope */
    rep.pki_status = SCEP_STATUS_PENDING;
    ck_assert_int_eq(scep_certrep_build(tpool, ts_ca(), &rep, &der, &len),
                     APR_SUCCESS);
    m = ts_certrep(der, len, NULL);
    ck_assert_int_eq(m->pki_status, SCEP_STATUS_PENDING);
    ck_assert_int_eq(m->fail_info, SCEP_FAIL_NONE);
    ck_assert_ptr_null(m->fail_info_text);
}
END_TEST

START_TEST(request_roundtrip_oaep)
{
    EVP_PKEY *k = tu_key(2048, 4);
    X509 *self = ts_selfsigned(k, "client");
    scep_request_t r;
    const unsigned char *der;
    apr_size_t len;
    scep_pkimsg_t *m;

    memset(&r, 0, sizeof(r));
    r.message_type = SCEP_MSG_GETCRL;
    r.transaction_id = "a b+c/d=e";
    r.data = (const unsigned char *)"hello";
    r.data_len = 5;
    r.signer = self;
    r.signer_key = k;
    r.recipient = ts_ca()->decrypt_cert;
    r.cipher_nid = NID_aes_192_cbc;
    r.digest_nid = NID_sha384;
    r.key_transport = SCEP_KT_OAEP;
    ck_assert_int_eq(scep_request_build(tpool, &r, &der, &len), APR_SUCCESS);
    ck_assert_int_eq(scep_pkimsg_parse(tpool, der, len, &m), APR_SUCCESS);
    ck_assert(m->signature_ok);
    ck_assert_str_eq(m->transaction_id, "a b+c/d=e");
    ck_assert_int_eq(m->message_type, SCEP_MSG_GETCRL);
    ck_assert_int_eq(m->digest_nid, NID_sha384);
    ck_assert_int_eq(m->cipher_nid, NID_aes_192_cbc);
    ck_assert_int_eq(m->key_transport, SCEP_KT_OAEP);
    ck_assert_int_eq(scep_pkimsg_decrypt(tpool, m, ts_ca()->decrypt_key, 0),
                     APR_SUCCESS);
    ck_assert_uint_eq(m->data_len, 5);
    ck_assert(!memcmp(m->data, "hello", 5));
}
END_TEST

START_TEST(long_transaction_id_is_undecodable)
{
    EVP_PKEY *k = tu_key(2048, 4);
    scep_request_t r;
    const unsigned char *der;
    apr_size_t len;
    scep_pkimsg_t *m;
    char *txid = apr_palloc(tpool, SCEP_TXID_MAX + 2);

    memset(txid, 'A', SCEP_TXID_MAX + 1);
    txid[SCEP_TXID_MAX + 1] = '\0';
    memset(&r, 0, sizeof(r));
    r.message_type = SCEP_MSG_PKCSREQ;
    r.transaction_id = txid;
    r.data = (const unsigned char *)"x";
    r.data_len = 1;
    r.signer = ts_selfsigned(k, "c");
    r.signer_key = k;
    r.recipient = ts_ca()->decrypt_cert;
    r.cipher_nid = NID_aes_128_cbc;
    r.digest_nid = NID_sha256;
    ck_assert_int_eq(scep_request_build(tpool, &r, &der, &len), APR_SUCCESS);
    ck_assert_int_eq(scep_pkimsg_parse(tpool, der, len, &m), APR_EINVAL);
    txid[SCEP_TXID_MAX] = '\0';
    ck_assert_int_eq(scep_request_build(tpool, &r, &der, &len), APR_SUCCESS);
    ck_assert_int_eq(scep_pkimsg_parse(tpool, der, len, &m), APR_SUCCESS);
}
END_TEST

static const char *printed(const unsigned char *der, apr_size_t len,
                           EVP_PKEY *key)
{
    BIO *out = BIO_new(BIO_s_mem());
    char *data;
    long n;
    const char *s;

    ck_assert_int_eq(scep_pkimsg_print(tpool, out, der, len, key),
                     APR_SUCCESS);
    n = BIO_get_mem_data(out, &data);
    s = apr_pstrmemdup(tpool, data, (apr_size_t)n);
    BIO_free(out);
    return s;
}

START_TEST(print_everything)
{
    const unsigned char *der;
    apr_size_t len;
    const char *s;
    apr_array_header_t *certs = apr_array_make(tpool, 1, sizeof(X509 *));
    char *b64;
    BIO *out = BIO_new(BIO_s_mem());

    ts_read("sscep-pkcsreq.der", &der, &len);
    s = printed(der, len, NULL);
    ck_assert_ptr_nonnull(strstr(s, "PKCSReq"));
    ck_assert_ptr_nonnull(strstr(s, "20E572D41A6B4C8285E2F6D699A9CF3F"));
    ck_assert_ptr_nonnull(strstr(s, "AES-128-CBC"));
    s = printed(der, len, ts_ca()->decrypt_key);
    ck_assert_ptr_nonnull(strstr(s, "PKCS#10"));
    ts_read("micromdm-certrep-for-sscep.der", &der, &len);
    s = printed(der, len, NULL);
    ck_assert_ptr_nonnull(strstr(s, "CertRep"));
    ck_assert_ptr_nonnull(strstr(s, "SUCCESS"));
    ck_assert_ptr_nonnull(strstr(s, "recipientNonce"));
    ck_assert_ptr_nonnull(strstr(s, "DES-CBC"));
    /* base64 of a certs-only bundle */
    APR_ARRAY_PUSH(certs, X509 *) = ts_ca()->cert;
    ck_assert_int_eq(scep_degenerate_der(tpool, certs, NULL, &der, &len),
                     APR_SUCCESS);
    b64 = apr_palloc(tpool, (apr_size_t)apr_base64_encode_len((int)len));
    apr_base64_encode(b64, (const char *)der, (int)len);
    s = printed((const unsigned char *)b64, strlen(b64), NULL);
    ck_assert_ptr_nonnull(strstr(s, "1 certificate(s)"));
    ck_assert_int_eq(scep_pkimsg_print(tpool, out,
                                       (const unsigned char *)"nonsense", 8,
                                       NULL), APR_EINVAL);
    BIO_free(out);
}
END_TEST

/* ------------------------------------------------------------------ */
/* opening the envelope as the holder of the encryption certificate     */

START_TEST(legacy_context_is_its_own)
{
    EVP_CIPHER *des = EVP_CIPHER_fetch(NULL, "DES-CBC", NULL);

    /* the fixture made the legacy context: single DES is there only */
    ck_assert_ptr_null(des);
    ERR_clear_error();
    ck_assert_ptr_null(scep_crypt_libctx(0));
    ck_assert_ptr_nonnull(scep_crypt_libctx(1));
    des = EVP_CIPHER_fetch(scep_crypt_libctx(1), "DES-CBC", NULL);
    ck_assert_ptr_nonnull(des);
    EVP_CIPHER_free(des);
}
END_TEST

/* A request of "hello" to the fixtures' CA, its recipient named by
 * issuerAndSerialNumber or subjectKeyIdentifier. */
static scep_pkimsg_t *hello_request(int keyid, int cipher)
{
    EVP_PKEY *k = tu_key(2048, 4);
    scep_request_t r;
    const unsigned char *der;
    apr_size_t len;
    scep_pkimsg_t *m;

    memset(&r, 0, sizeof(r));
    r.message_type = SCEP_MSG_PKCSREQ;
    r.transaction_id = "envelope";
    r.data = (const unsigned char *)"hello";
    r.data_len = 5;
    r.signer = ts_selfsigned(k, "client");
    r.signer_key = k;
    r.recipient = ts_ca()->decrypt_cert;
    r.cipher_nid = cipher;
    r.digest_nid = NID_sha256;
    r.recipient_keyid = keyid;
    ck_assert_int_eq(scep_request_build(tpool, &r, &der, &len), APR_SUCCESS);
    ck_assert_int_eq(scep_pkimsg_parse(tpool, der, len, &m), APR_SUCCESS);
    ck_assert_int_eq(m->recipients, 1);
    return m;
}

static apr_status_t open_as_ca(scep_pkimsg_t *m, int allow_legacy)
{
    return scep_pkimsg_decrypt_as(tpool, m, ts_ca()->decrypt_cert,
                                  ts_ca()->decrypt_key, allow_legacy);
}

static void assert_hello(scep_pkimsg_t *m)
{
    ck_assert_uint_eq(m->data_len, 5);
    ck_assert(!memcmp(m->data, "hello", 5));
}

static void assert_hello_opened(scep_pkimsg_t *m)
{
    ck_assert_int_eq(open_as_ca(m, 0), APR_SUCCESS);
    assert_hello(m);
}

/* _i: bit 0 subjectKeyIdentifier, bit 1 single DES */
START_TEST(both_recipient_forms_and_the_cipher_policy)
{
    int keyid = _i & 1, des = _i & 2;
    scep_pkimsg_t *m = hello_request(keyid, des ? NID_des_cbc
                                                : NID_aes_128_cbc);

    /* the cipher is read from the CMS parse whatever names the recipient */
    ck_assert_int_eq(m->cipher_nid, des ? NID_des_cbc : NID_aes_128_cbc);
    if (des) {
        ck_assert_int_eq(open_as_ca(m, 0), APR_ENOTIMPL);
        ck_assert_ptr_null(m->data);
    }
    ck_assert_int_eq(open_as_ca(m, 1), APR_SUCCESS);
    assert_hello(m);
    if (!des) {
        m = hello_request(keyid, NID_aes_128_cbc);
        ck_assert_int_eq(open_as_ca(m, 0), APR_SUCCESS);
        assert_hello(m);
    }
}
END_TEST

/* Envelopes made here with OpenSSL's CMS API, recipients of any kind. */
typedef struct {
    EVP_CIPHER *cipher;
    CMS_ContentInfo *cms;
} env_t;

static void env_start(env_t *e, const char *cipher)
{
    OSSL_LIB_CTX *libctx = scep_crypt_libctx(1);

    e->cipher = EVP_CIPHER_fetch(libctx, cipher, NULL);
    ck_assert_ptr_nonnull(e->cipher);
    e->cms = CMS_encrypt_ex(NULL, NULL, e->cipher, CMS_BINARY | CMS_PARTIAL,
                            libctx, NULL);
    ck_assert_ptr_nonnull(e->cms);
}

static CMS_RecipientInfo *env_to(env_t *e, X509 *to, unsigned int flags)
{
    CMS_RecipientInfo *ri = CMS_add1_recipient_cert(
        e->cms, to, CMS_BINARY | CMS_PARTIAL | flags);

    ck_assert_ptr_nonnull(ri);
    return ri;
}

static void env_to_ca(env_t *e)
{
    env_to(e, ts_ca()->decrypt_cert, 0);
}

/* An RSA certificate that is not ours (each call another serial). */
static void env_to_other(env_t *e)
{
    tu_cert_opts_t o = { "someone else", 0, 0x20 };

    env_to(e, scep_track_x509(tpool, tu_cert(&o, tu_key(2048, 5), NULL,
                                             NULL)), 0);
}

/* Key agreement (EC), KEK and password recipients. */
static void env_to_others_of_every_kind(env_t *e)
{
    EVP_PKEY *ec = scep_track_pkey(tpool, EVP_EC_gen("P-256"));
    tu_cert_opts_t o = { "key agreement", 0, 0 };
    unsigned char *kek = OPENSSL_zalloc(16);
    unsigned char *id = OPENSSL_memdup("kek-id", 6);
    char *pass = OPENSSL_strdup("a password");

    ck_assert_int_eq(CMS_RecipientInfo_type(env_to(e, scep_track_x509(
        tpool, tu_cert(&o, ec, NULL, NULL)), 0)), CMS_RECIPINFO_AGREE);
    ck_assert_ptr_nonnull(CMS_add0_recipient_key(e->cms, NID_undef, kek, 16,
                                                 id, 6, NULL, NULL, NULL));
    ck_assert_ptr_nonnull(CMS_add0_recipient_password(
        e->cms, -1, NID_undef, NID_undef, (unsigned char *)pass, -1, NULL));
}

static scep_pkimsg_t *env_msg(env_t *e)
{
    BIO *in = BIO_new_mem_buf("hello", 5);
    scep_pkimsg_t *m = apr_pcalloc(tpool, sizeof(*m));

    ck_assert_int_eq(CMS_final(e->cms, in, NULL, CMS_BINARY), 1);
    ck_assert_int_eq(scep_cms_der(tpool, e->cms, &m->envelope,
                                  &m->envelope_len), APR_SUCCESS);
    BIO_free(in);
    CMS_ContentInfo_free(e->cms);
    EVP_CIPHER_free(e->cipher);
    return m;
}

START_TEST(at_most_four_recipients)
{
    env_t e;
    int i;

    ck_assert_int_eq(SCEP_MAX_RECIPIENTS, 4);
    /* ours last, then ours first: either way more than 4 is refused */
    env_start(&e, "AES-128-CBC");
    for (i = 0; i < SCEP_MAX_RECIPIENTS; ++i) {
        env_to_other(&e);
    }
    env_to_ca(&e);
    ck_assert_int_eq(open_as_ca(env_msg(&e), 0), APR_EINVAL);
    env_start(&e, "AES-128-CBC");
    env_to_ca(&e);
    for (i = 0; i < SCEP_MAX_RECIPIENTS; ++i) {
        env_to_other(&e);
    }
    ck_assert_int_eq(open_as_ca(env_msg(&e), 1), APR_EINVAL);
    /* four, ours last: decrypted */
    env_start(&e, "AES-128-CBC");
    for (i = 0; i < SCEP_MAX_RECIPIENTS - 1; ++i) {
        env_to_other(&e);
    }
    env_to_ca(&e);
    assert_hello_opened(env_msg(&e));
}
END_TEST

START_TEST(other_kinds_of_recipient_are_not_ours)
{
    env_t e;

    /* beside ours they are left alone */
    env_start(&e, "AES-128-CBC");
    env_to_others_of_every_kind(&e);
    env_to_ca(&e);
    assert_hello_opened(env_msg(&e));
    /* without ours, nothing to open: the one uniform failure */
    env_start(&e, "AES-128-CBC");
    env_to_others_of_every_kind(&e);
    ck_assert_int_eq(open_as_ca(env_msg(&e), 0), APR_EGENERAL);
    env_start(&e, "AES-128-CBC");
    env_to_other(&e);
    ck_assert_int_eq(open_as_ca(env_msg(&e), 0), APR_EGENERAL);
}
END_TEST

/* _i: 0 SHA-1 (the default), 1 SHA-256, 2 MD5, 3 a label */
START_TEST(oaep_parameters)
{
    env_t e;
    EVP_PKEY_CTX *pctx;
    scep_pkimsg_t *m;

    env_start(&e, "AES-128-CBC");
    pctx = CMS_RecipientInfo_get0_pkey_ctx(
        env_to(&e, ts_ca()->decrypt_cert, CMS_KEY_PARAM));
    ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_padding(pctx,
                                                  RSA_PKCS1_OAEP_PADDING), 0);
    if (_i == 1 || _i == 2) {
        ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_oaep_md(
            pctx, _i == 1 ? EVP_sha256() : EVP_md5()), 0);
        ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_mgf1_md(
            pctx, _i == 1 ? EVP_sha256() : EVP_md5()), 0);
    }
    if (_i == 3) {
        ck_assert_int_gt(EVP_PKEY_CTX_set0_rsa_oaep_label(
            pctx, OPENSSL_memdup("label", 5), 5), 0);
    }
    m = env_msg(&e);
    if (_i >= 2) {
        ck_assert_int_eq(open_as_ca(m, 1), APR_ENOTIMPL);
        return;
    }
    assert_hello_opened(m);
    ck_assert_int_eq(m->key_transport, SCEP_KT_OAEP);
}
END_TEST

START_TEST(ciphers_outside_the_list)
{
    static const char *const names[] = { "AES-128-OFB", "CAMELLIA-128-CBC",
                                         "AES-256-CFB", "ARIA-128-CBC" };
    env_t e;
    apr_size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
        env_start(&e, names[i]);
        env_to_ca(&e);
        ck_assert_int_eq(open_as_ca(env_msg(&e), 1), APR_ENOTIMPL);
    }
}
END_TEST

START_TEST(unreadable_envelopes)
{
    static const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
    scep_pkimsg_t *m = apr_pcalloc(tpool, sizeof(*m));
    apr_array_header_t *certs = apr_array_make(tpool, 1, sizeof(X509 *));
    env_t e;
    apr_size_t i;

    ck_assert_int_eq(open_as_ca(m, 0), APR_EGENERAL);
    m->envelope = junk;
    m->envelope_len = sizeof(junk);
    ck_assert_int_eq(open_as_ca(m, 0), APR_EGENERAL);
    /* a SignedData is not an envelope */
    APR_ARRAY_PUSH(certs, X509 *) = ts_ca()->cert;
    ck_assert_int_eq(scep_degenerate_der(tpool, certs, NULL, &m->envelope,
                                         &m->envelope_len), APR_SUCCESS);
    ck_assert_int_eq(open_as_ca(m, 0), APR_EGENERAL);
    /* a good one cut anywhere */
    env_start(&e, "AES-128-CBC");
    env_to_ca(&e);
    m = env_msg(&e);
    for (i = 1; i < m->envelope_len; i += 13) {
        scep_pkimsg_t cut = *m;
        cut.envelope_len = i;
        ck_assert_int_eq(open_as_ca(&cut, 0), APR_EGENERAL);
    }
}
END_TEST

Suite *suite_pkimsg(void)
{
    Suite *s = suite_create("pkimsg");
    TCase *tc = tcase_create("pkimsg");

    tcase_add_checked_fixture(tc, ts_setup, ts_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, decode_captured_requests, 0,
                        (int)(sizeof(reqs) / sizeof(reqs[0])));
    tcase_add_test(tc, single_des_needs_legacy);
    tcase_add_test(tc, decode_micromdm_certrep);
    tcase_add_test(tc, undecodable_input);
    tcase_add_test(tc, certrep_failure_roundtrip);
    tcase_add_test(tc, request_roundtrip_oaep);
    tcase_add_test(tc, long_transaction_id_is_undecodable);
    tcase_add_test(tc, print_everything);
    suite_add_tcase(s, tc);
    tc = tcase_create("envelope");
    tcase_add_checked_fixture(tc, ts_setup, ts_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, legacy_context_is_its_own);
    tcase_add_loop_test(tc, both_recipient_forms_and_the_cipher_policy, 0, 4);
    tcase_add_test(tc, at_most_four_recipients);
    tcase_add_test(tc, other_kinds_of_recipient_are_not_ours);
    tcase_add_loop_test(tc, oaep_parameters, 0, 4);
    tcase_add_test(tc, ciphers_outside_the_list);
    tcase_add_test(tc, unreadable_envelopes);
    suite_add_tcase(s, tc);
    return s;
}
