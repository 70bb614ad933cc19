/*
 * cmdb ci add|list|show|set|retire|history: configuration items.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmdb/ci.h"
#include "commands.h"

const char usage_ci_add[] =
	"Usage: cmdb ci add TYPE NAME --description TEXT [OPTIONS]\n"
	"\n"
	"Records a configuration item and prints its id.\n"
	"\n"
	"  -d, --description TEXT  what the CI is (required)\n"
	"  -s, --status S          planned, live (default) or maintenance\n"
	"  -c, --criticality C     low, medium (default), high or critical\n"
	"  -o, --owner O           who is accountable for it\n"
	"  -a, --attr K=V          an attribute with a string value (repeatable)\n"
	"  -a, --attr K:=JSON      an attribute with a JSON value: port:=22, tags:='[\"a\"]'\n"
	"  -i, --identity KIND=V   an identity no other CI may hold: mac=..., serial=...,\n"
	"                          uuid=..., fqdn=..., ip=..., or a kind of your own\n"
	"  --change REF            change reference recorded in history\n";

const char usage_ci_list[] =
	"Usage: cmdb ci list [OPTIONS]\n"
	"\n"
	"Lists CIs by id.\n"
	"\n"
	"  -t, --type T       of type T or one of its subtypes\n"
	"  -s, --status S     with status S\n"
	"  -a, --attr K=V     whose attribute K is V (K:=JSON to match JSON; repeatable)\n"
	"  -n, --name GLOB    whose name matches GLOB (* and ?)\n"
	"  --as-of TIME       as they were at TIME ('2026-11-20 14:00', '3 days')\n"
	"  --stale DURATION   seen, but not for DURATION ('30 days')\n"
	"  --missing          expected by a complete scan and not seen by it\n"
	"  -l, --limit N      at most N\n"
	"  --json, --csv      machine-readable output with every field\n";

const char usage_ci_show[] =
	"Usage: cmdb ci show CI [--as-of TIME] [--json]\n"
	"\n"
	"One CI with its attributes, identities and relationships both ways.\n"
	"CI is an id, a name, or an identity such as mac=00:11:22:33:44:55.\n";

const char usage_ci_set[] =
	"Usage: cmdb ci set CI [OPTIONS]\n"
	"\n"
	"Changes a CI; every change is recorded in its history.\n"
	"\n"
	"  -s, --status S          new status (lifecycle rules apply)\n"
	"  -d, --description TEXT  new description\n"
	"  -c, --criticality C     new criticality\n"
	"  -o, --owner O           new owner ('' removes it)\n"
	"  --name NAME             new name\n"
	"  -a, --attr K=V, K:=JSON set an attribute (repeatable)\n"
	"  -u, --unset K           remove an attribute (repeatable)\n"
	"  -i, --identity KIND=V   add an identity (repeatable)\n"
	"  --drop-identity KIND=V  end an identity (repeatable)\n"
	"  --change REF            change reference recorded in history (required for\n"
	"                          types under change control)\n";

const char usage_ci_retire[] =
	"Usage: cmdb ci retire CI --reason TEXT\n"
	"\n"
	"Takes a CI out of operation (status retired); it is never deleted.\n";

const char usage_ci_history[] =
	"Usage: cmdb ci history CI [--json|--csv]\n"
	"\n"
	"Every recorded change of a CI and its relationships: when, who, what,\n"
	"old and new value, source and change reference.\n";

enum { OPT_AS_OF = OPT_FIRST_LOCAL, OPT_NAME, OPT_DROP_IDENTITY, OPT_REASON, OPT_STALE, OPT_MISSING };

/* Resolves argv's CI reference, printing the problem on failure. */
static bool resolve(struct cmdb_db *db, const char *ref, int64_t *id)
{
	struct cmdb_error err = {0};

	if (cmdb_ci_resolve(db, ref, id, &err)) {
		cli_error(&err);
		return false;
	}
	return true;
}

int cmd_ci_add(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"description", required_argument, NULL, 'd'}, {"status", required_argument, NULL, 's'},
		{"criticality", required_argument, NULL, 'c'}, {"owner", required_argument, NULL, 'o'},
		{"attr", required_argument, NULL, 'a'},        {"identity", required_argument, NULL, 'i'},
		{NULL, 0, NULL, 0}};
	struct cmdb_ci_new ci = {0};
	struct cmdb_error err = {0};
	json_t *attrs = json_object(), *idents = json_array();
	struct cmdb_db *db = NULL;
	int64_t id;
	int c, code = EXIT_OK;
	bool stop;

	while ((c = cli_next_opt(cli, argc, argv, "d:s:c:o:a:i:", opts, &stop)) != -1) {
		switch (c) {
		case 'd': ci.description = optarg; break;
		case 's': ci.status = optarg; break;
		case 'c': ci.criticality = optarg; break;
		case 'o': ci.owner = optarg; break;
		case 'a': code = cli_parse_attr(cli, attrs, optarg); break;
		case 'i': code = cli_parse_identity(cli, idents, optarg); break;
		}
		if (code)
			goto out;
	}
	if (stop) {
		code = cli->exit;
		goto out;
	}
	if (!cli_want_args(cli, argc, argv, 2, 2)) {
		code = cli->exit;
		goto out;
	}
	if (!ci.description) {
		code = cli_usage(cli, "a CI needs a description: give --description TEXT");
		goto out;
	}
	ci.type = argv[optind];
	ci.name = argv[optind + 1];
	ci.attributes = attrs;
	ci.identities = idents;
	db = cli_open(cli, CMDB_ACCESS_WRITE);
	if (!db) {
		code = EXIT_FAIL;
		goto out;
	}
	if (cmdb_ci_add(db, &ci, &id, &err)) {
		code = cli_error(&err);
		goto out;
	}
	if (cli->format == FMT_JSON) {
		json_t *o = json_pack("{s:I}", "id", (json_int_t)id);
		cli_print_json(o);
		json_decref(o);
	} else {
		printf("%" PRId64 "\n", id);
	}
	code = cli_finish(EXIT_OK);
out:
	cmdb_db_close(db);
	json_decref(attrs);
	json_decref(idents);
	return code;
}

int cmd_ci_list(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"type", required_argument, NULL, 't'}, {"status", required_argument, NULL, 's'},
		{"attr", required_argument, NULL, 'a'}, {"name", required_argument, NULL, 'n'},
		{"as-of", required_argument, NULL, OPT_AS_OF}, {"limit", required_argument, NULL, 'l'},
		{"stale", required_argument, NULL, OPT_STALE}, {"missing", no_argument, NULL, OPT_MISSING},
		{NULL, 0, NULL, 0}};
	static const char *const table_cols[] = {"id", "type", "name", "status", "criticality",
						 "owner", "description", NULL};
	struct cmdb_ci_filter f = {0};
	struct cmdb_error err = {0};
	struct cmdb_rows *rows = NULL;
	struct cmdb_db *db = NULL;
	json_t *attrs = json_object();
	int c, code = EXIT_OK;
	bool stop;
	char *end;

	while ((c = cli_next_opt(cli, argc, argv, "t:s:a:n:l:", opts, &stop)) != -1) {
		switch (c) {
		case 't': f.type = optarg; break;
		case 's': f.status = optarg; break;
		case 'a': code = cli_parse_attr(cli, attrs, optarg); break;
		case 'n': f.name_glob = optarg; break;
		case OPT_AS_OF: f.as_of = optarg; break;
		case OPT_STALE: f.stale = optarg; break;
		case OPT_MISSING: f.missing = true; break;
		case 'l':
			f.limit = strtol(optarg, &end, 10);
			if (*end || end == optarg || f.limit <= 0)
				code = cli_usage(cli, "--limit takes a positive whole number, not \"%s\"", optarg);
			break;
		}
		if (code)
			goto out;
	}
	if (stop || !cli_want_args(cli, argc, argv, 0, 0)) {
		code = cli->exit;
		goto out;
	}
	if (json_object_size(attrs))
		f.attrs = attrs;
	db = cli_open(cli, CMDB_ACCESS_READ);
	if (!db) {
		code = EXIT_FAIL;
		goto out;
	}
	if (cmdb_ci_list(db, &f, &rows, &err)) {
		code = cli_error(&err);
		goto out;
	}
	code = cli_finish(cli_print_rows(cli, rows, table_cols));
out:
	cmdb_rows_free(rows);
	cmdb_db_close(db);
	json_decref(attrs);
	return code;
}

static void print_scalar(const char *label, const json_t *v)
{
	char *p;

	if (!v || json_is_null(v))
		return;
	if (json_is_string(v)) {
		p = cli_printable(json_string_value(v));
		printf("%-13s %s\n", label, p ? p : "");
		free(p);
	} else if (json_is_integer(v)) {
		printf("%-13s %" JSON_INTEGER_FORMAT "\n", label, json_integer_value(v));
	}
}

/* ci show in table format: fields, then sections. */
static void print_ci(const json_t *ci)
{
	static const char *const fields[] = {"id", "type", "name", "description", "status",
					     "criticality", "owner", "as_of", "created_at", "updated_at",
					     "first_seen", "last_seen", NULL};
	const char *key;
	json_t *v;
	size_t i;

	for (const char *const *f = fields; *f; f++)
		print_scalar(*f, json_object_get(ci, *f));
	printf("\nattributes:\n");
	json_object_foreach(json_object_get(ci, "attributes"), key, v) {
		char *text = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		char *kp = cli_printable(key), *vp = text ? cli_printable(text) : NULL;

		printf("  %s = %s\n", kp ? kp : "", vp ? vp : "");
		free(text);
		free(kp);
		free(vp);
	}
	printf("\nidentities:\n");
	json_array_foreach(json_object_get(ci, "identities"), i, v) {
		printf("  %s=%s  (since %s)\n", json_string_value(json_object_get(v, "kind")),
		       json_string_value(json_object_get(v, "value")),
		       json_string_value(json_object_get(v, "since")));
	}
	printf("\nrelationships:\n");
	json_array_foreach(json_object_get(ci, "relationships"), i, v) {
		char *name = cli_printable(json_string_value(json_object_get(v, "ci_name")));

		printf("  %s %" JSON_INTEGER_FORMAT " %s (%s)\n", json_string_value(json_object_get(v, "label")),
		       json_integer_value(json_object_get(v, "ci")), name ? name : "",
		       json_string_value(json_object_get(v, "ci_type")));
		free(name);
	}
}

int cmd_ci_show(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"as-of", required_argument, NULL, OPT_AS_OF},
					     {NULL, 0, NULL, 0}};
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	const char *as_of = NULL;
	json_t *ci = NULL;
	int64_t id;
	int c, code;
	bool stop;

	while ((c = cli_next_opt(cli, argc, argv, "", opts, &stop)) != -1)
		if (c == OPT_AS_OF)
			as_of = optarg;
	if (stop || !cli_want_args(cli, argc, argv, 1, 1))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_READ);
	if (!db)
		return EXIT_FAIL;
	/* an id needs no lookup: cmdb_ci_show reports one that does not exist */
	if (!cmdb_ci_ref_id(argv[optind], &id) && !resolve(db, argv[optind], &id)) {
		cmdb_db_close(db);
		return EXIT_FAIL;
	}
	if (cmdb_ci_show(db, id, as_of, &ci, &err)) {
		cmdb_db_close(db);
		return cli_error(&err);
	}
	if (cli->format == FMT_TABLE)
		print_ci(ci);
	else
		cli_print_json(ci);
	code = cli_finish(EXIT_OK);
	json_decref(ci);
	cmdb_db_close(db);
	return code;
}

int cmd_ci_set(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"status", required_argument, NULL, 's'},      {"description", required_argument, NULL, 'd'},
		{"criticality", required_argument, NULL, 'c'}, {"owner", required_argument, NULL, 'o'},
		{"name", required_argument, NULL, OPT_NAME},   {"attr", required_argument, NULL, 'a'},
		{"unset", required_argument, NULL, 'u'},       {"identity", required_argument, NULL, 'i'},
		{"drop-identity", required_argument, NULL, OPT_DROP_IDENTITY},
		{NULL, 0, NULL, 0}};
	struct cmdb_ci_change ch = {0};
	struct cmdb_error err = {0};
	struct cmdb_db *db = NULL;
	json_t *attrs = json_object(), *add_ids = json_array(), *drop_ids = json_array();
	const char **unset = calloc((size_t)argc + 1, sizeof(*unset));
	int64_t id;
	int c, code = EXIT_OK;
	bool stop;
	size_t i;
	json_t *v;

	while ((c = cli_next_opt(cli, argc, argv, "s:d:c:o:a:u:i:", opts, &stop)) != -1) {
		switch (c) {
		case 's': ch.status = optarg; break;
		case 'd': ch.description = optarg; break;
		case 'c': ch.criticality = optarg; break;
		case 'o': ch.owner = optarg; break;
		case OPT_NAME: ch.name = optarg; break;
		case 'a': code = cli_parse_attr(cli, attrs, optarg); break;
		case 'u': unset[ch.n_unset++] = optarg; break;
		case 'i': code = cli_parse_identity(cli, add_ids, optarg); break;
		case OPT_DROP_IDENTITY: code = cli_parse_identity(cli, drop_ids, optarg); break;
		}
		if (code)
			goto out;
	}
	if (stop || !cli_want_args(cli, argc, argv, 1, 1)) {
		code = cli->exit;
		goto out;
	}
	if (!ch.status && !ch.description && !ch.criticality && !ch.owner && !ch.name &&
	    !json_object_size(attrs) && !ch.n_unset && !json_array_size(add_ids) &&
	    !json_array_size(drop_ids)) {
		code = cli_usage(cli, "nothing to change: give at least one option");
		goto out;
	}
	ch.set_attrs = json_object_size(attrs) ? attrs : NULL;
	ch.unset = unset;
	db = cli_open(cli, CMDB_ACCESS_WRITE);
	if (!db) {
		code = EXIT_FAIL;
		goto out;
	}
	if (!resolve(db, argv[optind], &id)) {
		code = EXIT_FAIL;
		goto out;
	}
	/* all or nothing: the field changes and the identity changes together */
	if (cmdb_db_begin(db, &err) || cmdb_ci_set(db, id, &ch, &err))
		goto fail;
	json_array_foreach(add_ids, i, v) {
		if (cmdb_ci_identity_add(db, id, json_string_value(json_object_get(v, "kind")),
					 json_string_value(json_object_get(v, "value")), &err))
			goto fail;
	}
	json_array_foreach(drop_ids, i, v) {
		if (cmdb_ci_identity_remove(db, id, json_string_value(json_object_get(v, "kind")),
					    json_string_value(json_object_get(v, "value")), &err))
			goto fail;
	}
	if (cmdb_db_commit(db, &err))
		goto fail;
	cli_note(cli, "CI %" PRId64 " updated", id);
	goto out;
fail:
	cmdb_db_rollback(db);
	code = cli_error(&err);
out:
	cmdb_db_close(db);
	json_decref(attrs);
	json_decref(add_ids);
	json_decref(drop_ids);
	free(unset);
	return code;
}

int cmd_ci_retire(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {{"reason", required_argument, NULL, OPT_REASON},
					     {NULL, 0, NULL, 0}};
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	const char *reason = NULL;
	int64_t id;
	int c;
	bool stop;

	while ((c = cli_next_opt(cli, argc, argv, "", opts, &stop)) != -1)
		if (c == OPT_REASON)
			reason = optarg;
	if (stop || !cli_want_args(cli, argc, argv, 1, 1))
		return cli->exit;
	if (!reason)
		return cli_usage(cli, "retiring a CI needs --reason TEXT");
	db = cli_open(cli, CMDB_ACCESS_WRITE);
	if (!db)
		return EXIT_FAIL;
	if (!resolve(db, argv[optind], &id)) {
		cmdb_db_close(db);
		return EXIT_FAIL;
	}
	if (cmdb_ci_retire(db, id, reason, &err)) {
		cmdb_db_close(db);
		return cli_error(&err);
	}
	cmdb_db_close(db);
	cli_note(cli, "CI %" PRId64 " retired", id);
	return EXIT_OK;
}

int cmd_ci_history(struct cli *cli, int argc, char **argv)
{
	static const char *const table_cols[] = {"at", "op", "field", "old", "new", "os_user", "source",
						 "change_ref", "reason", "other_ci", NULL};
	struct cmdb_error err = {0};
	struct cmdb_rows *rows = NULL;
	struct cmdb_db *db;
	cmdb_rc rc;
	int64_t id;

	if (!cli_plain_args(cli, argc, argv, 1, 1))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_READ);
	if (!db)
		return EXIT_FAIL;
	if (!resolve(db, argv[optind], &id)) {
		cmdb_db_close(db);
		return EXIT_FAIL;
	}
	rc = cmdb_ci_history(db, id, &rows, &err);
	return cli_end_listing(cli, db, rc, rows, table_cols, &err);
}
