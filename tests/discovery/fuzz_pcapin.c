/*
 * Fuzz target: the --pcap reader on arbitrary bytes as a capture file
 * (through fmemopen, as libpcap reads any stream), with targets off and the
 * OS signatures on, then everything it found written as observations.
 * Every failure must carry a message; every line written must be JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc/pcapin.h"
#include "fuzz.h"

static struct disc_os_db os;
static int os_loaded;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disc_pcapin_config cfg = {.os = &os, .banner_max = 64};
	struct disc_pcapin *p = NULL;
	struct disc_error err = {0};
	struct disc_obs_writer w;
	char *text = NULL;
	size_t text_len = 0;
	FILE *in, *out;

	if (!os_loaded) {
		disc_os_db_init(&os);
		if (disc_os_db_load_builtin(&os, NULL) != DISC_OK)
			__builtin_trap();
		os_loaded = 1;
	}
	if (size == 0)
		return 0; /* fmemopen refuses an empty buffer */
	in = fmemopen((void *)data, size, "rb");
	if (!in)
		return 0;
	if (disc_pcapin_open_file(&p, in, "fuzz", &cfg, &err) != DISC_OK) {
		if (err.msg[0] == '\0' || strncmp(err.msg, "fuzz: ", 6) != 0)
			__builtin_trap();
		return 0;
	}
	if (disc_pcapin_run(p, &err) != DISC_OK && strncmp(err.msg, "fuzz: ", 6) != 0)
		__builtin_trap();
	out = open_memstream(&text, &text_len);
	if (out) {
		disc_obs_writer_init(&w, out, "fuzz");
		if (disc_pcapin_emit(p, &w, NULL, NULL, NULL, NULL, &err) != DISC_OK)
			__builtin_trap(); /* writing to memory does not fail */
		fclose(out);
		for (char *line = text; line && *line;) {
			char *nl = strchr(line, '\n');
			json_error_t jerr;
			json_t *obj;

			if (!nl)
				__builtin_trap(); /* every line ends */
			obj = json_loadb(line, (size_t)(nl - line), 0, &jerr);
			if (!obj)
				__builtin_trap();
			json_decref(obj);
			line = nl + 1;
		}
		free(text);
	}
	disc_pcapin_free(p);
	return 0;
}
