/*
 * Private to libdisc: the scan engine's state, shared by the raw engine
 * (disc_scan.c) and the connect engine (disc_scan_connect.c).
 */
#ifndef DISC_SCAN_IMPL_H
#define DISC_SCAN_IMPL_H

#include <pcap/pcap.h>
#include <pthread.h>
#include <stdatomic.h>

#include "disc/answers.h"
#include "disc/cookie.h"
#include "disc/perm.h"
#include "disc/probe.h"
#include "disc/rate.h"
#include "disc/results.h"
#include "disc/route.h"
#include "disc/scan.h"

/* Gateways whose MAC the scan needed; few (one per route with a gateway). */
#define MAX_GATEWAYS 16

struct gateway {
	uint32_t ip;
	uint8_t mac[6];
	bool resolved;
};

/* A block of hosts for the port phase: address and next-hop MAC of each. */
struct host_block {
	uint32_t *ip;
	uint8_t (*mac)[6];
	size_t n;
};

/* Where the port phase takes its hosts from. */
struct host_source {
	bool from_targets;     /* walk the shard's target permutation (-Pn, connect, dry run) */
	struct disc_perm perm; /* when from_targets */
	uint32_t *live;	       /* otherwise: the discovered hosts, sorted; owned */
	size_t n_live, next_live;
};

struct disc_scan {
	struct disc_scan_config cfg;
	struct disc_route_table routes;
	struct disc_iface ifc; /* in raw mode; name "" when unknown */
	bool have_route_info;
	int fd; /* AF_PACKET socket, -1 when none */
	pcap_t *pcap;
	struct disc_cookie cookie;
	struct disc_probe_config probe_cfg;
	pthread_mutex_t rate_lock; /* guards rate: every sender draws from one bucket */
	struct disc_rate rate;
	uint32_t senders; /* threads sending the port scan: one per CPU, up to DISC_SCAN_MAX_SENDERS
			   */

	/* Raw port scan: which probes of the current block were answered (retries). */
	pthread_mutex_t answers_lock; /* guards answers' start and mark (tests need none) */
	struct disc_answers answers;
	size_t block_hosts; /* hosts per block of the raw port scan */

	pthread_mutex_t lock; /* guards results and gateways */
	struct disc_results results;
	struct gateway gateways[MAX_GATEWAYS];
	size_t n_gateways;

	_Atomic uint64_t sent, replies, planned, unreachable;
	_Atomic uint64_t hosts_found, ports_found, resets;
	unsigned sport_offset; /* see port_scan_sport */
	_Atomic int phase;     /* index into phase_names */
	_Atomic bool tx_done, rx_stop, failed, interrupted;
	uint64_t ports_probed; /* per host, for SYN proxy detection */
	uint64_t drops;
	uint64_t t0_ns;
	uint64_t last_sent; /* for the progress rate */
	uint64_t last_ns;
	uint64_t next_progress_ns;
	struct disc_error tx_err, rx_err;

	/* Streaming (disc_scan_stream): written from the thread in disc_scan_run. */
	struct disc_obs_writer *stream; /* borrowed; NULL: everything at disc_scan_emit */
	const struct disc_vendor_db *stream_vendors;
	struct disc_results_take take;
	uint64_t next_stream_ns;
	struct disc_error out_err; /* a write failed: the scan stops */
	uint32_t no_proxy_closed;  /* closed ports that prove a host no SYN proxy; 0: any host */
};

enum { PHASE_DISCOVERY, PHASE_PORTS, PHASE_WAITING, PHASE_DONE };

uint64_t disc_scan_now_ns(void);
/* Whether the caller asked the scan to stop (and remembers that it did). */
bool disc_scan_should_stop(struct disc_scan *s);
/* Sleeps up to ms, in ticks, returning early (true) when asked to stop. */
bool disc_scan_sleep_ms(struct disc_scan *s, uint64_t ms);
/* Blocks until the rate limiter grants up to want tokens; 0 when asked to stop. */
uint64_t disc_scan_take_tokens(struct disc_scan *s, uint64_t want);

/* Calls the progress callback if its interval has passed (from the running thread). */
void disc_scan_report_progress(struct disc_scan *s);

/*
 * Streaming: writes what may be written now (disc_results_take), at most
 * every STREAM_EVERY_MS unless force; from the thread in disc_scan_run. A
 * write error is kept in out_err and stops the scan.
 */
void disc_scan_stream_poll(struct disc_scan *s, bool force);

/* Host walking shared by both engines. */
enum disc_status disc_scan_block_alloc(struct host_block *b, struct disc_error *err);
void disc_scan_block_free(struct host_block *b);
/* Seed of block number `block`: the same in every shard and every pass. */
uint64_t disc_scan_block_seed(uint64_t seed, uint64_t block);

enum disc_status disc_scan_run_connect(struct disc_scan *s, struct disc_error *err);

#endif
