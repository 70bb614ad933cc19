/*
 * Unit tests for disc_results: de-duplication of hosts and ports, the SYN
 * proxy rule, and the sorted observation output.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc/results.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static const uint8_t mac1[6] = {0x00, 0x1b, 0x21, 0x00, 0x01, 0x0b};

static void test_hosts_dedup(void **state)
{
	struct disc_results r;
	bool is_new;
	const struct disc_result_host *h;

	disc_results_init(&r);
	assert_int_equal(
		disc_results_host(&r, IP(198, 18, 0, 2), DISC_REASON_ARP, -1, mac1, &is_new, NULL),
		DISC_OK);
	assert_true(is_new);
	/* a later echo reply: not new, first reason kept, the TTL filled in */
	assert_int_equal(
		disc_results_host(&r, IP(198, 18, 0, 2), DISC_REASON_ECHO, 64, NULL, &is_new, NULL),
		DISC_OK);
	assert_false(is_new);
	h = disc_results_find(&r, IP(198, 18, 0, 2));
	assert_non_null(h);
	assert_int_equal(h->reason, DISC_REASON_ARP);
	assert_int_equal(h->ttl, 64);
	assert_true(h->has_mac);
	assert_memory_equal(h->mac, mac1, 6);
	assert_int_equal(r.n_hosts, 1);
	assert_null(disc_results_find(&r, IP(198, 18, 0, 3)));
	disc_results_release(&r);
}

static void test_ports_dedup(void **state)
{
	struct disc_results r;
	bool is_new;

	disc_results_init(&r);
	assert_false(disc_results_answered(&r, IP(198, 18, 0, 9), 22));
	disc_results_port(&r, IP(198, 18, 0, 9), 22, true, DISC_REASON_SYN_ACK, 63, &is_new, NULL);
	assert_true(is_new);
	/* retransmitted SYN-ACK, and a retry's answer: counted once */
	disc_results_port(&r, IP(198, 18, 0, 9), 22, true, DISC_REASON_SYN_ACK, 63, &is_new, NULL);
	assert_false(is_new);
	disc_results_port(&r, IP(198, 18, 0, 9), 22, false, DISC_REASON_RST, 63, &is_new, NULL);
	assert_false(is_new);
	disc_results_port(&r, IP(198, 18, 0, 9), 23, false, DISC_REASON_RST, 63, &is_new, NULL);
	assert_true(is_new);
	assert_true(disc_results_answered(&r, IP(198, 18, 0, 9), 22));
	assert_true(disc_results_answered(&r, IP(198, 18, 0, 9), 23));
	assert_false(disc_results_answered(&r, IP(198, 18, 0, 9), 24));
	assert_int_equal(r.n_open, 1);
	/* the host came up with its first answer */
	assert_int_equal(r.n_hosts, 1);
	assert_int_equal(disc_results_find(&r, IP(198, 18, 0, 9))->reason, DISC_REASON_SYN_ACK);
	assert_int_equal(disc_results_find(&r, IP(198, 18, 0, 9))->open, 1);
	assert_int_equal(disc_results_find(&r, IP(198, 18, 0, 9))->closed, 1);
	disc_results_release(&r);
}

static void test_syn_proxy_rule(void **state)
{
	/* too few ports probed to tell */
	assert_false(disc_results_is_syn_proxy(63, 63));
	assert_false(disc_results_is_syn_proxy(20, 20));
	/* nearly every port of a long list */
	assert_true(disc_results_is_syn_proxy(64, 64));
	assert_true(disc_results_is_syn_proxy(900, 1000));
	assert_true(disc_results_is_syn_proxy(65536, 65536));
	assert_false(disc_results_is_syn_proxy(899, 1000));
	/* a busy server is not a proxy */
	assert_false(disc_results_is_syn_proxy(200, 65536));
	assert_false(disc_results_is_syn_proxy(0, 0));
}

/* Runs emit into a memory buffer; returns the text (caller frees). */
static char *emit(const struct disc_results *r, uint64_t probed, size_t *hosts, size_t *ports,
		  size_t *proxies)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct disc_obs_writer w;
	struct disc_results_emit_opts o = {.ports_probed = probed, .proto = "tcp"};
	struct disc_error err = {0};

	assert_non_null(f);
	disc_obs_writer_init(&w, f, "t");
	if (disc_results_emit(r, &w, &o, hosts, ports, proxies, &err) != DISC_OK)
		fail_msg("%s", err.msg);
	fclose(f);
	return buf;
}

static void test_emit_sorted(void **state)
{
	struct disc_results r;
	size_t hosts, ports, proxies;
	char *text;
	const char *a, *b, *c, *p80, *p443;

	disc_results_init(&r);
	disc_results_port(&r, IP(198, 18, 0, 20), 443, true, DISC_REASON_SYN_ACK, 64, NULL, NULL);
	disc_results_host(&r, IP(198, 18, 0, 3), DISC_REASON_ARP, -1, mac1, NULL, NULL);
	disc_results_port(&r, IP(198, 18, 0, 20), 80, true, DISC_REASON_SYN_ACK, 64, NULL, NULL);
	disc_results_port(&r, IP(198, 18, 0, 20), 81, false, DISC_REASON_RST, 64, NULL, NULL);
	disc_results_host(&r, IP(9, 255, 255, 255), DISC_REASON_ECHO, 60, NULL, NULL, NULL);
	text = emit(&r, 100, &hosts, &ports, &proxies);
	assert_int_equal(hosts, 3);
	assert_int_equal(ports, 2);
	assert_int_equal(proxies, 0);
	a = strstr(text, "\"ip\":\"9.255.255.255\"");
	b = strstr(text, "\"ip\":\"198.18.0.3\"");
	c = strstr(text, "\"kind\":\"host\",\"scan_id\":\"t\"");
	p80 = strstr(text, "\"port\":80,");
	p443 = strstr(text, "\"port\":443,");
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_non_null(p80);
	assert_non_null(p443);
	/* hosts by address, each followed by its ports in order */
	assert_true(a < b);
	assert_true(b < strstr(text, "\"ip\":\"198.18.0.20\""));
	assert_true(strstr(text, "\"ip\":\"198.18.0.20\"") < p80);
	assert_true(p80 < p443);
	/* closed ports are not written; the MAC and its vendor flag are */
	assert_null(strstr(text, "\"port\":81,"));
	assert_non_null(strstr(text, "\"mac\":\"00:1b:21:00:01:0b\""));
	assert_non_null(strstr(text, "\"reason\":\"arp-response\""));
	free(text);
	disc_results_release(&r);
}

static void test_emit_syn_proxy(void **state)
{
	struct disc_results r;
	size_t hosts, ports, proxies;
	char *text;

	disc_results_init(&r);
	for (uint16_t p = 1; p <= 100; p++)
		disc_results_port(&r, IP(198, 18, 0, 66), p, true, DISC_REASON_SYN_ACK, 64, NULL,
				  NULL);
	disc_results_port(&r, IP(198, 18, 0, 7), 22, true, DISC_REASON_SYN_ACK, 64, NULL, NULL);
	text = emit(&r, 100, &hosts, &ports, &proxies);
	assert_int_equal(hosts, 2);
	assert_int_equal(proxies, 1);
	assert_int_equal(ports, 1); /* only the real host's port */
	assert_non_null(strstr(text, "\"syn_proxy\":true"));
	assert_non_null(strstr(text, "\"open_ports_suppressed\":100"));
	assert_null(strstr(text, "\"ip\":\"198.18.0.66\",\"proto\""));
	free(text);
	/* the same answers out of 1000 probed ports: a real (busy) host */
	text = emit(&r, 1000, &hosts, &ports, &proxies);
	assert_int_equal(proxies, 0);
	assert_int_equal(ports, 101);
	assert_null(strstr(text, "syn_proxy"));
	free(text);
	disc_results_release(&r);
}

/* Takes what may be written now and writes it into a memory buffer; returns the text. */
static char *take(struct disc_results *r, size_t *n_hosts, size_t *n_ports)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct disc_obs_writer w;
	struct disc_results_emit_opts o = {.proto = "tcp"};
	struct disc_results_take t = {0};
	struct disc_error err = {0};

	assert_non_null(f);
	disc_obs_writer_init(&w, f, "t");
	if (disc_results_take(r, &t, &err) != DISC_OK ||
	    disc_results_take_write(&t, &w, &o, &err) != DISC_OK)
		fail_msg("%s", err.msg);
	*n_hosts = t.n_hosts;
	*n_ports = t.n_ports;
	disc_results_take_release(&t);
	fclose(f);
	return buf;
}

static size_t count(const char *text, const char *what)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	return n;
}

/* A short port list: hosts and ports go out as they are found, each once. */
static void test_take_streams(void **state)
{
	struct disc_results r;
	size_t nh, np, hosts, ports, proxies;
	char *text;

	disc_results_init(&r);
	r.proxy_ports = 3; /* too few to make a SYN proxy */
	disc_results_host(&r, IP(198, 18, 0, 3), DISC_REASON_ARP, -1, mac1, NULL, NULL);
	text = take(&r, &nh, &np);
	assert_int_equal(nh, 1);
	assert_int_equal(np, 0);
	assert_non_null(strstr(text, "\"ip\":\"198.18.0.3\""));
	free(text);
	disc_results_port(&r, IP(198, 18, 0, 3), 22, true, DISC_REASON_SYN_ACK, 64, NULL, NULL);
	disc_results_port(&r, IP(198, 18, 0, 9), 80, true, DISC_REASON_SYN_ACK, 60, NULL, NULL);
	text = take(&r, &nh, &np);
	/* the new host 198.18.0.9 first, then both ports */
	assert_int_equal(nh, 1);
	assert_int_equal(np, 2);
	assert_true(strstr(text, "\"kind\":\"host\"") < strstr(text, "\"kind\":\"port\""));
	free(text);
	text = take(&r, &nh, &np);
	assert_int_equal(nh + np, 0);
	assert_string_equal(text, "");
	free(text);
	/* the end writes again only the host whose line changed (its TTL came later) */
	disc_results_settle(&r, 3);
	text = emit(&r, 3, &hosts, &ports, &proxies);
	assert_int_equal(hosts, 2);
	assert_int_equal(ports, 2);
	assert_int_equal(count(text, "\n"), 1);
	assert_non_null(strstr(text, "\"ip\":\"198.18.0.3\""));
	assert_non_null(strstr(text, "\"ttl\":64"));
	free(text);
	disc_results_release(&r);
}

/*
 * A long port list: a host's open ports are held back until it is proven no
 * SYN proxy (enough closed ports, or the end); a proxy's never go out, and
 * its host line comes again with syn_proxy, stamped later than the first.
 */
static void test_take_holds_possible_proxies(void **state)
{
	struct disc_results r;
	size_t nh, np, hosts, ports, proxies;
	const struct disc_result_host *h;
	char *text, *at1;

	disc_results_init(&r);
	r.proxy_ports = 100;
	for (uint16_t p = 1; p <= 95; p++)
		disc_results_port(&r, IP(198, 18, 0, 66), p, true, DISC_REASON_SYN_ACK, 64, NULL,
				  NULL);
	disc_results_port(&r, IP(198, 18, 0, 7), 22, true, DISC_REASON_SYN_ACK, 64, NULL, NULL);
	disc_results_host(&r, IP(198, 18, 0, 8), DISC_REASON_ARP, -1, mac1, NULL, NULL);
	disc_results_port(&r, IP(198, 18, 0, 8), 80, true, DISC_REASON_SYN_ACK, 64, NULL, NULL);
	text = take(&r, &nh, &np);
	assert_int_equal(nh, 3);
	assert_int_equal(np, 0);
	free(text);
	/* 10 closed ports of 100 could still leave a proxy; the 11th cannot */
	for (uint16_t p = 1; p <= 10; p++)
		disc_results_port(&r, IP(198, 18, 0, 7), p, false, DISC_REASON_RST, 64, NULL, NULL);
	text = take(&r, &nh, &np);
	assert_int_equal(np, 0);
	free(text);
	disc_results_port(&r, IP(198, 18, 0, 7), 11, false, DISC_REASON_RST, 64, NULL, NULL);
	text = take(&r, &nh, &np);
	assert_int_equal(nh, 0);
	assert_int_equal(np, 1);
	assert_non_null(strstr(text, "\"ip\":\"198.18.0.7\",\"proto\":\"tcp\",\"port\":22,"));
	free(text);
	/* the raw engine reports its own count of closed ports */
	disc_results_closed(&r, IP(198, 18, 0, 8), 11);
	text = take(&r, &nh, &np);
	assert_int_equal(np, 1);
	free(text);
	/* a port found after the proof goes out at once */
	disc_results_port(&r, IP(198, 18, 0, 8), 443, true, DISC_REASON_SYN_ACK, 64, NULL, NULL);
	text = take(&r, &nh, &np);
	assert_int_equal(np, 1);
	free(text);
	/* the end: 198.18.0.66 is a proxy; nothing of it was or is written as a port */
	disc_results_settle(&r, 100);
	text = take(&r, &nh, &np);
	assert_int_equal(nh + np, 0);
	free(text);
	h = disc_results_find(&r, IP(198, 18, 0, 66));
	assert_true(disc_results_host_is_proxy(h, 100));
	text = emit(&r, 100, &hosts, &ports, &proxies);
	assert_int_equal(hosts, 3);
	assert_int_equal(ports, 3);
	assert_int_equal(proxies, 1);
	assert_int_equal(count(text, "\n"), 1); /* the proxy's line; the others said it all */
	assert_null(strstr(text, "\"kind\":\"port\""));
	assert_non_null(strstr(text, "\"syn_proxy\":true"));
	/* stamped at least a millisecond after the host was seen */
	at1 = strstr(text, "\"at\":\"");
	assert_non_null(at1);
	{
		char first[32], line[32];

		disc_obs_time_str(&h->seen, first);
		memcpy(line, at1 + 6, 24);
		line[24] = '\0';
		assert_true(strcmp(line, first) > 0);
	}
	free(text);
	/* a host with a port line out is never called a proxy afterwards */
	h = disc_results_find(&r, IP(198, 18, 0, 7));
	assert_false(disc_results_host_is_proxy(h, 1));
	disc_results_release(&r);
}

/* Connect mode: hosts wait until they are ready (their MAC looked up), and their ports with them.
 */
static void test_take_waits_for_ready_hosts(void **state)
{
	struct disc_results r;
	size_t nh, np;
	char *text;

	disc_results_init(&r);
	r.proxy_ports = 2;
	r.hold_hosts = true;
	disc_results_port(&r, IP(198, 18, 0, 5), 22, true, DISC_REASON_CONNECT, -1, NULL, NULL);
	text = take(&r, &nh, &np);
	assert_int_equal(nh + np, 0);
	free(text);
	disc_results_host(&r, IP(198, 18, 0, 5), DISC_REASON_ARP, -1, mac1, NULL, NULL);
	disc_results_ready(&r);
	text = take(&r, &nh, &np);
	assert_int_equal(nh, 1);
	assert_int_equal(np, 1);
	assert_non_null(strstr(text, "\"mac\":\"00:1b:21:00:01:0b\""));
	free(text);
	disc_results_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hosts_dedup),
		cmocka_unit_test(test_ports_dedup),
		cmocka_unit_test(test_syn_proxy_rule),
		cmocka_unit_test(test_emit_sorted),
		cmocka_unit_test(test_emit_syn_proxy),
		cmocka_unit_test(test_take_streams),
		cmocka_unit_test(test_take_holds_possible_proxies),
		cmocka_unit_test(test_take_waits_for_ready_hosts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
