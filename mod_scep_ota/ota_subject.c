/* OTASubject: the template, its variables, and Apple's three-level array. */

#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <openssl/objects.h>
#include <openssl/err.h>

#include "ota_private.h"
#include "scep_ota/scep_crypt.h"

#define SUBJECT_MAX_LEN   1024
#define SUBJECT_MAX_RDNS  16
/* X.520 upper bound of most naming attributes (ub-common-name). */
#define VALUE_MAX_LEN     64

/* The variables; each reads the device attribute of the same name. */
static const char *const subject_vars[] = {
    "UDID", "SERIAL", "PRODUCT", "VERSION", "IMEI", "MEID", "DEVICE_NAME",
    NULL
};

/* The names iOS takes as they are; everything else goes as a dotted OID. */
static const struct {
    int nid;
    const char *apple;
} apple_names[] = {
    { NID_countryName, "C" },
    { NID_localityName, "L" },
    { NID_stateOrProvinceName, "ST" },
    { NID_organizationName, "O" },
    { NID_organizationalUnitName, "OU" },
    { NID_commonName, "CN" },
};

static int is_var(const char *name, apr_size_t n)
{
    int i;

    for (i = 0; subject_vars[i]; ++i) {
        if (strlen(subject_vars[i]) == n && !memcmp(subject_vars[i], name, n)) {
            return 1;
        }
    }
    return 0;
}

/* Every %{NAME} of a value must be a known variable. */
static apr_status_t check_vars(apr_pool_t *p, const char *value,
                               const char **err)
{
    const char *s = value, *end;

    while ((s = strstr(s, "%{")) != NULL) {
        if (!(end = strchr(s + 2, '}'))) {
            *err = apr_psprintf(p, "OTASubject: unterminated '%%{' in '%s'",
                                value);
            return APR_EINVAL;
        }
        if (!is_var(s + 2, (apr_size_t)(end - s - 2))) {
            *err = apr_psprintf(p, "OTASubject: unknown variable '%.*s'; "
                                "known: %%{UDID} %%{SERIAL} %%{PRODUCT} "
                                "%%{VERSION} %%{IMEI} %%{MEID} "
                                "%%{DEVICE_NAME}", (int)(end - s + 1), s);
            return APR_EINVAL;
        }
        s = end + 1;
    }
    return APR_SUCCESS;
}

/* The name iOS takes for nid as it is, or NULL. */
static const char *apple_name(int nid)
{
    apr_size_t i;

    for (i = 0; i < sizeof(apple_names) / sizeof(apple_names[0]); ++i) {
        if (nid == apple_names[i].nid) {
            return apple_names[i].apple;
        }
    }
    return NULL;
}

static apr_status_t subject_oid(apr_pool_t *p, const char *name,
                                const char **oid, const char **err)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(name, 0);
    char buf[128];

    if (!obj) {
        ERR_clear_error();
        *err = apr_psprintf(p, "OTASubject: unknown attribute name '%s' "
                            "(use C, L, ST, O, OU, CN, another name OpenSSL "
                            "knows, or a dotted OID)", name);
        return APR_EINVAL;
    }
    *oid = apple_name(OBJ_obj2nid(obj));
    if (!*oid && OBJ_obj2txt(buf, sizeof(buf), obj, 1) > 0) {
        *oid = apr_pstrdup(p, buf);
    }
    ASN1_OBJECT_free(obj);
    if (!*oid) {
        *err = apr_psprintf(p, "OTASubject: cannot use '%s'", name);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

/* Reads up to an unescaped character of stops, unescaping "\x". */
static const char *read_part(apr_pool_t *p, const char **s, const char *stops,
                             char *stop)
{
    const char *c = *s;
    char *out = apr_palloc(p, strlen(c) + 1), *o = out;

    while (*c && !strchr(stops, *c)) {
        if (*c == '\\' && c[1]) {
            ++c;
        }
        *o++ = *c++;
    }
    *o = '\0';
    *stop = *c;
    *s = *c ? c + 1 : c;
    return out;
}

static apr_status_t parse_atv(apr_pool_t *p, const char **s, ota_atv_t *atv,
                              char *stop, const char **err)
{
    const char *name = read_part(p, s, "=/+", stop);
    apr_status_t rv;

    if (*stop != '=' || !*name) {
        *err = apr_psprintf(p, "OTASubject: expected NAME=VALUE at '%s%s'",
                            name, *s);
        return APR_EINVAL;
    }
    atv->value = read_part(p, s, "/+", stop);
    if (!*atv->value) {
        *err = apr_psprintf(p, "OTASubject: '%s' has an empty value", name);
        return APR_EINVAL;
    }
    if (APR_SUCCESS != (rv = subject_oid(p, name, &atv->oid, err))) {
        return rv;
    }
    return check_vars(p, atv->value, err);
}

/* The RDNs after the leading '/', at most SUBJECT_MAX_RDNS. */
static apr_status_t parse_rdns(apr_pool_t *p, const char *s,
                               apr_array_header_t *rdns, const char **err)
{
    apr_array_header_t *rdn = NULL;
    char stop = '/';
    apr_status_t rv = APR_SUCCESS;

    while (APR_SUCCESS == rv && stop) {
        if (stop == '/') {
            if (rdns->nelts == SUBJECT_MAX_RDNS) {
                *err = "OTASubject: more than 16 RDNs";
                return APR_EINVAL;
            }
            rdn = apr_array_make(p, 1, sizeof(ota_atv_t));
            APR_ARRAY_PUSH(rdns, apr_array_header_t *) = rdn;
        }
        rv = parse_atv(p, &s, apr_array_push(rdn), &stop, err);
    }
    return rv;
}

apr_status_t ota_subject_parse(apr_pool_t *p, const char *tmpl,
                               ota_subject_t **psubj, const char **err)
{
    ota_subject_t *subj = apr_pcalloc(p, sizeof(*subj));
    apr_status_t rv;

    if (!tmpl || tmpl[0] != '/' || strlen(tmpl) > SUBJECT_MAX_LEN) {
        *err = "OTASubject: the template must start with '/', e.g. "
               "\"/O=Example/CN=%{UDID}\", and be at most 1024 characters";
        return APR_EINVAL;
    }
    subj->tmpl = apr_pstrdup(p, tmpl);
    subj->rdns = apr_array_make(p, 4, sizeof(apr_array_header_t *));
    if (APR_SUCCESS == (rv = parse_rdns(p, tmpl + 1, subj->rdns, err))) {
        *psubj = subj;
    }
    return rv;
}

/* A device value as it may appear in a subject: printable, no DN
 * metacharacters but ',' (product names have one; the array form needs no
 * escaping), at most VALUE_MAX_LEN bytes (cut on a UTF-8 boundary). */
static const char *sanitize(apr_pool_t *p, const char *v)
{
    char *out = apr_palloc(p, strlen(v) + 1), *o = out;
    const unsigned char *c;

    for (c = (const unsigned char *)v; *c; ++c) {
        if (*c >= 0x80 || apr_isalnum(*c) || strchr(" -._:@()',", *c)) {
            *o++ = (char)*c;
        }
        else if (*c >= 0x20 && *c != 0x7f) {
            *o++ = '_';
        }
    }
    *o = '\0';
    if (o - out > VALUE_MAX_LEN) {
        o = out + VALUE_MAX_LEN;
        while (o > out && ((unsigned char)*o & 0xC0) == 0x80) {
            --o;
        }
        *o = '\0';
    }
    return out;
}

/* The template of one value with the device's attributes put in. */
static const char *expand(apr_pool_t *p, const char *tmpl,
                          const apr_table_t *attrs)
{
    const char *s = tmpl, *var, *end, *val;
    const char *out = "";

    while ((var = strstr(s, "%{")) != NULL
           && (end = strchr(var + 2, '}')) != NULL) {
        val = attrs ? apr_table_get(attrs, apr_pstrmemdup(
                  p, var + 2, (apr_size_t)(end - var - 2))) : NULL;
        out = apr_pstrcat(p, out, apr_pstrmemdup(p, s, (apr_size_t)(var - s)),
                          val ? sanitize(p, val) : "", NULL);
        s = end + 1;
    }
    return apr_pstrcat(p, out, s, NULL);
}

/* The RDNs, each an array of ota_atv_t. */
#define RDN(subj, i) APR_ARRAY_IDX((subj)->rdns, i, apr_array_header_t *)
#define ATV(rdn, j)  (&APR_ARRAY_IDX(rdn, j, ota_atv_t))

ota_subject_t *ota_subject_fill(apr_pool_t *p, const ota_subject_t *subj,
                                const apr_table_t *attrs)
{
    ota_subject_t *dev = apr_pcalloc(p, sizeof(*dev));
    apr_array_header_t *rdn;
    ota_atv_t *atv;
    int i, j;

    dev->rdns = apr_array_make(p, subj->rdns->nelts,
                               sizeof(apr_array_header_t *));
    for (i = 0; i < subj->rdns->nelts; ++i) {
        rdn = apr_array_copy(p, RDN(subj, i));
        for (j = 0; j < rdn->nelts; ++j) {
            atv = ATV(rdn, j);
            atv->value = expand(p, atv->value, attrs);
        }
        APR_ARRAY_PUSH(dev->rdns, apr_array_header_t *) = rdn;
    }
    return dev;
}

void ota_subject_plist(const ota_subject_t *dev, plist_t array)
{
    plist_t set, pair;
    int i, j;

    for (i = 0; i < dev->rdns->nelts; ++i) {
        set = ota_plist_append_array(array);
        for (j = 0; j < RDN(dev, i)->nelts; ++j) {
            pair = ota_plist_append_array(set);
            ota_plist_append_str(pair, ATV(RDN(dev, i), j)->oid);
            ota_plist_append_str(pair, ATV(RDN(dev, i), j)->value);
        }
    }
}

const char *ota_subject_show(apr_pool_t *p, const ota_subject_t *dev)
{
    const char *out = "[";
    const ota_atv_t *atv;
    int i, j;

    for (i = 0; i < dev->rdns->nelts; ++i) {
        out = apr_pstrcat(p, out, i ? ",[" : "[", NULL);
        for (j = 0; j < RDN(dev, i)->nelts; ++j) {
            atv = ATV(RDN(dev, i), j);
            out = apr_psprintf(p, "%s%s[\"%s\",\"%s\"]", out, j ? "," : "",
                               atv->oid, atv->value);
        }
        out = apr_pstrcat(p, out, "]", NULL);
    }
    return apr_pstrcat(p, out, "]", NULL);
}

const char *ota_subject_text(apr_pool_t *p, const ota_subject_t *subj,
                             const apr_table_t *attrs)
{
    return ota_subject_show(p, ota_subject_fill(p, subj, attrs));
}

const char *ota_subject_rfc2253(apr_pool_t *p, const ota_subject_t *dev)
{
    X509_NAME *name = X509_NAME_new();
    const char *out = NULL;
    const ota_atv_t *atv;
    int i, j, ok = name != NULL;

    for (i = 0; ok && i < dev->rdns->nelts; ++i) {
        for (j = 0; ok && j < RDN(dev, i)->nelts; ++j) {
            atv = ATV(RDN(dev, i), j);
            /* set -1: a further attribute of the RDN just added */
            ok = X509_NAME_add_entry_by_txt(
                name, atv->oid, MBSTRING_UTF8,
                (const unsigned char *)atv->value, -1, -1, j ? -1 : 0);
        }
    }
    if (ok) {
        out = scep_name_rfc2253(p, name);
    }
    X509_NAME_free(name);
    ERR_clear_error();
    return out;
}
