/* Unit tests for disc_ports: port list syntax and the built-in top-ports list. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "disc/ports.h"

static void test_simple_list(void **state)
{
	struct disc_ports p;
	struct disc_error err = {0};

	disc_ports_init(&p);
	assert_int_equal(disc_ports_parse(&p, "80,22,1000-2000,22", DISC_PROTO_TCP, &err), DISC_OK);
	assert_int_equal(p.n_tcp, 2 + 1001);
	assert_int_equal(p.n_udp, 0);
	assert_int_equal(p.tcp[0], 22);
	assert_int_equal(p.tcp[1], 80);
	assert_int_equal(p.tcp[2], 1000);
	assert_int_equal(p.tcp[p.n_tcp - 1], 2000);
	/* Parsing again adds to the set. */
	assert_int_equal(disc_ports_parse(&p, "443", DISC_PROTO_TCP, &err), DISC_OK);
	assert_int_equal(p.n_tcp, 2 + 1001 + 1);
	disc_ports_release(&p);
}

static void test_all_and_open_ranges(void **state)
{
	struct disc_ports p;
	struct disc_error err = {0};

	disc_ports_init(&p);
	assert_int_equal(disc_ports_parse(&p, "-", DISC_PROTO_TCP, &err), DISC_OK);
	assert_int_equal(p.n_tcp, 65536);
	assert_int_equal(p.tcp[0], 0);
	assert_int_equal(p.tcp[65535], 65535);
	disc_ports_release(&p);

	disc_ports_init(&p);
	assert_int_equal(disc_ports_parse(&p, "-10,65530-", DISC_PROTO_TCP, &err), DISC_OK);
	assert_int_equal(p.n_tcp, 11 + 6);
	assert_int_equal(p.tcp[10], 10);
	assert_int_equal(p.tcp[11], 65530);
	disc_ports_release(&p);
}

static void test_protocol_prefixes(void **state)
{
	struct disc_ports p;
	struct disc_error err = {0};

	disc_ports_init(&p);
	/* Unqualified items go to both sets here; prefixes switch from there on. */
	assert_int_equal(disc_ports_parse(&p, "7,U:53,161,T:21-23,u:500",
					  DISC_PROTO_TCP | DISC_PROTO_UDP, &err),
			 DISC_OK);
	assert_int_equal(p.n_tcp, 1 + 3);
	assert_int_equal(p.n_udp, 1 + 3);
	assert_int_equal(p.tcp[0], 7);
	assert_int_equal(p.tcp[3], 23);
	assert_int_equal(p.udp[0], 7);
	assert_int_equal(p.udp[1], 53);
	assert_int_equal(p.udp[2], 161);
	assert_int_equal(p.udp[3], 500);
	disc_ports_release(&p);
}

static void test_service_names(void **state)
{
	struct disc_ports p;
	struct disc_error err = {0};

	disc_ports_init(&p);
	assert_int_equal(disc_ports_parse(&p, "ssh,https,U:domain", DISC_PROTO_TCP, &err), DISC_OK);
	assert_int_equal(p.n_tcp, 2);
	assert_int_equal(p.tcp[0], 22);
	assert_int_equal(p.tcp[1], 443);
	assert_int_equal(p.n_udp, 1);
	assert_int_equal(p.udp[0], 53);
	disc_ports_release(&p);

	assert_string_equal(disc_ports_service_name(22, DISC_PROTO_TCP), "ssh");
	assert_string_equal(disc_ports_service_name(161, DISC_PROTO_UDP), "snmp");
	assert_null(disc_ports_service_name(22, DISC_PROTO_UDP));
	assert_null(disc_ports_service_name(1, DISC_PROTO_TCP));
}

static void expect_error(const char *spec, unsigned unq, const char *msg)
{
	struct disc_ports p;
	struct disc_error err = {0};

	disc_ports_init(&p);
	assert_int_equal(disc_ports_parse(&p, "9", DISC_PROTO_TCP, &err), DISC_OK);
	assert_int_equal(disc_ports_parse(&p, spec, unq, &err), DISC_ERR_SYNTAX);
	assert_string_equal(err.msg, msg);
	/* The set is unchanged by a failed parse. */
	assert_int_equal(p.n_tcp, 1);
	assert_int_equal(p.tcp[0], 9);
	assert_int_equal(p.n_udp, 0);
	disc_ports_release(&p);
}

static void test_errors(void **state)
{
	expect_error("22,2000-1000", DISC_PROTO_TCP,
		     "bad port range \"2000-1000\" in \"22,2000-1000\"");
	expect_error("80,65536", DISC_PROTO_TCP, "bad port \"65536\" in \"80,65536\" (0-65535)");
	expect_error("80,,81", DISC_PROTO_TCP, "empty item in port list \"80,,81\"");
	expect_error("80,", DISC_PROTO_TCP, "empty item in port list \"80,\"");
	expect_error("", DISC_PROTO_TCP, "empty port list");
	expect_error("S:80", DISC_PROTO_TCP,
		     "unknown protocol prefix \"S:\" in \"S:80\" (T: or U:)");
	expect_error("1-2-3", DISC_PROTO_TCP, "bad port range \"1-2-3\" in \"1-2-3\"");
	expect_error("+80", DISC_PROTO_TCP, "unknown service name \"+80\" for tcp in \"+80\"");
	expect_error("nosuchservice", DISC_PROTO_TCP,
		     "unknown service name \"nosuchservice\" for tcp in \"nosuchservice\"");
	expect_error("U:ssh", DISC_PROTO_TCP, "unknown service name \"ssh\" for udp in \"U:ssh\"");
	expect_error("80", 0, "port \"80\" has no protocol; prefix it with T: or U:");
	expect_error("U:53,T:", DISC_PROTO_TCP, "empty item in port list \"U:53,T:\"");
}

static void test_top_ports(void **state)
{
	struct disc_ports p;
	struct disc_error err = {0};
	size_t ntcp = disc_ports_list_len(DISC_PROTO_TCP),
	       nudp = disc_ports_list_len(DISC_PROTO_UDP);

	/* The embedded list parsed, and is long enough to be useful. */
	assert_true(ntcp >= 200);
	assert_true(nudp >= 40);
	assert_int_equal(disc_ports_list_at(DISC_PROTO_TCP, 0), 80);
	assert_int_equal(disc_ports_list_at(DISC_PROTO_UDP, 0), 53);
	assert_int_equal(disc_ports_list_at(DISC_PROTO_TCP, ntcp), -1);

	disc_ports_init(&p);
	assert_int_equal(disc_ports_add_top(&p, DISC_PROTO_TCP, 3, &err), DISC_OK);
	assert_int_equal(p.n_tcp, 3);
	assert_int_equal(p.tcp[0], 22);
	assert_int_equal(p.tcp[1], 80);
	assert_int_equal(p.tcp[2], 443);
	disc_ports_release(&p);

	/* The whole list has no duplicate port: N entries give N distinct ports. */
	disc_ports_init(&p);
	assert_int_equal(disc_ports_add_top(&p, DISC_PROTO_TCP, (unsigned)ntcp, &err), DISC_OK);
	assert_int_equal(disc_ports_add_top(&p, DISC_PROTO_UDP, (unsigned)nudp, &err), DISC_OK);
	assert_int_equal(p.n_tcp, ntcp);
	assert_int_equal(p.n_udp, nudp);
	/* Both protocols at once: the shorter UDP list is filled up to N. */
	assert_int_equal(
		disc_ports_add_top(&p, DISC_PROTO_TCP | DISC_PROTO_UDP, (unsigned)ntcp, &err),
		DISC_OK);
	assert_int_equal(p.n_tcp, ntcp);
	assert_int_equal(p.n_udp, ntcp);
	disc_ports_release(&p);

	/* Past the list: remaining ports ascending, so 65536 means all. */
	disc_ports_init(&p);
	assert_int_equal(disc_ports_add_top(&p, DISC_PROTO_TCP, (unsigned)ntcp + 5, &err), DISC_OK);
	assert_int_equal(p.n_tcp, ntcp + 5);
	assert_int_equal(p.tcp[0], 0); /* 0 is not in the list, so it is the first filler */
	disc_ports_release(&p);

	disc_ports_init(&p);
	assert_int_equal(disc_ports_add_top(&p, DISC_PROTO_TCP, 65536, &err), DISC_OK);
	assert_int_equal(p.n_tcp, 65536);
	assert_int_equal(disc_ports_add_top(&p, DISC_PROTO_TCP, 0, &err), DISC_ERR_RANGE);
	assert_int_equal(disc_ports_add_top(&p, DISC_PROTO_TCP, 65537, &err), DISC_ERR_RANGE);
	disc_ports_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_list),
		cmocka_unit_test(test_all_and_open_ranges),
		cmocka_unit_test(test_protocol_prefixes),
		cmocka_unit_test(test_service_names),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_top_ports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
