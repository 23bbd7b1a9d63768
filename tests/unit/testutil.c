#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_file_io.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "testutil.h"

apr_pool_t *tpool;

void tpool_setup(void)
{
    apr_pool_create(&tpool, NULL);
}

void tpool_teardown(void)
{
    apr_pool_destroy(tpool);
    tpool = NULL;
}

static EVP_PKEY *keys[8];

EVP_PKEY *tu_key(int bits, int slot)
{
    ck_assert_int_lt(slot, 8);
    if (!keys[slot]) {
        keys[slot] = EVP_RSA_gen((unsigned int)bits);
        ck_assert_ptr_nonnull(keys[slot]);
    }
    return keys[slot];
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

X509 *tu_cert(const tu_cert_opts_t *o, EVP_PKEY *key, X509 *issuer,
              EVP_PKEY *issuer_key)
{
    static long serial = 1;
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    char ku[200] = "critical";

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)o->cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, key);
    add_ext(x, issuer, NID_basic_constraints, o->ca ? "critical,CA:TRUE"
                                                    : "critical,CA:FALSE");
    if (o->ku) {
        if (o->ku & 0x80) strcat(ku, ",digitalSignature");
        if (o->ku & 0x40) strcat(ku, ",nonRepudiation");
        if (o->ku & 0x20) strcat(ku, ",keyEncipherment");
        if (o->ku & 0x04) strcat(ku, ",keyCertSign");
        if (o->ku & 0x02) strcat(ku, ",cRLSign");
        add_ext(x, issuer, NID_key_usage, ku);
    }
    ck_assert_int_gt(X509_sign(x, issuer_key ? issuer_key : key,
                               EVP_sha256()), 0);
    return x;
}

static const char *tmpfile_path(void)
{
    char *path = apr_pstrdup(tpool, "/tmp/scep-unit-XXXXXX");
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    close(fd);
    return path;
}

static apr_status_t unlink_cleanup(void *data)
{
    unlink(data);
    return APR_SUCCESS;
}

static FILE *open_tmp(const char **path)
{
    FILE *f;

    *path = tmpfile_path();
    apr_pool_cleanup_register(tpool, *path, unlink_cleanup,
                              apr_pool_cleanup_null);
    f = fopen(*path, "w");
    ck_assert_ptr_nonnull(f);
    return f;
}

const char *tu_write_certs(X509 *const *certs, int n)
{
    const char *path;
    FILE *f = open_tmp(&path);
    int i;

    for (i = 0; i < n; ++i) {
        PEM_write_X509(f, certs[i]);
    }
    fclose(f);
    return path;
}

const char *tu_write_key(EVP_PKEY *key)
{
    const char *path;
    FILE *f = open_tmp(&path);

    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    return path;
}

const char *tu_write_bytes(const char *data, apr_size_t len)
{
    const char *path;
    FILE *f = open_tmp(&path);

    fwrite(data, 1, len, f);
    fclose(f);
    return path;
}
