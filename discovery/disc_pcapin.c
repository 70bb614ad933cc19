/* disc_pcapin: passive discovery from a capture file (see disc/pcapin.h). */
#include "disc/pcapin.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>

#include "disc/frame.h"
#include "disc/ports.h"
#include "disc/results.h"
#include "disc/seen.h"
#include "disc/svcdb.h"
#include "disc_bytes.h"

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806
#define SLL_HDR_LEN    16
#define SLL2_HDR_LEN   20
#define NULL_HDR_LEN   4
#define AF_INET_BSD    2 /* AF_INET in the BSD loopback header, every system */

struct banner {
	uint32_t ip;
	uint16_t port;
	bool truncated; /* the payload was longer than banner_max */
	struct timespec seen;
	uint8_t *bytes; /* owned */
	size_t len;
};

struct disc_pcapin {
	struct disc_pcapin_config cfg;
	char name[128]; /* for messages */
	pcap_t *pcap;
	int dlt;
	struct disc_results results;
	/* (server ip, server port, client port) -> the server's ISN + 1 */
	struct disc_seen flows;
	struct disc_seen banner_index; /* (ip, port) of ports with a banner */
	struct banner *banners;	       /* owned */
	size_t n_banners, cap_banners;
	struct disc_pcapin_stats st;
	struct timespec now; /* time of the packet being handled: results.now points here */
};

static uint64_t port_key(uint32_t ip, uint16_t port)
{
	return (uint64_t)ip << 16 | port;
}

static uint64_t flow_key(uint32_t server, uint16_t sport, uint16_t cport)
{
	return (uint64_t)server << 32 | (uint64_t)sport << 16 | cport;
}

/* Whether ip is a host worth reporting: among the targets, or any unicast source. */
static bool wanted(const struct disc_pcapin *p, uint32_t ip)
{
	if (p->cfg.targets)
		return disc_targets_contains(p->cfg.targets, ip);
	return (ip >> 24) != 0 && (ip >> 28) != 14 && (ip >> 28) != 15;
}

static void keep_banner(struct disc_pcapin *p, uint32_t ip, uint16_t port, const uint8_t *payload,
			size_t len)
{
	size_t max = p->cfg.banner_max ? p->cfg.banner_max : DISC_OBS_BANNER_MAX_DEFAULT;
	struct banner *b;
	bool inserted = false;

	if (disc_seen_get(&p->banner_index, port_key(ip, port), NULL) ||
	    p->n_banners >= DISC_PCAPIN_MAX_BANNERS)
		return;
	if (p->n_banners == p->cap_banners) {
		size_t ncap = p->cap_banners ? p->cap_banners * 2 : 64;
		struct banner *nb = realloc(p->banners, ncap * sizeof(*nb));

		if (!nb)
			return; /* a banner less; the host and port are already recorded */
		p->banners = nb;
		p->cap_banners = ncap;
	}
	b = &p->banners[p->n_banners];
	b->len = len < max ? len : max;
	b->truncated = len > max;
	b->bytes = malloc(b->len ? b->len : 1);
	if (!b->bytes)
		return;
	if (disc_seen_insert(&p->banner_index, port_key(ip, port), 0, &inserted, NULL, NULL) !=
		    DISC_OK ||
	    !inserted) {
		free(b->bytes);
		return;
	}
	memcpy(b->bytes, payload, b->len);
	b->ip = ip;
	b->port = port;
	b->seen = p->now;
	p->n_banners++;
	p->st.banners++;
	if (p->cfg.os)
		disc_results_os_hint(&p->results, ip,
				     disc_os_banner_hint(p->cfg.os, payload, b->len));
}

static void on_arp(struct disc_pcapin *p, const struct disc_arp_info *a)
{
	bool is_new = false;

	/* An ARP probe (RFC 5227) has sender 0.0.0.0: it claims nothing yet. */
	if ((a->op != 1 && a->op != 2) || !wanted(p, a->sender_ip))
		return;
	if (disc_results_host(&p->results, a->sender_ip,
			      a->op == 2 ? DISC_REASON_ARP : DISC_REASON_ARP_REQUEST, -1,
			      a->sender_mac, &is_new, NULL) == DISC_OK &&
	    is_new)
		p->st.hosts++;
}

static void on_tcp(struct disc_pcapin *p, const struct disc_frame *f)
{
	const struct disc_tcp_info *t = &f->tcp;
	uint32_t src = f->ip.src, isn1;
	bool synack = (t->flags & (DISC_TCP_SYN | DISC_TCP_ACK | DISC_TCP_RST)) ==
		      (DISC_TCP_SYN | DISC_TCP_ACK);

	if (synack) {
		struct disc_os_fp fp;
		bool is_new = false, inserted = false;

		if (disc_results_port(&p->results, src, t->src_port, true, DISC_REASON_SYN_ACK,
				      f->ip.ttl, &is_new, NULL) == DISC_OK &&
		    is_new)
			p->st.open_ports++;
		disc_os_fp_from_frame(f, &fp);
		disc_results_os_fp(&p->results, src, &fp);
		if (disc_seen_count(&p->flows) >= DISC_PCAPIN_MAX_FLOWS ||
		    disc_seen_insert(&p->flows, flow_key(src, t->src_port, t->dst_port), t->seq + 1,
				     &inserted, NULL, NULL) != DISC_OK)
			p->st.flows_dropped++;
		return;
	}
	/* The server's first payload of a connection whose SYN-ACK we saw. */
	if (t->payload_len > 0 && !(t->flags & (DISC_TCP_SYN | DISC_TCP_RST)) &&
	    disc_seen_get(&p->flows, flow_key(src, t->src_port, t->dst_port), &isn1) &&
	    t->seq == isn1)
		keep_banner(p, src, t->src_port, t->payload, t->payload_len);
}

static void on_ipv4(struct disc_pcapin *p, const struct disc_frame *f, bool complete)
{
	enum disc_reason why = DISC_REASON_TRAFFIC;
	bool is_new = false;

	if (!f->ip.checksum_ok || !wanted(p, f->ip.src))
		return;
	if (complete && f->l4 == DISC_L4_TCP &&
	    (f->tcp.flags & (DISC_TCP_SYN | DISC_TCP_ACK | DISC_TCP_RST)) ==
		    (DISC_TCP_SYN | DISC_TCP_ACK))
		why = DISC_REASON_SYN_ACK;
	else if (complete && f->l4 == DISC_L4_ICMP && f->icmp.type == 0)
		why = DISC_REASON_ECHO;
	else if (complete && f->l4 == DISC_L4_ICMP && f->icmp.type == 14)
		why = DISC_REASON_TIMESTAMP;
	if (disc_results_host(&p->results, f->ip.src, why, f->ip.ttl, NULL, &is_new, NULL) ==
		    DISC_OK &&
	    is_new)
		p->st.hosts++;
	if (complete && f->l4 == DISC_L4_TCP)
		on_tcp(p, f);
}

/*
 * Turns a Linux cooked (SLL/SLL2) or BSD loopback header into what
 * disc_frame reads: the IPv4 packet after it, or for ARP an Ethernet frame
 * rebuilt in scratch (the ARP packet is all disc_frame needs of it).
 * Returns false for anything else (IPv6, other protocols).
 */
static bool strip_link(int dlt, const uint8_t *buf, size_t len, uint8_t *scratch,
		       size_t scratch_len, const uint8_t **out, size_t *out_len,
		       enum disc_link *link)
{
	uint16_t proto;
	size_t hdr;

	switch (dlt) {
	case DLT_LINUX_SLL:
		if (len < SLL_HDR_LEN)
			return false;
		proto = disc_get_be16(buf + 14);
		hdr = SLL_HDR_LEN;
		break;
	case DLT_LINUX_SLL2:
		if (len < SLL2_HDR_LEN)
			return false;
		proto = disc_get_be16(buf);
		hdr = SLL2_HDR_LEN;
		break;
	case DLT_NULL:
	case DLT_LOOP: {
		uint32_t fam;

		if (len < NULL_HDR_LEN)
			return false;
		/* DLT_NULL is in the capturing host's byte order, DLT_LOOP big-endian. */
		fam = disc_get_be32(buf);
		if (dlt == DLT_NULL && fam != AF_INET_BSD)
			fam = (uint32_t)buf[0] | (uint32_t)buf[1] << 8 | (uint32_t)buf[2] << 16 |
			      (uint32_t)buf[3] << 24;
		if (fam != AF_INET_BSD)
			return false;
		*out = buf + NULL_HDR_LEN;
		*out_len = len - NULL_HDR_LEN;
		*link = DISC_LINK_RAW_IPV4;
		return true;
	}
	default:
		return false;
	}
	if (proto == ETHERTYPE_IPV4) {
		*out = buf + hdr;
		*out_len = len - hdr;
		*link = DISC_LINK_RAW_IPV4;
		return true;
	}
	if (proto != ETHERTYPE_ARP)
		return false;
	/* Ethernet header (addresses unused) + the ARP packet, cut to what fits. */
	memset(scratch, 0, 14);
	scratch[12] = ETHERTYPE_ARP >> 8;
	scratch[13] = ETHERTYPE_ARP & 0xff;
	*out_len = len - hdr < scratch_len - 14 ? len - hdr : scratch_len - 14;
	memcpy(scratch + 14, buf + hdr, *out_len);
	*out_len += 14;
	*out = scratch;
	*link = DISC_LINK_ETHERNET;
	return true;
}

static void on_packet(struct disc_pcapin *p, const struct pcap_pkthdr *h, const uint8_t *bytes)
{
	uint8_t scratch[64];
	const uint8_t *buf = bytes;
	size_t len = h->caplen;
	enum disc_link link = DISC_LINK_ETHERNET;
	struct disc_frame f;
	enum disc_status st;

	/* libpcap's nanosecond reader puts nanoseconds in tv_usec. */
	p->now.tv_sec = h->ts.tv_sec;
	p->now.tv_nsec = h->ts.tv_usec;
	if (p->st.packets == 0)
		p->st.first = p->now;
	p->st.last = p->now;
	p->st.packets++;
	switch (p->dlt) {
	case DLT_EN10MB:
		break;
	case DLT_RAW:
	case DLT_IPV4:
		if (len == 0 || buf[0] >> 4 != 4)
			return; /* IPv6 in a raw capture: not ours to read */
		link = DISC_LINK_RAW_IPV4;
		break;
	default:
		if (!strip_link(p->dlt, bytes, len, scratch, sizeof(scratch), &buf, &len, &link))
			return;
		break;
	}
	st = disc_frame_parse(buf, len, link, &f, NULL);
	if (st != DISC_OK) {
		p->st.bad_frames++;
		/*
		 * A transport header cut off (a short snap length) after a whole,
		 * checksummed IPv4 header: its source still sent a packet.
		 */
		if (f.l3 == DISC_L3_IPV4 && f.l4 != DISC_L4_NONE)
			on_ipv4(p, &f, false);
		return;
	}
	if (f.l3 == DISC_L3_ARP)
		on_arp(p, &f.arp);
	else if (f.l3 == DISC_L3_IPV4)
		on_ipv4(p, &f, true);
}

static const char *link_name(int dlt)
{
	const char *n = pcap_datalink_val_to_name(dlt);

	return n ? n : "unknown";
}

/* Takes pcap (owned) and makes the reader, checking the link type. */
static enum disc_status make_reader(struct disc_pcapin **out, pcap_t *pcap, const char *name,
				    const struct disc_pcapin_config *cfg, struct disc_error *err)
{
	struct disc_pcapin *p;
	int dlt = pcap_datalink(pcap);

	switch (dlt) {
	case DLT_EN10MB:
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_LINUX_SLL:
	case DLT_LINUX_SLL2:
	case DLT_NULL:
	case DLT_LOOP:
		break;
	default:
		pcap_close(pcap);
		return disc_error_set(err, DISC_ERR_UNSUPPORTED,
				      "%s: link type %s (%d) is not supported; Ethernet, raw IP, "
				      "Linux cooked and BSD loopback captures are",
				      name, link_name(dlt), dlt);
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		pcap_close(pcap);
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
	}
	p->cfg = *cfg;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->pcap = pcap;
	p->dlt = dlt;
	disc_results_init(&p->results);
	p->results.now = &p->now;
	disc_seen_init(&p->flows);
	disc_seen_init(&p->banner_index);
	p->st.link = link_name(dlt);
	*out = p;
	return DISC_OK;
}

/* libpcap's open errors, said in terms of the file. */
static enum disc_status open_error(const char *name, const char *msg, struct disc_error *err)
{
	if (strstr(msg, "unknown file format"))
		return disc_error_set(err, DISC_ERR_MALFORMED,
				      "%s: not a pcap or pcapng capture file", name);
	if (strstr(msg, "truncated") || strstr(msg, "only got"))
		return disc_error_set(err, DISC_ERR_TRUNCATED,
				      "%s: the capture file's header is cut off (%s)", name, msg);
	return disc_error_set(err, DISC_ERR_MALFORMED, "%s: cannot read the capture: %s", name,
			      msg);
}

enum disc_status disc_pcapin_open(struct disc_pcapin **out, const char *path,
				  const struct disc_pcapin_config *cfg, struct disc_error *err)
{
	/* fopen first: "cannot open" is a different problem from "not a capture". */
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");

	*out = NULL;
	if (!f)
		return disc_error_set(err, DISC_ERR_IO, "cannot open %s: %s", path,
				      strerror(errno));
	return disc_pcapin_open_file(out, f, path, cfg, err);
}

enum disc_status disc_pcapin_open_file(struct disc_pcapin **out, FILE *f, const char *name,
				       const struct disc_pcapin_config *cfg, struct disc_error *err)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pcap =
		pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, ebuf);

	*out = NULL;
	if (!pcap) {
		fclose(f);
		return open_error(name, ebuf, err);
	}
	return make_reader(out, pcap, name, cfg, err);
}

enum disc_status disc_pcapin_run(struct disc_pcapin *p, struct disc_error *err)
{
	for (;;) {
		struct pcap_pkthdr *h;
		const u_char *bytes;
		int rc;

		if (p->cfg.stop && *p->cfg.stop) {
			p->st.interrupted = true;
			return DISC_OK;
		}
		rc = pcap_next_ex(p->pcap, &h, &bytes);
		if (rc == PCAP_ERROR_BREAK) /* end of the file */
			return DISC_OK;
		if (rc != 1) {
			const char *msg = pcap_geterr(p->pcap);

			return disc_error_set(err,
					      strstr(msg, "truncated") ? DISC_ERR_TRUNCATED
								       : DISC_ERR_MALFORMED,
					      "%s: %s after packet %llu (%s)", p->name,
					      strstr(msg, "truncated") ? "the capture is cut off"
								       : "the capture is corrupt",
					      (unsigned long long)p->st.packets, msg);
		}
		on_packet(p, h, bytes);
	}
}

void disc_pcapin_get_stats(const struct disc_pcapin *p, struct disc_pcapin_stats *out)
{
	*out = p->st;
}

static int cmp_banner(const void *a, const void *b)
{
	const struct banner *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

/*
 * Names a captured banner with service detection's database: the NULL
 * probe's rules first (a greeting), then those of the probes most likely on
 * the port (the first server payload may answer a client's request, such as
 * an HTTP response). m->service stays empty when nothing matches.
 */
static enum disc_status name_banner(const struct disc_svcdb *db, uint16_t port, const uint8_t *buf,
				    size_t len, struct disc_svc_match *m, struct disc_error *err)
{
	size_t order[64];
	size_t n = disc_svcdb_plan(db, DISC_PROTO_TCP, port, false, order, sizeof(order) / sizeof(order[0]));
	enum disc_status st = disc_svcdb_match(db, 0, buf, len, m, err);

	for (size_t i = 0; st == DISC_OK && !m->service[0] && i < n; i++) {
		disc_svc_match_release(m);
		st = disc_svcdb_match(db, order[i], buf, len, m, err);
	}
	return st;
}

enum disc_status disc_pcapin_emit(struct disc_pcapin *p, struct disc_obs_writer *w,
				  const struct disc_vendor_db *vendors, size_t *n_hosts,
				  size_t *n_ports, size_t *n_services, struct disc_error *err)
{
	struct disc_results_emit_opts o = {
		.vendors = vendors,
		.targets = p->cfg.targets,
		.ports_probed = 0, /* nothing was probed: no host is a SYN proxy by count */
		.proto = "tcp",
		.os = p->cfg.os,
	};
	size_t services = 0, saved = w->banner_max;
	struct disc_svcdb *db = NULL;
	enum disc_status st;

	if (n_services)
		*n_services = 0;
	st = disc_results_emit(&p->results, w, &o, n_hosts, n_ports, NULL, err);
	if (st != DISC_OK)
		return st;
	if (p->n_banners) /* qsort must not be given NULL, even for no elements */
		qsort(p->banners, p->n_banners, sizeof(*p->banners), cmp_banner);
	if (p->cfg.banner_max)
		w->banner_max = p->cfg.banner_max;
	if (p->n_banners) {
		st = disc_svcdb_load_default(&db, err);
		if (st != DISC_OK)
			return st;
	}
	for (size_t i = 0; i < p->n_banners; i++) {
		const struct banner *b = &p->banners[i];
		struct disc_svc_match m;
		struct disc_obs_service s = {
			.ip = b->ip,
			.proto = "tcp",
			.port = b->port,
			.service = "unknown",
			.banner = b->bytes,
			.banner_len = b->len,
			.confidence = -1,
		};
		json_t *obj;

		st = name_banner(db, b->port, b->bytes, b->len, &m, err);
		if (st != DISC_OK) {
			disc_svc_match_release(&m);
			break;
		}
		if (m.service[0]) {
			s.service = m.service;
			s.product = m.product[0] ? m.product : NULL;
			s.version = m.version[0] ? m.version : NULL;
			s.extra = m.extra;
			s.confidence = m.confidence;
		}
		obj = disc_obs_service_json(w, &s, &b->seen);
		disc_svc_match_release(&m);

		/* Cut here already: the writer cannot know the payload was longer. */
		if (obj && b->truncated && !json_object_get(obj, "banner_truncated") &&
		    json_object_set_new(obj, "banner_truncated", json_true()) != 0) {
			json_decref(obj);
			obj = NULL;
		}
		st = disc_obs_emit(w, obj, err);
		if (st != DISC_OK)
			break;
		services++;
	}
	w->banner_max = saved;
	disc_svcdb_free(db);
	if (n_services)
		*n_services = services;
	return st;
}

void disc_pcapin_free(struct disc_pcapin *p)
{
	if (!p)
		return;
	if (p->pcap)
		pcap_close(p->pcap);
	disc_results_release(&p->results);
	disc_seen_release(&p->flows);
	disc_seen_release(&p->banner_index);
	for (size_t i = 0; i < p->n_banners; i++)
		free(p->banners[i].bytes);
	free(p->banners);
	free(p);
}
