/*
 * CI types (see cmdb/type.h).
 */
#include <stdlib.h>
#include <string.h>
#include "cmdb/type.h"
#include "internal.h"

static const char SQL_TYPE_ADD[] = "SELECT cmdb.type_add($1, $2, $3, $4::text[], $5::boolean)";

static const char SQL_TYPE_LIST[] =
	"SELECT t.name, t.parent, t.builtin, t.change_controlled, t.required_attrs,"
	"       (SELECT count(*) FROM cmdb.ci c WHERE c.type = t.name) AS cis, t.description "
	"FROM cmdb.ci_type t ORDER BY t.name";

static const char SQL_TYPE_SHOW[] =
	"WITH RECURSIVE up AS ("
	"  SELECT name, parent, required_attrs, 0 AS depth FROM cmdb.ci_type WHERE name = $1"
	"  UNION ALL SELECT t.name, t.parent, t.required_attrs, up.depth + 1"
	"  FROM cmdb.ci_type t JOIN up ON t.name = up.parent) "
	"SELECT json_build_object('name', t.name, 'parent', t.parent, 'description', t.description,"
	"  'builtin', t.builtin, 'change_controlled', t.change_controlled,"
	"  'stale_after', t.stale_after::text, 'created_at', cmdb.rfc3339(t.created_at),"
	"  'required_attrs', to_json(t.required_attrs),"
	"  'inherited_required_attrs', (SELECT coalesce(json_agg(DISTINCT r), '[]') FROM up,"
	"       unnest(up.required_attrs) r WHERE up.depth > 0),"
	"  'ancestors', (SELECT coalesce(json_agg(name ORDER BY depth), '[]') FROM up WHERE depth > 0),"
	"  'subtypes', (SELECT coalesce(json_agg(s.name ORDER BY s.name), '[]') FROM cmdb.ci_type s"
	"       WHERE s.parent = t.name),"
	"  'cis', (SELECT count(*) FROM cmdb.ci c WHERE c.type = t.name)) "
	"FROM cmdb.ci_type t WHERE t.name = $1";

cmdb_rc cmdb_type_add(struct cmdb_db *db, const struct cmdb_type_new *t, struct cmdb_error *err)
{
	char *req = cmdb_text_array(t->required, t->n_required);
	const char *params[5] = {t->name, t->parent, t->description, req,
				 t->change_controlled ? "true" : "false"};
	cmdb_rc rc;

	if (!req)
		return cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
	rc = cmdb_exec(db, SQL_TYPE_ADD, 5, params, err);
	free(req);
	return rc;
}

cmdb_rc cmdb_type_list(struct cmdb_db *db, struct cmdb_rows **rows, struct cmdb_error *err)
{
	return cmdb_query_rows(db, SQL_TYPE_LIST, 0, NULL, rows, err);
}

cmdb_rc cmdb_type_show(struct cmdb_db *db, const char *name, json_t **out, struct cmdb_error *err)
{
	PGresult *res = cmdb_query(db, SQL_TYPE_SHOW, 1, &name, PGRES_TUPLES_OK, err);
	cmdb_rc rc;

	*out = NULL;
	if (!res)
		return err ? err->rc : CMDB_EDB;
	if (PQntuples(res) == 0)
		rc = cmdb_error_set(err, CMDB_ENOTFOUND, "unknown CI type \"%s\" (see: cmdb type list)", name);
	else
		rc = cmdb_json_result(res, out, err);
	PQclear(res);
	return rc;
}
