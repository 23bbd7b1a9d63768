/* libplist behind one interface; the only place that knows its versions. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "scep_ota/ota_plist.h"

/* Memory that libplist allocated for us. */
static void plist_mem_release(void *mem)
{
#ifdef HAVE_PLIST_MEM_FREE
    plist_mem_free(mem);
#else
    free(mem);
#endif
}

static void plist_xml_release(char *xml)
{
#if defined(HAVE_PLIST_MEM_FREE)
    plist_mem_free(xml);
#elif defined(HAVE_PLIST_TO_XML_FREE)
    plist_to_xml_free(xml);
#else
    free(xml);
#endif
}

static apr_status_t plist_cleanup(void *data)
{
    plist_free(data);
    return APR_SUCCESS;
}

plist_t ota_plist_track(apr_pool_t *p, plist_t node)
{
    if (node) {
        apr_pool_cleanup_register(p, node, plist_cleanup,
                                  apr_pool_cleanup_null);
    }
    return node;
}

/* Tag name at s (after '<') is name, followed by '>', '/' or space. */
static int tag_is(const char *s, const char *end, const char *name)
{
    apr_size_t n = strlen(name);

    return (apr_size_t)(end - s) > n && !memcmp(s, name, n)
           && (s[n] == '>' || s[n] == '/' || s[n] == ' ' || s[n] == '\t'
               || s[n] == '\r' || s[n] == '\n');
}

/* Empty-element tag ("<dict/>")? s points after '<'. */
static int tag_is_empty(const char *s, const char *end)
{
    const char *gt = memchr(s, '>', (apr_size_t)(end - s));

    return gt && gt > s && gt[-1] == '/';
}

/* Nesting depth of dict/array elements of XML text, counted before any
 * parser sees it. Comments and CDATA are counted too, which can only
 * overestimate. */
static int xml_too_deep(const char *s, apr_size_t len, int max_depth)
{
    const char *end = s + len;
    int depth = 0;

    while ((s = memchr(s, '<', (apr_size_t)(end - s))) != NULL) {
        ++s;
        if (s < end && *s == '/') {
            if (tag_is(s + 1, end, "dict") || tag_is(s + 1, end, "array")) {
                --depth;
            }
        }
        else if ((tag_is(s, end, "dict") || tag_is(s, end, "array"))
                 && !tag_is_empty(s, end)) {
            if (++depth > max_depth) {
                return 1;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* binary plists: the object graph, checked before libplist sees it     */

/* The trailer: the last 32 bytes of a binary plist. */
#define BPLIST_HEADER_LEN   8
#define BPLIST_TRAILER_LEN  32

typedef struct {
    const unsigned char *data;
    apr_size_t table;            /* offset of the offset table: objects end */
    apr_uint64_t objects;
    unsigned offset_size, ref_size;
    unsigned char *seen;         /* containers already reached */
    apr_size_t nodes;
} bplist_walk_t;

static apr_uint64_t be_uint(const unsigned char *b, unsigned n)
{
    apr_uint64_t v = 0;

    while (n--) {
        v = (v << 8) | *b++;
    }
    return v;
}

/* Offset of object i, inside the object area, or 0. */
static apr_size_t bplist_offset(const bplist_walk_t *w, apr_uint64_t i)
{
    apr_uint64_t off = be_uint(w->data + w->table + i * w->offset_size,
                               w->offset_size);

    return off >= BPLIST_HEADER_LEN && off < w->table ? (apr_size_t)off : 0;
}

/* The element count of the container whose marker is at pos, and where
 * its references begin; APR_EINVAL when that runs past the objects. */
static apr_status_t bplist_count(const bplist_walk_t *w, apr_size_t pos,
                                 apr_uint64_t *count, apr_size_t *refs)
{
    unsigned n, width;

    *count = w->data[pos] & 0x0f;
    *refs = pos + 1;
    if (*count == 0x0f) {
        /* the count follows as an integer object: 0x1n, 2^n bytes */
        if (pos + 2 > w->table || (w->data[pos + 1] & 0xf0) != 0x10
            || (n = w->data[pos + 1] & 0x0f) > 3) {
            return APR_EINVAL;
        }
        width = 1u << n;
        if (pos + 2 + width > w->table) {
            return APR_EINVAL;
        }
        *count = be_uint(w->data + pos + 2, width);
        *refs = pos + 2 + width;
    }
    return APR_SUCCESS;
}

/* Walks the objects reachable from object i. A container reached a
 * second time (a shared or circular reference) is refused: libplist
 * parses an object again at every reference, so sharing containers
 * multiplies the nodes it builds. Strings and numbers may be shared
 * (encoders share equal values); every reference counts as a node. */
static apr_status_t bplist_walk(bplist_walk_t *w, apr_uint64_t i, int depth);

/* The references of the container at pos (a dictionary has a key and a
 * value per element): *count of them from *refs on, all inside the
 * objects. */
static apr_status_t bplist_refs(const bplist_walk_t *w, apr_size_t pos,
                                int is_dict, apr_uint64_t *count,
                                apr_size_t *refs)
{
    apr_uint64_t per = is_dict ? 2 * (apr_uint64_t)w->ref_size : w->ref_size;
    apr_status_t rv = bplist_count(w, pos, count, refs);

    if (APR_SUCCESS != rv || *count > (w->table - *refs) / per) {
        return APR_EINVAL;
    }
    *count *= is_dict ? 2 : 1;   /* a dictionary: keys, then values */
    return APR_SUCCESS;
}

/* Walks what the container at pos refers to. */
static apr_status_t bplist_walk_refs(bplist_walk_t *w, apr_size_t pos,
                                     int is_dict, int depth)
{
    apr_uint64_t count, k;
    apr_size_t refs;
    apr_status_t rv = bplist_refs(w, pos, is_dict, &count, &refs);

    for (k = 0; APR_SUCCESS == rv && k < count; ++k) {
        rv = bplist_walk(w, be_uint(w->data + refs + k * w->ref_size,
                                    w->ref_size), depth + 1);
    }
    return rv;
}

static apr_status_t bplist_walk(bplist_walk_t *w, apr_uint64_t i, int depth)
{
    apr_size_t pos;
    unsigned type;

    if (i >= w->objects || depth > OTA_PLIST_MAX_DEPTH
        || ++w->nodes > OTA_PLIST_MAX_NODES
        || !(pos = bplist_offset(w, i))) {
        return APR_EINVAL;
    }
    type = w->data[pos] >> 4;
    if (type != 0x0a && type != 0x0b && type != 0x0c && type != 0x0d) {
        return APR_SUCCESS;      /* no references inside */
    }
    if (w->seen[i]) {
        return APR_EINVAL;
    }
    w->seen[i] = 1;
    return bplist_walk_refs(w, pos, type == 0x0d, depth);
}

/* Reads the trailer of a binary plist of len bytes (at least a header, an
 * object, an offset and the trailer) into w; *top is the top object. */
static apr_status_t bplist_trailer(bplist_walk_t *w, apr_size_t len,
                                   apr_uint64_t *top)
{
    const unsigned char *t = w->data + len - BPLIST_TRAILER_LEN;
    apr_uint64_t table = be_uint(t + 24, 8);

    w->offset_size = t[6];
    w->ref_size = t[7];
    w->objects = be_uint(t + 8, 8);
    *top = be_uint(t + 16, 8);
    if (w->offset_size < 1 || w->offset_size > 8 || w->ref_size < 1
        || w->ref_size > 8 || table <= BPLIST_HEADER_LEN
        || table > len - BPLIST_TRAILER_LEN || w->objects < 1
        || w->objects > (len - BPLIST_TRAILER_LEN - table) / w->offset_size
        || *top >= w->objects) {
        return APR_EINVAL;
    }
    w->table = (apr_size_t)table;
    return APR_SUCCESS;
}

apr_status_t ota_bplist_check(apr_pool_t *p, const void *data,
                              apr_size_t len)
{
    bplist_walk_t w;
    apr_uint64_t top;

    if (len < BPLIST_HEADER_LEN + 1 + 1 + BPLIST_TRAILER_LEN
        || memcmp(data, "bplist00", BPLIST_HEADER_LEN)) {
        return APR_EINVAL;
    }
    memset(&w, 0, sizeof(w));
    w.data = data;
    if (APR_SUCCESS != bplist_trailer(&w, len, &top)) {
        return APR_EINVAL;
    }
    w.seen = apr_pcalloc(p, (apr_size_t)w.objects);
    return bplist_walk(&w, top, 0);
}

/* ------------------------------------------------------------------ */
/* parsing                                                              */

/* libplist's parser, either signature; NULL when it fails. */
static plist_t from_memory(const void *data, apr_size_t len)
{
    plist_t node = NULL;

#ifdef HAVE_PLIST_ERR_T
    if (PLIST_ERR_SUCCESS != plist_from_memory(data, (uint32_t)len, &node,
                                               NULL)) {
        if (node) {
            plist_free(node);
        }
        return NULL;
    }
#else
    plist_from_memory(data, (uint32_t)len, &node);
#endif
    return node;
}

apr_status_t ota_plist_parse(apr_pool_t *p, const void *data, apr_size_t len,
                             apr_size_t max_len, plist_t *out)
{
    plist_t node;

    *out = NULL;
    if (!max_len || max_len > OTA_PLIST_MAX_LEN) {
        max_len = OTA_PLIST_MAX_LEN;
    }
    if (!data || len < 8 || len > max_len) {
        return APR_EINVAL;
    }
    if (plist_is_binary(data, (uint32_t)len)
        ? APR_SUCCESS != ota_bplist_check(p, data, len)
        : xml_too_deep(data, len, OTA_PLIST_MAX_DEPTH)) {
        return APR_EINVAL;
    }
    if (!(node = from_memory(data, len))) {
        return APR_EINVAL;
    }
    *out = ota_plist_track(p, node);
    return APR_SUCCESS;
}

apr_status_t ota_plist_xml(apr_pool_t *p, plist_t node, const char **xml,
                           apr_size_t *len)
{
    char *buf = NULL;
    uint32_t n = 0;

    plist_to_xml(node, &buf, &n);
    if (!buf || !n) {
        if (buf) {
            plist_xml_release(buf);
        }
        return APR_EGENERAL;
    }
    *xml = apr_pstrmemdup(p, buf, n);
    *len = n;
    plist_xml_release(buf);
    return APR_SUCCESS;
}

plist_t ota_plist_get(plist_t dict, const char *key, plist_type type)
{
    plist_t v;

    if (!dict || plist_get_node_type(dict) != PLIST_DICT) {
        return NULL;
    }
    v = plist_dict_get_item(dict, key);
    return v && plist_get_node_type(v) == type ? v : NULL;
}

const char *ota_plist_str(apr_pool_t *p, plist_t dict, const char *key)
{
    plist_t v = ota_plist_get(dict, key, PLIST_STRING);
    const char *s;
    uint64_t n = 0;

    if (!v || !(s = plist_get_string_ptr(v, &n))) {
        return NULL;
    }
    return apr_pstrmemdup(p, s, (apr_size_t)n);
}

const unsigned char *ota_plist_data(apr_pool_t *p, plist_t dict,
                                    const char *key, apr_size_t *len)
{
    plist_t v = ota_plist_get(dict, key, PLIST_DATA);
    const char *d;
    unsigned char *copy;
    uint64_t n = 0;

    *len = 0;
    if (!v || !(d = plist_get_data_ptr(v, &n))) {
        return NULL;
    }
    *len = (apr_size_t)n;
    /* a NUL after the bytes, for callers that treat them as text; the
     * copy reads only the n bytes libplist holds */
    copy = apr_palloc(p, (apr_size_t)n + 1);
    memcpy(copy, d, (apr_size_t)n);
    copy[n] = '\0';
    return copy;
}

apr_status_t ota_plist_uint(plist_t dict, const char *key, apr_uint64_t *val)
{
    plist_t v = ota_plist_get(dict, key, PLIST_UINT);
    uint64_t n = 0;

    if (!v) {
        return APR_NOTFOUND;
    }
    plist_get_uint_val(v, &n);
    *val = n;
    return APR_SUCCESS;
}

void ota_plist_set_str(plist_t dict, const char *key, const char *val)
{
    plist_dict_set_item(dict, key, plist_new_string(val));
}

void ota_plist_set_uint(plist_t dict, const char *key, apr_uint64_t val)
{
    plist_dict_set_item(dict, key, plist_new_uint(val));
}

void ota_plist_set_data(plist_t dict, const char *key, const void *data,
                        apr_size_t len)
{
    plist_dict_set_item(dict, key, plist_new_data(data, len));
}

/* The loop of ota_plist_dict_each: fn for each key from it on. */
static int dict_each_item(plist_t dict, plist_dict_iter it,
                          ota_plist_each_fn *fn, void *baton)
{
    char *key;
    plist_t val;
    int rc = 0;

    while (!rc) {
        key = NULL;
        val = NULL;
        plist_dict_next_item(dict, it, &key, &val);
        if (!key) {
            break;
        }
        rc = fn(baton, key, val);
        plist_mem_release(key);
    }
    return rc;
}

int ota_plist_dict_each(plist_t dict, ota_plist_each_fn *fn, void *baton)
{
    plist_dict_iter it = NULL;
    int rc = 0;

    if (!ota_plist_is(dict, PLIST_DICT)) {
        return 0;
    }
    plist_dict_new_iter(dict, &it);
    if (it) {
        rc = dict_each_item(dict, it, fn, baton);
        plist_mem_release(it);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* building and walking                                                 */

plist_t ota_plist_new_dict(apr_pool_t *p)
{
    return ota_plist_track(p, plist_new_dict());
}

plist_t ota_plist_add_dict(plist_t dict, const char *key)
{
    plist_t node = plist_new_dict();

    plist_dict_set_item(dict, key, node);
    return node;
}

plist_t ota_plist_add_array(plist_t dict, const char *key)
{
    plist_t node = plist_new_array();

    plist_dict_set_item(dict, key, node);
    return node;
}

plist_t ota_plist_append_dict(plist_t array)
{
    plist_t node = plist_new_dict();

    plist_array_append_item(array, node);
    return node;
}

plist_t ota_plist_append_array(plist_t array)
{
    plist_t node = plist_new_array();

    plist_array_append_item(array, node);
    return node;
}

void ota_plist_append_str(plist_t array, const char *val)
{
    plist_array_append_item(array, plist_new_string(val));
}

plist_t ota_plist_copy_without(apr_pool_t *p, plist_t dict, const char *key)
{
    plist_t copy = ota_plist_track(p, plist_copy(dict));

    plist_dict_remove_item(copy, key);
    return copy;
}

int ota_plist_is(plist_t node, plist_type type)
{
    return node && plist_get_node_type(node) == type;
}

apr_size_t ota_plist_count(plist_t array)
{
    return ota_plist_is(array, PLIST_ARRAY) ? plist_array_get_size(array) : 0;
}

plist_t ota_plist_item(plist_t array, apr_size_t i)
{
    return i < ota_plist_count(array)
           ? plist_array_get_item(array, (uint32_t)i) : NULL;
}

const char *ota_plist_bytes(plist_t node, apr_size_t *len)
{
    const char *s = NULL;
    uint64_t n = 0;

    if (ota_plist_is(node, PLIST_STRING)) {
        s = plist_get_string_ptr(node, &n);
    }
    else if (ota_plist_is(node, PLIST_DATA)) {
        s = plist_get_data_ptr(node, &n);
    }
    *len = s ? (apr_size_t)n : 0;
    return s;
}

int ota_plist_is_binary(const void *data, apr_size_t len)
{
    return plist_is_binary(data, (uint32_t)len);
}
