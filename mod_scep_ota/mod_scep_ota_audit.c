/* SCEPAuditLog: a file (opened by the parent, appended to by every child
 * with one write per line) or a piped program, as CustomLog opens them. */

#include <apr_file_io.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#include "mod_scep_ota_private.h"
#include "mod_scep_ota_audit.h"
#include "mod_scep_ota_config.h"

static apr_file_t *open_one(apr_pool_t *pconf, server_rec *s,
                            const char *spec)
{
    apr_file_t *f = NULL;
    piped_log *pl;
    const char *path;
    apr_status_t rv;

    if (*spec == '|') {
        /* as CustomLog: "|$command" through the shell, "|program" not */
        int shell = spec[1] == '$';
        const char *program = spec + 1 + shell;
        if (!(pl = ap_open_piped_log_ex(pconf, program, shell
                                        ? APR_SHELLCMD_ENV
                                        : APR_PROGRAM_ENV))) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(6250)
                         "SCEPAuditLog: cannot start '%s'", program);
            return NULL;
        }
        return ap_piped_log_write_fd(pl);
    }
    if (!(path = ap_server_root_relative(pconf, spec))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, SCEPLOGNO(6251)
                     "SCEPAuditLog: invalid path '%s'", spec);
        return NULL;
    }
    rv = apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_APPEND
                       | APR_FOPEN_CREATE | APR_FOPEN_LARGEFILE,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD,
                       pconf);
    if (APR_SUCCESS != rv) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, SCEPLOGNO(6252)
                     "SCEPAuditLog: cannot open %s", path);
        return NULL;
    }
    return f;
}

/* One open file or pipe per distinct SCEPAuditLog, shared by the virtual
 * hosts that name it. */
static int audit_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                             apr_pool_t *ptemp, server_rec *base)
{
    apr_hash_t *open = apr_hash_make(ptemp);
    server_rec *s;

    (void)plog;
    for (s = base; s; s = s->next) {
        scep_ota_srv_conf_t *sc = scep_ota_srv_conf(s);
        sc->audit_file = NULL;
        if (!sc->audit_log || !*sc->audit_log) {
            continue;
        }
        if (!(sc->audit_file = apr_hash_get(open, sc->audit_log,
                                            APR_HASH_KEY_STRING))) {
            if (!(sc->audit_file = open_one(pconf, s, sc->audit_log))) {
                return !OK;
            }
            apr_hash_set(open, sc->audit_log, APR_HASH_KEY_STRING,
                         sc->audit_file);
        }
    }
    return OK;
}

void scep_ota_audit(request_rec *r, scep_audit_t *ev)
{
    const scep_ota_srv_conf_t *sc = scep_ota_srv_conf(r->server);
    const char *line;
    apr_size_t len;
    apr_status_t rv;

    if (!sc->audit_file) {
        return;
    }
    if (!ev->vhost) {
        ev->vhost = apr_psprintf(r->pool, "%s:%u", r->server->server_hostname
                                 ? r->server->server_hostname : "-",
                                 r->server->port);
    }
    if (!ev->client) {
        ev->client = r->useragent_ip;
    }
    if (!ev->user) {
        ev->user = r->user;
    }
    line = scep_audit_line(r->pool, ev);
    len = strlen(line);
    /* one write: lines of several children never interleave */
    if (APR_SUCCESS != (rv = apr_file_write_full(sc->audit_file, line, len,
                                                 NULL))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, SCEPLOGNO(6253)
                      "SCEPAuditLog: cannot write the %s line", ev->event);
    }
}

void scep_ota_audit_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_post_config(audit_post_config, NULL, NULL, APR_HOOK_MIDDLE);
}
