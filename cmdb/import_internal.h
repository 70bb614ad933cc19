/*
 * Private to the importers (import_*.c): the state of one import run, the
 * observation builder they share, and entry points that take an open stream
 * or a buffer instead of a path, for the fuzz targets and tests.
 *
 * An import run owns nothing the caller gave it; observations are built,
 * handed to the sink, and released here, so no importer frees one twice or
 * forgets one.
 */
#ifndef CMDB_IMPORT_INTERNAL_H
#define CMDB_IMPORT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "cmdb/import.h"

/* Strings an importer keeps from hostile input are cut to this many bytes
 * (at a UTF-8 boundary); banners follow the observation format's default. */
#define CMDB_IMPORT_FIELD_MAX  1024
#define CMDB_IMPORT_BANNER_MAX 2048

struct cmdb_import_run {
	const char *name; /* the input's name in messages (borrowed) */
	cmdb_obs_sink sink;
	void *ctx;
	struct cmdb_import_stats
		*stats;		/* never NULL: points at a local when the caller gave none */
	struct cmdb_error *err; /* never NULL: points at own_err when the caller gave none */
	struct cmdb_error own_err;
	char scan_id[37];
	bool oom; /* a builder failed to allocate: the next emit reports ENOMEM */
};

/* Resets stats (or points run->stats at *local when stats is NULL). */
void cmdb_import_run_init(struct cmdb_import_run *run, const char *name, cmdb_obs_sink sink,
			  void *ctx, struct cmdb_import_stats *stats,
			  struct cmdb_import_stats *local, struct cmdb_error *err);

/* Counts one skipped record; the first one's place and reason go into
 * stats->first_skip as "NAME:LINE: reason" (line 0: no line is known). */
void cmdb_import_skip(struct cmdb_import_run *run, unsigned long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A new observation object with v, kind, scan_id and at set. Returns NULL
 * (and sets run->oom) when out of memory; the caller owns the result. */
json_t *cmdb_import_obs_new(struct cmdb_import_run *run, const char *kind, const char *at);

/* Sets obj[key] to the first len bytes of s as a string. Returns false and
 * sets nothing if s is not valid UTF-8 or holds a NUL; a failed allocation
 * sets run->oom. */
bool cmdb_import_set_strn(struct cmdb_import_run *run, json_t *obj, const char *key, const char *s,
			  size_t len);
bool cmdb_import_set_str(struct cmdb_import_run *run, json_t *obj, const char *key, const char *s);
/* Like cmdb_import_set_str, but a string longer than CMDB_IMPORT_FIELD_MAX is
 * cut there (at a character boundary) instead of refused. */
bool cmdb_import_set_text(struct cmdb_import_run *run, json_t *obj, const char *key, const char *s);
/* Sets obj[key] to value, which it steals (NULL sets run->oom). */
void cmdb_import_set(struct cmdb_import_run *run, json_t *obj, const char *key, json_t *value);

/* Hands obs (stolen, may be NULL after a failed allocation) to the sink and
 * releases it. Returns the sink's status, or ENOMEM. */
cmdb_rc cmdb_import_emit(struct cmdb_import_run *run, json_t *obs);

/* RFC 3339 UTC with milliseconds for seconds since the epoch (plus ms).
 * Returns false if the time is outside years 1970-9999. */
bool cmdb_import_time_str(int64_t sec, int ms, char buf[32]);
/* The current time, for inputs that carry none. */
void cmdb_import_time_now(char buf[32]);
/* Parses a decimal integer in [min, max] that fills s entirely. */
bool cmdb_import_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/* A 128-bit FNV-1a digest, turned into a UUID (version 8, RFC 9562's
 * "custom" version: the bits are ours, not random), lowercase, 36 chars. */
struct cmdb_import_digest {
	unsigned __int128 h;
};
void cmdb_import_digest_init(struct cmdb_import_digest *d);
void cmdb_import_digest_add(struct cmdb_import_digest *d, const void *buf, size_t len);
void cmdb_import_digest_uuid(const struct cmdb_import_digest *d, char out[37]);

/* Hashes the whole of f from its start and rewinds it; false if f cannot be
 * read or rewound (a pipe). */
bool cmdb_import_digest_stream(struct cmdb_import_digest *d, FILE *f);

/* Whether s[0..len) is valid UTF-8 without NUL bytes. */
bool cmdb_import_utf8_valid(const char *s, size_t len);
/* The longest prefix of s[0..len) no longer than max that ends on a
 * character boundary (s is valid UTF-8). */
size_t cmdb_import_utf8_cut(const char *s, size_t len, size_t max);

/* The observation format's banner encoding of bytes (docs/observations.md),
 * cut at CMDB_IMPORT_BANNER_MAX input bytes; *truncated says whether it was.
 * Returns a new string reference, NULL when out of memory. */
json_t *cmdb_import_banner(const uint8_t *buf, size_t len, bool *truncated);

/* Entry points on an open stream or a buffer; name is used in messages. */
cmdb_rc cmdb_import_nmap_xml_buffer(const uint8_t *buf, size_t len, const char *name,
				    cmdb_obs_sink sink, void *ctx, struct cmdb_import_stats *stats,
				    struct cmdb_error *err);
cmdb_rc cmdb_import_masscan_stream(FILE *f, const char *name, cmdb_obs_sink sink, void *ctx,
				   struct cmdb_import_stats *stats, struct cmdb_error *err);
cmdb_rc cmdb_import_csv_stream(FILE *f, const char *name, const struct cmdb_csv_map *map,
			       cmdb_obs_sink sink, void *ctx, struct cmdb_import_stats *stats,
			       struct cmdb_error *err);

#endif
