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

/* The type index of the text "type:value" and where its value starts in
 * *value; -1 when the type is unknown. */
static int san_type_of(const char *s, const char **value)
{
    const char *colon = s ? strchr(s, ':') : NULL;

    *value = colon ? colon + 1 : NULL;
    return colon ? type_by_config(s, (apr_size_t)(colon - s)) : -1;
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

/* The text form of an IP address name, or NULL with *why. */
static const char *ip_text(apr_pool_t *p, const ASN1_OCTET_STRING *a,
                           const char **why)
{
    apr_size_t n = (apr_size_t)ASN1_STRING_length(a);
    char ip[64];

    if ((n == 4 || n == 16)
        && inet_ntop(n == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(a),
                     ip, sizeof(ip))) {
        return apr_pstrcat(p, "IP:", ip, NULL);
    }
    *why = "a subjectAltName IP address that is neither IPv4 nor IPv6";
    return NULL;
}

/* Why the value s (n bytes) of a name of type index t is refused. */
static const char *invalid_name(apr_pool_t *p, int t, const char *s,
                                apr_size_t n)
{
    int gen = san_types[t].gen;

    return apr_psprintf(p, "the subjectAltName %s:%s is not a valid %s",
                        san_types[t].text,
                        apr_pescape_echo(p, apr_pstrmemdup(p, s, n), 0),
                        gen == GEN_DNS ? "host name (wildcards are "
                        "not issued)" : gen == GEN_EMAIL
                        ? "mail address" : "URI");
}

/* Host names compare case-blind: keeps the host of a DNS or email name
 * (text form out) in lower case. */
static void lower_host(char *out, int gen)
{
    char *c = gen == GEN_DNS ? out + 4
              : gen == GEN_EMAIL ? strchr(out, '@') : NULL;

    for (; c && *c; ++c) {
        *c = (char)apr_tolower(*c);
    }
}

/* The text form of a name, or NULL with *why. */
static const char *name_text(apr_pool_t *p, const GENERAL_NAME *g,
                             const char **why)
{
    int t = type_by_gen(g->type), ok = 0;
    const ASN1_STRING *v = t >= 0 && g->type != GEN_IPADD ? g->d.ia5 : NULL;
    const char *s = v ? (const char *)ASN1_STRING_get0_data(v) : NULL;
    apr_size_t n = v ? (apr_size_t)ASN1_STRING_length(v) : 0;
    char *out;

    if (t < 0) {
        *why = "a subjectAltName of a type no certificate of this CA "
               "carries (only DNS, email, URI and IP)";
        return NULL;
    }
    if (g->type == GEN_IPADD) {
        return ip_text(p, g->d.iPAddress, why);
    }
    ok = !memchr(s, 0, n) && (g->type == GEN_DNS ? dns_ok(s, n)
                              : g->type == GEN_EMAIL ? email_ok(s, n)
                              : uri_ok(s, n));
    if (!ok) {
        *why = invalid_name(p, t, s, n);
        return NULL;
    }
    out = apr_pstrcat(p, san_types[t].text, ":", apr_pstrmemdup(p, s, n),
                      NULL);
    lower_host(out, g->type);
    return out;
}

apr_status_t scep_san_parse(apr_pool_t *p, const char *text,
                            const char **canonical, const char **err)
{
    const char *value;
    int t = san_type_of(text, &value);
    GENERAL_NAME *g;

    *err = NULL;
    if (t < 0) {
        *err = apr_psprintf(p, "'%s' is no subjectAltName: use dns:NAME, "
                            "email:ADDRESS, uri:URI or ip:ADDRESS",
                            text ? text : "");
        return APR_EINVAL;
    }
    g = a2i_GENERAL_NAME(NULL, NULL, NULL, san_types[t].gen, value, 0);
    ERR_clear_error();
    *canonical = g ? name_text(p, g, err) : NULL;
    GENERAL_NAME_free(g);
    if (!*canonical) {
        *err = *err ? *err : apr_psprintf(p, "'%s' is not a valid %s "
                                          "address", value,
                                          san_types[t].config);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

/* The name the text "type:value" stands for, or NULL. */
static GENERAL_NAME *san_name(const char *s)
{
    const char *value;
    int t = san_type_of(s, &value);

    return t >= 0 ? a2i_GENERAL_NAME(NULL, NULL, NULL, san_types[t].gen,
                                     value, 0) : NULL;
}

GENERAL_NAMES *scep_sans_to_names(const apr_array_header_t *sans)
{
    GENERAL_NAMES *out = GENERAL_NAMES_new();
    GENERAL_NAME *g;
    int i;

    for (i = 0; out && sans && i < sans->nelts; ++i) {
        g = san_name(APR_ARRAY_IDX(sans, i, const char *));
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

/* Why pattern cannot be a rule's pattern, or NULL. */
static const char *pattern_problem(apr_pool_t *p, const char *pattern)
{
    int i;

    for (i = 0; pattern[i]; ++i) {
        if (!apr_isgraph(pattern[i])) {
            return apr_psprintf(p, "the pattern '%s' has a space or a "
                                "control character", pattern);
        }
    }
    return *pattern ? NULL : "an empty pattern";
}

/* The IPv4 or IPv6 address addr into the rule (ip_len 0 when it is
 * neither). */
static void read_rule_ip(scep_san_rule_t *rule, const char *addr)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(addr);

    ERR_clear_error();
    rule->ip_len = ip ? ASN1_STRING_length(ip) : 0;
    if (rule->ip_len == 4 || rule->ip_len == 16) {
        memcpy(rule->ip, ASN1_STRING_get0_data(ip), (size_t)rule->ip_len);
    }
    ASN1_OCTET_STRING_free(ip);
}

/* The mask of the first bits of the rule's address, and the address
 * cut to them. */
static void set_ip_mask(scep_san_rule_t *rule, long bits)
{
    int i;

    for (i = 0; i < rule->ip_len; ++i, bits -= 8) {
        rule->mask[i] = bits >= 8 ? 0xff
                        : bits > 0 ? (unsigned char)(0xff << (8 - bits)) : 0;
        rule->ip[i] &= rule->mask[i];
    }
}

/* The ADDRESS or ADDRESS/PREFIX pattern of an ip rule. */
static apr_status_t ip_rule_parse(apr_pool_t *p, const char *pattern,
                                  scep_san_rule_t *rule, const char **err)
{
    const char *slash = strchr(pattern, '/');
    char *end;
    long bits;

    read_rule_ip(rule, slash ? apr_pstrmemdup(p, pattern,
                                              (apr_size_t)(slash - pattern))
                             : pattern);
    bits = slash ? strtol(slash + 1, &end, 10) : rule->ip_len * 8;
    if ((rule->ip_len != 4 && rule->ip_len != 16)
        || (slash && (!apr_isdigit(slash[1]) || *end))
        || bits < 0 || bits > rule->ip_len * 8) {
        *err = apr_psprintf(p, "'%s' is not an IP address or "
                            "ADDRESS/PREFIX", pattern);
        return APR_EINVAL;
    }
    set_ip_mask(rule, bits);
    return APR_SUCCESS;
}

apr_status_t scep_san_rule_make(apr_pool_t *p, const char *type,
                                const char *pattern, scep_san_rule_t *rule,
                                const char **err)
{
    int t = type ? type_by_config(type, strlen(type)) : -1;

    memset(rule, 0, sizeof(*rule));
    *err = NULL;
    if (t < 0) {
        *err = apr_psprintf(p, "'%s' is no subjectAltName type: use dns, "
                            "email, uri or ip", type ? type : "");
        return APR_EINVAL;
    }
    rule->type = (scep_san_type_t)t;
    rule->pattern = apr_pstrdup(p, pattern);
    if ((*err = pattern_problem(p, pattern))) {
        return APR_EINVAL;
    }
    if (rule->type != SCEP_SAN_IP) {
        return APR_SUCCESS;
    }
    return ip_rule_parse(p, pattern, rule, err);
}

static int rule_matches(const scep_san_rule_t *r, const char *san)
{
    const char *value;
    int t = san_type_of(san, &value);
    unsigned char ip[16];
    int i, fam;

    if (t != (int)r->type) {
        return 0;
    }
    if (r->type != SCEP_SAN_IP) {
        return APR_SUCCESS == apr_fnmatch(r->pattern, value,
                                          r->type == SCEP_SAN_URI ? 0
                                          : APR_FNM_CASE_BLIND);
    }
    fam = r->ip_len == 4 ? AF_INET : AF_INET6;
    if (inet_pton(fam, value, ip) != 1) {
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

/* Why the request may not have the subject name (text subject), or
 * NULL. */
static const char *subject_refusal(apr_pool_t *p,
                                   const scep_name_policy_t *pol,
                                   const scep_grant_t *grant,
                                   const X509_NAME *name, const char *subject)
{
    const char *whose;

    if (grant && grant->subject && strcmp(grant->subject, subject)) {
        return apr_psprintf(p, "the subject '%s' is not the '%s' this "
                            "request may have", subject, grant->subject);
    }
    if (X509_NAME_entry_count(name) > 0
        && (whose = reserved_subject(pol, name))) {
        return apr_psprintf(p, "the subject '%s' is %s", subject, whose);
    }
    return NULL;
}

/* Why one of the subjectAltNames asked for may not be issued, or NULL:
 * a grant fixes them, else the policy allows them. */
static const char *sans_refusal(apr_pool_t *p, const scep_name_policy_t *pol,
                                const scep_grant_t *grant,
                                const apr_array_header_t *asked)
{
    const char *san;
    int i;

    for (i = 0; i < asked->nelts; ++i) {
        san = APR_ARRAY_IDX(asked, i, const char *);
        if (grant ? !listed(grant->sans, san) : !policy_allows(pol, san)) {
            return apr_psprintf(p, "the subjectAltName %s is not allowed "
                                "(%s)", san, grant ? "the request's grant "
                                "fixes its names" : "SCEPAllowSubjectAltName");
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
    const char *subject = scep_name_rfc2253(p, name);
    apr_array_header_t *asked;

    *why = NULL;
    if (!subject) {
        *why = "the subject cannot be read";
        return APR_EINVAL;
    }
    if ((*why = subject_refusal(p, pol, grant, name, subject))) {
        return APR_EINVAL;
    }
    if (APR_SUCCESS != scep_csr_sans(p, req, &asked, why)
        || (*why = sans_refusal(p, pol, grant, asked))) {
        return APR_EINVAL;
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

/* The pieces of text between the separators sep, without the backslashes
 * that keep the character after them, into parts. */
static void split_escaped(apr_pool_t *p, const char *text, char sep,
                          apr_array_header_t *parts)
{
    const char *c = text;
    char *cur, *o;

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
}

static void reverse_parts(apr_array_header_t *parts)
{
    int i, n = parts->nelts;
    char *cur;

    for (i = 0; i < n / 2; ++i) {
        cur = APR_ARRAY_IDX(parts, i, char *);
        APR_ARRAY_IDX(parts, i, char *) = APR_ARRAY_IDX(parts, n - 1 - i,
                                                        char *);
        APR_ARRAY_IDX(parts, n - 1 - i, char *) = cur;
    }
}

/* The components of "/A=x/B=y" in order, or of "B=y,A=x" most general
 * first (RFC 2253 lists them the other way round); a backslash keeps the
 * next character. */
static apr_array_header_t *subject_parts(apr_pool_t *p, const char *text)
{
    apr_array_header_t *parts = apr_array_make(p, 4, sizeof(char *));
    int slash = text[0] == '/';

    split_escaped(p, slash ? text + 1 : text, slash ? '/' : ',', parts);
    if (!slash) {
        reverse_parts(parts);
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
