/*
 * Private to libcmdb: the connection struct and the query helpers every
 * module uses, so that parameter passing, result checking and error mapping
 * are written once.
 */
#ifndef CMDB_INTERNAL_H
#define CMDB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <jansson.h>
#include "cmdb/db.h"
#include "cmdb/rows.h"

struct cmdb_db {
	PGconn *conn;
	bool embedded;
	char target[1400];
};

/* Runs sql with text parameters (NULL entries are SQL NULL) and checks the
 * result status. Returns the result (caller PQclears it) or NULL with err set
 * from the server's SQLSTATE and message. */
PGresult *cmdb_query(struct cmdb_db *db, const char *sql, int nparams, const char *const *params,
		     ExecStatusType expect, struct cmdb_error *err);

/* cmdb_query for statements whose result is not needed. */
cmdb_rc cmdb_exec(struct cmdb_db *db, const char *sql, int nparams, const char *const *params,
		  struct cmdb_error *err);

/* Fills err from a failed result; returns the mapped rc. */
cmdb_rc cmdb_pg_error(PGconn *conn, const PGresult *res, struct cmdb_error *err);

/* Wraps res (ownership moves) in a cmdb_rows; NULL on out of memory. */
struct cmdb_rows *cmdb_rows_wrap(PGresult *res);

/* A query's rows as a listing: *rows NULL on failure, with err set. */
cmdb_rc cmdb_query_rows(struct cmdb_db *db, const char *sql, int nparams, const char *const *params,
			struct cmdb_rows **rows, struct cmdb_error *err);

/* Compact JSON text of v for a parameter, or NULL for v == NULL; free(). */
char *cmdb_json_param(const json_t *v);

/* Parses the single JSON value in column 0 of row 0. */
cmdb_rc cmdb_json_result(const PGresult *res, json_t **out, struct cmdb_error *err);

/* A PostgreSQL text[] literal of the n strings in v, each quoted and
 * escaped; NULL on out of memory. Caller frees. */
char *cmdb_text_array(const char *const *v, size_t n);

/* A libpq notice processor that drops notices: the library never prints,
 * and libpq's default would write server notices to stderr. */
void cmdb_drop_notice(void *arg, const char *message);

/* Decimal text of an id into buf[24]. */
const char *cmdb_id_param(int64_t id, char buf[24]);

#endif
