#ifndef SCEP_TALLY_H
#define SCEP_TALLY_H

/**
 * @file scep_tally.h
 * Counts of events per key (a client address, a user) in the current
 * clock hour, kept in memory that every process of a server shares (the
 * httpd glue hands in anonymous shared memory), updated with atomic
 * operations only. For the log: a key that shares its slot with others
 * may lose its count, and a count taken while another process claims the
 * slot may be off by one. Nothing here touches the store: refused input
 * leaves the store as it was.
 */

#include <apr_pools.h>
#include <apr_time.h>

typedef struct scep_tally_t scep_tally_t;

/** The bytes a tally needs. */
apr_size_t scep_tally_size(void);

/** A tally in mem (scep_tally_size() bytes, zeroed, suitably aligned). */
scep_tally_t *scep_tally_init(void *mem);

/** Counts one more event for key at time now; returns the count of the
 * key in now's hour, this one included. */
apr_uint32_t scep_tally_add(scep_tally_t *t, const char *key,
                            apr_time_t now);

/** Whether a count deserves a warning: 100, 1000, 10000... */
int scep_tally_milestone(apr_uint32_t count);

#endif /* SCEP_TALLY_H */
