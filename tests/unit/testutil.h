#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <check.h>
#include <apr_pools.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

/* A pool per test, created by the fixture. */
extern apr_pool_t *tpool;
void tpool_setup(void);
void tpool_teardown(void);

/* An RSA key (cached per size so a test run makes few). */
EVP_PKEY *tu_key(int bits, int slot);

typedef struct {
    const char *cn;
    int ca;                 /* basicConstraints CA:TRUE */
    unsigned int ku;        /* keyUsage bits, 0 = no extension */
} tu_cert_opts_t;

/* A certificate for key, signed by issuer/issuer_key (self-signed if NULL). */
X509 *tu_cert(const tu_cert_opts_t *o, EVP_PKEY *key, X509 *issuer,
              EVP_PKEY *issuer_key);

/* Writes PEM of the objects into a temporary file; returns its path. */
const char *tu_write_certs(X509 *const *certs, int n);
const char *tu_write_key(EVP_PKEY *key);
const char *tu_write_bytes(const char *data, apr_size_t len);

Suite *suite_ca(void);
Suite *suite_caps(void);
Suite *suite_challenge(void);
Suite *suite_crl(void);
Suite *suite_audit(void);
Suite *suite_crypt(void);
Suite *suite_issue(void);
Suite *suite_policy(void);
Suite *suite_log(void);
Suite *suite_ota(void);
Suite *suite_pkimsg(void);
Suite *suite_pkiop(void);
Suite *suite_store(void);
Suite *suite_query(void);

#endif
