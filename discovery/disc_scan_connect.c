/*
 * disc_scan_connect: the connect() engine (see disc/scan.h), for when raw
 * sockets are not permitted or not wanted.
 *
 * Non-blocking connects, up to MAX_INFLIGHT at once (fewer if the file
 * descriptor limit is lower), watched with epoll; each has a deadline of
 * --wait (at least MIN_TIMEOUT_MS). A completed connection is an open port,
 * ECONNREFUSED a closed one; anything else (timeout, unreachable) is no
 * answer. Connections are closed with SO_LINGER 0, which resets them at once:
 * the target's service sees a reset instead of a half-finished session, and
 * we keep no TIME_WAIT state that would exhaust local ports.
 */
#include "disc_scan_impl.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_INFLIGHT   4096
#define MIN_TIMEOUT_MS 100
#define EPOLL_EVENTS   256
/* A file descriptor or local port that is short is waited for, this many times. */
#define MAX_RESOURCE_WAITS 1000
/* Expired connections are looked for at most this often. */
#define EXPIRE_EVERY_NS 10000000ull
/* The descriptor limit is raised at most to this. */
#define FD_LIMIT 65536
/* Answers are taken at least this often while sending, so that they are
 * written while the scan runs, not when the connection slots run out. */
#define SERVICE_EVERY_NS 10000000ull

/* Host discovery connects to these: most hosts either serve or refuse one of them. */
static const uint16_t discovery_ports[] = {80, 443, 22};
#define N_DISCOVERY_PORTS (sizeof(discovery_ports) / sizeof(discovery_ports[0]))

struct conn {
	int fd; /* -1: slot free */
	uint32_t ip;
	uint16_t port;
	bool discovery; /* a host-discovery attempt: the answer shows the host, not the port */
	uint64_t deadline;
};

struct cscan {
	struct disc_scan *s;
	int ep;
	struct conn *conns; /* owned, cap slots */
	size_t *free_slots; /* owned stack of free slot numbers */
	size_t cap, n_free;
	uint64_t timeout_ns, next_expire, next_service;
};

static void record(struct disc_scan *s, uint32_t ip, uint16_t port, bool open, bool discovery)
{
	enum disc_reason why = open ? DISC_REASON_CONNECT : DISC_REASON_CONN_REFUSED;
	size_t before;
	bool is_new = false;

	pthread_mutex_lock(&s->lock);
	before = s->results.n_hosts;
	if (discovery) {
		if (disc_results_host(&s->results, ip, why, -1, NULL, NULL, NULL) == DISC_OK &&
		    s->results.n_hosts > before)
			atomic_fetch_add(&s->hosts_found, 1);
	} else if (disc_results_port(&s->results, ip, port, open, why, -1, &is_new, NULL) ==
		   DISC_OK) {
		if (is_new && open)
			atomic_fetch_add(&s->ports_found, 1);
		if (s->results.n_hosts > before)
			atomic_fetch_add(&s->hosts_found, 1);
	}
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add(&s->replies, 1);
}

static void close_reset(int fd)
{
	const struct linger lg = {.l_onoff = 1, .l_linger = 0};

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void finish(struct cscan *c, size_t slot)
{
	close_reset(c->conns[slot].fd); /* closing also removes it from the epoll set */
	c->conns[slot].fd = -1;
	c->free_slots[c->n_free++] = slot;
}

/*
 * Handles finished connects for up to timeout_ms, then expires overdue ones.
 * Every event that is ready is taken before anything expires: after the
 * process was held up (a busy machine), thousands of connections can be
 * both answered and past their deadline, and only the epoll queue tells
 * which.
 */
static void service(struct cscan *c, int timeout_ms)
{
	struct epoll_event ev[EPOLL_EVENTS];
	uint64_t now;
	int n;

	do {
		n = epoll_wait(c->ep, ev, EPOLL_EVENTS, timeout_ms);
		for (int i = 0; i < n; i++) {
			size_t slot = (size_t)ev[i].data.u64;
			int e = 0;
			socklen_t len = sizeof(e);

			if (c->conns[slot].fd < 0)
				continue;
			if (getsockopt(c->conns[slot].fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
				e = errno;
			if (e == 0 || e == ECONNREFUSED)
				record(c->s, c->conns[slot].ip, c->conns[slot].port, e == 0,
				       c->conns[slot].discovery);
			finish(c, slot);
		}
		timeout_ms = 0;
	} while (n == EPOLL_EVENTS); /* a full batch: more may be waiting */
	disc_scan_report_progress(c->s);
	disc_scan_stream_poll(c->s, false);
	now = disc_scan_now_ns();
	c->next_service = now + SERVICE_EVERY_NS;
	if (now < c->next_expire || c->n_free == c->cap)
		return;
	c->next_expire = now + EXPIRE_EVERY_NS;
	for (size_t slot = 0; slot < c->cap; slot++)
		if (c->conns[slot].fd >= 0 && c->conns[slot].deadline <= now)
			finish(c, slot);
}

/*
 * Waits until every connection in flight has finished or expired (bounded by
 * the deadline). When the scan is being stopped, closes them at once instead.
 */
static void drain(struct cscan *c)
{
	while (c->n_free < c->cap) {
		if (disc_scan_should_stop(c->s)) {
			for (size_t slot = 0; slot < c->cap; slot++)
				if (c->conns[slot].fd >= 0)
					finish(c, slot);
			return;
		}
		service(c, DISC_SCAN_TICK_MS);
	}
}

static bool resource_shortage(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM || e == EADDRNOTAVAIL ||
	       e == EAGAIN;
}

static enum disc_status start(struct cscan *c, uint32_t ip, uint16_t port, bool discovery,
			      struct disc_error *err)
{
	struct disc_scan *s = c->s;
	struct sockaddr_in sin = {
		.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(ip)};
	struct epoll_event ev = {.events = EPOLLOUT};

	/* --dry-run: the attempt is counted, never made (no socket, no SYN) */
	if (s->cfg.dry_run) {
		if (!disc_scan_should_stop(s))
			atomic_fetch_add(&s->sent, 1);
		return DISC_OK;
	}
	for (int waits = 0;; waits++) {
		int fd, e;

		if (disc_scan_now_ns() >= c->next_service)
			service(c, 0);
		while (c->n_free == 0 && !disc_scan_should_stop(s))
			service(c, DISC_SCAN_TICK_MS);
		if (disc_scan_should_stop(s) || disc_scan_take_tokens(s, 1) == 0)
			return DISC_OK;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (const struct sockaddr *)&sin, sizeof(sin)) == 0) {
			atomic_fetch_add(&s->sent, 1);
			record(s, ip, port, true, discovery);
			close_reset(fd);
			return DISC_OK;
		}
		e = errno;
		if (fd >= 0 && e == EINPROGRESS) {
			size_t slot = c->free_slots[--c->n_free];

			atomic_fetch_add(&s->sent, 1);
			c->conns[slot] =
				(struct conn){.fd = fd,
					      .ip = ip,
					      .port = port,
					      .discovery = discovery,
					      .deadline = disc_scan_now_ns() + c->timeout_ns};
			ev.data.u64 = slot;
			if (epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
				e = errno;
				finish(c, slot);
				return disc_error_set(err, DISC_ERR_IO, "epoll: %s", strerror(e));
			}
			return DISC_OK;
		}
		if (fd >= 0)
			close(fd);
		if (fd >= 0 && e == ECONNREFUSED) {
			atomic_fetch_add(&s->sent, 1);
			record(s, ip, port, false, discovery);
			return DISC_OK;
		}
		if (!resource_shortage(e)) {
			/* Unreachable, or refused by a local firewall: no answer. */
			atomic_fetch_add(&s->sent, 1);
			return DISC_OK;
		}
		/* Out of descriptors or local ports: let connections in flight finish first. */
		if (waits >= MAX_RESOURCE_WAITS || c->n_free == c->cap)
			return disc_error_set(err, DISC_ERR_IO, "cannot connect to port %u: %s",
					      port, strerror(e));
		service(c, DISC_SCAN_TICK_MS);
	}
}

static enum disc_status scan_block(struct cscan *c, const struct host_block *b, uint64_t block_no,
				   struct disc_error *err)
{
	struct disc_scan *s = c->s;
	uint64_t n = (uint64_t)b->n * s->cfg.n_ports;
	unsigned passes = s->cfg.dry_run ? 1 : s->cfg.retries + 1;

	for (unsigned pass = 0; pass < passes; pass++) {
		struct disc_perm p;
		uint64_t idx, done = 0;
		enum disc_status st = disc_perm_init(
			&p, n, disc_scan_block_seed(s->cfg.seed, block_no), 0, 1, err);
		if (st != DISC_OK)
			return st;
		while (disc_perm_next(&p, &idx)) {
			uint32_t ip = b->ip[idx % b->n];
			uint16_t port = s->cfg.ports[idx / b->n];
			bool answered = false;

			if (disc_scan_should_stop(s)) {
				if (pass == 0)
					s->ports_probed = s->cfg.n_ports * done / n;
				return DISC_OK;
			}
			done++;
			if (pass > 0) {
				pthread_mutex_lock(&s->lock);
				answered = disc_results_answered(&s->results, ip, port);
				pthread_mutex_unlock(&s->lock);
			}
			if (answered)
				continue;
			st = start(c, ip, port, false, err);
			if (st != DISC_OK)
				return st;
		}
		/* Retries only after every first attempt got its chance to answer. */
		drain(c);
	}
	return DISC_OK;
}

static bool host_up(struct disc_scan *s, uint32_t ip)
{
	bool up;

	pthread_mutex_lock(&s->lock);
	up = disc_results_find(&s->results, ip) != NULL;
	pthread_mutex_unlock(&s->lock);
	return up;
}

/*
 * Host discovery without raw sockets, for one block: connects to a few ports
 * that most hosts either serve or refuse, then reads the kernel's neighbour
 * cache, where every on-link host that answered the kernel's ARP request
 * (sent for our connect) now has a complete entry: that finds on-link hosts
 * whose every port is filtered. Leaves in b only the hosts that are up.
 */
static enum disc_status discover_block(struct cscan *c, struct host_block *b,
				       struct disc_error *err)
{
	struct disc_scan *s = c->s;
	struct disc_neigh_table nt;
	size_t kept = 0;
	enum disc_status st;
	unsigned passes = s->cfg.dry_run ? 1 : s->cfg.retries + 1;

	atomic_store(&s->phase, PHASE_DISCOVERY);
	for (unsigned pass = 0; pass < passes; pass++) {
		for (size_t i = 0; i < b->n; i++) {
			for (size_t k = 0; k < N_DISCOVERY_PORTS; k++) {
				if (disc_scan_should_stop(s))
					return DISC_OK;
				if (pass > 0 && host_up(s, b->ip[i]))
					break;
				st = start(c, b->ip[i], discovery_ports[k], true, err);
				if (st != DISC_OK)
					return st;
			}
		}
		drain(c);
	}
	/* --dry-run: nothing answered; every target goes on to the port phase,
	 * as in the raw engine's dry run, so that its probes are counted too */
	if (s->cfg.dry_run) {
		atomic_store(&s->phase, PHASE_PORTS);
		return DISC_OK;
	}
	disc_neigh_table_init(&nt);
	if (disc_neigh_load(&nt, s->cfg.neigh_path, NULL) != DISC_OK)
		disc_neigh_table_release(&nt);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < b->n; i++) {
		const struct disc_route *r = disc_route_lookup(&s->routes, b->ip[i]);
		size_t before = s->results.n_hosts;
		uint8_t mac[6];

		if (r && r->gateway == 0 && disc_neigh_lookup(&nt, b->ip[i], r->ifname, mac) &&
		    disc_results_host(&s->results, b->ip[i], DISC_REASON_ARP, -1, mac, NULL,
				      NULL) == DISC_OK &&
		    s->results.n_hosts > before)
			atomic_fetch_add(&s->hosts_found, 1);
		if (disc_results_find(&s->results, b->ip[i]))
			b->ip[kept++] = b->ip[i];
	}
	/* their MACs are known now: the hosts may be written */
	disc_results_ready(&s->results);
	pthread_mutex_unlock(&s->lock);
	disc_neigh_table_release(&nt);
	b->n = kept;
	atomic_store(&s->phase, PHASE_PORTS);
	return DISC_OK;
}

/* Adds the MACs the kernel learnt while connecting, for hosts on a directly attached network. */
static void add_macs(struct disc_scan *s)
{
	struct disc_neigh_table nt;

	disc_neigh_table_init(&nt);
	if (disc_neigh_load(&nt, s->cfg.neigh_path, NULL) != DISC_OK) {
		disc_neigh_table_release(&nt);
		return;
	}
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->results.n_hosts; i++) {
		struct disc_result_host *h = &s->results.hosts[i];
		const struct disc_route *r = disc_route_lookup(&s->routes, h->ip);
		uint8_t mac[6];

		if (r && r->gateway == 0 && disc_neigh_lookup(&nt, h->ip, r->ifname, mac)) {
			memcpy(h->mac, mac, 6);
			h->has_mac = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
	disc_neigh_table_release(&nt);
}

static size_t inflight_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 64;
	if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < FD_LIMIT) {
		rlim_t want = rl.rlim_max < FD_LIMIT ? rl.rlim_max : FD_LIMIT;
		struct rlimit nrl = {.rlim_cur = want, .rlim_max = rl.rlim_max};

		if (setrlimit(RLIMIT_NOFILE, &nrl) == 0)
			rl.rlim_cur = want;
	}
	/* Leave room for the descriptors the program already has. */
	if (rl.rlim_cur <= 128)
		return 16;
	return rl.rlim_cur - 64 < MAX_INFLIGHT ? (size_t)(rl.rlim_cur - 64) : MAX_INFLIGHT;
}

enum disc_status disc_scan_run_connect(struct disc_scan *s, struct disc_error *err)
{
	struct cscan c = {.s = s, .ep = -1};
	struct host_block b = {0};
	struct disc_perm hosts;
	uint64_t block_no = 0, idx;
	enum disc_status st;

	atomic_store(&s->phase, PHASE_PORTS);
	c.timeout_ns =
		(uint64_t)(s->cfg.wait_ms > MIN_TIMEOUT_MS ? s->cfg.wait_ms : MIN_TIMEOUT_MS) *
		1000000ull;
	c.cap = inflight_limit();
	c.conns = calloc(c.cap, sizeof(*c.conns));
	c.free_slots = calloc(c.cap, sizeof(*c.free_slots));
	if (!c.conns || !c.free_slots) {
		st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory for connections");
		goto out;
	}
	for (size_t i = 0; i < c.cap; i++) {
		c.conns[i].fd = -1;
		c.free_slots[c.n_free++] = c.cap - 1 - i;
	}
	c.ep = epoll_create1(EPOLL_CLOEXEC);
	if (c.ep < 0) {
		st = disc_error_set(err, DISC_ERR_IO, "epoll: %s", strerror(errno));
		goto out;
	}
	st = disc_perm_init(&hosts, disc_targets_count(s->cfg.targets), s->cfg.seed, s->cfg.shard,
			    s->cfg.shards, err);
	if (st == DISC_OK)
		st = disc_scan_block_alloc(&b, err);
	if (st != DISC_OK)
		goto out;
	/* -sn: the discovery connects are the whole scan */
	atomic_store(&s->planned, hosts.left * (s->cfg.discovery_only ? N_DISCOVERY_PORTS
								      : (uint64_t)s->cfg.n_ports));
	while (st == DISC_OK && !disc_scan_should_stop(s)) {
		b.n = 0;
		while (b.n < DISC_SCAN_BLOCK_HOSTS && disc_perm_next(&hosts, &idx))
			b.ip[b.n++] = disc_targets_at(s->cfg.targets, idx);
		if (b.n == 0)
			break;
		if (!s->cfg.skip_discovery) {
			st = discover_block(&c, &b, err);
			if (st != DISC_OK || b.n == 0 || s->cfg.discovery_only)
				continue;
		}
		st = scan_block(&c, &b, block_no++, err);
		if (s->cfg.skip_discovery && !s->cfg.dry_run) {
			/* -Pn: the block's hosts were found by its port scan */
			add_macs(s);
			pthread_mutex_lock(&s->lock);
			disc_results_ready(&s->results);
			pthread_mutex_unlock(&s->lock);
		}
	}
out:
	/* Every descriptor is closed, also when stopping or failing. */
	if (c.conns && c.ep >= 0)
		drain(&c);
	if (c.ep >= 0)
		close(c.ep);
	free(c.conns);
	free(c.free_slots);
	disc_scan_block_free(&b);
	if (!s->cfg.dry_run)
		add_macs(s);
	return st;
}
