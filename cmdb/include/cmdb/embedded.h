/*
 * The embedded PostgreSQL server: a private cluster of the user's own.
 *
 * Home directory: CMDB_HOME, else $XDG_DATA_HOME/cmdb, else
 * ~/.local/share/cmdb; for root /var/lib/cmdb (the unprivileged account the
 * server runs under cannot reach into /root). Inside it: pgdata/ (the
 * cluster), run/ (the Unix socket, the only way in), server.log, and a lock
 * file that serializes creating, starting and stopping between processes.
 *
 * The server listens on no TCP port. It runs as the calling user, or, when
 * that is root, as CMDB_SERVER_USER (default: postgres, else nobody).
 */
#ifndef CMDB_EMBEDDED_H
#define CMDB_EMBEDDED_H

#include <stdbool.h>
#include <stddef.h>
#include "cmdb/error.h"

struct cmdb_embedded_status {
	char home[1024];
	char data_dir[1100];
	char socket_dir[1100];
	char conninfo[1300];
	char server_user[64];
	char bin_dir[512];
	bool exists;  /* the cluster has been created */
	bool running; /* the server answers */
	long pid;     /* server pid when running, else 0 */
};

/* Resolves the home directory (home may be NULL for the default). */
cmdb_rc cmdb_embedded_home(const char *home, char *buf, size_t len, struct cmdb_error *err);

/* The connection string of the embedded server in home, without checking
 * that it exists or runs (cheap: for connecting first, starting on failure). */
cmdb_rc cmdb_embedded_conninfo(const char *home, char *buf, size_t len, struct cmdb_error *err);

/* Reports on the cluster without changing anything. */
cmdb_rc cmdb_embedded_status(const char *home, struct cmdb_embedded_status *st,
			     struct cmdb_error *err);

/* Creates the cluster if needed and starts the server if it is not running;
 * fills st. Two processes calling this at once start one server. */
cmdb_rc cmdb_embedded_start(const char *home, struct cmdb_embedded_status *st,
			    struct cmdb_error *err);

/* Stops the server (fast shutdown) if it runs. */
cmdb_rc cmdb_embedded_stop(const char *home, struct cmdb_error *err);

#endif
