/* disc_value: strict number parsing for options (see disc/value.h). */
#include "disc/value.h"

#include <stdbool.h>
#include <string.h>

/* The value of c as a digit of base, or -1. */
static int digit(char c, unsigned base)
{
	int d = -1;

	if (c >= '0' && c <= '9')
		d = c - '0';
	else if (c >= 'a' && c <= 'f')
		d = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		d = c - 'A' + 10;
	return d >= 0 && (unsigned)d < base ? d : -1;
}

/* Reads digits of base from s[*i]; false when there is none or the value passes UINT64_MAX. */
static bool digits(const char *s, size_t *i, unsigned base, uint64_t *out)
{
	uint64_t v = 0;
	size_t start = *i;
	int d;

	while ((d = digit(s[*i], base)) >= 0) {
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			return false;
		v = v * base + (uint64_t)d;
		(*i)++;
	}
	*out = v;
	return *i > start;
}

enum disc_status disc_value_uint(const char *s, uint64_t min, uint64_t max, const char *what,
				 uint64_t *out, struct disc_error *err)
{
	size_t i = 0;
	unsigned base = 10;
	uint64_t v;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (!digits(s, &i, base, &v) || s[i] != '\0')
		return disc_error_set(err, DISC_ERR_SYNTAX, "%s: \"%s\" is not a number", what, s);
	if (v < min || v > max)
		return disc_error_set(err, DISC_ERR_RANGE, "%s: %s is out of range (%llu to %llu)",
				      what, s, (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return DISC_OK;
}

enum disc_status disc_value_ms(const char *s, uint64_t max_ms, const char *what, uint64_t *out,
			       struct disc_error *err)
{
	size_t i = 0;
	uint64_t whole, frac = 0, ms;
	unsigned frac_digits = 0;

	if (!digits(s, &i, 10, &whole) || whole > UINT64_MAX / 1000)
		goto bad;
	if (strcmp(s + i, "ms") == 0) {
		ms = whole;
		goto check;
	}
	if (s[i] == '.') {
		i++;
		while (s[i] >= '0' && s[i] <= '9') {
			if (++frac_digits > 3)
				goto bad;
			frac = frac * 10 + (uint64_t)(s[i++] - '0');
		}
		if (frac_digits == 0)
			goto bad;
		while (frac_digits++ < 3)
			frac *= 10;
	}
	if (s[i] == 's')
		i++;
	if (s[i] != '\0')
		goto bad;
	ms = whole * 1000 + frac;
check:
	if (ms > max_ms)
		return disc_error_set(err, DISC_ERR_RANGE, "%s: %s is more than %llu.%03llu s",
				      what, s, (unsigned long long)(max_ms / 1000),
				      (unsigned long long)(max_ms % 1000));
	*out = ms;
	return DISC_OK;
bad:
	return disc_error_set(err, DISC_ERR_SYNTAX,
			      "%s: \"%s\" is not a duration (seconds like 2 or 0.5, or 250ms)",
			      what, s);
}
