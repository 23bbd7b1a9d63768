#ifndef MOD_SCEP_OTA_METRICS_H
#define MOD_SCEP_OTA_METRICS_H

#include <httpd.h>

#include "scep_ota/scep_metrics.h"

/** The server's counters (shared by every child), or NULL before
 * post_config made them. */
scep_metrics_t *scep_ota_metrics(void);

/** The "scep-metrics" handler: the Prometheus text exposition. */
int scep_ota_metrics_handler(request_rec *r);

/** post_config (the counters) and mod_status's section. */
void scep_ota_metrics_register_hooks(apr_pool_t *p);

#endif /* MOD_SCEP_OTA_METRICS_H */
