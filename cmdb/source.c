/*
 * Sources, scan runs and attribute provenance (see cmdb/source.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "cmdb/source.h"
#include "internal.h"

static const char SQL_SOURCES[] =
	"SELECT s.name, s.kind, s.priority, (SELECT count(*) FROM cmdb.scan_run r WHERE r.source = s.name) AS runs,"
	"       s.description FROM cmdb.source s ORDER BY s.priority DESC, s.name";

static const char SQL_SOURCE_SET[] =
	"INSERT INTO cmdb.source (name, kind, priority, description) "
	"VALUES ($1, 'scanner', $2::integer, 'registered by cmdb source set') "
	"ON CONFLICT (name) DO UPDATE SET priority = excluded.priority";

static const char SQL_SCANS[] =
	"SELECT r.id, r.scan_id, r.source, array_to_string(r.targets, ' ') AS targets,"
	"       cmdb.rfc3339(r.started) AS started, cmdb.rfc3339(r.finished) AS finished, r.complete,"
	"       r.observations, r.created, r.updated, r.unchanged, r.missing, cmdb.rfc3339(r.ingested_at) AS ingested_at "
	"FROM cmdb.scan_run r ORDER BY r.id DESC LIMIT $1::bigint";

/* The winner is the claim of the highest priority, the latest among equals:
 * the same order ingest applies. */
static const char SQL_WHY[] =
	"WITH c AS ("
	"  SELECT a.source, s.kind, s.priority, a.value, a.observed_at, r.scan_id,"
	"         row_number() OVER (ORDER BY s.priority DESC, a.observed_at DESC) AS rank"
	"  FROM cmdb.attr_claim a JOIN cmdb.source s ON s.name = a.source"
	"  LEFT JOIN cmdb.scan_run r ON r.id = a.run"
	"  WHERE a.ci_id = $1::bigint AND a.attr = $2) "
	"SELECT c.source, c.kind, c.priority, c.value, cmdb.rfc3339(c.observed_at) AS observed_at, c.scan_id,"
	"       c.rank = 1 AS wins,"
	"       CASE WHEN c.rank = 1 THEN 'highest priority' || CASE WHEN EXISTS (SELECT FROM c d WHERE d.rank > 1"
	"                 AND d.priority = c.priority) THEN ', most recent among equals' ELSE '' END"
	"            WHEN c.priority < (SELECT priority FROM c WHERE rank = 1) THEN"
	"                 'lower priority than ' || (SELECT source FROM c WHERE rank = 1)"
	"            ELSE 'older than the claim of ' || (SELECT source FROM c WHERE rank = 1) END AS reason "
	"FROM c ORDER BY c.rank";

static const char SQL_SETTINGS[] = "SELECT name, value, description FROM cmdb.setting ORDER BY name";
static const char SQL_SETTING_SET[] = "UPDATE cmdb.setting SET value = $2 WHERE name = $1";

cmdb_rc cmdb_source_list(struct cmdb_db *db, struct cmdb_rows **rows, struct cmdb_error *err)
{
	return cmdb_query_rows(db, SQL_SOURCES, 0, NULL, rows, err);
}

cmdb_rc cmdb_source_set(struct cmdb_db *db, const char *name, int priority, struct cmdb_error *err)
{
	char pbuf[16];
	const char *params[2] = {name, pbuf};

	if (priority < 0 || priority > 1000)
		return cmdb_error_set(err, CMDB_EINVAL, "priority %d is outside 0..1000", priority);
	snprintf(pbuf, sizeof(pbuf), "%d", priority);
	return cmdb_exec(db, SQL_SOURCE_SET, 2, params, err);
}

cmdb_rc cmdb_scan_list(struct cmdb_db *db, long limit, struct cmdb_rows **rows, struct cmdb_error *err)
{
	char lbuf[24];
	const char *params[1] = {lbuf};

	snprintf(lbuf, sizeof(lbuf), "%ld", limit > 0 ? limit : (long)INT64_MAX / 2);
	return cmdb_query_rows(db, SQL_SCANS, 1, params, rows, err);
}

cmdb_rc cmdb_setting_list(struct cmdb_db *db, struct cmdb_rows **rows, struct cmdb_error *err)
{
	return cmdb_query_rows(db, SQL_SETTINGS, 0, NULL, rows, err);
}

cmdb_rc cmdb_setting_set(struct cmdb_db *db, const char *name, const char *value, struct cmdb_error *err)
{
	const char *params[2] = {name, value};
	PGresult *res = cmdb_query(db, SQL_SETTING_SET, 2, params, PGRES_COMMAND_OK, err);
	bool found;

	if (!res)
		return err ? err->rc : CMDB_EDB;
	found = strcmp(PQcmdTuples(res), "0") != 0;
	PQclear(res);
	if (!found)
		return cmdb_error_set(err, CMDB_ENOTFOUND, "unknown setting \"%s\" (see: cmdb settings list)", name);
	return CMDB_OK;
}

cmdb_rc cmdb_ci_why(struct cmdb_db *db, int64_t id, const char *attr, struct cmdb_rows **rows,
		    struct cmdb_error *err)
{
	char idbuf[24];
	const char *params[2] = {cmdb_id_param(id, idbuf), attr};

	return cmdb_query_rows(db, SQL_WHY, 2, params, rows, err);
}
