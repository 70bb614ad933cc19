/*
 * CIs, types and relationships through libcmdb against a real PostgreSQL:
 * what is stored, what is refused and that a refusal changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "cmdb/ci.h"
#include "cmdb/rel.h"
#include "cmdb/type.h"
#include "testdb.h"

static char conninfo[1200];
static struct cmdb_db *db;

static int setup(void **state)
{
	testdb_create("test_ci", conninfo, sizeof(conninfo));
	db = testdb_open(conninfo, CMDB_ACCESS_WRITE);
	return 0;
}

static int teardown(void **state)
{
	cmdb_db_close(db);
	return 0;
}

/* A count from SQL, for checking that a refused change left nothing. */
static long count(const char *sql)
{
	char out[64];

	assert_int_equal(testdb_sql(conninfo, sql, out, sizeof(out)), 0);
	return atol(out);
}

static long snapshot(void)
{
	return count("SELECT (SELECT count(*) FROM cmdb.ci) * 1000000 + (SELECT count(*) FROM cmdb.history)"
		     " * 100 + (SELECT count(*) FROM cmdb.ci_identity) * 10 + (SELECT count(*) FROM cmdb.rel)");
}

static int64_t add_ci(const char *type, const char *name, const char *desc, json_t *attrs, json_t *idents)
{
	struct cmdb_ci_new ci = {.type = type, .name = name, .description = desc,
				 .attributes = attrs, .identities = idents};
	struct cmdb_error err = {0};
	int64_t id = 0;

	assert_int_equal(cmdb_ci_add(db, &ci, &id, &err), CMDB_OK);
	assert_true(id > 0);
	return id;
}

static cmdb_rc try_add(const char *type, const char *name, const char *desc, json_t *attrs,
		       json_t *idents, struct cmdb_error *err)
{
	struct cmdb_ci_new ci = {.type = type, .name = name, .description = desc,
				 .attributes = attrs, .identities = idents};
	int64_t id;

	return cmdb_ci_add(db, &ci, &id, err);
}

static json_t *show(int64_t id, const char *as_of)
{
	struct cmdb_error err = {0};
	json_t *out = NULL;

	assert_int_equal(cmdb_ci_show(db, id, as_of, &out, &err), CMDB_OK);
	return out;
}

static void test_add_and_show(void **state)
{
	json_t *attrs = json_pack("{s:s,s:i}", "os", "linux", "cpus", 8);
	json_t *ids = json_pack("[{s:s,s:s},{s:s,s:s}]", "kind", "mac", "value", "00-1A-2B-3C-4D-5E",
				"kind", "serial", "value", "SN123");
	int64_t id = add_ci("host", "db01", "database server", attrs, ids);
	json_t *ci = show(id, NULL);

	assert_string_equal(json_string_value(json_object_get(ci, "name")), "db01");
	assert_string_equal(json_string_value(json_object_get(ci, "status")), "live");
	assert_string_equal(json_string_value(json_object_get(ci, "criticality")), "medium");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ci, "attributes"), "cpus")), 8);
	/* the MAC is stored in canonical form */
	assert_int_equal(json_array_size(json_object_get(ci, "identities")), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(ci, "identities"), 0),
							      "value")),
			    "00:1a:2b:3c:4d:5e");
	json_decref(ci);
	json_decref(attrs);
	json_decref(ids);
}

static void test_identity_conflict_names_holder_and_changes_nothing(void **state)
{
	json_t *ids = json_pack("[{s:s,s:s}]", "kind", "mac", "value", "02:00:00:00:00:01");
	json_t *same = json_pack("[{s:s,s:s}]", "kind", "mac", "value", "0200.0000.0001");
	struct cmdb_error err = {0};
	int64_t holder = add_ci("host", "holder", "holds a mac", NULL, ids);
	long before = snapshot();
	char want[64];

	assert_int_equal(try_add("host", "intruder", "wants the mac", NULL, same, &err), CMDB_ECONFLICT);
	snprintf(want, sizeof(want), "held by CI %lld (holder)", (long long)holder);
	assert_non_null(strstr(err.msg, want));
	assert_int_equal(snapshot(), before);
	json_decref(ids);
	json_decref(same);
}

static void test_resolve(void **state)
{
	json_t *ids = json_pack("[{s:s,s:s}]", "kind", "fqdn", "value", "Mail.Example.COM.");
	int64_t a = add_ci("host", "mail", "mail server", NULL, ids);
	int64_t b1 = add_ci("host", "twin", "first twin", NULL, NULL);
	int64_t b2 = add_ci("service", "twin", "second twin", NULL, NULL);
	struct cmdb_error err = {0};
	char ref[32];
	int64_t got;

	assert_int_equal(cmdb_ci_resolve(db, "mail", &got, &err), CMDB_OK);
	assert_int_equal(got, a);
	snprintf(ref, sizeof(ref), "%lld", (long long)a);
	assert_int_equal(cmdb_ci_resolve(db, ref, &got, &err), CMDB_OK);
	assert_int_equal(got, a);
	assert_int_equal(cmdb_ci_resolve(db, "fqdn=mail.example.com", &got, &err), CMDB_OK);
	assert_int_equal(got, a);
	assert_int_equal(cmdb_ci_resolve(db, "twin", &got, &err), CMDB_EAMBIGUOUS);
	snprintf(ref, sizeof(ref), "%lld (host", (long long)b1);
	assert_non_null(strstr(err.msg, ref));
	snprintf(ref, sizeof(ref), "%lld (service", (long long)b2);
	assert_non_null(strstr(err.msg, ref));
	assert_int_equal(cmdb_ci_resolve(db, "no-such-ci", &got, &err), CMDB_ENOTFOUND);
	assert_int_equal(cmdb_ci_resolve(db, "999999", &got, &err), CMDB_ENOTFOUND);
	assert_int_equal(cmdb_ci_resolve(db, "mac=zz", &got, &err), CMDB_EINVAL);
	json_decref(ids);
}

static void test_lifecycle(void **state)
{
	int64_t id = add_ci("host", "cycler", "goes through its life", NULL, NULL);
	struct cmdb_ci_change to = {0};
	struct cmdb_error err = {0};
	long before;
	json_t *ci;

	to.status = "maintenance";
	assert_int_equal(cmdb_ci_set(db, id, &to, &err), CMDB_OK);
	before = snapshot();
	to.status = "disposed"; /* maintenance -> disposed is not allowed */
	assert_int_equal(cmdb_ci_set(db, id, &to, &err), CMDB_ESTATE);
	assert_non_null(strstr(err.msg, "maintenance -> disposed"));
	assert_int_equal(snapshot(), before);
	assert_int_equal(cmdb_ci_retire(db, id, "", &err), CMDB_EINVAL);
	assert_int_equal(cmdb_ci_retire(db, id, "hardware failed", &err), CMDB_OK);
	assert_int_equal(count("SELECT count(*) FROM cmdb.history WHERE op = 'retire' AND reason = 'hardware failed'"), 1);
	to.status = "disposed";
	assert_int_equal(cmdb_ci_set(db, id, &to, &err), CMDB_OK);
	/* a disposed record is closed */
	to.status = NULL;
	to.description = "try to change it";
	assert_int_equal(cmdb_ci_set(db, id, &to, &err), CMDB_ESTATE);
	/* and nothing is ever deleted */
	assert_int_equal(testdb_sql(conninfo, "DELETE FROM cmdb.ci", (char[256]){0}, 256), -1);
	ci = show(id, NULL);
	assert_string_equal(json_string_value(json_object_get(ci, "status")), "disposed");
	json_decref(ci);
}

static void test_set_attributes_history_per_field(void **state)
{
	json_t *attrs = json_pack("{s:s,s:s}", "os", "linux", "rack", "A1");
	json_t *set = json_pack("{s:s,s:i}", "os", "debian", "ram_gb", 64);
	const char *unset[] = {"rack"};
	struct cmdb_ci_change ch = {.set_attrs = set, .unset = unset, .n_unset = 1, .owner = "ops"};
	struct cmdb_error err = {0};
	int64_t id = add_ci("host", "attrs", "attribute changes", attrs, NULL);
	char sql[256];
	json_t *ci;

	assert_int_equal(cmdb_ci_set(db, id, &ch, &err), CMDB_OK);
	ci = show(id, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ci, "attributes"), "os")), "debian");
	assert_null(json_object_get(json_object_get(ci, "attributes"), "rack"));
	json_decref(ci);
	snprintf(sql, sizeof(sql),
		 "SELECT string_agg(field || ':' || coalesce(old::text, '-') || '>' || coalesce(new::text, '-'), ' '"
		 " ORDER BY field) FROM cmdb.history WHERE ci_id = %lld AND op = 'update'",
		 (long long)id);
	{
		char out[512];
		assert_int_equal(testdb_sql(conninfo, sql, out, sizeof(out)), 0);
		assert_string_equal(out, "attributes.os:\"linux\">\"debian\" attributes.rack:\"A1\">- "
					 "attributes.ram_gb:->64 owner:->\"ops\"");
	}
	/* unsetting what is not there is refused */
	ch = (struct cmdb_ci_change){.unset = unset, .n_unset = 1};
	assert_int_equal(cmdb_ci_set(db, id, &ch, &err), CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "rack"));
	json_decref(attrs);
	json_decref(set);
}

static void test_unchanged_set_writes_no_history(void **state)
{
	int64_t id = add_ci("host", "steady", "does not change", NULL, NULL);
	struct cmdb_ci_change ch = {.description = "does not change"};
	struct cmdb_error err = {0};
	char sql[200];
	long before = count("SELECT count(*) FROM cmdb.history");

	assert_int_equal(cmdb_ci_set(db, id, &ch, &err), CMDB_OK);
	assert_int_equal(count("SELECT count(*) FROM cmdb.history"), before);
	/* a sighting (last_seen) is no change either */
	snprintf(sql, sizeof(sql), "UPDATE cmdb.ci SET last_seen = now() WHERE id = %lld", (long long)id);
	assert_int_equal(testdb_sql(conninfo, sql, (char[256]){0}, 256), 0);
	assert_int_equal(count("SELECT count(*) FROM cmdb.history"), before);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM cmdb.ci_version WHERE ci_id = %lld", (long long)id);
	assert_int_equal(count(sql), 1);
}

static void test_as_of(void **state)
{
	json_t *attrs = json_pack("{s:s}", "version", "1.0");
	json_t *v2 = json_pack("{s:s}", "version", "2.0");
	struct cmdb_ci_change ch = {.set_attrs = v2, .status = "maintenance"};
	struct cmdb_error err = {0};
	int64_t id = add_ci("application", "billing", "billing app", attrs, NULL);
	int64_t host = add_ci("host", "billing-host", "runs billing", NULL, NULL);
	char between[64], sql[200];
	struct cmdb_ci_filter f = {.type = "application", .name_glob = "bill*"};
	struct cmdb_rows *rows;
	json_t *ci;

	assert_int_equal(cmdb_rel_add(db, id, "runs_on", host, NULL, NULL, &err), CMDB_OK);
	snprintf(sql, sizeof(sql), "SELECT cmdb.rfc3339(clock_timestamp())");
	usleep(20000);
	assert_int_equal(testdb_sql(conninfo, sql, between, sizeof(between)), 0);
	usleep(20000);
	assert_int_equal(cmdb_ci_set(db, id, &ch, &err), CMDB_OK);
	assert_int_equal(cmdb_rel_rm(db, id, "runs_on", host, &err), CMDB_OK);

	ci = show(id, between);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ci, "attributes"), "version")), "1.0");
	assert_string_equal(json_string_value(json_object_get(ci, "status")), "live");
	assert_int_equal(json_array_size(json_object_get(ci, "relationships")), 1);
	json_decref(ci);
	ci = show(id, NULL);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ci, "attributes"), "version")), "2.0");
	assert_int_equal(json_array_size(json_object_get(ci, "relationships")), 0);
	json_decref(ci);

	f.as_of = between;
	assert_int_equal(cmdb_ci_list(db, &f, &rows, &err), CMDB_OK);
	assert_int_equal(cmdb_rows_count(rows), 1);
	assert_string_equal(cmdb_rows_value(rows, 0, cmdb_rows_column_index(rows, "status")), "live");
	cmdb_rows_free(rows);
	assert_int_equal(cmdb_rel_list(db, id, CMDB_DIR_OUT, between, &rows, &err), CMDB_OK);
	assert_int_equal(cmdb_rows_count(rows), 1);
	cmdb_rows_free(rows);

	/* before it existed */
	assert_int_equal(cmdb_ci_show(db, id, "2000-01-01", &ci, &err), CMDB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "did not exist yet"));
	assert_int_equal(cmdb_ci_show(db, id, "not a time", &ci, &err), CMDB_EINVAL);
	json_decref(attrs);
	json_decref(v2);
}

static void test_list_filters(void **state)
{
	struct cmdb_type_new vm = {.name = "virtual_machine", .parent = "host", .description = "a VM"};
	json_t *linux_attrs = json_pack("{s:s}", "os", "linux");
	json_t *want = json_pack("{s:s}", "os", "linux");
	struct cmdb_error err = {0};
	struct cmdb_ci_filter f = {0};
	struct cmdb_rows *rows;

	assert_int_equal(cmdb_type_add(db, &vm, &err), CMDB_OK);
	add_ci("virtual_machine", "lf-vm1", "a vm", linux_attrs, NULL);
	add_ci("host", "lf-host1", "a host", linux_attrs, NULL);
	add_ci("host", "lf-host2", "another host", NULL, NULL);

	f.type = "host"; /* includes subtypes */
	f.name_glob = "lf-*";
	assert_int_equal(cmdb_ci_list(db, &f, &rows, &err), CMDB_OK);
	assert_int_equal(cmdb_rows_count(rows), 3);
	cmdb_rows_free(rows);
	f.attrs = want;
	assert_int_equal(cmdb_ci_list(db, &f, &rows, &err), CMDB_OK);
	assert_int_equal(cmdb_rows_count(rows), 2);
	cmdb_rows_free(rows);
	f.limit = 1;
	assert_int_equal(cmdb_ci_list(db, &f, &rows, &err), CMDB_OK);
	assert_int_equal(cmdb_rows_count(rows), 1);
	assert_string_equal(cmdb_rows_value(rows, 0, cmdb_rows_column_index(rows, "name")), "lf-vm1");
	cmdb_rows_free(rows);
	/* glob metacharacters of LIKE are literal */
	f = (struct cmdb_ci_filter){.name_glob = "lf_host1"};
	assert_int_equal(cmdb_ci_list(db, &f, &rows, &err), CMDB_OK);
	assert_int_equal(cmdb_rows_count(rows), 0);
	cmdb_rows_free(rows);
	f = (struct cmdb_ci_filter){.type = "nonesuch"};
	assert_int_equal(cmdb_ci_list(db, &f, &rows, &err), CMDB_EINVAL);
	json_decref(linux_attrs);
	json_decref(want);
}

static void test_types_required_and_change_control(void **state)
{
	const char *req[] = {"serial_number"};
	struct cmdb_type_new t = {.name = "storage_array", .description = "SAN", .required = req,
				  .n_required = 1, .change_controlled = true};
	struct cmdb_type_new bad = {.name = "Bad Name", .description = "x"};
	struct cmdb_type_new cyc = {.name = "storage_array", .description = "again"};
	json_t *attrs = json_pack("{s:s}", "serial_number", "X1");
	struct cmdb_ci_change ch = {.description = "new text"};
	struct cmdb_db_options o = {.conninfo = conninfo, .access = CMDB_ACCESS_WRITE, .change_ref = "CHG-42"};
	struct cmdb_error err = {0};
	struct cmdb_db *with_change;
	int64_t id;

	assert_int_equal(cmdb_type_add(db, &t, &err), CMDB_OK);
	assert_int_equal(cmdb_type_add(db, &bad, &err), CMDB_EINVAL);
	assert_int_equal(cmdb_type_add(db, &cyc, &err), CMDB_ECONFLICT);
	assert_int_equal(try_add("storage_array", "san1", "a SAN", NULL, NULL, &err), CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "serial_number"));
	id = add_ci("storage_array", "san1", "a SAN", attrs, NULL);
	assert_int_equal(cmdb_ci_set(db, id, &ch, &err), CMDB_ESTATE);
	assert_non_null(strstr(err.msg, "change control"));
	assert_int_equal(cmdb_db_open(&o, &with_change, &err), CMDB_OK);
	assert_int_equal(cmdb_ci_set(with_change, id, &ch, &err), CMDB_OK);
	cmdb_db_close(with_change);
	assert_int_equal(count("SELECT count(*) FROM cmdb.history WHERE change_ref = 'CHG-42' AND field = 'description'"), 1);
	json_decref(attrs);
}

static void test_relationships(void **state)
{
	int64_t a = add_ci("application", "rel-app", "app", NULL, NULL);
	int64_t h = add_ci("host", "rel-host", "host", NULL, NULL);
	struct cmdb_error err = {0};
	struct cmdb_rows *rows;
	long before;

	assert_int_equal(cmdb_rel_add(db, a, "runs_on", h, NULL, NULL, &err), CMDB_OK);
	before = snapshot();
	assert_int_equal(cmdb_rel_add(db, a, "runs_on", h, NULL, NULL, &err), CMDB_ECONFLICT);
	assert_non_null(strstr(err.msg, "already runs on"));
	assert_int_equal(cmdb_rel_add(db, a, "runs_on", a, NULL, NULL, &err), CMDB_EINVAL);
	assert_int_equal(cmdb_rel_add(db, a, "eats", h, NULL, NULL, &err), CMDB_EINVAL);
	assert_int_equal(cmdb_rel_add(db, a, "runs_on", 987654321, NULL, NULL, &err), CMDB_ENOTFOUND);
	assert_int_equal(snapshot(), before);
	assert_int_equal(cmdb_rel_list(db, h, CMDB_DIR_IN, NULL, &rows, &err), CMDB_OK);
	assert_int_equal(cmdb_rows_count(rows), 1);
	assert_string_equal(cmdb_rows_value(rows, 0, cmdb_rows_column_index(rows, "label")), "runs");
	cmdb_rows_free(rows);
	assert_int_equal(cmdb_rel_rm(db, a, "runs_on", h, &err), CMDB_OK);
	assert_int_equal(cmdb_rel_rm(db, a, "runs_on", h, &err), CMDB_ENOTFOUND);
	/* related again after ending: a new relationship, the old one kept */
	assert_int_equal(cmdb_rel_add(db, a, "runs_on", h, NULL, NULL, &err), CMDB_OK);
	assert_int_equal(count("SELECT count(*) FROM cmdb.rel WHERE type = 'runs_on' AND source_id = "
			       "(SELECT id FROM cmdb.ci WHERE name = 'rel-app')"), 2);
}

static void test_hostile_strings(void **state)
{
	static const char *const names[] = {"O'Brien's \"box\"", "x'); DROP TABLE cmdb.ci; --",
					    "\\N", "名前-ünïcødé-🙂", "%_*?[]"};
	struct cmdb_error err = {0};
	char *big = malloc(1 << 20);
	json_t *attrs;
	long before;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *a = json_pack("{s:s}", "note", names[i]);
		int64_t id = add_ci("host", names[i], names[i], a, NULL);
		json_t *ci = show(id, NULL);
		int64_t again;

		assert_string_equal(json_string_value(json_object_get(ci, "name")), names[i]);
		assert_string_equal(json_string_value(json_object_get(json_object_get(ci, "attributes"), "note")),
				    names[i]);
		assert_int_equal(cmdb_ci_resolve(db, names[i], &again, &err), CMDB_OK);
		assert_int_equal(again, id);
		json_decref(ci);
		json_decref(a);
	}
	before = snapshot();
	assert_int_equal(try_add("host", "tab\there", "x", NULL, NULL, &err), CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "control character"));
	assert_int_equal(try_add("host", "bad\xff\xfe utf8", "x", NULL, NULL, &err), CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "UTF8"));
	memset(big, 'a', (1 << 20) - 1);
	big[(1 << 20) - 1] = '\0';
	assert_int_equal(try_add("host", big, "x", NULL, NULL, &err), CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "limit is 255"));
	attrs = json_pack("{s:s}", "blob", big);
	assert_int_equal(try_add("host", "big-attr", "x", attrs, NULL, &err), CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "limit is 65536"));
	json_decref(attrs);
	attrs = json_pack("{s:s}", "bad key!", "v");
	assert_int_equal(try_add("host", "bad-key", "x", attrs, NULL, &err), CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "invalid attribute name"));
	json_decref(attrs);
	assert_int_equal(try_add("host", "no-desc", "   ", NULL, NULL, &err), CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "description"));
	assert_int_equal(try_add("host", "after-refusals", "x", NULL, NULL, &err), CMDB_OK);
	assert_int_equal(snapshot() / 1000000, before / 1000000 + 1);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_and_show),
		cmocka_unit_test(test_identity_conflict_names_holder_and_changes_nothing),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_set_attributes_history_per_field),
		cmocka_unit_test(test_unchanged_set_writes_no_history),
		cmocka_unit_test(test_as_of),
		cmocka_unit_test(test_list_filters),
		cmocka_unit_test(test_types_required_and_change_control),
		cmocka_unit_test(test_relationships),
		cmocka_unit_test(test_hostile_strings),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
