/*
 * disc_ports: port list syntax and the built-in top-ports list
 * (see disc/ports.h).
 */
#include "disc/ports.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Generated from data/top-ports.txt by embed_text.cmake. */
extern const char disc_top_ports_text[];

#define LIST_MAX     4096
#define NAME_MAX_LEN 31

struct list_entry {
	uint16_t port;
	char name[NAME_MAX_LEN + 1];
};

/* The parsed built-in list, one table per protocol, in rank order. */
static struct {
	struct list_entry tcp[LIST_MAX], udp[LIST_MAX];
	size_t n_tcp, n_udp;
	unsigned long bad_line; /* 0 when the embedded text parsed cleanly */
} list;
static pthread_once_t list_once = PTHREAD_ONCE_INIT;

static bool parse_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* Parses the embedded list once; a malformed line stops parsing and is remembered. */
static void load_list(void)
{
	const char *p = disc_top_ports_text;
	unsigned long lineno = 0;

	while (*p) {
		const char *eol = strchr(p, '\n'), *slash, *sp, *name;
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		size_t nlen;
		uint16_t port;
		struct list_entry *tab;
		size_t *n;

		lineno++;
		if (len > 0 && p[0] != '#') {
			slash = memchr(p, '/', len);
			sp = memchr(p, ' ', len);
			if (!slash || !sp || sp < slash ||
			    !parse_port(p, (size_t)(slash - p), &port))
				goto bad;
			if (sp - slash == 4 && memcmp(slash, "/tcp", 4) == 0) {
				tab = list.tcp;
				n = &list.n_tcp;
			} else if (sp - slash == 4 && memcmp(slash, "/udp", 4) == 0) {
				tab = list.udp;
				n = &list.n_udp;
			} else {
				goto bad;
			}
			name = sp + 1;
			nlen = len - (size_t)(name - p);
			if (nlen == 0 || nlen > NAME_MAX_LEN || *n == LIST_MAX)
				goto bad;
			tab[*n].port = port;
			memcpy(tab[*n].name, name, nlen);
			tab[*n].name[nlen] = '\0';
			(*n)++;
		}
		p += len;
		if (*p == '\n')
			p++;
	}
	return;
bad:
	list.bad_line = lineno;
}

static void ensure_list(void)
{
	pthread_once(&list_once, load_list);
}

static const struct list_entry *list_for(unsigned proto, size_t *n)
{
	ensure_list();
	if (proto == DISC_PROTO_UDP) {
		*n = list.n_udp;
		return list.udp;
	}
	*n = proto == DISC_PROTO_TCP ? list.n_tcp : 0;
	return list.tcp;
}

size_t disc_ports_list_len(unsigned proto)
{
	size_t n;

	list_for(proto, &n);
	return n;
}

int disc_ports_list_at(unsigned proto, size_t rank)
{
	size_t n;
	const struct list_entry *tab = list_for(proto, &n);

	return rank < n ? tab[rank].port : -1;
}

const char *disc_ports_service_name(uint16_t port, unsigned proto)
{
	size_t n;
	const struct list_entry *tab = list_for(proto, &n);

	for (size_t i = 0; i < n; i++)
		if (tab[i].port == port)
			return tab[i].name;
	return NULL;
}

static bool lookup_name(const char *name, size_t len, unsigned proto, uint16_t *port)
{
	size_t n;
	const struct list_entry *tab = list_for(proto, &n);

	for (size_t i = 0; i < n; i++)
		if (strlen(tab[i].name) == len && memcmp(tab[i].name, name, len) == 0) {
			*port = tab[i].port;
			return true;
		}
	return false;
}

static void bits_set_range(uint64_t *bits, unsigned lo, unsigned hi)
{
	for (unsigned v = lo; v <= hi; v++)
		bits[v >> 6] |= 1ull << (v & 63);
}

/* Rebuilds one sorted array from its bitmap; false on allocation failure. */
static bool rebuild(const uint64_t *bits, uint16_t **arr, size_t *n)
{
	size_t count = 0, k = 0;
	uint16_t *a;

	for (size_t i = 0; i < 1024; i++)
		count += (size_t)__builtin_popcountll(bits[i]);
	a = malloc((count ? count : 1) * sizeof(*a));
	if (!a)
		return false;
	for (unsigned v = 0; v < 65536; v++)
		if ((bits[v >> 6] >> (v & 63)) & 1)
			a[k++] = (uint16_t)v;
	free(*arr);
	*arr = a;
	*n = count;
	return true;
}

static enum disc_status commit(struct disc_ports *p, const uint64_t *tcp, const uint64_t *udp,
			       struct disc_error *err)
{
	uint16_t *t = NULL, *u = NULL;
	size_t nt = 0, nu = 0;

	if (!rebuild(tcp, &t, &nt) || !rebuild(udp, &u, &nu)) {
		free(t);
		free(u);
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for port list");
	}
	memcpy(p->tcp_bits, tcp, sizeof(p->tcp_bits));
	memcpy(p->udp_bits, udp, sizeof(p->udp_bits));
	free(p->tcp);
	free(p->udp);
	p->tcp = t;
	p->n_tcp = nt;
	p->udp = u;
	p->n_udp = nu;
	return DISC_OK;
}

void disc_ports_init(struct disc_ports *p)
{
	memset(p, 0, sizeof(*p));
}

void disc_ports_release(struct disc_ports *p)
{
	free(p->tcp);
	free(p->udp);
	memset(p, 0, sizeof(*p));
}

enum disc_status disc_ports_parse(struct disc_ports *p, const char *spec, unsigned unqualified,
				  struct disc_error *err)
{
	/* Built in temporaries and swapped in only on success. */
	static_assert(sizeof(p->tcp_bits) == 8192, "bitmap covers 65536 ports");
	uint64_t *tcp = malloc(sizeof(p->tcp_bits)), *udp = malloc(sizeof(p->udp_bits));
	unsigned protos = unqualified;
	const char *s = spec;
	enum disc_status st = DISC_OK;

	if (!tcp || !udp) {
		st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory for port list");
		goto out;
	}
	memcpy(tcp, p->tcp_bits, sizeof(p->tcp_bits));
	memcpy(udp, p->udp_bits, sizeof(p->udp_bits));
	if (*spec == '\0') {
		st = disc_error_set(err, DISC_ERR_SYNTAX, "empty port list");
		goto out;
	}
	for (;;) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		const char *item = s, *dash;
		unsigned lo = 0, hi = 65535;
		uint16_t v;

		if (len >= 2 && item[1] == ':') {
			char c = item[0];

			if (c == 'T' || c == 't')
				protos = DISC_PROTO_TCP;
			else if (c == 'U' || c == 'u')
				protos = DISC_PROTO_UDP;
			else {
				st = disc_error_set(err, DISC_ERR_SYNTAX,
						    "unknown protocol prefix \"%.2s\" in \"%s\" "
						    "(T: or U:)",
						    item, spec);
				goto out;
			}
			item += 2;
			len -= 2;
		}
		if (len == 0) {
			st = disc_error_set(err, DISC_ERR_SYNTAX, "empty item in port list \"%s\"",
					    spec);
			goto out;
		}
		if (protos == 0) {
			st = disc_error_set(
				err, DISC_ERR_SYNTAX,
				"port \"%.*s\" has no protocol; prefix it with T: or U:", (int)len,
				item);
			goto out;
		}
		dash = memchr(item, '-', len);
		if (!dash && !(item[0] >= '0' && item[0] <= '9')) {
			/* A service name, looked up per protocol it is meant for. */
			for (unsigned pr = DISC_PROTO_TCP; pr <= DISC_PROTO_UDP; pr <<= 1) {
				if (!(protos & pr))
					continue;
				if (!lookup_name(item, len, pr, &v)) {
					st = disc_error_set(
						err, DISC_ERR_SYNTAX,
						"unknown service name \"%.*s\" for %s in "
						"\"%s\"",
						(int)len, item,
						pr == DISC_PROTO_TCP ? "tcp" : "udp", spec);
					goto out;
				}
				bits_set_range(pr == DISC_PROTO_TCP ? tcp : udp, v, v);
			}
		} else {
			if (!dash) {
				if (!parse_port(item, len, &v)) {
					st = disc_error_set(err, DISC_ERR_SYNTAX,
							    "bad port \"%.*s\" in \"%s\" (0-65535)",
							    (int)len, item, spec);
					goto out;
				}
				lo = hi = v;
			} else {
				size_t llen = (size_t)(dash - item), hlen = len - llen - 1;

				if (llen) {
					if (!parse_port(item, llen, &v))
						goto bad_range;
					lo = v;
				}
				if (hlen) {
					if (!parse_port(dash + 1, hlen, &v))
						goto bad_range;
					hi = v;
				}
				if (lo > hi)
					goto bad_range;
			}
			if (protos & DISC_PROTO_TCP)
				bits_set_range(tcp, lo, hi);
			if (protos & DISC_PROTO_UDP)
				bits_set_range(udp, lo, hi);
		}
		if (!end)
			break;
		s = end + 1;
		continue;
	bad_range:
		st = disc_error_set(err, DISC_ERR_SYNTAX, "bad port range \"%.*s\" in \"%s\"",
				    (int)len, item, spec);
		goto out;
	}
	st = commit(p, tcp, udp, err);
out:
	free(tcp);
	free(udp);
	return st;
}

enum disc_status disc_ports_add_top(struct disc_ports *p, unsigned protos, unsigned n,
				    struct disc_error *err)
{
	uint64_t *tcp, *udp;
	enum disc_status st;

	ensure_list();
	if (list.bad_line)
		return disc_error_set(err, DISC_ERR_UNSUPPORTED,
				      "built-in top-ports list is malformed at line %lu",
				      list.bad_line);
	if (n == 0 || n > 65536)
		return disc_error_set(err, DISC_ERR_RANGE, "--top-ports %u out of range (1-65536)",
				      n);
	tcp = malloc(sizeof(p->tcp_bits));
	udp = malloc(sizeof(p->udp_bits));
	if (!tcp || !udp) {
		free(tcp);
		free(udp);
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for port list");
	}
	memcpy(tcp, p->tcp_bits, sizeof(p->tcp_bits));
	memcpy(udp, p->udp_bits, sizeof(p->udp_bits));
	for (unsigned pr = DISC_PROTO_TCP; pr <= DISC_PROTO_UDP; pr <<= 1) {
		uint64_t *bits = pr == DISC_PROTO_TCP ? tcp : udp;
		uint64_t mine[1024] = {0}; /* what this call selected, to count distinct ports */
		size_t len, taken = 0;
		const struct list_entry *tab;

		if (!(protos & pr))
			continue;
		tab = list_for(pr, &len);
		for (size_t i = 0; i < len && taken < n; i++) {
			mine[tab[i].port >> 6] |= 1ull << (tab[i].port & 63);
			taken++;
		}
		for (unsigned v = 0; v < 65536 && taken < n; v++) {
			if ((mine[v >> 6] >> (v & 63)) & 1)
				continue;
			mine[v >> 6] |= 1ull << (v & 63);
			taken++;
		}
		for (size_t i = 0; i < 1024; i++)
			bits[i] |= mine[i];
	}
	st = commit(p, tcp, udp, err);
	free(tcp);
	free(udp);
	return st;
}

size_t disc_ports_run(const uint16_t *ports, size_t n, size_t i, uint16_t *lo, uint16_t *hi)
{
	size_t j = i;

	while (j + 1 < n && ports[j + 1] == ports[j] + 1)
		j++;
	*lo = ports[i];
	*hi = ports[j];
	return j + 1;
}
