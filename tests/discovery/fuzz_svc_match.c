/*
 * Fuzz target: the banner and response matcher over the built-in database.
 * The input is "PROBE\n" followed by the response bytes (PROBE a probe name,
 * e.g. "null" or "http-get"; an unknown name means the NULL probe). Every
 * field a match yields must be valid UTF-8 that JSON accepts.
 */
#include <stdlib.h>
#include <string.h>

#include "disc/svcdb.h"
#include "fuzz.h"

static struct disc_svcdb *db;

static void check_text(const char *s)
{
	json_t *j = json_string(s); /* NULL for invalid UTF-8 */

	if (!j)
		__builtin_trap();
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size < DISC_SVC_NAME_MAX ? size : DISC_SVC_NAME_MAX);
	char name[DISC_SVC_NAME_MAX] = "null";
	struct disc_svc_match m;
	int probe;

	if (!db && disc_svcdb_load_default(&db, NULL) != DISC_OK)
		__builtin_trap();
	if (nl) {
		memcpy(name, data, (size_t)(nl - data));
		name[nl - data] = '\0';
		size -= (size_t)(nl - data) + 1;
		data = nl + 1;
	}
	probe = disc_svcdb_find_probe(db, name);
	if (probe < 0)
		probe = 0;
	/* Copy to an exact-size buffer, so that any over-read is caught. */
	{
		uint8_t *buf = malloc(size ? size : 1);

		if (!buf)
			return 0;
		memcpy(buf, data, size);
		if (disc_svcdb_match(db, (size_t)probe, buf, size, &m, NULL) == DISC_OK && m.service[0]) {
			const char *key;
			json_t *v;

			check_text(m.product);
			check_text(m.version);
			json_object_foreach(m.extra, key, v)
				if (!json_is_string(v))
					__builtin_trap();
		}
		disc_svc_match_release(&m);
		free(buf);
	}
	return 0;
}
