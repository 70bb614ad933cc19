/*
 * disc_scan: the scanning engine. Host discovery, then a TCP port scan, with
 * the results written as observations.
 *
 * Raw mode (the default) writes whole Ethernet frames on an AF_PACKET socket
 * from a transmit thread and reads replies with libpcap in a receive thread:
 *
 *   transmit: walks a random permutation of the targets (this shard's part),
 *             sends ARP requests to on-link targets and ICMP echo, ICMP
 *             timestamp, TCP SYN to 443 and TCP ACK to 80 to routed ones
 *             (-Pn: ARP only, which on-link delivery needs anyway); waits;
 *             then walks a permutation of (live host x port) in blocks of up
 *             to DISC_SCAN_BLOCK_HOSTS hosts, sending SYNs; retries go only
 *             to probes that got no answer; waits again. Batches of
 *             DISC_SCAN_BATCH frames go out with sendmmsg, paced by a token
 *             bucket.
 *   receive:  a BPF filter passes only ARP replies and TCP/ICMP replies to
 *             our address; each is parsed (disc_frame) and checked against
 *             the SYN cookie in its acknowledgment (or ICMP id/sequence), so
 *             no table of outstanding probes exists; valid ones go into the
 *             de-duplicated results (disc_results).
 *
 * Next hops come from the routing table: an on-link target is sent to its
 * own MAC (learnt from its ARP reply), a routed one to its gateway's MAC
 * (from the neighbour cache, or our own ARP request).
 *
 * Sharding partitions by host: shard I of N discovers and scans the hosts at
 * its stretch of the target permutation, so shards with the same seed cover
 * every (host, port) once between them.
 *
 * With discovery_only (-sn) the scan ends after host discovery: the same
 * probes, retries and waits, no port scan.
 *
 * Connect mode (no raw-socket privilege, or asked for) scans with ordinary
 * non-blocking connect() calls, many in flight under epoll, paced by the same
 * rate limiter; a host is up when some port answered (connected or refused).
 * Output is the same, with MACs taken from the kernel's neighbour cache.
 *
 * Every loop is bounded: the permutations are finite, every wait has a
 * deadline, and the caller's stop flag (set from a SIGINT handler) ends the
 * scan within about DISC_SCAN_TICK_MS; the results found so far are still
 * written.
 *
 * Usage: disc_scan_open (opens the sockets: needs privilege), drop
 * privileges (disc_priv_drop), disc_scan_stream (optional), disc_scan_run,
 * disc_scan_emit, disc_scan_free.
 */
#ifndef DISC_SCAN_H
#define DISC_SCAN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"
#include "disc/obs.h"
#include "disc/os.h"
#include "disc/targets.h"
#include "disc/vendor.h"

#define DISC_SCAN_BATCH	       64
#define DISC_SCAN_MAX_SENDERS  4
#define DISC_SCAN_BLOCK_HOSTS  65536
#define DISC_SCAN_TICK_MS      50
#define DISC_SCAN_DEFAULT_RATE 10000
#define DISC_SCAN_DEFAULT_WAIT 1000 /* ms */
#define DISC_SCAN_MAX_RETRIES  10
#define DISC_SCAN_MAX_WAIT     60000 /* ms */
/*
 * Raw probes use source ports from here up: above Linux's default ephemeral
 * range (32768-60999), so the kernel owns no socket there and a firewall
 * rule can drop the RSTs it would send in answer to our SYN-ACKs (see
 * docs/scanning.md). Discovery uses the base port, the port scan one of the
 * others per pass.
 */
#define DISC_SCAN_SPORT_BASE  61000
#define DISC_SCAN_SPORT_RANGE 1000

enum disc_scan_mode {
	DISC_SCAN_SYN,	   /* raw SYN scan */
	DISC_SCAN_CONNECT, /* connect() scan */
};

struct disc_scan_stats {
	const char *phase; /* "discovery", "ports", "waiting", "done" */
	uint64_t sent;	   /* probes sent (built, in a dry run) */
	uint64_t planned;  /* estimate of all probes, for progress */
	uint64_t replies;  /* validated replies */
	uint64_t hosts, open_ports;
	uint64_t drops;	      /* capture drops (libpcap ps_drop + ps_ifdrop) */
	uint64_t unreachable; /* targets with no route through the scan's interface */
	double elapsed;	      /* seconds since the scan started */
	double rate;	      /* probes per second over the last interval */
	bool interrupted;     /* the stop flag ended the scan */
};

struct disc_scan_config {
	const struct disc_targets *targets; /* finalized; borrowed */
	const uint16_t *ports;		    /* TCP ports to scan; borrowed */
	size_t n_ports;
	enum disc_scan_mode mode;
	const char *iface;	/* NULL: the interface of the route to the first target */
	uint64_t rate;		/* probes (or connection attempts) per second; 0: unlimited */
	unsigned retries;	/* extra attempts for unanswered probes */
	unsigned wait_ms;	/* wait for late replies after the last probe of a phase */
	uint32_t shard, shards; /* 0-based shard of shards (1 shard: 0/1) */
	uint64_t seed;		/* the permutation; equal across the shards of one scan */
	bool skip_discovery;	/* -Pn */
	bool discovery_only;	/* -sn: no port scan, ports ignored; not with -Pn */
	bool dry_run;		/* build every probe, open no socket, send nothing */
	const volatile sig_atomic_t *stop; /* may be NULL; nonzero: stop soon */
	/* Called from the thread in disc_scan_run about every progress_ms (0: never). */
	void (*progress)(void *ctx, const struct disc_scan_stats *stats);
	void *progress_ctx;
	unsigned progress_ms;
	const char *route_path, *neigh_path; /* NULL: /proc/net/route, /proc/net/arp */
	const struct disc_os_db *os;	     /* --os: guess from SYN-ACKs at emit; NULL: none */
};

struct disc_scan;

/*
 * Checks cfg, reads the routing table and, in raw mode, opens the packet
 * socket and the capture (which need CAP_NET_RAW). DISC_ERR_UNSUPPORTED with
 * a message when raw sockets are not permitted (the caller may fall back to
 * connect mode). On success *out is a new scan; free it with disc_scan_free.
 * cfg and what it points to are borrowed until then.
 */
enum disc_status disc_scan_open(struct disc_scan **out, const struct disc_scan_config *cfg,
				struct disc_error *err);

/* The interface the scan uses ("" in connect mode or a dry run without a route). */
const char *disc_scan_iface(const struct disc_scan *s);

/*
 * Streaming: disc_scan_run then writes host and port lines through w as they
 * are found, from the thread that called it, flushing w's stream after each
 * round: a host at once (connect mode: once its MAC was looked up after its
 * block's discovery), an open port once its host's line is out and the host
 * is proven no SYN proxy (disc/results.h; at the latest when the port scan
 * ends). disc_scan_emit afterwards writes only the rest. w and vendors (may
 * be NULL) are borrowed until disc_scan_free. A write error stops the scan,
 * and disc_scan_run returns it.
 */
void disc_scan_stream(struct disc_scan *s, struct disc_obs_writer *w,
		      const struct disc_vendor_db *vendors);

/*
 * Runs the scan to its end, or until *cfg->stop. Returns DISC_OK also when
 * stopped (stats.interrupted says so); an error when sending or capturing
 * failed, with what was found so far still in the results.
 */
enum disc_status disc_scan_run(struct disc_scan *s, struct disc_error *err);

/* Current counters (safe to call from the progress callback). */
void disc_scan_get_stats(const struct disc_scan *s, struct disc_scan_stats *out);

/*
 * Writes the hosts and open ports found through w (sorted; SYN proxies as
 * one host line each); after streaming only what is left: a host line again
 * where it changed (TTL, MAC, --os guess, SYN proxy). vendors may be NULL.
 * Counts of the whole scan in *n_hosts, *n_ports and *n_proxies (each may be
 * NULL).
 */
enum disc_status disc_scan_emit(struct disc_scan *s, struct disc_obs_writer *w,
				const struct disc_vendor_db *vendors, size_t *n_hosts,
				size_t *n_ports, size_t *n_proxies, struct disc_error *err);

/* Closes the sockets and frees s (NULL is fine). */
void disc_scan_free(struct disc_scan *s);

#endif
