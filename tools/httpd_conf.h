#ifndef SCEP_TOOLS_HTTPD_CONF_H
#define SCEP_TOOLS_HTTPD_CONF_H

/* A reader of httpd configuration files for the CLI, with httpd 2.4's
 * semantics where they decide which store and CA the module uses:
 *
 * - the last value of a directive wins, per server; a <VirtualHost>
 *   inherits what it does not set from the main server;
 * - <IfDefine [!]NAME> (with -D names and Define), <IfModule [!]NAME>
 *   (LoadModule lines read so far and the modules compiled into httpd) and
 *   <IfFile [!]PATH> are evaluated while reading, as httpd does;
 * - Include and IncludeOptional (globs, directories) relative to the
 *   ServerRoot of the moment, Define/UnDefine, ${VAR} from Define and the
 *   environment, ServerRoot and LoadModule take effect wherever they are
 *   read, as in httpd;
 * - a directive the CLI needs inside <If>, <ElseIf>, <Else> (decided per
 *   request), inside a per-directory section, inside a condition the CLI
 *   cannot evaluate (<IfVersion>, <IfDirective>, <IfSection>) or inside a
 *   <Macro> is refused with its file and line rather than guessed. */

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_hash.h>

typedef struct hconf_val_t {
    const char *value;           /* the first argument */
    const char *file;
    int line;
} hconf_val_t;

typedef struct hconf_server_t {
    const char *file;            /* where <VirtualHost> is; NULL: main */
    int line;
    apr_array_header_t *addrs;   /* const char *: <VirtualHost> arguments */
    const char *name;            /* ServerName (the last one) */
    apr_array_header_t *aliases; /* const char *: ServerAlias arguments */
    apr_hash_t *dirs;            /* lower-case name -> hconf_val_t * */
} hconf_server_t;

typedef struct hconf_t {
    const char *server_root;     /* the last ServerRoot read */
    hconf_server_t *main;
    apr_array_header_t *vhosts;  /* hconf_server_t * in file order */
} hconf_t;

typedef struct hconf_opts_t {
    const char *server_root;     /* until a ServerRoot directive */
    const apr_array_header_t *defines;   /* const char *: httpd's -D */
    /* compiled-in module names (file "mod_foo.c" or identifier
     * "foo_module" forms); NULL: asked of `httpd -l` when <IfModule> needs
     * them, else Debian's static set */
    const apr_array_header_t *builtin;
    const char *httpd;           /* NULL: $APACHE_HTTPD, /usr/sbin/apache2,
                                  * /usr/sbin/httpd */
} hconf_opts_t;

/** Reads file and everything it includes. On failure *err says why,
 * naming file and line. */
apr_status_t hconf_read(apr_pool_t *p, const char *file,
                        const hconf_opts_t *opts, hconf_t **conf,
                        const char **err);

/** What the servers must agree on when no --vhost picks one. */
#define HCONF_STORE 0x1          /* SCEPStore (and DBDriver/DBDParams) */
#define HCONF_CA    0x2          /* SCEPCACertificateFile, SCEPCAKeyFile */

/**
 * Picks the server the CLI works for. want "NAME[:PORT]": the
 * <VirtualHost> whose ServerName, ServerAlias (wildcards) or address is
 * NAME, on PORT when given. want NULL: the main server, unless servers
 * that configure a SCEP CA differ in what `what` names; then *err asks
 * for --vhost.
 */
apr_status_t hconf_pick(apr_pool_t *p, const hconf_t *c, const char *want,
                        unsigned what, const hconf_server_t **server,
                        const char **err);

/** A directive's first argument in server s (NULL: main), else inherited
 * from the main server, or NULL. name is lower-case. */
const char *hconf_get(const hconf_t *c, const hconf_server_t *s,
                      const char *name);

/** "the main server" or "<VirtualHost ADDRS> NAME (file:line)". */
const char *hconf_describe(apr_pool_t *p, const hconf_server_t *s);

/** A path relative to ServerRoot made absolute. */
const char *hconf_path(apr_pool_t *p, const hconf_t *c, const char *path);

#endif /* SCEP_TOOLS_HTTPD_CONF_H */
