/*
 * Fuzz target: the target-spec parser. The input is text: what comes before
 * the first newline is added as targets, the rest is excluded. Name
 * resolution is off (no DNS from a fuzzer). After finalize, the index mapping
 * must agree with membership and be strictly increasing.
 */
#include <stdlib.h>
#include <string.h>

#include "disc/targets.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *nl;
	struct disc_targets t;
	struct disc_error err;
	uint64_t n;

	if (size > 4096)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	nl = strchr(text, '\n');
	if (nl)
		*nl = '\0';
	disc_targets_init(&t, DISC_TARGETS_NO_RESOLVE);
	if (disc_targets_add(&t, text, &err) != DISC_OK && err.msg[0] == '\0')
		__builtin_trap();
	if (nl && disc_targets_exclude(&t, nl + 1, &err) != DISC_OK && err.msg[0] == '\0')
		__builtin_trap();
	if (disc_targets_finalize(&t, &err) != DISC_OK)
		goto out;
	n = disc_targets_count(&t);
	if (n > 0) {
		uint64_t probe[] = {0, n / 3, n / 2, n - 1};
		uint32_t prev = 0;

		for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
			uint32_t a = disc_targets_at(&t, probe[i]);

			if (!disc_targets_contains(&t, a) ||
			    (i > 0 && probe[i] > probe[i - 1] && a <= prev))
				__builtin_trap();
			prev = a;
		}
	}
out:
	disc_targets_release(&t);
	free(text);
	return 0;
}
