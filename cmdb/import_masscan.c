/*
 * import_masscan: masscan's JSON (-oJ) and NDJSON (-oD) output to
 * observations.
 *
 * Both formats are a sequence of JSON objects: -oJ wraps them in [ ] with
 * commas between (older masscan also left a comma after the last record and
 * wrote a non-JSON `{finished: 1}` before the `]`); -oD writes one per line.
 * A small scanner cuts the input into top-level objects (tracking strings,
 * so braces inside banners do not count) into a capped buffer, and Jansson
 * parses each one: memory is bounded by the largest record, not the file,
 * and a broken record is skipped without losing the ones after it.
 *
 * masscan records say nothing of the scan itself: targets and ports are not
 * in the file, so the scan observation has an empty target list (nothing
 * can be marked missing from it) and no port specification.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "import_internal.h"

/* masscan escapes each banner byte as up to six characters and caps
 * banners at 64 KiB; a record beyond this is not masscan's. */
#define RECORD_MAX (512 * 1024)

/* The IPv4 addresses already reported as hosts: open addressing over
 * address + 1 (0 marks a free slot). */
struct ip_set {
	uint64_t *slot; /* owned */
	size_t cap, n;
};

struct masscan {
	struct cmdb_import_run run;
	FILE *f;
	unsigned long line;
	char *rec; /* owned, RECORD_MAX bytes */
	size_t rec_len;
	bool rec_overflow;
	unsigned long rec_line;
	bool array_mode;	  /* the input began with [ */
	bool closed;		  /* ... and its ] was seen */
	bool junk_after;	  /* data after the ] */
	bool truncated;		  /* a record was cut off by the end of the file */
	bool saw_content;	  /* anything but white space */
	int last_char, prev_char; /* the last two read; EOF counts */
	struct ip_set hosts;
	bool scan_sent;
	char first_at[32], last_at[32], file_at[32];
	int64_t last_ts;
};

static bool ip_set_add(struct ip_set *s, uint32_t ip, bool *added)
{
	uint64_t key = (uint64_t)ip + 1;
	size_t i;

	if (s->n * 2 >= s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		uint64_t *ns = calloc(ncap, sizeof(*ns));

		if (!ns)
			return false;
		for (size_t k = 0; k < s->cap; k++) {
			if (!s->slot[k])
				continue;
			for (i = (size_t)(s->slot[k] * 0x9e3779b97f4a7c15u) & (ncap - 1); ns[i];
			     i = (i + 1) & (ncap - 1))
				;
			ns[i] = s->slot[k];
		}
		free(s->slot);
		s->slot = ns;
		s->cap = ncap;
	}
	for (i = (size_t)(key * 0x9e3779b97f4a7c15u) & (s->cap - 1); s->slot[i];
	     i = (i + 1) & (s->cap - 1)) {
		if (s->slot[i] == key) {
			*added = false;
			return true;
		}
	}
	s->slot[i] = key;
	s->n++;
	*added = true;
	return true;
}

static int next_char(struct masscan *m)
{
	int c = getc_unlocked(m->f);

	if (m->last_char == '\n')
		m->line++;
	m->prev_char = m->last_char;
	m->last_char = c;
	return c;
}

static void skip_line(struct masscan *m)
{
	int c = m->last_char;

	while (c != '\n' && c != EOF)
		c = next_char(m);
}

/* ---- observations ---- */

static cmdb_rc send_scan(struct masscan *m)
{
	json_t *obs, *options;

	if (m->scan_sent)
		return CMDB_OK;
	m->scan_sent = true;
	obs = cmdb_import_obs_new(&m->run, "scan", m->first_at[0] ? m->first_at : m->file_at);
	cmdb_import_set(&m->run, obs, "targets", json_array());
	options = json_object();
	cmdb_import_set_str(&m->run, options, "importer", "masscan");
	cmdb_import_set_str(&m->run, options, "format", m->array_mode ? "json" : "ndjson");
	cmdb_import_set(&m->run, obs, "options", options);
	return cmdb_import_emit(&m->run, obs);
}

/* One port fact from either format. */
struct event {
	const char *proto;
	int64_t port;
	const char *status; /* status records */
	const char *reason;
	int64_t ttl;	     /* -1: unknown */
	const char *service; /* banner records */
	const char *banner;
	size_t banner_len;
};

static cmdb_rc send_host(struct masscan *m, const char *ip, uint32_t ip_n, const char *at,
			 const struct event *ev)
{
	json_t *obs;
	bool added;

	if (!ip_set_add(&m->hosts, ip_n, &added))
		return cmdb_error_set(m->run.err, CMDB_ENOMEM, "%s: out of memory", m->run.name);
	if (!added)
		return CMDB_OK;
	obs = cmdb_import_obs_new(&m->run, "host", at);
	cmdb_import_set_str(&m->run, obs, "ip", ip);
	if (ev->status && ev->ttl >= 0)
		cmdb_import_set(&m->run, obs, "ttl", json_integer(ev->ttl));
	if (ev->status && ev->reason)
		cmdb_import_set_text(&m->run, obs, "reason", ev->reason);
	return cmdb_import_emit(&m->run, obs);
}

/* masscan writes each banner byte that is not printable ASCII as \u00XX, so
 * after JSON decoding every code point below U+0100 is one byte. Anything
 * above (not masscan's) is kept as its UTF-8 bytes. Returns the byte count
 * written to out (at most CMDB_IMPORT_BANNER_MAX + 4). */
static size_t banner_bytes(const char *s, size_t len, uint8_t *out, bool *more)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, o = 0;

	*more = false;
	while (i < len) {
		if (o >= CMDB_IMPORT_BANNER_MAX) {
			*more = true;
			break;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xc3 && i + 1 < len) {
			out[o++] = (uint8_t)(((p[i] & 0x1f) << 6) | (p[i + 1] & 0x3f));
			i += 2;
		} else {
			out[o++] = p[i++];
		}
	}
	return o;
}

static bool service_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

static cmdb_rc send_event(struct masscan *m, const char *ip, uint32_t ip_n, const char *at,
			  const struct event *ev)
{
	struct cmdb_import_run *run = &m->run;
	json_t *obs;
	cmdb_rc rc;

	if (ev->status && strcmp(ev->status, "open") != 0)
		return CMDB_OK; /* closed ports only with --show closed; not reported */
	/* X509 records are base64 certificates, not banners: not parsed here. */
	if (ev->service && (strcmp(ev->service, "X509") == 0 || strcmp(ev->service, "X509CA") == 0))
		return CMDB_OK;
	if ((rc = send_scan(m)) != CMDB_OK || (rc = send_host(m, ip, ip_n, at, ev)) != CMDB_OK)
		return rc;
	if (strcmp(ev->proto, "icmp") == 0)
		return CMDB_OK; /* a ping reply shows the host, not a port */
	if (ev->status) {
		obs = cmdb_import_obs_new(run, "port", at);
		cmdb_import_set_str(run, obs, "ip", ip);
		cmdb_import_set_str(run, obs, "proto", ev->proto);
		cmdb_import_set(run, obs, "port", json_integer(ev->port));
		cmdb_import_set_str(run, obs, "state", "open");
		if (ev->reason)
			cmdb_import_set_text(run, obs, "reason", ev->reason);
		return cmdb_import_emit(run, obs);
	}
	obs = cmdb_import_obs_new(run, "service", at);
	cmdb_import_set_str(run, obs, "ip", ip);
	cmdb_import_set_str(run, obs, "proto", ev->proto);
	cmdb_import_set(run, obs, "port", json_integer(ev->port));
	if (strcmp(ev->service, "title") == 0) {
		/* masscan reports an HTML page's title as a banner of its own. */
		json_t *extra = json_object();

		cmdb_import_set_str(run, obs, "service", "http");
		if (ev->banner)
			cmdb_import_set_text(run, extra, "title", ev->banner);
		cmdb_import_set(run, obs, "extra", extra);
	} else {
		uint8_t bytes[CMDB_IMPORT_BANNER_MAX + 4];
		bool more, cut;
		size_t n;

		cmdb_import_set_str(run, obs, "service",
				    service_name_ok(ev->service) ? ev->service : "unknown");
		if (ev->banner && ev->banner_len) {
			n = banner_bytes(ev->banner, ev->banner_len, bytes, &more);
			cmdb_import_set(run, obs, "banner", cmdb_import_banner(bytes, n, &cut));
			if (more || cut)
				cmdb_import_set(run, obs, "banner_truncated", json_true());
		}
	}
	return cmdb_import_emit(run, obs);
}

/* ---- records ---- */

static bool get_int(json_t *v, int64_t min, int64_t max, int64_t *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return *out >= min && *out <= max;
	}
	return json_is_string(v) && cmdb_import_parse_int(json_string_value(v), min, max, out);
}

/* A string member without NUL bytes (records are parsed with NULs allowed,
 * since masscan writes a banner's zero bytes as \u0000). */
static const char *get_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

/* Fills ev from a -oJ port entry or a -oD record; false if it is not one. */
static bool event_from(json_t *port_obj, json_t *data, const char *rec_type, struct event *ev)
{
	json_t *svc;

	memset(ev, 0, sizeof(*ev));
	ev->ttl = -1;
	ev->proto = get_str(port_obj, "proto");
	if (!ev->proto || !get_int(json_object_get(port_obj, "port"), 0, 65535, &ev->port))
		return false;
	if (strcmp(ev->proto, "tcp") != 0 && strcmp(ev->proto, "udp") != 0 &&
	    strcmp(ev->proto, "icmp") != 0)
		return false;
	if (data) { /* -oD */
		if (rec_type && strcmp(rec_type, "banner") == 0) {
			svc = data;
			ev->service = get_str(svc, "service_name");
		} else {
			ev->status = get_str(data, "status");
			ev->reason = get_str(data, "reason");
			if (!get_int(json_object_get(data, "ttl"), 0, 255, &ev->ttl))
				ev->ttl = -1;
			return ev->status != NULL;
		}
	} else if ((svc = json_object_get(port_obj, "service")) && json_is_object(svc)) {
		ev->service = get_str(svc, "name");
	} else {
		ev->status = get_str(port_obj, "status");
		ev->reason = get_str(port_obj, "reason");
		if (!get_int(json_object_get(port_obj, "ttl"), 0, 255, &ev->ttl))
			ev->ttl = -1;
		return ev->status != NULL;
	}
	if (!ev->service)
		return false;
	if (json_is_string(json_object_get(svc, "banner"))) {
		ev->banner = json_string_value(json_object_get(svc, "banner"));
		ev->banner_len = json_string_length(json_object_get(svc, "banner"));
	}
	return true;
}

static cmdb_rc handle_record(struct masscan *m, json_t *rec)
{
	const char *ip = get_str(rec, "ip");
	json_t *ports = json_object_get(rec, "ports"), *p;
	struct in_addr a4;
	struct in6_addr a6;
	char ipbuf[INET_ADDRSTRLEN], at[32];
	int64_t ts;
	struct event ev;
	cmdb_rc rc;
	size_t i;

	if (!ip) {
		cmdb_import_skip(&m->run, m->rec_line, "record without an \"ip\" skipped");
		return CMDB_OK;
	}
	if (inet_pton(AF_INET, ip, &a4) != 1) {
		if (inet_pton(AF_INET6, ip, &a6) == 1)
			cmdb_import_skip(
				&m->run, m->rec_line,
				"IPv6 address %.64s skipped (observation format version 1 is "
				"IPv4 only)",
				ip);
		else
			cmdb_import_skip(&m->run, m->rec_line, "invalid IPv4 address skipped");
		return CMDB_OK;
	}
	inet_ntop(AF_INET, &a4, ipbuf, sizeof(ipbuf));
	if (get_int(json_object_get(rec, "timestamp"), 0, INT64_MAX, &ts) &&
	    cmdb_import_time_str(ts, 0, at)) {
		if (!m->first_at[0])
			memcpy(m->first_at, at, sizeof(at));
		if (!m->last_at[0] || ts > m->last_ts) {
			memcpy(m->last_at, at, sizeof(at));
			m->last_ts = ts;
		}
	} else {
		/* No usable time: the latest one seen is the best guess. */
		memcpy(at, m->last_at[0] ? m->last_at : m->file_at, sizeof(at));
	}
	if (json_is_array(ports)) { /* -oJ */
		size_t used = 0;

		json_array_foreach(ports, i, p)
		{
			if (!json_is_object(p) || !event_from(p, NULL, NULL, &ev))
				continue;
			used++;
			if ((rc = send_event(m, ipbuf, ntohl(a4.s_addr), at, &ev)) != CMDB_OK)
				return rc;
		}
		if (used == 0)
			cmdb_import_skip(&m->run, m->rec_line,
					 "record without a usable port skipped");
		return CMDB_OK;
	}
	if (!event_from(rec, json_object_get(rec, "data"), get_str(rec, "rec_type"), &ev)) {
		cmdb_import_skip(&m->run, m->rec_line, "record without a usable port skipped");
		return CMDB_OK;
	}
	return send_event(m, ipbuf, ntohl(a4.s_addr), at, &ev);
}

/* The old end marker, `{finished: 1}` in any spacing. */
static bool is_finished_marker(const char *s, size_t len)
{
	static const char want[] = "{finished:1}";
	size_t w = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
			continue;
		if (w >= sizeof(want) - 1 || s[i] != want[w++])
			return false;
	}
	return w == sizeof(want) - 1;
}

/* Reads one object, whose { was just read, into m->rec. Returns false at the
 * end of the input (the record is then cut off). */
static bool read_object(struct masscan *m)
{
	int depth = 1, c;
	bool in_str = false, esc = false;

	m->rec_len = 0;
	m->rec_overflow = false;
	m->rec_line = m->line;
	m->rec[m->rec_len++] = '{';
	for (;;) {
		if ((c = next_char(m)) == EOF)
			return false;
		if (m->rec_len < RECORD_MAX)
			m->rec[m->rec_len++] = (char)c;
		else
			m->rec_overflow = true;
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			else if (c == '\n')
				return true; /* JSON strings hold no raw newline: the parse fails */
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if ((c == '}' || c == ']') && --depth == 0) {
			return true;
		}
	}
}

static cmdb_rc read_all(struct masscan *m)
{
	json_error_t jerr;
	json_t *rec;
	cmdb_rc rc;
	int c;

	while ((c = next_char(m)) != EOF) {
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (m->closed) {
			m->junk_after = true;
			cmdb_import_skip(&m->run, m->line, "data after the closing ] ignored");
			skip_line(m);
			continue;
		}
		if (c == '[' && !m->saw_content) {
			m->saw_content = m->array_mode = true;
			continue;
		}
		m->saw_content = true;
		if (c == ',')
			continue; /* between records, and masscan's trailing comma */
		if (c == ']' && m->array_mode) {
			m->closed = true;
			continue;
		}
		if (c != '{') {
			cmdb_import_skip(&m->run, m->line,
					 "unexpected character '%c' (0x%02x), line skipped",
					 c >= 0x20 && c < 0x7f ? c : '?', (unsigned)c);
			skip_line(m);
			continue;
		}
		if (!read_object(m)) {
			m->truncated = true;
			m->run.stats->records++;
			cmdb_import_skip(&m->run, m->rec_line,
					 "record cut off by the end of the file");
			break;
		}
		if (is_finished_marker(m->rec, m->rec_len))
			continue;
		m->run.stats->records++;
		if (m->rec_overflow) {
			cmdb_import_skip(&m->run, m->rec_line,
					 "record longer than %d bytes skipped", RECORD_MAX);
			continue;
		}
		rec = json_loadb(m->rec, m->rec_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
				 &jerr);
		if (!rec || !json_is_object(rec)) {
			cmdb_import_skip(
				&m->run,
				m->rec_line + (jerr.line > 1 ? (unsigned long)jerr.line - 1 : 0),
				"not a JSON object: %s", rec ? "not an object" : jerr.text);
			json_decref(rec);
			if (m->last_char != '}')
				skip_line(m);
			continue;
		}
		rc = handle_record(m, rec);
		json_decref(rec);
		if (rc != CMDB_OK)
			return rc;
	}
	if (ferror(m->f))
		return cmdb_error_set(m->run.err, CMDB_ESYS, "%s:%lu: read error: %s", m->run.name,
				      m->line, strerror(errno));
	return CMDB_OK;
}

static cmdb_rc send_scan_end(struct masscan *m)
{
	json_t *obs;
	/* -oJ ends properly with its ]; -oD has no end marker, so a file whose
	 * last record is whole and ends its line is taken as finished. */
	bool complete = !m->truncated && !m->junk_after &&
			(m->array_mode ? m->closed : m->saw_content && m->prev_char == '\n');
	cmdb_rc rc;

	if ((rc = send_scan(m)) != CMDB_OK)
		return rc;
	obs = cmdb_import_obs_new(&m->run, "scan_end", m->last_at[0] ? m->last_at : m->file_at);
	cmdb_import_set(&m->run, obs, "complete", json_boolean(complete));
	return cmdb_import_emit(&m->run, obs);
}

cmdb_rc cmdb_import_masscan_stream(FILE *f, const char *name, cmdb_obs_sink sink, void *ctx,
				   struct cmdb_import_stats *stats, struct cmdb_error *err)
{
	struct cmdb_import_stats local;
	struct cmdb_import_digest d;
	struct masscan m;
	struct stat st;
	cmdb_rc rc;

	memset(&m, 0, sizeof(m));
	cmdb_import_run_init(&m.run, name, sink, ctx, stats, &local, err);
	m.f = f;
	m.line = 1;
	/* Same bytes, same scan: a first pass hashes the file. A pipe cannot be
	 * read twice; it gets an id of its name and the time. */
	cmdb_import_digest_init(&d);
	cmdb_import_digest_add(&d, "masscan", 8);
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
	    cmdb_import_time_str((int64_t)st.st_mtim.tv_sec, (int)(st.st_mtim.tv_nsec / 1000000),
				 m.file_at)) {
		/* the file's time stands in where records carry none */
	} else {
		cmdb_import_time_now(m.file_at);
	}
	if (!cmdb_import_digest_stream(&d, f)) {
		cmdb_import_digest_add(&d, name, strlen(name));
		cmdb_import_digest_add(&d, m.file_at, strlen(m.file_at));
	}
	cmdb_import_digest_uuid(&d, m.run.scan_id);
	m.rec = malloc(RECORD_MAX); /* freed below */
	if (!m.rec)
		return cmdb_error_set(m.run.err, CMDB_ENOMEM, "%s: out of memory", name);
	rc = read_all(&m);
	if (rc == CMDB_OK)
		rc = send_scan_end(&m);
	free(m.rec);
	free(m.hosts.slot);
	return rc;
}

cmdb_rc cmdb_import_masscan_json(const char *path, cmdb_obs_sink sink, void *ctx,
				 struct cmdb_import_stats *stats, struct cmdb_error *err)
{
	FILE *f = fopen(path, "rb");
	cmdb_rc rc;

	if (!f) {
		if (stats)
			memset(stats, 0, sizeof(*stats));
		return cmdb_error_set(err, CMDB_ESYS, "%s: cannot open: %s", path, strerror(errno));
	}
	rc = cmdb_import_masscan_stream(f, path, sink, ctx, stats, err);
	fclose(f);
	return rc;
}
