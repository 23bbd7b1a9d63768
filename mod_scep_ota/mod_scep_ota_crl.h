#ifndef MOD_SCEP_OTA_CRL_H
#define MOD_SCEP_OTA_CRL_H

#include <httpd.h>

/** The "scep-crl" handler: the CA's published CRL, DER. */
int scep_ota_crl_handler(request_rec *r);

#endif /* MOD_SCEP_OTA_CRL_H */
