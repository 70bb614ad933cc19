#include <stdio.h>
#include <string.h>
#include "cmdb/error.h"

cmdb_rc cmdb_error_vset(struct cmdb_error *err, cmdb_rc rc, const char *fmt, va_list ap)
{
	if (!err)
		return rc;
	err->rc = rc;
	err->sqlstate[0] = '\0';
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return rc;
}

cmdb_rc cmdb_error_set(struct cmdb_error *err, cmdb_rc rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cmdb_error_vset(err, rc, fmt, ap);
	va_end(ap);
	return rc;
}

void cmdb_error_clear(struct cmdb_error *err)
{
	if (!err)
		return;
	memset(err, 0, sizeof(*err));
}

const char *cmdb_rc_name(cmdb_rc rc)
{
	switch (rc) {
	case CMDB_OK:
		return "ok";
	case CMDB_EINVAL:
		return "invalid";
	case CMDB_ENOTFOUND:
		return "not-found";
	case CMDB_EAMBIGUOUS:
		return "ambiguous";
	case CMDB_ECONFLICT:
		return "conflict";
	case CMDB_ESTATE:
		return "not-allowed";
	case CMDB_EPERM:
		return "permission-denied";
	case CMDB_ECONNECT:
		return "unreachable";
	case CMDB_ESCHEMA:
		return "schema";
	case CMDB_EINTEGRITY:
		return "integrity";
	case CMDB_EDB:
		return "database";
	case CMDB_ESYS:
		return "system";
	case CMDB_ENOMEM:
		return "out-of-memory";
	}
	return "unknown";
}
