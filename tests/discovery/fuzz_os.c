/*
 * Fuzz target: disc_os_db_parse on arbitrary text. A file that parses is
 * then used: every signature and hint is checked for what the parser
 * promises (texts terminated and bounded, counts within their arrays), and
 * a guess is made for a fingerprint and a banner taken from the input.
 */
#include <string.h>

#include "disc/os.h"
#include "fuzz.h"

static void check_text(const char *s)
{
	if (strnlen(s, DISC_OS_MAX_TEXT) >= DISC_OS_MAX_TEXT)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disc_os_db db;
	struct disc_error err = {0};
	struct disc_os_fp fp;
	struct disc_os_guess g;
	int hint;

	disc_os_db_init(&db);
	if (disc_os_db_parse(&db, "fuzz", data, size, &err) != DISC_OK) {
		if (err.msg[0] == '\0' || db.n_sigs || db.n_hints)
			__builtin_trap(); /* a message, and nothing kept */
		goto out;
	}
	for (size_t i = 0; i < db.n_sigs; i++) {
		const struct disc_os_sig *s = &db.sigs[i];

		check_text(s->family);
		check_text(s->guess);
		if (s->n_win > DISC_OS_MAX_ALTS || s->n_mss > DISC_OS_MAX_ALTS ||
		    s->n_opts > DISC_OS_MAX_OPTS || s->line == 0)
			__builtin_trap();
	}
	for (size_t i = 0; i < db.n_hints; i++) {
		check_text(db.hints[i].text);
		check_text(db.hints[i].family);
		check_text(db.hints[i].guess);
	}
	/* A fingerprint made of the first input bytes, the rest as a banner. */
	memset(&fp, 0, sizeof(fp));
	if (size >= 8) {
		fp.ttl = data[0];
		fp.window = (uint16_t)(data[1] << 8 | data[2]);
		fp.has_mss = data[3] & 1;
		fp.mss = (uint16_t)(data[4] << 8 | data[5]);
		fp.has_wscale = data[3] & 2;
		fp.wscale = data[6];
		fp.df = data[3] & 4;
		fp.n_opts = data[7] % (DISC_OS_MAX_OPTS + 1);
		memcpy(fp.opts, data, fp.n_opts <= size ? fp.n_opts : size);
	}
	hint = disc_os_banner_hint(&db, data, size);
	if (hint >= (int)db.n_hints)
		__builtin_trap();
	if (disc_os_guess(&db, &fp, hint, &g)) {
		check_text(g.family);
		check_text(g.guess);
		if (g.confidence < 0 || g.confidence > 100 || g.family[0] == '\0')
			__builtin_trap();
	}
out:
	disc_os_db_release(&db);
	return 0;
}
