/*
 * The cmdb command: one table of subcommands, each in its own cmd_*.c.
 *
 *   cmdb [GLOBAL OPTIONS] COMMAND [SUBCOMMAND] [OPTIONS] [ARGS]
 *
 * Global options (--db, --format, --json, --csv, --quiet, --change, -h) are
 * accepted before the command and among each command's own options.
 *
 * Two binaries are built from this file. cmdb-full has every command.
 * cmdb, the one people run, leaves out the commands that need libpcap,
 * libxml2 and libcsv (discover, scan, import) and runs cmdb-full, from its
 * own directory, for them: loading those libraries (and ICU behind libxml2)
 * was a third of the start-up time of every command.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "commands.h"

#ifndef CMDB_VERSION
#define CMDB_VERSION "0"
#endif

#ifdef CMDB_FULL
#define FULL_ONLY(run, usage) run, usage
#else
#define FULL_ONLY(run, usage) NULL, NULL
#endif

static const struct command commands[] = {
	{"init", cmd_init, usage_init},
	{"migrate", cmd_init, usage_migrate},
	{"db status", cmd_db_status, usage_db_status},
	{"db start", cmd_db_start, usage_db_start},
	{"db stop", cmd_db_stop, usage_db_stop},
	{"type list", cmd_type_list, usage_type_list},
	{"type show", cmd_type_show, usage_type_show},
	{"type add", cmd_type_add, usage_type_add},
	{"type rules", cmd_type_rules, usage_type_rules},
	{"ci add", cmd_ci_add, usage_ci_add},
	{"ci list", cmd_ci_list, usage_ci_list},
	{"ci show", cmd_ci_show, usage_ci_show},
	{"ci set", cmd_ci_set, usage_ci_set},
	{"ci retire", cmd_ci_retire, usage_ci_retire},
	{"ci history", cmd_ci_history, usage_ci_history},
	{"ci why", cmd_ci_why, usage_ci_why},
	{"rel add", cmd_rel_add, usage_rel_add},
	{"rel rm", cmd_rel_rm, usage_rel_rm},
	{"rel list", cmd_rel_list, usage_rel_list},
	{"rel types", cmd_rel_types, usage_rel_types},
	{"audit chain", cmd_audit_chain, usage_audit_chain},
	{"ingest", cmd_ingest, usage_ingest},
	{"import nmap", FULL_ONLY(cmd_import_nmap, usage_import_nmap)},
	{"import masscan", FULL_ONLY(cmd_import_masscan, usage_import_masscan)},
	{"import csv", FULL_ONLY(cmd_import_csv, usage_import_csv)},
	{"scans", cmd_scans, usage_scans},
	{"source list", cmd_source_list, usage_source_list},
	{"source set", cmd_source_set, usage_source_set},
	{"settings list", cmd_settings_list, usage_settings_list},
	{"settings set", cmd_settings_set, usage_settings_set},
	{"discover", FULL_ONLY(cmd_discover, usage_discover)},
	{"scan", FULL_ONLY(cmd_scan, usage_scan)},
	{"dup list", cmd_dup_list, usage_dup_list},
	{"dup merge", cmd_dup_merge, usage_dup_merge},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char USAGE_MAIN[] =
	"Usage: cmdb [OPTIONS] COMMAND [ARGS]\n"
	"\n"
	"A configuration management database with its own network discovery.\n"
	"\n"
	"Commands:\n"
	"  init                      create or migrate the CMDB schema\n"
	"  scan TARGET...            discover and record in the CMDB in one go\n"
	"  discover TARGET...        find hosts and services; write observations\n"
	"  db status|start|stop      the embedded PostgreSQL server\n"
	"  type list|show|add|rules  CI types and their identification rules\n"
	"  ci add|list|show|set|retire|history|why\n"
	"                            configuration items\n"
	"  rel add|rm|list|types     relationships between CIs\n"
	"  audit chain               verify the tamper-evident history\n"
	"  ingest FILE|-             observations into CIs (reconciliation)\n"
	"  import nmap|masscan|csv   other tools' scans and inventories, reconciled alike\n"
	"  scans                     scan runs ingested\n"
	"  source list|set           sources and their priorities\n"
	"  settings list|set         evidence retention, IP scope\n"
	"  dup list|merge            suspected duplicates and their merge\n"
	"  help [COMMAND]            help on a command\n"
	"\n"
	"Options (also accepted after the command):\n"
	"  --db CONNINFO      PostgreSQL URI, conninfo or service=NAME (default: CMDB_DB,\n"
	"                     then PG* variables, then the embedded server)\n"
	"  --format FMT       table, json or csv (--json, --csv for short)\n"
	"  --change REF       change reference recorded with every change made\n"
	"  -q, --quiet        no notes on stderr\n"
	"  --version          print the version\n"
	"  -h, --help         this help\n"
	"\n"
	"Exit status: 0 ok, 1 failure, 2 usage error.\n";

static char **original_argv;

/* Runs cmdb-full, next to this binary, with the arguments this one got;
 * returns only on failure. */
static int run_full(const char *what)
{
#ifdef CMDB_FULL
	(void)what;
	return EXIT_FAIL;
#else
	char self[PATH_MAX], path[PATH_MAX + 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0) {
		fprintf(stderr, "cmdb: cannot find this program's own path for %s: %s\n", what, strerror(errno));
		return EXIT_FAIL;
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(path, sizeof(path), "%s/cmdb-full", self);
	fflush(NULL);
	execv(path, original_argv);
	fprintf(stderr, "cmdb: %s needs %s, which cannot be run: %s (reinstall cmdb)\n", what, path,
		strerror(errno));
	return EXIT_FAIL;
#endif
}

/* A group with a member only cmdb-full has ("import"). */
static bool group_is_full_only(const char *group)
{
	size_t glen = strlen(group);

	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strncmp(commands[i].name, group, glen) == 0 && commands[i].name[glen] == ' ' &&
		    !commands[i].run)
			return true;
	return false;
}

/* Finds "GROUP SUB" or "NAME" at argv[0..1]; *used gets how many words. */
static const struct command *find_command(int argc, char **argv, int *used)
{
	char two[128];

	if (argc >= 2) {
		snprintf(two, sizeof(two), "%s %s", argv[0], argv[1]);
		for (size_t i = 0; i < NCOMMANDS; i++) {
			if (strcmp(commands[i].name, two) == 0) {
				*used = 2;
				return &commands[i];
			}
		}
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].name, argv[0]) == 0) {
			*used = 1;
			return &commands[i];
		}
	}
	return NULL;
}

/* Help for a command group ("ci"): the usage line of each member. */
static bool group_help(const char *group, FILE *out)
{
	size_t glen = strlen(group);
	bool any = false;

	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strncmp(commands[i].name, group, glen) == 0 && commands[i].name[glen] == ' ') {
			const char *nl = strchr(commands[i].usage, '\n');
			if (!any)
				fprintf(out, "Commands of cmdb %s:\n", group);
			fprintf(out, "  %.*s\n", (int)(nl ? nl - commands[i].usage : 80), commands[i].usage);
			any = true;
		}
	}
	if (any)
		fprintf(out, "Run 'cmdb %s SUBCOMMAND --help' for more.\n", group);
	return any;
}

static int help(int argc, char **argv)
{
	const struct command *cmd;
	int used;

	if (argc == 0) {
		fputs(USAGE_MAIN, stdout);
		return cli_finish(EXIT_OK);
	}
	if (strcmp(argv[0], "--commands") == 0) { /* for scripts: every command, one a line */
		for (size_t i = 0; i < NCOMMANDS; i++)
			puts(commands[i].name);
		return cli_finish(EXIT_OK);
	}
	cmd = find_command(argc, argv, &used);
	if (cmd && !cmd->run)
		return run_full(cmd->name);
	if (cmd) {
		fputs(cmd->usage, stdout);
		return cli_finish(EXIT_OK);
	}
	if (group_is_full_only(argv[0]))
		return run_full(argv[0]);
	if (group_help(argv[0], stdout))
		return cli_finish(EXIT_OK);
	fprintf(stderr, "cmdb: no command \"%s\"; run 'cmdb help'\n", argv[0]);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"version", no_argument, NULL, 'V'}, CLI_COMMON_OPTIONS};
	struct cli cli = {.cmd = "", .usage = USAGE_MAIN};
	const struct command *cmd;
	static char prog[64];
	int c, used;

	original_argv = argv;
	while ((c = getopt_long(argc, argv, "+" CLI_COMMON_SHORT, opts, NULL)) != -1) {
		if (c == 'V') {
			printf("cmdb %s (schema %d)\n", CMDB_VERSION, cmdb_schema_latest());
			return cli_finish(EXIT_OK);
		}
		if (cli_common_opt(&cli, c, optarg))
			return cli.exit;
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		fputs(USAGE_MAIN, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[0], "help") == 0)
		return help(argc - 1, argv + 1);
	cmd = find_command(argc, argv, &used);
	if ((cmd && !cmd->run) || (!cmd && group_is_full_only(argv[0])))
		return run_full(cmd ? cmd->name : argv[0]);
	if (!cmd) {
		if (group_help(argv[0], stderr)) {
			if (argc > 1)
				fprintf(stderr, "cmdb: %s has no subcommand \"%s\"\n", argv[0], argv[1]);
			return EXIT_USAGE;
		}
		fprintf(stderr, "cmdb: no command \"%s\"; run 'cmdb help'\n", argv[0]);
		return EXIT_USAGE;
	}
	cli.cmd = cmd->name;
	cli.usage = cmd->usage;
	/* the command parses its own options from a fresh getopt */
	argv += used - 1;
	argc -= used - 1;
	snprintf(prog, sizeof(prog), "cmdb %s", cmd->name);
	argv[0] = prog; /* getopt's messages name the command */
	optind = 0;     /* restart getopt from scratch */
	return cmd->run(&cli, argc, argv);
}
