#ifndef SCEP_TOOLS_CLIENT_H
#define SCEP_TOOLS_CLIENT_H

/* What the scep-ota commands share: their error and usage messages,
 * option tables, files, hex, and the SCEP client's pieces: the CSR, the
 * certificates it makes (a self-signed signer, or a set issued by a CA),
 * the request's messageData and the content of a CertRep. The unit tests
 * and fuzz targets build their CSRs and certificates with it too. */

#include <stdarg.h>
#include <stdio.h>

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "scep_ota/scep_pkimsg.h"

/* ------------------------------------------------------------------ */
/* messages and options                                                */

/** "scep-ota CMD: MESSAGE" on standard error (standard output flushed
 * first, OpenSSL's error queue emptied). Returns 1, the exit status. */
int scep_cli_fail(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int scep_cli_vfail(const char *cmd, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/** Writes the lines of a usage text (NULL-ended) to out; returns 0 for
 * standard output (asked for), else 2 (a usage error). */
int scep_cli_usage(FILE *out, const char *const *text);

/** An option that takes a value, stored as a const char * at offset in
 * the command's options structure. A table ends with a NULL name. */
typedef struct {
    const char *name;
    const char *alias;           /* or NULL */
    apr_size_t offset;
} scep_cli_opt_t;

/** The slot of option arg in base, or NULL when the table lacks it. */
const char **scep_cli_opt_slot(const scep_cli_opt_t *table, void *base,
                               const char *arg);

/** "-h" or "--help". */
int scep_cli_is_help(const char *arg);

/* ------------------------------------------------------------------ */
/* files and text                                                      */

/** A whole file, or standard input for "-", shorter than max bytes.
 * strict: an error while reading fails (else what came before it is the
 * content, as for a directory: none). */
apr_status_t scep_cli_read(apr_pool_t *p, const char *path, apr_size_t max,
                           int strict, unsigned char **data,
                           apr_size_t *len);

/** Writes bytes to path ("-": standard output); 1 on success. */
int scep_cli_write(const char *path, const void *data, apr_size_t len);

/** PEM of a certificate, or of a CSR, to path; 1 on success. */
int scep_cli_write_cert(const char *path, X509 *x);
int scep_cli_write_csr(const char *path, X509_REQ *req);

/** Upper-case hex of n bytes, the bytes separated by sep (0: none). */
const char *scep_cli_hex(apr_pool_t *p, const unsigned char *b,
                         apr_size_t n, char sep);

/** Hex (an even number of digits, at least two) to bytes; 1 on success. */
int scep_cli_unhex(apr_pool_t *p, const char *s, unsigned char **out,
                   apr_size_t *len);

/** "/CN=x/O=y" ("\/": a slash inside a value) as a name. strict: every
 * field has a value and there is at least one field; else an empty value,
 * a trailing slash and "/" alone are taken too. NULL when malformed; the
 * caller frees the name. */
X509_NAME *scep_cli_subject(apr_pool_t *p, const char *text, int strict);

/* ------------------------------------------------------------------ */
/* keys and certificates                                               */

/** The first key of a file (or store URI), or NULL and *err. */
EVP_PKEY *scep_cli_load_key(apr_pool_t *p, const char *path,
                            const char **err);

/** The certificates of a file, or NULL and *err. */
apr_array_header_t *scep_cli_load_certs(apr_pool_t *p, const char *path,
                                        const char **err);

/** A certificate file (its first certificate, and the rest in *certs)
 * with the key of key_file that belongs to it. */
apr_status_t scep_cli_load_pair(apr_pool_t *p, const char *cert_file,
                                const char *key_file,
                                apr_array_header_t **certs, EVP_PKEY **key,
                                const char **err);

/** One extension in openssl's configuration syntax; a list ends with
 * NID_undef. */
typedef struct {
    int nid;
    const char *value;
} scep_cli_ext_t;

/** What a certificate is made of. */
typedef struct {
    const X509_NAME *subject;
    EVP_PKEY *key;               /* whose public key it certifies */
    X509 *issuer;                /* NULL: self-signed with key */
    EVP_PKEY *issuer_key;
    long serial;                 /* > 0: this one; else random: */
    int serial_bits;             /* of so many bits, */
    int serial_top;              /* BN_RAND_TOP_ONE or BN_RAND_TOP_ANY */
    long not_before;             /* seconds from now (< 0: ago) */
    long not_after;              /* seconds from now */
    const ASN1_TIME *not_after_max; /* never later than this, or NULL */
    const scep_cli_ext_t *exts;  /* or NULL */
    const EVP_MD *md;            /* NULL: SHA-256 */
} scep_cli_cert_t;

/** The signed certificate (freed with the pool), or NULL with OpenSSL's
 * error queue saying why. */
X509 *scep_cli_cert(apr_pool_t *p, const scep_cli_cert_t *spec);

/** What a CSR is made of. */
typedef struct {
    const X509_NAME *subject;
    EVP_PKEY *key;
    const char *challenge;       /* challengePassword (UTF-8), or NULL */
    const char *const *exts;     /* "name", "value" pairs as for openssl
                                  * req, NULL-ended; or NULL */
    const EVP_MD *md;            /* NULL: SHA-256 */
} scep_cli_csr_t;

/** The signed CSR (freed with the pool), or NULL. */
X509_REQ *scep_cli_csr(apr_pool_t *p, const scep_cli_csr_t *spec);

/** DER of a CSR, or NULL. */
const unsigned char *scep_cli_csr_der(apr_pool_t *p, X509_REQ *req,
                                      apr_size_t *len);

/* ------------------------------------------------------------------ */
/* the SCEP messages                                                   */

/** GetCertInitial's messageData, IssuerAndSubject ::= SEQUENCE { issuer
 * Name, subject Name }, DER; NULL on failure. */
const unsigned char *scep_cli_issuer_and_subject(apr_pool_t *p,
                                                 const X509_NAME *issuer,
                                                 const X509_NAME *subject,
                                                 apr_size_t *len);

/** GetCert's and GetCRL's, IssuerAndSerialNumber with a hex serial. */
const unsigned char *scep_cli_issuer_and_serial(apr_pool_t *p,
                                                const X509_NAME *issuer,
                                                const char *serial_hex,
                                                apr_size_t *len);

/** The first certificate of a set that can receive an envelope
 * (keyEncipherment, or no key usage), else the first. */
X509 *scep_cli_pick_recipient(const apr_array_header_t *certs);

/** Builds req with a senderNonce: nonce_hex, else 16 random bytes.
 * APR_EINVAL when nonce_hex is no hex, APR_EGENERAL when the message
 * cannot be built (or no randomness). */
apr_status_t scep_cli_build_request(apr_pool_t *p, scep_request_t *req,
                                    const char *nonce_hex,
                                    const unsigned char **der,
                                    apr_size_t *len);

/** The certificates and CRLs of a decrypted CertRep's degenerate
 * SignedData (freed with the pool; either may be NULL), or APR_EINVAL
 * when the content is no SignedData. */
apr_status_t scep_cli_certrep_content(apr_pool_t *p, const scep_pkimsg_t *m,
                                      STACK_OF(X509) **certs,
                                      STACK_OF(X509_CRL) **crls);

#endif /* SCEP_TOOLS_CLIENT_H */
