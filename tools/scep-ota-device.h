#ifndef SCEP_TOOLS_DEVICE_H
#define SCEP_TOOLS_DEVICE_H

#include <apr_pools.h>

/** scep-ota device ...: argv[0] is "device". Returns the exit status. */
int scep_cli_device(apr_pool_t *p, int argc, const char *const *argv);

#endif /* SCEP_TOOLS_DEVICE_H */
