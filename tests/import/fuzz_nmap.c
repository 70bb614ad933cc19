/* Fuzz target: the nmap XML importer on arbitrary bytes (see fuzz_check.h). */
#include "fuzz.h"
#include "fuzz_check.h"
#include "import_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmdb_import_stats st;
	struct cmdb_error err;
	cmdb_rc rc;

	rc = cmdb_import_nmap_xml_buffer(data, size, "fuzz.xml", fuzz_sink, NULL, &st, &err);
	fuzz_check_result(rc, &err, &st);
	return 0;
}
