#ifndef SCEP_ISSUE_H
#define SCEP_ISSUE_H

/**
 * @file scep_issue.h
 * Issuing certificates from a server-side template. The subject comes
 * from the CSR and the SANs from the server's decision (scep_policy.h);
 * every extension is the server's: keyUsage digitalSignature +
 * keyEncipherment, EKU clientAuth, basicConstraints CA:FALSE, subject and
 * authority key identifiers.
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

#include "scep_ota/scep_ca.h"

/** Bytes of random serial number (at least 64 bits of entropy). */
#define SCEP_SERIAL_BYTES 16
/** Defaults of SCEPCertificateLifetime and SCEPMinKeySize. */
#define SCEP_DEFAULT_LIFETIME_DAYS 365
#define SCEP_DEFAULT_MIN_KEY_SIZE 2048

/**
 * Decodes a DER PKCS#10 request and verifies its self-signature; the
 * request is tracked by p. APR_EINVAL when undecodable or badly signed.
 */
apr_status_t scep_csr_parse(apr_pool_t *p, const unsigned char *der,
                            apr_size_t len, X509_REQ **req);

/**
 * The same for the request of a PKIMessage signed by holder: when the
 * request's SubjectPublicKeyInfo is byte for byte holder's, the request
 * is parsed without decoding its key again (scep_crypt_bare_libctx) and
 * verified with holder's. *spki and *key are the key to certify, holder's
 * or the request's (tracked with it); holder may be NULL.
 */
apr_status_t scep_csr_parse_for(apr_pool_t *p, const unsigned char *der,
                                apr_size_t len, X509 *holder,
                                X509_REQ **preq, X509_PUBKEY **spki,
                                EVP_PKEY **key);

/** The PKCS#9 challengePassword of the request as UTF-8, or NULL. */
const char *scep_csr_challenge(apr_pool_t *p, X509_REQ *req);

/**
 * Checks a public key against the policy: RSA of at least min_rsa_bits,
 * or EC on P-256, P-384 or P-521. On refusal *why says what is wrong.
 */
apr_status_t scep_key_check(apr_pool_t *p, EVP_PKEY *key, int min_rsa_bits,
                            const char **why);


/**
 * Adds an extension given in OpenSSL's configuration syntax (e.g.
 * NID_key_usage, "critical,digitalSignature"), with issuer as the issuer
 * for key identifiers (x itself when self-signed). 1 on success.
 */
int scep_x509_add_ext(X509 *x, X509 *issuer, int nid, const char *value);

/** How many extensions scep_issue_exts() builds. */
#define SCEP_ISSUE_EXTS 4

/**
 * The extensions that every certificate ca issues carries and that do not
 * depend on the certificate (basicConstraints, keyUsage, extendedKeyUsage,
 * authorityKeyIdentifier), built once into *exts (X509_EXTENSION *, freed
 * with p) for scep_ca_t.issue_exts.
 */
apr_status_t scep_issue_exts(apr_pool_t *p, X509 *ca,
                             apr_array_header_t **exts);

/**
 * Issues a certificate for the request's subject and key with the given
 * SANs (text form, scep_policy.h; decided by scep_names_decide) from the
 * template, signed by ca->cert/ca->key with SHA-256, valid from now (less
 * five minutes of clock skew) for lifetime_days and never past the CA's
 * own notAfter, with a fresh random serial. The certificate is tracked by
 * p. spki is the key to certify, NULL for the request's own (see
 * scep_csr_parse_for). APR_EINVAL: neither a subject nor a SAN.
 */
apr_status_t scep_issue_cert(apr_pool_t *p, const scep_ca_t *ca,
                             X509_REQ *req, X509_PUBKEY *spki, const apr_array_header_t *sans,
                             int lifetime_days, X509 **cert);

/**
 * A CRL signed by the CA (SHA-256) listing the revoked certificates in
 * recs (scep_cert_rec_t *; records not revoked are skipped), valid for
 * next_update_days. Tracked by p.
 */
apr_status_t scep_crl_build(apr_pool_t *p, const scep_ca_t *ca,
                            const apr_array_header_t *recs,
                            int next_update_days, X509_CRL **crl);

#endif /* SCEP_ISSUE_H */
