/* Unit tests for disc_targets: nmap target syntax, exclusions, index mapping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disc/targets.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

/* Builds a finalized set from includes and excludes; fails the test on error. */
static void build(struct disc_targets *t, const char *incl, const char *excl)
{
	struct disc_error err = {0};

	disc_targets_init(t, DISC_TARGETS_NO_RESOLVE);
	if (disc_targets_add(t, incl, &err) != DISC_OK)
		fail_msg("add \"%s\": %s", incl, err.msg);
	if (excl && disc_targets_exclude(t, excl, &err) != DISC_OK)
		fail_msg("exclude \"%s\": %s", excl, err.msg);
	assert_int_equal(disc_targets_finalize(t, &err), DISC_OK);
}

/* Expects add(spec) to fail with status and a message equal to msg. */
static void expect_error(const char *spec, enum disc_status status, const char *msg)
{
	struct disc_targets t;
	struct disc_error err = {0};

	disc_targets_init(&t, DISC_TARGETS_NO_RESOLVE);
	assert_int_equal(disc_targets_add(&t, spec, &err), status);
	assert_int_equal(err.status, status);
	if (msg)
		assert_string_equal(err.msg, msg);
	/* A failed add leaves nothing behind. */
	assert_int_equal(t.n_ranges, 0);
	disc_targets_release(&t);
}

static void test_single_address(void **state)
{
	struct disc_targets t;

	build(&t, "192.168.1.10", NULL);
	assert_int_equal(disc_targets_count(&t), 1);
	assert_int_equal(disc_targets_at(&t, 0), IP(192, 168, 1, 10));
	assert_true(disc_targets_contains(&t, IP(192, 168, 1, 10)));
	assert_false(disc_targets_contains(&t, IP(192, 168, 1, 11)));
	disc_targets_release(&t);
}

static void test_cidr(void **state)
{
	struct disc_targets t;

	/* Host bits are masked off, as nmap does. */
	build(&t, "10.1.2.77/24", NULL);
	assert_int_equal(disc_targets_count(&t), 256);
	assert_int_equal(disc_targets_at(&t, 0), IP(10, 1, 2, 0));
	assert_int_equal(disc_targets_at(&t, 255), IP(10, 1, 2, 255));
	disc_targets_release(&t);

	build(&t, "0.0.0.0/0", NULL);
	assert_true(disc_targets_count(&t) == (1ull << 32));
	assert_int_equal(disc_targets_at(&t, 0xffffffffull), 0xffffffffu);
	disc_targets_release(&t);

	build(&t, "8.8.8.8/32 8.8.4.0/31", NULL);
	assert_int_equal(disc_targets_count(&t), 3);
	disc_targets_release(&t);
}

static void test_octet_ranges(void **state)
{
	struct disc_targets t;

	build(&t, "10.0.0-3.1-20", NULL);
	assert_int_equal(disc_targets_count(&t), 4 * 20);
	assert_int_equal(t.n_ranges, 4);
	assert_int_equal(disc_targets_at(&t, 0), IP(10, 0, 0, 1));
	assert_int_equal(disc_targets_at(&t, 19), IP(10, 0, 0, 20));
	assert_int_equal(disc_targets_at(&t, 20), IP(10, 0, 1, 1));
	assert_int_equal(disc_targets_at(&t, 79), IP(10, 0, 3, 20));
	disc_targets_release(&t);

	build(&t, "192.168.1.1,3,5-7", NULL);
	assert_int_equal(disc_targets_count(&t), 5);
	assert_int_equal(disc_targets_at(&t, 0), IP(192, 168, 1, 1));
	assert_int_equal(disc_targets_at(&t, 1), IP(192, 168, 1, 3));
	assert_int_equal(disc_targets_at(&t, 2), IP(192, 168, 1, 5));
	assert_int_equal(disc_targets_at(&t, 4), IP(192, 168, 1, 7));
	disc_targets_release(&t);

	/* Open ranges, '-' and '*': full lower octets collapse into one interval each. */
	build(&t, "10.1.*.*", NULL);
	assert_int_equal(disc_targets_count(&t), 65536);
	assert_int_equal(t.n_ranges, 1);
	disc_targets_release(&t);

	build(&t, "10.2.250-.-", NULL);
	assert_int_equal(disc_targets_count(&t), 6 * 256);
	disc_targets_release(&t);

	build(&t, "10.3.0.-2", NULL);
	assert_int_equal(disc_targets_count(&t), 3);
	assert_int_equal(disc_targets_at(&t, 0), IP(10, 3, 0, 0));
	disc_targets_release(&t);

	/* A list in an earlier octet, even with commas that could split targets. */
	build(&t, "10.0.1,3.5", NULL);
	assert_int_equal(disc_targets_count(&t), 2);
	assert_int_equal(disc_targets_at(&t, 1), IP(10, 0, 3, 5));
	disc_targets_release(&t);
	build(&t, "10.0.1,3.5,7", NULL);
	assert_int_equal(disc_targets_count(&t), 4);
	disc_targets_release(&t);

	/* A large but allowed expansion: 65536 x 3 intervals. */
	build(&t, "1.*.*.1,3,5", NULL);
	assert_int_equal(disc_targets_count(&t), 65536 * 3);
	assert_int_equal(disc_targets_at(&t, 65536 * 3 - 1), IP(1, 255, 255, 5));
	disc_targets_release(&t);
}

static void test_lists_and_merging(void **state)
{
	struct disc_targets t;

	/* Whitespace and whole-target commas; overlaps and neighbours merge. */
	build(&t, "10.0.0.1,10.0.0.2  10.0.0.3\t10.0.0.0/30,10.0.0.4", NULL);
	assert_int_equal(disc_targets_count(&t), 5);
	assert_int_equal(t.n_ranges, 1);
	disc_targets_release(&t);

	/* "1,3" continues the octet list, "10.9.9.9" starts a new target. */
	build(&t, "10.0.0.1,3,10.9.9.9", NULL);
	assert_int_equal(disc_targets_count(&t), 3);
	assert_int_equal(disc_targets_at(&t, 2), IP(10, 9, 9, 9));
	disc_targets_release(&t);

	/* Includes given out of order come back sorted. */
	build(&t, "10.0.0.9 10.0.0.1", NULL);
	assert_int_equal(disc_targets_at(&t, 0), IP(10, 0, 0, 1));
	assert_int_equal(disc_targets_at(&t, 1), IP(10, 0, 0, 9));
	disc_targets_release(&t);
}

static void test_exclusions_win(void **state)
{
	struct disc_targets t;
	struct disc_error err = {0};

	build(&t, "10.0.0.0/24", "10.0.0.0,255 10.0.0.100-109");
	assert_int_equal(disc_targets_count(&t), 256 - 2 - 10);
	assert_false(disc_targets_contains(&t, IP(10, 0, 0, 0)));
	assert_false(disc_targets_contains(&t, IP(10, 0, 0, 105)));
	assert_true(disc_targets_contains(&t, IP(10, 0, 0, 110)));
	assert_int_equal(disc_targets_at(&t, 0), IP(10, 0, 0, 1));
	assert_int_equal(disc_targets_at(&t, 98), IP(10, 0, 0, 99));
	assert_int_equal(disc_targets_at(&t, 99), IP(10, 0, 0, 110));
	disc_targets_release(&t);

	/* Exclusion given before the include, and one spanning two includes. */
	disc_targets_init(&t, DISC_TARGETS_NO_RESOLVE);
	assert_int_equal(disc_targets_exclude(&t, "10.0.0.200-255,10.0.1.0-10", &err), DISC_OK);
	assert_int_equal(disc_targets_add(&t, "10.0.0.0/24 10.0.1.0/24", &err), DISC_OK);
	assert_int_equal(disc_targets_finalize(&t, &err), DISC_OK);
	assert_int_equal(disc_targets_count(&t), 512 - 56 - 11);
	assert_int_equal(disc_targets_at(&t, 199), IP(10, 0, 0, 199));
	assert_int_equal(disc_targets_at(&t, 200), IP(10, 0, 1, 11));
	disc_targets_release(&t);

	/* Everything excluded: empty, not an error. */
	build(&t, "10.0.0.0/30", "10.0.0.0/16");
	assert_int_equal(disc_targets_count(&t), 0);
	assert_false(disc_targets_contains(&t, IP(10, 0, 0, 1)));
	disc_targets_release(&t);

	/* Edges of the address space. */
	build(&t, "255.255.255.250-255 0.0.0.0-3", "255.255.255.255 0.0.0.0");
	assert_int_equal(disc_targets_count(&t), 5 + 3);
	assert_int_equal(disc_targets_at(&t, 0), IP(0, 0, 0, 1));
	assert_int_equal(disc_targets_at(&t, 7), IP(255, 255, 255, 254));
	disc_targets_release(&t);
}

/* Every index maps to the address a naive expansion puts there. */
static void test_index_mapping_exhaustive(void **state)
{
	struct disc_targets t;
	uint32_t expect[4096];
	size_t n = 0;

	build(&t, "10.0.0-15.0-255", "10.0.1-14.10-250 10.0.0.0/28");
	for (uint32_t a = IP(10, 0, 0, 0); a <= IP(10, 0, 15, 255); a++) {
		unsigned o3 = (a >> 8) & 255, o4 = a & 255;
		bool ex = (o3 >= 1 && o3 <= 14 && o4 >= 10 && o4 <= 250) || (o3 == 0 && o4 < 16);

		if (!ex)
			expect[n++] = a;
	}
	assert_int_equal(disc_targets_count(&t), n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(disc_targets_at(&t, i), expect[i]);
		assert_true(disc_targets_contains(&t, expect[i]));
	}
	disc_targets_release(&t);
}

static void test_errors_name_token(void **state)
{
	expect_error("10.0.3-1.1", DISC_ERR_SYNTAX, "bad octet range \"3-1\" in \"10.0.3-1.1\"");
	expect_error("10.0.0.256", DISC_ERR_SYNTAX, "bad octet \"256\" in \"10.0.0.256\"");
	expect_error("10.0.1", DISC_ERR_SYNTAX, "expected 4 octets in \"10.0.1\"");
	expect_error("10.0.0.1.2", DISC_ERR_SYNTAX, "more than 4 octets in \"10.0.0.1.2\"");
	expect_error("10..0.1", DISC_ERR_SYNTAX, "empty octet in \"10..0.1\"");
	expect_error("10.0.0.1/33", DISC_ERR_SYNTAX,
		     "bad CIDR prefix length \"33\" in \"10.0.0.1/33\" (0-32)");
	expect_error("10.0.0.1/", DISC_ERR_SYNTAX,
		     "bad CIDR prefix length \"\" in \"10.0.0.1/\" (0-32)");
	expect_error("10.0.0-1.1/24", DISC_ERR_SYNTAX,
		     "CIDR prefix needs a plain address, not ranges, in \"10.0.0-1.1/24\"");
	expect_error("10.0.0.1-2-3", DISC_ERR_SYNTAX,
		     "bad octet range \"1-2-3\" in \"10.0.0.1-2-3\"");
	expect_error("10.0.0.1 bad$host", DISC_ERR_SYNTAX, "bad target \"bad$host\"");
	expect_error("10.0.0.1,", DISC_ERR_SYNTAX, "trailing comma in \"10.0.0.1,\"");
	expect_error(",10.0.0.1", DISC_ERR_SYNTAX, "empty target in \",10.0.0.1\"");
	expect_error("10.0.0.0012", DISC_ERR_SYNTAX, "bad octet \"0012\" in \"10.0.0.0012\"");
	expect_error("example.com", DISC_ERR_RESOLVE,
		     "hostname \"example.com\" given but name resolution is disabled");
	/* 2^24 x 3 intervals is over the cap; refused before allocating. */
	expect_error("*.*.*.1,3,5", DISC_ERR_RANGE, NULL);
}

static void test_hostname_localhost(void **state)
{
	struct disc_targets t;
	struct disc_error err = {0};

	disc_targets_init(&t, 0);
	assert_int_equal(disc_targets_add(&t, "localhost 10.0.0.1", &err), DISC_OK);
	assert_int_equal(disc_targets_finalize(&t, &err), DISC_OK);
	assert_int_equal(disc_targets_count(&t), 2);
	/* localhost is in 127/8 (127.0.0.1 on Debian); it sorts after 10.0.0.1. */
	uint32_t a = disc_targets_at(&t, 1);
	assert_int_equal(a >> 24, 127);
	assert_string_equal(disc_targets_hostname(&t, a), "localhost");
	assert_null(disc_targets_hostname(&t, IP(10, 0, 0, 1)));
	disc_targets_release(&t);

	/* Resolved and excluded by name: the exclusion wins. */
	disc_targets_init(&t, 0);
	assert_int_equal(disc_targets_add(&t, "localhost", &err), DISC_OK);
	assert_int_equal(disc_targets_exclude(&t, "localhost", &err), DISC_OK);
	assert_int_equal(disc_targets_finalize(&t, &err), DISC_OK);
	assert_int_equal(disc_targets_count(&t), 0);
	disc_targets_release(&t);

	disc_targets_init(&t, 0);
	assert_int_equal(disc_targets_add(&t, "no-such-host.invalid", &err), DISC_ERR_RESOLVE);
	assert_non_null(strstr(err.msg, "cannot resolve \"no-such-host.invalid\""));
	disc_targets_release(&t);
}

static char *write_temp(const char *content)
{
	char *path = strdup("/tmp/disc_targets_XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	return path;
}

static void test_files(void **state)
{
	struct disc_targets t;
	struct disc_error err = {0};
	char *in = write_temp("# lab hosts\n10.0.0.1 10.0.0.2\n\n  10.0.1.0/30 # router net\n"
			      "10.0.2.1,3\n");
	char *ex = write_temp("10.0.1.0\n# nothing\n10.0.2.3");
	char *bad = write_temp("10.0.0.1\n10.0.0.2\n10.0.300.1\n");

	disc_targets_init(&t, DISC_TARGETS_NO_RESOLVE);
	assert_int_equal(disc_targets_add_file(&t, in, &err), DISC_OK);
	assert_int_equal(disc_targets_exclude_file(&t, ex, &err), DISC_OK);
	assert_int_equal(disc_targets_finalize(&t, &err), DISC_OK);
	assert_int_equal(disc_targets_count(&t), 2 + 3 + 1);
	assert_false(disc_targets_contains(&t, IP(10, 0, 1, 0)));
	assert_true(disc_targets_contains(&t, IP(10, 0, 2, 1)));
	disc_targets_release(&t);

	disc_targets_init(&t, DISC_TARGETS_NO_RESOLVE);
	assert_int_equal(disc_targets_add_file(&t, bad, &err), DISC_ERR_SYNTAX);
	char want[512];
	snprintf(want, sizeof(want), "%s:3: bad octet \"300\" in \"10.0.300.1\"", bad);
	assert_string_equal(err.msg, want);
	assert_int_equal(disc_targets_add_file(&t, "/nonexistent/targets", &err), DISC_ERR_IO);
	assert_non_null(strstr(err.msg, "/nonexistent/targets"));
	disc_targets_release(&t);

	unlink(in);
	unlink(ex);
	unlink(bad);
	free(in);
	free(ex);
	free(bad);
}

static void test_state_errors(void **state)
{
	struct disc_targets t;
	struct disc_error err = {0};

	build(&t, "10.0.0.1", NULL);
	assert_int_equal(disc_targets_add(&t, "10.0.0.2", &err), DISC_ERR_STATE);
	assert_int_equal(disc_targets_finalize(&t, &err), DISC_ERR_STATE);
	disc_targets_release(&t);

	/* Before finalize nothing is counted. */
	disc_targets_init(&t, 0);
	assert_int_equal(disc_targets_add(&t, "10.0.0.1", &err), DISC_OK);
	assert_int_equal(disc_targets_count(&t), 0);
	disc_targets_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_address),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_octet_ranges),
		cmocka_unit_test(test_lists_and_merging),
		cmocka_unit_test(test_exclusions_win),
		cmocka_unit_test(test_index_mapping_exhaustive),
		cmocka_unit_test(test_errors_name_token),
		cmocka_unit_test(test_hostname_localhost),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_state_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
