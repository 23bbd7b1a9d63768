/* OTA Phase 2/3 device POSTs: ota_post (ota_request_verify, then Phase 2
 * or Phase 3) with a test OTA service: the captured fixtures' CA, a
 * device CA (tests/fuzz/pki/device-ca.pem), a signing identity, and a
 * fresh memory store holding a Phase 1 challenge and the Phase 3 identity.
 *
 * Input: one mode byte, then the rest.
 *   mode bits 0-1  0: the rest is the POST body as it is
 *                  1: the rest is the signed content (a plist), signed here
 *                     by the device certificate (Phase 2)
 *                  2: ... signed by the identity our CA issued (Phase 3)
 *                  3: ... signed by a self-signed certificate (refused)
 *   mode bit 2     the POST comes from user FUZZ_PHASE1_USER (else none)
 *   mode bit 3     the signer's chain is left out of the message */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <openssl/cms.h>
#include <openssl/err.h>

#include "fuzz.h"
#include "scep_ota/ota_profile.h"
#include "scep_ota/scep_caps.h"
#include "scep_ota/scep_crypt.h"

static const char profile_xml[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<plist version=\"1.0\"><dict>"
    "<key>PayloadType</key><string>Configuration</string>"
    "<key>PayloadVersion</key><integer>1</integer>"
    "<key>PayloadIdentifier</key><string>org.example.fuzz</string>"
    "<key>PayloadUUID</key>"
    "<string>9A1B1B3C-2D4E-4F60-8A7B-0C1D2E3F4A5B</string>"
    "<key>PayloadDisplayName</key><string>Fuzz</string>"
    "<key>PayloadContent</key><array><dict>"
    "<key>PayloadType</key><string>com.apple.webClip.managed</string>"
    "<key>PayloadVersion</key><integer>1</integer>"
    "<key>URL</key><string>https://intranet.example/</string>"
    "<key>Label</key><string>Intranet</string>"
    "</dict></array></dict></plist>\n";

static ota_t *ota;
static X509 *device, *device_ca, *identity;
static EVP_PKEY *device_key, *identity_key;

static void fail(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_ota setup: %s: %s\n", what, err ? err : "?");
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    apr_pool_t *p;
    ota_settings_t s;
    ota_profile_t *prof;
    const char *err = NULL;

    (void)argc;
    (void)argv;
    fuzz_init();
    p = fuzz_root();
    memset(&s, 0, sizeof(s));
    if (APR_SUCCESS != ota_identity_load(
            p, fuzz_path("tests/fuzz/pki/ota-signer.pem"),
            fuzz_path("tests/fuzz/pki/ota-signer.key"), &s.signer, &err)) {
        fail("signer", err);
    }
    if (APR_SUCCESS != ota_anchors_load(
            p, fuzz_path("tests/fuzz/pki/device-ca.pem"), &s.device_cas,
            &err)) {
        fail("device CA", err);
    }
    if (APR_SUCCESS != ota_profile_parse(p, "fuzz.mobileconfig", profile_xml,
                                         sizeof(profile_xml) - 1, &prof,
                                         &err)) {
        fail("profile", err);
    }
    s.profile = prof;
    if (APR_SUCCESS != ota_subject_parse(
            p, "/O=Example/OU=%{PRODUCT}/serialNumber=%{SERIAL}/CN=%{UDID}",
            &s.subject, &err)) {
        fail("subject", err);
    }
    s.scep_url = "https://scep.example/scep";
    s.organization = "Example Inc.";
    if (APR_SUCCESS != ota_create(&ota, p, &s, fuzz_captured_ca(),
                                  scep_caps_default(p), &err)) {
        fail("ota_create", err);
    }
    device = fuzz_load_cert("tests/fuzz/pki/device.pem");
    device_key = fuzz_load_key("tests/fuzz/pki/device.key");
    device_ca = fuzz_load_cert("tests/fuzz/pki/device-ca.pem");
    identity = fuzz_load_cert("tests/fuzz/pki/identity.pem");
    identity_key = fuzz_load_key("tests/fuzz/pki/identity.key");
    fuzz_store_prepare();
    fuzz_ready();
    return 0;
}

/* content signed as a device would (attached, with its chain). */
static int sign(apr_pool_t *p, unsigned mode, const uint8_t *data,
                size_t size, const unsigned char **der, apr_size_t *len)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    BIO *in = BIO_new_mem_buf(size ? (const void *)data : "", (int)size);
    CMS_ContentInfo *cms = NULL;
    unsigned char *buf = NULL;
    X509 *signer = fuzz_client_selfsigned();
    EVP_PKEY *key = fuzz_client_key();
    int n = 0;

    if ((mode & 3) == 1) {
        signer = device;
        key = device_key;
        if (!(mode & 8)) {
            sk_X509_push(chain, device_ca);
        }
    }
    else if ((mode & 3) == 2) {
        signer = identity;
        key = identity_key;
        if (!(mode & 8)) {
            sk_X509_push(chain, fuzz_captured_ca()->cert);
        }
    }
    if (chain && in && (cms = CMS_sign(signer, key, chain, in, CMS_BINARY))) {
        n = i2d_CMS_ContentInfo(cms, &buf);
    }
    if (n > 0) {
        *der = apr_pmemdup(p, buf, (apr_size_t)n);
        *len = (apr_size_t)n;
    }
    OPENSSL_free(buf);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    sk_X509_free(chain);
    ERR_clear_error();
    return n > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    ota_answer_t ans;
    const unsigned char *body;
    apr_size_t len;
    unsigned mode;

    if (size < 1 || size > OTA_MAX_REQUEST + 1) {
        return 0;
    }
    mode = data[0];
    ++data;
    --size;
    p = fuzz_input_pool();
    if (mode & 3) {
        if (!sign(p, mode, data, size, &body, &len)) {
            apr_pool_destroy(p);
            return 0;
        }
    }
    else {
        body = data;
        len = size;
    }
    ota_post(ota, p, fuzz_store(p, 0), fuzz_logger(),
             (mode & 4) ? FUZZ_PHASE1_USER : NULL, body, len, &ans);
    /* a device never makes the server fail */
    if (ans.out.kind == SCEP_OUTCOME_SERVER_ERROR
        || ans.out.kind == SCEP_OUTCOME_UNAVAILABLE
        || (ans.out.kind == SCEP_OUTCOME_OK
            && (!ans.out.body || !ans.out.len))) {
        abort();
    }
    apr_pool_destroy(p);
    return 0;
}
