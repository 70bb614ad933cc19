/* Unit tests for disc_perm: full cycles, sharding, determinism. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "disc/perm.h"

/* Walks shards 0..shards-1 of (n, seed) and checks each index is seen exactly once. */
static void check_partition(uint64_t n, uint64_t seed, uint32_t shards)
{
	uint8_t *seen = calloc(n ? n : 1, 1);
	uint64_t total = 0, idx;
	struct disc_error err = {0};

	assert_non_null(seen);
	for (uint32_t s = 0; s < shards; s++) {
		struct disc_perm p;

		assert_int_equal(disc_perm_init(&p, n, seed, s, shards, &err), DISC_OK);
		while (disc_perm_next(&p, &idx)) {
			if (idx >= n)
				fail_msg("n=%llu: index %llu out of range", (unsigned long long)n,
					 (unsigned long long)idx);
			if (seen[idx])
				fail_msg("n=%llu shards=%u: index %llu visited twice",
					 (unsigned long long)n, shards, (unsigned long long)idx);
			seen[idx] = 1;
			total++;
		}
		/* Exhausted stays exhausted. */
		assert_false(disc_perm_next(&p, &idx));
	}
	if (total != n)
		fail_msg("n=%llu shards=%u: visited %llu indices", (unsigned long long)n, shards,
			 (unsigned long long)total);
	free(seen);
}

static void test_full_cycle_small_n(void **state)
{
	for (uint64_t n = 0; n <= 2500; n++)
		check_partition(n, n * 7919 + 1, 1);
}

static void test_full_cycle_special_n(void **state)
{
	/* Primes, safe primes minus one (p - 1 == n: nothing skipped), powers of two. */
	static const uint64_t ns[] = {2,    3,	   5,	  22,	  23,	   1018,   1019,
				      4094, 65536, 65537, 100003, 1000003, 999999, 1u << 20};
	struct disc_perm p;
	struct disc_error err = {0};

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		check_partition(ns[i], 42, 1);
		assert_int_equal(disc_perm_init(&p, ns[i], 42, 0, 1, &err), DISC_OK);
		assert_true(p.prime > ns[i]);
		assert_true(disc_perm_is_prime(p.prime));
		assert_true(disc_perm_is_prime((p.prime - 1) / 2));
	}
	/* 22 = 23 - 1 and 23 = 2 * 11 + 1: the prime is exactly n + 1. */
	assert_int_equal(disc_perm_init(&p, 22, 1, 0, 1, &err), DISC_OK);
	assert_int_equal(p.prime, 23);
	assert_int_equal(disc_perm_init(&p, 1018, 1, 0, 1, &err), DISC_OK);
	assert_int_equal(p.prime, 1019);
	assert_int_equal(disc_perm_init(&p, 1, 1, 0, 1, &err), DISC_OK);
	assert_int_equal(p.prime, 5);
}

static void test_shards_partition(void **state)
{
	static const uint64_t ns[] = {1, 2, 3, 10, 97, 1000, 4096, 65537, 300000};
	static const uint32_t shard_counts[] = {1, 2, 3, 7, 16, 200};

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		for (size_t j = 0; j < sizeof(shard_counts) / sizeof(shard_counts[0]); j++)
			check_partition(ns[i], 1234 + i, shard_counts[j]);
}

static void test_large_space_prime(void **state)
{
	struct disc_perm p;
	struct disc_error err = {0};
	uint64_t n = (1ull << 32) * 65536, idx; /* every address x every port */

	assert_int_equal(disc_perm_init(&p, n, 9, 0, 1, &err), DISC_OK);
	assert_true(p.prime > n);
	assert_true(p.prime - n < 100000);
	assert_true(disc_perm_is_prime(p.prime));
	for (int i = 0; i < 100000; i++) {
		assert_true(disc_perm_next(&p, &idx));
		assert_true(idx < n);
	}
	/* The 64-bit path of the 128-bit product: a prime above 2^32 in a small test. */
	n = (1ull << 32) + 10;
	assert_int_equal(disc_perm_init(&p, n, 3, 5, 1u << 20, &err), DISC_OK);
	assert_true(p.prime > UINT32_MAX);
	uint64_t visited = 0;
	while (disc_perm_next(&p, &idx)) {
		assert_true(idx < n);
		visited++;
	}
	/* One shard of 2^20 over ~2^32 steps. */
	assert_true(visited > 3000 && visited < 5200);

	assert_int_equal(disc_perm_init(&p, DISC_PERM_MAX_N + 1, 1, 0, 1, &err), DISC_ERR_RANGE);
}

static void test_seeded_and_random_looking(void **state)
{
	struct disc_perm a, b, c;
	struct disc_error err = {0};
	uint64_t x, y, z, prev = 0;
	int same_as_c = 0, ascending_steps = 0;

	assert_int_equal(disc_perm_init(&a, 10000, 77, 0, 1, &err), DISC_OK);
	assert_int_equal(disc_perm_init(&b, 10000, 77, 0, 1, &err), DISC_OK);
	assert_int_equal(disc_perm_init(&c, 10000, 78, 0, 1, &err), DISC_OK);
	for (int i = 0; i < 10000; i++) {
		assert_true(disc_perm_next(&a, &x));
		assert_true(disc_perm_next(&b, &y));
		assert_true(disc_perm_next(&c, &z));
		assert_true(x == y);
		same_as_c += x == z;
		ascending_steps += i > 0 && x == prev + 1;
		prev = x;
	}
	/* Another seed gives another order; neither is close to sequential. */
	assert_true(same_as_c < 100);
	assert_true(ascending_steps < 100);
}

static void test_primality(void **state)
{
	static const uint64_t primes[] = {
		2, 3, 5, 7, 61, 7919, 1000003, 4294967291ull, 18446744073709551557ull};
	static const uint64_t composites[] = {0,
					      1,
					      4,
					      561,
					      1105,
					      3215031751ull,
					      4294967297ull,
					      3825123056546413051ull,
					      18446744073709551615ull};

	for (size_t i = 0; i < sizeof(primes) / sizeof(primes[0]); i++)
		assert_true(disc_perm_is_prime(primes[i]));
	for (size_t i = 0; i < sizeof(composites) / sizeof(composites[0]); i++)
		assert_false(disc_perm_is_prime(composites[i]));
}

static void test_parse_shard(void **state)
{
	uint32_t s, n;
	struct disc_error err = {0};

	assert_int_equal(disc_perm_parse_shard("1/3", &s, &n, &err), DISC_OK);
	assert_int_equal(s, 0);
	assert_int_equal(n, 3);
	assert_int_equal(disc_perm_parse_shard("3/3", &s, &n, &err), DISC_OK);
	assert_int_equal(s, 2);
	assert_int_equal(disc_perm_parse_shard("0/3", &s, &n, &err), DISC_ERR_RANGE);
	assert_int_equal(disc_perm_parse_shard("4/3", &s, &n, &err), DISC_ERR_RANGE);
	assert_int_equal(disc_perm_parse_shard("1/0", &s, &n, &err), DISC_ERR_RANGE);
	assert_int_equal(disc_perm_parse_shard("1", &s, &n, &err), DISC_ERR_SYNTAX);
	assert_int_equal(disc_perm_parse_shard("a/3", &s, &n, &err), DISC_ERR_SYNTAX);
	assert_int_equal(disc_perm_parse_shard("1/99999999999", &s, &n, &err), DISC_ERR_SYNTAX);
	assert_string_equal(err.msg, "bad shard \"1/99999999999\": expected I/N, e.g. 1/3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_cycle_small_n),
		cmocka_unit_test(test_full_cycle_special_n),
		cmocka_unit_test(test_shards_partition),
		cmocka_unit_test(test_large_space_prime),
		cmocka_unit_test(test_seeded_and_random_looking),
		cmocka_unit_test(test_primality),
		cmocka_unit_test(test_parse_shard),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
