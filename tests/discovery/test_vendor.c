/* Unit tests for disc_vendor: fixture registry files, then the installed ieee-data files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "disc/vendor.h"

#define FIXTURES DISC_TEST_FIXTURES "/vendor"

static void expect(const struct disc_vendor_db *db, const char *mac_text, const char *name,
		   unsigned bits)
{
	uint8_t mac[6];
	struct disc_vendor_match m;

	assert_true(disc_vendor_parse_mac(mac_text, mac));
	disc_vendor_lookup(db, mac, &m);
	if (name == NULL) {
		if (m.name)
			fail_msg("%s: expected no vendor, got \"%s\"", mac_text, m.name);
		assert_int_equal(m.prefix_bits, 0);
		return;
	}
	if (!m.name || strcmp(m.name, name) != 0)
		fail_msg("%s: expected \"%s\", got \"%s\"", mac_text, name,
			 m.name ? m.name : "(none)");
	assert_int_equal(m.prefix_bits, bits);
}

static void test_fixture_longest_prefix(void **state)
{
	struct disc_vendor_db db;
	struct disc_error err = {0};

	disc_vendor_init(&db);
	if (disc_vendor_load_dir(&db, FIXTURES, &err) != DISC_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(disc_vendor_count(&db), 5);
	/* 70:B3:D5 is sub-assigned: MA-S beats MA-M beats MA-L. */
	expect(&db, "70:b3:d5:12:34:56", "Small Block Vendor", 36);
	expect(&db, "70:b3:d5:12:40:00", "Medium Block Vendor", 28);
	expect(&db, "70:B3:D5:1F:FF:FF", "Medium Block Vendor", 28);
	expect(&db, "70-b3-d5-20-00-00", "IEEE Registration Authority", 24);
	/* Quoted name with doubled quotes and a comma; address spanning two lines (CRLF file). */
	expect(&db, "001b21aabbcc", "Example \"Quoted\", Inc.", 24);
	/* Surrounding blanks are trimmed. */
	expect(&db, "ac:de:48:00:11:22", "Spaced Vendor", 24);
	expect(&db, "00:00:01:00:00:00", NULL, 0);
	expect(&db, "ff:ff:ff:ff:ff:ff", NULL, 0);
	disc_vendor_release(&db);
}

static void test_flags(void **state)
{
	struct disc_vendor_db db;
	struct disc_vendor_match m;
	uint8_t mac[6];

	disc_vendor_init(&db);
	assert_true(disc_vendor_parse_mac("52:54:00:12:34:56", mac)); /* QEMU's default: local */
	disc_vendor_lookup(&db, mac, &m);
	assert_true(m.local);
	assert_false(m.multicast);
	assert_null(m.name);
	assert_true(disc_vendor_parse_mac("01:00:5e:00:00:fb", mac)); /* IPv4 multicast (mDNS) */
	disc_vendor_lookup(&db, mac, &m);
	assert_true(m.multicast);
	assert_false(m.local);
	assert_true(disc_vendor_parse_mac("ff:ff:ff:ff:ff:ff", mac));
	disc_vendor_lookup(&db, mac, &m);
	assert_true(m.multicast && m.local);
	assert_true(disc_vendor_parse_mac("00:1b:21:00:00:01", mac));
	disc_vendor_lookup(&db, mac, &m);
	assert_false(m.multicast || m.local);
	disc_vendor_release(&db);
}

static void test_parse_mac(void **state)
{
	uint8_t mac[6];
	static const uint8_t want[6] = {0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc};

	assert_true(disc_vendor_parse_mac("00:1B:21:aa:bb:cc", mac));
	assert_memory_equal(mac, want, 6);
	assert_true(disc_vendor_parse_mac("001b21aabbcc", mac));
	assert_memory_equal(mac, want, 6);
	assert_false(disc_vendor_parse_mac("00:1b:21:aa:bb", mac));
	assert_false(disc_vendor_parse_mac("00:1b:21-aa:bb:cc", mac));
	assert_false(disc_vendor_parse_mac("00:1b:21:aa:bb:cg", mac));
	assert_false(disc_vendor_parse_mac("", mac));
}

static void test_bad_files(void **state)
{
	struct disc_vendor_db db;
	struct disc_error err = {0};

	disc_vendor_init(&db);
	assert_int_equal(
		disc_vendor_load_csv(&db, DISC_TEST_FIXTURES "/vendor_bad/bad_digits.csv", &err),
		DISC_ERR_SYNTAX);
	assert_non_null(
		strstr(err.msg, "bad_digits.csv:2: MA-L assignment \"00112\" is not 6 hex digits"));
	assert_int_equal(
		disc_vendor_load_csv(&db, DISC_TEST_FIXTURES "/vendor_bad/bad_quote.csv", &err),
		DISC_ERR_SYNTAX);
	assert_non_null(strstr(err.msg, "bad_quote.csv:2: unterminated quote"));
	assert_int_equal(disc_vendor_load_csv(&db, "/nonexistent.csv", &err), DISC_ERR_IO);
	assert_int_equal(disc_vendor_load_dir(&db, "/nonexistent", &err), DISC_ERR_IO);
	assert_non_null(strstr(err.msg, "install ieee-data"));
	disc_vendor_release(&db);
}

static void test_installed_ieee_data(void **state)
{
	struct disc_vendor_db db;
	struct disc_error err = {0};

	if (access(DISC_VENDOR_DEFAULT_DIR "/oui.csv", R_OK) != 0)
		skip();
	disc_vendor_init(&db);
	if (disc_vendor_load_dir(&db, NULL, &err) != DISC_OK)
		fail_msg("%s", err.msg);
	/* Debian 12's ieee-data has ~32,500 MA-L, ~4,400 MA-M, ~5,000 MA-S and ~4,600 IAB rows. */
	assert_true(disc_vendor_count(&db) > 40000);
	expect(&db, "00:1b:21:12:34:56", "Intel Corporate", 24);
	expect(&db, "08:00:27:00:00:01", "PCS Systemtechnik GmbH", 24); /* VirtualBox NICs */
	expect(&db, "70:b3:d5:f2:f0:01", "TELEPLATFORMS", 36);		/* MA-S inside 70:B3:D5 */
	expect(&db, "74:1a:e0:90:00:00", "Private", 28);		/* MA-M 741AE09 */
	disc_vendor_release(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_longest_prefix),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_parse_mac),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_installed_ieee_data),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
