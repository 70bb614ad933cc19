/*
 * Unit tests for disc_frame: real-looking frames (built independently by
 * tools/make_frame_corpus.py) decode to the right fields, and every
 * truncation or corruption of them is refused without reading out of bounds
 * (each case runs on an exact-size heap copy, so ASan sees any overread).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "disc/frame.h"
#include "frame_vectors.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

/* Parses a heap copy of exactly len bytes. */
static enum disc_status parse_copy(const uint8_t *buf, size_t len, struct disc_frame *f,
				   struct disc_error *err)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum disc_status st;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	st = disc_frame_parse(copy, len, DISC_LINK_ETHERNET, f, err);
	/* Payload pointers point into the copy; drop them before freeing it. */
	f->tcp.payload = f->udp.payload = f->icmp.payload = NULL;
	free(copy);
	return st;
}

static void test_synack_linux(void **state)
{
	struct disc_frame f;
	struct disc_error err = {0};
	static const uint8_t order[] = {2, 4, 8, 1, 3};

	assert_int_equal(
		disc_frame_parse(synack_linux, sizeof(synack_linux), DISC_LINK_ETHERNET, &f, &err),
		DISC_OK);
	assert_true(f.has_eth);
	assert_int_equal(f.eth_src[0], 0x00);
	assert_int_equal(f.eth_src[5], 0xcc);
	assert_int_equal(f.l3, DISC_L3_IPV4);
	assert_int_equal(f.ip.src, IP(10, 0, 0, 2));
	assert_int_equal(f.ip.dst, IP(10, 0, 0, 1));
	assert_int_equal(f.ip.ttl, 64);
	assert_true(f.ip.dont_fragment);
	assert_true(f.ip.checksum_ok);
	assert_int_equal(f.l4, DISC_L4_TCP);
	assert_int_equal(f.tcp.src_port, 443);
	assert_int_equal(f.tcp.dst_port, 40000);
	assert_int_equal(f.tcp.seq, 0xa1b2c3d4);
	assert_int_equal(f.tcp.ack, 0x01020305);
	assert_int_equal(f.tcp.flags, DISC_TCP_SYN | DISC_TCP_ACK);
	assert_int_equal(f.tcp.window, 65160);
	assert_int_equal(f.tcp.header_len, 40);
	assert_true(f.tcp.has_mss);
	assert_int_equal(f.tcp.mss, 1460);
	assert_true(f.tcp.sack_permitted);
	assert_true(f.tcp.has_timestamp);
	assert_int_equal(f.tcp.ts_val, 0x11223344);
	assert_int_equal(f.tcp.ts_ecr, 0);
	assert_true(f.tcp.has_wscale);
	assert_int_equal(f.tcp.wscale, 7);
	assert_int_equal(f.tcp.n_opts, sizeof(order));
	assert_memory_equal(f.tcp.opt_kinds, order, sizeof(order));
	assert_int_equal(f.tcp.payload_len, 0);
	assert_false(f.truncated);
}

static void test_rst_and_vlan(void **state)
{
	struct disc_frame f;
	struct disc_error err = {0};

	assert_int_equal(parse_copy(rst_closed, sizeof(rst_closed), &f, &err), DISC_OK);
	assert_int_equal(f.tcp.flags, DISC_TCP_RST | DISC_TCP_ACK);
	assert_int_equal(f.ip.ttl, 128);
	assert_false(f.ip.dont_fragment);
	assert_int_equal(f.tcp.n_opts, 0);
	assert_false(f.tcp.has_mss);

	assert_int_equal(parse_copy(synack_vlan, sizeof(synack_vlan), &f, &err), DISC_OK);
	assert_int_equal(f.vlan_id, 100);
	assert_int_equal(f.ethertype, 0x0800);
	assert_int_equal(f.tcp.src_port, 22);
	assert_int_equal(f.tcp.mss, 1400);
	assert_int_equal(f.tcp.window, 29200);
}

static void test_icmp_errors_quote_probe(void **state)
{
	struct disc_frame f;
	struct disc_error err = {0};

	assert_int_equal(parse_copy(icmp_port_unreach, sizeof(icmp_port_unreach), &f, &err),
			 DISC_OK);
	assert_int_equal(f.l4, DISC_L4_ICMP);
	assert_int_equal(f.icmp.type, 3);
	assert_int_equal(f.icmp.code, 3);
	assert_true(f.icmp.has_quote);
	assert_int_equal(f.icmp.quote.proto, 17);
	assert_int_equal(f.icmp.quote.src, IP(10, 0, 0, 1));
	assert_int_equal(f.icmp.quote.dst, IP(10, 0, 0, 2));
	assert_int_equal(f.icmp.quote.src_port, 53000);
	assert_int_equal(f.icmp.quote.dst_port, 161);
	assert_int_equal(f.icmp.quote.id, 0x0707);

	assert_int_equal(parse_copy(icmp_host_unreach, sizeof(icmp_host_unreach), &f, &err),
			 DISC_OK);
	assert_int_equal(f.ip.src, IP(10, 0, 0, 254));
	assert_int_equal(f.icmp.code, 1);
	assert_int_equal(f.icmp.quote.proto, 6);
	assert_int_equal(f.icmp.quote.dst, IP(10, 0, 9, 9));
	assert_int_equal(f.icmp.quote.src_port, 40000);
	assert_int_equal(f.icmp.quote.dst_port, 22);
	assert_int_equal(f.icmp.quote.tcp_seq, 0xcafebabe);
}

static void test_icmp_replies(void **state)
{
	struct disc_frame f;
	struct disc_error err = {0};

	assert_int_equal(parse_copy(icmp_echo_reply, sizeof(icmp_echo_reply), &f, &err), DISC_OK);
	assert_int_equal(f.icmp.type, 0);
	assert_int_equal(f.icmp.id, 0x1234);
	assert_int_equal(f.icmp.seq, 0x5678);
	assert_false(f.icmp.has_quote);

	assert_int_equal(parse_copy(icmp_timestamp_reply, sizeof(icmp_timestamp_reply), &f, &err),
			 DISC_OK);
	assert_int_equal(f.icmp.type, 14);
	assert_int_equal(f.icmp.ts_receive, 36000000);
	assert_int_equal(f.icmp.ts_transmit, 36000001);
}

static void test_arp_and_udp(void **state)
{
	struct disc_frame f;
	struct disc_error err = {0};
	static const uint8_t mac[6] = {0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc};

	assert_int_equal(parse_copy(arp_reply, sizeof(arp_reply), &f, &err), DISC_OK);
	assert_int_equal(f.l3, DISC_L3_ARP);
	assert_int_equal(f.arp.op, 2);
	assert_memory_equal(f.arp.sender_mac, mac, 6);
	assert_int_equal(f.arp.sender_ip, IP(10, 0, 0, 2));
	assert_int_equal(f.arp.target_ip, IP(10, 0, 0, 1));

	assert_int_equal(disc_frame_parse(udp_dns, sizeof(udp_dns), DISC_LINK_ETHERNET, &f, &err),
			 DISC_OK);
	assert_int_equal(f.l4, DISC_L4_UDP);
	assert_int_equal(f.udp.src_port, 53);
	assert_int_equal(f.udp.payload_len, 12);
	assert_int_equal(f.udp.payload[0], 0xab);

	/* Raw IPv4 link: the same packet without its Ethernet header. */
	assert_int_equal(
		disc_frame_parse(udp_dns + 14, sizeof(udp_dns) - 14, DISC_LINK_RAW_IPV4, &f, &err),
		DISC_OK);
	assert_false(f.has_eth);
	assert_int_equal(f.udp.dst_port, 53000);
}

static void test_ethernet_padding_ignored(void **state)
{
	/* A 54-byte RST padded to 60 bytes: the IPv4 length decides, padding is not payload. */
	uint8_t padded[60] = {0};
	struct disc_frame f;

	memcpy(padded, rst_closed, sizeof(rst_closed));
	assert_int_equal(parse_copy(padded, sizeof(padded), &f, NULL), DISC_OK);
	assert_int_equal(f.tcp.payload_len, 0);
	assert_false(f.truncated);
}

/* Every prefix of every sample either parses or fails cleanly; short headers fail. */
static void test_every_truncation(void **state)
{
	static const struct {
		const uint8_t *buf;
		size_t len;
		size_t headers; /* bytes up to the end of the last header parsed */
	} samples[] = {
		{synack_linux, sizeof(synack_linux), sizeof(synack_linux)},
		{rst_closed, sizeof(rst_closed), sizeof(rst_closed)},
		{icmp_port_unreach, sizeof(icmp_port_unreach), sizeof(icmp_port_unreach)},
		{icmp_host_unreach, sizeof(icmp_host_unreach), sizeof(icmp_host_unreach)},
		{arp_reply, sizeof(arp_reply), 14 + 28},
		{icmp_timestamp_reply, sizeof(icmp_timestamp_reply), sizeof(icmp_timestamp_reply)},
		{synack_vlan, sizeof(synack_vlan), sizeof(synack_vlan)},
		{udp_dns, sizeof(udp_dns), 14 + 20 + 8},
	};

	for (size_t s = 0; s < sizeof(samples) / sizeof(samples[0]); s++)
		for (size_t len = 0; len < samples[s].len; len++) {
			struct disc_frame f;
			struct disc_error err = {0};
			enum disc_status st = parse_copy(samples[s].buf, len, &f, &err);

			if (len < samples[s].headers && st == DISC_OK)
				fail_msg("sample %zu cut to %zu bytes parsed without error", s,
					 len);
			if (st != DISC_OK && err.msg[0] == '\0')
				fail_msg("sample %zu cut to %zu bytes: error without message", s,
					 len);
		}
}

static void test_malformed_fields(void **state)
{
	uint8_t b[sizeof(synack_linux)];
	struct disc_frame f;
	struct disc_error err = {0};

	/* IP header length below 20. */
	memcpy(b, synack_linux, sizeof(b));
	b[14] = 0x44;
	assert_int_equal(parse_copy(b, sizeof(b), &f, &err), DISC_ERR_MALFORMED);
	assert_string_equal(err.msg, "IPv4 header length 16 below 20");

	/* IP header length beyond the capture. */
	memcpy(b, synack_linux, sizeof(b));
	b[14] = 0x4f;
	assert_int_equal(parse_copy(b, 14 + 40, &f, &err), DISC_ERR_TRUNCATED);

	/* Total length shorter than the header. */
	memcpy(b, synack_linux, sizeof(b));
	b[16] = 0;
	b[17] = 10;
	assert_int_equal(parse_copy(b, sizeof(b), &f, &err), DISC_ERR_MALFORMED);

	/* Not version 4. */
	memcpy(b, synack_linux, sizeof(b));
	b[14] = 0x65;
	assert_int_equal(parse_copy(b, sizeof(b), &f, &err), DISC_ERR_MALFORMED);

	/* A corrupted address is caught by the header checksum, but still parses. */
	memcpy(b, synack_linux, sizeof(b));
	b[14 + 12] ^= 0x40;
	assert_int_equal(parse_copy(b, sizeof(b), &f, &err), DISC_OK);
	assert_false(f.ip.checksum_ok);

	/* TCP data offset below 5 words. */
	memcpy(b, synack_linux, sizeof(b));
	b[14 + 20 + 12] = 0x40;
	assert_int_equal(parse_copy(b, sizeof(b), &f, &err), DISC_ERR_MALFORMED);

	/* An option whose length runs past the header (MSS claiming 40 bytes). */
	memcpy(b, synack_linux, sizeof(b));
	b[14 + 20 + 21] = 40;
	assert_int_equal(parse_copy(b, sizeof(b), &f, &err), DISC_ERR_MALFORMED);
	assert_string_equal(err.msg, "TCP option 2 length 40 does not fit in 20 option bytes");

	/* An option length of 0 or 1 would loop forever or overlap. */
	memcpy(b, synack_linux, sizeof(b));
	b[14 + 20 + 21] = 1;
	assert_int_equal(parse_copy(b, sizeof(b), &f, &err), DISC_ERR_MALFORMED);

	/* A kind as the last option byte, with no room for its length. */
	memcpy(b, synack_linux, sizeof(b));
	b[14 + 20 + 20 + 16] = 1; /* option bytes 16-18 (NOP, window scale) become NOPs */
	b[14 + 20 + 20 + 17] = 1;
	b[14 + 20 + 20 + 18] = 1;
	b[14 + 20 + 20 + 19] = 5; /* and the last byte a SACK kind without its length */
	assert_int_equal(parse_copy(b, sizeof(b), &f, &err), DISC_ERR_MALFORMED);
	assert_string_equal(err.msg, "TCP option 5 has no length byte");

	/* UDP length below its own header. */
	{
		uint8_t u[sizeof(udp_dns)];

		memcpy(u, udp_dns, sizeof(u));
		u[14 + 20 + 4] = 0;
		u[14 + 20 + 5] = 7;
		assert_int_equal(parse_copy(u, sizeof(u), &f, &err), DISC_ERR_MALFORMED);
	}

	/* ARP for another hardware type is refused, not misread. */
	{
		uint8_t a[sizeof(arp_reply)];

		memcpy(a, arp_reply, sizeof(a));
		a[15] = 6; /* IEEE 802 */
		assert_int_equal(parse_copy(a, sizeof(a), &f, &err), DISC_ERR_UNSUPPORTED);
	}
}

static void test_snaplen_cut_payload(void **state)
{
	/* IPv4 says 40 bytes of UDP payload follow, the capture has 12: flagged, not an error. */
	uint8_t b[sizeof(udp_dns)];
	struct disc_frame f;

	memcpy(b, udp_dns, sizeof(b));
	b[14 + 2] = 0;
	b[14 + 3] = 20 + 8 + 40;
	b[14 + 20 + 5] = 8 + 40;
	assert_int_equal(parse_copy(b, sizeof(b), &f, NULL), DISC_OK);
	assert_true(f.truncated);
}

static void test_other_protocols_not_errors(void **state)
{
	uint8_t b[sizeof(udp_dns)];
	struct disc_frame f;

	/* IPv6 ethertype: nothing to decode, not an error. */
	memcpy(b, udp_dns, sizeof(b));
	b[12] = 0x86;
	b[13] = 0xdd;
	assert_int_equal(parse_copy(b, sizeof(b), &f, NULL), DISC_OK);
	assert_int_equal(f.l3, DISC_L3_NONE);

	/* A later IPv4 fragment has no transport header. */
	memcpy(b, udp_dns, sizeof(b));
	b[14 + 7] = 0x10;
	assert_int_equal(parse_copy(b, sizeof(b), &f, NULL), DISC_OK);
	assert_int_equal(f.l4, DISC_L4_NONE);
	assert_int_equal(f.ip.frag_offset, 0x10);

	/* GRE (47): an IP protocol we do not decode. */
	memcpy(b, udp_dns, sizeof(b));
	b[14 + 9] = 47;
	assert_int_equal(parse_copy(b, sizeof(b), &f, NULL), DISC_OK);
	assert_int_equal(f.l4, DISC_L4_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_synack_linux),
		cmocka_unit_test(test_rst_and_vlan),
		cmocka_unit_test(test_icmp_errors_quote_probe),
		cmocka_unit_test(test_icmp_replies),
		cmocka_unit_test(test_arp_and_udp),
		cmocka_unit_test(test_ethernet_padding_ignored),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_malformed_fields),
		cmocka_unit_test(test_snaplen_cut_payload),
		cmocka_unit_test(test_other_protocols_not_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
