/* OTA payloads: the plists of Phases 1, 2 and 3, built top down. They
 * leave here as plists; ota_phase.c serializes and signs them. */

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_uuid.h>

#include "ota_private.h"

#define SCEP_PAYLOAD_TYPE "com.apple.security.scep"
#define KEY_USAGE_SIGN_ENCRYPT 5

/* "XXXXXXXX-XXXX-..." fresh random UUID, upper case. */
static const char *uuid_text(apr_pool_t *p)
{
    apr_uuid_t uuid;
    char buf[APR_UUID_FORMATTED_LENGTH + 1];
    char *c;

    apr_uuid_get(&uuid);
    apr_uuid_format(buf, &uuid);
    for (c = buf; *c; ++c) {
        *c = (char)apr_toupper(*c);
    }
    return apr_pstrdup(p, buf);
}

/* The keys every payload carries. */
static void payload_keys(const ota_t *ota, apr_pool_t *p, plist_t dict,
                         const char *type, const char *id_suffix,
                         const char *display, const char *description)
{
    ota_plist_set_str(dict, "PayloadType", type);
    ota_plist_set_uint(dict, "PayloadVersion", 1);
    ota_plist_set_str(dict, "PayloadIdentifier",
                      apr_pstrcat(p, ota->s.identifier, id_suffix, NULL));
    ota_plist_set_str(dict, "PayloadUUID", uuid_text(p));
    ota_plist_set_str(dict, "PayloadDisplayName", display);
    ota_plist_set_str(dict, "PayloadDescription", description);
    if (ota->s.organization) {
        ota_plist_set_str(dict, "PayloadOrganization", ota->s.organization);
    }
}

/* ------------------------------------------------------------------ */
/* Phase 1                                                             */

plist_t ota_payload_service(const ota_t *ota, apr_pool_t *p,
                            const char *url, const char *challenge)
{
    plist_t top = ota_plist_new_dict(p), content, attrs;
    int i;

    payload_keys(ota, p, top, "Profile Service", ".profile-service",
                 ota->s.display_name,
                 "Enrolls this device: it sends its identity, receives a "
                 "certificate, then its configuration.");
    content = ota_plist_add_dict(top, "PayloadContent");
    ota_plist_set_str(content, "URL", url);
    attrs = ota_plist_add_array(content, "DeviceAttributes");
    for (i = 0; i < ota->s.attributes->nelts; ++i) {
        ota_plist_append_str(attrs, APR_ARRAY_IDX(ota->s.attributes, i,
                                                  const char *));
    }
    ota_plist_set_str(content, "Challenge", challenge);
    return top;
}

/* ------------------------------------------------------------------ */
/* Phase 2                                                             */

/* The capability list, word by word, in the configured order: the same
 * object the GetCACaps answer is made from. */
static void caps_array(const scep_caps_t *caps, plist_t array)
{
    int i;

    for (i = 0; i < scep_caps_count(caps); ++i) {
        ota_plist_append_str(array, scep_caps_word(caps, i));
    }
}

static void scep_content(const ota_t *ota, const ota_subject_t *dev,
                         const char *challenge, plist_t c)
{
    ota_plist_set_str(c, "URL", ota->s.scep_url);
    ota_plist_set_str(c, "Name", ota->s.scep_name);
    ota_subject_plist(dev, ota_plist_add_array(c, "Subject"));
    ota_plist_set_str(c, "Challenge", challenge);
    ota_plist_set_uint(c, "Keysize", (apr_uint64_t)ota->s.key_size);
    ota_plist_set_str(c, "Key Type", "RSA");
    ota_plist_set_uint(c, "Key Usage", KEY_USAGE_SIGN_ENCRYPT);
    ota_plist_set_data(c, "CAFingerprint", ota->ca_fingerprint,
                       sizeof(ota->ca_fingerprint));
    ota_plist_set_uint(c, "Retries", (apr_uint64_t)ota->s.retries);
    ota_plist_set_uint(c, "RetryDelay", (apr_uint64_t)ota->s.retry_delay);
    if (!ota->s.no_caps_array) {
        caps_array(ota->caps, ota_plist_add_array(c, "GetCACaps"));
    }
}

plist_t ota_payload_scep(const ota_t *ota, apr_pool_t *p,
                         const ota_subject_t *dev, const char *challenge)
{
    plist_t top = ota_plist_new_dict(p), scep;

    payload_keys(ota, p, top, "Configuration", ".scep-enrollment",
                 ota->s.display_name,
                 "Obtains this device's identity certificate by SCEP.");
    scep = ota_plist_append_dict(ota_plist_add_array(top, "PayloadContent"));
    payload_keys(ota, p, scep, SCEP_PAYLOAD_TYPE, ".scep-enrollment.scep",
                 "Device Identity", "SCEP enrollment of the device identity");
    scep_content(ota, dev, challenge, ota_plist_add_dict(scep,
                                                         "PayloadContent"));
    return top;
}

/* ------------------------------------------------------------------ */
/* Phase 3                                                             */

apr_status_t ota_payload_final(const ota_t *ota, apr_pool_t *p,
                               const unsigned char *env, apr_size_t env_len,
                               plist_t *top)
{
    const ota_profile_t *prof = ota->s.profile;
    apr_status_t rv;

    rv = ota_plist_parse(p, prof->shell_xml, prof->shell_len, 0, top);
    if (APR_SUCCESS == rv) {
        ota_plist_set_data(*top, "EncryptedPayloadContent", env, env_len);
    }
    return rv;
}
