/*
 * import_csv: a hand-kept inventory in CSV (RFC 4180) to `ci` observations.
 *
 * Parsing is libcsv's (strict mode: a quote inside an unquoted field, text
 * after a closing quote and an unclosed quote at the end are errors). It is
 * fed one byte at a time so that every row is known by the line it starts
 * on; libcsv's own trimming of blanks is switched off (RFC 4180: spaces are
 * part of a field) and its field buffer is capped, so memory is bounded by
 * one row. libcsv cannot resume after an error, so a malformed row is
 * skipped by starting a fresh parser at the next line.
 *
 * The first row is the header. The name column is required; identity and
 * description columns come from the map or from the header (see
 * cmdb/import.h); every other column with a name is an attribute.
 * A run is framed by `scan` and `scan_end` like any other source, so the
 * ingest sees one run per file; its id is a digest of the file's bytes, so
 * importing the same file twice is the same run.
 */
#include <csv.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "import_internal.h"

#define FIELD_MAX   (64 * 1024)	  /* one field */
#define ROW_MAX	    (1024 * 1024) /* all fields of one row */
#define COLUMNS_MAX 1024

struct identity_col {
	char *kind; /* owned */
	size_t col;
};

struct csvimp {
	struct cmdb_import_run run;
	const struct cmdb_csv_map *map;
	struct csv_parser parser;
	bool parser_live;

	/* the row being read */
	char *field[COLUMNS_MAX + 1]; /* owned; field[i] has field_len[i] bytes plus a NUL */
	size_t field_len[COLUMNS_MAX + 1];
	size_t n_fields; /* may exceed COLUMNS_MAX + 1: those are counted, not kept */
	size_t row_bytes;
	bool row_too_big;
	bool row_started;
	unsigned long row_line;
	unsigned long line;

	/* the header */
	bool have_header;
	size_t n_cols;
	char *col[COLUMNS_MAX]; /* owned; NULL for a column without a name */
	bool is_attribute[COLUMNS_MAX];
	size_t name_col;
	bool has_desc;
	size_t desc_col;
	struct identity_col ids[COLUMNS_MAX];
	size_t n_ids;

	char at[32];
	cmdb_rc rc; /* the first failure inside a libcsv callback */
};

/* libcsv trims these from unquoted fields unless told nothing is a blank. */
static int no_blanks(unsigned char c)
{
	(void)c;
	return 0;
}

/* libcsv grows a field's buffer through this; refusing past FIELD_MAX
 * bounds memory (libcsv then reports CSV_ENOMEM). */
static void *capped_realloc(void *p, size_t n)
{
	return n > FIELD_MAX ? NULL : realloc(p, n);
}

static bool parser_start(struct csvimp *c)
{
	if (csv_init(&c->parser, CSV_STRICT | CSV_STRICT_FINI) != 0)
		return false;
	csv_set_space_func(&c->parser, no_blanks);
	csv_set_realloc_func(&c->parser, capped_realloc);
	c->parser_live = true;
	return true;
}

static void parser_stop(struct csvimp *c)
{
	if (c->parser_live)
		csv_free(&c->parser);
	c->parser_live = false;
}

static void row_clear(struct csvimp *c)
{
	size_t kept = c->n_fields < COLUMNS_MAX + 1 ? c->n_fields : COLUMNS_MAX + 1;

	for (size_t i = 0; i < kept; i++) {
		free(c->field[i]);
		c->field[i] = NULL;
	}
	c->n_fields = 0;
	c->row_bytes = 0;
	c->row_too_big = false;
	c->row_started = false;
}

static void on_field(void *s, size_t len, void *data)
{
	struct csvimp *c = data;
	size_t i = c->n_fields++;

	if (i >= COLUMNS_MAX + 1)
		return;
	if (len > ROW_MAX - c->row_bytes) {
		c->row_too_big = true;
		len = 0;
	}
	c->row_bytes += len;
	c->field[i] = malloc(len + 1); /* freed in row_clear */
	if (!c->field[i]) {
		c->n_fields = i;
		if (c->rc == CMDB_OK)
			c->rc = cmdb_error_set(c->run.err, CMDB_ENOMEM, "%s: out of memory",
					       c->run.name);
		return;
	}
	if (len)
		memcpy(c->field[i], s, len);
	c->field[i][len] = '\0';
	c->field_len[i] = len;
}

static bool field_text_ok(const struct csvimp *c, size_t i)
{
	return cmdb_import_utf8_valid(c->field[i], c->field_len[i]);
}

/* ---- header ---- */

static bool col_eq(const char *col, const char *want)
{
	return col && strcasecmp(col, want) == 0;
}

/* The column named want, exactly or else ignoring ASCII case. */
static bool find_col(const struct csvimp *c, const char *want, size_t *out)
{
	for (size_t i = 0; i < c->n_cols; i++)
		if (c->col[i] && strcmp(c->col[i], want) == 0)
			return (*out = i), true;
	for (size_t i = 0; i < c->n_cols; i++)
		if (col_eq(c->col[i], want))
			return (*out = i), true;
	return false;
}

static cmdb_rc missing_col(struct csvimp *c, const char *what, const char *want)
{
	char list[512] = "";
	size_t o = 0;

	for (size_t i = 0; i < c->n_cols && o < sizeof(list) - 1; i++) {
		int n = snprintf(list + o, sizeof(list) - o, "%s\"%.40s\"", i ? ", " : "",
				 c->col[i] ? c->col[i] : "");

		if (n < 0)
			break;
		o += (size_t)n;
	}
	if (o >= sizeof(list) - 1)
		snprintf(list + sizeof(list) - 5, 5, "...");
	return cmdb_error_set(c->run.err, CMDB_EINVAL,
			      "%s:%lu: the header has no %s column \"%.100s\" (columns: %s)",
			      c->run.name, c->row_line, what, want, list);
}

static cmdb_rc add_identity(struct csvimp *c, const char *kind, size_t kind_len, size_t col)
{
	if (c->n_ids >= COLUMNS_MAX)
		return cmdb_error_set(c->run.err, CMDB_EINVAL, "%s: too many identity columns",
				      c->run.name);
	c->ids[c->n_ids].kind = strndup(kind, kind_len);
	if (!c->ids[c->n_ids].kind)
		return cmdb_error_set(c->run.err, CMDB_ENOMEM, "%s: out of memory", c->run.name);
	c->ids[c->n_ids++].col = col;
	c->is_attribute[col] = false;
	return CMDB_OK;
}

static cmdb_rc send_scan(struct csvimp *c)
{
	json_t *obs = cmdb_import_obs_new(&c->run, "scan", c->at), *options = json_object();

	cmdb_import_set(&c->run, obs, "targets", json_array());
	cmdb_import_set_str(&c->run, options, "importer", "csv");
	cmdb_import_set_text(&c->run, options, "type", c->map->type);
	cmdb_import_set_text(&c->run, options, "file", c->run.name);
	cmdb_import_set(&c->run, obs, "options", options);
	cmdb_import_set_str(&c->run, obs, "started", c->at);
	return cmdb_import_emit(&c->run, obs);
}

static cmdb_rc on_header(struct csvimp *c)
{
	const struct cmdb_csv_map *map = c->map;
	const char *name_col = map->name_column ? map->name_column : "name";
	cmdb_rc rc;

	if (c->n_fields > COLUMNS_MAX)
		return cmdb_error_set(c->run.err, CMDB_EINVAL,
				      "%s:%lu: the header has %zu columns, more than %d",
				      c->run.name, c->row_line, c->n_fields, COLUMNS_MAX);
	if (c->row_too_big)
		return cmdb_error_set(c->run.err, CMDB_EINVAL, "%s:%lu: the header is too long",
				      c->run.name, c->row_line);
	c->n_cols = c->n_fields;
	for (size_t i = 0; i < c->n_cols; i++) {
		if (!field_text_ok(c, i))
			return cmdb_error_set(c->run.err, CMDB_EINVAL,
					      "%s:%lu: column %zu of the header is not valid UTF-8",
					      c->run.name, c->row_line, i + 1);
		/* A column without a name (a spreadsheet's trailing comma) is
		 * read but not kept. */
		if (c->field_len[i] == 0)
			continue;
		for (size_t k = 0; k < i; k++)
			if (c->col[k] && strcmp(c->col[k], c->field[i]) == 0)
				return cmdb_error_set(
					c->run.err, CMDB_EINVAL,
					"%s:%lu: column \"%.100s\" appears twice in the header",
					c->run.name, c->row_line, c->field[i]);
		c->col[i] = c->field[i];
		c->field[i] = NULL; /* moved */
		c->is_attribute[i] = true;
	}
	if (!find_col(c, name_col, &c->name_col))
		return missing_col(c, "name", name_col);
	c->is_attribute[c->name_col] = false;
	if (find_col(c, map->description_column ? map->description_column : "description",
		     &c->desc_col)) {
		c->has_desc = true;
		c->is_attribute[c->desc_col] = false;
	} else if (map->description_column) {
		return missing_col(c, "description", map->description_column);
	}
	/* Identities from the map first (the caller ordered them), then the
	 * header's identity:KIND columns in header order. */
	for (size_t i = 0; i < map->n_identities; i++) {
		const char *e = map->identities[i], *eq = e ? strchr(e, '=') : NULL;
		size_t col;

		if (!eq || eq == e || !eq[1])
			return cmdb_error_set(c->run.err, CMDB_EINVAL,
					      "identity mapping \"%.100s\" is not KIND=COLUMN",
					      e ? e : "(null)");
		if (!find_col(c, eq + 1, &col))
			return missing_col(c, "identity", eq + 1);
		if ((rc = add_identity(c, e, (size_t)(eq - e), col)) != CMDB_OK)
			return rc;
	}
	for (size_t i = 0; i < c->n_cols; i++) {
		if (c->col[i] && strncasecmp(c->col[i], "identity:", 9) == 0 && c->col[i][9] &&
		    i != c->name_col && (!c->has_desc || i != c->desc_col) &&
		    (rc = add_identity(c, c->col[i] + 9, strlen(c->col[i] + 9), i)) != CMDB_OK)
			return rc;
	}
	c->have_header = true;
	return send_scan(c);
}

/* ---- rows ---- */

static bool is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

static cmdb_rc on_data_row(struct csvimp *c)
{
	struct cmdb_import_run *run = &c->run;
	json_t *obs, *ids, *attrs;
	char ref[4096];

	run->stats->records++;
	if (c->row_too_big) {
		cmdb_import_skip(run, c->row_line, "row longer than %d bytes skipped", ROW_MAX);
		return CMDB_OK;
	}
	if (c->n_fields != c->n_cols) {
		cmdb_import_skip(run, c->row_line,
				 "%zu fields where the header has %zu; row skipped", c->n_fields,
				 c->n_cols);
		return CMDB_OK;
	}
	for (size_t i = 0; i < c->n_fields; i++) {
		if (!field_text_ok(c, i)) {
			cmdb_import_skip(
				run, c->row_line,
				"column %zu (\"%.60s\") is not valid UTF-8 or holds a NUL; row "
				"skipped",
				i + 1, c->col[i] ? c->col[i] : "");
			return CMDB_OK;
		}
	}
	if (is_blank(c->field[c->name_col], c->field_len[c->name_col])) {
		cmdb_import_skip(run, c->row_line, "empty name; row skipped");
		return CMDB_OK;
	}
	obs = cmdb_import_obs_new(run, "ci", c->at);
	cmdb_import_set_str(run, obs, "type", c->map->type);
	cmdb_import_set_strn(run, obs, "name", c->field[c->name_col], c->field_len[c->name_col]);
	if (c->has_desc && c->field_len[c->desc_col])
		cmdb_import_set_strn(run, obs, "description", c->field[c->desc_col],
				     c->field_len[c->desc_col]);
	ids = json_array();
	for (size_t k = 0; k < c->n_ids; k++) {
		size_t col = c->ids[k].col;
		json_t *id;

		if (c->field_len[col] == 0)
			continue;
		id = json_object();
		cmdb_import_set_str(run, id, "kind", c->ids[k].kind);
		cmdb_import_set_strn(run, id, "value", c->field[col], c->field_len[col]);
		if (!id || json_array_append_new(ids, id) != 0)
			run->oom = true;
	}
	if (json_array_size(ids) > 0)
		cmdb_import_set(run, obs, "identities", ids);
	else
		json_decref(ids);
	attrs = json_object();
	for (size_t i = 0; i < c->n_cols; i++)
		if (c->is_attribute[i] && c->field_len[i])
			cmdb_import_set_strn(run, attrs, c->col[i], c->field[i], c->field_len[i]);
	if (json_object_size(attrs) > 0)
		cmdb_import_set(run, obs, "attributes", attrs);
	else
		json_decref(attrs);
	snprintf(ref, sizeof(ref), "%s:%lu", run->name, c->row_line);
	cmdb_import_set_text(run, obs, "source_ref", ref);
	return cmdb_import_emit(run, obs);
}

static void on_row(int term, void *data)
{
	struct csvimp *c = data;

	(void)term;
	if (c->rc == CMDB_OK)
		c->rc = c->have_header ? on_data_row(c) : on_header(c);
	row_clear(c);
}

/* libcsv stopped on the row being read: skip it and resume at the next
 * line with a fresh parser. */
static cmdb_rc parse_failed(struct csvimp *c, bool at_end, bool *skip_to_eol)
{
	int e = csv_error(&c->parser);
	unsigned long line = c->row_line ? c->row_line : c->line;

	if (e == CSV_ENOMEM && csv_get_buffer_size(&c->parser) + 2 * 128 < FIELD_MAX)
		return cmdb_error_set(c->run.err, CMDB_ENOMEM, "%s: out of memory", c->run.name);
	if (!c->have_header)
		return cmdb_error_set(c->run.err, CMDB_EINVAL,
				      "%s:%lu: the header row is malformed: %s", c->run.name, line,
				      e == CSV_EPARSE ? "misplaced quote (RFC 4180)"
						      : "field too long");
	c->run.stats->records++;
	if (e != CSV_EPARSE)
		cmdb_import_skip(&c->run, line, "a field longer than %d bytes; row skipped",
				 FIELD_MAX);
	else if (at_end)
		cmdb_import_skip(&c->run, line,
				 "quoted field not closed at the end of the file; row "
				 "skipped");
	else
		cmdb_import_skip(&c->run, line,
				 "misplaced quote (RFC 4180: quotes only around a whole "
				 "field, doubled inside it); row skipped");
	row_clear(c);
	parser_stop(c);
	if (!parser_start(c))
		return cmdb_error_set(c->run.err, CMDB_ENOMEM, "%s: out of memory", c->run.name);
	*skip_to_eol = true;
	return CMDB_OK;
}

static cmdb_rc read_all(struct csvimp *c, FILE *f)
{
	unsigned char buf[65536];
	size_t n, start = 0;
	bool skip_to_eol = false, first = true;
	cmdb_rc rc;

	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		start = 0;
		/* A UTF-8 byte order mark, as spreadsheets write, is not data. */
		if (first && n >= 3 && buf[0] == 0xef && buf[1] == 0xbb && buf[2] == 0xbf)
			start = 3;
		first = false;
		for (size_t i = start; i < n; i++) {
			unsigned char b = buf[i];

			if (skip_to_eol) {
				if (b == '\n') {
					skip_to_eol = false;
					c->line++;
				}
				continue;
			}
			if (!c->row_started && b != '\r' && b != '\n') {
				c->row_started = true;
				c->row_line = c->line;
			}
			if (csv_parse(&c->parser, &b, 1, on_field, on_row, c) != 1 &&
			    c->rc == CMDB_OK &&
			    (rc = parse_failed(c, false, &skip_to_eol)) != CMDB_OK)
				return rc;
			if (c->rc != CMDB_OK)
				return c->rc;
			/* The newline that ended a skipped row ends the skip too. */
			if (b == '\n') {
				c->line++;
				skip_to_eol = false;
			}
		}
	}
	if (ferror(f))
		return cmdb_error_set(c->run.err, CMDB_ESYS, "%s:%lu: read error: %s", c->run.name,
				      c->line, strerror(errno));
	if (!skip_to_eol && csv_fini(&c->parser, on_field, on_row, c) != 0 && c->rc == CMDB_OK &&
	    (rc = parse_failed(c, true, &skip_to_eol)) != CMDB_OK)
		return rc;
	if (c->rc != CMDB_OK)
		return c->rc;
	if (!c->have_header)
		return cmdb_error_set(c->run.err, CMDB_EINVAL, "%s: empty file: no header row",
				      c->run.name);
	return CMDB_OK;
}

cmdb_rc cmdb_import_csv_stream(FILE *f, const char *name, const struct cmdb_csv_map *map,
			       cmdb_obs_sink sink, void *ctx, struct cmdb_import_stats *stats,
			       struct cmdb_error *err)
{
	struct cmdb_import_stats local;
	struct cmdb_import_digest d;
	struct csvimp *c = calloc(1, sizeof(*c)); /* large: on the heap, freed below */
	struct stat st;
	json_t *end;
	cmdb_rc rc;

	if (!c) {
		if (stats)
			memset(stats, 0, sizeof(*stats));
		return cmdb_error_set(err, CMDB_ENOMEM, "%s: out of memory", name);
	}
	cmdb_import_run_init(&c->run, name, sink, ctx, stats, &local, err);
	c->map = map;
	c->line = 1;
	if (!map || !map->type || !*map->type) {
		rc = cmdb_error_set(c->run.err, CMDB_EINVAL, "%s: no CI type given for the rows",
				    name);
		goto out;
	}
	/* An inventory is as of its last change; a pipe is as of now. */
	if (!(fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
	      cmdb_import_time_str((int64_t)st.st_mtim.tv_sec, (int)(st.st_mtim.tv_nsec / 1000000),
				   c->at)))
		cmdb_import_time_now(c->at);
	cmdb_import_digest_init(&d);
	cmdb_import_digest_add(&d, "csv", 4);
	cmdb_import_digest_add(&d, map->type, strlen(map->type) + 1);
	if (!cmdb_import_digest_stream(&d, f)) {
		cmdb_import_digest_add(&d, name, strlen(name));
		cmdb_import_digest_add(&d, c->at, strlen(c->at));
	}
	cmdb_import_digest_uuid(&d, c->run.scan_id);
	if (!parser_start(c)) {
		rc = cmdb_error_set(c->run.err, CMDB_ENOMEM, "%s: out of memory", name);
		goto out;
	}
	if ((rc = read_all(c, f)) != CMDB_OK)
		goto out;
	end = cmdb_import_obs_new(&c->run, "scan_end", c->at);
	cmdb_import_set(&c->run, end, "complete", json_true());
	rc = cmdb_import_emit(&c->run, end);
out:
	parser_stop(c);
	row_clear(c);
	for (size_t i = 0; i < c->n_cols; i++)
		free(c->col[i]);
	for (size_t i = 0; i < c->n_ids; i++)
		free(c->ids[i].kind);
	free(c);
	return rc;
}

cmdb_rc cmdb_import_csv(const char *path, const struct cmdb_csv_map *map, cmdb_obs_sink sink,
			void *ctx, struct cmdb_import_stats *stats, struct cmdb_error *err)
{
	FILE *f = fopen(path, "rb");
	cmdb_rc rc;

	if (!f) {
		if (stats)
			memset(stats, 0, sizeof(*stats));
		return cmdb_error_set(err, CMDB_ESYS, "%s: cannot open: %s", path, strerror(errno));
	}
	rc = cmdb_import_csv_stream(f, path, map, sink, ctx, stats, err);
	fclose(f);
	return rc;
}
