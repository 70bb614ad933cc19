/* disc_cksum: RFC 1071 Internet checksum (see disc/cksum.h). */
#include "disc/cksum.h"

static uint32_t fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint32_t)sum;
}

uint32_t disc_cksum_add(uint32_t sum, const uint8_t *buf, size_t len)
{
	uint64_t acc = sum;
	size_t i = 0;

	/* A 64-bit accumulator cannot overflow for any length we will see. */
	for (; i + 1 < len; i += 2)
		acc += (uint32_t)buf[i] << 8 | buf[i + 1];
	if (i < len)
		acc += (uint32_t)buf[i] << 8;
	return fold(acc);
}

uint16_t disc_cksum_finish(uint32_t sum)
{
	return (uint16_t)~fold(sum);
}

uint16_t disc_cksum_ipv4_header(const uint8_t *hdr, size_t len)
{
	return disc_cksum_finish(disc_cksum_add(0, hdr, len));
}

uint16_t disc_cksum_l4(uint32_t src, uint32_t dst, uint8_t proto, const uint8_t *seg, size_t len)
{
	uint64_t pseudo =
		(src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + (uint64_t)len;

	return disc_cksum_finish(disc_cksum_add(fold(pseudo), seg, len));
}

uint16_t disc_cksum_icmp(const uint8_t *msg, size_t len)
{
	return disc_cksum_finish(disc_cksum_add(0, msg, len));
}
