/*
 * Ingest: observations (docs/observations.md) into the CMDB.
 *
 * Lines are validated one by one; a bad line is rejected (reported with its
 * line number and reason through the reject callback) and every valid line
 * is ingested. Valid lines are buffered into batches; each batch is COPYed
 * into a staging table and reconciled set-based in SQL inside one
 * transaction (schema/002_ingest.sql), retried on serialization failures,
 * deadlocks and identity races with concurrent ingesters. A batch is all or
 * nothing: a killed ingest leaves whole batches only, and running the same
 * input again completes it (reconciliation is idempotent; the scan run is
 * found again by its scan id).
 *
 * Memory does not grow with the input: at most one batch is held.
 */
#ifndef CMDB_INGEST_H
#define CMDB_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "cmdb/db.h"
#include "cmdb/error.h"

struct cmdb_ingest;

/* Called for each rejected line: its number (1-based) and why. */
typedef void (*cmdb_reject_fn)(void *ctx, uint64_t line, const char *reason);
/* Called for what reconciliation reports: in dry-run mode every change that
 * would be made ("create"); always each "conflict" (an identity held by
 * another CI than the one a record matched), with a detail. */
typedef void (*cmdb_change_fn)(void *ctx, const char *action, const char *ci_type, const char *name,
			       const char *detail);

struct cmdb_ingest_options {
	const char *source;  /* who says it: "discover" unless given */
	bool dry_run;        /* reconcile, report, and roll every batch back */
	size_t batch_lines;  /* observations per batch; 0: 10000 */
	/* cmdb_ingest_stream(_tee): apply a partial batch once its first line
	 * has waited this long (ms), so that lines arriving slowly (a running
	 * scan) reach the CMDB promptly; 0: only full batches and scan_end.
	 * Makes the stream's descriptor non-blocking while it reads (restored
	 * after), so give only a pipe of your own. Ignored in a dry run. */
	unsigned flush_ms;
	cmdb_reject_fn on_reject;
	cmdb_change_fn on_change;
	void *ctx;
};

struct cmdb_ingest_stats {
	uint64_t lines;    /* lines read */
	uint64_t accepted; /* observations ingested (or, dry run, that would be) */
	uint64_t rejected;
	uint64_t batches;
	uint64_t retries; /* batches retried after a conflict with another writer */
	uint64_t created, updated, unchanged, missing;
	uint64_t runs;	 /* scan runs touched */
	uint64_t purged; /* observations past the retention removed at the end */
};

cmdb_rc cmdb_ingest_open(struct cmdb_db *db, const struct cmdb_ingest_options *opts,
			 struct cmdb_ingest **out, struct cmdb_error *err);

/* One line of NDJSON (without or with its newline). line_no is for reports.
 * A malformed line is rejected, not an error; errors are database failures. */
cmdb_rc cmdb_ingest_line(struct cmdb_ingest *in, const char *line, size_t len, uint64_t line_no,
			 struct cmdb_error *err);

/* One observation as a JSON object (importers' sink; see cmdb/import.h). */
cmdb_rc cmdb_ingest_obs(struct cmdb_ingest *in, const json_t *obs, struct cmdb_error *err);

/* Reads a whole stream of NDJSON lines. Lines longer than the cap
 * (CMDB_INGEST_LINE_MAX) are rejected without being held in memory. */
#define CMDB_INGEST_LINE_MAX (256 * 1024)
cmdb_rc cmdb_ingest_stream(struct cmdb_ingest *in, FILE *f, struct cmdb_error *err);

/* Like cmdb_ingest_stream, and writes every line read to tee as well (a
 * spool: what was read is never lost, even when the database fails). When
 * the database fails, reading goes on into the tee to the end of f, and the
 * database error is returned. *tee_failed is set when writing tee failed. */
cmdb_rc cmdb_ingest_stream_tee(struct cmdb_ingest *in, FILE *f, FILE *tee, bool *tee_failed,
			       struct cmdb_error *err);

/* Applies what is buffered (a partial batch) now. */
cmdb_rc cmdb_ingest_flush(struct cmdb_ingest *in, struct cmdb_error *err);

/* Applies what is buffered and fills stats. The ingest stays open. */
cmdb_rc cmdb_ingest_finish(struct cmdb_ingest *in, struct cmdb_ingest_stats *stats,
			   struct cmdb_error *err);

void cmdb_ingest_free(struct cmdb_ingest *in);

#endif
