/*
 * disc_siphash: SipHash-2-4, the keyed 64-bit hash of Aumasson and Bernstein
 * ("SipHash: a fast short-input PRF", 2012), implemented from the paper.
 *
 * Used where a reply must be matched to a probe without per-probe state: the
 * key is a per-scan secret, so a third party cannot forge a valid reply.
 */
#ifndef DISC_SIPHASH_H
#define DISC_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct disc_siphash_key {
	uint64_t k0, k1;
};

/* Reads the 128-bit key as the paper does: two little-endian 64-bit words. */
void disc_siphash_key_init(struct disc_siphash_key *key, const uint8_t bytes[16]);

/* SipHash-2-4 of msg[0..len) under key. */
uint64_t disc_siphash24(const struct disc_siphash_key *key, const uint8_t *msg, size_t len);

#endif
