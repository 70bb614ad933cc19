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
	"SELECT checked, broken_id, problem, head_id, head_hash FROM cmdb.audit_chain()";

cmdb_rc cmdb_audit_chain(struct cmdb_db *db, struct cmdb_chain_report *rep, struct cmdb_error *err)
{
	PGresult *res = cmdb_query(db, SQL_AUDIT_CHAIN, 0, NULL, PGRES_TUPLES_OK, err);

	memset(rep, 0, sizeof(*rep));
	if (!res)
		return err ? err->rc : CMDB_EDB;
	rep->checked = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	rep->head_id = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	snprintf(rep->head_hash, sizeof(rep->head_hash), "%s", PQgetvalue(res, 0, 4));
	if (!PQgetisnull(res, 0, 1)) {
		rep->broken_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		snprintf(rep->problem, sizeof(rep->problem), "%s", PQgetvalue(res, 0, 2));
		PQclear(res);
		return cmdb_error_set(err, CMDB_EINTEGRITY, "history row %lld: %s",
				      (long long)rep->broken_id, rep->problem);
	}
	PQclear(res);
	return CMDB_OK;
}
