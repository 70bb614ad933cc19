/*
 * cmdb ingest, cmdb scans, cmdb source list|set, cmdb ci why: observations
 * into the CMDB, and where its values came from. (cmdb import is in
 * cmd_import.c, part of cmdb-full.)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmdb/ci.h"
#include "cmdb/ingest.h"
#include "cmdb/source.h"
#include "commands.h"

const char usage_ingest[] =
	"Usage: cmdb ingest FILE|- [--source NAME] [--dry-run] [--batch N]\n"
	"\n"
	"Reads observations (NDJSON, docs/observations.md) from FILE or standard\n"
	"input and reconciles them into CIs: one CI per real host, interface,\n"
	"address and service, related, with every attribute's source recorded.\n"
	"A malformed line is rejected with its line number and reason; every valid\n"
	"line is ingested; the exit status is 1 when any line was rejected.\n"
	"\n"
	"  --source NAME   who made the observations (default discover); its\n"
	"                  priority decides whose attribute values win (cmdb source list)\n"
	"  --dry-run       show what would be created and changed, write nothing\n"
	"  --batch N       observations per transaction (default 10000)\n";

const char usage_scans[] =
	"Usage: cmdb scans [--limit N] [--json|--csv]\n"
	"\n"
	"Scan runs ingested, newest first: targets, times, whether complete, and\n"
	"how many CIs each created, updated, left unchanged and marked missing.\n";

const char usage_source_list[] =
	"Usage: cmdb source list [--json|--csv]\n"
	"\n"
	"Sources of CI data and their priorities: a source never overwrites an\n"
	"attribute value of a source with a higher priority.\n";

const char usage_source_set[] =
	"Usage: cmdb source set NAME --priority N\n"
	"\n"
	"Sets a source's priority (0-1000; defaults: manual 100, imports 30-60,\n"
	"scanners 20). New names are registered.\n";

const char usage_settings_list[] =
	"Usage: cmdb settings list [--json|--csv]\n"
	"\n"
	"The CMDB's settings: observation_retention (how long the raw observations\n"
	"of a scan run are kept as evidence after it was ingested; every ingest\n"
	"removes older ones) and ip_scope (the scope written into every IP address\n"
	"identity; it can change only before the first address is recorded).\n";

const char usage_settings_set[] =
	"Usage: cmdb settings set NAME VALUE\n"
	"\n"
	"Sets a setting, e.g. cmdb settings set observation_retention '30 days'.\n"
	"The value is checked: a positive duration for observation_retention, up to\n"
	"64 letters, digits, _ . - (or empty) for ip_scope.\n";

const char usage_ci_why[] =
	"Usage: cmdb ci why CI ATTRIBUTE [--json|--csv]\n"
	"\n"
	"Which source said which value of ATTRIBUTE when, which one won and why.\n";

enum { OPT_DRY_RUN = OPT_FIRST_LOCAL, OPT_SOURCE, OPT_BATCH, OPT_PRIORITY, OPT_LIMIT };

int cmd_ingest(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"dry-run", no_argument, NULL, OPT_DRY_RUN},
					     {"source", required_argument, NULL, OPT_SOURCE},
					     {"batch", required_argument, NULL, OPT_BATCH},
					     {NULL, 0, NULL, 0}};
	struct cli_ingest_report ui = {0};
	struct cmdb_ingest_options io = {.on_reject = cli_ingest_reject, .on_change = cli_ingest_change, .ctx = &ui};
	struct cmdb_ingest_stats st;
	struct cmdb_error err = {0};
	struct cmdb_ingest *in = NULL;
	struct cmdb_db *db = NULL;
	FILE *f = NULL;
	const char *path;
	long batch;
	int c, code = EXIT_FAIL;
	bool stop;

	while ((c = cli_next_opt(cli, argc, argv, "", opts, &stop)) != -1) {
		switch (c) {
		case OPT_DRY_RUN: io.dry_run = true; break;
		case OPT_SOURCE: io.source = optarg; break;
		case OPT_BATCH:
			if (!cli_parse_count(optarg, &batch) || batch > 1000000)
				return cli_usage(cli, "--batch takes a whole number from 1 to 1000000, not \"%s\"", optarg);
			io.batch_lines = (size_t)batch;
			break;
		}
	}
	if (stop || !cli_want_args(cli, argc, argv, 1, 1))
		return cli->exit;
	path = argv[optind];
	if (strcmp(path, "-") == 0) {
		f = stdin;
	} else if (!(f = fopen(path, "r"))) {
		return cli_fail("cannot open %s: %s", path, strerror(errno));
	}
	db = cli_open(cli, CMDB_ACCESS_WRITE);
	if (!db)
		goto out;
	if (cmdb_ingest_open(db, &io, &in, &err) || cmdb_ingest_stream(in, f, &err) ||
	    cmdb_ingest_finish(in, &st, &err)) {
		code = cli_error(&err);
		goto out;
	}
	if (cli->format == FMT_JSON) {
		json_t *o = json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "dry_run", io.dry_run, "lines",
				      (json_int_t)st.lines, "accepted", (json_int_t)st.accepted, "rejected",
				      (json_int_t)st.rejected, "batches", (json_int_t)st.batches, "retries",
				      (json_int_t)st.retries, "created", (json_int_t)st.created, "updated",
				      (json_int_t)st.updated, "unchanged", (json_int_t)st.unchanged, "missing",
				      (json_int_t)st.missing, "purged", (json_int_t)st.purged);
		cli_print_json(o);
		json_decref(o);
	} else {
		cli_note(cli, "%s%" PRIu64 " observations %s, %" PRIu64 " rejected: %" PRIu64 " CIs created, %" PRIu64
			      " updated, %" PRIu64 " unchanged, %" PRIu64 " marked missing",
			 io.dry_run ? "dry run: " : "", st.accepted, io.dry_run ? "checked" : "ingested", st.rejected,
			 st.created, st.updated, st.unchanged, st.missing);
	}
	cli_note_purged(cli, st.purged);
	code = cli_finish(st.rejected ? EXIT_FAIL : EXIT_OK);
out:
	cmdb_ingest_free(in);
	cmdb_db_close(db);
	if (f && f != stdin)
		fclose(f);
	return code;
}

int cmd_scans(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"limit", required_argument, NULL, OPT_LIMIT}, {NULL, 0, NULL, 0}};
	static const char *const cols[] = {"id", "source", "targets", "started", "complete", "observations",
					   "created", "updated", "unchanged", "missing", NULL};
	struct cmdb_error err = {0};
	struct cmdb_rows *rows = NULL;
	struct cmdb_db *db;
	cmdb_rc rc;
	long limit = 0;
	int c;
	bool stop;

	while ((c = cli_next_opt(cli, argc, argv, "", opts, &stop)) != -1)
		if (c == OPT_LIMIT && !cli_parse_count(optarg, &limit))
			return cli_usage(cli, "--limit takes a positive whole number, not \"%s\"", optarg);
	if (stop || !cli_want_args(cli, argc, argv, 0, 0))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_READ);
	if (!db)
		return EXIT_FAIL;
	rc = cmdb_scan_list(db, limit, &rows, &err);
	return cli_end_listing(cli, db, rc, rows, cols, &err);
}

int cmd_source_list(struct cli *cli, int argc, char **argv)
{
	return cli_simple_listing(cli, argc, argv, cmdb_source_list, NULL);
}

int cmd_source_set(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"priority", required_argument, NULL, OPT_PRIORITY},
					     {NULL, 0, NULL, 0}};
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	long prio = -1;
	char *end;
	int c, code = EXIT_OK;
	bool stop;

	while ((c = cli_next_opt(cli, argc, argv, "", opts, &stop)) != -1) {
		if (c == OPT_PRIORITY) {
			errno = 0;
			prio = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || prio < 0 || prio > 1000)
				return cli_usage(cli, "--priority takes a whole number from 0 to 1000, not \"%s\"", optarg);
		}
	}
	if (stop || !cli_want_args(cli, argc, argv, 1, 1))
		return cli->exit;
	if (prio < 0)
		return cli_usage(cli, "give --priority N");
	db = cli_open(cli, CMDB_ACCESS_WRITE);
	if (!db)
		return EXIT_FAIL;
	if (cmdb_source_set(db, argv[optind], (int)prio, &err))
		code = cli_error(&err);
	else
		cli_note(cli, "source %s now has priority %ld", argv[optind], prio);
	cmdb_db_close(db);
	return code;
}

int cmd_settings_list(struct cli *cli, int argc, char **argv)
{
	return cli_simple_listing(cli, argc, argv, cmdb_setting_list, NULL);
}

int cmd_settings_set(struct cli *cli, int argc, char **argv)
{
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	int code = EXIT_OK;

	if (!cli_plain_args(cli, argc, argv, 2, 2))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_WRITE);
	if (!db)
		return EXIT_FAIL;
	if (cmdb_setting_set(db, argv[optind], argv[optind + 1], &err))
		code = cli_error(&err);
	else
		cli_note(cli, "%s is now \"%s\"", argv[optind], argv[optind + 1]);
	cmdb_db_close(db);
	return code;
}

int cmd_ci_why(struct cli *cli, int argc, char **argv)
{
	static const char *const cols[] = {"source", "priority", "value", "observed_at", "wins", "reason", NULL};
	struct cmdb_error err = {0};
	struct cmdb_rows *rows = NULL;
	struct cmdb_db *db;
	int64_t id;
	int code;

	if (!cli_plain_args(cli, argc, argv, 2, 2))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_READ);
	if (!db)
		return EXIT_FAIL;
	if (cmdb_ci_resolve(db, argv[optind], &id, &err) || cmdb_ci_why(db, id, argv[optind + 1], &rows, &err)) {
		code = cli_error(&err);
	} else if (cmdb_rows_count(rows) == 0 && cli->format == FMT_TABLE) {
		code = cli_fail("no source has stated attribute \"%s\" of CI %" PRId64, argv[optind + 1], id);
	} else {
		code = cli_finish(cli_print_rows(cli, rows, cols));
	}
	cmdb_rows_free(rows);
	cmdb_db_close(db);
	return code;
}
