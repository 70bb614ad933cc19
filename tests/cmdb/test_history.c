/*
 * The history: hash chain verification and tamper detection, append-only
 * for every role, role rights, and the chain under concurrent writers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "cmdb/audit.h"
#include "cmdb/ci.h"
#include "testdb.h"

static char conninfo[1200];

static int64_t add(struct cmdb_db *db, const char *name)
{
	struct cmdb_ci_new ci = {.type = "host", .name = name, .description = "history test"};
	struct cmdb_error err = {0};
	int64_t id;

	assert_int_equal(cmdb_ci_add(db, &ci, &id, &err), CMDB_OK);
	return id;
}

static void fresh(const char *name, struct cmdb_db **db)
{
	testdb_create(name, conninfo, sizeof(conninfo));
	*db = testdb_open(conninfo, CMDB_ACCESS_WRITE);
}

static void work(struct cmdb_db *db)
{
	struct cmdb_ci_change ch = {.status = "maintenance", .owner = "ops"};
	struct cmdb_error err = {0};
	int64_t a = add(db, "h1"), b = add(db, "h2");

	assert_int_equal(cmdb_ci_set(db, a, &ch, &err), CMDB_OK);
	assert_int_equal(cmdb_ci_identity_add(db, b, "serial", "S-1", &err), CMDB_OK);
	assert_int_equal(cmdb_ci_retire(db, b, "gone", &err), CMDB_OK);
}

static void test_intact_chain(void **state)
{
	struct cmdb_chain_report rep;
	struct cmdb_error err = {0};
	struct cmdb_db *db;

	fresh("test_hist_intact", &db);
	work(db);
	assert_int_equal(cmdb_audit_chain(db, &rep, &err), CMDB_OK);
	assert_false(rep.broken);
	assert_true(rep.checked >= 6);
	assert_true(rep.blocks >= 4);
	assert_int_equal(rep.head_block, rep.blocks);
	assert_int_equal(strlen(rep.head_hash), 64);
	cmdb_db_close(db);
}

/* Alters the history behind the triggers' back, as a superuser could. */
static void tamper(const char *sql)
{
	char msg[512], full[2048];

	snprintf(full, sizeof(full), "SET session_replication_role = replica; %s", sql);
	if (testdb_sql(conninfo, full, msg, sizeof(msg)) != 0)
		fail_msg("tampering failed: %s", msg);
}

/* The audit must report the break at the block holding row row_sql names. */
static void expect_broken(struct cmdb_db *db, const char *row_sql, const char *problem)
{
	struct cmdb_chain_report rep;
	struct cmdb_error err = {0};
	char row[32];
	long long id;

	assert_int_equal(testdb_sql(conninfo, row_sql, row, sizeof(row)), 0);
	id = atoll(row);
	assert_int_equal(cmdb_audit_chain(db, &rep, &err), CMDB_EINTEGRITY);
	assert_true(rep.broken);
	if (rep.broken_first > id || rep.broken_last < id)
		fail_msg("break reported at rows %lld..%lld, expected the block of row %lld (%s)",
			 (long long)rep.broken_first, (long long)rep.broken_last, id, rep.problem);
	if (!strstr(rep.problem, problem))
		fail_msg("problem \"%s\" lacks \"%s\"", rep.problem, problem);
}

static void test_altered_row_detected(void **state)
{
	struct cmdb_db *db;

	fresh("test_hist_altered", &db);
	work(db);
	tamper("UPDATE cmdb.history SET new = '\"nobody\"' WHERE field = 'owner'");
	expect_broken(db, "SELECT id FROM cmdb.history WHERE field = 'owner'", "a row was altered");
	cmdb_db_close(db);
}

static void test_removed_row_detected(void **state)
{
	struct cmdb_db *db;

	fresh("test_hist_removed", &db);
	work(db);
	tamper("DELETE FROM cmdb.history WHERE field = 'owner'");
	/* its block now holds fewer rows than it sealed */
	expect_broken(db, "SELECT id FROM cmdb.history WHERE op = 'status'", "rows were removed or inserted");
	cmdb_db_close(db);
}

static void test_cut_tail_detected(void **state)
{
	struct cmdb_db *db;

	fresh("test_hist_tail", &db);
	work(db);
	/* the last block and its rows go: what is left is a valid chain, shorter than the head says */
	tamper("DELETE FROM cmdb.history WHERE id >= (SELECT first_id FROM cmdb.history_block ORDER BY id DESC LIMIT 1);"
	       "DELETE FROM cmdb.history_block WHERE id = (SELECT max(id) FROM cmdb.history_block)");
	expect_broken(db, "SELECT max(id) FROM cmdb.history", "the end was cut off");
	cmdb_db_close(db);
}

static void test_rewritten_with_new_hash_detected(void **state)
{
	struct cmdb_db *db;

	fresh("test_hist_rehash", &db);
	work(db);
	/* a forger who also reseals the altered row's block breaks the next block's link */
	tamper("UPDATE cmdb.history h SET new = '\"nobody\"' WHERE field = 'owner';"
	       "UPDATE cmdb.history_block b SET digest = (SELECT sha256(string_agg(h.hash, ''::bytea ORDER BY h.id))"
	       "  FROM cmdb.history h WHERE h.id BETWEEN b.first_id AND b.last_id)"
	       " WHERE (SELECT id FROM cmdb.history WHERE field = 'owner') BETWEEN first_id AND last_id;"
	       "UPDATE cmdb.history_block b SET hash = cmdb.block_hash(prev_hash, id, first_id, last_id, rows, digest)"
	       " WHERE (SELECT id FROM cmdb.history WHERE field = 'owner') BETWEEN first_id AND last_id");
	expect_broken(db, "SELECT min(id) FROM cmdb.history WHERE id > (SELECT last_id FROM cmdb.history_block b"
			  " WHERE (SELECT id FROM cmdb.history WHERE field = 'owner') BETWEEN first_id AND last_id)",
		      "link to the previous block");
	cmdb_db_close(db);
}

static void test_row_outside_blocks_detected(void **state)
{
	struct cmdb_db *db;

	fresh("test_hist_orphan", &db);
	work(db);
	/* a row slipped in with the triggers off belongs to no block */
	tamper("INSERT INTO cmdb.history (entity, op, ci_id, field, new) VALUES ('ci', 'update', 1, 'owner', '\"mallory\"')");
	expect_broken(db, "SELECT max(id) FROM cmdb.history", "belongs to no block");
	cmdb_db_close(db);
}

static void test_append_only_for_every_role(void **state)
{
	static const char *const roles[] = {"cmdb_writer", "cmdb_owner", "cmdb_reader"};
	static const char *const stmts[] = {"UPDATE cmdb.history SET source = 'x'", "DELETE FROM cmdb.history",
					    "TRUNCATE cmdb.history", "DELETE FROM cmdb.history_head",
					    "UPDATE cmdb.history_block SET rows = 0", "DELETE FROM cmdb.history_block"};
	struct cmdb_db *db;
	char sql[256], msg[512], before[32], after[32];

	fresh("test_hist_roles", &db);
	work(db);
	assert_int_equal(testdb_sql(conninfo, "SELECT count(*) FROM cmdb.history", before, sizeof(before)), 0);
	for (size_t r = 0; r < 3; r++) {
		for (size_t s = 0; s < sizeof(stmts) / sizeof(stmts[0]); s++) {
			snprintf(sql, sizeof(sql), "SET ROLE %s; %s", roles[r], stmts[s]);
			assert_int_equal(testdb_sql(conninfo, sql, msg, sizeof(msg)), -1);
		}
	}
	/* even the superuser is stopped by the triggers */
	assert_int_equal(testdb_sql(conninfo, "DELETE FROM cmdb.history", msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "append-only"));
	assert_int_equal(testdb_sql(conninfo, "SELECT count(*) FROM cmdb.history", after, sizeof(after)), 0);
	assert_string_equal(before, after);
	cmdb_db_close(db);
}

static void test_reader_cannot_write(void **state)
{
	static const char *const writes[] = {
		"SELECT cmdb.ci_add('host', 'r', 'reader', NULL, NULL, NULL, NULL, NULL)",
		"UPDATE cmdb.ci SET description = 'x'",
		"INSERT INTO cmdb.ci_type (name, description) VALUES ('rt', 'x')",
		"UPDATE cmdb.rel_type SET description = 'x'",
		"INSERT INTO cmdb.ci_identity (ci_id, kind, value) SELECT id, 'serial', 'R' FROM cmdb.ci LIMIT 1",
		"INSERT INTO cmdb.history (entity, op) VALUES ('ci', 'forged')",
		"CREATE TABLE cmdb.sneaky (x int)",
		"UPDATE cmdb.history_head SET rows = 0",
	};
	struct cmdb_db_options o = {.conninfo = NULL, .access = CMDB_ACCESS_READ};
	struct cmdb_ci_new ci = {.type = "host", .name = "via-api", .description = "x"};
	struct cmdb_error err = {0};
	struct cmdb_db *db, *reader;
	char sql[512], msg[512];
	int64_t id;

	fresh("test_hist_reader", &db);
	work(db);
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		snprintf(sql, sizeof(sql), "SET ROLE cmdb_reader; %s", writes[i]);
		assert_int_equal(testdb_sql(conninfo, sql, msg, sizeof(msg)), -1);
		assert_non_null(strstr(msg, "permission denied"));
	}
	/* the library's read access takes the reader role */
	o.conninfo = conninfo;
	assert_int_equal(cmdb_db_open(&o, &reader, &err), CMDB_OK);
	assert_int_equal(cmdb_ci_add(reader, &ci, &id, &err), CMDB_EPERM);
	cmdb_db_close(reader);
	/* writers cannot touch the schema or write history directly */
	assert_int_equal(testdb_sql(conninfo, "SET ROLE cmdb_writer; CREATE TABLE cmdb.sneaky (x int)", msg, sizeof(msg)), -1);
	assert_int_equal(testdb_sql(conninfo, "SET ROLE cmdb_writer; SELECT cmdb.history_append('ci','x',NULL,NULL,NULL,NULL,NULL,NULL)",
				    msg, sizeof(msg)), -1);
	cmdb_db_close(db);
}

static void test_concurrent_writers_keep_one_chain(void **state)
{
	enum { WRITERS = 4, EACH = 25 };
	struct cmdb_chain_report rep;
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	char out[32];
	pid_t pids[WRITERS];

	fresh("test_hist_concurrent", &db);
	for (int w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			struct cmdb_db *mine = testdb_open(conninfo, CMDB_ACCESS_WRITE);
			char name[32];

			for (int i = 0; i < EACH; i++) {
				struct cmdb_ci_new ci = {.type = "host", .name = name, .description = "concurrent"};
				struct cmdb_ci_change ch = {.status = "maintenance"};
				int64_t id;

				snprintf(name, sizeof(name), "w%d-%d", w, i);
				if (cmdb_ci_add(mine, &ci, &id, &err) || cmdb_ci_set(mine, id, &ch, &err))
					_exit(1);
			}
			cmdb_db_close(mine);
			_exit(0);
		}
	}
	for (int w = 0; w < WRITERS; w++) {
		int status;
		assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(cmdb_audit_chain(db, &rep, &err), CMDB_OK);
	/* every CI's create and change, plus the first writer's registration of
	 * its source (sql), once however many raced for it */
	assert_int_equal(testdb_sql(conninfo, "SELECT count(*) FROM cmdb.history WHERE entity = 'source'", out,
				    sizeof(out)),
			 0);
	assert_string_equal(out, "1");
	assert_int_equal(rep.checked, WRITERS * EACH * 2 + 1);
	/* blocks follow commit order: ids never go back along the chain, and
	 * the rows of a block come from one transaction */
	assert_int_equal(testdb_sql(conninfo, "SELECT count(*) FROM (SELECT first_id <= lag(last_id) OVER (ORDER BY id) AS back "
					      "FROM cmdb.history_block) x WHERE back", out, sizeof(out)), 0);
	assert_string_equal(out, "0");
	assert_int_equal(testdb_sql(conninfo, "SELECT count(*) FROM cmdb.history_block b WHERE (SELECT count(DISTINCT txid) "
					      "FROM cmdb.history h WHERE h.id BETWEEN b.first_id AND b.last_id) <> 1",
				    out, sizeof(out)), 0);
	assert_string_equal(out, "0");
	cmdb_db_close(db);
}

/* The bytes a row's hash covers, as 001 first defined them: every version of
 * cmdb.history_hash must give the same digests, or existing chains break. */
#define HASH_V1(t)                                                                                        \
	"sha256(convert_to(concat_ws(E'\\x1f', " t ".id::text, (extract(epoch FROM " t ".at) * 1000000)::bigint::text, " \
	t ".txid::text, " t ".db_user, coalesce(" t ".os_user, E'\\\\N'), " t ".source, "                          \
	"coalesce(" t ".change_ref, E'\\\\N'), coalesce(" t ".reason, E'\\\\N'), " t ".entity, " t ".op, "          \
	"coalesce(" t ".ci_id::text, E'\\\\N'), coalesce(" t ".other_ci_id::text, E'\\\\N'), "                      \
	"coalesce(" t ".rel_id::text, E'\\\\N'), coalesce(" t ".field, E'\\\\N'), coalesce(" t ".old::text, E'\\\\N'), " \
	"coalesce(" t ".new::text, E'\\\\N')), 'UTF8'))"
#define HASH_NOW(t)                                                                                       \
	"cmdb.history_hash(" t ".id, " t ".at, " t ".txid, " t ".db_user, " t ".os_user, " t ".source, "            \
	t ".change_ref, " t ".reason, " t ".entity, " t ".op, " t ".ci_id, " t ".other_ci_id, " t ".rel_id, "       \
	t ".field, " t ".old, " t ".new)"

static void test_hash_bytes_fixed(void **state)
{
	/* awkward values: backslashes (the inlined hash doubles them), NULLs,
	 * non-ASCII, separators inside fields, a time before 1970 */
	static const char rows[] =
		"WITH v(id, at, txid, db_user, os_user, source, change_ref, reason, entity, op, ci_id, other_ci_id, "
		"rel_id, field, old, new) AS (VALUES "
		"(1::bigint, '2026-11-21 10:00:00.123456+00'::timestamptz, 42::bigint, 'cmdb', NULL::text, 'sql', "
		" NULL::text, NULL::text, 'ci', 'create', 7::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::jsonb, "
		" '{\"name\": \"h1\", \"attributes\": {}}'::jsonb), "
		"(2, '1969-12-31 23:59:59.999999+00', 43, 'al\\ice', 'b\xc3\xb6\\\\b', 'nmap\\N', 'CHG-1 \"x\"', E'tab\\there', "
		" 'rel', 'relate', -5, 9223372036854775807, 3, 'attributes.x\\y', "
		" '{\"k\": \"v\\\\\\\\x\\u00e9\xf0\x9f\x98\x80\"}', '[\"\\\\N\", null, 1.50]'), "
		"(3, '2001-02-03 04:05:06.7+05:30', 0, '\xe2\x82\xac', '', '\\', '\\\\', E'\\x1f', 'identity', "
		" 'identity_add', NULL, NULL, NULL, 'serial', '\"\"', 'null')) ";
	/* digests computed with 001's function */
	static const char *const want[] = {
		"96120d638f669ff1e7fc877e6eb1f3a69d7d71324c568202f2583ddc9bce4b22",
		"ae52fdb543f1890b0298000a0dc9c2adda29b2be3e34bbc80fecc9c007255568",
		"a904f57420b9f8f86e877bced0891ebe31baf6b80261ebcdb3a99f6a87574f4a",
	};
	char sql[4096], out[256], msg[512];
	struct cmdb_db *db;

	fresh("test_hist_hash_bytes", &db);
	work(db);
	for (int i = 0; i < 3; i++) {
		snprintf(sql, sizeof(sql),
			 "%s SELECT encode(" HASH_NOW("v") ", 'hex') || ' ' || encode(" HASH_V1("v") ", 'hex') "
			 "FROM v WHERE id = %d",
			 rows, i + 1);
		if (testdb_sql(conninfo, sql, out, sizeof(out)) != 0)
			fail_msg("%s", out);
		snprintf(msg, sizeof(msg), "%s %s", want[i], want[i]);
		assert_string_equal(out, msg);
	}
	/* and every row written so far, through the generated column */
	assert_int_equal(testdb_sql(conninfo,
				    "SELECT count(*) FILTER (WHERE h.hash <> " HASH_V1("h") ") || '/' || count(*) "
				    "FROM cmdb.history h",
				    out, sizeof(out)),
			 0);
	assert_true(strncmp(out, "0/", 2) == 0 && atoi(out + 2) >= 6);
	cmdb_db_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intact_chain),
		cmocka_unit_test(test_altered_row_detected),
		cmocka_unit_test(test_removed_row_detected),
		cmocka_unit_test(test_cut_tail_detected),
		cmocka_unit_test(test_rewritten_with_new_hash_detected),
		cmocka_unit_test(test_row_outside_blocks_detected),
		cmocka_unit_test(test_append_only_for_every_role),
		cmocka_unit_test(test_reader_cannot_write),
		cmocka_unit_test(test_concurrent_writers_keep_one_chain),
		cmocka_unit_test(test_hash_bytes_fixed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
