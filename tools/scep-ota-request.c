/* scep-ota request / scep-ota certrep: a SCEP client's two halves, offline.
 *
 * "request" builds a request pkiMessage (PKCSReq, RenewalReq, CertPoll,
 * GetCert, GetCRL) with the core's scep_request_build; the caller sends the
 * bytes however it likes (the integration tests POST them, or GET them as
 * base64 in message=). "certrep" reads the answer: pkiStatus, failInfo,
 * nonces, signer, and with the client's key the certificates or CRL inside
 * the envelope, written to files. Both print key=value lines so that
 * scripts can read them. */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_pkimsg.h"
#include "scep-ota-client.h"
#include "scep-ota-request.h"

#define REQ_MAX_INPUT (4 * 1024 * 1024)

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static const char *name_line(apr_pool_t *p, const X509_NAME *name)
{
    char *s = X509_NAME_oneline(name, NULL, 0);
    const char *out = apr_pstrdup(p, s ? s : "?");

    OPENSSL_free(s);
    return out;
}

static apr_status_t name_cleanup(void *name)
{
    X509_NAME_free(name);
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* scep-ota request                                                    */

static const char *const request_usage_text[] = {
    "usage: scep-ota request --type TYPE --recipient CERT --key KEY "
    "[OPTIONS] -o OUT\n",
    "\n",
    "Builds a SCEP request pkiMessage (DER) offline and prints\n",
    "transactionID=, senderNonce= and messageType= lines.\n",
    "\n",
    "  --type T          pkcsreq, renewalreq, certpoll, getcert, getcrl,\n",
    "                    or a number (any messageType, to test servers)\n",
    "  --recipient CERT  the RA (or CA) certificate to encrypt to; of\n",
    "                    several in the file, the first with\n",
    "                    keyEncipherment\n",
    "  --key KEY         the signing key (and the CSR's key unless\n",
    "                    --new-key)\n",
    "  --cert CERT       sign with this certificate (renewal: the one\n",
    "                    issued before); default a fresh self-signed one\n",
    "  --csr CSR         the PKCS#10 to send (PEM or DER)\n",
    "  --subject /CN=x/O=y\n",
    "                    build the CSR with this subject instead\n",
    "  --new-key KEY     the key of the built CSR (renewal with a new key)\n",
    "  --challenge PW    challengePassword of the built CSR\n",
    "  --cipher C        des, 3des, aes128 (default), aes192, aes256\n",
    "  --digest D        md5, sha1, sha224, sha256 (default), sha384,\n",
    "                    sha512\n",
    "  --oaep            RSAES-OAEP key transport (default PKCS#1 v1.5)\n",
    "  --keyid           name the recipient by its subjectKeyIdentifier\n",
    "                    (default issuerAndSerialNumber)\n",
    "  --txid ID         transactionID (default: hex SHA-1 of the\n",
    "                    CSR's public key, else random)\n",
    "  --nonce HEX       senderNonce (default 16 random bytes)\n",
    "  --signing-time T  signingTime, seconds since the epoch, or\n",
    "                    +N/-N from now (default now)\n",
    "  --serial HEX      getcert/getcrl: the certificate's serial\n",
    "  --issuer CERT     getcert/getcrl/certpoll: the issuer's name\n",
    "                    (default: the recipient's subject)\n",
    "  --out-signer FILE write the signer certificate (PEM)\n",
    "  --out-csr FILE    write the CSR sent (PEM)\n",
    "  -o FILE           the request, DER (\"-\": standard output)\n",
    NULL
};

typedef struct {
    const char *type, *recipient, *key, *cert, *csr, *subject, *new_key;
    const char *challenge, *cipher, *digest, *txid, *nonce, *serial;
    const char *signing_time;
    const char *issuer, *out, *out_signer, *out_csr;
    int oaep, keyid;
} req_opts_t;

#define REQ_OPT(name, alias, field) \
    { name, alias, offsetof(req_opts_t, field) }

static const scep_cli_opt_t request_opts[] = {
    REQ_OPT("--type", NULL, type),
    REQ_OPT("--recipient", NULL, recipient),
    REQ_OPT("--key", NULL, key),
    REQ_OPT("--cert", NULL, cert),
    REQ_OPT("--csr", NULL, csr),
    REQ_OPT("--subject", NULL, subject),
    REQ_OPT("--new-key", NULL, new_key),
    REQ_OPT("--challenge", NULL, challenge),
    REQ_OPT("--cipher", NULL, cipher),
    REQ_OPT("--digest", NULL, digest),
    REQ_OPT("--txid", NULL, txid),
    REQ_OPT("--nonce", NULL, nonce),
    REQ_OPT("--signing-time", NULL, signing_time),
    REQ_OPT("--serial", NULL, serial),
    REQ_OPT("--issuer", NULL, issuer),
    REQ_OPT("--out-signer", NULL, out_signer),
    REQ_OPT("--out-csr", NULL, out_csr),
    REQ_OPT("-o", "--out", out),
    { NULL, NULL, 0 }
};

/* One request being made. */
typedef struct {
    apr_pool_t *p;
    req_opts_t o;
    scep_request_t r;
    int type;
    EVP_PKEY *key;
    X509_NAME *subject;          /* --subject, freed with the pool */
    X509_REQ *req;               /* the CSR sent, or NULL */
    const X509_NAME *issuer_name;
    const unsigned char *der;
    apr_size_t dlen;
} req_t;

static const char *const C_REQ = "request";

static int message_type(const char *t)
{
    static const struct { const char *name; int type; } types[] = {
        { "pkcsreq", SCEP_MSG_PKCSREQ }, { "renewalreq", SCEP_MSG_RENEWALREQ },
        { "certpoll", SCEP_MSG_CERTPOLL },
        { "getcertinitial", SCEP_MSG_CERTPOLL },
        { "getcert", SCEP_MSG_GETCERT }, { "getcrl", SCEP_MSG_GETCRL },
    };
    apr_size_t i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); ++i) {
        if (!strcasecmp(t, types[i].name)) {
            return types[i].type;
        }
    }
    if (t[0] && strspn(t, "0123456789") == strlen(t) && strlen(t) <= 3) {
        return atoi(t);         /* any other number, to test servers */
    }
    return -1;
}

typedef struct {
    const char *name;
    int nid;
} nid_name_t;

static int nid_by_name(const nid_name_t *t, apr_size_t n, const char *name)
{
    apr_size_t i;

    for (i = 0; i < n; ++i) {
        if (!strcasecmp(name, t[i].name)) {
            return t[i].nid;
        }
    }
    return NID_undef;
}

static int cipher_nid(const char *c)
{
    static const nid_name_t t[] = {
        { "des", NID_des_cbc }, { "3des", NID_des_ede3_cbc },
        { "des3", NID_des_ede3_cbc }, { "aes128", NID_aes_128_cbc },
        { "aes", NID_aes_128_cbc }, { "aes192", NID_aes_192_cbc },
        { "aes256", NID_aes_256_cbc },
    };

    return nid_by_name(t, sizeof(t) / sizeof(t[0]), c);
}

static int digest_nid(const char *d)
{
    static const nid_name_t t[] = {
        { "md5", NID_md5 }, { "sha1", NID_sha1 }, { "sha224", NID_sha224 },
        { "sha256", NID_sha256 }, { "sha384", NID_sha384 },
        { "sha512", NID_sha512 },
    };

    return nid_by_name(t, sizeof(t) / sizeof(t[0]), d);
}

static X509_REQ *read_csr(apr_pool_t *p, const char *path)
{
    unsigned char *data;
    apr_size_t len;
    const unsigned char *d;

    if (APR_SUCCESS != scep_cli_read(p, path, REQ_MAX_INPUT, 0, &data, &len)) {
        return NULL;
    }
    d = data;
    scep_unarmour(p, &d, &len);
    return scep_track_req(p, d2i_X509_REQ(NULL, &d, (long)len));
}

/* The self-signed certificate a client signs its first request with. */
static X509 *self_signed(apr_pool_t *p, EVP_PKEY *key, const X509_NAME *name)
{
    static const scep_cli_ext_t exts[] = {
        { NID_key_usage, "critical,digitalSignature,keyEncipherment" },
        { NID_undef, NULL }
    };
    scep_cli_cert_t s;

    memset(&s, 0, sizeof(s));
    s.subject = name;
    s.key = key;
    s.serial_bits = 64;
    s.serial_top = BN_RAND_TOP_ONE;
    s.not_before = -3600;
    s.not_after = 7 * 86400;
    s.exts = exts;
    return scep_cli_cert(p, &s);
}

/* "CN=scep-ota request": the signer's name when there is no CSR. */
static X509_NAME *fallback_name(apr_pool_t *p)
{
    X509_NAME *name = X509_NAME_new();

    if (name) {
        apr_pool_cleanup_register(p, name, name_cleanup,
                                  apr_pool_cleanup_null);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"scep-ota request",
                                   -1, -1, 0);
    }
    return name;
}

/* Upper-case hex SHA-1 of the DER SubjectPublicKeyInfo (as iOS does). */
static const char *key_txid(apr_pool_t *p, EVP_PKEY *key)
{
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = i2d_PUBKEY(key, &der);
    const char *out = NULL;

    if (n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha1(), NULL)) {
        out = scep_cli_hex(p, md, mdlen, 0);
    }
    OPENSSL_free(der);
    return out;
}

/* --oaep and --keyid; 0 when arg is neither. */
static int request_flag(req_opts_t *o, const char *arg)
{
    if (!strcmp(arg, "--oaep")) {
        return o->oaep = 1;
    }
    if (!strcmp(arg, "--keyid")) {
        return o->keyid = 1;
    }
    return 0;
}

static int request_opts_check(const req_opts_t *o)
{
    if (o->csr && (o->subject || o->challenge || o->new_key)) {
        fprintf(stderr, "scep-ota request: --subject, --challenge and "
                "--new-key build a CSR; they do not go with --csr\n");
        return 2;
    }
    if (!o->type || !o->recipient || !o->key || !o->out) {
        fprintf(stderr, "scep-ota request: --type, --recipient, --key and "
                "-o are required\n");
        return scep_cli_usage(stderr, request_usage_text);
    }
    return 0;
}

/* 0: go on; -1: done (help), exit 0; else the exit status. */
static int parse_request_opts(int argc, const char *const *argv,
                              req_opts_t *o)
{
    const char **slot;
    int i;

    memset(o, 0, sizeof(*o));
    for (i = 1; i < argc; ++i) {
        if (scep_cli_is_help(argv[i])) {
            return scep_cli_usage(stdout, request_usage_text) - 1;
        }
        if (request_flag(o, argv[i])) {
            continue;
        }
        if (!(slot = scep_cli_opt_slot(request_opts, o, argv[i]))) {
            fprintf(stderr, "scep-ota request: unknown option '%s'\n",
                    argv[i]);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "scep-ota request: %s needs a value\n", argv[i]);
            return 2;
        }
        *slot = argv[++i];
    }
    return request_opts_check(o);
}

static int set_signing_time(req_t *rq)
{
    const char *t = rq->o.signing_time;

    if (!t) {
        return 0;
    }
    rq->r.signing_time = apr_atoi64(t);
    if (t[0] == '+' || t[0] == '-') {
        rq->r.signing_time += apr_time_sec(apr_time_now());
    }
    if (rq->r.signing_time <= 0) {
        return scep_cli_fail(C_REQ, "--signing-time: '%s' is no time", t);
    }
    return 0;
}

/* --type, --cipher, --digest */
static int set_type(req_t *rq)
{
    scep_request_t *r = &rq->r;

    if ((rq->type = r->message_type = message_type(rq->o.type)) < 0) {
        return scep_cli_fail(C_REQ, "--type: '%s' is not pkcsreq, renewalreq, "
                             "certpoll, getcert or getcrl", rq->o.type);
    }
    r->cipher_nid = cipher_nid(rq->o.cipher ? rq->o.cipher : "aes128");
    r->digest_nid = digest_nid(rq->o.digest ? rq->o.digest : "sha256");
    if (r->cipher_nid == NID_undef) {
        return scep_cli_fail(C_REQ, "--cipher: unknown '%s'", rq->o.cipher);
    }
    if (r->digest_nid == NID_undef) {
        return scep_cli_fail(C_REQ, "--digest: unknown '%s'", rq->o.digest);
    }
    return 0;
}

/* ... and --oaep, --keyid, --signing-time */
static int set_algorithms(req_t *rq)
{
    const char *err = NULL;
    scep_request_t *r = &rq->r;

    if (set_type(rq)) {
        return 1;
    }
    r->key_transport = rq->o.oaep ? SCEP_KT_OAEP : SCEP_KT_PKCS1;
    r->recipient_keyid = rq->o.keyid;
    if (set_signing_time(rq)) {
        return 1;
    }
    if ((r->cipher_nid == NID_des_cbc || r->digest_nid == NID_md5)
        && APR_SUCCESS != scep_crypt_enable_legacy(rq->p, &err)) {
        return scep_cli_fail(C_REQ, "single DES and MD5 need OpenSSL's "
                             "legacy provider: %s", err);
    }
    return 0;
}

/* --issuer, else the recipient: whose name GetCert, GetCRL and
 * CertPoll carry. */
static int load_issuer(req_t *rq)
{
    apr_array_header_t *certs;
    const char *err = NULL;
    X509 *issuer = rq->r.recipient;

    if (rq->o.issuer) {
        if (!(certs = scep_cli_load_certs(rq->p, rq->o.issuer, &err))) {
            return scep_cli_fail(C_REQ, "--issuer %s: %s", rq->o.issuer, err);
        }
        issuer = APR_ARRAY_IDX(certs, 0, X509 *);
    }
    rq->issuer_name = X509_get_subject_name(issuer);
    return 0;
}

/* --recipient, --key, --issuer */
static int load_material(req_t *rq)
{
    apr_array_header_t *certs;
    const char *err = NULL;

    if (!(certs = scep_cli_load_certs(rq->p, rq->o.recipient, &err))
        || !(rq->r.recipient = scep_cli_pick_recipient(certs))) {
        return scep_cli_fail(C_REQ, "--recipient %s: %s", rq->o.recipient,
                             err ? err : "no certificate");
    }
    if (!(rq->key = rq->r.signer_key = scep_cli_load_key(rq->p, rq->o.key,
                                                         &err))) {
        return scep_cli_fail(C_REQ, "--key %s: %s", rq->o.key, err);
    }
    return load_issuer(rq);
}

/* A type given by number carries a CSR unless --serial says it asks
 * for a certificate or CRL. */
static int needs_csr(const req_t *rq)
{
    return rq->type == SCEP_MSG_PKCSREQ || rq->type == SCEP_MSG_RENEWALREQ
           || rq->type == SCEP_MSG_CERTPOLL
           || (!rq->o.serial && rq->type != SCEP_MSG_GETCERT
               && rq->type != SCEP_MSG_GETCRL);
}

/* The CSR of --subject, with --new-key or --key, and --challenge. */
static int build_csr(req_t *rq)
{
    scep_cli_csr_t s;
    const char *err = NULL;

    memset(&s, 0, sizeof(s));
    s.subject = rq->subject;
    s.key = rq->key;
    s.challenge = rq->o.challenge;
    if (rq->o.new_key
        && !(s.key = scep_cli_load_key(rq->p, rq->o.new_key, &err))) {
        return scep_cli_fail(C_REQ, "--new-key %s: %s", rq->o.new_key, err);
    }
    if (!(rq->req = scep_cli_csr(rq->p, &s))) {
        return scep_cli_fail(C_REQ, "cannot build the CSR");
    }
    return 0;
}

/* --subject, parsed; freed with the pool. */
static int read_subject(req_t *rq)
{
    const char *subject = rq->o.subject;

    if (!subject) {
        return 0;
    }
    if (!(rq->subject = scep_cli_subject(rq->p, subject, 0))) {
        return scep_cli_fail(C_REQ, "--subject: '%s' is not of the form "
                             "/CN=x/O=y", subject);
    }
    apr_pool_cleanup_register(rq->p, rq->subject, name_cleanup,
                              apr_pool_cleanup_null);
    return 0;
}

/* Neither --csr nor a CSR to build: only for a type that needs none. */
static int without_csr(const req_t *rq)
{
    if (needs_csr(rq) && rq->type != SCEP_MSG_CERTPOLL) {
        return scep_cli_fail(C_REQ, "--type %s needs --csr or --subject",
                             rq->o.type);
    }
    if (rq->type == SCEP_MSG_CERTPOLL) {
        return scep_cli_fail(C_REQ, "--type certpoll needs --csr or "
                             "--subject (the subject polled for)");
    }
    return 0;
}

/* The CSR: --csr, or built from --subject, or none. */
static int make_csr(req_t *rq)
{
    if (read_subject(rq)) {
        return 1;
    }
    if (rq->o.csr) {
        rq->req = read_csr(rq->p, rq->o.csr);
        return rq->req ? 0 : scep_cli_fail(C_REQ, "--csr %s: not a PKCS#10 "
                                           "request", rq->o.csr);
    }
    if (needs_csr(rq) && rq->subject) {
        return build_csr(rq);
    }
    return without_csr(rq);
}

/* --cert, with --key its key. */
static int given_signer(req_t *rq)
{
    apr_array_header_t *certs;
    const char *err = NULL;

    if (!(certs = scep_cli_load_certs(rq->p, rq->o.cert, &err))) {
        return scep_cli_fail(C_REQ, "--cert %s: %s", rq->o.cert, err);
    }
    rq->r.signer = APR_ARRAY_IDX(certs, 0, X509 *);
    if (!scep_key_matches_cert(rq->key, rq->r.signer)) {
        return scep_cli_fail(C_REQ, "--key does not belong to --cert");
    }
    return 0;
}

/* --cert, or a self-signed certificate for the CSR's subject. */
static int make_signer(req_t *rq)
{
    const X509_NAME *name;

    if (rq->o.cert) {
        return given_signer(rq);
    }
    name = rq->req ? X509_REQ_get_subject_name(rq->req) : rq->subject;
    rq->r.signer = self_signed(rq->p, rq->key,
                               name ? name : fallback_name(rq->p));
    return rq->r.signer ? 0 : scep_cli_fail(C_REQ, "cannot make the "
                                            "self-signed signer");
}

/* GetCert and GetCRL: IssuerAndSerialNumber of --serial. */
static int serial_data(req_t *rq)
{
    if (!rq->o.serial) {
        return scep_cli_fail(C_REQ, "--type %s needs --serial", rq->o.type);
    }
    rq->r.data = scep_cli_issuer_and_serial(rq->p, rq->issuer_name,
                                            rq->o.serial, &rq->r.data_len);
    if (!rq->r.data) {
        return scep_cli_fail(C_REQ, "--serial: '%s' is not a hex number",
                             rq->o.serial);
    }
    return 0;
}

/* The messageData: the CSR, IssuerAndSubject or IssuerAndSerialNumber. */
static int message_data(req_t *rq)
{
    scep_request_t *r = &rq->r;

    if (rq->type == SCEP_MSG_PKCSREQ || rq->type == SCEP_MSG_RENEWALREQ
        || (rq->req && rq->type != SCEP_MSG_CERTPOLL && !rq->o.serial)) {
        r->data = scep_cli_csr_der(rq->p, rq->req, &r->data_len);
    }
    else if (rq->type == SCEP_MSG_CERTPOLL) {
        r->data = scep_cli_issuer_and_subject(
            rq->p, rq->issuer_name, X509_REQ_get_subject_name(rq->req),
            &r->data_len);
    }
    else if (serial_data(rq)) {
        return 1;
    }
    return r->data ? 0 : scep_cli_fail(C_REQ, "cannot encode the "
                                       "messageData");
}

/* --txid, else the hash of the CSR's key, else random. */
static int transaction_id(req_t *rq)
{
    unsigned char rnd[16];

    rq->r.transaction_id = rq->o.txid;
    if (!rq->r.transaction_id && rq->req) {
        rq->r.transaction_id = key_txid(rq->p,
                                        X509_REQ_get0_pubkey(rq->req));
    }
    if (!rq->r.transaction_id) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            return scep_cli_fail(C_REQ, "no randomness");
        }
        rq->r.transaction_id = scep_cli_hex(rq->p, rnd, sizeof(rnd), 0);
    }
    return 0;
}

static int build_message(req_t *rq)
{
    apr_status_t rv = scep_cli_build_request(rq->p, &rq->r, rq->o.nonce,
                                             &rq->der, &rq->dlen);

    if (rv == APR_EINVAL) {
        return scep_cli_fail(C_REQ, "--nonce: not hex");
    }
    if (APR_SUCCESS != rv) {
        return scep_cli_fail(C_REQ, "cannot build the pkiMessage (cipher %s, "
                             "digest %s)",
                             scep_pkimsg_alg_name(rq->r.cipher_nid),
                             scep_pkimsg_alg_name(rq->r.digest_nid));
    }
    return 0;
}

/* -o, --out-signer, --out-csr */
static int write_request(req_t *rq)
{
    if (rq->o.out_signer && !scep_cli_write_cert(rq->o.out_signer,
                                                 rq->r.signer)) {
        return scep_cli_fail(C_REQ, "cannot write %s", rq->o.out_signer);
    }
    if (rq->o.out_csr && rq->req
        && !scep_cli_write_csr(rq->o.out_csr, rq->req)) {
        return scep_cli_fail(C_REQ, "cannot write %s", rq->o.out_csr);
    }
    if (!scep_cli_write(rq->o.out, rq->der, rq->dlen)) {
        return scep_cli_fail(C_REQ, "cannot write %s", rq->o.out);
    }
    return 0;
}

static void print_request(const req_t *rq)
{
    const scep_request_t *r = &rq->r;

    printf("messageType=%d\n", rq->type);
    printf("transactionID=%s\n", r->transaction_id);
    printf("senderNonce=%s\n", scep_cli_hex(rq->p, r->sender_nonce,
                                            r->sender_nonce_len, 0));
    printf("signerSerial=%s\n", scep_cert_serial_hex(rq->p, r->signer));
    printf("recipient=%s\n", name_line(rq->p, X509_get_subject_name(
                                                  r->recipient)));
    printf("length=%lu\n", (unsigned long)rq->dlen);
}

/* The steps of a request, in order: the first that fails ends it. */
static int make_request(req_t *rq)
{
    int rc;

    if ((rc = set_algorithms(rq)) || (rc = load_material(rq))
        || (rc = make_csr(rq)) || (rc = make_signer(rq))
        || (rc = message_data(rq)) || (rc = transaction_id(rq))
        || (rc = build_message(rq)) || (rc = write_request(rq))) {
        return rc;
    }
    return 0;
}

int scep_cli_request(apr_pool_t *p, int argc, const char *const *argv)
{
    req_t rq;
    int rc;

    memset(&rq, 0, sizeof(rq));
    rq.p = p;
    if ((rc = parse_request_opts(argc, argv, &rq.o))) {
        return rc < 0 ? 0 : rc;
    }
    if ((rc = make_request(&rq))) {
        return rc;
    }
    if (strcmp(rq.o.out, "-")) {
        print_request(&rq);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* scep-ota certrep                                                    */

static const char *const certrep_usage_text[] = {
    "usage: scep-ota certrep [--key KEY] [--out-cert FILE] "
    "[--out-certs FILE]\n",
    "                        [--out-crl FILE] [--out-content FILE] "
    "FILE|-\n",
    "\n",
    "Reads a CertRep (DER or base64) and prints key=value lines:\n",
    "(a request is read too; with the RA/CA key, --out-content gives\n",
    "its messageData)\n",
    "messageType, transactionID, pkiStatus, failInfo, failInfoText,\n",
    "senderNonce, recipientNonce, digest, signature, signer, envelope.\n",
    "With KEY (the client's key) a SUCCESS envelope is decrypted:\n",
    "  --out-cert FILE     the first certificate (the issued one), PEM\n",
    "  --out-certs FILE    every certificate carried inside, PEM\n",
    "  --out-crl FILE      the CRL(s) inside, PEM\n",
    "  --out-content FILE  the decrypted messageData, DER\n",
    "Exit status: 0 read, 1 not a pkiMessage, 3 the envelope could not\n",
    "be opened with KEY.\n",
    NULL
};

typedef struct {
    const char *key, *out_cert, *out_certs, *out_crl, *out_content, *path;
} rep_opts_t;

#define REP_OPT(name, field) { name, NULL, offsetof(rep_opts_t, field) }

static const scep_cli_opt_t certrep_opts[] = {
    REP_OPT("--key", key),
    REP_OPT("--out-cert", out_cert),
    REP_OPT("--out-certs", out_certs),
    REP_OPT("--out-crl", out_crl),
    REP_OPT("--out-content", out_content),
    { NULL, NULL, 0 }
};

static const char *const C_REP = "certrep";

static void kv(const char *k, const char *v)
{
    printf("%s=%s\n", k, v ? v : "");
}

static void print_cert_kv(apr_pool_t *p, const char *prefix, X509 *x)
{
    printf("%s.subject=%s\n", prefix,
           name_line(p, X509_get_subject_name(x)));
    printf("%s.issuer=%s\n", prefix, name_line(p, X509_get_issuer_name(x)));
    printf("%s.serial=%s\n", prefix, scep_cert_serial_hex(p, x));
}

static void print_content(apr_pool_t *p, STACK_OF(X509) *certs,
                          STACK_OF(X509_CRL) *crls)
{
    int i;

    /* an absent stack counts -1 */
    printf("content.certificates=%d\n", certs ? sk_X509_num(certs) : 0);
    printf("content.crls=%d\n", crls ? sk_X509_CRL_num(crls) : 0);
    for (i = 0; i < sk_X509_num(certs); ++i) {
        print_cert_kv(p, apr_psprintf(p, "cert%d", i),
                      sk_X509_value(certs, i));
    }
    for (i = 0; i < sk_X509_CRL_num(crls); ++i) {
        X509_CRL *c = sk_X509_CRL_value(crls, i);
        printf("crl%d.issuer=%s\n", i,
               name_line(p, X509_CRL_get_issuer(c)));
        printf("crl%d.revoked=%d\n", i,
               sk_X509_REVOKED_num(X509_CRL_get_REVOKED(c)));
    }
}

/* Every certificate of the stack, PEM, to path; nothing when it cannot
 * be opened. */
static int write_certs(const char *path, STACK_OF(X509) *certs)
{
    BIO *b = BIO_new_file(path, "w");
    int ok = 1, i;

    for (i = 0; b && i < sk_X509_num(certs); ++i) {
        ok = PEM_write_bio_X509(b, sk_X509_value(certs, i)) && ok;
    }
    BIO_free(b);
    return ok;
}

static int write_crls(const char *path, STACK_OF(X509_CRL) *crls)
{
    BIO *b = sk_X509_CRL_num(crls) > 0 ? BIO_new_file(path, "w") : NULL;
    int ok = 1, i;

    for (i = 0; b && i < sk_X509_CRL_num(crls); ++i) {
        ok = PEM_write_bio_X509_CRL(b, sk_X509_CRL_value(crls, i)) && ok;
    }
    BIO_free(b);
    return ok;
}

/* The certificates and CRLs of the decrypted degenerate SignedData. */
static int open_content(apr_pool_t *p, const scep_pkimsg_t *m,
                        const rep_opts_t *o)
{
    STACK_OF(X509) *certs;
    STACK_OF(X509_CRL) *crls;
    int ok = 1;

    if (APR_SUCCESS != scep_cli_certrep_content(p, m, &certs, &crls)) {
        kv("content", "not a SignedData");
        return 0;
    }
    print_content(p, certs, crls);
    if (o->out_cert && sk_X509_num(certs) > 0) {
        ok = scep_cli_write_cert(o->out_cert, sk_X509_value(certs, 0));
    }
    if (o->out_certs) {
        ok = write_certs(o->out_certs, certs) && ok;
    }
    if (o->out_crl) {
        ok = write_crls(o->out_crl, crls) && ok;
    }
    return ok;
}

/* The argument argv[*i] (and its value after it): 0 taken, else the exit
 * status (-1: help, exit 0). */
static int certrep_arg(int argc, const char *const *argv, int *i,
                       rep_opts_t *o)
{
    const char *a = argv[*i], **slot;

    if (scep_cli_is_help(a)) {
        return scep_cli_usage(stdout, certrep_usage_text) - 1;
    }
    if ((slot = scep_cli_opt_slot(certrep_opts, o, a))) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "scep-ota certrep: %s needs a value\n", a);
            return 2;
        }
        *slot = argv[++*i];
    }
    else if (!o->path && (a[0] != '-' || !strcmp(a, "-"))) {
        o->path = a;
    }
    else {
        fprintf(stderr, "scep-ota certrep: unexpected '%s'\n", a);
        return scep_cli_usage(stderr, certrep_usage_text);
    }
    return 0;
}

/* 0: go on; -1: done (help), exit 0; else the exit status. */
static int parse_certrep_opts(int argc, const char *const *argv,
                              rep_opts_t *o)
{
    int i, rc;

    memset(o, 0, sizeof(*o));
    for (i = 1; i < argc; ++i) {
        if ((rc = certrep_arg(argc, argv, &i, o))) {
            return rc;
        }
    }
    return o->path ? 0 : scep_cli_usage(stderr, certrep_usage_text);
}

/* The pkiMessage of the file, DER or base64. */
static int read_message(apr_pool_t *p, const char *path, scep_pkimsg_t **m)
{
    unsigned char *data;
    const unsigned char *msg;
    apr_size_t len;

    if (APR_SUCCESS != scep_cli_read(p, path, REQ_MAX_INPUT, 0, &data, &len)) {
        return scep_cli_fail(C_REP, "cannot read %s", path);
    }
    msg = data;
    scep_unarmour(p, &msg, &len);
    if (APR_SUCCESS != scep_pkimsg_parse(p, msg, len, m)) {
        return scep_cli_fail(C_REP, "%s is not a SCEP pkiMessage", path);
    }
    return 0;
}

static void print_status(const scep_pkimsg_t *m)
{
    printf("messageType=%d\n", m->message_type);
    kv("messageTypeName", scep_pkimsg_type_name(m->message_type));
    kv("transactionID", m->transaction_id);
    if (m->pki_status >= 0) {
        kv("pkiStatus", scep_pkimsg_status_name(m->pki_status));
    }
    if (m->fail_info != SCEP_FAIL_NONE) {
        kv("failInfo", scep_pkimsg_fail_name(m->fail_info));
    }
    if (m->fail_info_text) {
        kv("failInfoText", m->fail_info_text);
    }
}

static void print_signed(apr_pool_t *p, const scep_pkimsg_t *m)
{
    kv("senderNonce", scep_cli_hex(p, m->sender_nonce, m->sender_nonce_len,
                                   0));
    if (m->recipient_nonce) {
        kv("recipientNonce", scep_cli_hex(p, m->recipient_nonce,
                                          m->recipient_nonce_len, 0));
    }
    kv("digest", scep_pkimsg_alg_name(m->digest_nid));
    kv("signature", m->signature_ok ? "ok" : "bad");
    if (m->signer) {
        kv("signer", name_line(p, X509_get_subject_name(m->signer)));
        kv("signerSerial", scep_cert_serial_hex(p, m->signer));
    }
    printf("certificates=%d\n", m->certs->nelts);
}

/* The opened envelope's content: --out-content, and a CertRep's
 * certificates and CRLs. */
static int read_content(apr_pool_t *p, scep_pkimsg_t *m, const rep_opts_t *o)
{
    if (o->out_content && !scep_cli_write(o->out_content, m->data,
                                          m->data_len)) {
        return scep_cli_fail(C_REP, "cannot write %s", o->out_content);
    }
    if (m->message_type != SCEP_MSG_CERTREP) {
        return 0;               /* a request: its content is not ours to read */
    }
    if (!open_content(p, m, o)) {
        return scep_cli_fail(C_REP, "cannot read or write the envelope's "
                             "content");
    }
    return 0;
}

/* With --key: the envelope opened, its content written. */
static int decrypt_envelope(apr_pool_t *p, scep_pkimsg_t *m, EVP_PKEY *key,
                            const rep_opts_t *o)
{
    if (APR_SUCCESS != scep_pkimsg_decrypt(p, m, key, 1)) {
        kv("decrypted", "no");
        scep_cli_fail(C_REP, "the envelope cannot be opened with %s", o->key);
        return 3;
    }
    kv("decrypted", "yes");
    return read_content(p, m, o);
}

static int load_client_key(apr_pool_t *p, const char *path, EVP_PKEY **key)
{
    const char *err = NULL;

    if (!(*key = scep_cli_load_key(p, path, &err))) {
        return scep_cli_fail(C_REP, "--key %s: %s", path, err);
    }
    /* a legacy client's single DES envelope must open too */
    (void)scep_crypt_enable_legacy(p, &err);
    return 0;
}

/* What the envelope holds, and with --key its content. */
static int read_envelope(apr_pool_t *p, scep_pkimsg_t *m, EVP_PKEY *key,
                         const rep_opts_t *o)
{
    if (!m->envelope) {
        kv("envelope", "none");
        return 0;
    }
    printf("envelope=%s %s\n", scep_pkimsg_alg_name(m->cipher_nid),
           m->key_transport == SCEP_KT_OAEP ? "oaep" : "pkcs1");
    return key ? decrypt_envelope(p, m, key, o) : 0;
}

int scep_cli_certrep(apr_pool_t *p, int argc, const char *const *argv)
{
    rep_opts_t o;
    scep_pkimsg_t *m;
    EVP_PKEY *key = NULL;
    int rc;

    if ((rc = parse_certrep_opts(argc, argv, &o))) {
        return rc < 0 ? 0 : rc;
    }
    if ((o.key && (rc = load_client_key(p, o.key, &key)))
        || (rc = read_message(p, o.path, &m))) {
        return rc;
    }
    print_status(m);
    print_signed(p, m);
    return read_envelope(p, m, key, &o);
}
