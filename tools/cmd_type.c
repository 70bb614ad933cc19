/*
 * cmdb type list|show|add|rules: CI types and their identification rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmdb/rules.h"
#include "cmdb/type.h"
#include "commands.h"

const char usage_type_list[] =
	"Usage: cmdb type list [--json|--csv]\n"
	"\n"
	"CI types with their parent, required attributes, change control and\n"
	"how many CIs each has.\n";

const char usage_type_show[] =
	"Usage: cmdb type show TYPE [--json]\n"
	"\n"
	"One CI type with its ancestors, subtypes and required attributes.\n";

const char usage_type_add[] =
	"Usage: cmdb type add TYPE --description TEXT [--parent P] [--require ATTR]...\n"
	"                      [--change-controlled]\n"
	"\n"
	"Adds a CI type of your own.\n"
	"\n"
	"  -d, --description TEXT  what CIs of this type are (required)\n"
	"  -p, --parent P          the type it specializes; listing P includes it\n"
	"  -r, --require ATTR      an attribute every CI of the type must have (repeatable)\n"
	"  --change-controlled     changes to its CIs need a change reference (--change)\n";

enum { OPT_CHANGE_CONTROLLED = OPT_FIRST_LOCAL };

int cmd_type_list(struct cli *cli, int argc, char **argv)
{
	static const char *const cols[] = {"name", "parent", "builtin", "change_controlled",
					   "required_attrs", "cis", "description", NULL};

	return cli_simple_listing(cli, argc, argv, cmdb_type_list, cols);
}

static void print_list(const char *label, const json_t *arr)
{
	size_t i;
	json_t *v;

	printf("%-18s", label);
	if (!json_array_size(arr))
		printf(" -");
	json_array_foreach(arr, i, v) printf("%s%s", i ? ", " : " ", json_string_value(v));
	printf("\n");
}

int cmd_type_show(struct cli *cli, int argc, char **argv)
{
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	json_t *t;
	int code;

	if (!cli_plain_args(cli, argc, argv, 1, 1))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_READ);
	if (!db)
		return EXIT_FAIL;
	if (cmdb_type_show(db, argv[optind], &t, &err)) {
		cmdb_db_close(db);
		return cli_error(&err);
	}
	if (cli->format == FMT_TABLE) {
		const char *parent = json_string_value(json_object_get(t, "parent"));

		printf("%-18s %s\n", "name", json_string_value(json_object_get(t, "name")));
		printf("%-18s %s\n", "description", json_string_value(json_object_get(t, "description")));
		printf("%-18s %s\n", "parent", parent ? parent : "-");
		print_list("ancestors", json_object_get(t, "ancestors"));
		print_list("subtypes", json_object_get(t, "subtypes"));
		print_list("required", json_object_get(t, "required_attrs"));
		print_list("inherited required", json_object_get(t, "inherited_required_attrs"));
		printf("%-18s %s\n", "change controlled",
		       json_is_true(json_object_get(t, "change_controlled")) ? "yes" : "no");
		printf("%-18s %s\n", "built in", json_is_true(json_object_get(t, "builtin")) ? "yes" : "no");
		printf("%-18s %" JSON_INTEGER_FORMAT "\n", "CIs", json_integer_value(json_object_get(t, "cis")));
	} else {
		cli_print_json(t);
	}
	code = cli_finish(EXIT_OK);
	json_decref(t);
	cmdb_db_close(db);
	return code;
}

int cmd_type_add(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"description", required_argument, NULL, 'd'}, {"parent", required_argument, NULL, 'p'},
		{"require", required_argument, NULL, 'r'},
		{"change-controlled", no_argument, NULL, OPT_CHANGE_CONTROLLED}, {NULL, 0, NULL, 0}};
	struct cmdb_type_new t = {0};
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	const char **req = calloc((size_t)argc + 1, sizeof(*req));
	int c, code;
	bool stop;

	if (!req)
		return cli_fail("out of memory");
	while ((c = cli_next_opt(cli, argc, argv, "d:p:r:", opts, &stop)) != -1) {
		switch (c) {
		case 'd': t.description = optarg; break;
		case 'p': t.parent = optarg; break;
		case 'r': req[t.n_required++] = optarg; break;
		case OPT_CHANGE_CONTROLLED: t.change_controlled = true; break;
		}
	}
	if (stop || !cli_want_args(cli, argc, argv, 1, 1)) {
		free(req);
		return cli->exit;
	}
	if (!t.description) {
		free(req);
		return cli_usage(cli, "a type needs a description: give --description TEXT");
	}
	t.name = argv[optind];
	t.required = req;
	db = cli_open(cli, CMDB_ACCESS_WRITE);
	if (!db) {
		free(req);
		return EXIT_FAIL;
	}
	if (cmdb_type_add(db, &t, &err))
		code = cli_error(&err);
	else {
		cli_note(cli, "type %s added", t.name);
		code = EXIT_OK;
	}
	cmdb_db_close(db);
	free(req);
	return code;
}

const char usage_type_rules[] =
	"Usage: cmdb type rules TYPE [EDIT] [--dry-run] [--json|--csv]\n"
	"\n"
	"The identification rules of a CI type: the identity kinds reconciliation\n"
	"(ingest, import, scan) matches records to existing CIs by, most trusted\n"
	"first. A record is the CI its first usable identity in rule order names;\n"
	"identities of kinds without a rule are recorded but never matched on.\n"
	"Junk values (placeholder serials such as 'To be filled by O.E.M.', all-zero\n"
	"UUIDs and MACs, localhost, ...) never match, whatever the rules say. A type\n"
	"without rules of its own follows its parent's. Without EDIT: lists the rules\n"
	"in force.\n"
	"\n"
	"EDIT (one per command; recorded in history; the rules are then listed):\n"
	"  --set KIND[,KIND...]  replace the list, e.g. serial,uuid,mac:universal,fqdn,ip,*\n"
	"                        ('' for none: nothing matches by identity)\n"
	"  --add KIND            add a rule, last or at --at N\n"
	"  --rm KIND             remove the rule for KIND: it no longer matches\n"
	"  --move KIND --at N    move the rule for KIND to position N\n"
	"  --reset               back to the built-in rules (built-in types) or to the\n"
	"                        parent's (your own types)\n"
	"  --at N                position for --add and --move (1 is the most trusted)\n"
	"  --dry-run             list the rules the edit would give; change nothing\n"
	"  --change REF          change reference recorded in history\n"
	"\n"
	"KIND is serial, uuid, mac, fqdn, ip, endpoint or a kind of your own. These\n"
	"built-in kinds match only through a rule of their own; * stands for the\n"
	"kinds of your own without a rule, in the order a record gives them.\n"
	"mac:universal: locally administered MACs (virtual machines, containers,\n"
	"randomized Wi-Fi) do not match. For discovered hosts, mac means an\n"
	"interface's MAC and ip an address the host holds; addresses, interfaces and\n"
	"services must keep their own rule (ip, mac, endpoint).\n";

enum { OPT_SET = OPT_FIRST_LOCAL + 1, OPT_ADD, OPT_RM, OPT_MOVE, OPT_RESET, OPT_AT, OPT_DRY_RUN };

/* Splits "a,b,c" into *specs (pointers into copy); "" is the empty list. */
static int split_specs(struct cli *cli, char *copy, const char ***specs, size_t *n)
{
	size_t cap = 1;

	for (const char *p = copy; *p; p++)
		cap += *p == ',';
	*specs = calloc(cap, sizeof(**specs));
	*n = 0;
	if (!*specs)
		return cli_fail("out of memory");
	if (!*copy)
		return 0;
	for (char *tok = copy, *comma;; tok = comma + 1) {
		comma = strchr(tok, ',');
		if (comma)
			*comma = '\0';
		if (!*tok)
			return cli_usage(cli, "--set: an empty kind in the list (use KIND,KIND,...)");
		(*specs)[(*n)++] = tok;
		if (!comma)
			return 0;
	}
}

int cmd_type_rules(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"set", required_argument, NULL, OPT_SET},   {"add", required_argument, NULL, OPT_ADD},
		{"rm", required_argument, NULL, OPT_RM},     {"move", required_argument, NULL, OPT_MOVE},
		{"reset", no_argument, NULL, OPT_RESET},     {"at", required_argument, NULL, OPT_AT},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN}, {NULL, 0, NULL, 0}};
	static const char *const cols[] = {"position", "kind", "options", "defined_by", "matches", NULL};
	struct cmdb_error err = {0};
	struct cmdb_rows *rows = NULL;
	struct cmdb_db *db = NULL;
	const char **specs = NULL;
	char *set_copy = NULL, *end;
	const char *arg = NULL, *type;
	size_t nspecs = 0;
	long at = 0;
	int c, edit = 0, code = EXIT_OK;
	bool dry_run = false, stop, began = false;
	cmdb_rc rc = CMDB_OK;

	while ((c = cli_next_opt(cli, argc, argv, "", opts, &stop)) != -1) {
		switch (c) {
		case OPT_SET: case OPT_ADD: case OPT_RM: case OPT_MOVE: case OPT_RESET:
			if (edit) {
				code = cli_usage(cli, "one edit per command: --set, --add, --rm, --move or --reset");
				goto out;
			}
			edit = c;
			arg = optarg;
			break;
		case OPT_AT:
			at = strtol(optarg, &end, 10);
			if (*end || end == optarg || at < 1 || at > 64) {
				code = cli_usage(cli, "--at takes a position from 1 to 64, not \"%s\"", optarg);
				goto out;
			}
			break;
		case OPT_DRY_RUN: dry_run = true; break;
		}
	}
	if (stop || !cli_want_args(cli, argc, argv, 1, 1)) {
		code = cli->exit;
		goto out;
	}
	type = argv[optind];
	if (at && edit != OPT_ADD && edit != OPT_MOVE) {
		code = cli_usage(cli, "--at goes with --add or --move");
		goto out;
	}
	if (edit == OPT_MOVE && !at) {
		code = cli_usage(cli, "--move KIND needs --at N, the position to move it to");
		goto out;
	}
	if (dry_run && !edit) {
		code = cli_usage(cli, "--dry-run goes with an edit (--set, --add, --rm, --move, --reset)");
		goto out;
	}
	if (edit == OPT_SET) {
		set_copy = strdup(arg);
		if (!set_copy) {
			code = cli_fail("out of memory");
			goto out;
		}
		code = split_specs(cli, set_copy, &specs, &nspecs);
		if (code)
			goto out;
	}
	db = cli_open(cli, edit ? CMDB_ACCESS_WRITE : CMDB_ACCESS_READ);
	if (!db) {
		code = EXIT_FAIL;
		goto out;
	}
	/* a dry run makes the edit and lists its result in a transaction it rolls back */
	if (edit && (rc = cmdb_db_begin(db, &err)) == CMDB_OK) {
		began = true;
		switch (edit) {
		case OPT_SET: rc = cmdb_rules_set(db, type, specs, nspecs, &err); break;
		case OPT_RESET: rc = cmdb_rules_reset(db, type, &err); break;
		case OPT_ADD: rc = cmdb_rules_edit(db, type, CMDB_RULES_ADD, arg, (int)at, &err); break;
		case OPT_RM: rc = cmdb_rules_edit(db, type, CMDB_RULES_RM, arg, 0, &err); break;
		case OPT_MOVE: rc = cmdb_rules_edit(db, type, CMDB_RULES_MOVE, arg, (int)at, &err); break;
		}
	}
	if (rc == CMDB_OK)
		rc = cmdb_rules_list(db, type, &rows, &err);
	if (rc == CMDB_OK && began && !dry_run)
		rc = cmdb_db_commit(db, &err);
	if (began && (rc || dry_run))
		cmdb_db_rollback(db);
	if (rc) {
		code = cli_error(&err);
		goto out;
	}
	code = cli_finish(cli_print_rows(cli, rows, cols));
	if (code == EXIT_OK && edit)
		cli_note(cli, dry_run ? "dry run: the rules of %s are unchanged" : "rules of %s changed (recorded in history)",
			 type);
out:
	cmdb_rows_free(rows);
	cmdb_db_close(db);
	free(specs);
	free(set_copy);
	return code;
}
