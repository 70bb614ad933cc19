/*
 * Identification rules: for each CI type, the ordered identity kinds that
 * reconciliation matches observations and inventory records by, most
 * trusted first. Kept in the database (cmdb.ident_rule) and applied by
 * cmdb.ingest_batch; a type without a list of its own follows its parent's.
 * A rule is a spec "KIND" or "KIND:OPTION" ("mac:universal": locally
 * administered MACs do not match). The built-in kinds (serial, uuid, mac,
 * fqdn, ip, endpoint) match only through a rule of their own; the kind "*"
 * stands for the kinds of your own without a rule, in the order a record
 * gives them. Junk values never match, whatever the rules say.
 *
 * Every change is one history row (entity ci_type, op rules) with the rules
 * before and after.
 */
#ifndef CMDB_RULES_H
#define CMDB_RULES_H

#include <stddef.h>
#include "cmdb/db.h"
#include "cmdb/rows.h"

/* The rules in force for type, in order: position, kind, options,
 * defined_by (the type whose list applies, "(default)" for none) and what
 * the rule matches. *rows is the caller's; free with cmdb_rows_free. */
cmdb_rc cmdb_rules_list(struct cmdb_db *db, const char *type, struct cmdb_rows **rows,
			struct cmdb_error *err);

/* Replaces type's list with the n specs, most trusted first (n may be 0: no
 * identity matches). */
cmdb_rc cmdb_rules_set(struct cmdb_db *db, const char *type, const char *const *specs, size_t n,
		       struct cmdb_error *err);

/* Resets type's list: a built-in type gets its built-in rules back, a type
 * of your own follows its parent's again. */
cmdb_rc cmdb_rules_reset(struct cmdb_db *db, const char *type, struct cmdb_error *err);

enum cmdb_rules_op { CMDB_RULES_ADD, CMDB_RULES_RM, CMDB_RULES_MOVE };

/* One edit of the rules in force: add spec at position at (1-based; 0: at
 * the end), rm the rule of spec's kind, or move it to position at. Editing
 * an inherited list gives the type a list of its own. */
cmdb_rc cmdb_rules_edit(struct cmdb_db *db, const char *type, enum cmdb_rules_op op,
			const char *spec, int at, struct cmdb_error *err);

#endif
