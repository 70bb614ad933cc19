/* disc_results: de-duplicated scan results and their output (see disc/results.h). */
#include "disc/results.h"

#include <stdlib.h>
#include <string.h>

const char *disc_reason_str(enum disc_reason r)
{
	switch (r) {
	case DISC_REASON_ARP:
		return "arp-response";
	case DISC_REASON_ECHO:
		return "echo-reply";
	case DISC_REASON_TIMESTAMP:
		return "timestamp-reply";
	case DISC_REASON_SYN_ACK:
		return "syn-ack";
	case DISC_REASON_RST:
		return "rst";
	case DISC_REASON_CONNECT:
		return "connect";
	case DISC_REASON_CONN_REFUSED:
		return "conn-refused";
	case DISC_REASON_LOCALHOST:
		return "localhost-response";
	case DISC_REASON_ARP_REQUEST:
		return "arp-request";
	case DISC_REASON_TRAFFIC:
		return "ip-traffic";
	case DISC_REASON_NONE:
		break;
	}
	return NULL;
}

static uint64_t port_key(uint32_t ip, uint16_t port)
{
	return (uint64_t)ip << 16 | port;
}

void disc_results_init(struct disc_results *r)
{
	memset(r, 0, sizeof(*r));
	disc_seen_init(&r->host_index);
	disc_seen_init(&r->answered);
}

void disc_results_release(struct disc_results *r)
{
	free(r->hosts);
	free(r->open);
	free(r->held);
	disc_seen_release(&r->host_index);
	disc_seen_release(&r->answered);
	disc_results_init(r);
}

/* Makes room for one more element; the caps keep indices within uint32_t. */
static bool reserve(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return true;
	if (n >= DISC_SEEN_MAX)
		return false;
	ncap = *cap ? *cap * 2 : 64;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

static void stamp(const struct disc_results *r, struct timespec *t)
{
	if (r->now)
		*t = *r->now;
	else
		clock_gettime(CLOCK_REALTIME, t);
}

enum disc_status disc_results_host(struct disc_results *r, uint32_t ip, enum disc_reason reason,
				   int ttl, const uint8_t *mac, bool *is_new,
				   struct disc_error *err)
{
	struct disc_result_host *h;
	uint32_t idx;
	bool inserted;
	enum disc_status st;

	if (is_new)
		*is_new = false;
	if (disc_seen_get(&r->host_index, ip, &idx)) {
		h = &r->hosts[idx];
		if (mac && !h->has_mac) {
			memcpy(h->mac, mac, 6);
			h->has_mac = true;
		}
		if (h->ttl < 0 && ttl >= 0)
			h->ttl = ttl;
		return DISC_OK;
	}
	/* Room in the array first, so a failed insert leaves both tables consistent. */
	if (!reserve((void **)&r->hosts, &r->cap_hosts, r->n_hosts, sizeof(*r->hosts)))
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for host results");
	st = disc_seen_insert(&r->host_index, ip, (uint32_t)r->n_hosts, &inserted, NULL, err);
	if (st != DISC_OK)
		return st;
	h = &r->hosts[r->n_hosts++];
	memset(h, 0, sizeof(*h));
	h->ip = ip;
	stamp(r, &h->seen);
	h->ttl = ttl;
	h->reason = reason;
	h->os_hint = -1;
	/* a port list this short cannot make a SYN proxy */
	h->no_proxy = r->proxy_ports > 0 && r->proxy_ports < DISC_SYN_PROXY_MIN_PORTS;
	if (mac) {
		memcpy(h->mac, mac, 6);
		h->has_mac = true;
	}
	if (is_new)
		*is_new = true;
	return DISC_OK;
}

/*
 * Proves h no SYN proxy once more closed ports answered than a proxy could
 * leave closed: at most (100 - PERCENT)% of the ports probed.
 */
static void check_closed(struct disc_results *r, struct disc_result_host *h)
{
	if (h->no_proxy || r->proxy_ports == 0 ||
	    (uint64_t)h->closed * 100 <= r->proxy_ports * (100 - DISC_SYN_PROXY_PERCENT))
		return;
	h->no_proxy = true;
	r->released = true;
}

enum disc_status disc_results_port(struct disc_results *r, uint32_t ip, uint16_t port, bool open,
				   enum disc_reason reason, int ttl, bool *is_new,
				   struct disc_error *err)
{
	uint32_t idx;
	bool inserted;
	enum disc_status st;

	if (is_new)
		*is_new = false;
	if (disc_seen_get(&r->answered, port_key(ip, port), NULL))
		return DISC_OK;
	if (open && !reserve((void **)&r->open, &r->cap_open, r->n_open, sizeof(*r->open)))
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for port results");
	st = disc_results_host(r, ip, reason, ttl, NULL, NULL, err);
	if (st != DISC_OK)
		return st;
	st = disc_seen_insert(&r->answered, port_key(ip, port), 0, &inserted, NULL, err);
	if (st != DISC_OK)
		return st;
	disc_seen_get(&r->host_index, ip, &idx);
	if (open) {
		r->open[r->n_open].ip = ip;
		r->open[r->n_open].port = port;
		r->open[r->n_open].reason = reason;
		stamp(r, &r->open[r->n_open].seen);
		r->open[r->n_open].written = false;
		r->n_open++;
		r->hosts[idx].open++;
	} else {
		r->hosts[idx].closed++;
		check_closed(r, &r->hosts[idx]);
	}
	if (is_new)
		*is_new = true;
	return DISC_OK;
}

void disc_results_os_fp(struct disc_results *r, uint32_t ip, const struct disc_os_fp *fp)
{
	uint32_t idx;

	if (disc_seen_get(&r->host_index, ip, &idx) && !r->hosts[idx].has_fp) {
		r->hosts[idx].fp = *fp;
		r->hosts[idx].has_fp = true;
	}
}

void disc_results_os_hint(struct disc_results *r, uint32_t ip, int hint)
{
	uint32_t idx;

	if (hint >= 0 && disc_seen_get(&r->host_index, ip, &idx) && r->hosts[idx].os_hint < 0)
		r->hosts[idx].os_hint = hint;
}

bool disc_results_answered(const struct disc_results *r, uint32_t ip, uint16_t port)
{
	return disc_seen_get(&r->answered, port_key(ip, port), NULL);
}

const struct disc_result_host *disc_results_find(const struct disc_results *r, uint32_t ip)
{
	uint32_t idx;

	return disc_seen_get(&r->host_index, ip, &idx) ? &r->hosts[idx] : NULL;
}

bool disc_results_is_syn_proxy(uint32_t open, uint64_t probed)
{
	return probed >= DISC_SYN_PROXY_MIN_PORTS &&
	       (uint64_t)open * 100 >= probed * DISC_SYN_PROXY_PERCENT;
}

bool disc_results_host_is_proxy(const struct disc_result_host *h, uint64_t probed)
{
	return !h->no_proxy && !h->ports_written && disc_results_is_syn_proxy(h->open, probed);
}

void disc_results_closed(struct disc_results *r, uint32_t ip, uint32_t closed)
{
	uint32_t idx;

	if (!disc_seen_get(&r->host_index, ip, &idx))
		return;
	if (r->hosts[idx].closed < closed)
		r->hosts[idx].closed = closed;
	check_closed(r, &r->hosts[idx]);
}

void disc_results_ready(struct disc_results *r)
{
	r->ready_hosts = r->n_hosts;
}

void disc_results_settle(struct disc_results *r, uint64_t probed)
{
	for (size_t i = 0; i < r->n_hosts; i++) {
		struct disc_result_host *h = &r->hosts[i];

		if (!h->no_proxy && !disc_results_host_is_proxy(h, probed)) {
			h->no_proxy = true;
			r->released = true;
		}
	}
	disc_results_ready(r);
}

void disc_results_take_release(struct disc_results_take *t)
{
	free(t->hosts);
	free(t->ports);
	memset(t, 0, sizeof(*t));
}

static bool grow(void **arr, size_t *cap, size_t want, size_t elem)
{
	size_t ncap = *cap ? *cap : 64;
	void *p;

	if (want <= *cap)
		return true;
	while (ncap < want)
		ncap *= 2;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

/* Whether the open port p may be written: its host's line is out and the host is no proxy. */
static bool port_due(const struct disc_results *r, const struct disc_result_port *p)
{
	uint32_t idx;

	return disc_seen_get(&r->host_index, p->ip, &idx) && r->hosts[idx].written &&
	       r->hosts[idx].no_proxy;
}

static void take_port(struct disc_results *r, struct disc_results_take *t, size_t i)
{
	uint32_t idx;

	r->open[i].written = true;
	t->ports[t->n_ports++] = r->open[i];
	if (disc_seen_get(&r->host_index, r->open[i].ip, &idx))
		r->hosts[idx].ports_written = true;
}

enum disc_status disc_results_take(struct disc_results *r, struct disc_results_take *t,
				   struct disc_error *err)
{
	size_t ready = r->hold_hosts ? r->ready_hosts : r->n_hosts;
	size_t new_ports = r->n_open - r->taken_ports, kept = 0;
	bool sweep;

	t->n_hosts = 0;
	t->n_ports = 0;
	if (ready > r->n_hosts)
		ready = r->n_hosts;
	/* Room for the worst case first: after this nothing can fail half-way. */
	if (!grow((void **)&t->hosts, &t->cap_hosts, ready - r->taken_hosts, sizeof(*t->hosts)) ||
	    !grow((void **)&t->ports, &t->cap_ports, r->n_held + new_ports, sizeof(*t->ports)) ||
	    !grow((void **)&r->held, &r->cap_held, r->n_held + new_ports, sizeof(*r->held)))
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory writing results");
	sweep = r->released || ready > r->taken_hosts;
	for (; r->taken_hosts < ready; r->taken_hosts++) {
		struct disc_result_host *h = &r->hosts[r->taken_hosts];

		h->written = true;
		h->written_mac = h->has_mac;
		h->written_ttl = h->ttl;
		t->hosts[t->n_hosts++] = *h;
	}
	/* Ports held back before: their host may be out, or proven no proxy, by now. */
	if (sweep) {
		for (size_t i = 0; i < r->n_held; i++) {
			if (port_due(r, &r->open[r->held[i]]))
				take_port(r, t, r->held[i]);
			else
				r->held[kept++] = r->held[i];
		}
		r->n_held = kept;
	}
	r->released = false;
	for (; r->taken_ports < r->n_open; r->taken_ports++) {
		if (port_due(r, &r->open[r->taken_ports]))
			take_port(r, t, r->taken_ports);
		else
			r->held[r->n_held++] = (uint32_t)r->taken_ports;
	}
	return DISC_OK;
}

static int cmp_host(const void *a, const void *b)
{
	uint32_t x = ((const struct disc_result_host *)a)->ip;
	uint32_t y = ((const struct disc_result_host *)b)->ip;

	return x < y ? -1 : x > y;
}

static int cmp_port(const void *a, const void *b)
{
	const struct disc_result_port *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

/* The host line of h, stamped at; NULL when memory ran out. */
static json_t *host_line(struct disc_obs_writer *w, const struct disc_result_host *h,
			 const struct disc_results_emit_opts *o, bool proxy,
			 const struct timespec *at)
{
	struct disc_vendor_match vm = {0};
	struct disc_os_guess os;
	char fp[96];
	struct disc_obs_host oh = {
		.ip = h->ip,
		.ttl = h->ttl,
		.reason = disc_reason_str(h->reason),
		.os_confidence = -1,
	};
	json_t *obj;

	if (h->has_mac) {
		oh.mac = h->mac;
		if (o->vendors)
			disc_vendor_lookup(o->vendors, h->mac, &vm);
		else
			vm.local = (h->mac[0] & 0x02) != 0;
		oh.vendor = vm.name;
		oh.mac_local = vm.local;
	}
	if (o->targets)
		oh.hostname = disc_targets_hostname(o->targets, h->ip);
	if (o->os && disc_os_guess(o->os, h->has_fp ? &h->fp : NULL, h->os_hint, &os)) {
		oh.os_family = os.family;
		oh.os_guess = os.guess[0] ? os.guess : NULL;
		oh.os_confidence = os.confidence;
	}
	obj = disc_obs_host_json(w, &oh, at);
	/* The SYN-ACK in the signature file's syntax: an unknown stack becomes a line there. */
	if (obj && o->os && h->has_fp &&
	    json_object_set_new(obj, "tcp_fingerprint",
				json_string(disc_os_fp_str(&h->fp, fp, sizeof(fp)))) != 0) {
		json_decref(obj);
		obj = NULL;
	}
	if (obj && proxy &&
	    (json_object_set_new(obj, "syn_proxy", json_true()) != 0 ||
	     json_object_set_new(obj, "open_ports_suppressed", json_integer(h->open)) != 0)) {
		json_decref(obj);
		obj = NULL;
	}
	return obj;
}

static enum disc_status emit_port(struct disc_obs_writer *w, const struct disc_result_port *p,
				  const struct disc_results_emit_opts *o, struct disc_error *err)
{
	struct disc_obs_port op = {
		.ip = p->ip,
		.proto = o->proto ? o->proto : "tcp",
		.port = p->port,
		.state = "open",
		.reason = disc_reason_str(p->reason),
	};

	return disc_obs_emit(w, disc_obs_port_json(w, &op, &p->seen), err);
}

enum disc_status disc_results_take_write(const struct disc_results_take *t,
					 struct disc_obs_writer *w,
					 const struct disc_results_emit_opts *opts,
					 struct disc_error *err)
{
	/* No OS guess yet: the fingerprint may not have come, the banners have not. */
	struct disc_results_emit_opts o = *opts;
	enum disc_status st = DISC_OK;

	o.os = NULL;
	for (size_t i = 0; i < t->n_hosts && st == DISC_OK; i++)
		st = disc_obs_emit(w, host_line(w, &t->hosts[i], &o, false, &t->hosts[i].seen),
				   err);
	for (size_t i = 0; i < t->n_ports && st == DISC_OK; i++)
		st = emit_port(w, &t->ports[i], &o, err);
	return st;
}

/*
 * The final host line of h, or NULL in *out when the line written while the
 * scan ran says it all already. A repeated line is stamped now, and at least
 * a millisecond after the first: readers take the latest line of a host.
 */
static enum disc_status final_host_line(struct disc_obs_writer *w, const struct disc_result_host *h,
					const struct disc_results_emit_opts *o, bool proxy,
					json_t **out, struct disc_error *err)
{
	struct timespec at = h->seen;
	json_t *obj;

	*out = NULL;
	if (h->written) {
		struct timespec later = h->seen;

		clock_gettime(CLOCK_REALTIME, &at);
		later.tv_nsec += 1000000;
		if (later.tv_nsec >= 1000000000) {
			later.tv_sec++;
			later.tv_nsec -= 1000000000;
		}
		if (at.tv_sec < later.tv_sec ||
		    (at.tv_sec == later.tv_sec && at.tv_nsec < later.tv_nsec))
			at = later;
	}
	obj = host_line(w, h, o, proxy, &at);
	if (!obj)
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory writing results");
	if (h->written && !proxy && h->ttl == h->written_ttl && h->has_mac == h->written_mac &&
	    !json_object_get(obj, "os") && !json_object_get(obj, "tcp_fingerprint")) {
		json_decref(obj);
		return DISC_OK;
	}
	*out = obj;
	return DISC_OK;
}

enum disc_status disc_results_emit(const struct disc_results *r, struct disc_obs_writer *w,
				   const struct disc_results_emit_opts *opts, size_t *n_hosts,
				   size_t *n_ports, size_t *n_proxies, struct disc_error *err)
{
	struct disc_result_host *hosts = NULL;
	struct disc_result_port *ports = NULL;
	size_t hosts_out = 0, ports_out = 0, proxies = 0, pi = 0;
	enum disc_status st = DISC_OK;

	/* Sort copies: the tables stay valid for later lookups. */
	if (r->n_hosts) {
		hosts = malloc(r->n_hosts * sizeof(*hosts));
		if (!hosts) {
			st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory sorting results");
			goto out;
		}
		memcpy(hosts, r->hosts, r->n_hosts * sizeof(*hosts));
		qsort(hosts, r->n_hosts, sizeof(*hosts), cmp_host);
	}
	if (r->n_open) {
		ports = malloc(r->n_open * sizeof(*ports));
		if (!ports) {
			st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory sorting results");
			goto out;
		}
		memcpy(ports, r->open, r->n_open * sizeof(*ports));
		qsort(ports, r->n_open, sizeof(*ports), cmp_port);
	}
	for (size_t i = 0; i < r->n_hosts; i++) {
		const struct disc_result_host *h = &hosts[i];
		bool proxy = disc_results_host_is_proxy(h, opts->ports_probed);
		json_t *line;

		st = final_host_line(w, h, opts, proxy, &line, err);
		if (st == DISC_OK && line)
			st = disc_obs_emit(w, line, err);
		if (st != DISC_OK)
			goto out;
		hosts_out++;
		proxies += proxy;
		while (pi < r->n_open && ports[pi].ip < h->ip)
			pi++;
		for (; pi < r->n_open && ports[pi].ip == h->ip; pi++) {
			if (proxy)
				continue;
			if (!ports[pi].written) {
				st = emit_port(w, &ports[pi], opts, err);
				if (st != DISC_OK)
					goto out;
			}
			ports_out++;
		}
	}
out:
	free(hosts);
	free(ports);
	if (n_hosts)
		*n_hosts = hosts_out;
	if (n_ports)
		*n_ports = ports_out;
	if (n_proxies)
		*n_proxies = proxies;
	return st;
}
