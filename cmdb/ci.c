/*
 * Configuration items (see cmdb/ci.h). Writes call the schema's cmdb.ci_*
 * functions; reads are the named queries below. Reads "as of" a time come
 * from cmdb.ci_version and the validity ranges of identities and
 * relationships, so a past state reads the same way as the present one.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmdb/ci.h"
#include "internal.h"

static const char SQL_CI_ADD[] = "SELECT cmdb.ci_add($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb)";

static const char SQL_CI_SET[] =
	"SELECT cmdb.ci_set($1::bigint, $2, $3, $4, $5, $6, $7::jsonb, $8::text[])";

static const char SQL_CI_RETIRE[] = "SELECT cmdb.ci_retire($1::bigint, $2)";
static const char SQL_IDENTITY_ADD[] = "SELECT cmdb.identity_add((cmdb.ci_require($1::bigint)).id, $2, $3)";
static const char SQL_IDENTITY_REMOVE[] = "SELECT cmdb.identity_remove($1::bigint, $2, $3)";

static const char SQL_BY_ID[] = "SELECT id FROM cmdb.ci WHERE id = $1::bigint";

static const char SQL_BY_NAME[] =
	"SELECT id, type, status FROM cmdb.ci WHERE name = $1 ORDER BY id LIMIT 11";

static const char SQL_BY_IDENTITY[] =
	"SELECT i.ci_id FROM cmdb.ci_identity i "
	"WHERE i.kind = $1 AND i.value = cmdb.identity_normalize($1, $2) AND upper_inf(i.valid)";

/* $1 type, $2 status, $3 attrs, $4 LIKE pattern, $5 as-of, $6 limit,
 * $7 stale interval, $8 missing only. The type filter takes the type's
 * subtypes too. The limit applies to the raw rows in a subquery, so only the
 * rows kept are formatted. */
static const char SQL_CI_LIST[] =
	"WITH RECURSIVE types AS ("
	"  SELECT name FROM cmdb.ci_type WHERE name = $1"
	"  UNION SELECT t.name FROM cmdb.ci_type t JOIN types ON t.parent = types.name) "
	"SELECT c.id, c.type, c.name, c.status, c.criticality, c.owner, c.description, c.attributes,"
	"       cmdb.rfc3339(c.created_at) AS created_at, cmdb.rfc3339(c.updated_at) AS updated_at,"
	"       cmdb.rfc3339(c.first_seen) AS first_seen, cmdb.rfc3339(c.last_seen) AS last_seen "
	"FROM (SELECT c.* FROM cmdb.ci c"
	"      WHERE $5::text IS NULL"
	"        AND ($1::text IS NULL OR c.type IN (SELECT name FROM types))"
	"        AND ($2::text IS NULL OR c.status = $2)"
	"        AND ($3::jsonb IS NULL OR c.attributes @> $3::jsonb)"
	"        AND ($4::text IS NULL OR c.name LIKE $4)"
	"        AND ($7::interval IS NULL OR c.last_seen < now() - $7::interval)"
	"        AND (NOT $8::boolean OR c.attributes @> '{\"missing\": true}')"
	"      ORDER BY c.id LIMIT $6::bigint) c "
	"UNION ALL "
	"SELECT v.ci_id, v.type, v.name, v.status, v.criticality, v.owner, v.description, v.attributes,"
	"       cmdb.rfc3339(c.created_at), cmdb.rfc3339(lower(v.valid)), cmdb.rfc3339(c.first_seen), NULL "
	"FROM (SELECT v.* FROM cmdb.ci_version v"
	"      WHERE $5::text IS NOT NULL AND v.valid @> (SELECT cmdb.parse_time($5))"
	"        AND ($1::text IS NULL OR v.type IN (SELECT name FROM types))"
	"        AND ($2::text IS NULL OR v.status = $2)"
	"        AND ($3::jsonb IS NULL OR v.attributes @> $3::jsonb)"
	"        AND ($4::text IS NULL OR v.name LIKE $4)"
	"        AND ($7::interval IS NULL OR EXISTS (SELECT FROM cmdb.ci s WHERE s.id = v.ci_id"
	"             AND s.last_seen < (SELECT cmdb.parse_time($5)) - $7::interval))"
	"        AND (NOT $8::boolean OR v.attributes @> '{\"missing\": true}')"
	"      ORDER BY v.ci_id LIMIT $6::bigint) v"
	" JOIN cmdb.ci c ON c.id = v.ci_id "
	"ORDER BY 1";

/* One CI as a JSON document; $2 NULL for now, else a time. */
/* ci show of the current state: SQL_CI_SHOW without the as-of branch, which
 * costs a cold backend the catalog entries of ci_version and parse_time (a
 * millisecond of a command's 15) even when it is not taken. */
static const char SQL_CI_SHOW_NOW[] =
	"SELECT json_build_object("
	"  'id', c.id, 'type', c.type, 'name', c.name, 'description', c.description,"
	"  'status', c.status, 'criticality', c.criticality, 'owner', c.owner, 'as_of', NULL,"
	"  'created_at', cmdb.rfc3339(c.created_at), 'updated_at', cmdb.rfc3339(c.updated_at),"
	"  'first_seen', cmdb.rfc3339(c.first_seen), 'last_seen', cmdb.rfc3339(c.last_seen),"
	"  'attributes', c.attributes,"
	"  'identities', (SELECT coalesce(json_agg(json_build_object('kind', i.kind, 'value', i.value,"
	"                   'since', cmdb.rfc3339(lower(i.valid))) ORDER BY i.kind, i.value), '[]')"
	"                 FROM cmdb.ci_identity i WHERE i.ci_id = c.id AND upper_inf(i.valid)),"
	"  'relationships', (SELECT coalesce(json_agg(json_build_object("
	"                   'direction', r.direction, 'type', r.type, 'label', r.label, 'ci', r.other,"
	"                   'ci_type', o.type, 'ci_name', o.name, 'since', cmdb.rfc3339(lower(r.valid)))"
	"                   ORDER BY r.direction DESC, r.type, r.other), '[]')"
	"                 FROM (SELECT 'out' AS direction, x.type, rt.forward_label AS label,"
	"                              x.target_id AS other, x.valid"
	"                       FROM cmdb.rel x JOIN cmdb.rel_type rt ON rt.name = x.type"
	"                       WHERE x.source_id = c.id"
	"                       UNION ALL"
	"                       SELECT 'in', x.type, rt.reverse_label, x.source_id, x.valid"
	"                       FROM cmdb.rel x JOIN cmdb.rel_type rt ON rt.name = x.type"
	"                       WHERE x.target_id = c.id) r"
	"                 JOIN cmdb.ci o ON o.id = r.other WHERE upper_inf(r.valid))"
	") FROM cmdb.ci c WHERE c.id = $1::bigint";

static const char SQL_CI_SHOW[] =
	"WITH t AS (SELECT CASE WHEN $2::text IS NULL THEN NULL ELSE cmdb.parse_time($2) END AS at),"
	" cur AS ("
	"  SELECT c.id, c.type, c.name, c.description, c.status, c.criticality, c.owner, c.attributes,"
	"         c.created_at, c.updated_at, c.first_seen, c.last_seen"
	"  FROM cmdb.ci c, t WHERE c.id = $1::bigint AND t.at IS NULL"
	"  UNION ALL"
	"  SELECT v.ci_id, v.type, v.name, v.description, v.status, v.criticality, v.owner, v.attributes,"
	"         c.created_at, lower(v.valid), c.first_seen, NULL"
	"  FROM cmdb.ci_version v JOIN cmdb.ci c ON c.id = v.ci_id, t"
	"  WHERE v.ci_id = $1::bigint AND t.at IS NOT NULL AND v.valid @> t.at) "
	"SELECT json_build_object("
	"  'id', cur.id, 'type', cur.type, 'name', cur.name, 'description', cur.description,"
	"  'status', cur.status, 'criticality', cur.criticality, 'owner', cur.owner,"
	"  'as_of', cmdb.rfc3339(t.at),"
	"  'created_at', cmdb.rfc3339(cur.created_at), 'updated_at', cmdb.rfc3339(cur.updated_at),"
	"  'first_seen', cmdb.rfc3339(cur.first_seen), 'last_seen', cmdb.rfc3339(cur.last_seen),"
	"  'attributes', cur.attributes,"
	"  'identities', (SELECT coalesce(json_agg(json_build_object('kind', i.kind, 'value', i.value,"
	"                   'since', cmdb.rfc3339(lower(i.valid))) ORDER BY i.kind, i.value), '[]')"
	"                 FROM cmdb.ci_identity i WHERE i.ci_id = cur.id"
	"                 AND CASE WHEN t.at IS NULL THEN upper_inf(i.valid) ELSE i.valid @> t.at END),"
	"  'relationships', (SELECT coalesce(json_agg(json_build_object("
	"                   'direction', r.direction, 'type', r.type, 'label', r.label, 'ci', r.other,"
	"                   'ci_type', o.type, 'ci_name', o.name, 'since', cmdb.rfc3339(lower(r.valid)))"
	"                   ORDER BY r.direction DESC, r.type, r.other), '[]')"
	"                 FROM (SELECT 'out' AS direction, x.type, rt.forward_label AS label,"
	"                              x.target_id AS other, x.valid"
	"                       FROM cmdb.rel x JOIN cmdb.rel_type rt ON rt.name = x.type"
	"                       WHERE x.source_id = cur.id"
	"                       UNION ALL"
	"                       SELECT 'in', x.type, rt.reverse_label, x.source_id, x.valid"
	"                       FROM cmdb.rel x JOIN cmdb.rel_type rt ON rt.name = x.type"
	"                       WHERE x.target_id = cur.id) r"
	"                 JOIN cmdb.ci o ON o.id = r.other"
	"                 WHERE CASE WHEN t.at IS NULL THEN upper_inf(r.valid) ELSE r.valid @> t.at END)"
	") FROM cur, t";

static const char SQL_CI_EXISTED[] =
	"SELECT cmdb.rfc3339(c.created_at), cmdb.rfc3339(cmdb.parse_time($2)) "
	"FROM cmdb.ci c WHERE c.id = $1::bigint";

static const char SQL_CI_HISTORY[] =
	"SELECT h.id, cmdb.rfc3339(h.at) AS at, h.op, h.field,"
	"       h.old, h.new, h.db_user, h.os_user, h.source, h.change_ref, h.reason,"
	"       CASE WHEN h.entity = 'rel' OR h.op = 'merge' THEN CASE WHEN h.ci_id = $1::bigint THEN h.other_ci_id"
	"            ELSE h.ci_id END END AS other_ci "
	"FROM cmdb.history h "
	"WHERE h.ci_id = $1::bigint OR h.other_ci_id = $1::bigint "
	"ORDER BY h.id";

cmdb_rc cmdb_ci_add(struct cmdb_db *db, const struct cmdb_ci_new *ci, int64_t *id,
		    struct cmdb_error *err)
{
	char *attrs = cmdb_json_param(ci->attributes);
	char *idents = cmdb_json_param(ci->identities);
	const char *params[8] = {ci->type,        ci->name,  ci->description, ci->status,
				 ci->criticality, ci->owner, attrs,           idents};
	PGresult *res;
	cmdb_rc rc = CMDB_OK;

	if ((ci->attributes && !attrs) || (ci->identities && !idents)) {
		rc = cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
		goto out;
	}
	res = cmdb_query(db, SQL_CI_ADD, 8, params, PGRES_TUPLES_OK, err);
	if (!res) {
		rc = err ? err->rc : CMDB_EDB;
		goto out;
	}
	*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
out:
	free(attrs);
	free(idents);
	return rc;
}

static bool all_digits(const char *s)
{
	if (!*s || strlen(s) > 18)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

static cmdb_rc resolve_id(struct cmdb_db *db, const char *digits, int64_t *id, struct cmdb_error *err)
{
	PGresult *res = cmdb_query(db, SQL_BY_ID, 1, &digits, PGRES_TUPLES_OK, err);
	int n;

	if (!res)
		return err ? err->rc : CMDB_EDB;
	n = PQntuples(res);
	if (n == 1)
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n == 1 ? CMDB_OK : cmdb_error_set(err, CMDB_ENOTFOUND, "no CI with id %s", digits);
}

static cmdb_rc resolve_name(struct cmdb_db *db, const char *name, int64_t *id, struct cmdb_error *err)
{
	PGresult *res = cmdb_query(db, SQL_BY_NAME, 1, &name, PGRES_TUPLES_OK, err);
	char list[1024] = "";
	size_t used = 0;
	int n;

	if (!res)
		return err ? err->rc : CMDB_EDB;
	n = PQntuples(res);
	if (n == 1) {
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		return CMDB_OK;
	}
	if (n == 0) {
		PQclear(res);
		return cmdb_error_set(err, CMDB_ENOTFOUND, "no CI named \"%s\"", name);
	}
	for (int i = 0; i < n && i < 10; i++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s%s (%s, %s)", i ? ", " : "",
				 PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
		if (w < 0 || (size_t)w >= sizeof(list) - used)
			break;
		used += (size_t)w;
	}
	PQclear(res);
	return cmdb_error_set(err, CMDB_EAMBIGUOUS, "%s CIs are named \"%s\": %s%s; use an id",
			      n > 10 ? "more than 10" : n == 2 ? "2" : "several", name, list,
			      n > 10 ? ", ..." : "");
}

static cmdb_rc resolve_identity(struct cmdb_db *db, const char *ref, const char *eq, int64_t *id,
				struct cmdb_error *err)
{
	char kind[40];
	size_t klen = (size_t)(eq - ref);
	const char *params[2];
	PGresult *res;
	int n;

	snprintf(kind, sizeof(kind), "%.*s", (int)klen, ref);
	params[0] = kind;
	params[1] = eq + 1;
	res = cmdb_query(db, SQL_BY_IDENTITY, 2, params, PGRES_TUPLES_OK, err);
	if (!res)
		return err ? err->rc : CMDB_EDB;
	n = PQntuples(res);
	if (n == 1)
		*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n == 1 ? CMDB_OK
		      : cmdb_error_set(err, CMDB_ENOTFOUND, "no CI holds identity %s=%s", kind, eq + 1);
}

/* An identity reference looks like kind=value with a well-formed kind. */
static const char *identity_separator(const char *ref)
{
	const char *eq = strchr(ref, '=');

	if (!eq || eq == ref || eq - ref > 32 || !islower((unsigned char)ref[0]))
		return NULL;
	for (const char *p = ref; p < eq; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
			return NULL;
	return eq;
}

bool cmdb_ci_ref_id(const char *ref, int64_t *id)
{
	char *end;
	long long v;

	if (ref && strncmp(ref, "id:", 3) == 0)
		ref += 3;
	if (!ref || !all_digits(ref))
		return false;
	errno = 0;
	v = strtoll(ref, &end, 10);
	if (errno || *end)
		return false;
	*id = v;
	return true;
}

cmdb_rc cmdb_ci_resolve(struct cmdb_db *db, const char *ref, int64_t *id, struct cmdb_error *err)
{
	const char *eq;

	if (!ref || !*ref)
		return cmdb_error_set(err, CMDB_EINVAL, "empty CI reference: give an id or a name");
	if (strncmp(ref, "id:", 3) == 0) {
		if (!all_digits(ref + 3))
			return cmdb_error_set(err, CMDB_EINVAL, "\"%s\" is not a CI id", ref + 3);
		return resolve_id(db, ref + 3, id, err);
	}
	if (strncmp(ref, "name:", 5) == 0)
		return resolve_name(db, ref + 5, id, err);
	if (all_digits(ref))
		return resolve_id(db, ref, id, err);
	eq = identity_separator(ref);
	if (eq)
		return resolve_identity(db, ref, eq, id, err);
	return resolve_name(db, ref, id, err);
}

/* Shell glob to LIKE pattern: * -> %, ? -> _, LIKE's own % _ \ escaped;
 * a backslash in the glob escapes the next character. Caller frees. */
static char *glob_to_like(const char *glob)
{
	char *out = malloc(strlen(glob) * 2 + 1), *o = out;

	if (!out)
		return NULL;
	for (const char *g = glob; *g; g++) {
		if (*g == '\\' && g[1]) {
			g++;
			if (*g == '%' || *g == '_' || *g == '\\')
				*o++ = '\\';
			*o++ = *g;
		} else if (*g == '*') {
			*o++ = '%';
		} else if (*g == '?') {
			*o++ = '_';
		} else {
			if (*g == '%' || *g == '_')
				*o++ = '\\';
			*o++ = *g;
		}
	}
	*o = '\0';
	return out;
}

cmdb_rc cmdb_ci_list(struct cmdb_db *db, const struct cmdb_ci_filter *f, struct cmdb_rows **rows,
		     struct cmdb_error *err)
{
	char *attrs = cmdb_json_param(f->attrs);
	char *like = f->name_glob ? glob_to_like(f->name_glob) : NULL;
	char limit[24];
	const char *params[8];
	PGresult *res;
	cmdb_rc rc = CMDB_OK;

	*rows = NULL;
	if ((f->attrs && !attrs) || (f->name_glob && !like)) {
		rc = cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
		goto out;
	}
	if (f->type) {
		const char *p = f->type;
		res = cmdb_query(db, "SELECT 1 FROM cmdb.ci_type WHERE name = $1", 1, &p, PGRES_TUPLES_OK, err);
		if (!res) {
			rc = err ? err->rc : CMDB_EDB;
			goto out;
		}
		if (PQntuples(res) == 0)
			rc = cmdb_error_set(err, CMDB_EINVAL, "unknown CI type \"%s\" (see: cmdb type list)",
					    f->type);
		PQclear(res);
		if (rc)
			goto out;
	}
	snprintf(limit, sizeof(limit), "%ld", f->limit > 0 ? f->limit : (long)INT64_MAX / 2);
	params[0] = f->type;
	params[1] = f->status;
	params[2] = attrs;
	params[3] = like;
	params[4] = f->as_of;
	params[5] = limit;
	params[6] = f->stale;
	params[7] = f->missing ? "true" : "false";
	if (f->stale) {
		const char *p = f->stale;
		res = cmdb_query(db, "SELECT $1::interval > '0'::interval", 1, &p, PGRES_TUPLES_OK, NULL);
		if (!res) {
			rc = cmdb_error_set(err, CMDB_EINVAL, "invalid --stale duration \"%s\": give e.g. '7 days', '12 hours'",
					    f->stale);
			goto out;
		}
		if (PQgetvalue(res, 0, 0)[0] != 't')
			rc = cmdb_error_set(err, CMDB_EINVAL, "--stale needs a positive duration, not \"%s\"", f->stale);
		PQclear(res);
		if (rc)
			goto out;
	}
	res = cmdb_query(db, SQL_CI_LIST, 8, params, PGRES_TUPLES_OK, err);
	if (!res) {
		rc = err ? err->rc : CMDB_EDB;
		goto out;
	}
	*rows = cmdb_rows_wrap(res);
	if (!*rows)
		rc = cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
out:
	free(attrs);
	free(like);
	return rc;
}

cmdb_rc cmdb_ci_show(struct cmdb_db *db, int64_t id, const char *as_of, json_t **out,
		     struct cmdb_error *err)
{
	char idbuf[24];
	const char *params[2] = {cmdb_id_param(id, idbuf), as_of};
	PGresult *res;
	cmdb_rc rc;

	*out = NULL;
	res = as_of ? cmdb_query(db, SQL_CI_SHOW, 2, params, PGRES_TUPLES_OK, err)
		    : cmdb_query(db, SQL_CI_SHOW_NOW, 1, params, PGRES_TUPLES_OK, err);
	if (!res)
		return err ? err->rc : CMDB_EDB;
	if (PQntuples(res) == 0) {
		PQclear(res);
		if (!as_of)
			return cmdb_error_set(err, CMDB_ENOTFOUND, "no CI with id %s", idbuf);
		res = cmdb_query(db, SQL_CI_EXISTED, 2, params, PGRES_TUPLES_OK, err);
		if (!res)
			return err ? err->rc : CMDB_EDB;
		rc = PQntuples(res) ? cmdb_error_set(err, CMDB_ENOTFOUND,
						     "CI %s did not exist yet at %s (created %s)", idbuf,
						     PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0))
				    : cmdb_error_set(err, CMDB_ENOTFOUND, "no CI with id %s", idbuf);
		PQclear(res);
		return rc;
	}
	rc = cmdb_json_result(res, out, err);
	PQclear(res);
	return rc;
}

cmdb_rc cmdb_ci_set(struct cmdb_db *db, int64_t id, const struct cmdb_ci_change *c,
		    struct cmdb_error *err)
{
	char idbuf[24];
	char *attrs = cmdb_json_param(c->set_attrs);
	char *unset = c->n_unset ? cmdb_text_array(c->unset, c->n_unset) : NULL;
	const char *params[8] = {cmdb_id_param(id, idbuf), c->status, c->description, c->criticality,
				 c->owner, c->name, attrs, unset};
	cmdb_rc rc;

	if ((c->set_attrs && !attrs) || (c->n_unset && !unset))
		rc = cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
	else
		rc = cmdb_exec(db, SQL_CI_SET, 8, params, err);
	free(attrs);
	free(unset);
	return rc;
}

cmdb_rc cmdb_ci_retire(struct cmdb_db *db, int64_t id, const char *reason, struct cmdb_error *err)
{
	char idbuf[24];
	const char *params[2] = {cmdb_id_param(id, idbuf), reason};

	return cmdb_exec(db, SQL_CI_RETIRE, 2, params, err);
}

cmdb_rc cmdb_ci_identity_add(struct cmdb_db *db, int64_t id, const char *kind, const char *value,
			     struct cmdb_error *err)
{
	char idbuf[24];
	const char *params[3] = {cmdb_id_param(id, idbuf), kind, value};

	return cmdb_exec(db, SQL_IDENTITY_ADD, 3, params, err);
}

cmdb_rc cmdb_ci_identity_remove(struct cmdb_db *db, int64_t id, const char *kind,
				const char *value, struct cmdb_error *err)
{
	char idbuf[24];
	const char *params[3] = {cmdb_id_param(id, idbuf), kind, value};

	return cmdb_exec(db, SQL_IDENTITY_REMOVE, 3, params, err);
}

cmdb_rc cmdb_ci_history(struct cmdb_db *db, int64_t id, struct cmdb_rows **rows,
			struct cmdb_error *err)
{
	char idbuf[24];
	const char *params[1] = {cmdb_id_param(id, idbuf)};
	return cmdb_query_rows(db, SQL_CI_HISTORY, 1, params, rows, err);
}
