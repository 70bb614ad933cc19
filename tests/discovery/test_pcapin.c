/*
 * Unit tests for disc_pcapin: what the --pcap reader makes of the captures
 * in corpus/pcapin (built by tools/make_pcap_corpus.py, whose docstring is
 * the ground truth used here), and its errors for bad files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc/pcapin.h"

#define CORPUS DISC_TEST_FIXTURES "/../corpus/pcapin/"

static struct disc_os_db os;

static int setup(void **state)
{
	disc_os_db_init(&os);
	return disc_os_db_load_builtin(&os, NULL) == DISC_OK ? 0 : -1;
}

static int teardown(void **state)
{
	disc_os_db_release(&os);
	return 0;
}

/* The observations of a file as an array of objects, and the reader's stats. */
struct result {
	json_t *lines;
	struct disc_pcapin_stats st;
	size_t hosts, ports, services;
	char *text;
};

static void read_capture(const char *file, const struct disc_pcapin_config *cfg, struct result *res)
{
	struct disc_pcapin *p = NULL;
	struct disc_error err = {0};
	struct disc_obs_writer w;
	size_t len = 0;
	FILE *out = open_memstream(&res->text, &len);
	char path[512];

	assert_non_null(out);
	snprintf(path, sizeof(path), "%s%s", CORPUS, file);
	if (disc_pcapin_open(&p, path, cfg, &err) != DISC_OK)
		fail_msg("%s: %s", file, err.msg);
	if (disc_pcapin_run(p, &err) != DISC_OK)
		fail_msg("%s: %s", file, err.msg);
	disc_pcapin_get_stats(p, &res->st);
	disc_obs_writer_init(&w, out, "t");
	assert_int_equal(
		disc_pcapin_emit(p, &w, NULL, &res->hosts, &res->ports, &res->services, &err),
		DISC_OK);
	fclose(out);
	disc_pcapin_free(p);
	res->lines = json_array();
	for (char *line = res->text; *line;) {
		char *nl = strchr(line, '\n');
		json_error_t jerr;
		json_t *obj;

		assert_non_null(nl);
		obj = json_loadb(line, (size_t)(nl - line), 0, &jerr);
		if (!obj)
			fail_msg("not JSON: %.*s", (int)(nl - line), line);
		json_array_append_new(res->lines, obj);
		line = nl + 1;
	}
}

static void result_free(struct result *res)
{
	json_decref(res->lines);
	free(res->text);
}

/* The line of kind for ip (and port, 0 for hosts), or NULL. */
static json_t *find(const struct result *res, const char *kind, const char *ip, int port)
{
	size_t i;
	json_t *o;

	json_array_foreach(res->lines, i, o)
	{
		if (strcmp(json_string_value(json_object_get(o, "kind")), kind) != 0 ||
		    strcmp(json_string_value(json_object_get(o, "ip")), ip) != 0)
			continue;
		if (port && json_integer_value(json_object_get(o, "port")) != port)
			continue;
		return o;
	}
	return NULL;
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "(absent)";
}

static void test_session(void **state)
{
	struct disc_pcapin_config cfg = {0};
	struct result r = {0};
	json_t *h;

	read_capture("session.pcap", &cfg, &r);
	assert_int_equal(r.st.packets, 20);
	assert_string_equal(r.st.link, "EN10MB");
	assert_false(r.st.interrupted);
	/* the IPv6 frame is skipped without complaint; the cut TCP header is counted */
	assert_int_equal(r.st.bad_frames, 1);
	assert_int_equal(r.hosts, 4);
	assert_int_equal(r.ports, 2);
	assert_int_equal(r.services, 2);

	h = find(&r, "host", "198.18.0.1", 0);
	assert_non_null(h);
	assert_string_equal(str(h, "reason"), "arp-request");
	assert_string_equal(str(h, "mac"), "02:00:00:00:00:01");
	assert_true(json_is_true(json_object_get(h, "mac_local")));
	assert_string_equal(str(h, "at"), "2026-01-01T00:00:00.000Z");

	h = find(&r, "host", "198.18.0.2", 0);
	assert_non_null(h);
	assert_string_equal(str(h, "reason"), "arp-response");
	assert_string_equal(str(h, "mac"), "00:1b:21:aa:bb:cc");
	assert_int_equal(json_integer_value(json_object_get(h, "ttl")), 64);
	assert_string_equal(str(h, "at"), "2026-01-01T00:00:01.001Z"); /* the packet's time */
	assert_null(json_object_get(h, "os"));			       /* no --os */

	/* a routed host: TTL, no MAC (its frames carry the router's) */
	h = find(&r, "host", "198.19.0.7", 0);
	assert_non_null(h);
	assert_string_equal(str(h, "reason"), "echo-reply");
	assert_int_equal(json_integer_value(json_object_get(h, "ttl")), 60);
	assert_null(json_object_get(h, "mac"));

	/* its TCP header cut by the snap length: still a host */
	h = find(&r, "host", "198.18.0.3", 0);
	assert_non_null(h);
	assert_string_equal(str(h, "reason"), "ip-traffic");

	/* not hosts: 0.0.0.0 (DHCP), a bad IPv4 checksum */
	assert_null(find(&r, "host", "0.0.0.0", 0));
	assert_null(find(&r, "host", "198.18.0.99", 0));

	/* open ports from SYN-ACKs only: not the RST, not mid-stream data */
	h = find(&r, "port", "198.18.0.2", 22);
	assert_non_null(h);
	assert_string_equal(str(h, "state"), "open");
	assert_string_equal(str(h, "reason"), "syn-ack");
	assert_string_equal(str(h, "at"), "2026-01-01T00:00:03.003Z");
	assert_non_null(find(&r, "port", "198.18.0.2", 80));
	assert_null(find(&r, "port", "198.18.0.2", 81));
	assert_null(find(&r, "port", "198.18.0.2", 8080));
	assert_null(find(&r, "port", "198.18.0.3", 443));

	/* banners: the first server payload (not the retransmission with other
	 * bytes), named by service detection's database */
	h = find(&r, "service", "198.18.0.2", 22);
	assert_non_null(h);
	assert_string_equal(str(h, "service"), "ssh");
	assert_string_equal(str(h, "product"), "OpenSSH");
	assert_string_equal(str(h, "banner"), "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
	assert_string_equal(str(h, "at"), "2026-01-01T00:00:05.005Z");
	h = find(&r, "service", "198.18.0.2", 80);
	assert_non_null(h);
	assert_true(strncmp(str(h, "banner"), "HTTP/1.0 200 OK\r\n", 17) == 0);
	assert_string_equal(str(h, "service"), "http");
	assert_null(find(&r, "service", "198.18.0.2", 8080));

	/* order: hosts by address, each followed by its ports; services after */
	assert_true(strstr(r.text, "\"ip\":\"198.18.0.2\",\"mac\"") <
		    strstr(r.text, "\"ip\":\"198.18.0.2\",\"proto\":\"tcp\",\"port\":22"));
	assert_true(strstr(r.text, "\"kind\":\"service\"") > strstr(r.text, "198.19.0.7"));
	result_free(&r);
}

static void test_pcapng_same_as_pcap(void **state)
{
	struct disc_pcapin_config cfg = {.os = &os};
	struct result a = {0}, b = {0};

	read_capture("session.pcap", &cfg, &a);
	read_capture("session.pcapng", &cfg, &b);
	assert_string_equal(b.st.link, "EN10MB");
	assert_int_equal(b.st.packets, a.st.packets);
	/* the same packets at the same times (to the millisecond): the same lines */
	assert_string_equal(a.text, b.text);
	result_free(&a);
	result_free(&b);
}

static void test_os_from_capture(void **state)
{
	struct disc_pcapin_config cfg = {.os = &os};
	struct result r = {0};
	json_t *h, *o;

	read_capture("session.pcap", &cfg, &r);
	h = find(&r, "host", "198.18.0.2", 0);
	o = json_object_get(h, "os");
	assert_non_null(o);
	assert_string_equal(str(o, "family"), "Linux");
	/* the SSH banner's "deb12u" refines the SYN-ACK's Linux */
	assert_string_equal(str(o, "guess"), "Debian Linux 12");
	assert_true(json_integer_value(json_object_get(o, "confidence")) >= 80);
	assert_string_equal(str(h, "tcp_fingerprint"),
			    "64 | 65160 | 1460 | M,S,T,N,W | 7 | df,id0");
	/* a host without a SYN-ACK or banner gets no guess */
	assert_null(json_object_get(find(&r, "host", "198.19.0.7", 0), "os"));
	result_free(&r);
}

static void test_targets_limit_hosts(void **state)
{
	struct disc_targets t;
	struct disc_error err = {0};
	struct disc_pcapin_config cfg = {.targets = &t};
	struct result r = {0};

	disc_targets_init(&t, 0);
	assert_int_equal(disc_targets_add(&t, "198.18.0.2", &err), DISC_OK);
	assert_int_equal(disc_targets_add(&t, "198.19.0.0/24", &err), DISC_OK);
	assert_int_equal(disc_targets_finalize(&t, &err), DISC_OK);
	read_capture("session.pcap", &cfg, &r);
	assert_int_equal(r.hosts, 2);
	assert_non_null(find(&r, "host", "198.18.0.2", 0));
	assert_non_null(find(&r, "host", "198.19.0.7", 0));
	assert_null(find(&r, "host", "198.18.0.1", 0));
	assert_int_equal(r.ports, 2);
	result_free(&r);
	disc_targets_release(&t);
}

static void test_linux_cooked(void **state)
{
	struct disc_pcapin_config cfg = {.os = &os};
	struct result r = {0};
	json_t *h;

	read_capture("sll.pcap", &cfg, &r);
	assert_string_equal(r.st.link, "LINUX_SLL");
	h = find(&r, "host", "198.18.0.5", 0);
	assert_non_null(h);
	assert_string_equal(str(h, "reason"), "arp-response");
	assert_string_equal(str(h, "mac"), "00:1b:21:aa:bb:cc");
	assert_int_equal(json_integer_value(json_object_get(h, "ttl")), 127);
	assert_string_equal(str(json_object_get(h, "os"), "family"), "Windows");
	assert_non_null(find(&r, "port", "198.18.0.5", 443));
	result_free(&r);
}

static void test_raw_ip(void **state)
{
	struct disc_pcapin_config cfg = {0};
	struct result r = {0};
	json_t *h;

	read_capture("raw.pcap", &cfg, &r);
	assert_string_equal(r.st.link, "RAW");
	h = find(&r, "host", "198.18.0.6", 0);
	assert_non_null(h);
	assert_string_equal(str(h, "reason"), "syn-ack");
	assert_non_null(find(&r, "port", "198.18.0.6", 25));
	assert_string_equal(str(find(&r, "service", "198.18.0.6", 25), "banner"),
			    "220 mail ESMTP\r\n");
	result_free(&r);
}

static void test_nanosecond_big_endian(void **state)
{
	struct disc_pcapin_config cfg = {0};
	struct result r = {0};
	json_t *h;

	read_capture("nanosec_be.pcap", &cfg, &r);
	h = find(&r, "host", "198.18.0.7", 0);
	assert_non_null(h);
	assert_string_equal(str(h, "reason"), "echo-reply");
	assert_int_equal(r.st.first.tv_sec, 1767225600);
	assert_int_equal(r.st.first.tv_nsec, 1);
	result_free(&r);
}

static void test_empty_capture(void **state)
{
	struct disc_pcapin_config cfg = {0};
	struct result r = {0};

	read_capture("empty.pcap", &cfg, &r);
	assert_int_equal(r.st.packets, 0);
	assert_int_equal(json_array_size(r.lines), 0);
	result_free(&r);
}

static void test_banner_cap(void **state)
{
	struct disc_pcapin_config cfg = {.banner_max = 8};
	struct result r = {0};
	json_t *s;

	read_capture("session.pcap", &cfg, &r);
	s = find(&r, "service", "198.18.0.2", 22);
	assert_string_equal(str(s, "banner"), "SSH-2.0-");
	assert_true(json_is_true(json_object_get(s, "banner_truncated")));
	result_free(&r);
}

static void test_stop_flag(void **state)
{
	volatile sig_atomic_t stop = 1;
	struct disc_pcapin_config cfg = {.stop = &stop};
	struct disc_pcapin *p = NULL;
	struct disc_pcapin_stats st;
	struct disc_error err = {0};

	assert_int_equal(disc_pcapin_open(&p, CORPUS "session.pcap", &cfg, &err), DISC_OK);
	assert_int_equal(disc_pcapin_run(p, &err), DISC_OK);
	disc_pcapin_get_stats(p, &st);
	assert_true(st.interrupted);
	assert_int_equal(st.packets, 0);
	disc_pcapin_free(p);
}

static void expect_open_error(const char *file, enum disc_status want, const char *text)
{
	struct disc_pcapin_config cfg = {0};
	struct disc_pcapin *p = (struct disc_pcapin *)1;
	struct disc_error err = {0};
	char path[512];

	snprintf(path, sizeof(path), "%s%s", CORPUS, file);
	assert_int_equal(disc_pcapin_open(&p, path, &cfg, &err), want);
	assert_null(p);
	/* the message names the file and the problem */
	if (!strstr(err.msg, file) || !strstr(err.msg, text))
		fail_msg("%s: \"%s\" lacks \"%s\"", file, err.msg, text);
}

static void test_bad_files(void **state)
{
	struct disc_pcapin_config cfg = {0};
	struct disc_pcapin *p = NULL;
	struct disc_error err = {0};

	expect_open_error("garbage.bin", DISC_ERR_MALFORMED, "not a pcap or pcapng capture file");
	expect_open_error("header_cut.pcap", DISC_ERR_TRUNCATED, "header is cut off");
	expect_open_error("usb.pcap", DISC_ERR_UNSUPPORTED, "link type USB_LINUX (189)");
	expect_open_error("no-such-file.pcap", DISC_ERR_IO, "No such file");
	/* a file cut inside a packet: the header opens, reading fails */
	assert_int_equal(disc_pcapin_open(&p, CORPUS "truncated.pcap", &cfg, &err), DISC_OK);
	assert_int_equal(disc_pcapin_run(p, &err), DISC_ERR_TRUNCATED);
	assert_non_null(strstr(err.msg, "truncated.pcap: the capture is cut off after packet 4"));
	disc_pcapin_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session),
		cmocka_unit_test(test_pcapng_same_as_pcap),
		cmocka_unit_test(test_os_from_capture),
		cmocka_unit_test(test_targets_limit_hosts),
		cmocka_unit_test(test_linux_cooked),
		cmocka_unit_test(test_raw_ip),
		cmocka_unit_test(test_nanosecond_big_endian),
		cmocka_unit_test(test_empty_capture),
		cmocka_unit_test(test_banner_cap),
		cmocka_unit_test(test_stop_flag),
		cmocka_unit_test(test_bad_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
