#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "testdb.h"

static const char *test_home(void)
{
	const char *home = getenv("CMDB_TEST_HOME");

	if (!home || !*home) {
		fprintf(stderr, "CMDB_TEST_HOME is not set: run this test through ctest\n");
		exit(1);
	}
	return home;
}

void testdb_create(const char *name, char *conninfo, size_t len)
{
	char admin[1200], sql[256];
	PGconn *conn;
	PGresult *res;

	snprintf(admin, sizeof(admin), "host='%s/run' user=cmdb dbname=postgres", test_home());
	conn = PQconnectdb(admin);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "test server unreachable: %s", PQerrorMessage(conn));
		exit(1);
	}
	PQclear(PQexec(conn, "SET client_min_messages = warning"));
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
	PQclear(PQexec(conn, sql));
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "cannot create test database %s: %s", name, PQerrorMessage(conn));
		exit(1);
	}
	PQclear(res);
	PQfinish(conn);
	snprintf(conninfo, len, "host='%s/run' user=cmdb dbname=%s", test_home(), name);
}

struct cmdb_db *testdb_open(const char *conninfo, enum cmdb_access access)
{
	struct cmdb_db_options init = {.conninfo = conninfo, .access = CMDB_ACCESS_OWNER, .source = "test"};
	struct cmdb_db_options opts = {.conninfo = conninfo, .access = access, .source = "test"};
	struct cmdb_error err = {0};
	struct cmdb_db *db;

	if (cmdb_db_open(&init, &db, &err) || cmdb_db_migrate(db, NULL, &err)) {
		fprintf(stderr, "cannot migrate the test database: %s\n", err.msg);
		exit(1);
	}
	cmdb_db_close(db);
	if (cmdb_db_open(&opts, &db, &err)) {
		fprintf(stderr, "cannot open the test database: %s\n", err.msg);
		exit(1);
	}
	return db;
}

int testdb_sql(const char *conninfo, const char *sql, char *msg, size_t len)
{
	PGconn *conn = PQconnectdb(conninfo);
	PGresult *res;
	int rc = 0;

	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(msg, len, "%s", PQerrorMessage(conn));
		PQfinish(conn);
		return -1;
	}
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(msg, len, "%s", PQresultErrorMessage(res));
		rc = -1;
	} else if (len) {
		msg[0] = '\0';
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
			snprintf(msg, len, "%s", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	PQfinish(conn);
	return rc;
}
