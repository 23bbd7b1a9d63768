#ifndef SCEP_CA_H
#define SCEP_CA_H

/**
 * @file scep_ca.h
 * The issuing CA and its optional RA: which key signs CertReps, which key
 * decrypts requests, and the GetCACert answer. Assembled once at startup
 * from the material the configuration loaded, after checking that it fits
 * together; nothing here changes per request.
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

/** What the configuration loaded (arrays of X509 * / EVP_PKEY *). */
typedef struct scep_ca_material_t {
    const char *ca_cert_file;
    apr_array_header_t *ca_certs; /* issuing CA first, then its issuers */
    const char *ca_key_file;
    apr_array_header_t *ca_keys;
    const char *ra_cert_file;     /* NULL: no RA, the CA does the CMS work */
    apr_array_header_t *ra_certs;
    const char *ra_key_file;
    apr_array_header_t *ra_keys;
} scep_ca_material_t;

typedef struct scep_ca_t {
    X509 *cert;                  /* the issuing CA */
    EVP_PKEY *key;
    apr_array_header_t *chain;   /* X509 *: the issuing CA, then its issuers */
    X509 *sign_cert;             /* signs CertReps: RA signing cert, or CA */
    EVP_PKEY *sign_key;
    X509 *decrypt_cert;          /* requests are encrypted to it: RA or CA */
    EVP_PKEY *decrypt_key;
    int has_ra;
    /* GetCACert, computed once */
    const char *getcacert_type;
    const unsigned char *getcacert_body;
    apr_size_t getcacert_len;
    X509 *top_cert;              /* the top CA certificate GetCACert sends:
                                    the CA alone without an RA, else the
                                    last of the chain */
    const char *fingerprint_sha1; /* of top_cert (the OTA CAFingerprint) */
    const char *id;              /* scep_ca_id(cert): whose records these
                                    are, in the store */
    X509_EXTENSION *crl_dp;      /* cRLDistributionPoints of the
                                    certificates it issues, or NULL */
    apr_array_header_t *issue_exts; /* X509_EXTENSION *: what every
                                    certificate it issues carries
                                    (scep_issue_exts) */
    X509_EXTENSION *ocsp_aia;    /* authorityInfoAccess (OCSP) of the
                                    certificates it issues, or NULL */
} scep_ca_t;

/**
 * A CA's identity in the store: the upper-case hex SHA-256 of its subject
 * (DER) followed by its SubjectPublicKeyInfo (DER). A CA certificate
 * issued again with the same name and key keeps its records; another name
 * or key is another CA (its CRL has another issuer). NULL on error.
 */
const char *scep_ca_id(apr_pool_t *p, X509 *ca_cert);

#define SCEP_CT_CA_CERT    "application/x-x509-ca-cert"
#define SCEP_CT_CA_RA_CERT "application/x-x509-ca-ra-cert"

/**
 * Checks the material and builds the CA. On failure *err names the
 * directive and the problem (key does not match, not a CA, RA key usage...).
 * Problems that do not stop the server are reported through *warning (NULL
 * when there is none).
 */
apr_status_t scep_ca_assemble(scep_ca_t **pca, apr_pool_t *p,
                              const scep_ca_material_t *m,
                              const char **err, const char **warning);

/**
 * Checks a SCEPCRLDistributionPoint URL: an absolute http, https or ldap
 * URL with a host (ldap may name none). On refusal *err says why.
 */
apr_status_t scep_crl_dp_check(apr_pool_t *p, const char *url,
                               const char **err);

/**
 * Gives the CA the cRLDistributionPoints extension (non-critical) its
 * certificates carry: one distribution point whose full name lists the
 * URLs (const char *, checked by scep_crl_dp_check), all of them places
 * of the same CRL. Built once, freed with p; none when urls is empty.
 */
apr_status_t scep_ca_set_crl_dps(scep_ca_t *ca, apr_pool_t *p,
                                 const apr_array_header_t *urls);

/**
 * Checks a SCEPOCSPURL URL: an absolute http URL with a host (RFC 6960
 * responders are reached over HTTP; https is accepted). On refusal *err
 * says why.
 */
apr_status_t scep_ocsp_url_check(apr_pool_t *p, const char *url,
                                 const char **err);

/**
 * Gives the CA the authorityInfoAccess extension (non-critical) its
 * certificates carry: one id-ad-ocsp access description per URL (const
 * char *, checked by scep_ocsp_url_check). Built once, freed with p; none
 * when urls is empty.
 */
apr_status_t scep_ca_set_ocsp_urls(scep_ca_t *ca, apr_pool_t *p,
                                   const apr_array_header_t *urls);

#endif /* SCEP_CA_H */
