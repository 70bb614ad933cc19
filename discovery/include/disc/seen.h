/*
 * disc_seen: a hash map from 64-bit keys to 32-bit values, for de-duplicating
 * replies and indexing results.
 *
 * A scan of millions of probes finds a few thousand things; this table grows
 * with what was found (open addressing, linear probing, doubled when half
 * full), never with the number of targets. Keys are any 64-bit values (the
 * scanner packs kind, address and port into one); values are whatever the
 * caller wants (an index into its own array, or 0 when used as a set).
 *
 * Not thread-safe: the scan engine guards it with its results lock.
 */
#ifndef DISC_SEEN_H
#define DISC_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"

/* Largest number of entries (16 bytes each at half load: 2 GiB at the cap). */
#define DISC_SEEN_MAX (1u << 26)

struct disc_seen_slot {
	uint64_t key;
	uint32_t value;
	bool used;
};

struct disc_seen {
	struct disc_seen_slot *slots; /* owned; NULL until the first insert */
	size_t cap;		      /* a power of two, or 0 */
	size_t count;
};

void disc_seen_init(struct disc_seen *s);
void disc_seen_release(struct disc_seen *s);

/*
 * Inserts key with value unless key is present. *inserted (may be NULL) says
 * which happened; *value_out (may be NULL) gets the value stored for key
 * (the new one, or the one already there). DISC_ERR_NOMEM when growing failed,
 * DISC_ERR_RANGE at DISC_SEEN_MAX entries; s is unchanged then.
 */
enum disc_status disc_seen_insert(struct disc_seen *s, uint64_t key, uint32_t value, bool *inserted,
				  uint32_t *value_out, struct disc_error *err);

/* Whether key is present; its value in *value_out (may be NULL). */
bool disc_seen_get(const struct disc_seen *s, uint64_t key, uint32_t *value_out);

static inline size_t disc_seen_count(const struct disc_seen *s)
{
	return s->count;
}

#endif
