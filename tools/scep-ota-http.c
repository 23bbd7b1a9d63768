/* A minimal HTTP/1.1 client over OpenSSL BIOs (plain or TLS). */

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <apr_base64.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "scep_ota/scep_version.h"
#include "scep-ota-http.h"

#define RESPONSE_MAX (16 * 1024 * 1024)

struct scep_http_t {
    SSL_CTX *ssl;                /* created on the first https request */
    const char *cafile;
    int insecure;
    apr_interval_time_t timeout;
    const char *auth_origin;     /* where the credentials go, or NULL */
    const char *authorization;   /* "Basic ..." */
};

typedef struct {
    int tls;
    const char *host;            /* as in the URL, [v6] brackets kept */
    const char *port;
    const char *path;            /* path and query */
} url_t;

static apr_status_t ssl_cleanup(void *data)
{
    SSL_CTX_free(data);
    return APR_SUCCESS;
}

scep_http_t *scep_http_make(apr_pool_t *p, const char *cafile, int insecure,
                            apr_interval_time_t timeout)
{
    scep_http_t *h = apr_pcalloc(p, sizeof(*h));

    h->cafile = cafile;
    h->insecure = insecure;
    h->timeout = timeout;
    return h;
}

/* How servers are verified: not at all (--insecure), or against the
 * CA file or the system's CAs. 0 when the CAs cannot be loaded. */
static int set_verify(scep_http_t *h)
{
    if (h->insecure) {
        SSL_CTX_set_verify(h->ssl, SSL_VERIFY_NONE, NULL);
        return 1;
    }
    SSL_CTX_set_verify(h->ssl, SSL_VERIFY_PEER, NULL);
    return h->cafile ? SSL_CTX_load_verify_locations(h->ssl, h->cafile, NULL)
                     : SSL_CTX_set_default_verify_paths(h->ssl);
}

static SSL_CTX *tls_context(scep_http_t *h, apr_pool_t *p)
{
    if (h->ssl) {
        return h->ssl;
    }
    if (!(h->ssl = SSL_CTX_new(TLS_client_method()))) {
        return NULL;
    }
    apr_pool_cleanup_register(p, h->ssl, ssl_cleanup, apr_pool_cleanup_null);
    SSL_CTX_set_options(h->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    return set_verify(h) ? h->ssl : NULL;
}

/* After "http://" or "https://" (u->tls says which), or NULL. */
static const char *after_scheme(const char *url, url_t *u)
{
    if (!strncasecmp(url, "http://", 7)) {
        u->tls = 0;
        return url + 7;
    }
    if (!strncasecmp(url, "https://", 8)) {
        u->tls = 1;
        return url + 8;
    }
    return NULL;
}

/* host[:port] in [s, end); [v6] brackets kept. */
static void split_authority(apr_pool_t *p, const char *s, const char *end,
                            url_t *u)
{
    const char *colon = *s == '[' ? strchr(s, ']') : s;

    colon = colon ? memchr(colon, ':', (apr_size_t)(end - colon)) : NULL;
    if (colon) {
        u->host = apr_pstrmemdup(p, s, (apr_size_t)(colon - s));
        u->port = apr_pstrmemdup(p, colon + 1, (apr_size_t)(end - colon - 1));
    }
    else {
        u->host = apr_pstrmemdup(p, s, (apr_size_t)(end - s));
        u->port = u->tls ? "443" : "80";
    }
}

static apr_status_t parse_url(apr_pool_t *p, const char *url, url_t *u)
{
    const char *s = after_scheme(url, u), *slash;

    if (!s) {
        return APR_EINVAL;
    }
    slash = s + strcspn(s, "/?");
    if (memchr(s, '@', (apr_size_t)(slash - s))) {
        return APR_EINVAL; /* user:password@ has no place in a URL here */
    }
    u->path = *slash == '/' ? slash : apr_pstrcat(p, "/", slash, NULL);
    split_authority(p, s, slash, u);
    return *u->host && *u->port ? APR_SUCCESS : APR_EINVAL;
}

/* scheme://host:port, as credentials are scoped */
static const char *origin(apr_pool_t *p, const url_t *u)
{
    return apr_pstrcat(p, u->tls ? "https://" : "http://", u->host, ":",
                       u->port, NULL);
}

apr_status_t scep_http_set_basic(scep_http_t *h, apr_pool_t *p,
                                 const char *url, const char *user,
                                 const char *password)
{
    const char *pair;
    char *b64;
    url_t u;

    if (APR_SUCCESS != parse_url(p, url, &u) || strchr(user, ':')) {
        return APR_EINVAL;
    }
    pair = apr_pstrcat(p, user, ":", password, NULL);
    b64 = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)strlen(pair)));
    apr_base64_encode(b64, pair, (int)strlen(pair));
    h->auth_origin = origin(p, &u);
    h->authorization = apr_pstrcat(p, "Basic ", b64, NULL);
    return APR_SUCCESS;
}

static void set_timeouts(BIO *conn, apr_interval_time_t timeout)
{
    struct timeval tv;
    int fd = -1;

    if (BIO_get_fd(conn, &fd) < 0 || fd < 0) {
        return;
    }
    tv.tv_sec = (long)apr_time_sec(timeout);
    tv.tv_usec = (long)apr_time_usec(timeout);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* SNI, and the name or address the server's certificate must carry. */
static void set_peer_name(scep_http_t *h, apr_pool_t *p, SSL *ssl,
                          const url_t *u)
{
    const char *name = u->host[0] == '[' ? NULL : u->host;

    if (name && strspn(name, "0123456789.") != strlen(name)) {
        SSL_set_tlsext_host_name(ssl, name);
        if (!h->insecure) {
            SSL_set1_host(ssl, name);
        }
    }
    else if (!h->insecure) {
        /* an address: match it against the certificate's IP SANs */
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name ? name
            : apr_pstrmemdup(p, u->host + 1, strlen(u->host) - 2));
    }
}

static const char *handshake_error(apr_pool_t *p, const url_t *u, SSL *ssl)
{
    long vr = SSL_get_verify_result(ssl);

    return apr_psprintf(p, "TLS handshake with %s:%s failed%s%s", u->host,
                        u->port, vr != X509_V_OK ? ": " : "",
                        vr != X509_V_OK ? X509_verify_cert_error_string(vr)
                                        : "");
}

/* TLS over conn, handshaken; NULL (conn freed) on failure. */
static BIO *start_tls(scep_http_t *h, apr_pool_t *p, BIO *conn,
                      const url_t *u, const char **err)
{
    SSL_CTX *ctx;
    BIO *sbio, *top;
    SSL *ssl = NULL;

    if (!(ctx = tls_context(h, p)) || !(sbio = BIO_new_ssl(ctx, 1))) {
        *err = "cannot set up TLS (CA file unreadable?)";
        BIO_free_all(conn);
        return NULL;
    }
    top = BIO_push(sbio, conn);
    BIO_get_ssl(sbio, &ssl);
    set_peer_name(h, p, ssl, u);
    if (BIO_do_handshake(top) <= 0) {
        *err = handshake_error(p, u, ssl);
        BIO_free_all(top);
        return NULL;
    }
    return top;
}

/* A connected (and for https, handshaken) BIO chain, or NULL. */
static BIO *connect_to(scep_http_t *h, apr_pool_t *p, const url_t *u,
                       const char **err)
{
    BIO *conn = BIO_new_connect(apr_pstrcat(p, u->host, ":", u->port, NULL));

    if (!conn || BIO_do_connect(conn) <= 0) {
        *err = apr_psprintf(p, "cannot connect to %s:%s", u->host, u->port);
        BIO_free_all(conn);
        return NULL;
    }
    set_timeouts(conn, h->timeout);
    return u->tls ? start_tls(h, p, conn, u, err) : conn;
}

static int write_all(BIO *b, const void *data, apr_size_t len)
{
    const char *d = data;
    int n;

    while (len > 0) {
        if ((n = BIO_write(b, d, (int)len)) <= 0) {
            return 0;
        }
        d += n;
        len -= (apr_size_t)n;
    }
    return 1;
}

/* The Content-Length among the header lines in [buf, eoh), or -1. */
static long content_length(const char *buf, const char *eoh)
{
    const char *line = buf;

    while ((line = strstr(line, "\r\n")) != NULL && line < eoh) {
        line += 2;
        if (!strncasecmp(line, "Content-Length:", 15)) {
            return atol(line + 15);
        }
    }
    return -1;
}

/* The buffer twice as large, its n bytes kept (and room for a NUL). */
static char *grow(apr_pool_t *p, char *buf, apr_size_t n, apr_size_t *cap)
{
    char *bigger = apr_palloc(p, *cap * 2 + 1);

    memcpy(bigger, buf, n);
    *cap *= 2;
    return bigger;
}

/* The length of the whole answer once its head is in and gives a
 * Content-Length, else 0. */
static apr_size_t expected_length(const char *buf)
{
    const char *eoh = strstr(buf, "\r\n\r\n");
    long cl = eoh ? content_length(buf, eoh) : -1;

    return cl >= 0 ? (apr_size_t)(eoh + 4 - buf) + (apr_size_t)cl : 0;
}

/* Reads until the peer closes, or until a known Content-Length is in. */
static apr_size_t read_all(apr_pool_t *p, BIO *b, char **out)
{
    apr_size_t cap = 16 * 1024, n = 0, want = 0;
    char *buf = apr_palloc(p, cap + 1);
    int got;

    for (;;) {
        if (n == cap) {
            if (cap >= RESPONSE_MAX) {
                break;
            }
            buf = grow(p, buf, n, &cap);
        }
        if ((got = BIO_read(b, buf + n, (int)(cap - n))) <= 0) {
            break;
        }
        n += (apr_size_t)got;
        buf[n] = '\0';
        want = want ? want : expected_length(buf);
        if (want && n >= want) {
            break;
        }
    }
    buf[n] = '\0';
    *out = buf;
    return n;
}

/* A header's value: from v, white space skipped, to the line's end. */
static const char *header_value(apr_pool_t *p, const char *v)
{
    const char *end;

    while (*v == ' ' || *v == '\t') {
        ++v;
    }
    end = strstr(v, "\r\n");
    return apr_pstrmemdup(p, v, end ? (apr_size_t)(end - v) : strlen(v));
}

static const char *header(apr_pool_t *p, const char *head, const char *name)
{
    const char *line = head;
    apr_size_t nlen = strlen(name);

    while ((line = strstr(line, "\r\n")) != NULL) {
        line += 2;
        if (!strncasecmp(line, name, nlen) && line[nlen] == ':') {
            return header_value(p, line + nlen + 1);
        }
    }
    return NULL;
}

/* Transfer-Encoding: chunked, decoded in place. */
static apr_size_t dechunk(char *body, apr_size_t len)
{
    char *in = body, *out = body, *end = body + len, *next;
    unsigned long size;

    while (in < end) {
        size = strtoul(in, &next, 16);
        if (next == in || !(next = strstr(next, "\r\n"))) {
            break;
        }
        in = next + 2;
        if (size == 0 || size > (unsigned long)(end - in)) {
            break;
        }
        memmove(out, in, size);
        out += size;
        in += size + 2;
    }
    return (apr_size_t)(out - body);
}

/* The body's length by Transfer-Encoding or Content-Length (chunks
 * decoded in place); APR_EGENERAL when the answer ended early. */
static apr_status_t body_length(apr_pool_t *p, const char *head, char *body,
                                apr_size_t *blen, const char **err)
{
    const char *te = header(p, head, "Transfer-Encoding");
    const char *cl = header(p, head, "Content-Length");

    if (te && !strcasecmp(te, "chunked")) {
        *blen = dechunk(body, *blen);
    }
    else if (cl && (apr_size_t)atol(cl) < *blen) {
        *blen = (apr_size_t)atol(cl);
    }
    else if (cl && (apr_size_t)atol(cl) > *blen) {
        *err = "connection closed in the middle of the answer";
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

static apr_status_t parse_response(apr_pool_t *p, char *raw, apr_size_t n,
                                   scep_http_resp_t *resp, const char **err)
{
    char *eoh = strstr(raw, "\r\n\r\n");
    apr_size_t blen;

    if (n < 12 || strncmp(raw, "HTTP/1.", 7) || !eoh) {
        *err = n ? "the answer is not HTTP" : "connection closed without an "
                                              "answer";
        return APR_EGENERAL;
    }
    *eoh = '\0';
    resp->status = atoi(raw + 9);
    resp->content_type = header(p, raw, "Content-Type");
    blen = n - (apr_size_t)(eoh + 4 - raw);
    if (APR_SUCCESS != body_length(p, raw, eoh + 4, &blen, err)) {
        return APR_EGENERAL;
    }
    resp->body = (const unsigned char *)eoh + 4;
    resp->len = blen;
    return APR_SUCCESS;
}

/* The request's head: request line, Host, our headers, the credentials
 * for their origin, the body's type and length. */
static const char *request_head(scep_http_t *h, apr_pool_t *p,
                                const char *method, const url_t *u,
                                const char *content_type, const void *body,
                                apr_size_t len)
{
    int port = strcmp(u->port, u->tls ? "443" : "80") != 0;
    const char *head;

    head = apr_psprintf(p, "%s %s HTTP/1.1\r\nHost: %s%s%s\r\n"
                        "User-Agent: scep-ota-device/%s\r\nAccept: */*\r\n"
                        "Connection: close\r\n", method, u->path, u->host,
                        port ? ":" : "", port ? u->port : "",
                        SCEP_OTA_VERSION);
    if (h->authorization && !strcmp(h->auth_origin, origin(p, u))) {
        head = apr_pstrcat(p, head, "Authorization: ", h->authorization,
                           "\r\n", NULL);
    }
    if (body) {
        head = apr_psprintf(p, "%sContent-Type: %s\r\nContent-Length: %"
                            APR_SIZE_T_FMT "\r\n", head, content_type, len);
    }
    return apr_pstrcat(p, head, "\r\n", NULL);
}

/* Sends head and body on b, and reads the answer. */
static apr_status_t send_and_read(apr_pool_t *p, BIO *b, const char *head,
                                  const void *body, apr_size_t len,
                                  scep_http_resp_t *resp, const char **err)
{
    char *raw;
    apr_size_t n;

    if (!write_all(b, head, strlen(head)) || (body && !write_all(b, body, len))
        || BIO_flush(b) <= 0) {
        *err = "connection lost while sending the request";
        return APR_EGENERAL;
    }
    n = read_all(p, b, &raw);
    return parse_response(p, raw, n, resp, err);
}

static const char *bad_url(apr_pool_t *p, const char *url)
{
    return strchr(url, '@')
           ? "a URL with credentials in it is not accepted (the password "
             "would show); use --user and --password-file"
           : apr_psprintf(p, "'%s' is not an http:// or https:// URL", url);
}

apr_status_t scep_http_request(scep_http_t *h, apr_pool_t *p,
                               const char *method, const char *url,
                               const char *content_type, const void *body,
                               apr_size_t len, scep_http_resp_t *resp,
                               const char **err)
{
    url_t u;
    BIO *b;
    apr_status_t rv;

    memset(resp, 0, sizeof(*resp));
    if (APR_SUCCESS != parse_url(p, url, &u)) {
        *err = bad_url(p, url);
        return APR_EINVAL;
    }
    if (!(b = connect_to(h, p, &u, err))) {
        ERR_clear_error();
        return APR_ECONNREFUSED;
    }
    rv = send_and_read(p, b, request_head(h, p, method, &u, content_type,
                                          body, len), body, len, resp, err);
    BIO_free_all(b);
    ERR_clear_error();
    return rv;
}

const char *scep_http_escape(apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, strlen(s) * 3 + 1), *o = out;
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; ++s) {
        if (apr_isalnum(*s) || strchr("-_.~", *s)) {
            *o++ = *s;
        }
        else {
            *o++ = '%';
            *o++ = hex[(unsigned char)*s >> 4];
            *o++ = hex[(unsigned char)*s & 15];
        }
    }
    *o = '\0';
    return out;
}
