#ifndef SCEP_TOOLS_HTTPD_CONF_H
#define SCEP_TOOLS_HTTPD_CONF_H

/* A small reader of httpd configuration syntax for the CLI: it follows
 * Include/IncludeOptional (globs, directories), expands ${VAR} from Define
 * and the environment, and keeps the first value of each directive per
 * server (the main server and each <VirtualHost>). Section conditions
 * (<IfModule>, <IfDefine>, ...) are not evaluated: their contents count. */

#include <apr_pools.h>
#include <apr_tables.h>

typedef struct hconf_vhost_t {
    const char *names;           /* <VirtualHost> args, ServerName, aliases */
    apr_table_t *dirs;           /* lower-case directive -> first argument */
} hconf_vhost_t;

typedef struct hconf_t {
    const char *server_root;
    apr_table_t *main;           /* the main server's directives */
    apr_array_header_t *vhosts;  /* hconf_vhost_t * in file order */
} hconf_t;

/** Reads file and everything it includes. default_root is the ServerRoot
 * until a ServerRoot directive says otherwise. */
apr_status_t hconf_read(apr_pool_t *p, const char *file,
                        const char *default_root, hconf_t **conf,
                        const char **err);

/**
 * Picks the server the CLI works for: the virtual host whose names contain
 * vhost (when given), else the main server when it configures a SCEP CA,
 * else the first virtual host that does. NULL: no such virtual host.
 */
const hconf_vhost_t *hconf_pick(const hconf_t *c, const char *vhost);

/** A directive's first argument in the picked server (NULL: main), falling
 * back to the main server's, or NULL. */
const char *hconf_get(const hconf_t *c, const hconf_vhost_t *v,
                      const char *name);

/** A path relative to ServerRoot made absolute. */
const char *hconf_path(apr_pool_t *p, const hconf_t *c, const char *path);

#endif /* SCEP_TOOLS_HTTPD_CONF_H */
