/*
 * cmdb dup list|merge: suspected duplicates and their merge.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmdb/ci.h"
#include "cmdb/dup.h"
#include "commands.h"

const char usage_dup_list[] =
	"Usage: cmdb dup list [--type T] [--min-score N] [--json|--csv]\n"
	"\n"
	"Suspected duplicates: pairs of CIs in operation (planned, live, maintenance)\n"
	"of one type that share evidence of being the same thing, highest score\n"
	"first. KEEP is the older CI of a pair: merge with 'cmdb dup merge KEEP OTHER'.\n"
	"\n"
	"Evidence and its weight:\n"
	"  serial     90  the same serial number, as attribute or identity\n"
	"  uuid       90  the same machine UUID, as attribute or identity\n"
	"  host name  70  the same hostname or fqdn attribute, or fqdn identity\n"
	"  address    60  an address one CI states (attribute ip, ip_address or\n"
	"                 address) and the other holds (identity, interface) or states\n"
	"  name       50  the same name, ignoring case; 20 when that is all and the\n"
	"                 two hold different identities of one kind\n"
	"A pair's score combines its evidence: 100 * (1 - product(1 - weight/100)).\n"
	"Junk values (placeholder serials, all-zero UUIDs, localhost, loopback\n"
	"addresses, ...) are no evidence.\n"
	"\n"
	"  -t, --type T      CIs of type T and its subtypes\n"
	"  --min-score N     only pairs scoring at least N (0-100)\n"
	"  --json, --csv     machine-readable output\n";

const char usage_dup_merge[] =
	"Usage: cmdb dup merge KEEP OTHER [--dry-run] [--change REF] [--json|--csv]\n"
	"\n"
	"Merges CI OTHER into CI KEEP, in one transaction, and prints what moved:\n"
	"  - OTHER's identities move to KEEP;\n"
	"  - its relationships, both ways, move to KEEP, except those KEEP already\n"
	"    has and those that would relate KEEP to itself, which end;\n"
	"  - services OTHER provides take endpoint identities of KEEP; one on a port\n"
	"    KEEP already has a service on is that service, and is merged into it;\n"
	"  - its attribute claims are copied to KEEP, whose attributes are then\n"
	"    recomputed by source priority, as ingest does (see cmdb ci why);\n"
	"  - OTHER gets status merged and attribute merged_into=KEEP. It is never\n"
	"    deleted: both CIs' histories show the merge and every move.\n"
	"Refused, changing nothing: a CI into itself, CIs of different types, a\n"
	"merged or disposed CI, a retired CI to keep.\n"
	"KEEP and OTHER are ids, names or identities (mac=...).\n"
	"\n"
	"  --dry-run         print what would move; write nothing\n"
	"  --change REF      change reference recorded in history (required for\n"
	"                    types under change control)\n";

enum { OPT_MIN_SCORE = OPT_FIRST_LOCAL, OPT_DRY_RUN };

int cmd_dup_list(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"type", required_argument, NULL, 't'},
					     {"min-score", required_argument, NULL, OPT_MIN_SCORE},
					     {NULL, 0, NULL, 0}};
	static const char *const cols[] = {"score", "type", "keep", "keep_name", "other", "other_name",
					   "reasons", NULL};
	struct cmdb_rows *rows = NULL;
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	const char *type = NULL;
	long min = 0;
	char *end;
	cmdb_rc rc;
	int c;
	bool stop;

	while ((c = cli_next_opt(cli, argc, argv, "t:", opts, &stop)) != -1) {
		switch (c) {
		case 't': type = optarg; break;
		case OPT_MIN_SCORE:
			min = strtol(optarg, &end, 10);
			if (*end || end == optarg || min < 0 || min > 100)
				return cli_usage(cli, "--min-score takes a whole number from 0 to 100, not \"%s\"",
						 optarg);
			break;
		}
	}
	if (stop || !cli_want_args(cli, argc, argv, 0, 0))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_READ);
	if (!db)
		return EXIT_FAIL;
	rc = cmdb_dup_list(db, type, (int)min, &rows, &err);
	return cli_end_listing(cli, db, rc, rows, cols, &err);
}

int cmd_dup_merge(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"dry-run", no_argument, NULL, OPT_DRY_RUN}, {NULL, 0, NULL, 0}};
	static const char *const cols[] = {"action", "item", "detail", NULL};
	struct cmdb_error err = {0};
	struct cmdb_rows *plan = NULL;
	struct cmdb_db *db;
	int64_t keep, other;
	bool dry_run = false, stop;
	int c, code;

	while ((c = cli_next_opt(cli, argc, argv, "", opts, &stop)) != -1)
		if (c == OPT_DRY_RUN)
			dry_run = true;
	if (stop || !cli_want_args(cli, argc, argv, 2, 2))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_WRITE);
	if (!db)
		return EXIT_FAIL;
	if (cmdb_ci_resolve(db, argv[optind], &keep, &err) || cmdb_ci_resolve(db, argv[optind + 1], &other, &err) ||
	    cmdb_dup_merge(db, keep, other, dry_run, &plan, &err)) {
		cmdb_db_close(db);
		return cli_error(&err);
	}
	code = cli_finish(cli_print_rows(cli, plan, cols));
	/* notes ask for a next step: said in full, whatever the output format */
	for (int r = 0; r < cmdb_rows_count(plan); r++)
		if (strcmp(cmdb_rows_value(plan, r, 1), "note") == 0)
			fprintf(stderr, "cmdb: note: %s: %s\n", cmdb_rows_value(plan, r, 2), cmdb_rows_value(plan, r, 3));
	if (code == EXIT_OK) {
		if (dry_run)
			cli_note(cli, "dry run: nothing written (%d steps planned)", cmdb_rows_count(plan));
		else
			cli_note(cli, "CI %" PRId64 " merged into CI %" PRId64, other, keep);
	}
	cmdb_rows_free(plan);
	cmdb_db_close(db);
	return code;
}
