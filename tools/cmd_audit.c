/*
 * cmdb audit chain: verify the tamper-evident history.
 */
#include <inttypes.h>
#include <stdio.h>
#include "cmdb/audit.h"
#include "commands.h"

const char usage_audit_chain[] =
	"Usage: cmdb audit chain [--json]\n"
	"\n"
	"Verifies the hash chain over the whole history: every row's hash covers\n"
	"its content and the previous row's hash, so an altered, removed or\n"
	"inserted row breaks it. Reports the first broken row and exits 1 if the\n"
	"chain is broken. Prints the chain head (last row and hash): write it down\n"
	"to prove later that nothing before it was rewritten.\n";

int cmd_audit_chain(struct cli *cli, int argc, char **argv)
{
	struct cmdb_chain_report rep;
	struct cmdb_error err = {0};
	struct cmdb_db *db;
	cmdb_rc rc;

	if (!cli_plain_args(cli, argc, argv, 0, 0))
		return cli->exit;
	db = cli_open(cli, CMDB_ACCESS_READ);
	if (!db)
		return EXIT_FAIL;
	rc = cmdb_audit_chain(db, &rep, &err);
	cmdb_db_close(db);
	if (rc && rc != CMDB_EINTEGRITY)
		return cli_error(&err);
	if (cli->format == FMT_JSON) {
		json_t *o = json_pack("{s:b,s:I,s:I,s:s}", "intact", rc == CMDB_OK, "checked",
				      (json_int_t)rep.checked, "head_id", (json_int_t)rep.head_id,
				      "head_hash", rep.head_hash);
		if (rc)
			json_object_set_new(o, "broken", json_pack("{s:I,s:s}", "id", (json_int_t)rep.broken_id,
								   "problem", rep.problem));
		cli_print_json(o);
		json_decref(o);
	} else if (rc == CMDB_OK) {
		printf("history chain intact: %" PRId64 " rows verified; head is row %" PRId64 " %s\n",
		       rep.checked, rep.head_id, rep.head_hash);
	}
	if (rc) {
		cli_fail("history chain BROKEN at row %" PRId64 ": %s", rep.broken_id, rep.problem);
		return EXIT_FAIL;
	}
	return cli_finish(EXIT_OK);
}
