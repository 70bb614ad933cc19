/*
 * Ingest (see cmdb/ingest.h): validate, batch, COPY, reconcile in SQL.
 *
 * Validation is strict because everything after it is set-based: one value
 * the SQL cannot cast would fail a whole batch. So every field the
 * reconciliation casts (addresses, ports, times) is checked here, and a line
 * that fails is rejected alone, with its number and a reason.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cmdb/ingest.h"
#include "internal.h"

#define DEFAULT_BATCH 10000
#define MAX_RETRIES 8
#define BANNER_MAX 16384    /* characters kept of a service banner */
#define TEXT_MAX 1024       /* most string fields */
#define OBJECT_MAX 16384    /* extra, tls, options, attributes: serialized bytes */

struct pending {
	uint64_t line;
	char kind[12];
	char *scan_id;
	char *at;
	char *body; /* compact JSON */
};

struct cmdb_ingest {
	struct cmdb_db *db;
	struct cmdb_ingest_options opts;
	char source[64];
	struct pending *batch;
	size_t n, cap;
	uint64_t next_line; /* for cmdb_ingest_obs, which has no line numbers */
	struct cmdb_ingest_stats stats;
	bool staged; /* the session's staging table exists */
};

static const char SQL_STAGE[] =
	"CREATE TEMP TABLE IF NOT EXISTS ingest_stage (line bigint, run bigint, kind text, "
	"at timestamptz, body jsonb) ON COMMIT DELETE ROWS";
static const char SQL_RUN_FOR[] = "SELECT cmdb.scan_run_for($1, $2)";
static const char SQL_RUN_START[] = "SELECT cmdb.scan_run_start($1::bigint, $2::jsonb)";
static const char SQL_RUN_END[] = "SELECT cmdb.scan_run_end($1::bigint, $2::jsonb)";
static const char SQL_COPY[] = "COPY ingest_stage (line, run, kind, at, body) FROM STDIN";
static const char SQL_EVIDENCE[] =
	"INSERT INTO cmdb.observation (run, line, kind, at, body) "
	"SELECT run, line, kind, at, body FROM ingest_stage ON CONFLICT DO NOTHING";
static const char SQL_BATCH[] = "SELECT created, updated, unchanged FROM cmdb.ingest_batch($1)";
static const char SQL_REPORT[] =
	"SELECT action, ci_type, name, coalesce(detail, ''), coalesce(line, 0) FROM w_report "
	"WHERE $1::boolean OR action IN ('reject', 'conflict') ORDER BY line, ci_id";

/* ------------------------------------------------------------------ */
/* Validation                                                         */

/* A reason for rejecting the line, written into buf; returns false so that
 * checks read `return reject(...)`. */
static bool reject(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool reject(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return false;
}

static bool digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* RFC 3339 date-time, checked so that PostgreSQL accepts it as timestamptz:
 * YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), real calendar days. */
static bool valid_time(const char *s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	size_t len = strlen(s), i = 19;
	int y, mo, d;

	if (len < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
	    !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2) ||
	    s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
		return false;
	y = num(s, 4);
	mo = num(s + 5, 2);
	d = num(s + 8, 2);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || num(s + 11, 2) > 23 || num(s + 14, 2) > 59 ||
	    num(s + 17, 2) > 60)
		return false;
	if (d > mdays[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
		return false;
	if (s[i] == '.') {
		size_t start = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == start || i - start > 9)
			return false;
	}
	if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len)
		return true;
	return (s[i] == '+' || s[i] == '-') && i + 6 == len && digits(s + i + 1, 2) && s[i + 3] == ':' &&
	       digits(s + i + 4, 2) && num(s + i + 1, 2) <= 23 && num(s + i + 4, 2) <= 59;
}

static bool valid_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static bool valid_cidr(const char *s)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	char *end;
	long bits;

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return false;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	errno = 0;
	bits = strtol(slash + 1, &end, 10);
	if (*end || end == slash + 1 || errno || bits < 0)
		return false;
	if (strchr(addr, ':'))
		return bits <= 128 && valid_ip(addr);
	return bits <= 32 && valid_ip(addr);
}

/* A string field: required or not, at most max characters. *out borrowed. */
static bool want_string(const json_t *o, const char *key, bool required, size_t max, const char **out,
			char *why, size_t wlen)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v)
		return !required || reject(why, wlen, "missing field \"%s\"", key);
	if (!json_is_string(v))
		return reject(why, wlen, "field \"%s\" must be a string", key);
	if (json_string_length(v) > max)
		return reject(why, wlen, "field \"%s\" is %zu bytes long; the limit is %zu", key,
			      json_string_length(v), max);
	if (memchr(json_string_value(v), '\0', json_string_length(v)))
		return reject(why, wlen, "field \"%s\" contains a NUL character", key);
	*out = json_string_value(v);
	return true;
}

static bool want_int(const json_t *o, const char *key, bool required, json_int_t lo, json_int_t hi,
		     char *why, size_t wlen)
{
	const json_t *v = json_object_get(o, key);

	if (!v)
		return !required || reject(why, wlen, "missing field \"%s\"", key);
	if (!json_is_integer(v))
		return reject(why, wlen, "field \"%s\" must be an integer", key);
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		return reject(why, wlen, "field \"%s\" is %" JSON_INTEGER_FORMAT ", outside %" JSON_INTEGER_FORMAT
			      "..%" JSON_INTEGER_FORMAT, key, json_integer_value(v), lo, hi);
	return true;
}

static bool want_object(const json_t *o, const char *key, bool required, size_t max, char *why, size_t wlen)
{
	const json_t *v = json_object_get(o, key);
	char *text;
	size_t n;

	if (!v)
		return !required || reject(why, wlen, "missing field \"%s\"", key);
	if (!json_is_object(v))
		return reject(why, wlen, "field \"%s\" must be an object", key);
	text = json_dumps(v, JSON_COMPACT);
	n = text ? strlen(text) : 0;
	free(text);
	return n <= max || reject(why, wlen, "field \"%s\" is %zu bytes long; the limit is %zu", key, n, max);
}

static bool want_ip(const json_t *o, char *why, size_t wlen)
{
	const char *ip;

	if (!want_string(o, "ip", true, 64, &ip, why, wlen))
		return false;
	return valid_ip(ip) || reject(why, wlen, "field \"ip\" is not an IP address: \"%.64s\"", ip);
}

static bool want_endpoint(const json_t *o, char *why, size_t wlen)
{
	const char *proto;

	if (!want_ip(o, why, wlen) || !want_string(o, "proto", true, 8, &proto, why, wlen))
		return false;
	if (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "sctp"))
		return reject(why, wlen, "field \"proto\" must be tcp, udp or sctp, not \"%s\"", proto);
	return want_int(o, "port", true, 0, 65535, why, wlen);
}

static bool check_host(const json_t *o, char *why, size_t wlen)
{
	const char *s;
	const json_t *os = json_object_get(o, "os");

	if (!want_ip(o, why, wlen) || !want_string(o, "mac", false, 17, &s, why, wlen) ||
	    !want_string(o, "vendor", false, 256, &s, why, wlen) ||
	    !want_string(o, "hostname", false, 253, &s, why, wlen) ||
	    !want_string(o, "reason", false, 64, &s, why, wlen) || !want_int(o, "ttl", false, 0, 255, why, wlen))
		return false;
	if (json_object_get(o, "mac")) {
		unsigned b[6];
		char tail;
		const char *m = json_string_value(json_object_get(o, "mac"));
		if (sscanf(m, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6 ||
		    strlen(m) != 17)
			return reject(why, wlen, "field \"mac\" is not a MAC address: \"%s\"", m);
	}
	if (os) {
		if (!json_is_object(os))
			return reject(why, wlen, "field \"os\" must be an object");
		if (!want_string(os, "family", false, 128, &s, why, wlen) ||
		    !want_string(os, "guess", false, 256, &s, why, wlen) ||
		    !want_int(os, "confidence", false, 0, 100, why, wlen))
			return false;
	}
	return true;
}

static bool check_port(const json_t *o, char *why, size_t wlen)
{
	const char *state, *s;

	if (!want_endpoint(o, why, wlen) || !want_string(o, "state", true, 16, &state, why, wlen) ||
	    !want_string(o, "reason", false, 64, &s, why, wlen))
		return false;
	if (strcmp(state, "open") && strcmp(state, "closed") && strcmp(state, "filtered"))
		return reject(why, wlen, "field \"state\" must be open, closed or filtered, not \"%s\"", state);
	return true;
}

static bool check_service(const json_t *o, char *why, size_t wlen)
{
	const char *s;

	return want_endpoint(o, why, wlen) && want_string(o, "service", true, 64, &s, why, wlen) &&
	       want_string(o, "product", false, 256, &s, why, wlen) &&
	       want_string(o, "version", false, 256, &s, why, wlen) &&
	       want_string(o, "banner", false, BANNER_MAX, &s, why, wlen) &&
	       want_object(o, "extra", false, OBJECT_MAX, why, wlen) &&
	       want_object(o, "tls", false, OBJECT_MAX, why, wlen) &&
	       want_int(o, "confidence", false, 0, 100, why, wlen);
}

static bool check_scan(const json_t *o, char *why, size_t wlen)
{
	const json_t *targets = json_object_get(o, "targets"), *scope = json_object_get(o, "scope"), *v;
	const char *s;
	size_t i;

	if (targets && !json_is_array(targets))
		return reject(why, wlen, "field \"targets\" must be an array");
	json_array_foreach(targets, i, v) {
		if (!json_is_string(v) || json_string_length(v) > TEXT_MAX)
			return reject(why, wlen, "targets[%zu] must be a string of at most %d bytes", i, TEXT_MAX);
	}
	if (scope && !json_is_array(scope))
		return reject(why, wlen, "field \"scope\" must be an array of networks");
	json_array_foreach(scope, i, v) {
		if (!json_is_string(v) || !valid_cidr(json_string_value(v)))
			return reject(why, wlen, "scope[%zu] is not a network in CIDR notation", i);
	}
	if (!want_string(o, "ports", false, TEXT_MAX, &s, why, wlen) ||
	    !want_object(o, "options", false, OBJECT_MAX, why, wlen) ||
	    !want_object(o, "scope_ports", false, OBJECT_MAX, why, wlen) ||
	    !want_string(o, "started", false, 40, &s, why, wlen))
		return false;
	return !s || valid_time(s) || reject(why, wlen, "field \"started\" is not an RFC 3339 time: \"%s\"", s);
}

static bool check_scan_end(const json_t *o, char *why, size_t wlen)
{
	const json_t *c = json_object_get(o, "complete");

	if (!c)
		return reject(why, wlen, "missing field \"complete\"");
	if (!json_is_boolean(c))
		return reject(why, wlen, "field \"complete\" must be true or false");
	return true;
}

/* The schema's rule for attribute names: ^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$ */
static bool valid_attr_key(const char *key)
{
	static const char rest[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-";
	size_t len = strlen(key);

	if (len < 1 || len > 64 || !strchr(rest, key[0]) || (key[0] >= '0' && key[0] <= '9') || strchr(".:-", key[0]))
		return false;
	for (size_t i = 1; i < len; i++)
		if (!strchr(rest, key[i]))
			return false;
	return true;
}

static bool check_ci(const json_t *o, char *why, size_t wlen)
{
	const json_t *ids = json_object_get(o, "identities"), *v;
	const char *s;
	size_t i;

	if (!want_string(o, "type", true, 63, &s, why, wlen) || !want_string(o, "name", true, 255, &s, why, wlen) ||
	    !want_string(o, "description", false, 4000, &s, why, wlen) ||
	    !want_string(o, "source_ref", false, 256, &s, why, wlen) ||
	    !want_object(o, "attributes", false, OBJECT_MAX * 4, why, wlen))
		return false;
	if (json_object_get(o, "attributes")) {
		const char *key;
		const json_t *val;

		json_object_foreach((json_t *)json_object_get(o, "attributes"), key, val) {
			if (!valid_attr_key(key))
				return reject(why, wlen, "invalid attribute name \"%.64s\": use letters, digits, _ . : -", key);
			(void)val;
		}
	}
	if (ids && (!json_is_array(ids) || json_array_size(ids) > 32))
		return reject(why, wlen, "field \"identities\" must be an array of at most 32 {kind, value} objects");
	json_array_foreach(ids, i, v) {
		if (!json_is_object(v) || !want_string(v, "kind", true, 32, &s, why, wlen) ||
		    !want_string(v, "value", true, 1024, &s, why, wlen))
			return reject(why, wlen, "identities[%zu] must be {\"kind\": K, \"value\": V} strings", i);
	}
	return true;
}

/* Validates one observation; on success *kind and *scan_id, *at point into obj. */
static bool validate(const json_t *obj, const char **kind, const char **scan_id, const char **at, char *why,
		     size_t wlen)
{
	const json_t *v = json_object_get(obj, "v");

	if (!json_is_object(obj))
		return reject(why, wlen, "not a JSON object");
	if (!v)
		return reject(why, wlen, "missing field \"v\" (the format version)");
	if (!json_is_integer(v) || json_integer_value(v) != 1)
		return reject(why, wlen, "unsupported format version (this cmdb reads version 1)");
	if (!want_string(obj, "kind", true, 16, kind, why, wlen) ||
	    !want_string(obj, "scan_id", true, 128, scan_id, why, wlen) ||
	    !want_string(obj, "at", true, 40, at, why, wlen))
		return false;
	if (!**scan_id)
		return reject(why, wlen, "field \"scan_id\" is empty");
	if (!valid_time(*at))
		return reject(why, wlen, "field \"at\" is not an RFC 3339 time: \"%s\"", *at);
	if (strcmp(*kind, "host") == 0)
		return check_host(obj, why, wlen);
	if (strcmp(*kind, "port") == 0)
		return check_port(obj, why, wlen);
	if (strcmp(*kind, "service") == 0)
		return check_service(obj, why, wlen);
	if (strcmp(*kind, "scan") == 0)
		return check_scan(obj, why, wlen);
	if (strcmp(*kind, "scan_end") == 0)
		return check_scan_end(obj, why, wlen);
	if (strcmp(*kind, "ci") == 0)
		return check_ci(obj, why, wlen);
	return reject(why, wlen, "unknown kind \"%.16s\"", *kind);
}

/* ------------------------------------------------------------------ */
/* Batches                                                            */

static void pending_release(struct pending *p)
{
	free(p->scan_id);
	free(p->at);
	free(p->body);
}

static void batch_clear(struct cmdb_ingest *in)
{
	for (size_t i = 0; i < in->n; i++)
		pending_release(&in->batch[i]);
	in->n = 0;
}

/* COPY text format: backslash, tab, newline and carriage return escaped. */
static void copy_escape(char *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '\\': *out++ = '\\'; *out++ = '\\'; break;
		case '\t': *out++ = '\\'; *out++ = 't'; break;
		case '\n': *out++ = '\\'; *out++ = 'n'; break;
		case '\r': *out++ = '\\'; *out++ = 'r'; break;
		default: *out++ = *s;
		}
	}
	*out = '\0';
}

/* The run id of each distinct scan id in the batch, resolved (or created)
 * inside the batch's transaction. */
struct run_map {
	const char *scan_id;
	int64_t run;
};

static int64_t run_of(const struct run_map *map, size_t n, const char *scan_id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(map[i].scan_id, scan_id) == 0)
			return map[i].run;
	return 0;
}

static cmdb_rc resolve_runs(struct cmdb_ingest *in, struct run_map *map, size_t *nmap, struct cmdb_error *err)
{
	*nmap = 0;
	for (size_t i = 0; i < in->n; i++) {
		const char *params[2] = {in->batch[i].scan_id, in->source};
		PGresult *res;

		if (run_of(map, *nmap, in->batch[i].scan_id))
			continue;
		res = cmdb_query(in->db, SQL_RUN_FOR, 2, params, PGRES_TUPLES_OK, err);
		if (!res)
			return err ? err->rc : CMDB_EDB;
		map[*nmap].scan_id = in->batch[i].scan_id;
		map[*nmap].run = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		(*nmap)++;
		PQclear(res);
	}
	return CMDB_OK;
}

/* Runs one statement for each pending line of `kind` with (run, body). */
static cmdb_rc run_lines(struct cmdb_ingest *in, const struct run_map *map, size_t nmap, const char *kind,
			 const char *sql, uint64_t *sum, struct cmdb_error *err)
{
	for (size_t i = 0; i < in->n; i++) {
		char rbuf[24];
		const char *params[2];
		PGresult *res;

		if (strcmp(in->batch[i].kind, kind) != 0)
			continue;
		params[0] = cmdb_id_param(run_of(map, nmap, in->batch[i].scan_id), rbuf);
		params[1] = in->batch[i].body;
		res = cmdb_query(in->db, sql, 2, params, PGRES_TUPLES_OK, err);
		if (!res)
			return err ? err->rc : CMDB_EDB;
		if (sum && !PQgetisnull(res, 0, 0))
			*sum += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	return CMDB_OK;
}

static cmdb_rc copy_batch(struct cmdb_ingest *in, const struct run_map *map, size_t nmap, struct cmdb_error *err)
{
	PGresult *res = cmdb_query(in->db, SQL_COPY, 0, NULL, PGRES_COPY_IN, err);
	PGconn *conn = in->db->conn;
	cmdb_rc rc = CMDB_OK;
	char *buf = NULL;
	size_t bufcap = 0;

	if (!res)
		return err ? err->rc : CMDB_EDB;
	PQclear(res);
	for (size_t i = 0; i < in->n && rc == CMDB_OK; i++) {
		const struct pending *p = &in->batch[i];
		size_t need = strlen(p->body) * 2 + strlen(p->at) + 96;
		int len;

		if (need > bufcap) {
			char *grown = realloc(buf, need);
			if (!grown) {
				rc = cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
				break;
			}
			buf = grown;
			bufcap = need;
		}
		len = snprintf(buf, bufcap, "%" PRIu64 "\t%" PRId64 "\t%s\t%s\t", p->line,
			       run_of(map, nmap, p->scan_id), p->kind, p->at);
		copy_escape(buf + len, p->body);
		len += (int)strlen(buf + len);
		buf[len++] = '\n';
		if (PQputCopyData(conn, buf, len) != 1)
			rc = cmdb_error_set(err, CMDB_ECONNECT, "COPY failed: %s", PQerrorMessage(conn));
	}
	free(buf);
	if (PQputCopyEnd(conn, rc == CMDB_OK ? NULL : "ingest aborted") != 1 && rc == CMDB_OK)
		rc = cmdb_error_set(err, CMDB_ECONNECT, "COPY failed: %s", PQerrorMessage(conn));
	res = PQgetResult(conn);
	if (rc == CMDB_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = cmdb_pg_error(conn, res, err);
	PQclear(res);
	while ((res = PQgetResult(conn)))
		PQclear(res);
	return rc;
}

/* What reconciliation reported: rejects go to on_reject with their line,
 * conflicts (and in a dry run, every change) to on_change. The report is
 * read before the transaction ends, and handed out only after it commits
 * (or, dry run, rolls back), so a retried batch reports once. */
static PGresult *read_report(struct cmdb_ingest *in, struct cmdb_error *err)
{
	const char *params[1] = {in->opts.dry_run ? "true" : "false"};

	return cmdb_query(in->db, SQL_REPORT, 1, params, PGRES_TUPLES_OK, err);
}

static void hand_out_report(struct cmdb_ingest *in, const PGresult *res)
{
	for (int i = 0; i < PQntuples(res); i++) {
		const char *action = PQgetvalue(res, i, 0);

		if (strcmp(action, "reject") == 0) {
			in->stats.rejected++;
			if (in->opts.on_reject)
				in->opts.on_reject(in->opts.ctx, strtoull(PQgetvalue(res, i, 4), NULL, 10),
						   PQgetvalue(res, i, 3));
		} else if (in->opts.on_change) {
			in->opts.on_change(in->opts.ctx, action, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
					   PQgetvalue(res, i, 3));
		}
	}
}

/* One attempt at the whole batch in one transaction; *report gets what
 * reconciliation reported (the caller PQclears it). */
static cmdb_rc apply_batch(struct cmdb_ingest *in, struct cmdb_ingest_stats *delta, PGresult **report,
			   struct cmdb_error *err)
{
	struct run_map *map = calloc(in->n, sizeof(*map));
	const char *params[1] = {in->source};
	size_t nmap;
	PGresult *res;
	cmdb_rc rc;

	if (!map)
		return cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
	memset(delta, 0, sizeof(*delta));
	rc = cmdb_exec(in->db, "BEGIN", 0, NULL, err);
	if (rc)
		goto out;
	if ((rc = resolve_runs(in, map, &nmap, err)) || (rc = run_lines(in, map, nmap, "scan", SQL_RUN_START, NULL, err)) ||
	    (rc = copy_batch(in, map, nmap, err)) || (rc = cmdb_exec(in->db, SQL_EVIDENCE, 0, NULL, err)))
		goto fail;
	res = cmdb_query(in->db, SQL_BATCH, 1, params, PGRES_TUPLES_OK, err);
	if (!res) {
		rc = err ? err->rc : CMDB_EDB;
		goto fail;
	}
	delta->created = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	delta->updated = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	delta->unchanged = strtoull(PQgetvalue(res, 0, 2), NULL, 10);
	PQclear(res);
	*report = read_report(in, err);
	if (!*report) {
		rc = err ? err->rc : CMDB_EDB;
		goto fail;
	}
	if ((rc = run_lines(in, map, nmap, "scan_end", SQL_RUN_END, &delta->missing, err)))
		goto fail;
	delta->runs = nmap;
	if (in->opts.dry_run) {
		cmdb_db_rollback(in->db);
		goto out;
	}
	rc = cmdb_exec(in->db, "COMMIT", 0, NULL, err);
	if (rc == CMDB_OK)
		goto out;
fail:
	cmdb_db_rollback(in->db);
	PQclear(*report);
	*report = NULL;
out:
	free(map);
	return rc;
}

/* Conflicts with a concurrent writer: the batch is retried whole. */
static bool retryable(const struct cmdb_error *err)
{
	return strcmp(err->sqlstate, "40001") == 0 || strcmp(err->sqlstate, "40P01") == 0 ||
	       strcmp(err->sqlstate, "23505") == 0;
}

static cmdb_rc flush(struct cmdb_ingest *in, struct cmdb_error *err)
{
	struct cmdb_ingest_stats delta;
	PGresult *report = NULL;
	cmdb_rc rc = CMDB_OK;
	uint64_t before;

	if (in->n == 0)
		return CMDB_OK;
	if (!in->staged) {
		rc = cmdb_exec(in->db, SQL_STAGE, 0, NULL, err);
		if (rc)
			return rc;
		in->staged = true;
	}
	for (int attempt = 0;; attempt++) {
		struct cmdb_error e = {0};

		report = NULL;
		rc = apply_batch(in, &delta, &report, &e);
		if (rc == CMDB_OK)
			break;
		if (!retryable(&e) || attempt == MAX_RETRIES) {
			if (err)
				*err = e;
			return rc;
		}
		in->stats.retries++;
		usleep((useconds_t)(1000 * (1 << (attempt < 6 ? attempt : 6)) + rand() % 1000));
	}
	before = in->stats.rejected;
	hand_out_report(in, report);
	PQclear(report);
	in->stats.batches++;
	in->stats.accepted += in->n - (in->stats.rejected - before);
	in->stats.created += delta.created;
	in->stats.updated += delta.updated;
	in->stats.unchanged += delta.unchanged;
	in->stats.missing += delta.missing;
	in->stats.runs += delta.runs;
	batch_clear(in);
	return CMDB_OK;
}

cmdb_rc cmdb_ingest_open(struct cmdb_db *db, const struct cmdb_ingest_options *opts,
			 struct cmdb_ingest **out, struct cmdb_error *err)
{
	struct cmdb_ingest *in = calloc(1, sizeof(*in));

	*out = NULL;
	if (!in)
		return cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
	in->db = db;
	in->opts = *opts;
	if (!in->opts.batch_lines)
		in->opts.batch_lines = DEFAULT_BATCH;
	snprintf(in->source, sizeof(in->source), "%s", opts->source ? opts->source : "discover");
	in->cap = in->opts.batch_lines;
	in->batch = calloc(in->cap, sizeof(*in->batch));
	if (!in->batch) {
		free(in);
		return cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
	}
	*out = in;
	return CMDB_OK;
}

static void rejected(struct cmdb_ingest *in, uint64_t line, const char *why)
{
	in->stats.rejected++;
	if (in->opts.on_reject)
		in->opts.on_reject(in->opts.ctx, line, why);
}

/* Queues a validated observation; takes nothing from obj. */
static cmdb_rc enqueue(struct cmdb_ingest *in, const json_t *obj, uint64_t line, struct cmdb_error *err)
{
	const char *kind, *scan_id, *at;
	char why[256];
	struct pending *p;

	if (!validate(obj, &kind, &scan_id, &at, why, sizeof(why))) {
		rejected(in, line, why);
		return CMDB_OK;
	}
	p = &in->batch[in->n];
	snprintf(p->kind, sizeof(p->kind), "%s", kind);
	p->line = line;
	p->scan_id = strdup(scan_id);
	p->at = strdup(at);
	p->body = json_dumps(obj, JSON_COMPACT);
	if (!p->scan_id || !p->at || !p->body) {
		pending_release(p);
		return cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
	}
	in->n++;
	/* a scan's end is applied after everything before it */
	if (in->n == in->cap || strcmp(kind, "scan_end") == 0)
		return flush(in, err);
	return CMDB_OK;
}

cmdb_rc cmdb_ingest_line(struct cmdb_ingest *in, const char *line, size_t len, uint64_t line_no,
			 struct cmdb_error *err)
{
	json_error_t jerr;
	json_t *obj;
	cmdb_rc rc;

	in->stats.lines++;
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len == 0)
		return CMDB_OK; /* blank lines carry nothing */
	if (len > CMDB_INGEST_LINE_MAX) {
		char why[96];
		snprintf(why, sizeof(why), "line is %zu bytes long; the limit is %d", len, CMDB_INGEST_LINE_MAX);
		rejected(in, line_no, why);
		return CMDB_OK;
	}
	obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj) {
		char why[256];
		snprintf(why, sizeof(why), "not valid JSON: %s (column %d)", jerr.text, jerr.column);
		rejected(in, line_no, why);
		return CMDB_OK;
	}
	rc = enqueue(in, obj, line_no, err);
	json_decref(obj);
	return rc;
}

cmdb_rc cmdb_ingest_obs(struct cmdb_ingest *in, const json_t *obs, struct cmdb_error *err)
{
	in->stats.lines++;
	return enqueue(in, obs, ++in->next_line, err);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * flush_ms: the input (non-blocking) has nothing to read. Waits until it has,
 * applying the lines that have waited since `since` once flush_ms has passed:
 * a scan that finds things slowly still has them in the CMDB within about
 * flush_ms. After a database failure only waits (the lines go to the spool).
 */
static cmdb_rc wait_for_input(struct cmdb_ingest *in, int fd, uint64_t since, cmdb_rc rc,
			      struct cmdb_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	for (;;) {
		int timeout = -1;

		if (rc == CMDB_OK && in->n) {
			uint64_t now = now_ms(), due = since + in->opts.flush_ms;

			if (now >= due) {
				rc = flush(in, err);
				continue;
			}
			timeout = (int)(due - now);
		}
		int ready = poll(&pfd, 1, timeout);

		/* readable or at its end (the read says which); or broken, which it says too */
		if (ready > 0 || (ready < 0 && errno != EINTR))
			return rc;
	}
}

cmdb_rc cmdb_ingest_stream_tee(struct cmdb_ingest *in, FILE *f, FILE *tee, bool *tee_failed,
			       struct cmdb_error *err)
{
	char *buf = malloc(CMDB_INGEST_LINE_MAX + 1);
	uint64_t line_no = 0, since = 0;
	size_t len = 0, total = 0;
	bool nul = false;
	cmdb_rc rc = CMDB_OK;
	int fd = fileno(f), flags = -1;

	if (tee_failed)
		*tee_failed = false;
	if (!buf)
		return cmdb_error_set(err, CMDB_ENOMEM, "out of memory");
	/*
	 * flush_ms: the descriptor is made non-blocking, so that a read that
	 * would block shows here (stdio says nothing of what it has buffered)
	 * and pending lines can be applied while the input is quiet. A dry run
	 * keeps whole batches: each batch is rolled back, so a split one would
	 * report its CIs again.
	 */
	if (in->opts.flush_ms && !in->opts.dry_run && fd >= 0) {
		flags = fcntl(fd, F_GETFL);
		if (flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
			flags = -1;
	}
	for (;;) {
		int c = getc_unlocked(f);

		if (c == EOF && flags >= 0 && ferror(f) && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			clearerr_unlocked(f);
			rc = wait_for_input(in, fd, since, rc, err);
			continue;
		}
		/* byte by byte, so a NUL is seen and an overlong line never held */
		if (c != EOF && c != '\n') {
			nul |= c == 0;
			if (len < CMDB_INGEST_LINE_MAX + 1)
				buf[len++] = (char)c;
			else if (tee && putc_unlocked(c, tee) == EOF && tee_failed)
				*tee_failed = true;
			total++;
			continue;
		}
		if (c == EOF && total == 0)
			break;
		line_no++;
		if (tee && total <= CMDB_INGEST_LINE_MAX &&
		    (fwrite(buf, 1, len, tee) != len || putc_unlocked('\n', tee) == EOF) && tee_failed)
			*tee_failed = true;
		if (rc != CMDB_OK) {
			/* the database failed: keep reading into the spool */
		} else if (total > CMDB_INGEST_LINE_MAX) {
			char why[96];
			in->stats.lines++;
			snprintf(why, sizeof(why), "line is %zu bytes long; the limit is %d", total, CMDB_INGEST_LINE_MAX);
			rejected(in, line_no, why);
		} else if (nul) {
			in->stats.lines++;
			rejected(in, line_no, "line contains a NUL byte");
		} else {
			size_t before = in->n;

			rc = cmdb_ingest_line(in, buf, len, line_no, err);
			if (before == 0 && in->n)
				since = now_ms();
		}
		len = total = 0;
		nul = false;
		if (c == EOF)
			break;
		if (rc != CMDB_OK && !tee)
			break;
		/* a steady trickle never leaves the input quiet: the same deadline */
		if (flags >= 0 && rc == CMDB_OK && in->n && now_ms() >= since + in->opts.flush_ms)
			rc = flush(in, err);
	}
	if (rc == CMDB_OK && ferror(f))
		rc = cmdb_error_set(err, CMDB_ESYS, "read error after line %" PRIu64 ": %s", line_no, strerror(errno));
	if (flags >= 0)
		(void)fcntl(fd, F_SETFL, flags);
	free(buf);
	return rc;
}

cmdb_rc cmdb_ingest_stream(struct cmdb_ingest *in, FILE *f, struct cmdb_error *err)
{
	return cmdb_ingest_stream_tee(in, f, NULL, NULL, err);
}

cmdb_rc cmdb_ingest_flush(struct cmdb_ingest *in, struct cmdb_error *err)
{
	return flush(in, err);
}

/* The evidence retention (setting observation_retention): raw observations
 * of runs ingested longer ago are removed, whoever ingested them. */
static cmdb_rc purge(struct cmdb_ingest *in, struct cmdb_error *err)
{
	PGresult *res = cmdb_query(in->db, "SELECT cmdb.observation_purge()", 0, NULL, PGRES_TUPLES_OK, err);

	if (!res)
		return err ? err->rc : CMDB_EDB;
	in->stats.purged += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return CMDB_OK;
}

cmdb_rc cmdb_ingest_finish(struct cmdb_ingest *in, struct cmdb_ingest_stats *stats, struct cmdb_error *err)
{
	cmdb_rc rc = flush(in, err);

	if (rc == CMDB_OK && !in->opts.dry_run)
		rc = purge(in, err);
	if (stats)
		*stats = in->stats;
	return rc;
}

void cmdb_ingest_free(struct cmdb_ingest *in)
{
	if (!in)
		return;
	batch_clear(in);
	free(in->batch);
	free(in);
}
