#ifndef MOD_SCEP_OTA_PRIVATE_H
#define MOD_SCEP_OTA_PRIVATE_H

#include <httpd.h>
#include <http_log.h>

extern module AP_MODULE_DECLARE_DATA scep_ota_module;

APLOG_USE_MODULE(scep_ota);

#endif /* MOD_SCEP_OTA_PRIVATE_H */
