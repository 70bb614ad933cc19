/*
 * Fuzz target: the service probe database parser. The input is database
 * text. A database that parses must be usable: every probe's plan and a
 * match over a fixed answer must work, and every message of a rejected one
 * must name its line.
 */
#include <stdlib.h>
#include <string.h>

#include "disc/ports.h"
#include "disc/svcdb.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t answer[] = "SSH-2.0-OpenSSH_9.2p1\r\nHTTP/1.0 200 OK\r\n\r\n";
	struct disc_svcdb *db;
	struct disc_error err = {0};
	size_t order[32];

	if (size > 65536)
		return 0;
	if (disc_svcdb_parse(&db, (const char *)data, size, "fuzz", &err) != DISC_OK) {
		if (db || strncmp(err.msg, "fuzz:", 5) != 0)
			__builtin_trap();
		return 0;
	}
	for (size_t p = 0; p < disc_svcdb_n_probes(db); p++) {
		struct disc_svc_match m;
		const struct disc_svc_probe *pr = disc_svcdb_probe(db, p);

		if (disc_svcdb_match(db, p, answer, sizeof(answer) - 1, &m, NULL) == DISC_OK &&
		    m.service[0] && strlen(m.product) >= DISC_SVC_FIELD_MAX)
			__builtin_trap();
		disc_svc_match_release(&m);
		if (disc_svcdb_plan(db, pr->proto, pr->n_ports ? pr->ports[0].lo : 80, false, order,
				    32) > 32)
			__builtin_trap();
	}
	disc_svcdb_free(db);
	return 0;
}
