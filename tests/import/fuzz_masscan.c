/* Fuzz target: the masscan JSON/NDJSON importer on arbitrary bytes (see
 * fuzz_check.h), through a memory stream. */
#include <stdio.h>

#include "fuzz.h"
#include "fuzz_check.h"
#include "import_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmdb_import_stats st;
	struct cmdb_error err;
	FILE *f;
	cmdb_rc rc;

	if (size == 0)
		return 0; /* fmemopen refuses an empty buffer; the unit tests cover it */
	f = fmemopen((void *)data, size, "rb"); /* read-only: data is not written */
	if (!f)
		return 0;
	rc = cmdb_import_masscan_stream(f, "fuzz.json", fuzz_sink, NULL, &st, &err);
	fclose(f);
	fuzz_check_result(rc, &err, &st);
	return 0;
}
