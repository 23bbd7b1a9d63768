#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_file_io.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "testutil.h"
#include "scep-ota-client.h"

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

/* The keyUsage extension of the bits, in openssl's configuration syntax. */
static const char *key_usage(unsigned int ku)
{
    return apr_pstrcat(tpool, "critical",
                       ku & 0x80 ? ",digitalSignature" : "",
                       ku & 0x40 ? ",nonRepudiation" : "",
                       ku & 0x20 ? ",keyEncipherment" : "",
                       ku & 0x04 ? ",keyCertSign" : "",
                       ku & 0x02 ? ",cRLSign" : "", NULL);
}

X509 *tu_cert(const tu_cert_opts_t *o, EVP_PKEY *key, X509 *issuer,
              EVP_PKEY *issuer_key)
{
    static long serial = 1;
    X509_NAME *name = X509_NAME_new();
    scep_cli_ext_t exts[3] = { { NID_basic_constraints, NULL },
                               { NID_undef, NULL }, { NID_undef, NULL } };
    scep_cli_cert_t s;
    X509 *x;

    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)o->cn, -1, -1, 0);
    exts[0].value = o->ca ? "critical,CA:TRUE" : "critical,CA:FALSE";
    if (o->ku) {
        exts[1].nid = NID_key_usage;
        exts[1].value = key_usage(o->ku);
    }
    memset(&s, 0, sizeof(s));
    s.subject = name;
    s.key = key;
    s.issuer = issuer;
    s.issuer_key = issuer_key ? issuer_key : key;
    s.serial = serial++;
    s.not_before = -3600;
    s.not_after = 86400L * 365;
    s.exts = exts;
    x = scep_cli_cert(tpool, &s);
    X509_NAME_free(name);
    ck_assert_ptr_nonnull(x);
    X509_up_ref(x);             /* the caller's, beside the pool's */
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
