/* disc_xml: nmap-compatible XML from observations (see disc/xml.h). */
#include "disc/xml.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxml/xmlwriter.h>
#include "disc/ports.h"

/*
 * Host, port and service observations are kept as their compact JSON text,
 * with what sorting needs beside it, in one flat array: a few hundred bytes
 * per line, where holding the Jansson objects would cost kilobytes. At the
 * end they are sorted by address, then (protocol, port), and each is parsed
 * again as it is written.
 */
enum rec_kind { REC_HOST, REC_PORT, REC_SERVICE };

struct rec {
	uint32_t ip;
	uint16_t port;
	uint8_t kind;  /* enum rec_kind */
	uint8_t proto; /* 0 tcp, 1 udp, 2 other: sorts like nmap's lists */
	uint32_t seq;  /* arrival, to keep the first of duplicates first */
	char *text;    /* owned */
};

struct disc_xml {
	json_t *scan, *scan_end; /* references, or NULL */
	struct rec *recs;	 /* owned */
	size_t n_recs, cap_recs;
	bool failed;
};

struct disc_xml *disc_xml_new(void)
{
	return calloc(1, sizeof(struct disc_xml));
}

void disc_xml_free(struct disc_xml *x)
{
	if (!x)
		return;
	json_decref(x->scan);
	json_decref(x->scan_end);
	for (size_t i = 0; i < x->n_recs; i++)
		free(x->recs[i].text);
	free(x->recs);
	free(x);
}

static bool parse_ip(const char *s, uint32_t *out)
{
	unsigned a, b, c, d;
	char tail;

	if (!s || sscanf(s, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 ||
	    b > 255 || c > 255 || d > 255)
		return false;
	*out = a << 24 | b << 16 | c << 8 | d;
	return true;
}

enum disc_status disc_xml_add(struct disc_xml *x, const json_t *obs, struct disc_error *err)
{
	const char *kind = json_string_value(json_object_get(obs, "kind"));
	const char *proto = json_string_value(json_object_get(obs, "proto"));
	json_t *port = json_object_get(obs, "port");
	struct rec r = {0};

	if (x->failed)
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory building the XML");
	if (!kind)
		return DISC_OK;
	if (strcmp(kind, "scan") == 0 || strcmp(kind, "scan_end") == 0) {
		json_t **slot = kind[4] ? &x->scan_end : &x->scan;

		/* A reference, not a copy: a line is never changed once written. */
		json_decref(*slot);
		*slot = json_incref((json_t *)obs);
		return DISC_OK;
	}
	if (strcmp(kind, "host") == 0)
		r.kind = REC_HOST;
	else if (strcmp(kind, "port") == 0)
		r.kind = REC_PORT;
	else if (strcmp(kind, "service") == 0)
		r.kind = REC_SERVICE;
	else
		return DISC_OK;
	if (!parse_ip(json_string_value(json_object_get(obs, "ip")), &r.ip))
		return DISC_OK;
	if (r.kind != REC_HOST) {
		if (!proto || !json_is_integer(port) || json_integer_value(port) < 0 ||
		    json_integer_value(port) > 65535)
			return DISC_OK;
		r.port = (uint16_t)json_integer_value(port);
		r.proto = strcmp(proto, "tcp") == 0 ? 0 : strcmp(proto, "udp") == 0 ? 1 : 2;
	}
	if (x->n_recs == x->cap_recs) {
		size_t ncap = x->cap_recs ? x->cap_recs * 2 : 256;
		struct rec *n = realloc(x->recs, ncap * sizeof(*n));

		if (!n)
			goto nomem;
		x->recs = n;
		x->cap_recs = ncap;
	}
	r.seq = (uint32_t)x->n_recs;
	r.text = json_dumps(obs, JSON_COMPACT);
	if (!r.text)
		goto nomem;
	x->recs[x->n_recs++] = r;
	return DISC_OK;
nomem:
	x->failed = true;
	return disc_error_set(err, DISC_ERR_NOMEM, "out of memory building the XML");
}

void disc_xml_tee(void *ctx, const json_t *obs)
{
	disc_xml_add(ctx, obs, NULL);
}

/* ---- writing ---- */

/* Seconds since the epoch of an RFC 3339 UTC time as the scanner writes it; -1 if not one. */
static long long epoch_of(const char *s)
{
	struct tm tm;
	const char *rest;

	if (!s)
		return -1;
	memset(&tm, 0, sizeof(tm));
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return -1;
	return (long long)timegm(&tm);
}

static const char *str_of(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Collects the first libxml2 failure, so that calls can be chained and checked once. */
struct xw {
	xmlTextWriterPtr w;
	bool ok;
};

static void start(struct xw *x, const char *name)
{
	if (x->ok && xmlTextWriterStartElement(x->w, BAD_CAST name) < 0)
		x->ok = false;
}

static void end(struct xw *x)
{
	if (x->ok && xmlTextWriterEndElement(x->w) < 0)
		x->ok = false;
}

static void attr(struct xw *x, const char *name, const char *value)
{
	if (x->ok && value && xmlTextWriterWriteAttribute(x->w, BAD_CAST name, BAD_CAST value) < 0)
		x->ok = false;
}

static void attr_ll(struct xw *x, const char *name, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	attr(x, name, buf);
}

static void newline(struct xw *x)
{
	if (x->ok && xmlTextWriterWriteString(x->w, BAD_CAST "\n") < 0)
		x->ok = false;
}

static void time_str(long long t, char buf[64])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, 64, "%a %b %e %H:%M:%S %Y", &tm);
}

/* "22,80,1000-2000": the port list as ranges, as nmap's scaninfo services. */
static char *port_ranges(const uint16_t *ports, size_t n)
{
	size_t cap = n * 12 + 1, o = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < n;) {
		uint16_t lo, hi;

		i = disc_ports_run(ports, n, i, &lo, &hi);
		if (lo == hi)
			o += (size_t)snprintf(s + o, cap - o, "%s%u", o ? "," : "", lo);
		else
			o += (size_t)snprintf(s + o, cap - o, "%s%u-%u", o ? "," : "", lo, hi);
	}
	return s;
}

/* nmap writes MACs in upper case. */
static void upper_mac(const char *mac, char out[18])
{
	size_t i;

	for (i = 0; i < 17 && mac[i]; i++)
		out[i] = (char)toupper((unsigned char)mac[i]);
	out[i] = '\0';
}

/* An OS family's vendor for osclass (nmap's "vendor" attribute). */
static const char *os_vendor(const char *family)
{
	static const struct {
		const char *family, *vendor;
	} map[] = {{"Windows", "Microsoft"},
		   {"macOS", "Apple"},
		   {"iOS", "Apple"},
		   {"Cisco IOS", "Cisco"},
		   {"Solaris", "Oracle"}};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].family, family) == 0)
			return map[i].vendor;
	return family;
}

/* The service's extra fields as one "key: value; ..." string (nmap's extrainfo). */
static char *extrainfo(const json_t *extra)
{
	const char *key;
	json_t *v;
	size_t cap = 0, o = 0;
	char *s = NULL;

	json_object_foreach((json_t *)extra, key, v)
	{
		const char *val = json_string_value(v);
		size_t need;
		char *ns;

		if (!val)
			continue;
		need = o + strlen(key) + strlen(val) + 5;
		if (need > cap) {
			cap = need * 2;
			ns = realloc(s, cap);
			if (!ns) {
				free(s);
				return NULL;
			}
			s = ns;
		}
		o += (size_t)snprintf(s + o, cap - o, "%s%s: %s", o ? "; " : "", key, val);
	}
	return s;
}

static void write_service(struct xw *x, const json_t *svc)
{
	json_t *conf = json_object_get(svc, "confidence");
	const char *banner = str_of(svc, "banner");
	char *extra = NULL;

	start(x, "service");
	attr(x, "name", str_of(svc, "service"));
	attr(x, "product", str_of(svc, "product"));
	attr(x, "version", str_of(svc, "version"));
	if (json_is_object(json_object_get(svc, "extra"))) {
		extra = extrainfo(json_object_get(svc, "extra"));
		if (extra && *extra)
			attr(x, "extrainfo", extra);
	}
	if (json_object_get(svc, "tls"))
		attr(x, "tunnel", "ssl");
	attr(x, "method", "probed");
	/*
	 * nmap's conf is 0-10, ours 0-100. Without one (a banner recorded, no
	 * match) it is the 3 nmap gives a name it only guessed.
	 */
	attr_ll(x, "conf", json_is_integer(conf) ? (json_integer_value(conf) + 5) / 10 : 3);
	end(x);
	free(extra);
	if (banner) {
		start(x, "script");
		attr(x, "id", "banner");
		attr(x, "output", banner);
		end(x);
	}
}

static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	/* the host first, then each (protocol, port) with its port line before its service */
	if ((x->kind == REC_HOST) != (y->kind == REC_HOST))
		return x->kind == REC_HOST ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static json_t *load(const struct rec *r)
{
	return r ? json_loads(r->text, 0, NULL) : NULL;
}

/* One port: its port line p and service line svc (either may be NULL, not both). */
static void write_port(struct xw *x, const json_t *p, const json_t *svc, const json_t *ttl)
{
	const json_t *src = p ? p : svc;

	start(x, "port");
	attr(x, "protocol", str_of(src, "proto"));
	attr_ll(x, "portid", json_integer_value(json_object_get(src, "port")));
	start(x, "state");
	/* A service line without a port line: something answered, so it is open. */
	attr(x, "state", p ? str_of(p, "state") : "open");
	attr(x, "reason", p && str_of(p, "reason") ? str_of(p, "reason") : "syn-ack");
	attr_ll(x, "reason_ttl", json_is_integer(ttl) ? json_integer_value(ttl) : 0);
	end(x);
	if (svc)
		write_service(x, svc);
	end(x);
}

/*
 * A host from its records r[0..n): the host lines first, then ports and
 * services sorted. A host line repeated later (a streaming scan writes one
 * when it learns more: a TTL, a MAC, the OS guess, a SYN proxy) says it
 * all: the last one counts, with the time of the first, when the host was
 * seen.
 */
static void write_host(struct xw *x, const struct rec *r, size_t n, long long fallback_time)
{
	size_t i = 1;
	json_t *first, *h;
	json_t *ttl, *os;
	const char *mac, *hostname, *ip;
	long long at;

	while (i < n && r[i].kind == REC_HOST)
		i++;
	first = load(&r[0]);
	h = i > 1 ? load(&r[i - 1]) : json_incref(first);
	if (!first || !h) {
		json_decref(first);
		json_decref(h);
		x->ok = false;
		return;
	}
	at = epoch_of(str_of(first, "at"));
	json_decref(first);
	ttl = json_object_get(h, "ttl");
	os = json_object_get(h, "os");
	mac = str_of(h, "mac");
	hostname = str_of(h, "hostname");
	ip = str_of(h, "ip");
	if (at < 0)
		at = fallback_time;
	start(x, "host");
	attr_ll(x, "starttime", at);
	attr_ll(x, "endtime", at);
	start(x, "status");
	attr(x, "state", "up");
	attr(x, "reason", str_of(h, "reason") ? str_of(h, "reason") : "unknown");
	attr_ll(x, "reason_ttl", json_is_integer(ttl) ? json_integer_value(ttl) : 0);
	end(x);
	start(x, "address");
	attr(x, "addr", ip);
	attr(x, "addrtype", "ipv4");
	end(x);
	if (mac) {
		char up[18];

		upper_mac(mac, up);
		start(x, "address");
		attr(x, "addr", up);
		attr(x, "addrtype", "mac");
		attr(x, "vendor", str_of(h, "vendor"));
		end(x);
	}
	start(x, "hostnames");
	if (hostname) {
		start(x, "hostname");
		attr(x, "name", hostname);
		attr(x, "type", "user");
		end(x);
	}
	end(x);
	start(x, "ports");
	while (i < n) {
		const struct rec *pr = NULL, *sr = NULL;
		size_t j = i;
		json_t *p, *svc;

		/* the first port line and the first service line of this (proto, port) */
		for (; j < n && r[j].proto == r[i].proto && r[j].port == r[i].port; j++) {
			if (r[j].kind == REC_PORT && !pr)
				pr = &r[j];
			else if (r[j].kind == REC_SERVICE && !sr)
				sr = &r[j];
		}
		p = load(pr);
		svc = load(sr);
		if ((pr && !p) || (sr && !svc))
			x->ok = false;
		else
			write_port(x, p, svc, ttl);
		json_decref(p);
		json_decref(svc);
		i = j;
	}
	end(x);
	if (json_is_object(os) && str_of(os, "family")) {
		const char *family = str_of(os, "family"), *guess = str_of(os, "guess");
		json_t *conf = json_object_get(os, "confidence");
		long long acc = json_is_integer(conf) ? json_integer_value(conf) : 50;

		start(x, "os");
		start(x, "osmatch");
		attr(x, "name", guess ? guess : family);
		attr_ll(x, "accuracy", acc);
		attr(x, "line", "0");
		start(x, "osclass");
		attr(x, "type", "general purpose");
		attr(x, "vendor", os_vendor(family));
		attr(x, "osfamily", family);
		attr_ll(x, "accuracy", acc);
		end(x);
		end(x);
		end(x);
	}
	end(x);
	newline(x);
	json_decref(h);
}

enum disc_status disc_xml_render(const struct disc_xml *x, const struct disc_xml_info *info,
				 char **out, size_t *len, struct disc_error *err)
{
	xmlBufferPtr buf = NULL;
	struct xw w = {NULL, true};
	long long start_t = -1, end_t;
	size_t i, up = 0;
	bool complete = x->scan_end && json_is_true(json_object_get(x->scan_end, "complete"));
	double elapsed =
		x->scan_end ? json_number_value(json_object_get(x->scan_end, "duration")) : 0;
	char tbuf[64], summary[256], ebuf[32];
	enum disc_status st = DISC_OK;

	*out = NULL;
	*len = 0;
	if (x->failed)
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory building the XML");
	if (x->scan)
		start_t = epoch_of(str_of(x->scan, "started"));
	if (start_t < 0)
		start_t = (long long)time(NULL);
	end_t = x->scan_end ? epoch_of(str_of(x->scan_end, "at")) : -1;
	if (end_t < 0)
		end_t = (long long)time(NULL);
	buf = xmlBufferCreate();
	if (buf) {
		/* Doubling: growing by what each write needs makes writing quadratic. */
		xmlBufferSetAllocationScheme(buf, XML_BUFFER_ALLOC_DOUBLEIT);
		w.w = xmlNewTextWriterMemory(buf, 0);
	}
	if (!w.w) {
		st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory writing the XML");
		goto out;
	}
	if (xmlTextWriterStartDocument(w.w, "1.0", "UTF-8", NULL) < 0 ||
	    xmlTextWriterWriteDTD(w.w, BAD_CAST "nmaprun", NULL, NULL, NULL) < 0)
		w.ok = false;
	newline(&w);
	start(&w, "nmaprun");
	attr(&w, "scanner", "cmdb");
	attr(&w, "args", info->args);
	attr_ll(&w, "start", start_t);
	time_str(start_t, tbuf);
	attr(&w, "startstr", tbuf);
	attr(&w, "version", info->version);
	attr(&w, "xmloutputversion", "1.05");
	newline(&w);
	if (info->scan_type) {
		char *services = port_ranges(info->ports, info->n_ports);

		if (!services) {
			st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory writing the XML");
			goto out;
		}
		start(&w, "scaninfo");
		attr(&w, "type", info->scan_type);
		attr(&w, "protocol", "tcp");
		attr_ll(&w, "numservices", (long long)info->n_ports);
		attr(&w, "services", services);
		end(&w);
		newline(&w);
		free(services);
	}
	start(&w, "verbose");
	attr(&w, "level", "0");
	end(&w);
	newline(&w);
	start(&w, "debugging");
	attr(&w, "level", "0");
	end(&w);
	newline(&w);
	if (x->n_recs)
		qsort(x->recs, x->n_recs, sizeof(*x->recs), cmp_rec);
	for (i = 0; i < x->n_recs;) {
		size_t j = i;

		while (j < x->n_recs && x->recs[j].ip == x->recs[i].ip)
			j++;
		/* Ports and services whose host line never came are not a host nmap would list. */
		if (x->recs[i].kind == REC_HOST) {
			write_host(&w, &x->recs[i], j - i, start_t);
			up++;
		}
		i = j;
	}
	start(&w, "runstats");
	start(&w, "finished");
	attr_ll(&w, "time", end_t);
	time_str(end_t, tbuf);
	attr(&w, "timestr", tbuf);
	snprintf(ebuf, sizeof(ebuf), "%.2f", elapsed);
	snprintf(summary, sizeof(summary), "cmdb discover done at %s; %zu %s up, in %s seconds",
		 tbuf, up, up == 1 ? "host" : "hosts", ebuf);
	attr(&w, "summary", summary);
	attr(&w, "elapsed", ebuf);
	attr(&w, "exit", complete ? "success" : "error");
	if (!complete)
		attr(&w, "errormsg",
		     x->scan_end ? "the scan was interrupted; results are incomplete"
				 : "interrupted before the end");
	end(&w);
	start(&w, "hosts");
	attr_ll(&w, "up", (long long)up);
	attr(&w, "down", "0");
	attr_ll(&w, "total", (long long)up);
	end(&w);
	end(&w); /* runstats */
	end(&w); /* nmaprun */
	newline(&w);
	if (w.ok && xmlTextWriterEndDocument(w.w) < 0)
		w.ok = false;
	xmlFreeTextWriter(w.w); /* flushes into buf */
	w.w = NULL;
	if (!w.ok) {
		st = disc_error_set(err, DISC_ERR_NOMEM, "libxml2 could not write the XML");
		goto out;
	}
	*len = (size_t)xmlBufferLength(buf);
	*out = malloc(*len + 1);
	if (!*out) {
		*len = 0;
		st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory writing the XML");
		goto out;
	}
	memcpy(*out, xmlBufferContent(buf), *len);
	(*out)[*len] = '\0';
out:
	if (w.w)
		xmlFreeTextWriter(w.w);
	if (buf)
		xmlBufferFree(buf);
	return st;
}

enum disc_status disc_xml_write_fd(const struct disc_xml *x, const struct disc_xml_info *info,
				   int fd, const char *name, struct disc_error *err)
{
	char *doc = NULL;
	size_t len = 0, done = 0;
	enum disc_status st = disc_xml_render(x, info, &doc, &len, err);

	if (st != DISC_OK)
		return st;
	if (ftruncate(fd, 0) != 0 && errno != EINVAL) {
		st = disc_error_set(err, DISC_ERR_IO, "cannot write %s: %s", name, strerror(errno));
		goto out;
	}
	if (lseek(fd, 0, SEEK_SET) < 0 && errno != ESPIPE) {
		st = disc_error_set(err, DISC_ERR_IO, "cannot write %s: %s", name, strerror(errno));
		goto out;
	}
	while (done < len) {
		ssize_t n = write(fd, doc + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			st = disc_error_set(err, DISC_ERR_IO, "cannot write %s: %s", name,
					    n < 0 ? strerror(errno) : "short write");
			goto out;
		}
		done += (size_t)n;
	}
out:
	free(doc);
	return st;
}
