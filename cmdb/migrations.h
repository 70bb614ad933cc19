/* The schema migrations compiled into the library (generated from schema/). */
#ifndef CMDB_MIGRATIONS_H
#define CMDB_MIGRATIONS_H

struct cmdb_migration {
	int version;
	const char *name;
	const char *sql;
	const char *sha256; /* hex digest of the file */
};

extern const struct cmdb_migration cmdb_migrations[];
extern const int cmdb_migrations_count;

#endif
