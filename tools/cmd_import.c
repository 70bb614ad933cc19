/*
 * cmdb import nmap|masscan|csv: other tools' scans and hand-kept inventories,
 * through the same reconciliation as cmdb ingest. Part of cmdb-full (it
 * links libxml2 and libcsv, which the lean cmdb leaves out).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmdb/import.h"
#include "cmdb/ingest.h"
#include "commands.h"

const char usage_import_nmap[] =
	"Usage: cmdb import nmap FILE.xml [--source NAME] [--dry-run]\n"
	"\n"
	"Imports an nmap scan (-oX) through the same reconciliation as cmdb ingest:\n"
	"hosts, MACs, open ports, services and OS guesses become the same CIs a\n"
	"cmdb scan of those hosts would find. Source nmap unless given.\n";

const char usage_import_masscan[] =
	"Usage: cmdb import masscan FILE.json [--source NAME] [--dry-run]\n"
	"\n"
	"Imports a masscan scan (-oJ or -oD). Source masscan unless given.\n";

const char usage_import_csv[] =
	"Usage: cmdb import csv FILE --type T [--name-column C] [--description-column C]\n"
	"                       [--identity KIND=COLUMN]... [--source NAME] [--dry-run]\n"
	"\n"
	"Imports a hand-kept inventory (RFC 4180 CSV with a header row): one CI of\n"
	"type T per row, found again through its identities (columns named\n"
	"identity:KIND, or mapped with --identity), else through a unique name\n"
	"within the type. Other columns become attributes; their values are claims\n"
	"of source csv (priority 60) unless --source is given.\n";

enum { OPT_DRY_RUN = OPT_FIRST_LOCAL, OPT_SOURCE, OPT_BATCH, OPT_TYPE, OPT_NAME_COLUMN, OPT_DESC_COLUMN, OPT_IDENTITY };

enum import_kind { IMPORT_NMAP, IMPORT_MASSCAN, IMPORT_CSV };

static cmdb_rc ingest_sink(void *ctx, const json_t *obs, struct cmdb_error *err)
{
	return cmdb_ingest_obs(ctx, obs, err);
}

static int run_import(struct cli *cli, int argc, char **argv, enum import_kind kind)
{
	static const struct option opts[] = {{"dry-run", no_argument, NULL, OPT_DRY_RUN},
					     {"source", required_argument, NULL, OPT_SOURCE},
					     {"batch", required_argument, NULL, OPT_BATCH},
					     {"type", required_argument, NULL, OPT_TYPE},
					     {"name-column", required_argument, NULL, OPT_NAME_COLUMN},
					     {"description-column", required_argument, NULL, OPT_DESC_COLUMN},
					     {"identity", required_argument, NULL, OPT_IDENTITY},
					     {NULL, 0, NULL, 0}};
	static const char *const default_source[] = {"nmap", "masscan", "csv"};
	struct cli_ingest_report ui = {0};
	struct cmdb_ingest_options io = {.on_reject = cli_ingest_reject, .on_change = cli_ingest_change, .ctx = &ui,
					 .source = default_source[kind]};
	struct cmdb_csv_map map = {0};
	struct cmdb_import_stats is = {0};
	struct cmdb_ingest_stats st = {0};
	struct cmdb_error err = {0};
	struct cmdb_ingest *in = NULL;
	struct cmdb_db *db = NULL;
	const char **idents = calloc((size_t)argc + 1, sizeof(*idents));
	const char *path;
	long batch;
	int c, code = EXIT_FAIL;
	bool stop;
	cmdb_rc rc;

	if (!idents)
		return cli_fail("out of memory");
	while ((c = cli_next_opt(cli, argc, argv, "", opts, &stop)) != -1) {
		if (kind != IMPORT_CSV && c >= OPT_TYPE) {
			code = cli_usage(cli, "%s is an option of cmdb import csv", argv[optind - 1]);
			goto out;
		}
		switch (c) {
		case OPT_DRY_RUN: io.dry_run = true; break;
		case OPT_SOURCE: io.source = optarg; break;
		case OPT_BATCH:
			if (!cli_parse_count(optarg, &batch) || batch > 1000000) {
				code = cli_usage(cli, "--batch takes a whole number from 1 to 1000000, not \"%s\"", optarg);
				goto out;
			}
			io.batch_lines = (size_t)batch;
			break;
		case OPT_TYPE: map.type = optarg; break;
		case OPT_NAME_COLUMN: map.name_column = optarg; break;
		case OPT_DESC_COLUMN: map.description_column = optarg; break;
		case OPT_IDENTITY:
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				code = cli_usage(cli, "malformed --identity \"%s\": use KIND=COLUMN", optarg);
				goto out;
			}
			idents[map.n_identities++] = optarg;
			break;
		}
	}
	if (stop || !cli_want_args(cli, argc, argv, 1, 1)) {
		code = cli->exit;
		goto out;
	}
	if (kind == IMPORT_CSV && !map.type) {
		code = cli_usage(cli, "give the CI type of the rows: --type T");
		goto out;
	}
	map.identities = idents;
	path = argv[optind];
	if (access(path, R_OK) != 0) {
		code = cli_fail("cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	db = cli_open(cli, CMDB_ACCESS_WRITE);
	if (!db)
		goto out;
	if (cmdb_ingest_open(db, &io, &in, &err)) {
		code = cli_error(&err);
		goto out;
	}
	switch (kind) {
	case IMPORT_NMAP: rc = cmdb_import_nmap_xml(path, ingest_sink, in, &is, &err); break;
	case IMPORT_MASSCAN: rc = cmdb_import_masscan_json(path, ingest_sink, in, &is, &err); break;
	default: rc = cmdb_import_csv(path, &map, ingest_sink, in, &is, &err); break;
	}
	/* what was read before an error is kept: apply it, then report the error */
	if (rc) {
		struct cmdb_error ferr = {0};
		cmdb_ingest_finish(in, &st, &ferr);
		code = cli_error(&err);
		goto out;
	}
	if (cmdb_ingest_finish(in, &st, &err)) {
		code = cli_error(&err);
		goto out;
	}
	if (is.skipped)
		fprintf(stderr, "cmdb: %s: %" PRIu64 " of %" PRIu64 " records skipped; the first: %s\n", path, is.skipped,
			is.records, is.first_skip);
	if (cli->format == FMT_JSON) {
		json_t *o = json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "dry_run", io.dry_run, "records",
				      (json_int_t)is.records, "skipped", (json_int_t)is.skipped, "observations",
				      (json_int_t)st.accepted, "rejected", (json_int_t)st.rejected, "created",
				      (json_int_t)st.created, "updated", (json_int_t)st.updated, "unchanged",
				      (json_int_t)st.unchanged);
		cli_print_json(o);
		json_decref(o);
	} else {
		cli_note(cli, "%s%" PRIu64 " records read: %" PRIu64 " observations %s, %" PRIu64 " rejected: %" PRIu64
			      " CIs created, %" PRIu64 " updated, %" PRIu64 " unchanged",
			 io.dry_run ? "dry run: " : "", is.records, st.accepted, io.dry_run ? "checked" : "ingested",
			 st.rejected, st.created, st.updated, st.unchanged);
	}
	cli_note_purged(cli, st.purged);
	code = cli_finish(is.skipped || st.rejected ? EXIT_FAIL : EXIT_OK);
out:
	cmdb_ingest_free(in);
	cmdb_db_close(db);
	free(idents);
	return code;
}

int cmd_import_nmap(struct cli *cli, int argc, char **argv)
{
	return run_import(cli, argc, argv, IMPORT_NMAP);
}

int cmd_import_masscan(struct cli *cli, int argc, char **argv)
{
	return run_import(cli, argc, argv, IMPORT_MASSCAN);
}

int cmd_import_csv(struct cli *cli, int argc, char **argv)
{
	return run_import(cli, argc, argv, IMPORT_CSV);
}
