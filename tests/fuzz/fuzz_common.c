/* Shared setup of the fuzz targets: the fixed PKI, pools, store, logger. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_allocator.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "fuzz.h"
#include "scep-ota-client.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/ota_profile.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FUZZ_LSAN)
#define FUZZ_LSAN 1
#endif
#ifdef FUZZ_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#ifndef FUZZ_TOP_SRCDIR
#define FUZZ_TOP_SRCDIR "."
#endif

static apr_pool_t *root;
static const scep_ca_t *captured_ca;
static EVP_PKEY *client_key;
static X509 *client_selfsigned, *client_issued, *identity;
static const unsigned char *client_csr;
static apr_size_t client_csr_len;

static void die(const char *what) __attribute__((noreturn));

static void die(const char *what)
{
    fprintf(stderr, "fuzz setup: %s\n", what);
    ERR_print_errors_fp(stderr);
    abort();
}

void fuzz_init(void)
{
    const char *err = NULL;

    if (root) {
        return;
    }
#ifdef FUZZ_LSAN
    __lsan_disable();
#endif
    if (APR_SUCCESS != apr_initialize()
        || APR_SUCCESS != apr_pool_create(&root, NULL)) {
        die("apr");
    }
    if (APR_SUCCESS != scep_crypt_enable_legacy(root, &err)) {
        die(err);
    }
}

void fuzz_ready(void)
{
#ifdef FUZZ_LSAN
    static int ready;

    if (!ready) {
        ready = 1;
        __lsan_enable();
    }
#endif
}

apr_pool_t *fuzz_root(void)
{
    fuzz_init();
    return root;
}

apr_pool_t *fuzz_input_pool(void)
{
    apr_allocator_t *alloc = NULL;
    apr_pool_t *p = NULL;

    fuzz_init();
    if (APR_SUCCESS != apr_allocator_create(&alloc)) {
        die("allocator");
    }
    apr_allocator_max_free_set(alloc, 1);
    if (APR_SUCCESS != apr_pool_create_ex(&p, NULL, NULL, alloc)) {
        die("pool");
    }
    apr_allocator_owner_set(alloc, p);
    return p;
}

const char *fuzz_path(const char *rel)
{
    const char *top = getenv("SCEP_FUZZ_SRCDIR");

    if (!top || !*top) {
        top = getenv("top_srcdir");
    }
    if (!top || !*top) {
        top = FUZZ_TOP_SRCDIR;
    }
    return apr_pstrcat(fuzz_root(), top, "/", rel, NULL);
}

X509 *fuzz_load_cert(const char *rel)
{
    apr_array_header_t *certs;
    const char *err = NULL;

    if (APR_SUCCESS != scep_load_certs(fuzz_root(), fuzz_path(rel), &certs,
                                       &err)) {
        die(err);
    }
    return APR_ARRAY_IDX(certs, 0, X509 *);
}

EVP_PKEY *fuzz_load_key(const char *rel)
{
    apr_array_header_t *keys;
    const char *err = NULL;

    if (APR_SUCCESS != scep_load_keys(fuzz_root(), fuzz_path(rel), &keys,
                                      &err)) {
        die(err);
    }
    return APR_ARRAY_IDX(keys, 0, EVP_PKEY *);
}

/* ------------------------------------------------------------------ */

/* what the logger was given, so that formatting cannot be optimised out */
static volatile size_t log_bytes;

static void drop(void *baton, const char *file, int line,
                 scep_log_level_t level, apr_status_t rv, const char *msg)
{
    (void)baton;
    (void)file;
    (void)line;
    (void)rv;
    log_bytes += strlen(msg);
    if (getenv("SCEP_FUZZ_LOG")) {
        fprintf(stderr, "[%d] %s\n", (int)level, msg);
    }
}

static int all_levels(void *baton, scep_log_level_t level)
{
    (void)baton;
    (void)level;
    return 1;
}

const scep_logger_t *fuzz_logger(void)
{
    static const scep_logger_t log = { drop, all_levels, NULL };

    return &log;
}

/* ------------------------------------------------------------------ */

const scep_ca_t *fuzz_captured_ca(void)
{
    scep_ca_material_t m;
    scep_ca_t *ca = NULL;
    const char *err = NULL, *warn = NULL;

    if (captured_ca) {
        return captured_ca;
    }
    memset(&m, 0, sizeof(m));
    m.ca_cert_file = fuzz_path("tests/data/captured/ca.pem");
    m.ca_key_file = fuzz_path("tests/data/captured/ca.key");
    if (APR_SUCCESS != scep_load_certs(root, m.ca_cert_file, &m.ca_certs,
                                       &err)
        || APR_SUCCESS != scep_load_keys(root, m.ca_key_file, &m.ca_keys,
                                         &err)
        || APR_SUCCESS != scep_ca_assemble(&ca, root, &m, &err, &warn)) {
        die(err ? err : "captured CA");
    }
    captured_ca = ca;
    return ca;
}

EVP_PKEY *fuzz_client_key(void)
{
    if (!client_key) {
        client_key = fuzz_load_key("tests/fuzz/pki/client.key");
    }
    return client_key;
}

X509 *fuzz_client_selfsigned(void)
{
    if (!client_selfsigned) {
        client_selfsigned = fuzz_load_cert("tests/fuzz/pki/client-selfsigned.pem");
    }
    return client_selfsigned;
}

X509 *fuzz_client_issued(void)
{
    if (!client_issued) {
        client_issued = fuzz_load_cert("tests/fuzz/pki/client-issued.pem");
    }
    return client_issued;
}

void fuzz_client_csr(const unsigned char **der, apr_size_t *len)
{
    X509_NAME *name;
    scep_cli_csr_t s;

    if (!client_csr) {
        name = X509_NAME_new();
        memset(&s, 0, sizeof(s));
        s.subject = name;
        s.key = fuzz_client_key();
        s.challenge = FUZZ_ONETIME_CHALLENGE;
        if (!name
            || !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                           (const unsigned char *)"scep-fuzz",
                                           -1, -1, 0)
            || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                           (const unsigned char *)"fuzz-client",
                                           -1, -1, 0)
            || !(client_csr = scep_cli_csr_der(root, scep_cli_csr(root, &s),
                                               &client_csr_len))) {
            die("client CSR");
        }
        X509_NAME_free(name);
    }
    *der = client_csr;
    *len = client_csr_len;
}

static void put_cert(apr_pool_t *p, scep_store_t *st, X509 *x,
                     const char *txid, int revoked)
{
    scep_cert_rec_t rec;

    memset(&rec, 0, sizeof(rec));
    rec.serial = scep_cert_serial_hex(p, x);
    rec.subject = scep_name_rfc2253(p, X509_get_subject_name(x));
    rec.transaction_id = txid;
    rec.key_hash = scep_key_hash(p, X509_get0_pubkey(x));
    rec.not_before = apr_time_now() - apr_time_from_sec(3600);
    rec.not_after = apr_time_now() + apr_time_from_sec(86400);
    rec.status = revoked ? SCEP_CERT_REVOKED : SCEP_CERT_VALID;
    rec.revoked_at = revoked ? apr_time_now() : 0;
    rec.revocation_reason = revoked ? 1 : -1;
    if (APR_SUCCESS != scep_cert_der(p, x, &rec.der, &rec.der_len)
        || APR_SUCCESS != st->ops->cert_insert(st, p, &rec)) {
        die("store: cert");
    }
}

void fuzz_store_prepare(void)
{
    const unsigned char *der;
    apr_size_t len;

    if (!identity) {
        identity = fuzz_load_cert("tests/fuzz/pki/identity.pem");
    }
    fuzz_client_selfsigned();
    fuzz_client_issued();
    fuzz_client_csr(&der, &len);
}

scep_store_t *fuzz_store(apr_pool_t *p, unsigned state)
{
    int pending_state = (int)((state >> 1) & 3), revoked = (state >> 3) & 1;
    scep_store_t *st = scep_store_memory_create(p);
    scep_pending_rec_t pend;
    apr_time_t later = apr_time_now() + apr_time_from_sec(3600);

    if (!st) {
        die("store");
    }
    fuzz_store_prepare();
    if (!(state & FUZZ_STATE_NO_ISSUED)) {
        put_cert(p, st, fuzz_client_issued(), "fuzz-issued", revoked);
    }
    put_cert(p, st, identity, "fuzz-identity", 0);
    if (APR_SUCCESS != st->ops->challenge_add(
            st, p, scep_sha256_hex(p, FUZZ_ONETIME_CHALLENGE,
                                   strlen(FUZZ_ONETIME_CHALLENGE)),
            SCEP_CHALLENGE_SCEP, "fuzz-device", later)
        || APR_SUCCESS != st->ops->challenge_add(
            st, p, ota_challenge_hash(p, FUZZ_BOUND_CHALLENGE),
            SCEP_CHALLENGE_SCEP,
            SCEP_BOUND_SUBJECT "CN=fuzz-client,O=scep-fuzz", later)
        || APR_SUCCESS != st->ops->challenge_add(
            st, p, ota_challenge_hash(p, FUZZ_PHASE1_CHALLENGE),
            SCEP_CHALLENGE_OTA_PHASE1, FUZZ_PHASE1_USER, later)) {
        die("store: challenge");
    }
    memset(&pend, 0, sizeof(pend));
    pend.transaction_id = FUZZ_TXID_PENDING;
    pend.subject = "CN=fuzz-client,O=scep-fuzz";
    pend.key_hash = scep_key_hash(p, fuzz_client_key());
    pend.state = (scep_pending_state_t)pending_state;
    pend.created = apr_time_now();
    fuzz_client_csr(&pend.csr, &pend.csr_len);
    if (APR_SUCCESS != scep_cert_der(p, fuzz_client_selfsigned(),
                                     &pend.requester, &pend.requester_len)) {
        die("store: requester");
    }
    if (pending_state == SCEP_PENDING_ISSUED) {
        pend.cert_serial = scep_cert_serial_hex(p, fuzz_client_issued());
    }
    if (APR_SUCCESS != st->ops->pending_put(st, p, &pend)) {
        die("store: pending");
    }
    return st;
}
