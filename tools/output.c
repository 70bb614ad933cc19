/*
 * Result tables in the three output formats:
 *   table  aligned columns for a person at a terminal; control characters
 *          in values are shown escaped, long cells are cut;
 *   json   an array of objects with stable field names and JSON types
 *          (numbers, booleans, nested JSON, arrays, null);
 *   csv    RFC 4180: a header row, CRLF line ends, quotes doubled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

#define CELL_MAX 60 /* table cells longer than this many characters are cut */

char *cli_printable(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			sprintf(o, "\\x%02x", *p);
			o += 4;
		} else {
			*o++ = (char)*p;
		}
	}
	*o = '\0';
	return out;
}

/* Display width of UTF-8 text in code points (terminals show most
 * characters one cell wide; good enough for aligning names). */
static size_t utf8_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* The first max code points of s, with an ellipsis when cut. Caller frees. */
static char *cut(const char *s, size_t max)
{
	size_t w = 0;
	const char *p = s;
	char *out;

	if (utf8_width(s) <= max)
		return strdup(s);
	for (; *p; p++) {
		if (((unsigned char)*p & 0xc0) != 0x80) {
			if (w == max - 1)
				break;
			w++;
		}
	}
	out = malloc((size_t)(p - s) + 4);
	if (!out)
		return NULL;
	memcpy(out, s, (size_t)(p - s));
	memcpy(out + (p - s), "\xe2\x80\xa6", 4); /* … */
	return out;
}

/* A PostgreSQL text[] literal as a JSON array of strings. Returns a new
 * reference, or NULL when the literal is not one we understand. */
static json_t *pg_array_to_json(const char *s)
{
	json_t *arr;
	char *buf;

	if (*s != '{')
		return NULL;
	arr = json_array();
	buf = malloc(strlen(s) + 1);
	if (!arr || !buf)
		goto fail;
	s++;
	while (*s && *s != '}') {
		size_t n = 0;
		bool quoted = *s == '"';

		if (quoted) {
			for (s++; *s && *s != '"'; s++) {
				if (*s == '\\' && s[1])
					s++;
				buf[n++] = *s;
			}
			if (*s != '"')
				goto fail;
			s++;
		} else {
			while (*s && *s != ',' && *s != '}')
				buf[n++] = *s++;
		}
		buf[n] = '\0';
		if (!quoted && strcmp(buf, "NULL") == 0)
			json_array_append_new(arr, json_null());
		else
			json_array_append_new(arr, json_stringn(buf, n));
		if (*s == ',')
			s++;
	}
	free(buf);
	return arr;
fail:
	free(buf);
	json_decref(arr);
	return NULL;
}

static json_t *cell_json(const struct cmdb_rows *rows, int r, int c)
{
	const char *v = cmdb_rows_value(rows, r, c);
	json_t *j = NULL;

	if (!v)
		return json_null();
	switch (cmdb_rows_column_type(rows, c)) {
	case CMDB_COL_INT:
		return json_integer(strtoll(v, NULL, 10));
	case CMDB_COL_NUMBER:
		return json_real(strtod(v, NULL));
	case CMDB_COL_BOOL:
		return json_boolean(v[0] == 't');
	case CMDB_COL_JSON:
		j = json_loads(v, JSON_DECODE_ANY, NULL);
		break;
	case CMDB_COL_TEXT_ARRAY:
		j = pg_array_to_json(v);
		break;
	case CMDB_COL_TEXT:
		break;
	}
	return j ? j : json_string(v);
}

static int print_json_rows(const struct cmdb_rows *rows)
{
	json_t *arr = json_array();
	int code;

	for (int r = 0; r < cmdb_rows_count(rows); r++) {
		json_t *obj = json_object();

		for (int c = 0; c < cmdb_rows_columns(rows); c++)
			json_object_set_new(obj, cmdb_rows_column_name(rows, c), cell_json(rows, r, c));
		json_array_append_new(arr, obj);
	}
	code = cli_print_json(arr);
	json_decref(arr);
	return code;
}

static void csv_field(const char *v)
{
	if (!strpbrk(v, ",\"\r\n")) {
		fputs(v, stdout);
		return;
	}
	fputc('"', stdout);
	for (; *v; v++) {
		if (*v == '"')
			fputc('"', stdout);
		fputc(*v, stdout);
	}
	fputc('"', stdout);
}

/* Arrays become JSON text in CSV, as in the JSON format. */
static void csv_cell(const struct cmdb_rows *rows, int r, int c)
{
	const char *v = cmdb_rows_value(rows, r, c);
	json_t *arr;
	char *text;

	if (!v)
		return;
	if (cmdb_rows_column_type(rows, c) == CMDB_COL_BOOL) {
		fputs(v[0] == 't' ? "true" : "false", stdout);
		return;
	}
	if (cmdb_rows_column_type(rows, c) == CMDB_COL_TEXT_ARRAY && (arr = pg_array_to_json(v))) {
		text = json_dumps(arr, JSON_COMPACT);
		json_decref(arr);
		if (text) {
			csv_field(text);
			free(text);
			return;
		}
	}
	csv_field(v);
}

static int print_csv_rows(const struct cmdb_rows *rows)
{
	int ncols = cmdb_rows_columns(rows);

	for (int c = 0; c < ncols; c++) {
		if (c)
			fputc(',', stdout);
		csv_field(cmdb_rows_column_name(rows, c));
	}
	fputs("\r\n", stdout);
	for (int r = 0; r < cmdb_rows_count(rows); r++) {
		for (int c = 0; c < ncols; c++) {
			if (c)
				fputc(',', stdout);
			csv_cell(rows, r, c);
		}
		fputs("\r\n", stdout);
	}
	return EXIT_OK;
}

static char *table_cell(const struct cmdb_rows *rows, int r, int c)
{
	const char *v = cmdb_rows_value(rows, r, c);
	char *printable, *out;

	if (!v)
		return strdup("");
	if (cmdb_rows_column_type(rows, c) == CMDB_COL_BOOL)
		return strdup(v[0] == 't' ? "yes" : "no");
	printable = cli_printable(v);
	if (!printable)
		return NULL;
	out = cut(printable, CELL_MAX);
	free(printable);
	return out;
}

static int print_table_rows(const struct cmdb_rows *rows, const char *const *want)
{
	int cols[64], ncols = 0, nrows = cmdb_rows_count(rows);
	size_t width[64];
	char **cells;

	if (want) {
		for (; *want && ncols < 64; want++) {
			int i = cmdb_rows_column_index(rows, *want);
			if (i >= 0)
				cols[ncols++] = i;
		}
	} else {
		for (int c = 0; c < cmdb_rows_columns(rows) && c < 64; c++)
			cols[ncols++] = c;
	}
	cells = calloc((size_t)nrows * (size_t)ncols + 1, sizeof(*cells));
	if (!cells)
		return cli_fail("out of memory");
	for (int c = 0; c < ncols; c++)
		width[c] = utf8_width(cmdb_rows_column_name(rows, cols[c]));
	for (int r = 0; r < nrows; r++) {
		for (int c = 0; c < ncols; c++) {
			char *cell = table_cell(rows, r, cols[c]);
			size_t w = cell ? utf8_width(cell) : 0;

			cells[r * ncols + c] = cell;
			if (w > width[c])
				width[c] = w;
		}
	}
	for (int c = 0; c < ncols; c++) {
		const char *name = cmdb_rows_column_name(rows, cols[c]);
		for (const char *p = name; *p; p++)
			fputc(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p, stdout);
		if (c + 1 < ncols)
			printf("%*s", (int)(width[c] - utf8_width(name) + 2), "");
	}
	fputc('\n', stdout);
	for (int r = 0; r < nrows; r++) {
		for (int c = 0; c < ncols; c++) {
			const char *cell = cells[r * ncols + c] ? cells[r * ncols + c] : "";
			fputs(cell, stdout);
			if (c + 1 < ncols)
				printf("%*s", (int)(width[c] - utf8_width(cell) + 2), "");
		}
		fputc('\n', stdout);
	}
	for (int i = 0; i < nrows * ncols; i++)
		free(cells[i]);
	free(cells);
	return EXIT_OK;
}

int cli_print_rows(const struct cli *cli, const struct cmdb_rows *rows, const char *const *table_cols)
{
	switch (cli->format) {
	case FMT_JSON:
		return print_json_rows(rows);
	case FMT_CSV:
		return print_csv_rows(rows);
	case FMT_TABLE:
		break;
	}
	return print_table_rows(rows, table_cols);
}
