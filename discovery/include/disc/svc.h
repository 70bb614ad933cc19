/*
 * disc_svc: service detection, the engine.
 *
 * For every open port it opens non-blocking connections under one epoll
 * loop, many endpoints at once, and asks the probe database (disc/svcdb.h)
 * what the answers mean:
 *
 *   1. the NULL probe: connect and listen for the probe's wait; a service
 *      that speaks first (ssh, smtp, ftp, mysql, ...) is usually named here;
 *   2. otherwise a wave of probes on fresh connections, all at once: those
 *      that list the port first, then the others in database order, up to
 *      max_probes. The answer of the most likely probe wins: a match is
 *      taken once every probe ranked before it has finished;
 *   3. a TLS handshake (OpenSSL) that completes turns the endpoint into a
 *      TLS one: the certificate is recorded and detection starts over
 *      inside TLS (NULL probe, then probes such as HTTP), so https is http
 *      with a tls object, imaps imap, and so on.
 *
 * UDP ports get only the UDP probes that list them; a port that answers is
 * open. Every connection has a deadline, every endpoint a total time limit,
 * and the caller's stop flag ends the run within a tick; so the whole run is
 * bounded. Connect() needs no privilege: this runs after the scanner has
 * dropped its privileges.
 */
#ifndef DISC_SVC_H
#define DISC_SVC_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "disc/error.h"
#include "disc/obs.h"
#include "disc/scan.h"
#include "disc/svcdb.h"

#define DISC_SVC_DEFAULT_CONNS	    512
#define DISC_SVC_DEFAULT_PROBES	    8
#define DISC_SVC_DEFAULT_CONNECT_MS 1500
#define DISC_SVC_DEFAULT_ENDPOINT_MS 10000
#define DISC_SVC_RESPONSE_MAX	    16384 /* bytes of an answer kept for matching */
#define DISC_SVC_MAX_SANS	    32 /* keeps the tls object well under ingest's 16 KiB */

struct disc_svc_result;

struct disc_svc_config {
	const struct disc_svcdb *db; /* NULL: the built-in database */
	unsigned max_conns;	     /* connections in flight; 0: DISC_SVC_DEFAULT_CONNS */
	unsigned max_probes;	     /* probes per endpoint besides NULL; 0: default */
	unsigned connect_ms;	     /* connect timeout; 0: default */
	unsigned null_wait_ms;	     /* 0: the NULL probe's wait from the database */
	unsigned endpoint_ms;	     /* total time for one endpoint; 0: default */
	const volatile sig_atomic_t *stop; /* may be NULL; nonzero: stop soon */
	/* Called about every progress_ms (0: never) with phase "services". */
	void (*progress)(void *ctx, const struct disc_scan_stats *stats);
	void *progress_ctx;
	unsigned progress_ms;
	/*
	 * Called (from the thread running the detection) with each reached
	 * endpoint as soon as its detection ends, for writing it at once
	 * (disc_svc_emit_one). An error ends the run with that error. NULL: none.
	 */
	enum disc_status (*on_result)(void *ctx, const struct disc_svc_result *r,
				      struct disc_error *err);
	void *result_ctx;
};

struct disc_svc_target {
	uint32_t ip; /* host order */
	uint16_t port;
	unsigned proto; /* DISC_PROTO_TCP or DISC_PROTO_UDP */
};

struct disc_svc_result {
	struct disc_svc_target t;
	bool finished;		 /* detection ended (not cut short by the stop flag) */
	bool reached;		 /* TCP: a connection succeeded; UDP: an answer came */
	struct disc_svc_match m; /* m.service "" when nothing matched */
	uint8_t *banner;	 /* owned, NULL when the service said nothing */
	size_t banner_len;
	bool tls;
	char *subject, *issuer; /* owned, NULL when unknown */
	char not_before[32], not_after[32];
	char **sans; /* owned */
	size_t n_sans;
	struct timespec at; /* when it was named (CLOCK_REALTIME) */
};

struct disc_svc_results {
	struct disc_svc_result *r; /* owned, in the order of the targets */
	size_t n;
	bool interrupted; /* the stop flag ended the run */
	uint64_t connections;
};

/*
 * Probes the n targets. On success *out holds one result per target (in the
 * same order); release it with disc_svc_results_release. Errors: no memory,
 * no epoll or TLS context (DISC_ERR_IO). The stop flag is not an error.
 */
enum disc_status disc_svc_detect(const struct disc_svc_config *cfg,
				 const struct disc_svc_target *targets, size_t n,
				 struct disc_svc_results *out, struct disc_error *err);

void disc_svc_results_release(struct disc_svc_results *res);

/*
 * Writes the service line of r (reached and finished), after its port line
 * for a UDP target (UDP ports are found by service detection only).
 */
enum disc_status disc_svc_emit_one(const struct disc_svc_result *r, struct disc_obs_writer *w,
				   struct disc_error *err);

/*
 * Writes one service line per reached target, sorted by address, protocol
 * and port; a UDP target that answered also gets its port line first (UDP
 * ports are found by service detection only). *n_lines (may be NULL) gets
 * the service lines written.
 */
enum disc_status disc_svc_emit(const struct disc_svc_results *res, struct disc_obs_writer *w,
			       size_t *n_lines, struct disc_error *err);

/*
 * For cmdb discover: detects the services of every open TCP port the scan
 * found (SYN proxies left out) and of udp_ports on each host it found up.
 * Fills *res (release it with disc_svc_results_release, also on error; write
 * it with disc_svc_emit) and, with --os (the scan's cfg.os), gives each host
 * the OS hint of its services' banners, for the host lines written after
 * this.
 */
enum disc_status disc_svc_scan_detect(struct disc_scan *scan, const struct disc_svc_config *cfg,
				      const uint16_t *udp_ports, size_t n_udp, struct disc_svc_results *res,
				      struct disc_error *err);

#endif
