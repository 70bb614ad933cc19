/* disc_obs: observation format version 1 with Jansson (see disc/obs.h, docs/observations.md). */
#include "disc/obs.h"

#include <stdlib.h>
#include <string.h>

#include "disc/random.h"

/* Collects the first failure, so builders can set many fields and check once. */
struct builder {
	json_t *obj;
	bool ok;
};

static void put(struct builder *b, const char *key, json_t *value)
{
	/* json_object_set_new releases value even when it fails; a NULL value fails too. */
	if (!b->ok || !value || json_object_set_new(b->obj, key, value) != 0) {
		b->ok = false;
		json_decref(value);
	}
}

static void put_str(struct builder *b, const char *key, const char *s)
{
	if (s)
		put(b, key, json_string(s));
}

static json_t *finish(struct builder *b)
{
	if (!b->ok) {
		json_decref(b->obj);
		return NULL;
	}
	return b->obj;
}

char *disc_obs_time_str(const struct timespec *t, char buf[32])
{
	struct tm tm;
	time_t sec = t->tv_sec;
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 32 - n, ".%03dZ", (int)((t->tv_nsec / 1000000) % 1000));
	return buf;
}

static void put_time(struct builder *b, const char *key, const struct timespec *t)
{
	char buf[32];
	struct timespec now;

	if (!t) {
		clock_gettime(CLOCK_REALTIME, &now);
		t = &now;
	}
	put(b, key, json_string(disc_obs_time_str(t, buf)));
}

static void put_ip(struct builder *b, const char *key, uint32_t ip)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
		 ip & 255);
	put(b, key, json_string(buf));
}

static struct builder start(const struct disc_obs_writer *w, const char *kind,
			    const struct timespec *at)
{
	struct builder b = {json_object(), true};

	if (!b.obj) {
		b.ok = false;
		return b;
	}
	put(&b, "v", json_integer(DISC_OBS_VERSION));
	put(&b, "kind", json_string(kind));
	put(&b, "scan_id", json_string(w->scan_id));
	put_time(&b, "at", at);
	return b;
}

void disc_obs_writer_init(struct disc_obs_writer *w, FILE *out, const char *scan_id)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
	snprintf(w->scan_id, sizeof(w->scan_id), "%s", scan_id);
	w->banner_max = DISC_OBS_BANNER_MAX_DEFAULT;
}

enum disc_status disc_obs_new_scan_id(char out[DISC_OBS_SCAN_ID_MAX], struct disc_error *err)
{
	uint8_t r[16];
	enum disc_status st = disc_random_bytes(r, sizeof(r), err);

	if (st)
		return st;
	r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* version 4 */
	r[8] = (uint8_t)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, DISC_OBS_SCAN_ID_MAX,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
		 r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
		 r[15]);
	return DISC_OK;
}

json_t *disc_obs_scan_json(const struct disc_obs_writer *w, const struct disc_obs_scan *s,
			   const struct timespec *at)
{
	struct builder b = start(w, "scan", at);
	json_t *targets = json_array();

	for (size_t i = 0; targets && i < s->n_targets; i++)
		if (json_array_append_new(targets, json_string(s->targets[i])) != 0) {
			json_decref(targets);
			targets = NULL;
		}
	put(&b, "targets", targets);
	put_str(&b, "ports", s->ports);
	put(&b, "options", s->options ? json_deep_copy(s->options) : json_object());
	put_time(&b, "started", &s->started);
	return finish(&b);
}

json_t *disc_obs_scan_end_json(const struct disc_obs_writer *w, const struct disc_obs_scan_end *e,
			       const struct timespec *at)
{
	struct builder b = start(w, "scan_end", at);

	put(&b, "complete", json_boolean(e->complete));
	put(&b, "probes_sent", json_integer((json_int_t)e->probes_sent));
	put(&b, "replies", json_integer((json_int_t)e->replies));
	put(&b, "drops", json_integer((json_int_t)e->drops));
	/* Milliseconds are precision enough, and keep the number short. */
	put(&b, "duration", json_real((double)(long long)(e->duration * 1000.0 + 0.5) / 1000.0));
	return finish(&b);
}

json_t *disc_obs_host_json(const struct disc_obs_writer *w, const struct disc_obs_host *h,
			   const struct timespec *at)
{
	struct builder b = start(w, "host", at);

	put_ip(&b, "ip", h->ip);
	if (h->mac) {
		char mac[18];

		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", h->mac[0], h->mac[1],
			 h->mac[2], h->mac[3], h->mac[4], h->mac[5]);
		put(&b, "mac", json_string(mac));
		if (h->mac_local)
			put(&b, "mac_local", json_true());
	}
	put_str(&b, "vendor", h->vendor);
	put_str(&b, "hostname", h->hostname);
	if (h->ttl >= 0)
		put(&b, "ttl", json_integer(h->ttl));
	put_str(&b, "reason", h->reason);
	if (h->os_family) {
		struct builder os = {json_object(), true};

		if (!os.obj)
			os.ok = false;
		put_str(&os, "family", h->os_family);
		put_str(&os, "guess", h->os_guess);
		if (h->os_confidence >= 0)
			put(&os, "confidence", json_integer(h->os_confidence));
		put(&b, "os", finish(&os));
	}
	return finish(&b);
}

json_t *disc_obs_port_json(const struct disc_obs_writer *w, const struct disc_obs_port *p,
			   const struct timespec *at)
{
	struct builder b;

	if (!p->proto || !p->state)
		return NULL;
	b = start(w, "port", at);
	put_ip(&b, "ip", p->ip);
	put_str(&b, "proto", p->proto);
	put(&b, "port", json_integer(p->port));
	put_str(&b, "state", p->state);
	put_str(&b, "reason", p->reason);
	return finish(&b);
}

/*
 * A banner is bytes, not text, and must survive the trip through JSON and any
 * JSON parser: bytes 0x80-0xff become the code point of the same value (an
 * ISO-8859-1 reading); control bytes other than tab, LF and CR become their
 * Unicode Control Pictures (U+2400 + byte, DEL U+2421), because many parsers
 * refuse \u0000; the rest is ASCII as is. Every mapping is one to one, so the
 * bytes can be recovered (docs/observations.md).
 */
static json_t *banner_string(const uint8_t *buf, size_t len)
{
	char *utf8 = malloc(3 * len + 1);
	size_t n = 0;
	json_t *s;

	if (!utf8)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];

		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
			utf8[n++] = (char)0xe2;
			utf8[n++] = (char)0x90;
			utf8[n++] = (char)(c == 0x7f ? 0xa1 : 0x80 + c);
		} else if (c < 0x80) {
			utf8[n++] = (char)c;
		} else {
			utf8[n++] = (char)(0xc0 | c >> 6);
			utf8[n++] = (char)(0x80 | (c & 0x3f));
		}
	}
	s = json_stringn(utf8, n);
	free(utf8);
	return s;
}

json_t *disc_obs_service_json(const struct disc_obs_writer *w, const struct disc_obs_service *s,
			      const struct timespec *at)
{
	struct builder b;

	if (!s->proto || !s->service)
		return NULL;
	b = start(w, "service", at);
	put_ip(&b, "ip", s->ip);
	put_str(&b, "proto", s->proto);
	put(&b, "port", json_integer(s->port));
	put_str(&b, "service", s->service);
	put_str(&b, "product", s->product);
	put_str(&b, "version", s->version);
	if (s->extra)
		put(&b, "extra", json_deep_copy(s->extra));
	if (s->banner) {
		size_t len = s->banner_len < w->banner_max ? s->banner_len : w->banner_max;

		put(&b, "banner", banner_string(s->banner, len));
		if (len < s->banner_len)
			put(&b, "banner_truncated", json_true());
	}
	if (s->tls) {
		struct builder t = {json_object(), true};
		json_t *sans = json_array();

		if (!t.obj)
			t.ok = false;
		put_str(&t, "subject", s->tls->subject);
		put_str(&t, "issuer", s->tls->issuer);
		put_str(&t, "not_before", s->tls->not_before);
		put_str(&t, "not_after", s->tls->not_after);
		for (size_t i = 0; sans && i < s->tls->n_sans; i++)
			if (json_array_append_new(sans, json_string(s->tls->sans[i])) != 0) {
				json_decref(sans);
				sans = NULL;
			}
		put(&t, "sans", sans);
		put(&b, "tls", finish(&t));
	}
	if (s->confidence >= 0)
		put(&b, "confidence", json_integer(s->confidence));
	return finish(&b);
}

enum disc_status disc_obs_emit(struct disc_obs_writer *w, json_t *obj, struct disc_error *err)
{
	int rc;

	if (!obj)
		return disc_error_set(
			err, DISC_ERR_NOMEM,
			"could not build observation (out of memory or missing field)");
	if (w->tee)
		w->tee(w->tee_ctx, obj);
	/* 15 significant digits: enough for any value we write, and 2.346 stays "2.346". */
	rc = json_dumpf(obj, w->out, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(obj);
	if (rc != 0 || fputc('\n', w->out) == EOF || ferror(w->out))
		return disc_error_set(err, DISC_ERR_IO, "cannot write observation line");
	w->lines++;
	return DISC_OK;
}
