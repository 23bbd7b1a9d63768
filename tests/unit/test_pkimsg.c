/* pkiMessage decoding, decrypting, building and printing. */

#include <string.h>

#include <apr_strings.h>
#include <apr_base64.h>
#include <openssl/cms.h>
#include <openssl/pkcs7.h>

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
    return s;
}
