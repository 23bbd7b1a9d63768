#ifndef MOD_SCEP_OTA_EXPIRY_H
#define MOD_SCEP_OTA_EXPIRY_H

#include <apr_pools.h>

/** SCEPExpiryWarning: the certificates the module serves with, checked at
 * start and once a day in httpd's parent process. */
void scep_ota_expiry_register_hooks(apr_pool_t *p);

#endif /* MOD_SCEP_OTA_EXPIRY_H */
