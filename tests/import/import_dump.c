/*
 * import_dump nmap|masscan|csv FILE [TYPE [KIND=COLUMN...]]: prints the
 * observations an importer makes of FILE, one per line with sorted keys, then
 * the stats on stderr. Exit 1 on an error (printed on stderr).
 * Used to write the expected-output files of the tests (after checking them
 * by hand against the input).
 */
#include <stdio.h>
#include <string.h>

#include "cmdb/import.h"

static cmdb_rc print_obs(void *ctx, const json_t *obs, struct cmdb_error *err)
{
	(void)ctx;
	(void)err;
	if (json_dumpf(obs, stdout, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9)) != 0)
		return cmdb_error_set(err, CMDB_ESYS, "cannot write to stdout");
	putchar('\n');
	return CMDB_OK;
}

int main(int argc, char **argv)
{
	struct cmdb_import_stats st;
	struct cmdb_error err;
	cmdb_rc rc;

	if (argc < 3) {
		fprintf(stderr,
			"usage: import_dump nmap|masscan|csv FILE [TYPE [KIND=COLUMN...]]\n");
		return 2;
	}
	if (strcmp(argv[1], "nmap") == 0) {
		rc = cmdb_import_nmap_xml(argv[2], print_obs, NULL, &st, &err);
	} else if (strcmp(argv[1], "masscan") == 0) {
		rc = cmdb_import_masscan_json(argv[2], print_obs, NULL, &st, &err);
	} else if (strcmp(argv[1], "csv") == 0) {
		struct cmdb_csv_map map = {
			.type = argc > 3 ? argv[3] : "host",
			.identities = argc > 4 ? (const char *const *)argv + 4 : NULL,
			.n_identities = argc > 4 ? (size_t)(argc - 4) : 0,
		};

		rc = cmdb_import_csv(argv[2], &map, print_obs, NULL, &st, &err);
	} else {
		fprintf(stderr, "import_dump: unknown importer %s\n", argv[1]);
		return 2;
	}
	fprintf(stderr, "records=%llu observations=%llu skipped=%llu first_skip=%s\n",
		(unsigned long long)st.records, (unsigned long long)st.observations,
		(unsigned long long)st.skipped, st.first_skip);
	if (rc != CMDB_OK) {
		fprintf(stderr, "error (%s): %s\n", cmdb_rc_name(rc), err.msg);
		return 1;
	}
	return 0;
}
