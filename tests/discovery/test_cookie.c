/*
 * Unit tests for disc_siphash (the 64 published SipHash-2-4 vectors: key
 * 00..0f, message 00..len-1 for len 0..63) and disc_cookie.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "disc/cookie.h"
#include "disc/siphash.h"

static const uint64_t vectors[64] = {
	0x726fdb47dd0e0e31ull, 0x74f839c593dc67fdull, 0x0d6c8009d9a94f5aull, 0x85676696d7fb7e2dull,
	0xcf2794e0277187b7ull, 0x18765564cd99a68dull, 0xcbc9466e58fee3ceull, 0xab0200f58b01d137ull,
	0x93f5f5799a932462ull, 0x9e0082df0ba9e4b0ull, 0x7a5dbbc594ddb9f3ull, 0xf4b32f46226bada7ull,
	0x751e8fbc860ee5fbull, 0x14ea5627c0843d90ull, 0xf723ca908e7af2eeull, 0xa129ca6149be45e5ull,
	0x3f2acc7f57c29bdbull, 0x699ae9f52cbe4794ull, 0x4bc1b3f0968dd39cull, 0xbb6dc91da77961bdull,
	0xbed65cf21aa2ee98ull, 0xd0f2cbb02e3b67c7ull, 0x93536795e3a33e88ull, 0xa80c038ccd5ccec8ull,
	0xb8ad50c6f649af94ull, 0xbce192de8a85b8eaull, 0x17d835b85bbb15f3ull, 0x2f2e6163076bcfadull,
	0xde4daaaca71dc9a5ull, 0xa6a2506687956571ull, 0xad87a3535c49ef28ull, 0x32d892fad841c342ull,
	0x7127512f72f27cceull, 0xa7f32346f95978e3ull, 0x12e0b01abb051238ull, 0x15e034d40fa197aeull,
	0x314dffbe0815a3b4ull, 0x027990f029623981ull, 0xcadcd4e59ef40c4dull, 0x9abfd8766a33735cull,
	0x0e3ea96b5304a7d0ull, 0xad0c42d6fc585992ull, 0x187306c89bc215a9ull, 0xd4a60abcf3792b95ull,
	0xf935451de4f21df2ull, 0xa9538f0419755787ull, 0xdb9acddff56ca510ull, 0xd06c98cd5c0975ebull,
	0xe612a3cb9ecba951ull, 0xc766e62cfcadaf96ull, 0xee64435a9752fe72ull, 0xa192d576b245165aull,
	0x0a8787bf8ecb74b2ull, 0x81b3e73d20b49b6full, 0x7fa8220ba3b2eceaull, 0x245731c13ca42499ull,
	0xb78dbfaf3a8d83bdull, 0xea1ad565322a1a0bull, 0x60e61c23a3795013ull, 0x6606d7e446282b93ull,
	0x6ca4ecb15c5f91e1ull, 0x9f626da15c9625f3ull, 0xe51b38608ef25f57ull, 0x958a324ceb064572ull,
};

static void test_siphash_vectors(void **state)
{
	uint8_t key[16], msg[64];
	struct disc_siphash_key k;

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	disc_siphash_key_init(&k, key);
	assert_int_equal(k.k0, 0x0706050403020100ull);
	assert_int_equal(k.k1, 0x0f0e0d0c0b0a0908ull);
	for (size_t len = 0; len < 64; len++)
		if (disc_siphash24(&k, msg, len) != vectors[len])
			fail_msg("SipHash-2-4 vector %zu wrong", len);
}

static void test_cookie_round_trip(void **state)
{
	const uint8_t secret[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	struct disc_cookie c;
	uint32_t us = 0x0a000001, them = 0x0a000002;
	uint32_t seq;

	disc_cookie_init(&c, secret);
	seq = disc_cookie_make(&c, us, them, 40000, 443);
	/* The SYN-ACK comes from them:443 to us:40000 and acknowledges seq + 1. */
	assert_true(disc_cookie_check_reply(&c, them, us, 443, 40000, seq + 1));
	assert_false(disc_cookie_check_reply(&c, them, us, 443, 40000, seq));
	assert_false(disc_cookie_check_reply(&c, them, us, 444, 40000, seq + 1));
	assert_false(disc_cookie_check_reply(&c, them, us, 443, 40001, seq + 1));
	assert_false(disc_cookie_check_reply(&c, them + 1, us, 443, 40000, seq + 1));
	assert_false(disc_cookie_check_reply(&c, them, us + 1, 443, 40000, seq + 1));
	/* Not symmetric: a reply claiming to come from us is no match. */
	assert_false(disc_cookie_check_reply(&c, us, them, 40000, 443, seq + 1));

	/* Every source port validates its own reply (ack wraps modulo 2^32). */
	for (uint32_t port = 1; port < 65536; port++) {
		uint32_t s = disc_cookie_make(&c, us, them, (uint16_t)port, 80);

		assert_true(disc_cookie_check_reply(&c, them, us, 80, (uint16_t)port, s + 1));
	}

	/* A different secret gives a different cookie. */
	{
		uint8_t other[16] = {0};
		struct disc_cookie c2;

		disc_cookie_init(&c2, other);
		assert_int_not_equal(disc_cookie_make(&c2, us, them, 40000, 443), seq);
		assert_false(disc_cookie_check_reply(&c2, them, us, 443, 40000, seq + 1));
	}
}

static void test_cookie_spread(void **state)
{
	/* Cookies over neighbouring tuples look independent: few collisions in the top 16 bits. */
	const uint8_t secret[16] = {7};
	struct disc_cookie c;
	static uint8_t seen[65536];
	int collisions = 0;

	disc_cookie_init(&c, secret);
	for (uint32_t i = 0; i < 4096; i++) {
		uint32_t v = disc_cookie_make(&c, 0x0a000001, 0x0a000000 + (i >> 4), 40000,
					      (uint16_t)(i & 15));
		collisions += seen[v >> 16]++ > 0;
	}
	/* Expected about 4096^2 / (2 * 65536) = 128 for random values. */
	assert_true(collisions < 250);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_vectors),
		cmocka_unit_test(test_cookie_round_trip),
		cmocka_unit_test(test_cookie_spread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
