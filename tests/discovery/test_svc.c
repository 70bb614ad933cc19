/*
 * disc_svc: the engine against real services on 127.0.0.1, run in this
 * process: a speak-first banner, an HTTP server that waits for a request, a
 * TLS server (in-process OpenSSL, certificate made here) with HTTP inside,
 * a TLS server that greets like IMAP, a silent service, an unknown banner,
 * a closed port, and a UDP responder matched through a small database.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "disc/ports.h"
#include "disc/svc.h"

enum kind { SSH, HTTP, TLS_HTTP, TLS_IMAP, SILENT, UNKNOWN, N_KINDS };

struct server {
	enum kind kind;
	int fd;
	uint16_t port;
	pthread_t thread;
};

static SSL_CTX *server_ctx;
static struct server servers[N_KINDS];

static const char ssh_banner[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
static const char unknown_banner[] = "HELLO custom-service 1.0\r\n";
static const char http_answer[] = "HTTP/1.0 200 OK\r\nServer: nginx/1.22.1\r\n"
				  "Content-Type: text/html\r\n\r\n<html><title>svc test</title></html>";

static void make_cert(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	assert_non_null(key);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"cmdb test", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"svc.test", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:svc.test,IP:127.0.0.1");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	server_ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(server_ctx);
	assert_int_equal(SSL_CTX_use_certificate(server_ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(server_ctx, key), 1);
	X509_free(x);
	EVP_PKEY_free(key);
}

struct conn {
	enum kind kind;
	int fd;
};

/* Reads until a blank line (an HTTP request's end), EOF or 2 s of silence. */
static int read_request(int fd, SSL *ssl)
{
	char buf[2048];
	size_t n = 0;

	while (n < sizeof(buf) - 1) {
		int r = ssl ? SSL_read(ssl, buf + n, (int)(sizeof(buf) - 1 - n))
			    : (int)recv(fd, buf + n, sizeof(buf) - 1 - n, 0);

		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return 0;
	}
	return -1;
}

static void *serve_conn(void *arg)
{
	struct conn c = *(struct conn *)arg;
	const struct timeval tv = {.tv_sec = 2};
	SSL *ssl = NULL;

	free(arg);
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	switch (c.kind) {
	case SSH:
		(void)!write(c.fd, ssh_banner, strlen(ssh_banner));
		(void)read_request(c.fd, NULL);
		break;
	case UNKNOWN:
		(void)!write(c.fd, unknown_banner, strlen(unknown_banner));
		(void)read_request(c.fd, NULL);
		break;
	case HTTP:
		if (read_request(c.fd, NULL) == 0)
			(void)!write(c.fd, http_answer, strlen(http_answer));
		break;
	case SILENT:
		(void)read_request(c.fd, NULL);
		break;
	case TLS_HTTP:
	case TLS_IMAP:
		ssl = SSL_new(server_ctx);
		if (!ssl || SSL_set_fd(ssl, c.fd) != 1 || SSL_accept(ssl) != 1)
			break;
		if (c.kind == TLS_IMAP) {
			static const char hi[] = "* OK [CAPABILITY IMAP4rev1] Dovecot (Debian) ready.\r\n";

			SSL_write(ssl, hi, (int)strlen(hi));
			(void)read_request(c.fd, ssl);
		} else if (read_request(c.fd, ssl) == 0) {
			SSL_write(ssl, http_answer, (int)strlen(http_answer));
		}
		SSL_shutdown(ssl);
		break;
	case N_KINDS:
		break;
	}
	SSL_free(ssl);
	close(c.fd);
	return NULL;
}

static void *serve(void *arg)
{
	struct server *s = arg;

	for (;;) {
		int fd = accept(s->fd, NULL, NULL);
		struct conn *c;
		pthread_t t;

		if (fd < 0)
			return NULL; /* the listener was shut down */
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->kind = s->kind;
		c->fd = fd;
		if (pthread_create(&t, NULL, serve_conn, c) == 0)
			pthread_detach(t);
		else {
			close(fd);
			free(c);
		}
	}
}

/* A socket on 127.0.0.1 with a port the kernel picks; returns the fd and sets *port. */
static int bind_loopback(int type, uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, type, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static int setup(void **state)
{
	(void)state;
	make_cert();
	for (int k = 0; k < N_KINDS; k++) {
		servers[k].kind = (enum kind)k;
		servers[k].fd = bind_loopback(SOCK_STREAM, &servers[k].port);
		assert_int_equal(listen(servers[k].fd, 64), 0);
		assert_int_equal(pthread_create(&servers[k].thread, NULL, serve, &servers[k]), 0);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int k = 0; k < N_KINDS; k++) {
		shutdown(servers[k].fd, SHUT_RDWR);
		pthread_join(servers[k].thread, NULL);
		close(servers[k].fd);
	}
	/* Connection threads end on their own (2 s receive timeout); the context outlives them. */
	return 0;
}

static const struct disc_svc_result *find(const struct disc_svc_results *res, uint16_t port)
{
	for (size_t i = 0; i < res->n; i++)
		if (res->r[i].t.port == port)
			return &res->r[i];
	fail_msg("no result for port %u", port);
	return NULL;
}

static const char *extra(const struct disc_svc_result *r, const char *key)
{
	return json_string_value(json_object_get(r->m.extra, key));
}

static void test_detect(void **state)
{
	struct disc_svc_target t[N_KINDS + 1];
	struct disc_svc_results res;
	struct disc_svc_config cfg = {.null_wait_ms = 200};
	struct disc_error err = {0};
	const struct disc_svc_result *r;
	uint16_t closed_port;
	int closed = bind_loopback(SOCK_STREAM, &closed_port); /* bound, never listening */

	(void)state;
	for (int k = 0; k < N_KINDS; k++)
		t[k] = (struct disc_svc_target){INADDR_LOOPBACK, servers[k].port, DISC_PROTO_TCP};
	t[N_KINDS] = (struct disc_svc_target){INADDR_LOOPBACK, closed_port, DISC_PROTO_TCP};
	assert_int_equal(disc_svc_detect(&cfg, t, N_KINDS + 1, &res, &err), DISC_OK);
	close(closed);
	assert_int_equal(res.n, N_KINDS + 1);
	assert_false(res.interrupted);

	r = find(&res, servers[SSH].port);
	assert_true(r->reached && r->finished);
	assert_string_equal(r->m.service, "ssh");
	assert_string_equal(r->m.product, "OpenSSH");
	assert_string_equal(r->m.version, "9.2p1");
	assert_int_equal(r->banner_len, strlen(ssh_banner));
	assert_memory_equal(r->banner, ssh_banner, r->banner_len);
	assert_false(r->tls);

	r = find(&res, servers[HTTP].port);
	assert_string_equal(r->m.service, "http");
	assert_string_equal(r->m.product, "nginx");
	assert_string_equal(extra(r, "title"), "svc test");
	assert_null(r->banner); /* it said nothing first */
	assert_false(r->tls);

	r = find(&res, servers[TLS_HTTP].port);
	assert_string_equal(r->m.service, "http");
	assert_string_equal(r->m.product, "nginx");
	assert_true(r->tls);
	assert_string_equal(r->subject, "CN=svc.test,O=cmdb test");
	assert_string_equal(r->issuer, "CN=svc.test,O=cmdb test");
	assert_int_equal(strlen(r->not_before), 20);
	assert_int_equal(strlen(r->not_after), 20);
	assert_int_equal(r->n_sans, 2);
	assert_string_equal(r->sans[0], "dns:svc.test");
	assert_string_equal(r->sans[1], "ip:127.0.0.1");

	r = find(&res, servers[TLS_IMAP].port);
	assert_string_equal(r->m.service, "imap");
	assert_string_equal(r->m.product, "Dovecot imapd");
	assert_true(r->tls);
	assert_non_null(r->banner); /* the greeting inside TLS */

	r = find(&res, servers[SILENT].port);
	assert_true(r->reached && r->finished);
	assert_string_equal(r->m.service, "");
	assert_false(r->tls);

	r = find(&res, servers[UNKNOWN].port);
	assert_string_equal(r->m.service, "");
	assert_int_equal(r->banner_len, strlen(unknown_banner));
	assert_memory_equal(r->banner, unknown_banner, r->banner_len);

	r = find(&res, closed_port);
	assert_false(r->reached);
	assert_true(res.connections > N_KINDS);
	disc_svc_results_release(&res);
}

/* The lines: one service line per reached port, sorted, "unknown" and "tls" names. */
static void test_emit(void **state)
{
	struct disc_svc_target t[2] = {
		{INADDR_LOOPBACK, servers[UNKNOWN].port, DISC_PROTO_TCP},
		{INADDR_LOOPBACK, servers[SSH].port, DISC_PROTO_TCP},
	};
	struct disc_svc_results res;
	struct disc_svc_config cfg = {.null_wait_ms = 200, .max_probes = 2};
	struct disc_obs_writer w;
	char *text = NULL;
	size_t len = 0, lines = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_non_null(f);
	disc_obs_writer_init(&w, f, "test");
	assert_int_equal(disc_svc_detect(&cfg, t, 2, &res, NULL), DISC_OK);
	assert_int_equal(disc_svc_emit(&res, &w, &lines, NULL), DISC_OK);
	fclose(f);
	assert_int_equal(lines, 2);
	{
		char *nl = strchr(text, '\n');
		json_t *a, *b;
		uint16_t lo = servers[SSH].port < servers[UNKNOWN].port ? servers[SSH].port
									  : servers[UNKNOWN].port;

		assert_non_null(nl);
		*nl = '\0';
		a = json_loads(text, 0, NULL);
		b = json_loads(nl + 1, 0, NULL);
		assert_non_null(a);
		assert_non_null(b);
		assert_string_equal(json_string_value(json_object_get(a, "kind")), "service");
		assert_int_equal(json_integer_value(json_object_get(a, "port")), lo);
		if (lo == servers[UNKNOWN].port) {
			assert_string_equal(json_string_value(json_object_get(a, "service")), "unknown");
			assert_string_equal(json_string_value(json_object_get(b, "service")), "ssh");
		} else {
			assert_string_equal(json_string_value(json_object_get(a, "service")), "ssh");
			assert_string_equal(json_string_value(json_object_get(b, "service")), "unknown");
		}
		json_decref(a);
		json_decref(b);
	}
	free(text);
	disc_svc_results_release(&res);
}

/* A stop flag already set: nothing is reported as finished. */
static void test_stop(void **state)
{
	static volatile sig_atomic_t stop = 1;
	struct disc_svc_target t = {INADDR_LOOPBACK, servers[SSH].port, DISC_PROTO_TCP};
	struct disc_svc_results res;
	struct disc_svc_config cfg = {.stop = &stop};
	size_t lines = 1;
	struct disc_obs_writer w;
	FILE *f = fopen("/dev/null", "w");

	(void)state;
	assert_int_equal(disc_svc_detect(&cfg, &t, 1, &res, NULL), DISC_OK);
	assert_true(res.interrupted);
	disc_obs_writer_init(&w, f, "test");
	assert_int_equal(disc_svc_emit(&res, &w, &lines, NULL), DISC_OK);
	assert_int_equal(lines, 0);
	fclose(f);
	disc_svc_results_release(&res);
}

/* UDP: only the database's UDP probes for the port; an answer makes it open. */
static void *udp_echo(void *arg)
{
	int fd = *(int *)arg;
	char buf[512];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);

	if (n == 5 && memcmp(buf, "ping\n", 5) == 0)
		sendto(fd, "pong 1.2\n", 9, 0, (struct sockaddr *)&from, fl);
	return NULL;
}

static void test_udp(void **state)
{
	char text[256];
	struct disc_svcdb *db;
	uint16_t port, silent_port;
	int fd = bind_loopback(SOCK_DGRAM, &port), silent = bind_loopback(SOCK_DGRAM, &silent_port);
	const struct timeval tv = {.tv_sec = 3};
	struct disc_svc_target t[2] = {{INADDR_LOOPBACK, port, DISC_PROTO_UDP},
				       {INADDR_LOOPBACK, silent_port, DISC_PROTO_UDP}};
	struct disc_svc_results res;
	struct disc_svc_config cfg = {0};
	pthread_t th;

	(void)state;
	snprintf(text, sizeof(text),
		 "probe null tcp\nprobe ping udp\nports %u,%u\nsend \"ping\\n\"\nwait 300\n"
		 "match pingd ^pong ([0-9.]+)\nversion $1\n",
		 port, silent_port);
	assert_int_equal(disc_svcdb_parse(&db, text, strlen(text), "udp", NULL), DISC_OK);
	cfg.db = db;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(pthread_create(&th, NULL, udp_echo, &fd), 0);
	assert_int_equal(disc_svc_detect(&cfg, t, 2, &res, NULL), DISC_OK);
	pthread_join(th, NULL);
	assert_true(res.r[0].reached);
	assert_string_equal(res.r[0].m.service, "pingd");
	assert_string_equal(res.r[0].m.version, "1.2");
	assert_false(res.r[1].reached); /* no answer: not reported */
	disc_svc_results_release(&res);
	disc_svcdb_free(db);
	close(fd);
	close(silent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_emit),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_udp),
	};

	/* The test's own servers write to peers that hang up; the engine must cope without this. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
