/* PKIOperation by POST: scep_pkiop_handle on the body, as the SCEP handler
 * calls it, with the captured fixtures' CA and a fresh memory store.
 *
 * Input: one flags byte, then the body.
 *   flags bit 0   SCEPAllowLegacyAlgorithms on
 *   flags bit 1   structured: the rest is [alg][state] and the messageData,
 *                 which the target wraps into a request (signed by the fuzz
 *                 client, encrypted to the CA) so that mutations reach the
 *                 code behind the signature and the envelope
 *   flags bit 2   SCEPApproval manual
 * alg:   bits 0-2 messageType (PKCSReq, RenewalReq, CertPoll, GetCert,
 *                 GetCRL, CertRep, 99, PKCSReq); bit 3 signer is the
 *                 certificate the CA issued (else the self-signed one);
 *                 bits 4-5 cipher (AES-128, AES-256, 3DES, DES);
 *                 bits 6-7 digest (SHA-256, SHA-1, SHA-512, MD5)
 * state: bit 0 transactionID of the pending request (else FUZZ_TXID);
 *        bits 1-2 its state; bit 3 the issued certificate is revoked;
 *        bit 4 RSAES-OAEP key transport; bit 5 the issued certificate is
 *        not in the store (see fuzz_store); bit 6 a messageData that
 *        decodes as a CSR is given the client key and re-signed, so that
 *        mutated CSRs get past their self-signature; bit 7 the envelope
 *        names the CA by subjectKeyIdentifier */

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "fuzz.h"
#include "scep_ota/scep_pkiop.h"
#include "scep_ota/scep_pkimsg.h"

static scep_pkiop_cfg_t cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_init();
    memset(&cfg, 0, sizeof(cfg));
    cfg.ca = fuzz_captured_ca();
    cfg.challenge_password = FUZZ_STATIC_CHALLENGE;
    cfg.min_key_size = 1024;
    fuzz_store_prepare();
    fuzz_ready();
    return 0;
}

static const int types[8] = {
    SCEP_MSG_PKCSREQ, SCEP_MSG_RENEWALREQ, SCEP_MSG_CERTPOLL,
    SCEP_MSG_GETCERT, SCEP_MSG_GETCRL, SCEP_MSG_CERTREP, 99, SCEP_MSG_PKCSREQ
};
static const int ciphers[4] = {
    NID_aes_128_cbc, NID_aes_256_cbc, NID_des_ede3_cbc, NID_des_cbc
};
static const int digests[4] = { NID_sha256, NID_sha1, NID_sha512, NID_md5 };

/* A CSR of the fuzzer's with the client key and a valid self-signature;
 * the input as it is when it is no CSR. */
static void resign(apr_pool_t *p, const unsigned char **data, apr_size_t *len)
{
    const unsigned char *d = *data;
    X509_REQ *req = *len < 0x7fffffff ? d2i_X509_REQ(NULL, &d, (long)*len)
                                      : NULL;
    unsigned char *der = NULL;
    int n;

    if (req && X509_REQ_set_pubkey(req, fuzz_client_key())
        && X509_REQ_sign(req, fuzz_client_key(), EVP_sha256()) > 0
        && (n = i2d_X509_REQ(req, &der)) > 0) {
        *data = apr_pmemdup(p, der, (apr_size_t)n);
        *len = (apr_size_t)n;
    }
    OPENSSL_free(der);
    X509_REQ_free(req);
    ERR_clear_error();
}

/* The structured input as a request; 0 when it cannot be built. */
static int wrap(apr_pool_t *p, const uint8_t *data, size_t size,
                const unsigned char **der, apr_size_t *len)
{
    scep_request_t r;
    unsigned alg = data[0], state = data[1];

    memset(&r, 0, sizeof(r));
    r.message_type = types[alg & 7];
    r.transaction_id = (state & 1) ? FUZZ_TXID_PENDING : FUZZ_TXID;
    r.data = size > 2 ? data + 2 : (const unsigned char *)"";
    r.data_len = size - 2;
    if (state & 64) {
        resign(p, &r.data, &r.data_len);
    }
    r.signer = (alg & 8) ? fuzz_client_issued() : fuzz_client_selfsigned();
    r.signer_key = fuzz_client_key();
    r.recipient = fuzz_captured_ca()->decrypt_cert;
    r.cipher_nid = ciphers[(alg >> 4) & 3];
    r.digest_nid = digests[(alg >> 6) & 3];
    r.key_transport = (state & 16) ? SCEP_KT_OAEP : SCEP_KT_PKCS1;
    r.recipient_keyid = (state & 128) != 0;
    return APR_SUCCESS == scep_request_build(p, &r, der, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    scep_pkiop_cfg_t c = cfg;
    scep_pkiop_reply_t reply;
    const unsigned char *msg;
    apr_size_t len;
    unsigned flags, state = 0;
    apr_status_t rv;

    if (size < 1) {
        return 0;
    }
    flags = data[0];
    ++data;
    --size;
    p = fuzz_input_pool();
    c.allow_legacy = flags & 1;
    c.approval_manual = (flags >> 2) & 1;
    if (flags & 2) {
        if (size < 2 || !wrap(p, data, size, &msg, &len)) {
            apr_pool_destroy(p);
            return 0;
        }
        state = data[1];
    }
    else {
        msg = data;
        len = size;
    }
    rv = scep_pkiop_handle(p, fuzz_logger(), &c,
                           fuzz_store(p, state),
                           msg, len, &reply);
    /* client input never makes the server fail (scep_pkiop.h) */
    if (APR_SUCCESS != rv || (reply.kind != SCEP_OUTCOME_OK
                              && reply.kind != SCEP_OUTCOME_BAD_REQUEST)
        || (reply.kind == SCEP_OUTCOME_OK && (!reply.body || !reply.len))) {
        abort();
    }
    apr_pool_destroy(p);
    return 0;
}
