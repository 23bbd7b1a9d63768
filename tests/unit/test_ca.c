#include <string.h>

#include <openssl/pkcs7.h>

#include "testutil.h"
#include "scep_ota/scep_ca.h"

#define KU_CA (0x80 | 0x20 | 0x04 | 0x02)
#define DS 0x80
#define KE 0x20

typedef struct {
    EVP_PKEY *root_key, *ca_key, *ra_key, *ra2_key;
    X509 *root, *ca;
} pki_t;

static pki_t pki;

static void pki_setup(void)
{
    tu_cert_opts_t ro = { "Test Root", 1, KU_CA }, co = { "Test CA", 1, KU_CA };

    tpool_setup();
    pki.root_key = tu_key(1024, 0);
    pki.ca_key = tu_key(1024, 1);
    pki.ra_key = tu_key(1024, 2);
    pki.ra2_key = tu_key(1024, 3);
    pki.root = tu_cert(&ro, pki.root_key, NULL, NULL);
    pki.ca = tu_cert(&co, pki.ca_key, pki.root, pki.root_key);
}

static void pki_teardown(void)
{
    X509_free(pki.root);
    X509_free(pki.ca);
    tpool_teardown();
}

static apr_array_header_t *arr(void *a, void *b)
{
    apr_array_header_t *x = apr_array_make(tpool, 2, sizeof(void *));

    APR_ARRAY_PUSH(x, void *) = a;
    if (b) {
        APR_ARRAY_PUSH(x, void *) = b;
    }
    return x;
}

static void base_material(scep_ca_material_t *m)
{
    memset(m, 0, sizeof(*m));
    m->ca_cert_file = "ca.pem";
    m->ca_certs = arr(pki.ca, pki.root);
    m->ca_key_file = "ca.key";
    m->ca_keys = arr(pki.ca_key, NULL);
}

static X509 *ra_cert(const char *cn, EVP_PKEY *key, unsigned int ku)
{
    tu_cert_opts_t o = { cn, 0, ku };
    X509 *x = tu_cert(&o, key, pki.ca, pki.ca_key);

    return x;
}

START_TEST(ca_only_serves_bare_der)
{
    scep_ca_material_t m;
    scep_ca_t *ca = NULL;
    const char *err = NULL, *warn = NULL;
    const unsigned char *d;
    X509 *got;

    base_material(&m);
    ck_assert_int_eq(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_null(warn);
    ck_assert_str_eq(ca->getcacert_type, SCEP_CT_CA_CERT);
    d = ca->getcacert_body;
    got = d2i_X509(NULL, &d, (long)ca->getcacert_len);
    ck_assert_int_eq(X509_cmp(got, pki.ca), 0);
    ck_assert_ptr_eq(ca->sign_key, pki.ca_key);
    ck_assert_ptr_eq(ca->decrypt_key, pki.ca_key);
    ck_assert_uint_eq(strlen(ca->fingerprint_sha1), 40);
    X509_free(got);
}
END_TEST

START_TEST(key_mismatch_refused)
{
    scep_ca_material_t m;
    scep_ca_t *ca = NULL;
    const char *err = NULL, *warn;

    base_material(&m);
    m.ca_keys = arr(pki.root_key, NULL);
    ck_assert_int_ne(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "SCEPCAKeyFile"));
    ck_assert_ptr_nonnull(strstr(err, "does not match"));
}
END_TEST

START_TEST(leaf_as_ca_refused)
{
    scep_ca_material_t m;
    scep_ca_t *ca = NULL;
    const char *err = NULL, *warn;
    X509 *leaf = ra_cert("leaf", pki.ra_key, DS | KE);

    base_material(&m);
    m.ca_certs = arr(leaf, NULL);
    m.ca_keys = arr(pki.ra_key, NULL);
    ck_assert_int_ne(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "is not a CA"));
    X509_free(leaf);
}
END_TEST

START_TEST(chain_out_of_order_refused)
{
    scep_ca_material_t m;
    scep_ca_t *ca = NULL;
    const char *err = NULL, *warn;

    base_material(&m);
    m.ca_certs = arr(pki.root, pki.ca);
    m.ca_keys = arr(pki.root_key, NULL);
    ck_assert_int_ne(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "did not issue"));
}
END_TEST

START_TEST(one_ra_with_both_usages)
{
    scep_ca_material_t m;
    scep_ca_t *ca = NULL;
    const char *err = NULL, *warn;
    X509 *ra = ra_cert("RA", pki.ra_key, DS | KE);
    const unsigned char *d;
    PKCS7 *p7;

    base_material(&m);
    m.ra_cert_file = "ra.pem";
    m.ra_certs = arr(ra, NULL);
    m.ra_key_file = "ra.key";
    m.ra_keys = arr(pki.ra_key, NULL);
    ck_assert_int_eq(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_str_eq(ca->getcacert_type, SCEP_CT_CA_RA_CERT);
    ck_assert_ptr_eq(ca->sign_cert, ra);
    ck_assert_ptr_eq(ca->decrypt_cert, ra);
    d = ca->getcacert_body;
    p7 = d2i_PKCS7(NULL, &d, (long)ca->getcacert_len);
    ck_assert_int_eq(sk_X509_num(p7->d.sign->cert), 3);
    ck_assert_int_eq(X509_cmp(sk_X509_value(p7->d.sign->cert, 0), ra), 0);
    ck_assert_int_eq(X509_cmp(sk_X509_value(p7->d.sign->cert, 1), pki.ca), 0);
    ck_assert_int_eq(X509_cmp(sk_X509_value(p7->d.sign->cert, 2), pki.root),
                     0);
    PKCS7_free(p7);
    X509_free(ra);
}
END_TEST

START_TEST(sign_and_encrypt_pair_encryption_first)
{
    scep_ca_material_t m;
    scep_ca_t *ca = NULL;
    const char *err = NULL, *warn;
    X509 *sign = ra_cert("RA sign", pki.ra_key, DS);
    X509 *enc = ra_cert("RA enc", pki.ra2_key, KE);
    const unsigned char *d;
    PKCS7 *p7;

    base_material(&m);
    m.ra_cert_file = "ra.pem";
    m.ra_certs = arr(sign, enc);
    m.ra_key_file = "ra.key";
    m.ra_keys = arr(pki.ra2_key, pki.ra_key);
    ck_assert_int_eq(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_eq(ca->sign_key, pki.ra_key);
    ck_assert_ptr_eq(ca->decrypt_key, pki.ra2_key);
    d = ca->getcacert_body;
    p7 = d2i_PKCS7(NULL, &d, (long)ca->getcacert_len);
    ck_assert_int_eq(sk_X509_num(p7->d.sign->cert), 4);
    ck_assert_int_eq(X509_cmp(sk_X509_value(p7->d.sign->cert, 0), enc), 0);
    ck_assert_int_eq(X509_cmp(sk_X509_value(p7->d.sign->cert, 1), sign), 0);
    PKCS7_free(p7);
    X509_free(sign);
    X509_free(enc);
}
END_TEST

START_TEST(ra_wrong_usage_or_key_refused)
{
    scep_ca_material_t m;
    scep_ca_t *ca = NULL;
    const char *err = NULL, *warn;
    X509 *nr = ra_cert("RA nr", pki.ra_key, 0x40);
    X509 *sign = ra_cert("RA sign", pki.ra_key, DS);
    X509 *good = ra_cert("RA", pki.ra_key, DS | KE);

    base_material(&m);
    m.ra_cert_file = "ra.pem";
    m.ra_key_file = "ra.key";
    m.ra_keys = arr(pki.ra_key, NULL);
    m.ra_certs = arr(nr, NULL);
    ck_assert_int_ne(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "keyUsage"));
    m.ra_certs = arr(sign, NULL);
    ck_assert_int_ne(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "keyEncipherment"));
    m.ra_certs = arr(good, NULL);
    m.ra_keys = arr(pki.ra2_key, NULL);
    ck_assert_int_ne(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "SCEPRAKeyFile"));
    m.ra_keys = NULL;
    ck_assert_int_ne(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "SCEPRAKeyFile is not"));
    X509_free(nr);
    X509_free(sign);
    X509_free(good);
}
END_TEST

START_TEST(ca_without_cms_usage_warns)
{
    tu_cert_opts_t o = { "Sign-only CA", 1, 0x04 | 0x02 };
    X509 *ca_x = tu_cert(&o, pki.ca_key, NULL, NULL);
    scep_ca_material_t m;
    scep_ca_t *ca = NULL;
    const char *err = NULL, *warn = NULL;

    base_material(&m);
    m.ca_certs = arr(ca_x, NULL);
    ck_assert_int_eq(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(warn);
    ck_assert_ptr_nonnull(strstr(warn, "Apple"));
    X509_free(ca_x);
}
END_TEST

START_TEST(missing_half_refused)
{
    scep_ca_material_t m;
    scep_ca_t *ca = NULL;
    const char *err = NULL, *warn;

    base_material(&m);
    m.ca_keys = NULL;
    ck_assert_int_ne(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "SCEPCAKeyFile is not"));
    base_material(&m);
    m.ca_certs = NULL;
    ck_assert_int_ne(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "SCEPCACertificateFile is not"));
    memset(&m, 0, sizeof(m));
    m.ra_certs = arr(pki.ca, NULL);
    m.ra_keys = arr(pki.ca_key, NULL);
    ck_assert_int_ne(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "but no CA"));
}
END_TEST

/* A CA certificate issued again with the same name and key is the same
 * CA in the store; another key or another name is another CA. */
START_TEST(ca_identity_is_name_and_key)
{
    tu_cert_opts_t o = { "Identity CA", 1, 0x80 | 0x20 | 0x04 | 0x02 };
    tu_cert_opts_t renamed = { "Other CA", 1, 0x80 | 0x20 | 0x04 | 0x02 };
    EVP_PKEY *k = tu_key(2048, 1), *k2 = tu_key(2048, 2);
    X509 *a = tu_cert(&o, k, NULL, NULL), *again = tu_cert(&o, k, NULL, NULL);
    X509 *rekeyed = tu_cert(&o, k2, NULL, NULL);
    X509 *other = tu_cert(&renamed, k, NULL, NULL);
    const char *id = scep_ca_id(tpool, a);

    ck_assert_ptr_nonnull(id);
    ck_assert_uint_eq(strlen(id), 64);
    ck_assert_int_ne(X509_cmp(a, again), 0);   /* another serial */
    ck_assert_str_eq(scep_ca_id(tpool, again), id);
    ck_assert_str_ne(scep_ca_id(tpool, rekeyed), id);
    ck_assert_str_ne(scep_ca_id(tpool, other), id);
    X509_free(a);
    X509_free(again);
    X509_free(rekeyed);
    X509_free(other);
}
END_TEST

Suite *suite_ca(void)
{
    Suite *s = suite_create("ca");
    TCase *tc = tcase_create("ca");

    tcase_add_checked_fixture(tc, pki_setup, pki_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, ca_only_serves_bare_der);
    tcase_add_test(tc, key_mismatch_refused);
    tcase_add_test(tc, leaf_as_ca_refused);
    tcase_add_test(tc, chain_out_of_order_refused);
    tcase_add_test(tc, one_ra_with_both_usages);
    tcase_add_test(tc, sign_and_encrypt_pair_encryption_first);
    tcase_add_test(tc, ra_wrong_usage_or_key_refused);
    tcase_add_test(tc, ca_without_cms_usage_warns);
    tcase_add_test(tc, missing_half_refused);
    tcase_add_test(tc, ca_identity_is_name_and_key);
    suite_add_tcase(s, tc);
    return s;
}
