/*
 * Shared by the importer tests: a sink that keeps every observation, and a
 * comparison with an expected-output file (data/NAME.expected: one
 * observation per line, keys sorted, as tests/import/import_dump prints
 * them; "@DIR@" stands for a directory the test chooses).
 *
 * Included by one test file each, so everything here is static.
 */
#ifndef IMPORT_TEST_H
#define IMPORT_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmdb/import.h"

struct collected {
	json_t *list;	/* array of copies (owned) */
	size_t fail_at; /* the sink fails on this observation (1-based); 0: never */
};

static cmdb_rc collect(void *ctx, const json_t *obs, struct cmdb_error *err)
{
	struct collected *c = ctx;

	if (c->fail_at && json_array_size(c->list) + 1 == c->fail_at)
		return cmdb_error_set(err, CMDB_EDB, "sink refused observation %zu", c->fail_at);
	assert_int_equal(json_array_append_new(c->list, json_deep_copy(obs)), 0);
	return CMDB_OK;
}

static void collected_init(struct collected *c)
{
	memset(c, 0, sizeof(*c));
	c->list = json_array();
	assert_non_null(c->list);
}

static void collected_release(struct collected *c)
{
	json_decref(c->list);
	c->list = NULL;
}

/* The observation as the expected files write it; free with free(). */
static char *obs_line(const json_t *obs)
{
	char *s = json_dumps(obs, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));

	assert_non_null(s);
	return s;
}

static char *replace_all(const char *line, const char *from, const char *to)
{
	size_t n = 0, lf = strlen(from), lt = strlen(to);
	char *out, *o;
	const char *p;

	for (p = line; (p = strstr(p, from)); p += lf)
		n++;
	out = malloc(strlen(line) + n * lt + 1);
	assert_non_null(out);
	for (o = out, p = line;;) {
		const char *hit = strstr(p, from);

		if (!hit) {
			strcpy(o, p);
			break;
		}
		memcpy(o, p, (size_t)(hit - p));
		o += hit - p;
		memcpy(o, to, lt);
		o += lt;
		p = hit + lf;
	}
	return out;
}

/* Checks the collected observations against data/NAME.expected, line by line. */
static void check_output(const struct collected *c, const char *name, const char *dir)
{
	char path[4096], *line = NULL;
	size_t cap = 0, i = 0;
	ssize_t len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.expected", IMPORT_TEST_DATA, name);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	while ((len = getline(&line, &cap, f)) > 0) {
		char *want, *got;

		if (line[len - 1] == '\n')
			line[--len] = '\0';
		want = replace_all(line, "@DIR@", dir ? dir : "@DIR@");
		if (i >= json_array_size(c->list))
			fail_msg("%s: observation %zu missing: %s", name, i + 1, want);
		got = obs_line(json_array_get(c->list, i));
		if (strcmp(want, got) != 0)
			fail_msg("%s: observation %zu differs\n  want %s\n  got  %s", name, i + 1,
				 want, got);
		free(want);
		free(got);
		i++;
	}
	free(line);
	fclose(f);
	assert_int_equal(json_array_size(c->list), i);
}

static const char *obs_str(const struct collected *c, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(c->list, i), key));
}

/* Every observation of a run carries the same scan id, and the run is
 * framed by scan ... scan_end. */
static void check_framing(const struct collected *c)
{
	size_t n = json_array_size(c->list);
	const char *id;

	assert_true(n >= 2);
	assert_string_equal(obs_str(c, 0, "kind"), "scan");
	assert_string_equal(obs_str(c, n - 1, "kind"), "scan_end");
	id = obs_str(c, 0, "scan_id");
	assert_non_null(id);
	assert_int_equal(strlen(id), 36);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(obs_str(c, i, "scan_id"), id);
		assert_int_equal(
			json_integer_value(json_object_get(json_array_get(c->list, i), "v")), 1);
		assert_int_equal(strlen(obs_str(c, i, "at")), 24);
	}
}

static void data_path(char *out, size_t size, const char *file)
{
	snprintf(out, size, "%s/%s", IMPORT_TEST_DATA, file);
}

#endif
