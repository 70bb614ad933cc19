/* disc_answers: per-block bitmap of answered probes (see disc/answers.h). */
#include "disc/answers.h"

#include <stdlib.h>
#include <string.h>

#define NO_PORT UINT32_MAX

size_t disc_answers_block_hosts(size_t n_ports)
{
	size_t n;

	if (n_ports == 0)
		return DISC_ANSWERS_MAX_HOSTS;
	n = (size_t)(DISC_ANSWERS_MAX_BITS / n_ports);
	return n < 1 ? 1 : n > DISC_ANSWERS_MAX_HOSTS ? DISC_ANSWERS_MAX_HOSTS : n;
}

void disc_answers_release(struct disc_answers *a)
{
	free(a->port_no);
	free(a->slot_ip);
	free(a->slot_no);
	free(a->host_marked);
	free(a->host_closed);
	free(a->bits);
	memset(a, 0, sizeof(*a));
}

enum disc_status disc_answers_init(struct disc_answers *a, const uint16_t *ports, size_t n_ports,
				   size_t max_hosts, struct disc_error *err)
{
	size_t slots = 2, words;

	memset(a, 0, sizeof(*a));
	if (n_ports == 0 || n_ports > 65536 || max_hosts == 0 ||
	    max_hosts > disc_answers_block_hosts(n_ports))
		return disc_error_set(err, DISC_ERR_RANGE,
				      "no answer map for %zu hosts x %zu ports", max_hosts,
				      n_ports);
	/* At most half full: linear probing stays short. */
	while (slots < 2 * max_hosts)
		slots *= 2;
	words = (max_hosts * n_ports + 63) / 64;
	/* A range (-p-, 1-1000) needs no table: a subtraction replaces a cache miss per reply. */
	a->port_lo = ports[0];
	a->port_range = (size_t)(ports[n_ports - 1] - ports[0]) == n_ports - 1;
	if (!a->port_range)
		a->port_no = malloc(65536 * sizeof(*a->port_no));
	a->slot_ip = calloc(slots, sizeof(*a->slot_ip));
	a->slot_no = calloc(slots, sizeof(*a->slot_no));
	a->host_marked = calloc(max_hosts, 1);
	a->host_closed = calloc(max_hosts, sizeof(*a->host_closed));
	/* calloc: pages a small block never uses are never touched */
	a->bits = calloc(words, sizeof(*a->bits));
	if ((!a->port_range && !a->port_no) || !a->slot_ip || !a->slot_no || !a->host_marked ||
	    !a->host_closed || !a->bits) {
		disc_answers_release(a);
		return disc_error_set(err, DISC_ERR_NOMEM, "out of memory for the answer map");
	}
	if (!a->port_range) {
		for (size_t i = 0; i < 65536; i++)
			a->port_no[i] = NO_PORT;
		for (size_t i = 0; i < n_ports; i++)
			a->port_no[ports[i]] = (uint32_t)i;
	}
	a->n_ports = n_ports;
	a->max_hosts = max_hosts;
	a->slot_mask = slots - 1;
	return DISC_OK;
}

/* Fibonacci hashing: neighbouring addresses land far apart. */
static size_t slot_of(const struct disc_answers *a, uint32_t ip)
{
	return (size_t)((ip * 0x9e3779b97f4a7c15ull) >> 32) & a->slot_mask;
}

void disc_answers_start(struct disc_answers *a, const uint32_t *ip, size_t n)
{
	size_t used = (a->n_hosts * a->n_ports + 63) / 64;

	if (n > a->max_hosts)
		n = a->max_hosts; /* a programmer's mistake; never write past the map */
	/* Clear what the last block used: the table (at most 512 KiB) and its bits, no more. */
	memset(a->slot_no, 0, (a->slot_mask + 1) * sizeof(*a->slot_no));
	memset(a->host_marked, 0, a->n_hosts);
	memset(a->host_closed, 0, a->n_hosts * sizeof(*a->host_closed));
	for (size_t w = 0; w < used; w++)
		atomic_store_explicit(&a->bits[w], 0, memory_order_relaxed);
	a->n_hosts = n;
	for (size_t h = 0; h < n; h++) {
		size_t i = slot_of(a, ip[h]);

		while (a->slot_no[i] != 0 && a->slot_ip[i] != ip[h])
			i = (i + 1) & a->slot_mask;
		a->slot_ip[i] = ip[h];
		a->slot_no[i] = (uint32_t)h + 1;
	}
}

/*
 * Marks ip:port; *h gets the host's number in the block and *fresh whether
 * the bit was clear. False when the pair is not in the current block.
 */
static bool mark(struct disc_answers *a, uint32_t ip, uint16_t port, bool *first, uint32_t *h,
		 bool *fresh)
{
	uint32_t pn = !a->port_range				 ? a->port_no[port]
		      : (size_t)(port - a->port_lo) < a->n_ports ? (uint32_t)(port - a->port_lo)
								 : NO_PORT;
	size_t i = slot_of(a, ip);
	uint64_t idx, bit;

	if (first)
		*first = false;
	if (pn == NO_PORT)
		return false;
	while (a->slot_no[i] != 0 && a->slot_ip[i] != ip)
		i = (i + 1) & a->slot_mask;
	if (a->slot_no[i] == 0)
		return false;
	*h = a->slot_no[i] - 1;
	idx = (uint64_t)pn * a->n_hosts + *h;
	bit = 1ull << (idx & 63);
	*fresh = !(atomic_fetch_or_explicit(&a->bits[idx >> 6], bit, memory_order_relaxed) & bit);
	if (first && !a->host_marked[*h])
		*first = true;
	a->host_marked[*h] = 1;
	return true;
}

bool disc_answers_mark(struct disc_answers *a, uint32_t ip, uint16_t port, bool *first)
{
	uint32_t h;
	bool fresh;

	return mark(a, ip, port, first, &h, &fresh);
}

bool disc_answers_mark_closed(struct disc_answers *a, uint32_t ip, uint16_t port, bool *first,
			      uint32_t *closed)
{
	uint32_t h;
	bool fresh;

	if (closed)
		*closed = 0;
	if (!mark(a, ip, port, first, &h, &fresh))
		return false;
	/* one writer (the receive thread): a plain counter */
	if (fresh)
		a->host_closed[h]++;
	if (closed)
		*closed = a->host_closed[h];
	return true;
}
