#ifndef SCEP_TOOLS_STORE_H
#define SCEP_TOOLS_STORE_H

#include <apr_pools.h>

/** scep-ota store ...: argv[0] is "store". Returns the exit status. */
int scep_cli_store(apr_pool_t *p, int argc, const char *const *argv);

#endif /* SCEP_TOOLS_STORE_H */
