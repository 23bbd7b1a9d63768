#ifndef MOD_SCEP_OTA_CONFIG_H
#define MOD_SCEP_OTA_CONFIG_H

#include <httpd.h>
#include <http_config.h>

#include "scep_ota/scep_ca.h"
#include "scep_ota/scep_caps.h"
#include "scep_ota/scep_log.h"

/** Per-server (virtual host) configuration. Every field starts unset
 * (NULL) and merges "add if set, else base". */
typedef struct scep_srv_conf_t {
    scep_ca_material_t material; /* files named and loaded by directives */
    scep_caps_t *caps;           /* SCEPCACaps */
    const void *caps_line;       /* the directive that started caps */

    /* computed at startup (check_config), never per request */
    scep_ca_t *ca;
    const char *caps_body;
    apr_size_t caps_len;
    int uses_scep_handler;       /* a "scep" handler is mapped here */
} scep_srv_conf_t;

extern const command_rec scep_ota_cmds[];

void *scep_ota_create_srv_conf(apr_pool_t *p, server_rec *s);
void *scep_ota_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);

scep_srv_conf_t *scep_ota_srv_conf(const server_rec *s);

/** The capability list in force: configured, else the default. */
const scep_caps_t *scep_ota_caps(const scep_srv_conf_t *sc);

/** Loggers that forward core messages to httpd's error log. */
const scep_logger_t *scep_ota_server_logger(apr_pool_t *p, server_rec *s);
const scep_logger_t *scep_ota_request_logger(request_rec *r);

/** Cross-directive checks and startup computation for every server. */
int scep_ota_config_check(apr_pool_t *pconf, server_rec *base);

#endif /* MOD_SCEP_OTA_CONFIG_H */
