/*
 * What every subcommand of the cmdb command shares: global options, error
 * reporting with the exit-code convention (0 ok, 1 failure, 2 usage), the
 * connection, and output in table, JSON or CSV.
 */
#ifndef CMDB_TOOL_CLI_H
#define CMDB_TOOL_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "cmdb/db.h"
#include "cmdb/error.h"
#include "cmdb/rows.h"

enum cli_format { FMT_TABLE, FMT_JSON, FMT_CSV };

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct cli {
	const char *db;         /* --db */
	const char *change_ref; /* --change */
	enum cli_format format;
	bool quiet;
	const char *cmd;   /* "ci add", for messages */
	const char *usage; /* the command's help text */
	int exit;          /* set by cli_common_opt when it ends the command */
};

/* Long options every command accepts; append to a command's own table. */
enum { OPT_DB = 1000, OPT_FORMAT, OPT_JSON, OPT_CSV, OPT_CHANGE, OPT_FIRST_LOCAL };
#define CLI_COMMON_OPTIONS                                                                          \
	{"db", required_argument, NULL, OPT_DB}, {"format", required_argument, NULL, OPT_FORMAT},   \
		{"json", no_argument, NULL, OPT_JSON}, {"csv", no_argument, NULL, OPT_CSV},         \
		{"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'},                \
		{"change", required_argument, NULL, OPT_CHANGE}, { NULL, 0, NULL, 0 }
#define CLI_COMMON_SHORT "hq"

/* Handles an option that is not the command's own. Returns true when the
 * command must end now with cli->exit (help shown, or a usage error). */
bool cli_common_opt(struct cli *cli, int c, const char *arg);

/* Messages on stderr, "cmdb: ..."; each returns the exit code to use. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_usage(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_error(const struct cmdb_error *err);
void cli_note(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens the CMDB for the command; on failure prints why and returns NULL. */
struct cmdb_db *cli_open(struct cli *cli, enum cmdb_access access);

/* Adds "K=V" (a string) or "K:=JSON" (any JSON value) to obj. Returns 0, or
 * an exit code after printing the problem. */
int cli_parse_attr(struct cli *cli, json_t *obj, const char *arg);
/* A whole number above 0 in ARG (all of it), into *out. */
bool cli_parse_count(const char *arg, long *out);
/* Appends {"kind": K, "value": V} for "KIND=VALUE" to arr. */
int cli_parse_identity(struct cli *cli, json_t *arr, const char *arg);

/* Writes rows in the chosen format. table_cols names the columns of the
 * table format (NULL-terminated; NULL for all). Returns an exit code. */
int cli_print_rows(const struct cli *cli, const struct cmdb_rows *rows, const char *const *table_cols);
/* Writes one JSON value (JSON format). */
int cli_print_json(const json_t *v);
/* Flushes stdout; a write error (full disk, closed pipe) is a failure. */
int cli_finish(int code);

/* A value fit for a terminal: control characters shown as \xNN. Caller frees. */
char *cli_printable(const char *s);

/* Reports what an ingest rejects and reconciliation flags, on stderr (and,
 * in a dry run, what would change, on stdout): the callbacks of struct
 * cmdb_ingest_options, with a struct cli_ingest_report as their ctx. */
struct cli_ingest_report {
	const char *what; /* "line" unless set: what a rejected number counts */
	uint64_t reported;
};
void cli_ingest_reject(void *ctx, uint64_t line, const char *reason);
void cli_ingest_change(void *ctx, const char *action, const char *ci_type, const char *name,
		       const char *detail);
/* After an ingest: says how many observations the evidence retention removed, if any. */
void cli_note_purged(const struct cli *cli, uint64_t purged);

#endif
