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
 * While a scan runs, disc_results_take hands out what may be written already
 * (streaming): every host once it is ready (its MAC known), and each open
 * port once its host's line is out and the host is proven no SYN proxy:
 * its port list is shorter than DISC_SYN_PROXY_MIN_PORTS, or more than
 * 100 - DISC_SYN_PROXY_PERCENT percent of its ports are closed, or (at the
 * end, disc_results_settle) it did not reach the proxy threshold. Until then
 * its open ports are held back, so a SYN proxy never has a port line out.
 * disc_results_emit then writes only the rest: hosts and ports not written
 * yet, and a host line again for a host whose line changed since (a TTL or
 * MAC learnt later, the OS guess, a SYN proxy), stamped later than the first.
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
	/* Streaming (disc_results_take) */
	bool written;	    /* a host line went out ... */
	bool written_mac;   /* ... with a MAC */
	int written_ttl;    /* ... with this TTL */
	bool no_proxy;	    /* proven no SYN proxy: its open ports go out as they are found */
	bool ports_written; /* a port line of it went out: never called a SYN proxy afterwards */
};

struct disc_result_port {
	uint32_t ip;
	uint16_t port;
	enum disc_reason reason;
	struct timespec seen;
	bool written; /* its line went out (disc_results_take) */
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
	/*
	 * Streaming (disc_results_take). proxy_ports: ports probed per host, for
	 * proving early that a host is no SYN proxy (0: nothing is proven early).
	 * hold_hosts: only hosts [0, ready_hosts) are handed out (connect mode
	 * learns MACs from the neighbour cache after a block's connects).
	 */
	uint64_t proxy_ports;
	bool hold_hosts;
	size_t ready_hosts;
	size_t taken_hosts, taken_ports; /* hosts and open[] handed out or held so far */
	uint32_t *held; /* indices into open: ports waiting for their host; owned */
	size_t n_held, cap_held;
	bool released; /* a host was proven no SYN proxy since the last take */
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

/*
 * Whether h is reported as a SYN proxy, `probed` ports having been probed:
 * it looks like one and was neither proven otherwise nor had a port line
 * written (a decision once made in the output is kept).
 */
bool disc_results_host_is_proxy(const struct disc_result_host *h, uint64_t probed);

/*
 * The raw engine counts a host's closed ports itself (disc_answers); it
 * reports the count here, and the host is proven no SYN proxy once the count
 * is high enough (see above). An unknown host is ignored.
 */
void disc_results_closed(struct disc_results *r, uint32_t ip, uint32_t closed);

/* With hold_hosts: every host recorded so far is ready to be handed out. */
void disc_results_ready(struct disc_results *r);

/*
 * At the end of the port scan, `probed` ports having been probed per host:
 * every host that is no SYN proxy is proven so, and every host is ready.
 * The hosts left held back are the SYN proxies.
 */
void disc_results_settle(struct disc_results *r, uint64_t probed);

/* What disc_results_take handed out: copies, written without the lock. */
struct disc_results_take {
	struct disc_result_host *hosts; /* owned */
	size_t n_hosts, cap_hosts;
	struct disc_result_port *ports; /* owned */
	size_t n_ports, cap_ports;
};

/*
 * Moves what may be written now into *t (emptied first; reused across calls):
 * hosts that became ready, and open ports whose host is written and proven
 * no SYN proxy, each once; marks them written. DISC_ERR_NOMEM leaves r as it
 * was. Release t with disc_results_take_release.
 */
enum disc_status disc_results_take(struct disc_results *r, struct disc_results_take *t,
				   struct disc_error *err);
void disc_results_take_release(struct disc_results_take *t);

struct disc_results_emit_opts {
	const struct disc_vendor_db *vendors; /* NULL: no vendor names */
	const struct disc_targets *targets;   /* NULL: no hostnames */
	uint64_t ports_probed;		      /* per host, for SYN proxy detection */
	const char *proto;		      /* "tcp" */
	const struct disc_os_db *os;	      /* NULL: no OS guesses ("os", "tcp_fingerprint") */
};

/* Writes what t holds through w: its hosts, then its ports (opts->os is not used). */
enum disc_status disc_results_take_write(const struct disc_results_take *t,
					 struct disc_obs_writer *w,
					 const struct disc_results_emit_opts *opts,
					 struct disc_error *err);

/*
 * Writes every host (sorted by address) followed by its open ports (sorted),
 * through w; after streaming only what is left (see above). *n_hosts,
 * *n_ports, *n_proxies (each may be NULL) get the hosts, open ports and SYN
 * proxies of the whole scan. Stops at the first write error.
 */
enum disc_status disc_results_emit(const struct disc_results *r, struct disc_obs_writer *w,
				   const struct disc_results_emit_opts *opts, size_t *n_hosts,
				   size_t *n_ports, size_t *n_proxies, struct disc_error *err);

#endif
