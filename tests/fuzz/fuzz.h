#ifndef SCEP_FUZZ_H
#define SCEP_FUZZ_H

/* What every fuzz target shares: the libFuzzer entry points, the fixed
 * test PKI (tests/data/captured and tests/fuzz/pki), a fresh pool and a
 * pre-filled memory store per input, and a logger that formats every
 * message and throws it away. See tests/fuzz/README.md. */

#include <stddef.h>
#include <stdint.h>

#include <apr_pools.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

#include "scep_ota/scep_ca.h"
#include "scep_ota/scep_log.h"
#include "scep_ota/scep_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The static challenge of the captured requests, and the one-time
 * challenges every per-input store holds. */
#define FUZZ_STATIC_CHALLENGE   "peers-secret"
#define FUZZ_ONETIME_CHALLENGE  "fuzz-one-time-challenge"
#define FUZZ_PHASE1_CHALLENGE   "fuzz-phase1-challenge"
/* a one-time SCEP challenge bound to the client's subject (as Phase 2
 * hands them out) */
#define FUZZ_BOUND_CHALLENGE    "fuzz-bound-challenge"
#define FUZZ_PHASE1_USER        "alice"
/* transactionIDs the per-input store knows */
#define FUZZ_TXID               "fuzz-txid"
#define FUZZ_TXID_PENDING       "fuzz-pending"

/* Process-wide setup (APR, OpenSSL's legacy provider); idempotent. It
 * starts the one-time setup of a target, which fuzz_ready() ends: what is
 * allocated in between lives as long as the process, in pools whose
 * memory Debian's APR takes with mmap() where LeakSanitizer does not look
 * for pointers, so LeakSanitizer is told to ignore it. */
void fuzz_init(void);
void fuzz_ready(void);
/* The pool that lives as long as the process. */
apr_pool_t *fuzz_root(void);
/* A fresh pool for one input; its allocator keeps no free blocks, so
 * memory of a destroyed pool goes back to malloc (and ASan sees reuse). */
apr_pool_t *fuzz_input_pool(void);

/* A file of the source tree: $SCEP_FUZZ_SRCDIR, $top_srcdir or the
 * directory the target was built from. */
const char *fuzz_path(const char *rel);
X509 *fuzz_load_cert(const char *rel);
EVP_PKEY *fuzz_load_key(const char *rel);

/* A logger that is enabled at every level: messages are formatted (so
 * their arguments are read) and dropped. */
const scep_logger_t *fuzz_logger(void);

/* The captured fixtures' CA (tests/data/captured/ca.pem, no RA). */
const scep_ca_t *fuzz_captured_ca(void);

/* The SCEP client the structured inputs speak as: a key of its own
 * (tests/fuzz/pki/client.key), a self-signed certificate for it, and a
 * certificate the captured CA issued to it (O=scep-fuzz, CN=fuzz-client). */
EVP_PKEY *fuzz_client_key(void);
X509 *fuzz_client_selfsigned(void);
X509 *fuzz_client_issued(void);
/* A CSR (DER) of the client key with the one-time challenge. */
void fuzz_client_csr(const unsigned char **der, apr_size_t *len);

/* A memory store in p holding: the certificate the CA issued to the
 * client, the one-time SCEP challenges (unbound, and bound to the
 * client's subject), the Phase 1 challenge bound to
 * FUZZ_PHASE1_USER, the OTA identity certificate, and a pending request
 * FUZZ_TXID_PENDING of the client key. state:
 *   bits 1-2  the pending request's state (scep_pending_state_t)
 *   bit 3     the client's certificate is revoked
 *   bit 5     the client's certificate is not in the store */
#define FUZZ_STATE_NO_ISSUED 0x20
scep_store_t *fuzz_store(apr_pool_t *p, unsigned state);
/* Loads what fuzz_store needs; call it from LLVMFuzzerInitialize so that
 * nothing long-lived is allocated while an input runs. */
void fuzz_store_prepare(void);

#endif /* SCEP_FUZZ_H */
