/*
 * Fuzz target: disc_frame_parse on arbitrary bytes, as an Ethernet frame and
 * as a raw IPv4 packet. Besides memory errors (caught by ASan), it traps if
 * a successful parse hands back a payload that is not inside the input.
 */
#include <stdbool.h>

#include "disc/frame.h"
#include "fuzz.h"

static bool inside(const uint8_t *data, size_t size, const uint8_t *p, size_t len)
{
	if (!p)
		return len == 0;
	return p >= data && p <= data + size && len <= (size_t)(data + size - p);
}

static void check(const uint8_t *data, size_t size, enum disc_link link)
{
	struct disc_frame f;
	struct disc_error err;

	if (disc_frame_parse(data, size, link, &f, &err) != DISC_OK) {
		if (err.msg[0] == '\0')
			__builtin_trap(); /* every error carries a message */
		return;
	}
	if (f.l4 == DISC_L4_TCP && (!inside(data, size, f.tcp.payload, f.tcp.payload_len) ||
				    f.tcp.header_len < 20 || f.tcp.n_opts > DISC_TCP_MAX_OPTS))
		__builtin_trap();
	if (f.l4 == DISC_L4_UDP && !inside(data, size, f.udp.payload, f.udp.payload_len))
		__builtin_trap();
	if (f.l4 == DISC_L4_ICMP && !inside(data, size, f.icmp.payload, f.icmp.payload_len))
		__builtin_trap();
	if (f.l3 == DISC_L3_IPV4 && f.ip.header_len < 20)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size, DISC_LINK_ETHERNET);
	check(data, size, DISC_LINK_RAW_IPV4);
	return 0;
}
