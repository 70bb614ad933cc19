/*
 * disc_route: where a probe goes next, from the kernel's own tables.
 *
 * The scanner writes whole Ethernet frames, so for every target it needs the
 * interface, the source address and the next hop's MAC: the target's own MAC
 * when it is on a directly attached network, the gateway's otherwise. This
 * module reads the IPv4 routing table (/proc/net/route: the main table, which
 * is where the lab's and most hosts' routes live) and the neighbour (ARP)
 * cache (/proc/net/arp), and the addresses of an interface (getifaddrs).
 *
 * The parsers take the files' text as bytes, so fixtures test them without a
 * network; the loaders read the real files. Resolving a MAC that is not in
 * the cache is the scan engine's job (it sends its own ARP requests).
 */
#ifndef DISC_ROUTE_H
#define DISC_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"

#define DISC_IFNAME_MAX 16 /* IFNAMSIZ, NUL included */

/* Most entries kept from one table: a guard against a runaway file. */
#define DISC_ROUTE_MAX_ENTRIES 65536

struct disc_route {
	char ifname[DISC_IFNAME_MAX];
	uint32_t dst, mask; /* host order */
	uint32_t gateway;   /* 0 when the destination is on-link */
	uint32_t metric;
	unsigned prefix_len; /* bits set in mask */
};

struct disc_route_table {
	struct disc_route *routes; /* owned */
	size_t n, cap;
	/* This machine's own IPv4 addresses (host order; owned): the kernel
	 * delivers packets to them, and to 127.0.0.0/8, without any network,
	 * through its `local` routing table that /proc/net/route does not show. */
	uint32_t *local;
	size_t n_local, cap_local;
};

struct disc_neigh {
	char ifname[DISC_IFNAME_MAX];
	uint32_t ip;
	uint8_t mac[6];
};

struct disc_neigh_table {
	struct disc_neigh *entries; /* owned */
	size_t n, cap;
};

/* What the scanner needs of one interface. */
struct disc_iface {
	char name[DISC_IFNAME_MAX];
	int index;
	uint8_t mac[6];
	uint32_t ip, mask; /* its first IPv4 address, host order; 0 if none */
	bool loopback;
};

void disc_route_table_init(struct disc_route_table *t);
void disc_route_table_release(struct disc_route_table *t);
void disc_neigh_table_init(struct disc_neigh_table *t);
void disc_neigh_table_release(struct disc_neigh_table *t);

/*
 * Parses the text of /proc/net/route (a header line, then one route per line:
 * Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT, the
 * addresses as 8 hex digits of the network-order value read as a host
 * integer). Routes that are not up, or reject routes, are skipped. Appends to
 * t; on error t keeps the routes of earlier lines and err names the line.
 */
enum disc_status disc_route_parse(struct disc_route_table *t, const uint8_t *buf, size_t len,
				  struct disc_error *err);

/*
 * Parses the text of /proc/net/arp (a header, then: IP address, HW type,
 * Flags, HW address, Mask, Device). Only complete Ethernet entries (flag
 * 0x2, hardware type 0x1) are kept.
 */
enum disc_status disc_neigh_parse(struct disc_neigh_table *t, const uint8_t *buf, size_t len,
				  struct disc_error *err);

/* Reads and parses a file (path NULL: /proc/net/route, /proc/net/arp). */
enum disc_status disc_route_load(struct disc_route_table *t, const char *path,
				 struct disc_error *err);
enum disc_status disc_neigh_load(struct disc_neigh_table *t, const char *path,
				 struct disc_error *err);

/*
 * The route for dst: longest prefix, then lowest metric, then first listed.
 * NULL when there is none, and always for a local destination (see
 * disc_route_is_local): a frame for it must never be put on a network, where
 * a default route would otherwise send it. Borrowed from t.
 */
const struct disc_route *disc_route_lookup(const struct disc_route_table *t, uint32_t dst);

/* Whether dst is delivered inside this machine: 127.0.0.0/8, 0.0.0.0/8, or
 * one of its own addresses (disc_route_add_local). */
bool disc_route_is_local(const struct disc_route_table *t, uint32_t dst);

/* Records one of this machine's addresses; disc_route_load (path NULL)
 * records them all from the interfaces. */
enum disc_status disc_route_add_local(struct disc_route_table *t, uint32_t ip, struct disc_error *err);

/* The cached MAC of ip on ifname (NULL: any interface); false if not cached. */
bool disc_neigh_lookup(const struct disc_neigh_table *t, uint32_t ip, const char *ifname,
		       uint8_t mac[6]);

/*
 * Fills *out for the interface called name: index, MAC and its IPv4 address
 * (the one whose subnet contains `near` when it has several; near 0: the
 * first). DISC_ERR_RESOLVE when there is no such interface.
 */
enum disc_status disc_iface_get(const char *name, uint32_t near, struct disc_iface *out,
				struct disc_error *err);

#endif
