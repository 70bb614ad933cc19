/*
 * disc_xml: nmap-compatible XML (-oX) from observations.
 *
 * The XML is built from the observation objects themselves (scan, host,
 * port, service, scan_end), fed one by one, usually through the observation
 * writer's tee hook, so the two outputs of one run say the same thing. A
 * host's ports and services may arrive in any order after it (services are
 * detected after the port scan); everything is kept until the end and then
 * written as one document with libxml2's xmlTextWriter:
 *
 *   nmaprun (scanner "cmdb", args, start, version, xmloutputversion 1.05)
 *     scaninfo (type syn or connect, protocol tcp, the ports; absent for
 *               a passive reading)
 *     host (starttime/endtime = when it was seen)
 *       status state="up" reason reason_ttl, address ipv4, address mac with
 *       vendor, hostnames/hostname type="user", ports/port/state + service
 *       (name, product, version, extrainfo, tunnel="ssl" with TLS, method
 *       "probed", conf 0-10) + a "banner" script, os/osmatch/osclass (--os)
 *     runstats/finished (time, elapsed, exit success|error, errormsg),
 *     runstats/hosts
 *
 * This is the subset of nmap's DTD that nmap's own tools (ndiff) and other
 * importers read, cmdb's own `cmdb import nmap` included.
 */
#ifndef DISC_XML_H
#define DISC_XML_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"

struct disc_xml;

struct disc_xml_info {
	const char *args;      /* the command line, for nmaprun's args */
	const char *version;   /* of the scanner */
	const char *scan_type; /* "syn" or "connect"; NULL: no scaninfo (passive) */
	const uint16_t *ports; /* the TCP ports scanned, ascending, for scaninfo */
	size_t n_ports;
};

/* A new, empty collector; NULL when out of memory. Free with disc_xml_free. */
struct disc_xml *disc_xml_new(void);
void disc_xml_free(struct disc_xml *x);

/*
 * Takes in one observation (borrowed: host, port and service lines are kept
 * as their compact text, scan and scan_end by reference, so they must not
 * be changed afterwards). Kinds other than scan, host, port, service and
 * scan_end are ignored, as are lines without the fields XML needs (an IPv4
 * address, a protocol and a port). DISC_ERR_NOMEM when out of memory: the
 * collector then stays failed and disc_xml_render says so.
 */
enum disc_status disc_xml_add(struct disc_xml *x, const json_t *obs, struct disc_error *err);

/* disc_xml_add as an observation writer tee (ctx is the collector); remembers a failure. */
void disc_xml_tee(void *ctx, const json_t *obs);

/*
 * The whole document, in *out (malloc'ed, NUL-terminated, caller frees) of
 * *len bytes. Sorts the collected lines in place (by address, then port). A run without a scan_end
 * observation is written as an error
 * ("exit" error, "interrupted before the end").
 */
enum disc_status disc_xml_render(const struct disc_xml *x, const struct disc_xml_info *info,
				 char **out, size_t *len, struct disc_error *err);

/*
 * Renders and writes the document to fd, replacing the file's content
 * (truncated first, written whole). name is for messages. Nothing is
 * written when rendering fails.
 */
enum disc_status disc_xml_write_fd(const struct disc_xml *x, const struct disc_xml_info *info,
				   int fd, const char *name, struct disc_error *err);

#endif
