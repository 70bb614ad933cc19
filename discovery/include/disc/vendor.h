/*
 * disc_vendor: MAC address -> organisation, from the IEEE registry.
 *
 * Reads the CSV files of Debian's ieee-data package (/usr/share/ieee-data):
 * oui.csv (MA-L, 24-bit prefixes), mam.csv (MA-M, 28-bit), oui36.csv (MA-S,
 * 36-bit) and iab.csv (the older IAB, 36-bit). Each row is
 * "Registry,Assignment,Organization Name,Organization Address" with RFC 4180
 * quoting (fields may hold commas, quotes and newlines). The longest
 * matching prefix wins, so a MAC in a block that the IEEE sub-assigned
 * (MA-L 70:B3:D5 "IEEE Registration Authority") is reported with the MA-S
 * holder. The lookup also flags locally administered (bit 0x02 of the first
 * octet: randomised or virtual, no vendor) and group (multicast, 0x01) MACs.
 *
 * Loaded once into three sorted arrays of 64-bit entries, one per prefix
 * length (prefix << 28 | offset of the name in one string pool), searched
 * with binary search: about 8 bytes per assignment plus the names.
 * When a prefix is listed twice (oui.csv has a few), one of them is used.
 */
#ifndef DISC_VENDOR_H
#define DISC_VENDOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"

#define DISC_VENDOR_DEFAULT_DIR "/usr/share/ieee-data"

/* Organisation names are cut to this many bytes. */
#define DISC_VENDOR_MAX_NAME 128

struct disc_vendor_db {
	uint64_t *tab[3]; /* 36-, 28- and 24-bit prefixes, sorted */
	size_t n[3], cap[3];
	char *names; /* NUL-separated pool */
	size_t names_len, names_cap;
};

struct disc_vendor_match {
	const char *name;     /* borrowed from the db; NULL when no prefix matched */
	unsigned prefix_bits; /* 36, 28 or 24; 0 when no match */
	bool local;	      /* locally administered */
	bool multicast;	      /* group address */
};

void disc_vendor_init(struct disc_vendor_db *db);
void disc_vendor_release(struct disc_vendor_db *db);

/*
 * Adds the rows of one IEEE registry CSV file. The prefix length comes from
 * each row's Registry column (MA-L, MA-M, MA-S, IAB) and is checked against
 * the assignment's number of hex digits. A malformed row fails the whole file
 * with "path:line: ..." (rows before it stay loaded).
 */
enum disc_status disc_vendor_load_csv(struct disc_vendor_db *db, const char *path,
				      struct disc_error *err);

/*
 * Loads whichever of oui.csv, mam.csv, oui36.csv and iab.csv exist in dir
 * (NULL means DISC_VENDOR_DEFAULT_DIR). DISC_ERR_IO if none does.
 */
enum disc_status disc_vendor_load_dir(struct disc_vendor_db *db, const char *dir,
				      struct disc_error *err);

/* Number of prefixes loaded. */
size_t disc_vendor_count(const struct disc_vendor_db *db);

/* Looks up mac; always fills *out (name NULL when unknown). */
void disc_vendor_lookup(const struct disc_vendor_db *db, const uint8_t mac[6],
			struct disc_vendor_match *out);

/*
 * Parses "00:1b:21:aa:bb:cc" (also with '-' separators or none) into mac;
 * false if it is not a MAC address.
 */
bool disc_vendor_parse_mac(const char *s, uint8_t mac[6]);

#endif
