/*
 * Unit tests for disc_cksum. Vectors: RFC 1071 section 3's worked example,
 * the classic IPv4 header example, and TCP/UDP/ICMP values computed by an
 * independent implementation (a few lines of Python's struct module).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "disc/cksum.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static void test_rfc1071_example(void **state)
{
	/* RFC 1071 3: the one's complement sum of these bytes is ddf2. */
	const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};

	assert_int_equal(disc_cksum_add(0, b, sizeof(b)), 0xddf2);
	assert_int_equal(disc_cksum_finish(disc_cksum_add(0, b, sizeof(b))), 0x220d);
	/* Summing in pieces gives the same (associativity, RFC 1071 2(B)). */
	assert_int_equal(disc_cksum_add(disc_cksum_add(0, b, 4), b + 4, 4), 0xddf2);
	/* An odd trailing byte is padded with zero. */
	assert_int_equal(disc_cksum_add(0, b, 3), 0xf201); /* 0001 + f200 */
	assert_int_equal(disc_cksum_add(0, b, 0), 0);
}

static void test_ipv4_header(void **state)
{
	uint8_t h[20] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
			 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};

	assert_int_equal(disc_cksum_ipv4_header(h, sizeof(h)), 0xb861);
	h[10] = 0xb8;
	h[11] = 0x61;
	/* A header with its correct checksum sums to zero. */
	assert_int_equal(disc_cksum_ipv4_header(h, sizeof(h)), 0);
	h[15] ^= 1;
	assert_int_not_equal(disc_cksum_ipv4_header(h, sizeof(h)), 0);
}

static void test_tcp_udp_pseudo_header(void **state)
{
	/* SYN 192.168.0.1:40000 -> 192.168.0.199:80, seq 01020304, window 1024, MSS 1460. */
	uint8_t tcp[24] = {0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0,	 0,    0,    0,
			   0x60, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4};
	/* UDP 192.168.0.1:53000 -> 192.168.0.199:53, payload "hello". */
	uint8_t udp[13] = {0xcf, 0x08, 0x00, 0x35, 0x00, 0x0d, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o'};
	uint32_t s = IP(192, 168, 0, 1), d = IP(192, 168, 0, 199);

	assert_int_equal(disc_cksum_l4(s, d, 6, tcp, sizeof(tcp)), 0x7177);
	assert_int_equal(disc_cksum_l4(s, d, 17, udp, sizeof(udp)), 0x6aab);
	tcp[16] = 0x71;
	tcp[17] = 0x77;
	assert_int_equal(disc_cksum_l4(s, d, 6, tcp, sizeof(tcp)), 0);
	/* The pseudo-header matters: another destination fails verification. */
	assert_int_not_equal(disc_cksum_l4(s, d + 1, 6, tcp, sizeof(tcp)), 0);
}

static void test_icmp(void **state)
{
	uint8_t echo[11] = {8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, 'a', 'b', 'c'};

	assert_int_equal(disc_cksum_icmp(echo, sizeof(echo)), 0x2168);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc1071_example),
		cmocka_unit_test(test_ipv4_header),
		cmocka_unit_test(test_tcp_udp_pseudo_header),
		cmocka_unit_test(test_icmp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
