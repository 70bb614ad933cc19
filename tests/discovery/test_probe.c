/*
 * Unit tests for disc_probe: a SYN built by prepare+make equals a frame built
 * independently (Python struct, see the comment at the array), and every
 * module's frames decode with disc_frame to what was asked, with valid
 * checksums, however many times make patches the same buffer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "disc/cksum.h"
#include "disc/frame.h"
#include "disc/probe.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static const struct disc_probe_config cfg = {
	.src_mac = {0x02, 0, 0, 0, 0, 1},
	.dst_mac = {0x02, 0, 0, 0, 0, 2},
	.src_ip = IP(10, 0, 0, 1),
};

/* 10.0.0.1:40000 -> 10.0.0.2:443 SYN, id 0x0102, seq deadbeef, TTL 64, window 1024, MSS 1460. */
static const uint8_t expected_syn[58] = {
	0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45,
	0x00, 0x00, 0x2c, 0x01, 0x02, 0x00, 0x00, 0x40, 0x06, 0x65, 0xc8, 0x0a, 0x00, 0x00, 0x01,
	0x0a, 0x00, 0x00, 0x02, 0x9c, 0x40, 0x01, 0xbb, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00,
	0x00, 0x60, 0x02, 0x04, 0x00, 0x44, 0x8b, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4};

static void test_syn_bytes(void **state)
{
	const struct disc_probe_module *m = disc_probe_find("tcp_syn");
	uint8_t f[DISC_PROBE_MAX_FRAME];
	struct disc_probe_target t = {
		.dst_ip = IP(10, 0, 0, 2),
		.dst_port = 443,
		.src_port = 40000,
		.seq = 0xdeadbeef,
		.ip_id = 0x0102,
	};

	assert_non_null(m);
	assert_int_equal(m->frame_len, sizeof(expected_syn));
	memset(f, 0xaa, sizeof(f));
	m->prepare(f, &cfg);
	/* Patch for another target first: make must overwrite everything per-probe. */
	{
		struct disc_probe_target other = {.dst_ip = IP(192, 168, 9, 9),
						  .dst_port = 1,
						  .src_port = 2,
						  .seq = 3,
						  .ip_id = 4};
		m->make(f, &cfg, &other);
	}
	m->make(f, &cfg, &t);
	assert_memory_equal(f, expected_syn, sizeof(expected_syn));
	/* Nothing written past the frame. */
	assert_int_equal(f[sizeof(expected_syn)], 0xaa);
}

/* Builds a probe with module name for t and decodes it. */
static void build_and_parse(const char *name, const struct disc_probe_target *t,
			    struct disc_frame *out, uint8_t *f)
{
	const struct disc_probe_module *m = disc_probe_find(name);
	struct disc_error err = {0};

	assert_non_null(m);
	assert_true(m->frame_len <= DISC_PROBE_MAX_FRAME);
	if (strcmp(name, "tcp_rst") != 0) {
		assert_non_null(m->bpf_filter);
		assert_true(m->snaplen >= 64);
	}
	m->prepare(f, &cfg);
	m->make(f, &cfg, t);
	if (disc_frame_parse(f, m->frame_len, DISC_LINK_ETHERNET, out, &err) != DISC_OK)
		fail_msg("%s: %s", name, err.msg);
}

static void test_tcp_round_trip(void **state)
{
	uint8_t f[DISC_PROBE_MAX_FRAME];
	struct disc_frame p;

	for (uint32_t i = 0; i < 1000; i++) {
		struct disc_probe_target t = {
			.dst_ip = IP(172, 16, 0, 0) + i * 7919u,
			.dst_port = (uint16_t)(i * 31),
			.src_port = (uint16_t)(32768 + i),
			.seq = i * 2654435761u,
			.ip_id = (uint16_t)i,
		};
		const uint8_t *tcp;

		build_and_parse("tcp_syn", &t, &p, f);
		assert_int_equal(p.ip.dst, t.dst_ip);
		assert_int_equal(p.ip.src, cfg.src_ip);
		assert_int_equal(p.ip.id, t.ip_id);
		assert_true(p.ip.checksum_ok);
		assert_int_equal(p.tcp.flags, DISC_TCP_SYN);
		assert_int_equal(p.tcp.seq, t.seq);
		assert_int_equal(p.tcp.src_port, t.src_port);
		assert_int_equal(p.tcp.dst_port, t.dst_port);
		assert_true(p.tcp.has_mss);
		assert_int_equal(p.tcp.mss, 1460);
		tcp = f + 14 + 20;
		assert_int_equal(disc_cksum_l4(cfg.src_ip, t.dst_ip, 6, tcp, 24), 0);

		build_and_parse("tcp_ack", &t, &p, f);
		assert_int_equal(p.tcp.flags, DISC_TCP_ACK);
		assert_int_equal(p.tcp.ack, t.seq);
		assert_int_equal(p.tcp.dst_port, t.dst_port);
		assert_true(p.ip.checksum_ok);
		assert_int_equal(disc_cksum_l4(cfg.src_ip, t.dst_ip, 6, f + 34, 20), 0);
	}
}

static void test_config_defaults_and_overrides(void **state)
{
	const struct disc_probe_module *m = disc_probe_find("tcp_syn");
	struct disc_probe_config c = cfg;
	struct disc_probe_target t = {.dst_ip = IP(10, 0, 0, 9), .dst_port = 80, .src_port = 5};
	uint8_t f[DISC_PROBE_MAX_FRAME];
	struct disc_frame p;

	c.ttl = 200;
	c.window = 65535;
	c.mss = 536;
	m->prepare(f, &c);
	m->make(f, &c, &t);
	assert_int_equal(disc_frame_parse(f, m->frame_len, DISC_LINK_ETHERNET, &p, NULL), DISC_OK);
	assert_int_equal(p.ip.ttl, 200);
	assert_int_equal(p.tcp.window, 65535);
	assert_int_equal(p.tcp.mss, 536);
}

static void test_icmp_round_trip(void **state)
{
	uint8_t f[DISC_PROBE_MAX_FRAME];
	struct disc_frame p;
	struct disc_probe_target t = {.dst_ip = IP(10, 1, 2, 3), .seq = 0xabcd1234, .ip_id = 9};

	build_and_parse("icmp_echo", &t, &p, f);
	assert_int_equal(p.l4, DISC_L4_ICMP);
	assert_int_equal(p.icmp.type, 8);
	assert_int_equal(p.icmp.id, 0xabcd);
	assert_int_equal(p.icmp.seq, 0x1234);
	assert_int_equal(disc_cksum_icmp(f + 34, 8), 0);

	build_and_parse("icmp_timestamp", &t, &p, f);
	assert_int_equal(p.icmp.type, 13);
	assert_int_equal(p.icmp.id, 0xabcd);
	assert_int_equal(p.icmp.seq, 0x1234);
	assert_int_equal(p.ip.total_len, 40);
	assert_int_equal(disc_cksum_icmp(f + 34, 20), 0);
}

static void test_arp_request(void **state)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t zero[6] = {0};
	uint8_t f[DISC_PROBE_MAX_FRAME];
	struct disc_frame p;
	struct disc_probe_target t = {.dst_ip = IP(10, 0, 0, 77)};

	build_and_parse("arp_request", &t, &p, f);
	assert_memory_equal(p.eth_dst, bcast, 6);
	assert_memory_equal(p.eth_src, cfg.src_mac, 6);
	assert_int_equal(p.l3, DISC_L3_ARP);
	assert_int_equal(p.arp.op, 1);
	assert_memory_equal(p.arp.sender_mac, cfg.src_mac, 6);
	assert_int_equal(p.arp.sender_ip, cfg.src_ip);
	assert_memory_equal(p.arp.target_mac, zero, 6);
	assert_int_equal(p.arp.target_ip, IP(10, 0, 0, 77));
}

static void test_lookup(void **state)
{
	size_t n = 0;

	assert_null(disc_probe_find("tcp_fin"));
	for (; disc_probe_modules[n]; n++)
		assert_ptr_equal(disc_probe_find(disc_probe_modules[n]->name),
				 disc_probe_modules[n]);
	assert_int_equal(n, 6);
}

/* The RST that ends a half-open connection: exactly the sequence number given, no ACK. */
static void test_tcp_rst(void **state)
{
	uint8_t f[DISC_PROBE_MAX_FRAME];
	struct disc_frame p;
	struct disc_probe_target t = {
		.dst_ip = IP(10, 0, 0, 9),
		.dst_port = 443,
		.src_port = 61001,
		.seq = 0xdeadbeef,
		.ip_id = 7,
	};

	build_and_parse("tcp_rst", &t, &p, f);
	assert_int_equal(p.l4, DISC_L4_TCP);
	assert_int_equal(p.tcp.flags, DISC_TCP_RST);
	assert_int_equal(p.tcp.seq, 0xdeadbeef);
	assert_int_equal(p.tcp.ack, 0);
	assert_int_equal(p.tcp.window, 0);
	assert_int_equal(p.tcp.src_port, 61001);
	assert_int_equal(p.tcp.dst_port, 443);
	assert_true(p.ip.checksum_ok);
	assert_int_equal(disc_cksum_l4(cfg.src_ip, t.dst_ip, 6, f + 14 + 20, 20), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syn_bytes),
		cmocka_unit_test(test_tcp_round_trip),
		cmocka_unit_test(test_config_defaults_and_overrides),
		cmocka_unit_test(test_icmp_round_trip),
		cmocka_unit_test(test_arp_request),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_tcp_rst),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
