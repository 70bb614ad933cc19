/*
 * Identification rules and merges through libcmdb against a real
 * PostgreSQL: rules edited and recorded, merges that move identities,
 * relationships and claims (the higher-priority claim winning), dry runs
 * that write nothing, refusals that change nothing, role rights, and two
 * merges of one pair at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "cmdb/audit.h"
#include "cmdb/ci.h"
#include "cmdb/dup.h"
#include "cmdb/rel.h"
#include "cmdb/rules.h"
#include "testdb.h"

static char conninfo[1200];
static struct cmdb_db *db;

static int setup(void **state)
{
	testdb_create("test_dup", conninfo, sizeof(conninfo));
	db = testdb_open(conninfo, CMDB_ACCESS_WRITE);
	return 0;
}

static int teardown(void **state)
{
	cmdb_db_close(db);
	return 0;
}

/* One value from SQL run as the superuser, as text in out. */
static void query(const char *sql, char *out, size_t len)
{
	if (testdb_sql(conninfo, sql, out, len) != 0)
		fail_msg("%s: %s", sql, out);
}

static long count(const char *sql)
{
	char out[64];

	query(sql, out, sizeof(out));
	return atol(out);
}

/* Everything a refused change could have touched. */
static void snapshot(char *out, size_t len)
{
	query("SELECT (SELECT count(*) FROM cmdb.history) || '/' || (SELECT count(*) FROM "
	      "cmdb.ci_identity) || '/' ||"
	      " (SELECT count(*) FROM cmdb.rel) || '/' || (SELECT count(*) FROM cmdb.attr_claim) "
	      "|| '/' ||"
	      " (SELECT md5(string_agg(c::text, '' ORDER BY id)) FROM cmdb.ci c) || '/' ||"
	      " (SELECT md5(string_agg(r::text, '' ORDER BY type, position)) FROM cmdb.ident_rule "
	      "r)",
	      out, len);
}

static struct cmdb_db *open_as(const char *source, enum cmdb_access access)
{
	struct cmdb_db_options o = {.conninfo = conninfo, .source = source, .access = access};
	struct cmdb_error err = {0};
	struct cmdb_db *d;

	if (cmdb_db_open(&o, &d, &err))
		fail_msg("open as %s: %s", source, err.msg);
	return d;
}

static int64_t add(struct cmdb_db *d, const char *type, const char *name, const char *attrs_json,
		   const char *ident_kind, const char *ident_value)
{
	json_t *attrs = attrs_json ? json_loads(attrs_json, 0, NULL) : NULL;
	json_t *idents =
		ident_kind ? json_pack("[{s:s,s:s}]", "kind", ident_kind, "value", ident_value)
			   : NULL;
	struct cmdb_ci_new ci = {.type = type,
				 .name = name,
				 .description = "test CI",
				 .attributes = attrs,
				 .identities = idents};
	struct cmdb_error err = {0};
	int64_t id = 0;

	if (cmdb_ci_add(d, &ci, &id, &err))
		fail_msg("add %s: %s", name, err.msg);
	json_decref(attrs);
	json_decref(idents);
	return id;
}

static void relate(int64_t src, const char *type, int64_t dst)
{
	struct cmdb_error err = {0};
	int64_t id;

	if (cmdb_rel_add(db, src, type, dst, NULL, &id, &err))
		fail_msg("relate: %s", err.msg);
}

/* Sets one attribute of a CI as the source d stands for. */
static void set_attr(struct cmdb_db *d, int64_t id, const char *key, const char *value)
{
	json_t *attrs = json_pack("{s:s}", key, value);
	struct cmdb_ci_change ch = {.set_attrs = attrs};
	struct cmdb_error err = {0};

	if (cmdb_ci_set(d, id, &ch, &err))
		fail_msg("set %s: %s", key, err.msg);
	json_decref(attrs);
}

/* The plan as "action|item|detail" lines. Caller frees. */
static char *plan_text(const struct cmdb_rows *plan)
{
	size_t len = 1;
	char *out, *o;

	for (int r = 0; r < cmdb_rows_count(plan); r++)
		for (int c = 1; c < 4; c++)
			len += strlen(cmdb_rows_value(plan, r, c)) + 1;
	o = out = malloc(len);
	assert_non_null(out);
	for (int r = 0; r < cmdb_rows_count(plan); r++)
		o += sprintf(o, "%s|%s|%s\n", cmdb_rows_value(plan, r, 1),
			     cmdb_rows_value(plan, r, 2), cmdb_rows_value(plan, r, 3));
	*o = '\0';
	return out;
}

static void test_rules_edited_and_recorded(void **state)
{
	static const char *const specs[] = {"fqdn", "mac:universal", "asset"};
	struct cmdb_rows *rows = NULL;
	struct cmdb_error err = {0};
	char before[256], after[256];

	assert_int_equal(cmdb_rules_list(db, "host", &rows, &err), CMDB_OK);
	assert_int_equal(cmdb_rows_count(rows), 6);
	assert_string_equal(cmdb_rows_value(rows, 0, 1), "serial");
	assert_string_equal(cmdb_rows_value(rows, 2, 1), "mac");
	assert_string_equal(cmdb_rows_value(rows, 2, 2), "universal");
	cmdb_rows_free(rows);

	assert_int_equal(cmdb_rules_set(db, "host", specs, 3, &err), CMDB_OK);
	assert_int_equal(cmdb_rules_edit(db, "host", CMDB_RULES_MOVE, "asset", 1, &err), CMDB_OK);
	assert_int_equal(cmdb_rules_list(db, "host", &rows, &err), CMDB_OK);
	assert_int_equal(cmdb_rows_count(rows), 3);
	assert_string_equal(cmdb_rows_value(rows, 0, 1), "asset");
	assert_string_equal(cmdb_rows_value(rows, 1, 1), "fqdn");
	cmdb_rows_free(rows);
	assert_int_equal(
		count("SELECT count(*) FROM cmdb.history WHERE entity = 'ci_type' AND op = 'rules'"
		      " AND old ->> 'type' = 'host' AND new -> 'rules' ->> 0 = 'asset'"),
		1);

	/* refused edits change nothing */
	snapshot(before, sizeof(before));
	assert_int_equal(cmdb_rules_edit(db, "host", CMDB_RULES_RM, "serial", 0, &err),
			 CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "type host has no rule for serial"));
	assert_int_equal(cmdb_rules_set(db, "service", specs, 1, &err), CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "must keep the rule endpoint"));
	assert_int_equal(cmdb_rules_reset(db, "no_such_type", &err), CMDB_EINVAL);
	snapshot(after, sizeof(after));
	assert_string_equal(before, after);
	/* behind the API's back: refused too */
	assert_int_equal(testdb_sql(conninfo, "UPDATE cmdb.ident_rule SET position = position + 10",
				    after, sizeof(after)),
			 -1);
	assert_non_null(strstr(after, "only through cmdb.ident_rules_set"));

	assert_int_equal(cmdb_rules_reset(db, "host", &err), CMDB_OK);
	assert_int_equal(cmdb_rules_list(db, "host", &rows, &err), CMDB_OK);
	assert_int_equal(cmdb_rows_count(rows), 6);
	cmdb_rows_free(rows);
}

/* The claim of the higher-priority source wins on the CI kept, whichever
 * side it came from; relationships and identities move; both histories. */
static void test_merge_moves_and_keeps_priority(void **state)
{
	struct cmdb_db *scanner = open_as("discover", CMDB_ACCESS_WRITE);
	struct cmdb_db *inventory = open_as("csv", CMDB_ACCESS_WRITE);
	struct cmdb_rows *plan = NULL;
	struct cmdb_chain_report rep;
	struct cmdb_error err = {0};
	int64_t keep, other, app, nic;
	char sql[512], out[256];

	/* os: the scanner (20) on keep, the inventory (60) on other; owner_team the reverse */
	keep = add(scanner, "host", "srv-keep", "{\"os\": \"linux\", \"cpus\": 4}", "serial",
		   "SRV-1");
	other = add(inventory, "host", "srv-other", "{\"os\": \"Debian 12\", \"rack\": \"B4\"}",
		    "fqdn", "srv.example");
	set_attr(inventory, keep, "owner_team", "ops");
	set_attr(scanner, other, "owner_team", "?");
	app = add(db, "application", "erp", NULL, NULL, NULL);
	nic = add(db, "network_interface", "srv/nic", NULL, "mac", "00:1b:21:aa:00:01");
	relate(app, "runs_on", other);
	relate(other, "has_interface", nic);
	relate(app, "runs_on", keep);

	assert_int_equal(cmdb_dup_merge(db, keep, other, false, &plan, &err), CMDB_OK);
	assert_true(cmdb_rows_count(plan) > 5);
	cmdb_rows_free(plan);

	snprintf(sql, sizeof(sql),
		 "SELECT attributes->>'os' || '|' || (attributes->>'owner_team') || '|' || "
		 "(attributes->>'rack') || '|' ||"
		 " (attributes->>'cpus') FROM cmdb.ci WHERE id = %lld",
		 (long long)keep);
	query(sql, out, sizeof(out));
	assert_string_equal(out, "Debian 12|ops|B4|4");
	snprintf(sql, sizeof(sql),
		 "SELECT string_agg(kind || '=' || value, ',' ORDER BY kind) FROM cmdb.ci_identity"
		 " WHERE ci_id = %lld AND upper_inf(valid)",
		 (long long)keep);
	query(sql, out, sizeof(out));
	assert_string_equal(out, "fqdn=srv.example,serial=SRV-1");
	snprintf(
		sql, sizeof(sql),
		"SELECT string_agg(type || ':' || source_id || '>' || target_id, ',' ORDER BY type)"
		" FROM cmdb.rel WHERE upper_inf(valid) AND %lld IN (source_id, target_id)",
		(long long)keep);
	query(sql, out, sizeof(out));
	snprintf(sql, sizeof(sql), "has_interface:%lld>%lld,runs_on:%lld>%lld", (long long)keep,
		 (long long)nic, (long long)app, (long long)keep);
	assert_string_equal(out, sql);
	/* the merged CI keeps its own claims, as evidence of what it was */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM cmdb.attr_claim WHERE ci_id = %lld",
		 (long long)other);
	assert_true(count(sql) >= 3);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM cmdb.history WHERE op = 'merge' AND ci_id = %lld AND "
		 "other_ci_id = %lld",
		 (long long)keep, (long long)other);
	assert_int_equal(count(sql), 1);
	assert_int_equal(cmdb_audit_chain(db, &rep, &err), CMDB_OK);
	assert_false(rep.broken);
	cmdb_db_close(scanner);
	cmdb_db_close(inventory);
}

static void test_dry_run_writes_nothing_and_plans_exactly(void **state)
{
	struct cmdb_rows *dry = NULL, *real = NULL;
	struct cmdb_error err = {0};
	char before[256], after[256], *dry_text, *real_text;
	int64_t keep = add(db, "host", "dr-keep", "{\"a\": \"1\"}", "serial", "DR-1");
	int64_t other = add(db, "host", "dr-other", "{\"b\": \"2\"}", "uuid",
			    "6f1c0f8e-1111-4222-8333-444455556666");
	int64_t app = add(db, "application", "dr-app", NULL, NULL, NULL);

	relate(app, "depends_on", other);
	relate(other, "connects_to", keep);
	snapshot(before, sizeof(before));
	assert_int_equal(cmdb_dup_merge(db, keep, other, true, &dry, &err), CMDB_OK);
	snapshot(after, sizeof(after));
	assert_string_equal(before, after);
	assert_int_equal(cmdb_dup_merge(db, keep, other, false, &real, &err), CMDB_OK);
	dry_text = plan_text(dry);
	real_text = plan_text(real);
	assert_string_equal(dry_text, real_text);
	assert_non_null(
		strstr(real_text, "move identity|uuid=6f1c0f8e-1111-4222-8333-444455556666|"));
	assert_non_null(strstr(real_text, "drop relationship|"));
	free(dry_text);
	free(real_text);
	cmdb_rows_free(dry);
	cmdb_rows_free(real);
}

static void test_refusals_change_nothing(void **state)
{
	struct cmdb_rows *plan = NULL;
	struct cmdb_error err = {0};
	char before[256], after[256];
	int64_t a = add(db, "host", "rf-a", NULL, NULL, NULL);
	int64_t b = add(db, "host", "rf-b", NULL, NULL, NULL);
	int64_t c = add(db, "host", "rf-c", NULL, NULL, NULL);
	int64_t svc = add(db, "service", "rf-svc", NULL, NULL, NULL);
	int64_t gone = add(db, "host", "rf-gone", NULL, NULL, NULL);

	assert_int_equal(cmdb_ci_retire(db, gone, "test", &err), CMDB_OK);
	assert_int_equal(cmdb_dup_merge(db, a, b, false, &plan, &err), CMDB_OK);
	cmdb_rows_free(plan);
	snapshot(before, sizeof(before));

	assert_int_equal(cmdb_dup_merge(db, a, a, false, &plan, &err), CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "into itself"));
	assert_int_equal(cmdb_dup_merge(db, a, svc, false, &plan, &err), CMDB_EINVAL);
	assert_non_null(strstr(err.msg, "only CIs of the same type"));
	assert_int_equal(cmdb_dup_merge(db, c, b, false, &plan, &err), CMDB_ESTATE);
	assert_non_null(strstr(err.msg, "already merged"));
	assert_int_equal(cmdb_dup_merge(db, b, c, true, &plan, &err), CMDB_ESTATE);
	assert_int_equal(cmdb_dup_merge(db, gone, c, false, &plan, &err), CMDB_ESTATE);
	assert_non_null(strstr(err.msg, "is retired"));
	assert_int_equal(cmdb_dup_merge(db, a, 987654321, false, &plan, &err), CMDB_ENOTFOUND);
	snapshot(after, sizeof(after));
	assert_string_equal(before, after);
	/* a retired duplicate may be merged into a live CI */
	assert_int_equal(cmdb_dup_merge(db, c, gone, false, &plan, &err), CMDB_OK);
	cmdb_rows_free(plan);
}

static void test_reader_cannot_merge_or_edit_rules(void **state)
{
	struct cmdb_rows *rows = NULL;
	struct cmdb_error err = {0};
	struct cmdb_db *reader;
	char before[256], after[256], msg[256], login[1400];
	int64_t a = add(db, "host", "rd-a", NULL, NULL, NULL);
	int64_t b = add(db, "host", "rd-a", NULL, NULL, NULL);
	struct cmdb_db_options o = {.conninfo = login, .access = CMDB_ACCESS_WRITE};

	/* a login that holds only the reader role, whatever access it asks for */
	query("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cmdb_test_reader') "
	      "THEN"
	      " CREATE ROLE cmdb_test_reader LOGIN IN ROLE cmdb_reader; END IF; END $$",
	      msg, sizeof(msg));
	snprintf(login, sizeof(login), "%s user=cmdb_test_reader", conninfo);
	assert_int_equal(cmdb_db_open(&o, &reader, &err), CMDB_OK);
	snapshot(before, sizeof(before));
	assert_int_equal(cmdb_dup_merge(reader, a, b, false, &rows, &err), CMDB_EPERM);
	assert_int_equal(cmdb_dup_merge(reader, a, b, true, &rows, &err), CMDB_EPERM);
	assert_int_equal(cmdb_rules_edit(reader, "host", CMDB_RULES_RM, "fqdn", 0, &err),
			 CMDB_EPERM);
	snapshot(after, sizeof(after));
	assert_string_equal(before, after);
	/* but it reads the rules and the suspected duplicates */
	assert_int_equal(cmdb_rules_list(reader, "host", &rows, &err), CMDB_OK);
	cmdb_rows_free(rows);
	assert_int_equal(cmdb_dup_list(reader, "host", 0, &rows, &err), CMDB_OK);
	assert_true(cmdb_rows_count(rows) >= 1);
	cmdb_rows_free(rows);
	cmdb_db_close(reader);
}

struct merger {
	int64_t keep, other;
	cmdb_rc rc;
	char msg[CMDB_ERROR_MSG_MAX];
};

static void *merge_thread(void *arg)
{
	struct merger *m = arg;
	struct cmdb_db *d = open_as("test", CMDB_ACCESS_WRITE);
	struct cmdb_rows *plan = NULL;
	struct cmdb_error err = {0};

	m->rc = cmdb_dup_merge(d, m->keep, m->other, false, &plan, &err);
	snprintf(m->msg, sizeof(m->msg), "%s", err.msg);
	cmdb_rows_free(plan);
	cmdb_db_close(d);
	return NULL;
}

/* Two merges of one pair in opposite directions at once: the CIs are locked
 * in id order, so one waits for the other (no deadlock) and then finds its
 * CI merged. Whatever the timing, exactly one succeeds. */
static void test_concurrent_merges_of_one_pair(void **state)
{
	enum { ROUNDS = 5 };

	for (int i = 0; i < ROUNDS; i++) {
		char name[32];
		struct merger m[2];
		pthread_t t[2];
		int64_t a, b;

		snprintf(name, sizeof(name), "cc-%d", i);
		a = add(db, "host", name, NULL, NULL, NULL);
		b = add(db, "host", name, NULL, NULL, NULL);
		m[0] = (struct merger){.keep = a, .other = b};
		m[1] = (struct merger){.keep = b, .other = a};
		for (int k = 0; k < 2; k++)
			assert_int_equal(pthread_create(&t[k], NULL, merge_thread, &m[k]), 0);
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		if (!((m[0].rc == CMDB_OK) ^ (m[1].rc == CMDB_OK)))
			fail_msg("round %d: want one merge, got %d (%s) and %d (%s)", i, m[0].rc,
				 m[0].msg, m[1].rc, m[1].msg);
		assert_non_null(strstr(m[0].rc ? m[0].msg : m[1].msg, "already merged"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_edited_and_recorded),
		cmocka_unit_test(test_merge_moves_and_keeps_priority),
		cmocka_unit_test(test_dry_run_writes_nothing_and_plans_exactly),
		cmocka_unit_test(test_refusals_change_nothing),
		cmocka_unit_test(test_reader_cannot_merge_or_edit_rules),
		cmocka_unit_test(test_concurrent_merges_of_one_pair),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
