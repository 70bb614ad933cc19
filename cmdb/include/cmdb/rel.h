/*
 * Relationships between CIs: typed, directed, unique per (type, source,
 * target) at any time, never deleted (ending one keeps it readable as of
 * the past).
 */
#ifndef CMDB_REL_H
#define CMDB_REL_H

#include <stdint.h>
#include <jansson.h>
#include "cmdb/db.h"
#include "cmdb/rows.h"

enum cmdb_direction { CMDB_DIR_BOTH, CMDB_DIR_OUT, CMDB_DIR_IN };

cmdb_rc cmdb_rel_add(struct cmdb_db *db, int64_t source, const char *type, int64_t target,
		     const json_t *attrs, int64_t *id, struct cmdb_error *err);
cmdb_rc cmdb_rel_rm(struct cmdb_db *db, int64_t source, const char *type, int64_t target,
		    struct cmdb_error *err);
/* Relationships of one CI, now or as of a time. */
cmdb_rc cmdb_rel_list(struct cmdb_db *db, int64_t id, enum cmdb_direction dir, const char *as_of,
		      struct cmdb_rows **rows, struct cmdb_error *err);
/* Relationship types with their labels and impact propagation. */
cmdb_rc cmdb_rel_types(struct cmdb_db *db, struct cmdb_rows **rows, struct cmdb_error *err);

#endif
