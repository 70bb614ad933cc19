/*
 * disc_perm: a random order over an index space [0, n) in O(1) memory.
 *
 * The scan's index space is (address index x port index); visiting it in a
 * random order spreads the load over hosts and networks. The permutation
 * walks the multiplicative group of integers modulo a prime p > n: starting
 * from a random element x0 and multiplying by a random primitive root g
 * visits every element 1..p-1 exactly once in p-1 steps. Element x stands
 * for index x-1; elements with x-1 >= n are skipped. p is the smallest safe
 * prime (p = 2q+1, q prime) above n, so that whether g is a primitive root
 * needs only two modular exponentiations (g^2 != 1 and g^q != 1), and the
 * skipped share is tiny (safe primes are dense enough that p - n is a few
 * thousand at most for n up to 2^48).
 *
 * Sharding: the cycle of p-1 steps is cut into `shards` contiguous stretches;
 * shard i walks stretch i. Every shard of a scan must use the same n and seed;
 * together they visit each index exactly once. --shard is written I/N with I
 * counted from 1 (the first of three machines is 1/3).
 *
 * The same (n, seed, shard, shards) always gives the same order.
 */
#ifndef DISC_PERM_H
#define DISC_PERM_H

#include <stdbool.h>
#include <stdint.h>

#include "disc/error.h"

/* Largest index space accepted (addresses x ports is at most 2^48). */
#define DISC_PERM_MAX_N (1ull << 62)

struct disc_perm {
	uint64_t n;	/* size of the index space */
	uint64_t prime; /* safe prime > n */
	uint64_t gen;	/* primitive root modulo prime */
	uint64_t cur;	/* the next group element to visit */
	uint64_t left;	/* steps left in this shard's stretch */
};

/*
 * Sets up shard `shard` (0-based, < shards) of the permutation of [0, n)
 * determined by seed. n == 0 gives an empty permutation. Errors: DISC_ERR_RANGE
 * for n > DISC_PERM_MAX_N or a bad shard.
 */
enum disc_status disc_perm_init(struct disc_perm *p, uint64_t n, uint64_t seed, uint32_t shard,
				uint32_t shards, struct disc_error *err);

/* Stores the next index in *index and returns true, or returns false at the end. */
bool disc_perm_next(struct disc_perm *p, uint64_t *index);

/*
 * Parses "I/N" (1 <= I <= N, N >= 1) into the 0-based *shard = I-1 and *shards = N.
 */
enum disc_status disc_perm_parse_shard(const char *s, uint32_t *shard, uint32_t *shards,
				       struct disc_error *err);

/* Deterministic primality test for any 64-bit value (Miller-Rabin, fixed bases). */
bool disc_perm_is_prime(uint64_t v);

#endif
