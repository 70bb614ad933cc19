/*
 * Test support: a fresh database per test file on the shared throwaway
 * server that the ctest fixture started (CMDB_TEST_HOME), migrated and
 * opened through libcmdb.
 */
#ifndef CMDB_TEST_TESTDB_H
#define CMDB_TEST_TESTDB_H

#include <stddef.h>
#include "cmdb/db.h"

/* Drops and creates database `name` and returns its conninfo in buf. Aborts
 * the test program when the server is not there (a broken fixture). */
void testdb_create(const char *name, char *conninfo, size_t len);

/* Opens conninfo with the given access (migrating first if needed). */
struct cmdb_db *testdb_open(const char *conninfo, enum cmdb_access access);

/* Runs SQL as the server's superuser on database `name`; returns 0 or -1 and
 * copies the server's message into msg. */
int testdb_sql(const char *conninfo, const char *sql, char *msg, size_t len);

#endif
