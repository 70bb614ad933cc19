/*
 * Audit checks (see cmdb/audit.h). The chain is verified in one set-based
 * query inside the database (cmdb.audit_chain), so the rows never cross
 * the wire.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmdb/audit.h"
#include "internal.h"

static const char SQL_AUDIT_CHAIN[] =
	"SELECT checked, blocks, broken_block, broken_first, broken_last, problem, head_block, head_hash "
	"FROM cmdb.audit_chain()";

static int64_t int_or_zero(const PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? 0 : strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

cmdb_rc cmdb_audit_chain(struct cmdb_db *db, struct cmdb_chain_report *rep, struct cmdb_error *err)
{
	PGresult *res = cmdb_query(db, SQL_AUDIT_CHAIN, 0, NULL, PGRES_TUPLES_OK, err);

	memset(rep, 0, sizeof(*rep));
	if (!res)
		return err ? err->rc : CMDB_EDB;
	rep->checked = int_or_zero(res, 0);
	rep->blocks = int_or_zero(res, 1);
	rep->head_block = int_or_zero(res, 6);
	snprintf(rep->head_hash, sizeof(rep->head_hash), "%s", PQgetvalue(res, 0, 7));
	rep->broken = !PQgetisnull(res, 0, 5);
	if (rep->broken) {
		rep->broken_block = int_or_zero(res, 2);
		rep->broken_first = int_or_zero(res, 3);
		rep->broken_last = int_or_zero(res, 4);
		snprintf(rep->problem, sizeof(rep->problem), "%s", PQgetvalue(res, 0, 5));
		PQclear(res);
		return cmdb_error_set(err, CMDB_EINTEGRITY, "history rows %lld..%lld (block %lld): %s",
				      (long long)rep->broken_first, (long long)rep->broken_last,
				      (long long)rep->broken_block, rep->problem);
	}
	PQclear(res);
	return CMDB_OK;
}
