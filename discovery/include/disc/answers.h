/*
 * disc_answers: which (host, port) probes of the port scan's current block of
 * hosts got an answer (a SYN-ACK or a RST), one bit each, for the retry
 * passes.
 *
 * The raw engine crosses a block of hosts with the port list and walks the
 * product in the order of a permutation of indices idx = port_no * n + host_no
 * (port_no the port's position in the scan's sorted list, host_no the host's
 * position in the block). The bit of a probe is its index, so the sender
 * tests it with no lookup; the receive thread finds host_no from the reply's
 * address in a small hash table built per block, and port_no by a subtraction
 * (a range of ports) or from a table of all 65,536 ports.
 *
 * Memory is bounded by the block, not by what answers: at most
 * DISC_ANSWERS_MAX_BITS bits, which disc_answers_block_hosts turns into a
 * number of hosts per block. A closed port answers with a RST, so a scan of
 * hosts that reset every probe once kept one hash entry per probe (16 bytes
 * each, 1M for a 16-host full sweep, 65M for a /16 x 1,000 ports); the bits
 * take an eighth of a byte.
 *
 * Threads: one writer (the receive thread) marks, any number of senders test
 * at the same time (the bits are atomic); disc_answers_start must not run
 * while anyone marks or tests (the engine holds a lock around start and
 * mark, and starts a block only when its senders are done).
 */
#ifndef DISC_ANSWERS_H
#define DISC_ANSWERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"

/* Largest map: 2^27 bits, 16 MiB. */
#define DISC_ANSWERS_MAX_BITS (1ull << 27)
/* Hosts per block are capped here anyway (the engine's block size). */
#define DISC_ANSWERS_MAX_HOSTS 65536u

struct disc_answers {
	bool port_range; /* the ports are port_lo .. port_lo + n_ports - 1 */
	uint16_t port_lo;
	uint32_t *port_no; /* otherwise 65,536 entries: position in the list or UINT32_MAX; owned */
	size_t n_ports;
	size_t max_hosts;  /* hosts per block this map was sized for */
	uint32_t *slot_ip; /* hash table ip -> host_no + 1 (0: empty); owned */
	uint32_t *slot_no;
	size_t slot_mask;
	uint8_t *host_marked;	/* per host_no: whether anything of it was marked; owned */
	uint32_t *host_closed;	/* per host_no: distinct closed ports marked (RSTs); owned */
	size_t n_hosts;		/* of the current block */
	_Atomic uint64_t *bits; /* owned */
};

/* How many hosts a block may have for n_ports ports (1 .. DISC_ANSWERS_MAX_HOSTS). */
size_t disc_answers_block_hosts(size_t n_ports);

/*
 * Sets a up for the scan's ports (sorted, distinct, n_ports >= 1) and blocks
 * of up to max_hosts hosts (at most disc_answers_block_hosts(n_ports)).
 * DISC_ERR_NOMEM or DISC_ERR_RANGE (bad sizes); a is then empty and
 * disc_answers_release is still safe.
 */
enum disc_status disc_answers_init(struct disc_answers *a, const uint16_t *ports, size_t n_ports,
				   size_t max_hosts, struct disc_error *err);
void disc_answers_release(struct disc_answers *a);

/*
 * Starts a block of n (<= max_hosts) distinct addresses, ip[host_no]; clears
 * every mark. Only the part of the map the block uses is touched.
 */
void disc_answers_start(struct disc_answers *a, const uint32_t *ip, size_t n);

/*
 * Marks ip:port answered. False when the pair is not in the current block (a
 * late reply to an earlier block, a port not scanned). *first (may be NULL)
 * says whether it is the first mark for that host in this block.
 */
bool disc_answers_mark(struct disc_answers *a, uint32_t ip, uint16_t port, bool *first);

/*
 * As disc_answers_mark, for a closed port (a RST), and counts the host's
 * distinct closed ports in this block (a repeated RST counts once): *closed
 * (may be NULL) gets the count after this mark, 0 when the pair is not in
 * the block. Enough closed ports prove that a host is no SYN proxy
 * (disc/results.h), so its open ports can be written while the scan runs.
 */
bool disc_answers_mark_closed(struct disc_answers *a, uint32_t ip, uint16_t port, bool *first,
			      uint32_t *closed);

/* Whether the probe with permutation index idx (port_no * n + host_no) was answered. */
static inline bool disc_answers_test(const struct disc_answers *a, uint64_t idx)
{
	return (atomic_load_explicit(&a->bits[idx >> 6], memory_order_relaxed) >> (idx & 63)) & 1;
}

#endif
