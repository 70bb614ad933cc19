/*
 * Audit checks of the record itself.
 */
#ifndef CMDB_AUDIT_H
#define CMDB_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include "cmdb/db.h"

/* The history is chained in blocks, one per statement that wrote history
 * (see schema/001_core.sql); a break is located to a block and its rows. */
struct cmdb_chain_report {
	int64_t checked;      /* history rows verified */
	int64_t blocks;       /* blocks verified */
	bool broken;
	int64_t broken_block; /* the first broken block (0: rows in no block) */
	int64_t broken_first; /* its row range */
	int64_t broken_last;
	char problem[512];  /* what is wrong with it */
	int64_t head_block; /* the chain head: last block and its hash, to write down */
	char head_hash[65];
};

/* Verifies the whole history hash chain. CMDB_OK when intact; CMDB_EINTEGRITY
 * when broken, with the report filled either way. */
cmdb_rc cmdb_audit_chain(struct cmdb_db *db, struct cmdb_chain_report *rep,
			 struct cmdb_error *err);

#endif
