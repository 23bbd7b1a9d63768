#ifndef MOD_SCEP_OTA_SCEP_H
#define MOD_SCEP_OTA_SCEP_H

#include <httpd.h>

/** The "scep" handler: GetCACaps, GetCACert, GetNextCACert, PKIOperation. */
int scep_ota_scep_handler(request_rec *r);

#endif /* MOD_SCEP_OTA_SCEP_H */
