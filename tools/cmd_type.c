/*
 * cmdb type list|show|add: CI types.
 */
#include <stdio.h>
#include <stdlib.h>
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
