#ifndef MOD_SCEP_OTA_OTA_H
#define MOD_SCEP_OTA_OTA_H

#include <httpd.h>

/** The "ota-profile" handler: GET is Phase 1, POST is Phase 2 or 3. */
int scep_ota_ota_handler(request_rec *r);

#endif /* MOD_SCEP_OTA_OTA_H */
