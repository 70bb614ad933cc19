/*
 * disc_targets: the set of IPv4 addresses a scan covers.
 *
 * Accepts nmap's target syntax: plain addresses (10.0.0.1), CIDR blocks
 * (10.0.0.0/24, also host.example/24), per-octet ranges and lists
 * (10.0.0-3.1-20, 192.168.1.1,3,5-7, 10.*.0.1; an octet item may be N, N-M,
 * N- (to 255), -M (from 0), - or *), and hostnames, resolved once with
 * getaddrinfo to their first IPv4 address. Targets in a list are separated by
 * whitespace. A comma-joined token that is one valid octet spec as a whole
 * (10.0.1,2.5) is taken as that; otherwise a comma separates two targets when
 * the text after it is a whole target (it contains a dot or a letter) and
 * continues the last octet's list when it is only digits and dashes. So
 * "10.0.0.1,3,10.0.1.1" is three addresses and "a.example,b.example" two.
 *
 * Includes and excludes are collected first; disc_targets_finalize() turns
 * them into one sorted, merged array of inclusive address intervals with the
 * exclusions subtracted (so an exclusion always wins, whatever the order of
 * calls), plus prefix counts, so that disc_targets_at() maps an index in
 * [0, count) to an address in O(log intervals). That is what lets a
 * permutation of indices drive the scan without a list of addresses.
 *
 * Addresses are uint32_t in host byte order: 10.0.0.1 is 0x0a000001.
 * Usage: init, add/exclude (any order, any number), finalize, then query;
 * release frees everything. Not thread-safe while building; queries after
 * finalize only read.
 */
#ifndef DISC_TARGETS_H
#define DISC_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"

/* Flags for disc_targets_init(). */
#define DISC_TARGETS_NO_RESOLVE 0x1u /* reject hostnames instead of resolving them (nmap -n) */

/*
 * The most intervals one include or exclude set may hold before merging.
 * A spec such as 10.*.*.1 yields one interval per address; this cap keeps
 * a typo from allocating gigabytes (each interval costs 16 bytes).
 */
#define DISC_TARGETS_MAX_RANGES (1u << 22)

/* Longest line accepted in a target file. */
#define DISC_TARGETS_MAX_LINE 4096

struct disc_range {
	uint32_t lo, hi; /* inclusive */
};

struct disc_target_name {
	uint32_t addr;
	char *name;
};

struct disc_targets {
	unsigned flags;
	bool finalized;
	struct disc_range *ranges; /* includes; after finalize the result */
	size_t n_ranges, cap_ranges;
	struct disc_range *excl;
	size_t n_excl, cap_excl;
	uint64_t *before; /* after finalize: before[i] = addresses in ranges[0..i) */
	uint64_t count;
	struct disc_target_name *names; /* resolved hostnames, sorted by addr after finalize */
	size_t n_names, cap_names;
};

void disc_targets_init(struct disc_targets *t, unsigned flags);

/* Frees everything t owns; t may be re-initialised afterwards. */
void disc_targets_release(struct disc_targets *t);

/*
 * Adds every target in list (see the syntax above) to the includes, or to the
 * excludes. On error nothing from list is kept and err names the bad token,
 * e.g. bad octet range "3-1" in "10.0.3-1.1". DISC_ERR_STATE after finalize.
 */
enum disc_status disc_targets_add(struct disc_targets *t, const char *list, struct disc_error *err);
enum disc_status disc_targets_exclude(struct disc_targets *t, const char *list,
				      struct disc_error *err);

/*
 * Reads targets from a file (nmap -iL / --excludefile): any number of targets
 * per line, '#' starts a comment, "-" means standard input. Errors are
 * prefixed with "path:line: ". On error, targets from earlier lines of the
 * file are kept (the caller is expected to give up on the whole scan).
 */
enum disc_status disc_targets_add_file(struct disc_targets *t, const char *path,
				       struct disc_error *err);
enum disc_status disc_targets_exclude_file(struct disc_targets *t, const char *path,
					   struct disc_error *err);

/*
 * Sorts, merges and subtracts exclusions. An empty result is not an error
 * here (count is 0); refusing to scan nothing is the caller's decision.
 */
enum disc_status disc_targets_finalize(struct disc_targets *t, struct disc_error *err);

/* Number of addresses after finalize (0 before). Up to 2^32. */
uint64_t disc_targets_count(const struct disc_targets *t);

/* The index-th address in ascending order; index must be < count. */
uint32_t disc_targets_at(const struct disc_targets *t, uint64_t index);

/* Whether addr is in the finalized set. */
bool disc_targets_contains(const struct disc_targets *t, uint32_t addr);

/*
 * The hostname that resolved to addr, if addr came from a hostname target;
 * NULL otherwise. Borrowed: valid until disc_targets_release().
 */
const char *disc_targets_hostname(const struct disc_targets *t, uint32_t addr);

/* Formats addr as dotted quad into buf (at least 16 bytes); returns buf. */
char *disc_ipv4_str(uint32_t addr, char *buf);

#endif
