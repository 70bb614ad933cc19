/* disc_os: OS family guesses from SYN-ACKs and banners (see disc/os.h). */
#include "disc/os.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "disc/frame.h"

extern const char disc_os_signatures_text[];

/* Longest line of a signature file; longer ones are refused, not cut. */
#define LINE_MAX_BYTES 1024
#define MAX_FIELDS     9

/*
 * Points a synack signature scores for each field it states and the SYN-ACK
 * matches: the TTL alone says little (many stacks share 64), the window and
 * the option layout say most. They add up to 100.
 */
#define PTS_TTL	   20
#define PTS_WINDOW 30
#define PTS_OPTS   20
#define PTS_MSS	   10
#define PTS_WSCALE 10
#define PTS_QUIRK  5 /* each, at most two */

/* A TCP fingerprint never earns full certainty: stacks are tunable. */
#define MAX_TCP_CONFIDENCE    95
#define MAX_BANNER_CONFIDENCE 99
/* A banner alone names the software's platform, not the host's stack. */
#define BANNER_ONLY_CONFIDENCE 50
#define BANNER_AGREES_BONUS    15

struct field {
	const char *s;
	size_t n;
};

void disc_os_db_init(struct disc_os_db *db)
{
	memset(db, 0, sizeof(*db));
}

void disc_os_db_release(struct disc_os_db *db)
{
	free(db->sigs);
	free(db->hints);
	disc_os_db_init(db);
}

static bool field_is(const struct field *f, const char *lit)
{
	return f->n == strlen(lit) && memcmp(f->s, lit, f->n) == 0;
}

/*
 * Splits f at every sep into out[0..*n): empty items are kept (so "a,,b" and
 * "a," show their empty item to the caller's check). False when there are
 * more than max items.
 */
static bool split(const struct field *f, char sep, struct field *out, size_t max, size_t *n)
{
	const char *s = f->s, *end = f->s + f->n;

	*n = 0;
	for (;;) {
		const char *p = memchr(s, sep, (size_t)(end - s));

		if (*n == max)
			return false;
		out[*n].s = s;
		out[*n].n = p ? (size_t)(p - s) : (size_t)(end - s);
		(*n)++;
		if (!p)
			return true;
		s = p + 1;
	}
}

static void trim(struct field *f)
{
	while (f->n && (f->s[0] == ' ' || f->s[0] == '\t')) {
		f->s++;
		f->n--;
	}
	while (f->n && (f->s[f->n - 1] == ' ' || f->s[f->n - 1] == '\t'))
		f->n--;
}

/* A decimal number lo..hi, the whole field. */
static bool parse_num(const struct field *f, unsigned long lo, unsigned long hi, unsigned long *out)
{
	unsigned long v = 0;

	if (f->n == 0 || f->n > 6)
		return false;
	for (size_t i = 0; i < f->n; i++) {
		if (f->s[i] < '0' || f->s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(f->s[i] - '0');
	}
	if (v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static enum disc_status bad(struct disc_error *err, const char *name, unsigned line,
			    const char *what, const struct field *f)
{
	return disc_error_set(err, DISC_ERR_SYNTAX, "%s:%u: %s \"%.*s\"", name, line, what,
			      (int)(f->n > 40 ? 40 : f->n), f->s);
}

/* Text of a family, guess or banner: printable ASCII, shorter than DISC_OS_MAX_TEXT. */
static bool copy_text(const struct field *f, bool allow_dash, char out[DISC_OS_MAX_TEXT])
{
	if (f->n == 0 || f->n >= DISC_OS_MAX_TEXT)
		return false;
	for (size_t i = 0; i < f->n; i++)
		if (f->s[i] < 0x20 || f->s[i] > 0x7e || f->s[i] == '|')
			return false;
	if (allow_dash && field_is(f, "-")) {
		out[0] = '\0';
		return true;
	}
	memcpy(out, f->s, f->n);
	out[f->n] = '\0';
	return true;
}

/* "*" or a comma list of N and (if allow_mss) mss*N. */
static bool parse_alts(const struct field *f, bool allow_mss, struct disc_os_alt *alts,
		       uint8_t *n_alts)
{
	struct field items[DISC_OS_MAX_ALTS];
	size_t n;

	*n_alts = 0;
	if (field_is(f, "*"))
		return true;
	if (!split(f, ',', items, DISC_OS_MAX_ALTS, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		struct field item = items[i];
		unsigned long v;

		trim(&item);
		if (allow_mss && item.n > 4 && memcmp(item.s, "mss*", 4) == 0) {
			struct field num = {item.s + 4, item.n - 4};

			if (!parse_num(&num, 1, 65535, &v))
				return false;
			alts[*n_alts].times_mss = true;
		} else {
			if (!parse_num(&item, 0, 65535, &v))
				return false;
			alts[*n_alts].times_mss = false;
		}
		alts[(*n_alts)++].value = (uint16_t)v;
	}
	return true;
}

/* "*", "-" (no options) or a comma list of M N W S T E and decimal kinds. */
static bool parse_opts(const struct field *f, struct disc_os_sig *sig)
{
	struct field items[DISC_OS_MAX_OPTS];
	size_t n;

	sig->any_opts = false;
	sig->n_opts = 0;
	if (field_is(f, "*")) {
		sig->any_opts = true;
		return true;
	}
	if (field_is(f, "-"))
		return true;
	if (!split(f, ',', items, DISC_OS_MAX_OPTS, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		static const char letters[] = "ENMWST";
		static const uint8_t kinds[] = {0, 1, 2, 3, 4, 8};
		struct field item = items[i];
		unsigned long v;
		const char *l;

		trim(&item);
		if (item.n == 1 && item.s[0] && (l = strchr(letters, item.s[0])) != NULL)
			v = kinds[l - letters];
		else if (!parse_num(&item, 0, 255, &v))
			return false;
		sig->opts[sig->n_opts++] = (uint8_t)v;
	}
	return true;
}

static bool parse_quirks(const struct field *f, unsigned *out)
{
	struct field items[4];
	size_t n;

	*out = 0;
	if (field_is(f, "-") || field_is(f, "*"))
		return true;
	if (!split(f, ',', items, 4, &n))
		return false;
	for (size_t i = 0; i < n; i++) {
		struct field item = items[i];

		trim(&item);
		if (field_is(&item, "df"))
			*out |= DISC_OS_QUIRK_DF;
		else if (field_is(&item, "nodf"))
			*out |= DISC_OS_QUIRK_NODF;
		else if (field_is(&item, "id0"))
			*out |= DISC_OS_QUIRK_ID0;
		else if (field_is(&item, "idnz"))
			*out |= DISC_OS_QUIRK_IDNZ;
		else
			return false;
	}
	if ((*out & DISC_OS_QUIRK_DF) && (*out & DISC_OS_QUIRK_NODF))
		return false;
	if ((*out & DISC_OS_QUIRK_ID0) && (*out & DISC_OS_QUIRK_IDNZ))
		return false;
	return true;
}

static enum disc_status parse_synack(const char *name, unsigned line, struct field *fl,
				     struct disc_os_sig *sig, struct disc_error *err)
{
	unsigned long v;

	memset(sig, 0, sizeof(*sig));
	sig->line = line;
	if (!copy_text(&fl[1], false, sig->family))
		return bad(err, name, line, "bad family", &fl[1]);
	if (!copy_text(&fl[2], true, sig->guess))
		return bad(err, name, line, "bad guess", &fl[2]);
	if (!parse_num(&fl[3], 1, 255, &v) || (v != 32 && v != 64 && v != 128 && v != 255))
		return bad(err, name, line, "TTL must be 32, 64, 128 or 255, not", &fl[3]);
	sig->ttl = (uint16_t)v;
	if (!parse_alts(&fl[4], true, sig->win, &sig->n_win))
		return bad(err, name, line, "bad window (*, N or mss*N, comma-separated):", &fl[4]);
	if (!parse_alts(&fl[5], false, sig->mss, &sig->n_mss))
		return bad(err, name, line, "bad MSS (*, or numbers comma-separated):", &fl[5]);
	if (!parse_opts(&fl[6], sig))
		return bad(err, name, line,
			   "bad option layout (*, -, or M,N,W,S,T,E,kind):", &fl[6]);
	if (field_is(&fl[7], "*"))
		sig->wscale = -1;
	else if (field_is(&fl[7], "-"))
		sig->wscale = -2;
	else if (parse_num(&fl[7], 0, 255, &v))
		sig->wscale = (int)v;
	else
		return bad(err, name, line, "bad window scale (*, - or 0-255):", &fl[7]);
	if (!parse_quirks(&fl[8], &sig->quirks))
		return bad(err, name, line, "bad quirks (-, or df,nodf,id0,idnz):", &fl[8]);
	return DISC_OK;
}

static enum disc_status parse_banner(const char *name, unsigned line, struct field *fl,
				     struct disc_os_hint *h, struct disc_error *err)
{
	memset(h, 0, sizeof(*h));
	h->line = line;
	if (!copy_text(&fl[1], false, h->text))
		return bad(err, name, line, "bad banner text", &fl[1]);
	h->text_len = fl[1].n;
	if (!copy_text(&fl[2], false, h->family))
		return bad(err, name, line, "bad family", &fl[2]);
	if (!copy_text(&fl[3], true, h->guess))
		return bad(err, name, line, "bad guess", &fl[3]);
	return DISC_OK;
}

/* Room for one more element in *arr (capacity *cap, doubling). */
static bool reserve(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return true;
	ncap = *cap ? *cap * 2 : 32;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

enum disc_status disc_os_db_parse(struct disc_os_db *db, const char *name, const uint8_t *buf,
				  size_t len, struct disc_error *err)
{
	size_t pos = 0, old_sigs = db->n_sigs, old_hints = db->n_hints;
	unsigned line = 0;
	enum disc_status st = DISC_OK;

	while (pos < len) {
		const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		struct field text = {(const char *)buf + pos, n}, fl[MAX_FIELDS];
		size_t nf = 0;

		pos += n + (nl ? 1 : 0);
		line++;
		if (n > LINE_MAX_BYTES) {
			st = disc_error_set(err, DISC_ERR_SYNTAX,
					    "%s:%u: line of %zu bytes; at most %d", name, line, n,
					    LINE_MAX_BYTES);
			goto fail;
		}
		if (n && text.s[n - 1] == '\r')
			text.n--;
		if (memchr(text.s, '\0', text.n)) {
			st = disc_error_set(err, DISC_ERR_SYNTAX, "%s:%u: NUL byte in the line",
					    name, line);
			goto fail;
		}
		trim(&text);
		if (text.n == 0 || text.s[0] == '#')
			continue;
		if (!split(&text, '|', fl, MAX_FIELDS, &nf)) {
			st = disc_error_set(err, DISC_ERR_SYNTAX,
					    "%s:%u: more than %d fields separated by '|'", name,
					    line, MAX_FIELDS);
			goto fail;
		}
		for (size_t i = 0; i < nf; i++)
			trim(&fl[i]);
		if (field_is(&fl[0], "synack")) {
			if (nf != 9) {
				st = disc_error_set(
					err, DISC_ERR_SYNTAX,
					"%s:%u: a synack line has 9 fields separated by "
					"'|', this one %zu",
					name, line, nf);
				goto fail;
			}
			if (db->n_sigs >= DISC_OS_MAX_SIGS) {
				st = disc_error_set(err, DISC_ERR_RANGE,
						    "%s:%u: more than %d signatures", name, line,
						    DISC_OS_MAX_SIGS);
				goto fail;
			}
			if (!reserve((void **)&db->sigs, &db->cap_sigs, db->n_sigs,
				     sizeof(*db->sigs))) {
				st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
				goto fail;
			}
			st = parse_synack(name, line, fl, &db->sigs[db->n_sigs], err);
			if (st != DISC_OK)
				goto fail;
			db->n_sigs++;
		} else if (field_is(&fl[0], "banner")) {
			if (nf != 4) {
				st = disc_error_set(
					err, DISC_ERR_SYNTAX,
					"%s:%u: a banner line has 4 fields separated by "
					"'|', this one %zu",
					name, line, nf);
				goto fail;
			}
			if (db->n_hints >= DISC_OS_MAX_SIGS) {
				st = disc_error_set(err, DISC_ERR_RANGE,
						    "%s:%u: more than %d banner hints", name, line,
						    DISC_OS_MAX_SIGS);
				goto fail;
			}
			if (!reserve((void **)&db->hints, &db->cap_hints, db->n_hints,
				     sizeof(*db->hints))) {
				st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
				goto fail;
			}
			st = parse_banner(name, line, fl, &db->hints[db->n_hints], err);
			if (st != DISC_OK)
				goto fail;
			db->n_hints++;
		} else {
			st = bad(err, name, line, "a line starts with synack or banner, not",
				 &fl[0]);
			goto fail;
		}
	}
	return DISC_OK;
fail:
	/* Nothing of a bad file is kept. */
	db->n_sigs = old_sigs;
	db->n_hints = old_hints;
	return st;
}

enum disc_status disc_os_db_load_builtin(struct disc_os_db *db, struct disc_error *err)
{
	return disc_os_db_parse(db, "os-signatures.txt (built in)",
				(const uint8_t *)disc_os_signatures_text,
				strlen(disc_os_signatures_text), err);
}

enum disc_status disc_os_db_load_file(struct disc_os_db *db, const char *path,
				      struct disc_error *err)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	enum disc_status st;

	if (!f)
		return disc_error_set(err, DISC_ERR_IO, "cannot open %s: %s", path,
				      strerror(errno));
	for (;;) {
		size_t got;

		if (len == cap) {
			uint8_t *p;

			cap = cap ? cap * 2 : 16384;
			if (cap > (size_t)DISC_OS_MAX_SIGS * 2 * LINE_MAX_BYTES) {
				st = disc_error_set(err, DISC_ERR_RANGE, "%s: too large", path);
				goto out;
			}
			p = realloc(buf, cap);
			if (!p) {
				st = disc_error_set(err, DISC_ERR_NOMEM, "out of memory");
				goto out;
			}
			buf = p;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		st = disc_error_set(err, DISC_ERR_IO, "cannot read %s", path);
		goto out;
	}
	st = disc_os_db_parse(db, path, buf, len, err);
out:
	free(buf);
	fclose(f);
	return st;
}

void disc_os_fp_from_frame(const struct disc_frame *f, struct disc_os_fp *fp)
{
	const struct disc_tcp_info *t = &f->tcp;

	memset(fp, 0, sizeof(*fp));
	fp->ttl = f->ip.ttl;
	fp->df = f->ip.dont_fragment;
	fp->ip_id = f->ip.id;
	fp->window = t->window;
	fp->has_mss = t->has_mss;
	fp->mss = t->mss;
	fp->has_wscale = t->has_wscale;
	fp->wscale = t->wscale;
	for (uint8_t i = 0; i < t->n_opts && i < DISC_TCP_MAX_OPTS; i++) {
		if (fp->n_opts == DISC_OS_MAX_OPTS) {
			fp->opts_overflow = true;
			break;
		}
		fp->opts[fp->n_opts++] = t->opt_kinds[i];
	}
}

unsigned disc_os_initial_ttl(unsigned ttl)
{
	if (ttl <= 32)
		return 32;
	if (ttl <= 64)
		return 64;
	if (ttl <= 128)
		return 128;
	return 255;
}

static bool alt_matches(const struct disc_os_alt *a, uint8_t n, uint32_t value,
			const struct disc_os_fp *fp)
{
	for (uint8_t i = 0; i < n; i++) {
		if (!a[i].times_mss && a[i].value == value)
			return true;
		if (a[i].times_mss && fp->has_mss && fp->mss &&
		    (uint32_t)a[i].value * fp->mss == value)
			return true;
	}
	return false;
}

/* The signature's points for fp, or -1 when a field it states does not match. */
static int score(const struct disc_os_sig *s, const struct disc_os_fp *fp)
{
	int pts = PTS_TTL;

	if (disc_os_initial_ttl(fp->ttl) != s->ttl)
		return -1;
	if (s->n_win) {
		if (!alt_matches(s->win, s->n_win, fp->window, fp))
			return -1;
		pts += PTS_WINDOW;
	}
	if (s->n_mss) {
		if (!fp->has_mss || !alt_matches(s->mss, s->n_mss, fp->mss, fp))
			return -1;
		pts += PTS_MSS;
	}
	if (!s->any_opts) {
		if (fp->opts_overflow || fp->n_opts != s->n_opts ||
		    memcmp(fp->opts, s->opts, s->n_opts) != 0)
			return -1;
		pts += PTS_OPTS;
	}
	if (s->wscale == -2) {
		if (fp->has_wscale)
			return -1;
		pts += PTS_WSCALE;
	} else if (s->wscale >= 0) {
		if (!fp->has_wscale || fp->wscale != s->wscale)
			return -1;
		pts += PTS_WSCALE;
	}
	if (s->quirks & DISC_OS_QUIRK_DF) {
		if (!fp->df)
			return -1;
		pts += PTS_QUIRK;
	}
	if (s->quirks & DISC_OS_QUIRK_NODF) {
		if (fp->df)
			return -1;
		pts += PTS_QUIRK;
	}
	if (s->quirks & DISC_OS_QUIRK_ID0) {
		if (fp->ip_id != 0)
			return -1;
		pts += PTS_QUIRK;
	}
	if (s->quirks & DISC_OS_QUIRK_IDNZ) {
		if (fp->ip_id == 0)
			return -1;
		pts += PTS_QUIRK;
	}
	return pts;
}

int disc_os_banner_hint(const struct disc_os_db *db, const uint8_t *banner, size_t len)
{
	for (size_t i = 0; i < db->n_hints; i++) {
		const struct disc_os_hint *h = &db->hints[i];

		if (h->text_len == 0 || h->text_len > len)
			continue;
		for (size_t at = 0; at + h->text_len <= len; at++) {
			size_t k = 0;

			while (k < h->text_len &&
			       tolower(banner[at + k]) == tolower((unsigned char)h->text[k]))
				k++;
			if (k == h->text_len)
				return (int)i;
		}
	}
	return -1;
}

static bool same_family(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

bool disc_os_guess(const struct disc_os_db *db, const struct disc_os_fp *fp, int hint,
		   struct disc_os_guess *out)
{
	const struct disc_os_sig *best = NULL;
	const struct disc_os_hint *h =
		hint >= 0 && (size_t)hint < db->n_hints ? &db->hints[hint] : NULL;
	int best_pts = -1, rival_pts = -1;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; fp && i < db->n_sigs; i++) {
		int pts = score(&db->sigs[i], fp);

		if (pts > best_pts) {
			best = &db->sigs[i];
			best_pts = pts;
		}
	}
	/* The best score of any other family: how much the winner stands out. */
	for (size_t i = 0; best && i < db->n_sigs; i++) {
		int pts;

		if (same_family(best->family, db->sigs[i].family))
			continue;
		pts = score(&db->sigs[i], fp);
		if (pts > rival_pts)
			rival_pts = pts;
	}
	if (best) {
		int conf = best_pts;

		/* Another family close behind: the guess is that much less certain. */
		if (rival_pts >= 0 && best_pts - rival_pts < 20)
			conf -= 2 * (20 - (best_pts - rival_pts));
		if (conf > MAX_TCP_CONFIDENCE)
			conf = MAX_TCP_CONFIDENCE;
		if (conf < 5)
			conf = 5;
		snprintf(out->family, sizeof(out->family), "%s", best->family);
		snprintf(out->guess, sizeof(out->guess), "%s", best->guess);
		out->confidence = conf;
		out->sig_line = best->line;
	}
	if (!h)
		return best != NULL;
	if (!best) {
		snprintf(out->family, sizeof(out->family), "%s", h->family);
		snprintf(out->guess, sizeof(out->guess), "%s", h->guess);
		out->confidence = BANNER_ONLY_CONFIDENCE;
		out->hint_line = h->line;
		return true;
	}
	if (same_family(best->family, h->family)) {
		/* Two independent witnesses: more certain, and the banner is more specific. */
		out->confidence += BANNER_AGREES_BONUS;
		if (out->confidence > MAX_BANNER_CONFIDENCE)
			out->confidence = MAX_BANNER_CONFIDENCE;
		if (h->guess[0])
			snprintf(out->guess, sizeof(out->guess), "%s", h->guess);
		out->hint_line = h->line;
	} else if (out->confidence < BANNER_ONLY_CONFIDENCE) {
		/* A weak stack guess loses to what the software says it runs on. */
		snprintf(out->family, sizeof(out->family), "%s", h->family);
		snprintf(out->guess, sizeof(out->guess), "%s", h->guess);
		out->confidence = BANNER_ONLY_CONFIDENCE - BANNER_AGREES_BONUS;
		out->sig_line = 0;
		out->hint_line = h->line;
	} else {
		/* The witnesses disagree (a proxy, a NAT, a container): less certain. */
		out->confidence -= BANNER_AGREES_BONUS;
	}
	return true;
}

static size_t put_alts(char *buf, size_t size, size_t o, const char *s)
{
	int n = snprintf(buf + o, o < size ? size - o : 0, "%s", s);

	return o + (n > 0 ? (size_t)n : 0);
}

char *disc_os_fp_str(const struct disc_os_fp *fp, char *buf, size_t size)
{
	static const char letters[] = "ENMWST";
	static const uint8_t kinds[] = {0, 1, 2, 3, 4, 8};
	char tmp[16];
	size_t o = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	snprintf(tmp, sizeof(tmp), "%u | %u | ", disc_os_initial_ttl(fp->ttl), fp->window);
	o = put_alts(buf, size, o, tmp);
	if (fp->has_mss)
		snprintf(tmp, sizeof(tmp), "%u | ", fp->mss);
	else
		snprintf(tmp, sizeof(tmp), "* | ");
	o = put_alts(buf, size, o, tmp);
	if (fp->opts_overflow)
		o = put_alts(buf, size, o, "*");
	else if (fp->n_opts == 0)
		o = put_alts(buf, size, o, "-");
	for (uint8_t i = 0; !fp->opts_overflow && i < fp->n_opts; i++) {
		const char *l = NULL;

		for (size_t k = 0; k < sizeof(kinds); k++)
			if (kinds[k] == fp->opts[i])
				l = &letters[k];
		if (l)
			snprintf(tmp, sizeof(tmp), "%s%c", i ? "," : "", *l);
		else
			snprintf(tmp, sizeof(tmp), "%s%u", i ? "," : "", fp->opts[i]);
		o = put_alts(buf, size, o, tmp);
	}
	if (fp->has_wscale)
		snprintf(tmp, sizeof(tmp), " | %u | ", fp->wscale);
	else
		snprintf(tmp, sizeof(tmp), " | - | ");
	o = put_alts(buf, size, o, tmp);
	o = put_alts(buf, size, o, fp->df ? "df" : "nodf");
	o = put_alts(buf, size, o, fp->ip_id == 0 ? ",id0" : ",idnz");
	(void)o;
	return buf;
}
