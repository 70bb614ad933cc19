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

/* One SipRound on the state v[0..3] (the paper's figure 2.2). */
static inline void sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl(v[2], 32);
}

void disc_siphash_key_init(struct disc_siphash_key *key, const uint8_t bytes[16])
{
	key->k0 = load_le64(bytes);
	key->k1 = load_le64(bytes + 8);
}

uint64_t disc_siphash24(const struct disc_siphash_key *key, const uint8_t *msg, size_t len)
{
	/* Initialisation constants: "somepseudorandomlygeneratedbytes". */
	uint64_t v[4] = {
		key->k0 ^ 0x736f6d6570736575ull,
		key->k1 ^ 0x646f72616e646f6dull,
		key->k0 ^ 0x6c7967656e657261ull,
		key->k1 ^ 0x7465646279746573ull,
	};
	size_t whole = len - len % 8;
	uint64_t last = (uint64_t)(len & 0xff) << 56;

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = load_le64(msg + i);

		v[3] ^= m;
		sipround(v); /* c = 2 compression rounds */
		sipround(v);
		v[0] ^= m;
	}
	for (size_t i = 0; i < len % 8; i++)
		last |= (uint64_t)msg[whole + i] << (8 * i);
	v[3] ^= last;
	sipround(v);
	sipround(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (int i = 0; i < 4; i++) /* d = 4 finalization rounds */
		sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}
