/*
 * Suspected duplicates and their merge (see cmdb/dup.h). The work is done
 * by the schema's functions, set-based; this passes the parameters.
 */
#include <stdio.h>
#include "cmdb/dup.h"
#include "internal.h"

static const char SQL_DUP_LIST[] =
	"SELECT d.score, d.type, d.keep, d.keep_name, d.other, d.other_name, d.reasons "
	"FROM cmdb.dup_list($1) d "
	"WHERE d.score >= $2::integer ORDER BY d.score DESC, d.type, d.keep, d.other";

/* One statement, so one transaction: the merge is whole or not at all. */
static const char SQL_DUP_MERGE[] =
	"SELECT m.step, m.action, m.item, m.detail "
	"FROM cmdb.ci_merge($1::bigint, $2::bigint, $3::boolean) m";

cmdb_rc cmdb_dup_list(struct cmdb_db *db, const char *type, int min_score, struct cmdb_rows **rows,
		      struct cmdb_error *err)
{
	char mbuf[16];
	const char *params[2] = {type, mbuf};

	snprintf(mbuf, sizeof(mbuf), "%d", min_score);
	return cmdb_query_rows(db, SQL_DUP_LIST, 2, params, rows, err);
}

cmdb_rc cmdb_dup_merge(struct cmdb_db *db, int64_t keep, int64_t other, bool dry_run,
		       struct cmdb_rows **plan, struct cmdb_error *err)
{
	char kbuf[24], obuf[24];
	const char *params[3] = {cmdb_id_param(keep, kbuf), cmdb_id_param(other, obuf),
				 dry_run ? "true" : "false"};

	return cmdb_query_rows(db, SQL_DUP_MERGE, 3, params, plan, err);
}
