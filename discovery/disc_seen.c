/* disc_seen: open-addressing hash map (see disc/seen.h). */
#include "disc/seen.h"

#include <stdlib.h>

#define MIN_CAP 64

/*
 * splitmix64's finaliser: keys that differ in a few low bits (neighbouring
 * addresses and ports) land far apart, which linear probing needs.
 */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

void disc_seen_init(struct disc_seen *s)
{
	s->slots = NULL;
	s->cap = 0;
	s->count = 0;
}

void disc_seen_release(struct disc_seen *s)
{
	free(s->slots);
	disc_seen_init(s);
}

static struct disc_seen_slot *find(const struct disc_seen *s, uint64_t key)
{
	size_t mask = s->cap - 1;

	for (size_t i = mix(key) & mask;; i = (i + 1) & mask)
		if (!s->slots[i].used || s->slots[i].key == key)
			return &s->slots[i];
}

static enum disc_status grow(struct disc_seen *s, struct disc_error *err)
{
	size_t cap = s->cap ? s->cap * 2 : MIN_CAP;
	struct disc_seen old = *s;

	s->slots = calloc(cap, sizeof(*s->slots));
	if (!s->slots) {
		*s = old;
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for %zu result slots",
				      cap);
	}
	s->cap = cap;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].used)
			*find(s, old.slots[i].key) = old.slots[i];
	free(old.slots);
	return DISC_OK;
}

enum disc_status disc_seen_insert(struct disc_seen *s, uint64_t key, uint32_t value, bool *inserted,
				  uint32_t *value_out, struct disc_error *err)
{
	struct disc_seen_slot *slot;

	if (s->cap) {
		slot = find(s, key);
		if (slot->used) {
			if (inserted)
				*inserted = false;
			if (value_out)
				*value_out = slot->value;
			return DISC_OK;
		}
	}
	if (s->count >= DISC_SEEN_MAX)
		return disc_error_set(err, DISC_ERR_RANGE, "more than %u results", DISC_SEEN_MAX);
	/* Keep the load at most one half: probe sequences stay short. */
	if ((s->count + 1) * 2 > s->cap) {
		enum disc_status st = grow(s, err);

		if (st != DISC_OK)
			return st;
	}
	slot = find(s, key);
	slot->key = key;
	slot->value = value;
	slot->used = true;
	s->count++;
	if (inserted)
		*inserted = true;
	if (value_out)
		*value_out = value;
	return DISC_OK;
}

bool disc_seen_get(const struct disc_seen *s, uint64_t key, uint32_t *value_out)
{
	const struct disc_seen_slot *slot;

	if (!s->cap)
		return false;
	slot = find(s, key);
	if (!slot->used)
		return false;
	if (value_out)
		*value_out = slot->value;
	return true;
}
