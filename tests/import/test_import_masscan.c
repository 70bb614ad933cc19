/*
 * masscan importer: hand-written fixtures in masscan's documented -oJ and -oD
 * formats (current and older), cut-off and hostile ones, checked observation
 * by observation against data/NAME.expected.
 */
#include "import_test.h"
#include "import_internal.h"

static cmdb_rc import(const char *file, struct collected *c, struct cmdb_import_stats *st,
		      struct cmdb_error *err)
{
	char path[4096];

	data_path(path, sizeof(path), file);
	collected_init(c);
	return cmdb_import_masscan_json(path, collect, c, st, err);
}

/* Imports text given here, through a temporary file. */
static cmdb_rc import_text(const char *text, size_t len, struct collected *c,
			   struct cmdb_import_stats *st, struct cmdb_error *err)
{
	FILE *f = tmpfile();
	cmdb_rc rc;

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	rewind(f);
	collected_init(c);
	rc = cmdb_import_masscan_stream(f, "mem.json", collect, c, st, err);
	fclose(f);
	return rc;
}

static json_t *last(const struct collected *c)
{
	return json_array_get(c->list, json_array_size(c->list) - 1);
}

static void test_oj(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;

	(void)state;
	assert_int_equal(import("masscan_oj.json", &c, &st, &err), CMDB_OK);
	check_output(&c, "masscan_oj", NULL);
	check_framing(&c);
	assert_int_equal(st.records, 9);
	assert_int_equal(st.observations, 12);
	assert_int_equal(st.skipped, 0);
	assert_true(json_is_true(json_object_get(last(&c), "complete")));
	collected_release(&c);
}

/* Older masscan: a comma after the last record and `{finished: 1}`. */
static void test_oj_old_trailing_comma(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;

	(void)state;
	assert_int_equal(import("masscan_oj_old.json", &c, &st, &err), CMDB_OK);
	check_output(&c, "masscan_oj_old", NULL);
	assert_int_equal(st.records, 2);
	assert_int_equal(st.skipped, 0);
	assert_true(json_is_true(json_object_get(last(&c), "complete")));
	collected_release(&c);
}

static void test_od(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;

	(void)state;
	assert_int_equal(import("masscan_od.ndjson", &c, &st, &err), CMDB_OK);
	check_output(&c, "masscan_od", NULL);
	check_framing(&c);
	assert_int_equal(st.records, 4);
	assert_int_equal(st.skipped, 0);
	collected_release(&c);
}

static void test_truncated(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;
	char want[4096];

	(void)state;
	assert_int_equal(import("masscan_truncated.json", &c, &st, &err), CMDB_OK);
	check_output(&c, "masscan_truncated", NULL);
	assert_int_equal(st.skipped, 1);
	snprintf(want, sizeof(want),
		 "%s/masscan_truncated.json:4: record cut off by the end of the file",
		 IMPORT_TEST_DATA);
	assert_string_equal(st.first_skip, want);
	assert_true(json_is_false(json_object_get(last(&c), "complete")));
	collected_release(&c);
}

/* -oD has no end marker: a last line without its newline was cut off. */
static void test_od_without_final_newline(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;

	(void)state;
	assert_int_equal(import("masscan_od_noeol.ndjson", &c, &st, &err), CMDB_OK);
	check_output(&c, "masscan_od_noeol", NULL);
	assert_int_equal(st.skipped, 0);
	assert_true(json_is_false(json_object_get(last(&c), "complete")));
	collected_release(&c);
}

/* Bad JSON, IPv6, no ip, bad ip, bad port, junk, duplicate keys, a NUL in
 * the address, nested arrays and data after the ]: each skipped and
 * counted; the good records around them all arrive. */
static void test_hostile(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;
	char want[4096];

	(void)state;
	assert_int_equal(import("masscan_hostile.json", &c, &st, &err), CMDB_OK);
	check_output(&c, "masscan_hostile", NULL);
	check_framing(&c);
	assert_int_equal(st.records, 11);
	assert_int_equal(st.skipped, 10);
	snprintf(want, sizeof(want),
		 "%s/masscan_hostile.json:3: not a JSON object: '}' expected near '\"status\"'",
		 IMPORT_TEST_DATA);
	assert_string_equal(st.first_skip, want);
	assert_true(json_is_false(json_object_get(last(&c), "complete")));
	collected_release(&c);
}

static void test_each_skip_reason(void **state)
{
	static const struct {
		const char *text, *first_skip;
	} cases[] = {
		{"[\n{\"ip\": \"::1\", \"timestamp\": \"1\", \"ports\": [{\"port\": 1, \"proto\": "
		 "\"tcp\", "
		 "\"status\": \"open\"}]}\n]\n",
		 "mem.json:2: IPv6 address ::1 skipped (observation format version 1 is IPv4 "
		 "only)"},
		{"{\"timestamp\": \"1\", \"port\": 1, \"proto\": \"tcp\", \"rec_type\": "
		 "\"status\", "
		 "\"data\": {\"status\": \"open\"}}\n",
		 "mem.json:1: record without an \"ip\" skipped"},
		{"{\"ip\": \"10.0.0.1\", \"port\": 1, \"proto\": \"sctp\", \"rec_type\": "
		 "\"status\", "
		 "\"data\": {\"status\": \"open\"}}\n",
		 "mem.json:1: record without a usable port skipped"},
		{"\n\nnot json\n", "mem.json:3: unexpected character 'n' (0x6e), line skipped"},
		{"[\n]\n]\n", "mem.json:3: data after the closing ] ignored"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct collected c;
		struct cmdb_import_stats st;
		struct cmdb_error err;

		assert_int_equal(import_text(cases[i].text, strlen(cases[i].text), &c, &st, &err),
				 CMDB_OK);
		assert_int_equal(st.skipped, 1);
		assert_string_equal(st.first_skip, cases[i].first_skip);
		check_framing(&c);
		collected_release(&c);
	}
}

/* A record longer than the cap is skipped without holding it whole. */
static void test_oversized_record(void **state)
{
	size_t big = 600 * 1024;
	char *text = malloc(big + 200);
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;
	int n;

	(void)state;
	assert_non_null(text);
	n = snprintf(text, 200,
		     "{\"ip\": \"10.0.0.1\", \"timestamp\": \"1\", \"port\": 1, \"proto\": "
		     "\"tcp\", \"rec_type\": \"banner\", \"data\": {\"service_name\": \"x\", "
		     "\"banner\": \"");
	memset(text + n, 'B', big);
	strcpy(text + n + big, "\"}}\n");
	assert_int_equal(import_text(text, strlen(text), &c, &st, &err), CMDB_OK);
	assert_int_equal(st.skipped, 1);
	assert_string_equal(st.first_skip, "mem.json:1: record longer than 524288 bytes skipped");
	assert_int_equal(json_array_size(c.list), 2);
	free(text);
	collected_release(&c);
}

static void test_empty_file(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;

	(void)state;
	assert_int_equal(import_text("", 0, &c, &st, &err), CMDB_OK);
	check_framing(&c);
	assert_int_equal(json_array_size(c.list), 2);
	/* Nothing proves a scan ran to its end. */
	assert_true(json_is_false(json_object_get(last(&c), "complete")));
	collected_release(&c);
}

static void test_scan_id_is_stable(void **state)
{
	struct collected a, b, other;
	struct cmdb_import_stats st;
	struct cmdb_error err;

	(void)state;
	assert_int_equal(import("masscan_oj.json", &a, &st, &err), CMDB_OK);
	assert_int_equal(import("masscan_oj.json", &b, &st, &err), CMDB_OK);
	assert_int_equal(import("masscan_od.ndjson", &other, &st, &err), CMDB_OK);
	assert_string_equal(obs_str(&a, 0, "scan_id"), obs_str(&b, 0, "scan_id"));
	assert_string_not_equal(obs_str(&a, 0, "scan_id"), obs_str(&other, 0, "scan_id"));
	collected_release(&a);
	collected_release(&b);
	collected_release(&other);
}

static void test_missing_file(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;

	(void)state;
	assert_int_equal(import("no_such.json", &c, &st, &err), CMDB_ESYS);
	assert_non_null(strstr(err.msg, "no_such.json: cannot open: No such file or directory"));
	collected_release(&c);
}

static void test_sink_error_stops(void **state)
{
	struct collected c;
	struct cmdb_import_stats st;
	struct cmdb_error err;
	char path[4096];

	(void)state;
	collected_init(&c);
	c.fail_at = 4;
	data_path(path, sizeof(path), "masscan_oj.json");
	assert_int_equal(cmdb_import_masscan_json(path, collect, &c, &st, &err), CMDB_EDB);
	assert_string_equal(err.msg, "sink refused observation 4");
	assert_int_equal(json_array_size(c.list), 3);
	collected_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oj),
		cmocka_unit_test(test_oj_old_trailing_comma),
		cmocka_unit_test(test_od),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_od_without_final_newline),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_each_skip_reason),
		cmocka_unit_test(test_oversized_record),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_scan_id_is_stable),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_sink_error_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
