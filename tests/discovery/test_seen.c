/* Unit tests for disc_seen, the hash map that de-duplicates replies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "disc/seen.h"

static void test_empty(void **state)
{
	struct disc_seen s;

	disc_seen_init(&s);
	assert_false(disc_seen_get(&s, 0, NULL));
	assert_false(disc_seen_get(&s, 42, NULL));
	assert_int_equal(disc_seen_count(&s), 0);
	assert_null(s.slots); /* nothing allocated until something is found */
	disc_seen_release(&s);
}

static void test_insert_once(void **state)
{
	struct disc_seen s;
	bool inserted;
	uint32_t v;

	disc_seen_init(&s);
	assert_int_equal(disc_seen_insert(&s, 0, 7, &inserted, &v, NULL), DISC_OK);
	assert_true(inserted);
	assert_int_equal(v, 7);
	/* the same key again: not inserted, the first value stays */
	assert_int_equal(disc_seen_insert(&s, 0, 9, &inserted, &v, NULL), DISC_OK);
	assert_false(inserted);
	assert_int_equal(v, 7);
	assert_true(disc_seen_get(&s, 0, &v));
	assert_int_equal(v, 7);
	assert_int_equal(disc_seen_count(&s), 1);
	disc_seen_release(&s);
}

/* Neighbouring (address, port) keys, as a scan produces them, through many doublings. */
static void test_many_keys_and_growth(void **state)
{
	struct disc_seen s;
	const uint32_t n = 200000;
	bool inserted;
	uint32_t v;

	disc_seen_init(&s);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t key = (uint64_t)(0xc6120100u + i / 1000) << 16 | (i % 1000);

		assert_int_equal(disc_seen_insert(&s, key, i, &inserted, NULL, NULL), DISC_OK);
		if (!inserted)
			fail_msg("key %u taken for a duplicate", i);
	}
	assert_int_equal(disc_seen_count(&s), n);
	/* half full at most */
	assert_true(s.cap >= 2 * (size_t)n);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t key = (uint64_t)(0xc6120100u + i / 1000) << 16 | (i % 1000);

		if (!disc_seen_get(&s, key, &v) || v != i)
			fail_msg("key %u lost after growing", i);
	}
	assert_false(disc_seen_get(&s, (uint64_t)0xc6120100u << 16 | 1000, NULL));
	assert_false(disc_seen_get(&s, UINT64_MAX, NULL));
	disc_seen_release(&s);
	assert_int_equal(disc_seen_count(&s), 0);
}

/* Memory follows what was found: a few results, a small table. */
static void test_size_follows_results(void **state)
{
	struct disc_seen s;

	disc_seen_init(&s);
	for (uint64_t i = 0; i < 40; i++)
		assert_int_equal(disc_seen_insert(&s, i * 0x100000000ull, 0, NULL, NULL, NULL),
				 DISC_OK);
	assert_true(s.cap <= 128);
	disc_seen_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_insert_once),
		cmocka_unit_test(test_many_keys_and_growth),
		cmocka_unit_test(test_size_follows_results),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
