/*
 * disc_probe: the frames the scanner sends, one module per kind of probe.
 *
 * A probe module is a const struct of function pointers, found by name in one
 * table. Building is split in two, so that the sender's per-probe work is a
 * few stores and two checksums: `prepare` writes the bytes that are the same
 * for every probe of a scan (Ethernet, the IPv4 header's constant fields, TCP
 * flags and options, ...) once per send buffer; `make` patches only what
 * changes per probe (destination address, ports, sequence or ICMP id/seq,
 * IP id) and the checksums. Each module also says which replies to capture
 * (a BPF filter, to which the engine adds "and dst host <our address>") and
 * how many bytes of them (snap length).
 *
 * Modules: tcp_syn (SYN with an MSS option; the cookie is the sequence
 * number), tcp_ack (bare ACK, host discovery; the cookie is the
 * acknowledgment number, which a RST reply echoes as its sequence number),
 * tcp_rst (bare RST with seq as its sequence number: ends the half-open
 * connection a SYN-ACK to our SYN started; expects no reply, so its filter
 * is NULL),
 * icmp_echo and icmp_timestamp (the cookie's high half is the identifier, the
 * low half the sequence number), arp_request (broadcast who-has; no cookie).
 */
#ifndef DISC_PROBE_H
#define DISC_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "disc/cookie.h"

/* Every module's frame fits in this many bytes. */
#define DISC_PROBE_MAX_FRAME 128

/* Per scan: what `prepare` writes. Addresses in host byte order. */
struct disc_probe_config {
	uint8_t src_mac[6];
	uint8_t dst_mac[6]; /* the next hop's MAC (ignored by arp_request: broadcast) */
	uint32_t src_ip;
	uint8_t ttl;	 /* 0 means 64 */
	uint16_t window; /* TCP window; 0 means 1024 */
	uint16_t mss;	 /* TCP MSS option; 0 means 1460 */
};

/* Per probe: what `make` patches. */
struct disc_probe_target {
	uint32_t dst_ip;
	uint16_t dst_port; /* TCP modules */
	uint16_t src_port; /* TCP modules */
	uint32_t seq;	   /* the cookie, placed as the module's comment above says */
	uint16_t ip_id;
};

struct disc_probe_module {
	const char *name;
	size_t frame_len;	/* bytes of the frame, Ethernet header included */
	const char *bpf_filter; /* replies of interest, pcap-filter syntax; NULL: none expected */
	size_t snaplen;		/* 0 when no reply is expected */
	void (*prepare)(uint8_t *frame, const struct disc_probe_config *cfg);
	void (*make)(uint8_t *frame, const struct disc_probe_config *cfg,
		     const struct disc_probe_target *t);
};

/* NULL-terminated table of every module. */
extern const struct disc_probe_module *const disc_probe_modules[];

/* The module called name, or NULL. */
const struct disc_probe_module *disc_probe_find(const char *name);

#endif
