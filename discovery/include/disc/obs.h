/*
 * disc_obs: observation lines, format version 1 (docs/observations.md).
 *
 * Everything the scanner learns leaves it as NDJSON: one JSON object per
 * line, each with "v", "kind", "scan_id" and "at". This module builds those
 * objects with Jansson and writes them. Builders (disc_obs_*_json) return a
 * new reference, or NULL if memory ran out, so that in-process consumers can
 * use the objects without parsing text; disc_obs_emit writes one as a line
 * and steals the reference. Optional fields are left out when unknown
 * (NULL pointers, negative numbers), never written as null.
 *
 *     disc_obs_emit(&w, disc_obs_host_json(&w, &host, NULL), &err);
 */
#ifndef DISC_OBS_H
#define DISC_OBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "disc/error.h"

#define DISC_OBS_VERSION	    1
#define DISC_OBS_SCAN_ID_MAX	    64
#define DISC_OBS_BANNER_MAX_DEFAULT 2048

struct disc_obs_writer {
	FILE *out; /* borrowed */
	char scan_id[DISC_OBS_SCAN_ID_MAX];
	size_t banner_max; /* bytes of a banner kept; DISC_OBS_BANNER_MAX_DEFAULT after init */
	uint64_t lines;	   /* lines written so far */
	/*
	 * Called with every object disc_obs_emit writes (borrowed, just before
	 * it is written), so that another output (-oX) is built from the very
	 * same observations. NULL: none. Cleared by disc_obs_writer_init.
	 */
	void (*tee)(void *ctx, const json_t *obj);
	void *tee_ctx;
};

struct disc_obs_scan {
	const char *const *targets; /* as the user gave them */
	size_t n_targets;
	const char *ports; /* the port specification, e.g. "22,80" or "top:100" */
	json_t *options;   /* borrowed object, may be NULL */
	struct timespec started;
};

struct disc_obs_scan_end {
	bool complete; /* false when interrupted */
	uint64_t probes_sent, replies, drops;
	double duration; /* seconds */
};

struct disc_obs_host {
	uint32_t ip;	       /* host order */
	const uint8_t *mac;    /* 6 bytes or NULL */
	const char *vendor;    /* NULL when unknown */
	bool mac_local;	       /* locally administered MAC (written only with mac) */
	const char *hostname;  /* NULL when unknown */
	int ttl;	       /* -1 when unknown */
	const char *reason;    /* arp-response, echo-reply, syn-ack, rst, ... or NULL */
	const char *os_family; /* NULL: no "os" object */
	const char *os_guess;  /* NULL when only the family is known */
	int os_confidence;     /* 0-100, -1 when unknown */
};

struct disc_obs_port {
	uint32_t ip;
	const char *proto; /* "tcp" or "udp" */
	uint16_t port;
	const char *state;  /* "open", "closed" or "filtered" */
	const char *reason; /* syn-ack, rst, port-unreach, no-response, ... or NULL */
};

struct disc_obs_tls {
	const char *subject, *issuer;	    /* RFC 4514 strings, NULL when unknown */
	const char *not_before, *not_after; /* RFC 3339, NULL when unknown */
	const char *const *sans;
	size_t n_sans;
};

struct disc_obs_service {
	uint32_t ip;
	const char *proto;
	uint16_t port;
	const char *service;	       /* "http", "ssh", ...; "unknown" when unmatched */
	const char *product, *version; /* NULL when unknown */
	json_t *extra;		       /* borrowed object or NULL */
	const uint8_t *banner;	       /* raw bytes or NULL */
	size_t banner_len;
	const struct disc_obs_tls *tls; /* NULL when no TLS */
	int confidence;			/* 0-100, -1 when unknown */
};

/* Sets up w to write to out (borrowed) for the scan scan_id (copied, cut to 63 bytes). */
void disc_obs_writer_init(struct disc_obs_writer *w, FILE *out, const char *scan_id);

/* A new random scan id (UUID version 4 text, 36 characters) in out. */
enum disc_status disc_obs_new_scan_id(char out[DISC_OBS_SCAN_ID_MAX], struct disc_error *err);

/*
 * Builders: the observation as a new JSON object; `at` is the time of the
 * observation, NULL meaning now. NULL on allocation failure or when a
 * required string (proto, state, service) is missing.
 */
json_t *disc_obs_scan_json(const struct disc_obs_writer *w, const struct disc_obs_scan *s,
			   const struct timespec *at);
json_t *disc_obs_scan_end_json(const struct disc_obs_writer *w, const struct disc_obs_scan_end *e,
			       const struct timespec *at);
json_t *disc_obs_host_json(const struct disc_obs_writer *w, const struct disc_obs_host *h,
			   const struct timespec *at);
json_t *disc_obs_port_json(const struct disc_obs_writer *w, const struct disc_obs_port *p,
			   const struct timespec *at);
json_t *disc_obs_service_json(const struct disc_obs_writer *w, const struct disc_obs_service *s,
			      const struct timespec *at);

/*
 * Writes obj as one compact line and releases it (the reference is stolen,
 * also on error). obj NULL gives DISC_ERR_NOMEM; a write error DISC_ERR_IO.
 */
enum disc_status disc_obs_emit(struct disc_obs_writer *w, json_t *obj, struct disc_error *err);

/* Formats t as RFC 3339 UTC with milliseconds ("2026-01-31T12:00:00.123Z") into buf[32]. */
char *disc_obs_time_str(const struct timespec *t, char buf[32]);

#endif
