/*
 * Sources of CI data (manual edits, imports, scanners) with the priorities
 * that decide whose attribute value wins, and the scan runs they ingested.
 */
#ifndef CMDB_SOURCE_H
#define CMDB_SOURCE_H

#include <stdint.h>
#include "cmdb/db.h"
#include "cmdb/rows.h"

cmdb_rc cmdb_source_list(struct cmdb_db *db, struct cmdb_rows **rows, struct cmdb_error *err);
/* Sets a source's priority (0-1000), registering the source if new. */
cmdb_rc cmdb_source_set(struct cmdb_db *db, const char *name, int priority, struct cmdb_error *err);

/* Scan runs, newest first; limit 0 for all. */
cmdb_rc cmdb_scan_list(struct cmdb_db *db, long limit, struct cmdb_rows **rows, struct cmdb_error *err);

/* The CMDB's settings (name, value, description), by name. */
cmdb_rc cmdb_setting_list(struct cmdb_db *db, struct cmdb_rows **rows, struct cmdb_error *err);
/* Sets one; the database checks the value (a duration for
 * observation_retention, ...). CMDB_ENOTFOUND for an unknown name. */
cmdb_rc cmdb_setting_set(struct cmdb_db *db, const char *name, const char *value, struct cmdb_error *err);

/* Every source's claim on one attribute of a CI, the winner first: source,
 * priority, value, when observed, scan, whether it wins and why. */
cmdb_rc cmdb_ci_why(struct cmdb_db *db, int64_t id, const char *attr, struct cmdb_rows **rows,
		    struct cmdb_error *err);

#endif
