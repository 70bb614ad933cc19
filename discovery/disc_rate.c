/* disc_rate: token bucket (see disc/rate.h). */
#include "disc/rate.h"

#define NANO 1000000000ull

void disc_rate_init(struct disc_rate *r, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
	r->rate = rate > DISC_RATE_MAX ? DISC_RATE_MAX : rate;
	r->burst = burst == 0 ? 1 : burst > DISC_RATE_MAX_BURST ? DISC_RATE_MAX_BURST : burst;
	r->credit = NANO;
	r->last_ns = now_ns;
}

uint64_t disc_rate_take(struct disc_rate *r, uint64_t now_ns, uint64_t want)
{
	uint64_t cap, got;

	if (r->rate == 0)
		return want;
	cap = r->burst * NANO;
	if (now_ns > r->last_ns) {
		uint64_t dt = now_ns - r->last_ns;

		/* Past a full bucket the elapsed time no longer matters; capping dt keeps
		 * rate * dt far from overflow (rate <= 1e8, dt <= burst * 1e9 / rate). */
		if (dt >= cap / r->rate + 1 || r->credit + dt * r->rate >= cap)
			r->credit = cap;
		else
			r->credit += dt * r->rate;
		r->last_ns = now_ns;
	}
	got = r->credit / NANO;
	if (got > want)
		got = want;
	r->credit -= got * NANO;
	return got;
}

uint64_t disc_rate_wait_ns(const struct disc_rate *r, uint64_t want)
{
	uint64_t need;

	if (r->rate == 0)
		return 0;
	if (want > r->burst)
		want = r->burst;
	if (want == 0)
		want = 1;
	need = want * NANO;
	if (r->credit >= need)
		return 0;
	/* Round up: waking a nanosecond early would find the bucket one token short. */
	return (need - r->credit + r->rate - 1) / r->rate;
}
