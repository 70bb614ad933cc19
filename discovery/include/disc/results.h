/*
 * disc_results: what a scan found, de-duplicated, until it is written out.
 *
 * Replies arrive in any order and more than once (retries, retransmitted
 * SYN-ACKs); this module keeps one record per live host and one per answered
 * (address, port), in tables that grow with what was found, not with the
 * number of targets. It also answers the transmit side's question "was this
 * probe already answered?" so that retries go only where nothing came back.
 *
 * At the end, disc_results_emit writes host and port observations sorted by
 * address and port, so that two runs over the same network diff cleanly. A
 * host that answered SYN-ACK on nearly every port probed is a SYN proxy (or
 * a tarpit, or a load balancer answering for the whole range): it is written
 * as one host line with "syn_proxy": true instead of thousands of port lines.
 *
 * Not thread-safe: the scan engine holds its results lock around every call.
 */
#ifndef DISC_RESULTS_H
#define DISC_RESULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "disc/error.h"
#include "disc/obs.h"
#include "disc/os.h"
#include "disc/seen.h"
#include "disc/targets.h"
#include "disc/vendor.h"

/* Why a host is up or a port is open (observation `reason` values). */
enum disc_reason {
	DISC_REASON_NONE,
	DISC_REASON_ARP,	  /* arp-response */
	DISC_REASON_ECHO,	  /* echo-reply */
	DISC_REASON_TIMESTAMP,	  /* timestamp-reply */
	DISC_REASON_SYN_ACK,	  /* syn-ack */
	DISC_REASON_RST,	  /* rst */
	DISC_REASON_CONNECT,	  /* connect: a full connection succeeded */
	DISC_REASON_CONN_REFUSED, /* conn-refused */
	DISC_REASON_LOCALHOST,	  /* localhost-response: the scanner's own address */
	DISC_REASON_ARP_REQUEST,  /* arp-request: seen asking (passive, --pcap) */
	DISC_REASON_TRAFFIC,	  /* ip-traffic: seen sending IPv4 packets (passive, --pcap) */
};

/* The observation text of a reason ("arp-response", ...); NULL for NONE. */
const char *disc_reason_str(enum disc_reason r);

/*
 * A host is a SYN proxy when at least this many of its ports were probed and
 * at least DISC_SYN_PROXY_PERCENT percent of them answered SYN-ACK: no real
 * host listens on nearly every port of a list that long.
 */
#define DISC_SYN_PROXY_MIN_PORTS 64
#define DISC_SYN_PROXY_PERCENT	 90

struct disc_result_host {
	uint32_t ip;
	uint8_t mac[6];
	bool has_mac;
	int ttl; /* of the first IP reply; -1 when only ARP answered */
	enum disc_reason reason;
	uint32_t open, closed; /* distinct ports that answered SYN-ACK / RST */
	struct timespec seen;  /* when it first answered (CLOCK_REALTIME): the line's "at" */
	bool has_fp;	       /* fp holds the host's first SYN-ACK (for --os) */
	int os_hint;	       /* a banner hint of the OS db (disc_os_banner_hint), -1 none */
	struct disc_os_fp fp;
};

struct disc_result_port {
	uint32_t ip;
	uint16_t port;
	enum disc_reason reason;
	struct timespec seen;
};

struct disc_results {
	struct disc_result_host *hosts; /* owned, in order of discovery */
	size_t n_hosts, cap_hosts;
	struct disc_seen host_index;   /* ip -> index into hosts */
	struct disc_result_port *open; /* owned, open ports in order of discovery */
	size_t n_open, cap_open;
	/* (ip, port) keys that got any answer. The raw engine records only open
	 * ports here: its closed ports (every RST of a sweep) would make this grow
	 * with the probes; its retries look at disc_answers instead. */
	struct disc_seen answered;
	/* When set, new records are stamped with *now instead of the real-time
	 * clock: offline input (--pcap) says when a packet was seen. Borrowed. */
	const struct timespec *now;
};

void disc_results_init(struct disc_results *r);
void disc_results_release(struct disc_results *r);

/*
 * Records that ip is up for reason (with the reply's TTL, -1 if none, and
 * MAC, NULL if not on-link). The first reason is kept; a later reply fills
 * in a MAC or TTL that was missing. *is_new (may be NULL) says whether the
 * host was not known before.
 */
enum disc_status disc_results_host(struct disc_results *r, uint32_t ip, enum disc_reason reason,
				   int ttl, const uint8_t *mac, bool *is_new,
				   struct disc_error *err);

/*
 * Records a TCP reply from ip:port: open (SYN-ACK, or a completed connect)
 * or closed (RST, refused). Only the first answer for a port counts. The
 * host is recorded as up too (reason syn-ack/rst/connect/conn-refused) if it
 * was not known. *is_new (may be NULL) says whether this port was new.
 */
enum disc_status disc_results_port(struct disc_results *r, uint32_t ip, uint16_t port, bool open,
				   enum disc_reason reason, int ttl, bool *is_new,
				   struct disc_error *err);

/*
 * Keeps fp as the fingerprint of the known host ip if it has none yet (the
 * first SYN-ACK counts: retransmissions and later ones add nothing). An
 * unknown host is ignored: record it first.
 */
void disc_results_os_fp(struct disc_results *r, uint32_t ip, const struct disc_os_fp *fp);

/* Keeps hint (>= 0) as the banner hint of the known host ip if it has none yet. */
void disc_results_os_hint(struct disc_results *r, uint32_t ip, int hint);

/* Whether ip:port got any answer yet. */
bool disc_results_answered(const struct disc_results *r, uint32_t ip, uint16_t port);

/* The record of ip, or NULL. Borrowed: valid until the next call that adds a host. */
const struct disc_result_host *disc_results_find(const struct disc_results *r, uint32_t ip);

/* Whether a host with `open` SYN-ACKs out of `probed` ports looks like a SYN proxy. */
bool disc_results_is_syn_proxy(uint32_t open, uint64_t probed);

struct disc_results_emit_opts {
	const struct disc_vendor_db *vendors; /* NULL: no vendor names */
	const struct disc_targets *targets;   /* NULL: no hostnames */
	uint64_t ports_probed;		      /* per host, for SYN proxy detection */
	const char *proto;		      /* "tcp" */
	const struct disc_os_db *os;	      /* NULL: no OS guesses ("os", "tcp_fingerprint") */
};

/*
 * Writes every host (sorted by address) followed by its open ports (sorted),
 * through w. *n_hosts, *n_ports, *n_proxies (each may be NULL) get what was
 * written. Stops at the first write error.
 */
enum disc_status disc_results_emit(const struct disc_results *r, struct disc_obs_writer *w,
				   const struct disc_results_emit_opts *opts, size_t *n_hosts,
				   size_t *n_ports, size_t *n_proxies, struct disc_error *err);

#endif
