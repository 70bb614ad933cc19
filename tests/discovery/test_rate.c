/* Unit tests for disc_rate, the token bucket, against a fake clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "disc/rate.h"

#define MS 1000000ull
#define S  1000000000ull

static void test_starts_with_one_token(void **state)
{
	struct disc_rate r;

	disc_rate_init(&r, 1000, 64, 0);
	assert_int_equal(disc_rate_take(&r, 0, 64), 1);
	assert_int_equal(disc_rate_take(&r, 0, 64), 0);
	/* one token per millisecond at 1000/s */
	assert_int_equal(disc_rate_wait_ns(&r, 1), MS);
	assert_int_equal(disc_rate_take(&r, MS - 1, 1), 0);
	assert_int_equal(disc_rate_take(&r, MS, 1), 1);
}

/* Over any long run the bucket grants rate x time (+ the initial token), never more. */
static void test_long_run_rate(void **state)
{
	const uint64_t rates[] = {1, 7, 1000, 10000, 333333, 1000000, 100000000};

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		struct disc_rate r;
		uint64_t t = 0, got = 0, step = S / 1000; /* ask every millisecond */

		disc_rate_init(&r, rates[i], 2 * 64 + rates[i] / 1000, 0);
		for (t = 0; t <= 10 * S; t += step)
			got += disc_rate_take(&r, t, UINT32_MAX);
		/* 10 s at rate: exactly rate*10 + 1 (the first token) */
		if (got != rates[i] * 10 + 1)
			fail_msg("rate %llu: got %llu tokens in 10 s", (unsigned long long)rates[i],
				 (unsigned long long)got);
	}
}

/* A sender that sleeps too long loses at most what exceeds the burst. */
static void test_burst_cap(void **state)
{
	struct disc_rate r;

	disc_rate_init(&r, 1000, 10, 0);
	assert_int_equal(disc_rate_take(&r, 0, 1), 1);
	/* an hour later: only the burst is there */
	assert_int_equal(disc_rate_take(&r, 3600 * S, 1000), 10);
	assert_int_equal(disc_rate_take(&r, 3600 * S, 1000), 0);
}

static void test_wait_is_exact(void **state)
{
	struct disc_rate r;

	disc_rate_init(&r, 3, 8, 0); /* one token every 333,333,333.3 ns */
	assert_int_equal(disc_rate_take(&r, 0, 1), 1);
	/* Rounded up, so that waking after the wait always finds the token. */
	assert_int_equal(disc_rate_wait_ns(&r, 1), 333333334);
	assert_int_equal(disc_rate_take(&r, 333333333, 1), 0);
	assert_int_equal(disc_rate_take(&r, 333333334, 1), 1);
	/* asking for more than the burst waits only for the burst */
	assert_int_equal(disc_rate_wait_ns(&r, 1000), disc_rate_wait_ns(&r, 8));
}

static void test_unlimited_and_clock_backwards(void **state)
{
	struct disc_rate r;

	disc_rate_init(&r, 0, 1, 0);
	assert_int_equal(disc_rate_take(&r, 0, 12345), 12345);
	assert_int_equal(disc_rate_wait_ns(&r, 99), 0);

	disc_rate_init(&r, 1000, 4, 10 * S);
	assert_int_equal(disc_rate_take(&r, 10 * S, 4), 1);
	/* a clock that goes back gives nothing, and takes nothing */
	assert_int_equal(disc_rate_take(&r, 5 * S, 4), 0);
	assert_int_equal(disc_rate_take(&r, 10 * S + 2 * MS, 4), 2);
}

static void test_huge_values_are_capped(void **state)
{
	struct disc_rate r;

	disc_rate_init(&r, UINT64_MAX, UINT64_MAX, 0);
	assert_int_equal(r.rate, DISC_RATE_MAX);
	assert_int_equal(r.burst, DISC_RATE_MAX_BURST);
	/* no overflow after a long time at the highest rate */
	assert_int_equal(disc_rate_take(&r, 1000000 * S, UINT64_MAX), DISC_RATE_MAX_BURST);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_starts_with_one_token),
		cmocka_unit_test(test_long_run_rate),
		cmocka_unit_test(test_burst_cap),
		cmocka_unit_test(test_wait_is_exact),
		cmocka_unit_test(test_unlimited_and_clock_backwards),
		cmocka_unit_test(test_huge_values_are_capped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
