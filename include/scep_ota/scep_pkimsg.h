#ifndef SCEP_PKIMSG_H
#define SCEP_PKIMSG_H

/**
 * @file scep_pkimsg.h
 * SCEP pkiMessages (RFC 8894 section 3): decoding a request or a CertRep
 * (SignedData with the SCEP signed attributes around an EnvelopedData),
 * decrypting its envelope, and building CertReps, requests (for tests and
 * the CLI's client) and the GetNextCACert answer. Pure OpenSSL CMS/PKCS7;
 * no policy lives here (see scep_pkiop.h).
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

#include "scep_ota/scep_ca.h"

/* messageType values */
#define SCEP_MSG_CERTREP     3
#define SCEP_MSG_RENEWALREQ 17
#define SCEP_MSG_PKCSREQ    19
#define SCEP_MSG_CERTPOLL   20   /* GetCertInitial */
#define SCEP_MSG_GETCERT    21
#define SCEP_MSG_GETCRL     22

/* pkiStatus values */
#define SCEP_STATUS_SUCCESS 0
#define SCEP_STATUS_FAILURE 2
#define SCEP_STATUS_PENDING 3

/* failInfo values; SCEP_FAIL_NONE when there is none */
#define SCEP_FAIL_NONE           -1
#define SCEP_FAIL_BADALG          0
#define SCEP_FAIL_BADMESSAGECHECK 1
#define SCEP_FAIL_BADREQUEST      2
#define SCEP_FAIL_BADTIME         3
#define SCEP_FAIL_BADCERTID       4

/** Longest transactionID accepted: it is echoed as a short-form string. */
#define SCEP_TXID_MAX   127
/** Nonces: what we send, and the most we accept. */
#define SCEP_NONCE_LEN  16
#define SCEP_NONCE_MAX  64
/** The content type of every PKIOperation answer. */
#define SCEP_CT_PKI_MESSAGE "application/x-pki-message"
#define SCEP_CT_NEXT_CA_CERT "application/x-x509-next-ca-cert"

/** Key transport of the envelope's recipient. */
#define SCEP_KT_PKCS1 0
#define SCEP_KT_OAEP  1

/**
 * Most RecipientInfos an envelope may carry. SCEP clients send one; each
 * could cost the server an RSA decryption, so more are refused before any.
 */
#define SCEP_MAX_RECIPIENTS 4

/** A decoded pkiMessage. Strings and bytes are allocated from the pool. */
typedef struct scep_pkimsg_t {
    int message_type;              /* -1 when absent or not a number */
    const char *transaction_id;
    const unsigned char *sender_nonce;
    apr_size_t sender_nonce_len;
    const unsigned char *recipient_nonce;  /* CertRep only, else NULL */
    apr_size_t recipient_nonce_len;
    int pki_status;                /* CertRep only, else -1 */
    int fail_info;                 /* CertRep only, else SCEP_FAIL_NONE */
    const char *fail_info_text;    /* CertRep only, else NULL */
    /* the signer's signingTime (PKCS#9), seconds since the epoch, when
     * has_signing_time */
    int has_signing_time;
    apr_time_t signing_time;
    X509 *signer;                  /* from the certificates; NULL if absent */
    apr_array_header_t *certs;     /* X509 *: all certificates carried */
    int digest_nid;                /* the signer's digest algorithm */
    int signature_ok;              /* signature over signed attrs verified */
    int content_is_data;           /* eContentType is id-data */
    /* the encapsulated content (the DER EnvelopedData), NULL if absent */
    const unsigned char *envelope;
    apr_size_t envelope_len;
    /* the envelope, read without decrypting */
    int cipher_nid;                /* NID_undef if unknown */
    int key_transport;             /* SCEP_KT_*: OAEP when its key
                                      transport recipients use it; after
                                      decrypting, of the one decrypted */
    int recipients;                /* RecipientInfos; -1 if unreadable */
    /* set by scep_pkimsg_decrypt_as / scep_pkimsg_decrypt */
    const unsigned char *data;
    apr_size_t data_len;
} scep_pkimsg_t;

/**
 * Decodes a pkiMessage (DER or BER): the SignedData, its single SignerInfo,
 * the SCEP signed attributes, and verifies the signature (signature_ok)
 * with the signer certificate carried in the message (no chain check).
 * Returns APR_SUCCESS when transactionID and senderNonce could be read, so
 * that a signed CertRep can answer whatever else is wrong; APR_EINVAL for
 * anything undecodable.
 */
apr_status_t scep_pkimsg_parse(apr_pool_t *p, const unsigned char *der,
                               apr_size_t len, scep_pkimsg_t **pmsg);

/** 1 when the digest may be used; MD5 only with allow_legacy. */
int scep_pkimsg_digest_allowed(int nid, int allow_legacy);
/** 1 when the content cipher may be used; single DES only with allow_legacy. */
int scep_pkimsg_cipher_allowed(int nid, int allow_legacy);
/** Short names for logs ("SHA256", "AES-128-CBC"); "?" when unknown. */
const char *scep_pkimsg_alg_name(int nid);
/** "PKCSReq", "CertRep", ... or "unknown". */
const char *scep_pkimsg_type_name(int message_type);
/** "SUCCESS", "FAILURE", "PENDING" or "unknown". */
const char *scep_pkimsg_status_name(int pki_status);
/** "badAlg", ... or "none". */
const char *scep_pkimsg_fail_name(int fail_info);

/**
 * Decrypts the envelope into msg->data, as the holder of cert and key (the
 * RA's or CA's encryption certificate and key): only the
 * KeyTransRecipientInfo that names cert, by issuerAndSerialNumber or by
 * subjectKeyIdentifier, is decrypted; other recipients, and recipients of
 * other kinds (key agreement, KEK, password, other), are left alone. Before
 * any decryption, the envelope is parsed in the library context of
 * allow_legacy (scep_crypt_libctx) and checked:
 *   APR_EINVAL    more than SCEP_MAX_RECIPIENTS RecipientInfos;
 *   APR_ENOTIMPL  the content cipher, or the key transport of cert's
 *                 recipient (RSA PKCS#1 v1.5, or RSAES-OAEP with SHA-1/SHA-2
 *                 and no label), is not allowed (badAlg).
 * Everything else - unreadable, no recipient names cert, decryption or
 * padding failure - returns APR_EGENERAL, and nothing tells these apart
 * (no decryption oracle; CMS_DEBUG_DECRYPT is never set).
 */
apr_status_t scep_pkimsg_decrypt_as(apr_pool_t *p, scep_pkimsg_t *msg,
                                    X509 *cert, EVP_PKEY *key,
                                    int allow_legacy);

/**
 * The same for a client reading a CertRep with only its key at hand: every
 * recipient that key can open is tried.
 */
apr_status_t scep_pkimsg_decrypt(apr_pool_t *p, scep_pkimsg_t *msg,
                                 EVP_PKEY *key, int allow_legacy);

/** What a CertRep says. */
typedef struct scep_certrep_t {
    const char *transaction_id;
    const unsigned char *recipient_nonce;  /* the request's senderNonce */
    apr_size_t recipient_nonce_len;
    int pki_status;
    int fail_info;                 /* with SCEP_STATUS_FAILURE */
    const char *fail_info_text;    /* optional, with SCEP_STATUS_FAILURE */
    int digest_nid;                /* NID_undef: SHA-256 */
    /* SUCCESS: the degenerate SignedData to envelope, and to whom */
    const unsigned char *content;
    apr_size_t content_len;
    X509 *recipient;
    int cipher_nid;                /* NID_undef: AES-128-CBC */
    int key_transport;             /* SCEP_KT_* */
    int allow_legacy;              /* built in the legacy library context */
} scep_certrep_t;

/** Builds a CertRep signed by ca->sign_cert/sign_key (DER). */
apr_status_t scep_certrep_build(apr_pool_t *p, const scep_ca_t *ca,
                                const scep_certrep_t *rep,
                                const unsigned char **der, apr_size_t *len);

/** What a request says (for test clients and the CLI's device mode). */
typedef struct scep_request_t {
    int message_type;
    const char *transaction_id;
    const unsigned char *sender_nonce;     /* NULL: 16 fresh random bytes */
    apr_size_t sender_nonce_len;
    const unsigned char *data;             /* the messageData */
    apr_size_t data_len;
    X509 *signer;
    EVP_PKEY *signer_key;
    X509 *recipient;                       /* the RA/CA encryption cert */
    int cipher_nid;                        /* single DES: with the legacy
                                              library context enabled */
    int digest_nid;
    int key_transport;
    int recipient_keyid;                   /* name the recipient by its
                                              subjectKeyIdentifier */
    apr_time_t signing_time;               /* signingTime, seconds since
                                              the epoch; 0: now */
} scep_request_t;

/**
 * PEM armour or bare base64 (with line breaks) becomes DER, allocated from
 * p; input that already starts like DER, or is not base64, is left as is.
 */
void scep_unarmour(apr_pool_t *p, const unsigned char **data,
                   apr_size_t *len);

/** Builds a request pkiMessage (DER). */
apr_status_t scep_request_build(apr_pool_t *p, const scep_request_t *req,
                                const unsigned char **der, apr_size_t *len);

/**
 * The GetNextCACert answer: SignedData signed by ca->sign_cert whose
 * content is a certs-only SignedData of next_certs.
 */
apr_status_t scep_next_ca_build(apr_pool_t *p, const scep_ca_t *ca,
                                const apr_array_header_t *next_certs,
                                const unsigned char **der, apr_size_t *len);

/**
 * Pretty-prints any SCEP object: pkiMessage (request or CertRep: type,
 * status, failInfo, nonces, transactionID, signer, algorithms), certs-only
 * bundle, certificate or CSR; DER, base64 or PEM. With key (and its cert
 * for a CertRep) it also decrypts and prints the messageData. Returns
 * APR_SUCCESS when the input was recognised.
 */
apr_status_t scep_pkimsg_print(apr_pool_t *p, BIO *out,
                               const unsigned char *data, apr_size_t len,
                               EVP_PKEY *key);

#endif /* SCEP_PKIMSG_H */
