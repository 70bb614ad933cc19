/* disc_vendor: IEEE registry CSV loading and longest-prefix lookup (see disc/vendor.h). */
#include "disc/vendor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_BITS 28 /* low bits of an entry: offset into the name pool */
#define MAX_FILE  (64u << 20)
#define FIELD_MAX 256

static const unsigned prefix_bits[3] = {36, 28, 24};

struct csv {
	const char *p, *end;
	unsigned long line; /* line where the current record starts */
	unsigned long cur_line;
};

/* Reads one field into out (cut to FIELD_MAX - 1 bytes); false on an unterminated quote. */
static bool csv_field(struct csv *c, char *out)
{
	size_t n = 0;

	if (c->p < c->end && *c->p == '"') {
		c->p++;
		for (;;) {
			if (c->p >= c->end)
				return false;
			if (*c->p == '"') {
				if (c->p + 1 < c->end && c->p[1] == '"') {
					if (n < FIELD_MAX - 1)
						out[n++] = '"';
					c->p += 2;
					continue;
				}
				c->p++;
				break;
			}
			if (*c->p == '\n')
				c->cur_line++;
			if (n < FIELD_MAX - 1)
				out[n++] = *c->p;
			c->p++;
		}
	}
	/* Unquoted text, or anything between a closing quote and the separator. */
	while (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r') {
		if (n < FIELD_MAX - 1)
			out[n++] = *c->p;
		c->p++;
	}
	out[n] = '\0';
	return true;
}

/*
 * Reads one record, keeping its first three fields. Returns the number of
 * fields, 0 at the end of input, -1 on an unterminated quote.
 */
static int csv_record(struct csv *c, char fields[3][FIELD_MAX])
{
	int nf = 0;
	char scratch[FIELD_MAX] = {0}; /* fields past the third are read and dropped */

	c->line = c->cur_line;
	if (c->p >= c->end)
		return 0;
	for (;;) {
		if (!csv_field(c, nf < 3 ? fields[nf] : scratch))
			return -1;
		nf++;
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == '\r')
			c->p++;
		if (c->p < c->end && *c->p == '\n') {
			c->p++;
			c->cur_line++;
		}
		return nf;
	}
}

static void trim(char *s)
{
	size_t n = strlen(s), i = 0;

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	while (s[i] == ' ' || s[i] == '\t')
		i++;
	memmove(s, s + i, n - i + 1);
}

static bool parse_hex(const char *s, size_t digits, uint64_t *out)
{
	uint64_t v = 0;

	if (strlen(s) != digits)
		return false;
	for (size_t i = 0; i < digits; i++) {
		char ch = s[i];
		unsigned d;

		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	*out = v;
	return true;
}

static enum disc_status add_name(struct disc_vendor_db *db, const char *name, size_t *off,
				 struct disc_error *err)
{
	size_t len = strlen(name);

	if (len >= DISC_VENDOR_MAX_NAME)
		len = DISC_VENDOR_MAX_NAME - 1;
	if (db->names_len + len + 1 > db->names_cap) {
		size_t ncap = db->names_cap ? db->names_cap * 2 : 65536;
		char *nv;

		while (ncap < db->names_len + len + 1)
			ncap *= 2;
		if (ncap > (1u << NAME_BITS))
			return disc_error_set(err, DISC_ERR_RANGE, "vendor names exceed %u bytes",
					      1u << NAME_BITS);
		nv = realloc(db->names, ncap);
		if (!nv)
			return disc_error_set(err, DISC_ERR_NOMEM,
					      "out of memory for vendor names");
		db->names = nv;
		db->names_cap = ncap;
	}
	*off = db->names_len;
	memcpy(db->names + db->names_len, name, len);
	db->names[db->names_len + len] = '\0';
	db->names_len += len + 1;
	return DISC_OK;
}

static enum disc_status add_entry(struct disc_vendor_db *db, int t, uint64_t prefix,
				  const char *name, struct disc_error *err)
{
	size_t off = 0;
	enum disc_status st;

	if (db->n[t] == db->cap[t]) {
		size_t ncap = db->cap[t] ? db->cap[t] * 2 : 1024;
		uint64_t *nv = realloc(db->tab[t], ncap * sizeof(*nv));

		if (!nv)
			return disc_error_set(err, DISC_ERR_NOMEM,
					      "out of memory for vendor table");
		db->tab[t] = nv;
		db->cap[t] = ncap;
	}
	st = add_name(db, name, &off, err);
	if (st)
		return st;
	db->tab[t][db->n[t]++] = prefix << NAME_BITS | off;
	return DISC_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static enum disc_status read_whole(const char *path, char **buf, size_t *len,
				   struct disc_error *err)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return disc_error_set(err, DISC_ERR_IO, "cannot open \"%s\": %s", path,
				      strerror(errno));
	for (;;) {
		size_t got;

		if (n == cap) {
			char *nb;

			if (cap >= MAX_FILE) {
				free(b);
				fclose(f);
				return disc_error_set(err, DISC_ERR_RANGE,
						      "\"%s\" is larger than %u bytes", path,
						      MAX_FILE);
			}
			cap = cap ? cap * 2 : 1 << 20;
			nb = realloc(b, cap);
			if (!nb) {
				free(b);
				fclose(f);
				return disc_error_set(err, DISC_ERR_NOMEM,
						      "out of memory reading \"%s\"", path);
			}
			b = nb;
		}
		got = fread(b + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(b);
		fclose(f);
		return disc_error_set(err, DISC_ERR_IO, "error reading \"%s\"", path);
	}
	fclose(f);
	*buf = b;
	*len = n;
	return DISC_OK;
}

enum disc_status disc_vendor_load_csv(struct disc_vendor_db *db, const char *path,
				      struct disc_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	struct csv c;
	char fields[3][FIELD_MAX];
	enum disc_status st;
	int nf;

	st = read_whole(path, &buf, &len, err);
	if (st)
		return st;
	c.p = buf;
	c.end = buf + len;
	c.cur_line = 1;
	while ((nf = csv_record(&c, fields)) != 0) {
		int t;
		size_t digits;
		uint64_t prefix;

		if (nf < 0) {
			st = disc_error_set(err, DISC_ERR_SYNTAX, "%s:%lu: unterminated quote",
					    path, c.line);
			goto out;
		}
		if (nf == 1 && fields[0][0] == '\0')
			continue; /* blank line */
		if (nf < 3) {
			st = disc_error_set(
				err, DISC_ERR_SYNTAX,
				"%s:%lu: expected Registry,Assignment,Organization Name", path,
				c.line);
			goto out;
		}
		trim(fields[0]);
		trim(fields[1]);
		trim(fields[2]);
		if (strcmp(fields[0], "Registry") == 0)
			continue; /* header row */
		if (strcmp(fields[0], "MA-L") == 0) {
			t = 2;
			digits = 6;
		} else if (strcmp(fields[0], "MA-M") == 0) {
			t = 1;
			digits = 7;
		} else if (strcmp(fields[0], "MA-S") == 0 || strcmp(fields[0], "IAB") == 0) {
			t = 0;
			digits = 9;
		} else {
			st = disc_error_set(err, DISC_ERR_SYNTAX,
					    "%s:%lu: unknown registry \"%.32s\"", path, c.line,
					    fields[0]);
			goto out;
		}
		if (!parse_hex(fields[1], digits, &prefix)) {
			st = disc_error_set(err, DISC_ERR_SYNTAX,
					    "%s:%lu: %s assignment \"%.32s\" is not %zu hex digits",
					    path, c.line, fields[0], fields[1], digits);
			goto out;
		}
		st = add_entry(db, t, prefix, fields[2], err);
		if (st)
			goto out;
	}
out:
	for (int t = 0; t < 3; t++)
		if (db->n[t])
			qsort(db->tab[t], db->n[t], sizeof(uint64_t), cmp_u64);
	free(buf);
	return st;
}

enum disc_status disc_vendor_load_dir(struct disc_vendor_db *db, const char *dir,
				      struct disc_error *err)
{
	static const char *const files[] = {"oui.csv", "mam.csv", "oui36.csv", "iab.csv"};
	int loaded = 0;

	if (!dir)
		dir = DISC_VENDOR_DEFAULT_DIR;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[4096];
		enum disc_status st;
		FILE *probe;

		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, files[i]) >= sizeof(path))
			return disc_error_set(err, DISC_ERR_RANGE, "directory name too long");
		probe = fopen(path, "rb");
		if (!probe)
			continue;
		fclose(probe);
		st = disc_vendor_load_csv(db, path, err);
		if (st)
			return st;
		loaded++;
	}
	if (!loaded)
		return disc_error_set(
			err, DISC_ERR_IO,
			"no IEEE registry file (oui.csv, mam.csv, oui36.csv, iab.csv) "
			"in \"%s\"; install ieee-data",
			dir);
	return DISC_OK;
}

void disc_vendor_init(struct disc_vendor_db *db)
{
	memset(db, 0, sizeof(*db));
}

void disc_vendor_release(struct disc_vendor_db *db)
{
	for (int t = 0; t < 3; t++)
		free(db->tab[t]);
	free(db->names);
	memset(db, 0, sizeof(*db));
}

size_t disc_vendor_count(const struct disc_vendor_db *db)
{
	return db->n[0] + db->n[1] + db->n[2];
}

void disc_vendor_lookup(const struct disc_vendor_db *db, const uint8_t mac[6],
			struct disc_vendor_match *out)
{
	uint64_t v = 0;

	for (int i = 0; i < 6; i++)
		v = v << 8 | mac[i];
	memset(out, 0, sizeof(*out));
	out->local = mac[0] & 0x02;
	out->multicast = mac[0] & 0x01;
	for (int t = 0; t < 3; t++) {
		uint64_t key = v >> (48 - prefix_bits[t]);
		size_t lo = 0, hi = db->n[t];

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			uint64_t k = db->tab[t][mid] >> NAME_BITS;

			if (k < key)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < db->n[t] && db->tab[t][lo] >> NAME_BITS == key) {
			out->name = db->names + (db->tab[t][lo] & ((1u << NAME_BITS) - 1));
			out->prefix_bits = prefix_bits[t];
			return;
		}
	}
}

bool disc_vendor_parse_mac(const char *s, uint8_t mac[6])
{
	size_t len = strlen(s);
	char sep = len == 17 ? s[2] : 0;

	if (!(len == 12 || (len == 17 && (sep == ':' || sep == '-'))))
		return false;
	for (int i = 0; i < 6; i++) {
		const char *p = s + (sep ? 3 * i : 2 * i);
		char hex[3] = {p[0], p[1], 0};
		uint64_t v;

		if (sep && i < 5 && p[2] != sep)
			return false;
		if (!parse_hex(hex, 2, &v))
			return false;
		mac[i] = (uint8_t)v;
	}
	return true;
}
