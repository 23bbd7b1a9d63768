#ifndef SCEP_POLICY_H
#define SCEP_POLICY_H

/**
 * @file scep_policy.h
 * What a certificate may say. The requester proposes names in its CSR;
 * the server decides: a subjectAltName appears only when the server's
 * policy (SCEPAllowSubjectAltName) or the grant of the request allows it.
 *
 * A grant fixes the whole name set of a request: the binding of a one-time
 * challenge (OTA Phase 2, `scep-ota store challenge --for subject=DN`), or
 * the names of the certificate a renewal replaces. The same text form is
 * the plan of a pending request: what was decided when it arrived.
 *
 * subjectAltNames are written as text "DNS:name", "email:addr",
 * "URI:uri" or "IP:addr" (IPv4 or IPv6), the forms openssl's tools use.
 */

#include <apr_pools.h>
#include <apr_tables.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/** The SAN types a certificate of ours may carry. */
typedef enum {
    SCEP_SAN_DNS = 0,
    SCEP_SAN_EMAIL,
    SCEP_SAN_URI,
    SCEP_SAN_IP
} scep_san_type_t;

/** One SCEPAllowSubjectAltName rule; build it with scep_san_rule_make. */
typedef struct scep_san_rule_t {
    scep_san_type_t type;
    const char *pattern;             /* as configured */
    unsigned char ip[16], mask[16];  /* SCEP_SAN_IP: address and mask */
    int ip_len;                      /* 4 or 16 */
} scep_san_rule_t;

/**
 * Parses a rule: type "dns", "email", "uri" (PATTERN a shell glob, '*'
 * and '?' and [...] as fnmatch has them, case-blind for dns and email)
 * or "ip" (PATTERN an address or address/prefix, IPv4 or IPv6).
 * On error *err says what is wrong.
 */
apr_status_t scep_san_rule_make(apr_pool_t *p, const char *type,
                                const char *pattern, scep_san_rule_t *rule,
                                const char **err);

/** The server's side of the decision; built once at startup. */
typedef struct scep_name_policy_t {
    const apr_array_header_t *san_rules;  /* scep_san_rule_t; may be NULL */
    const apr_array_header_t *reserved;   /* X509 *: the CA, its chain, the
                                             RA: subjects no leaf takes */
} scep_name_policy_t;

/** A grant, or the plan of a pending request. */
typedef struct scep_grant_t {
    const char *subject;          /* RFC 2253; NULL: not fixed */
    apr_array_header_t *sans;     /* const char * in text form */
    const char *udid;             /* OTA: the device it was handed to */
    const char *user;             /* who asked for it (an auth module's) */
    const char *origin;           /* plans: what the certificate is for
                                     (SCEP_ORIGIN_*) */
} scep_grant_t;

/** An empty grant. */
scep_grant_t *scep_grant_make(apr_pool_t *p);

/**
 * Reads a grant from its stored text: lines "subject=DN", "san=TYPE:VALUE"
 * (repeatable), "udid=...", "user=...", "origin=...", values escaped as
 * path segments. APR_EINVAL on an unknown line or an unreadable SAN: a
 * binding that cannot be read binds nothing and must be refused.
 */
apr_status_t scep_grant_parse(apr_pool_t *p, const char *text,
                              scep_grant_t **grant);

/** The stored text of a grant. */
const char *scep_grant_format(apr_pool_t *p, const scep_grant_t *grant);

/**
 * Parses "TYPE:VALUE" (type dns, email, uri or ip, any case; the value
 * checked as a host name, mail address, URI or IP address) into the
 * canonical text form. On error *err says why.
 */
apr_status_t scep_san_parse(apr_pool_t *p, const char *text,
                            const char **canonical, const char **err);

/**
 * The subjectAltNames of a CSR (or of a certificate, with cert) in text
 * form. APR_EINVAL with *why when one is of a type or form no certificate
 * of ours carries, or when the extension appears twice.
 */
apr_status_t scep_csr_sans(apr_pool_t *p, X509_REQ *req,
                           apr_array_header_t **sans, const char **why);
apr_status_t scep_cert_sans(apr_pool_t *p, X509 *cert,
                            apr_array_header_t **sans, const char **why);

/**
 * Decides the names of the certificate for req. With a grant that names a
 * subject (one that does not only says who asked) the subject
 * must be the grant's and every SAN the CSR asks for one of the grant's;
 * the certificate gets the grant's SANs. Without one, every SAN must match
 * a rule of the policy. Either way the subject may not be that of the CA,
 * its chain or the RA, and an empty subject needs a SAN.
 * On success *sans holds what to write; on refusal *why names the name.
 */
apr_status_t scep_names_decide(apr_pool_t *p, const scep_name_policy_t *pol,
                               const scep_grant_t *grant, X509_REQ *req,
                               apr_array_header_t **sans, const char **why);

/**
 * Reads a subject typed by an admin, "/CN=x/O=y" (openssl's form, UTF-8)
 * or RFC 2253 "CN=x,O=y", into the RFC 2253 form the store compares.
 * Multi-valued RDNs are not read. On error *err says why.
 */
apr_status_t scep_subject_parse(apr_pool_t *p, const char *text,
                                const char **rfc2253, const char **err);

/** A GENERAL_NAMES of text-form SANs (NULL on error); the caller frees
 * it. */
GENERAL_NAMES *scep_sans_to_names(const apr_array_header_t *sans);

#endif /* SCEP_POLICY_H */
