/*
 * Micro benchmark of probe generation: how many (address, port) pairs per
 * second the permutation and the index mapping produce, and how many SYN
 * frames per second `make` builds from them. Not a test: it prints figures.
 *
 * usage: disc_bench_perm [probes]   (default 50,000,000 per measurement)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "disc/perm.h"
#include "disc/ports.h"
#include "disc/probe.h"
#include "disc/targets.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	unsigned long long limit = argc > 1 ? strtoull(argv[1], NULL, 10) : 50000000ull;
	struct disc_targets t;
	struct disc_ports ports;
	struct disc_perm perm;
	struct disc_error err = {0};
	uint64_t n, idx, sink = 0, count = 0;
	double t0, t1;
	int rc = 1;

	disc_targets_init(&t, DISC_TARGETS_NO_RESOLVE);
	disc_ports_init(&ports);
	if (disc_targets_add(&t, "10.0.0.0/16", &err) ||
	    disc_targets_exclude(&t, "10.0.7.0/24", &err) || disc_targets_finalize(&t, &err) ||
	    disc_ports_parse(&ports, "1-1000", DISC_PROTO_TCP, &err))
		goto fail;
	n = disc_targets_count(&t) * ports.n_tcp;

	/* 1. Permutation plus index -> (address, port). */
	if (disc_perm_init(&perm, n, 12345, 0, 1, &err))
		goto fail;
	t0 = now();
	while (count < limit && disc_perm_next(&perm, &idx)) {
		uint32_t addr = disc_targets_at(&t, idx / ports.n_tcp);
		uint16_t port = ports.tcp[idx % ports.n_tcp];

		sink += addr ^ port;
		count++;
	}
	t1 = now();
	printf("permutation + mapping, /16 x 1000 ports: %llu probes in %.3f s = %.1f million/s "
	       "(goal >= 10)\n",
	       (unsigned long long)count, t1 - t0, (double)count / (t1 - t0) / 1e6);

	/* 1b. A space above 2^32 (/16 x all ports), where the 128-bit product is needed. */
	{
		struct disc_ports all;
		uint64_t big;

		disc_ports_init(&all);
		if (disc_ports_parse(&all, "-", DISC_PROTO_TCP, &err)) {
			disc_ports_release(&all);
			goto fail;
		}
		big = disc_targets_count(&t) * all.n_tcp;
		if (disc_perm_init(&perm, big, 12345, 0, 1, &err)) {
			disc_ports_release(&all);
			goto fail;
		}
		count = 0;
		t0 = now();
		while (count < limit && disc_perm_next(&perm, &idx)) {
			sink += disc_targets_at(&t, idx / all.n_tcp) ^ all.tcp[idx % all.n_tcp];
			count++;
		}
		t1 = now();
		printf("permutation + mapping, /16 x 65536 ports: %llu probes in %.3f s = %.1f "
		       "million/s\n",
		       (unsigned long long)count, t1 - t0, (double)count / (t1 - t0) / 1e6);
		disc_ports_release(&all);
	}

	/* 2. The same, plus building each SYN frame with the cookie. */
	{
		const struct disc_probe_module *syn = disc_probe_find("tcp_syn");
		struct disc_probe_config cfg = {
			.src_mac = {0x02, 0, 0, 0, 0, 1},
			.dst_mac = {0x02, 0, 0, 0, 0, 2},
			.src_ip = 0x0a000101,
			.ttl = 64,
			.window = 1024,
			.mss = 1460,
		};
		uint8_t frame[DISC_PROBE_MAX_FRAME];
		struct disc_cookie cookie;
		uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

		disc_cookie_init(&cookie, key);
		syn->prepare(frame, &cfg);
		if (disc_perm_init(&perm, n, 12345, 0, 1, &err))
			goto fail;
		count = 0;
		t0 = now();
		while (count < limit / 5 && disc_perm_next(&perm, &idx)) {
			struct disc_probe_target pt = {
				.dst_ip = disc_targets_at(&t, idx / ports.n_tcp),
				.dst_port = ports.tcp[idx % ports.n_tcp],
				.src_port = 40000,
				.ip_id = (uint16_t)count,
			};

			pt.seq = disc_cookie_make(&cookie, cfg.src_ip, pt.dst_ip, pt.src_port,
						  pt.dst_port);
			syn->make(frame, &cfg, &pt);
			sink += frame[30];
			count++;
		}
		t1 = now();
		printf("+ SYN frame with cookie: %llu probes in %.3f s = %.1f million/s\n",
		       (unsigned long long)count, t1 - t0, (double)count / (t1 - t0) / 1e6);
	}
	printf("(checksum of outputs, ignore: %llu)\n", (unsigned long long)sink);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "disc_bench_perm: %s\n", err.msg);
out:
	disc_targets_release(&t);
	disc_ports_release(&ports);
	return rc;
}
