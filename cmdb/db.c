/*
 * Connections (see cmdb/db.h) and schema migrations.
 *
 * Where the CMDB is: --db, then CMDB_DB, then libpq's PG* variables, then
 * the embedded server. The connection goes through PQconnectdbParams with
 * expand_dbname, so a URI, a conninfo string and service=NAME all work.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cmdb/embedded.h"
#include "internal.h"
#include "migrations.h"

/* Serializes migrations of one database between processes. */
#define MIGRATION_LOCK_KEY "7264338001"

static bool pg_env_configured(void)
{
	static const char *const vars[] = {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE",
					   "PGUSER", "PGSERVICE"};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return true;
	}
	return false;
}

/* The library never prints: server notices are dropped, not sent to stderr
 * as libpq does by default. */
static const char *os_user(void)
{
	struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");

	/* under sudo, the person is the one who ran sudo */
	if (getuid() == 0 && sudo && *sudo)
		return sudo;
	return pw ? pw->pw_name : "unknown";
}

int cmdb_schema_latest(void)
{
	return cmdb_migrations_count ? cmdb_migrations[cmdb_migrations_count - 1].version : 0;
}

cmdb_rc cmdb_db_schema_version(struct cmdb_db *db, int *version, struct cmdb_error *err)
{
	/* pg_class through SQL, not to_regclass: the catalog cache can be stale
	 * right after waiting for another process's migration lock */
	PGresult *res = cmdb_query(db,
				   "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
				   "ON n.oid = c.relnamespace WHERE n.nspname = 'cmdb' AND c.relname = 'schema_version')",
				   0, NULL, PGRES_TUPLES_OK, err);
	bool exists;

	if (!res)
		return err ? err->rc : CMDB_EDB;
	exists = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	*version = 0;
	if (!exists)
		return CMDB_OK;
	res = cmdb_query(db, "SELECT coalesce(max(version), 0) FROM cmdb.schema_version", 0, NULL,
			 PGRES_TUPLES_OK, err);
	if (!res)
		return err ? err->rc : CMDB_EDB;
	*version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return CMDB_OK;
}

/* Checks that the migrations already applied are the ones this library
 * carries: a changed file means someone edited history. */
static cmdb_rc check_applied(struct cmdb_db *db, int current, struct cmdb_error *err)
{
	PGresult *res;
	cmdb_rc rc = CMDB_OK;

	if (current == 0)
		return CMDB_OK;
	res = cmdb_query(db, "SELECT version, name, checksum FROM cmdb.schema_version ORDER BY version",
			 0, NULL, PGRES_TUPLES_OK, err);
	if (!res)
		return err ? err->rc : CMDB_EDB;
	for (int i = 0; i < PQntuples(res) && rc == CMDB_OK; i++) {
		int v = atoi(PQgetvalue(res, i, 0));
		const char *sum = PQgetvalue(res, i, 2);

		for (int m = 0; m < cmdb_migrations_count; m++) {
			if (cmdb_migrations[m].version != v)
				continue;
			if (strcmp(cmdb_migrations[m].sha256, sum) != 0)
				rc = cmdb_error_set(err, CMDB_ESCHEMA,
						    "migration %s was applied with checksum %.12s..., but this "
						    "cmdb carries %.12s...: the schema file was changed after release",
						    PQgetvalue(res, i, 1), sum, cmdb_migrations[m].sha256);
		}
	}
	PQclear(res);
	return rc;
}

/* cmdb.schema_level(): the version, for the first query of each connection
 * (set_session). Written in the transaction of each migration; `cmdb init`
 * also adds it to a schema migrated before it existed. */
static cmdb_rc set_schema_level(struct cmdb_db *db, int version, struct cmdb_error *err)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "CREATE OR REPLACE FUNCTION cmdb.schema_level() RETURNS integer "
		 "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT %d'",
		 version);
	return cmdb_exec(db, sql, 0, NULL, err);
}

/*
 * Whether a failed migration lost the race for the cluster-wide roles to the
 * migration of another database (roles are shared by every database of a
 * cluster; the advisory lock is per database): run again, it finds them.
 */
static bool lost_role_race(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

	if (!state)
		return false;
	return strcmp(state, "42710") == 0 || /* duplicate_object: role "..." already exists */
	       (strcmp(state, "23505") == 0 && constraint && strcmp(constraint, "pg_authid_rolname_index") == 0);
}

static cmdb_rc migrate_one(struct cmdb_db *db, const struct cmdb_migration *m, bool *applied,
			   bool *retry, struct cmdb_error *err)
{
	char vbuf[24];
	const char *params[3];
	int current;
	cmdb_rc rc;
	PGresult *res;

	*applied = false;
	*retry = false;
	rc = cmdb_exec(db, "BEGIN", 0, NULL, err);
	if (rc)
		return rc;
	rc = cmdb_exec(db, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK_KEY ")", 0, NULL, err);
	if (rc)
		goto fail;
	rc = cmdb_db_schema_version(db, &current, err);
	if (rc)
		goto fail;
	if (current >= m->version) {
		cmdb_db_rollback(db);
		return CMDB_OK;
	}
	res = PQexec(db->conn, m->sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		struct cmdb_error inner;

		cmdb_pg_error(db->conn, res, &inner);
		*retry = lost_role_race(res);
		PQclear(res);
		rc = cmdb_error_set(err, inner.rc == CMDB_EPERM ? CMDB_EPERM : CMDB_ESCHEMA,
				    "migration %s failed: %s", m->name, inner.msg);
		goto fail;
	}
	PQclear(res);
	snprintf(vbuf, sizeof(vbuf), "%d", m->version);
	params[0] = vbuf;
	params[1] = m->name;
	params[2] = m->sha256;
	rc = cmdb_exec(db, "INSERT INTO cmdb.schema_version (version, name, checksum) VALUES ($1, $2, $3)",
		       3, params, err);
	if (rc)
		goto fail;
	/* also where opening a connection can read it in the same round trip as
	 * the session setup, even before the schema exists */
	{
		char comment[96];

		snprintf(comment, sizeof(comment), "COMMENT ON SCHEMA cmdb IS 'cmdb schema version %d'", m->version);
		rc = cmdb_exec(db, comment, 0, NULL, err);
		if (rc)
			goto fail;
	}
	rc = set_schema_level(db, m->version, err);
	if (rc)
		goto fail;
	rc = cmdb_exec(db, "COMMIT", 0, NULL, err);
	if (rc)
		return rc;
	*applied = true;
	return CMDB_OK;
fail:
	cmdb_db_rollback(db);
	return rc;
}

cmdb_rc cmdb_db_migrate(struct cmdb_db *db, int *applied, struct cmdb_error *err)
{
	int current, n = 0;
	cmdb_rc rc;

	rc = cmdb_db_schema_version(db, &current, err);
	if (rc)
		return rc;
	if (current > cmdb_schema_latest())
		return cmdb_error_set(err, CMDB_ESCHEMA,
				      "the database has schema version %d, newer than this cmdb knows (%d): "
				      "upgrade cmdb",
				      current, cmdb_schema_latest());
	rc = check_applied(db, current, err);
	if (rc)
		return rc;
	for (int i = 0; i < cmdb_migrations_count; i++) {
		bool done;

		if (cmdb_migrations[i].version <= current)
			continue;
		for (int attempt = 1;; attempt++) {
			bool retry;

			rc = migrate_one(db, &cmdb_migrations[i], &done, &retry, err);
			if (!rc || !retry || attempt == 5)
				break;
			usleep(50000 * attempt);
		}
		if (rc)
			return rc;
		n += done;
	}
	if (n == 0 && current > 0) {
		PGresult *res = cmdb_query(db, "SELECT to_regproc('cmdb.schema_level') IS NULL", 0, NULL,
					   PGRES_TUPLES_OK, err);

		if (!res)
			return err ? err->rc : CMDB_EDB;
		if (PQgetvalue(res, 0, 0)[0] == 't')
			rc = set_schema_level(db, current, err);
		PQclear(res);
		if (rc)
			return rc;
	}
	if (applied)
		*applied = n;
	return CMDB_OK;
}

/* Records who is acting, and takes the role the access needs when the login
 * is allowed to, in one round trip that also reads the schema version.
 *
 * This is the first query of every connection, so its catalog lookups are
 * all cold: the version comes from cmdb.schema_level(), a constant function
 * the migrations keep up to date (pg_proc is in every backend's cache from
 * the start), and the role check uses to_regrole, not the pg_roles view. A
 * database without that function (no schema yet, or one migrated by an
 * older cmdb) gets the slower query that reads the schema's comment. */
#define SQL_SESSION_SETTINGS                                                                        \
	"set_config('cmdb.os_user', $1, false), set_config('cmdb.source', $2, false),"             \
	"set_config('cmdb.change_ref', $3, false), set_config('TimeZone', 'UTC', false),"          \
	"CASE WHEN to_regrole($4) IS NOT NULL AND pg_has_role($4, 'MEMBER')"                       \
	"     THEN set_config('role', $4, false) END"
static const char SQL_SESSION_FAST[] = "SELECT cmdb.schema_level(), " SQL_SESSION_SETTINGS;
static const char SQL_SESSION[] =
	"SELECT coalesce(substring(obj_description(to_regnamespace('cmdb'), 'pg_namespace')"
	"                          FROM 'version ([0-9]+)')::integer, 0), " SQL_SESSION_SETTINGS;

static cmdb_rc set_session(struct cmdb_db *db, const struct cmdb_db_options *opts, int *version,
			   struct cmdb_error *err)
{
	const char *role = opts->access == CMDB_ACCESS_READ    ? "cmdb_reader"
			   : opts->access == CMDB_ACCESS_WRITE ? "cmdb_writer"
							       : NULL;
	const char *params[4] = {os_user(), opts->source ? opts->source : "cli",
				 opts->change_ref ? opts->change_ref : "", role};
	PGresult *res = PQexecParams(db->conn, SQL_SESSION_FAST, 4, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		/* 3F000 no schema cmdb, 42883 no such function (an older schema),
		 * 42501 no access to the schema before the role is taken */
		if (!state || (strcmp(state, "3F000") != 0 && strcmp(state, "42883") != 0 &&
			       strcmp(state, "42501") != 0)) {
			cmdb_rc rc = cmdb_pg_error(db->conn, res, err);

			PQclear(res);
			return rc;
		}
		PQclear(res);
		res = cmdb_query(db, SQL_SESSION, 4, params, PGRES_TUPLES_OK, err);
		if (!res)
			return err ? err->rc : CMDB_EDB;
	}
	if (version)
		*version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return CMDB_OK;
}

static void describe_target(struct cmdb_db *db)
{
	const char *host = PQhost(db->conn), *dbname = PQdb(db->conn), *user = PQuser(db->conn);

	if (db->embedded)
		snprintf(db->target, sizeof(db->target), "embedded server (%s)", host ? host : "?");
	else
		snprintf(db->target, sizeof(db->target), "database %s on %s:%s as %s", dbname ? dbname : "?",
			 host && *host ? host : "local socket", PQport(db->conn), user ? user : "?");
}

static PGconn *connect_to(const char *conninfo, const struct cmdb_db_options *opts)
{
	const char *keys[] = {"dbname", "fallback_application_name", "client_encoding", NULL};
	const char *vals[] = {conninfo, opts->app_name ? opts->app_name : "cmdb", "UTF8", NULL};

	return PQconnectdbParams(keys, vals, 1);
}

cmdb_rc cmdb_db_open(const struct cmdb_db_options *opts, struct cmdb_db **out,
		     struct cmdb_error *err)
{
	struct cmdb_embedded_status st;
	const char *conninfo = opts->conninfo;
	struct cmdb_db *db;
	int version;
	cmdb_rc rc;

	*out = NULL;
	db = calloc(1, sizeof(*db));
	if (!db)
		return cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
	if (!conninfo || !*conninfo) {
		const char *env = getenv("CMDB_DB");
		conninfo = env && *env ? env : NULL;
	}
	if (!conninfo && !pg_env_configured()) {
		/* the embedded server usually runs: connect first, start on failure */
		db->embedded = true;
		rc = cmdb_embedded_conninfo(opts->home, st.conninfo, sizeof(st.conninfo), err);
		if (rc)
			goto fail;
		db->conn = connect_to(st.conninfo, opts);
		if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
			PQfinish(db->conn);
			db->conn = NULL;
			rc = cmdb_embedded_start(opts->home, &st, err);
			if (rc)
				goto fail;
		}
		conninfo = st.conninfo;
	}
	if (!db->conn)
		db->conn = connect_to(conninfo ? conninfo : "", opts);
	if (!db->conn) {
		rc = cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
		goto fail;
	}
	if (PQstatus(db->conn) != CONNECTION_OK) {
		char msg[1024];
		size_t n;

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(db->conn));
		n = strlen(msg);
		while (n && msg[n - 1] == '\n')
			msg[--n] = '\0';
		rc = cmdb_error_set(err, CMDB_ECONNECT, "cannot connect to the CMDB: %s", msg);
		goto fail;
	}
	PQsetNoticeProcessor(db->conn, cmdb_drop_notice, NULL);
	describe_target(db);
	rc = set_session(db, opts, &version, err);
	if (rc)
		goto fail;
	if (opts->access != CMDB_ACCESS_OWNER && version < cmdb_schema_latest()) {
		/* the comment may be missing on a schema migrated by an older cmdb */
		rc = cmdb_db_schema_version(db, &version, err);
		if (rc)
			goto fail;
	}
	if (opts->access != CMDB_ACCESS_OWNER && version < cmdb_schema_latest()) {
		if (!db->embedded || opts->no_migrate) {
			rc = version == 0
				     ? cmdb_error_set(err, CMDB_ESCHEMA,
						      "%s holds no CMDB yet: run `cmdb init` first",
						      db->target)
				     : cmdb_error_set(err, CMDB_ESCHEMA,
						      "%s has schema version %d; this cmdb needs %d: run "
						      "`cmdb init` to migrate it",
						      db->target, version, cmdb_schema_latest());
			goto fail;
		}
		/* migrations run with the login's own rights, then the role is taken */
		rc = cmdb_exec(db, "RESET ROLE", 0, NULL, err);
		if (rc == CMDB_OK)
			rc = cmdb_db_migrate(db, NULL, err);
		if (rc == CMDB_OK)
			rc = set_session(db, opts, NULL, err);
		if (rc)
			goto fail;
	}
	*out = db;
	return CMDB_OK;
fail:
	cmdb_db_close(db);
	return rc;
}

void cmdb_db_close(struct cmdb_db *db)
{
	if (!db)
		return;
	PQfinish(db->conn);
	free(db);
}

bool cmdb_db_is_embedded(const struct cmdb_db *db)
{
	return db->embedded;
}

const char *cmdb_db_target(const struct cmdb_db *db)
{
	return db->target;
}

cmdb_rc cmdb_db_begin(struct cmdb_db *db, struct cmdb_error *err)
{
	return cmdb_exec(db, "BEGIN", 0, NULL, err);
}

cmdb_rc cmdb_db_commit(struct cmdb_db *db, struct cmdb_error *err)
{
	return cmdb_exec(db, "COMMIT", 0, NULL, err);
}

void cmdb_db_rollback(struct cmdb_db *db)
{
	PQclear(PQexec(db->conn, "ROLLBACK"));
}
