/* Counts per key and hour in shared memory, with atomic operations. */

#include <string.h>

#include <apr_atomic.h>

#include "scep_ota/scep_tally.h"

#define SLOTS 1024               /* a power of two */
#define PROBES 4
#define HOUR_BITS 10

/* A slot names its key by a hash and its hour (id), and counts. */
typedef struct {
    volatile apr_uint32_t id;
    volatile apr_uint32_t count;
} slot_t;

struct scep_tally_t {
    slot_t slots[SLOTS];
};

apr_size_t scep_tally_size(void)
{
    return sizeof(scep_tally_t);
}

scep_tally_t *scep_tally_init(void *mem)
{
    memset(mem, 0, sizeof(scep_tally_t));
    return mem;
}

/* FNV-1a, 32 bits: spreads keys over the slots; no secret is hashed. */
static apr_uint32_t fnv1a(const char *s)
{
    apr_uint32_t h = 2166136261u;

    for (; *s; ++s) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

static apr_uint32_t hour_of(apr_uint32_t id)
{
    return id & ((1u << HOUR_BITS) - 1);
}

apr_uint32_t scep_tally_add(scep_tally_t *t, const char *key,
                            apr_time_t now)
{
    apr_uint32_t h = fnv1a(key), hour, id, cur;
    slot_t *s;
    int i;

    hour = (apr_uint32_t)(apr_time_sec(now) / 3600) & ((1u << HOUR_BITS) - 1);
    id = (h & ~((1u << HOUR_BITS) - 1)) | hour;
    if (!id) {
        id = 1u << HOUR_BITS;    /* 0 marks a free slot */
    }
    for (i = 0; i < PROBES; ++i) {
        s = &t->slots[(h + (apr_uint32_t)i) & (SLOTS - 1)];
        if (apr_atomic_read32(&s->id) == id) {
            return apr_atomic_inc32(&s->count) + 1;
        }
    }
    /* a free or stale slot, else the first (its key loses its count) */
    for (i = 0; i <= PROBES; ++i) {
        s = &t->slots[(h + (apr_uint32_t)(i % PROBES)) & (SLOTS - 1)];
        cur = apr_atomic_read32(&s->id);
        if ((i == PROBES || !cur || hour_of(cur) != hour)
            && apr_atomic_cas32(&s->id, id, cur) == cur) {
            apr_atomic_set32(&s->count, 1);
            return 1;
        }
        if (cur == id) {         /* another process claimed it for us */
            return apr_atomic_inc32(&s->count) + 1;
        }
    }
    return 1;
}

int scep_tally_milestone(apr_uint32_t count)
{
    apr_uint32_t m;

    for (m = 100; m && m <= count; m = m <= 0xFFFFFFFFu / 10 ? m * 10 : 0) {
        if (m == count) {
            return 1;
        }
    }
    return 0;
}
