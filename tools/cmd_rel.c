/*
 * cmdb rel add|rm|list|types: relationships between CIs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "cmdb/ci.h"
#include "cmdb/rel.h"
#include "commands.h"

const char usage_rel_add[] =
	"Usage: cmdb rel add SOURCE TYPE TARGET [--attr K=V]...\n"
	"\n"
	"Relates two CIs: cmdb rel add web01 runs_on vm-host-3.\n"
	"Relationship types: cmdb rel types.\n";

const char usage_rel_rm[] =
	"Usage: cmdb rel rm SOURCE TYPE TARGET\n"
	"\n"
	"Ends a relationship; it stays readable with --as-of.\n";

const char usage_rel_list[] =
	"Usage: cmdb rel list CI [--direction in|out|both] [--as-of TIME] [--json|--csv]\n"
	"\n"
	"Relationships of one CI.\n";

const char usage_rel_types[] =
	"Usage: cmdb rel types [--json|--csv]\n"
	"\n"
	"Relationship types with their labels and how failures propagate along them.\n";

enum { OPT_DIRECTION = OPT_FIRST_LOCAL, OPT_AS_OF };

/* Opens the CMDB and resolves SOURCE and TARGET. */
static struct cmdb_db *open_pair(struct cli *cli, const char *src, const char *dst, int64_t *s, int64_t *d)
{
	struct cmdb_error err = {0};
	struct cmdb_db *db = cli_open(cli, CMDB_ACCESS_WRITE);

	if (!db)
		return NULL;
	if (cmdb_ci_resolve(db, src, s, &err) || cmdb_ci_resolve(db, dst, d, &err)) {
		cli_error(&err);
		cmdb_db_close(db);
		return NULL;
	}
	return db;
}

int cmd_rel_add(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"attr", required_argument, NULL, 'a'}, {NULL, 0, NULL, 0}};
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	json_t *attrs = json_object();
	int64_t s, d, id;
	int c, code = EXIT_OK;
	bool stop;

	while ((c = cli_next_opt(cli, argc, argv, "a:", opts, &stop)) != -1)
		if (c == 'a' && (code = cli_parse_attr(cli, attrs, optarg)))
			goto out;
	if (stop || !cli_want_args(cli, argc, argv, 3, 3)) {
		code = cli->exit;
		goto out;
	}
	db = open_pair(cli, argv[optind], argv[optind + 2], &s, &d);
	if (!db) {
		code = EXIT_FAIL;
		goto out;
	}
	if (cmdb_rel_add(db, s, argv[optind + 1], d, attrs, &id, &err))
		code = cli_error(&err);
	else
		cli_note(cli, "related CI %" PRId64 " %s CI %" PRId64, s, argv[optind + 1], d);
	cmdb_db_close(db);
out:
	json_decref(attrs);
	return code;
}

int cmd_rel_rm(struct cli *cli, int argc, char **argv)
{
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	int64_t s, d;
	int code = EXIT_OK;

	if (!cli_plain_args(cli, argc, argv, 3, 3))
		return cli->exit;
	db = open_pair(cli, argv[optind], argv[optind + 2], &s, &d);
	if (!db)
		return EXIT_FAIL;
	if (cmdb_rel_rm(db, s, argv[optind + 1], d, &err))
		code = cli_error(&err);
	else
		cli_note(cli, "ended CI %" PRId64 " %s CI %" PRId64, s, argv[optind + 1], d);
	cmdb_db_close(db);
	return code;
}

int cmd_rel_list(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"direction", required_argument, NULL, OPT_DIRECTION},
					     {"as-of", required_argument, NULL, OPT_AS_OF},
					     {NULL, 0, NULL, 0}};
	static const char *const cols[] = {"direction", "label", "ci", "ci_type", "ci_name", "ci_status",
					   "since", NULL};
	enum cmdb_direction dir = CMDB_DIR_BOTH;
	struct cmdb_error err = {0};
	struct cmdb_rows *rows = NULL;
	struct cmdb_db *db;
	const char *as_of = NULL;
	int64_t id;
	int c;
	cmdb_rc rc;
	bool stop;

	while ((c = cli_next_opt(cli, argc, argv, "", opts, &stop)) != -1) {
		if (c == OPT_AS_OF) {
			as_of = optarg;
		} else if (c == OPT_DIRECTION) {
			if (strcmp(optarg, "in") == 0)
				dir = CMDB_DIR_IN;
			else if (strcmp(optarg, "out") == 0)
				dir = CMDB_DIR_OUT;
			else if (strcmp(optarg, "both") == 0)
				dir = CMDB_DIR_BOTH;
			else
				return cli_usage(cli, "--direction is in, out or both, not \"%s\"", optarg);
		}
	}
	if (stop || !cli_want_args(cli, argc, argv, 1, 1))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_READ);
	if (!db)
		return EXIT_FAIL;
	rc = cmdb_ci_resolve(db, argv[optind], &id, &err);
	if (rc == CMDB_OK)
		rc = cmdb_rel_list(db, id, dir, as_of, &rows, &err);
	return cli_end_listing(cli, db, rc, rows, cols, &err);
}

int cmd_rel_types(struct cli *cli, int argc, char **argv)
{
	return cli_simple_listing(cli, argc, argv, cmdb_rel_types, NULL);
}
