#ifndef SCEP_CRYPT_H
#define SCEP_CRYPT_H

/**
 * @file scep_crypt.h
 * The core's base, which SCEP, OTA and the store stand on: OpenSSL
 * objects tied to APR pools, loading certificates and keys, hashes and
 * names, and the few checks every PKI setup needs.
 * Every OpenSSL version difference lives in scep_crypt.c.
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>
#include <openssl/evp.h>
#include <openssl/cms.h>

/** Frees the object when the pool is cleared or destroyed; returns it. */
X509 *scep_track_x509(apr_pool_t *p, X509 *x);
EVP_PKEY *scep_track_pkey(apr_pool_t *p, EVP_PKEY *k);
X509_CRL *scep_track_crl(apr_pool_t *p, X509_CRL *crl);
X509_REQ *scep_track_req(apr_pool_t *p, X509_REQ *req);
CMS_ContentInfo *scep_track_cms(apr_pool_t *p, CMS_ContentInfo *cms);

/** Every certificate of certs (X509 *) as a trust anchor, in a store freed
 * with p; NULL when out of memory. */
X509_STORE *scep_x509_store(apr_pool_t *p, const apr_array_header_t *certs);

/** Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo. */
const char *scep_key_hash(apr_pool_t *p, EVP_PKEY *key);

/** The same for a parsed SubjectPublicKeyInfo (of a CSR or certificate),
 * without OpenSSL's encoder where its bytes are what it would write; NULL
 * when its key does not decode. */
const char *scep_spki_hash(apr_pool_t *p, X509_PUBKEY *pub);

/** Upper-case hex of n bytes, no separator (NULL only if OpenSSL fails). */
const char *scep_upper_hex(apr_pool_t *p, const unsigned char *b,
                           apr_size_t n);

/** Lower-case hex SHA-256 of bytes (how one-time challenges are stored). */
const char *scep_sha256_hex(apr_pool_t *p, const void *data, apr_size_t len);

/** Upper-case hex of a certificate's serial number, no leading zeros. */
const char *scep_serial_hex(apr_pool_t *p, const ASN1_INTEGER *serial);

/** The certificate's serial as scep_serial_hex gives it. */
const char *scep_cert_serial_hex(apr_pool_t *p, X509 *cert);

/** One-line RFC 2253 form of a name, as the store keeps subjects. */
const char *scep_name_rfc2253(apr_pool_t *p, const X509_NAME *name);

/**
 * Copies a parsed SubjectPublicKeyInfo into to when its bytes are what
 * OpenSSL's encoder would write for its key (RSA, NULL parameters, a DER
 * RSAPublicKey), without building encoder or decoder contexts. 1: copied;
 * 0: not such a key (go through the EVP_PKEY); -1: out of memory.
 */
int scep_spki_copy(X509_PUBKEY *to, X509_PUBKEY *from);

/** True when the string is an OpenSSL store URI ("scheme:..."), not a path. */
int scep_is_uri(const char *path_or_uri);

/**
 * Loads every certificate from a file (PEM with one or more certificates, or
 * DER) or an OpenSSL store URI, in file order, into *certs (X509 *, tracked by
 * p). On failure returns an error and sets *err to a sentence an admin can act
 * on, e.g. "file does not exist" or "contains no certificate".
 */
apr_status_t scep_load_certs(apr_pool_t *p, const char *path,
                             apr_array_header_t **certs, const char **err);

/** Loads every private key from a file or store URI into *keys (EVP_PKEY *). */
apr_status_t scep_load_keys(apr_pool_t *p, const char *path,
                            apr_array_header_t **keys, const char **err);

/** 1 when key is the private half of cert's public key. */
int scep_key_matches_cert(EVP_PKEY *key, X509 *cert);

/** 1 when the certificate may issue certificates (CA:TRUE, keyCertSign). */
int scep_cert_is_ca(X509 *cert);

/** 1 when issuer's key signed cert and the names chain. */
int scep_cert_issued_by(X509 *cert, X509 *issuer);

#define SCEP_KU_DIGITAL_SIGNATURE 0x80u
#define SCEP_KU_KEY_ENCIPHERMENT  0x20u

/** The keyUsage bits (X509v3_KU_*); 0 when the extension is absent. */
unsigned int scep_cert_key_usage(X509 *cert);
/** 1 when the certificate carries a keyUsage extension. */
int scep_cert_has_key_usage(X509 *cert);

/** One-line subject, for messages. */
const char *scep_cert_subject(apr_pool_t *p, X509 *cert);

/** DER encoding of a certificate, allocated from p. */
apr_status_t scep_cert_der(apr_pool_t *p, X509 *cert,
                           const unsigned char **der, apr_size_t *len);

/**
 * A degenerate certs-only PKCS#7 SignedData (no signers, no content) holding
 * certs in the given order (X509 * array), DER encoded from p. PKCS#7 keeps
 * the certificates in the order given; callers rely on that.
 */
apr_status_t scep_certs_only_der(apr_pool_t *p, const apr_array_header_t *certs,
                                 const unsigned char **der, apr_size_t *len);

/** The same with CRLs (X509_CRL *) too; either array may be NULL. */
apr_status_t scep_degenerate_der(apr_pool_t *p,
                                 const apr_array_header_t *certs,
                                 const apr_array_header_t *crls,
                                 const unsigned char **der, apr_size_t *len);

/** DER encoding of a CMS ContentInfo, allocated from p. */
apr_status_t scep_cms_der(apr_pool_t *p, CMS_ContentInfo *cms,
                          const unsigned char **der, apr_size_t *len);

/** Hex of the digest (e.g. "SHA1") of a certificate's DER, upper case. */
const char *scep_cert_fingerprint(apr_pool_t *p, X509 *cert, const char *md);

/**
 * Makes single DES available to the servers that allow legacy algorithms:
 * loads OpenSSL's default and legacy providers into an OpenSSL library
 * context of their own, made once per process. The default library context
 * is left alone, so mod_ssl and every other server in the process never get
 * single DES. (MD5 is in OpenSSL's default provider; only the servers' own
 * policy refuses it.) The context is also remembered in p, which should live
 * as long as the process (httpd's process pool): the module reloaded at a
 * restart finds it there. *err says why when the provider cannot be loaded.
 */
apr_status_t scep_crypt_enable_legacy(apr_pool_t *p, const char **err);

/**
 * The library context to parse, decrypt and build CMS in for a server that
 * allows legacy algorithms or not: the legacy context once
 * scep_crypt_enable_legacy made it, else NULL (OpenSSL's default context).
 */
OSSL_LIB_CTX *scep_crypt_libctx(int allow_legacy);

/**
 * A library context without algorithms, to parse a structure whose public
 * key is already known in decoded form elsewhere: OpenSSL 3.0 decodes
 * every SubjectPublicKeyInfo it parses, at the cost of about half an
 * RSA-2048 signature; in this context that step fails at once and the
 * key stays bytes (X509_PUBKEY_get0 gives NULL). Nothing parsed in it may
 * be used for a cryptographic operation with its own context: pass the
 * default one (NULL) to the *_ex function. NULL if it cannot be made.
 */
OSSL_LIB_CTX *scep_crypt_bare_libctx(void);

#endif /* SCEP_CRYPT_H */
