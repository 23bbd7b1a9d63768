/* Issuance from the template, CSR checks, key policy, CRLs. */

#include <string.h>

#include <apr_strings.h>
#include <openssl/ec.h>
#include <openssl/x509v3.h>

#include "testscep.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_store.h"

static X509_REQ *csr(EVP_PKEY *key, const char *cn, const char *challenge,
                     const char *exts[][2])
{
    const unsigned char *der;
    apr_size_t len;
    X509_REQ *req = NULL;

    ts_csr(key, cn, challenge, exts, &der, &len);
    ck_assert_int_eq(scep_csr_parse(tpool, der, len, &req), APR_SUCCESS);
    return req;
}

static int ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);

    ck_assert_int_ge(i, 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

/* The certificate as a relying party reads it. */
static X509 *reparse(X509 *x)
{
    unsigned char *der = NULL;
    const unsigned char *d;
    int n = i2d_X509(x, &der);
    X509 *back;

    ck_assert_int_gt(n, 0);
    d = der;
    back = scep_track_x509(tpool, d2i_X509(NULL, &d, n));
    OPENSSL_free(der);
    ck_assert_ptr_nonnull(back);
    return back;
}

/* A request whose key is its signer's is parsed without decoding the key
 * again and certifies the signer's; any other falls back to a full parse;
 * a bad self-signature is refused either way. */
START_TEST(csr_of_the_signer)
{
    EVP_PKEY *key = tu_key(2048, 4), *other = tu_key(2048, 5), *k = NULL;
    X509 *signer = ts_selfsigned(key, "temporary identity");
    const unsigned char *der;
    unsigned char *bad;
    apr_size_t len;
    X509_REQ *req = NULL;
    X509_PUBKEY *spki = NULL;
    X509 *x = NULL;

    ts_csr(key, "leaf", NULL, NULL, &der, &len);
    ck_assert_int_eq(scep_csr_parse_for(tpool, der, len, signer, &req, &spki,
                                        &k), APR_SUCCESS);
    ck_assert_ptr_eq(k, X509_get0_pubkey(signer));
    ck_assert_ptr_eq(spki, X509_get_X509_PUBKEY(signer));
    ck_assert_ptr_null(X509_REQ_get0_pubkey(req));   /* not decoded */
    ck_assert_int_eq(scep_issue_cert(tpool, ts_ca(), req, spki, NULL, 10, &x),
                     APR_SUCCESS);
    ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(reparse(x)), key), 1);
    ck_assert_str_eq(scep_spki_hash(tpool, spki), scep_key_hash(tpool, key));
    /* another signer: the request's own key */
    ck_assert_int_eq(scep_csr_parse_for(tpool, der, len,
                                        ts_selfsigned(other, "other"), &req,
                                        &spki, &k), APR_SUCCESS);
    ck_assert_int_eq(EVP_PKEY_eq(k, key), 1);
    ck_assert_ptr_eq(spki, X509_REQ_get_X509_PUBKEY(req));
    /* the signature's last byte changed */
    bad = apr_pmemdup(tpool, der, len);
    bad[len - 1] ^= 1;
    ck_assert_int_eq(scep_csr_parse_for(tpool, bad, len, signer, &req, &spki,
                                        &k), APR_EINVAL);
    ck_assert_int_eq(scep_csr_parse_for(tpool, bad, len, NULL, &req, &spki,
                                        &k), APR_EINVAL);
}
END_TEST

START_TEST(template_only)
{
    static const char *exts[][2] = {
        { "basicConstraints", "critical,CA:TRUE,pathlen:3" },
        { "keyUsage", "critical,keyCertSign,cRLSign" },
        { "extendedKeyUsage", "serverAuth,codeSigning" },
        { "nameConstraints", "permitted;DNS:example" },
        { "subjectAltName", "DNS:a.example,email:a@example,"
          "URI:https://a.example/,IP:192.0.2.1,RID:1.2.3.4" },
        { NULL, NULL }
    };
    X509_REQ *req = csr(tu_key(2048, 4), "wannabe", NULL, exts);
    apr_array_header_t *decided = apr_array_make(tpool, 4,
                                                 sizeof(const char *));
    X509 *x = NULL;
    GENERAL_NAMES *sans;
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned int n = 0;
    int i;

    /* the names the server decided on, not the CSR's */
    APR_ARRAY_PUSH(decided, const char *) = "DNS:a.example";
    APR_ARRAY_PUSH(decided, const char *) = "email:a@example";
    APR_ARRAY_PUSH(decided, const char *) = "URI:https://a.example/";
    APR_ARRAY_PUSH(decided, const char *) = "IP:192.0.2.1";
    ck_assert_int_eq(scep_issue_cert(tpool, ts_ca(), req, NULL, decided, 10, &x),
                     APR_SUCCESS);
    ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(ts_ca()->cert)), 1);
    ck_assert_int_eq(X509_get_version(x), X509_VERSION_3);
    ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(x),
                                   X509_REQ_get_subject_name(req)), 0);
    ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(x),
                                   X509_get_subject_name(ts_ca()->cert)), 0);
    ck_assert_int_eq(X509_get_ext_count(x), 6);
    ck_assert_int_eq(X509_check_ca(x), 0);
    ck_assert(ext_critical(x, NID_basic_constraints));
    ck_assert(ext_critical(x, NID_key_usage));
    ck_assert(!ext_critical(x, NID_subject_alt_name));
    ck_assert_uint_eq(X509_get_key_usage(x),
                      KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    ck_assert_uint_eq(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));
    ck_assert(X509_pubkey_digest(x, EVP_sha1(), md, &n));
    ck_assert_int_eq(X509_get0_subject_key_id(x)->length, (int)n);
    ck_assert_mem_eq(X509_get0_subject_key_id(x)->data, md, n);
    ck_assert_int_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
                                           X509_get0_subject_key_id(
                                               ts_ca()->cert)), 0);
    ck_assert_int_lt(X509_get_ext_by_NID(x, NID_name_constraints, -1), 0);
    sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    ck_assert_int_eq(sk_GENERAL_NAME_num(sans), 4);
    for (i = 0; i < 4; ++i) {
        ck_assert_int_ne(sk_GENERAL_NAME_value(sans, i)->type, GEN_RID);
    }
    GENERAL_NAMES_free(sans);
}
END_TEST

/* A CA certificate without subjectKeyIdentifier still issues, and the
 * authorityKeyIdentifier is the SHA-1 of its public key. */
START_TEST(ca_without_ski_issues)
{
    tu_cert_opts_t o = { "No SKI CA", 1, 0x80 | 0x20 | 0x04 | 0x02 };
    scep_ca_t ca = *ts_ca();
    X509_REQ *req = csr(tu_key(2048, 4), "leaf", NULL, NULL);
    X509 *x = NULL;
    const ASN1_OCTET_STRING *akid;
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned int n = 0;

    ca.cert = scep_track_x509(tpool, tu_cert(&o, ca.key, NULL, NULL));
    ck_assert_ptr_null(X509_get0_subject_key_id(ca.cert));
    ck_assert_int_eq(scep_issue_exts(tpool, ca.cert, &ca.issue_exts),
                     APR_SUCCESS);
    ck_assert_int_eq(scep_issue_cert(tpool, &ca, req, NULL, NULL, 10, &x),
                     APR_SUCCESS);
    akid = X509_get0_authority_key_id(x);
    ck_assert_ptr_nonnull(akid);
    ck_assert(X509_pubkey_digest(ca.cert, EVP_sha1(), md, &n));
    ck_assert_int_eq(akid->length, (int)n);
    ck_assert_int_eq(memcmp(akid->data, md, n), 0);
}
END_TEST

START_TEST(validity_and_serial)
{
    X509_REQ *req = csr(tu_key(2048, 4), "v", NULL, NULL);
    X509 *a = NULL, *b = NULL;
    const ASN1_INTEGER *s;
    int days = 0, secs = 0;

    ck_assert_int_eq(scep_issue_cert(tpool, ts_ca(), req, NULL, NULL, 30, &a),
                     APR_SUCCESS);
    ck_assert_int_eq(scep_issue_cert(tpool, ts_ca(), req, NULL, NULL, 30, &b),
                     APR_SUCCESS);
    s = X509_get0_serialNumber(a);
    ck_assert_int_eq(ASN1_STRING_length(s), SCEP_SERIAL_BYTES);
    ck_assert_int_ne(ASN1_STRING_get0_data(s)[0], 0);
    ck_assert_int_eq(ASN1_STRING_type(s), V_ASN1_INTEGER);
    ck_assert_uint_eq(strlen(scep_cert_serial_hex(tpool, a)),
                      2 * SCEP_SERIAL_BYTES);
    ck_assert_int_ne(ASN1_INTEGER_cmp(s, X509_get0_serialNumber(b)), 0);
    ck_assert(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(a),
                             X509_get0_notAfter(a)));
    ck_assert_int_eq(days, 30);
    ck_assert_int_lt(X509_cmp_current_time(X509_get0_notBefore(a)), 0);
    /* never past the CA's own end */
    ck_assert_int_eq(scep_issue_cert(tpool, ts_ca(), req, NULL, NULL, 365 * 100,
                                     &a),
                     APR_SUCCESS);
    ck_assert_int_eq(ASN1_TIME_compare(X509_get0_notAfter(a),
                                       X509_get0_notAfter(ts_ca()->cert)), 0);
}
END_TEST

START_TEST(empty_subject_needs_san)
{
    static const char *exts[][2] = {
        { "subjectAltName", "DNS:only.example" },
        { NULL, NULL }
    };
    apr_array_header_t *sans = apr_array_make(tpool, 1, sizeof(const char *));
    X509_REQ *req;
    X509 *x = NULL;
    X509_NAME *empty = X509_NAME_new();

    APR_ARRAY_PUSH(sans, const char *) = "DNS:only.example";
    req = csr(tu_key(2048, 4), NULL, NULL, exts);
    X509_REQ_set_subject_name(req, empty);
    ck_assert_int_eq(scep_issue_cert(tpool, ts_ca(), req, NULL, sans, 10, &x),
                     APR_SUCCESS);
    ck_assert(ext_critical(x, NID_subject_alt_name));
    /* the CSR's SAN alone is no SAN of the certificate */
    ck_assert_int_eq(scep_issue_cert(tpool, ts_ca(), req, NULL, NULL, 10, &x),
                     APR_EINVAL);
    X509_NAME_free(empty);
}
END_TEST

START_TEST(csr_signature_and_challenge)
{
    const unsigned char *der;
    unsigned char *bad;
    apr_size_t len;
    X509_REQ *req;
    ASN1_STRING *utf8 = ASN1_UTF8STRING_new();

    ts_csr(tu_key(2048, 4), "c", "s3cret", NULL, &der, &len);
    ck_assert_int_eq(scep_csr_parse(tpool, der, len, &req), APR_SUCCESS);
    ck_assert_str_eq(scep_csr_challenge(tpool, req), "s3cret");
    bad = apr_pmemdup(tpool, der, len);
    bad[len - 1] ^= 0x01;
    ck_assert_int_eq(scep_csr_parse(tpool, bad, len, &req), APR_EINVAL);
    ck_assert_int_eq(scep_csr_parse(tpool, der, len / 2, &req), APR_EINVAL);
    /* no challenge; a UTF8String one */
    ts_csr(tu_key(2048, 4), "c", NULL, NULL, &der, &len);
    ck_assert_int_eq(scep_csr_parse(tpool, der, len, &req), APR_SUCCESS);
    ck_assert_ptr_null(scep_csr_challenge(tpool, req));
    ASN1_STRING_set(utf8, "gr\xc3\xbc\xc3\x9f", -1);
    X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword,
                              V_ASN1_UTF8STRING, utf8->data, utf8->length);
    ck_assert_str_eq(scep_csr_challenge(tpool, req), "gr\xc3\xbc\xc3\x9f");
    ASN1_STRING_free(utf8);
}
END_TEST

/* The issued certificate carries the request's public key encoded as
 * OpenSSL encodes that key (RSA copied from the request, EC the long way),
 * its subjectKeyIdentifier is the hash of that key, and the store's key
 * hash of a parsed key is the same as of the key itself. */
static void same_public_key(EVP_PKEY *key)
{
    X509_REQ *req = csr(key, "key copy", NULL, NULL);
    X509 *x = NULL, *back;
    const unsigned char *in;
    unsigned char *want = NULL, *got = NULL, *der = NULL;
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned int n = 0;
    int wlen, glen, dlen;

    ck_assert_int_eq(scep_issue_cert(tpool, ts_ca(), req, NULL, NULL, 10, &x),
                     APR_SUCCESS);
    ck_assert_int_eq(X509_verify(x, X509_get0_pubkey(ts_ca()->cert)), 1);
    dlen = i2d_X509(x, &der);
    ck_assert_int_gt(dlen, 0);
    in = der;
    back = scep_track_x509(tpool, d2i_X509(NULL, &in, dlen));
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(back), key), 1);
    wlen = i2d_PUBKEY(key, &want);
    glen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(back), &got);
    ck_assert_int_gt(wlen, 0);
    ck_assert_int_eq(glen, wlen);
    ck_assert_mem_eq(got, want, (size_t)wlen);
    ck_assert(X509_pubkey_digest(back, EVP_sha1(), md, &n));
    ck_assert_int_eq(X509_get0_subject_key_id(back)->length, (int)n);
    ck_assert_mem_eq(X509_get0_subject_key_id(back)->data, md, n);
    /* the key hash of a parsed key is that of the key */
    ck_assert_str_eq(scep_spki_hash(tpool, X509_REQ_get_X509_PUBKEY(req)),
                     scep_key_hash(tpool, key));
    ck_assert_str_eq(scep_spki_hash(tpool, X509_get_X509_PUBKEY(back)),
                     scep_key_hash(tpool, key));
    OPENSSL_free(want);
    OPENSSL_free(got);
    OPENSSL_free(der);
}

START_TEST(public_key_as_encoded)
{
    EVP_PKEY *ec = EVP_EC_gen("P-256");

    same_public_key(tu_key(2048, 4));
    same_public_key(tu_key(2048, 5));
    same_public_key(ec);
    EVP_PKEY_free(ec);
    ck_assert_ptr_null(scep_spki_hash(tpool, NULL));
}
END_TEST

START_TEST(key_policy)
{
    const char *why = NULL;
    EVP_PKEY *ec = EVP_EC_gen("P-256"), *k1 = EVP_EC_gen("secp256k1");

    ck_assert_int_eq(scep_key_check(tpool, tu_key(2048, 4), 2048, &why),
                     APR_SUCCESS);
    ck_assert_int_eq(scep_key_check(tpool, tu_key(1024, 7), 2048, &why),
                     APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "1024"));
    ck_assert_int_eq(scep_key_check(tpool, ec, 2048, &why), APR_SUCCESS);
    ck_assert_int_eq(scep_key_check(tpool, k1, 2048, &why), APR_EINVAL);
    ck_assert_uint_eq(strlen(scep_key_hash(tpool, ec)), 64);
    ck_assert_str_ne(scep_key_hash(tpool, ec), scep_key_hash(tpool, k1));
    ck_assert_str_eq(scep_sha256_hex(tpool, "abc", 3),
                     "ba7816bf8f01cfea414140de5dae2223"
                     "b00361a396177a9cb410ff61f20015ad");
    EVP_PKEY_free(ec);
    EVP_PKEY_free(k1);
}
END_TEST

START_TEST(crl_lists_revoked_only)
{
    apr_array_header_t *recs = apr_array_make(tpool, 2,
                                              sizeof(scep_cert_rec_t *));
    scep_cert_rec_t *a = apr_pcalloc(tpool, sizeof(*a));
    scep_cert_rec_t *b = apr_pcalloc(tpool, sizeof(*b));
    X509_CRL *crl = NULL;
    X509_REVOKED *r;
    int crit = 0;
    ASN1_ENUMERATED *reason;

    a->serial = "4A1F00DEADBEEF";
    a->status = SCEP_CERT_REVOKED;
    a->revoked_at = apr_time_now();
    a->revocation_reason = 1;
    b->serial = "0123";
    b->status = SCEP_CERT_VALID;
    APR_ARRAY_PUSH(recs, scep_cert_rec_t *) = a;
    APR_ARRAY_PUSH(recs, scep_cert_rec_t *) = b;
    ck_assert_int_eq(scep_crl_build(tpool, ts_ca(), recs, 7, &crl),
                     APR_SUCCESS);
    ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(ts_ca()->cert)), 1);
    ck_assert_int_eq(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
    r = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(crl), 0);
    ck_assert_str_eq(scep_serial_hex(tpool,
                                     X509_REVOKED_get0_serialNumber(r)),
                     "4A1F00DEADBEEF");
    reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
    ck_assert_ptr_nonnull(reason);
    ck_assert_int_eq(ASN1_ENUMERATED_get(reason), 1);
    ASN1_ENUMERATED_free(reason);
    ck_assert_int_eq(X509_NAME_cmp(X509_CRL_get_issuer(crl),
                                   X509_get_subject_name(ts_ca()->cert)), 0);
}
END_TEST

Suite *suite_issue(void)
{
    Suite *s = suite_create("issue");
    TCase *tc = tcase_create("issue");

    tcase_add_checked_fixture(tc, ts_setup, ts_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, template_only);
    tcase_add_test(tc, csr_of_the_signer);
    tcase_add_test(tc, ca_without_ski_issues);
    tcase_add_test(tc, validity_and_serial);
    tcase_add_test(tc, empty_subject_needs_san);
    tcase_add_test(tc, csr_signature_and_challenge);
    tcase_add_test(tc, key_policy);
    tcase_add_test(tc, public_key_as_encoded);
    tcase_add_test(tc, crl_lists_revoked_only);
    suite_add_tcase(s, tc);
    return s;
}
