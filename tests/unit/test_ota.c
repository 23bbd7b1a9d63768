/* OTA Phases 1-3 with a device played in C: an expired SHA-1/RSA-1024
 * "device CA" signs the device; our test CA issues the Phase 3 identity.
 * Answers are opened with OpenSSL directly, not with the module's code. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include <apr_strings.h>
#include <openssl/cms.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "testutil.h"
#include "scep_ota/ota_profile.h"
#include "scep_ota/ota_plist.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_policy.h"

#define KU_CA (0x80 | 0x20 | 0x04 | 0x02)
#define UDID "00008101-001938611EE9001E"

/* keys: made once per tcase in the parent, inherited by every test */
static EVP_PKEY *k_ca, *k_sign, *k_devca, *k_dev, *k_id, *k_foreign;

/* per test */
static X509 *ca_cert, *devca, *dev, *sign_cert;
static scep_ca_t *ca;
static scep_caps_t *caps;
static scep_store_t *st;
static ota_settings_t set;
static ota_t *ota;

static void keys_setup(void)
{
    if (!k_ca) {
        k_ca = EVP_RSA_gen(2048);
        k_sign = EVP_RSA_gen(2048);
        k_devca = EVP_RSA_gen(1024);
        k_dev = EVP_RSA_gen(1024);
        k_id = EVP_RSA_gen(2048);
        k_foreign = EVP_RSA_gen(2048);
    }
}

static void keys_teardown(void)
{
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ck_assert_ptr_nonnull(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
}

/* A certificate with explicit validity ("YYYYMMDDhhmmssZ") and digest. */
static X509 *old_cert(const char *cn, EVP_PKEY *key, X509 *issuer,
                      EVP_PKEY *ikey, int is_ca, const char *from,
                      const char *to, const EVP_MD *md)
{
    static long serial = 7000;
    X509 *x = scep_track_x509(tpool, X509_new());
    X509_NAME *name = X509_NAME_new();

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);
    ck_assert_int_eq(ASN1_TIME_set_string(X509_getm_notBefore(x), from), 1);
    ck_assert_int_eq(ASN1_TIME_set_string(X509_getm_notAfter(x), to), 1);
    X509_set_pubkey(x, key);
    add_ext(x, issuer, NID_basic_constraints,
            is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, issuer, NID_key_usage, is_ca
            ? "critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign"
            : "critical,digitalSignature,keyEncipherment");
    ck_assert_int_gt(X509_sign(x, ikey ? ikey : key, md), 0);
    return x;
}

static X509 *new_cert(const char *cn, EVP_PKEY *key, X509 *issuer,
                      EVP_PKEY *ikey, int is_ca)
{
    tu_cert_opts_t o = { cn, is_ca, is_ca ? KU_CA : 0xa0 };

    return scep_track_x509(tpool, tu_cert(&o, key, issuer, ikey));
}

static apr_array_header_t *arr(X509 *a, X509 *b)
{
    apr_array_header_t *x = apr_array_make(tpool, 2, sizeof(void *));

    APR_ARRAY_PUSH(x, void *) = a;
    if (b) {
        APR_ARRAY_PUSH(x, void *) = b;
    }
    return x;
}

/* The Phase 3 profile: two payloads, made with libplist. */
static plist_t make_profile(void)
{
    plist_t top = plist_new_dict(), list = plist_new_array();
    plist_t clip = plist_new_dict(), wifi = plist_new_dict();

    ota_plist_set_str(clip, "PayloadType", "com.apple.webClip.managed");
    ota_plist_set_str(clip, "URL", "https://intranet.example/");
    ota_plist_set_str(clip, "Label", "Intranet");
    ota_plist_set_uint(clip, "PayloadVersion", 1);
    ota_plist_set_str(wifi, "PayloadType", "com.apple.wifi.managed");
    ota_plist_set_str(wifi, "SSID_STR", "Example");
    ota_plist_set_uint(wifi, "PayloadVersion", 1);
    plist_array_append_item(list, clip);
    plist_array_append_item(list, wifi);
    ota_plist_set_str(top, "PayloadType", "Configuration");
    ota_plist_set_uint(top, "PayloadVersion", 1);
    ota_plist_set_str(top, "PayloadIdentifier", "org.example.final");
    ota_plist_set_str(top, "PayloadUUID",
                      "9A1B1B3C-2D4E-4F60-8A7B-0C1D2E3F4A5B");
    ota_plist_set_str(top, "PayloadDisplayName", "Example settings");
    plist_dict_set_item(top, "PayloadContent", list);
    return ota_plist_track(tpool, top);
}

static const char *xml_of(plist_t node)
{
    const char *xml;
    apr_size_t len;

    ck_assert_int_eq(ota_plist_xml(tpool, node, &xml, &len), APR_SUCCESS);
    return xml;
}

static void build_ota(void)
{
    const char *err = NULL;

    ck_assert_msg(ota_create(&ota, tpool, &set, ca, caps, &err)
                  == APR_SUCCESS, "ota_create: %s", err ? err : "?");
}

static void setup(void)
{
    scep_ca_material_t m;
    const char *err = NULL, *warn = NULL, *xml;
    X509 *sign_file[2];
    ota_profile_t *prof;

    tpool_setup();
    ca_cert = new_cert("OTA Test CA", k_ca, NULL, NULL, 1);
    memset(&m, 0, sizeof(m));
    m.ca_cert_file = "ca.pem";
    m.ca_certs = arr(ca_cert, NULL);
    m.ca_key_file = "ca.key";
    m.ca_keys = apr_array_make(tpool, 1, sizeof(void *));
    APR_ARRAY_PUSH(m.ca_keys, EVP_PKEY *) = k_ca;
    ck_assert_int_eq(scep_ca_assemble(&ca, tpool, &m, &err, &warn),
                     APR_SUCCESS);
    caps = scep_caps_default(tpool);
    st = scep_store_memory_create(tpool);
    ck_assert_ptr_nonnull(st);

    /* Apple's device CA: expired (2007-2014), SHA-1, RSA-1024 */
    devca = old_cert("Fake iPhone Device CA", k_devca, NULL, NULL, 1,
                     "20070416000000Z", "20140416000000Z", EVP_sha1());
    dev = old_cert(UDID, k_dev, devca, k_devca, 0,
                   "20100101000000Z", "20130101000000Z", EVP_sha1());

    memset(&set, 0, sizeof(set));
    sign_cert = new_cert("OTA Profile Signer", k_sign, ca_cert, k_ca, 0);
    sign_file[0] = sign_cert;
    sign_file[1] = ca_cert;
    ck_assert_int_eq(ota_identity_load(tpool, tu_write_certs(sign_file, 2),
                                       tu_write_key(k_sign), &set.signer,
                                       &err), APR_SUCCESS);
    ck_assert_int_eq(ota_anchors_load(tpool, tu_write_certs(&devca, 1),
                                      &set.device_cas, &err), APR_SUCCESS);
    set.scep_url = "https://scep.example/scep";
    xml = xml_of(make_profile());
    ck_assert_int_eq(ota_profile_parse(tpool, "final.mobileconfig", xml,
                                       strlen(xml), &prof, &err),
                     APR_SUCCESS);
    set.profile = prof;
    ck_assert_int_eq(ota_subject_parse(tpool, "/O=Example/CN=%{UDID}",
                                       &set.subject, &err), APR_SUCCESS);
    set.organization = "Example Inc.";
    build_ota();
}

static void teardown(void)
{
    tpool_teardown();
}

/* ------------------------------------------------------------------ */
/* helpers: the device side, in plain OpenSSL                          */

/* Opens a signed profile: the signature must verify up to our CA. */
static plist_t open_profile(const unsigned char *der, apr_size_t len)
{
    const unsigned char *d = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &d, (long)len);
    X509_STORE *store = X509_STORE_new();
    BIO *out = BIO_new(BIO_s_mem());
    STACK_OF(X509) *certs;
    plist_t node = NULL;
    char *data;
    long n;

    ck_assert_ptr_nonnull(cms);
    X509_STORE_add_cert(store, ca_cert);
    ck_assert_int_eq(CMS_verify(cms, NULL, store, NULL, out, CMS_BINARY), 1);
    certs = CMS_get1_certs(cms);
    ck_assert_int_eq(sk_X509_num(certs), 2);   /* signer and its chain */
    sk_X509_pop_free(certs, X509_free);
    n = BIO_get_mem_data(out, &data);
    ck_assert_int_eq(ota_plist_parse(tpool, data, (apr_size_t)n, 0, &node),
                     APR_SUCCESS);
    BIO_free(out);
    X509_STORE_free(store);
    CMS_ContentInfo_free(cms);
    return node;
}

/* SignedData over the attributes, SHA-1 like the devices' own. */
static void device_sign(X509 *cert, EVP_PKEY *key, X509 *extra,
                        apr_table_t *attrs, const unsigned char **der,
                        apr_size_t *len)
{
    plist_t dict = ota_plist_track(tpool, plist_new_dict());
    const apr_array_header_t *elts = apr_table_elts(attrs);
    STACK_OF(X509) *chain = sk_X509_new_null();
    CMS_ContentInfo *cms;
    unsigned char *buf = NULL;
    const char *xml;
    BIO *in;
    int i, n;

    for (i = 0; i < elts->nelts; ++i) {
        const apr_table_entry_t *e = &APR_ARRAY_IDX(elts, i,
                                                    apr_table_entry_t);
        ota_plist_set_str(dict, e->key, e->val);
    }
    xml = xml_of(dict);
    in = BIO_new_mem_buf(xml, (int)strlen(xml));
    if (extra) {
        sk_X509_push(chain, extra);
    }
    cms = CMS_sign(NULL, NULL, chain, NULL, CMS_BINARY | CMS_PARTIAL);
    ck_assert_ptr_nonnull(cms);
    ck_assert_ptr_nonnull(CMS_add1_signer(cms, cert, key, EVP_sha1(),
                                          CMS_BINARY));
    ck_assert_int_eq(CMS_final(cms, in, NULL, CMS_BINARY), 1);
    n = i2d_CMS_ContentInfo(cms, &buf);
    ck_assert_int_gt(n, 0);
    *der = apr_pmemdup(tpool, buf, (apr_size_t)n);
    *len = (apr_size_t)n;
    OPENSSL_free(buf);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    sk_X509_free(chain);
}

static apr_table_t *device_attrs(const char *challenge)
{
    apr_table_t *t = apr_table_make(tpool, 8);

    apr_table_set(t, "UDID", UDID);
    apr_table_set(t, "VERSION", "22C152");
    apr_table_set(t, "PRODUCT", "iPhone17,1");
    apr_table_set(t, "SERIAL", "G4NQM9HHK0");
    if (challenge) {
        apr_table_set(t, "CHALLENGE", challenge);
    }
    return t;
}

/* Phase 1 for user, and the Challenge it hands out. */
static const char *phase1_challenge(const char *user)
{
    scep_outcome_t out;
    plist_t top;

    ck_assert_int_eq(ota_phase1(ota, tpool, st, scep_log_null(),
                                "https://ota.example/ota/profile", user,
                                &out), APR_SUCCESS);
    top = open_profile(out.body, out.len);
    return ota_plist_str(tpool, ota_plist_get(top, "PayloadContent",
                                              PLIST_DICT), "Challenge");
}

static ota_answer_t post(const unsigned char *der, apr_size_t len,
                         const char *user)
{
    ota_answer_t ans;

    ota_post(ota, tpool, st, scep_log_null(), user, der, len, &ans);
    return ans;
}

/* A full Phase 2 with a fresh challenge; returns the SCEP PayloadContent. */
static plist_t phase2_content(void)
{
    const unsigned char *der;
    apr_size_t len;
    ota_answer_t ans;
    plist_t top, list, scep;

    device_sign(dev, k_dev, devca, device_attrs(phase1_challenge(NULL)),
                &der, &len);
    ans = post(der, len, NULL);
    ck_assert_int_eq(ans.out.kind, SCEP_OUTCOME_OK);
    ck_assert_int_eq(ans.phase, 2);
    ck_assert_str_eq(ans.out.content_type, OTA_CT_ASPEN_CONFIG);
    ck_assert_str_eq(ans.udid, UDID);
    top = open_profile(ans.out.body, ans.out.len);
    ck_assert_str_eq(ota_plist_str(tpool, top, "PayloadType"),
                     "Configuration");
    list = ota_plist_get(top, "PayloadContent", PLIST_ARRAY);
    ck_assert_ptr_nonnull(list);
    ck_assert_int_eq(plist_array_get_size(list), 1);
    scep = plist_array_get_item(list, 0);
    ck_assert_str_eq(ota_plist_str(tpool, scep, "PayloadType"),
                     "com.apple.security.scep");
    return ota_plist_get(scep, "PayloadContent", PLIST_DICT);
}

/* The caps array of a SCEP payload as one space-separated line. */
static const char *caps_line(plist_t content)
{
    plist_t a = ota_plist_get(content, "GetCACaps", PLIST_ARRAY);
    const char *out = "";
    uint32_t i;

    ck_assert_ptr_nonnull(a);
    for (i = 0; i < plist_array_get_size(a); ++i) {
        plist_t w = plist_array_get_item(a, i);
        ck_assert_int_eq(plist_get_node_type(w), PLIST_STRING);
        out = apr_pstrcat(tpool, out, i ? " " : "",
                          plist_get_string_ptr(w, NULL), NULL);
    }
    return out;
}

/* The identity our CA issued by SCEP, recorded as the store would. */
/* A certificate of our CA for the subject OTASubject gives udid, in the
 * store with the given status. */
/* A certificate of ours for udid, recorded as issued through Phase 2 to
 * enrolled_udid (NULL: issued some other way, e.g. with the static
 * challenge). */
static X509 *identity_enrolled(const char *udid, scep_cert_status_t status,
                               const char *enrolled_udid)
{
    X509 *id = new_cert(udid, k_id, ca_cert, k_ca, 0);
    X509_NAME *name = X509_NAME_new();
    scep_cert_rec_t rec;

    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               (const unsigned char *)"Example", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)udid, -1, -1, 0);
    X509_set_subject_name(id, name);
    X509_NAME_free(name);
    ck_assert_int_gt(X509_sign(id, k_ca, EVP_sha256()), 0);

    memset(&rec, 0, sizeof(rec));
    rec.serial = scep_cert_serial_hex(tpool, id);
    rec.subject = scep_cert_subject(tpool, id);
    rec.key_hash = scep_key_hash(tpool, k_id);
    rec.not_before = apr_time_now();
    rec.not_after = apr_time_now() + apr_time_from_sec(86400);
    rec.status = SCEP_CERT_VALID;
    rec.revocation_reason = -1;
    rec.udid = enrolled_udid;
    rec.enrolled_by = "alice";
    ck_assert_int_eq(scep_cert_der(tpool, id, &rec.der, &rec.der_len),
                     APR_SUCCESS);
    ck_assert_int_eq(st->ops->cert_insert(st, tpool, &rec), APR_SUCCESS);
    if (status == SCEP_CERT_REVOKED) {
        ck_assert_int_eq(st->ops->cert_revoke(st, tpool, rec.serial, 1,
                                              apr_time_now()), APR_SUCCESS);
    }
    return id;
}

static X509 *identity_for(const char *udid, scep_cert_status_t status)
{
    return identity_enrolled(udid, status, udid);
}

static X509 *issued_identity(scep_cert_status_t status)
{
    return identity_for(UDID, status);
}

/* Phase 3 answer's EncryptedPayloadContent decrypted with the device key;
 * *cipher gets the content-encryption algorithm. */
static plist_t phase3_decrypt(const ota_answer_t *ans, int *cipher)
{
    plist_t top = open_profile(ans->out.body, ans->out.len), node = NULL;
    const unsigned char *env, *d;
    apr_size_t env_len;
    CMS_ContentInfo *cms;
    PKCS7 *p7;
    BIO *out = BIO_new(BIO_s_mem());
    char *data;
    long n;

    ck_assert_str_eq(ota_plist_str(tpool, top, "PayloadType"),
                     "Configuration");
    ck_assert_str_eq(ota_plist_str(tpool, top, "PayloadIdentifier"),
                     "org.example.final");
    ck_assert_ptr_null(plist_dict_get_item(top, "PayloadContent"));
    env = ota_plist_data(tpool, top, "EncryptedPayloadContent", &env_len);
    ck_assert_ptr_nonnull(env);
    d = env;
    p7 = d2i_PKCS7(NULL, &d, (long)env_len);
    ck_assert_ptr_nonnull(p7);
    ck_assert(PKCS7_type_is_enveloped(p7));
    *cipher = OBJ_obj2nid(p7->d.enveloped->enc_data->algorithm->algorithm);
    PKCS7_free(p7);
    d = env;
    cms = d2i_CMS_ContentInfo(NULL, &d, (long)env_len);
    ck_assert_ptr_nonnull(cms);
    ck_assert_int_eq(CMS_decrypt(cms, k_id, NULL, NULL, out, CMS_BINARY), 1);
    n = BIO_get_mem_data(out, &data);
    ck_assert_int_eq(ota_plist_parse(tpool, data, (apr_size_t)n, 0, &node),
                     APR_SUCCESS);
    CMS_ContentInfo_free(cms);
    BIO_free(out);
    return node;
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */

START_TEST(subject_template_parses_to_apple_array)
{
    ota_subject_t *s;
    const char *err = NULL;
    apr_table_t *a = device_attrs(NULL);

    ck_assert_int_eq(ota_subject_parse(tpool, "/O=Example/CN=%{UDID}", &s,
                                       &err), APR_SUCCESS);
    ck_assert_str_eq(ota_subject_text(tpool, s, a),
                     "[[[\"O\",\"Example\"]],[[\"CN\",\"" UDID "\"]]]");
    ck_assert_int_eq(ota_subject_parse(
        tpool, "/C=DE/organizationName=Ex\\/ample/OU=Fleet+serialNumber="
        "%{SERIAL}/2.5.4.3=%{PRODUCT} (%{IMEI})", &s, &err), APR_SUCCESS);
    ck_assert_str_eq(ota_subject_text(tpool, s, a),
                     "[[[\"C\",\"DE\"]],[[\"O\",\"Ex/ample\"]],"
                     "[[\"OU\",\"Fleet\"],[\"2.5.4.5\",\"G4NQM9HHK0\"]],"
                     "[[\"CN\",\"iPhone17,1 ()\"]]]");
}
END_TEST

START_TEST(subject_template_errors)
{
    ota_subject_t *s;
    const char *err = NULL;

    ck_assert_int_ne(ota_subject_parse(tpool, "/CN=%{HOSTNAME}", &s, &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "unknown variable"));
    ck_assert_int_ne(ota_subject_parse(tpool, "CN=x", &s, &err),
                     APR_SUCCESS);
    ck_assert_int_ne(ota_subject_parse(tpool, "/XYZZY=x", &s, &err),
                     APR_SUCCESS);
    ck_assert_int_ne(ota_subject_parse(tpool, "/CN=", &s, &err),
                     APR_SUCCESS);
    ck_assert_int_ne(ota_subject_parse(tpool, "/CN=a/", &s, &err),
                     APR_SUCCESS);
    ck_assert_int_ne(ota_subject_parse(tpool, "/CN=%{UDID", &s, &err),
                     APR_SUCCESS);
}
END_TEST

START_TEST(subject_values_are_sanitized)
{
    ota_subject_t *s;
    const char *err = NULL;
    apr_table_t *a = apr_table_make(tpool, 2);

    apr_table_set(a, "DEVICE_NAME", "Bob's \"iPhone\"/x=1,\n<b>"
                  "0123456789012345678901234567890123456789012345678901234");
    ck_assert_int_eq(ota_subject_parse(tpool, "/CN=%{DEVICE_NAME}", &s,
                                       &err), APR_SUCCESS);
    ck_assert_str_eq(ota_subject_text(tpool, s, a),
                     "[[[\"CN\",\"Bob's _iPhone__x_1,_b_012345678901234567"
                     "890123456789012345678901\"]]]");
    /* a missing value is empty */
    ck_assert_str_eq(ota_subject_text(tpool, s, NULL), "[[[\"CN\",\"\"]]]");
}
END_TEST

START_TEST(profile_must_be_configuration)
{
    ota_profile_t *prof;
    const char *err = NULL, *xml;
    plist_t p = make_profile();

    ck_assert_int_eq(ota_profile_parse(tpool, "x", "not a plist", 11, &prof,
                                       &err), APR_EINVAL);
    ota_plist_set_str(p, "PayloadType", "Profile Service");
    xml = xml_of(p);
    ck_assert_int_ne(ota_profile_parse(tpool, "x", xml, strlen(xml), &prof,
                                       &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "Configuration"));
    p = make_profile();
    plist_dict_remove_item(p, "PayloadUUID");
    xml = xml_of(p);
    ck_assert_int_ne(ota_profile_parse(tpool, "x", xml, strlen(xml), &prof,
                                       &err), APR_SUCCESS);
    p = make_profile();
    plist_dict_remove_item(p, "PayloadContent");
    xml = xml_of(p);
    ck_assert_int_ne(ota_profile_parse(tpool, "x", xml, strlen(xml), &prof,
                                       &err), APR_SUCCESS);
    p = make_profile();
    plist_dict_remove_item(p, "PayloadVersion");
    xml = xml_of(p);
    ck_assert_int_ne(ota_profile_parse(tpool, "x", xml, strlen(xml), &prof,
                                       &err), APR_SUCCESS);
    xml = xml_of(make_profile());
    ck_assert_int_eq(ota_profile_parse(tpool, "x", xml, strlen(xml), &prof,
                                       &err), APR_SUCCESS);
    ck_assert_int_eq(ota_profile_payload_count(prof), 2);
    ck_assert_int_eq(ota_profile_load(tpool, tu_write_bytes(xml, strlen(xml)),
                                      &prof, &err), APR_SUCCESS);
    ck_assert_int_ne(ota_profile_load(tpool, "/nonexistent/p.mobileconfig",
                                      &prof, &err), APR_SUCCESS);
}
END_TEST

START_TEST(plist_nesting_is_bounded)
{
    plist_t node, inner = plist_new_array(), outer;
    const char *xml;
    int i;

    for (i = 0; i < OTA_PLIST_MAX_DEPTH + 5; ++i) {
        outer = plist_new_array();
        plist_array_append_item(outer, inner);
        inner = outer;
    }
    ota_plist_track(tpool, inner);
    xml = xml_of(inner);
    ck_assert_int_eq(ota_plist_parse(tpool, xml, strlen(xml), 0, &node),
                     APR_EINVAL);
}
END_TEST

static void bin_release(char *bin)
{
#ifdef HAVE_PLIST_MEM_FREE
    plist_mem_free(bin);
#else
    plist_to_bin_free(bin);
#endif
}

/* A binary plist of the given objects (each its marker and body, with
 * 1-byte references), 1-byte offsets, object 0 on top. */
static const unsigned char *bplist_of(const char *const *objs,
                                      const apr_size_t *lens, int n,
                                      apr_size_t *len)
{
    unsigned char *b = apr_pcalloc(tpool, 4096), *t;
    apr_size_t pos = 8, table;
    unsigned char offs[256];
    int i;

    memcpy(b, "bplist00", 8);
    for (i = 0; i < n; ++i) {
        offs[i] = (unsigned char)pos;
        memcpy(b + pos, objs[i], lens[i]);
        pos += lens[i];
    }
    ck_assert_uint_lt(pos, 256);
    table = pos;
    memcpy(b + pos, offs, (apr_size_t)n);
    pos += (apr_size_t)n;
    t = b + pos;                 /* trailer: 6 unused, sizes, counts */
    t[6] = 1;
    t[7] = 1;
    t[15] = (unsigned char)n;
    t[31] = (unsigned char)table;
    *len = pos + 32;
    return b;
}

/* {"UDID": a1}, a[i] = [a(i+1), a(i+1)], the last one empty. */
static const unsigned char *exponential_bplist(int depth, apr_size_t *len)
{
    const char **objs = apr_pcalloc(tpool, sizeof(char *) * (depth + 3));
    apr_size_t *lens = apr_pcalloc(tpool, sizeof(apr_size_t) * (depth + 3));
    int i;

    objs[0] = "\xd1\x01\x02";
    lens[0] = 3;
    objs[1] = "\x54UDID";
    lens[1] = 5;
    for (i = 0; i < depth; ++i) {
        char *a = apr_palloc(tpool, 3);
        a[0] = (char)0xa2;
        a[1] = a[2] = (char)(2 + i + 1);
        objs[2 + i] = a;
        lens[2 + i] = 3;
    }
    objs[depth + 2] = "\xa0";
    lens[depth + 2] = 1;
    return bplist_of(objs, lens, depth + 3, len);
}

/* depth arrays, each holding the next one, the last one empty. */
static const unsigned char *chain_bplist(int depth, apr_size_t *len)
{
    const char **objs = apr_pcalloc(tpool, sizeof(char *) * (depth + 1));
    apr_size_t *lens = apr_pcalloc(tpool, sizeof(apr_size_t) * (depth + 1));
    int i;

    for (i = 0; i < depth; ++i) {
        char *a = apr_palloc(tpool, 2);
        a[0] = (char)0xa1;
        a[1] = (char)(i + 1);
        objs[i] = a;
        lens[i] = 2;
    }
    objs[depth] = "\xa0";
    lens[depth] = 1;
    return bplist_of(objs, lens, depth + 1, len);
}

START_TEST(bplist_shared_containers_refused)
{
    static const char *const circular[] = { "\xa1\x00" };
    static const char *const ref_out[] = { "\xa1\x05" };
    static const char *const count_out[] = { "\xaf\x10\x40\x00" };
    static const char *const wide_count[] = { "\xaf\x13\xff\xff\xff\xff"
                                              "\xff\xff\xff\xff" };
    static const apr_size_t one[] = { 2 }, four[] = { 4 }, ten[] = { 10 };
    const unsigned char *b;
    plist_t node;
    apr_size_t len;
    apr_time_t t0 = apr_time_now();

    /* 2^24 arrays if parsed: refused by the walk, at once */
    b = exponential_bplist(24, &len);
    ck_assert_uint_lt(len, 200);
    ck_assert_int_eq(ota_bplist_check(tpool, b, len), APR_EINVAL);
    ck_assert_int_eq(ota_plist_parse(tpool, b, len, 4096, &node),
                     APR_EINVAL);
    ck_assert_int_lt(apr_time_now() - t0, apr_time_from_sec(2));
    /* the same graph without sharing (depth 1, one reference) is fine */
    b = exponential_bplist(0, &len);
    ck_assert_int_eq(ota_bplist_check(tpool, b, len), APR_SUCCESS);
    ck_assert_int_eq(ota_plist_parse(tpool, b, len, 4096, &node),
                     APR_SUCCESS);
    /* an array that holds itself */
    b = bplist_of(circular, one, 1, &len);
    ck_assert_int_eq(ota_bplist_check(tpool, b, len), APR_EINVAL);
    /* a reference to an object that does not exist */
    b = bplist_of(ref_out, one, 1, &len);
    ck_assert_int_eq(ota_bplist_check(tpool, b, len), APR_EINVAL);
    /* 64 references announced, none there; a 2^64-1 count */
    b = bplist_of(count_out, four, 1, &len);
    ck_assert_int_eq(ota_bplist_check(tpool, b, len), APR_EINVAL);
    b = bplist_of(wide_count, ten, 1, &len);
    ck_assert_int_eq(ota_bplist_check(tpool, b, len), APR_EINVAL);
    /* a trailer that points outside, and a short input */
    b = exponential_bplist(2, &len);
    ((unsigned char *)b)[len - 1] = 0xf0;
    ck_assert_int_eq(ota_bplist_check(tpool, b, len), APR_EINVAL);
    ck_assert_int_eq(ota_bplist_check(tpool, b, 40), APR_EINVAL);
}
END_TEST

/* What encoders write: equal strings shared, containers not. */
START_TEST(bplist_shared_values_accepted)
{
    plist_t top = ota_plist_track(tpool, plist_new_dict());
    plist_t list = plist_new_array(), inner = plist_new_dict(), node;
    char *bin = NULL;
    uint32_t n = 0;
    const unsigned char *deep;
    const char *s;
    apr_size_t len;
    int i;

    ota_plist_set_str(top, "IMEI", "");
    ota_plist_set_str(top, "MEID", "");
    ota_plist_set_str(top, "UDID", UDID);
    ota_plist_set_str(inner, "UDID", UDID);
    for (i = 0; i < 3; ++i) {
        plist_array_append_item(list, plist_new_string(UDID));
    }
    plist_dict_set_item(top, "LIST", list);
    plist_dict_set_item(top, "INNER", inner);
    plist_to_bin(top, &bin, &n);
    ck_assert_ptr_nonnull(bin);
    ck_assert_int_eq(ota_bplist_check(tpool, bin, n), APR_SUCCESS);
    ck_assert_int_eq(ota_plist_parse(tpool, bin, n, 0, &node), APR_SUCCESS);
    s = ota_plist_str(tpool, ota_plist_get(node, "INNER", PLIST_DICT),
                      "UDID");
    ck_assert_str_eq(s, UDID);
    bin_release(bin);
    /* unshared, but nested past OTA_PLIST_MAX_DEPTH */
    deep = chain_bplist(OTA_PLIST_MAX_DEPTH + 2, &len);
    ck_assert_int_eq(ota_bplist_check(tpool, deep, len), APR_EINVAL);
    deep = chain_bplist(OTA_PLIST_MAX_DEPTH - 1, &len);
    ck_assert_int_eq(ota_bplist_check(tpool, deep, len), APR_SUCCESS);
}
END_TEST

/* ota_plist_data copies exactly the bytes libplist holds (valgrind sees
 * a read past a binary plist's data node), then adds a NUL. */
START_TEST(plist_data_reads_only_its_bytes)
{
    static const unsigned char raw[5] = { 1, 2, 3, 4, 5 };
    plist_t top = ota_plist_track(tpool, plist_new_dict()), node;
    const unsigned char *d;
    char *bin = NULL;
    uint32_t n = 0;
    apr_size_t len = 0;

    ota_plist_set_data(top, "DATA", raw, sizeof(raw));
    plist_to_bin(top, &bin, &n);
    ck_assert_int_eq(ota_plist_parse(tpool, bin, n, 0, &node), APR_SUCCESS);
    bin_release(bin);
    d = ota_plist_data(tpool, node, "DATA", &len);
    ck_assert_uint_eq(len, sizeof(raw));
    ck_assert_int_eq(memcmp(d, raw, sizeof(raw)), 0);
    ck_assert_int_eq(d[len], 0);
}
END_TEST

START_TEST(identity_key_must_match)
{
    ota_identity_t *id;
    const char *err = NULL;

    ck_assert_int_ne(ota_identity_load(tpool, tu_write_certs(&sign_cert, 1),
                                       tu_write_key(k_ca), &id, &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "OTASigningKeyFile"));
    ck_assert_int_ne(ota_identity_load(tpool, "/nonexistent.pem",
                                       tu_write_key(k_sign), &id, &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "OTASigningCertificateFile"));
}
END_TEST

START_TEST(small_directives)
{
    const char *err = NULL;
    int n = 0;

    ck_assert_int_eq(ota_key_size_parse(tpool, "4096", &n, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(n, 4096);
    ck_assert_int_ne(ota_key_size_parse(tpool, "3072", &n, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(ota_cipher_parse(tpool, "aes-256", &n, &err),
                     APR_SUCCESS);
    ck_assert_int_eq(n, NID_aes_256_cbc);
    ck_assert_int_eq(ota_cipher_parse(tpool, "3DES", &n, &err), APR_SUCCESS);
    ck_assert_int_eq(n, NID_des_ede3_cbc);
    ck_assert_int_ne(ota_cipher_parse(tpool, "RC2", &n, &err), APR_SUCCESS);
    ck_assert_int_eq(ota_attribute_check(tpool, "DEVICE_NAME", &err),
                     APR_SUCCESS);
    ck_assert_int_ne(ota_attribute_check(tpool, "udid", &err), APR_SUCCESS);
    ck_assert_int_ne(ota_url_check(tpool, "/scep", &err), APR_SUCCESS);
    ck_assert_int_ne(ota_url_check(tpool, "http://h/scep?x=1", &err),
                     APR_SUCCESS);
    ck_assert_int_eq(ota_url_check(tpool, "http://h:8080/scep", &err),
                     APR_SUCCESS);
}
END_TEST

START_TEST(create_checks_settings)
{
    const char *err = NULL;
    ota_t *o;
    ota_settings_t s = set;

    s.profile = NULL;
    ck_assert_int_ne(ota_create(&o, tpool, &s, ca, caps, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "OTAProfile"));
    s = set;
    ck_assert_int_eq(ota_subject_parse(tpool, "/CN=%{DEVICE_NAME}",
                                       &s.subject, &err), APR_SUCCESS);
    ck_assert_int_ne(ota_create(&o, tpool, &s, ca, caps, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "OTADeviceAttributes"));
    ck_assert_str_eq(ota_filename(ota), "org.example.scep-ota.mobileconfig");
}
END_TEST

START_TEST(challenges_are_random_and_hashed)
{
    const char *a, *ha, *b, *hb, *c;

    ck_assert_int_eq(ota_challenge_make(tpool, &a, &ha), APR_SUCCESS);
    ck_assert_int_eq(ota_challenge_make(tpool, &b, &hb), APR_SUCCESS);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(strlen(a), 32);
    for (c = a; *c; ++c) {
        ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789-_", *c));
    }
    ck_assert_int_eq(strlen(ha), 64);
    ck_assert_str_eq(ha, scep_sha256_hex(tpool, a, strlen(a)));
    ck_assert_str_eq(ota_challenge_hash(tpool, a), ha);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Phase 1                                                             */

START_TEST(phase1_is_signed_profile_service)
{
    scep_outcome_t out;
    plist_t top, content, attrs;
    const char *challenge, *bound = NULL;

    ck_assert_int_eq(ota_phase1(ota, tpool, st, scep_log_null(),
                                "https://ota.example/ota/profile", "alice",
                                &out), APR_SUCCESS);
    ck_assert_int_eq(out.kind, SCEP_OUTCOME_OK);
    ck_assert_str_eq(out.content_type, OTA_CT_ASPEN_CONFIG);
    top = open_profile(out.body, out.len);
    ck_assert_str_eq(ota_plist_str(tpool, top, "PayloadType"),
                     "Profile Service");
    ck_assert_str_eq(ota_plist_str(tpool, top, "PayloadOrganization"),
                     "Example Inc.");
    ck_assert_ptr_nonnull(ota_plist_str(tpool, top, "PayloadUUID"));
    ck_assert_ptr_nonnull(ota_plist_str(tpool, top, "PayloadIdentifier"));
    content = ota_plist_get(top, "PayloadContent", PLIST_DICT);
    ck_assert_ptr_nonnull(content);
    ck_assert_str_eq(ota_plist_str(tpool, content, "URL"),
                     "https://ota.example/ota/profile");
    attrs = ota_plist_get(content, "DeviceAttributes", PLIST_ARRAY);
    ck_assert_ptr_nonnull(attrs);
    ck_assert_int_eq(plist_array_get_size(attrs), 6);
    ck_assert_str_eq(plist_get_string_ptr(plist_array_get_item(attrs, 0),
                                          NULL), "UDID");
    challenge = ota_plist_str(tpool, content, "Challenge");
    ck_assert_ptr_nonnull(challenge);
    /* stored hashed, for Phase 2, bound to the user */
    ck_assert_int_eq(st->ops->challenge_consume(
        st, tpool, ota_challenge_hash(tpool, challenge), SCEP_CHALLENGE_SCEP,
        NULL, &bound), APR_NOTFOUND);
    ck_assert_int_eq(st->ops->challenge_consume(
        st, tpool, ota_challenge_hash(tpool, challenge),
        SCEP_CHALLENGE_OTA_PHASE1, NULL, &bound), APR_SUCCESS);
    ck_assert_str_eq(bound, "alice");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Phase 2                                                             */

START_TEST(phase2_answers_scep_payload)
{
    plist_t c = phase2_content(), subj;
    const unsigned char *fp;
    unsigned char want[20];
    unsigned int n = 0;
    apr_size_t fp_len;
    apr_uint64_t v;
    const char *challenge, *bound = NULL;
    scep_grant_t *grant;

    ck_assert_str_eq(ota_plist_str(tpool, c, "URL"),
                     "https://scep.example/scep");
    ck_assert_str_eq(ota_plist_str(tpool, c, "Name"), "scep-ota");
    ck_assert_str_eq(ota_plist_str(tpool, c, "Key Type"), "RSA");
    ck_assert_int_eq(ota_plist_uint(c, "Key Usage", &v), APR_SUCCESS);
    ck_assert_int_eq(v, 5);
    ck_assert_int_eq(ota_plist_uint(c, "Keysize", &v), APR_SUCCESS);
    ck_assert_int_eq(v, 2048);
    ck_assert_int_eq(ota_plist_uint(c, "Retries", &v), APR_SUCCESS);
    ck_assert_int_eq(v, 3);
    ck_assert_int_eq(ota_plist_uint(c, "RetryDelay", &v), APR_SUCCESS);
    ck_assert_int_eq(v, 10);
    fp = ota_plist_data(tpool, c, "CAFingerprint", &fp_len);
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(X509_digest(ca_cert, EVP_sha1(), want, &n), 1);
    ck_assert_int_eq(fp_len, 20);
    ck_assert_int_eq(memcmp(fp, want, 20), 0);
    /* the Subject: three levels, substituted */
    subj = ota_plist_get(c, "Subject", PLIST_ARRAY);
    ck_assert_ptr_nonnull(subj);
    ck_assert_int_eq(plist_array_get_size(subj), 2);
    ck_assert_str_eq(plist_get_string_ptr(plist_array_get_item(
        plist_array_get_item(plist_array_get_item(subj, 1), 0), 0), NULL),
        "CN");
    ck_assert_str_eq(plist_get_string_ptr(plist_array_get_item(
        plist_array_get_item(plist_array_get_item(subj, 1), 0), 1), NULL),
        UDID);
    /* GetCACaps: the capability list, in order */
    ck_assert_str_eq(caps_line(c), SCEP_CAPS_DEFAULT);
    /* a one-time SCEP challenge bound to the subject the payload asks for */
    challenge = ota_plist_str(tpool, c, "Challenge");
    ck_assert_ptr_nonnull(challenge);
    ck_assert_int_eq(st->ops->challenge_consume(
        st, tpool, ota_challenge_hash(tpool, challenge), SCEP_CHALLENGE_SCEP,
        NULL, &bound), APR_SUCCESS);
    /* exactly the payload's subject, for this device */
    ck_assert_int_eq(scep_grant_parse(tpool, bound, &grant), APR_SUCCESS);
    ck_assert_str_eq(grant->subject, "CN=" UDID ",O=Example");
    ck_assert_str_eq(grant->udid, UDID);
    ck_assert_int_eq(grant->sans->nelts, 0);
}
END_TEST

START_TEST(phase2_caps_follow_the_list)
{
    const char *err = NULL;

    caps = scep_caps_make(tpool);
    ck_assert_int_eq(scep_caps_add(caps, "SHA-256", &err), APR_SUCCESS);
    ck_assert_int_eq(scep_caps_add(caps, "POSTPKIOperation", &err),
                     APR_SUCCESS);
    build_ota();
    ck_assert_str_eq(caps_line(phase2_content()), "SHA-256 POSTPKIOperation");
    /* the same object: a word added later shows up too */
    ck_assert_int_eq(scep_caps_add(caps, "AES", &err), APR_SUCCESS);
    ck_assert_str_eq(caps_line(phase2_content()),
                     "SHA-256 POSTPKIOperation AES");
    set.no_caps_array = 1;
    build_ota();
    ck_assert_ptr_null(plist_dict_get_item(phase2_content(), "GetCACaps"));
}
END_TEST

START_TEST(phase2_challenge_is_one_time)
{
    const unsigned char *der;
    apr_size_t len;

    device_sign(dev, k_dev, devca, device_attrs(phase1_challenge(NULL)),
                &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_OK);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);   /* replay */
}
END_TEST

START_TEST(phase2_wrong_or_missing_challenge)
{
    const unsigned char *der;
    apr_size_t len;

    phase1_challenge(NULL);
    device_sign(dev, k_dev, devca, device_attrs("guessed"), &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);
    device_sign(dev, k_dev, devca, device_attrs(NULL), &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);
}
END_TEST

START_TEST(phase2_challenge_bound_to_user)
{
    const unsigned char *der;
    apr_size_t len;

    device_sign(dev, k_dev, devca, device_attrs(phase1_challenge("alice")),
                &der, &len);
    ck_assert_int_eq(post(der, len, "mallory").out.kind, SCEP_OUTCOME_FORBIDDEN);
    device_sign(dev, k_dev, devca, device_attrs(phase1_challenge("alice")),
                &der, &len);
    ck_assert_int_eq(post(der, len, "alice").out.kind, SCEP_OUTCOME_OK);
    device_sign(dev, k_dev, devca, device_attrs(phase1_challenge("alice")),
                &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_OK);
}
END_TEST

START_TEST(phase2_foreign_ca_refused)
{
    X509 *fca = new_cert("Not Apple", k_foreign, NULL, NULL, 1);
    X509 *fdev = new_cert(UDID, k_dev, fca, k_foreign, 0);
    const unsigned char *der;
    apr_size_t len;
    ota_answer_t ans;

    device_sign(fdev, k_dev, fca, device_attrs(phase1_challenge(NULL)),
                &der, &len);
    ans = post(der, len, NULL);
    ck_assert_int_eq(ans.out.kind, SCEP_OUTCOME_FORBIDDEN);
    ck_assert_ptr_null(ans.out.body);
    /* a self-signed "device" */
    device_sign(new_cert(UDID, k_dev, NULL, NULL, 0), k_dev, NULL,
                device_attrs(phase1_challenge(NULL)), &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);
}
END_TEST

/* A root above the device CA and a sibling intermediate: with the root
 * and the device CA in OTADeviceCACertificateFile, the sibling's leaf is
 * refused (the root vouches for nothing), the device still enrolls; with
 * the root alone, nothing is a device. */
START_TEST(phase2_signer_issued_directly_by_a_device_ca)
{
    X509 *root = old_cert("Fake Apple Root", k_foreign, NULL, NULL, 1,
                          "20060425000000Z", "20350209000000Z", EVP_sha1());
    X509 *dca = old_cert("Fake iPhone Device CA", k_devca, root, k_foreign,
                         1, "20070416000000Z", "20140416000000Z", EVP_sha1());
    X509 *sib = old_cert("Fake Sibling CA", k_ca, root, k_foreign, 1,
                         "20070416000000Z", "20300416000000Z", EVP_sha1());
    X509 *leaf = old_cert(UDID, k_dev, dca, k_devca, 0, "20100101000000Z",
                          "20130101000000Z", EVP_sha1());
    X509 *other = old_cert(UDID, k_id, sib, k_ca, 0, "20100101000000Z",
                           "20300101000000Z", EVP_sha1());
    X509 *both[2];
    const unsigned char *der;
    const char *err = NULL;
    apr_size_t len;

    both[0] = root;
    both[1] = dca;
    ck_assert_int_eq(ota_anchors_load(tpool, tu_write_certs(both, 2),
                                      &set.device_cas, &err), APR_SUCCESS);
    build_ota();
    device_sign(other, k_id, sib, device_attrs(phase1_challenge(NULL)),
                &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);
    device_sign(leaf, k_dev, dca, device_attrs(phase1_challenge(NULL)),
                &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_OK);
    ck_assert_int_eq(ota_anchors_load(tpool, tu_write_certs(&root, 1),
                                      &set.device_cas, &err), APR_SUCCESS);
    build_ota();
    device_sign(leaf, k_dev, dca, device_attrs(phase1_challenge(NULL)),
                &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);
}
END_TEST

START_TEST(phase2_forged_content_refused)
{
    const unsigned char *der;
    unsigned char *forged;
    apr_size_t len, i;

    device_sign(dev, k_dev, devca, device_attrs(phase1_challenge(NULL)),
                &der, &len);
    forged = apr_pmemdup(tpool, der, len);
    for (i = 0; i + 10 < len; ++i) {
        if (!memcmp(forged + i, "G4NQM9HHK0", 10)) {
            forged[i] = 'X';
            break;
        }
    }
    ck_assert_int_lt(i + 10, len);
    ck_assert_int_eq(post(forged, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);
}
END_TEST

START_TEST(unsigned_and_undecodable_refused)
{
    const char *xml = xml_of(make_profile());
    const unsigned char *der;
    apr_size_t len;
    unsigned char *big;

    ck_assert_int_eq(post((const unsigned char *)xml, strlen(xml),
                          NULL).out.kind, SCEP_OUTCOME_BAD_REQUEST);
    ck_assert_int_eq(post((const unsigned char *)"", 0, NULL).out.kind, SCEP_OUTCOME_BAD_REQUEST);
    /* a certs-only SignedData has no signer */
    ck_assert_int_eq(scep_certs_only_der(tpool, arr(dev, devca), &der, &len),
                     APR_SUCCESS);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_BAD_REQUEST);
    /* truncated */
    device_sign(dev, k_dev, devca, device_attrs("x"), &der, &len);
    ck_assert_int_eq(post(der, len / 2, NULL).out.kind, SCEP_OUTCOME_BAD_REQUEST);
    big = apr_pcalloc(tpool, OTA_MAX_REQUEST + 1);
    ck_assert_int_eq(post(big, OTA_MAX_REQUEST + 1, NULL).out.kind, SCEP_OUTCOME_TOO_LARGE);
}
END_TEST

START_TEST(phase2_needs_udid)
{
    const unsigned char *der;
    apr_size_t len;
    apr_table_t *a = device_attrs(phase1_challenge(NULL));

    apr_table_set(a, "UDID", "../../etc");
    device_sign(dev, k_dev, devca, a, &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_BAD_REQUEST);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Phase 3                                                             */

/* One device's identity cannot speak for another UDID. */
START_TEST(phase3_attributes_must_match_identity)
{
    X509 *id = identity_for("00008101-0000000000000BEE", SCEP_CERT_VALID);
    const unsigned char *der;
    apr_size_t len;

    device_sign(id, k_id, NULL, device_attrs(NULL), &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);
}
END_TEST

/* A certificate of ours that did not come through Phase 2 for this
 * device (network gear with the static challenge, another device's
 * enrollment) gets no profile. */
START_TEST(phase3_needs_phase2)
{
    X509 *id = identity_enrolled(UDID, SCEP_CERT_VALID, NULL);
    const unsigned char *der;
    apr_size_t len;

    device_sign(id, k_id, NULL, device_attrs(NULL), &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);
    id = identity_enrolled(UDID, SCEP_CERT_VALID, "00008101-0000000000000BEE");
    device_sign(id, k_id, NULL, device_attrs(NULL), &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);
}
END_TEST

START_TEST(phase3_encrypts_profile_to_identity)
{
    X509 *id = issued_identity(SCEP_CERT_VALID);
    const unsigned char *der;
    apr_size_t len;
    ota_answer_t ans;
    scep_device_rec_t *drec = NULL;
    int cipher = 0;
    plist_t got;

    device_sign(id, k_id, NULL, device_attrs(NULL), &der, &len);
    ans = post(der, len, NULL);
    ck_assert_int_eq(ans.out.kind, SCEP_OUTCOME_OK);
    ck_assert_int_eq(ans.phase, 3);
    got = phase3_decrypt(&ans, &cipher);
    ck_assert_int_eq(cipher, NID_des_ede3_cbc);
    ck_assert_int_eq(plist_get_node_type(got), PLIST_ARRAY);
    ck_assert_str_eq(xml_of(got), xml_of(ota_plist_get(
        make_profile(), "PayloadContent", PLIST_ARRAY)));
    ck_assert_int_eq(st->ops->device_get(st, tpool, UDID, &drec),
                     APR_SUCCESS);
    ck_assert_str_eq(drec->cert_serial, scep_cert_serial_hex(tpool, id));
    ck_assert_str_eq(drec->product, "iPhone17,1");
    /* who enrolled it, as the certificate's record says */
    ck_assert_pstr_eq(drec->enrolled_by, "alice");
}
END_TEST

START_TEST(phase3_aes_selectable)
{
    X509 *id = issued_identity(SCEP_CERT_VALID);
    const unsigned char *der;
    apr_size_t len;
    ota_answer_t ans;
    int cipher = 0;

    set.cipher_nid = NID_aes_256_cbc;
    build_ota();
    device_sign(id, k_id, ca_cert, device_attrs(NULL), &der, &len);
    ans = post(der, len, NULL);
    ck_assert_int_eq(ans.out.kind, SCEP_OUTCOME_OK);
    phase3_decrypt(&ans, &cipher);
    ck_assert_int_eq(cipher, NID_aes_256_cbc);
}
END_TEST

START_TEST(phase3_revoked_or_unknown_refused)
{
    X509 *revoked = issued_identity(SCEP_CERT_REVOKED);
    X509 *unknown = new_cert("Not recorded", k_id, ca_cert, k_ca, 0);
    const unsigned char *der;
    apr_size_t len;

    device_sign(revoked, k_id, NULL, device_attrs(NULL), &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);
    device_sign(unknown, k_id, NULL, device_attrs(NULL), &der, &len);
    ck_assert_int_eq(post(der, len, NULL).out.kind, SCEP_OUTCOME_FORBIDDEN);
}
END_TEST

START_TEST(phase3_expired_identity_refused)
{
    X509 *old = old_cert("Expired identity", k_id, ca_cert, k_ca, 0,
                         "20200101000000Z", "20210101000000Z", EVP_sha256());
    const unsigned char *der;
    apr_size_t len;
    ota_answer_t ans;

    device_sign(old, k_id, NULL, device_attrs(NULL), &der, &len);
    ans = post(der, len, NULL);
    ck_assert_int_eq(ans.out.kind, SCEP_OUTCOME_FORBIDDEN);
    ck_assert_int_eq(ans.phase, 0);
}
END_TEST

Suite *suite_ota(void)
{
    Suite *s = suite_create("ota");
    TCase *tc = tcase_create("ota");

    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, subject_template_parses_to_apple_array);
    tcase_add_test(tc, subject_template_errors);
    tcase_add_test(tc, subject_values_are_sanitized);
    tcase_add_test(tc, profile_must_be_configuration);
    tcase_add_test(tc, plist_nesting_is_bounded);
    tcase_add_test(tc, bplist_shared_containers_refused);
    tcase_add_test(tc, bplist_shared_values_accepted);
    tcase_add_test(tc, plist_data_reads_only_its_bytes);
    tcase_add_test(tc, identity_key_must_match);
    tcase_add_test(tc, small_directives);
    tcase_add_test(tc, create_checks_settings);
    tcase_add_test(tc, challenges_are_random_and_hashed);
    tcase_add_test(tc, phase1_is_signed_profile_service);
    tcase_add_test(tc, phase2_answers_scep_payload);
    tcase_add_test(tc, phase2_caps_follow_the_list);
    tcase_add_test(tc, phase2_challenge_is_one_time);
    tcase_add_test(tc, phase2_wrong_or_missing_challenge);
    tcase_add_test(tc, phase2_challenge_bound_to_user);
    tcase_add_test(tc, phase2_foreign_ca_refused);
    tcase_add_test(tc, phase2_signer_issued_directly_by_a_device_ca);
    tcase_add_test(tc, phase2_forged_content_refused);
    tcase_add_test(tc, unsigned_and_undecodable_refused);
    tcase_add_test(tc, phase2_needs_udid);
    tcase_add_test(tc, phase3_needs_phase2);
    tcase_add_test(tc, phase3_encrypts_profile_to_identity);
    tcase_add_test(tc, phase3_attributes_must_match_identity);
    tcase_add_test(tc, phase3_aes_selectable);
    tcase_add_test(tc, phase3_revoked_or_unknown_refused);
    tcase_add_test(tc, phase3_expired_identity_refused);
    suite_add_tcase(s, tc);
    return s;
}
