/*
 * A connection to the CMDB.
 *
 * cmdb_db_open decides where the CMDB is: an explicit connection string, the
 * CMDB_DB variable, libpq's own PG* variables, or else the embedded server
 * under the user's data directory (started on demand, see embedded.h). It
 * then checks the schema: the embedded server is migrated automatically, an
 * external one must be migrated with `cmdb init` / cmdb_db_migrate.
 *
 * Every change made through a cmdb_db is recorded in history with the
 * operating-system user, the source and the change reference set here.
 */
#ifndef CMDB_DB_H
#define CMDB_DB_H

#include <stdbool.h>
#include "cmdb/error.h"

struct cmdb_db;

enum cmdb_access {
	CMDB_ACCESS_READ,  /* runs as cmdb_reader when the login may: cannot change anything */
	CMDB_ACCESS_WRITE, /* runs as cmdb_writer when the login may */
	CMDB_ACCESS_OWNER, /* migrations: the login's own rights */
};

struct cmdb_db_options {
	const char *conninfo;   /* URI, conninfo string or service=NAME; NULL: see above */
	const char *home;       /* embedded home; NULL: CMDB_HOME or the default */
	const char *source;     /* history source, default "cli" */
	const char *change_ref; /* change reference recorded with every change, or NULL */
	const char *app_name;   /* application_name, default "cmdb" */
	enum cmdb_access access;
	bool no_migrate; /* do not migrate the embedded server automatically */
};

/* Opens a connection. On success *out owns it; free with cmdb_db_close. */
cmdb_rc cmdb_db_open(const struct cmdb_db_options *opts, struct cmdb_db **out,
		     struct cmdb_error *err);
void cmdb_db_close(struct cmdb_db *db);

/* True when the connection goes to the embedded server. */
bool cmdb_db_is_embedded(const struct cmdb_db *db);

/* Where the connection goes, without a password, for messages and status. */
const char *cmdb_db_target(const struct cmdb_db *db);

/* Applies every migration the database lacks. *applied (may be NULL) gets
 * how many were applied now. Safe when several processes run it at once. */
cmdb_rc cmdb_db_migrate(struct cmdb_db *db, int *applied, struct cmdb_error *err);

/* The highest applied migration (0 when the schema is absent), and the
 * highest this library knows. */
cmdb_rc cmdb_db_schema_version(struct cmdb_db *db, int *version, struct cmdb_error *err);
int cmdb_schema_latest(void);

/* Transactions around several calls; each call is atomic on its own. */
cmdb_rc cmdb_db_begin(struct cmdb_db *db, struct cmdb_error *err);
cmdb_rc cmdb_db_commit(struct cmdb_db *db, struct cmdb_error *err);
void cmdb_db_rollback(struct cmdb_db *db);

#endif
