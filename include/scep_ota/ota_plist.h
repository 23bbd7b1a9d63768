#ifndef OTA_PLIST_H
#define OTA_PLIST_H

/**
 * @file ota_plist.h
 * libplist behind one small interface: parsing (XML or binary) with size
 * and nesting limits, XML output into pool memory, plists tied to pools,
 * and typed lookups. Every libplist version difference lives in
 * ota_plist.c.
 */

#include <apr_pools.h>
#include <plist/plist.h>

/** Deepest nesting of dictionaries and arrays ota_plist_parse accepts. */
#define OTA_PLIST_MAX_DEPTH 32
/** Largest plist ota_plist_parse accepts (bytes). */
#define OTA_PLIST_MAX_LEN   (4 * 1024 * 1024)

/** Most nodes (references, counted through shared values) a binary plist
 * may make. */
#define OTA_PLIST_MAX_NODES 65536

/** Frees the plist when the pool goes; returns it. */
plist_t ota_plist_track(apr_pool_t *p, plist_t node);

/**
 * Parses an XML or binary plist of at most max_len bytes (0: the default
 * OTA_PLIST_MAX_LEN) into *out (tracked by p). APR_EINVAL when it is not
 * a plist, too large or too deeply nested.
 */
apr_status_t ota_plist_parse(apr_pool_t *p, const void *data, apr_size_t len,
                             apr_size_t max_len, plist_t *out);

/**
 * Checks the object graph of a binary plist ("bplist00") before any parser
 * builds it: trailer, offset table and references in bounds, no container
 * reached twice (shared or circular), nesting within OTA_PLIST_MAX_DEPTH,
 * at most OTA_PLIST_MAX_NODES nodes. APR_SUCCESS or APR_EINVAL.
 * ota_plist_parse calls it for every binary plist.
 */
apr_status_t ota_bplist_check(apr_pool_t *p, const void *data,
                              apr_size_t len);

/** XML text of a plist, in pool memory. */
apr_status_t ota_plist_xml(apr_pool_t *p, plist_t node, const char **xml,
                           apr_size_t *len);

/** Lookups: NULL / 0 when the key is absent or of another type. */
plist_t ota_plist_get(plist_t dict, const char *key, plist_type type);
const char *ota_plist_str(apr_pool_t *p, plist_t dict, const char *key);
const unsigned char *ota_plist_data(apr_pool_t *p, plist_t dict,
                                    const char *key, apr_size_t *len);
/** *val when the key holds an integer; APR_NOTFOUND otherwise. */
apr_status_t ota_plist_uint(plist_t dict, const char *key, apr_uint64_t *val);

/** Adds key -> value to a dictionary. */
void ota_plist_set_str(plist_t dict, const char *key, const char *val);
void ota_plist_set_uint(plist_t dict, const char *key, apr_uint64_t val);
void ota_plist_set_data(plist_t dict, const char *key, const void *data,
                        apr_size_t len);

/** Building, top down: the new node is returned, owned by its parent. */
/** A new, empty top-level dictionary, freed with the pool. */
plist_t ota_plist_new_dict(apr_pool_t *p);
/** An empty dictionary or array added to a dictionary under key. */
plist_t ota_plist_add_dict(plist_t dict, const char *key);
plist_t ota_plist_add_array(plist_t dict, const char *key);
/** An empty dictionary or array appended to an array. */
plist_t ota_plist_append_dict(plist_t array);
plist_t ota_plist_append_array(plist_t array);
/** A string appended to an array. */
void ota_plist_append_str(plist_t array, const char *val);

/** A copy of a dictionary without one key, freed with the pool. */
plist_t ota_plist_copy_without(apr_pool_t *p, plist_t dict, const char *key);

/** Whether node is of the type (a NULL node is of none). */
int ota_plist_is(plist_t node, plist_type type);
/** Elements of an array (0 for anything else), and element i of it. */
apr_size_t ota_plist_count(plist_t array);
plist_t ota_plist_item(plist_t array, apr_size_t i);
/** The bytes of a string or data node, not copied; NULL for other types. */
const char *ota_plist_bytes(plist_t node, apr_size_t *len);
/** Whether data starts like a binary plist. */
int ota_plist_is_binary(const void *data, apr_size_t len);

/**
 * Calls fn for every key of a dictionary, in order; stops and returns the
 * first non-zero value fn returns.
 */
typedef int ota_plist_each_fn(void *baton, const char *key, plist_t val);
int ota_plist_dict_each(plist_t dict, ota_plist_each_fn *fn, void *baton);

#endif /* OTA_PLIST_H */
