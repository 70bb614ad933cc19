/*
 * Importers: other tools' output turned into observations (format version 1,
 * docs/observations.md), so that everything reaches the CMDB through the
 * same ingest and reconciliation and nothing is written two ways.
 *
 * Each importer reads its input as a stream (memory does not grow with the
 * input), calls sink once per observation in input order, and stops at the
 * first error the sink returns. Malformed input that can be skipped (one bad
 * record) is counted and reported through `skipped`; input that cannot be
 * read at all is an error naming the file, line and problem.
 */
#ifndef CMDB_IMPORT_H
#define CMDB_IMPORT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "cmdb/error.h"

/* Receives one observation; borrows obs (the importer frees it after the
 * call). A non-OK return stops the import with that error. */
typedef cmdb_rc (*cmdb_obs_sink)(void *ctx, const json_t *obs, struct cmdb_error *err);

struct cmdb_import_stats {
	uint64_t records;      /* records read from the input */
	uint64_t observations; /* observations passed to the sink */
	uint64_t skipped;      /* records skipped as malformed */
	char first_skip[256];  /* where and why the first one was skipped */
};

/* nmap XML (-oX), with a streaming XML reader. Emits scan, host, port,
 * service and scan_end observations; the scan id is derived from the file's
 * start time and arguments so that importing the same file twice is the same
 * scan. */
cmdb_rc cmdb_import_nmap_xml(const char *path, cmdb_obs_sink sink, void *ctx,
			     struct cmdb_import_stats *stats, struct cmdb_error *err);

/* masscan JSON (-oJ; also its NDJSON variant -oD). */
cmdb_rc cmdb_import_masscan_json(const char *path, cmdb_obs_sink sink, void *ctx,
				 struct cmdb_import_stats *stats, struct cmdb_error *err);

/* A hand-kept inventory in CSV (RFC 4180, header row). Each row becomes one
 * `ci` observation of type `type`. Columns are mapped by header name unless
 * the map names them: the name column (required), the description column,
 * identity columns (header "identity:KIND" or map entries KIND=COLUMN), and
 * every other column becomes an attribute. */
struct cmdb_csv_map {
	const char *type;
	const char *name_column;        /* default "name" */
	const char *description_column; /* default "description" */
	const char *const *identities;  /* "KIND=COLUMN" entries, or NULL */
	size_t n_identities;
};
cmdb_rc cmdb_import_csv(const char *path, const struct cmdb_csv_map *map, cmdb_obs_sink sink,
			void *ctx, struct cmdb_import_stats *stats, struct cmdb_error *err);

#endif
