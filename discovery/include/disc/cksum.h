/*
 * disc_cksum: the Internet checksum (RFC 1071) for IPv4 headers, TCP and UDP
 * (with the RFC 793/768 pseudo-header) and ICMP.
 *
 * Each function returns the checksum in host order, ready to be stored
 * big-endian into the header's checksum field: compute it with that field set
 * to zero. Computed over data that includes a correct checksum, the result is
 * 0, which is how received headers are verified.
 */
#ifndef DISC_CKSUM_H
#define DISC_CKSUM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Adds buf[0..len) as big-endian 16-bit words to the running sum and returns
 * it (carries folded back in, not complemented). Only the last chunk of a
 * checksummed range may have an odd length. Start with sum 0.
 */
uint32_t disc_cksum_add(uint32_t sum, const uint8_t *buf, size_t len);

/* Folds sum to 16 bits and complements it: the value for the checksum field. */
uint16_t disc_cksum_finish(uint32_t sum);

/* Checksum of an IPv4 header of len bytes (20-60). */
uint16_t disc_cksum_ipv4_header(const uint8_t *hdr, size_t len);

/*
 * Checksum of a TCP or UDP segment (header and payload, len bytes) with the
 * IPv4 pseudo-header of src, dst (host order) and proto (6 or 17). For UDP a
 * computed 0 must be sent as 0xffff (RFC 768); that is the caller's job.
 */
uint16_t disc_cksum_l4(uint32_t src, uint32_t dst, uint8_t proto, const uint8_t *seg, size_t len);

/* Checksum of an ICMP message (header and data): no pseudo-header. */
uint16_t disc_cksum_icmp(const uint8_t *msg, size_t len);

#endif
