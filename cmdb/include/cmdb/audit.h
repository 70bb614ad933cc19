/*
 * Audit checks of the record itself.
 */
#ifndef CMDB_AUDIT_H
#define CMDB_AUDIT_H

#include <stdint.h>
#include "cmdb/db.h"

struct cmdb_chain_report {
	int64_t checked;   /* history rows verified */
	int64_t broken_id; /* first broken row, 0 when intact */
	char problem[512]; /* what is wrong with it */
	int64_t head_id;   /* the chain head: last row id and hash, to write down */
	char head_hash[65];
};

/* Verifies the whole history hash chain. CMDB_OK when intact; CMDB_EINTEGRITY
 * when broken, with the report filled either way. */
cmdb_rc cmdb_audit_chain(struct cmdb_db *db, struct cmdb_chain_report *rep,
			 struct cmdb_error *err);

#endif
