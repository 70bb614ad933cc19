/* Unit tests for disc_answers, the per-block bitmap of answered probes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "disc/answers.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static void test_block_hosts(void **state)
{
	/* the bit budget decides, within 1 .. 65,536 hosts */
	assert_int_equal(disc_answers_block_hosts(65536), DISC_ANSWERS_MAX_BITS / 65536);
	assert_int_equal(disc_answers_block_hosts(65535), DISC_ANSWERS_MAX_BITS / 65535);
	assert_int_equal(disc_answers_block_hosts(1000), DISC_ANSWERS_MAX_HOSTS);
	assert_int_equal(disc_answers_block_hosts(1), DISC_ANSWERS_MAX_HOSTS);
	assert_true(disc_answers_block_hosts(65536) * 65536 <= DISC_ANSWERS_MAX_BITS);
}

static void test_init_refuses_bad_sizes(void **state)
{
	struct disc_answers a;
	uint16_t ports[] = {22, 80};
	struct disc_error err = {0};

	assert_int_equal(disc_answers_init(&a, ports, 0, 4, &err), DISC_ERR_RANGE);
	assert_int_equal(disc_answers_init(&a, ports, 2, 0, NULL), DISC_ERR_RANGE);
	assert_int_equal(disc_answers_init(&a, ports, 2, DISC_ANSWERS_MAX_HOSTS + 1, NULL),
			 DISC_ERR_RANGE);
	disc_answers_release(&a); /* safe after a failed init */
}

/* Each mark sets exactly the bit of its permutation index, port_no * n + host_no. */
static void test_mark_sets_the_probe_index(void **state)
{
	struct disc_answers a;
	uint16_t ports[] = {21, 22, 80, 443, 8080};
	uint32_t hosts[] = {IP(198, 18, 1, 11), IP(198, 18, 1, 12), IP(198, 18, 2, 11)};
	const size_t n = 3, np = 5;
	bool first;

	assert_int_equal(disc_answers_init(&a, ports, np, 16, NULL), DISC_OK);
	disc_answers_start(&a, hosts, n);
	for (uint64_t idx = 0; idx < n * np; idx++)
		assert_false(disc_answers_test(&a, idx));
	assert_true(disc_answers_mark(&a, hosts[1], 80, &first));
	assert_true(first);
	assert_true(disc_answers_mark(&a, hosts[1], 8080, &first));
	assert_false(first); /* the host was marked before */
	assert_true(disc_answers_mark(&a, hosts[2], 21, &first));
	assert_true(first);
	for (uint64_t idx = 0; idx < n * np; idx++) {
		bool want = idx == 2 * n + 1 || idx == 4 * n + 1 || idx == 0 * n + 2;

		if (disc_answers_test(&a, idx) != want)
			fail_msg("bit %llu is %d", (unsigned long long)idx, !want);
	}
	/* marking again changes nothing */
	assert_true(disc_answers_mark(&a, hosts[1], 80, NULL));
	assert_true(disc_answers_test(&a, 2 * n + 1));
	disc_answers_release(&a);
}

/* Closed ports are counted per host, each port once, and the count starts over per block. */
static void test_closed_counts(void **state)
{
	struct disc_answers a;
	uint16_t ports[] = {21, 22, 80, 443, 8080};
	uint32_t hosts[] = {IP(198, 18, 1, 11), IP(198, 18, 1, 12)};
	uint32_t closed = 99;
	bool first;

	assert_int_equal(disc_answers_init(&a, ports, 5, 16, NULL), DISC_OK);
	disc_answers_start(&a, hosts, 2);
	assert_true(disc_answers_mark_closed(&a, hosts[0], 21, &first, &closed));
	assert_true(first);
	assert_int_equal(closed, 1);
	/* a repeated RST (a retry's answer, a retransmission) counts once */
	assert_true(disc_answers_mark_closed(&a, hosts[0], 21, &first, &closed));
	assert_false(first);
	assert_int_equal(closed, 1);
	/* an open port of the same host is no closed port */
	assert_true(disc_answers_mark(&a, hosts[0], 22, NULL));
	assert_true(disc_answers_mark_closed(&a, hosts[0], 80, NULL, &closed));
	assert_int_equal(closed, 2);
	assert_true(disc_answers_mark_closed(&a, hosts[1], 80, NULL, &closed));
	assert_int_equal(closed, 1);
	/* not in the block: no count */
	assert_false(disc_answers_mark_closed(&a, IP(198, 18, 1, 13), 80, NULL, &closed));
	assert_int_equal(closed, 0);
	assert_false(disc_answers_mark_closed(&a, hosts[0], 23, NULL, &closed));
	assert_int_equal(closed, 0);
	disc_answers_start(&a, hosts, 2);
	assert_true(disc_answers_mark_closed(&a, hosts[0], 443, NULL, &closed));
	assert_int_equal(closed, 1);
	disc_answers_release(&a);
}

static void test_unknown_pairs_are_not_marked(void **state)
{
	struct disc_answers a;
	uint16_t ports[] = {22, 80};
	uint32_t hosts[] = {IP(198, 18, 0, 1), IP(198, 18, 0, 2)};
	bool first = true;

	assert_int_equal(disc_answers_init(&a, ports, 2, 2, NULL), DISC_OK);
	disc_answers_start(&a, hosts, 2);
	assert_false(disc_answers_mark(&a, IP(198, 18, 0, 3), 22, &first)); /* not in the block */
	assert_false(first);
	assert_false(disc_answers_mark(&a, IP(198, 18, 0, 1), 23, &first)); /* port not scanned */
	assert_false(disc_answers_mark(&a, 0, 0, NULL));
	for (uint64_t idx = 0; idx < 4; idx++)
		assert_false(disc_answers_test(&a, idx));
	disc_answers_release(&a);
}

/* A range of ports (-p-, 1-1000) is found by subtraction: its ends count, beyond them nothing. */
static void test_port_range(void **state)
{
	struct disc_answers a;
	uint16_t ports[100];
	uint32_t hosts[] = {IP(198, 18, 0, 1), IP(198, 18, 0, 2)};

	for (uint16_t i = 0; i < 100; i++)
		ports[i] = (uint16_t)(1000 + i);
	assert_int_equal(disc_answers_init(&a, ports, 100, 2, NULL), DISC_OK);
	disc_answers_start(&a, hosts, 2);
	assert_false(disc_answers_mark(&a, hosts[0], 999, NULL));
	assert_false(disc_answers_mark(&a, hosts[0], 1100, NULL));
	assert_false(disc_answers_mark(&a, hosts[0], 0, NULL));
	assert_true(disc_answers_mark(&a, hosts[0], 1000, NULL));
	assert_true(disc_answers_mark(&a, hosts[1], 1099, NULL));
	for (uint64_t idx = 0; idx < 200; idx++)
		assert_int_equal(disc_answers_test(&a, idx), idx == 0 || idx == 99 * 2 + 1);
	disc_answers_release(&a);
}

/* A new block forgets the last one: its hosts, its bits, its first marks. */
static void test_start_clears_the_last_block(void **state)
{
	struct disc_answers a;
	uint16_t ports[] = {1, 2, 3};
	uint32_t b1[4], b2[2] = {IP(198, 18, 1, 1), IP(198, 18, 0, 1)};
	bool first;

	for (uint32_t i = 0; i < 4; i++)
		b1[i] = IP(198, 18, 0, 1 + i);
	assert_int_equal(disc_answers_init(&a, ports, 3, 4, NULL), DISC_OK);
	disc_answers_start(&a, b1, 4);
	for (uint32_t i = 0; i < 4; i++)
		for (uint16_t p = 1; p <= 3; p++)
			assert_true(disc_answers_mark(&a, b1[i], p, NULL));
	disc_answers_start(&a, b2, 2);
	for (uint64_t idx = 0; idx < 12; idx++)
		assert_false(disc_answers_test(&a, idx));
	assert_false(disc_answers_mark(&a, b1[1], 1, NULL)); /* left with its block */
	assert_true(disc_answers_mark(&a, IP(198, 18, 0, 1), 3, &first));
	assert_true(first);
	assert_true(disc_answers_test(&a, 2 * 2 + 1));
	disc_answers_release(&a);
}

/* A full block of neighbouring addresses (one /16): every host found at its own index. */
static void test_full_block_of_neighbours(void **state)
{
	struct disc_answers a;
	uint16_t ports[] = {443};
	uint32_t *hosts = malloc(DISC_ANSWERS_MAX_HOSTS * sizeof(*hosts));
	const size_t n = DISC_ANSWERS_MAX_HOSTS;

	assert_non_null(hosts);
	for (size_t i = 0; i < n; i++)
		hosts[i] = IP(172, 16, 0, 0) + (uint32_t)((i * 7919) % n); /* a shuffled /16 */
	assert_int_equal(disc_answers_init(&a, ports, 1, n, NULL), DISC_OK);
	disc_answers_start(&a, hosts, n);
	for (size_t i = 0; i < n; i += 3)
		assert_true(disc_answers_mark(&a, hosts[i], 443, NULL));
	for (size_t i = 0; i < n; i++)
		if (disc_answers_test(&a, i) != (i % 3 == 0))
			fail_msg("host %zu", i);
	disc_answers_release(&a);
	free(hosts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block_hosts),
		cmocka_unit_test(test_init_refuses_bad_sizes),
		cmocka_unit_test(test_mark_sets_the_probe_index),
		cmocka_unit_test(test_closed_counts),
		cmocka_unit_test(test_unknown_pairs_are_not_marked),
		cmocka_unit_test(test_port_range),
		cmocka_unit_test(test_start_clears_the_last_block),
		cmocka_unit_test(test_full_block_of_neighbours),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
