/*
 * disc_svc: service detection engine (see disc/svc.h for the method).
 *
 * One thread, one epoll set. An endpoint (ip, proto, port) owns attempts:
 * connections, each carrying one probe. Attempts move through
 * CONNECTING -> (HANDSHAKE) -> SENDING -> READING -> finished, each step
 * with its own deadline; every finished attempt is judged at once, and the
 * endpoint ends when its best answer is known. Endpoints are admitted only
 * while a whole wave of their probes fits under max_conns, so a wave is
 * never split.
 *
 * Ranks: the NULL probe is rank 0, the plan's probes 1..n in plan order. A
 * match at rank r is taken when no attempt ranked below r is still running:
 * the most likely probe for the port wins over a weaker one that happened to
 * answer first (a plain HTTP request to an HTTPS port answers "400" faster
 * than the TLS handshake completes).
 */
#include "disc/svc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "disc/os.h"
#include "disc/ports.h"
#include "disc_scan_impl.h"

#define TICK_MS	       50
#define EPOLL_EVENTS   128
#define MAX_PLAN       32
#define GRACE_MS       30  /* after a match: late segments of the same answer */
#define IDLE_MS	       250 /* after data that does not match yet */
#define MIN_FREE_FDS   64

enum astate { A_FREE, A_CONNECTING, A_HANDSHAKE, A_SENDING, A_READING };

struct endpoint;

struct attempt {
	enum astate state;
	uint32_t gen; /* bumped on every reuse: tells stale epoll events apart */
	int fd;
	SSL *ssl;
	struct endpoint *ep;
	size_t probe; /* database index; 0 = NULL */
	int rank;
	bool tls;		/* over TLS */
	uint32_t events;	/* registered with epoll */
	size_t sent;
	uint8_t *buf;
	size_t len;
	uint64_t deadline, probe_deadline;
	bool matched;
};

enum rstate { R_IDLE, R_RUNNING, R_NOMATCH, R_MATCH };

struct endpoint {
	struct disc_svc_result *res;
	bool active, done, in_tls, wave_started;
	size_t plan[MAX_PLAN];
	size_t n_plan;
	enum rstate rank_state[MAX_PLAN + 1];
	struct disc_svc_match rank_match[MAX_PLAN + 1];
	uint8_t *rank_data[MAX_PLAN + 1]; /* first answer per rank, for an unknown service */
	size_t rank_len[MAX_PLAN + 1];
	unsigned running; /* attempts in flight */
	uint64_t deadline;
};

struct engine {
	const struct disc_svc_config *cfg;
	const struct disc_svcdb *db;
	struct disc_svc_results *out;
	struct endpoint *eps;
	size_t n_eps, next_ep, n_done, n_named, n_active;
	struct attempt *att; /* pool of max_conns */
	size_t n_att, in_use;
	size_t wave; /* attempts an endpoint may need at once */
	int epfd;
	SSL_CTX *ctx;
	unsigned max_probes;
	uint64_t connect_ns, endpoint_ns, null_ns, next_progress;
	uint64_t t0;
	bool nomem;
	bool cb_failed; /* on_result returned an error, kept in cb_err */
	struct disc_error cb_err;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t ms(unsigned v)
{
	return (uint64_t)v * 1000000ull;
}

/* ------------------------------------------------------------------ */
/* TLS certificate                                                    */

static char *name_string(const X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *text = NULL, *out = NULL;
	long n;

	if (!bio)
		return NULL;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_get_mem_data(bio, &text);
		if (n >= 0 && (out = malloc((size_t)n + 1)))
			disc_svc_clean_text((const uint8_t *)text, (size_t)n, out, (size_t)n + 1);
	}
	BIO_free(bio);
	return out;
}

static void time_string(const ASN1_TIME *t, char out[32])
{
	struct tm tm;

	out[0] = '\0';
	if (t && ASN1_TIME_to_tm(t, &tm) == 1)
		strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void add_san(struct disc_svc_result *r, const char *prefix, const uint8_t *v, size_t len)
{
	char text[DISC_SVC_FIELD_MAX], *s;
	char **grown;
	size_t pl = strlen(prefix);

	if (r->n_sans >= DISC_SVC_MAX_SANS || pl >= sizeof(text))
		return;
	memcpy(text, prefix, pl);
	disc_svc_clean_text(v, len, text + pl, sizeof(text) - pl);
	s = strdup(text);
	grown = s ? realloc(r->sans, (r->n_sans + 1) * sizeof(*grown)) : NULL;
	if (!grown) {
		free(s);
		return;
	}
	r->sans = grown;
	r->sans[r->n_sans++] = s;
}

static void record_cert(struct disc_svc_result *r, SSL *ssl)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	GENERAL_NAMES *gens;

	r->tls = true;
	if (!cert)
		return;
	r->subject = name_string(X509_get_subject_name(cert));
	r->issuer = name_string(X509_get_issuer_name(cert));
	time_string(X509_get0_notBefore(cert), r->not_before);
	time_string(X509_get0_notAfter(cert), r->not_after);
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s = NULL;
		const char *prefix = NULL;

		switch (g->type) {
		case GEN_DNS: s = g->d.dNSName, prefix = "dns:"; break;
		case GEN_EMAIL: s = g->d.rfc822Name, prefix = "email:"; break;
		case GEN_URI: s = g->d.uniformResourceIdentifier, prefix = "uri:"; break;
		case GEN_IPADD: {
			char ip[INET6_ADDRSTRLEN] = "";
			int len = ASN1_STRING_length(g->d.iPAddress);
			const uint8_t *b = ASN1_STRING_get0_data(g->d.iPAddress);

			if (len == 4)
				inet_ntop(AF_INET, b, ip, sizeof(ip));
			else if (len == 16)
				inet_ntop(AF_INET6, b, ip, sizeof(ip));
			if (ip[0])
				add_san(r, "ip:", (const uint8_t *)ip, strlen(ip));
			break;
		}
		default: break;
		}
		if (s && prefix)
			add_san(r, prefix, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
	}
	GENERAL_NAMES_free(gens);
	X509_free(cert);
}

/* ------------------------------------------------------------------ */
/* Attempts                                                           */

static void set_events(struct engine *e, struct attempt *a, uint32_t ev)
{
	struct epoll_event pe = {
		.events = ev,
		.data.u64 = (uint64_t)a->gen << 32 | (uint64_t)(a - e->att),
	};

	if (a->events == ev)
		return;
	if (epoll_ctl(e->epfd, a->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, a->fd, &pe) == 0)
		a->events = ev;
}

static void close_attempt(struct engine *e, struct attempt *a)
{
	if (a->ssl)
		SSL_free(a->ssl);
	if (a->fd >= 0) {
		const struct linger lg = {.l_onoff = 1, .l_linger = 0};

		/* A reset: the service sees the end at once, and we keep no TIME_WAIT. */
		if (a->ep->res->t.proto == DISC_PROTO_TCP)
			(void)setsockopt(a->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(a->fd);
	}
	free(a->buf);
	{
		uint32_t gen = a->gen + 1;

		memset(a, 0, sizeof(*a));
		a->gen = gen;
	}
	a->fd = -1;
	a->state = A_FREE;
	e->in_use--;
}

static struct attempt *new_attempt(struct engine *e)
{
	for (size_t i = 0; i < e->n_att; i++)
		if (e->att[i].state == A_FREE) {
			e->in_use++;
			return &e->att[i];
		}
	return NULL;
}

static void judge(struct engine *e, struct endpoint *ep);

/* Opens a connection for probe at rank; false when it could not even start. */
static bool launch(struct engine *e, struct endpoint *ep, size_t probe, int rank)
{
	const struct disc_svc_probe *p = disc_svcdb_probe(e->db, probe);
	struct attempt *a = new_attempt(e);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	bool udp = p->proto == DISC_PROTO_UDP;
	uint64_t now = now_ns();

	if (!a)
		return false;
	a->ep = ep;
	a->fd = -1;
	a->probe = probe;
	a->rank = rank;
	a->tls = ep->in_tls || p->handshake;
	ep->rank_state[rank] = R_RUNNING;
	ep->running++;
	a->buf = malloc(DISC_SVC_RESPONSE_MAX);
	a->fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!a->buf || a->fd < 0) {
		e->nomem |= !a->buf;
		goto fail;
	}
	sa.sin_addr.s_addr = htonl(ep->res->t.ip);
	sa.sin_port = htons(ep->res->t.port);
	e->out->connections++;
	if (connect(a->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS)
		goto fail;
	a->state = A_CONNECTING;
	a->deadline = now + e->connect_ns;
	set_events(e, a, EPOLLOUT);
	if (!a->events)
		goto fail;
	return true;
fail:
	a->state = A_CONNECTING; /* so that finish() counts it */
	ep->running--;
	ep->rank_state[rank] = R_NOMATCH;
	close_attempt(e, a);
	return false;
}

/* Starts the probes of the plan after rank 0 (the NULL probe) is over. */
static void start_wave(struct engine *e, struct endpoint *ep)
{
	ep->wave_started = true;
	for (size_t i = 0; i < ep->n_plan; i++)
		launch(e, ep, ep->plan[i], (int)i + 1);
}

static void make_plan(struct engine *e, struct endpoint *ep)
{
	size_t max = e->max_probes < MAX_PLAN ? e->max_probes : MAX_PLAN;

	ep->n_plan = disc_svcdb_plan(e->db, ep->res->t.proto, ep->res->t.port, ep->in_tls, ep->plan,
				     max);
	for (size_t i = 0; i <= MAX_PLAN; i++) {
		disc_svc_match_release(&ep->rank_match[i]);
		ep->rank_state[i] = R_IDLE;
	}
	ep->wave_started = false;
}

/* The answer of attempt a is in; what does it say? */
static void finish(struct engine *e, struct attempt *a)
{
	struct endpoint *ep = a->ep;
	int rank = a->rank;
	struct disc_svc_match m;
	struct disc_error err = {0};

	if (a->len > 0) {
		if (a->probe == 0 && !ep->res->banner) {
			ep->res->banner = malloc(a->len);
			if (ep->res->banner) {
				memcpy(ep->res->banner, a->buf, a->len);
				ep->res->banner_len = a->len;
			}
		} else if (!ep->rank_data[rank]) {
			ep->rank_data[rank] = malloc(a->len);
			if (ep->rank_data[rank]) {
				memcpy(ep->rank_data[rank], a->buf, a->len);
				ep->rank_len[rank] = a->len;
			}
		}
		if (ep->res->t.proto == DISC_PROTO_UDP)
			ep->res->reached = true;
	}
	if (disc_svcdb_match(e->db, a->probe, a->buf, a->len, &m, &err) != DISC_OK)
		e->nomem = true;
	if (m.service[0]) {
		disc_svc_match_release(&ep->rank_match[rank]);
		ep->rank_match[rank] = m;
		ep->rank_state[rank] = R_MATCH;
	} else {
		disc_svc_match_release(&m);
		ep->rank_state[rank] = R_NOMATCH;
	}
	ep->running--;
	close_attempt(e, a);
	judge(e, ep);
}

static void try_handshake(struct engine *e, struct attempt *a);
static void try_send(struct engine *e, struct attempt *a);
static void try_read(struct engine *e, struct attempt *a);

static void start_probe_io(struct engine *e, struct attempt *a)
{
	const struct disc_svc_probe *p = disc_svcdb_probe(e->db, a->probe);
	uint64_t now = now_ns();

	if (p->payload) {
		a->state = A_SENDING;
		a->deadline = now + ms(p->wait_ms);
		try_send(e, a);
		return;
	}
	a->state = A_READING;
	a->probe_deadline = now + (a->probe == 0 ? e->null_ns : ms(p->wait_ms));
	a->deadline = a->probe_deadline;
	set_events(e, a, EPOLLIN);
	/* Over TLS the greeting may already sit in OpenSSL's buffer. */
	if (a->ssl && SSL_pending(a->ssl) > 0)
		try_read(e, a);
}

/* A TLS handshake of the TLS probe completed: the endpoint is TLS from now on. */
static void become_tls(struct engine *e, struct attempt *a)
{
	struct endpoint *ep = a->ep;

	record_cert(ep->res, a->ssl);
	/* Plain attempts still running say nothing about what runs inside TLS. */
	for (size_t i = 0; i < e->n_att; i++) {
		struct attempt *o = &e->att[i];

		if (o->state != A_FREE && o->ep == ep && o != a) {
			ep->running--;
			close_attempt(e, o);
		}
	}
	ep->in_tls = true;
	make_plan(e, ep);
	/* This session becomes the NULL probe inside TLS. */
	a->probe = 0;
	a->rank = 0;
	ep->rank_state[0] = R_RUNNING;
	start_probe_io(e, a);
}

static void try_handshake(struct engine *e, struct attempt *a)
{
	int rc = SSL_do_handshake(a->ssl);

	if (rc == 1) {
		if (disc_svcdb_probe(e->db, a->probe)->handshake && !a->ep->in_tls)
			become_tls(e, a);
		else
			start_probe_io(e, a);
		return;
	}
	switch (SSL_get_error(a->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		set_events(e, a, EPOLLIN);
		break;
	case SSL_ERROR_WANT_WRITE:
		set_events(e, a, EPOLLOUT);
		break;
	default:
		ERR_clear_error();
		a->len = 0; /* not TLS, or a TLS we cannot speak */
		finish(e, a);
	}
}

static void connected(struct engine *e, struct attempt *a)
{
	int soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
		finish(e, a);
		return;
	}
	a->ep->res->reached |= a->ep->res->t.proto == DISC_PROTO_TCP;
	if (a->tls) {
		const struct disc_svc_probe *p = disc_svcdb_probe(e->db, a->probe);

		a->ssl = SSL_new(e->ctx);
		if (!a->ssl || SSL_set_fd(a->ssl, a->fd) != 1) {
			e->nomem = true;
			finish(e, a);
			return;
		}
		SSL_set_connect_state(a->ssl);
		a->state = A_HANDSHAKE;
		a->deadline = now_ns() + ms(p->handshake ? p->wait_ms : 1500);
		try_handshake(e, a);
		return;
	}
	start_probe_io(e, a);
}

static void try_send(struct engine *e, struct attempt *a)
{
	const struct disc_svc_probe *p = disc_svcdb_probe(e->db, a->probe);

	while (a->sent < p->payload_len) {
		size_t left = p->payload_len - a->sent;
		ssize_t n;

		if (a->ssl) {
			int rc = SSL_write(a->ssl, p->payload + a->sent, (int)left);

			if (rc <= 0) {
				int er = SSL_get_error(a->ssl, rc);

				ERR_clear_error();
				if (er == SSL_ERROR_WANT_WRITE || er == SSL_ERROR_WANT_READ) {
					set_events(e, a, er == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
					return;
				}
				finish(e, a);
				return;
			}
			n = rc;
		} else {
			n = send(a->fd, p->payload + a->sent, left, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					set_events(e, a, EPOLLOUT);
					return;
				}
				finish(e, a);
				return;
			}
		}
		a->sent += (size_t)n;
	}
	a->state = A_READING;
	a->probe_deadline = now_ns() + ms(p->wait_ms);
	a->deadline = a->probe_deadline;
	set_events(e, a, EPOLLIN);
}

static bool partial_match(struct engine *e, struct attempt *a)
{
	struct disc_svc_match m;
	bool hit;

	if (disc_svcdb_match(e->db, a->probe, a->buf, a->len, &m, NULL) != DISC_OK)
		e->nomem = true;
	hit = m.service[0] != '\0';
	disc_svc_match_release(&m);
	return hit;
}

static void try_read(struct engine *e, struct attempt *a)
{
	bool got = false, eof = false;

	while (a->len < DISC_SVC_RESPONSE_MAX) {
		size_t room = DISC_SVC_RESPONSE_MAX - a->len;
		ssize_t n;

		if (a->ssl) {
			int rc = SSL_read(a->ssl, a->buf + a->len, (int)room);

			if (rc <= 0) {
				int er = SSL_get_error(a->ssl, rc);

				ERR_clear_error();
				if (er == SSL_ERROR_WANT_READ) {
					set_events(e, a, EPOLLIN);
					break;
				}
				if (er == SSL_ERROR_WANT_WRITE) {
					set_events(e, a, EPOLLOUT);
					break;
				}
				eof = true;
				break;
			}
			n = rc;
		} else {
			n = recv(a->fd, a->buf + a->len, room, 0);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n <= 0) {
				eof = true;
				break;
			}
		}
		a->len += (size_t)n;
		got = true;
		if (a->ep->res->t.proto == DISC_PROTO_UDP)
			break; /* one datagram is the answer */
	}
	if (eof || a->len >= DISC_SVC_RESPONSE_MAX ||
	    (got && a->ep->res->t.proto == DISC_PROTO_UDP)) {
		finish(e, a);
		return;
	}
	if (got) {
		/* Wait briefly for the rest of the answer; longer while it does not match yet. */
		uint64_t t = now_ns() + ms(partial_match(e, a) ? GRACE_MS : IDLE_MS);

		a->deadline = t < a->probe_deadline ? t : a->probe_deadline;
	}
}

static void on_event(struct engine *e, struct attempt *a, uint32_t ev)
{
	switch (a->state) {
	case A_CONNECTING:
		connected(e, a);
		break;
	case A_HANDSHAKE:
		try_handshake(e, a);
		break;
	case A_SENDING:
		try_send(e, a);
		break;
	case A_READING:
		if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP) || a->ssl)
			try_read(e, a);
		break;
	case A_FREE:
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Endpoints                                                          */

static void end_endpoint(struct engine *e, struct endpoint *ep, int best)
{
	struct disc_svc_result *r = ep->res;

	for (size_t i = 0; i < e->n_att; i++) {
		struct attempt *o = &e->att[i];

		if (o->state != A_FREE && o->ep == ep) {
			ep->running--;
			close_attempt(e, o);
		}
	}
	if (best >= 0) {
		r->m = ep->rank_match[best];
		memset(&ep->rank_match[best], 0, sizeof(ep->rank_match[best]));
		e->n_named++;
	}
	if (!r->banner) {
		/* Nothing spoke first: keep the first answer of an unnamed service. */
		for (size_t i = 1; best < 0 && i <= MAX_PLAN; i++)
			if (ep->rank_data[i]) {
				r->banner = ep->rank_data[i];
				r->banner_len = ep->rank_len[i];
				ep->rank_data[i] = NULL;
				break;
			}
	}
	for (size_t i = 0; i <= MAX_PLAN; i++) {
		disc_svc_match_release(&ep->rank_match[i]);
		free(ep->rank_data[i]);
		ep->rank_data[i] = NULL;
	}
	clock_gettime(CLOCK_REALTIME, &r->at);
	r->finished = true;
	ep->active = false;
	ep->done = true;
	e->n_done++;
	e->n_active--;
	/* written as soon as it is known (cmdb discover streams its output) */
	if (r->reached && e->cfg->on_result && !e->cb_failed &&
	    e->cfg->on_result(e->cfg->result_ctx, r, &e->cb_err) != DISC_OK)
		e->cb_failed = true;
}

/* Ends the endpoint when its best answer is known, or starts the next step. */
static void judge(struct engine *e, struct endpoint *ep)
{
	bool udp = ep->res->t.proto == DISC_PROTO_UDP;
	size_t top = ep->wave_started ? ep->n_plan : 0;

	if (ep->done)
		return;
	/* A TCP port that no longer accepts: nothing to detect. */
	if (!udp && !ep->res->reached && ep->running == 0) {
		end_endpoint(e, ep, -1);
		return;
	}
	for (size_t r = 0; r <= top; r++) {
		if (ep->rank_state[r] == R_RUNNING)
			return; /* a more likely answer may still come */
		if (ep->rank_state[r] == R_MATCH) {
			end_endpoint(e, ep, (int)r);
			return;
		}
	}
	if (ep->running > 0)
		return;
	if (!ep->wave_started && ep->n_plan > 0) {
		start_wave(e, ep);
		if (ep->running > 0)
			return;
	}
	end_endpoint(e, ep, -1);
}

static void admit(struct engine *e, struct endpoint *ep)
{
	ep->active = true;
	e->n_active++;
	ep->deadline = now_ns() + e->endpoint_ns;
	make_plan(e, ep);
	if (ep->res->t.proto == DISC_PROTO_UDP) {
		ep->rank_state[0] = R_NOMATCH;
		start_wave(e, ep);
	} else {
		launch(e, ep, 0, 0);
	}
	judge(e, ep);
}

static void expire(struct engine *e, uint64_t now)
{
	for (size_t i = 0; i < e->n_att; i++) {
		struct attempt *a = &e->att[i];

		if (a->state != A_FREE && now >= a->deadline)
			finish(e, a);
	}
	for (size_t i = 0; i < e->n_eps; i++) {
		struct endpoint *ep = &e->eps[i];

		if (!ep->active || now < ep->deadline)
			continue;
		/* Out of time: the best answer so far, by rank. */
		int best = -1;

		for (int r = 0; r <= MAX_PLAN && best < 0; r++)
			if (ep->rank_state[r] == R_MATCH)
				best = r;
		end_endpoint(e, ep, best);
	}
}

static void report(struct engine *e, uint64_t now, bool force)
{
	struct disc_scan_stats st;

	if (!e->cfg->progress || !e->cfg->progress_ms || (!force && now < e->next_progress))
		return;
	e->next_progress = now + ms(e->cfg->progress_ms);
	memset(&st, 0, sizeof(st));
	st.phase = "services";
	st.sent = e->n_done;
	st.planned = e->n_eps;
	st.replies = e->n_named;
	st.open_ports = e->n_named;
	st.elapsed = (double)(now - e->t0) / 1e9;
	st.rate = st.elapsed > 0 ? (double)e->n_done / st.elapsed : 0;
	e->cfg->progress(e->cfg->progress_ctx, &st);
}

static unsigned conn_limit(unsigned want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 64;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want + MIN_FREE_FDS &&
	    rl.rlim_max > rl.rlim_cur) {
		struct rlimit nrl = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};

		if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)want + MIN_FREE_FDS)
			nrl.rlim_cur = (rlim_t)want + MIN_FREE_FDS;
		if (setrlimit(RLIMIT_NOFILE, &nrl) == 0)
			rl = nrl;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want + MIN_FREE_FDS)
		want = rl.rlim_cur > 2 * MIN_FREE_FDS ? (unsigned)(rl.rlim_cur - MIN_FREE_FDS) : MIN_FREE_FDS;
	return want;
}

static SSL_CTX *client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return NULL;
	/*
	 * We want to see what the server offers, not to trust it: no
	 * verification, every protocol version and cipher OpenSSL still has.
	 */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_min_proto_version(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_IGNORE_UNEXPECTED_EOF);
	return ctx;
}

enum disc_status disc_svc_detect(const struct disc_svc_config *cfg,
				 const struct disc_svc_target *targets, size_t n,
				 struct disc_svc_results *out, struct disc_error *err)
{
	struct engine e = {.cfg = cfg, .out = out, .epfd = -1};
	struct disc_svcdb *own_db = NULL;
	struct epoll_event evs[EPOLL_EVENTS];
	enum disc_status st = DISC_OK;
	unsigned conns;
	sigset_t pipe_set, old_set;
	const struct timespec zero = {0, 0};

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return DISC_OK;
	/*
	 * OpenSSL writes to its sockets with write(), so a peer that resets
	 * would raise SIGPIPE: blocked in this thread for the run, and any that
	 * came drained before the old mask is back.
	 */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	e.db = cfg->db;
	if (!e.db) {
		st = disc_svcdb_load_default(&own_db, err);
		if (st)
			goto out;
		e.db = own_db;
	}
	e.max_probes = cfg->max_probes ? cfg->max_probes : DISC_SVC_DEFAULT_PROBES;
	if (e.max_probes > MAX_PLAN)
		e.max_probes = MAX_PLAN;
	e.wave = e.max_probes + 1;
	conns = conn_limit(cfg->max_conns ? cfg->max_conns : DISC_SVC_DEFAULT_CONNS);
	if (conns < e.wave)
		conns = (unsigned)e.wave;
	e.n_att = conns;
	e.connect_ns = ms(cfg->connect_ms ? cfg->connect_ms : DISC_SVC_DEFAULT_CONNECT_MS);
	e.endpoint_ns = ms(cfg->endpoint_ms ? cfg->endpoint_ms : DISC_SVC_DEFAULT_ENDPOINT_MS);
	e.null_ns = ms(cfg->null_wait_ms ? cfg->null_wait_ms : disc_svcdb_probe(e.db, 0)->wait_ms);
	out->r = calloc(n, sizeof(*out->r));
	e.eps = calloc(n, sizeof(*e.eps));
	e.att = calloc(e.n_att, sizeof(*e.att));
	if (!out->r || !e.eps || !e.att) {
		st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory for service detection");
		goto out;
	}
	out->n = n;
	for (size_t i = 0; i < e.n_att; i++)
		e.att[i].fd = -1;
	for (size_t i = 0; i < n; i++) {
		out->r[i].t = targets[i];
		e.eps[i].res = &out->r[i];
	}
	e.n_eps = n;
	e.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e.epfd < 0) {
		st = disc_error_set(err, DISC_ERR_IO, "epoll_create1: %s", strerror(errno));
		goto out;
	}
	e.ctx = client_ctx();
	if (!e.ctx) {
		st = disc_error_set(err, DISC_ERR_IO, "cannot set up a TLS client (OpenSSL)");
		goto out;
	}
	e.t0 = now_ns();
	while (e.n_done < e.n_eps) {
		uint64_t now;
		int k;

		if (cfg->stop && *cfg->stop) {
			out->interrupted = true;
			break;
		}
		/* Admit endpoints while a whole wave of attempts still fits. */
		while (e.next_ep < e.n_eps && (e.n_active + 1) * e.wave <= e.n_att)
			admit(&e, &e.eps[e.next_ep++]);
		k = epoll_wait(e.epfd, evs, EPOLL_EVENTS, TICK_MS);
		if (k < 0 && errno != EINTR) {
			st = disc_error_set(err, DISC_ERR_IO, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < k; i++) {
			struct attempt *a = &e.att[evs[i].data.u64 & 0xffffffffu];

			/* An earlier event of this batch may have closed it, or even reused the slot. */
			if (a->state != A_FREE && a->gen == (uint32_t)(evs[i].data.u64 >> 32))
				on_event(&e, a, evs[i].events);
		}
		now = now_ns();
		expire(&e, now);
		report(&e, now, false);
		if (e.nomem) {
			st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory during service detection");
			break;
		}
		if (e.cb_failed) {
			st = e.cb_err.status != DISC_OK ? e.cb_err.status : DISC_ERR_IO;
			if (err)
				*err = e.cb_err;
			break;
		}
	}
	report(&e, now_ns(), true);
out:
	for (size_t i = 0; e.att && i < e.n_att; i++)
		if (e.att[i].state != A_FREE) {
			e.att[i].ep->running--;
			close_attempt(&e, &e.att[i]);
		}
	for (size_t i = 0; e.eps && i < e.n_eps; i++)
		for (size_t j = 0; j <= MAX_PLAN; j++) {
			disc_svc_match_release(&e.eps[i].rank_match[j]);
			free(e.eps[i].rank_data[j]);
		}
	free(e.eps);
	free(e.att);
	if (e.epfd >= 0)
		close(e.epfd);
	SSL_CTX_free(e.ctx);
	disc_svcdb_free(own_db);
	while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	if (st)
		disc_svc_results_release(out);
	return st;
}

void disc_svc_results_release(struct disc_svc_results *res)
{
	for (size_t i = 0; res->r && i < res->n; i++) {
		struct disc_svc_result *r = &res->r[i];

		disc_svc_match_release(&r->m);
		free(r->banner);
		free(r->subject);
		free(r->issuer);
		for (size_t j = 0; j < r->n_sans; j++)
			free(r->sans[j]);
		free(r->sans);
	}
	free(res->r);
	memset(res, 0, sizeof(*res));
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

static int cmp_result(const void *a, const void *b)
{
	const struct disc_svc_result *x = *(const struct disc_svc_result *const *)a;
	const struct disc_svc_result *y = *(const struct disc_svc_result *const *)b;

	if (x->t.ip != y->t.ip)
		return x->t.ip < y->t.ip ? -1 : 1;
	if (x->t.proto != y->t.proto)
		return x->t.proto < y->t.proto ? -1 : 1;
	return x->t.port < y->t.port ? -1 : x->t.port > y->t.port;
}

enum disc_status disc_svc_emit_one(const struct disc_svc_result *r, struct disc_obs_writer *w,
				   struct disc_error *err)
{
	const char *proto = r->t.proto == DISC_PROTO_UDP ? "udp" : "tcp";
	struct disc_obs_tls tls = {
		.subject = r->subject,
		.issuer = r->issuer,
		.not_before = r->not_before[0] ? r->not_before : NULL,
		.not_after = r->not_after[0] ? r->not_after : NULL,
		.sans = (const char *const *)r->sans,
		.n_sans = r->n_sans,
	};
	struct disc_obs_service s = {
		.ip = r->t.ip,
		.proto = proto,
		.port = r->t.port,
		.service = r->m.service[0] ? r->m.service : r->tls ? "tls" : "unknown",
		.product = r->m.product[0] ? r->m.product : NULL,
		.version = r->m.version[0] ? r->m.version : NULL,
		.extra = r->m.extra,
		.banner = r->banner,
		.banner_len = r->banner_len,
		.tls = r->tls ? &tls : NULL,
		.confidence = r->m.service[0] ? r->m.confidence : -1,
	};

	if (r->t.proto == DISC_PROTO_UDP) {
		struct disc_obs_port p = {
			.ip = r->t.ip,
			.proto = proto,
			.port = r->t.port,
			.state = "open",
			.reason = "udp-response",
		};
		enum disc_status st = disc_obs_emit(w, disc_obs_port_json(w, &p, &r->at), err);

		if (st)
			return st;
	}
	return disc_obs_emit(w, disc_obs_service_json(w, &s, &r->at), err);
}

enum disc_status disc_svc_emit(const struct disc_svc_results *res, struct disc_obs_writer *w,
			       size_t *n_lines, struct disc_error *err)
{
	const struct disc_svc_result **order = NULL;
	size_t n = 0, written = 0;
	enum disc_status st = DISC_OK;

	if (res->n) {
		order = malloc(res->n * sizeof(*order));
		if (!order)
			return disc_error_set(err, DISC_ERR_NOMEM, "out of memory sorting services");
	}
	for (size_t i = 0; i < res->n; i++)
		if (res->r[i].reached && res->r[i].finished)
			order[n++] = &res->r[i];
	if (n)
		qsort(order, n, sizeof(*order), cmp_result);
	for (size_t i = 0; i < n && st == DISC_OK; i++) {
		st = disc_svc_emit_one(order[i], w, err);
		written += st == DISC_OK;
	}
	free(order);
	if (n_lines)
		*n_lines = written;
	return st;
}

enum disc_status disc_svc_scan_detect(struct disc_scan *scan, const struct disc_svc_config *cfg,
				      const uint16_t *udp_ports, size_t n_udp, struct disc_svc_results *res,
				      struct disc_error *err)
{
	struct disc_svc_target *t = NULL;
	size_t n = 0, cap;
	enum disc_status st;
	struct disc_results *found = &scan->results;

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&scan->lock);
	cap = found->n_open + found->n_hosts * n_udp;
	t = cap ? calloc(cap, sizeof(*t)) : NULL;
	if (cap && !t) {
		pthread_mutex_unlock(&scan->lock);
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for service detection");
	}
	for (size_t i = 0; i < found->n_open; i++) {
		const struct disc_result_port *p = &found->open[i];
		const struct disc_result_host *h = disc_results_find(found, p->ip);

		/* A SYN proxy's ports were not reported; they are not services either. */
		if (h && disc_results_host_is_proxy(h, scan->ports_probed))
			continue;
		t[n++] = (struct disc_svc_target){.ip = p->ip, .port = p->port, .proto = DISC_PROTO_TCP};
	}
	for (size_t i = 0; i < found->n_hosts; i++)
		for (size_t j = 0; j < n_udp; j++)
			t[n++] = (struct disc_svc_target){
				.ip = found->hosts[i].ip, .port = udp_ports[j], .proto = DISC_PROTO_UDP};
	pthread_mutex_unlock(&scan->lock);
	st = disc_svc_detect(cfg, t, n, res, err);
	free(t);
	if (st)
		return st;
	/* --os: what the services said first hints at the platform ("Debian"
	 * in an SSH banner), for the host lines written after this */
	if (scan->cfg.os) {
		pthread_mutex_lock(&scan->lock);
		for (size_t i = 0; i < res->n; i++)
			if (res->r[i].banner)
				disc_results_os_hint(found, res->r[i].t.ip,
						     disc_os_banner_hint(scan->cfg.os, res->r[i].banner,
									 res->r[i].banner_len));
		pthread_mutex_unlock(&scan->lock);
	}
	return DISC_OK;
}
