/* disc_random: kernel randomness and splitmix64 (see disc/random.h). */
#include "disc/random.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

enum disc_status disc_random_bytes(void *buf, size_t len, struct disc_error *err)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return disc_error_set(err, DISC_ERR_IO, "getrandom failed: %s",
					      strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return DISC_OK;
}

/* Constants from Steele, Lea and Flood, "Fast splittable pseudorandom number generators" (2014). */
uint64_t disc_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
