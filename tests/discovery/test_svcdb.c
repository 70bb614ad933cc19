/*
 * disc_svcdb: the probe database parser (bad lines rejected with their line
 * numbers) and every protocol matcher of the built-in database, fed with
 * responses built byte by byte from the protocols' specifications.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "disc/ports.h"
#include "disc/svcdb.h"

static struct disc_svcdb *db;

static int setup(void **state)
{
	struct disc_error err = {0};

	(void)state;
	if (disc_svcdb_load_default(&db, &err) != DISC_OK) {
		fprintf(stderr, "built-in database: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	disc_svcdb_free(db);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Parser                                                             */

static void expect_error(const char *text, const char *want)
{
	struct disc_svcdb *d = (struct disc_svcdb *)1;
	struct disc_error err = {0};

	assert_int_equal(disc_svcdb_parse(&d, text, strlen(text), "t.txt", &err), DISC_ERR_SYNTAX);
	assert_null(d);
	if (!strstr(err.msg, want)) {
		fprintf(stderr, "got \"%s\", want \"%s\"\n", err.msg, want);
		fail();
	}
}

static void test_parse_minimal(void **state)
{
	static const char text[] = "# comment\n"
				   "probe null tcp\r\n"
				   "wait 200\n"
				   "match ssh ^SSH-([0-9.]+)-(\\S+)\n"
				   "  product $2\n"
				   "  extra protocol v$1 $$\n"
				   "  confidence 70\n"
				   "probe hello tcp\n"
				   "ports 1,10-20\n"
				   "send \"a\\x00\\r\\n\\\"\\\\\"\n"
				   "exclusive\n"
				   "probe tls tcp handshake\n"
				   "extract ssh comment (\\S+)$";
	struct disc_svcdb *d;
	struct disc_error err = {0};
	const struct disc_svc_probe *p;
	struct disc_svc_match m;

	(void)state;
	assert_int_equal(disc_svcdb_parse(&d, text, strlen(text), "t.txt", &err), DISC_OK);
	assert_int_equal(disc_svcdb_n_probes(d), 3);
	assert_int_equal(disc_svcdb_n_rules(d), 1);
	p = disc_svcdb_probe(d, 0);
	assert_string_equal(p->name, "null");
	assert_int_equal(p->wait_ms, 200);
	p = disc_svcdb_probe(d, 1);
	assert_int_equal(p->payload_len, 6);
	assert_memory_equal(p->payload, "a\0\r\n\"\\", 6);
	assert_true(p->exclusive);
	assert_true(disc_svcdb_probe_has_port(p, 15));
	assert_false(disc_svcdb_probe_has_port(p, 21));
	assert_true(disc_svcdb_probe(d, 2)->handshake);
	assert_int_equal(disc_svcdb_find_probe(d, "tls"), 2);

	assert_int_equal(disc_svcdb_match(d, 1, (const uint8_t *)"SSH-2.0-x y", 11, &m, NULL),
			 DISC_OK);
	assert_string_equal(m.service, "ssh");
	assert_string_equal(m.product, "x");
	assert_int_equal(m.confidence, 70);
	assert_int_equal(m.line, 4);
	assert_string_equal(json_string_value(json_object_get(m.extra, "protocol")), "v2.0 $");
	assert_string_equal(json_string_value(json_object_get(m.extra, "comment")), "y");
	disc_svc_match_release(&m);
	disc_svcdb_free(d);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_error("", "t.txt:0: no probes");
	expect_error("probe hello tcp\n", "t.txt:1: the first probe must be \"probe null tcp\"");
	expect_error("probe null tcp\nprob x tcp\n", "t.txt:2: unknown keyword \"prob\"");
	expect_error("probe null tcp\nmatch ssh ^SSH-(\n", "t.txt:2: bad regular expression");
	expect_error("probe null tcp\nmatch SSH ^SSH\n", "t.txt:2: match: bad or missing service name");
	expect_error("probe null tcp\nproduct x\n", "t.txt:2: product outside a match");
	expect_error("probe null tcp\nmatch a b\nproduct $x\n", "t.txt:3: a $ must be followed");
	expect_error("probe null tcp\nmatch a b\nproduct x\nproduct y\n", "t.txt:4: given twice");
	expect_error("probe null tcp\nmatch a b\nconfidence 101\n", "t.txt:3: confidence");
	expect_error("probe null tcp\nmatch a b\nextra Bad v\n", "t.txt:3: extra: bad or missing key");
	expect_error("probe null tcp\nsend \"x\"\n", "t.txt:2: probe null sends nothing");
	expect_error("probe null tcp\nprobe p tcp\nsend \"x\n", "t.txt:3: send: missing closing quote");
	expect_error("probe null tcp\nprobe p tcp\nsend \"\\q\"\n", "t.txt:3: send: unknown escape");
	expect_error("probe null tcp\nprobe p tcp\nsend \"\\x4\"\n", "t.txt:3: send: \\x needs two");
	expect_error("probe null tcp\nprobe p tcp\nsend \"\"\n", "t.txt:3: send: the payload must be");
	expect_error("probe null tcp\nprobe p tcp\nports 10-5\nsend \"x\"\n",
		     "t.txt:3: ports: bad range \"10-5\"");
	expect_error("probe null tcp\nprobe p tcp\nports 70000\nsend \"x\"\n",
		     "t.txt:3: ports: bad port \"70000\"");
	expect_error("probe null tcp\nprobe p tcp\n\n# no send\n", "t.txt:2: probe p has no send line");
	expect_error("probe null tcp\nprobe p udp\nsend \"x\"\n",
		     "t.txt:2: probe p is tried only on its ports but lists none");
	expect_error("probe null tcp\nprobe p tcp\nsend \"x\"\nprobe p tcp\n",
		     "t.txt:4: probe p defined twice (first on line 2)");
	expect_error("probe null tcp\nprobe p sctp\n", "t.txt:2: probe p: protocol must be tcp or udp");
	expect_error("probe null tcp\nprobe t tcp handshake\nmatch x y\n",
		     "t.txt:3: a handshake probe has no match rules");
	expect_error("probe null tcp\nmatch a b\nwait 100\n", "t.txt:3: wait belongs right after a probe");
	expect_error("probe null tcp\nwait 5\n", "t.txt:2: wait: milliseconds");
	expect_error("probe null tcp\nextract http title <title>\n",
		     "t.txt:2: extract: the expression needs a capture group");
	{
		static const char nul[] = "probe null tcp\nmatch a b\nx\0y\n";
		struct disc_svcdb *d;
		struct disc_error err = {0};

		assert_int_equal(disc_svcdb_parse(&d, nul, sizeof(nul) - 1, "t.txt", &err),
				 DISC_ERR_SYNTAX);
		assert_non_null(strstr(err.msg, "t.txt:3: NUL byte"));
	}
}

static void test_plan(void **state)
{
	size_t order[32], n;
	int tls = disc_svcdb_find_probe(db, "tls"), http = disc_svcdb_find_probe(db, "http-get");
	int redis = disc_svcdb_find_probe(db, "redis"), pjl = disc_svcdb_find_probe(db, "pjl");
	int snmp = disc_svcdb_find_probe(db, "snmp");

	(void)state;
	assert_true(tls > 0 && http > 0 && redis > 0 && pjl > 0 && snmp > 0);
	/* 443: the TLS handshake first, then HTTP, then the rest. */
	n = disc_svcdb_plan(db, DISC_PROTO_TCP, 443, false, order, 32);
	assert_true(n > 5);
	assert_int_equal(order[0], tls);
	assert_int_equal(order[1], http);
	/* Inside TLS no handshake probe. */
	n = disc_svcdb_plan(db, DISC_PROTO_TCP, 443, true, order, 32);
	assert_int_equal(order[0], http);
	for (size_t i = 0; i < n; i++)
		assert_int_not_equal(order[i], tls);
	/* 6379: redis first; max is honoured. */
	n = disc_svcdb_plan(db, DISC_PROTO_TCP, 6379, false, order, 3);
	assert_int_equal(n, 3);
	assert_int_equal(order[0], redis);
	/* Raw printer ports get nothing but PJL. */
	n = disc_svcdb_plan(db, DISC_PROTO_TCP, 9100, false, order, 32);
	assert_int_equal(n, 1);
	assert_int_equal(order[0], pjl);
	/* UDP probes only on their own ports. */
	n = disc_svcdb_plan(db, DISC_PROTO_UDP, 161, false, order, 32);
	assert_int_equal(n, 1);
	assert_int_equal(order[0], snmp);
	assert_int_equal(disc_svcdb_plan(db, DISC_PROTO_UDP, 9999, false, order, 32), 0);
	/* The exclusive PJL probe is never tried elsewhere. */
	n = disc_svcdb_plan(db, DISC_PROTO_TCP, 31337, false, order, 32);
	for (size_t i = 0; i < n; i++)
		assert_int_not_equal(order[i], pjl);
}

/* ------------------------------------------------------------------ */
/* Matchers                                                           */

struct want {
	const char *probe, *service, *product, *version;
	const char *key, *value; /* one extra field, or NULL */
};

static void check(const struct want *w, const void *buf, size_t len)
{
	struct disc_svc_match m;
	int probe = disc_svcdb_find_probe(db, w->probe);

	assert_true(probe >= 0);
	assert_int_equal(disc_svcdb_match(db, (size_t)probe, buf, len, &m, NULL), DISC_OK);
	if (strcmp(m.service, w->service) != 0)
		fprintf(stderr, "probe %s: got service \"%s\" (line %u), want \"%s\"\n", w->probe,
			m.service, m.line, w->service);
	assert_string_equal(m.service, w->service);
	assert_string_equal(m.product, w->product ? w->product : "");
	assert_string_equal(m.version, w->version ? w->version : "");
	if (w->key) {
		const char *v = json_string_value(json_object_get(m.extra, w->key));

		if (!v || strcmp(v, w->value) != 0)
			fprintf(stderr, "extra %s: got \"%s\", want \"%s\"\n", w->key,
				v ? v : "(none)", w->value);
		assert_non_null(v);
		assert_string_equal(v, w->value);
	}
	assert_true(m.confidence > 0 && m.confidence <= 100);
	disc_svc_match_release(&m);
}

#define CHECK_STR(w, s) check(w, s, sizeof(s) - 1)

static void test_ssh(void **state)
{
	(void)state;
	CHECK_STR(&((struct want){"null", "ssh", "OpenSSH", "9.2p1", "distro", "Debian-2+deb12u3"}),
		  "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
	CHECK_STR(&((struct want){"null", "ssh", "Dropbear sshd", "2022.83", "protocol", "2.0"}),
		  "SSH-2.0-dropbear_2022.83\r\n");
	CHECK_STR(&((struct want){"null", "ssh", NULL, NULL, "software", "Cisco-1.25"}),
		  "SSH-1.99-Cisco-1.25\n");
	/* A banner that comes in answer to another probe still names the service. */
	CHECK_STR(&((struct want){"http-get", "ssh", "OpenSSH", "8.4p1", NULL, NULL}),
		  "SSH-2.0-OpenSSH_8.4p1\r\nInvalid SSH identification string.\r\n");
}

static void test_http(void **state)
{
	static const char nginx[] = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: x\r\n"
				    "Content-Type: text/html\r\n\r\n<html><head><TITLE>cmdb lab a1 "
				    "nginx</TITLE></head></html>";
	static const char apache[] = "HTTP/1.1 403 Forbidden\r\nServer: Apache/2.4.62 (Debian)\r\n\r\n";
	static const char python[] = "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\n\r\n";
	static const char other[] = "HTTP/1.1 200 OK\r\nServer: gunicorn/21.2.0\r\n\r\n";
	static const char bare[] = "HTTP/1.0 404 Not Found\r\n\r\n";
	static const char cups[] = "HTTP/1.1 200 OK\r\nServer: CUPS/2.4 IPP/2.1\r\n\r\n";

	(void)state;
	CHECK_STR(&((struct want){"http-get", "http", "nginx", "1.22.1", "title", "cmdb lab a1 nginx"}),
		  nginx);
	CHECK_STR(&((struct want){"http-get", "http", "nginx", "1.22.1", "server_header",
				  "nginx/1.22.1"}),
		  nginx);
	CHECK_STR(&((struct want){"http-get", "http", "Apache httpd", "2.4.62", "os", "Debian"}), apache);
	CHECK_STR(&((struct want){"http-get", "http", "SimpleHTTP", "0.6", "python", "3.11.2"}), python);
	CHECK_STR(&((struct want){"http-get", "http", "gunicorn", "21.2.0", NULL, NULL}), other);
	CHECK_STR(&((struct want){"http-get", "http", NULL, NULL, NULL, NULL}), bare);
	CHECK_STR(&((struct want){"http-get", "ipp", "CUPS", "2.4", "ipp_version", "2.1"}), cups);
}

static void test_mail_and_ftp(void **state)
{
	(void)state;
	CHECK_STR(&((struct want){"null", "smtp", "Postfix smtpd", NULL, "hostname", "mail.lab.test"}),
		  "220 mail.lab.test ESMTP Postfix (Debian/GNU)\r\n");
	CHECK_STR(&((struct want){"null", "smtp", "Exim smtpd", "4.96", NULL, NULL}),
		  "220 mx.example.org ESMTP Exim 4.96 Mon, 01 Jan 2024 00:00:00 +0000\r\n");
	CHECK_STR(&((struct want){"null", "smtp", NULL, NULL, "hostname", "mx.example.org"}),
		  "220 mx.example.org ESMTP ready\r\n");
	CHECK_STR(&((struct want){"null", "ftp", "vsftpd", "3.0.3", NULL, NULL}), "220 (vsFTPd 3.0.3)\r\n");
	CHECK_STR(&((struct want){"null", "ftp", "ProFTPD", "1.3.8", NULL, NULL}),
		  "220 ProFTPD 1.3.8 Server (Debian) [198.18.1.1]\r\n");
	CHECK_STR(&((struct want){"null", "ftp", NULL, NULL, NULL, NULL}), "220 Welcome to the FTP archive\r\n");
	CHECK_STR(&((struct want){"null", "pop3", "Dovecot pop3d", NULL, "os", "Debian"}),
		  "+OK Dovecot (Debian) ready.\r\n");
	CHECK_STR(&((struct want){"null", "imap", "Dovecot imapd", NULL, "os", "Debian"}),
		  "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
		  "AUTH=PLAIN] Dovecot (Debian) ready.\r\n");
	CHECK_STR(&((struct want){"null", "imap", NULL, NULL, NULL, NULL}),
		  "* OK [CAPABILITY IMAP4rev1 STARTTLS] Courier ready\r\n");
}

static void test_redis_memcached(void **state)
{
	static const char info[] = "+PONG\r\n$120\r\n# Server\r\nredis_version:7.0.15\r\n"
				   "redis_git_sha1:00000000\r\nredis_mode:standalone\r\nos:Linux x86_64\r\n";

	(void)state;
	CHECK_STR(&((struct want){"redis", "redis", "Redis key-value store", "7.0.15", "mode", "standalone"}),
		  info);
	CHECK_STR(&((struct want){"redis", "redis", "Redis key-value store", NULL, "auth", "required"}),
		  "-NOAUTH Authentication required.\r\n");
	CHECK_STR(&((struct want){"redis", "redis", "Redis key-value store", NULL, NULL, NULL}),
		  "+PONG\r\n-NOPERM this user has no permissions to run the 'info' command\r\n");
	CHECK_STR(&((struct want){"memcached", "memcached", "memcached", "1.6.18", NULL, NULL}),
		  "VERSION 1.6.18\r\n");
}

static void test_mysql(void **state)
{
	/* Handshake v10: length 0x4a, sequence 0, protocol 10, version, NUL, thread id ... */
	static const uint8_t mysql[] = {0x4a, 0x00, 0x00, 0x00, 0x0a, '8', '.', '0', '.', '3', '6',
					0x00, 0x08, 0x00, 0x00, 0x00, 0x3a, 0x2b, 0x1c, 0x0d};
	static const uint8_t maria[] = {0x56, 0x00, 0x00, 0x00, 0x0a, '5', '.', '5', '.', '5', '-',
					'1',  '0',  '.',  '1',  '1',  '.', '6', '-', 'M', 'a', 'r',
					'i',  'a',  'D',  'B',  '-',  '0', 0x00, 0x01, 0x02};
	static const uint8_t denied[] = {0x45, 0x00, 0x00, 0x00, 0xff, 0x6a, 0x04, 'H', 'o', 's', 't',
					 ' ', '\'', '1', '\'', ' ', 'i', 's', ' ', 'n', 'o', 't',
					 ' ', 'a', 'l', 'l', 'o', 'w', 'e', 'd'};

	(void)state;
	check(&((struct want){"null", "mysql", "MySQL", "8.0.36", NULL, NULL}), mysql, sizeof(mysql));
	check(&((struct want){"null", "mysql", "MariaDB", "10.11.6", NULL, NULL}), maria, sizeof(maria));
	check(&((struct want){"null", "mysql", NULL, NULL, "error", "Host '1' is not allowed"}), denied,
	      sizeof(denied));
}

static void test_postgresql(void **state)
{
	/* AuthenticationSASL: 'R', length 23, type 10, "SCRAM-SHA-256\0\0". */
	static const uint8_t sasl[] = {'R', 0, 0, 0, 23, 0, 0, 0, 10, 'S', 'C', 'R', 'A', 'M', '-',
				       'S', 'H', 'A', '-', '2', '5', '6', 0, 0};
	/* AuthenticationMD5Password: 'R', length 12, type 5, salt. */
	static const uint8_t md5[] = {'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4};
	static const char fatal[] = "E\x00\x00\x00\x60SFATAL\x00VFATAL\x00" "C28000\x00Mno pg_hba.conf "
				    "entry\x00\x00";

	(void)state;
	check(&((struct want){"postgresql", "postgresql", "PostgreSQL", NULL, "auth", "SCRAM-SHA-256"}),
	      sasl, sizeof(sasl));
	check(&((struct want){"postgresql", "postgresql", "PostgreSQL", NULL, NULL, NULL}), md5, sizeof(md5));
	check(&((struct want){"postgresql", "postgresql", "PostgreSQL", NULL, "error_code", "28000"}), fatal,
	      sizeof(fatal) - 1);
}

static void test_binary_protocols(void **state)
{
	/* DNS over TCP: length, id c3db, flags 8400 (QR, AA), 1 question, 1 answer; TXT "dnsmasq-2.90". */
	static const uint8_t dns[] = {0x00, 0x3b, 0xc3, 0xdb, 0x84, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
				      0x00, 0x00, 0x00, 0x07, 'v',  'e',  'r',  's',  'i',  'o',  'n',
				      0x04, 'b',  'i',  'n',  'd',  0x00, 0x00, 0x10, 0x00, 0x03, 0xc0,
				      0x0c, 0x00, 0x10, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0d,
				      0x0c, 'd',  'n',  's',  'm',  'a',  's',  'q',  '-',  '2',  '.',
				      '9',  '0'};
	/* The same id with REFUSED and no answer: still a DNS server. */
	static const uint8_t dns_refused[] = {0x00, 0x0c, 0xc3, 0xdb, 0x80, 0x05, 0, 0, 0, 0, 0, 0, 0, 0};
	/* SMB2 NEGOTIATE response choosing 3.0.2. */
	uint8_t smb[4 + 64 + 8] = {0x00, 0x00, 0x00, 0x48, 0xfe, 'S', 'M', 'B', 0x40, 0x00};
	/* X.224 Connection Confirm with RDP_NEG_RSP selecting CredSSP (PROTOCOL_HYBRID). */
	static const uint8_t rdp[] = {0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34,
				      0x00, 0x02, 0x1f, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00};
	/* LDAP BindResponse, message id 1, resultCode success. */
	static const uint8_t ldap[] = {0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07,
				       0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00};
	/* MQTT CONNACK: accepted, and refused (not authorized). */
	static const uint8_t connack[] = {0x20, 0x02, 0x00, 0x00};
	static const uint8_t connack_no[] = {0x20, 0x02, 0x00, 0x05};
	/* MongoDB OP_MSG reply (responseTo 1) with {version: "7.0.5", ok: 1.0}. */
	static const uint8_t mongo[] = {
		0x3d, 0, 0, 0, 0x07, 0, 0, 0, 0x01, 0, 0, 0, 0xdd, 0x07, 0, 0, /* header */
		0, 0, 0, 0, 0x00,					      /* flags, kind 0 */
		0x28, 0, 0, 0,						      /* document length */
		0x02, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0, 0x06, 0, 0, 0, '7', '.', '0', '.',
		'5', 0, 0x01, 'o', 'k', 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x00};
	/* SNMPv2c GetResponse to our request with sysDescr "Linux lab 6.1". */
	static const uint8_t snmp[] = {
		0x30, 0x34, 0x02, 0x01, 0x01, 0x04, 0x06, 'p', 'u', 'b', 'l', 'i', 'c', 0xa2, 0x27,
		0x02, 0x04, 0x63, 0x6d, 0x64, 0x62, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x19,
		0x30, 0x17, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x04, 0x0d,
		'L', 'i', 'n', 'u', 'x', ' ', 'l', 'a', 'b', ' ', '6', '.', '1'};
	static const uint8_t telnet[] = {0xff, 0xfd, 0x18, 0xff, 0xfd, 0x20, 0xff, 0xfd, 0x23};

	(void)state;
	check(&((struct want){"dns", "dns", "dnsmasq", "2.90", NULL, NULL}), dns, sizeof(dns));
	check(&((struct want){"dns", "dns", NULL, NULL, NULL, NULL}), dns_refused, sizeof(dns_refused));
	smb[4 + 64] = 0x41;
	smb[4 + 64 + 4] = 0x02;
	smb[4 + 64 + 5] = 0x03;
	check(&((struct want){"smb", "smb", NULL, NULL, "dialect", "3.0.2"}), smb, sizeof(smb));
	check(&((struct want){"rdp", "rdp", NULL, NULL, "security", "CredSSP"}), rdp, sizeof(rdp));
	check(&((struct want){"ldap", "ldap", NULL, NULL, "bind", "anonymous-allowed"}), ldap, sizeof(ldap));
	check(&((struct want){"mqtt", "mqtt", NULL, NULL, "connect", "accepted"}), connack, sizeof(connack));
	check(&((struct want){"mqtt", "mqtt", NULL, NULL, "connect", "refused"}), connack_no,
	      sizeof(connack_no));
	check(&((struct want){"mongodb", "mongodb", "MongoDB", "7.0.5", NULL, NULL}), mongo, sizeof(mongo));
	check(&((struct want){"snmp", "snmp", NULL, NULL, "sysdescr", "Linux lab 6.1"}), snmp, sizeof(snmp));
	check(&((struct want){"null", "telnet", NULL, NULL, NULL, NULL}), telnet, sizeof(telnet));
	CHECK_STR(&((struct want){"null", "vnc", NULL, NULL, "protocol", "003.008"}), "RFB 003.008\n");
	CHECK_STR(&((struct want){"pjl", "printer-pjl", "HP LaserJet 4250", NULL, NULL, NULL}),
		  "@PJL INFO ID\r\n\"HP LaserJet 4250\"\r\n\x0c");
}

static void test_no_match(void **state)
{
	struct disc_svc_match m;
	static const char unknown[] = "HELLO cmdb-lab custom-service 1.0\r\n";
	static const uint8_t junk[] = {0x00, 0x01, 0xff, 0xfe};

	(void)state;
	assert_int_equal(disc_svcdb_match(db, 0, (const uint8_t *)unknown, sizeof(unknown) - 1, &m, NULL),
			 DISC_OK);
	assert_string_equal(m.service, "");
	disc_svc_match_release(&m);
	for (size_t p = 0; p < disc_svcdb_n_probes(db); p++) {
		assert_int_equal(disc_svcdb_match(db, p, junk, sizeof(junk), &m, NULL), DISC_OK);
		assert_string_equal(m.service, "");
		disc_svc_match_release(&m);
	}
	/* Nothing read: nothing matched, and a probe index past the end is harmless. */
	assert_int_equal(disc_svcdb_match(db, 0, junk, 0, &m, NULL), DISC_OK);
	assert_string_equal(m.service, "");
	assert_int_equal(disc_svcdb_match(db, 9999, junk, sizeof(junk), &m, NULL), DISC_OK);
	assert_string_equal(m.service, "");
}

static void test_clean_text(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(disc_svc_clean_text((const uint8_t *)"  a\r\n\tb  ", 9, out, sizeof(out)), 3);
	assert_string_equal(out, "a b");
	/* Valid UTF-8 stays, an invalid byte becomes '?', each byte of an overlong form too. */
	assert_int_equal(disc_svc_clean_text((const uint8_t *)"\xc3\xa9\xff\xc0\xafz", 6, out, sizeof(out)),
			 6);
	assert_string_equal(out, "\xc3\xa9???z");
	/* Cut at the cap without splitting a sequence. */
	assert_int_equal(disc_svc_clean_text((const uint8_t *)"abc\xc3\xa9", 5, out, 5), 3);
	assert_string_equal(out, "abc");
}

/* Captures in templates are cleaned: a NUL or control byte never reaches JSON. */
static void test_capture_cleaned(void **state)
{
	static const uint8_t mysql[] = {0x20, 0x00, 0x00, 0x00, 0x0a, '8', '.', '0', '\x01', '\xff',
					'x',  0x00};
	struct disc_svc_match m;

	(void)state;
	assert_int_equal(disc_svcdb_match(db, 0, mysql, sizeof(mysql), &m, NULL), DISC_OK);
	assert_string_equal(m.service, "mysql");
	assert_string_equal(m.version, "8.0");
	assert_string_equal(json_string_value(json_object_get(m.extra, "build")), "?x");
	disc_svc_match_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_minimal),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_ssh),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_mail_and_ftp),
		cmocka_unit_test(test_redis_memcached),
		cmocka_unit_test(test_mysql),
		cmocka_unit_test(test_postgresql),
		cmocka_unit_test(test_binary_protocols),
		cmocka_unit_test(test_no_match),
		cmocka_unit_test(test_clean_text),
		cmocka_unit_test(test_capture_cleaned),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
