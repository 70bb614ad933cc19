/*
 * disc_svcdb: the service probe and match database.
 *
 * The project's own text format (docs/service-db.md; the built-in database
 * is discovery/data/services.txt, compiled into the library). A database is
 * a list of probes, each with the bytes to send, the ports it is tried first
 * on and how long to wait for an answer, and for each probe a list of match
 * rules: PCRE2 patterns over the raw response whose capture groups fill the
 * service's product, version and extra fields through templates.
 *
 * Probe 0 is always the NULL probe (send nothing, read what the service says
 * first); its rules are also tried on the answer to every other probe. The
 * engine that connects and sends is disc_svc (disc/svc.h); this module only
 * parses and matches, so it can be tested and fuzzed without a network.
 *
 * A loaded database is read-only and may be shared; matching allocates its
 * own match data per call.
 */
#ifndef DISC_SVCDB_H
#define DISC_SVCDB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"

#define DISC_SVC_NAME_MAX    32	 /* service and probe names, with the NUL */
#define DISC_SVC_FIELD_MAX   256 /* product, version, extra values, with the NUL */
#define DISC_SVC_PAYLOAD_MAX 4096
#define DISC_SVC_WAIT_MAX    30000 /* ms */

struct disc_svc_port_range {
	uint16_t lo, hi;
};

struct disc_svc_probe {
	char name[DISC_SVC_NAME_MAX];
	unsigned proto;	 /* DISC_PROTO_TCP or DISC_PROTO_UDP (disc/ports.h) */
	bool handshake;	 /* a TLS handshake (OpenSSL) instead of a payload */
	bool exclusive;	 /* its ports get this probe and no other */
	uint8_t *payload; /* owned; NULL for the NULL probe and handshakes */
	size_t payload_len;
	unsigned wait_ms; /* how long to wait for an answer */
	struct disc_svc_port_range *ports; /* owned */
	size_t n_ports;
	unsigned line; /* where it was defined */
};

/* What a rule made of a response. Strings are NUL-terminated, valid UTF-8. */
struct disc_svc_match {
	char service[DISC_SVC_NAME_MAX]; /* "" when nothing matched */
	char product[DISC_SVC_FIELD_MAX];
	char version[DISC_SVC_FIELD_MAX];
	json_t *extra;	/* new object or NULL; freed by disc_svc_match_release */
	int confidence; /* 0-100 */
	unsigned line;	/* the rule's line in the database */
};

struct disc_svcdb;

/*
 * Parses text (len bytes, need not be NUL-terminated). name is used in error
 * messages ("services.txt:12: ..."). On error *out is NULL and err names the
 * first bad line. Free the result with disc_svcdb_free.
 */
enum disc_status disc_svcdb_parse(struct disc_svcdb **out, const char *text, size_t len,
				  const char *name, struct disc_error *err);

/* The built-in database (discovery/data/services.txt). */
enum disc_status disc_svcdb_load_default(struct disc_svcdb **out, struct disc_error *err);

void disc_svcdb_free(struct disc_svcdb *db);

size_t disc_svcdb_n_probes(const struct disc_svcdb *db);
/* Probe i (0 is the NULL probe); borrowed, valid until disc_svcdb_free. */
const struct disc_svc_probe *disc_svcdb_probe(const struct disc_svcdb *db, size_t i);
/* Index of the probe called name, or -1. */
int disc_svcdb_find_probe(const struct disc_svcdb *db, const char *name);
/* Number of match rules, for tests and statistics. */
size_t disc_svcdb_n_rules(const struct disc_svcdb *db);

/* Whether probe p lists port. */
bool disc_svcdb_probe_has_port(const struct disc_svc_probe *p, uint16_t port);

/*
 * The probes to try on port (besides the NULL probe), most likely first:
 * those of proto that list the port, then (unless one of those is
 * exclusive) the other TCP probes in database order; UDP probes only on
 * their own ports. Handshake probes are left out when in_tls. Writes up to
 * max indexes into order and returns how many.
 */
size_t disc_svcdb_plan(const struct disc_svcdb *db, unsigned proto, uint16_t port, bool in_tls,
		       size_t *order, size_t max);

/*
 * Matches a response to probe `probe` against that probe's rules, then the
 * NULL probe's. On a match fills *m (m->service non-empty) and its extra
 * object with the rule's templates and the service's extract rules; no match
 * leaves m->service empty. Never reads past len. DISC_ERR_NOMEM when memory
 * ran out. Release *m with disc_svc_match_release in every case.
 */
enum disc_status disc_svcdb_match(const struct disc_svcdb *db, size_t probe, const uint8_t *buf,
				  size_t len, struct disc_svc_match *m, struct disc_error *err);

void disc_svc_match_release(struct disc_svc_match *m);

/*
 * Copies len bytes as printable UTF-8 into out (cap bytes with the NUL):
 * valid UTF-8 sequences stay, control bytes become spaces, invalid bytes
 * '?', runs of white space one space, no leading or trailing space. Returns
 * the length written.
 */
size_t disc_svc_clean_text(const uint8_t *buf, size_t len, char *out, size_t cap);

#endif
