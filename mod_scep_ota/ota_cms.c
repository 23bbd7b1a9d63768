/* OTA CMS: signing profiles and encrypting payload content. */

#include <openssl/cms.h>
#include <openssl/err.h>

#include "ota_private.h"
#include "scep_ota/scep_crypt.h"

static apr_status_t sk_cleanup(void *data)
{
    sk_X509_free(data);
    return APR_SUCCESS;
}

/* A stack over the array's certificates (not owning them). */
static STACK_OF(X509) *cert_stack(apr_pool_t *p, const apr_array_header_t *a)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    int i;

    if (!sk) {
        return NULL;
    }
    apr_pool_cleanup_register(p, sk, sk_cleanup, apr_pool_cleanup_null);
    for (i = 0; a && i < a->nelts; ++i) {
        if (!sk_X509_push(sk, APR_ARRAY_IDX(a, i, X509 *))) {
            return NULL;
        }
    }
    return sk;
}

apr_status_t ota_cms_sign(apr_pool_t *p, const ota_identity_t *id,
                          const void *data, apr_size_t len,
                          const unsigned char **der, apr_size_t *dlen)
{
    STACK_OF(X509) *chain = cert_stack(p, id->chain);
    BIO *in = BIO_new_mem_buf(data, (int)len);
    CMS_ContentInfo *cms = NULL;
    apr_status_t rv = APR_EGENERAL;

    if (chain && in) {
        cms = CMS_sign(id->cert, id->key, chain, in, CMS_BINARY);
    }
    if (cms) {
        scep_track_cms(p, cms);
        rv = scep_cms_der(p, cms, der, dlen);
    }
    BIO_free(in);
    ERR_clear_error();
    return rv;
}

apr_status_t ota_cms_encrypt(apr_pool_t *p, X509 *to, int cipher_nid,
                             const void *data, apr_size_t len,
                             const unsigned char **der, apr_size_t *dlen)
{
    STACK_OF(X509) *rcpt = sk_X509_new_null();
    const EVP_CIPHER *cipher = EVP_get_cipherbynid(cipher_nid);
    BIO *in = BIO_new_mem_buf(data, (int)len);
    CMS_ContentInfo *cms = NULL;
    apr_status_t rv = APR_EGENERAL;

    if (rcpt && cipher && in && sk_X509_push(rcpt, to)) {
        cms = CMS_encrypt(rcpt, in, cipher, CMS_BINARY);
    }
    if (cms) {
        scep_track_cms(p, cms);
        rv = scep_cms_der(p, cms, der, dlen);
    }
    sk_X509_free(rcpt);
    BIO_free(in);
    ERR_clear_error();
    return rv;
}
