#ifndef TESTSCEP_H
#define TESTSCEP_H

/* SCEP test kit: the captured fixtures' CA, CSRs and requests built in C,
 * and CertRep opening with the client's key. */

#include "testutil.h"
#include "scep_ota/scep_ca.h"
#include "scep_ota/scep_pkimsg.h"

/* Fixture: tpool, the legacy library context, a fresh CA per test. */
void ts_setup(void);
void ts_teardown(void);

/* Makes the legacy library context (scep_crypt_libctx). */
void ts_load_legacy(void);

/* A file of tests/data/captured/. */
const char *ts_path(const char *name);
void ts_read(const char *name, const unsigned char **der, apr_size_t *len);
EVP_PKEY *ts_load_key(const char *name);

/* The fixtures' CA (ca.pem/ca.key), no RA. */
scep_ca_t *ts_ca(void);

/* A CSR (DER) for key; challenge and the extension config (as for
 * openssl req, e.g. "subjectAltName=DNS:a.example") may be NULL. */
void ts_csr(EVP_PKEY *key, const char *cn, const char *challenge,
            const char *ext_nid_value[][2], const unsigned char **der,
            apr_size_t *len);

/* The self-signed certificate a client signs its PKCSReq with. */
X509 *ts_selfsigned(EVP_PKEY *key, const char *cn);

/* A request to ts_ca(). */
void ts_request(int type, const char *txid, const unsigned char *data,
                apr_size_t len, X509 *signer, EVP_PKEY *key, int cipher,
                int digest, const unsigned char **der, apr_size_t *dlen);

/* Decodes a CertRep, checks its signature and signer (the CA), and with
 * key decrypts the envelope; returns it. */
scep_pkimsg_t *ts_certrep(const unsigned char *der, apr_size_t len,
                          EVP_PKEY *key);

/* The first certificate (or CRL) of a decrypted SUCCESS CertRep. */
X509 *ts_certrep_cert(scep_pkimsg_t *rep);
X509_CRL *ts_certrep_crl(scep_pkimsg_t *rep);

#endif
