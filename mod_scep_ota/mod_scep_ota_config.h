#ifndef MOD_SCEP_OTA_CONFIG_H
#define MOD_SCEP_OTA_CONFIG_H

#include <httpd.h>
#include <http_config.h>

#include "scep_ota/scep_ca.h"
#include "scep_ota/scep_caps.h"
#include "scep_ota/scep_challenge.h"
#include "scep_ota/scep_ocsp.h"
#include "scep_ota/scep_pkiop.h"
#include "scep_ota/ota_profile.h"

/* Bounds of the directives, and the defaults of the settings the glue
 * applies itself, in the getters below, so that a merged virtual host
 * never falls back to zero. The settings handed to the core unset (as 0:
 * the certificate lifetime, the minimum key size, the CRL validity, the
 * renewal window and the OTA settings) take the core's default there,
 * defined once in its headers (SCEP_DEFAULT_LIFETIME_DAYS,
 * SCEP_DEFAULT_MIN_KEY_SIZE, SCEP_CRL_VALIDITY_DEFAULT, ...). */
#define SCEP_OTA_MIN_LIFETIME_DAYS       1
#define SCEP_OTA_MAX_LIFETIME_DAYS       (20 * 366)
#define SCEP_OTA_DEFAULT_MAX_REQUEST     262144 /* 256 KiB */
#define SCEP_OTA_MIN_MAX_REQUEST         (4 * 1024)
#define SCEP_OTA_MAX_MAX_REQUEST         (16 * 1024 * 1024)
#define SCEP_OTA_MIN_MIN_KEY_SIZE        1024
#define SCEP_OTA_MAX_MIN_KEY_SIZE        16384

#define SCEP_OTA_MAX_RENEWAL_DAYS        3650
#define SCEP_OTA_MAX_CLOCK_SKEW          (366 * 86400)

/* SCEPExpiryWarning: days before a certificate's end that it is
 * warned about */
#define SCEP_OTA_DEFAULT_EXPIRY_WARNING_DAYS 30
#define SCEP_OTA_MAX_EXPIRY_WARNING_DAYS     3650

#define SCEP_OTA_UNSET (-1)

/* "none": the value that switches off an inherited file or password */
#define SCEP_OTA_NONE ""

/** Per-server (virtual host) configuration. Every field starts unset
 * (NULL) and merges "add if set, else base". */
typedef struct scep_ota_srv_conf_t {
    scep_ca_material_t material; /* files named and loaded by directives */
    scep_caps_t *caps;           /* SCEPCACaps */
    const void *caps_line;       /* the directive that started caps */
    const char *next_ca_file;    /* SCEPNextCACertificateFile */
    apr_array_header_t *next_ca_certs;
    const char *challenge;       /* SCEPChallengePassword */
    int lifetime_days;           /* SCEPCertificateLifetime */
    int approval_manual;         /* SCEPApproval manual */
    int allow_legacy;            /* SCEPAllowLegacyAlgorithms */
    int max_request;             /* SCEPMaxRequestSize */
    int min_key_size;            /* SCEPMinKeySize */
    const char *store_uri;       /* SCEPStore (sqlite3 path resolved) */
    apr_array_header_t *san_rules; /* SCEPAllowSubjectAltName */
    int renewal_days;            /* SCEPRenewalWindow DAYS (0: percent) */
    int renewal_percent;         /* SCEPRenewalWindow PERCENT% (0: days) */
    int revoke_superseded;       /* SCEPRevokeSuperseded */
    int revoke_previous;         /* OTARevokePrevious */
    int max_clock_skew;          /* SCEPMaxClockSkew, seconds (0: off) */
    int challenge_lifetime;      /* SCEPChallengeLifetime, seconds */
    int challenge_cache;         /* SCEPChallengeCacheSize (0: no limit) */
    int challenge_require_tls;   /* SCEPChallengeRequireTLS */
    int expiry_warning_days;     /* SCEPExpiryWarning (0: off) */
    apr_array_header_t *crl_dps; /* SCEPCRLDistributionPoint: URLs */
    int crl_validity;            /* SCEPCRLValidity, days */
    const char *audit_log;       /* SCEPAuditLog: a file or "|program" */
    apr_array_header_t *ocsp_urls; /* SCEPOCSPURL: URLs */
    const char *ocsp_cert_file;  /* SCEPOCSPSigningCertificateFile */
    apr_array_header_t *ocsp_certs;
    const char *ocsp_key_file;   /* SCEPOCSPSigningKeyFile */
    apr_array_header_t *ocsp_keys;

    /* computed at startup (mod_scep_ota_startup.c), never per request */
    scep_ca_t *ca;
    const char *caps_body;
    apr_size_t caps_len;
    int uses_scep_handler;       /* a "scep" handler is mapped here */
    int uses_challenge_handler;  /* a "scep-challenge" handler is mapped */
    int uses_crl_handler;        /* a "scep-crl" handler is mapped */
    int uses_ocsp_handler;       /* a "scep-ocsp" handler is mapped */
    scep_ocsp_cfg_t ocsp;        /* who signs OCSP responses */
    struct apr_file_t *audit_file; /* the open SCEPAuditLog, or NULL */
    const char *ca_sha1;         /* the CA certificate's thumbprints, for */
    const char *ca_sha256;       /* the challenge page */
    /* OTA profile delivery: settings as the directives gave them (0/NULL
     * unset); the signing identity is loaded from the two files together */
    ota_settings_t ota_set;
    const char *ota_sign_cert_file; /* OTASigningCertificateFile */
    const char *ota_sign_key_file;  /* OTASigningKeyFile */
    const void *ota_attr_line;   /* the directive that started attributes */

    scep_pkiop_cfg_t pkiop;      /* how PKIOperations are answered */
    ota_t *ota;                  /* built at startup when OTA is set up */
    int uses_ota_handler;        /* an "ota-profile" handler is mapped */
    const unsigned char *next_ca_body; /* GetNextCACert, or NULL */
    apr_size_t next_ca_len;
} scep_ota_srv_conf_t;

extern const command_rec scep_ota_cmds[];

void *scep_ota_create_srv_conf(apr_pool_t *p, server_rec *s);
void *scep_ota_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);

scep_ota_srv_conf_t *scep_ota_srv_conf(const server_rec *s);

/* Values in force: configured, else the named default. */
int scep_ota_approval_manual(const scep_ota_srv_conf_t *sc);
int scep_ota_allow_legacy(const scep_ota_srv_conf_t *sc);
apr_off_t scep_ota_max_request(const scep_ota_srv_conf_t *sc);
int scep_ota_revoke_superseded(const scep_ota_srv_conf_t *sc);
int scep_ota_revoke_previous(const scep_ota_srv_conf_t *sc);
apr_interval_time_t scep_ota_challenge_lifetime(const scep_ota_srv_conf_t *sc);
int scep_ota_challenge_cache(const scep_ota_srv_conf_t *sc);
int scep_ota_challenge_require_tls(const scep_ota_srv_conf_t *sc);
int scep_ota_expiry_warning_days(const scep_ota_srv_conf_t *sc);

#endif /* MOD_SCEP_OTA_CONFIG_H */
