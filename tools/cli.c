/*
 * Shared plumbing of the cmdb command (see cli.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"

bool cli_common_opt(struct cli *cli, int c, const char *arg)
{
	switch (c) {
	case OPT_DB:
		cli->db = arg;
		return false;
	case OPT_CHANGE:
		if (!*arg) {
			cli->exit = cli_usage(cli, "--change needs a change reference");
			return true;
		}
		cli->change_ref = arg;
		return false;
	case OPT_FORMAT:
		if (strcmp(arg, "table") == 0)
			cli->format = FMT_TABLE;
		else if (strcmp(arg, "json") == 0)
			cli->format = FMT_JSON;
		else if (strcmp(arg, "csv") == 0)
			cli->format = FMT_CSV;
		else {
			cli->exit = cli_usage(cli, "unknown format \"%s\": use table, json or csv", arg);
			return true;
		}
		return false;
	case OPT_JSON:
		cli->format = FMT_JSON;
		return false;
	case OPT_CSV:
		cli->format = FMT_CSV;
		return false;
	case 'q':
		cli->quiet = true;
		return false;
	case 'h':
		fputs(cli->usage, stdout);
		cli->exit = cli_finish(EXIT_OK);
		return true;
	default: /* getopt already said what was wrong */
		cli->exit = cli_usage(cli, NULL);
		return true;
	}
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("cmdb: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

int cli_usage(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fputs("cmdb: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fprintf(stderr, "Try 'cmdb %s --help'.\n", cli->cmd ? cli->cmd : "");
	return EXIT_USAGE;
}

int cli_error(const struct cmdb_error *err)
{
	return cli_fail("%s", err->msg[0] ? err->msg : "failed (no detail)");
}

void cli_note(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	if (cli->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

struct cmdb_db *cli_open(struct cli *cli, enum cmdb_access access)
{
	struct cmdb_db_options opts = {
		.conninfo = cli->db,
		.source = "cli",
		.change_ref = cli->change_ref,
		.access = access,
	};
	struct cmdb_error err = {0};
	struct cmdb_db *db;

	if (cmdb_db_open(&opts, &db, &err) != CMDB_OK) {
		cli_error(&err);
		return NULL;
	}
	return db;
}

static bool valid_utf8(const char *s)
{
	json_t *probe = json_string(s);

	if (!probe)
		return false;
	json_decref(probe);
	return true;
}

int cli_parse_attr(struct cli *cli, json_t *obj, const char *arg)
{
	const char *eq = strchr(arg, '=');
	bool is_json = eq && eq > arg && eq[-1] == ':';
	size_t klen = eq ? (size_t)(eq - arg) - (is_json ? 1 : 0) : 0;
	char *key;
	json_t *val;
	json_error_t jerr;

	if (!eq || klen == 0)
		return cli_usage(cli, "malformed attribute \"%s\": use KEY=VALUE, or KEY:=JSON", arg);
	key = strndup(arg, klen);
	if (!key)
		return cli_fail("out of memory");
	if (!valid_utf8(key)) {
		free(key);
		return cli_fail("attribute name is not valid UTF-8");
	}
	if (is_json) {
		val = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
		if (!val) {
			int code = cli_usage(cli, "attribute %s: invalid JSON value \"%s\": %s", key, eq + 1,
					     jerr.text);
			free(key);
			return code;
		}
	} else {
		val = json_string(eq + 1);
		if (!val) {
			free(key);
			return cli_fail("attribute %.*s: value is not valid UTF-8", (int)klen, arg);
		}
	}
	if (json_object_get(obj, key)) {
		int code = cli_usage(cli, "attribute %s given twice", key);
		json_decref(val);
		free(key);
		return code;
	}
	json_object_set_new(obj, key, val);
	free(key);
	return 0;
}

int cli_parse_identity(struct cli *cli, json_t *arr, const char *arg)
{
	const char *eq = strchr(arg, '=');
	json_t *kind, *value;

	if (!eq || eq == arg || !eq[1])
		return cli_usage(cli, "malformed identity \"%s\": use KIND=VALUE, e.g. mac=00:11:22:33:44:55",
				 arg);
	kind = json_stringn(arg, (size_t)(eq - arg));
	value = json_string(eq + 1);
	if (!kind || !value) {
		json_decref(kind);
		json_decref(value);
		return cli_fail("identity \"%.*s\": not valid UTF-8", (int)(eq - arg), arg);
	}
	json_array_append_new(arr, json_pack("{s:o,s:o}", "kind", kind, "value", value));
	return 0;
}

int cli_finish(int code)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno == EPIPE)
			return code;
		fprintf(stderr, "cmdb: cannot write the output: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	return code;
}

int cli_print_json(const json_t *v)
{
	if (json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) != 0)
		return cli_fail("cannot write the output");
	fputc('\n', stdout);
	return EXIT_OK;
}

int cli_next_opt(struct cli *cli, int argc, char **argv, const char *shortopts,
		 const struct option *local, bool *stop)
{
	static const struct option common[] = {CLI_COMMON_OPTIONS};
	struct option merged[48];
	char shorts[48];
	size_t n = 0;

	for (; local && local->name && n < 32; local++)
		merged[n++] = *local;
	for (const struct option *o = common; o->name; o++)
		merged[n++] = *o;
	memset(&merged[n], 0, sizeof(merged[n]));
	snprintf(shorts, sizeof(shorts), "%s%s", CLI_COMMON_SHORT, shortopts ? shortopts : "");
	*stop = false;
	for (;;) {
		int c = getopt_long(argc, argv, shorts, merged, NULL);

		if (c == -1)
			return -1;
		if (c >= OPT_FIRST_LOCAL || (c < OPT_DB && c != 'h' && c != 'q' && c != '?' && c != ':'))
			return c;
		if (cli_common_opt(cli, c, optarg)) {
			*stop = true;
			return -1;
		}
	}
}

bool cli_want_args(struct cli *cli, int argc, char **argv, int min, int max)
{
	int have = argc - optind;

	if (have < min) {
		cli->exit = cli_usage(cli, "missing argument%s", min - have > 1 ? "s" : "");
		return false;
	}
	if (max >= 0 && have > max) {
		cli->exit = cli_usage(cli, "unexpected argument \"%s\"", argv[optind + max]);
		return false;
	}
	return true;
}

bool cli_plain_args(struct cli *cli, int argc, char **argv, int min, int max)
{
	bool stop;

	if (cli_next_opt(cli, argc, argv, NULL, NULL, &stop) != -1) {
		cli->exit = cli_usage(cli, NULL);
		return false;
	}
	if (stop)
		return false;
	return cli_want_args(cli, argc, argv, min, max);
}

void cli_ingest_reject(void *ctx, uint64_t line, const char *reason)
{
	struct cli_ingest_report *r = ctx;

	/* every rejection counts; the first thousand are named */
	if (r->reported++ < 1000)
		fprintf(stderr, "cmdb: %s %" PRIu64 ": rejected: %s\n", r->what ? r->what : "line", line, reason);
	else if (r->reported == 1001)
		fprintf(stderr, "cmdb: (further rejections are counted, not listed)\n");
}

void cli_note_purged(const struct cli *cli, uint64_t purged)
{
	if (purged)
		cli_note(cli, "%" PRIu64 " observations of older scan runs removed (past observation_retention: "
			      "cmdb settings list)", purged);
}

void cli_ingest_change(void *ctx, const char *action, const char *ci_type, const char *name, const char *detail)
{
	(void)ctx;
	if (strcmp(action, "conflict") == 0)
		fprintf(stderr, "cmdb: conflict: %s %s: %s\n", ci_type, name, detail);
	else
		printf("would %s %s %s\n", action, ci_type, name);
}

int cli_end_listing(struct cli *cli, struct cmdb_db *db, cmdb_rc rc, struct cmdb_rows *rows,
		    const char *const *cols, const struct cmdb_error *err)
{
	int code = rc ? cli_error(err) : cli_finish(cli_print_rows(cli, rows, cols));

	cmdb_rows_free(rows);
	cmdb_db_close(db);
	return code;
}

int cli_simple_listing(struct cli *cli, int argc, char **argv, cli_fetch_fn fetch, const char *const *cols)
{
	struct cmdb_error err = {0};
	struct cmdb_rows *rows = NULL;
	struct cmdb_db *db;
	cmdb_rc rc;

	if (!cli_plain_args(cli, argc, argv, 0, 0))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_READ);
	if (!db)
		return EXIT_FAIL;
	rc = fetch(db, &rows, &err);
	return cli_end_listing(cli, db, rc, rows, cols, &err);
}

bool cli_parse_count(const char *arg, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(arg, &end, 10);
	return !errno && *end == '\0' && end != arg && *out > 0;
}
