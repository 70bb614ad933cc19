/*
 * disc_frame: bounds-checked decoding of captured frames (see disc/frame.h).
 * Layouts from IEEE 802.3/802.1Q, RFC 826 (ARP), RFC 791 (IPv4), RFC 793 and
 * RFC 7323 (TCP and its options), RFC 768 (UDP), RFC 792 (ICMP).
 */
#include "disc/frame.h"

#include <string.h>

#include "disc/cksum.h"
#include "disc_bytes.h"

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8

/* Formats only when the caller asked for a message: the receive path may pass NULL. */
#define FAIL(err, status, ...) ((err) ? disc_error_set((err), (status), __VA_ARGS__) : (status))

static enum disc_status parse_tcp_options(const uint8_t *o, size_t len, struct disc_tcp_info *tcp,
					  struct disc_error *err)
{
	size_t i = 0;

	while (i < len) {
		uint8_t kind = o[i], olen;

		if (tcp->n_opts < DISC_TCP_MAX_OPTS)
			tcp->opt_kinds[tcp->n_opts++] = kind;
		if (kind == 0) /* end of option list */
			return DISC_OK;
		if (kind == 1) { /* no-operation */
			i++;
			continue;
		}
		if (i + 1 >= len)
			return FAIL(err, DISC_ERR_MALFORMED, "TCP option %u has no length byte",
				    kind);
		olen = o[i + 1];
		if (olen < 2 || olen > len - i)
			return FAIL(err, DISC_ERR_MALFORMED,
				    "TCP option %u length %u does not fit in %zu option bytes",
				    kind, olen, len - i);
		/* A known kind with an unexpected length is kept in the order but not decoded. */
		switch (kind) {
		case 2:
			if (olen == 4) {
				tcp->has_mss = true;
				tcp->mss = disc_get_be16(o + i + 2);
			}
			break;
		case 3:
			if (olen == 3) {
				tcp->has_wscale = true;
				tcp->wscale = o[i + 2];
			}
			break;
		case 4:
			if (olen == 2)
				tcp->sack_permitted = true;
			break;
		case 8:
			if (olen == 10) {
				tcp->has_timestamp = true;
				tcp->ts_val = disc_get_be32(o + i + 2);
				tcp->ts_ecr = disc_get_be32(o + i + 6);
			}
			break;
		default:
			break;
		}
		i += olen;
	}
	return DISC_OK;
}

static enum disc_status parse_tcp(const uint8_t *p, size_t len, struct disc_tcp_info *tcp,
				  struct disc_error *err)
{
	size_t hlen;

	if (len < 20)
		return FAIL(err, DISC_ERR_TRUNCATED, "TCP header needs 20 bytes, %zu captured",
			    len);
	hlen = (size_t)(p[12] >> 4) * 4;
	if (hlen < 20)
		return FAIL(err, DISC_ERR_MALFORMED, "TCP data offset %zu is below 20 bytes", hlen);
	if (hlen > len)
		return FAIL(err, DISC_ERR_TRUNCATED, "TCP header of %zu bytes, only %zu captured",
			    hlen, len);
	tcp->src_port = disc_get_be16(p);
	tcp->dst_port = disc_get_be16(p + 2);
	tcp->seq = disc_get_be32(p + 4);
	tcp->ack = disc_get_be32(p + 8);
	tcp->header_len = (uint8_t)hlen;
	tcp->flags = p[13];
	tcp->window = disc_get_be16(p + 14);
	tcp->urgent = disc_get_be16(p + 18);
	tcp->payload = p + hlen;
	tcp->payload_len = len - hlen;
	return parse_tcp_options(p + 20, hlen - 20, tcp, err);
}

static enum disc_status parse_udp(const uint8_t *p, size_t len, struct disc_udp_info *udp,
				  struct disc_error *err)
{
	if (len < 8)
		return FAIL(err, DISC_ERR_TRUNCATED, "UDP header needs 8 bytes, %zu captured", len);
	udp->src_port = disc_get_be16(p);
	udp->dst_port = disc_get_be16(p + 2);
	udp->length = disc_get_be16(p + 4);
	if (udp->length < 8)
		return FAIL(err, DISC_ERR_MALFORMED, "UDP length %u is below 8", udp->length);
	udp->payload = p + 8;
	udp->payload_len = (udp->length < len ? udp->length : len) - 8;
	return DISC_OK;
}

/* The quoted datagram of an ICMP error: its IPv4 header and at least 8 bytes after it. */
static enum disc_status parse_quote(const uint8_t *p, size_t len, struct disc_icmp_quote *q,
				    struct disc_error *err)
{
	size_t hlen;
	const uint8_t *l4;

	if (len < 20)
		return FAIL(err, DISC_ERR_TRUNCATED,
			    "ICMP error quotes %zu bytes, less than an IPv4 header", len);
	if (p[0] >> 4 != 4)
		return FAIL(err, DISC_ERR_MALFORMED, "ICMP error quotes IP version %u", p[0] >> 4);
	hlen = (size_t)(p[0] & 15) * 4;
	if (hlen < 20)
		return FAIL(err, DISC_ERR_MALFORMED, "quoted IPv4 header length %zu below 20",
			    hlen);
	if (hlen + 8 > len)
		return FAIL(err, DISC_ERR_TRUNCATED,
			    "ICMP error quotes %zu bytes, needs the %zu-byte header and 8 more",
			    len, hlen);
	q->id = disc_get_be16(p + 4);
	q->ttl = p[8];
	q->proto = p[9];
	q->src = disc_get_be32(p + 12);
	q->dst = disc_get_be32(p + 16);
	l4 = p + hlen;
	if (q->proto == 6 || q->proto == 17) {
		q->src_port = disc_get_be16(l4);
		q->dst_port = disc_get_be16(l4 + 2);
		if (q->proto == 6)
			q->tcp_seq = disc_get_be32(l4 + 4);
	} else if (q->proto == 1) {
		q->icmp_id = disc_get_be16(l4 + 4);
		q->icmp_seq = disc_get_be16(l4 + 6);
	}
	return DISC_OK;
}

static enum disc_status parse_icmp(const uint8_t *p, size_t len, struct disc_icmp_info *icmp,
				   struct disc_error *err)
{
	if (len < 8)
		return FAIL(err, DISC_ERR_TRUNCATED, "ICMP header needs 8 bytes, %zu captured",
			    len);
	icmp->type = p[0];
	icmp->code = p[1];
	icmp->payload = p + 8;
	icmp->payload_len = len - 8;
	switch (icmp->type) {
	case 0: /* echo reply */
	case 8: /* echo request */
		icmp->id = disc_get_be16(p + 4);
		icmp->seq = disc_get_be16(p + 6);
		return DISC_OK;
	case 13: /* timestamp request */
	case 14: /* timestamp reply */
		if (len < 20)
			return FAIL(err, DISC_ERR_TRUNCATED,
				    "ICMP timestamp message needs 20 bytes, %zu captured", len);
		icmp->id = disc_get_be16(p + 4);
		icmp->seq = disc_get_be16(p + 6);
		icmp->ts_originate = disc_get_be32(p + 8);
		icmp->ts_receive = disc_get_be32(p + 12);
		icmp->ts_transmit = disc_get_be32(p + 16);
		return DISC_OK;
	case 3:	 /* destination unreachable */
	case 4:	 /* source quench */
	case 5:	 /* redirect */
	case 11: /* time exceeded */
	case 12: /* parameter problem */
		icmp->has_quote = true;
		return parse_quote(p + 8, len - 8, &icmp->quote, err);
	default:
		return DISC_OK;
	}
}

static enum disc_status parse_ipv4(const uint8_t *p, size_t len, struct disc_frame *f,
				   struct disc_error *err)
{
	struct disc_ipv4_info *ip = &f->ip;
	size_t hlen, end;
	uint16_t frag;

	if (len < 20)
		return FAIL(err, DISC_ERR_TRUNCATED, "IPv4 header needs 20 bytes, %zu captured",
			    len);
	if (p[0] >> 4 != 4)
		return FAIL(err, DISC_ERR_MALFORMED, "IP version %u in an IPv4 frame", p[0] >> 4);
	hlen = (size_t)(p[0] & 15) * 4;
	if (hlen < 20)
		return FAIL(err, DISC_ERR_MALFORMED, "IPv4 header length %zu below 20", hlen);
	if (hlen > len)
		return FAIL(err, DISC_ERR_TRUNCATED, "IPv4 header of %zu bytes, %zu captured", hlen,
			    len);
	f->l3 = DISC_L3_IPV4;
	ip->header_len = (uint8_t)hlen;
	ip->tos = p[1];
	ip->total_len = disc_get_be16(p + 2);
	ip->id = disc_get_be16(p + 4);
	frag = disc_get_be16(p + 6);
	ip->dont_fragment = frag & 0x4000;
	ip->more_fragments = frag & 0x2000;
	ip->frag_offset = frag & 0x1fff;
	ip->ttl = p[8];
	ip->proto = p[9];
	ip->src = disc_get_be32(p + 12);
	ip->dst = disc_get_be32(p + 16);
	ip->checksum_ok = disc_cksum_ipv4_header(p, hlen) == 0;
	if (ip->total_len < hlen)
		return FAIL(err, DISC_ERR_MALFORMED, "IPv4 total length %u below header length %zu",
			    ip->total_len, hlen);
	/* Ethernet pads short frames: the IPv4 length, not the capture, says where data ends. */
	end = ip->total_len;
	if (end > len) {
		f->truncated = true;
		end = len;
	}
	if (ip->frag_offset != 0)
		return DISC_OK; /* no transport header in a later fragment */
	switch (ip->proto) {
	case 6:
		f->l4 = DISC_L4_TCP;
		return parse_tcp(p + hlen, end - hlen, &f->tcp, err);
	case 17:
		f->l4 = DISC_L4_UDP;
		return parse_udp(p + hlen, end - hlen, &f->udp, err);
	case 1:
		f->l4 = DISC_L4_ICMP;
		return parse_icmp(p + hlen, end - hlen, &f->icmp, err);
	default:
		return DISC_OK;
	}
}

static enum disc_status parse_arp(const uint8_t *p, size_t len, struct disc_arp_info *arp,
				  struct disc_error *err)
{
	if (len < 28)
		return FAIL(err, DISC_ERR_TRUNCATED, "ARP packet needs 28 bytes, %zu captured",
			    len);
	if (disc_get_be16(p) != 1 || disc_get_be16(p + 2) != ETHERTYPE_IPV4 || p[4] != 6 ||
	    p[5] != 4)
		return FAIL(err, DISC_ERR_UNSUPPORTED,
			    "ARP for hardware type %u, protocol 0x%04x is not Ethernet/IPv4",
			    disc_get_be16(p), disc_get_be16(p + 2));
	arp->op = disc_get_be16(p + 6);
	memcpy(arp->sender_mac, p + 8, 6);
	arp->sender_ip = disc_get_be32(p + 14);
	memcpy(arp->target_mac, p + 18, 6);
	arp->target_ip = disc_get_be32(p + 24);
	return DISC_OK;
}

enum disc_status disc_frame_parse(const uint8_t *buf, size_t len, enum disc_link link,
				  struct disc_frame *out, struct disc_error *err)
{
	size_t off = 0;
	enum disc_status st;

	memset(out, 0, sizeof(*out));
	if (link == DISC_LINK_RAW_IPV4) {
		st = parse_ipv4(buf, len, out, err);
		goto out;
	}
	if (link != DISC_LINK_ETHERNET)
		return FAIL(err, DISC_ERR_UNSUPPORTED, "unsupported link type %d", (int)link);
	if (len < 14)
		return FAIL(err, DISC_ERR_TRUNCATED,
			    "frame of %zu bytes is shorter than an Ethernet "
			    "header (14)",
			    len);
	out->has_eth = true;
	memcpy(out->eth_dst, buf, 6);
	memcpy(out->eth_src, buf + 6, 6);
	out->ethertype = disc_get_be16(buf + 12);
	off = 14;
	for (int tags = 0;
	     tags < 2 && (out->ethertype == ETHERTYPE_VLAN || out->ethertype == ETHERTYPE_QINQ);
	     tags++) {
		if (len < off + 4)
			return FAIL(err, DISC_ERR_TRUNCATED, "VLAN tag cut off at %zu bytes", len);
		if (tags == 0)
			out->vlan_id = disc_get_be16(buf + off) & 0x0fff;
		out->ethertype = disc_get_be16(buf + off + 2);
		off += 4;
	}
	switch (out->ethertype) {
	case ETHERTYPE_IPV4:
		st = parse_ipv4(buf + off, len - off, out, err);
		break;
	case ETHERTYPE_ARP:
		out->l3 = DISC_L3_ARP;
		st = parse_arp(buf + off, len - off, &out->arp, err);
		break;
	default:
		st = DISC_OK;
		break;
	}
out:
	return st;
}
