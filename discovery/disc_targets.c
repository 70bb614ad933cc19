/*
 * disc_targets: nmap-style target specs to a sorted interval set
 * (see disc/targets.h for the syntax and the life cycle).
 */
#include "disc/targets.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_TOKEN 256 /* longest single target we accept (a hostname is <= 253) */

/* The set of values one octet field selects. */
struct octet_set {
	uint64_t bits[4];
};

struct range_vec {
	struct disc_range **v;
	size_t *n, *cap;
};

static void octet_set_add(struct octet_set *s, unsigned lo, unsigned hi)
{
	for (unsigned v = lo; v <= hi; v++)
		s->bits[v >> 6] |= 1ull << (v & 63);
}

static bool octet_set_has(const struct octet_set *s, unsigned v)
{
	return (s->bits[v >> 6] >> (v & 63)) & 1;
}

static bool octet_set_full(const struct octet_set *s)
{
	return s->bits[0] == UINT64_MAX && s->bits[1] == UINT64_MAX && s->bits[2] == UINT64_MAX &&
	       s->bits[3] == UINT64_MAX;
}

static unsigned octet_set_size(const struct octet_set *s)
{
	unsigned n = 0;
	for (int i = 0; i < 4; i++)
		n += (unsigned)__builtin_popcountll(s->bits[i]);
	return n;
}

static unsigned octet_set_runs(const struct octet_set *s)
{
	unsigned runs = 0;
	for (unsigned v = 0; v < 256; v++)
		if (octet_set_has(s, v) && (v == 0 || !octet_set_has(s, v - 1)))
			runs++;
	return runs;
}

static enum disc_status push_range(struct range_vec rv, uint32_t lo, uint32_t hi,
				   struct disc_error *err)
{
	if (*rv.n == *rv.cap) {
		size_t ncap = *rv.cap ? *rv.cap * 2 : 64;
		struct disc_range *nv;

		if (*rv.n >= DISC_TARGETS_MAX_RANGES)
			return disc_error_set(err, DISC_ERR_RANGE,
					      "too many address ranges (more than %u); "
					      "use CIDR blocks or fewer octet lists",
					      DISC_TARGETS_MAX_RANGES);
		if (ncap > DISC_TARGETS_MAX_RANGES)
			ncap = DISC_TARGETS_MAX_RANGES;
		nv = realloc(*rv.v, ncap * sizeof(*nv));
		if (!nv)
			return disc_error_set(err, DISC_ERR_NOMEM,
					      "out of memory for address ranges");
		*rv.v = nv;
		*rv.cap = ncap;
	}
	(*rv.v)[*rv.n].lo = lo;
	(*rv.v)[*rv.n].hi = hi;
	(*rv.n)++;
	return DISC_OK;
}

/* Parses 1-3 decimal digits at s[0..len) into *out <= max; false otherwise. */
static bool parse_small_uint(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 3)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* One octet field (text f[0..len), items separated by commas) into set. */
static enum disc_status parse_octet_field(const char *f, size_t len, const char *spec,
					  struct octet_set *set, struct disc_error *err)
{
	size_t i = 0;

	memset(set, 0, sizeof(*set));
	if (len == 0)
		return disc_error_set(err, DISC_ERR_SYNTAX, "empty octet in \"%s\"", spec);
	while (i <= len) {
		size_t end = i;
		const char *item = f + i;
		const char *dash;
		size_t ilen;
		unsigned lo = 0, hi = 255;

		while (end < len && f[end] != ',')
			end++;
		ilen = end - i;
		if (ilen == 0)
			return disc_error_set(err, DISC_ERR_SYNTAX,
					      "empty octet list item in \"%s\"", spec);
		dash = memchr(item, '-', ilen);
		if (ilen == 1 && item[0] == '*') {
			/* whole octet */
		} else if (!dash) {
			if (!parse_small_uint(item, ilen, 255, &lo))
				return disc_error_set(err, DISC_ERR_SYNTAX,
						      "bad octet \"%.*s\" in \"%s\"", (int)ilen,
						      item, spec);
			hi = lo;
		} else {
			size_t llen = (size_t)(dash - item), hlen = ilen - llen - 1;

			if ((llen && !parse_small_uint(item, llen, 255, &lo)) ||
			    (hlen && !parse_small_uint(dash + 1, hlen, 255, &hi)) || lo > hi)
				return disc_error_set(err, DISC_ERR_SYNTAX,
						      "bad octet range \"%.*s\" in \"%s\"",
						      (int)ilen, item, spec);
		}
		octet_set_add(set, lo, hi);
		i = end + 1;
	}
	return DISC_OK;
}

/* Appends every interval of the cartesian product of fields[0..depth) x runs(fields[depth]). */
static enum disc_status emit_octets(struct range_vec rv, const struct octet_set *fields, int level,
				    int depth, uint32_t prefix, struct disc_error *err)
{
	unsigned shift = 8u * (unsigned)(3 - level);

	if (level < depth) {
		for (unsigned v = 0; v < 256; v++) {
			enum disc_status st;

			if (!octet_set_has(&fields[level], v))
				continue;
			st = emit_octets(rv, fields, level + 1, depth, prefix | (v << shift), err);
			if (st)
				return st;
		}
		return DISC_OK;
	}
	/* Octets below `level` are all full, so each run of this octet is one interval. */
	uint32_t low = shift ? (uint32_t)((1ull << shift) - 1) : 0;
	for (unsigned v = 0; v < 256; v++) {
		unsigned w = v;
		enum disc_status st;

		if (!octet_set_has(&fields[level], v))
			continue;
		while (w < 255 && octet_set_has(&fields[level], w + 1))
			w++;
		st = push_range(rv, prefix | (v << shift), prefix | (w << shift) | low, err);
		if (st)
			return st;
		v = w;
	}
	return DISC_OK;
}

static bool is_octet_syntax(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || *s == '.' || *s == ',' || *s == '-' || *s == '*'))
			return false;
	return true;
}

static bool is_hostname_syntax(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || *s == '.' || *s == '-' || *s == '_'))
			return false;
	return true;
}

static enum disc_status resolve_name(struct disc_targets *t, const char *name, uint32_t *addr,
				     struct disc_error *err)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	if (t->flags & DISC_TARGETS_NO_RESOLVE)
		return disc_error_set(err, DISC_ERR_RESOLVE,
				      "hostname \"%s\" given but name resolution is disabled",
				      name);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(name, NULL, &hints, &res);
	if (rc != 0 || !res)
		return disc_error_set(err, DISC_ERR_RESOLVE, "cannot resolve \"%s\": %s", name,
				      rc ? gai_strerror(rc) : "no IPv4 address");
	{
		struct sockaddr_in sin;

		memcpy(&sin, res->ai_addr, sizeof(sin));
		*addr = ntohl(sin.sin_addr.s_addr);
	}
	freeaddrinfo(res);
	return DISC_OK;
}

static enum disc_status remember_name(struct disc_targets *t, uint32_t addr, const char *name,
				      struct disc_error *err)
{
	char *copy;

	if (t->n_names == t->cap_names) {
		size_t ncap = t->cap_names ? t->cap_names * 2 : 8;
		struct disc_target_name *nv = realloc(t->names, ncap * sizeof(*nv));

		if (!nv)
			return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for hostnames");
		t->names = nv;
		t->cap_names = ncap;
	}
	copy = strdup(name);
	if (!copy)
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for hostnames");
	t->names[t->n_names].addr = addr;
	t->names[t->n_names].name = copy;
	t->n_names++;
	return DISC_OK;
}

/* Parses one target token into rv. */
static enum disc_status parse_spec(struct disc_targets *t, struct range_vec rv, const char *spec,
				   bool keep_name, struct disc_error *err)
{
	char base[MAX_TOKEN];
	const char *slash = strchr(spec, '/');
	size_t blen = slash ? (size_t)(slash - spec) : strlen(spec);
	int prefix = -1;
	enum disc_status st;

	if (blen >= sizeof(base))
		return disc_error_set(err, DISC_ERR_SYNTAX, "target too long: \"%.40s...\"", spec);
	memcpy(base, spec, blen);
	base[blen] = '\0';
	if (slash) {
		unsigned p;

		if (!parse_small_uint(slash + 1, strlen(slash + 1), 32, &p))
			return disc_error_set(err, DISC_ERR_SYNTAX,
					      "bad CIDR prefix length \"%s\" in \"%s\" (0-32)",
					      slash + 1, spec);
		prefix = (int)p;
	}
	if (blen == 0)
		return disc_error_set(err, DISC_ERR_SYNTAX, "missing address in \"%s\"", spec);

	if (is_octet_syntax(base)) {
		struct octet_set fields[4];
		const char *p = base;
		int nf = 0, depth;
		uint64_t n_intervals = 1;

		for (;;) {
			const char *dot = strchr(p, '.');
			size_t flen = dot ? (size_t)(dot - p) : strlen(p);

			if (nf == 4)
				return disc_error_set(err, DISC_ERR_SYNTAX,
						      "more than 4 octets in \"%s\"", spec);
			st = parse_octet_field(p, flen, spec, &fields[nf++], err);
			if (st)
				return st;
			if (!dot)
				break;
			p = dot + 1;
		}
		if (nf != 4)
			return disc_error_set(err, DISC_ERR_SYNTAX, "expected 4 octets in \"%s\"",
					      spec);
		if (prefix >= 0) {
			uint32_t a = 0, mask;

			for (int i = 0; i < 4; i++) {
				if (octet_set_size(&fields[i]) != 1)
					return disc_error_set(err, DISC_ERR_SYNTAX,
							      "CIDR prefix needs a plain address, "
							      "not ranges, in \"%s\"",
							      spec);
				for (unsigned v = 0; v < 256; v++)
					if (octet_set_has(&fields[i], v))
						a |= v << (8 * (3 - i));
			}
			mask = prefix ? ~(uint32_t)0 << (32 - prefix) : 0;
			return push_range(rv, a & mask, (a & mask) | ~mask, err);
		}
		depth = 3;
		while (depth > 0 && octet_set_full(&fields[depth]))
			depth--;
		for (int i = 0; i < depth; i++)
			n_intervals *= octet_set_size(&fields[i]);
		n_intervals *= octet_set_runs(&fields[depth]);
		if (n_intervals + *rv.n > DISC_TARGETS_MAX_RANGES)
			return disc_error_set(err, DISC_ERR_RANGE,
					      "\"%s\" expands to %llu separate ranges (limit %u); "
					      "use CIDR blocks or fewer octet lists",
					      spec, (unsigned long long)n_intervals,
					      DISC_TARGETS_MAX_RANGES);
		return emit_octets(rv, fields, 0, depth, 0, err);
	}

	if (is_hostname_syntax(base)) {
		uint32_t a = 0, mask;

		st = resolve_name(t, base, &a, err);
		if (st)
			return st;
		if (prefix < 0)
			prefix = 32;
		mask = prefix ? ~(uint32_t)0 << (32 - prefix) : 0;
		if (keep_name && prefix == 32) {
			st = remember_name(t, a, base, err);
			if (st)
				return st;
		}
		return push_range(rv, a & mask, (a & mask) | ~mask, err);
	}
	return disc_error_set(err, DISC_ERR_SYNTAX, "bad target \"%s\"", spec);
}

/* A comma segment that is only digits and dashes continues the previous octet list. */
static bool is_octet_continuation(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '*'))
			return false;
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Splits list into targets and parses each into rv; on error rv is restored. */
static enum disc_status parse_list(struct disc_targets *t, struct range_vec rv, const char *list,
				   bool keep_names, struct disc_error *err)
{
	size_t start_n = *rv.n, start_names = t->n_names;
	const char *p = list;
	enum disc_status st = DISC_OK;

	if (t->finalized)
		return disc_error_set(err, DISC_ERR_STATE, "targets already finalized");
	while (*p) {
		const char *tok, *tok_end;

		while (*p && is_space(*p))
			p++;
		if (!*p)
			break;
		tok = p;
		while (*p && !is_space(*p))
			p++;
		tok_end = p;
		/*
		 * A token that is one octet spec as a whole (exactly four octet
		 * fields, lists in any of them) is taken as such; only otherwise
		 * do commas separate whole targets.
		 */
		if ((size_t)(tok_end - tok) < MAX_TOKEN) {
			char whole[MAX_TOKEN];
			size_t before = *rv.n;

			memcpy(whole, tok, (size_t)(tok_end - tok));
			whole[tok_end - tok] = '\0';
			if (strchr(whole, ',') && is_octet_syntax(whole)) {
				if (parse_spec(t, rv, whole, keep_names, NULL) == DISC_OK)
					continue;
				*rv.n = before;
			}
		}
		const char *seg = tok;
		while (seg < tok_end) {
			char spec[MAX_TOKEN];
			const char *end = seg;

			while (end < tok_end && *end != ',')
				end++;
			while (end < tok_end) {
				const char *next = end + 1, *next_end = next;

				while (next_end < tok_end && *next_end != ',')
					next_end++;
				if (!is_octet_continuation(next, (size_t)(next_end - next)))
					break;
				end = next_end;
			}
			if ((size_t)(end - seg) >= sizeof(spec)) {
				st = disc_error_set(err, DISC_ERR_SYNTAX,
						    "target too long: \"%.40s...\"", seg);
				goto out;
			}
			if (end == seg) {
				st = disc_error_set(err, DISC_ERR_SYNTAX,
						    "empty target in \"%.*s\"",
						    (int)(tok_end - tok), tok);
				goto out;
			}
			memcpy(spec, seg, (size_t)(end - seg));
			spec[end - seg] = '\0';
			st = parse_spec(t, rv, spec, keep_names, err);
			if (st)
				goto out;
			seg = end < tok_end ? end + 1 : end;
			if (end < tok_end && seg == tok_end) {
				st = disc_error_set(err, DISC_ERR_SYNTAX,
						    "trailing comma in \"%.*s\"",
						    (int)(tok_end - tok), tok);
				goto out;
			}
		}
	}
out:
	if (st) {
		*rv.n = start_n;
		while (t->n_names > start_names)
			free(t->names[--t->n_names].name);
	}
	return st;
}

static struct range_vec incl_vec(struct disc_targets *t)
{
	return (struct range_vec){&t->ranges, &t->n_ranges, &t->cap_ranges};
}

static struct range_vec excl_vec(struct disc_targets *t)
{
	return (struct range_vec){&t->excl, &t->n_excl, &t->cap_excl};
}

void disc_targets_init(struct disc_targets *t, unsigned flags)
{
	memset(t, 0, sizeof(*t));
	t->flags = flags;
}

void disc_targets_release(struct disc_targets *t)
{
	free(t->ranges);
	free(t->excl);
	free(t->before);
	for (size_t i = 0; i < t->n_names; i++)
		free(t->names[i].name);
	free(t->names);
	memset(t, 0, sizeof(*t));
}

enum disc_status disc_targets_add(struct disc_targets *t, const char *list, struct disc_error *err)
{
	return parse_list(t, incl_vec(t), list, true, err);
}

enum disc_status disc_targets_exclude(struct disc_targets *t, const char *list,
				      struct disc_error *err)
{
	return parse_list(t, excl_vec(t), list, false, err);
}

static enum disc_status read_file(struct disc_targets *t, const char *path, bool exclude,
				  struct disc_error *err)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long lineno = 0;
	enum disc_status st = DISC_OK;
	bool is_stdin = strcmp(path, "-") == 0;

	if (t->finalized)
		return disc_error_set(err, DISC_ERR_STATE, "targets already finalized");
	f = is_stdin ? stdin : fopen(path, "r");
	if (!f)
		return disc_error_set(err, DISC_ERR_IO, "cannot open target file \"%s\": %s", path,
				      strerror(errno));
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *hash;

		lineno++;
		if (n > DISC_TARGETS_MAX_LINE) {
			st = disc_error_set(err, DISC_ERR_SYNTAX,
					    "%s:%lu: line longer than %d bytes", path, lineno,
					    DISC_TARGETS_MAX_LINE);
			goto out;
		}
		if (memchr(line, '\0', (size_t)n)) {
			st = disc_error_set(err, DISC_ERR_SYNTAX, "%s:%lu: NUL byte in line", path,
					    lineno);
			goto out;
		}
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		st = exclude ? disc_targets_exclude(t, line, err) : disc_targets_add(t, line, err);
		if (st) {
			char msg[DISC_ERROR_MSG_MAX];

			if (err) {
				snprintf(msg, sizeof(msg), "%s", err->msg);
				disc_error_set(err, st, "%s:%lu: %s", path, lineno, msg);
			}
			goto out;
		}
	}
	if (ferror(f))
		st = disc_error_set(err, DISC_ERR_IO, "error reading \"%s\": %s", path,
				    strerror(errno));
out:
	free(line);
	if (!is_stdin)
		fclose(f);
	return st;
}

enum disc_status disc_targets_add_file(struct disc_targets *t, const char *path,
				       struct disc_error *err)
{
	return read_file(t, path, false, err);
}

enum disc_status disc_targets_exclude_file(struct disc_targets *t, const char *path,
					   struct disc_error *err)
{
	return read_file(t, path, true, err);
}

static int cmp_range(const void *a, const void *b)
{
	const struct disc_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return (x->hi > y->hi) - (x->hi < y->hi);
}

static int cmp_name(const void *a, const void *b)
{
	const struct disc_target_name *x = a, *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

/* Sorts and merges overlapping or adjacent intervals in place; returns the new length. */
static size_t merge_ranges(struct disc_range *r, size_t n)
{
	size_t out = 0;

	if (n == 0)
		return 0;
	qsort(r, n, sizeof(*r), cmp_range);
	for (size_t i = 1; i < n; i++) {
		if ((uint64_t)r[i].lo <= (uint64_t)r[out].hi + 1) {
			if (r[i].hi > r[out].hi)
				r[out].hi = r[i].hi;
		} else {
			r[++out] = r[i];
		}
	}
	return out + 1;
}

enum disc_status disc_targets_finalize(struct disc_targets *t, struct disc_error *err)
{
	struct disc_range *res = NULL;
	uint64_t *before = NULL;
	size_t n_inc, n_exc, n_res = 0, j = 0;

	if (t->finalized)
		return disc_error_set(err, DISC_ERR_STATE, "targets already finalized");
	n_inc = merge_ranges(t->ranges, t->n_ranges);
	n_exc = merge_ranges(t->excl, t->n_excl);
	/* Each exclusion can split at most one include in two. */
	res = malloc((n_inc + n_exc + 1) * sizeof(*res));
	before = malloc((n_inc + n_exc + 1) * sizeof(*before));
	if (!res || !before) {
		free(res);
		free(before);
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for address ranges");
	}
	for (size_t i = 0; i < n_inc; i++) {
		uint64_t lo = t->ranges[i].lo, hi = t->ranges[i].hi;

		while (j < n_exc && t->excl[j].hi < lo)
			j++;
		/* Walk the exclusions overlapping [lo, hi]; the last one may overlap the next
		 * include too. */
		for (size_t k = j; k < n_exc && t->excl[k].lo <= hi && lo <= hi; k++) {
			if (t->excl[k].lo > lo) {
				res[n_res].lo = (uint32_t)lo;
				res[n_res].hi = t->excl[k].lo - 1;
				n_res++;
			}
			lo = (uint64_t)t->excl[k].hi + 1;
		}
		if (lo <= hi) {
			res[n_res].lo = (uint32_t)lo;
			res[n_res].hi = (uint32_t)hi;
			n_res++;
		}
	}
	t->count = 0;
	for (size_t i = 0; i < n_res; i++) {
		before[i] = t->count;
		t->count += (uint64_t)res[i].hi - res[i].lo + 1;
	}
	free(t->ranges);
	free(t->excl);
	t->excl = NULL;
	t->n_excl = t->cap_excl = 0;
	t->ranges = res;
	t->n_ranges = t->cap_ranges = n_res;
	t->before = before;
	if (t->n_names)
		qsort(t->names, t->n_names, sizeof(*t->names), cmp_name);
	t->finalized = true;
	return DISC_OK;
}

uint64_t disc_targets_count(const struct disc_targets *t)
{
	return t->finalized ? t->count : 0;
}

uint32_t disc_targets_at(const struct disc_targets *t, uint64_t index)
{
	size_t lo = 0, hi = t->n_ranges;

	assert(t->finalized && index < t->count);
	/* Largest i with before[i] <= index. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->before[mid] <= index)
			lo = mid;
		else
			hi = mid;
	}
	return t->ranges[lo].lo + (uint32_t)(index - t->before[lo]);
}

bool disc_targets_contains(const struct disc_targets *t, uint32_t addr)
{
	size_t lo = 0, hi = t->n_ranges;

	if (!t->finalized)
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->ranges[mid].hi < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->n_ranges && t->ranges[lo].lo <= addr;
}

const char *disc_targets_hostname(const struct disc_targets *t, uint32_t addr)
{
	struct disc_target_name key = {.addr = addr};
	const struct disc_target_name *hit;

	if (!t->finalized || t->n_names == 0 || !disc_targets_contains(t, addr))
		return NULL;
	hit = bsearch(&key, t->names, t->n_names, sizeof(*t->names), cmp_name);
	return hit ? hit->name : NULL;
}

char *disc_ipv4_str(uint32_t addr, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255,
		 addr & 255);
	return buf;
}
