/* disc_perm: cyclic-group permutation of the scan's index space (see disc/perm.h). */
#include "disc/perm.h"

#include <stdlib.h>
#include <string.h>

#include "disc/random.h"

typedef unsigned __int128 u128;

static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m)
{
	return (uint64_t)((u128)a * b % m);
}

static uint64_t powmod(uint64_t b, uint64_t e, uint64_t m)
{
	uint64_t r = 1 % m;

	b %= m;
	while (e) {
		if (e & 1)
			r = mulmod(r, b, m);
		b = mulmod(b, b, m);
		e >>= 1;
	}
	return r;
}

bool disc_perm_is_prime(uint64_t v)
{
	/* These bases decide primality for every v < 3.3e24 (Sorenson and Webster 2015). */
	static const uint64_t bases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
	uint64_t d;
	int s = 0;

	if (v < 2)
		return false;
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		if (v == bases[i])
			return true;
		if (v % bases[i] == 0)
			return false;
	}
	d = v - 1;
	while ((d & 1) == 0) {
		d >>= 1;
		s++;
	}
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		uint64_t x = powmod(bases[i], d, v);

		if (x == 1 || x == v - 1)
			continue;
		for (int r = 1; r < s; r++) {
			x = mulmod(x, x, v);
			if (x == v - 1)
				break;
		}
		if (x != v - 1)
			return false;
	}
	return true;
}

/* Smallest safe prime p = 2q + 1 with p > n. */
static uint64_t safe_prime_above(uint64_t n)
{
	uint64_t q = (n - 1) / 2 + 1; /* smallest q with 2q + 1 > n (n >= 1) */

	if (q < 2)
		q = 2;
	for (;; q++)
		if (disc_perm_is_prime(q) && disc_perm_is_prime(2 * q + 1))
			return 2 * q + 1;
}

enum disc_status disc_perm_init(struct disc_perm *p, uint64_t n, uint64_t seed, uint32_t shard,
				uint32_t shards, struct disc_error *err)
{
	uint64_t rng = seed, q, g, first, steps, start, end;

	memset(p, 0, sizeof(*p));
	if (n > DISC_PERM_MAX_N)
		return disc_error_set(err, DISC_ERR_RANGE,
				      "index space of %llu probes is too large (limit %llu)",
				      (unsigned long long)n, (unsigned long long)DISC_PERM_MAX_N);
	if (shards == 0 || shard >= shards)
		return disc_error_set(err, DISC_ERR_RANGE, "shard %u of %u out of range", shard + 1,
				      shards);
	if (n == 0)
		return DISC_OK;
	p->n = n;
	p->prime = safe_prime_above(n);
	q = (p->prime - 1) / 2;
	/* Half of [2, p-2] are primitive roots, so this ends after a couple of tries. */
	do {
		g = 2 + disc_splitmix64(&rng) % (p->prime - 3);
	} while (powmod(g, 2, p->prime) == 1 || powmod(g, q, p->prime) == 1);
	p->gen = g;
	first = 1 + disc_splitmix64(&rng) % (p->prime - 1);
	steps = p->prime - 1;
	start = (uint64_t)((u128)steps * shard / shards);
	end = (uint64_t)((u128)steps * (shard + 1) / shards);
	p->cur = mulmod(first, powmod(g, start, p->prime), p->prime);
	p->left = end - start;
	return DISC_OK;
}

bool disc_perm_next(struct disc_perm *p, uint64_t *index)
{
	const uint64_t n = p->n, prime = p->prime, g = p->gen;
	uint64_t cur = p->cur, left = p->left;

	/* 64-bit arithmetic is enough (and faster) while both factors fit in 32 bits. */
	if (prime <= UINT32_MAX) {
		while (left) {
			uint64_t x = cur;

			cur = cur * g % prime;
			left--;
			if (x - 1 < n) {
				p->cur = cur;
				p->left = left;
				*index = x - 1;
				return true;
			}
		}
	} else {
		while (left) {
			uint64_t x = cur;

			cur = mulmod(cur, g, prime);
			left--;
			if (x - 1 < n) {
				p->cur = cur;
				p->left = left;
				*index = x - 1;
				return true;
			}
		}
	}
	p->cur = cur;
	p->left = 0;
	return false;
}

static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

enum disc_status disc_perm_parse_shard(const char *s, uint32_t *shard, uint32_t *shards,
				       struct disc_error *err)
{
	const char *slash = strchr(s, '/');
	uint32_t i, n;

	if (!slash || !parse_u32(s, (size_t)(slash - s), &i) ||
	    !parse_u32(slash + 1, strlen(slash + 1), &n))
		return disc_error_set(err, DISC_ERR_SYNTAX,
				      "bad shard \"%s\": expected I/N, e.g. 1/3", s);
	if (n == 0 || i == 0 || i > n)
		return disc_error_set(
			err, DISC_ERR_RANGE,
			"bad shard \"%s\": need 1 <= I <= N (the first of three is 1/3)", s);
	*shard = i - 1;
	*shards = n;
	return DISC_OK;
}
