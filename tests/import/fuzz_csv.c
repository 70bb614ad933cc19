/* Fuzz target: the CSV inventory importer on arbitrary bytes (see
 * fuzz_check.h), through a memory stream, with a map that names an
 * identity column so that both header paths run. */
#include <stdio.h>

#include "fuzz.h"
#include "fuzz_check.h"
#include "import_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ids[] = {"serial=serial"};
	const struct cmdb_csv_map plain = {.type = "host"};
	const struct cmdb_csv_map mapped = {.type = "host", .identities = ids, .n_identities = 1};
	struct cmdb_import_stats st;
	struct cmdb_error err;
	cmdb_rc rc;

	if (size == 0)
		return 0; /* fmemopen refuses an empty buffer; the unit tests cover it */
	for (int i = 0; i < 2; i++) {
		FILE *f = fmemopen((void *)data, size, "rb"); /* read-only: data is not written */

		if (!f)
			return 0;
		rc = cmdb_import_csv_stream(f, "fuzz.csv", i ? &mapped : &plain, fuzz_sink, NULL,
					    &st, &err);
		fclose(f);
		fuzz_check_result(rc, &err, &st);
	}
	return 0;
}
