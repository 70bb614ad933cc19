/*
 * The subcommands of the cmdb command: a run function and a help text each,
 * listed in the table in cmdb.c. One file per command group.
 */
#ifndef CMDB_TOOL_COMMANDS_H
#define CMDB_TOOL_COMMANDS_H

#include "cli.h"

struct command {
	const char *name; /* "ci add" */
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *usage; /* first line: the synopsis */
};

#define DECLARE_COMMAND(fn, usage)                                                                  \
	int fn(struct cli *cli, int argc, char **argv);                                             \
	extern const char usage[]

DECLARE_COMMAND(cmd_init, usage_init);
extern const char usage_migrate[];
DECLARE_COMMAND(cmd_db_status, usage_db_status);
DECLARE_COMMAND(cmd_db_start, usage_db_start);
DECLARE_COMMAND(cmd_db_stop, usage_db_stop);
DECLARE_COMMAND(cmd_type_list, usage_type_list);
DECLARE_COMMAND(cmd_type_show, usage_type_show);
DECLARE_COMMAND(cmd_type_add, usage_type_add);
DECLARE_COMMAND(cmd_type_rules, usage_type_rules);
DECLARE_COMMAND(cmd_ci_add, usage_ci_add);
DECLARE_COMMAND(cmd_ci_list, usage_ci_list);
DECLARE_COMMAND(cmd_ci_show, usage_ci_show);
DECLARE_COMMAND(cmd_ci_set, usage_ci_set);
DECLARE_COMMAND(cmd_ci_retire, usage_ci_retire);
DECLARE_COMMAND(cmd_ci_history, usage_ci_history);
DECLARE_COMMAND(cmd_rel_add, usage_rel_add);
DECLARE_COMMAND(cmd_rel_rm, usage_rel_rm);
DECLARE_COMMAND(cmd_rel_list, usage_rel_list);
DECLARE_COMMAND(cmd_rel_types, usage_rel_types);
DECLARE_COMMAND(cmd_audit_chain, usage_audit_chain);
DECLARE_COMMAND(cmd_ingest, usage_ingest);
DECLARE_COMMAND(cmd_import_nmap, usage_import_nmap);
DECLARE_COMMAND(cmd_import_masscan, usage_import_masscan);
DECLARE_COMMAND(cmd_import_csv, usage_import_csv);
DECLARE_COMMAND(cmd_scans, usage_scans);
DECLARE_COMMAND(cmd_source_list, usage_source_list);
DECLARE_COMMAND(cmd_source_set, usage_source_set);
DECLARE_COMMAND(cmd_settings_list, usage_settings_list);
DECLARE_COMMAND(cmd_settings_set, usage_settings_set);
DECLARE_COMMAND(cmd_ci_why, usage_ci_why);
DECLARE_COMMAND(cmd_discover, usage_discover);
DECLARE_COMMAND(cmd_scan, usage_scan);
DECLARE_COMMAND(cmd_dup_list, usage_dup_list);
DECLARE_COMMAND(cmd_dup_merge, usage_dup_merge);

/* Parses a command's options: the command's own long options first, then
 * the common ones. Returns the next option code, -1 at the end; common
 * options are handled here. *stop is set (with cli->exit) when the command
 * must end now. */
int cli_next_opt(struct cli *cli, int argc, char **argv, const char *shortopts,
		 const struct option *local, bool *stop);

/* Checks that between min and max (-1: any) positional arguments are left
 * after the options; else sets cli->exit to a usage error. */
bool cli_want_args(struct cli *cli, int argc, char **argv, int min, int max);

/* For commands with no options of their own: parses the common options and
 * checks the positional count. False (with cli->exit set) ends the command. */
bool cli_plain_args(struct cli *cli, int argc, char **argv, int min, int max);

/* The end of a listing command: reports err when rc failed, else prints
 * rows (table columns cols); frees rows and closes db. Returns the exit code. */
int cli_end_listing(struct cli *cli, struct cmdb_db *db, cmdb_rc rc, struct cmdb_rows *rows,
		    const char *const *cols, const struct cmdb_error *err);

/* A whole listing command that takes no arguments: opens the CMDB to read,
 * fetches with fetch, prints. */
typedef cmdb_rc (*cli_fetch_fn)(struct cmdb_db *db, struct cmdb_rows **rows, struct cmdb_error *err);
int cli_simple_listing(struct cli *cli, int argc, char **argv, cli_fetch_fn fetch, const char *const *cols);

#endif
