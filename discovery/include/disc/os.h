/*
 * disc_os: an operating-system family guess from a host's SYN-ACK and from
 * what its services say about themselves.
 *
 * A TCP stack answers a SYN with values its authors chose: the initial IP
 * TTL (64, 128, 255...), the receive window (a constant, or a multiple of
 * the MSS), the MSS, which options it echoes and in what order, the window
 * scale, whether it sets DF and whether the IP id of a SYN-ACK is zero.
 * The scanner keeps those fields of the first SYN-ACK each host sent
 * (struct disc_os_fp) and compares them with the project's own signature
 * file (discovery/data/os-signatures.txt, format in docs/scanning.md):
 *
 *   synack | FAMILY | GUESS | TTL | WINDOW | MSS | OPTIONS | WSCALE | QUIRKS
 *   banner | TEXT | FAMILY | GUESS
 *
 * A synack line matches when every field it states matches; the more it
 * states, the more points it scores, and the best score (first in the file
 * among equals) wins. The confidence is that score, lowered when a signature
 * of another family scores as much. A banner line matches when TEXT occurs
 * in a service's banner (case-insensitively, e.g. "Ubuntu" in an SSH
 * banner); it confirms and refines a SYN-ACK guess of the same family, or
 * stands alone (with a modest confidence) when there is no SYN-ACK.
 *
 * The file is text a person edits: the parser reports the first bad line by
 * number and never reads past the buffer it is given (no NUL needed).
 */
#ifndef DISC_OS_H
#define DISC_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disc/error.h"

struct disc_frame;

/* Option kinds kept per fingerprint; a longer layout matches only "*". */
#define DISC_OS_MAX_OPTS 16
/* Alternatives in one WINDOW or MSS field. */
#define DISC_OS_MAX_ALTS 8
#define DISC_OS_MAX_TEXT 64 /* bytes of a family, guess or banner text */
/* A signature file larger than this is refused: it is hand-written text. */
#define DISC_OS_MAX_SIGS 4096

/* What a SYN-ACK says about the stack that sent it. */
struct disc_os_fp {
	uint8_t ttl; /* as received */
	uint16_t window;
	bool has_mss, has_wscale;
	uint16_t mss;
	uint8_t wscale;
	bool df;	/* IP don't-fragment set */
	uint16_t ip_id; /* IP identification */
	uint8_t n_opts; /* option kinds in order, NOP and EOL included */
	bool opts_overflow;
	uint8_t opts[DISC_OS_MAX_OPTS];
};

enum disc_os_quirk {
	DISC_OS_QUIRK_DF = 1,	/* df: DF set */
	DISC_OS_QUIRK_NODF = 2, /* nodf: DF clear */
	DISC_OS_QUIRK_ID0 = 4,	/* id0: IP id zero */
	DISC_OS_QUIRK_IDNZ = 8, /* idnz: IP id not zero */
};

/* One alternative of a WINDOW or MSS field: a value, or value * the MSS. */
struct disc_os_alt {
	uint16_t value;
	bool times_mss;
};

struct disc_os_sig {
	char family[DISC_OS_MAX_TEXT], guess[DISC_OS_MAX_TEXT];
	uint16_t ttl; /* initial TTL: 32, 64, 128 or 255 */
	struct disc_os_alt win[DISC_OS_MAX_ALTS];
	uint8_t n_win; /* 0: any window */
	struct disc_os_alt mss[DISC_OS_MAX_ALTS];
	uint8_t n_mss; /* 0: any MSS (times_mss is never set here) */
	bool any_opts; /* "*" */
	uint8_t n_opts;
	uint8_t opts[DISC_OS_MAX_OPTS];
	int wscale;	 /* -1 any, -2 absent, else the value */
	unsigned quirks; /* enum disc_os_quirk bits */
	unsigned line;	 /* in the signature file, for messages */
};

struct disc_os_hint {
	char text[DISC_OS_MAX_TEXT]; /* matched case-insensitively */
	size_t text_len;
	char family[DISC_OS_MAX_TEXT], guess[DISC_OS_MAX_TEXT];
	unsigned line;
};

struct disc_os_db {
	struct disc_os_sig *sigs; /* owned */
	size_t n_sigs, cap_sigs;
	struct disc_os_hint *hints; /* owned */
	size_t n_hints, cap_hints;
};

struct disc_os_guess {
	char family[DISC_OS_MAX_TEXT];
	char guess[DISC_OS_MAX_TEXT]; /* "" when only the family is known */
	int confidence;		      /* 0-100 */
	unsigned sig_line, hint_line; /* lines that decided it, 0 when none */
};

void disc_os_db_init(struct disc_os_db *db);
void disc_os_db_release(struct disc_os_db *db);

/*
 * Parses a signature file's text buf[0..len) into db (replacing nothing:
 * entries are appended). name is used in messages ("name:line: ...").
 * On DISC_ERR_SYNTAX nothing of this text is kept. The text need not be
 * NUL-terminated.
 */
enum disc_status disc_os_db_parse(struct disc_os_db *db, const char *name, const uint8_t *buf,
				  size_t len, struct disc_error *err);

/* Loads the signature file compiled into the library (discovery/data/os-signatures.txt). */
enum disc_status disc_os_db_load_builtin(struct disc_os_db *db, struct disc_error *err);

/* Loads a signature file from disk. */
enum disc_status disc_os_db_load_file(struct disc_os_db *db, const char *path,
				      struct disc_error *err);

/* The fingerprint of a parsed TCP segment (meant for SYN-ACKs). */
void disc_os_fp_from_frame(const struct disc_frame *f, struct disc_os_fp *fp);

/*
 * The initial TTL a received TTL most likely started from: the next of 32,
 * 64, 128 and 255 at or above it.
 */
unsigned disc_os_initial_ttl(unsigned ttl);

/*
 * The index of the first banner hint whose text occurs in banner[0..len),
 * or -1. The banner is raw bytes.
 */
int disc_os_banner_hint(const struct disc_os_db *db, const uint8_t *banner, size_t len);

/*
 * The guess for a host: fp is its first SYN-ACK (NULL when none was seen),
 * hint a banner hint index (-1 when none). Returns false, with *out zeroed,
 * when nothing matched: no guess is better than an invented one.
 */
bool disc_os_guess(const struct disc_os_db *db, const struct disc_os_fp *fp, int hint,
		   struct disc_os_guess *out);

/*
 * The fingerprint in the signature file's syntax, TTL through QUIRKS
 * ("64 | 64240 | 1460 | M | - | df,id0"), so that a person can turn an
 * unknown host into a signature line. buf gets at most size bytes.
 */
char *disc_os_fp_str(const struct disc_os_fp *fp, char *buf, size_t size);

#endif
