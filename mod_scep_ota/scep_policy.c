/* What a certificate may say: the name policy, grants and plans. */

#include <string.h>
#include <stdlib.h>
#include <arpa/inet.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_escape.h>
#include <apr_fnmatch.h>
#include <openssl/err.h>

#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_policy.h"

#define MAX_DNS 253
#define MAX_LABEL 63
#define MAX_LOCAL 64
#define MAX_URI 2048

static const struct {
    const char *config;          /* SCEPAllowSubjectAltName, --san */
    const char *text;            /* the prefix of the text form */
    int gen;                     /* GEN_* */
} san_types[] = {
    { "dns", "DNS", GEN_DNS },
    { "email", "email", GEN_EMAIL },
    { "uri", "URI", GEN_URI },
    { "ip", "IP", GEN_IPADD },
};
#define N_SAN_TYPES ((int)(sizeof(san_types) / sizeof(san_types[0])))

static int type_by_config(const char *s, apr_size_t n)
{
    int i;

    for (i = 0; i < N_SAN_TYPES; ++i) {
        if (strlen(san_types[i].config) == n
            && !strncasecmp(s, san_types[i].config, n)) {
            return i;
        }
    }
    return -1;
}

static int type_by_gen(int gen)
{
    int i;

    for (i = 0; i < N_SAN_TYPES; ++i) {
        if (san_types[i].gen == gen) {
            return i;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* the forms a name may take                                           */

static int dns_ok(const char *s, apr_size_t n)
{
    apr_size_t i, label = 0;

    if (n == 0 || n > MAX_DNS) {
        return 0;
    }
    for (i = 0; i < n; ++i) {
        if (s[i] == '.') {
            if (label == 0) {
                return 0;        /* empty label */
            }
            label = 0;
        }
        else if ((apr_isalnum(s[i]) || s[i] == '-' || s[i] == '_')
                 && ++label <= MAX_LABEL) {
            continue;
        }
        else {
            return 0;            /* wildcards among them */
        }
    }
    return label > 0;
}

static int email_ok(const char *s, apr_size_t n)
{
    const char *at = memchr(s, '@', n);
    apr_size_t i, local = at ? (apr_size_t)(at - s) : 0;

    if (!at || local == 0 || local > MAX_LOCAL) {
        return 0;
    }
    for (i = 0; i < local; ++i) {
        if (!apr_isgraph(s[i]) || strchr("\"(),:;<>[]\\", s[i])) {
            return 0;
        }
    }
    return dns_ok(at + 1, n - local - 1);
}

static int uri_ok(const char *s, apr_size_t n)
{
    apr_size_t i = 0;

    if (n == 0 || n > MAX_URI || !apr_isalpha(s[0])) {
        return 0;
    }
    while (i < n && (apr_isalnum(s[i]) || strchr("+.-", s[i]))) {
        ++i;
    }
    if (i == n || s[i] != ':') {
        return 0;                /* a URI has a scheme */
    }
    for (; i < n; ++i) {
        if (!apr_isgraph(s[i]) || strchr("<>\"{}|\\^`", s[i])) {
            return 0;
        }
    }
    return 1;
}

/* The text form of a name, or NULL with *why. */
static const char *name_text(apr_pool_t *p, const GENERAL_NAME *g,
                             const char **why)
{
    int t = type_by_gen(g->type), ok = 0;
    const ASN1_STRING *v = t >= 0 && g->type != GEN_IPADD ? g->d.ia5 : NULL;
    const char *s = v ? (const char *)ASN1_STRING_get0_data(v) : NULL;
    apr_size_t n = v ? (apr_size_t)ASN1_STRING_length(v) : 0;
    char ip[64], *out, *c;

    if (t < 0) {
        *why = "a subjectAltName of a type no certificate of this CA "
               "carries (only DNS, email, URI and IP)";
        return NULL;
    }
    if (g->type == GEN_IPADD) {
        n = (apr_size_t)ASN1_STRING_length(g->d.iPAddress);
        if ((n == 4 || n == 16)
            && inet_ntop(n == 4 ? AF_INET : AF_INET6,
                         ASN1_STRING_get0_data(g->d.iPAddress), ip,
                         sizeof(ip))) {
            return apr_pstrcat(p, "IP:", ip, NULL);
        }
        *why = "a subjectAltName IP address that is neither IPv4 nor IPv6";
        return NULL;
    }
    ok = !memchr(s, 0, n) && (g->type == GEN_DNS ? dns_ok(s, n)
                              : g->type == GEN_EMAIL ? email_ok(s, n)
                              : uri_ok(s, n));
    if (!ok) {
        *why = apr_psprintf(p, "the subjectAltName %s:%s is not a valid %s",
                            san_types[t].text,
                            apr_pescape_echo(p, apr_pstrmemdup(p, s, n), 0),
                            g->type == GEN_DNS ? "host name (wildcards are "
                            "not issued)" : g->type == GEN_EMAIL
                            ? "mail address" : "URI");
        return NULL;
    }
    out = apr_pstrcat(p, san_types[t].text, ":", apr_pstrmemdup(p, s, n),
                      NULL);
    /* host names compare case-blind: keep them in lower case */
    c = g->type == GEN_DNS ? out + 4
        : g->type == GEN_EMAIL ? strchr(out, '@') : NULL;
    for (; c && *c; ++c) {
        *c = (char)apr_tolower(*c);
    }
    return out;
}

apr_status_t scep_san_parse(apr_pool_t *p, const char *text,
                            const char **canonical, const char **err)
{
    const char *colon = text ? strchr(text, ':') : NULL;
    int t = colon ? type_by_config(text, (apr_size_t)(colon - text)) : -1;
    GENERAL_NAME *g;

    *err = NULL;
    if (t < 0) {
        *err = apr_psprintf(p, "'%s' is no subjectAltName: use dns:NAME, "
                            "email:ADDRESS, uri:URI or ip:ADDRESS",
                            text ? text : "");
        return APR_EINVAL;
    }
    g = a2i_GENERAL_NAME(NULL, NULL, NULL, san_types[t].gen, colon + 1, 0);
    ERR_clear_error();
    *canonical = g ? name_text(p, g, err) : NULL;
    GENERAL_NAME_free(g);
    if (!*canonical) {
        *err = *err ? *err : apr_psprintf(p, "'%s' is not a valid %s "
                                          "address", colon + 1,
                                          san_types[t].config);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

GENERAL_NAMES *scep_sans_to_names(const apr_array_header_t *sans)
{
    GENERAL_NAMES *out = GENERAL_NAMES_new();
    GENERAL_NAME *g;
    const char *s, *colon;
    int i, t;

    for (i = 0; out && sans && i < sans->nelts; ++i) {
        s = APR_ARRAY_IDX(sans, i, const char *);
        colon = strchr(s, ':');
        t = colon ? type_by_config(s, (apr_size_t)(colon - s)) : -1;
        g = t >= 0 ? a2i_GENERAL_NAME(NULL, NULL, NULL, san_types[t].gen,
                                      colon + 1, 0) : NULL;
        if (!g || !sk_GENERAL_NAME_push(out, g)) {
            GENERAL_NAME_free(g);
            GENERAL_NAMES_free(out);
            out = NULL;
        }
    }
    ERR_clear_error();
    return out;
}

/* ------------------------------------------------------------------ */
/* the subjectAltNames a request asks for                              */

static apr_status_t names_text(apr_pool_t *p, const GENERAL_NAMES *gens,
                               apr_array_header_t **sans, const char **why)
{
    const char *t;
    int i;

    *sans = apr_array_make(p, 4, sizeof(const char *));
    for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); ++i) {
        if (!(t = name_text(p, sk_GENERAL_NAME_value(gens, i), why))) {
            return APR_EINVAL;
        }
        APR_ARRAY_PUSH(*sans, const char *) = t;
    }
    return APR_SUCCESS;
}

static apr_status_t exts_sans(apr_pool_t *p,
                              const STACK_OF(X509_EXTENSION) *exts,
                              apr_array_header_t **sans, const char **why)
{
    int at = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
    GENERAL_NAMES *gens = NULL;
    apr_status_t rv;

    *why = NULL;
    if (at >= 0 && X509v3_get_ext_by_NID(exts, NID_subject_alt_name, at) >= 0) {
        *why = "the subjectAltName extension appears twice";
        return APR_EINVAL;
    }
    if (at >= 0 && !(gens = X509V3_EXT_d2i(X509v3_get_ext(exts, at)))) {
        ERR_clear_error();
        *why = "the subjectAltName extension does not decode";
        return APR_EINVAL;
    }
    rv = names_text(p, gens, sans, why);
    GENERAL_NAMES_free(gens);
    return rv;
}

apr_status_t scep_csr_sans(apr_pool_t *p, X509_REQ *req,
                           apr_array_header_t **sans, const char **why)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    apr_status_t rv = exts_sans(p, exts, sans, why);

    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    return rv;
}

apr_status_t scep_cert_sans(apr_pool_t *p, X509 *cert,
                            apr_array_header_t **sans, const char **why)
{
    return exts_sans(p, X509_get0_extensions(cert), sans, why);
}

/* ------------------------------------------------------------------ */
/* the policy                                                          */

apr_status_t scep_san_rule_make(apr_pool_t *p, const char *type,
                                const char *pattern, scep_san_rule_t *rule,
                                const char **err)
{
    int t = type ? type_by_config(type, strlen(type)) : -1;
    const char *slash, *addr;
    ASN1_OCTET_STRING *ip;
    char *end;
    long bits;
    int i;

    memset(rule, 0, sizeof(*rule));
    *err = NULL;
    if (t < 0) {
        *err = apr_psprintf(p, "'%s' is no subjectAltName type: use dns, "
                            "email, uri or ip", type ? type : "");
        return APR_EINVAL;
    }
    rule->type = (scep_san_type_t)t;
    rule->pattern = apr_pstrdup(p, pattern);
    for (i = 0; pattern[i]; ++i) {
        if (!apr_isgraph(pattern[i])) {
            *err = apr_psprintf(p, "the pattern '%s' has a space or a "
                                "control character", pattern);
            return APR_EINVAL;
        }
    }
    if (!*pattern) {
        *err = "an empty pattern";
        return APR_EINVAL;
    }
    if (rule->type != SCEP_SAN_IP) {
        return APR_SUCCESS;
    }
    slash = strchr(pattern, '/');
    addr = slash ? apr_pstrmemdup(p, pattern, (apr_size_t)(slash - pattern))
                 : pattern;
    ip = a2i_IPADDRESS(addr);
    ERR_clear_error();
    rule->ip_len = ip ? ASN1_STRING_length(ip) : 0;
    if (rule->ip_len == 4 || rule->ip_len == 16) {
        memcpy(rule->ip, ASN1_STRING_get0_data(ip), (size_t)rule->ip_len);
    }
    ASN1_OCTET_STRING_free(ip);
    bits = slash ? strtol(slash + 1, &end, 10) : rule->ip_len * 8;
    if ((rule->ip_len != 4 && rule->ip_len != 16)
        || (slash && (!apr_isdigit(slash[1]) || *end))
        || bits < 0 || bits > rule->ip_len * 8) {
        *err = apr_psprintf(p, "'%s' is not an IP address or "
                            "ADDRESS/PREFIX", pattern);
        return APR_EINVAL;
    }
    for (i = 0; i < rule->ip_len; ++i, bits -= 8) {
        rule->mask[i] = bits >= 8 ? 0xff
                        : bits > 0 ? (unsigned char)(0xff << (8 - bits)) : 0;
        rule->ip[i] &= rule->mask[i];
    }
    return APR_SUCCESS;
}

static int rule_matches(const scep_san_rule_t *r, const char *san)
{
    const char *colon = strchr(san, ':');
    int t = colon ? type_by_config(san, (apr_size_t)(colon - san)) : -1;
    unsigned char ip[16];
    int i, fam;

    if (t != (int)r->type) {
        return 0;
    }
    if (r->type != SCEP_SAN_IP) {
        return APR_SUCCESS == apr_fnmatch(r->pattern, colon + 1,
                                          r->type == SCEP_SAN_URI ? 0
                                          : APR_FNM_CASE_BLIND);
    }
    fam = r->ip_len == 4 ? AF_INET : AF_INET6;
    if (inet_pton(fam, colon + 1, ip) != 1) {
        return 0;                /* the other family */
    }
    for (i = 0; i < r->ip_len; ++i) {
        if ((ip[i] & r->mask[i]) != r->ip[i]) {
            return 0;
        }
    }
    return 1;
}

static int policy_allows(const scep_name_policy_t *pol, const char *san)
{
    int i;

    for (i = 0; pol->san_rules && i < pol->san_rules->nelts; ++i) {
        if (rule_matches(&APR_ARRAY_IDX(pol->san_rules, i, scep_san_rule_t),
                         san)) {
            return 1;
        }
    }
    return 0;
}

static int listed(const apr_array_header_t *sans, const char *san)
{
    int i;

    for (i = 0; sans && i < sans->nelts; ++i) {
        if (!strcmp(APR_ARRAY_IDX(sans, i, const char *), san)) {
            return 1;
        }
    }
    return 0;
}

static const char *reserved_subject(const scep_name_policy_t *pol,
                                    const X509_NAME *name)
{
    X509 *x;
    int i;

    for (i = 0; pol->reserved && i < pol->reserved->nelts; ++i) {
        x = APR_ARRAY_IDX(pol->reserved, i, X509 *);
        if (X509_NAME_cmp(name, X509_get_subject_name(x)) == 0) {
            return X509_check_ca(x) ? "a CA certificate's" : "the RA's";
        }
    }
    return NULL;
}

apr_status_t scep_names_decide(apr_pool_t *p, const scep_name_policy_t *pol,
                               const scep_grant_t *given, X509_REQ *req,
                               apr_array_header_t **sans, const char **why)
{
    /* a grant that names no subject only says who asked */
    const scep_grant_t *grant = given && given->subject ? given : NULL;
    const X509_NAME *name = X509_REQ_get_subject_name(req);
    const char *subject = scep_name_rfc2253(p, name), *whose, *san;
    apr_array_header_t *asked;
    int i;

    *why = NULL;
    if (!subject) {
        *why = "the subject cannot be read";
        return APR_EINVAL;
    }
    if (grant && grant->subject && strcmp(grant->subject, subject)) {
        *why = apr_psprintf(p, "the subject '%s' is not the '%s' this "
                            "request may have", subject, grant->subject);
        return APR_EINVAL;
    }
    if (X509_NAME_entry_count(name) > 0
        && (whose = reserved_subject(pol, name))) {
        *why = apr_psprintf(p, "the subject '%s' is %s", subject, whose);
        return APR_EINVAL;
    }
    if (APR_SUCCESS != scep_csr_sans(p, req, &asked, why)) {
        return APR_EINVAL;
    }
    for (i = 0; i < asked->nelts; ++i) {
        san = APR_ARRAY_IDX(asked, i, const char *);
        if (grant ? !listed(grant->sans, san) : !policy_allows(pol, san)) {
            *why = apr_psprintf(p, "the subjectAltName %s is not allowed "
                                "(%s)", san, grant ? "the request's grant "
                                "fixes its names" : "SCEPAllowSubjectAltName");
            return APR_EINVAL;
        }
    }
    *sans = grant ? (grant->sans ? grant->sans
                     : apr_array_make(p, 1, sizeof(const char *)))
                  : asked;
    if (X509_NAME_entry_count(name) == 0 && (*sans)->nelts == 0) {
        *why = "the request has neither a subject nor a subjectAltName";
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* grants and plans as text                                            */

scep_grant_t *scep_grant_make(apr_pool_t *p)
{
    scep_grant_t *g = apr_pcalloc(p, sizeof(*g));

    g->sans = apr_array_make(p, 2, sizeof(const char *));
    return g;
}

static const char *line(apr_pool_t *p, const char *key, const char *value)
{
    return value ? apr_pstrcat(p, key, "=",
                               apr_pescape_path_segment(p, value), "\n",
                               NULL)
                 : "";
}

const char *scep_grant_format(apr_pool_t *p, const scep_grant_t *g)
{
    const char *out = apr_pstrcat(p, line(p, "subject", g->subject),
                                  line(p, "udid", g->udid),
                                  line(p, "user", g->user),
                                  line(p, "origin", g->origin), NULL);
    int i;

    for (i = 0; g->sans && i < g->sans->nelts; ++i) {
        out = apr_pstrcat(p, out, line(p, "san", APR_ARRAY_IDX(
                                           g->sans, i, const char *)), NULL);
    }
    return out;
}

static apr_status_t grant_line(apr_pool_t *p, scep_grant_t *g,
                               const char *key, const char *value)
{
    const char *canonical, *err;

    if (!value) {
        return APR_EINVAL;
    }
    if (!strcmp(key, "subject")) {
        g->subject = value;
    }
    else if (!strcmp(key, "udid")) {
        g->udid = value;
    }
    else if (!strcmp(key, "user")) {
        g->user = value;
    }
    else if (!strcmp(key, "origin")) {
        g->origin = value;
    }
    else if (!strcmp(key, "san")
             && APR_SUCCESS == scep_san_parse(p, value, &canonical, &err)) {
        APR_ARRAY_PUSH(g->sans, const char *) = canonical;
    }
    else {
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_status_t scep_grant_parse(apr_pool_t *p, const char *text,
                              scep_grant_t **grant)
{
    scep_grant_t *g = scep_grant_make(p);
    char *copy = apr_pstrdup(p, text ? text : ""), *state = NULL, *l, *eq;

    for (l = apr_strtok(copy, "\n", &state); l;
         l = apr_strtok(NULL, "\n", &state)) {
        if (!(eq = strchr(l, '='))) {
            return APR_EINVAL;
        }
        *eq = '\0';
        if (APR_SUCCESS != grant_line(p, g, l, apr_punescape_url(
                                          p, eq + 1, NULL, NULL, 0))) {
            return APR_EINVAL;
        }
    }
    *grant = g;
    return APR_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* subjects typed by an admin                                          */

/* The components of "/A=x/B=y" in order, or of "B=y,A=x" most general
 * first (RFC 2253 lists them the other way round); a backslash keeps the
 * next character. */
static apr_array_header_t *subject_parts(apr_pool_t *p, const char *text)
{
    apr_array_header_t *parts = apr_array_make(p, 4, sizeof(char *));
    int slash = text[0] == '/', i, n;
    char sep = slash ? '/' : ',', *cur, *o;
    const char *c = slash ? text + 1 : text;

    cur = o = apr_palloc(p, strlen(text) + 1);
    for (; ; ++c) {
        if (*c == '\\' && c[1]) {
            *o++ = *++c;
        }
        else if (*c == sep || !*c) {
            *o = '\0';
            APR_ARRAY_PUSH(parts, char *) = cur;
            if (!*c) {
                break;
            }
            cur = o = o + 1;
        }
        else {
            *o++ = *c;
        }
    }
    for (i = 0, n = parts->nelts; !slash && i < n / 2; ++i) {
        cur = APR_ARRAY_IDX(parts, i, char *);
        APR_ARRAY_IDX(parts, i, char *) = APR_ARRAY_IDX(parts, n - 1 - i,
                                                        char *);
        APR_ARRAY_IDX(parts, n - 1 - i, char *) = cur;
    }
    return parts;
}

apr_status_t scep_subject_parse(apr_pool_t *p, const char *text,
                                const char **rfc2253, const char **err)
{
    X509_NAME *name = X509_NAME_new();
    apr_array_header_t *parts = subject_parts(p, text ? text : "");
    char *part, *eq;
    int i, ok = name != NULL;

    *err = NULL;
    for (i = 0; ok && i < parts->nelts; ++i) {
        part = APR_ARRAY_IDX(parts, i, char *);
        eq = strchr(part, '=');
        if (!eq || eq == part || !eq[1]) {
            *err = apr_psprintf(p, "'%s' is not KEY=VALUE", part);
            ok = 0;
            break;
        }
        *eq = '\0';
        ok = X509_NAME_add_entry_by_txt(name, part, MBSTRING_UTF8,
                                        (const unsigned char *)eq + 1, -1,
                                        -1, 0);
        if (!ok) {
            *err = apr_psprintf(p, "'%s' is no attribute type of a name "
                                "(or its value does not fit it)", part);
        }
    }
    *rfc2253 = ok && X509_NAME_entry_count(name) > 0
               ? scep_name_rfc2253(p, name) : NULL;
    X509_NAME_free(name);
    ERR_clear_error();
    if (!*rfc2253) {
        *err = *err ? *err : "an empty subject";
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}
