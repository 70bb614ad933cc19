/*
 * Relationships (see cmdb/rel.h).
 */
#include <stdlib.h>
#include "cmdb/ci.h"
#include "cmdb/rel.h"
#include "internal.h"

static const char SQL_REL_ADD[] = "SELECT cmdb.rel_add($1::bigint, $2, $3::bigint, $4::jsonb)";
static const char SQL_REL_RM[] = "SELECT cmdb.rel_rm($1::bigint, $2, $3::bigint)";

/* $1 CI, $2 'out' | 'in' | NULL for both, $3 as-of time or NULL. */
static const char SQL_REL_LIST[] =
	"WITH t AS (SELECT CASE WHEN $3::text IS NULL THEN NULL ELSE cmdb.parse_time($3) END AS at) "
	"SELECT r.direction, r.type, r.label, r.other AS ci, o.type AS ci_type, o.name AS ci_name,"
	"       o.status AS ci_status, cmdb.rfc3339(lower(r.valid)) AS since,"
	"       cmdb.rfc3339(upper(r.valid)) AS until, r.attributes "
	"FROM (SELECT 'out' AS direction, x.type, rt.forward_label AS label, x.target_id AS other,"
	"             x.valid, x.attributes"
	"      FROM cmdb.rel x JOIN cmdb.rel_type rt ON rt.name = x.type WHERE x.source_id = $1::bigint"
	"      UNION ALL"
	"      SELECT 'in', x.type, rt.reverse_label, x.source_id, x.valid, x.attributes"
	"      FROM cmdb.rel x JOIN cmdb.rel_type rt ON rt.name = x.type WHERE x.target_id = $1::bigint) r"
	" JOIN cmdb.ci o ON o.id = r.other, t "
	"WHERE ($2::text IS NULL OR r.direction = $2)"
	"  AND CASE WHEN t.at IS NULL THEN upper_inf(r.valid) ELSE r.valid @> t.at END "
	"ORDER BY r.direction DESC, r.type, r.other";

static const char SQL_REL_TYPES[] =
	"SELECT name, forward_label, reverse_label, propagation, builtin, description "
	"FROM cmdb.rel_type ORDER BY name";

cmdb_rc cmdb_rel_add(struct cmdb_db *db, int64_t source, const char *type, int64_t target,
		     const json_t *attrs, int64_t *id, struct cmdb_error *err)
{
	char sbuf[24], tbuf[24];
	char *a = cmdb_json_param(attrs);
	const char *params[4] = {cmdb_id_param(source, sbuf), type, cmdb_id_param(target, tbuf), a};
	PGresult *res;

	if (attrs && !a)
		return cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
	res = cmdb_query(db, SQL_REL_ADD, 4, params, PGRES_TUPLES_OK, err);
	free(a);
	if (!res)
		return err ? err->rc : CMDB_EDB;
	if (id)
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return CMDB_OK;
}

cmdb_rc cmdb_rel_rm(struct cmdb_db *db, int64_t source, const char *type, int64_t target,
		    struct cmdb_error *err)
{
	char sbuf[24], tbuf[24];
	const char *params[3] = {cmdb_id_param(source, sbuf), type, cmdb_id_param(target, tbuf)};

	return cmdb_exec(db, SQL_REL_RM, 3, params, err);
}

cmdb_rc cmdb_rel_list(struct cmdb_db *db, int64_t id, enum cmdb_direction dir, const char *as_of,
		      struct cmdb_rows **rows, struct cmdb_error *err)
{
	char idbuf[24];
	const char *params[3] = {cmdb_id_param(id, idbuf),
				 dir == CMDB_DIR_OUT ? "out" : dir == CMDB_DIR_IN ? "in" : NULL, as_of};
	int64_t check;
	cmdb_rc rc;

	*rows = NULL;
	/* a clear "no CI" rather than an empty list */
	rc = cmdb_ci_resolve(db, idbuf, &check, err);
	if (rc)
		return rc;
	return cmdb_query_rows(db, SQL_REL_LIST, 3, params, rows, err);
}

cmdb_rc cmdb_rel_types(struct cmdb_db *db, struct cmdb_rows **rows, struct cmdb_error *err)
{
	return cmdb_query_rows(db, SQL_REL_TYPES, 0, NULL, rows, err);
}
