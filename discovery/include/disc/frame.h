/*
 * disc_frame: decodes a captured frame into the fields the scanner acts on.
 *
 * Ethernet II (with up to two 802.1Q/802.1ad VLAN tags) or a raw IPv4 packet;
 * then ARP or IPv4; then TCP (with its options in order, for OS guessing:
 * TTL, window, MSS, window scale, SACK, timestamps), UDP or ICMP (echo and
 * timestamp replies, and errors such as port or host unreachable together
 * with the header of the datagram they quote, which identifies our probe).
 *
 * The frame is hostile input: every read is bounds-checked, fields are read
 * big-endian byte by byte, and a frame that is too short for a header it
 * announces (DISC_ERR_TRUNCATED) or whose fields contradict each other
 * (DISC_ERR_MALFORMED) is refused with an error, never read past its end.
 * Protocols the scanner does not use (IPv6, other IP protocols, fragments
 * after the first) are not errors: the frame parses with l3 or l4 NONE.
 * A payload longer than what was captured (a snap length shorter than the
 * packet) is cut to what is there and flagged `truncated`.
 *
 * The result points into the caller's buffer for payloads (borrowed: valid as
 * long as buf is).
 */
#ifndef DISC_FRAME_H
#define DISC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"

enum disc_link {
	DISC_LINK_ETHERNET, /* pcap DLT_EN10MB */
	DISC_LINK_RAW_IPV4, /* the buffer starts at the IPv4 header */
};

enum disc_l3 { DISC_L3_NONE, DISC_L3_ARP, DISC_L3_IPV4 };
enum disc_l4 { DISC_L4_NONE, DISC_L4_TCP, DISC_L4_UDP, DISC_L4_ICMP };

/* TCP flag bits as in the header's flags byte. */
#define DISC_TCP_FIN 0x01
#define DISC_TCP_SYN 0x02
#define DISC_TCP_RST 0x04
#define DISC_TCP_PSH 0x08
#define DISC_TCP_ACK 0x10
#define DISC_TCP_URG 0x20
#define DISC_TCP_ECE 0x40
#define DISC_TCP_CWR 0x80

/* Option kinds kept in order; 40 bytes of options hold at most 40 of them. */
#define DISC_TCP_MAX_OPTS 40

struct disc_arp_info {
	uint16_t op; /* 1 request, 2 reply */
	uint8_t sender_mac[6], target_mac[6];
	uint32_t sender_ip, target_ip;
};

struct disc_ipv4_info {
	uint8_t header_len; /* bytes, 20-60 */
	uint8_t tos;
	uint16_t total_len, id;
	bool dont_fragment, more_fragments;
	uint16_t frag_offset; /* in 8-byte units */
	uint8_t ttl, proto;
	uint32_t src, dst; /* host order */
	bool checksum_ok;
};

struct disc_tcp_info {
	uint16_t src_port, dst_port;
	uint32_t seq, ack;
	uint8_t header_len; /* bytes, 20-60 */
	uint8_t flags;
	uint16_t window, urgent;
	uint8_t opt_kinds[DISC_TCP_MAX_OPTS]; /* every option's kind, NOP and EOL included */
	uint8_t n_opts;
	bool has_mss, has_wscale, sack_permitted, has_timestamp;
	uint16_t mss;
	uint8_t wscale;
	uint32_t ts_val, ts_ecr;
	const uint8_t *payload;
	size_t payload_len;
};

struct disc_udp_info {
	uint16_t src_port, dst_port, length;
	const uint8_t *payload;
	size_t payload_len;
};

/* The start of the datagram an ICMP error quotes (RFC 792: IP header + 8 bytes). */
struct disc_icmp_quote {
	uint32_t src, dst;
	uint8_t proto, ttl;
	uint16_t id;
	uint16_t src_port, dst_port; /* TCP and UDP */
	uint32_t tcp_seq;	     /* TCP */
	uint16_t icmp_id, icmp_seq;  /* ICMP echo or timestamp */
};

struct disc_icmp_info {
	uint8_t type, code;
	uint16_t id, seq;				/* echo and timestamp (request or reply) */
	uint32_t ts_originate, ts_receive, ts_transmit; /* timestamp */
	bool has_quote;					/* types 3, 4, 5, 11, 12 */
	struct disc_icmp_quote quote;
	const uint8_t *payload; /* after the 8-byte header */
	size_t payload_len;
};

struct disc_frame {
	bool has_eth;
	uint8_t eth_dst[6], eth_src[6];
	uint16_t ethertype; /* after any VLAN tags */
	uint16_t vlan_id;   /* the outer tag's VLAN id, 0 when untagged */
	enum disc_l3 l3;
	struct disc_arp_info arp;
	struct disc_ipv4_info ip;
	enum disc_l4 l4;
	struct disc_tcp_info tcp;
	struct disc_udp_info udp;
	struct disc_icmp_info icmp;
	bool truncated; /* the IPv4 total length is more than was captured */
};

/*
 * Parses buf[0..len) into *out (fully overwritten). err may be NULL, which
 * saves formatting a message when the caller only counts bad frames.
 */
enum disc_status disc_frame_parse(const uint8_t *buf, size_t len, enum disc_link link,
				  struct disc_frame *out, struct disc_error *err);

#endif
