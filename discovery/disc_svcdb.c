/*
 * disc_svcdb: the service probe and match database (see disc/svcdb.h and
 * docs/service-db.md for the format).
 *
 * The text is read line by line; a record starts with `probe` or `match`
 * and the lines after it fill it in. Patterns are compiled once with PCRE2
 * (JIT when available) and matched over raw bytes, never as UTF: a response
 * is whatever the peer sent. Every match runs under PCRE2's match and depth
 * limits, so that no response can make a pattern backtrack for long.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "disc/svcdb.h"

#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc/ports.h"

/* Generated from data/services.txt by embed_text.cmake. */
extern const char disc_services_text[];

#define LINE_MAX_LEN  8192
#define MAX_EXTRA     8
#define MAX_PROBES    256
#define MATCH_LIMIT   200000
#define DEPTH_LIMIT   5000
#define KEY_MAX	      32

struct extra_tmpl {
	char key[KEY_MAX];
	char *tmpl; /* owned */
};

struct rule {
	char service[DISC_SVC_NAME_MAX];
	pcre2_code *re;
	char *product, *version; /* templates, owned, NULL when absent */
	struct extra_tmpl extra[MAX_EXTRA];
	size_t n_extra;
	int confidence;
	unsigned line;
};

struct extract {
	char service[DISC_SVC_NAME_MAX];
	char key[KEY_MAX];
	pcre2_code *re;
};

struct probe_rules {
	struct rule *rules; /* owned */
	size_t n, cap;
};

struct disc_svcdb {
	struct disc_svc_probe *probes;
	struct probe_rules *rules; /* one per probe */
	size_t n_probes, cap_probes;
	struct extract *extracts;
	size_t n_extracts, cap_extracts;
	pcre2_match_context *mctx;
};

/* ------------------------------------------------------------------ */
/* Parsing                                                            */

struct parser {
	struct disc_svcdb *db;
	const char *name;
	unsigned line;
	struct rule *cur_rule; /* the rule that product/version/extra lines fill */
	struct disc_error *err;
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static enum disc_status bad(struct parser *p, const char *fmt, ...)
{
	char msg[DISC_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return disc_error_set(p->err, DISC_ERR_SYNTAX, "%s:%u: %s", p->name, p->line, msg);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Splits off the first word of *s (advancing *s past it and the blanks after). */
static size_t next_word(const char **s, const char **word)
{
	const char *b = *s, *e;

	while (is_space(*b))
		b++;
	e = b;
	while (*e && !is_space(*e))
		e++;
	*word = b;
	*s = e;
	while (is_space(**s))
		(*s)++;
	return (size_t)(e - b);
}

static bool word_is(const char *w, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

/* Service and probe names: [a-z0-9][a-z0-9._-]*, shorter than DISC_SVC_NAME_MAX. */
static bool valid_name(const char *w, size_t n)
{
	if (n == 0 || n >= DISC_SVC_NAME_MAX || !((w[0] >= 'a' && w[0] <= 'z') || (w[0] >= '0' && w[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((w[i] >= 'a' && w[i] <= 'z') || (w[i] >= '0' && w[i] <= '9') || strchr("._-", w[i])))
			return false;
	return true;
}

/* Extra keys: [a-z_][a-z0-9_]*, as the observation's extra object wants them. */
static bool valid_key(const char *w, size_t n)
{
	if (n == 0 || n >= KEY_MAX || !((w[0] >= 'a' && w[0] <= 'z') || w[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((w[i] >= 'a' && w[i] <= 'z') || (w[i] >= '0' && w[i] <= '9') || w[i] == '_'))
			return false;
	return true;
}

static bool parse_uint(const char *w, size_t n, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (n == 0 || n > 9)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (w[i] < '0' || w[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(w[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A "quoted string" with \\ \" \r \n \t \0 \xHH escapes, alone on the rest of the line. */
static enum disc_status parse_quoted(struct parser *p, const char *s, uint8_t **out, size_t *outlen)
{
	size_t n = 0, cap = strlen(s);
	uint8_t *buf;

	if (*s != '"')
		return bad(p, "send: expected a \"quoted string\"");
	buf = malloc(cap ? cap : 1);
	if (!buf)
		return disc_error_set(p->err, DISC_ERR_NOMEM, "out of memory");
	for (s++; *s && *s != '"'; s++) {
		if (*s != '\\') {
			buf[n++] = (uint8_t)*s;
			continue;
		}
		s++;
		switch (*s) {
		case '\\': buf[n++] = '\\'; break;
		case '"': buf[n++] = '"'; break;
		case 'r': buf[n++] = '\r'; break;
		case 'n': buf[n++] = '\n'; break;
		case 't': buf[n++] = '\t'; break;
		case '0': buf[n++] = 0; break;
		case 'x':
			if (hexval(s[1]) < 0 || hexval(s[2]) < 0) {
				free(buf);
				return bad(p, "send: \\x needs two hex digits");
			}
			buf[n++] = (uint8_t)(hexval(s[1]) << 4 | hexval(s[2]));
			s += 2;
			break;
		default:
			free(buf);
			return bad(p, "send: unknown escape \\%c (use \\\\ \\\" \\r \\n \\t \\0 \\xHH)",
				   *s ? *s : '?');
		}
	}
	if (*s != '"') {
		free(buf);
		return bad(p, "send: missing closing quote");
	}
	for (s++; is_space(*s); s++)
		;
	if (*s) {
		free(buf);
		return bad(p, "send: text after the closing quote");
	}
	if (n == 0 || n > DISC_SVC_PAYLOAD_MAX) {
		free(buf);
		return bad(p, "send: the payload must be 1 to %d bytes", DISC_SVC_PAYLOAD_MAX);
	}
	*out = buf;
	*outlen = n;
	return DISC_OK;
}

static enum disc_status parse_ports(struct parser *p, struct disc_svc_probe *pr, const char *s)
{
	while (*s) {
		const char *item = s, *dash;
		size_t len;
		unsigned long lo, hi;
		struct disc_svc_port_range *grown;

		while (*s && *s != ',' && !is_space(*s))
			s++;
		len = (size_t)(s - item);
		dash = memchr(item, '-', len);
		if (dash) {
			if (!parse_uint(item, (size_t)(dash - item), 65535, &lo) ||
			    !parse_uint(dash + 1, len - (size_t)(dash - item) - 1, 65535, &hi) || lo > hi)
				return bad(p, "ports: bad range \"%.*s\"", (int)len, item);
		} else if (!parse_uint(item, len, 65535, &lo)) {
			return bad(p, "ports: bad port \"%.*s\"", (int)len, item);
		} else {
			hi = lo;
		}
		grown = realloc(pr->ports, (pr->n_ports + 1) * sizeof(*grown));
		if (!grown)
			return disc_error_set(p->err, DISC_ERR_NOMEM, "out of memory");
		pr->ports = grown;
		pr->ports[pr->n_ports].lo = (uint16_t)lo;
		pr->ports[pr->n_ports].hi = (uint16_t)hi;
		pr->n_ports++;
		if (*s == ',')
			s++;
		if (is_space(*s))
			return bad(p, "ports: no blanks inside the list (22,80,8000-8010)");
	}
	return DISC_OK;
}

static enum disc_status compile(struct parser *p, const char *pattern, pcre2_code **out)
{
	int code;
	PCRE2_SIZE off;
	pcre2_code *re;

	if (!*pattern)
		return bad(p, "missing regular expression");
	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
	if (!re) {
		PCRE2_UCHAR msg[160];

		pcre2_get_error_message(code, msg, sizeof(msg));
		return bad(p, "bad regular expression at offset %zu: %s", (size_t)off, (char *)msg);
	}
	/* JIT is an optimisation: without it (no JIT support, no memory) matching still works. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	*out = re;
	return DISC_OK;
}

static enum disc_status dup_template(struct parser *p, const char *s, char **out)
{
	if (*out)
		return bad(p, "given twice for this match");
	if (!*s)
		return bad(p, "missing value");
	if (strlen(s) >= DISC_SVC_FIELD_MAX)
		return bad(p, "value longer than %d bytes", DISC_SVC_FIELD_MAX - 1);
	for (const char *t = s; *t; t++)
		if (*t == '$' && !(t[1] == '$' || (t[1] >= '1' && t[1] <= '9')))
			return bad(p, "a $ must be followed by a digit 1-9 or another $");
		else if (*t == '$')
			t++;
	*out = strdup(s);
	return *out ? DISC_OK : disc_error_set(p->err, DISC_ERR_NOMEM, "out of memory");
}

static struct disc_svc_probe *cur_probe(struct disc_svcdb *db)
{
	return db->n_probes ? &db->probes[db->n_probes - 1] : NULL;
}

static enum disc_status add_probe(struct parser *p, const char *rest)
{
	struct disc_svcdb *db = p->db;
	const char *w;
	size_t n = next_word(&rest, &w);
	struct disc_svc_probe pr = {0};

	if (!valid_name(w, n))
		return bad(p, "probe: bad or missing name \"%.*s\" (use a-z 0-9 . _ -)", (int)n, w);
	memcpy(pr.name, w, n);
	for (size_t i = 0; i < db->n_probes; i++)
		if (strcmp(db->probes[i].name, pr.name) == 0)
			return bad(p, "probe %s defined twice (first on line %u)", pr.name,
				   db->probes[i].line);
	n = next_word(&rest, &w);
	if (word_is(w, n, "tcp"))
		pr.proto = DISC_PROTO_TCP;
	else if (word_is(w, n, "udp"))
		pr.proto = DISC_PROTO_UDP;
	else
		return bad(p, "probe %s: protocol must be tcp or udp, not \"%.*s\"", pr.name, (int)n, w);
	n = next_word(&rest, &w);
	if (word_is(w, n, "handshake")) {
		if (pr.proto != DISC_PROTO_TCP)
			return bad(p, "probe %s: a handshake probe must be tcp", pr.name);
		pr.handshake = true;
		n = next_word(&rest, &w);
	}
	if (n)
		return bad(p, "probe %s: unexpected \"%.*s\"", pr.name, (int)n, w);
	if (db->n_probes == 0 && (strcmp(pr.name, "null") != 0 || pr.proto != DISC_PROTO_TCP ||
				  pr.handshake))
		return bad(p, "the first probe must be \"probe null tcp\"");
	if (db->n_probes > 0 && strcmp(pr.name, "null") == 0)
		return bad(p, "only the first probe may be called null");
	if (db->n_probes >= MAX_PROBES)
		return bad(p, "more than %d probes", MAX_PROBES);
	if (db->n_probes == db->cap_probes) {
		size_t cap = db->cap_probes ? db->cap_probes * 2 : 16;
		struct disc_svc_probe *np = realloc(db->probes, cap * sizeof(*np));
		struct probe_rules *nr;

		if (!np)
			return disc_error_set(p->err, DISC_ERR_NOMEM, "out of memory");
		db->probes = np;
		nr = realloc(db->rules, cap * sizeof(*nr));
		if (!nr)
			return disc_error_set(p->err, DISC_ERR_NOMEM, "out of memory");
		db->rules = nr;
		db->cap_probes = cap;
	}
	pr.wait_ms = 1000;
	pr.line = p->line;
	db->probes[db->n_probes] = pr;
	memset(&db->rules[db->n_probes], 0, sizeof(db->rules[0]));
	db->n_probes++;
	p->cur_rule = NULL;
	return DISC_OK;
}

static enum disc_status add_rule(struct parser *p, const char *rest)
{
	struct disc_svc_probe *pr = cur_probe(p->db);
	struct probe_rules *pl;
	struct rule r = {0};
	const char *w;
	size_t n;
	enum disc_status st;

	if (!pr)
		return bad(p, "match before any probe");
	if (pr->handshake)
		return bad(p, "a handshake probe has no match rules (its session is probed again)");
	n = next_word(&rest, &w);
	if (!valid_name(w, n))
		return bad(p, "match: bad or missing service name \"%.*s\"", (int)n, w);
	memcpy(r.service, w, n);
	st = compile(p, rest, &r.re);
	if (st)
		return st;
	r.confidence = 80;
	r.line = p->line;
	pl = &p->db->rules[p->db->n_probes - 1];
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 8;
		struct rule *nr = realloc(pl->rules, cap * sizeof(*nr));

		if (!nr) {
			pcre2_code_free(r.re);
			return disc_error_set(p->err, DISC_ERR_NOMEM, "out of memory");
		}
		pl->rules = nr;
		pl->cap = cap;
	}
	pl->rules[pl->n] = r;
	p->cur_rule = &pl->rules[pl->n++];
	return DISC_OK;
}

static enum disc_status add_extract(struct parser *p, const char *rest)
{
	struct disc_svcdb *db = p->db;
	struct extract x = {0};
	const char *w;
	size_t n = next_word(&rest, &w);
	enum disc_status st;

	if (!valid_name(w, n))
		return bad(p, "extract: bad or missing service name \"%.*s\"", (int)n, w);
	memcpy(x.service, w, n);
	n = next_word(&rest, &w);
	if (!valid_key(w, n))
		return bad(p, "extract: bad or missing key \"%.*s\" (use a-z 0-9 _)", (int)n, w);
	memcpy(x.key, w, n);
	st = compile(p, rest, &x.re);
	if (st)
		return st;
	if (pcre2_pattern_info(x.re, PCRE2_INFO_CAPTURECOUNT, &n) != 0 || n < 1) {
		pcre2_code_free(x.re);
		return bad(p, "extract: the expression needs a capture group");
	}
	if (db->n_extracts == db->cap_extracts) {
		size_t cap = db->cap_extracts ? db->cap_extracts * 2 : 8;
		struct extract *nx = realloc(db->extracts, cap * sizeof(*nx));

		if (!nx) {
			pcre2_code_free(x.re);
			return disc_error_set(p->err, DISC_ERR_NOMEM, "out of memory");
		}
		db->extracts = nx;
		db->cap_extracts = cap;
	}
	db->extracts[db->n_extracts++] = x;
	p->cur_rule = NULL;
	return DISC_OK;
}

static enum disc_status parse_line(struct parser *p, const char *line)
{
	struct disc_svc_probe *pr = cur_probe(p->db);
	struct rule *r = p->cur_rule;
	const char *rest = line, *w;
	size_t n = next_word(&rest, &w);
	unsigned long v;
	enum disc_status st;

	if (n == 0 || w[0] == '#')
		return DISC_OK;
	if (word_is(w, n, "probe"))
		return add_probe(p, rest);
	if (word_is(w, n, "match"))
		return add_rule(p, rest);
	if (word_is(w, n, "extract"))
		return add_extract(p, rest);
	if (word_is(w, n, "ports") || word_is(w, n, "send") || word_is(w, n, "wait") ||
	    word_is(w, n, "exclusive")) {
		if (!pr || r)
			return bad(p, "%.*s belongs right after a probe line, before its matches",
				   (int)n, w);
		if (word_is(w, n, "ports")) {
			if (pr->n_ports)
				return bad(p, "ports given twice for probe %s", pr->name);
			if (!*rest)
				return bad(p, "ports: missing list");
			return parse_ports(p, pr, rest);
		}
		if (word_is(w, n, "send")) {
			if (pr->payload)
				return bad(p, "send given twice for probe %s", pr->name);
			if (p->db->n_probes == 1 || pr->handshake)
				return bad(p, "probe %s sends nothing of its own", pr->name);
			return parse_quoted(p, rest, &pr->payload, &pr->payload_len);
		}
		if (word_is(w, n, "wait")) {
			const char *num;
			size_t nl = next_word(&rest, &num);

			if (!parse_uint(num, nl, DISC_SVC_WAIT_MAX, &v) || v < 10 || *rest)
				return bad(p, "wait: milliseconds, 10-%d", DISC_SVC_WAIT_MAX);
			pr->wait_ms = (unsigned)v;
			return DISC_OK;
		}
		if (*rest)
			return bad(p, "exclusive takes no value");
		pr->exclusive = true;
		return DISC_OK;
	}
	if (word_is(w, n, "product") || word_is(w, n, "version") || word_is(w, n, "extra") ||
	    word_is(w, n, "confidence")) {
		if (!r)
			return bad(p, "%.*s outside a match", (int)n, w);
		if (word_is(w, n, "product"))
			return dup_template(p, rest, &r->product);
		if (word_is(w, n, "version"))
			return dup_template(p, rest, &r->version);
		if (word_is(w, n, "confidence")) {
			const char *num;
			size_t nl = next_word(&rest, &num);

			if (!parse_uint(num, nl, 100, &v) || *rest)
				return bad(p, "confidence: a number 0-100");
			r->confidence = (int)v;
			return DISC_OK;
		}
		{
			const char *key;
			size_t kl = next_word(&rest, &key);
			struct extra_tmpl *x;

			if (!valid_key(key, kl))
				return bad(p, "extra: bad or missing key \"%.*s\" (use a-z 0-9 _)",
					   (int)kl, key);
			if (r->n_extra >= MAX_EXTRA)
				return bad(p, "more than %d extra fields for one match", MAX_EXTRA);
			for (size_t i = 0; i < r->n_extra; i++)
				if (word_is(key, kl, r->extra[i].key))
					return bad(p, "extra %s given twice", r->extra[i].key);
			x = &r->extra[r->n_extra];
			memset(x, 0, sizeof(*x));
			memcpy(x->key, key, kl);
			st = dup_template(p, rest, &x->tmpl);
			if (st)
				return st;
			r->n_extra++;
			return DISC_OK;
		}
	}
	return bad(p, "unknown keyword \"%.*s\"", (int)n, w);
}

static enum disc_status check_db(struct parser *p)
{
	struct disc_svcdb *db = p->db;

	if (db->n_probes == 0)
		return bad(p, "no probes (the first must be \"probe null tcp\")");
	for (size_t i = 1; i < db->n_probes; i++) {
		struct disc_svc_probe *pr = &db->probes[i];

		p->line = pr->line;
		if (!pr->handshake && !pr->payload)
			return bad(p, "probe %s has no send line", pr->name);
		if ((pr->exclusive || pr->proto == DISC_PROTO_UDP) && pr->n_ports == 0)
			return bad(p, "probe %s is tried only on its ports but lists none", pr->name);
	}
	return DISC_OK;
}

enum disc_status disc_svcdb_parse(struct disc_svcdb **out, const char *text, size_t len,
				  const char *name, struct disc_error *err)
{
	struct disc_svcdb *db = calloc(1, sizeof(*db));
	struct parser p = {.db = db, .name = name ? name : "services", .err = err};
	char *line = malloc(LINE_MAX_LEN + 1);
	size_t pos = 0;
	enum disc_status st = DISC_OK;

	*out = NULL;
	if (!db || !line) {
		st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
		goto out;
	}
	db->mctx = pcre2_match_context_create(NULL);
	if (!db->mctx) {
		st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
		goto out;
	}
	pcre2_set_match_limit(db->mctx, MATCH_LIMIT);
	pcre2_set_depth_limit(db->mctx, DEPTH_LIMIT);
	while (pos < len) {
		const char *b = text + pos;
		const char *nl = memchr(b, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - b) : len - pos;

		pos += n + (nl ? 1 : 0);
		p.line++;
		if (n && b[n - 1] == '\r')
			n--;
		if (n > LINE_MAX_LEN) {
			st = bad(&p, "line longer than %d bytes", LINE_MAX_LEN);
			goto out;
		}
		if (memchr(b, '\0', n)) {
			st = bad(&p, "NUL byte in the line");
			goto out;
		}
		memcpy(line, b, n);
		line[n] = '\0';
		st = parse_line(&p, line);
		if (st)
			goto out;
	}
	st = check_db(&p);
out:
	free(line);
	if (st) {
		disc_svcdb_free(db);
		return st;
	}
	*out = db;
	return DISC_OK;
}

enum disc_status disc_svcdb_load_default(struct disc_svcdb **out, struct disc_error *err)
{
	return disc_svcdb_parse(out, disc_services_text, strlen(disc_services_text), "services.txt",
				err);
}

void disc_svcdb_free(struct disc_svcdb *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->n_probes; i++) {
		struct probe_rules *pl = &db->rules[i];

		for (size_t j = 0; j < pl->n; j++) {
			struct rule *r = &pl->rules[j];

			pcre2_code_free(r->re);
			free(r->product);
			free(r->version);
			for (size_t k = 0; k < r->n_extra; k++)
				free(r->extra[k].tmpl);
		}
		free(pl->rules);
		free(db->probes[i].payload);
		free(db->probes[i].ports);
	}
	for (size_t i = 0; i < db->n_extracts; i++)
		pcre2_code_free(db->extracts[i].re);
	free(db->extracts);
	free(db->probes);
	free(db->rules);
	pcre2_match_context_free(db->mctx);
	free(db);
}

size_t disc_svcdb_n_probes(const struct disc_svcdb *db)
{
	return db->n_probes;
}

const struct disc_svc_probe *disc_svcdb_probe(const struct disc_svcdb *db, size_t i)
{
	return i < db->n_probes ? &db->probes[i] : NULL;
}

int disc_svcdb_find_probe(const struct disc_svcdb *db, const char *name)
{
	for (size_t i = 0; i < db->n_probes; i++)
		if (strcmp(db->probes[i].name, name) == 0)
			return (int)i;
	return -1;
}

size_t disc_svcdb_n_rules(const struct disc_svcdb *db)
{
	size_t n = 0;

	for (size_t i = 0; i < db->n_probes; i++)
		n += db->rules[i].n;
	return n;
}

bool disc_svcdb_probe_has_port(const struct disc_svc_probe *p, uint16_t port)
{
	for (size_t i = 0; i < p->n_ports; i++)
		if (port >= p->ports[i].lo && port <= p->ports[i].hi)
			return true;
	return false;
}

size_t disc_svcdb_plan(const struct disc_svcdb *db, unsigned proto, uint16_t port, bool in_tls,
		       size_t *order, size_t max)
{
	size_t n = 0;
	bool exclusive = false;

	for (size_t i = 1; i < db->n_probes; i++) {
		const struct disc_svc_probe *p = &db->probes[i];

		if (p->proto != proto || (in_tls && p->handshake) || !disc_svcdb_probe_has_port(p, port))
			continue;
		exclusive |= p->exclusive;
		if (n < max)
			order[n++] = i;
	}
	if (exclusive || proto != DISC_PROTO_TCP)
		return n;
	for (size_t i = 1; i < db->n_probes && n < max; i++) {
		const struct disc_svc_probe *p = &db->probes[i];

		if (p->proto != proto || p->exclusive || (in_tls && p->handshake) ||
		    disc_svcdb_probe_has_port(p, port))
			continue;
		order[n++] = i;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Matching                                                           */

static size_t utf8_seq_len(const uint8_t *s, size_t len)
{
	uint8_t c = s[0];
	size_t need;
	uint32_t cp;

	if (c >= 0xc2 && c <= 0xdf)
		need = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4, cp = c & 0x07;
	else
		return 0;
	if (len < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
	if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need;
}

size_t disc_svc_clean_text(const uint8_t *buf, size_t len, char *out, size_t cap)
{
	size_t n = 0;
	bool space = false;

	if (cap == 0)
		return 0;
	for (size_t i = 0; i < len;) {
		uint8_t c = buf[i];
		size_t seq = c >= 0x80 ? utf8_seq_len(buf + i, len - i) : 1;

		if (c < 0x20 || c == 0x7f || c == ' ') {
			space = n > 0;
			i++;
			continue;
		}
		if (n + (space ? 1 : 0) + (seq ? seq : 1) >= cap)
			break;
		if (space)
			out[n++] = ' ';
		space = false;
		if (seq == 0) {
			out[n++] = '?';
			i++;
		} else {
			memcpy(out + n, buf + i, seq);
			n += seq;
			i += seq;
		}
	}
	out[n] = '\0';
	return n;
}

/* Expands tmpl with the capture groups of a match over buf into out (cleaned). */
static void expand(const char *tmpl, const uint8_t *buf, const PCRE2_SIZE *ov, uint32_t pairs,
		   char *out, size_t cap)
{
	uint8_t raw[DISC_SVC_FIELD_MAX * 2];
	size_t n = 0;

	for (const char *t = tmpl; *t && n < sizeof(raw); t++) {
		if (*t != '$') {
			raw[n++] = (uint8_t)*t;
			continue;
		}
		t++;
		if (*t == '$') {
			raw[n++] = '$';
			continue;
		}
		{
			uint32_t g = (uint32_t)(*t - '0');

			if (g < pairs && ov[2 * g] != PCRE2_UNSET && ov[2 * g + 1] >= ov[2 * g]) {
				size_t glen = ov[2 * g + 1] - ov[2 * g];

				if (glen > sizeof(raw) - n)
					glen = sizeof(raw) - n;
				memcpy(raw + n, buf + ov[2 * g], glen);
				n += glen;
			}
		}
	}
	disc_svc_clean_text(raw, n, out, cap);
}

static enum disc_status set_extra(struct disc_svc_match *m, const char *key, const char *value,
				  bool replace, struct disc_error *err)
{
	if (!*value || (!replace && m->extra && json_object_get(m->extra, key)))
		return DISC_OK;
	if (!m->extra && !(m->extra = json_object()))
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
	if (json_object_set_new(m->extra, key, json_string(value)) != 0)
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
	return DISC_OK;
}

/* 1 when re matched, 0 when not, -1 on an allocation failure. */
static int run(const struct disc_svcdb *db, pcre2_code *re, pcre2_match_data *md,
	       const uint8_t *buf, size_t len)
{
	int rc = pcre2_match(re, (PCRE2_SPTR)buf, len, 0, 0, md, db->mctx);

	if (rc == PCRE2_ERROR_NOMEMORY)
		return -1;
	/* Other errors (match or depth limit hit) count as no match. */
	return rc >= 0 ? 1 : 0;
}

static enum disc_status apply(const struct disc_svcdb *db, const struct rule *r,
			      pcre2_match_data *md, const uint8_t *buf, size_t len,
			      struct disc_svc_match *m, struct disc_error *err)
{
	const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
	uint32_t pairs = pcre2_get_ovector_count(md);
	char value[DISC_SVC_FIELD_MAX];

	snprintf(m->service, sizeof(m->service), "%s", r->service);
	m->confidence = r->confidence;
	m->line = r->line;
	if (r->product)
		expand(r->product, buf, ov, pairs, m->product, sizeof(m->product));
	if (r->version)
		expand(r->version, buf, ov, pairs, m->version, sizeof(m->version));
	for (size_t i = 0; i < r->n_extra; i++) {
		expand(r->extra[i].tmpl, buf, ov, pairs, value, sizeof(value));
		if (set_extra(m, r->extra[i].key, value, true, err))
			return DISC_ERR_NOMEM;
	}
	for (size_t i = 0; i < db->n_extracts; i++) {
		const struct extract *x = &db->extracts[i];
		pcre2_match_data *xmd;
		int rc;

		if (strcmp(x->service, r->service) != 0)
			continue;
		xmd = pcre2_match_data_create_from_pattern(x->re, NULL);
		if (!xmd)
			return disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
		rc = run(db, x->re, xmd, buf, len);
		if (rc > 0) {
			expand("$1", buf, pcre2_get_ovector_pointer(xmd), pcre2_get_ovector_count(xmd),
			       value, sizeof(value));
			if (set_extra(m, x->key, value, false, err)) {
				pcre2_match_data_free(xmd);
				return DISC_ERR_NOMEM;
			}
		}
		pcre2_match_data_free(xmd);
		if (rc < 0)
			return disc_error_set(err, DISC_ERR_NOMEM, "out of memory matching");
	}
	return DISC_OK;
}

enum disc_status disc_svcdb_match(const struct disc_svcdb *db, size_t probe, const uint8_t *buf,
				  size_t len, struct disc_svc_match *m, struct disc_error *err)
{
	size_t sets[2] = {probe, 0};
	size_t n_sets = probe == 0 ? 1 : 2;

	memset(m, 0, sizeof(*m));
	if (probe >= db->n_probes || len == 0)
		return DISC_OK;
	for (size_t s = 0; s < n_sets; s++) {
		const struct probe_rules *pl = &db->rules[sets[s]];

		for (size_t i = 0; i < pl->n; i++) {
			const struct rule *r = &pl->rules[i];
			pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->re, NULL);
			int rc;
			enum disc_status st = DISC_OK;

			if (!md)
				return disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
			rc = run(db, r->re, md, buf, len);
			if (rc > 0)
				st = apply(db, r, md, buf, len, m, err);
			pcre2_match_data_free(md);
			if (rc < 0)
				return disc_error_set(err, DISC_ERR_NOMEM, "out of memory matching");
			if (rc > 0)
				return st;
		}
	}
	return DISC_OK;
}

void disc_svc_match_release(struct disc_svc_match *m)
{
	json_decref(m->extra);
	m->extra = NULL;
}
