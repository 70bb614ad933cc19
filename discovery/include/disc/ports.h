/*
 * disc_ports: the TCP and UDP ports a scan probes.
 *
 * Syntax (close to nmap's): items separated by commas, each a port (22), a
 * range (1000-2000), an open range (-1023 from 0, 60000- to 65535), "-" for
 * every port 0-65535 (all 65,536: unlike nmap, port 0 is included, because
 * the scanner may as well look there too), or a service name from the
 * project's list (ssh). A "T:" or "U:" prefix (either case) puts the items
 * from there on into the TCP or UDP set; items before any prefix go into the
 * sets named by the `unqualified` argument (as nmap adds them "to all
 * protocols being scanned").
 *
 * `--top-ports N` reads the project's own frequency-ordered list,
 * discovery/data/top-ports.txt (compiled into the library; see its header for
 * the format and for what N beyond the list's length means).
 *
 * A struct disc_ports holds each set as a bitmap while building and as a
 * sorted array of distinct ports for O(1) index -> port mapping.
 */
#ifndef DISC_PORTS_H
#define DISC_PORTS_H

#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"

#define DISC_PROTO_TCP 0x1u
#define DISC_PROTO_UDP 0x2u

struct disc_ports {
	uint16_t *tcp; /* sorted, distinct; owned */
	size_t n_tcp;
	uint16_t *udp;
	size_t n_udp;
	uint64_t tcp_bits[1024];
	uint64_t udp_bits[1024];
};

void disc_ports_init(struct disc_ports *p);
void disc_ports_release(struct disc_ports *p);

/*
 * Adds the ports of spec. unqualified is a mask of DISC_PROTO_* for items
 * before any T:/U: prefix. On error p is unchanged and err names the bad item,
 * e.g. bad port range "2000-1000" in "22,2000-1000".
 */
enum disc_status disc_ports_parse(struct disc_ports *p, const char *spec, unsigned unqualified,
				  struct disc_error *err);

/*
 * Adds the n most common ports of each protocol in protos (a DISC_PROTO_*
 * mask). n may be up to 65536: past the end of the list, the remaining ports
 * follow in ascending order.
 */
enum disc_status disc_ports_add_top(struct disc_ports *p, unsigned protos, unsigned n,
				    struct disc_error *err);

/* Number of entries for proto (one DISC_PROTO_*) in the built-in list. */
size_t disc_ports_list_len(unsigned proto);

/*
 * The rank-th (0-based) port of the built-in list for proto, or -1 if rank is
 * past its end.
 */
int disc_ports_list_at(unsigned proto, size_t rank);

/*
 * The name the built-in list gives port/proto, or NULL. Static storage: never
 * free it.
 */
const char *disc_ports_service_name(uint16_t port, unsigned proto);

/*
 * The run of consecutive ports that starts at index i of a sorted, distinct
 * list of n ports: *lo and *hi get its first and last port; returns the index
 * after it (n at the end). For writing a list as ranges (22,80-82).
 */
size_t disc_ports_run(const uint16_t *ports, size_t n, size_t i, uint16_t *lo, uint16_t *hi);

#endif
