/*
 * disc_probe: prepare/make probe modules (see disc/probe.h). Header layouts
 * are from RFC 791 (IPv4), RFC 793 (TCP), RFC 792 (ICMP echo, timestamp),
 * RFC 826 (ARP) and IEEE 802.3 (Ethernet II).
 */
#include "disc/probe.h"

#include <string.h>

#include "disc/cksum.h"
#include "disc_bytes.h"

#define ETH_LEN	      14
#define IP_LEN	      20
#define TCP_SYN_LEN   24 /* 20 + MSS option */
#define TCP_ACK_LEN   20
#define ICMP_ECHO_LEN 8
#define ICMP_TS_LEN   20
#define ARP_LEN	      28

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806

static void write_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	disc_put_be16(f + 12, type);
}

/* The IPv4 header's constant part; id, destination and checksum come in make. */
static void write_ipv4(uint8_t *ip, const struct disc_probe_config *cfg, uint8_t proto,
		       uint16_t payload_len)
{
	ip[0] = 0x45; /* version 4, 5 words */
	ip[1] = 0;
	disc_put_be16(ip + 2, (uint16_t)(IP_LEN + payload_len));
	disc_put_be16(ip + 4, 0);
	disc_put_be16(ip + 6, 0); /* no DF: let routers fragment rather than drop */
	ip[8] = cfg->ttl ? cfg->ttl : 64;
	ip[9] = proto;
	disc_put_be16(ip + 10, 0);
	disc_put_be32(ip + 12, cfg->src_ip);
	disc_put_be32(ip + 16, 0);
}

static void patch_ipv4(uint8_t *ip, const struct disc_probe_target *t)
{
	disc_put_be16(ip + 4, t->ip_id);
	disc_put_be32(ip + 16, t->dst_ip);
	disc_put_be16(ip + 10, 0);
	disc_put_be16(ip + 10, disc_cksum_ipv4_header(ip, IP_LEN));
}

static void write_tcp(uint8_t *tcp, const struct disc_probe_config *cfg, uint8_t flags, size_t len)
{
	memset(tcp, 0, len);
	tcp[12] = (uint8_t)((len / 4) << 4);
	tcp[13] = flags;
	disc_put_be16(tcp + 14, cfg->window ? cfg->window : 1024);
}

static void patch_tcp(uint8_t *tcp, size_t len, const struct disc_probe_config *cfg,
		      const struct disc_probe_target *t)
{
	disc_put_be16(tcp, t->src_port);
	disc_put_be16(tcp + 2, t->dst_port);
	disc_put_be16(tcp + 16, 0);
	disc_put_be16(tcp + 16, disc_cksum_l4(cfg->src_ip, t->dst_ip, 6, tcp, len));
}

static void tcp_syn_prepare(uint8_t *f, const struct disc_probe_config *cfg)
{
	uint8_t *tcp = f + ETH_LEN + IP_LEN;

	write_eth(f, cfg->dst_mac, cfg->src_mac, ETHERTYPE_IPV4);
	write_ipv4(f + ETH_LEN, cfg, 6, TCP_SYN_LEN);
	write_tcp(tcp, cfg, 0x02, TCP_SYN_LEN);
	tcp[20] = 2; /* MSS option: kind 2, length 4 */
	tcp[21] = 4;
	disc_put_be16(tcp + 22, cfg->mss ? cfg->mss : 1460);
}

static void tcp_syn_make(uint8_t *f, const struct disc_probe_config *cfg,
			 const struct disc_probe_target *t)
{
	uint8_t *ip = f + ETH_LEN, *tcp = ip + IP_LEN;

	patch_ipv4(ip, t);
	disc_put_be32(tcp + 4, t->seq);
	patch_tcp(tcp, TCP_SYN_LEN, cfg, t);
}

static void tcp_ack_prepare(uint8_t *f, const struct disc_probe_config *cfg)
{
	write_eth(f, cfg->dst_mac, cfg->src_mac, ETHERTYPE_IPV4);
	write_ipv4(f + ETH_LEN, cfg, 6, TCP_ACK_LEN);
	write_tcp(f + ETH_LEN + IP_LEN, cfg, 0x10, TCP_ACK_LEN);
}

static void tcp_ack_make(uint8_t *f, const struct disc_probe_config *cfg,
			 const struct disc_probe_target *t)
{
	uint8_t *ip = f + ETH_LEN, *tcp = ip + IP_LEN;

	patch_ipv4(ip, t);
	disc_put_be32(tcp + 8, t->seq);
	patch_tcp(tcp, TCP_ACK_LEN, cfg, t);
}

static void tcp_rst_prepare(uint8_t *f, const struct disc_probe_config *cfg)
{
	uint8_t *tcp = f + ETH_LEN + IP_LEN;

	write_eth(f, cfg->dst_mac, cfg->src_mac, ETHERTYPE_IPV4);
	write_ipv4(f + ETH_LEN, cfg, 6, TCP_ACK_LEN);
	write_tcp(tcp, cfg, 0x04, TCP_ACK_LEN);
	disc_put_be16(tcp + 14, 0); /* a RST advertises no window */
}

static void tcp_rst_make(uint8_t *f, const struct disc_probe_config *cfg,
			 const struct disc_probe_target *t)
{
	uint8_t *ip = f + ETH_LEN, *tcp = ip + IP_LEN;

	patch_ipv4(ip, t);
	disc_put_be32(tcp + 4, t->seq);
	patch_tcp(tcp, TCP_ACK_LEN, cfg, t);
}

static void icmp_prepare(uint8_t *f, const struct disc_probe_config *cfg, uint8_t type, size_t len)
{
	uint8_t *icmp = f + ETH_LEN + IP_LEN;

	write_eth(f, cfg->dst_mac, cfg->src_mac, ETHERTYPE_IPV4);
	write_ipv4(f + ETH_LEN, cfg, 1, (uint16_t)len);
	memset(icmp, 0, len);
	icmp[0] = type;
}

static void icmp_make(uint8_t *f, const struct disc_probe_target *t, size_t len)
{
	uint8_t *ip = f + ETH_LEN, *icmp = ip + IP_LEN;

	patch_ipv4(ip, t);
	disc_put_be16(icmp + 4, (uint16_t)(t->seq >> 16));
	disc_put_be16(icmp + 6, (uint16_t)t->seq);
	disc_put_be16(icmp + 2, 0);
	disc_put_be16(icmp + 2, disc_cksum_icmp(icmp, len));
}

static void icmp_echo_prepare(uint8_t *f, const struct disc_probe_config *cfg)
{
	icmp_prepare(f, cfg, 8, ICMP_ECHO_LEN);
}

static void icmp_echo_make(uint8_t *f, const struct disc_probe_config *cfg,
			   const struct disc_probe_target *t)
{
	(void)cfg;
	icmp_make(f, t, ICMP_ECHO_LEN);
}

static void icmp_timestamp_prepare(uint8_t *f, const struct disc_probe_config *cfg)
{
	/* Originate, receive and transmit timestamps stay zero: only the reply's presence counts.
	 */
	icmp_prepare(f, cfg, 13, ICMP_TS_LEN);
}

static void icmp_timestamp_make(uint8_t *f, const struct disc_probe_config *cfg,
				const struct disc_probe_target *t)
{
	(void)cfg;
	icmp_make(f, t, ICMP_TS_LEN);
}

static void arp_request_prepare(uint8_t *f, const struct disc_probe_config *cfg)
{
	static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t *arp = f + ETH_LEN;

	write_eth(f, broadcast, cfg->src_mac, ETHERTYPE_ARP);
	disc_put_be16(arp, 1); /* hardware: Ethernet */
	disc_put_be16(arp + 2, ETHERTYPE_IPV4);
	arp[4] = 6;
	arp[5] = 4;
	disc_put_be16(arp + 6, 1);	  /* request */
	memcpy(arp + 8, cfg->src_mac, 6); /* sender hardware address */
	disc_put_be32(arp + 14, cfg->src_ip);
	memset(arp + 18, 0, 6); /* target hardware address: unknown */
	disc_put_be32(arp + 24, 0);
}

static void arp_request_make(uint8_t *f, const struct disc_probe_config *cfg,
			     const struct disc_probe_target *t)
{
	(void)cfg;
	disc_put_be32(f + ETH_LEN + 24, t->dst_ip);
}

/*
 * Filters: tcp[13] is the flags byte (0x12 SYN+ACK, 0x04 RST); ICMP type 3 is
 * destination unreachable (a filtered port or host), 0 echo reply, 14
 * timestamp reply; arp[6:2] = 2 is an ARP reply.
 */
static const struct disc_probe_module tcp_syn = {
	.name = "tcp_syn",
	.frame_len = ETH_LEN + IP_LEN + TCP_SYN_LEN,
	.bpf_filter = "(tcp and (tcp[13] & 0x12 = 0x12 or tcp[13] & 0x04 != 0)) or "
		      "(icmp and icmp[0] = 3)",
	/* Enough for maximal IP and TCP options (OS guessing) and an ICMP quote. */
	.snaplen = ETH_LEN + 60 + 60,
	.prepare = tcp_syn_prepare,
	.make = tcp_syn_make,
};

static const struct disc_probe_module tcp_ack = {
	.name = "tcp_ack",
	.frame_len = ETH_LEN + IP_LEN + TCP_ACK_LEN,
	.bpf_filter = "(tcp and tcp[13] & 0x04 != 0) or (icmp and icmp[0] = 3)",
	.snaplen = ETH_LEN + 60 + 60,
	.prepare = tcp_ack_prepare,
	.make = tcp_ack_make,
};

/* A RST answers nothing back: no filter. */
static const struct disc_probe_module tcp_rst = {
	.name = "tcp_rst",
	.frame_len = ETH_LEN + IP_LEN + TCP_ACK_LEN,
	.bpf_filter = NULL,
	.snaplen = 0,
	.prepare = tcp_rst_prepare,
	.make = tcp_rst_make,
};

static const struct disc_probe_module icmp_echo = {
	.name = "icmp_echo",
	.frame_len = ETH_LEN + IP_LEN + ICMP_ECHO_LEN,
	.bpf_filter = "icmp and (icmp[0] = 0 or icmp[0] = 3)",
	.snaplen = ETH_LEN + 60 + 8 + 60 + 8,
	.prepare = icmp_echo_prepare,
	.make = icmp_echo_make,
};

static const struct disc_probe_module icmp_timestamp = {
	.name = "icmp_timestamp",
	.frame_len = ETH_LEN + IP_LEN + ICMP_TS_LEN,
	.bpf_filter = "icmp and (icmp[0] = 14 or icmp[0] = 3)",
	.snaplen = ETH_LEN + 60 + 8 + 60 + 8,
	.prepare = icmp_timestamp_prepare,
	.make = icmp_timestamp_make,
};

static const struct disc_probe_module arp_request = {
	.name = "arp_request",
	.frame_len = ETH_LEN + ARP_LEN,
	.bpf_filter = "arp and arp[6:2] = 2",
	.snaplen = 64,
	.prepare = arp_request_prepare,
	.make = arp_request_make,
};

const struct disc_probe_module *const disc_probe_modules[] = {
	&tcp_syn, &tcp_ack, &tcp_rst, &icmp_echo, &icmp_timestamp, &arp_request, NULL,
};

const struct disc_probe_module *disc_probe_find(const char *name)
{
	for (size_t i = 0; disc_probe_modules[i]; i++)
		if (strcmp(disc_probe_modules[i]->name, name) == 0)
			return disc_probe_modules[i];
	return NULL;
}
