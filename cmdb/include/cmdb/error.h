/*
 * Status codes and error reports of libcmdb.
 *
 * Every fallible function returns a cmdb_rc and, on failure, fills the
 * caller's struct cmdb_error with a message a person can act on. The library
 * never prints and never exits; the caller decides what to do with it.
 */
#ifndef CMDB_ERROR_H
#define CMDB_ERROR_H

#include <stdarg.h>

typedef enum cmdb_rc {
	CMDB_OK = 0,
	CMDB_EINVAL,     /* bad input: the message names the field and the problem */
	CMDB_ENOTFOUND,  /* no such CI, type, relationship, ... */
	CMDB_EAMBIGUOUS, /* a name matches several CIs: the message lists them */
	CMDB_ECONFLICT,  /* identity held by another CI, duplicate relationship */
	CMDB_ESTATE,     /* not allowed in the current state (lifecycle, change control) */
	CMDB_EPERM,      /* the database role may not do this */
	CMDB_ECONNECT,   /* the server cannot be reached or started */
	CMDB_ESCHEMA,    /* schema missing, too old or altered */
	CMDB_EINTEGRITY, /* history chain broken */
	CMDB_EDB,        /* any other server error */
	CMDB_ESYS,       /* an operating-system call failed */
	CMDB_ENOMEM,
} cmdb_rc;

#define CMDB_ERROR_MSG_MAX 2048

struct cmdb_error {
	cmdb_rc rc;
	char sqlstate[6]; /* the server's SQLSTATE when the error came from it, else "" */
	char msg[CMDB_ERROR_MSG_MAX];
};

/* Fills err (which may be NULL) and returns rc, so that
 * `return cmdb_error_set(err, CMDB_EINVAL, "...", ...)` reads naturally. */
cmdb_rc cmdb_error_set(struct cmdb_error *err, cmdb_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
cmdb_rc cmdb_error_vset(struct cmdb_error *err, cmdb_rc rc, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Resets err to "no error". */
void cmdb_error_clear(struct cmdb_error *err);

/* A short stable name for rc ("invalid", "not-found", ...), for JSON output. */
const char *cmdb_rc_name(cmdb_rc rc);

#endif
