/*
 * Unit tests for disc_route: /proc/net/route and /proc/net/arp parsing from
 * fixture text (fixtures/route/), longest-prefix lookup, hostile input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc/route.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
#define FIX(name)      DISC_TEST_FIXTURES "/route/" name

static void test_lab_routes(void **state)
{
	struct disc_route_table t;
	struct disc_error err = {0};
	const struct disc_route *r;

	disc_route_table_init(&t);
	if (disc_route_load(&t, FIX("route_lab.txt"), &err) != DISC_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(t.n, 2);
	/* subnet A on-link */
	r = disc_route_lookup(&t, IP(198, 18, 1, 11));
	assert_non_null(r);
	assert_string_equal(r->ifname, "eth0");
	assert_int_equal(r->dst, IP(198, 18, 1, 0));
	assert_int_equal(r->mask, IP(255, 255, 255, 0));
	assert_int_equal(r->prefix_len, 24);
	assert_int_equal(r->gateway, 0);
	/* subnet B via the router */
	r = disc_route_lookup(&t, IP(198, 18, 2, 12));
	assert_non_null(r);
	assert_int_equal(r->gateway, IP(198, 18, 1, 254));
	/* no default route: nothing else is reachable */
	assert_null(disc_route_lookup(&t, IP(8, 8, 8, 8)));
	assert_null(disc_route_lookup(&t, IP(198, 18, 3, 1)));
	disc_route_table_release(&t);
}

/* A machine with a default route: loopback and its own addresses must get
 * no route, or a raw frame for them would leave through the default route's
 * interface (a bug the first cmdb scan of 127.0.0.1 had). */
static void test_local_destinations_have_no_route(void **state)
{
	static const char text[] =
		"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
		"eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
		"eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
	struct disc_route_table t;
	struct disc_error err = {0};

	disc_route_table_init(&t);
	if (disc_route_parse(&t, (const uint8_t *)text, sizeof(text) - 1, &err) != DISC_OK)
		fail_msg("%s", err.msg);
	assert_non_null(disc_route_lookup(&t, IP(192, 168, 0, 7)));
	assert_non_null(disc_route_lookup(&t, IP(198, 18, 1, 1))); /* via the default route */
	assert_null(disc_route_lookup(&t, IP(127, 0, 0, 1)));
	assert_null(disc_route_lookup(&t, IP(127, 255, 255, 254)));
	assert_null(disc_route_lookup(&t, IP(0, 0, 0, 0)));
	assert_true(disc_route_is_local(&t, IP(127, 0, 0, 1)));
	assert_false(disc_route_is_local(&t, IP(192, 168, 0, 5)));
	assert_int_equal(disc_route_add_local(&t, IP(192, 168, 0, 5), &err), DISC_OK);
	assert_true(disc_route_is_local(&t, IP(192, 168, 0, 5)));
	assert_null(disc_route_lookup(&t, IP(192, 168, 0, 5)));
	assert_non_null(disc_route_lookup(&t, IP(192, 168, 0, 6)));
	disc_route_table_release(&t);
}

static void test_longest_prefix_and_metric(void **state)
{
	struct disc_route_table t;
	struct disc_error err = {0};
	const struct disc_route *r;

	disc_route_table_init(&t);
	if (disc_route_load(&t, FIX("route_multi.txt"), &err) != DISC_OK)
		fail_msg("%s", err.msg);
	/* the route that is not up and the reject route are skipped */
	assert_int_equal(t.n, 5);
	r = disc_route_lookup(&t, IP(1, 2, 3, 4));
	assert_non_null(r);
	assert_int_equal(r->prefix_len, 0);
	assert_int_equal(r->gateway, IP(10, 0, 0, 1));
	r = disc_route_lookup(&t, IP(10, 0, 7, 7));
	assert_int_equal(r->prefix_len, 16);
	/* two /24s: the lower metric wins */
	r = disc_route_lookup(&t, IP(10, 0, 1, 9));
	assert_string_equal(r->ifname, "eth1");
	assert_int_equal(r->metric, 0);
	/* a host route beats them */
	r = disc_route_lookup(&t, IP(10, 0, 1, 5));
	assert_int_equal(r->prefix_len, 32);
	assert_int_equal(r->gateway, IP(10, 0, 1, 254));
	/* the down and reject /24s do not exist: the /16 is used */
	assert_int_equal(disc_route_lookup(&t, IP(10, 0, 2, 1))->prefix_len, 16);
	assert_int_equal(disc_route_lookup(&t, IP(10, 0, 3, 1))->prefix_len, 16);
	disc_route_table_release(&t);
}

static void test_neighbours(void **state)
{
	struct disc_neigh_table t;
	struct disc_error err = {0};
	uint8_t mac[6];
	static const uint8_t router[6] = {0x02, 0x1a, 0xb0, 0x00, 0x01, 0xfe};

	disc_neigh_table_init(&t);
	if (disc_neigh_load(&t, FIX("arp_lab.txt"), &err) != DISC_OK)
		fail_msg("%s", err.msg);
	/* incomplete (flags 0) and non-Ethernet (InfiniBand) entries are skipped */
	assert_int_equal(t.n, 3);
	assert_true(disc_neigh_lookup(&t, IP(198, 18, 1, 254), "eth0", mac));
	assert_memory_equal(mac, router, 6);
	assert_true(disc_neigh_lookup(&t, IP(198, 18, 1, 254), NULL, mac));
	assert_false(disc_neigh_lookup(&t, IP(198, 18, 1, 254), "eth1", mac));
	assert_false(disc_neigh_lookup(&t, IP(198, 18, 1, 16), NULL, mac));
	assert_true(disc_neigh_lookup(&t, IP(198, 18, 1, 99), "eth1", mac));
	assert_false(disc_neigh_lookup(&t, IP(198, 18, 1, 50), NULL, mac));
	disc_neigh_table_release(&t);
}

static enum disc_status parse_route(const char *text, struct disc_route_table *t,
				    struct disc_error *err)
{
	disc_route_table_init(t);
	return disc_route_parse(t, (const uint8_t *)text, strlen(text), err);
}

static void test_malformed(void **state)
{
	static const char *const bad_routes[] = {
		"Iface\tDestination\n eth0 000112C6 00000000\n",
		"h\neth0\tZZ0112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
		"h\neth0\t000112C6\t00000000\t0001\t0\t0\t-1\t00FFFFFF\t0\t0\t0\n",
		"h\neth0\t000112C6\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0\n",  /* not a prefix
										     */
		"h\neth0\t000112C6\t00000000\t0001\t0\t0\t0\t1FFFFFFFF\t0\t0\t0\n", /* 9 digits */
		"h\naveryveryverylongname0\t000112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
	};
	static const char *const bad_neigh[] = {
		"h\n198.18.1.1 0x1 0x2 02:1a:b0:00:01\n",
		"h\n198.18.1.256 0x1 0x2 02:1a:b0:00:01:01 * eth0\n",
		"h\n198.18.1.1 0x1 0x2 02:1a:b0:00:01:0g * eth0\n",
		"h\n198.18.1 0x1 0x2 02:1a:b0:00:01:01 * eth0\n",
		"h\n198.18.1.1.1 0x1 0x2 02:1a:b0:00:01:01 * eth0\n",
	};
	struct disc_route_table t;
	struct disc_neigh_table nt;
	struct disc_error err = {0};

	for (size_t i = 0; i < sizeof(bad_routes) / sizeof(bad_routes[0]); i++) {
		if (parse_route(bad_routes[i], &t, &err) == DISC_OK)
			fail_msg("route text %zu accepted", i);
		assert_non_null(strstr(err.msg, "line 2"));
		disc_route_table_release(&t);
	}
	for (size_t i = 0; i < sizeof(bad_neigh) / sizeof(bad_neigh[0]); i++) {
		disc_neigh_table_init(&nt);
		if (disc_neigh_parse(&nt, (const uint8_t *)bad_neigh[i], strlen(bad_neigh[i]),
				     &err) == DISC_OK)
			fail_msg("neighbour text %zu accepted", i);
		disc_neigh_table_release(&nt);
	}
}

/* Header only, empty, no final newline, CRLF, blank lines: all fine. */
static void test_edges(void **state)
{
	struct disc_route_table t;
	struct disc_error err = {0};
	const char *crlf = "hdr\r\n\r\neth0\t000112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0";

	assert_int_equal(parse_route("", &t, &err), DISC_OK);
	assert_int_equal(t.n, 0);
	disc_route_table_release(&t);
	assert_int_equal(parse_route("Iface\tDestination\n", &t, &err), DISC_OK);
	assert_int_equal(t.n, 0);
	disc_route_table_release(&t);
	assert_int_equal(parse_route(crlf, &t, &err), DISC_OK);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.routes[0].dst, IP(198, 18, 1, 0));
	disc_route_table_release(&t);
	/* a missing file is an I/O error with its name */
	disc_route_table_init(&t);
	assert_int_equal(disc_route_load(&t, FIX("no-such-file"), &err), DISC_ERR_IO);
	assert_non_null(strstr(err.msg, "no-such-file"));
	disc_route_table_release(&t);
}

/* Every prefix of a valid file parses or fails cleanly (run under ASan: no overread). */
static void test_truncations(void **state)
{
	FILE *f = fopen(FIX("route_multi.txt"), "rb");
	char buf[4096];
	size_t len;

	assert_non_null(f);
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	for (size_t n = 0; n <= len; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		struct disc_route_table t;

		assert_non_null(copy);
		memcpy(copy, buf, n);
		disc_route_table_init(&t);
		(void)disc_route_parse(&t, copy, n, NULL);
		disc_route_table_release(&t);
		free(copy);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lab_routes), cmocka_unit_test(test_local_destinations_have_no_route),
		cmocka_unit_test(test_longest_prefix_and_metric),
		cmocka_unit_test(test_neighbours), cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_edges),	   cmocka_unit_test(test_truncations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
