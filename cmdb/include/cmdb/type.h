/*
 * CI types: the built-in ones and those users add, with a parent, required
 * attributes and whether changes to their CIs need a change reference.
 */
#ifndef CMDB_TYPE_H
#define CMDB_TYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "cmdb/db.h"
#include "cmdb/rows.h"

struct cmdb_type_new {
	const char *name;
	const char *parent; /* or NULL */
	const char *description;
	const char *const *required; /* attribute names every CI of the type must have */
	size_t n_required;
	bool change_controlled;
};

cmdb_rc cmdb_type_add(struct cmdb_db *db, const struct cmdb_type_new *t, struct cmdb_error *err);
cmdb_rc cmdb_type_list(struct cmdb_db *db, struct cmdb_rows **rows, struct cmdb_error *err);
/* *out: new reference to an object describing the type. */
cmdb_rc cmdb_type_show(struct cmdb_db *db, const char *name, json_t **out, struct cmdb_error *err);

#endif
