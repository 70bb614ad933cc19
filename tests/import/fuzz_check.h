/*
 * What the importer fuzz targets check besides memory errors (caught by
 * ASan): every observation handed to the sink has the fields every line
 * must carry and serialises (so its strings are valid UTF-8), and every
 * error carries a message.
 */
#ifndef IMPORT_FUZZ_CHECK_H
#define IMPORT_FUZZ_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "cmdb/import.h"

static cmdb_rc fuzz_sink(void *ctx, const json_t *obs, struct cmdb_error *err)
{
	char *s;

	(void)ctx;
	(void)err;
	if (!json_is_object(obs) || json_integer_value(json_object_get(obs, "v")) != 1 ||
	    !json_is_string(json_object_get(obs, "kind")) ||
	    strlen(json_string_value(json_object_get(obs, "scan_id"))) != 36 ||
	    strlen(json_string_value(json_object_get(obs, "at"))) != 24)
		__builtin_trap();
	s = json_dumps(obs, JSON_COMPACT);
	if (!s)
		__builtin_trap();
	free(s);
	return CMDB_OK;
}

static void fuzz_check_result(cmdb_rc rc, const struct cmdb_error *err,
			      const struct cmdb_import_stats *st)
{
	if (rc != CMDB_OK && err->msg[0] == '\0')
		__builtin_trap();
	if (st->skipped > 0 && st->first_skip[0] == '\0')
		__builtin_trap();
}

#endif
