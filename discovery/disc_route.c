/* disc_route: routing table, neighbour cache and interface addresses (see disc/route.h). */
#include "disc/route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTF_UP_BIT	0x0001u
#define RTF_REJECT_BIT	0x0200u
#define ATF_COM_BIT	0x02u
#define ARPHRD_ETHER_ID 1u

/* Longest /proc file accepted: 64 Ki routes of ~128 bytes. */
#define MAX_FILE (8u << 20)

/* Splits one line into at most max whitespace-separated fields (pointers into line). */
struct fields {
	const uint8_t *start[12];
	size_t len[12];
	size_t n;
};

static void split(const uint8_t *p, size_t len, struct fields *f)
{
	size_t i = 0;

	f->n = 0;
	while (i < len && f->n < 12) {
		while (i < len && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i == len)
			break;
		f->start[f->n] = p + i;
		while (i < len && p[i] != ' ' && p[i] != '\t')
			i++;
		f->len[f->n] = (size_t)(p + i - f->start[f->n]);
		f->n++;
	}
}

static bool parse_hex32(const uint8_t *p, size_t len, uint32_t *out)
{
	uint32_t v = 0;

	if (len == 0 || len > 8)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (p[i] >= '0' && p[i] <= '9')
			d = p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			d = p[i] - 'a' + 10;
		else if (p[i] >= 'A' && p[i] <= 'F')
			d = p[i] - 'A' + 10;
		else
			return false;
		v = v << 4 | d;
	}
	*out = v;
	return true;
}

/* "0x1a" or "1a" */
static bool parse_hex_flag(const uint8_t *p, size_t len, uint32_t *out)
{
	if (len > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		return parse_hex32(p + 2, len - 2, out);
	return parse_hex32(p, len, out);
}

static bool parse_dec32(const uint8_t *p, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool parse_dotted(const uint8_t *p, size_t len, uint32_t *out)
{
	uint32_t v = 0;
	size_t i = 0;

	for (int octet = 0; octet < 4; octet++) {
		unsigned o = 0, digits = 0;

		if (octet > 0) {
			if (i >= len || p[i] != '.')
				return false;
			i++;
		}
		while (i < len && p[i] >= '0' && p[i] <= '9' && digits < 4) {
			o = o * 10 + (p[i++] - '0');
			digits++;
		}
		if (digits == 0 || digits > 3 || o > 255)
			return false;
		v = v << 8 | o;
	}
	if (i != len)
		return false;
	*out = v;
	return true;
}

static bool parse_mac(const uint8_t *p, size_t len, uint8_t mac[6])
{
	uint32_t b;

	if (len != 17)
		return false;
	for (size_t i = 0; i < 6; i++) {
		if (i > 0 && p[i * 3 - 1] != ':')
			return false;
		if (!parse_hex32(p + i * 3, 2, &b))
			return false;
		mac[i] = (uint8_t)b;
	}
	return true;
}

static bool copy_ifname(char dst[DISC_IFNAME_MAX], const uint8_t *p, size_t len)
{
	if (len == 0 || len >= DISC_IFNAME_MAX)
		return false;
	memcpy(dst, p, len);
	dst[len] = '\0';
	return true;
}

/*
 * /proc prints a __be32 with %08X as the host reads it: the bytes in memory
 * are network order, so converting the printed integer with ntohl gives the
 * address in host order on either endianness.
 */
static uint32_t proc_addr(uint32_t printed)
{
	return ntohl(printed);
}

static unsigned popcount32(uint32_t v)
{
	unsigned n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

static bool contiguous_mask(uint32_t mask)
{
	return (~mask & (~mask + 1)) == 0; /* ones then zeros: ~mask is 2^k - 1 */
}

void disc_route_table_init(struct disc_route_table *t)
{
	memset(t, 0, sizeof(*t));
}

void disc_route_table_release(struct disc_route_table *t)
{
	free(t->routes);
	free(t->local);
	disc_route_table_init(t);
}

void disc_neigh_table_init(struct disc_neigh_table *t)
{
	memset(t, 0, sizeof(*t));
}

void disc_neigh_table_release(struct disc_neigh_table *t)
{
	free(t->entries);
	disc_neigh_table_init(t);
}

/* Grows an array of elem-sized items to hold one more; false on failure or the cap. */
static bool reserve(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return true;
	if (n >= DISC_ROUTE_MAX_ENTRIES)
		return false;
	ncap = *cap ? *cap * 2 : 16;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

/* Calls fn on each line after the first (the header); stops at the first error. */
typedef enum disc_status (*line_fn)(void *ctx, const uint8_t *line, size_t len, size_t lineno,
				    struct disc_error *err);

static enum disc_status each_line(const uint8_t *buf, size_t len, line_fn fn, void *ctx,
				  struct disc_error *err)
{
	size_t pos = 0, lineno = 0;

	while (pos < len) {
		const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len;
		size_t l = end - pos;

		lineno++;
		if (l && buf[pos + l - 1] == '\r')
			l--;
		if (lineno > 1 && l > 0) {
			enum disc_status st = fn(ctx, buf + pos, l, lineno, err);

			if (st != DISC_OK)
				return st;
		}
		pos = end + 1;
	}
	return DISC_OK;
}

static enum disc_status route_line(void *ctx, const uint8_t *line, size_t len, size_t lineno,
				   struct disc_error *err)
{
	struct disc_route_table *t = ctx;
	struct disc_route r;
	struct fields f;
	uint32_t dst, gw, flags, metric, mask;

	memset(&r, 0, sizeof(r));
	split(line, len, &f);
	if (f.n == 0)
		return DISC_OK;
	if (f.n < 8 || !copy_ifname(r.ifname, f.start[0], f.len[0]) ||
	    !parse_hex32(f.start[1], f.len[1], &dst) || !parse_hex32(f.start[2], f.len[2], &gw) ||
	    !parse_hex32(f.start[3], f.len[3], &flags) ||
	    !parse_dec32(f.start[6], f.len[6], &metric) ||
	    !parse_hex32(f.start[7], f.len[7], &mask))
		return disc_error_set(err, DISC_ERR_SYNTAX, "route table line %zu: malformed",
				      lineno);
	if (!(flags & RTF_UP_BIT) || (flags & RTF_REJECT_BIT))
		return DISC_OK;
	r.dst = proc_addr(dst);
	r.gateway = proc_addr(gw);
	r.mask = proc_addr(mask);
	r.metric = metric;
	if (!contiguous_mask(r.mask))
		return disc_error_set(err, DISC_ERR_MALFORMED,
				      "route table line %zu: mask is not a prefix", lineno);
	r.prefix_len = popcount32(r.mask);
	r.dst &= r.mask;
	if (!reserve((void **)&t->routes, &t->cap, t->n, sizeof(*t->routes)))
		return disc_error_set(err, DISC_ERR_NOMEM, "route table line %zu: too many routes",
				      lineno);
	t->routes[t->n++] = r;
	return DISC_OK;
}

static enum disc_status neigh_line(void *ctx, const uint8_t *line, size_t len, size_t lineno,
				   struct disc_error *err)
{
	struct disc_neigh_table *t = ctx;
	struct disc_neigh e;
	struct fields f;
	uint32_t hwtype, flags;

	memset(&e, 0, sizeof(e));
	split(line, len, &f);
	if (f.n == 0)
		return DISC_OK;
	if (f.n < 6 || !parse_dotted(f.start[0], f.len[0], &e.ip) ||
	    !parse_hex_flag(f.start[1], f.len[1], &hwtype) ||
	    !parse_hex_flag(f.start[2], f.len[2], &flags) ||
	    !copy_ifname(e.ifname, f.start[5], f.len[5]))
		return disc_error_set(err, DISC_ERR_SYNTAX, "neighbour table line %zu: malformed",
				      lineno);
	if (hwtype != ARPHRD_ETHER_ID || !(flags & ATF_COM_BIT))
		return DISC_OK;
	if (!parse_mac(f.start[3], f.len[3], e.mac))
		return disc_error_set(err, DISC_ERR_SYNTAX,
				      "neighbour table line %zu: bad hardware address", lineno);
	if (!reserve((void **)&t->entries, &t->cap, t->n, sizeof(*t->entries)))
		return disc_error_set(err, DISC_ERR_NOMEM,
				      "neighbour table line %zu: too many entries", lineno);
	t->entries[t->n++] = e;
	return DISC_OK;
}

enum disc_status disc_route_parse(struct disc_route_table *t, const uint8_t *buf, size_t len,
				  struct disc_error *err)
{
	return each_line(buf, len, route_line, t, err);
}

enum disc_status disc_neigh_parse(struct disc_neigh_table *t, const uint8_t *buf, size_t len,
				  struct disc_error *err)
{
	return each_line(buf, len, neigh_line, t, err);
}

/* Reads a whole file (caller frees *out); /proc files have no size, so read to EOF. */
static enum disc_status slurp(const char *path, uint8_t **out, size_t *out_len,
			      struct disc_error *err)
{
	FILE *f = fopen(path, "re");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f)
		return disc_error_set(err, DISC_ERR_IO, "%s: %s", path, strerror(errno));
	for (;;) {
		size_t got;

		if (len == cap) {
			uint8_t *p;

			if (cap >= MAX_FILE) {
				free(buf);
				fclose(f);
				return disc_error_set(err, DISC_ERR_RANGE,
						      "%s: larger than %u bytes", path, MAX_FILE);
			}
			cap = cap ? cap * 2 : 4096;
			p = realloc(buf, cap);
			if (!p) {
				free(buf);
				fclose(f);
				return disc_error_set(err, DISC_ERR_NOMEM, "%s: out of memory",
						      path);
			}
			buf = p;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return disc_error_set(err, DISC_ERR_IO, "%s: read error", path);
	}
	fclose(f);
	*out = buf;
	*out_len = len;
	return DISC_OK;
}

bool disc_route_is_local(const struct disc_route_table *t, uint32_t dst)
{
	if ((dst >> 24) == 127 || (dst >> 24) == 0)
		return true;
	for (size_t i = 0; i < t->n_local; i++)
		if (t->local[i] == dst)
			return true;
	return false;
}

enum disc_status disc_route_add_local(struct disc_route_table *t, uint32_t ip, struct disc_error *err)
{
	if (t->n_local == t->cap_local) {
		size_t cap = t->cap_local ? t->cap_local * 2 : 8;
		uint32_t *grown;

		if (cap > DISC_ROUTE_MAX_ENTRIES)
			return disc_error_set(err, DISC_ERR_RANGE, "more than %d local addresses",
					      DISC_ROUTE_MAX_ENTRIES);
		grown = realloc(t->local, cap * sizeof(*grown));
		if (!grown)
			return disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
		t->local = grown;
		t->cap_local = cap;
	}
	t->local[t->n_local++] = ip;
	return DISC_OK;
}

/* Every IPv4 address of this machine's interfaces. */
static enum disc_status load_local(struct disc_route_table *t, struct disc_error *err)
{
	struct ifaddrs *ifs, *i;
	enum disc_status st = DISC_OK;

	if (getifaddrs(&ifs) != 0)
		return disc_error_set(err, DISC_ERR_IO, "getifaddrs: %s", strerror(errno));
	for (i = ifs; i && st == DISC_OK; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
			st = disc_route_add_local(
				t, ntohl(((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr.s_addr),
				err);
	freeifaddrs(ifs);
	return st;
}

enum disc_status disc_route_load(struct disc_route_table *t, const char *path,
				 struct disc_error *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	enum disc_status st;

	if (!path) {
		path = "/proc/net/route";
		st = load_local(t, err);
		if (st != DISC_OK)
			return st;
	}
	st = slurp(path, &buf, &len, err);
	if (st != DISC_OK)
		return st;
	st = disc_route_parse(t, buf, len, err);
	free(buf);
	return st;
}

enum disc_status disc_neigh_load(struct disc_neigh_table *t, const char *path,
				 struct disc_error *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	enum disc_status st;

	if (!path)
		path = "/proc/net/arp";
	st = slurp(path, &buf, &len, err);
	if (st != DISC_OK)
		return st;
	st = disc_neigh_parse(t, buf, len, err);
	free(buf);
	return st;
}

const struct disc_route *disc_route_lookup(const struct disc_route_table *t, uint32_t dst)
{
	const struct disc_route *best = NULL;

	if (disc_route_is_local(t, dst))
		return NULL;

	for (size_t i = 0; i < t->n; i++) {
		const struct disc_route *r = &t->routes[i];

		if ((dst & r->mask) != r->dst)
			continue;
		if (!best || r->prefix_len > best->prefix_len ||
		    (r->prefix_len == best->prefix_len && r->metric < best->metric))
			best = r;
	}
	return best;
}

bool disc_neigh_lookup(const struct disc_neigh_table *t, uint32_t ip, const char *ifname,
		       uint8_t mac[6])
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->entries[i].ip != ip)
			continue;
		if (ifname && strcmp(ifname, t->entries[i].ifname) != 0)
			continue;
		memcpy(mac, t->entries[i].mac, 6);
		return true;
	}
	return false;
}

enum disc_status disc_iface_get(const char *name, uint32_t near, struct disc_iface *out,
				struct disc_error *err)
{
	struct ifaddrs *ifa, *p;
	bool found = false, have_ip = false;

	if (!name || strlen(name) >= DISC_IFNAME_MAX)
		return disc_error_set(err, DISC_ERR_RESOLVE, "bad interface name");
	if (getifaddrs(&ifa) != 0)
		return disc_error_set(err, DISC_ERR_IO, "cannot list interfaces: %s",
				      strerror(errno));
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	for (p = ifa; p; p = p->ifa_next) {
		if (!p->ifa_name || strcmp(p->ifa_name, name) != 0 || !p->ifa_addr)
			continue;
		if (p->ifa_addr->sa_family == AF_PACKET) {
			const struct sockaddr_ll *ll = (const struct sockaddr_ll *)p->ifa_addr;

			found = true;
			out->index = ll->sll_ifindex;
			if (ll->sll_halen == 6)
				memcpy(out->mac, ll->sll_addr, 6);
			out->loopback = (p->ifa_flags & IFF_LOOPBACK) != 0;
		} else if (p->ifa_addr->sa_family == AF_INET) {
			uint32_t ip =
				ntohl(((const struct sockaddr_in *)p->ifa_addr)->sin_addr.s_addr);
			uint32_t mask = p->ifa_netmask
						? ntohl(((const struct sockaddr_in *)p->ifa_netmask)
								->sin_addr.s_addr)
						: 0xffffffffu;
			bool better = !have_ip || (near && (near & mask) == (ip & mask) &&
						   (near & out->mask) != (out->ip & out->mask));

			if (better) {
				out->ip = ip;
				out->mask = mask;
				have_ip = true;
			}
		}
	}
	freeifaddrs(ifa);
	if (!found)
		return disc_error_set(err, DISC_ERR_RESOLVE, "no interface called %s", name);
	return DISC_OK;
}
