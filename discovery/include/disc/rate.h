/*
 * disc_rate: a token-bucket rate limiter for the transmit loop.
 *
 * Tokens accrue at `rate` per second up to `burst`; sending a probe costs one.
 * The sender asks for a batch (disc_rate_take grants what is there, possibly
 * fewer than asked) and, when nothing is granted, sleeps for
 * disc_rate_wait_ns. Time is passed in by the caller (CLOCK_MONOTONIC
 * nanoseconds), so the limiter is pure and testable with a fake clock.
 *
 * Credit is kept in nano-tokens (tokens x 10^9), so that rates up to
 * DISC_RATE_MAX are exact over any interval without floating point.
 */
#ifndef DISC_RATE_H
#define DISC_RATE_H

#include <stdint.h>

/* Highest rate accepted (probes per second); 0 means unlimited. */
#define DISC_RATE_MAX 100000000ull
/* Largest burst kept (bigger values are cut to it). */
#define DISC_RATE_MAX_BURST 1000000ull

struct disc_rate {
	uint64_t rate;	 /* tokens per second; 0: unlimited */
	uint64_t burst;	 /* most tokens held at once (>= 1) */
	uint64_t credit; /* nano-tokens available */
	uint64_t last_ns;
};

/*
 * Sets up r for rate tokens per second (0: unlimited, capped at
 * DISC_RATE_MAX) with at most burst (>= 1) tokens saved up; the bucket starts
 * with one token, so the first probe goes out at once without a burst.
 */
void disc_rate_init(struct disc_rate *r, uint64_t rate, uint64_t burst, uint64_t now_ns);

/* Takes up to want tokens at time now_ns and returns how many it took. */
uint64_t disc_rate_take(struct disc_rate *r, uint64_t now_ns, uint64_t want);

/*
 * Nanoseconds from the last take (or init) until at least min(want, burst)
 * tokens are available; 0 if they are already there.
 */
uint64_t disc_rate_wait_ns(const struct disc_rate *r, uint64_t want);

#endif
