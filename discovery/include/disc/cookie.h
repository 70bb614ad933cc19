/*
 * disc_cookie: stateless validation of replies to probes (SYN cookies).
 *
 * A probe's TCP sequence number is a keyed hash (SipHash-2-4 under a
 * per-scan secret) of its 4-tuple. A SYN-ACK or RST answering that probe
 * acknowledges sequence + 1, so the receiver recomputes the hash from the
 * reply's addresses and ports (swapped back) and compares: no table of
 * outstanding probes, and replies to someone else's packets, or forged by
 * someone who does not know the secret, are rejected (but for a 2^-32 chance).
 * ICMP probes use the same value in their identifier and sequence fields,
 * with ports 0.
 */
#ifndef DISC_COOKIE_H
#define DISC_COOKIE_H

#include <stdbool.h>
#include <stdint.h>

#include "disc/siphash.h"

struct disc_cookie {
	struct disc_siphash_key key;
};

/* Sets the per-scan secret (16 bytes, e.g. from disc_random_bytes). */
void disc_cookie_init(struct disc_cookie *c, const uint8_t secret[16]);

/* The cookie for a probe from src_ip:src_port to dst_ip:dst_port (host order). */
uint32_t disc_cookie_make(const struct disc_cookie *c, uint32_t src_ip, uint32_t dst_ip,
			  uint16_t src_port, uint16_t dst_port);

/*
 * Whether a TCP reply (SYN-ACK or RST) with these fields, as read from the
 * reply (its source is the probed host), acknowledges one of our probes:
 * ack - 1 equals the cookie of the probe with the tuple swapped back.
 */
bool disc_cookie_check_reply(const struct disc_cookie *c, uint32_t reply_src_ip,
			     uint32_t reply_dst_ip, uint16_t reply_src_port,
			     uint16_t reply_dst_port, uint32_t reply_ack);

#endif
