/*
 * disc_scan: the raw engine (see disc/scan.h) and what both engines share:
 * opening, pacing, host blocks, statistics and output.
 */
#include "disc_scan_impl.h"

#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "disc/frame.h"
#include "disc/random.h"

static const char *const phase_names[] = {"discovery", "ports", "waiting", "done"};

/* The capture needs the longest reply any module asks for; round up. */
#define SNAPLEN 256
/* Kernel capture buffer: room for a burst of replies at a million per second. */
#define PCAP_BUFFER (32 << 20)
/* sendmmsg that finds the socket full is retried after a short pause, this many times. */
#define MAX_SEND_STALLS 20000
#define SEND_STALL_NS	100000
/* Gateway resolution: ARP requests and how long to wait after each. */
#define GATEWAY_ARP_TRIES   3
#define GATEWAY_ARP_WAIT_MS 500
/* The shortest wait after a discovery pass (ms). */
#define DISCOVERY_MIN_WAIT_MS 100
/* How often that wait looks whether every target has answered. */
#define DISCOVERY_POLL_NS 1000000
/* Own addresses skipped at the head of the targets when picking the interface. */
#define MAX_LOCAL_TARGETS_SKIPPED 256
/* Frames read per pcap_dispatch at the very end (bounded drain). */
#define FINAL_DRAIN_ROUNDS 64
/* How often a streaming scan writes what it found (ms). */
#define STREAM_EVERY_MS 10

uint64_t disc_scan_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};

	nanosleep(&ts, NULL);
}

bool disc_scan_should_stop(struct disc_scan *s)
{
	if (atomic_load(&s->interrupted) || atomic_load(&s->failed))
		return true;
	if (s->cfg.stop && *s->cfg.stop) {
		atomic_store(&s->interrupted, true);
		return true;
	}
	return false;
}

bool disc_scan_sleep_ms(struct disc_scan *s, uint64_t ms)
{
	uint64_t end = disc_scan_now_ns() + ms * 1000000ull;

	for (;;) {
		uint64_t now = disc_scan_now_ns();

		if (disc_scan_should_stop(s))
			return true;
		if (now >= end)
			return false;
		sleep_ns(end - now < DISC_SCAN_TICK_MS * 1000000ull
				 ? end - now
				 : DISC_SCAN_TICK_MS * 1000000ull);
	}
}

uint64_t disc_scan_take_tokens(struct disc_scan *s, uint64_t want)
{
	/* Each round sleeps at most a tick and the bucket refills at >= 1 token/s: bounded. */
	for (;;) {
		uint64_t got, wait;

		if (disc_scan_should_stop(s))
			return 0;
		pthread_mutex_lock(&s->rate_lock);
		got = disc_rate_take(&s->rate, disc_scan_now_ns(), want);
		wait = got ? 0 : disc_rate_wait_ns(&s->rate, want);
		pthread_mutex_unlock(&s->rate_lock);
		if (got)
			return got;
		if (wait > DISC_SCAN_TICK_MS * 1000000ull)
			wait = DISC_SCAN_TICK_MS * 1000000ull;
		sleep_ns(wait ? wait : 1000);
	}
}

enum disc_status disc_scan_block_alloc(struct host_block *b, struct disc_error *err)
{
	b->n = 0;
	b->ip = malloc(DISC_SCAN_BLOCK_HOSTS * sizeof(*b->ip));
	b->mac = malloc(DISC_SCAN_BLOCK_HOSTS * sizeof(*b->mac));
	if (!b->ip || !b->mac) {
		disc_scan_block_free(b);
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for a block of hosts");
	}
	return DISC_OK;
}

void disc_scan_block_free(struct host_block *b)
{
	free(b->ip);
	free(b->mac);
	b->ip = NULL;
	b->mac = NULL;
	b->n = 0;
}

uint64_t disc_scan_block_seed(uint64_t seed, uint64_t block)
{
	uint64_t st = seed ^ (block * 0x9e3779b97f4a7c15ull);

	return disc_splitmix64(&st);
}

/* ------------------------------------------------------------------------ */
/* Opening */

static enum disc_status check_config(const struct disc_scan_config *c, struct disc_error *err)
{
	if (!c->targets || disc_targets_count(c->targets) == 0)
		return disc_error_set(err, DISC_ERR_STATE, "no targets to scan");
	if (c->discovery_only && c->skip_discovery)
		return disc_error_set(
			err, DISC_ERR_STATE,
			"host discovery only and no host discovery exclude each other");
	if (!c->discovery_only && (!c->ports || c->n_ports == 0))
		return disc_error_set(err, DISC_ERR_STATE, "no TCP ports to scan");
	if (c->shards == 0 || c->shard >= c->shards)
		return disc_error_set(err, DISC_ERR_RANGE, "bad shard %u of %u", c->shard + 1,
				      c->shards);
	if (c->retries > DISC_SCAN_MAX_RETRIES)
		return disc_error_set(err, DISC_ERR_RANGE, "at most %d retries",
				      DISC_SCAN_MAX_RETRIES);
	if (c->wait_ms > DISC_SCAN_MAX_WAIT)
		return disc_error_set(err, DISC_ERR_RANGE, "wait at most %d ms",
				      DISC_SCAN_MAX_WAIT);
	if (c->rate > DISC_RATE_MAX)
		return disc_error_set(err, DISC_ERR_RANGE, "rate at most %llu per second",
				      (unsigned long long)DISC_RATE_MAX);
	return DISC_OK;
}

static bool permission_error(int e)
{
	return e == EPERM || e == EACCES;
}

static enum disc_status open_socket(struct disc_scan *s, struct disc_error *err)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = s->ifc.index};
	int one = 1, sndbuf = 4 << 20;

	/* Protocol 0: this socket only sends; the capture does the receiving. */
	s->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		int e = errno;

		return disc_error_set(err, permission_error(e) ? DISC_ERR_UNSUPPORTED : DISC_ERR_IO,
				      "cannot open a raw packet socket: %s%s", strerror(e),
				      permission_error(e) ? " (needs CAP_NET_RAW)" : "");
	}
	if (bind(s->fd, (const struct sockaddr *)&sll, sizeof(sll)) != 0)
		return disc_error_set(err, DISC_ERR_IO, "cannot bind to %s: %s", s->ifc.name,
				      strerror(errno));
	/* Straight to the driver: the kernel's queueing adds nothing to a paced sender.
	 * Both are optimisations; failing them is not an error. */
	(void)setsockopt(s->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	(void)setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	return DISC_OK;
}

static enum disc_status open_capture(struct disc_scan *s, struct disc_error *err)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "", ip[16], filter[1024];
	struct bpf_program prog;
	const char *mods[] = {"tcp_syn", "tcp_ack", "icmp_echo", "icmp_timestamp"};
	size_t len;
	int rc;

	s->pcap = pcap_create(s->ifc.name, ebuf);
	if (!s->pcap)
		return disc_error_set(err, DISC_ERR_IO, "capture on %s: %s", s->ifc.name, ebuf);
	pcap_set_snaplen(s->pcap, SNAPLEN);
	pcap_set_promisc(s->pcap, 0);
	pcap_set_immediate_mode(s->pcap, 0);
	pcap_set_timeout(s->pcap, 10);
	pcap_set_buffer_size(s->pcap, PCAP_BUFFER);
	rc = pcap_activate(s->pcap);
	if (rc < 0)
		return disc_error_set(
			err, rc == PCAP_ERROR_PERM_DENIED ? DISC_ERR_UNSUPPORTED : DISC_ERR_IO,
			"capture on %s: %s", s->ifc.name, pcap_geterr(s->pcap));
	if (pcap_datalink(s->pcap) != DLT_EN10MB)
		return disc_error_set(err, DISC_ERR_UNSUPPORTED, "%s is not an Ethernet interface",
				      s->ifc.name);
	/* Our own frames are not replies; not seeing them halves the capture's work. */
	(void)pcap_setdirection(s->pcap, PCAP_D_IN);

	/* Each module's filter, restricted to packets for us (as disc/probe.h says). */
	disc_ipv4_str(s->ifc.ip, ip);
	len = (size_t)snprintf(filter, sizeof(filter), "(%s and dst host %s) or (dst host %s and (",
			       disc_probe_find("arp_request")->bpf_filter, ip, ip);
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]) && len < sizeof(filter); i++)
		len += (size_t)snprintf(filter + len, sizeof(filter) - len, "%s(%s)",
					i ? " or " : "", disc_probe_find(mods[i])->bpf_filter);
	if (len >= sizeof(filter) ||
	    (size_t)snprintf(filter + len, sizeof(filter) - len, "))") >= sizeof(filter) - len)
		return disc_error_set(err, DISC_ERR_STATE, "capture filter too long");
	if (pcap_compile(s->pcap, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0)
		return disc_error_set(err, DISC_ERR_STATE, "capture filter: %s",
				      pcap_geterr(s->pcap));
	rc = pcap_setfilter(s->pcap, &prog);
	pcap_freecode(&prog);
	if (rc != 0)
		return disc_error_set(err, DISC_ERR_IO, "capture filter: %s", pcap_geterr(s->pcap));
	if (pcap_setnonblock(s->pcap, 1, ebuf) != 0)
		return disc_error_set(err, DISC_ERR_IO, "capture: %s", ebuf);
	return DISC_OK;
}

/*
 * The target whose route picks the interface: the first one that is not this
 * machine's own address. A list that starts with the scanner itself (as a
 * list of a subnet's live hosts does) still gets a raw scan; the own address
 * is reported as up without probes (discovery_probes).
 */
static uint32_t first_routed_target(const struct disc_scan *s)
{
	uint64_t n = disc_targets_count(s->cfg.targets);

	for (uint64_t i = 0; i < n && i < MAX_LOCAL_TARGETS_SKIPPED; i++) {
		uint32_t ip = disc_targets_at(s->cfg.targets, i);

		if (!disc_route_is_local(&s->routes, ip))
			return ip;
	}
	return disc_targets_at(s->cfg.targets, 0);
}

/* Picks the interface: -i, or the one the first routed target is routed through. */
static enum disc_status open_iface(struct disc_scan *s, struct disc_error *err)
{
	const char *name = s->cfg.iface;
	uint32_t first = first_routed_target(s);
	const struct disc_route *r = disc_route_lookup(&s->routes, first);

	if (!name && !s->cfg.dry_run && disc_route_is_local(&s->routes, first)) {
		char ip[16];

		/* the kernel delivers it without a network: a raw frame would leave
		 * through whatever interface a default route names */
		return disc_error_set(err, DISC_ERR_UNSUPPORTED,
				      "%s is this machine's own address, reached without a network",
				      disc_ipv4_str(first, ip));
	}
	if (!name) {
		if (!r) {
			char ip[16];

			if (s->cfg.dry_run)
				return DISC_OK; /* build with zero addresses */
			return disc_error_set(err, DISC_ERR_RESOLVE,
					      "no route to %s (give the interface with -i)",
					      disc_ipv4_str(first, ip));
		}
		name = r->ifname;
	}
	if (disc_iface_get(name, r ? (r->gateway ? r->gateway : first) : 0, &s->ifc, err) !=
	    DISC_OK)
		return err ? err->status : DISC_ERR_RESOLVE;
	if (s->ifc.loopback)
		return disc_error_set(err, DISC_ERR_UNSUPPORTED,
				      "%s is a loopback interface: use --connect", name);
	if (s->ifc.ip == 0)
		return disc_error_set(err, DISC_ERR_RESOLVE, "%s has no IPv4 address", name);
	s->have_route_info = true;
	return DISC_OK;
}

enum disc_status disc_scan_open(struct disc_scan **out, const struct disc_scan_config *cfg,
				struct disc_error *err)
{
	struct disc_scan *s;
	uint8_t secret[16];
	unsigned offset;
	enum disc_status st;

	*out = NULL;
	st = check_config(cfg, err);
	if (st != DISC_OK)
		return st;
	s = calloc(1, sizeof(*s));
	if (!s)
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
	s->cfg = *cfg;
	if (cfg->discovery_only) {
		/* no port scan: nothing below may size itself by a port list */
		s->cfg.ports = NULL;
		s->cfg.n_ports = 0;
		cfg = &s->cfg;
	}
	s->fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->rate_lock, NULL);
	pthread_mutex_init(&s->answers_lock, NULL);
	s->block_hosts = disc_answers_block_hosts(cfg->n_ports);
	{
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		s->senders = cpus < 1			    ? 1
			     : cpus > DISC_SCAN_MAX_SENDERS ? DISC_SCAN_MAX_SENDERS
							    : (uint32_t)cpus;
	}
	disc_results_init(&s->results);
	disc_route_table_init(&s->routes);
	s->ports_probed = cfg->n_ports;
	s->results.proxy_ports = cfg->n_ports;
	/* connect() finds a host before the kernel's neighbour cache gives its MAC */
	s->results.hold_hosts = cfg->mode == DISC_SCAN_CONNECT;
	/* the least number of closed ports that no SYN proxy has (disc/results.h) */
	if (cfg->n_ports >= DISC_SYN_PROXY_MIN_PORTS)
		s->no_proxy_closed =
			(uint32_t)(cfg->n_ports * (100 - DISC_SYN_PROXY_PERCENT) / 100 + 1);
	st = disc_random_bytes(secret, sizeof(secret), err);
	if (st != DISC_OK)
		goto fail;
	disc_cookie_init(&s->cookie, secret);
	st = disc_random_bytes(&offset, sizeof(offset), err);
	if (st != DISC_OK)
		goto fail;
	s->sport_offset = offset % (DISC_SCAN_SPORT_RANGE - 1);

	/* Connect mode and dry runs can do without routes; a raw scan cannot. */
	st = disc_route_load(&s->routes, cfg->route_path, err);
	if (st != DISC_OK) {
		if (cfg->mode == DISC_SCAN_SYN && !cfg->dry_run)
			goto fail;
		disc_route_table_release(&s->routes);
	}
	if (cfg->mode == DISC_SCAN_CONNECT) {
		*out = s;
		return DISC_OK;
	}
	st = open_iface(s, err);
	if (st != DISC_OK)
		goto fail;
	memcpy(s->probe_cfg.src_mac, s->ifc.mac, 6);
	s->probe_cfg.src_ip = s->ifc.ip;
	if (!cfg->dry_run) {
		/* Before the receive thread can look at it; -sn scans no ports. */
		if (!cfg->discovery_only)
			st = disc_answers_init(&s->answers, cfg->ports, cfg->n_ports,
					       s->block_hosts, err);
		if (st == DISC_OK)
			st = open_socket(s, err);
		if (st == DISC_OK)
			st = open_capture(s, err);
		if (st != DISC_OK)
			goto fail;
	}
	*out = s;
	return DISC_OK;
fail:
	disc_scan_free(s);
	return st;
}

const char *disc_scan_iface(const struct disc_scan *s)
{
	return s->ifc.name;
}

void disc_scan_free(struct disc_scan *s)
{
	if (!s)
		return;
	if (s->pcap)
		pcap_close(s->pcap);
	if (s->fd >= 0)
		close(s->fd);
	disc_results_release(&s->results);
	disc_results_take_release(&s->take);
	disc_answers_release(&s->answers);
	disc_route_table_release(&s->routes);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->rate_lock);
	pthread_mutex_destroy(&s->answers_lock);
	free(s);
}

/* ------------------------------------------------------------------------ */
/* Transmit: batches of frames, paced */

struct txq {
	struct disc_scan *s;
	unsigned n;
	const struct disc_probe_module *prepared[DISC_SCAN_BATCH];
	struct sockaddr_ll addr[DISC_SCAN_BATCH];
	struct iovec iov[DISC_SCAN_BATCH];
	struct mmsghdr msgs[DISC_SCAN_BATCH];
	uint8_t frames[DISC_SCAN_BATCH][DISC_PROBE_MAX_FRAME];
};

static void txq_init(struct txq *q, struct disc_scan *s)
{
	memset(q, 0, sizeof(*q));
	q->s = s;
	for (unsigned i = 0; i < DISC_SCAN_BATCH; i++) {
		q->addr[i].sll_family = AF_PACKET;
		q->addr[i].sll_ifindex = s->ifc.index;
		q->addr[i].sll_halen = 6;
		q->iov[i].iov_base = q->frames[i];
		q->msgs[i].msg_hdr.msg_iov = &q->iov[i];
		q->msgs[i].msg_hdr.msg_iovlen = 1;
		q->msgs[i].msg_hdr.msg_name = &q->addr[i];
		q->msgs[i].msg_hdr.msg_namelen = sizeof(q->addr[i]);
	}
}

/* Sends what is queued as the rate allows. Stopping drops the rest silently. */
static enum disc_status txq_flush(struct txq *q, struct disc_error *err)
{
	struct disc_scan *s = q->s;
	unsigned done = 0, stalls = 0;

	if (s->cfg.dry_run) {
		atomic_fetch_add(&s->sent, q->n);
		q->n = 0;
		return DISC_OK;
	}
	while (done < q->n) {
		uint64_t got = disc_scan_take_tokens(s, q->n - done);
		unsigned end = done + (unsigned)got;

		if (got == 0)
			break;
		while (done < end) {
			int r = sendmmsg(s->fd, &q->msgs[done], end - done, MSG_DONTWAIT);

			if (r > 0) {
				done += (unsigned)r;
				atomic_fetch_add(&s->sent, (uint64_t)r);
				stalls = 0;
				continue;
			}
			if (r < 0 && (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)) {
				if (++stalls > MAX_SEND_STALLS) {
					q->n = 0;
					return disc_error_set(err, DISC_ERR_IO,
							      "sending on %s stalled: %s",
							      s->ifc.name, strerror(errno));
				}
				if (disc_scan_should_stop(s))
					goto out;
				sleep_ns(SEND_STALL_NS);
				continue;
			}
			q->n = 0;
			return disc_error_set(err, DISC_ERR_IO, "sending on %s: %s", s->ifc.name,
					      r < 0 ? strerror(errno) : "nothing sent");
		}
	}
out:
	q->n = 0;
	return DISC_OK;
}

/* Queues one probe of module m to dst_mac (NULL: the module's own, i.e. broadcast ARP). */
static enum disc_status txq_add(struct txq *q, const struct disc_probe_module *m,
				const uint8_t *dst_mac, const struct disc_probe_target *t,
				struct disc_error *err)
{
	unsigned i = q->n;
	uint8_t *f = q->frames[i];

	if (q->prepared[i] != m) {
		m->prepare(f, &q->s->probe_cfg);
		q->prepared[i] = m;
		q->iov[i].iov_len = m->frame_len;
		q->addr[i].sll_protocol = htons((uint16_t)(f[12] << 8 | f[13]));
	}
	m->make(f, &q->s->probe_cfg, t);
	if (dst_mac)
		memcpy(f, dst_mac, 6);
	memcpy(q->addr[i].sll_addr, f, 6);
	if (++q->n == DISC_SCAN_BATCH)
		return txq_flush(q, err);
	return DISC_OK;
}

/* ------------------------------------------------------------------------ */
/* Next hops */

enum hop { HOP_NONE, HOP_ONLINK, HOP_GATEWAY };

/* ARPs for a gateway (the receive thread records the answer); bounded tries. */
static enum disc_status resolve_gateway(struct disc_scan *s, struct txq *q, struct gateway *g,
					struct disc_error *err)
{
	const struct disc_probe_module *arp = disc_probe_find("arp_request");
	struct disc_neigh_table nt;
	uint8_t mac[6];
	bool cached = false;

	disc_neigh_table_init(&nt);
	if (disc_neigh_load(&nt, s->cfg.neigh_path, NULL) == DISC_OK)
		cached = disc_neigh_lookup(&nt, g->ip, s->ifc.name, mac);
	disc_neigh_table_release(&nt);
	pthread_mutex_lock(&s->lock);
	if (cached) {
		memcpy(g->mac, mac, 6);
		g->resolved = true;
	}
	pthread_mutex_unlock(&s->lock);
	if (cached)
		return DISC_OK;
	for (int attempt = 0; attempt < GATEWAY_ARP_TRIES; attempt++) {
		struct disc_probe_target t = {.dst_ip = g->ip};
		enum disc_status st = txq_flush(q, err);

		if (st == DISC_OK)
			st = txq_add(q, arp, NULL, &t, err);
		if (st == DISC_OK)
			st = txq_flush(q, err);
		if (st != DISC_OK)
			return st;
		for (int waited = 0; waited < GATEWAY_ARP_WAIT_MS; waited += 10) {
			bool done;

			pthread_mutex_lock(&s->lock);
			done = g->resolved;
			pthread_mutex_unlock(&s->lock);
			if (done || disc_scan_sleep_ms(s, 10))
				return DISC_OK;
		}
	}
	return DISC_OK;
}

/*
 * How ip is reached through the scan's interface; for a gateway route its
 * MAC in mac (resolved on first use). In a dry run every target counts as
 * on-link when there is no route, so that every probe can still be built.
 */
static enum disc_status next_hop(struct disc_scan *s, struct txq *q, uint32_t ip, enum hop *hop,
				 uint8_t mac[6], struct disc_error *err)
{
	const struct disc_route *r = disc_route_lookup(&s->routes, ip);
	struct gateway *g = NULL;
	bool fresh = false;

	*hop = HOP_NONE;
	if (!r || strcmp(r->ifname, s->ifc.name) != 0) {
		if (s->cfg.dry_run) {
			memset(mac, 0, 6);
			*hop = HOP_ONLINK;
		}
		return DISC_OK;
	}
	if (r->gateway == 0) {
		*hop = HOP_ONLINK;
		return DISC_OK;
	}
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n_gateways; i++)
		if (s->gateways[i].ip == r->gateway)
			g = &s->gateways[i];
	if (!g && s->n_gateways < MAX_GATEWAYS) {
		g = &s->gateways[s->n_gateways++];
		memset(g, 0, sizeof(*g));
		g->ip = r->gateway;
		fresh = true;
	}
	pthread_mutex_unlock(&s->lock);
	if (!g)
		return DISC_OK;
	/* Resolved once; a gateway that does not answer stays unresolved (its targets unreachable).
	 */
	if (fresh && s->cfg.dry_run) {
		pthread_mutex_lock(&s->lock);
		g->resolved = true;
		pthread_mutex_unlock(&s->lock);
	} else if (fresh) {
		enum disc_status st = resolve_gateway(s, q, g, err);

		if (st != DISC_OK)
			return st;
	}
	pthread_mutex_lock(&s->lock);
	if (g->resolved) {
		memcpy(mac, g->mac, 6);
		*hop = HOP_GATEWAY;
	}
	pthread_mutex_unlock(&s->lock);
	return DISC_OK;
}

static bool host_known(struct disc_scan *s, uint32_t ip, uint8_t mac[6])
{
	const struct disc_result_host *h;
	bool known;

	pthread_mutex_lock(&s->lock);
	h = disc_results_find(&s->results, ip);
	known = h && (!mac || h->has_mac);
	if (known && mac)
		memcpy(mac, h->mac, 6);
	pthread_mutex_unlock(&s->lock);
	return known;
}

/* ------------------------------------------------------------------------ */
/* Transmit phases */

static uint32_t cookie_for(const struct disc_scan *s, uint32_t ip, uint16_t sport, uint16_t dport)
{
	return disc_cookie_make(&s->cookie, s->ifc.ip, ip, sport, dport);
}

/* The probes that find whether ip is up. */
static enum disc_status discovery_probes(struct disc_scan *s, struct txq *q, uint32_t ip,
					 struct disc_error *err)
{
	static const char *const icmp[] = {"icmp_echo", "icmp_timestamp"};
	static const struct {
		const char *module;
		uint16_t port;
	} tcp[] = {{"tcp_syn", 443}, {"tcp_ack", 80}};
	enum disc_status st = DISC_OK;
	enum hop hop;
	uint8_t mac[6];
	bool fresh = false;

	if (ip == s->ifc.ip && ip != 0) {
		/* Our own address: up by definition, and our frames would never reach our stack. */
		if (s->cfg.dry_run)
			return DISC_OK;
		pthread_mutex_lock(&s->lock);
		if (disc_results_host(&s->results, ip, DISC_REASON_LOCALHOST, -1, s->ifc.mac,
				      &fresh, NULL) == DISC_OK &&
		    fresh)
			atomic_fetch_add(&s->hosts_found, 1);
		pthread_mutex_unlock(&s->lock);
		return DISC_OK;
	}
	st = next_hop(s, q, ip, &hop, mac, err);
	if (st != DISC_OK)
		return st;
	if (hop == HOP_NONE) {
		atomic_fetch_add(&s->unreachable, 1);
		return DISC_OK;
	}
	if (hop == HOP_ONLINK) {
		struct disc_probe_target t = {.dst_ip = ip};

		return txq_add(q, disc_probe_find("arp_request"), NULL, &t, err);
	}
	if (s->cfg.skip_discovery)
		return DISC_OK;
	for (size_t i = 0; i < 2 && st == DISC_OK; i++) {
		struct disc_probe_target t = {.dst_ip = ip, .seq = cookie_for(s, ip, 0, 0)};

		t.ip_id = (uint16_t)t.seq;
		st = txq_add(q, disc_probe_find(icmp[i]), mac, &t, err);
	}
	for (size_t i = 0; i < 2 && st == DISC_OK; i++) {
		struct disc_probe_target t = {
			.dst_ip = ip,
			.dst_port = tcp[i].port,
			.src_port = DISC_SCAN_SPORT_BASE,
			.seq = cookie_for(s, ip, DISC_SCAN_SPORT_BASE, tcp[i].port),
		};

		t.ip_id = (uint16_t)t.seq;
		st = txq_add(q, disc_probe_find(tcp[i].module), mac, &t, err);
	}
	return st;
}

/*
 * The wait after a discovery pass: up to ms, but over as soon as every one of
 * the shard's `targets` is known to be up (a list of live hosts, as a sweep
 * of known machines gives, answers its ARP requests within a millisecond;
 * waiting out --wait then only delays the port scan). Later replies are still
 * read by the receive thread. True when asked to stop.
 */
static bool discovery_wait(struct disc_scan *s, uint64_t ms, uint64_t targets)
{
	uint64_t end = disc_scan_now_ns() + ms * 1000000ull;

	while (atomic_load(&s->hosts_found) < targets) {
		uint64_t now = disc_scan_now_ns();

		if (disc_scan_should_stop(s))
			return true;
		if (now >= end)
			break;
		sleep_ns(end - now < DISCOVERY_POLL_NS ? end - now : DISCOVERY_POLL_NS);
	}
	return false;
}

static enum disc_status phase_discovery(struct disc_scan *s, struct txq *q, struct disc_error *err)
{
	unsigned passes = s->cfg.dry_run ? 1 : s->cfg.retries + 1;
	uint64_t targets = 0;

	atomic_store(&s->phase, PHASE_DISCOVERY);
	for (unsigned pass = 0; pass < passes; pass++) {
		struct disc_perm p;
		uint64_t idx, before = atomic_load(&s->sent);
		enum disc_status st = disc_perm_init(&p, disc_targets_count(s->cfg.targets),
						     s->cfg.seed, s->cfg.shard, s->cfg.shards, err);
		if (st != DISC_OK)
			return st;
		if (pass == 0)
			atomic_fetch_add(&s->planned, p.left);
		while (disc_perm_next(&p, &idx)) {
			uint32_t ip = disc_targets_at(s->cfg.targets, idx);

			if (disc_scan_should_stop(s))
				return DISC_OK;
			if (pass == 0)
				targets++; /* p.left counts steps, not targets */
			if (pass > 0 && host_known(s, ip, NULL))
				continue;
			if (pass > 0 && s->cfg.skip_discovery &&
			    disc_route_lookup(&s->routes, ip) &&
			    disc_route_lookup(&s->routes, ip)->gateway)
				continue;
			st = discovery_probes(s, q, ip, err);
			if (st != DISC_OK)
				return st;
		}
		st = txq_flush(q, err);
		if (st != DISC_OK)
			return st;
		/*
		 * A pass that sent nothing has no replies to wait for. Otherwise wait at
		 * least a little even with --wait 0: the port phase can reach an on-link
		 * host only at the MAC its ARP reply brings.
		 */
		if (!s->cfg.dry_run && atomic_load(&s->sent) > before) {
			atomic_store(&s->phase, PHASE_WAITING);
			if (discovery_wait(s,
					   s->cfg.wait_ms > DISCOVERY_MIN_WAIT_MS
						   ? s->cfg.wait_ms
						   : DISCOVERY_MIN_WAIT_MS,
					   targets))
				return DISC_OK;
			atomic_store(&s->phase, PHASE_DISCOVERY);
		}
	}
	return DISC_OK;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The hosts found in discovery, sorted by address: the port phase's input. */
static enum disc_status live_hosts(struct disc_scan *s, struct host_source *src,
				   struct disc_error *err)
{
	pthread_mutex_lock(&s->lock);
	src->n_live = s->results.n_hosts;
	src->live = malloc((src->n_live ? src->n_live : 1) * sizeof(*src->live));
	if (src->live)
		for (size_t i = 0; i < src->n_live; i++)
			src->live[i] = s->results.hosts[i].ip;
	pthread_mutex_unlock(&s->lock);
	if (!src->live)
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for live hosts");
	qsort(src->live, src->n_live, sizeof(*src->live), cmp_u32);
	return DISC_OK;
}

/* Fills b with the next hosts that can be addressed: each with its next-hop MAC. */
static enum disc_status fill_block(struct disc_scan *s, struct txq *q, struct host_source *src,
				   struct host_block *b, struct disc_error *err)
{
	b->n = 0;
	while (b->n < s->block_hosts) {
		uint32_t ip;
		uint64_t idx;
		enum hop hop;
		enum disc_status st;

		if (src->from_targets) {
			if (!disc_perm_next(&src->perm, &idx))
				break;
			ip = disc_targets_at(s->cfg.targets, idx);
		} else {
			if (src->next_live == src->n_live)
				break;
			ip = src->live[src->next_live++];
		}
		if (ip == s->ifc.ip && ip != 0)
			continue; /* see discovery_probes */
		st = next_hop(s, q, ip, &hop, b->mac[b->n], err);
		if (st != DISC_OK)
			return st;
		if (hop == HOP_NONE)
			continue;
		if (hop == HOP_ONLINK && s->cfg.dry_run)
			memset(b->mac[b->n], 0, 6);
		/* On-link hosts are reached at the MAC their ARP reply gave. */
		if (hop == HOP_ONLINK && !s->cfg.dry_run && !host_known(s, ip, b->mac[b->n]))
			continue;
		b->ip[b->n++] = ip;
	}
	return DISC_OK;
}

/*
 * Source port of port-scan pass `pass`: a different one per pass, starting at
 * a random offset per scan, so that neither a retry nor a re-scan soon after
 * meets a connection the target still remembers under the same ports.
 */
static uint16_t port_scan_sport(const struct disc_scan *s, unsigned pass)
{
	return (uint16_t)(DISC_SCAN_SPORT_BASE + 1 +
			  (s->sport_offset + pass) % (DISC_SCAN_SPORT_RANGE - 1));
}

/* One sender's part of a block: stretch `part` of `parts` of the block's permutation. */
static enum disc_status scan_block_part(struct disc_scan *s, struct txq *q,
					const struct host_block *b, uint64_t block_no,
					uint32_t part, uint32_t parts, struct disc_error *err)
{
	const struct disc_probe_module *syn = disc_probe_find("tcp_syn");
	unsigned passes = s->cfg.dry_run ? 1 : s->cfg.retries + 1;
	uint64_t n = (uint64_t)b->n * s->cfg.n_ports;

	for (unsigned pass = 0; pass < passes; pass++) {
		uint16_t sport = port_scan_sport(s, pass);
		uint64_t idx, done = 0;
		struct disc_perm p;
		enum disc_status st = disc_perm_init(
			&p, n, disc_scan_block_seed(s->cfg.seed, block_no), part, parts, err);
		if (st != DISC_OK)
			return st;
		while (disc_perm_next(&p, &idx)) {
			/* idx < hosts x ports <= 2^32: a 32-bit division, several times
			 * cheaper than a 64-bit one and per probe the dearest instruction */
			uint32_t i32 = (uint32_t)idx, n32 = (uint32_t)b->n;
			size_t h = i32 % n32;
			uint16_t port = s->cfg.ports[i32 / n32];
			struct disc_probe_target t = {
				.dst_ip = b->ip[h], .dst_port = port, .src_port = sport};

			if (disc_scan_should_stop(s)) {
				/* What share of this block's ports was probed, for SYN proxies. */
				if (pass == 0 && part == 0)
					s->ports_probed = s->cfg.n_ports * done * parts / n;
				return DISC_OK;
			}
			done++;
			if (pass > 0 && disc_answers_test(&s->answers, idx))
				continue;
			t.seq = cookie_for(s, t.dst_ip, sport, port);
			t.ip_id = (uint16_t)t.seq;
			st = txq_add(q, syn, b->mac[h], &t, err);
			if (st != DISC_OK)
				return st;
		}
		st = txq_flush(q, err);
		if (st != DISC_OK)
			return st;
	}
	return DISC_OK;
}

struct sender {
	struct disc_scan *s;
	struct txq *q; /* owned */
	const struct host_block *b;
	uint64_t block_no;
	uint32_t part, parts;
	enum disc_status st;
	struct disc_error err;
};

static void *sender_main(void *arg)
{
	struct sender *w = arg;

	w->st = scan_block_part(w->s, w->q, w->b, w->block_no, w->part, w->parts, &w->err);
	if (w->st != DISC_OK)
		atomic_store(&w->s->failed, true);
	return NULL;
}

/*
 * Scans a block with s->senders threads. On a virtual network the kernel
 * does the receiving side's work in the sender's system call, so one sender
 * is bound to one CPU; more senders spread that work over the CPUs.
 */
static enum disc_status scan_block(struct disc_scan *s, struct txq *q, const struct host_block *b,
				   uint64_t block_no, struct disc_error *err)
{
	struct sender w[DISC_SCAN_MAX_SENDERS];
	pthread_t tid[DISC_SCAN_MAX_SENDERS];
	bool started[DISC_SCAN_MAX_SENDERS] = {false};
	uint32_t parts = s->senders;
	enum disc_status st;

	for (uint32_t i = 1; i < parts; i++) {
		w[i] = (struct sender){
			.s = s, .b = b, .block_no = block_no, .part = i, .parts = parts};
		w[i].q = malloc(sizeof(*w[i].q));
		if (!w[i].q)
			continue; /* its part is done below, by this thread */
		txq_init(w[i].q, s);
		started[i] = pthread_create(&tid[i], NULL, sender_main, &w[i]) == 0;
	}
	st = scan_block_part(s, q, b, block_no, 0, parts, err);
	for (uint32_t i = 1; i < parts; i++) {
		if (started[i]) {
			pthread_join(tid[i], NULL);
		} else if (st == DISC_OK) {
			/* No thread (or no memory for one): the part still has to be sent. */
			st = scan_block_part(s, q, b, block_no, i, parts, err);
			continue;
		}
		if (st == DISC_OK && w[i].st != DISC_OK) {
			st = w[i].st;
			if (err)
				*err = w[i].err;
		}
		free(w[i].q);
	}
	return st;
}

static enum disc_status phase_ports(struct disc_scan *s, struct txq *q, struct disc_error *err)
{
	struct host_source src = {0};
	struct host_block b = {0};
	uint64_t block_no = 0;
	enum disc_status st;

	atomic_store(&s->phase, PHASE_PORTS);
	src.from_targets = s->cfg.skip_discovery || s->cfg.dry_run;
	if (src.from_targets)
		st = disc_perm_init(&src.perm, disc_targets_count(s->cfg.targets), s->cfg.seed,
				    s->cfg.shard, s->cfg.shards, err);
	else
		st = live_hosts(s, &src, err);
	if (st == DISC_OK)
		st = disc_scan_block_alloc(&b, err);
	if (st != DISC_OK)
		goto out;
	atomic_fetch_add(&s->planned, (src.from_targets ? src.perm.left : src.n_live) *
					      (uint64_t)s->cfg.n_ports);
	for (;;) {
		st = fill_block(s, q, &src, &b, err);
		if (st != DISC_OK || b.n == 0 || disc_scan_should_stop(s))
			break;
		pthread_mutex_lock(&s->answers_lock);
		if (!s->cfg.dry_run)
			disc_answers_start(&s->answers, b.ip, b.n);
		pthread_mutex_unlock(&s->answers_lock);
		st = scan_block(s, q, &b, block_no++, err);
		if (st != DISC_OK || disc_scan_should_stop(s))
			break;
	}
	if (st == DISC_OK && !s->cfg.dry_run && !disc_scan_should_stop(s)) {
		atomic_store(&s->phase, PHASE_WAITING);
		disc_scan_sleep_ms(s, s->cfg.wait_ms);
	}
out:
	disc_scan_block_free(&b);
	free(src.live);
	return st;
}

static void *tx_main(void *arg)
{
	struct disc_scan *s = arg;
	struct txq *q = malloc(sizeof(*q));
	enum disc_status st;

	if (!q) {
		disc_error_set(&s->tx_err, DISC_ERR_NOMEM, "out of memory for the send queue");
		atomic_store(&s->failed, true);
		atomic_store(&s->tx_done, true);
		return NULL;
	}
	txq_init(q, s);
	st = phase_discovery(s, q, &s->tx_err);
	if (st == DISC_OK && !s->cfg.discovery_only && !disc_scan_should_stop(s))
		st = phase_ports(s, q, &s->tx_err);
	if (st != DISC_OK)
		atomic_store(&s->failed, true);
	free(q);
	atomic_store(&s->tx_done, true);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Receive */

static void record_host(struct disc_scan *s, uint32_t ip, enum disc_reason why, int ttl,
			const uint8_t *mac)
{
	bool is_new = false;

	pthread_mutex_lock(&s->lock);
	if (disc_results_host(&s->results, ip, why, ttl, mac, &is_new, NULL) == DISC_OK && is_new)
		atomic_fetch_add(&s->hosts_found, 1);
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add(&s->replies, 1);
}

static void on_arp(struct disc_scan *s, const struct disc_arp_info *a)
{
	bool gateway = false;

	if (a->op != 2 || a->target_ip != s->ifc.ip || memcmp(a->target_mac, s->ifc.mac, 6) != 0)
		return;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n_gateways; i++) {
		if (s->gateways[i].ip == a->sender_ip && !s->gateways[i].resolved) {
			memcpy(s->gateways[i].mac, a->sender_mac, 6);
			s->gateways[i].resolved = true;
			gateway = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
	/*
	 * A reply that resolves a gateway answers that request only: the gateway
	 * may be a target of another shard, which must be the one to report it
	 * (its own ARP request for it gets its own reply).
	 */
	if (gateway)
		atomic_fetch_add(&s->replies, 1);
	else if (disc_targets_contains(s->cfg.targets, a->sender_ip))
		record_host(s, a->sender_ip, DISC_REASON_ARP, -1, a->sender_mac);
}

/*
 * Ends the half-open connection a SYN-ACK started (RFC 793: a reset takes its
 * sequence number from the segment's acknowledgment). The target frees its
 * state at once instead of retransmitting for a minute, and a later scan
 * from the same source port is not taken for a duplicate of this one. The
 * kernel would do this too, but the scanner's firewall rule keeps the kernel
 * out of our port range (docs/scanning.md). Best effort: a lost RST costs
 * the target only a timeout.
 */
static void send_rst(struct disc_scan *s, const struct disc_frame *f)
{
	const struct disc_probe_module *m = disc_probe_find("tcp_rst");
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
				  .sll_ifindex = s->ifc.index,
				  .sll_protocol = htons(ETH_P_IP),
				  .sll_halen = 6};
	struct disc_probe_target t = {.dst_ip = f->ip.src,
				      .dst_port = f->tcp.src_port,
				      .src_port = f->tcp.dst_port,
				      .seq = f->tcp.ack,
				      .ip_id = (uint16_t)f->tcp.ack};
	uint8_t frame[DISC_PROBE_MAX_FRAME];

	m->prepare(frame, &s->probe_cfg);
	m->make(frame, &s->probe_cfg, &t);
	memcpy(frame, f->eth_src, 6);
	memcpy(sll.sll_addr, f->eth_src, 6);
	if (sendto(s->fd, frame, m->frame_len, MSG_DONTWAIT, (const struct sockaddr *)&sll,
		   sizeof(sll)) > 0)
		atomic_fetch_add(&s->resets, 1);
}

/*
 * Keeps the host's first SYN-ACK for the OS guess (--os). Always: a copy of a
 * few fields per host costs less than a branch on the option would save.
 */
static void record_fp(struct disc_scan *s, const struct disc_frame *f)
{
	struct disc_os_fp fp;

	disc_os_fp_from_frame(f, &fp);
	pthread_mutex_lock(&s->lock);
	disc_results_os_fp(&s->results, f->ip.src, &fp);
	pthread_mutex_unlock(&s->lock);
}

static void on_tcp(struct disc_scan *s, const struct disc_frame *f)
{
	const struct disc_tcp_info *t = &f->tcp;
	uint32_t them = f->ip.src;
	uint32_t c = cookie_for(s, them, t->dst_port, t->src_port);
	bool synack = (t->flags & (DISC_TCP_SYN | DISC_TCP_ACK)) == (DISC_TCP_SYN | DISC_TCP_ACK) &&
		      !(t->flags & DISC_TCP_RST);
	bool rst = (t->flags & DISC_TCP_RST) != 0;
	/* Answers to a SYN acknowledge cookie + 1; a RST to our bare ACK carries it as seq. */
	bool syn_answer = (synack || (rst && (t->flags & DISC_TCP_ACK))) && t->ack == c + 1;

	if (!disc_targets_contains(s->cfg.targets, them))
		return;
	if (synack && syn_answer)
		send_rst(s, f);
	if (t->dst_port == DISC_SCAN_SPORT_BASE) {
		if (syn_answer || (rst && t->seq == c))
			record_host(s, them, synack ? DISC_REASON_SYN_ACK : DISC_REASON_RST,
				    f->ip.ttl, NULL);
		if (synack && syn_answer)
			record_fp(s, f);
		return;
	}
	/* -sn sent no port probes and has no answer map for their replies */
	if (t->dst_port > DISC_SCAN_SPORT_BASE &&
	    t->dst_port < DISC_SCAN_SPORT_BASE + DISC_SCAN_SPORT_RANGE && syn_answer &&
	    !s->cfg.discovery_only) {
		bool is_new = false, in_block, first;
		uint32_t closed = 0;

		pthread_mutex_lock(&s->answers_lock);
		if (synack)
			in_block = disc_answers_mark(&s->answers, them, t->src_port, &first);
		else
			in_block = disc_answers_mark_closed(&s->answers, them, t->src_port, &first,
							    &closed);
		pthread_mutex_unlock(&s->answers_lock);
		if (!synack) {
			/*
			 * A closed port: only its bit (no retry) and, the first time, the
			 * host (up, for -Pn). Nearly every probe of a sweep ends here, so
			 * nothing per port is kept and the results lock is left alone,
			 * but once per host: when its closed ports prove it no SYN
			 * proxy, so that its open ports can be written while it runs.
			 */
			if (first || !in_block)
				record_host(s, them, DISC_REASON_RST, f->ip.ttl, NULL);
			else
				atomic_fetch_add(&s->replies, 1);
			if (closed && closed == s->no_proxy_closed) {
				pthread_mutex_lock(&s->lock);
				disc_results_closed(&s->results, them, closed);
				pthread_mutex_unlock(&s->lock);
			}
			return;
		}
		pthread_mutex_lock(&s->lock);
		if (disc_results_port(&s->results, them, t->src_port, true, DISC_REASON_SYN_ACK,
				      f->ip.ttl, &is_new, NULL) == DISC_OK &&
		    is_new)
			atomic_fetch_add(&s->ports_found, 1);
		pthread_mutex_unlock(&s->lock);
		atomic_fetch_add(&s->replies, 1);
		record_fp(s, f);
	}
}

static void on_icmp(struct disc_scan *s, const struct disc_frame *f)
{
	const struct disc_icmp_info *i = &f->icmp;
	uint32_t them = f->ip.src;

	if (i->type != 0 && i->type != 14)
		return; /* errors: a filtered port or an unreachable host says nothing is up */
	if (!disc_targets_contains(s->cfg.targets, them))
		return;
	if (((uint32_t)i->id << 16 | i->seq) != cookie_for(s, them, 0, 0))
		return;
	record_host(s, them, i->type == 0 ? DISC_REASON_ECHO : DISC_REASON_TIMESTAMP, f->ip.ttl,
		    NULL);
}

static void on_frame(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	struct disc_scan *s = (struct disc_scan *)user;
	struct disc_frame f;

	if (disc_frame_parse(bytes, h->caplen, DISC_LINK_ETHERNET, &f, NULL) != DISC_OK)
		return;
	if (f.l3 == DISC_L3_ARP) {
		on_arp(s, &f.arp);
		return;
	}
	if (f.l3 != DISC_L3_IPV4 || f.ip.dst != s->ifc.ip || !f.ip.checksum_ok)
		return;
	if (f.l4 == DISC_L4_TCP)
		on_tcp(s, &f);
	else if (f.l4 == DISC_L4_ICMP)
		on_icmp(s, &f);
}

static void *rx_main(void *arg)
{
	struct disc_scan *s = arg;
	struct pollfd pfd = {.fd = pcap_get_selectable_fd(s->pcap), .events = POLLIN};

	while (!atomic_load(&s->rx_stop)) {
		int rc;

		if (poll(&pfd, 1, DISC_SCAN_TICK_MS) < 0 && errno != EINTR)
			break;
		rc = pcap_dispatch(s->pcap, -1, on_frame, (u_char *)s);
		if (rc == PCAP_ERROR) {
			disc_error_set(&s->rx_err, DISC_ERR_IO, "capture: %s",
				       pcap_geterr(s->pcap));
			atomic_store(&s->failed, true);
			return NULL;
		}
	}
	/* What arrived while the last wait ended. */
	for (int i = 0; i < FINAL_DRAIN_ROUNDS; i++)
		if (pcap_dispatch(s->pcap, -1, on_frame, (u_char *)s) <= 0)
			break;
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Streaming */

void disc_scan_stream(struct disc_scan *s, struct disc_obs_writer *w,
		      const struct disc_vendor_db *vendors)
{
	s->stream = w;
	s->stream_vendors = vendors;
}

void disc_scan_stream_poll(struct disc_scan *s, bool force)
{
	struct disc_results_emit_opts o = {
		.vendors = s->stream_vendors,
		.targets = s->cfg.targets,
		.proto = "tcp",
	};
	uint64_t now = disc_scan_now_ns();
	enum disc_status st;

	if (!s->stream || s->out_err.status != DISC_OK || (!force && now < s->next_stream_ns))
		return;
	s->next_stream_ns = now + STREAM_EVERY_MS * 1000000ull;
	pthread_mutex_lock(&s->lock);
	st = disc_results_take(&s->results, &s->take, &s->out_err);
	pthread_mutex_unlock(&s->lock);
	/* Written without the lock: a reader that is slow to take the lines
	 * holds up this thread only, never the receive thread. */
	if (st == DISC_OK && s->take.n_hosts + s->take.n_ports > 0) {
		st = disc_results_take_write(&s->take, s->stream, &o, &s->out_err);
		if (st == DISC_OK && fflush(s->stream->out) != 0)
			st = disc_error_set(&s->out_err, DISC_ERR_IO, "writing the output: %s",
					    strerror(errno));
	}
	if (st != DISC_OK)
		atomic_store(&s->failed, true);
}

/* The port scan is over: every host not left a SYN proxy gets its ports written. */
static void stream_settle(struct disc_scan *s)
{
	if (!s->stream)
		return;
	pthread_mutex_lock(&s->lock);
	disc_results_settle(&s->results, s->ports_probed);
	pthread_mutex_unlock(&s->lock);
	disc_scan_stream_poll(s, true);
}

/* ------------------------------------------------------------------------ */
/* Running */

void disc_scan_get_stats(const struct disc_scan *s, struct disc_scan_stats *out)
{
	int phase = atomic_load(&s->phase);
	uint64_t now = disc_scan_now_ns();

	memset(out, 0, sizeof(*out));
	out->phase = phase_names[phase >= 0 && phase <= PHASE_DONE ? phase : PHASE_DONE];
	out->sent = atomic_load(&s->sent);
	out->planned = atomic_load(&s->planned);
	out->replies = atomic_load(&s->replies);
	out->hosts = atomic_load(&s->hosts_found);
	out->open_ports = atomic_load(&s->ports_found);
	out->unreachable = atomic_load(&s->unreachable);
	out->drops = s->drops;
	out->elapsed = s->t0_ns ? (double)(now - s->t0_ns) / 1e9 : 0;
	if (now > s->last_ns && s->last_ns)
		out->rate = (double)(out->sent - s->last_sent) * 1e9 / (double)(now - s->last_ns);
	out->interrupted = atomic_load(&s->interrupted);
}

void disc_scan_report_progress(struct disc_scan *s)
{
	struct disc_scan_stats st;
	uint64_t now = disc_scan_now_ns();

	if (!s->cfg.progress || !s->cfg.progress_ms || now < s->next_progress_ns)
		return;
	disc_scan_get_stats(s, &st);
	s->cfg.progress(s->cfg.progress_ctx, &st);
	s->last_sent = st.sent;
	s->last_ns = now;
	s->next_progress_ns = now + s->cfg.progress_ms * 1000000ull;
}

static void init_rate(struct disc_scan *s)
{
	uint64_t burst = s->cfg.rate / 1000; /* a millisecond's worth, at least two batches */

	if (burst < 2ull * DISC_SCAN_BATCH)
		burst = 2ull * DISC_SCAN_BATCH;
	disc_rate_init(&s->rate, s->cfg.dry_run ? 0 : s->cfg.rate, burst, disc_scan_now_ns());
}

enum disc_status disc_scan_run(struct disc_scan *s, struct disc_error *err)
{
	pthread_t tx, rx;
	struct pcap_stat ps;
	enum disc_status st = DISC_OK;

	s->t0_ns = s->last_ns = disc_scan_now_ns();
	init_rate(s);
	if (s->cfg.mode == DISC_SCAN_CONNECT) {
		st = disc_scan_run_connect(s, err);
		stream_settle(s);
		atomic_store(&s->phase, PHASE_DONE);
		if (st == DISC_OK && s->out_err.status != DISC_OK) {
			if (err)
				*err = s->out_err;
			st = s->out_err.status;
		}
		return st;
	}
	if (s->cfg.dry_run) {
		tx_main(s);
		stream_settle(s);
		goto done;
	}
	if (pthread_create(&rx, NULL, rx_main, s) != 0)
		return disc_error_set(err, DISC_ERR_STATE, "cannot start the receive thread");
	if (pthread_create(&tx, NULL, tx_main, s) != 0) {
		atomic_store(&s->rx_stop, true);
		pthread_join(rx, NULL);
		return disc_error_set(err, DISC_ERR_STATE, "cannot start the transmit thread");
	}
	/* Both threads end by themselves: tx when its phases are done or stop is set. */
	while (!atomic_load(&s->tx_done)) {
		sleep_ns(DISC_SCAN_TICK_MS * 1000000ull / 5);
		disc_scan_should_stop(s);
		disc_scan_report_progress(s);
		disc_scan_stream_poll(s, false);
	}
	pthread_join(tx, NULL);
	atomic_store(&s->rx_stop, true);
	pthread_join(rx, NULL);
	if (pcap_stats(s->pcap, &ps) == 0)
		s->drops = (uint64_t)ps.ps_drop + ps.ps_ifdrop;
	stream_settle(s);
done:
	atomic_store(&s->phase, PHASE_DONE);
	if (atomic_load(&s->failed)) {
		const struct disc_error *e = s->out_err.status != DISC_OK  ? &s->out_err
					     : s->tx_err.status != DISC_OK ? &s->tx_err
									   : &s->rx_err;

		if (err)
			*err = *e;
		st = e->status != DISC_OK ? e->status : DISC_ERR_IO;
	}
	return st;
}

enum disc_status disc_scan_emit(struct disc_scan *s, struct disc_obs_writer *w,
				const struct disc_vendor_db *vendors, size_t *n_hosts,
				size_t *n_ports, size_t *n_proxies, struct disc_error *err)
{
	struct disc_results_emit_opts o = {
		.vendors = vendors,
		.targets = s->cfg.targets,
		.ports_probed = s->ports_probed,
		.proto = "tcp",
		.os = s->cfg.os,
	};
	enum disc_status st;

	pthread_mutex_lock(&s->lock);
	st = disc_results_emit(&s->results, w, &o, n_hosts, n_ports, n_proxies, err);
	pthread_mutex_unlock(&s->lock);
	return st;
}
