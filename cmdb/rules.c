/*
 * Identification rules (see cmdb/rules.h). The rules live and are checked
 * in the schema (003_rules_dup.sql); this is the named SQL that reads and
 * edits them.
 */
#include <stdio.h>
#include <stdlib.h>
#include "cmdb/rules.h"
#include "internal.h"

static const char SQL_TYPE_EXISTS[] = "SELECT 1 FROM cmdb.ci_type WHERE name = $1";

static const char SQL_RULES_LIST[] =
	"SELECT r.position, r.kind, nullif(array_to_string(r.options, ','), '') AS options,"
	"       coalesce(r.defined_by, '(default)') AS defined_by,"
	"       cmdb.ident_rule_meaning(r.kind, r.options) AS matches "
	"FROM cmdb.type_ident_rule r WHERE r.type = $1 ORDER BY r.position";

static const char SQL_RULES_SET[] = "SELECT cmdb.ident_rules_set($1, $2::text[])";

static const char SQL_RULES_EDIT[] = "SELECT cmdb.ident_rules_edit($1, $2, $3, $4::integer)";

cmdb_rc cmdb_rules_list(struct cmdb_db *db, const char *type, struct cmdb_rows **rows,
			struct cmdb_error *err)
{
	PGresult *res;
	int n;

	*rows = NULL;
	/* an own empty list lists nothing: tell it from an unknown type */
	res = cmdb_query(db, SQL_TYPE_EXISTS, 1, &type, PGRES_TUPLES_OK, err);
	if (!res)
		return err ? err->rc : CMDB_EDB;
	n = PQntuples(res);
	PQclear(res);
	if (n == 0)
		return cmdb_error_set(err, CMDB_ENOTFOUND,
				      "unknown CI type \"%s\" (see: cmdb type list)", type);
	return cmdb_query_rows(db, SQL_RULES_LIST, 1, &type, rows, err);
}

cmdb_rc cmdb_rules_set(struct cmdb_db *db, const char *type, const char *const *specs, size_t n,
		       struct cmdb_error *err)
{
	char *arr = cmdb_text_array(specs, n);
	const char *params[2] = {type, arr};
	cmdb_rc rc;

	if (!arr)
		return cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
	rc = cmdb_exec(db, SQL_RULES_SET, 2, params, err);
	free(arr);
	return rc;
}

cmdb_rc cmdb_rules_reset(struct cmdb_db *db, const char *type, struct cmdb_error *err)
{
	const char *params[2] = {type, NULL};

	return cmdb_exec(db, SQL_RULES_SET, 2, params, err);
}

cmdb_rc cmdb_rules_edit(struct cmdb_db *db, const char *type, enum cmdb_rules_op op,
			const char *spec, int at, struct cmdb_error *err)
{
	static const char *const ops[] = {
		[CMDB_RULES_ADD] = "add", [CMDB_RULES_RM] = "rm", [CMDB_RULES_MOVE] = "move"};
	char atbuf[16];
	const char *params[4] = {type, ops[op], spec, NULL};

	if (at > 0) {
		snprintf(atbuf, sizeof(atbuf), "%d", at);
		params[3] = atbuf;
	}
	return cmdb_exec(db, SQL_RULES_EDIT, 4, params, err);
}
