/* Unit tests for disc_value: option values as typed on the command line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "disc/value.h"

static void test_uint(void **state)
{
	struct disc_error err = {0};
	uint64_t v = 99;

	assert_int_equal(disc_value_uint("0", 0, 10, "--retries", &v, &err), DISC_OK);
	assert_int_equal(v, 0);
	assert_int_equal(disc_value_uint("10", 0, 10, "--retries", &v, &err), DISC_OK);
	assert_int_equal(v, 10);
	assert_int_equal(disc_value_uint("0x10", 0, 100, "--seed", &v, &err), DISC_OK);
	assert_int_equal(v, 16);
	assert_int_equal(disc_value_uint("18446744073709551615", 0, UINT64_MAX, "--seed", &v, &err),
			 DISC_OK);
	assert_int_equal(v, UINT64_MAX);
}

static void test_uint_rejects(void **state)
{
	static const char *const bad[] = {"",
					  "-1",
					  "+1",
					  " 1",
					  "1 ",
					  "1k",
					  "0x",
					  "0xg",
					  "1.0",
					  "18446744073709551616",
					  "99999999999999999999999"};
	struct disc_error err = {0};
	uint64_t v = 7;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (disc_value_uint(bad[i], 0, UINT64_MAX, "--rate", &v, &err) != DISC_ERR_SYNTAX)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_non_null(strstr(err.msg, "--rate"));
	}
	assert_int_equal(v, 7); /* untouched on error */
	assert_int_equal(disc_value_uint("0", 1, 100, "--rate", &v, &err), DISC_ERR_RANGE);
	assert_non_null(strstr(err.msg, "1 to 100"));
	assert_int_equal(disc_value_uint("11", 0, 10, "--retries", &v, &err), DISC_ERR_RANGE);
}

static void test_ms(void **state)
{
	static const struct {
		const char *in;
		uint64_t ms;
	} ok[] = {{"0", 0},	   {"1", 1000},	   {"2s", 2000}, {"0.5", 500},	{"0.25", 250},
		  {"1.125", 1125}, {"250ms", 250}, {"0ms", 0},	 {"60", 60000}, {"59.999", 59999}};
	struct disc_error err = {0};
	uint64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (disc_value_ms(ok[i].in, 60000, "--wait", &v, &err) != DISC_OK)
			fail_msg("\"%s\": %s", ok[i].in, err.msg);
		assert_int_equal(v, ok[i].ms);
	}
}

static void test_ms_rejects(void **state)
{
	static const char *const bad[] = {"",	".5",	 "1.",	"0.1234", "1m", "1 s",
					  "-1", "1.5ms", "1e3", "ms",	  "s",	"1ss"};
	struct disc_error err = {0};
	uint64_t v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (disc_value_ms(bad[i], 60000, "--wait", &v, &err) != DISC_ERR_SYNTAX)
			fail_msg("\"%s\" accepted", bad[i]);
	assert_int_equal(disc_value_ms("60.001", 60000, "--wait", &v, &err), DISC_ERR_RANGE);
	assert_int_equal(disc_value_ms("60001ms", 60000, "--wait", &v, &err), DISC_ERR_RANGE);
	assert_int_equal(disc_value_ms("99999999999999999999", 60000, "--wait", &v, &err),
			 DISC_ERR_SYNTAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_uint_rejects),
		cmocka_unit_test(test_ms),
		cmocka_unit_test(test_ms_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
