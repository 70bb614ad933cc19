/*
 * A result table: rows and named, typed columns, as read from the CMDB.
 * Values are borrowed from the table and live until cmdb_rows_free.
 */
#ifndef CMDB_ROWS_H
#define CMDB_ROWS_H

#include <stdbool.h>

struct cmdb_rows;

enum cmdb_col_type {
	CMDB_COL_TEXT,
	CMDB_COL_INT,
	CMDB_COL_NUMBER,
	CMDB_COL_BOOL, /* value is "t" or "f" */
	CMDB_COL_JSON, /* value is JSON text */
	CMDB_COL_TEXT_ARRAY, /* value is a PostgreSQL array literal */
};

int cmdb_rows_count(const struct cmdb_rows *r);
int cmdb_rows_columns(const struct cmdb_rows *r);
const char *cmdb_rows_column_name(const struct cmdb_rows *r, int col);
enum cmdb_col_type cmdb_rows_column_type(const struct cmdb_rows *r, int col);
/* NULL for SQL NULL. */
const char *cmdb_rows_value(const struct cmdb_rows *r, int row, int col);
/* Index of the named column, or -1. */
int cmdb_rows_column_index(const struct cmdb_rows *r, const char *name);
void cmdb_rows_free(struct cmdb_rows *r);

#endif
