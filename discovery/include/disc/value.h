/*
 * disc_value: numbers as a person types them on the command line (--rate,
 * --retries, --wait, --seed), checked strictly: no sign, no trailing text,
 * no silent wrap-around, and an error that names the value and its bounds.
 */
#ifndef DISC_VALUE_H
#define DISC_VALUE_H

#include <stdint.h>

#include "disc/error.h"

/*
 * Parses a decimal integer, or hexadecimal with 0x, in [min, max] into *out.
 * what names the value in the error ("--rate").
 */
enum disc_status disc_value_uint(const char *s, uint64_t min, uint64_t max, const char *what,
				 uint64_t *out, struct disc_error *err);

/*
 * Parses a duration: seconds with up to three decimals ("2", "0.25"), or
 * milliseconds with "ms" ("250ms"), or seconds with "s", into milliseconds,
 * at most max_ms.
 */
enum disc_status disc_value_ms(const char *s, uint64_t max_ms, const char *what, uint64_t *out,
			       struct disc_error *err);

#endif
