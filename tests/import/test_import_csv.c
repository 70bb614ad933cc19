/*
 * CSV inventory importer: fixtures with the RFC 4180 corners (quotes,
 * doubled quotes, CRLF and LF, newlines inside quotes, a byte order mark, no
 * final newline) and hostile rows, checked observation by observation
 * against data/NAME.expected. The fixtures are copied to a temporary
 * directory with a fixed modification time, which is the `at` of an
 * inventory.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "import_test.h"
#include "import_internal.h"

static char tmp_dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/cmdb-import-csv-XXXXXX");
	return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Writes bytes to tmp_dir/name with the fixed time; path receives it. */
static void write_file(const char *name, const void *bytes, size_t len, char *path, size_t size)
{
	/* 2025-01-02T03:04:05.678Z */
	const struct timespec times[2] = {{1735787045, 678000000}, {1735787045, 678000000}};
	FILE *f;

	snprintf(path, size, "%s/%s", tmp_dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void copy_fixture(const char *file, char *path, size_t size)
{
	char src[4096], buf[65536];
	size_t n;
	FILE *f;

	data_path(src, sizeof(src), file);
	f = fopen(src, "rb");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	assert_true(feof(f));
	fclose(f);
	write_file(file, buf, n, path, size);
}

static cmdb_rc import_map(const char *file, const struct cmdb_csv_map *map, struct collected *c,
			  struct cmdb_import_stats *st, struct cmdb_error *err)
{
	char path[4096];

	copy_fixture(file, path, sizeof(path));
	collected_init(c);
	return cmdb_import_csv(path, map, collect, c, st, err);
}

static cmdb_rc import(const char *file, struct collected *c, struct cmdb_import_stats *st,
		      struct cmdb_error *err)
{
	const struct cmdb_csv_map map = {.type = "host"};

	return import_map(file, &map, c, st, err);
}

static cmdb_rc import_text(const char *text, const struct cmdb_csv_map *map, struct collected *c,
			   struct cmdb_import_stats *st, struct cmdb_error *err)
{
	char path[4096];

	write_file("mem.csv", text, strlen(text), path, sizeof(path));
	collected_init(c);
	return cmdb_import_csv(path, map, collect, c, st, err);
}

static void test_crlf_quotes_embedded_newline(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;

	(void)state;
	assert_int_equal(import("inventory_crlf.csv", &c, &st, &err), CMDB_OK);
	check_output(&c, "inventory_crlf", tmp_dir);
	check_framing(&c);
	assert_int_equal(st.records, 3);
	assert_int_equal(st.observations, 5);
	assert_int_equal(st.skipped, 0);
	collected_release(&c);
}

/* BOM, LF, spaces kept, empty and blank names, wrong field counts, a blank
 * line, no final newline. */
static void test_bom_lf_and_bad_rows(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;
	char want[512];

	(void)state;
	assert_int_equal(import("inventory_lf_bom.csv", &c, &st, &err), CMDB_OK);
	check_output(&c, "inventory_lf_bom", tmp_dir);
	assert_int_equal(st.records, 8);
	assert_int_equal(st.skipped, 4);
	snprintf(want, sizeof(want), "%s/inventory_lf_bom.csv:3: empty name; row skipped", tmp_dir);
	assert_string_equal(st.first_skip, want);
	collected_release(&c);
}

static void test_hostile_rows(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;
	char want[512];

	(void)state;
	assert_int_equal(import("inventory_hostile.csv", &c, &st, &err), CMDB_OK);
	check_output(&c, "inventory_hostile", tmp_dir);
	assert_int_equal(st.records, 8);
	assert_int_equal(st.skipped, 6);
	snprintf(want, sizeof(want),
		 "%s/inventory_hostile.csv:3: column 1 (\"name\") is not valid UTF-8 or holds a "
		 "NUL; "
		 "row skipped",
		 tmp_dir);
	assert_string_equal(st.first_skip, want);
	collected_release(&c);
}

/* Each reason a row is skipped, with the line the row starts on. */
static void test_each_skip_reason(void **state)
{
	static const struct {
		const char *text, *reason;
	} cases[] = {
		{"name,os\nok,a\nx,\"a\"b\nok2,c\n",
		 "mem.csv:3: misplaced quote (RFC 4180: quotes only around a whole field, doubled "
		 "inside it); row skipped"},
		{"name,os\nok,a\nx,\"multi\nline\n",
		 "mem.csv:3: quoted field not closed at the end of the file; row skipped"},
		{"name,os\nok,a\n\"x\ny\",a,b\n",
		 "mem.csv:3: 3 fields where the header has 2; row skipped"},
		{"name,os\nok,a\n \t,a\n", "mem.csv:3: empty name; row skipped"},
		{"name,os\nok,a\nx,\xc3\x28\n",
		 "mem.csv:3: column 2 (\"os\") is not valid UTF-8 or holds a NUL; row skipped"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct cmdb_csv_map map = {.type = "host"};
		struct collected c;
		struct cmdb_import_stats st;
		struct cmdb_error err;
		char want[512];

		assert_int_equal(import_text(cases[i].text, &map, &c, &st, &err), CMDB_OK);
		assert_int_equal(st.skipped, 1);
		snprintf(want, sizeof(want), "%s/%s", tmp_dir, cases[i].reason);
		assert_string_equal(st.first_skip, want);
		/* The good row before is always there. */
		assert_string_equal(obs_str(&c, 1, "name"), "ok");
		check_framing(&c);
		collected_release(&c);
	}
}

static void test_field_too_long(void **state)
{
	const struct cmdb_csv_map map = {.type = "host"};
	size_t big = 70 * 1024;
	char *text = malloc(big + 64);
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;
	char want[512];

	(void)state;
	assert_non_null(text);
	strcpy(text, "name,notes\nbig,\"");
	memset(text + strlen(text), 'x', big);
	strcpy(text + 16 + big, "\"\nafter,ok\n");
	assert_int_equal(import_text(text, &map, &c, &st, &err), CMDB_OK);
	assert_int_equal(st.skipped, 1);
	snprintf(want, sizeof(want), "%s/mem.csv:2: a field longer than 65536 bytes; row skipped",
		 tmp_dir);
	assert_string_equal(st.first_skip, want);
	assert_int_equal(json_array_size(c.list), 3);
	assert_string_equal(obs_str(&c, 1, "name"), "after");
	free(text);
	collected_release(&c);
}

/* Columns named by the map; identities in the map's order, empty ones left
 * out; mapped columns are not attributes. */
static void test_mapped_columns(void **state)
{
	const char *const ids[] = {"serial=Serial Number", "asset_tag=Asset Tag"};
	const struct cmdb_csv_map map = {
		.type = "server", .name_column = "Hostname", .identities = ids, .n_identities = 2};
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;
	char want[1024], *got;

	(void)state;
	assert_int_equal(import_map("inventory_mapped.csv", &map, &c, &st, &err), CMDB_OK);
	assert_int_equal(json_array_size(c.list), 4);
	json_object_del(json_array_get(c.list, 1), "scan_id");
	got = obs_line(json_array_get(c.list, 1));
	snprintf(
		want, sizeof(want),
		"{\"at\":\"2025-01-02T03:04:05.678Z\",\"attributes\":{\"Notes\":\"n1\"},"
		"\"identities\":[{\"kind\":\"serial\",\"value\":\"SER-A\"},{\"kind\":\"asset_tag\","
		"\"value\":\"AT-1\"}],\"kind\":\"ci\",\"name\":\"srv-a\",\"source_ref\":"
		"\"%s/inventory_mapped.csv:2\",\"type\":\"server\",\"v\":1}",
		tmp_dir);
	assert_string_equal(got, want);
	free(got);
	json_object_del(json_array_get(c.list, 2), "scan_id");
	got = obs_line(json_array_get(c.list, 2));
	snprintf(want, sizeof(want),
		 "{\"at\":\"2025-01-02T03:04:05.678Z\",\"identities\":[{\"kind\":\"asset_tag\","
		 "\"value\":\"AT-2\"}],\"kind\":\"ci\",\"name\":\"srv-b\",\"source_ref\":"
		 "\"%s/inventory_mapped.csv:3\",\"type\":\"server\",\"v\":1}",
		 tmp_dir);
	assert_string_equal(got, want);
	free(got);
	collected_release(&c);
}

/* What cannot be read at all is an error naming the file and the problem. */
static void test_fatal_errors(void **state)
{
	const char *const bad_id[] = {"serial"};
	const char *const missing_id[] = {"serial=Serial"};
	const struct {
		const char *text;
		struct cmdb_csv_map map;
		const char *msg;
	} cases[] = {
		{"hostname,description\nweb01,x\n",
		 {.type = "host"},
		 "mem.csv:1: the header has no name column \"name\" (columns: \"hostname\", "
		 "\"description\")"},
		{"", {.type = "host"}, "mem.csv: empty file: no header row"},
		{"\n\n", {.type = "host"}, "mem.csv: empty file: no header row"},
		{"name,os,os\n",
		 {.type = "host"},
		 "mem.csv:1: column \"os\" appears twice in the header"},
		{"name,\xff\n",
		 {.type = "host"},
		 "mem.csv:1: column 2 of the header is not valid UTF-8"},
		{"na\"me\n",
		 {.type = "host"},
		 "mem.csv:1: the header row is malformed: misplaced quote (RFC 4180)"},
		{"name\nx\n",
		 {.type = "host", .identities = bad_id, .n_identities = 1},
		 "identity mapping \"serial\" is not KIND=COLUMN"},
		{"name\nx\n",
		 {.type = "host", .identities = missing_id, .n_identities = 1},
		 "mem.csv:1: the header has no identity column \"Serial\" (columns: \"name\")"},
		{"name\nx\n",
		 {.type = "host", .description_column = "Desc"},
		 "mem.csv:1: the header has no description column \"Desc\" (columns: \"name\")"},
		{"name\nx\n", {.type = ""}, "mem.csv: no CI type given for the rows"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct collected c;
		struct cmdb_import_stats st;
		struct cmdb_error err;
		char want[1024];

		assert_int_equal(import_text(cases[i].text, &cases[i].map, &c, &st, &err),
				 CMDB_EINVAL);
		if (strncmp(cases[i].msg, "mem.csv", 7) == 0)
			snprintf(want, sizeof(want), "%s/%s", tmp_dir, cases[i].msg);
		else
			snprintf(want, sizeof(want), "%s", cases[i].msg);
		assert_string_equal(err.msg, want);
		collected_release(&c);
	}
}

/* Header names match ignoring case; "identity:KIND" columns are identities. */
static void test_header_conventions(void **state)
{
	const struct cmdb_csv_map map = {.type = "host"};
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;
	json_t *ci;

	(void)state;
	assert_int_equal(import_text("Name,Description,identity:mac,identity:fqdn,rack\n"
				     "h1,first,00:11:22:33:44:55,h1.example.com,R1\n",
				     &map, &c, &st, &err),
			 CMDB_OK);
	ci = json_array_get(c.list, 1);
	assert_string_equal(json_string_value(json_object_get(ci, "name")), "h1");
	assert_string_equal(json_string_value(json_object_get(ci, "description")), "first");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(ci, "identities"), 0), "kind")),
			    "mac");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(ci, "identities"), 1), "value")),
			    "h1.example.com");
	assert_int_equal(json_object_size(json_object_get(ci, "attributes")), 1);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(ci, "attributes"), "rack")),
		"R1");
	collected_release(&c);
}

static void test_scan_id_is_stable(void **state)
{
	struct collected a, b, other;
	struct cmdb_import_stats st;
	struct cmdb_error err;

	(void)state;
	assert_int_equal(import("inventory_crlf.csv", &a, &st, &err), CMDB_OK);
	assert_int_equal(import("inventory_crlf.csv", &b, &st, &err), CMDB_OK);
	assert_int_equal(import("inventory_lf_bom.csv", &other, &st, &err), CMDB_OK);
	assert_string_equal(obs_str(&a, 0, "scan_id"), obs_str(&b, 0, "scan_id"));
	assert_string_not_equal(obs_str(&a, 0, "scan_id"), obs_str(&other, 0, "scan_id"));
	collected_release(&a);
	collected_release(&b);
	collected_release(&other);
}

static void test_missing_file(void **state)
{
	const struct cmdb_csv_map map = {.type = "host"};
	struct cmdb_import_stats st;
	struct cmdb_error err;
	struct collected c;

	(void)state;
	collected_init(&c);
	assert_int_equal(cmdb_import_csv("/nonexistent/inv.csv", &map, collect, &c, &st, &err),
			 CMDB_ESYS);
	assert_string_equal(err.msg,
			    "/nonexistent/inv.csv: cannot open: No such file or directory");
	collected_release(&c);
}

static void test_sink_error_stops(void **state)
{
	const struct cmdb_csv_map map = {.type = "host"};
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;
	char path[4096];

	(void)state;
	copy_fixture("inventory_crlf.csv", path, sizeof(path));
	collected_init(&c);
	c.fail_at = 2;
	assert_int_equal(cmdb_import_csv(path, &map, collect, &c, &st, &err), CMDB_EDB);
	assert_string_equal(err.msg, "sink refused observation 2");
	assert_int_equal(json_array_size(c.list), 1);
	collected_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crlf_quotes_embedded_newline),
		cmocka_unit_test(test_bom_lf_and_bad_rows),
		cmocka_unit_test(test_hostile_rows),
		cmocka_unit_test(test_each_skip_reason),
		cmocka_unit_test(test_field_too_long),
		cmocka_unit_test(test_mapped_columns),
		cmocka_unit_test(test_fatal_errors),
		cmocka_unit_test(test_header_conventions),
		cmocka_unit_test(test_scan_id_is_stable),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_sink_error_stops),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
