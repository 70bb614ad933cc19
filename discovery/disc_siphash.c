/* disc_siphash: SipHash-2-4 from the 2012 paper (see disc/siphash.h). */
#include "disc/siphash.h"

static uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#define SIPROUND(v0, v1, v2, v3)                                                                  \
	do {                                                                                      \
		v0 += v1;                                                                         \
		v1 = rotl(v1, 13);                                                                \
		v1 ^= v0;                                                                         \
		v0 = rotl(v0, 32);                                                                \
		v2 += v3;                                                                         \
		v3 = rotl(v3, 16);                                                                \
		v3 ^= v2;                                                                         \
		v0 += v3;                                                                         \
		v3 = rotl(v3, 21);                                                                \
		v3 ^= v0;                                                                         \
		v2 += v1;                                                                         \
		v1 = rotl(v1, 17);                                                                \
		v1 ^= v2;                                                                         \
		v2 = rotl(v2, 32);                                                                \
	} while (0)

void disc_siphash_key_init(struct disc_siphash_key *key, const uint8_t bytes[16])
{
	key->k0 = load_le64(bytes);
	key->k1 = load_le64(bytes + 8);
}

uint64_t disc_siphash24(const struct disc_siphash_key *key, const uint8_t *msg, size_t len)
{
	/* Initialisation constants: "somepseudorandomlygeneratedbytes". */
	uint64_t v0 = key->k0 ^ 0x736f6d6570736575ull;
	uint64_t v1 = key->k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = key->k0 ^ 0x6c7967656e657261ull;
	uint64_t v3 = key->k1 ^ 0x7465646279746573ull;
	size_t whole = len - len % 8;
	uint64_t last = (uint64_t)(len & 0xff) << 56;

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = load_le64(msg + i);

		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t i = 0; i < len % 8; i++)
		last |= (uint64_t)msg[whole + i] << (8 * i);
	v3 ^= last;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}
