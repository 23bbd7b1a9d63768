#ifndef MOD_SCEP_OTA_STARTUP_H
#define MOD_SCEP_OTA_STARTUP_H

/* Startup assembly: from the merged configuration of every server to what
 * its requests use, checked before httpd starts serving. */

#include <httpd.h>

/**
 * Cross-directive checks and startup computation for every server: which
 * handlers each maps, its CA (shared between servers with the same
 * material), PKIOperation, OCSP and OTA settings. Runs on the check-only
 * pass too; on a problem it has logged why and returns !OK.
 */
int scep_ota_config_check(apr_pool_t *pconf, server_rec *base);

#endif /* MOD_SCEP_OTA_STARTUP_H */
