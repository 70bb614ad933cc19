/* import_util: what the importers share (see import_internal.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "import_internal.h"

void cmdb_import_run_init(struct cmdb_import_run *run, const char *name, cmdb_obs_sink sink,
			  void *ctx, struct cmdb_import_stats *stats,
			  struct cmdb_import_stats *local, struct cmdb_error *err)
{
	memset(run, 0, sizeof(*run));
	run->name = name;
	run->sink = sink;
	run->ctx = ctx;
	run->stats = stats ? stats : local;
	memset(run->stats, 0, sizeof(*run->stats));
	run->err = err ? err : &run->own_err;
	cmdb_error_clear(run->err);
}

void cmdb_import_skip(struct cmdb_import_run *run, unsigned long line, const char *fmt, ...)
{
	struct cmdb_import_stats *st = run->stats;
	va_list ap;
	int n;

	if (st->skipped++ > 0)
		return;
	if (line)
		n = snprintf(st->first_skip, sizeof(st->first_skip), "%s:%lu: ", run->name, line);
	else
		n = snprintf(st->first_skip, sizeof(st->first_skip), "%s: ", run->name);
	if (n < 0 || (size_t)n >= sizeof(st->first_skip))
		return;
	va_start(ap, fmt);
	vsnprintf(st->first_skip + n, sizeof(st->first_skip) - (size_t)n, fmt, ap);
	va_end(ap);
}

void cmdb_import_set(struct cmdb_import_run *run, json_t *obj, const char *key, json_t *value)
{
	/* json_object_set_new releases value even when it fails (and fails on a
	 * NULL obj, which a failed cmdb_import_obs_new already reported). */
	if (!value || json_object_set_new(obj, key, value) != 0)
		run->oom = true;
}

json_t *cmdb_import_obs_new(struct cmdb_import_run *run, const char *kind, const char *at)
{
	json_t *o = json_object();

	if (!o) {
		run->oom = true;
		return NULL;
	}
	cmdb_import_set(run, o, "v", json_integer(1));
	cmdb_import_set(run, o, "kind", json_string(kind));
	cmdb_import_set(run, o, "scan_id", json_string(run->scan_id));
	cmdb_import_set(run, o, "at", json_string(at));
	return o;
}

bool cmdb_import_set_strn(struct cmdb_import_run *run, json_t *obj, const char *key, const char *s,
			  size_t len)
{
	if (!s || !cmdb_import_utf8_valid(s, len))
		return false;
	cmdb_import_set(run, obj, key, json_stringn_nocheck(s, len));
	return true;
}

bool cmdb_import_set_str(struct cmdb_import_run *run, json_t *obj, const char *key, const char *s)
{
	return s && cmdb_import_set_strn(run, obj, key, s, strlen(s));
}

bool cmdb_import_set_text(struct cmdb_import_run *run, json_t *obj, const char *key, const char *s)
{
	size_t len;

	if (!s)
		return false;
	len = strlen(s);
	if (!cmdb_import_utf8_valid(s, len))
		return false;
	len = cmdb_import_utf8_cut(s, len, CMDB_IMPORT_FIELD_MAX);
	cmdb_import_set(run, obj, key, json_stringn_nocheck(s, len));
	return true;
}

cmdb_rc cmdb_import_emit(struct cmdb_import_run *run, json_t *obs)
{
	cmdb_rc rc;

	if (run->oom || !obs) {
		json_decref(obs);
		return cmdb_error_set(run->err, CMDB_ENOMEM, "%s: out of memory", run->name);
	}
	rc = run->sink(run->ctx, obs, run->err);
	json_decref(obs);
	if (rc != CMDB_OK) {
		/* A sink that failed without saying why still gets a message. */
		if (run->err && run->err->msg[0] == '\0')
			cmdb_error_set(run->err, rc,
				       "%s: the observation sink refused an observation",
				       run->name);
		return rc;
	}
	run->stats->observations++;
	return CMDB_OK;
}

bool cmdb_import_time_str(int64_t sec, int ms, char buf[32])
{
	struct tm tm;
	time_t t;

	/* 253402300799 is 9999-12-31T23:59:59Z: four-digit years only. */
	if (sec < 0 || sec > INT64_C(253402300799) || ms < 0 || ms > 999)
		return false;
	t = (time_t)sec;
	if (!gmtime_r(&t, &tm))
		return false;
	/* Every field is in range after gmtime_r and the bounds above; the
	 * casts let the compiler see that the text fits. */
	snprintf(buf, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
		 (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
		 (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
		 (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u, (unsigned)ms % 1000u);
	return true;
}

void cmdb_import_time_now(char buf[32])
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (!cmdb_import_time_str((int64_t)now.tv_sec, (int)(now.tv_nsec / 1000000), buf))
		snprintf(buf, 32, "1970-01-01T00:00:00.000Z");
}

bool cmdb_import_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = (int64_t)v;
	return true;
}

/* FNV-1a, 128 bits: offset basis and prime from the FNV specification. */
#define FNV128_OFFSET                                                                              \
	(((unsigned __int128)UINT64_C(0x6c62272e07bb0142) << 64) | UINT64_C(0x62b821756295c58d))
#define FNV128_PRIME (((unsigned __int128)1 << 88) | 0x13b)

void cmdb_import_digest_init(struct cmdb_import_digest *d)
{
	d->h = FNV128_OFFSET;
}

void cmdb_import_digest_add(struct cmdb_import_digest *d, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		d->h ^= p[i];
		d->h *= FNV128_PRIME;
	}
}

void cmdb_import_digest_uuid(const struct cmdb_import_digest *d, char out[37])
{
	uint8_t b[16];

	for (int i = 0; i < 16; i++)
		b[i] = (uint8_t)(d->h >> (8 * (15 - i)));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x80); /* version 8 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 9562 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

bool cmdb_import_digest_stream(struct cmdb_import_digest *d, FILE *f)
{
	uint8_t buf[65536];
	size_t n;

	if (fseek(f, 0, SEEK_SET) != 0)
		return false;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		cmdb_import_digest_add(d, buf, n);
	if (ferror(f))
		return false;
	clearerr(f);
	return fseek(f, 0, SEEK_SET) == 0;
}

/* Length of the UTF-8 sequence starting at s[0..len), 0 if it is not a valid
 * one (overlong forms, surrogates and code points above U+10FFFF refused). */
static size_t utf8_seq(const uint8_t *s, size_t len)
{
	uint8_t c = s[0];

	if (c < 0x80)
		return c ? 1 : 0;
	if (c >= 0xc2 && c <= 0xdf)
		return len >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (len < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (len < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

bool cmdb_import_utf8_valid(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq(p + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

size_t cmdb_import_utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	/* Back up over continuation bytes to the start of the cut character. */
	while (max > 0 && ((uint8_t)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

json_t *cmdb_import_banner(const uint8_t *buf, size_t len, bool *truncated)
{
	size_t n = len < CMDB_IMPORT_BANNER_MAX ? len : CMDB_IMPORT_BANNER_MAX;
	char *out = malloc(n * 3 + 1); /* at most three UTF-8 bytes per input byte; freed below */
	size_t o = 0;
	json_t *s;

	*truncated = n < len;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = buf[i];
		unsigned cp;

		if (b == '\t' || b == '\n' || b == '\r' || (b >= 0x20 && b <= 0x7e)) {
			out[o++] = (char)b;
			continue;
		}
		cp = b < 0x20 ? 0x2400u + b : b == 0x7f ? 0x2421u : b;
		if (cp < 0x800) {
			out[o++] = (char)(0xc0 | (cp >> 6));
			out[o++] = (char)(0x80 | (cp & 0x3f));
		} else {
			out[o++] = (char)(0xe0 | (cp >> 12));
			out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	s = json_stringn_nocheck(out, o);
	free(out);
	return s;
}
