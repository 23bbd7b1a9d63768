#ifndef SCEP_TOOLS_INIT_H
#define SCEP_TOOLS_INIT_H

#include <apr_pools.h>

/** scep-ota init DIR ...: argv[0] is "init". Returns the exit status. */
int scep_cli_init(apr_pool_t *p, int argc, const char *const *argv);

#endif /* SCEP_TOOLS_INIT_H */
