/* disc_cookie: SipHash-based SYN cookies (see disc/cookie.h). */
#include "disc/cookie.h"

void disc_cookie_init(struct disc_cookie *c, const uint8_t secret[16])
{
	disc_siphash_key_init(&c->key, secret);
}

uint32_t disc_cookie_make(const struct disc_cookie *c, uint32_t src_ip, uint32_t dst_ip,
			  uint16_t src_port, uint16_t dst_port)
{
	/* Network byte order, so the value does not depend on the host. */
	const uint8_t msg[12] = {
		(uint8_t)(src_ip >> 24), (uint8_t)(src_ip >> 16),  (uint8_t)(src_ip >> 8),
		(uint8_t)src_ip,	 (uint8_t)(dst_ip >> 24),  (uint8_t)(dst_ip >> 16),
		(uint8_t)(dst_ip >> 8),	 (uint8_t)dst_ip,	   (uint8_t)(src_port >> 8),
		(uint8_t)src_port,	 (uint8_t)(dst_port >> 8), (uint8_t)dst_port,
	};

	return (uint32_t)disc_siphash24(&c->key, msg, sizeof(msg));
}

bool disc_cookie_check_reply(const struct disc_cookie *c, uint32_t reply_src_ip,
			     uint32_t reply_dst_ip, uint16_t reply_src_port,
			     uint16_t reply_dst_port, uint32_t reply_ack)
{
	return reply_ack - 1 ==
	       disc_cookie_make(c, reply_dst_ip, reply_src_ip, reply_dst_port, reply_src_port);
}
