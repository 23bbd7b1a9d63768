/* scep-ota store: the administrator's view of the store that mod_scep_ota
 * uses, found through the same httpd configuration. */

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <grp.h>
#include <sys/stat.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_base64.h>
#include <apr_time.h>
#include <openssl/pem.h>

#include "scep_ota/scep_audit.h"
#include "scep_ota/scep_ca.h"
#include "scep_ota/scep_challenge.h"
#include "scep_ota/scep_crl.h"
#include "scep_ota/scep_crypt.h"
#include "scep_ota/scep_issue.h"
#include "scep_ota/scep_policy.h"
#include "scep_ota/scep_store.h"
#include "scep_ota/scep_store_dbd.h"
#include "httpd_conf.h"
#include "scep-ota-client.h"
#include "scep-ota-store.h"

#define DEFAULT_CONF "/etc/apache2/apache2.conf"

typedef struct {
    apr_pool_t *p;
    const char *conf_file;       /* -f */
    const char *server_root;     /* -d */
    apr_array_header_t *defines; /* const char *: -D */
    const char *vhost;           /* --vhost */
    const char *store_uri;       /* --store */
    const char *status;          /* list --status */
    const char *ttl;             /* challenge --ttl */
    const char *for_name;        /* challenge --for */
    const char *format;          /* export --format */
    const char *ca_file;         /* --ca */
    const char *revoke;          /* challenge --revoke REF|user=NAME */
    const char *user;            /* challenge --list --user NAME */
    int list;                    /* challenge --list */
    apr_array_header_t *sans;    /* challenge --san, repeated */
    int crl_days;                /* crl --days */
    const char *cmd;
    apr_array_header_t *args;    /* const char *: the command's operands */
    hconf_t *conf;
    const hconf_server_t *v;
    scep_store_t *st;
    /* SCEPAuditLog, opened before the tool becomes the store's owner */
    int audit_fd;                /* a file, or -1 */
    FILE *audit_pipe;            /* or a piped program */
    const char *audit_cmd;
    const char *admin;           /* who runs the tool */
} cli_t;

static const char *const store_usage_text[] = {
    "usage: scep-ota store [OPTIONS] COMMAND [ARGS]\n",
    "\n",
    "  list [--status valid|revoked|all|pending]\n",
    "  show SERIAL\n",
    "  approve TXID            let a pending request be issued\n",
    "  reject TXID\n",
    "  revoke SERIAL [REASON]  REASON: a CRLReason name or number\n",
    "  crl [--days N]          the CA's published CRL (PEM), a new one\n",
    "                          when revocations changed (N: its\n",
    "                          validity, default SCEPCRLValidity)\n",
    "  challenge [--ttl T] [--for subject=DN [--san TYPE:VALUE]...]\n",
    "                          a one-time SCEP challenge (T: 3600, "
    "90m, 24h, 7d;\n",
    "                          default SCEPChallengeLifetime, else "
    "1h);\n",
    "                          with --for it enrolls exactly that "
    "subject (/CN=x/O=y\n",
    "                          or CN=x,O=y) and those "
    "subjectAltNames (TYPE: dns,\n",
    "                          email, uri, ip)\n",
    "  challenge --list [--user NAME]\n",
    "                          the unused, unexpired challenges "
    "(never a secret),\n",
    "                          per user of the challenge page\n",
    "  challenge --revoke REF|user=NAME\n",
    "                          revokes one (REF from --list) or "
    "all of a user's\n",
    "  export [--format json|csv]\n",
    "                          csv: every cell quoted; a cell starting\n",
    "                          with =, +, -, @, tab or CR gets a leading\n",
    "                          ' so that spreadsheets show it as text,\n",
    "                          never run it as a formula\n",
    "\n",
    "options:\n",
    "  -f FILE         httpd config to read (default " DEFAULT_CONF
    "),\n",
    "                  read as httpd reads it: the last value of a\n",
    "                  directive wins; <IfDefine>, <IfModule> and\n",
    "                  <IfFile> are evaluated; Include, Define and\n",
    "                  ${VAR} (from Define or the environment: for\n",
    "                  Debian's ${APACHE_LOG_DIR} etc., source\n",
    "                  /etc/apache2/envvars first); SCEPStore, the\n",
    "                  CA or DBD directives inside <If> are refused\n",
    "  -d DIR          ServerRoot until the config sets one (default:\n",
    "                  FILE's directory), as httpd -d\n",
    "  -D NAME         define NAME for <IfDefine>, as httpd -D: give\n",
    "                  the -D options httpd runs with (APACHE_ARGUMENTS\n",
    "                  from envvars is not read)\n",
    "  --vhost NAME[:PORT]\n",
    "                  the <VirtualHost> with that ServerName,\n",
    "                  ServerAlias or address; needed when servers\n",
    "                  that configure a CA use different stores or\n",
    "                  CAs (default: the main server, or the one\n",
    "                  server that configures a CA)\n",
    "  --store URI     sqlite3:/path/file.db or pgsql:PARAMS, "
    "instead of SCEPStore\n",
    "  --ca FILE       the CA whose records to see, instead of "
    "SCEPCACertificateFile\n",
    "                  (a store may hold the records of several "
    "CAs)\n",
    "\n",
    "<IfModule> knows the modules loaded by LoadModule above it and\n",
    "those compiled into httpd ($APACHE_HTTPD -l, default\n",
    "/usr/sbin/apache2 -l).\n",
    NULL
};

static int store_usage(FILE *out)
{
    return scep_cli_usage(out, store_usage_text);
}

static int fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    scep_cli_vfail("store", fmt, ap);
    va_end(ap);
    return 1;
}

/* ------------------------------------------------------------------ */
/* arguments                                                            */

#define STORE_OPT(name, field) { name, NULL, offsetof(cli_t, field) }

static const scep_cli_opt_t store_opts[] = {
    STORE_OPT("-f", conf_file),
    STORE_OPT("--vhost", vhost),
    STORE_OPT("--store", store_uri),
    STORE_OPT("--status", status),
    STORE_OPT("--ttl", ttl),
    STORE_OPT("--for", for_name),
    STORE_OPT("--format", format),
    STORE_OPT("--ca", ca_file),
    STORE_OPT("--revoke", revoke),
    STORE_OPT("--user", user),
    { NULL, NULL, 0 }
};

/* -D NAME, -d DIR: as httpd's options */
static void define_or_root(cli_t *c, char opt, const char *value)
{
    if (opt == 'D') {
        APR_ARRAY_PUSH(c->defines, const char *) = value;
    }
    else {
        c->server_root = value;
    }
}

/* An option's value (argv[*i], taken): 0, else the exit status. */
static int store_value(cli_t *c, const char *a, const char *v)
{
    const char **slot;

    if (!strcmp(a, "--days")) {
        c->crl_days = atoi(v);
    }
    else if (!strcmp(a, "--san")) {
        APR_ARRAY_PUSH(c->sans, const char *) = v;
    }
    else if (!strcmp(a, "-D") || !strcmp(a, "-d")) {
        define_or_root(c, a[1], v);
    }
    else if ((slot = scep_cli_opt_slot(store_opts, c, a))) {
        *slot = v;
    }
    else {
        fprintf(stderr, "scep-ota store: unknown option %s\n", a);
        return store_usage(stderr);
    }
    return 0;
}

/* The option argv[*i], with its value, if any, after it (*i moves past
 * it). 0 when taken, else the exit status (+1000: help asked for). */
static int store_option(cli_t *c, int argc, const char *const *argv, int *i)
{
    const char *a = argv[*i];

    if (scep_cli_is_help(a)) {
        return store_usage(stdout) + 1000;
    }
    if (!strcmp(a, "--list")) {
        c->list = 1;
        return 0;
    }
    if (*i + 1 >= argc) {
        return store_usage(stderr);
    }
    ++*i;
    return store_value(c, a, argv[*i]);
}

/* Options may come before or after the command. */
static int parse_args(cli_t *c, int argc, const char *const *argv)
{
    int i, rc;

    c->args = apr_array_make(c->p, 4, sizeof(const char *));
    c->sans = apr_array_make(c->p, 2, sizeof(const char *));
    c->defines = apr_array_make(c->p, 2, sizeof(const char *));
    for (i = 1; i < argc; ++i) {
        const char *a = argv[i];
        if (a[0] == '-' && (a[1] == 'D' || a[1] == 'd') && a[2]) {
            define_or_root(c, a[1], a + 2);      /* -DNAME, -dDIR */
        }
        else if (a[0] == '-' && a[1]) {
            if ((rc = store_option(c, argc, argv, &i))) {
                return rc;
            }
        }
        else if (!c->cmd) {
            c->cmd = a;
        }
        else {
            APR_ARRAY_PUSH(c->args, const char *) = a;
        }
    }
    return c->cmd ? 0 : store_usage(stderr);
}

static const char *arg(const cli_t *c, int i)
{
    return i < c->args->nelts ? APR_ARRAY_IDX(c->args, i, const char *)
                              : NULL;
}

/* ------------------------------------------------------------------ */
/* configuration and store                                              */

/* The directory of file, ServerRoot until the config sets one (or -d). */
static const char *default_root(cli_t *c, const char *file)
{
    const char *slash = strrchr(file, '/');

    if (c->server_root) {
        return c->server_root;
    }
    return slash ? apr_pstrmemdup(c->p, file, (apr_size_t)(slash - file))
                 : ".";
}

/* The httpd configuration, and the server in it (main, or --vhost) whose
 * store (and CA, for ca_too) the command uses. */
static int read_config(cli_t *c, int ca_too)
{
    const char *file = c->conf_file ? c->conf_file : DEFAULT_CONF;
    const char *err = NULL;
    hconf_opts_t o;

    if (!c->conf_file && c->store_uri && access(file, R_OK)) {
        return 0;                /* --store alone is enough */
    }
    memset(&o, 0, sizeof(o));
    o.server_root = default_root(c, file);
    o.defines = c->defines;
    if (APR_SUCCESS != hconf_read(c->p, file, &o, &c->conf, &err)) {
        return fail("%s", err ? err : apr_pstrcat(c->p, "cannot read ", file,
                                                  NULL));
    }
    if (APR_SUCCESS != hconf_pick(c->p, c->conf, c->vhost,
                                  (c->store_uri ? 0 : HCONF_STORE)
                                  /* every command sees one CA's records */
                                  | (ca_too || !c->ca_file ? HCONF_CA : 0),
                                  &c->v, &err)) {
        return fail("%s: %s", file, err);
    }
    return 0;
}

/* SCEPStore dbd: mod_dbd's DBDriver and DBDParams, or NULL. */
static const char *dbd_uri(cli_t *c)
{
    const char *drv = hconf_get(c->conf, c->v, "dbdriver");
    const char *params = hconf_get(c->conf, c->v, "dbdparams");

    return drv && params ? apr_pstrcat(c->p, drv, ":", params, NULL) : NULL;
}

/* A sqlite3: path relative to ServerRoot. */
static const char *sqlite_uri(cli_t *c, const char *path)
{
    return apr_pstrcat(c->p, "sqlite3:", hconf_path(c->p, c->conf, path),
                       NULL);
}

/* --store, else SCEPStore ("dbd": mod_dbd's DBDriver and DBDParams), else
 * the module's default file. */
static const char *store_uri(cli_t *c)
{
    const char *uri;

    if (c->store_uri) {
        return c->store_uri;
    }
    if (!c->conf) {
        return NULL;
    }
    uri = hconf_get(c->conf, c->v, "scepstore");
    if (!uri) {
        return sqlite_uri(c, SCEP_STORE_DEFAULT_SQLITE);
    }
    if (!strcasecmp(uri, "dbd")) {
        return dbd_uri(c);
    }
    return strncmp(uri, "sqlite3:", 8) ? uri : sqlite_uri(c, uri + 8);
}

/* The CA whose records the commands see: --ca, else the configuration's
 * SCEPCACertificateFile (of --vhost). Read before open_store() gives up
 * root. */
static int ca_identity(cli_t *c, const char **id)
{
    const char *file = c->ca_file, *err = NULL;
    apr_array_header_t *certs;

    if (!file && c->conf
        && (file = hconf_get(c->conf, c->v, "scepcacertificatefile"))) {
        file = hconf_path(c->p, c->conf, file);
    }
    if (!file) {
        return fail("which CA? the store keeps each CA's records apart: "
                    "give -f with the httpd config, or --ca CA.pem");
    }
    if (APR_SUCCESS != scep_load_certs(c->p, file, &certs, &err)) {
        return fail("the CA certificate: %s", err ? err : file);
    }
    *id = scep_ca_id(c->p, APR_ARRAY_IDX(certs, 0, X509 *));
    return *id ? 0 : fail("cannot hash the CA certificate %s", file);
}

static const char *dir_of(apr_pool_t *p, const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        return ".";
    }
    return slash == path ? "/" : apr_pstrmemdup(p, path,
                                                 (apr_size_t)(slash - path));
}

/* Root becomes the file's owner; or stays root for a file of root's in a
 * directory nobody else may write. */
static int drop_root(apr_pool_t *p, const char *path, const struct stat *sb)
{
    const char *dir = dir_of(p, path);
    struct stat db;

    if (sb->st_uid != 0) {
        if (setgroups(0, NULL) || setgid(sb->st_gid) || setuid(sb->st_uid)) {
            return fail("cannot become the owner of %s", path);
        }
        return 0;
    }
    if (stat(dir, &db) || db.st_uid != 0 || (db.st_mode & 022)) {
        return fail("%s is root's, but others may write its directory %s: "
                    "refused (give the file to httpd's worker user)", path,
                    dir);
    }
    return 0;
}

/* Run as the owner of the database file, so that files SQLite creates
 * beside it (-wal, -shm) stay writable by httpd's children, and so that
 * nothing the worker user plants in its directory is opened as root: the
 * path must be a regular file of its own (no link), and root stays root
 * only for a file of root's in a directory nobody else may write. */
static int become_owner(apr_pool_t *p, const char *path)
{
    struct stat sb;

    if (lstat(path, &sb)) {
        return fail("no store at %s (has httpd with mod_scep_ota started?)",
                    path);
    }
    if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
        return fail("%s is a link or not a regular file: refused", path);
    }
    return geteuid() != 0 ? 0 : drop_root(p, path, &sb);
}

static apr_status_t close_pipe(void *pipe)
{
    pclose(pipe);
    return APR_SUCCESS;
}

/* The user who started the tool (the one sudo names, for root). */
static const char *admin_name(apr_pool_t *p)
{
    const char *sudo = getenv("SUDO_USER");
    struct passwd *pw = getpwuid(getuid());

    return getuid() == 0 && sudo && *sudo
           ? apr_pstrdup(p, sudo)
           : apr_pstrdup(p, pw ? pw->pw_name : "?");
}

/* "|program": started now, as the user who runs the tool (root, as
 * httpd's parent starts it), and ended when the tool ends. */
static int open_audit_pipe(cli_t *c, const char *spec)
{
    c->audit_cmd = spec + 1 + (spec[1] == '$'); /* popen: a shell */
    if (!(c->audit_pipe = popen(c->audit_cmd, "w"))) {
        return fail("SCEPAuditLog: cannot start '%s'", c->audit_cmd);
    }
    /* a program that ends early must not end the tool mid-command */
    signal(SIGPIPE, SIG_IGN);
    apr_pool_cleanup_register(c->p, c->audit_pipe, close_pipe,
                              apr_pool_cleanup_null);
    return 0;
}

static int open_audit_file(cli_t *c, const char *spec)
{
    const char *path = *spec == '/' || !c->conf->server_root
                       ? spec
                       : apr_pstrcat(c->p, c->conf->server_root, "/", spec,
                                     NULL);

    c->audit_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW
                       | O_CLOEXEC, 0640);
    if (c->audit_fd < 0) {
        return fail("SCEPAuditLog: cannot open %s: %s", path,
                    strerror(errno));
    }
    return 0;
}

/* The audit log of the config, opened with the rights the tool was
 * started with (root's, as httpd's parent opens it); the admin is the
 * user who started it (the one sudo names, for root). */
static int open_audit(cli_t *c)
{
    const char *spec = c->conf ? hconf_get(c->conf, c->v, "scepauditlog")
                               : NULL;

    c->audit_fd = -1;
    c->admin = admin_name(c->p);
    if (!spec || !*spec) {
        return 0;
    }
    return *spec == '|' ? open_audit_pipe(c, spec)
                        : open_audit_file(c, spec);
}

static int open_store(cli_t *c)
{
    const char *uri = store_uri(c), *err = NULL;

    if (open_audit(c)) {
        return 1;
    }

    if (!uri) {
        return fail("no store: SCEPStore dbd without DBDriver/DBDParams, "
                    "or no config; use --store URI");
    }
    if (!strncmp(uri, "sqlite3:", 8) && become_owner(c->p, uri + 8)) {
        return 1;
    }
    if (APR_SUCCESS != scep_store_dbd_open(&c->st, c->p, uri, 1,
                                           scep_log_stderr(c->p,
                                                           SCEP_LOG_WARNING),
                                           &err)) {
        return fail("%s", err ? err : "cannot open the store");
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* formatting                                                           */

static const char *when(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t tm;
    char buf[32];
    apr_size_t n;

    if (!t) {
        return "-";
    }
    apr_time_exp_gmt(&tm, t);
    apr_strftime(buf, &n, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return apr_pstrdup(p, buf);
}

static const char *const reasons[] = {
    "unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
    "superseded", "cessationOfOperation", "certificateHold", NULL,
    "removeFromCRL", "privilegeWithdrawn", "aACompromise"
};
#define N_REASONS ((int)(sizeof(reasons) / sizeof(reasons[0])))

static const char *reason_name(int r)
{
    return r >= 0 && r < N_REASONS && reasons[r] ? reasons[r] : "-";
}

static int reason_code(const char *s)
{
    int i;

    if (!s) {
        return 0;
    }
    for (i = 0; i < N_REASONS; ++i) {
        if (reasons[i] && !strcasecmp(s, reasons[i])) {
            return i;
        }
    }
    if (apr_isdigit(s[0])) {
        i = atoi(s);
        return i >= 0 && i < N_REASONS && reasons[i] ? i : -1;
    }
    return -1;
}

/* "0a:1b:..." or "0A1B" -> "A1B": the store's form */
static const char *norm_serial(apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, strlen(s) + 2), *o = out;

    for (; *s; ++s) {
        if (*s != ':' && (o != out || *s != '0')) {
            *o++ = (char)apr_toupper(*s);
        }
    }
    if (o == out) {
        *o++ = '0';
    }
    *o = '\0';
    return out;
}

static const char *pem_of(apr_pool_t *p, const unsigned char *der,
                          apr_size_t len)
{
    const char *b64 = "", *out = "";
    char *enc;
    apr_size_t i, n;

    enc = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)len));
    apr_base64_encode_binary(enc, der, (int)len);
    n = strlen(enc);
    for (i = 0; i < n; i += 64) {
        b64 = apr_pstrcat(p, b64, apr_pstrndup(p, enc + i, 64), "\n", NULL);
    }
    out = apr_pstrcat(p, "-----BEGIN CERTIFICATE-----\n", b64,
                      "-----END CERTIFICATE-----\n", NULL);
    return out;
}

/* ------------------------------------------------------------------ */
/* commands                                                             */

static void print_cert_line(const cli_t *c, const scep_cert_rec_t *r)
{
    printf("%-34s %-8s %-20s %s\n", r->serial,
           r->status == SCEP_CERT_REVOKED ? "revoked" : "valid",
           when(c->p, r->not_after), r->subject);
}

static const char *const pending_states[] = {
    "waiting", "approved", "rejected", "issued"
};

/* "RSA 2048", "EC 256" */
static const char *key_text(apr_pool_t *p, EVP_PKEY *key)
{
    const char *type = key ? EVP_PKEY_get0_type_name(key) : NULL;

    return key ? apr_psprintf(p, "%s %d", type ? type : "?",
                              EVP_PKEY_get_bits(key))
               : "-";
}

static const char *csr_key_text(apr_pool_t *p, const scep_pending_rec_t *r)
{
    X509_REQ *req;

    return APR_SUCCESS == scep_csr_parse(p, r->csr, r->csr_len, &req)
           ? key_text(p, X509_REQ_get0_pubkey(req)) : "unreadable";
}

static const char *join_sans(apr_pool_t *p, const apr_array_header_t *sans)
{
    return sans && sans->nelts ? apr_array_pstrcat(p, sans, ',') : "-";
}

/* The subjectAltNames decided when the request arrived. */
static const char *plan_sans(apr_pool_t *p, const scep_pending_rec_t *r)
{
    scep_grant_t *g;

    return APR_SUCCESS == scep_grant_parse(p, r->plan, &g)
           ? join_sans(p, g->sans) : "?";
}

static int list_pending(cli_t *c)
{
    apr_array_header_t *recs;
    int i;

    if (APR_SUCCESS != c->st->ops->pending_list(c->st, c->p, &recs)) {
        return fail("cannot list pending requests");
    }
    printf("%-30s %-8s %-20s %-9s %s [SUBJECTALTNAMES]\n", "TRANSACTION",
           "STATE", "CREATED", "KEY", "SUBJECT");
    for (i = 0; i < recs->nelts; ++i) {
        const scep_pending_rec_t *r = APR_ARRAY_IDX(recs, i,
                                                    scep_pending_rec_t *);
        printf("%-30s %-8s %-20s %-9s %s [%s]\n", r->transaction_id,
               (unsigned)r->state < 4 ? pending_states[r->state] : "?",
               when(c->p, r->created), csr_key_text(c->p, r),
               r->subject && *r->subject ? r->subject : "-",
               plan_sans(c->p, r));
    }
    return 0;
}

/* --status: a certificate status, -1 for all, -2 when unknown. */
static int cert_status(const char *s)
{
    return !strcmp(s, "valid") ? SCEP_CERT_VALID
           : !strcmp(s, "revoked") ? SCEP_CERT_REVOKED
           : !strcmp(s, "all") ? -1 : -2;
}

static int cmd_list(cli_t *c)
{
    apr_array_header_t *recs;
    const char *s = c->status ? c->status : "all";
    int status = cert_status(s), i;

    if (!strcmp(s, "pending")) {
        return list_pending(c);
    }
    if (status == -2) {
        return fail("--status %s: use valid, revoked, all or pending", s);
    }
    if (APR_SUCCESS != c->st->ops->cert_list(c->st, c->p, status, &recs)) {
        return fail("cannot list certificates");
    }
    printf("%-34s %-8s %-20s %s\n", "SERIAL", "STATUS", "NOT AFTER",
           "SUBJECT");
    for (i = 0; i < recs->nelts; ++i) {
        print_cert_line(c, APR_ARRAY_IDX(recs, i, scep_cert_rec_t *));
    }
    return 0;
}

/* subjectAltName and key of the certificate's DER */
static void show_cert_names(cli_t *c, const scep_cert_rec_t *r)
{
    const unsigned char *d = r->der;
    X509 *x = d ? d2i_X509(NULL, &d, (long)r->der_len) : NULL;
    apr_array_header_t *sans = NULL;
    const char *why;

    if (x) {
        scep_cert_sans(c->p, x, &sans, &why);
    }
    printf("subjectAltName: %s\nkey:            %s\n", join_sans(c->p, sans),
           key_text(c->p, x ? X509_get0_pubkey(x) : NULL));
    X509_free(x);
}

/* What the certificate says besides its subject, and how it came. */
static void show_more(cli_t *c, const scep_cert_rec_t *r)
{
    show_cert_names(c, r);
    if (r->udid) {
        printf("device (UDID):  %s\n", r->udid);
    }
    printf("enrolled by:    %s\n", r->enrolled_by ? r->enrolled_by
                                                 : "(no authenticated user)");
    if (r->origin) {
        printf("made by:        %s\n", r->origin);
    }
    if (r->superseded_by) {
        printf("renewed by:     %s\n", r->superseded_by);
    }
}

static void show_dates(const cli_t *c, const scep_cert_rec_t *r)
{
    printf("serial:         %s\nsubject:        %s\nstatus:         %s\n"
           "not before:     %s\nnot after:      %s\n",
           r->serial, r->subject,
           r->status == SCEP_CERT_REVOKED ? "revoked" : "valid",
           when(c->p, r->not_before), when(c->p, r->not_after));
    if (r->status == SCEP_CERT_REVOKED) {
        printf("revoked at:     %s\nreason:         %s\n",
               when(c->p, r->revoked_at), reason_name(r->revocation_reason));
    }
}

static int cmd_show(cli_t *c)
{
    scep_cert_rec_t *r;
    apr_status_t rv;

    if (!arg(c, 0)) {
        return store_usage(stderr);
    }
    rv = c->st->ops->cert_by_serial(c->st, c->p, norm_serial(c->p, arg(c, 0)),
                                    &r);
    if (APR_SUCCESS != rv) {
        return fail("%s %s", rv == APR_NOTFOUND
                    ? "no certificate with serial" : "cannot look up",
                    arg(c, 0));
    }
    show_dates(c, r);
    printf("transaction id: %s\nkey sha-256:    %s\n",
           r->request_txid ? r->request_txid
           : r->transaction_id ? r->transaction_id : "-",
           r->key_hash ? r->key_hash : "-");
    show_more(c, r);
    printf("%s", pem_of(c->p, r->der, r->der_len));
    return 0;
}

static void audit_write(cli_t *c, const char *line)
{
    apr_size_t len = strlen(line);

    if (c->audit_pipe) {
        if (fwrite(line, 1, len, c->audit_pipe) != len
            || fflush(c->audit_pipe)) {
            fprintf(stderr, "scep-ota store: SCEPAuditLog: cannot write to "
                    "'%s'\n", c->audit_cmd);
        }
    }
    else if (write(c->audit_fd, line, len) != (ssize_t)len) {
        fprintf(stderr, "scep-ota store: SCEPAuditLog: cannot write: %s\n",
                strerror(errno));
    }
}

/* The admin's decision in the audit trail of the configuration
 * (SCEPAuditLog), one line in one write. Nothing when none is
 * configured. */
static void audit(cli_t *c, scep_audit_t *ev)
{
    if (c->audit_fd < 0 && !c->audit_pipe) {
        return;
    }
    ev->client = "cli";
    ev->user = c->admin;
    ev->vhost = c->vhost;
    audit_write(c, scep_audit_line(c->p, ev));
}

static const char *pending_state(scep_pending_state_t s)
{
    return (unsigned)s < 4 ? pending_states[s] : "?";
}

static void audit_decision(cli_t *c, const scep_pending_rec_t *r,
                           scep_pending_state_t to)
{
    scep_audit_t ev;

    memset(&ev, 0, sizeof(ev));
    ev.event = pending_states[to];
    ev.transaction_id = arg(c, 0);
    ev.subject = r->subject;
    audit(c, &ev);
    printf("%s %s: subject %s, subjectAltNames %s, key %s\n", arg(c, 0),
           pending_states[to], r->subject && *r->subject ? r->subject
                                                         : "(empty)",
           plan_sans(c->p, r), csr_key_text(c->p, r));
}

/* approve and reject: only a waiting request changes */
static int decide(cli_t *c, scep_pending_state_t to)
{
    scep_pending_rec_t *r;
    apr_status_t rv;

    if (!arg(c, 0)) {
        return store_usage(stderr);
    }
    rv = c->st->ops->pending_get(c->st, c->p, arg(c, 0), &r);
    if (APR_SUCCESS != rv) {
        return fail("%s %s", rv == APR_NOTFOUND ? "no pending request"
                    : "cannot look up", arg(c, 0));
    }
    if (r->state != SCEP_PENDING_WAITING) {
        return fail("request %s is %s already", arg(c, 0),
                    pending_state(r->state));
    }
    if (APR_SUCCESS != c->st->ops->pending_set_state(c->st, c->p, arg(c, 0),
                                                     to, NULL)) {
        return fail("cannot update %s", arg(c, 0));
    }
    audit_decision(c, r, to);
    return 0;
}

static int cmd_approve(cli_t *c)
{
    return decide(c, SCEP_PENDING_APPROVED);
}

static int cmd_reject(cli_t *c)
{
    return decide(c, SCEP_PENDING_REJECTED);
}

static int revoke_failed(apr_status_t rv, const char *serial)
{
    if (rv == APR_NOTFOUND) {
        return fail("no certificate with serial %s", serial);
    }
    if (rv == APR_EEXIST) {
        return fail("%s is revoked already", serial);
    }
    return fail("cannot revoke %s", serial);
}

static int cmd_revoke(cli_t *c)
{
    scep_audit_t ev;
    int reason = reason_code(arg(c, 1));
    const char *serial;
    apr_status_t rv;

    if (!arg(c, 0)) {
        return store_usage(stderr);
    }
    if (reason < 0) {
        return fail("unknown reason %s (e.g. keyCompromise, superseded, "
                    "cessationOfOperation, or a number)", arg(c, 1));
    }
    serial = norm_serial(c->p, arg(c, 0));
    rv = c->st->ops->cert_revoke(c->st, c->p, serial, reason, apr_time_now());
    if (APR_SUCCESS != rv) {
        return revoke_failed(rv, serial);
    }
    memset(&ev, 0, sizeof(ev));
    ev.event = "revoked";
    ev.serial = serial;
    ev.reason = reason_name(reason);
    audit(c, &ev);
    printf("revoked %s (%s)\n", serial, reason_name(reason));
    return 0;
}

static int load_ca(cli_t *c, scep_ca_t **ca)
{
    scep_ca_material_t m;
    const char *cert, *key, *err = NULL, *warning = NULL;

    memset(&m, 0, sizeof(m));
    cert = c->conf ? hconf_get(c->conf, c->v, "scepcacertificatefile") : NULL;
    key = c->conf ? hconf_get(c->conf, c->v, "scepcakeyfile") : NULL;
    if (!cert || !key) {
        return fail("the config names no SCEPCACertificateFile and "
                    "SCEPCAKeyFile");
    }
    m.ca_cert_file = hconf_path(c->p, c->conf, cert);
    m.ca_key_file = scep_is_uri(key) ? key : hconf_path(c->p, c->conf, key);
    if (APR_SUCCESS != scep_load_certs(c->p, m.ca_cert_file, &m.ca_certs,
                                       &err)
        || APR_SUCCESS != scep_load_keys(c->p, m.ca_key_file, &m.ca_keys,
                                         &err)
        || APR_SUCCESS != scep_ca_assemble(ca, c->p, &m, &err, &warning)) {
        return fail("the CA: %s", err ? err : "unusable");
    }
    return 0;
}

/* The CA's published CRL, as its distribution point serves it (a new
 * one is published when the revocations changed or it is due). */
static int print_crl(cli_t *c, scep_ca_t *ca)
{
    const char *conf = c->conf ? hconf_get(c->conf, c->v, "scepcrlvalidity")
                               : NULL;
    int days = c->crl_days > 0 ? c->crl_days
               : conf && atoi(conf) > 0 ? atoi(conf)
               : SCEP_CRL_VALIDITY_DEFAULT;
    const scep_crl_rec_t *rec;
    const unsigned char *d;
    X509_CRL *crl;

    if (APR_SUCCESS != scep_crl_current(c->p, NULL, ca, days, c->st, NULL,
                                        &rec)
        || !(d = rec->der)
        || !(crl = scep_track_crl(c->p, d2i_X509_CRL(NULL, &d,
                                                     (long)rec->der_len)))) {
        return fail("cannot build the CRL");
    }
    PEM_write_X509_CRL(stdout, crl);
    return 0;
}

/* The seconds of a unit: s, m, h, d; 0 for anything else. */
static apr_int64_t unit_seconds(const char *unit)
{
    static const char units[] = "smhd";
    static const apr_int64_t seconds[] = { 1, 60, 3600, 86400 };
    const char *u = *unit && !unit[1] ? strchr(units, *unit) : NULL;

    return u ? seconds[u - units] : 0;
}

/* "3600", "90m", "24h", "7d" -> seconds; 0 when malformed */
static apr_int64_t parse_ttl(const char *s)
{
    char *end;
    apr_int64_t n = apr_strtoi64(s, &end, 10);

    if (n <= 0) {
        return 0;
    }
    return *end ? n * unit_seconds(end) : n;
}

/* --for subject=DN and --san: the names the challenge enrolls, exactly
 * as the challenge page's subject= and san= bind them; *bound stays NULL
 * without --for. */
static int challenge_binding(cli_t *c, const char **bound)
{
    apr_size_t n = strlen(SCEP_BOUND_SUBJECT);
    const char *err;

    *bound = NULL;
    if (!c->for_name) {
        return c->sans->nelts ? fail("--san needs --for subject=DN: a "
                                     "challenge fixes the whole name set")
                              : 0;
    }
    if (strncmp(c->for_name, SCEP_BOUND_SUBJECT, n)) {
        return fail("--for %s: use --for subject=DN (e.g. "
                    "subject=/CN=device-17/O=Example)", c->for_name);
    }
    if (APR_SUCCESS != scep_challenge_binding(c->p, c->for_name + n, c->sans,
                                              NULL, bound, &err)) {
        return fail("--for %s: %s", c->for_name, err);
    }
    return 0;
}

/* --ttl, else SCEPChallengeLifetime of the configuration, else its
 * default; seconds, 0 when --ttl is malformed */
static apr_int64_t challenge_ttl(const cli_t *c)
{
    const char *conf;

    if (c->ttl) {
        return parse_ttl(c->ttl);
    }
    conf = c->conf ? hconf_get(c->conf, c->v, "scepchallengelifetime")
                   : NULL;
    return conf && parse_ttl(conf) > 0 ? parse_ttl(conf)
                                       : SCEP_CHALLENGE_LIFETIME_DEFAULT;
}

static void print_challenge(const cli_t *c, const scep_challenge_rec_t *r)
{
    printf("%-12s %-16s %-4s %-20s %-20s %s\n", r->ref ? r->ref : "-",
           r->created_by ? r->created_by : "-", r->via ? r->via : "-",
           when(c->p, r->created), when(c->p, r->expires),
           r->purpose == SCEP_CHALLENGE_SCEP
           ? scep_challenge_binding_text(c->p, r->bound_to)
           : "(OTA Phase 1)");
}

/* per user (the list is ordered by user): how many each holds */
static void count_per_user(const apr_array_header_t *recs)
{
    const scep_challenge_rec_t *r;
    const char *last = NULL, *user;
    int i, n = 0;

    for (i = 0; i < recs->nelts; ++i) {
        r = APR_ARRAY_IDX(recs, i, const scep_challenge_rec_t *);
        user = r->created_by ? r->created_by : "-";
        if (last && strcmp(user, last)) {
            fprintf(stderr, "%s: %d outstanding\n", last, n);
            n = 0;
        }
        last = user;
        ++n;
    }
    if (last) {
        fprintf(stderr, "%s: %d outstanding\n", last, n);
    }
}

static int list_challenges(cli_t *c)
{
    apr_array_header_t *recs;
    int i;

    if (APR_SUCCESS != c->st->ops->challenge_list(c->st, c->p, c->user,
                                                  &recs)) {
        return fail("cannot list challenges");
    }
    printf("%-12s %-16s %-4s %-20s %-20s %s\n", "REF", "USER", "VIA",
           "CREATED", "EXPIRES", "BINDING");
    for (i = 0; i < recs->nelts; ++i) {
        print_challenge(c, APR_ARRAY_IDX(recs, i,
                                         const scep_challenge_rec_t *));
    }
    count_per_user(recs);
    return 0;
}

/* --revoke REF or --revoke user=NAME: one of *ref and *user; 0 when
 * empty. */
static int revoke_target(const cli_t *c, const char **ref, const char **user)
{
    static const char user_eq[] = "user=";

    *ref = c->revoke;
    *user = NULL;
    if (!strncmp(c->revoke, user_eq, sizeof(user_eq) - 1)) {
        *user = c->revoke + sizeof(user_eq) - 1;
        *ref = NULL;
    }
    return !((*user && !**user) || (*ref && !**ref));
}

static int revoke_challenges(cli_t *c)
{
    const char *user, *ref;
    int n = 0;

    if (!revoke_target(c, &ref, &user)) {
        return fail("--revoke REF or --revoke user=NAME");
    }
    if (APR_SUCCESS != c->st->ops->challenge_revoke(c->st, c->p, ref, user,
                                                    &n)) {
        return fail("cannot revoke challenges");
    }
    if (ref && n == 0) {
        return fail("no outstanding challenge %s (used, expired, revoked, "
                    "or unknown)", ref);
    }
    printf("revoked %d challenge%s%s%s\n", n, n == 1 ? "" : "s",
           user ? " of user " : "", user ? user : "");
    return 0;
}

/* A new one-time SCEP challenge, as the challenge page issues them. */
static int issue_challenge(cli_t *c, apr_int64_t ttl, const char *bound,
                           const char **clear, scep_challenge_rec_t **rec)
{
    scep_challenge_spec_t spec;

    memset(&spec, 0, sizeof(spec));
    spec.format = SCEP_CHALLENGE_TOKEN192;
    spec.purpose = SCEP_CHALLENGE_SCEP;
    spec.bound_to = bound;
    spec.via = SCEP_VIA_CLI;
    spec.lifetime = apr_time_from_sec(ttl);
    if (APR_SUCCESS != scep_challenge_issue(c->p, c->st, &spec, clear,
                                            rec)) {
        return fail("cannot store the challenge");
    }
    return 0;
}

static void audit_challenge(cli_t *c, const scep_challenge_rec_t *rec,
                            const char *bound)
{
    scep_audit_t ev;

    memset(&ev, 0, sizeof(ev));
    ev.event = "challenge";
    ev.reason = apr_pstrcat(c->p, "ref ", rec->ref, ", ",
                            scep_challenge_binding_text(c->p, bound), NULL);
    audit(c, &ev);
}

static int cmd_challenge(cli_t *c)
{
    apr_int64_t ttl = challenge_ttl(c);
    scep_challenge_rec_t *rec;
    const char *bound, *clear;

    if (c->list) {
        return list_challenges(c);
    }
    if (c->revoke) {
        return revoke_challenges(c);
    }
    if (ttl <= 0) {
        return fail("--ttl %s: use seconds, or a number with m, h or d",
                    c->ttl);
    }
    if (challenge_binding(c, &bound)
        || issue_challenge(c, ttl, bound, &clear, &rec)) {
        return 1;
    }
    audit_challenge(c, rec, bound);
    printf("%s\n", clear);
    fprintf(stderr, "one-time SCEP challenge %s%s%s, valid until %s\n",
            rec->ref, bound ? " for " : "",
            bound ? scep_challenge_binding_text(c->p, bound) : "",
            when(c->p, rec->expires));
    return 0;
}

static void json_str(const char *s)
{
    if (!s) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (; *s; ++s) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        }
        else if (ch < 0x20) {
            printf("\\u%04x", ch);
        }
        else {
            putchar(ch);
        }
    }
    putchar('"');
}

/* One quoted CSV cell. A cell that a spreadsheet would take for a formula
 * (=, +, -, @, tab or CR first; a transactionID is the client's choice)
 * gets a leading single quote, so it is shown as text. */
static void csv_str(const char *s)
{
    putchar('"');
    if (s && *s && strchr("=+-@\t\r", *s)) {
        putchar('\'');
    }
    for (; s && *s; ++s) {
        if (*s == '"') {
            putchar('"');
        }
        putchar(*s);
    }
    putchar('"');
}

typedef struct {
    const char *name;
    const char *value;
} field_t;

/* The columns of a certificate record, as export writes them. */
static void export_fields(const cli_t *c, const scep_cert_rec_t *r,
                          field_t *f)
{
    char *der = apr_palloc(c->p, (apr_size_t)apr_base64_encode_len(
                                     (int)r->der_len));
    int revoked = r->status == SCEP_CERT_REVOKED;

    apr_base64_encode_binary(der, r->der, (int)r->der_len);
    f[0].name = "serial";         f[0].value = r->serial;
    f[1].name = "subject";        f[1].value = r->subject;
    f[2].name = "status";         f[2].value = revoked ? "revoked" : "valid";
    f[3].name = "not_before";     f[3].value = when(c->p, r->not_before);
    f[4].name = "not_after";      f[4].value = when(c->p, r->not_after);
    f[5].name = "revoked_at";
    f[5].value = r->revoked_at ? when(c->p, r->revoked_at) : NULL;
    f[6].name = "reason";
    f[6].value = revoked ? reason_name(r->revocation_reason) : NULL;
    f[7].name = "transaction_id"; f[7].value = r->transaction_id;
    f[8].name = "der_base64";     f[8].value = der;
}

static void json_field(const field_t *f, int i, int first)
{
    printf("%s", i ? ", " : first ? "  {" : ",\n  {");
    json_str(f->name);
    fputs(": ", stdout);
    json_str(f->value);
}

/* One record: a JSON object, or a CSV row (first < 0: the header). */
static void export_one(const cli_t *c, const scep_cert_rec_t *r, int json,
                       int first)
{
    field_t f[9];
    int i;

    export_fields(c, r, f);
    for (i = 0; i < 9; ++i) {
        if (json) {
            json_field(&f[i], i, first);
            continue;
        }
        if (i) {
            putchar(',');
        }
        csv_str(first < 0 ? f[i].name : f[i].value);
    }
    fputs(json ? "}" : "\n", stdout);
}

static void export_all(cli_t *c, const apr_array_header_t *recs, int json)
{
    int i;

    if (json) {
        fputs("[\n", stdout);
    }
    else if (recs->nelts) {
        export_one(c, APR_ARRAY_IDX(recs, 0, scep_cert_rec_t *), 0, -1);
    }
    for (i = 0; i < recs->nelts; ++i) {
        export_one(c, APR_ARRAY_IDX(recs, i, scep_cert_rec_t *), json,
                   i == 0);
    }
    if (json) {
        fputs(recs->nelts ? "\n]\n" : "]\n", stdout);
    }
}

static int cmd_export(cli_t *c)
{
    apr_array_header_t *recs;
    const char *fmt = c->format ? c->format : "json";
    int json = !strcmp(fmt, "json");

    if (!json && strcmp(fmt, "csv")) {
        return fail("--format %s: use json or csv", fmt);
    }
    if (APR_SUCCESS != c->st->ops->cert_list(c->st, c->p, -1, &recs)) {
        return fail("cannot list certificates");
    }
    export_all(c, recs, json);
    return 0;
}

/* ------------------------------------------------------------------ */

typedef int store_cmd_fn(cli_t *c);

static const struct {
    const char *name;
    store_cmd_fn *fn;
} store_cmds[] = {
    { "list", cmd_list },
    { "show", cmd_show },
    { "approve", cmd_approve },
    { "reject", cmd_reject },
    { "revoke", cmd_revoke },
    { "crl", NULL },             /* needs the CA before the store */
    { "challenge", cmd_challenge },
    { "export", cmd_export },
};

/* Configuration, CA and store for store_cmds[i], then the command. */
static int run_command(cli_t *c, apr_size_t i)
{
    scep_ca_t *ca = NULL;
    const char *ca_id = NULL;
    int rc;

    if ((rc = read_config(c, !store_cmds[i].fn))
        || (rc = ca_identity(c, &ca_id))) {
        return rc;
    }
    /* the CA key may be readable by root only: load it before
     * open_store() gives up root for the database's owner */
    if (!store_cmds[i].fn && (rc = load_ca(c, &ca))) {
        return rc;
    }
    if ((rc = open_store(c))) {
        return rc;
    }
    c->st = scep_store_scoped(c->p, c->st, ca_id);
    return store_cmds[i].fn ? store_cmds[i].fn(c) : print_crl(c, ca);
}

static int run(cli_t *c)
{
    apr_size_t i;

    for (i = 0; i < sizeof(store_cmds) / sizeof(store_cmds[0]); ++i) {
        if (!strcmp(c->cmd, store_cmds[i].name)) {
            return run_command(c, i);
        }
    }
    fprintf(stderr, "scep-ota store: unknown command '%s'\n", c->cmd);
    return store_usage(stderr);
}

int scep_cli_store(apr_pool_t *p, int argc, const char *const *argv)
{
    cli_t c;
    int rc;

    memset(&c, 0, sizeof(c));
    c.audit_fd = -1;
    c.p = p;
    if ((rc = parse_args(&c, argc, argv))) {
        return rc >= 1000 ? rc - 1000 : rc;
    }
    return run(&c);
}
