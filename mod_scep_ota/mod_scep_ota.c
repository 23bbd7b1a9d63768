/* mod_scep_ota: module record and hooks. */

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_main.h>
#include <http_core.h>

#include "mod_scep_ota_challenge.h"
#include "mod_scep_ota_config.h"
#include "mod_scep_ota_expiry.h"
#include "mod_scep_ota_crl.h"
#include "mod_scep_ota_audit.h"
#include "mod_scep_ota_metrics.h"
#include "mod_scep_ota_ocsp.h"
#include "mod_scep_ota_scep.h"
#include "mod_scep_ota_startup.h"
#include "mod_scep_ota_ota.h"
#include "mod_scep_ota_store.h"
#include "scep_ota/scep_version.h"

static int scep_ota_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    (void)ptemp;
    return scep_ota_config_check(pconf, s);
}

static int scep_ota_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, SCEPLOGNO(0010)
                 "mod_scep_ota/%s started", SCEP_OTA_VERSION);
    return scep_ota_challenge_post_config(pconf, s);
}

static void scep_ota_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(scep_ota_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(scep_ota_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(scep_ota_scep_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(scep_ota_ota_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(scep_ota_challenge_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(scep_ota_crl_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(scep_ota_ocsp_handler, NULL, NULL, APR_HOOK_MIDDLE);
    scep_ota_store_register_hooks(p);
    scep_ota_expiry_register_hooks(p);
    scep_ota_metrics_register_hooks(p);
    scep_ota_audit_register_hooks(p);
}

AP_DECLARE_MODULE(scep_ota) = {
    STANDARD20_MODULE_STUFF,
    NULL,                       /* per-directory config */
    NULL,                       /* merge per-directory */
    scep_ota_create_srv_conf,   /* per-server config */
    scep_ota_merge_srv_conf,    /* merge per-server */
    scep_ota_cmds,              /* directives */
    scep_ota_register_hooks
};
