#ifndef MOD_SCEP_OTA_STORE_H
#define MOD_SCEP_OTA_STORE_H

/* The store in httpd: opening and migrating the database at startup, one
 * connection pool per child process, and the store a request works with.
 * It reads the configuration (SCEPStore is read with the other
 * directives); the configuration knows nothing of it. */

#include <httpd.h>
#include <http_config.h>

#include "scep_ota/scep_outcome.h"
#include "scep_ota/scep_store.h"
#include "scep_ota/scep_store_dbd.h"

/** Registers the store's post_config and child_init hooks; call it from
 * the module's register_hooks. */
void scep_ota_store_register_hooks(apr_pool_t *p);

/**
 * The store of the request's server. Never fails silently: on
 * failure it has logged why, and the handler answers 503 (or a signed
 * FAILURE) and issues nothing.
 */
apr_status_t scep_ota_store_for_request(request_rec *r, scep_store_t **store);

/**
 * The same for a handler: 1 with *store set; else 0, with the failure
 * logged under who's name and *out the answer (unavailable, reason for
 * the client, Retry-After).
 */
int scep_ota_store_ready(request_rec *r, scep_store_t **store,
                         scep_outcome_t *out, const char *who,
                         const char *reason);

/** The store URI in force for a server (the default resolved), for logs. */
const char *scep_ota_store_uri(apr_pool_t *p, server_rec *s);

#endif /* MOD_SCEP_OTA_STORE_H */
