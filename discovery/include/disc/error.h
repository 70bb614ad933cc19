/*
 * disc_error: the one status enum of libdisc and the error record that
 * carries a message a person can act on.
 *
 * Every fallible libdisc function returns a disc_status and, when given a
 * non-NULL struct disc_error *, fills it on failure. The library never prints
 * or exits; the caller decides what to do with the message.
 */
#ifndef DISC_ERROR_H
#define DISC_ERROR_H

#include <stddef.h>

enum disc_status {
	DISC_OK = 0,
	DISC_ERR_SYNTAX,      /* bad target, port or file syntax */
	DISC_ERR_RANGE,	      /* value out of range, or a set too large to hold */
	DISC_ERR_NOMEM,	      /* allocation failed */
	DISC_ERR_IO,	      /* a file could not be opened or read */
	DISC_ERR_RESOLVE,     /* a hostname did not resolve */
	DISC_ERR_TRUNCATED,   /* a frame ended before a header it announced */
	DISC_ERR_MALFORMED,   /* a frame's fields contradict each other */
	DISC_ERR_UNSUPPORTED, /* valid input that this library does not handle */
	DISC_ERR_STATE,	      /* call made in the wrong order (programmer error) */
};

#define DISC_ERROR_MSG_MAX 256

struct disc_error {
	enum disc_status status;
	char msg[DISC_ERROR_MSG_MAX];
};

/*
 * Records status and a printf-style message in err (which may be NULL) and
 * returns status, so that `return disc_error_set(err, ...)` reads naturally.
 * A message longer than DISC_ERROR_MSG_MAX - 1 bytes is truncated.
 */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
enum disc_status
disc_error_set(struct disc_error *err, enum disc_status status, const char *fmt, ...);

/* Clears err (may be NULL) to DISC_OK and an empty message. */
void disc_error_clear(struct disc_error *err);

/* A short constant name for status ("syntax error", ...); never NULL. */
const char *disc_status_str(enum disc_status status);

#endif
