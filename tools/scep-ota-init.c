/* scep-ota init: the PKI the module needs, with the key usages it checks
 * at startup, written once and never over an existing file. */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <apr_strings.h>
#include <apr_tables.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep-ota-client.h"
#include "scep-ota-init.h"

#define DEFAULT_BITS 3072
#define DEFAULT_CA_DAYS 3650
#define DEFAULT_LEAF_DAYS 730
#define STR(n) #n
#define NUMBER_TEXT(n) STR(n)
#define DEFAULT_SUBJECT "/CN=SCEP CA"

/* What a certificate of the set is for. */
typedef enum { ROLE_CA, ROLE_RA, ROLE_OTA, ROLE_OCSP } role_t;

typedef struct {
    role_t role;
    const char *name;            /* file stem in DIR */
    const char *cn_suffix;       /* appended to the CA's CN */
    const scep_cli_ext_t *exts;  /* in the order they are added */
    const char *cert_directive;  /* the directives naming its files */
    const char *key_directive;
} kind_t;

static const scep_cli_ext_t ca_exts[] = {
    { NID_basic_constraints, "critical,CA:TRUE" },
    /* the CA does the CMS work when there is no RA */
    { NID_key_usage,
      "critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign" },
    { NID_subject_key_identifier, "hash" },
    { NID_undef, NULL }
};
static const scep_cli_ext_t ra_exts[] = {
    { NID_basic_constraints, "critical,CA:FALSE" },
    { NID_key_usage, "critical,digitalSignature,keyEncipherment" },
    { NID_subject_key_identifier, "hash" },
    { NID_authority_key_identifier, "keyid:always" },
    { NID_undef, NULL }
};
static const scep_cli_ext_t ota_exts[] = {
    { NID_basic_constraints, "critical,CA:FALSE" },
    { NID_key_usage, "critical,digitalSignature" },
    { NID_subject_key_identifier, "hash" },
    { NID_authority_key_identifier, "keyid:always" },
    { NID_undef, NULL }
};
static const scep_cli_ext_t ocsp_exts[] = {
    { NID_basic_constraints, "critical,CA:FALSE" },
    { NID_key_usage, "critical,digitalSignature" },
    { NID_subject_key_identifier, "hash" },
    { NID_authority_key_identifier, "keyid:always" },
    { NID_ext_key_usage, "OCSPSigning" },
    { NID_id_pkix_OCSP_noCheck, "ignored" },
    { NID_undef, NULL }
};

static const kind_t kinds[] = {
    { ROLE_CA, "ca", NULL, ca_exts, "SCEPCACertificateFile",
      "SCEPCAKeyFile" },
    { ROLE_RA, "ra", " RA", ra_exts, "SCEPRACertificateFile",
      "SCEPRAKeyFile" },
    { ROLE_OTA, "ota-signer", " Profile Signing", ota_exts,
      "OTASigningCertificateFile", "OTASigningKeyFile" },
    { ROLE_OCSP, "ocsp-signer", " OCSP Signing", ocsp_exts,
      "SCEPOCSPSigningCertificateFile", "SCEPOCSPSigningKeyFile" },
};

typedef struct {
    apr_pool_t *p;
    const char *dir;
    const char *subject;
    int bits, ca_days, leaf_days;
    int want[4];                 /* by role */
    const char *ca_cert_file, *ca_key_file;
    X509 *ca;
    EVP_PKEY *ca_key;
    apr_array_header_t *written; /* paths created, removed on failure */
} init_t;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    scep_cli_vfail("init", fmt, ap);
    va_end(ap);
    return 1;
}

static const char *const usage_text[] = {
    "usage: scep-ota init DIR [--ra] [--ota] [--ocsp]\n",
    "           [--subject /O=Example/CN=Example SCEP CA] [--bits N]\n",
    "           [--days N] [--leaf-days N]\n",
    "       scep-ota init DIR --ca-cert FILE --ca-key FILE\n",
    "           [--ra] [--ota] [--ocsp] [--leaf-days N]\n",
    "\n",
    "Creates in DIR (made 0700 if missing) an RSA CA (ca.pem, ca.key)\n",
    "and, if asked, an RA pair (ra.pem, ra.key), an OTA profile\n",
    "signing certificate (ota-signer.*) and a delegated OCSP signer\n",
    "(ocsp-signer.*), each with the key usages mod_scep_ota checks,\n",
    "keys mode 0600; then prints the directives that use them. With\n",
    "--ca-cert/--ca-key the others are issued by that CA instead\n",
    "(a company's own root or intermediate). No existing file is\n",
    "ever overwritten.\n",
    "  --bits N       RSA key size (default " NUMBER_TEXT(DEFAULT_BITS)
    "; SCEP's key transport\n",
    "                 needs RSA where the CA does the message layer)\n",
    "  --days N       validity of the CA (default "
    NUMBER_TEXT(DEFAULT_CA_DAYS) ")\n",
    "  --leaf-days N  of the others (default " NUMBER_TEXT(DEFAULT_LEAF_DAYS)
    ", never past the CA)\n",
    NULL
};

static int usage(void)
{
    return scep_cli_usage(stderr, usage_text);
}

static int number(const char *v, int min, int max, int *out)
{
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;

    if (!v || *end || n < min || n > max) {
        return 0;
    }
    *out = (int)n;
    return 1;
}

#define INIT_OPT(name, field) { name, NULL, offsetof(init_t, field) }

static const scep_cli_opt_t init_opts[] = {
    INIT_OPT("--subject", subject),
    INIT_OPT("--ca-cert", ca_cert_file),
    INIT_OPT("--ca-key", ca_key_file),
    { NULL, NULL, 0 }
};

/* --ra, --ota, --ocsp; 0 when arg is none of them. */
static int role_flag(init_t *in, const char *arg)
{
    if (!strcmp(arg, "--ra")) {
        return in->want[ROLE_RA] = 1;
    }
    if (!strcmp(arg, "--ota")) {
        return in->want[ROLE_OTA] = 1;
    }
    if (!strcmp(arg, "--ocsp")) {
        return in->want[ROLE_OCSP] = 1;
    }
    return 0;
}

/* An option and its value: 0 when taken, else the exit status. */
static int init_option(init_t *in, const char *a, const char *v)
{
    const char **slot = scep_cli_opt_slot(init_opts, in, a);

    if (slot) {
        *slot = v;
        return 0;
    }
    if ((!strcmp(a, "--bits") && number(v, 2048, 16384, &in->bits))
        || (!strcmp(a, "--days") && number(v, 1, 36500, &in->ca_days))
        || (!strcmp(a, "--leaf-days")
            && number(v, 1, 36500, &in->leaf_days))) {
        return 0;
    }
    return usage();
}

static int check_args(init_t *in)
{
    if (!in->dir || !in->ca_cert_file != !in->ca_key_file) {
        return usage();
    }
    in->want[ROLE_CA] = !in->ca_cert_file;
    if (in->ca_cert_file && !in->want[ROLE_RA] && !in->want[ROLE_OTA]
        && !in->want[ROLE_OCSP]) {
        return fail("with --ca-cert, say what to issue: --ra, --ota, --ocsp");
    }
    return 0;
}

static int parse_args(init_t *in, int argc, const char *const *argv)
{
    int i, rc;

    for (i = 1; i < argc; ++i) {
        const char *a = argv[i];
        if (role_flag(in, a)) {
            continue;
        }
        if (a[0] != '-' && !in->dir) {
            in->dir = a;
            continue;
        }
        if (i + 1 >= argc) {
            return usage();
        }
        if ((rc = init_option(in, a, argv[++i]))) {
            return rc;
        }
    }
    return check_args(in);
}

/* name with a CN of text at loc (-1: last), or NULL (name freed) when
 * the CN is over 64 characters. */
static X509_NAME *with_cn(X509_NAME *name, const char *text, int loc)
{
    if (!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                    (const unsigned char *)text, -1, loc,
                                    0)) {
        X509_NAME_free(name);
        return NULL;
    }
    return name;
}

/* The UTF-8 text of cn with suffix after it (OPENSSL_free it), or NULL. */
static char *cn_with_suffix(const ASN1_STRING *cn, const char *suffix)
{
    unsigned char *utf8 = NULL;
    char *text = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, cn);

    if (len >= 0
        && (text = OPENSSL_malloc((size_t)len + strlen(suffix) + 1))) {
        memcpy(text, utf8, (size_t)len);
        strcpy(text + len, suffix);
    }
    OPENSSL_free(utf8);
    return text;
}

/* The CA's CN followed by suffix, and its other fields: a name that
 * tells whose RA or signer it is. */
static X509_NAME *leaf_name(const X509_NAME *ca, const char *suffix)
{
    X509_NAME *name = X509_NAME_dup(ca);
    int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    char *text;

    if (!name || i < 0) {
        return name ? with_cn(name, suffix + 1, -1) : NULL;
    }
    text = cn_with_suffix(X509_NAME_ENTRY_get_data(
                              X509_NAME_get_entry(name, i)), suffix);
    if (!text) {
        X509_NAME_free(name);
        return NULL;
    }
    X509_NAME_ENTRY_free(X509_NAME_delete_entry(name, i));
    name = with_cn(name, text, i);
    OPENSSL_free(text);
    return name;
}

/* The name of a certificate of kind k: --subject for the CA, else the
 * CA's with the kind's suffix; NULL (said why) when it cannot be. */
static X509_NAME *kind_name(init_t *in, const kind_t *k)
{
    X509_NAME *name;

    if (k->role == ROLE_CA) {
        if (!(name = scep_cli_subject(in->p, in->subject, 1))) {
            fail("--subject '%s' is not of the form /O=Example/CN=Example "
                 "CA (a CN of at most 64 characters)", in->subject);
        }
        return name;
    }
    if (!(name = leaf_name(X509_get_subject_name(in->ca), k->cn_suffix))) {
        fail("the CN of the CA with \"%s\" after it is over 64 characters",
             k->cn_suffix);
    }
    return name;
}

/* What a certificate of kind k for key is made of. */
static void cert_spec(init_t *in, const kind_t *k, EVP_PKEY *key,
                      const X509_NAME *name, scep_cli_cert_t *s)
{
    int days = k->role == ROLE_CA ? in->ca_days : in->leaf_days;

    memset(s, 0, sizeof(*s));
    s->subject = name;
    s->key = key;
    s->issuer = k->role == ROLE_CA ? NULL : in->ca;
    s->issuer_key = in->ca_key;
    s->serial_bits = 127;
    s->serial_top = BN_RAND_TOP_ANY;
    s->not_before = -300;
    s->not_after = (long)days * 86400;
    s->not_after_max = s->issuer ? X509_get0_notAfter(in->ca) : NULL;
    s->exts = k->exts;
}

/* A certificate of kind k for key, by the CA (or self-signed). */
static X509 *make_cert(init_t *in, const kind_t *k, EVP_PKEY *key)
{
    X509_NAME *name = kind_name(in, k);
    scep_cli_cert_t s;
    X509 *x;

    if (!name) {
        return NULL;
    }
    cert_spec(in, k, key, name, &s);
    x = scep_cli_cert(in->p, &s);
    X509_NAME_free(name);
    if (!x) {
        fail("cannot build the %s certificate: %s", k->name,
             ERR_reason_error_string(ERR_get_error()));
    }
    return x;
}

/* Creates path (never over an existing file or through a link) with
 * the given mode and writes what fn writes to it. */
static int write_new(init_t *in, const char *path, mode_t mode,
                     int (*fn)(BIO *, void *), void *obj)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  mode);
    BIO *b;
    int ok;

    if (fd < 0) {
        return fail("%s: %s", path, strerror(errno));
    }
    APR_ARRAY_PUSH(in->written, const char *) = path;
    if (fchmod(fd, mode) || !(b = BIO_new_fd(fd, BIO_CLOSE))) {
        close(fd);
        return fail("%s: cannot write", path);
    }
    ok = fn(b, obj) && BIO_flush(b) > 0;
    BIO_free(b);
    return ok ? 0 : fail("%s: cannot write", path);
}

static int put_cert(BIO *b, void *x)
{
    return PEM_write_bio_X509(b, x);
}

static int put_key(BIO *b, void *k)
{
    return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static const char *path_of(init_t *in, const kind_t *k, const char *ext)
{
    return apr_pstrcat(in->p, in->dir, "/", k->name, ext, NULL);
}

/* Nothing is written unless every file is new. */
static int check_free(init_t *in)
{
    struct stat sb;
    apr_size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); ++i) {
        const char *c = path_of(in, &kinds[i], ".pem");
        const char *k = path_of(in, &kinds[i], ".key");
        if (!in->want[kinds[i].role]) {
            continue;
        }
        if (!lstat(c, &sb) || !lstat(k, &sb)) {
            return fail("%s exists; nothing was written (files are never "
                        "overwritten)", !lstat(c, &sb) ? c : k);
        }
    }
    return 0;
}

/* KIND.key (private) and KIND.pem, both new. */
static int write_pair(init_t *in, const kind_t *k, EVP_PKEY *key, X509 *x)
{
    int rc;

    if ((rc = write_new(in, path_of(in, k, ".key"), 0600, put_key, key))
        || (rc = write_new(in, path_of(in, k, ".pem"), 0644, put_cert, x))) {
        return rc;
    }
    return 0;
}

static int make_one(init_t *in, const kind_t *k)
{
    EVP_PKEY *key = scep_track_pkey(in->p, EVP_RSA_gen((unsigned)in->bits));
    X509 *x;
    int rc;

    if (!key) {
        return fail("cannot generate an RSA key of %d bits", in->bits);
    }
    if (!(x = make_cert(in, k, key))) {
        return 1;
    }
    if ((rc = write_pair(in, k, key, x))) {
        return rc;
    }
    if (k->role == ROLE_CA) {
        in->ca = x;
        in->ca_key = key;
    }
    return 0;
}

static int load_ca(init_t *in)
{
    apr_array_header_t *certs;
    const char *err = NULL;

    if (APR_SUCCESS != scep_cli_load_pair(in->p, in->ca_cert_file,
                                          in->ca_key_file, &certs,
                                          &in->ca_key, &err)) {
        return fail("%s", err);
    }
    in->ca = APR_ARRAY_IDX(certs, 0, X509 *);
    if (!scep_cert_is_ca(in->ca)) {
        return fail("%s is not a CA certificate", in->ca_cert_file);
    }
    return 0;
}

static void print_directives(init_t *in)
{
    const char *ca = in->ca_cert_file ? in->ca_cert_file
                                      : path_of(in, &kinds[ROLE_CA], ".pem");
    const char *cakey = in->ca_key_file ? in->ca_key_file
                                        : path_of(in, &kinds[ROLE_CA], ".key");
    apr_size_t i;

    printf("# mod_scep_ota: the files of %s\n", in->dir);
    printf("SCEPCACertificateFile %s\nSCEPCAKeyFile %s\n", ca, cakey);
    for (i = ROLE_RA; i < sizeof(kinds) / sizeof(kinds[0]); ++i) {
        if (in->want[kinds[i].role]) {
            printf("%s %s\n%s %s\n", kinds[i].cert_directive,
                   path_of(in, &kinds[i], ".pem"), kinds[i].key_directive,
                   path_of(in, &kinds[i], ".key"));
        }
    }
}

static int run(init_t *in)
{
    apr_size_t i;
    int rc;

    if (mkdir(in->dir, 0700) && errno != EEXIST) {
        return fail("%s: %s", in->dir, strerror(errno));
    }
    if ((rc = check_free(in)) || (in->ca_cert_file && (rc = load_ca(in)))) {
        return rc;
    }
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); ++i) {
        if (in->want[kinds[i].role] && (rc = make_one(in, &kinds[i]))) {
            return rc;
        }
    }
    return 0;
}

/* Nothing half-made stays behind. */
static void remove_written(init_t *in)
{
    int i;

    for (i = 0; i < in->written->nelts; ++i) {
        unlink(APR_ARRAY_IDX(in->written, i, const char *));
    }
}

static void init_defaults(init_t *in, apr_pool_t *p)
{
    memset(in, 0, sizeof(*in));
    in->p = p;
    in->subject = DEFAULT_SUBJECT;
    in->bits = DEFAULT_BITS;
    in->ca_days = DEFAULT_CA_DAYS;
    in->leaf_days = DEFAULT_LEAF_DAYS;
    in->written = apr_array_make(p, 8, sizeof(const char *));
}

int scep_cli_init(apr_pool_t *p, int argc, const char *const *argv)
{
    init_t in;
    int rc;

    init_defaults(&in, p);
    if ((rc = parse_args(&in, argc, argv))) {
        return rc;
    }
    if ((rc = run(&in))) {
        remove_written(&in);
        return rc;
    }
    print_directives(&in);
    return 0;
}
