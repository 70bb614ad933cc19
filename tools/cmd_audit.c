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
	"Verifies the hash chain over the whole history. Every statement that\n"
	"changes the CMDB writes its history rows as one block; each row is hashed,\n"
	"each block records its rows' digest and the previous block's hash. An\n"
	"altered, removed or inserted row, an altered or removed block, or a cut\n"
	"end breaks the chain. Reports the first broken block and its rows, and\n"
	"exits 1 if the chain is broken. Prints the chain head (last block and\n"
	"hash): write it down to prove later that nothing before it was rewritten.\n";

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
		json_t *o = json_pack("{s:b,s:I,s:I,s:I,s:s}", "intact", rc == CMDB_OK, "rows",
				      (json_int_t)rep.checked, "blocks", (json_int_t)rep.blocks, "head_block",
				      (json_int_t)rep.head_block, "head_hash", rep.head_hash);
		if (rc)
			json_object_set_new(o, "broken",
					    json_pack("{s:I,s:I,s:I,s:s}", "block", (json_int_t)rep.broken_block,
						      "first_row", (json_int_t)rep.broken_first, "last_row",
						      (json_int_t)rep.broken_last, "problem", rep.problem));
		cli_print_json(o);
		json_decref(o);
	} else if (rc == CMDB_OK) {
		printf("history chain intact: %" PRId64 " rows in %" PRId64 " blocks verified; head is block %" PRId64
		       " %s\n",
		       rep.checked, rep.blocks, rep.head_block, rep.head_hash);
	}
	if (rc) {
		cli_fail("history chain BROKEN at rows %" PRId64 "..%" PRId64 " (block %" PRId64 "): %s",
			 rep.broken_first, rep.broken_last, rep.broken_block, rep.problem);
		return EXIT_FAIL;
	}
	return cli_finish(EXIT_OK);
}
