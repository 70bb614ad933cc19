/*
 * cmdb init, cmdb db status|start|stop: the schema and the embedded server.
 */
#include <stdio.h>
#include <stdlib.h>
#include "cmdb/embedded.h"
#include "commands.h"

const char usage_init[] =
	"Usage: cmdb init [--db CONNINFO]\n"
	"\n"
	"Creates the CMDB schema, or migrates it to this version of cmdb. With no\n"
	"connection configured it creates and starts the embedded server first.\n"
	"Needs a login that may create roles (cmdb_owner, cmdb_writer, cmdb_reader).\n"
	"Safe to run again, and from several processes at once.\n";

const char usage_migrate[] =
	"Usage: cmdb migrate [--db CONNINFO]\n"
	"\n"
	"The same as cmdb init: applies the migrations the database lacks.\n";

const char usage_db_status[] =
	"Usage: cmdb db status [--json]\n"
	"\n"
	"Where the CMDB is and whether it runs: the embedded server's data\n"
	"directory, state and connection string, or the configured server, and\n"
	"the schema version.\n";

const char usage_db_start[] =
	"Usage: cmdb db start\n"
	"\n"
	"Creates the embedded server if needed and starts it (commands start it\n"
	"on demand anyway).\n";

const char usage_db_stop[] =
	"Usage: cmdb db stop\n"
	"\n"
	"Stops the embedded server.\n";

static bool connection_configured(const struct cli *cli)
{
	static const char *const vars[] = {"CMDB_DB", "PGHOST", "PGHOSTADDR", "PGPORT",
					   "PGDATABASE", "PGUSER", "PGSERVICE"};

	if (cli->db && *cli->db)
		return true;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (getenv(vars[i]) && *getenv(vars[i]))
			return true;
	return false;
}

int cmd_init(struct cli *cli, int argc, char **argv)
{
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	int applied, version;

	if (!cli_plain_args(cli, argc, argv, 0, 0))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_OWNER);
	if (!db)
		return EXIT_FAIL;
	if (cmdb_db_migrate(db, &applied, &err) || cmdb_db_schema_version(db, &version, &err)) {
		cmdb_db_close(db);
		return cli_error(&err);
	}
	if (cli->format == FMT_JSON) {
		json_t *o = json_pack("{s:s,s:b,s:i,s:i}", "target", cmdb_db_target(db), "embedded",
				      cmdb_db_is_embedded(db), "schema_version", version, "applied", applied);
		cli_print_json(o);
		json_decref(o);
	} else if (!cli->quiet) {
		printf("%s: schema version %d (%d migration%s applied now)\n", cmdb_db_target(db), version,
		       applied, applied == 1 ? "" : "s");
	}
	cmdb_db_close(db);
	return cli_finish(EXIT_OK);
}

static int print_status(const struct cli *cli, const struct cmdb_embedded_status *st, int version,
			const char *target)
{
	if (cli->format == FMT_JSON) {
		json_t *o;

		if (target)
			o = json_pack("{s:s,s:s,s:b,s:i}", "mode", "external", "target", target, "running", 1,
				      "schema_version", version);
		else
			o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:I,s:i}", "mode", "embedded", "home",
				      st->home, "data_dir", st->data_dir, "conninfo", st->conninfo,
				      "server_user", st->server_user, "bin_dir", st->bin_dir, "exists",
				      st->exists, "running", st->running, "pid", (json_int_t)st->pid,
				      "schema_version", version);
		cli_print_json(o);
		json_decref(o);
		return cli_finish(EXIT_OK);
	}
	if (target) {
		printf("mode:            external\ntarget:          %s\nschema version:  %d\n", target, version);
		return cli_finish(EXIT_OK);
	}
	printf("mode:            embedded\n"
	       "home:            %s\n"
	       "data directory:  %s%s\n"
	       "server:          %s",
	       st->home, st->data_dir, st->exists ? "" : " (not created yet)",
	       st->running ? "running" : "stopped");
	if (st->running)
		printf(" (pid %ld, as %s)", st->pid, st->server_user);
	printf("\nconninfo:        %s\nbinaries:        %s\n", st->conninfo, st->bin_dir);
	if (st->running)
		printf("schema version:  %d\n", version);
	return cli_finish(EXIT_OK);
}

int cmd_db_status(struct cli *cli, int argc, char **argv)
{
	struct cmdb_embedded_status st = {0};
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	int version = 0, code;

	if (!cli_plain_args(cli, argc, argv, 0, 0))
		return cli->exit;
	if (connection_configured(cli)) {
		db = cli_open(cli, CMDB_ACCESS_OWNER);
		if (!db)
			return EXIT_FAIL;
		if (cmdb_db_schema_version(db, &version, &err)) {
			cmdb_db_close(db);
			return cli_error(&err);
		}
		code = print_status(cli, NULL, version, cmdb_db_target(db));
		cmdb_db_close(db);
		return code;
	}
	if (cmdb_embedded_status(NULL, &st, &err))
		return cli_error(&err);
	if (st.running) {
		db = cli_open(cli, CMDB_ACCESS_OWNER);
		if (db) {
			cmdb_db_schema_version(db, &version, &err);
			cmdb_db_close(db);
		}
	}
	return print_status(cli, &st, version, NULL);
}

int cmd_db_start(struct cli *cli, int argc, char **argv)
{
	struct cmdb_embedded_status st;
	struct cmdb_error err = {0};

	if (!cli_plain_args(cli, argc, argv, 0, 0))
		return cli->exit;
	if (connection_configured(cli))
		return cli_fail("a connection is configured (--db, CMDB_DB or PG* variables): "
				"cmdb starts no server of its own then");
	if (cmdb_embedded_start(NULL, &st, &err))
		return cli_error(&err);
	cli_note(cli, "embedded server running (pid %ld) in %s", st.pid, st.data_dir);
	return EXIT_OK;
}

int cmd_db_stop(struct cli *cli, int argc, char **argv)
{
	struct cmdb_error err = {0};

	if (!cli_plain_args(cli, argc, argv, 0, 0))
		return cli->exit;
	if (cmdb_embedded_stop(NULL, &err))
		return cli_error(&err);
	cli_note(cli, "embedded server stopped");
	return EXIT_OK;
}
