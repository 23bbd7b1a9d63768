/* scep_pkiop_handle end to end with the memory store. */

#include <string.h>

#include <apr_strings.h>
#include <openssl/cms.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "testscep.h"
#include "scep-ota-client.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_pkiop.h"
#include "scep_ota/scep_policy.h"
#include "scep_ota/scep_store.h"

static scep_pkiop_cfg_t cfg;
static scep_store_t *store;

static void setup(void)
{
    ts_setup();
    memset(&cfg, 0, sizeof(cfg));
    cfg.ca = ts_ca();
    cfg.challenge_password = "peers-secret";
    cfg.lifetime_days = 30;
    store = scep_store_memory_create(tpool);
}

static void teardown(void)
{
    ts_teardown();
}

static scep_pkiop_reply_t *handle(const unsigned char *der, apr_size_t len)
{
    scep_pkiop_reply_t *r = apr_pcalloc(tpool, sizeof(*r));

    ck_assert_int_eq(scep_pkiop_handle(tpool, scep_log_null(), &cfg, store,
                                       der, len, r), APR_SUCCESS);
    return r;
}

/* Handles the request and opens the CertRep (200) with key. */
static scep_pkimsg_t *roundtrip(const unsigned char *der, apr_size_t len,
                                EVP_PKEY *key, scep_pkiop_reply_t **preply)
{
    scep_pkiop_reply_t *r = handle(der, len);

    ck_assert_int_eq(r->kind, SCEP_OUTCOME_OK);
    ck_assert_str_eq(r->content_type, SCEP_CT_PKI_MESSAGE);
    ck_assert_ptr_nonnull(r->summary);
    if (preply) {
        *preply = r;
    }
    return ts_certrep(r->body, r->len, key);
}

static void assert_failure(scep_pkimsg_t *rep, int fail_info)
{
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_FAILURE);
    ck_assert_int_eq(rep->fail_info, fail_info);
    ck_assert_ptr_nonnull(rep->fail_info_text);
}

static int count_certs(void)
{
    apr_array_header_t *recs;

    ck_assert_int_eq(store->ops->cert_list(store, tpool, -1, &recs),
                     APR_SUCCESS);
    return recs->nelts;
}

/* A fresh client: key, self-signed cert, PKCSReq. */
typedef struct {
    EVP_PKEY *key;
    X509 *self;
    const unsigned char *csr, *req;
    apr_size_t csr_len, req_len;
} client_t;

static void client(client_t *c, int slot, const char *cn,
                   const char *challenge, const char *txid, int cipher,
                   int digest)
{
    c->key = tu_key(2048, slot);
    c->self = ts_selfsigned(c->key, "temporary identity");
    ts_csr(c->key, cn, challenge, NULL, &c->csr, &c->csr_len);
    ts_request(SCEP_MSG_PKCSREQ, txid, c->csr, c->csr_len, c->self, c->key,
               cipher, digest, &c->req, &c->req_len);
}

/* SCEPAllowSubjectAltName dns *.example, email *@ok.example */
static void allow_sans(void)
{
    apr_array_header_t *rules = apr_array_make(tpool, 2,
                                               sizeof(scep_san_rule_t));
    const char *err;

    ck_assert_int_eq(scep_san_rule_make(tpool, "dns", "*.example",
                                        apr_array_push(rules), &err),
                     APR_SUCCESS);
    ck_assert_int_eq(scep_san_rule_make(tpool, "email", "*@ok.example",
                                        apr_array_push(rules), &err),
                     APR_SUCCESS);
    cfg.names.san_rules = rules;
}

static const char *cert_sans(X509 *x)
{
    apr_array_header_t *sans;
    const char *why;

    ck_assert_int_eq(scep_cert_sans(tpool, x, &sans, &why), APR_SUCCESS);
    return apr_array_pstrcat(tpool, sans, ',');
}

static void check_issued(X509 *x, const char *cn)
{
    char buf[256];

    ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(ts_ca()->cert)), 1);
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf,
                              sizeof(buf));
    ck_assert_str_eq(buf, cn);
    ck_assert_int_eq(X509_check_ca(x), 0);
}

/* ------------------------------------------------------------------ */

static const struct {
    const char *req, *key;
    int legacy, digest, cipher;
} captured[] = {
    { "sscep-pkcsreq.der", "sscep-pkcsreq.key", 0, NID_sha256,
      NID_aes_128_cbc },
    { "certmonger-pkcsreq.der", "certmonger-pkcsreq.key", 0, NID_sha256,
      NID_aes_256_cbc },
    { "scepclient-pkcsreq.der", "scepclient-pkcsreq.key", 1, NID_sha1,
      NID_des_cbc },
};

START_TEST(captured_requests_enroll)
{
    const unsigned char *der;
    apr_size_t len;
    EVP_PKEY *key = ts_load_key(captured[_i].key);
    scep_pkiop_reply_t *r;
    scep_pkimsg_t *rep, *req;
    X509 *x;

    ts_read(captured[_i].req, &der, &len);
    cfg.allow_legacy = captured[_i].legacy;
    rep = roundtrip(der, len, key, &r);
    ck_assert_msg(rep->pki_status == SCEP_STATUS_SUCCESS, "%s", r->summary);
    ck_assert_str_eq(r->tag, "issued");
    ck_assert_int_eq(rep->digest_nid, captured[_i].digest);
    ck_assert_int_eq(rep->cipher_nid, captured[_i].cipher);
    ck_assert_int_eq(scep_pkimsg_parse(tpool, der, len, &req), APR_SUCCESS);
    ck_assert_str_eq(rep->transaction_id, req->transaction_id);
    ck_assert_uint_eq(rep->recipient_nonce_len, req->sender_nonce_len);
    ck_assert(!memcmp(rep->recipient_nonce, req->sender_nonce,
                      req->sender_nonce_len));
    ck_assert(memcmp(rep->sender_nonce, req->sender_nonce, SCEP_NONCE_LEN));
    x = ts_certrep_cert(rep);
    ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(ts_ca()->cert)), 1);
    ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(x), key), 1);
    ck_assert_str_eq(r->serial, scep_cert_serial_hex(tpool, x));
    ck_assert_int_eq(count_certs(), 1);
}
END_TEST

START_TEST(captured_des_without_legacy_is_badalg)
{
    const unsigned char *der;
    apr_size_t len;

    ts_read("scepclient-pkcsreq.der", &der, &len);
    cfg.allow_legacy = 0;
    assert_failure(roundtrip(der, len, NULL, NULL), SCEP_FAIL_BADALG);
    ck_assert_int_eq(count_certs(), 0);
}
END_TEST

static const int ciphers[] = { NID_des_ede3_cbc, NID_aes_128_cbc,
                               NID_aes_256_cbc };
static const int digests[] = { NID_sha1, NID_sha256, NID_sha512 };

START_TEST(cipher_digest_matrix)
{
    client_t c;
    scep_pkimsg_t *rep;
    int cipher = ciphers[_i / 3], digest = digests[_i % 3];
    const char *txid = apr_psprintf(tpool, "matrix-%d", _i);

    client(&c, 4, "matrix.example", "peers-secret", txid, cipher, digest);
    rep = roundtrip(c.req, c.req_len, c.key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_int_eq(rep->digest_nid, digest);
    ck_assert_int_eq(rep->cipher_nid, cipher);
    check_issued(ts_certrep_cert(rep), "matrix.example");
}
END_TEST

START_TEST(oaep_is_mirrored)
{
    client_t c;
    scep_request_t r;
    scep_pkimsg_t *rep;

    c.key = tu_key(2048, 4);
    c.self = ts_selfsigned(c.key, "oaep");
    ts_csr(c.key, "oaep.example", "peers-secret", NULL, &c.csr, &c.csr_len);
    memset(&r, 0, sizeof(r));
    r.message_type = SCEP_MSG_PKCSREQ;
    r.transaction_id = "oaep-1";
    r.data = c.csr;
    r.data_len = c.csr_len;
    r.signer = c.self;
    r.signer_key = c.key;
    r.recipient = ts_ca()->decrypt_cert;
    r.cipher_nid = NID_aes_128_cbc;
    r.digest_nid = NID_sha256;
    r.key_transport = SCEP_KT_OAEP;
    ck_assert_int_eq(scep_request_build(tpool, &r, &c.req, &c.req_len),
                     APR_SUCCESS);
    rep = roundtrip(c.req, c.req_len, c.key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_int_eq(rep->key_transport, SCEP_KT_OAEP);
}
END_TEST

/* A PKCSReq whose envelope names the CA by subjectKeyIdentifier. */
static void keyid_client(client_t *c, const char *txid, int cipher)
{
    scep_request_t r;

    c->key = tu_key(2048, 4);
    c->self = ts_selfsigned(c->key, "keyid");
    ts_csr(c->key, "keyid.example", "peers-secret", NULL, &c->csr,
           &c->csr_len);
    memset(&r, 0, sizeof(r));
    r.message_type = SCEP_MSG_PKCSREQ;
    r.transaction_id = txid;
    r.data = c->csr;
    r.data_len = c->csr_len;
    r.signer = c->self;
    r.signer_key = c->key;
    r.recipient = ts_ca()->decrypt_cert;
    r.cipher_nid = cipher;
    r.digest_nid = NID_sha256;
    r.recipient_keyid = 1;
    ck_assert_int_eq(scep_request_build(tpool, &r, &c->req, &c->req_len),
                     APR_SUCCESS);
}

START_TEST(keyid_recipient_enrolls)
{
    client_t c;
    scep_pkimsg_t *rep;

    keyid_client(&c, "keyid-aes", NID_aes_256_cbc);
    rep = roundtrip(c.req, c.req_len, c.key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_int_eq(rep->cipher_nid, NID_aes_256_cbc);
    check_issued(ts_certrep_cert(rep), "keyid.example");
}
END_TEST

/* Single DES to a recipient PKCS#7 cannot read: badAlg unless this server
 * allows legacy algorithms, though the legacy context exists (another
 * server of the process may allow them). */
START_TEST(keyid_recipient_with_des_needs_legacy)
{
    client_t c;
    scep_pkimsg_t *rep;

    ck_assert_ptr_nonnull(scep_crypt_libctx(1));
    keyid_client(&c, "keyid-des", NID_des_cbc);
    cfg.allow_legacy = 0;
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL), SCEP_FAIL_BADALG);
    ck_assert_int_eq(count_certs(), 0);
    cfg.allow_legacy = 1;
    rep = roundtrip(c.req, c.req_len, c.key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_int_eq(rep->cipher_nid, NID_des_cbc);
    check_issued(ts_certrep_cert(rep), "keyid.example");
}
END_TEST

START_TEST(wrong_challenge_is_badrequest)
{
    client_t c;

    client(&c, 4, "wrong.example", "not-the-secret", "wrong-1",
           NID_aes_128_cbc, NID_sha256);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
    client(&c, 4, "wrong.example", NULL, "wrong-2", NID_aes_128_cbc,
           NID_sha256);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
    ck_assert_int_eq(count_certs(), 0);
}
END_TEST

START_TEST(one_time_challenge_is_consumed)
{
    client_t c;
    const char *otp = "a-one-time-challenge";

    cfg.challenge_password = NULL;
    ck_assert_int_eq(store->ops->challenge_add(
                         store, tpool, scep_sha256_hex(tpool, otp, strlen(otp)),
                         SCEP_CHALLENGE_SCEP, NULL,
                         apr_time_now() + apr_time_from_sec(60)),
                     APR_SUCCESS);
    client(&c, 4, "otp.example", otp, "otp-1", NID_aes_128_cbc, NID_sha256);
    ck_assert_int_eq(roundtrip(c.req, c.req_len, c.key, NULL)->pki_status,
                     SCEP_STATUS_SUCCESS);
    client(&c, 5, "otp2.example", otp, "otp-2", NID_aes_128_cbc, NID_sha256);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
    /* a binding that cannot be read binds nothing: refused */
    otp = "an-unreadable-binding";
    ck_assert_int_eq(store->ops->challenge_add(
                         store, tpool, scep_sha256_hex(tpool, otp, strlen(otp)),
                         SCEP_CHALLENGE_SCEP, "UDID-1",
                         apr_time_now() + apr_time_from_sec(60)),
                     APR_SUCCESS);
    client(&c, 6, "otp3.example", otp, "otp-3", NID_aes_128_cbc, NID_sha256);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
}
END_TEST

/* A challenge OTA Phase 2 bound to a subject enrolls that subject only. */
START_TEST(bound_challenge_enrolls_its_subject_only)
{
    client_t c;
    const char *otp1 = "bound-challenge-1", *otp2 = "bound-challenge-2";
    apr_time_t later = apr_time_now() + apr_time_from_sec(60);

    cfg.challenge_password = NULL;
    ck_assert_int_eq(store->ops->challenge_add(
                         store, tpool, scep_sha256_hex(tpool, otp1, 17),
                         SCEP_CHALLENGE_SCEP,
                         SCEP_BOUND_SUBJECT "CN=device-a.example,O=scep-unit", later),
                     APR_SUCCESS);
    ck_assert_int_eq(store->ops->challenge_add(
                         store, tpool, scep_sha256_hex(tpool, otp2, 17),
                         SCEP_CHALLENGE_SCEP,
                         SCEP_BOUND_SUBJECT "CN=device-a.example,O=scep-unit", later),
                     APR_SUCCESS);
    client(&c, 4, "device-b.example", otp1, "bound-1", NID_aes_128_cbc,
           NID_sha256);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
    client(&c, 5, "device-a.example", otp2, "bound-2", NID_aes_128_cbc,
           NID_sha256);
    ck_assert_int_eq(roundtrip(c.req, c.req_len, c.key, NULL)->pki_status,
                     SCEP_STATUS_SUCCESS);
}
END_TEST

START_TEST(bad_signature_is_badmessagecheck)
{
    client_t c;
    unsigned char *bad;

    client(&c, 4, "badsig.example", "peers-secret", "badsig-1",
           NID_aes_128_cbc, NID_sha256);
    /* the SignerInfo's signature value ends the message */
    bad = apr_pmemdup(tpool, c.req, c.req_len);
    bad[c.req_len - 1] ^= 0x01;
    assert_failure(roundtrip(bad, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADMESSAGECHECK);
    ck_assert_int_eq(count_certs(), 0);
}
END_TEST

START_TEST(signer_key_must_be_csr_key)
{
    client_t c;
    EVP_PKEY *other = tu_key(2048, 5);
    X509 *self = ts_selfsigned(other, "someone else");

    client(&c, 4, "pop.example", "peers-secret", "pop-1", NID_aes_128_cbc,
           NID_sha256);
    ts_request(SCEP_MSG_PKCSREQ, "pop-1", c.csr, c.csr_len, self, other,
               NID_aes_128_cbc, NID_sha256, &c.req, &c.req_len);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADMESSAGECHECK);
}
END_TEST

START_TEST(retry_returns_the_same_certificate)
{
    client_t c;
    scep_pkiop_reply_t *r1, *r2;
    scep_pkimsg_t *rep;
    const unsigned char *again;
    apr_size_t again_len;

    client(&c, 4, "retry.example", "peers-secret", "retry-1",
           NID_aes_128_cbc, NID_sha256);
    ck_assert_int_eq(roundtrip(c.req, c.req_len, c.key, &r1)->pki_status,
                     SCEP_STATUS_SUCCESS);
    /* a new message (fresh nonce) with the same transactionID and key */
    ts_request(SCEP_MSG_PKCSREQ, "retry-1", c.csr, c.csr_len, c.self, c.key,
               NID_aes_128_cbc, NID_sha256, &again, &again_len);
    rep = roundtrip(again, again_len, c.key, &r2);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_str_eq(r2->tag, "repeated");
    ck_assert_str_eq(r1->serial, r2->serial);
    ck_assert_str_eq(scep_cert_serial_hex(tpool, ts_certrep_cert(rep)),
                     r1->serial);
    ck_assert_int_eq(count_certs(), 1);
}
END_TEST

START_TEST(ca_true_request_gets_the_template)
{
    static const char *exts2[][2] = {
        { "basicConstraints", "critical,CA:TRUE" },
        { "keyUsage", "keyCertSign,cRLSign" },
        { "subjectAltName", "DNS:ok.example,email:a@ok.example" },
        { NULL, NULL }
    };
    client_t c;
    scep_pkimsg_t *rep;
    X509 *x;

    allow_sans();
    c.key = tu_key(2048, 4);
    c.self = ts_selfsigned(c.key, "tmp");
    ts_csr(c.key, "ca-wannabe", "peers-secret", exts2, &c.csr, &c.csr_len);
    ts_request(SCEP_MSG_PKCSREQ, "catrue-1", c.csr, c.csr_len, c.self, c.key,
               NID_aes_128_cbc, NID_sha256, &c.req, &c.req_len);
    rep = roundtrip(c.req, c.req_len, c.key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    x = ts_certrep_cert(rep);
    ck_assert_int_eq(X509_check_ca(x), 0);
    ck_assert_int_eq(X509_get_ext_count(x), 6);
    ck_assert_uint_eq(X509_get_key_usage(x),
                      KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    ck_assert_uint_eq(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    ck_assert_str_eq(cert_sans(x), "DNS:ok.example,email:a@ok.example");
}
END_TEST

START_TEST(garbage_is_400)
{
    static const unsigned char junk[] = "this is not a pkiMessage";
    client_t c;
    scep_pkiop_reply_t *r;

    r = handle(junk, sizeof(junk));
    ck_assert_int_eq(r->kind, SCEP_OUTCOME_BAD_REQUEST);
    ck_assert_ptr_null(r->body);
    ck_assert_str_eq(r->tag, "invalid");
    r = handle(junk, 0);
    ck_assert_int_eq(r->kind, SCEP_OUTCOME_BAD_REQUEST);
    client(&c, 4, "trunc.example", "peers-secret", "trunc-1",
           NID_aes_128_cbc, NID_sha256);
    r = handle(c.req, c.req_len / 2);
    ck_assert_int_eq(r->kind, SCEP_OUTCOME_BAD_REQUEST);
}
END_TEST

/* Enrolls a client and returns its certificate. */
static X509 *enrolled(client_t *c, int slot, const char *cn, const char *txid)
{
    scep_pkimsg_t *rep;

    client(c, slot, cn, "peers-secret", txid, NID_aes_128_cbc, NID_sha256);
    rep = roundtrip(c->req, c->req_len, c->key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    return ts_certrep_cert(rep);
}

static void renew(int type, int slot, client_t *old, X509 *cert,
                  const char *cn, const char *txid, EVP_PKEY **newkey,
                  const unsigned char **req, apr_size_t *req_len)
{
    const unsigned char *csr;
    apr_size_t csr_len;

    *newkey = tu_key(2048, slot);
    ts_csr(*newkey, cn, NULL, NULL, &csr, &csr_len);
    ts_request(type, txid, csr, csr_len, cert, old->key, NID_aes_256_cbc,
               NID_sha512, req, req_len);
}

START_TEST(renewal_both_ways)
{
    static const int types[] = { SCEP_MSG_RENEWALREQ, SCEP_MSG_PKCSREQ };
    client_t c;
    X509 *old = enrolled(&c, 4, "renew.example", "renew-0"), *x;
    EVP_PKEY *nk;
    const unsigned char *req;
    apr_size_t len;
    scep_pkiop_reply_t *r;
    scep_pkimsg_t *rep;

    cfg.renewal_window_percent = 100;
    renew(types[_i], 5, &c, old, "renew.example", "renew-1", &nk, &req, &len);
    /* the reply is encrypted to the old certificate */
    rep = roundtrip(req, len, c.key, &r);
    ck_assert_msg(rep->pki_status == SCEP_STATUS_SUCCESS, "%s", r->summary);
    ck_assert_str_eq(r->tag, "renewed");
    x = ts_certrep_cert(rep);
    ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(x), nk), 1);
    check_issued(x, "renew.example");
    ck_assert_int_eq(count_certs(), 2);
}
END_TEST

START_TEST(renewal_refused)
{
    client_t c, stranger;
    X509 *old = enrolled(&c, 4, "renew.example", "renew-0");
    EVP_PKEY *nk;
    const unsigned char *req;
    apr_size_t len;

    /* another subject: not a renewal */
    renew(SCEP_MSG_RENEWALREQ, 5, &c, old, "other.example", "renew-1", &nk,
          &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    /* a self-signed certificate: not ours */
    stranger.key = tu_key(2048, 6);
    stranger.self = ts_selfsigned(stranger.key, "renew.example");
    renew(SCEP_MSG_RENEWALREQ, 5, &stranger, stranger.self, "renew.example",
          "renew-2", &nk, &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    /* not due yet: the default window is the last half */
    renew(SCEP_MSG_RENEWALREQ, 5, &c, old, "renew.example", "renew-4", &nk,
          &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    cfg.renewal_window_days = 29;
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    cfg.renewal_window_days = 31;
    /* revoked */
    ck_assert_int_eq(store->ops->cert_revoke(store, tpool,
                                             scep_cert_serial_hex(tpool, old),
                                             1, apr_time_now()), APR_SUCCESS);
    renew(SCEP_MSG_RENEWALREQ, 5, &c, old, "renew.example", "renew-3", &nk,
          &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    ck_assert_int_eq(count_certs(), 1);
}
END_TEST

START_TEST(key_of_another_subject_is_refused)
{
    client_t c;
    const unsigned char *csr;
    apr_size_t csr_len;

    enrolled(&c, 4, "first.example", "reuse-0");
    ts_csr(c.key, "second.example", "peers-secret", NULL, &csr, &csr_len);
    ts_request(SCEP_MSG_PKCSREQ, "reuse-1", csr, csr_len, c.self, c.key,
               NID_aes_128_cbc, NID_sha256, &c.req, &c.req_len);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
}
END_TEST

START_TEST(small_key_is_refused)
{
    client_t c;

    c.key = tu_key(1024, 7);
    c.self = ts_selfsigned(c.key, "small");
    ts_csr(c.key, "small.example", "peers-secret", NULL, &c.csr, &c.csr_len);
    ts_request(SCEP_MSG_PKCSREQ, "small-1", c.csr, c.csr_len, c.self, c.key,
               NID_aes_128_cbc, NID_sha256, &c.req, &c.req_len);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
}
END_TEST

static void ias_der(X509 *issuer_of, const ASN1_INTEGER *serial,
                    const unsigned char **der, apr_size_t *len)
{
    PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
    unsigned char *buf = NULL;
    int n;

    X509_NAME_set(&ias->issuer, X509_get_subject_name(issuer_of));
    ASN1_INTEGER_free(ias->serial);
    ias->serial = ASN1_INTEGER_dup(serial);
    n = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &buf);
    ck_assert_int_gt(n, 0);
    *der = apr_pmemdup(tpool, buf, (apr_size_t)n);
    *len = (apr_size_t)n;
    OPENSSL_free(buf);
    PKCS7_ISSUER_AND_SERIAL_free(ias);
}

START_TEST(get_cert)
{
    client_t c, asker;
    X509 *x = enrolled(&c, 4, "getcert.example", "gc-0");
    const unsigned char *ias, *req;
    apr_size_t ias_len, len;
    scep_pkimsg_t *rep;
    ASN1_INTEGER *bogus = ASN1_INTEGER_new();

    asker.key = tu_key(2048, 5);
    asker.self = ts_selfsigned(asker.key, "asker");
    ias_der(ts_ca()->cert, X509_get0_serialNumber(x), &ias, &ias_len);
    ts_request(SCEP_MSG_GETCERT, "gc-1", ias, ias_len, asker.self, asker.key,
               NID_aes_128_cbc, NID_sha256, &req, &len);
    rep = roundtrip(req, len, asker.key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_int_eq(X509_cmp(ts_certrep_cert(rep), x), 0);
    /* unknown serial, foreign issuer */
    ASN1_INTEGER_set(bogus, 12345);
    ias_der(ts_ca()->cert, bogus, &ias, &ias_len);
    ts_request(SCEP_MSG_GETCERT, "gc-2", ias, ias_len, asker.self, asker.key,
               NID_aes_128_cbc, NID_sha256, &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADCERTID);
    ias_der(asker.self, X509_get0_serialNumber(x), &ias, &ias_len);
    ts_request(SCEP_MSG_GETCERT, "gc-3", ias, ias_len, asker.self, asker.key,
               NID_aes_128_cbc, NID_sha256, &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADCERTID);
    /* not an IssuerAndSerialNumber at all */
    ts_request(SCEP_MSG_GETCERT, "gc-4", c.csr, c.csr_len, asker.self,
               asker.key, NID_aes_128_cbc, NID_sha256, &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL),
                   SCEP_FAIL_BADMESSAGECHECK);
    ASN1_INTEGER_free(bogus);
}
END_TEST

START_TEST(get_crl_after_revoke)
{
    client_t c;
    X509 *x = enrolled(&c, 4, "crl.example", "crl-0");
    const unsigned char *ias, *req;
    apr_size_t ias_len, len;
    scep_pkimsg_t *rep;
    X509_CRL *crl;
    X509_REVOKED *rev = NULL;

    ck_assert_int_eq(store->ops->cert_revoke(store, tpool,
                                             scep_cert_serial_hex(tpool, x),
                                             1, apr_time_now()), APR_SUCCESS);
    ias_der(ts_ca()->cert, X509_get0_serialNumber(x), &ias, &ias_len);
    ts_request(SCEP_MSG_GETCRL, "crl-1", ias, ias_len, c.self, c.key,
               NID_aes_128_cbc, NID_sha256, &req, &len);
    rep = roundtrip(req, len, c.key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    crl = ts_certrep_crl(rep);
    ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(ts_ca()->cert)), 1);
    ck_assert_int_eq(X509_CRL_get0_by_serial(crl, &rev,
                                             X509_get0_serialNumber(x)), 1);
}
END_TEST

static void poll_req(client_t *c, const char *txid, const unsigned char **req,
                     apr_size_t *len)
{
    ts_request(SCEP_MSG_CERTPOLL, txid, c->csr, c->csr_len, c->self, c->key,
               NID_aes_128_cbc, NID_sha256, req, len);
}

START_TEST(manual_approval_and_certpoll)
{
    client_t c;
    scep_pkiop_reply_t *r;
    scep_pkimsg_t *rep;
    const unsigned char *req;
    apr_size_t len;
    const char *serial;

    cfg.approval_manual = 1;
    client(&c, 4, "manual.example", "peers-secret", "manual-1",
           NID_aes_128_cbc, NID_sha256);
    rep = roundtrip(c.req, c.req_len, NULL, &r);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_PENDING);
    ck_assert_str_eq(r->tag, "pending");
    poll_req(&c, "manual-1", &req, &len);
    ck_assert_int_eq(roundtrip(req, len, NULL, NULL)->pki_status,
                     SCEP_STATUS_PENDING);
    /* the PKCSReq again: still pending, no second challenge needed */
    ck_assert_int_eq(roundtrip(c.req, c.req_len, NULL, NULL)->pki_status,
                     SCEP_STATUS_PENDING);
    ck_assert_int_eq(count_certs(), 0);
    ck_assert_int_eq(store->ops->pending_set_state(
                         store, tpool, "manual-1", SCEP_PENDING_APPROVED,
                         NULL), APR_SUCCESS);
    poll_req(&c, "manual-1", &req, &len);
    rep = roundtrip(req, len, c.key, &r);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    check_issued(ts_certrep_cert(rep), "manual.example");
    serial = r->serial;
    poll_req(&c, "manual-1", &req, &len);
    rep = roundtrip(req, len, c.key, &r);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_str_eq(r->serial, serial);
    ck_assert_int_eq(count_certs(), 1);
}
END_TEST

START_TEST(certpoll_refusals)
{
    client_t c, other;
    const unsigned char *req;
    apr_size_t len;

    cfg.approval_manual = 1;
    client(&c, 4, "rej.example", "peers-secret", "rej-1", NID_aes_128_cbc,
           NID_sha256);
    ck_assert_int_eq(roundtrip(c.req, c.req_len, NULL, NULL)->pki_status,
                     SCEP_STATUS_PENDING);
    /* nobody else can poll it */
    client(&other, 5, "rej.example", NULL, "x", NID_aes_128_cbc, NID_sha256);
    poll_req(&other, "rej-1", &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADMESSAGECHECK);
    /* unknown transaction */
    poll_req(&c, "no-such-txid", &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    /* rejected */
    ck_assert_int_eq(store->ops->pending_set_state(
                         store, tpool, "rej-1", SCEP_PENDING_REJECTED, NULL),
                     APR_SUCCESS);
    poll_req(&c, "rej-1", &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    ck_assert_int_eq(count_certs(), 0);
}
END_TEST

START_TEST(unknown_message_type_is_badrequest)
{
    client_t c;

    client(&c, 4, "type.example", "peers-secret", "type-1", NID_aes_128_cbc,
           NID_sha256);
    ts_request(18, "type-1", c.csr, c.csr_len, c.self, c.key,
               NID_aes_128_cbc, NID_sha256, &c.req, &c.req_len);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
}
END_TEST

START_TEST(undecryptable_envelope_is_uniform)
{
    client_t c;
    scep_request_t r;
    EVP_PKEY *k = tu_key(2048, 5);
    scep_pkimsg_t *a, *b;
    const unsigned char *req;
    apr_size_t len;

    /* encrypted to somebody else */
    client(&c, 4, "oracle.example", "peers-secret", "oracle-1",
           NID_aes_128_cbc, NID_sha256);
    memset(&r, 0, sizeof(r));
    r.message_type = SCEP_MSG_PKCSREQ;
    r.transaction_id = "oracle-1";
    r.data = c.csr;
    r.data_len = c.csr_len;
    r.signer = c.self;
    r.signer_key = c.key;
    r.recipient = ts_selfsigned(k, "not the CA");
    r.cipher_nid = NID_aes_128_cbc;
    r.digest_nid = NID_sha256;
    ck_assert_int_eq(scep_request_build(tpool, &r, &req, &len), APR_SUCCESS);
    a = roundtrip(req, len, NULL, NULL);
    assert_failure(a, SCEP_FAIL_BADMESSAGECHECK);
    /* decrypts, but the content is no CSR */
    ts_request(SCEP_MSG_PKCSREQ, "oracle-2", (const unsigned char *)"junk", 4,
               c.self, c.key, NID_aes_128_cbc, NID_sha256, &req, &len);
    b = roundtrip(req, len, NULL, NULL);
    assert_failure(b, SCEP_FAIL_BADMESSAGECHECK);
    ck_assert_str_eq(a->fail_info_text, b->fail_info_text);
}
END_TEST

/* Store failures: a cert_insert that fails, or collides once. */
static scep_store_ops_t faulty_ops;
static int collisions;

static apr_status_t insert_fails(scep_store_t *st, apr_pool_t *p,
                                 const scep_cert_rec_t *rec)
{
    (void)st;
    (void)p;
    (void)rec;
    return APR_EGENERAL;
}

static apr_status_t insert_collides(scep_store_t *st, apr_pool_t *p,
                                    const scep_cert_rec_t *rec)
{
    if (collisions++ == 0) {
        return APR_EEXIST;
    }
    return scep_store_memory_create(tpool)->ops->cert_insert(st, p, rec);
}

START_TEST(insert_failure_gives_no_certificate)
{
    client_t c;
    scep_store_t faulty = *store;

    faulty_ops = *store->ops;
    faulty_ops.cert_insert = insert_fails;
    faulty.ops = &faulty_ops;
    store = &faulty;
    client(&c, 4, "fail.example", "peers-secret", "fail-1", NID_aes_128_cbc,
           NID_sha256);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
}
END_TEST

START_TEST(serial_collision_is_retried)
{
    client_t c;
    scep_store_t faulty = *store;
    scep_pkimsg_t *rep;

    faulty_ops = *store->ops;
    faulty_ops.cert_insert = insert_collides;
    faulty.ops = &faulty_ops;
    store = &faulty;
    collisions = 0;
    client(&c, 4, "collide.example", "peers-secret", "collide-1",
           NID_aes_128_cbc, NID_sha256);
    rep = roundtrip(c.req, c.req_len, c.key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_int_eq(collisions, 2);
    ck_assert_int_eq(count_certs(), 1);
}
END_TEST

START_TEST(next_ca_answer)
{
    apr_array_header_t *next = apr_array_make(tpool, 1, sizeof(X509 *));
    const unsigned char *body;
    apr_size_t len;
    PKCS7 *p7;
    const unsigned char *d;
    CMS_ContentInfo *cms;
    BIO *out = BIO_new(BIO_s_mem());
    char *inner;
    long n;

    ck_assert_int_eq(scep_pkiop_next_ca(tpool, &cfg, &body, &len),
                     APR_NOTFOUND);
    APR_ARRAY_PUSH(next, X509 *) = ts_selfsigned(tu_key(2048, 5), "next CA");
    cfg.next_ca_certs = next;
    ck_assert_int_eq(scep_pkiop_next_ca(tpool, &cfg, &body, &len),
                     APR_SUCCESS);
    d = body;
    cms = d2i_CMS_ContentInfo(NULL, &d, (long)len);
    ck_assert_ptr_nonnull(cms);
    ck_assert_int_eq(CMS_verify(cms, NULL, NULL, NULL, out,
                                CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY), 1);
    n = BIO_get_mem_data(out, &inner);
    d = (const unsigned char *)inner;
    p7 = d2i_PKCS7(NULL, &d, n);
    ck_assert_ptr_nonnull(p7);
    ck_assert_int_eq(sk_X509_num(p7->d.sign->cert), 1);
    ck_assert_int_eq(X509_cmp(sk_X509_value(p7->d.sign->cert, 0),
                              APR_ARRAY_IDX(next, 0, X509 *)), 0);
    PKCS7_free(p7);
    CMS_ContentInfo_free(cms);
    BIO_free(out);
}
END_TEST

START_TEST(retry_after_revoke_fails)
{
    client_t c;
    X509 *x = enrolled(&c, 4, "revoked.example", "rr-1");

    ck_assert_int_eq(store->ops->cert_revoke(store, tpool,
                                             scep_cert_serial_hex(tpool, x),
                                             4, apr_time_now()), APR_SUCCESS);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
    ck_assert_int_eq(count_certs(), 1);
}
END_TEST

START_TEST(ec_client_enrolls)
{
    client_t c;
    scep_pkimsg_t *rep;
    EVP_PKEY *ec = EVP_EC_gen("P-256");

    c.key = ec;
    c.self = ts_selfsigned(ec, "ec temporary");
    ts_csr(ec, "ec.example", "peers-secret", NULL, &c.csr, &c.csr_len);
    ts_request(SCEP_MSG_PKCSREQ, "ec-1", c.csr, c.csr_len, c.self, ec,
               NID_aes_128_cbc, NID_sha256, &c.req, &c.req_len);
    rep = roundtrip(c.req, c.req_len, ec, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    check_issued(ts_certrep_cert(rep), "ec.example");
    EVP_PKEY_free(ec);
}
END_TEST

START_TEST(certrep_prints)
{
    client_t c;
    scep_pkiop_reply_t *r;
    BIO *out = BIO_new(BIO_s_mem());
    char *text;
    long n;

    client(&c, 4, "print.example", "peers-secret", "print-1",
           NID_aes_128_cbc, NID_sha256);
    roundtrip(c.req, c.req_len, c.key, &r);
    ck_assert_int_eq(scep_pkimsg_print(tpool, out, r->body, r->len, c.key),
                     APR_SUCCESS);
    n = BIO_get_mem_data(out, &text);
    text = apr_pstrmemdup(tpool, text, (apr_size_t)n);
    ck_assert_ptr_nonnull(strstr(text, "3 (CertRep)"));
    ck_assert_ptr_nonnull(strstr(text, "0 (SUCCESS)"));
    ck_assert_ptr_nonnull(strstr(text, "print-1"));
    ck_assert_ptr_nonnull(strstr(text, "certificate 1"));
    ck_assert_ptr_nonnull(strstr(text, r->serial));
    BIO_free(out);
}
END_TEST

/* ------------------------------------------------------------------ */
/* what a certificate may say                                          */

/* A PKCSReq whose CSR asks for exts, with challenge. */
static void client_exts(client_t *c, int slot, const char *cn,
                        const char *challenge, const char *txid,
                        const char *exts[][2])
{
    c->key = tu_key(2048, slot);
    c->self = ts_selfsigned(c->key, "temporary identity");
    ts_csr(c->key, cn, challenge, exts, &c->csr, &c->csr_len);
    ts_request(SCEP_MSG_PKCSREQ, txid, c->csr, c->csr_len, c->self, c->key,
               NID_aes_128_cbc, NID_sha256, &c->req, &c->req_len);
}

START_TEST(sans_need_the_policy)
{
    static const char *ceo[][2] = {
        { "subjectAltName", "DNS:laptop.example,email:ceo@corp.test" },
        { NULL, NULL }
    };
    static const char *ok[][2] = {
        { "subjectAltName", "DNS:laptop.example" }, { NULL, NULL }
    };
    client_t c;
    scep_pkimsg_t *rep;

    /* no rule: no SAN at all */
    client_exts(&c, 4, "laptop", "peers-secret", "san-1", ok);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
    allow_sans();
    client_exts(&c, 4, "laptop", "peers-secret", "san-2", ceo);
    rep = roundtrip(c.req, c.req_len, NULL, NULL);
    assert_failure(rep, SCEP_FAIL_BADREQUEST);
    ck_assert_ptr_nonnull(strstr(rep->fail_info_text, "email:ceo@corp.test"));
    ck_assert_int_eq(count_certs(), 0);
    client_exts(&c, 4, "laptop", "peers-secret", "san-3", ok);
    rep = roundtrip(c.req, c.req_len, c.key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_str_eq(cert_sans(ts_certrep_cert(rep)), "DNS:laptop.example");
}
END_TEST

START_TEST(ca_subject_is_refused)
{
    client_t c;
    scep_cli_csr_t s;

    c.key = tu_key(2048, 4);
    c.self = ts_selfsigned(c.key, "tmp");
    memset(&s, 0, sizeof(s));
    s.subject = X509_get_subject_name(ts_ca()->cert);
    s.key = c.key;
    s.challenge = "peers-secret";
    c.csr = scep_cli_csr_der(tpool, scep_cli_csr(tpool, &s), &c.csr_len);
    ck_assert_ptr_nonnull(c.csr);
    cfg.names.reserved = ts_ca()->chain;
    ts_request(SCEP_MSG_PKCSREQ, "ca-dn-1", c.csr, c.csr_len, c.self, c.key,
               NID_aes_128_cbc, NID_sha256, &c.req, &c.req_len);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
    ck_assert_int_eq(count_certs(), 0);
}
END_TEST

/* A request refused for its names leaves its one-time challenge usable. */
START_TEST(refused_request_keeps_the_challenge)
{
    static const char *bad[][2] = {
        { "subjectAltName", "DNS:vpn.corp.test" }, { NULL, NULL }
    };
    const char *otp = "kept-challenge";
    client_t c;

    cfg.challenge_password = NULL;
    ck_assert_int_eq(store->ops->challenge_add(
                         store, tpool, scep_sha256_hex(tpool, otp, strlen(otp)),
                         SCEP_CHALLENGE_SCEP, NULL,
                         apr_time_now() + apr_time_from_sec(60)),
                     APR_SUCCESS);
    client_exts(&c, 4, "kept", otp, "kept-1", bad);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
    client(&c, 5, "kept", otp, "kept-2", NID_aes_128_cbc, NID_sha256);
    ck_assert_int_eq(roundtrip(c.req, c.req_len, c.key, NULL)->pki_status,
                     SCEP_STATUS_SUCCESS);
}
END_TEST

/* A binding fixes the names: the subject and the SANs it lists. */
START_TEST(binding_fixes_the_sans)
{
    static const char *more[][2] = {
        { "subjectAltName", "DNS:dev-1.example,DNS:www.example" },
        { NULL, NULL }
    };
    const char *otp = "binding-with-sans";
    scep_grant_t *g = scep_grant_make(tpool);
    scep_pkimsg_t *rep;
    client_t c;

    allow_sans();   /* the policy would allow both: the binding does not */
    cfg.challenge_password = NULL;
    g->subject = "CN=dev-1,O=scep-unit";
    APR_ARRAY_PUSH(g->sans, const char *) = "DNS:dev-1.example";
    ck_assert_int_eq(store->ops->challenge_add(
                         store, tpool, scep_sha256_hex(tpool, otp, strlen(otp)),
                         SCEP_CHALLENGE_SCEP, scep_grant_format(tpool, g),
                         apr_time_now() + apr_time_from_sec(60)),
                     APR_SUCCESS);
    client_exts(&c, 4, "dev-1", otp, "bind-1", more);
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
    client(&c, 5, "dev-1", otp, "bind-2", NID_aes_128_cbc, NID_sha256);
    rep = roundtrip(c.req, c.req_len, c.key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_str_eq(cert_sans(ts_certrep_cert(rep)), "DNS:dev-1.example");
}
END_TEST

/* Renew old (signed with c's key) with a fresh key; exts may be NULL. */
static void renewal(client_t *c, X509 *old, int slot, const char *cn,
                    const char *txid, const char *exts[][2],
                    EVP_PKEY **nk, const unsigned char **req,
                    apr_size_t *len)
{
    const unsigned char *csr;
    apr_size_t csr_len;

    *nk = tu_key(2048, slot);
    ts_csr(*nk, cn, NULL, exts, &csr, &csr_len);
    ts_request(SCEP_MSG_RENEWALREQ, txid, csr, csr_len, old, c->key,
               NID_aes_128_cbc, NID_sha256, req, len);
}

START_TEST(renewal_keeps_names_once)
{
    static const char *sans[][2] = {
        { "subjectAltName", "DNS:r.example" }, { NULL, NULL }
    };
    static const char *more[][2] = {
        { "subjectAltName", "DNS:r.example,DNS:admin.example" },
        { NULL, NULL }
    };
    client_t c;
    scep_pkiop_reply_t *r1, *r2;
    scep_pkimsg_t *rep;
    scep_cert_rec_t *rec;
    EVP_PKEY *nk;
    const unsigned char *req;
    apr_size_t len;
    X509 *old;
    const char *old_serial;

    allow_sans();
    client_exts(&c, 4, "r", "peers-secret", "ren-0", sans);
    rep = roundtrip(c.req, c.req_len, c.key, NULL);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    old = ts_certrep_cert(rep);
    old_serial = scep_cert_serial_hex(tpool, old);
    cfg.renewal_window_percent = 100;
    cfg.revoke_superseded = 1;
    /* new names: refused, though the policy would allow them */
    renewal(&c, old, 5, "r", "ren-1", more, &nk, &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    /* no SANs asked: the old ones are kept */
    renewal(&c, old, 5, "r", "ren-2", NULL, &nk, &req, &len);
    rep = roundtrip(req, len, c.key, &r1);
    ck_assert_msg(rep->pki_status == SCEP_STATUS_SUCCESS, "%s", r1->summary);
    ck_assert_str_eq(cert_sans(ts_certrep_cert(rep)), "DNS:r.example");
    /* its retry: the same certificate */
    rep = roundtrip(req, len, c.key, &r2);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_str_eq(r2->tag, "repeated");
    ck_assert_str_eq(r1->serial, r2->serial);
    /* a second renewal of the same certificate */
    renewal(&c, old, 6, "r", "ren-3", NULL, &nk, &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    ck_assert_int_eq(count_certs(), 2);
    /* superseded, and revoked with SCEPRevokeSuperseded */
    ck_assert_int_eq(store->ops->cert_by_serial(store, tpool, old_serial,
                                                &rec), APR_SUCCESS);
    ck_assert_pstr_eq(rec->superseded_by, r1->serial);
    ck_assert_int_eq(rec->status, SCEP_CERT_REVOKED);
    ck_assert_int_eq(rec->revocation_reason, SCEP_REASON_SUPERSEDED);
}
END_TEST

/* A captured renewal replayed after its certificate was revoked for
 * keyCompromise gets nothing; nor does a new request for that key. */
START_TEST(renewal_replay_after_revoke)
{
    client_t c, again;
    scep_pkiop_reply_t *r;
    scep_pkimsg_t *rep;
    EVP_PKEY *nk;
    const unsigned char *req, *csr;
    apr_size_t len, csr_len;
    X509 *old = enrolled(&c, 4, "replay.example", "replay-0");

    cfg.renewal_window_percent = 100;
    renewal(&c, old, 5, "replay.example", "replay-1", NULL, &nk, &req, &len);
    rep = roundtrip(req, len, c.key, &r);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_int_eq(store->ops->cert_revoke(store, tpool, r->serial,
                                             SCEP_REASON_KEY_COMPROMISE,
                                             apr_time_now()), APR_SUCCESS);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    /* the compromised key, with a good challenge and a fresh ID */
    again.key = nk;
    again.self = ts_selfsigned(nk, "tmp");
    ts_csr(nk, "replay.example", "peers-secret", NULL, &csr, &csr_len);
    ts_request(SCEP_MSG_PKCSREQ, "replay-2", csr, csr_len, again.self, nk,
               NID_aes_128_cbc, NID_sha256, &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    ck_assert_int_eq(count_certs(), 2);
}
END_TEST

/* Two CAs on one store: neither sees the other's records. */
START_TEST(cas_share_a_store_apart)
{
    scep_store_t *shared = store, *a, *b;
    scep_pkiop_reply_t *r;
    scep_pkimsg_t *rep;
    client_t c;
    const unsigned char *req;
    apr_size_t len;
    apr_array_header_t *recs;

    a = scep_store_scoped(tpool, shared, "AAAA");
    b = scep_store_scoped(tpool, shared, "BBBB");
    store = a;
    cfg.approval_manual = 1;
    client(&c, 4, "apart.example", "peers-secret", "apart-1",
           NID_aes_128_cbc, NID_sha256);
    ck_assert_int_eq(roundtrip(c.req, c.req_len, NULL, NULL)->pki_status,
                     SCEP_STATUS_PENDING);
    ck_assert_int_eq(a->ops->pending_set_state(a, tpool, "apart-1",
                                               SCEP_PENDING_APPROVED, NULL),
                     APR_SUCCESS);
    /* polled at the other CA: unknown there */
    store = b;
    poll_req(&c, "apart-1", &req, &len);
    assert_failure(roundtrip(req, len, NULL, NULL), SCEP_FAIL_BADREQUEST);
    store = a;
    rep = roundtrip(req, len, c.key, &r);
    ck_assert_int_eq(rep->pki_status, SCEP_STATUS_SUCCESS);
    ck_assert_int_eq(b->ops->cert_list(b, tpool, -1, &recs), APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 0);
    ck_assert_int_eq(a->ops->cert_list(a, tpool, -1, &recs), APR_SUCCESS);
    ck_assert_int_eq(recs->nelts, 1);
}
END_TEST

/* A used one-time challenge passes again only for the very request that
 * used it (whose certificate a crash may have lost), never for another
 * CSR of the same transaction and key, even once the first certificate
 * was revoked. */
START_TEST(used_challenge_never_issues_again)
{
    const char *otp = "used-once";
    client_t c;
    const unsigned char *csr2, *req2;
    apr_size_t csr2_len, req2_len;
    scep_pkiop_reply_t *r;
    int i;

    cfg.challenge_password = NULL;
    ck_assert_int_eq(store->ops->challenge_add(
                         store, tpool, scep_sha256_hex(tpool, otp, strlen(otp)),
                         SCEP_CHALLENGE_SCEP, NULL,
                         apr_time_now() + apr_time_from_sec(600)),
                     APR_SUCCESS);
    client(&c, 4, "first.example", otp, "reuse-1", NID_aes_128_cbc,
           NID_sha256);
    ck_assert_int_eq(roundtrip(c.req, c.req_len, c.key, &r)->pki_status,
                     SCEP_STATUS_SUCCESS);
    ck_assert_int_eq(store->ops->cert_revoke(store, tpool, r->serial, 3,
                                             apr_time_now()), APR_SUCCESS);
    ts_csr(c.key, "second.example", otp, NULL, &csr2, &csr2_len);
    ts_request(SCEP_MSG_PKCSREQ, "reuse-1", csr2, csr2_len, c.self, c.key,
               NID_aes_128_cbc, NID_sha256, &req2, &req2_len);
    for (i = 0; i < 3; ++i) {
        assert_failure(roundtrip(req2, req2_len, NULL, NULL),
                       SCEP_FAIL_BADREQUEST);
    }
    /* the first request again: its certificate is revoked */
    assert_failure(roundtrip(c.req, c.req_len, NULL, NULL),
                   SCEP_FAIL_BADREQUEST);
    ck_assert_int_eq(count_certs(), 1);
}
END_TEST

Suite *suite_pkiop(void)
{
    Suite *s = suite_create("pkiop");
    TCase *tc = tcase_create("pkiop");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, captured_requests_enroll, 0,
                        (int)(sizeof(captured) / sizeof(captured[0])));
    tcase_add_test(tc, captured_des_without_legacy_is_badalg);
    tcase_add_loop_test(tc, cipher_digest_matrix, 0, 9);
    tcase_add_test(tc, oaep_is_mirrored);
    tcase_add_test(tc, keyid_recipient_enrolls);
    tcase_add_test(tc, keyid_recipient_with_des_needs_legacy);
    tcase_add_test(tc, wrong_challenge_is_badrequest);
    tcase_add_test(tc, one_time_challenge_is_consumed);
    tcase_add_test(tc, bound_challenge_enrolls_its_subject_only);
    tcase_add_test(tc, bad_signature_is_badmessagecheck);
    tcase_add_test(tc, signer_key_must_be_csr_key);
    tcase_add_test(tc, retry_returns_the_same_certificate);
    tcase_add_test(tc, ca_true_request_gets_the_template);
    tcase_add_test(tc, garbage_is_400);
    tcase_add_loop_test(tc, renewal_both_ways, 0, 2);
    tcase_add_test(tc, renewal_refused);
    tcase_add_test(tc, key_of_another_subject_is_refused);
    tcase_add_test(tc, small_key_is_refused);
    tcase_add_test(tc, get_cert);
    tcase_add_test(tc, get_crl_after_revoke);
    tcase_add_test(tc, manual_approval_and_certpoll);
    tcase_add_test(tc, certpoll_refusals);
    tcase_add_test(tc, unknown_message_type_is_badrequest);
    tcase_add_test(tc, undecryptable_envelope_is_uniform);
    tcase_add_test(tc, insert_failure_gives_no_certificate);
    tcase_add_test(tc, serial_collision_is_retried);
    tcase_add_test(tc, next_ca_answer);
    tcase_add_test(tc, retry_after_revoke_fails);
    tcase_add_test(tc, ec_client_enrolls);
    tcase_add_test(tc, certrep_prints);
    tcase_add_test(tc, sans_need_the_policy);
    tcase_add_test(tc, ca_subject_is_refused);
    tcase_add_test(tc, refused_request_keeps_the_challenge);
    tcase_add_test(tc, binding_fixes_the_sans);
    tcase_add_test(tc, renewal_keeps_names_once);
    tcase_add_test(tc, renewal_replay_after_revoke);
    tcase_add_test(tc, cas_share_a_store_apart);
    tcase_add_test(tc, used_challenge_never_issues_again);
    suite_add_tcase(s, tc);
    return s;
}
