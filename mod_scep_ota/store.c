/* What every store backend shares: handles scoped to one CA. */

#include <apr_strings.h>

#include "scep_ota/scep_store.h"

scep_store_t *scep_store_scoped(apr_pool_t *p, const scep_store_t *st,
                                const char *ca_id)
{
    scep_store_t *s = apr_pmemdup(p, st, sizeof(*st));

    s->ca = ca_id ? apr_pstrdup(p, ca_id) : NULL;
    return s;
}

const char *scep_store_ca(const scep_store_t *st)
{
    return st->ca ? st->ca : "";
}
