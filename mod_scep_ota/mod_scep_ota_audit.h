#ifndef MOD_SCEP_OTA_AUDIT_H
#define MOD_SCEP_OTA_AUDIT_H

#include <httpd.h>

#include "scep_ota/scep_audit.h"

/** Writes ev to the audit log of r's server (SCEPAuditLog), with the
 * time, virtual host, client address and user of r filled in where ev
 * leaves them NULL. Nothing when no audit log is configured. */
void scep_ota_audit(request_rec *r, scep_audit_t *ev);

/** Opens every SCEPAuditLog (post_config). */
void scep_ota_audit_register_hooks(apr_pool_t *p);

#endif /* MOD_SCEP_OTA_AUDIT_H */
