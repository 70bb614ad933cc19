/*
 * disc_priv: giving up privileges once the raw sockets are open.
 *
 * Raw packet sockets and a capture handle need CAP_NET_RAW only when they
 * are opened; sending and receiving on them afterwards needs nothing. So the
 * scanner opens them first and then drops everything: as root it switches to
 * an unprivileged user (supplementary groups cleared, real, effective and
 * saved ids all changed, so there is no way back); otherwise it clears every
 * capability it may hold (file capabilities such as cap_net_raw+ep). Either
 * way it sets no_new_privs, so nothing it might exec could gain them back.
 */
#ifndef DISC_PRIV_H
#define DISC_PRIV_H

#include "disc/error.h"

/* The account root switches to when the caller names none. */
#define DISC_PRIV_DEFAULT_USER "nobody"

/*
 * Drops privileges as above; user is the account to become when running as
 * root (NULL: DISC_PRIV_DEFAULT_USER). Fails (DISC_ERR_STATE) rather than
 * continue half-privileged; the caller should then stop.
 */
enum disc_status disc_priv_drop(const char *user, struct disc_error *err);

#endif
