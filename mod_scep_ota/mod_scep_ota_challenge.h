#ifndef MOD_SCEP_OTA_CHALLENGE_H
#define MOD_SCEP_OTA_CHALLENGE_H

/* The "scep-challenge" handler: one-time SCEP challenges for an
 * authenticated user, on NDES's admin page (mscep_admin) or as JSON. */

#include <httpd.h>

int scep_ota_challenge_handler(request_rec *r);

/** Sets up the count of refused challenges that every process of the
 * server shares; call it from post_config (not the check-only pass). */
int scep_ota_challenge_post_config(apr_pool_t *pconf, server_rec *base);

#endif /* MOD_SCEP_OTA_CHALLENGE_H */
