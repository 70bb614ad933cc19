/*
 * Suspected duplicates and their merge.
 *
 * cmdb_dup_list finds pairs of CIs in operation of one type that share
 * evidence of being the same thing (a serial, a machine UUID, a host name,
 * an address, a name, an endpoint), each with its reasons and a score.
 * cmdb_dup_merge merges one into the other: identities, relationships and
 * attribute claims move to the CI kept, the other is closed with status
 * merged and attribute merged_into, and both histories record it. Both are
 * the schema's functions (cmdb.dup_list, cmdb.ci_merge in
 * 003_rules_dup.sql), so psql users get the same.
 */
#ifndef CMDB_DUP_H
#define CMDB_DUP_H

#include <stdbool.h>
#include <stdint.h>
#include "cmdb/db.h"
#include "cmdb/rows.h"

/* Suspected duplicates among CIs of type (with its subtypes; NULL: all)
 * scoring at least min_score: score (0-100), type, keep, keep_name, other,
 * other_name, reasons; highest score first, then by type and ids. keep is
 * the older CI of the pair. */
cmdb_rc cmdb_dup_list(struct cmdb_db *db, const char *type, int min_score, struct cmdb_rows **rows,
		      struct cmdb_error *err);

/* Merges CI other into CI keep in one transaction; with dry_run, works out
 * the same and writes nothing. *plan gets what moved (or would move): step,
 * action, item, detail. On refusal (same CI, different types, a merged or
 * disposed CI, a retired one to keep, no right to write) nothing changes. */
cmdb_rc cmdb_dup_merge(struct cmdb_db *db, int64_t keep, int64_t other, bool dry_run,
		       struct cmdb_rows **plan, struct cmdb_error *err);

#endif
