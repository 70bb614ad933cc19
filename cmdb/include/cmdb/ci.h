/*
 * Configuration items: create, find, read (now or as of a past time),
 * change, retire, and read their history.
 *
 * Every change goes through the database's own API functions and triggers,
 * which validate it and record it in the hash-chained history.
 */
#ifndef CMDB_CI_H
#define CMDB_CI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "cmdb/db.h"
#include "cmdb/rows.h"

struct cmdb_ci_new {
	const char *type;
	const char *name;
	const char *description;
	const char *status;      /* NULL: live */
	const char *criticality; /* NULL: medium */
	const char *owner;       /* may be NULL */
	const json_t *attributes; /* object or NULL; borrowed */
	const json_t *identities; /* array of {"kind": K, "value": V} or NULL; borrowed */
};

/* Creates a CI with its identities in one transaction; *id gets its id. */
cmdb_rc cmdb_ci_add(struct cmdb_db *db, const struct cmdb_ci_new *ci, int64_t *id,
		    struct cmdb_error *err);

/* Finds one CI from a reference: an id ("42" or "id:42"), a name ("web01" or
 * "name:web01"), or an identity ("mac=00:11:22:33:44:55"). A name held by
 * several CIs is CMDB_EAMBIGUOUS with the candidates listed in the message. */
cmdb_rc cmdb_ci_resolve(struct cmdb_db *db, const char *ref, int64_t *id, struct cmdb_error *err);
/* True when REF is an id ("42" or "id:42") that fits in an int64, with the id
 * in *id: commands that report an unknown id themselves need no lookup. */
bool cmdb_ci_ref_id(const char *ref, int64_t *id);

struct cmdb_ci_filter {
	const char *type;      /* this type and its subtypes, or NULL */
	const char *status;    /* or NULL */
	const json_t *attrs;   /* object the attributes must contain, or NULL; borrowed */
	const char *name_glob; /* shell glob (* ? and \ escapes), or NULL */
	const char *as_of;     /* a time (see cmdb.parse_time), or NULL for now */
	const char *stale;     /* an interval: seen, but not for that long; or NULL */
	bool missing;          /* only CIs a complete scan expected and did not see */
	long limit;            /* 0: no limit */
};

/* Lists CIs by id. *rows is the caller's; free with cmdb_rows_free. */
cmdb_rc cmdb_ci_list(struct cmdb_db *db, const struct cmdb_ci_filter *f, struct cmdb_rows **rows,
		     struct cmdb_error *err);

/* One CI with its attributes, identities and relationships both ways, now or
 * as of a time. *out is a new JSON object reference: json_decref it. */
cmdb_rc cmdb_ci_show(struct cmdb_db *db, int64_t id, const char *as_of, json_t **out,
		     struct cmdb_error *err);

struct cmdb_ci_change {
	const char *name; /* each NULL field stays as it is */
	const char *description;
	const char *status;
	const char *criticality;
	const char *owner;        /* "" removes the owner */
	const json_t *set_attrs;  /* object merged into the attributes, or NULL */
	const char *const *unset; /* attribute names to remove */
	size_t n_unset;
};

cmdb_rc cmdb_ci_set(struct cmdb_db *db, int64_t id, const struct cmdb_ci_change *c,
		    struct cmdb_error *err);

/* Moves a CI to status retired, recording reason in its history. */
cmdb_rc cmdb_ci_retire(struct cmdb_db *db, int64_t id, const char *reason, struct cmdb_error *err);

/* Adds or ends one identity of a CI. */
cmdb_rc cmdb_ci_identity_add(struct cmdb_db *db, int64_t id, const char *kind, const char *value,
			     struct cmdb_error *err);
cmdb_rc cmdb_ci_identity_remove(struct cmdb_db *db, int64_t id, const char *kind,
				const char *value, struct cmdb_error *err);

/* Every recorded change of a CI (its own and its relationships'), oldest first. */
cmdb_rc cmdb_ci_history(struct cmdb_db *db, int64_t id, struct cmdb_rows **rows,
			struct cmdb_error *err);

#endif
