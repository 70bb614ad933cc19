/*
 * The embedded PostgreSQL server (see cmdb/embedded.h).
 *
 * PostgreSQL's own tools do the work: initdb creates the cluster, pg_ctl
 * starts, stops and reports on it. This module finds them, runs them as the
 * right account, and serializes processes with an flock on HOME/lock so that
 * two cmdb commands started at once create and start one server.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libpq-fe.h>
#include "cmdb/embedded.h"
#include "internal.h"

#define EMBEDDED_SUPERUSER "cmdb"
#define EMBEDDED_DATABASE  "cmdb"
#define SOCKET_PATH_MAX    107 /* sun_path is 108 bytes with its NUL */

struct server_account {
	uid_t uid;
	gid_t gid;
	char name[64];
	bool switch_user; /* we are root and must become the account to run tools */
};

cmdb_rc cmdb_embedded_home(const char *home, char *buf, size_t len, struct cmdb_error *err)
{
	const char *env = getenv("CMDB_HOME");
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *uhome = getenv("HOME");
	int n;

	if (home && *home)
		n = snprintf(buf, len, "%s", home);
	else if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/var/lib/cmdb");
	else if (xdg && *xdg == '/')
		n = snprintf(buf, len, "%s/cmdb", xdg);
	else if (uhome && *uhome == '/')
		n = snprintf(buf, len, "%s/.local/share/cmdb", uhome);
	else
		return cmdb_error_set(err, CMDB_EINVAL,
				      "cannot find a home for the embedded CMDB: set CMDB_HOME or HOME");
	if (n < 0 || (size_t)n >= len)
		return cmdb_error_set(err, CMDB_EINVAL, "the embedded CMDB home path is too long");
	if (buf[0] != '/')
		return cmdb_error_set(err, CMDB_EINVAL,
				      "the embedded CMDB home must be an absolute path, not \"%s\"", buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return CMDB_OK;
}

static cmdb_rc server_account(struct server_account *acct, struct cmdb_error *err)
{
	const char *want = getenv("CMDB_SERVER_USER");
	struct passwd *pw;

	if (geteuid() != 0) {
		pw = getpwuid(geteuid());
		acct->uid = geteuid();
		acct->gid = getegid();
		snprintf(acct->name, sizeof(acct->name), "%s", pw ? pw->pw_name : "?");
		acct->switch_user = false;
		return CMDB_OK;
	}
	if (want && *want) {
		pw = getpwnam(want);
		if (!pw)
			return cmdb_error_set(err, CMDB_EINVAL, "CMDB_SERVER_USER \"%s\" does not exist",
					      want);
	} else {
		pw = getpwnam("postgres");
		if (!pw)
			pw = getpwnam("nobody");
		if (!pw)
			return cmdb_error_set(err, CMDB_ESYS,
					      "running as root, and there is neither a postgres nor a "
					      "nobody account to run the server: set CMDB_SERVER_USER");
	}
	if (pw->pw_uid == 0)
		return cmdb_error_set(err, CMDB_EINVAL,
				      "PostgreSQL refuses to run as root: CMDB_SERVER_USER must name "
				      "an unprivileged account");
	acct->uid = pw->pw_uid;
	acct->gid = pw->pw_gid;
	snprintf(acct->name, sizeof(acct->name), "%s", pw->pw_name);
	acct->switch_user = true;
	return CMDB_OK;
}

static bool has_tools(const char *dir)
{
	static const char *const tools[] = {"initdb", "pg_ctl", "postgres"};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		int n = snprintf(path, sizeof(path), "%s/%s", dir, tools[i]);

		if (n < 0 || (size_t)n >= sizeof(path) || access(path, X_OK) != 0)
			return false;
	}
	return true;
}

/* PostgreSQL's server tools: CMDB_PG_BINDIR, else the newest
 * /usr/lib/postgresql/N/bin (Debian keeps them off PATH), else PATH. */
static cmdb_rc find_bin_dir(char *buf, size_t len, struct cmdb_error *err)
{
	const char *env = getenv("CMDB_PG_BINDIR");
	const char *path = getenv("PATH");
	DIR *d;
	struct dirent *e;
	long best = -1;

	if (env && *env) {
		if (!has_tools(env))
			return cmdb_error_set(err, CMDB_EINVAL,
					      "CMDB_PG_BINDIR=%s holds no initdb, pg_ctl and postgres", env);
		snprintf(buf, len, "%s", env);
		return CMDB_OK;
	}
	d = opendir("/usr/lib/postgresql");
	if (d) {
		while ((e = readdir(d))) {
			char *end;
			long v = strtol(e->d_name, &end, 10);
			char dir[PATH_MAX];

			if (end == e->d_name || *end || v <= best)
				continue;
			snprintf(dir, sizeof(dir), "/usr/lib/postgresql/%ld/bin", v);
			if (has_tools(dir) && strlen(dir) < len) {
				best = v;
				memcpy(buf, dir, strlen(dir) + 1);
			}
		}
		closedir(d);
		if (best >= 0)
			return CMDB_OK;
	}
	while (path && *path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);

		if (n && n < len) {
			memcpy(buf, path, n);
			buf[n] = '\0';
			if (has_tools(buf))
				return CMDB_OK;
		}
		path = colon ? colon + 1 : NULL;
	}
	return cmdb_error_set(err, CMDB_ECONNECT,
			      "PostgreSQL's server (initdb, pg_ctl) is not installed: install the "
			      "postgresql package (tools/deps.sh does), or set CMDB_PG_BINDIR");
}

static cmdb_rc fill_paths(const char *home, struct cmdb_embedded_status *st,
			  struct server_account *acct, struct cmdb_error *err)
{
	cmdb_rc rc;

	memset(st, 0, sizeof(*st));
	rc = cmdb_embedded_home(home, st->home, sizeof(st->home), err);
	if (rc)
		return rc;
	rc = server_account(acct, err);
	if (rc)
		return rc;
	snprintf(st->server_user, sizeof(st->server_user), "%s", acct->name);
	snprintf(st->data_dir, sizeof(st->data_dir), "%s/pgdata", st->home);
	snprintf(st->socket_dir, sizeof(st->socket_dir), "%s/run", st->home);
	if (strlen(st->socket_dir) + strlen("/.s.PGSQL.5432") > SOCKET_PATH_MAX)
		return cmdb_error_set(err, CMDB_EINVAL,
				      "the embedded CMDB home \"%s\" is too long for a Unix socket path "
				      "(at most %d bytes with /run/.s.PGSQL.5432): choose a shorter CMDB_HOME",
				      st->home, SOCKET_PATH_MAX);
	/* conninfo values in single quotes; the home has no quote or backslash (checked) */
	if (strpbrk(st->home, "'\\"))
		return cmdb_error_set(err, CMDB_EINVAL,
				      "the embedded CMDB home \"%s\" contains a quote or backslash", st->home);
	snprintf(st->conninfo, sizeof(st->conninfo), "host='%s' port=5432 user=%s dbname=%s",
		 st->socket_dir, EMBEDDED_SUPERUSER, EMBEDDED_DATABASE);
	return find_bin_dir(st->bin_dir, sizeof(st->bin_dir), err);
}

/* Runs argv as the server account with stdout and stderr appended to
 * log_path; returns the exit status, or -1 with err set. */
static int run_tool(const struct server_account *acct, const char *const argv[], const char *log_path,
		    struct cmdb_error *err)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		cmdb_error_set(err, CMDB_ESYS, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int devnull = open("/dev/null", O_RDONLY);

		if (fd < 0 || devnull < 0)
			_exit(126);
		dup2(devnull, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (acct->switch_user) {
			struct passwd *pw = getpwuid(acct->uid);

			if (setgroups(0, NULL) != 0 || setgid(acct->gid) != 0 || setuid(acct->uid) != 0)
				_exit(126);
			if (pw)
				setenv("HOME", pw->pw_dir, 1);
			setenv("USER", acct->name, 1);
			setenv("LOGNAME", acct->name, 1);
		}
		/* the tools must not follow the caller's libpq settings */
		unsetenv("PGDATA");
		unsetenv("PGHOST");
		unsetenv("PGPORT");
		if (chdir("/") != 0)
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			cmdb_error_set(err, CMDB_ESYS, "waitpid: %s", strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	cmdb_error_set(err, CMDB_ESYS, "%s died with signal %d", argv[0], WTERMSIG(status));
	return -1;
}

/* The last lines of a log file, to put in an error message. */
static void log_tail(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	long size;
	size_t n;

	buf[0] = '\0';
	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > (long)len - 1 ? size - (long)len + 1 : 0, SEEK_SET);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
}

static cmdb_rc make_dir(const char *path, const struct server_account *acct, struct cmdb_error *err)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return cmdb_error_set(err, CMDB_ESYS, "cannot create %s: %s", path, strerror(errno));
	if (acct->switch_user && chown(path, acct->uid, acct->gid) != 0)
		return cmdb_error_set(err, CMDB_ESYS, "cannot give %s to %s: %s", path, acct->name,
				      strerror(errno));
	return CMDB_OK;
}

/* mkdir -p for the parents of the home, which stay the caller's. */
static cmdb_rc make_parents(const char *home, struct cmdb_error *err)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s", home);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return cmdb_error_set(err, CMDB_ESYS, "cannot create %s: %s", path,
					      strerror(errno));
		*p = '/';
	}
	return CMDB_OK;
}

static int lock_home(const char *home, int how, struct cmdb_error *err)
{
	char path[1100];
	int fd;

	snprintf(path, sizeof(path), "%s/lock", home);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		cmdb_error_set(err, CMDB_ESYS, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, how) != 0) {
		if (errno != EINTR) {
			cmdb_error_set(err, CMDB_ESYS, "cannot lock %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

static bool cluster_exists(const struct cmdb_embedded_status *st)
{
	char path[1200];

	snprintf(path, sizeof(path), "%s/PG_VERSION", st->data_dir);
	return access(path, F_OK) == 0;
}

static long server_pid(const struct cmdb_embedded_status *st)
{
	char path[1200];
	FILE *f;
	long pid = 0;

	snprintf(path, sizeof(path), "%s/postmaster.pid", st->data_dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return pid;
}

static bool server_answers(const struct cmdb_embedded_status *st)
{
	char conninfo[1300];

	snprintf(conninfo, sizeof(conninfo), "host='%s' port=5432 user=%s dbname=postgres connect_timeout=5",
		 st->socket_dir, EMBEDDED_SUPERUSER);
	return PQping(conninfo) == PQPING_OK;
}

cmdb_rc cmdb_embedded_conninfo(const char *home, char *buf, size_t len, struct cmdb_error *err)
{
	char dir[1024];
	cmdb_rc rc = cmdb_embedded_home(home, dir, sizeof(dir), err);

	if (rc)
		return rc;
	if (strpbrk(dir, "'\\"))
		return cmdb_error_set(err, CMDB_EINVAL, "the embedded CMDB home \"%s\" contains a quote or backslash", dir);
	snprintf(buf, len, "host='%s/run' port=5432 user=%s dbname=%s", dir, EMBEDDED_SUPERUSER, EMBEDDED_DATABASE);
	return CMDB_OK;
}

cmdb_rc cmdb_embedded_status(const char *home, struct cmdb_embedded_status *st,
			     struct cmdb_error *err)
{
	struct server_account acct;
	cmdb_rc rc = fill_paths(home, st, &acct, err);

	if (rc)
		return rc;
	st->exists = cluster_exists(st);
	st->running = st->exists && server_answers(st);
	st->pid = st->running ? server_pid(st) : 0;
	return CMDB_OK;
}

static cmdb_rc create_cluster(const struct cmdb_embedded_status *st, const struct server_account *acct,
			      struct cmdb_error *err)
{
	char initdb[600], log_path[1100], conf[1200], tail[600];
	const char *argv[] = {initdb, "-D", st->data_dir, "-U", EMBEDDED_SUPERUSER, "-A", "trust",
			      "-E", "UTF8", "--locale=C", NULL};
	FILE *f;
	int status;
	cmdb_rc rc;

	rc = make_dir(st->data_dir, acct, err);
	if (rc)
		return rc;
	snprintf(initdb, sizeof(initdb), "%s/initdb", st->bin_dir);
	snprintf(log_path, sizeof(log_path), "%s/initdb.log", st->home);
	status = run_tool(acct, argv, log_path, err);
	if (status < 0)
		return CMDB_ESYS;
	if (status != 0) {
		log_tail(log_path, tail, sizeof(tail));
		return cmdb_error_set(err, CMDB_ECONNECT, "initdb failed (exit %d) creating %s as %s: %s",
				      status, st->data_dir, acct->name, tail);
	}
	/* Trust is safe only because the socket is reachable by its owner alone. */
	snprintf(conf, sizeof(conf), "%s/postgresql.conf", st->data_dir);
	f = fopen(conf, "a");
	if (!f)
		return cmdb_error_set(err, CMDB_ESYS, "cannot write %s: %s", conf, strerror(errno));
	fprintf(f, "\n# cmdb embedded server\n"
		   "listen_addresses = ''\n"
		   "unix_socket_directories = '%s'\n"
		   "unix_socket_permissions = 0700\n"
		   "max_connections = 100\n"
		   "timezone = 'UTC'\n",
		st->socket_dir);
	/* Throwaway clusters (tests, benchmarks) trade durability for speed. */
	if (getenv("CMDB_EMBEDDED_NOSYNC") && strcmp(getenv("CMDB_EMBEDDED_NOSYNC"), "1") == 0)
		fprintf(f, "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
	if (fclose(f) != 0)
		return cmdb_error_set(err, CMDB_ESYS, "cannot write %s: %s", conf, strerror(errno));
	return CMDB_OK;
}

static cmdb_rc start_server(const struct cmdb_embedded_status *st, const struct server_account *acct,
			    struct cmdb_error *err)
{
	char pg_ctl[600], log_path[1100], tail[800];
	const char *argv[] = {pg_ctl, "-D", st->data_dir, "-l", log_path, "-w", "-t", "60", "start", NULL};
	char ctl_log[1100];
	int status;

	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", st->bin_dir);
	snprintf(log_path, sizeof(log_path), "%s/server.log", st->home);
	snprintf(ctl_log, sizeof(ctl_log), "%s/pg_ctl.log", st->home);
	status = run_tool(acct, argv, ctl_log, err);
	if (status < 0)
		return CMDB_ESYS;
	if (status != 0) {
		log_tail(log_path, tail, sizeof(tail));
		return cmdb_error_set(err, CMDB_ECONNECT,
				      "the embedded server in %s did not start (pg_ctl exit %d); its log ends: %s",
				      st->data_dir, status, tail);
	}
	return CMDB_OK;
}

static cmdb_rc ensure_database(const struct cmdb_embedded_status *st, struct cmdb_error *err)
{
	char conninfo[1300];
	PGconn *conn;
	PGresult *res;
	cmdb_rc rc = CMDB_OK;

	snprintf(conninfo, sizeof(conninfo), "host='%s' port=5432 user=%s dbname=postgres",
		 st->socket_dir, EMBEDDED_SUPERUSER);
	conn = PQconnectdb(conninfo);
	PQsetNoticeProcessor(conn, cmdb_drop_notice, NULL);
	if (PQstatus(conn) != CONNECTION_OK) {
		rc = cmdb_error_set(err, CMDB_ECONNECT, "cannot reach the embedded server: %s",
				    PQerrorMessage(conn));
		goto out;
	}
	res = PQexec(conn, "SELECT 1 FROM pg_database WHERE datname = '" EMBEDDED_DATABASE "'");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0) {
		PQclear(res);
		res = PQexec(conn, "CREATE DATABASE " EMBEDDED_DATABASE);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = cmdb_error_set(err, CMDB_ECONNECT, "cannot create the cmdb database: %s",
					    PQerrorMessage(conn));
	} else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = cmdb_error_set(err, CMDB_ECONNECT, "%s", PQerrorMessage(conn));
	}
	PQclear(res);
out:
	PQfinish(conn);
	return rc;
}

cmdb_rc cmdb_embedded_start(const char *home, struct cmdb_embedded_status *st,
			    struct cmdb_error *err)
{
	struct server_account acct;
	cmdb_rc rc;
	int lock;

	rc = fill_paths(home, st, &acct, err);
	if (rc)
		return rc;
	/* fast path: already up, no lock needed */
	if (cluster_exists(st) && server_answers(st)) {
		st->exists = st->running = true;
		st->pid = server_pid(st);
		return CMDB_OK;
	}
	rc = make_parents(st->home, err);
	if (rc)
		return rc;
	rc = make_dir(st->home, &acct, err);
	if (rc)
		return rc;
	lock = lock_home(st->home, LOCK_EX, err);
	if (lock < 0)
		return CMDB_ESYS;
	if (!cluster_exists(st)) {
		rc = create_cluster(st, &acct, err);
		if (rc)
			goto out;
	}
	st->exists = true;
	rc = make_dir(st->socket_dir, &acct, err);
	if (rc)
		goto out;
	if (!server_answers(st)) {
		rc = start_server(st, &acct, err);
		if (rc)
			goto out;
	}
	rc = ensure_database(st, err);
	if (rc)
		goto out;
	st->running = true;
	st->pid = server_pid(st);
out:
	close(lock);
	return rc;
}

cmdb_rc cmdb_embedded_stop(const char *home, struct cmdb_error *err)
{
	struct cmdb_embedded_status st;
	struct server_account acct;
	char pg_ctl[600], log_path[1100], tail[600];
	const char *argv[] = {pg_ctl, "-D", st.data_dir, "-m", "fast", "-w", "-t", "60", "stop", NULL};
	cmdb_rc rc;
	int lock, status;

	rc = fill_paths(home, &st, &acct, err);
	if (rc)
		return rc;
	if (!cluster_exists(&st) || server_pid(&st) == 0)
		return CMDB_OK;
	lock = lock_home(st.home, LOCK_EX, err);
	if (lock < 0)
		return CMDB_ESYS;
	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", st.bin_dir);
	snprintf(log_path, sizeof(log_path), "%s/pg_ctl.log", st.home);
	status = run_tool(&acct, argv, log_path, err);
	close(lock);
	if (status < 0)
		return CMDB_ESYS;
	/* 1 with no postmaster.pid means it was not running: that is fine */
	if (status != 0 && server_pid(&st) != 0) {
		log_tail(log_path, tail, sizeof(tail));
		return cmdb_error_set(err, CMDB_ESYS, "pg_ctl stop failed (exit %d): %s", status, tail);
	}
	return CMDB_OK;
}
