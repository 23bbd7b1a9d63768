#ifndef SCEP_TOOLS_REQUEST_H
#define SCEP_TOOLS_REQUEST_H

#include <apr_pools.h>

/** scep-ota request ...: argv[0] is "request". Builds a request pkiMessage
 * offline. Returns the exit status. */
int scep_cli_request(apr_pool_t *p, int argc, const char *const *argv);

/** scep-ota certrep ...: argv[0] is "certrep". Reads a CertRep as
 * key=value lines and, with the client's key, writes what it carries.
 * Returns the exit status. */
int scep_cli_certrep(apr_pool_t *p, int argc, const char *const *argv);

#endif /* SCEP_TOOLS_REQUEST_H */
