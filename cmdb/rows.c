/*
 * cmdb_rows: a PGresult behind the public result-table interface, with
 * column types mapped from PostgreSQL's type OIDs.
 */
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* Built-in type OIDs (pg_type.dat); stable across PostgreSQL versions. */
enum {
	OID_BOOL = 16,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_JSON = 114,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701,
	OID_TEXT_ARRAY = 1009,
	OID_NUMERIC = 1700,
	OID_JSONB = 3802,
};

struct cmdb_rows {
	PGresult *res;
};

struct cmdb_rows *cmdb_rows_wrap(PGresult *res)
{
	struct cmdb_rows *r = malloc(sizeof(*r));

	if (!r) {
		PQclear(res);
		return NULL;
	}
	r->res = res;
	return r;
}

int cmdb_rows_count(const struct cmdb_rows *r)
{
	return PQntuples(r->res);
}

int cmdb_rows_columns(const struct cmdb_rows *r)
{
	return PQnfields(r->res);
}

const char *cmdb_rows_column_name(const struct cmdb_rows *r, int col)
{
	return PQfname(r->res, col);
}

enum cmdb_col_type cmdb_rows_column_type(const struct cmdb_rows *r, int col)
{
	switch (PQftype(r->res, col)) {
	case OID_BOOL:
		return CMDB_COL_BOOL;
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
		return CMDB_COL_INT;
	case OID_FLOAT4:
	case OID_FLOAT8:
	case OID_NUMERIC:
		return CMDB_COL_NUMBER;
	case OID_JSON:
	case OID_JSONB:
		return CMDB_COL_JSON;
	case OID_TEXT_ARRAY:
		return CMDB_COL_TEXT_ARRAY;
	default:
		return CMDB_COL_TEXT;
	}
}

const char *cmdb_rows_value(const struct cmdb_rows *r, int row, int col)
{
	if (PQgetisnull(r->res, row, col))
		return NULL;
	return PQgetvalue(r->res, row, col);
}

int cmdb_rows_column_index(const struct cmdb_rows *r, const char *name)
{
	int n = PQnfields(r->res);

	for (int i = 0; i < n; i++)
		if (strcmp(PQfname(r->res, i), name) == 0)
			return i;
	return -1;
}

void cmdb_rows_free(struct cmdb_rows *r)
{
	if (!r)
		return;
	PQclear(r->res);
	free(r);
}
