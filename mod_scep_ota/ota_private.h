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

/** The template with a device's values put in (each value expanded
 * once); the functions below take such a filled subject. */
ota_subject_t *ota_subject_fill(apr_pool_t *p, const ota_subject_t *subj,
                                const apr_table_t *attrs);
/** The subject as the certificate will carry it, in the RFC 2253 form
 * scep_name_rfc2253() gives for a request's subject; NULL if it cannot be
 * built. */
const char *ota_subject_rfc2253(apr_pool_t *p, const ota_subject_t *dev);
/** Apple's three-level array of it, appended to array. */
void ota_subject_plist(const ota_subject_t *dev, plist_t array);
/** The text form ota_subject_text() gives. */
const char *ota_subject_show(apr_pool_t *p, const ota_subject_t *dev);

/* CMS: sign content with the identity (SignedData, attached, DER). */
apr_status_t ota_cms_sign(apr_pool_t *p, const ota_identity_t *id,
                          const void *data, apr_size_t len,
                          const unsigned char **der, apr_size_t *dlen);
/* CMS: EnvelopedData of data to one certificate (DER). */
apr_status_t ota_cms_encrypt(apr_pool_t *p, X509 *to, int cipher_nid,
                             const void *data, apr_size_t len,
                             const unsigned char **der, apr_size_t *dlen);

/* The payloads (ota_payload.c), as plists tied to p. */
/* Phase 1: the Profile Service payload. */
plist_t ota_payload_service(const ota_t *ota, apr_pool_t *p,
                            const char *url, const char *challenge);
/* Phase 2: the SCEP enrollment profile for a device's filled subject. */
plist_t ota_payload_scep(const ota_t *ota, apr_pool_t *p,
                         const ota_subject_t *dev, const char *challenge);
/* Phase 3: the OTAProfile with env (its payloads, encrypted) in place of
 * its PayloadContent. */
apr_status_t ota_payload_final(const ota_t *ota, apr_pool_t *p,
                               const unsigned char *env, apr_size_t env_len,
                               plist_t *top);

#endif /* OTA_PRIVATE_H */
