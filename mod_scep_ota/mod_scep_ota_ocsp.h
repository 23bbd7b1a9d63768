#ifndef MOD_SCEP_OTA_OCSP_H
#define MOD_SCEP_OTA_OCSP_H

#include <httpd.h>

/** The "scep-ocsp" handler: the CA's OCSP responder (RFC 6960). */
int scep_ota_ocsp_handler(request_rec *r);

#endif /* MOD_SCEP_OTA_OCSP_H */
