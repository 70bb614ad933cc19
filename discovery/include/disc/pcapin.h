/*
 * disc_pcapin: passive discovery from a capture file (cmdb discover --pcap).
 *
 * Reads a pcap or pcapng file with libpcap's offline reader and learns what
 * the traffic shows, sending nothing:
 *
 *   hosts     from ARP (requests and replies: address, MAC) and from the
 *             source address of every IPv4 packet (with its TTL). With
 *             targets, only addresses among them; without, every unicast
 *             source (not 0/8, multicast or 240/4). A MAC comes only from
 *             ARP: an IPv4 packet's Ethernet source is the last router's
 *             for routed traffic.
 *   ports     open when the host sent a SYN-ACK from them (reason syn-ack).
 *   os        the first SYN-ACK of each host is kept for --os, as in a scan.
 *   banners   the first payload the server sends in a TCP connection whose
 *             SYN-ACK was captured (its sequence number is the SYN-ACK's + 1,
 *             so a retransmission or a connection already under way when the
 *             capture started is not taken for one), one per open port.
 *
 * Link types: Ethernet, raw IPv4, Linux cooked (SLL, SLL2) and BSD loopback
 * (NULL, LOOP). A file libpcap cannot read, a truncated one, or one of
 * another link type is an error naming the file and the problem. A frame
 * that does not parse is counted and skipped, not an error: real traffic
 * has odd frames.
 *
 * Host and port records are stamped with the time of the packet that showed
 * them. Memory follows what was found: results (disc_results), a table of
 * SYN-ACKed connections still waiting for their first server payload (capped
 * at DISC_PCAPIN_MAX_FLOWS) and the banners (capped at DISC_PCAPIN_MAX_BANNERS
 * of at most banner_max bytes).
 *
 * Usage: disc_pcapin_open (or _open_file), disc_pcapin_run, disc_pcapin_emit,
 * disc_pcapin_free.
 */
#ifndef DISC_PCAPIN_H
#define DISC_PCAPIN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "disc/error.h"
#include "disc/obs.h"
#include "disc/os.h"
#include "disc/targets.h"
#include "disc/vendor.h"

#define DISC_PCAPIN_MAX_FLOWS	(1u << 20)
#define DISC_PCAPIN_MAX_BANNERS 65536

struct disc_pcapin_config {
	const struct disc_targets *targets; /* finalized, or NULL: every unicast source */
	const struct disc_os_db *os;	    /* --os: guesses at emit, banner hints; NULL: none */
	size_t banner_max; /* bytes kept per banner; 0: DISC_OBS_BANNER_MAX_DEFAULT */
	const volatile sig_atomic_t *stop; /* may be NULL; nonzero: stop reading soon */
};

struct disc_pcapin_stats {
	uint64_t packets;    /* read from the file */
	uint64_t bad_frames; /* did not parse (skipped) */
	uint64_t hosts, open_ports, banners;
	uint64_t flows_dropped;	     /* SYN-ACKs not followed for a banner: table full */
	struct timespec first, last; /* times of the first and last packet (0 when none) */
	const char *link;	     /* libpcap's name of the link type, e.g. "EN10MB" */
	bool interrupted;	     /* the stop flag ended the reading */
};

struct disc_pcapin;

/*
 * Opens the capture file path ("-" for standard input) and checks its link
 * type. DISC_ERR_IO when it cannot be opened, DISC_ERR_MALFORMED when it is
 * not a capture libpcap reads, DISC_ERR_UNSUPPORTED for another link type;
 * every message starts with path. cfg and what it points to are borrowed
 * until disc_pcapin_free. On success *out is a new reader.
 */
enum disc_status disc_pcapin_open(struct disc_pcapin **out, const char *path,
				  const struct disc_pcapin_config *cfg, struct disc_error *err);

/* The same from an open stream (owned from then on, also on failure); name for messages. */
enum disc_status disc_pcapin_open_file(struct disc_pcapin **out, FILE *f, const char *name,
				       const struct disc_pcapin_config *cfg,
				       struct disc_error *err);

/*
 * Reads every packet. DISC_OK at the end of the file, and when stopped
 * (stats.interrupted); DISC_ERR_TRUNCATED or DISC_ERR_MALFORMED (with the
 * file's name and libpcap's reason) when the file is cut off or corrupt
 * part way: what was read before stays in the results, but the caller
 * should not present it as the capture's content.
 */
enum disc_status disc_pcapin_run(struct disc_pcapin *p, struct disc_error *err);

void disc_pcapin_get_stats(const struct disc_pcapin *p, struct disc_pcapin_stats *out);

/*
 * Writes the hosts (sorted, each followed by its open ports), then one
 * service line per banner (sorted by address and port; service "unknown":
 * naming services is service detection's job), through w. vendors may be
 * NULL. Counts in *n_hosts, *n_ports, *n_services (each may be NULL).
 */
enum disc_status disc_pcapin_emit(struct disc_pcapin *p, struct disc_obs_writer *w,
				  const struct disc_vendor_db *vendors, size_t *n_hosts,
				  size_t *n_ports, size_t *n_services, struct disc_error *err);

/* Closes the file and frees p (NULL is fine). */
void disc_pcapin_free(struct disc_pcapin *p);

#endif
