#ifndef OTA_PRIVATE_H
#define OTA_PRIVATE_H

/* Shared between the ota_*.c files of the core; not an API. */

#include <openssl/x509_vfy.h>

#include "scep_ota/ota_profile.h"
#include "scep_ota/ota_plist.h"

/* One attribute of an RDN; value is a template with %{VAR}s. */
typedef struct ota_atv_t {
    const char *oid;
    const char *value;
} ota_atv_t;

struct ota_subject_t {
    const char *tmpl;
    apr_array_header_t *rdns;    /* apr_array_header_t * of ota_atv_t */
};

struct ota_profile_t {
    const char *name;
    const char *identifier;
    int count;                   /* payloads in PayloadContent */
    /* serialized once so requests never share a plist_t between threads */
    const char *content_xml;     /* the PayloadContent array, XML */
    apr_size_t content_len;
    const char *shell_xml;       /* the profile without PayloadContent */
    apr_size_t shell_len;
};

struct ota_t {
    apr_pool_t *pool;
    ota_settings_t s;            /* defaults applied */
    const scep_ca_t *ca;
    const scep_caps_t *caps;
    X509_STORE *device_store;    /* OTADeviceCACertificateFile */
    X509_STORE *ca_store;        /* the SCEP CA chain */
    unsigned char ca_fingerprint[20];  /* SHA-1 of the top CA cert */
    const char *filename;
};

/* Variables of OTASubject and the device attribute each one reads. */
const char *ota_subject_expand(apr_pool_t *p, const char *tmpl,
                               const apr_table_t *attrs);
/** The device's subject as the certificate will carry it, in the RFC 2253
 * form scep_name_rfc2253() gives for a request's subject; NULL if it cannot
 * be built. */
const char *ota_subject_rfc2253(apr_pool_t *p, const ota_subject_t *subj,
                                const apr_table_t *attrs);

plist_t ota_subject_plist(apr_pool_t *p, const ota_subject_t *subj,
                          const apr_table_t *attrs);

/* CMS: sign content with the identity (SignedData, attached, DER). */
apr_status_t ota_cms_sign(apr_pool_t *p, const ota_identity_t *id,
                          const void *data, apr_size_t len,
                          const unsigned char **der, apr_size_t *dlen);
/* CMS: EnvelopedData of data to one certificate (DER). */
apr_status_t ota_cms_encrypt(apr_pool_t *p, X509 *to, int cipher_nid,
                             const void *data, apr_size_t len,
                             const unsigned char **der, apr_size_t *dlen);
/* A plist serialized as XML and signed. */
apr_status_t ota_sign_plist(apr_pool_t *p, const ota_identity_t *id,
                            plist_t node, const unsigned char **der,
                            apr_size_t *dlen);
/* "XXXXXXXX-XXXX-..." fresh random UUID, upper case. */
const char *ota_uuid(apr_pool_t *p);

#endif /* OTA_PRIVATE_H */
