/*
 * Query helpers shared by every module: one place that passes parameters,
 * checks the one result status expected, and turns a server error into a
 * cmdb_rc by its SQLSTATE (never by its text).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static cmdb_rc rc_from_sqlstate(const char *s)
{
	if (!s || strlen(s) != 5)
		return CMDB_EDB;
	if (strcmp(s, "23505") == 0)
		return CMDB_ECONFLICT;
	if (strcmp(s, "P0002") == 0 || strcmp(s, "42704") == 0)
		return CMDB_ENOTFOUND;
	if (strcmp(s, "55000") == 0)
		return CMDB_ESTATE;
	if (strcmp(s, "42501") == 0)
		return CMDB_EPERM;
	if (strcmp(s, "3F000") == 0 || strcmp(s, "42P01") == 0 || strcmp(s, "42883") == 0)
		return CMDB_ESCHEMA;
	if (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P03") == 0)
		return CMDB_ECONNECT;
	/* data exceptions (bad values, encoding, lengths) and integrity rules */
	if (strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0)
		return CMDB_EINVAL;
	return CMDB_EDB;
}

cmdb_rc cmdb_pg_error(PGconn *conn, const PGresult *res, struct cmdb_error *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	cmdb_rc rc;

	if (PQstatus(conn) == CONNECTION_BAD) {
		rc = CMDB_ECONNECT;
		cmdb_error_set(err, rc, "lost the connection to the database: %s",
			       PQerrorMessage(conn));
	} else if (!primary) {
		rc = CMDB_EDB;
		cmdb_error_set(err, rc, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
	} else {
		rc = rc_from_sqlstate(state);
		if (detail)
			cmdb_error_set(err, rc, "%s (%s)", primary, detail);
		else
			cmdb_error_set(err, rc, "%s", primary);
	}
	if (err) {
		size_t n = strlen(err->msg);
		while (n && (err->msg[n - 1] == '\n' || err->msg[n - 1] == ' '))
			err->msg[--n] = '\0';
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state ? state : "");
	}
	return rc;
}

PGresult *cmdb_query(struct cmdb_db *db, const char *sql, int nparams, const char *const *params,
		     ExecStatusType expect, struct cmdb_error *err)
{
	PGresult *res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (res && PQresultStatus(res) == expect)
		return res;
	cmdb_pg_error(db->conn, res, err);
	PQclear(res);
	return NULL;
}

cmdb_rc cmdb_exec(struct cmdb_db *db, const char *sql, int nparams, const char *const *params,
		  struct cmdb_error *err)
{
	PGresult *res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	cmdb_rc rc = CMDB_OK;

	if (!res || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK))
		rc = cmdb_pg_error(db->conn, res, err);
	PQclear(res);
	return rc;
}

cmdb_rc cmdb_query_rows(struct cmdb_db *db, const char *sql, int nparams, const char *const *params,
			struct cmdb_rows **rows, struct cmdb_error *err)
{
	PGresult *res = cmdb_query(db, sql, nparams, params, PGRES_TUPLES_OK, err);

	*rows = NULL;
	if (!res)
		return err ? err->rc : CMDB_EDB;
	*rows = cmdb_rows_wrap(res);
	return *rows ? CMDB_OK : cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
}

char *cmdb_json_param(const json_t *v)
{
	if (!v)
		return NULL;
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

cmdb_rc cmdb_json_result(const PGresult *res, json_t **out, struct cmdb_error *err)
{
	json_error_t jerr;
	const char *text;

	if (PQntuples(res) < 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0))
		return cmdb_error_set(err, CMDB_ENOTFOUND, "no result");
	text = PQgetvalue(res, 0, 0);
	*out = json_loadb(text, strlen(text), JSON_DECODE_ANY, &jerr);
	if (!*out)
		return cmdb_error_set(err, CMDB_EDB, "the server sent JSON that does not parse: %s",
				      jerr.text);
	return CMDB_OK;
}

const char *cmdb_id_param(int64_t id, char buf[24])
{
	snprintf(buf, 24, "%" PRId64, id);
	return buf;
}

char *cmdb_text_array(const char *const *v, size_t n)
{
	size_t len = 3;
	char *out, *o;

	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) * 2 + 3;
	out = malloc(len);
	if (!out)
		return NULL;
	o = out;
	*o++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*o++ = ',';
		*o++ = '"';
		for (const char *s = v[i]; *s; s++) {
			if (*s == '"' || *s == '\\')
				*o++ = '\\';
			*o++ = *s;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

void cmdb_drop_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}
