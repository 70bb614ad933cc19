/*
 * Unit tests for disc_os: the signature file parser (bad lines named by
 * number, nothing of a bad file kept), the built-in file, and guesses for
 * SYN-ACKs built byte by byte and decoded by disc_frame as the scanner does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc/frame.h"
#include "disc/os.h"
#include "disc/results.h"

/* ---- a SYN-ACK as raw IPv4 bytes ---- */

struct synack {
	uint8_t ttl;
	bool df;
	uint16_t ip_id, window;
	const uint8_t *opts; /* raw option bytes */
	size_t opts_len;     /* a multiple of 4 */
};

static size_t build(const struct synack *s, uint8_t out[80])
{
	size_t tcp_len = 20 + s->opts_len, total = 20 + tcp_len;

	memset(out, 0, 80);
	out[0] = 0x45;
	out[2] = (uint8_t)(total >> 8);
	out[3] = (uint8_t)total;
	out[4] = (uint8_t)(s->ip_id >> 8);
	out[5] = (uint8_t)s->ip_id;
	out[6] = s->df ? 0x40 : 0;
	out[8] = s->ttl;
	out[9] = 6;
	memcpy(out + 12, (const uint8_t[]){198, 18, 0, 2, 198, 18, 0, 1}, 8);
	out[20] = 0;
	out[21] = 80; /* source port 80 */
	out[22] = 0xee;
	out[23] = 0x48;
	out[32] = (uint8_t)((tcp_len / 4) << 4);
	out[33] = 0x12; /* SYN, ACK */
	out[34] = (uint8_t)(s->window >> 8);
	out[35] = (uint8_t)s->window;
	memcpy(out + 40, s->opts, s->opts_len);
	return total;
}

static void fp_of(const struct synack *s, struct disc_os_fp *fp)
{
	uint8_t buf[80];
	struct disc_frame f;
	size_t n = build(s, buf);

	assert_int_equal(disc_frame_parse(buf, n, DISC_LINK_RAW_IPV4, &f, NULL), DISC_OK);
	assert_int_equal(f.l4, DISC_L4_TCP);
	disc_os_fp_from_frame(&f, fp);
}

/* MSS 1460 only: what a stack answers to the scanner's own SYN. */
static const uint8_t opt_mss[] = {2, 4, 0x05, 0xb4};
/* Linux to a full client SYN: mss, sackOK, TS, nop, wscale 7. */
static const uint8_t opt_linux[] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0,
				    0, 1, 0,	0,    0, 2, 1, 3,  3, 7};
/* Windows 10: mss, nop, wscale 8, nop, nop, sackOK. */
static const uint8_t opt_windows[] = {2, 4, 0x05, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2};
/* OpenBSD: mss, nop, nop, sackOK, nop, wscale 6, nop, nop, TS. */
static const uint8_t opt_openbsd[] = {2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 6,
				      1, 1, 8,	  10,	0, 0, 0, 1, 0, 0, 0, 2};

static struct disc_os_db builtin;

static int setup(void **state)
{
	struct disc_error err = {0};

	disc_os_db_init(&builtin);
	if (disc_os_db_load_builtin(&builtin, &err) != DISC_OK) {
		fprintf(stderr, "built-in signatures: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	disc_os_db_release(&builtin);
	return 0;
}

/* ---- parser ---- */

static enum disc_status parse(struct disc_os_db *db, const char *text, struct disc_error *err)
{
	return disc_os_db_parse(db, "sigs.txt", (const uint8_t *)text, strlen(text), err);
}

static void test_parse_fields(void **state)
{
	struct disc_os_db db;
	struct disc_error err = {0};
	const struct disc_os_sig *s;

	disc_os_db_init(&db);
	assert_int_equal(
		parse(&db,
		      "# comment\n"
		      "\n"
		      "  synack | Linux | Linux 5 | 64 | mss*44, 64240 | 1460 | M,S,T,N,W | 7 "
		      "| df,id0  \r\n"
		      "synack|Other|-|255|*|*|*|*|-\n"
		      "synack | X | - | 128 | 8192 | * | - | - | nodf,idnz\n"
		      "banner | Ubuntu | Linux | Ubuntu Linux",
		      &err),
		DISC_OK);
	assert_int_equal(db.n_sigs, 3);
	assert_int_equal(db.n_hints, 1);
	s = &db.sigs[0];
	assert_string_equal(s->family, "Linux");
	assert_string_equal(s->guess, "Linux 5");
	assert_int_equal(s->ttl, 64);
	assert_int_equal(s->n_win, 2);
	assert_true(s->win[0].times_mss);
	assert_int_equal(s->win[0].value, 44);
	assert_false(s->win[1].times_mss);
	assert_int_equal(s->win[1].value, 64240);
	assert_int_equal(s->n_mss, 1);
	assert_int_equal(s->mss[0].value, 1460);
	assert_int_equal(s->n_opts, 5);
	assert_memory_equal(s->opts, ((const uint8_t[]){2, 4, 8, 1, 3}), 5);
	assert_int_equal(s->wscale, 7);
	assert_int_equal(s->quirks, DISC_OS_QUIRK_DF | DISC_OS_QUIRK_ID0);
	assert_int_equal(s->line, 3);
	s = &db.sigs[1];
	assert_string_equal(s->guess, "");
	assert_int_equal(s->n_win, 0);
	assert_true(s->any_opts);
	assert_int_equal(s->wscale, -1);
	assert_int_equal(s->quirks, 0);
	s = &db.sigs[2];
	assert_false(s->any_opts);
	assert_int_equal(s->n_opts, 0);
	assert_int_equal(s->wscale, -2);
	assert_int_equal(s->quirks, DISC_OS_QUIRK_NODF | DISC_OS_QUIRK_IDNZ);
	assert_string_equal(db.hints[0].text, "Ubuntu");
	assert_int_equal(db.hints[0].line, 6);
	disc_os_db_release(&db);
}

static void test_parse_bad_lines(void **state)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{"synack | L | - | 64 | * | * | * | *\n", "sigs.txt:1: a synack line has 9 fields"},
		{"\n\nsynack | L | - | 63 | * | * | * | * | -\n", "sigs.txt:3: TTL must be"},
		{"synack | L | - | 64 | 70000 | * | * | * | -\n", "sigs.txt:1: bad window"},
		{"synack | L | - | 64 | mss* | * | * | * | -\n", "sigs.txt:1: bad window"},
		{"synack | L | - | 64 | 1,,2 | * | * | * | -\n", "sigs.txt:1: bad window"},
		{"synack | L | - | 64 | 1, | * | * | * | -\n", "sigs.txt:1: bad window"},
		{"synack | L | - | 64 | * | mss*2 | * | * | -\n", "sigs.txt:1: bad MSS"},
		{"synack | L | - | 64 | * | * | M,Q | * | -\n", "sigs.txt:1: bad option layout"},
		{"synack | L | - | 64 | * | * | 256 | * | -\n", "sigs.txt:1: bad option layout"},
		{"synack | L | - | 64 | * | * | * | 300 | -\n", "sigs.txt:1: bad window scale"},
		{"synack | L | - | 64 | * | * | * | * | df,nodf\n", "sigs.txt:1: bad quirks"},
		{"synack | L | - | 64 | * | * | * | * | fast\n", "sigs.txt:1: bad quirks"},
		{"synack |  | - | 64 | * | * | * | * | -\n", "sigs.txt:1: bad family"},
		{"banner | Ubuntu | Linux\n", "sigs.txt:1: a banner line has 4 fields"},
		{"banner |  | Linux | -\n", "sigs.txt:1: bad banner text"},
		{"synack | L | - | 64 | * | * | * | * | - | 1 | 2 | 3 | 4\n",
		 "sigs.txt:1: more than"},
		{"guess | L\n", "sigs.txt:1: a line starts with synack or banner"},
		{"# ok\nsynack | L\x01 | - | 64 | * | * | * | * | -\n", "sigs.txt:2: bad family"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct disc_os_db db;
		struct disc_error err = {0};

		disc_os_db_init(&db);
		assert_int_equal(parse(&db, cases[i].text, &err), DISC_ERR_SYNTAX);
		if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
			fail_msg("case %zu: \"%s\" does not start with \"%s\"", i, err.msg,
				 cases[i].msg);
		assert_int_equal(db.n_sigs, 0);
		disc_os_db_release(&db);
	}
}

static void test_parse_keeps_nothing_of_bad_file(void **state)
{
	struct disc_os_db db;
	struct disc_error err = {0};
	static const uint8_t nul[] = "synack | L | - | 64 | * | * | * | * | -\nsynack | \0 |";
	char longline[1100];

	disc_os_db_init(&db);
	assert_int_equal(parse(&db, "synack | A | - | 64 | * | * | * | * | -\n", &err), DISC_OK);
	assert_int_equal(parse(&db,
			       "synack | B | - | 64 | * | * | * | * | -\n"
			       "banner | x | B | -\n"
			       "synack | C | - | 65 | * | * | * | * | -\n",
			       &err),
			 DISC_ERR_SYNTAX);
	assert_string_equal(err.msg, "sigs.txt:3: TTL must be 32, 64, 128 or 255, not \"65\"");
	/* the first file stays, nothing of the second */
	assert_int_equal(db.n_sigs, 1);
	assert_int_equal(db.n_hints, 0);
	assert_string_equal(db.sigs[0].family, "A");
	/* a NUL byte inside the given length, and a line that is too long */
	assert_int_equal(disc_os_db_parse(&db, "n", nul, sizeof(nul) - 1, &err), DISC_ERR_SYNTAX);
	assert_string_equal(err.msg, "n:2: NUL byte in the line");
	memset(longline, '#', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	assert_int_equal(parse(&db, longline, &err), DISC_ERR_SYNTAX);
	assert_non_null(strstr(err.msg, "sigs.txt:1: line of 1099 bytes"));
	assert_int_equal(db.n_sigs, 1);
	disc_os_db_release(&db);
}

static void test_parse_not_nul_terminated(void **state)
{
	struct disc_os_db db;
	struct disc_error err = {0};
	/* exactly the bytes, no terminator after them: ASan sees any overread */
	static const char text[] = "banner | BSD | FreeBSD | -";
	uint8_t *buf = malloc(sizeof(text) - 1);

	assert_non_null(buf);
	memcpy(buf, text, sizeof(text) - 1);
	disc_os_db_init(&db);
	assert_int_equal(disc_os_db_parse(&db, "m", buf, sizeof(text) - 1, &err), DISC_OK);
	assert_int_equal(db.n_hints, 1);
	assert_string_equal(db.hints[0].family, "FreeBSD");
	free(buf);
	disc_os_db_release(&db);
}

static void test_builtin_loads(void **state)
{
	assert_true(builtin.n_sigs >= 20);
	assert_true(builtin.n_hints >= 10);
}

/* ---- guesses ---- */

static void test_initial_ttl(void **state)
{
	assert_int_equal(disc_os_initial_ttl(1), 32);
	assert_int_equal(disc_os_initial_ttl(32), 32);
	assert_int_equal(disc_os_initial_ttl(33), 64);
	assert_int_equal(disc_os_initial_ttl(63), 64);
	assert_int_equal(disc_os_initial_ttl(64), 64);
	assert_int_equal(disc_os_initial_ttl(120), 128);
	assert_int_equal(disc_os_initial_ttl(129), 255);
	assert_int_equal(disc_os_initial_ttl(255), 255);
}

static void test_linux_answer_to_scanner(void **state)
{
	struct synack s = {.ttl = 63,
			   .df = true,
			   .ip_id = 0,
			   .window = 64240,
			   .opts = opt_mss,
			   .opts_len = sizeof(opt_mss)};
	struct disc_os_fp fp;
	struct disc_os_guess g;
	char buf[96];

	fp_of(&s, &fp);
	assert_true(fp.has_mss);
	assert_int_equal(fp.mss, 1460);
	assert_int_equal(fp.n_opts, 1);
	assert_true(disc_os_guess(&builtin, &fp, -1, &g));
	assert_string_equal(g.family, "Linux");
	assert_string_equal(g.guess, "Linux 4.x-6.x");
	assert_true(g.confidence >= 80 && g.confidence <= 95);
	assert_string_equal(disc_os_fp_str(&fp, buf, sizeof(buf)),
			    "64 | 64240 | 1460 | M | - | df,id0");
}

static void test_linux_full_options(void **state)
{
	struct synack s = {.ttl = 64,
			   .df = true,
			   .window = 65160,
			   .opts = opt_linux,
			   .opts_len = sizeof(opt_linux)};
	struct disc_os_fp fp;
	struct disc_os_guess g;
	char buf[96];

	fp_of(&s, &fp);
	assert_true(disc_os_guess(&builtin, &fp, -1, &g));
	assert_string_equal(g.family, "Linux");
	assert_true(g.confidence >= 70);
	assert_string_equal(disc_os_fp_str(&fp, buf, sizeof(buf)),
			    "64 | 65160 | 1460 | M,S,T,N,W | 7 | df,id0");
}

static void test_windows(void **state)
{
	struct synack s = {.ttl = 120,
			   .df = true,
			   .ip_id = 0x1234,
			   .window = 64240,
			   .opts = opt_windows,
			   .opts_len = sizeof(opt_windows)};
	struct disc_os_fp fp;
	struct disc_os_guess g;

	fp_of(&s, &fp);
	assert_true(disc_os_guess(&builtin, &fp, -1, &g));
	assert_string_equal(g.family, "Windows");
	assert_string_equal(g.guess, "Windows 10/11, Server 2016+");
	assert_true(g.confidence >= 80);
	/* An odd window at TTL 128 still says Windows, but hardly more. */
	s.window = 12345;
	fp_of(&s, &fp);
	assert_true(disc_os_guess(&builtin, &fp, -1, &g));
	assert_string_equal(g.family, "Windows");
	assert_true(g.confidence <= 25);
}

static void test_openbsd(void **state)
{
	struct synack s = {.ttl = 50,
			   .df = true,
			   .ip_id = 77,
			   .window = 16384,
			   .opts = opt_openbsd,
			   .opts_len = sizeof(opt_openbsd)};
	struct disc_os_fp fp;
	struct disc_os_guess g;

	fp_of(&s, &fp);
	assert_true(disc_os_guess(&builtin, &fp, -1, &g));
	assert_string_equal(g.family, "OpenBSD");
}

static void test_ambiguous_lowers_confidence(void **state)
{
	/* FreeBSD and macOS answer the scanner's SYN alike: 65535, MSS only, TTL 64. */
	struct synack s = {.ttl = 64,
			   .df = true,
			   .ip_id = 5,
			   .window = 65535,
			   .opts = opt_mss,
			   .opts_len = sizeof(opt_mss)};
	struct disc_os_fp fp;
	struct disc_os_guess g;

	fp_of(&s, &fp);
	assert_true(disc_os_guess(&builtin, &fp, -1, &g));
	assert_string_equal(g.family, "FreeBSD"); /* first in the file among equals */
	assert_true(g.confidence <= 60);
}

static void test_no_match_no_guess(void **state)
{
	struct disc_os_db db;
	struct disc_error err = {0};
	struct synack s = {.ttl = 250,
			   .df = true,
			   .ip_id = 1,
			   .window = 100,
			   .opts = opt_mss,
			   .opts_len = sizeof(opt_mss)};
	struct disc_os_fp fp;
	struct disc_os_guess g;

	disc_os_db_init(&db);
	assert_int_equal(parse(&db, "synack | L | - | 64 | * | * | * | * | -\n", &err), DISC_OK);
	fp_of(&s, &fp);
	assert_false(disc_os_guess(&db, &fp, -1, &g));
	assert_string_equal(g.family, "");
	/* no SYN-ACK and no banner: nothing */
	assert_false(disc_os_guess(&db, NULL, -1, &g));
	disc_os_db_release(&db);
}

static void test_field_mismatch_rejects(void **state)
{
	struct disc_os_db db;
	struct disc_error err = {0};
	struct synack s = {.ttl = 64,
			   .df = false,
			   .ip_id = 9,
			   .window = 64240,
			   .opts = opt_mss,
			   .opts_len = sizeof(opt_mss)};
	struct disc_os_fp fp;
	struct disc_os_guess g;

	disc_os_db_init(&db);
	assert_int_equal(
		parse(&db,
		      "synack | A | a | 64 | 64240 | * | M | - | df\n"	      /* DF missing */
		      "synack | B | b | 64 | 64240 | 536 | M | - | -\n"	      /* MSS differs */
		      "synack | C | c | 64 | 64240 | * | M,N | - | -\n"	      /* layout differs */
		      "synack | D | d | 64 | 64240 | * | M | 7 | -\n"	      /* no wscale sent */
		      "synack | E | e | 64 | mss*43 | * | M | - | -\n"	      /* 43 x 1460 no */
		      "synack | F | f | 64 | mss*44 | 1460 | M | - | idnz\n", /* all match */
		      &err),
		DISC_OK);
	fp_of(&s, &fp);
	assert_true(disc_os_guess(&db, &fp, -1, &g));
	assert_string_equal(g.family, "F");
	assert_int_equal(g.sig_line, 6);
	/* 20 TTL + 30 window + 10 MSS + 20 options + 10 wscale + 5 quirk */
	assert_int_equal(g.confidence, 95);
	disc_os_db_release(&db);
}

static void test_banner_hints(void **state)
{
	static const char ssh[] = "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n";
	static const char debian[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
	static const char iis[] = "HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/10.0\r\n";
	struct synack s = {.ttl = 64,
			   .df = true,
			   .window = 64240,
			   .opts = opt_mss,
			   .opts_len = sizeof(opt_mss)};
	struct disc_os_fp fp;
	struct disc_os_guess g, tcp_only;
	int h;

	h = disc_os_banner_hint(&builtin, (const uint8_t *)ssh, strlen(ssh));
	assert_true(h >= 0);
	assert_string_equal(builtin.hints[h].guess, "Ubuntu Linux");
	h = disc_os_banner_hint(&builtin, (const uint8_t *)debian, strlen(debian));
	assert_string_equal(builtin.hints[h].guess, "Debian Linux 12");
	assert_int_equal(disc_os_banner_hint(&builtin, (const uint8_t *)"+PONG\r\n", 7), -1);
	/* case-insensitive, anywhere, binary-safe */
	assert_true(disc_os_banner_hint(&builtin, (const uint8_t *)"\0\xff ubuntu", 9) >= 0);

	/* a banner of the same family confirms and refines the SYN-ACK guess */
	fp_of(&s, &fp);
	assert_true(disc_os_guess(&builtin, &fp, -1, &tcp_only));
	h = disc_os_banner_hint(&builtin, (const uint8_t *)ssh, strlen(ssh));
	assert_true(disc_os_guess(&builtin, &fp, h, &g));
	assert_string_equal(g.family, "Linux");
	assert_string_equal(g.guess, "Ubuntu Linux");
	assert_true(g.confidence > tcp_only.confidence);
	assert_true(g.sig_line > 0 && g.hint_line > 0);

	/* a contradicting banner lowers a strong SYN-ACK guess but does not override it */
	h = disc_os_banner_hint(&builtin, (const uint8_t *)iis, strlen(iis));
	assert_true(disc_os_guess(&builtin, &fp, h, &g));
	assert_string_equal(g.family, "Linux");
	assert_true(g.confidence < tcp_only.confidence);

	/* a banner alone: a guess with a modest confidence */
	assert_true(disc_os_guess(&builtin, NULL, h, &g));
	assert_string_equal(g.family, "Windows");
	assert_int_equal(g.confidence, 50);
	assert_int_equal(g.sig_line, 0);
}

static void test_load_file_errors(void **state)
{
	struct disc_os_db db;
	struct disc_error err = {0};

	disc_os_db_init(&db);
	assert_int_equal(disc_os_db_load_file(&db, "/nonexistent/os.txt", &err), DISC_ERR_IO);
	assert_non_null(strstr(err.msg, "/nonexistent/os.txt"));
	disc_os_db_release(&db);
}

/* disc_results keeps the first SYN-ACK and hint per host and writes the guess. */
static void test_results_emit_os(void **state)
{
	struct synack linux_sa = {.ttl = 64,
				  .df = true,
				  .window = 64240,
				  .opts = opt_mss,
				  .opts_len = sizeof(opt_mss)};
	struct synack win_sa = {.ttl = 128,
				.df = true,
				.ip_id = 3,
				.window = 8192,
				.opts = opt_mss,
				.opts_len = sizeof(opt_mss)};
	static const char ssh[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3";
	struct disc_results r;
	struct disc_results_emit_opts o = {.proto = "tcp", .os = &builtin};
	struct disc_obs_writer w;
	struct disc_os_fp fp;
	struct disc_error err = {0};
	char *text = NULL, *line2;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	disc_results_init(&r);
	/* 198.18.0.1: Linux SYN-ACK, then a Windows-looking one (ignored), then a banner */
	disc_results_port(&r, 0xc6120001, 22, true, DISC_REASON_SYN_ACK, 64, NULL, NULL);
	fp_of(&linux_sa, &fp);
	disc_results_os_fp(&r, 0xc6120001, &fp);
	fp_of(&win_sa, &fp);
	disc_results_os_fp(&r, 0xc6120001, &fp);
	disc_results_os_hint(&r, 0xc6120001,
			     disc_os_banner_hint(&builtin, (const uint8_t *)ssh, strlen(ssh)));
	/* 198.18.0.2: only ARP, no SYN-ACK, no banner: no guess */
	disc_results_host(&r, 0xc6120002, DISC_REASON_ARP, -1, NULL, NULL, NULL);
	/* an unknown host is not created by a fingerprint */
	disc_results_os_fp(&r, 0xc6120003, &fp);
	assert_null(disc_results_find(&r, 0xc6120003));
	disc_obs_writer_init(&w, f, "t");
	assert_int_equal(disc_results_emit(&r, &w, &o, NULL, NULL, NULL, &err), DISC_OK);
	fclose(f);
	assert_non_null(strstr(text, "\"os\":{\"family\":\"Linux\",\"guess\":\"Debian Linux 12\","
				     "\"confidence\":99}"));
	assert_non_null(strstr(text, "\"tcp_fingerprint\":\"64 | 64240 | 1460 | M | - | df,id0\""));
	line2 = strstr(text, "\"ip\":\"198.18.0.2\"");
	assert_non_null(line2);
	assert_null(strstr(line2, "\"os\""));
	assert_null(strstr(line2, "tcp_fingerprint"));
	free(text);

	/* without the OS db (no --os): neither field */
	text = NULL;
	f = open_memstream(&text, &len);
	o.os = NULL;
	disc_obs_writer_init(&w, f, "t");
	assert_int_equal(disc_results_emit(&r, &w, &o, NULL, NULL, NULL, &err), DISC_OK);
	fclose(f);
	assert_null(strstr(text, "\"os\""));
	assert_null(strstr(text, "tcp_fingerprint"));
	free(text);
	disc_results_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_parse_bad_lines),
		cmocka_unit_test(test_parse_keeps_nothing_of_bad_file),
		cmocka_unit_test(test_parse_not_nul_terminated),
		cmocka_unit_test(test_builtin_loads),
		cmocka_unit_test(test_initial_ttl),
		cmocka_unit_test(test_linux_answer_to_scanner),
		cmocka_unit_test(test_linux_full_options),
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_openbsd),
		cmocka_unit_test(test_ambiguous_lowers_confidence),
		cmocka_unit_test(test_no_match_no_guess),
		cmocka_unit_test(test_field_mismatch_rejects),
		cmocka_unit_test(test_banner_hints),
		cmocka_unit_test(test_load_file_errors),
		cmocka_unit_test(test_results_emit_os),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
