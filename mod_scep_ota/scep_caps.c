/* The CA capability list (GetCACaps, and the Phase 2 payload's array). */

#include <apr_strings.h>

#include "scep_ota/scep_caps.h"

/* Canonical spelling, in scep_cap_t order (RFC 8894 Table 7). */
static const char *const cap_words[SCEP_CAP_COUNT] = {
    "AES", "DES3", "GetNextCACert", "POSTPKIOperation", "Renewal",
    "SCEPStandard", "SHA-1", "SHA-256", "SHA-512"
};

struct scep_caps_t {
    apr_pool_t *pool;
    apr_array_header_t *order; /* scep_cap_t, configured order */
    unsigned int set;          /* bit per scep_cap_t */
};

scep_caps_t *scep_caps_make(apr_pool_t *p)
{
    scep_caps_t *caps = apr_pcalloc(p, sizeof(*caps));

    caps->pool = p;
    caps->order = apr_array_make(p, SCEP_CAP_COUNT, sizeof(scep_cap_t));
    return caps;
}

scep_caps_t *scep_caps_default(apr_pool_t *p)
{
    scep_caps_t *caps = scep_caps_make(p);
    char *list = apr_pstrdup(p, SCEP_CAPS_DEFAULT), *last, *w;
    const char *err;

    for (w = apr_strtok(list, " ", &last); w; w = apr_strtok(NULL, " ", &last)) {
        scep_caps_add(caps, w, &err);
    }
    return caps;
}

const char *scep_caps_known(void)
{
    return "AES DES3 GetNextCACert POSTPKIOperation Renewal SCEPStandard "
           "SHA-1 SHA-256 SHA-512";
}

apr_status_t scep_caps_add(scep_caps_t *caps, const char *word,
                           const char **err)
{
    int i;

    for (i = 0; i < SCEP_CAP_COUNT; ++i) {
        if (!strcasecmp(word, cap_words[i])) {
            break;
        }
    }
    if (i == SCEP_CAP_COUNT) {
        *err = apr_psprintf(caps->pool,
                            "unknown capability '%s'; known capabilities: %s",
                            word, scep_caps_known());
        return APR_EINVAL;
    }
    if (caps->set & (1u << i)) {
        *err = apr_psprintf(caps->pool, "capability '%s' is listed twice",
                            cap_words[i]);
        return APR_EINVAL;
    }
    caps->set |= 1u << i;
    APR_ARRAY_PUSH(caps->order, scep_cap_t) = (scep_cap_t)i;
    return APR_SUCCESS;
}

int scep_caps_has(const scep_caps_t *caps, scep_cap_t cap)
{
    return (caps->set & (1u << cap)) != 0;
}

int scep_caps_count(const scep_caps_t *caps)
{
    return caps->order->nelts;
}

const char *scep_caps_word(const scep_caps_t *caps, int i)
{
    if (i < 0 || i >= caps->order->nelts) {
        return NULL;
    }
    return cap_words[APR_ARRAY_IDX(caps->order, i, scep_cap_t)];
}

const char *scep_caps_body(const scep_caps_t *caps, apr_pool_t *p,
                           apr_size_t *len)
{
    const char *body = "";
    int i;

    for (i = 0; i < caps->order->nelts; ++i) {
        body = apr_pstrcat(p, body, scep_caps_word(caps, i), "\n", NULL);
    }
    *len = strlen(body);
    return body;
}
