/*
 * cmdb scan: discover and ingest in one go, streaming.
 *
 * Privileges are separated by process, not by phase: a child runs
 * `cmdb discover` (it opens its raw sockets, then drops every privilege) and
 * writes observations into a pipe; the parent never touches the network. It
 * holds the database connection, copies every line it reads to a spool file
 * and ingests it as it arrives. If the database fails, the parent keeps
 * draining the pipe into the spool, so nothing discovered is lost, and says
 * how to replay it with `cmdb ingest`.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cmdb/embedded.h"
#include "cmdb/ingest.h"
#include "commands.h"

const char usage_scan[] =
	"Usage: cmdb scan TARGET... [discover options] [--dry-run] [--source NAME]\n"
	"\n"
	"Discovers TARGET... (see cmdb discover for targets, ports and options) and\n"
	"ingests what it finds into the CMDB as it arrives (within about a second,\n"
	"while the scan runs): the same as cmdb discover ... | cmdb ingest -, with\n"
	"the scanner in its own unprivileged process. Every observation is also\n"
	"written to a spool file under the cmdb home; if the database fails during\n"
	"the scan, the spool is kept and the command says how to replay it\n"
	"(cmdb ingest FILE), and exits 1.\n"
	"\n"
	"A complete scan marks what it covered and did not see as missing (an\n"
	"attribute and a history entry; nothing is deleted): the hosts, interfaces\n"
	"and addresses of the targets that did not answer, and the services on the\n"
	"scanned ports that were not found open, except those of a host found to be\n"
	"a SYN proxy (its ports cannot be seen). A CI seen again loses the mark. An\n"
	"interrupted scan or a --shard marks nothing. With -sn (host discovery\n"
	"only) no port is scanned and no service is marked missing.\n"
	"\n"
	"  --dry-run       scan, then show what would change in the CMDB; write nothing\n"
	"  --source NAME   who made the observations (default discover)\n"
	"  --db CONNINFO   the CMDB to write to (see cmdb help)\n";

/* A fresh spool file under HOME/spool, 0600; path into buf. */
static FILE *open_spool(char *buf, size_t len)
{
	char home[1024], dir[1100];
	struct cmdb_error err = {0};
	int fd;

	if (cmdb_embedded_home(NULL, home, sizeof(home), &err))
		snprintf(home, sizeof(home), "/tmp");
	snprintf(dir, sizeof(dir), "%s/spool", home);
	mkdir(home, 0700);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return NULL;
	snprintf(buf, len, "%s/scan-%ld-%ld.ndjson", dir, (long)time(NULL), (long)getpid());
	fd = open(buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	return fd < 0 ? NULL : fdopen(fd, "w");
}

/* Splits argv into the scanner's arguments and ours (--dry-run, --source,
 * --db, -h). Returns the scanner's argc; scan_argv[0] is "discover". */
static int split_args(struct cli *cli, int argc, char **argv, char **scan_argv,
		      struct cmdb_ingest_options *io, bool *help)
{
	int n = 0;

	scan_argv[n++] = "discover";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--dry-run") == 0)
			io->dry_run = true;
		else if (strcmp(a, "--source") == 0 && i + 1 < argc)
			io->source = argv[++i];
		else if (strncmp(a, "--source=", 9) == 0)
			io->source = a + 9;
		else if (strcmp(a, "--db") == 0 && i + 1 < argc)
			cli->db = argv[++i];
		else if (strncmp(a, "--db=", 5) == 0)
			cli->db = a + 5;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			*help = true;
		else
			scan_argv[n++] = argv[i];
	}
	scan_argv[n] = NULL;
	return n;
}

int cmd_scan(struct cli *cli, int argc, char **argv)
{
	struct cli_ingest_report report = {.what = "scan output line"};
	/* what the scanner writes as it finds it reaches the CMDB within a second */
	struct cmdb_ingest_options io = {.on_reject = cli_ingest_reject, .on_change = cli_ingest_change, .ctx = &report,
					 .flush_ms = 1000};
	struct cmdb_ingest_stats st = {0};
	struct cmdb_error err = {0};
	struct cmdb_ingest *in = NULL;
	struct cmdb_db *db = NULL;
	char **scan_argv = calloc((size_t)argc + 2, sizeof(*scan_argv));
	char spool_path[1200] = "";
	FILE *spool = NULL, *from_scanner = NULL;
	bool help = false, spool_failed = false;
	int pipefd[2] = {-1, -1}, scan_argc, status = 0, code = EXIT_FAIL;
	pid_t child = -1;
	cmdb_rc rc;

	if (!scan_argv)
		return cli_fail("out of memory");
	scan_argc = split_args(cli, argc, argv, scan_argv, &io, &help);
	if (help) {
		fputs(usage_scan, stdout);
		free(scan_argv);
		return cli_finish(EXIT_OK);
	}
	if (scan_argc < 2) {
		free(scan_argv);
		return cli_usage(cli, "give at least one target to scan");
	}
	/* the CMDB first: before the scanner drops privileges, and so that an
	 * unreachable database fails before any packet is sent */
	db = cli_open(cli, CMDB_ACCESS_WRITE);
	if (!db)
		goto out;
	if (cmdb_ingest_open(db, &io, &in, &err)) {
		code = cli_error(&err);
		goto out;
	}
	spool = open_spool(spool_path, sizeof(spool_path));
	if (!spool) {
		code = cli_fail("cannot create a spool file in %s: %s", spool_path, strerror(errno));
		goto out;
	}
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		code = cli_fail("pipe: %s", strerror(errno));
		goto out;
	}
	fflush(NULL);
	child = fork();
	if (child < 0) {
		code = cli_fail("fork: %s", strerror(errno));
		goto out;
	}
	if (child == 0) {
		/* the scanner: its stdout is the pipe; it never touches the database
		 * connection it inherited, and leaves without running any cleanup
		 * that could */
		if (dup2(pipefd[1], STDOUT_FILENO) < 0)
			_exit(EXIT_FAIL);
		optind = 0;
		cli->cmd = "discover";
		_exit(cmd_discover(cli, scan_argc, scan_argv));
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	/* Ctrl-C is the scanner's to handle: it stops and still writes its last
	 * line, which the parent must read and ingest */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	from_scanner = fdopen(pipefd[0], "r");
	if (!from_scanner) {
		code = cli_fail("fdopen: %s", strerror(errno));
		goto out;
	}
	pipefd[0] = -1;
	rc = cmdb_ingest_stream_tee(in, from_scanner, spool, &spool_failed, &err);
	if (rc == CMDB_OK)
		rc = cmdb_ingest_finish(in, &st, &err);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	child = -1;
	if (fflush(spool) != 0)
		spool_failed = true;
	if (rc) {
		cli_error(&err);
		if (spool_failed)
			cli_fail("the spool %s could not be written completely: observations were lost", spool_path);
		else
			cli_fail("the scan's observations are kept in %s; once the CMDB is reachable, replay them: "
				 "cmdb ingest %s",
				 spool_path, spool_path);
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_USAGE) {
		code = EXIT_USAGE;
		unlink(spool_path);
		goto out;
	}
	unlink(spool_path);
	cli_note(cli, "%s%" PRIu64 " observations %s, %" PRIu64 " rejected: %" PRIu64 " CIs created, %" PRIu64
		      " updated, %" PRIu64 " unchanged, %" PRIu64 " marked missing",
		 io.dry_run ? "dry run: " : "", st.accepted, io.dry_run ? "checked" : "ingested", st.rejected,
		 st.created, st.updated, st.unchanged, st.missing);
	cli_note_purged(cli, st.purged);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != EXIT_OK)
		code = EXIT_FAIL; /* the scanner said why (incomplete scans mark nothing missing) */
	else
		code = cli_finish(st.rejected ? EXIT_FAIL : EXIT_OK);
out:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (from_scanner)
		fclose(from_scanner);
	if (child > 0)
		waitpid(child, NULL, 0);
	if (spool)
		fclose(spool);
	cmdb_ingest_free(in);
	cmdb_db_close(db);
	free(scan_argv);
	return code;
}
