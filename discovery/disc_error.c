/* disc_error: status codes and error messages (see disc/error.h). */
#include "disc/error.h"

#include <stdarg.h>
#include <stdio.h>

enum disc_status disc_error_set(struct disc_error *err, enum disc_status status, const char *fmt,
				...)
{
	if (err) {
		va_list ap;

		err->status = status;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return status;
}

void disc_error_clear(struct disc_error *err)
{
	if (err) {
		err->status = DISC_OK;
		err->msg[0] = '\0';
	}
}

const char *disc_status_str(enum disc_status status)
{
	switch (status) {
	case DISC_OK:
		return "ok";
	case DISC_ERR_SYNTAX:
		return "syntax error";
	case DISC_ERR_RANGE:
		return "out of range";
	case DISC_ERR_NOMEM:
		return "out of memory";
	case DISC_ERR_IO:
		return "i/o error";
	case DISC_ERR_RESOLVE:
		return "name resolution failed";
	case DISC_ERR_TRUNCATED:
		return "truncated";
	case DISC_ERR_MALFORMED:
		return "malformed";
	case DISC_ERR_UNSUPPORTED:
		return "unsupported";
	case DISC_ERR_STATE:
		return "wrong call order";
	}
	return "unknown status";
}
