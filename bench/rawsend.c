/*
 * rawsend: the minimal raw SYN sender, the ceiling `cmdb discover` is
 * measured against (issue 3, "Performance"; docs/BENCHMARKS.md).
 *
 * Every frame is built before the clock starts (the same tcp_syn frames the
 * scanner sends, from disc_probe), so the timed part is nothing but
 * sendmmsg on AF_PACKET sockets (--ring: a PACKET_TX_RING and send()): no
 * permutation, no cookies, no rate limit, no results. With --pcap a plain
 * libpcap receiver runs beside it (the capture every scanner needs),
 * counting what comes back.
 *
 *   rawsend -i IFACE -t IP,MAC [-t IP,MAC ...] [-p LO-HI] [-n COUNT]
 *           [-b BATCH] [-T THREADS] [--no-bypass] [--pcap] [--pcap-filter EXPR]
 *           [--shuffle] [--ring] [--max-seconds S]
 *
 * Frames go to (host, port) pairs with the host varying fastest (--shuffle:
 * in a random order, as a scanner sends them), from
 * source port 61000 + a per-run offset (the lab's firewall rule keeps the
 * scanning namespace's own kernel out of 61000-61999). Prints one line of
 * key=value figures: frames sent, wall seconds, user and system CPU seconds
 * of this process, packets per second and per CPU-second, replies captured.
 *
 * A bench tool, not a scanner: it refuses destinations outside the RFC 2544
 * benchmarking range 198.18.0.0/15 (the lab's), sends at most COUNT frames
 * (default: one per pair, capped) and stops after --max-seconds (default 30).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "disc/probe.h"

#define MAX_TARGETS  256
#define MAX_THREADS  8
#define MAX_BATCH    1024
#define MAX_COUNT    100000000ull
#define MAX_PREBUILT (1u << 21) /* frames built up front; more are sent again in turn */
#define FRAME_STRIDE 64
#define SPORT	     61000
#define DRAIN_MS     300

struct target {
	uint32_t ip;
	uint8_t mac[6];
};

static struct {
	const char *iface;
	int ifindex;
	uint8_t mac[6];
	uint32_t ip;
	struct target t[MAX_TARGETS];
	unsigned n_t;
	unsigned lo, hi;
	uint64_t count;
	unsigned batch, threads;
	int bypass, pcap, shuffle, ring;
	const char *pcap_filter; /* NULL: "tcp and dst host <ours>" */
	double max_seconds;
	uint8_t *frames; /* n_frames x FRAME_STRIDE */
	size_t n_frames, frame_len;
	_Atomic uint64_t sent;
	_Atomic bool stop_rx, failed;
	uint64_t deadline_ns;
	uint64_t replies, pcap_drops;
} g = {.lo = 1, .hi = 65535, .batch = 64, .threads = 1, .bypass = 1, .max_seconds = 30};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static int usage(void)
{
	fprintf(stderr, "usage: rawsend -i IFACE -t IP,MAC [-t IP,MAC ...] [-p LO-HI] [-n COUNT]\n"
			"               [-b BATCH] [-T THREADS] [--no-bypass] [--pcap]"
			" [--pcap-filter EXPR]\n"
			"               [--shuffle] [--ring] [--max-seconds S]\n");
	return 2;
}

/* Only the lab's range: a bench tool must not be able to flood anyone. */
static bool in_lab_range(uint32_t ip)
{
	return (ip & 0xfffe0000u) == 0xc6120000u; /* 198.18.0.0/15 */
}

static int parse_target(const char *arg)
{
	char ip[32];
	const char *comma = strchr(arg, ',');
	struct in_addr a;
	unsigned m[6];
	char tail;

	if (g.n_t == MAX_TARGETS) {
		fprintf(stderr, "rawsend: at most %d targets\n", MAX_TARGETS);
		return -1;
	}
	if (!comma || (size_t)(comma - arg) >= sizeof(ip)) {
		fprintf(stderr, "rawsend: target '%s' is not IP,MAC\n", arg);
		return -1;
	}
	memcpy(ip, arg, (size_t)(comma - arg));
	ip[comma - arg] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1 ||
	    sscanf(comma + 1, "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5],
		   &tail) != 6) {
		fprintf(stderr, "rawsend: target '%s' is not IP,MAC\n", arg);
		return -1;
	}
	g.t[g.n_t].ip = ntohl(a.s_addr);
	if (!in_lab_range(g.t[g.n_t].ip)) {
		fprintf(stderr, "rawsend: %s is outside the lab range 198.18.0.0/15\n", ip);
		return -1;
	}
	for (int i = 0; i < 6; i++) {
		if (m[i] > 255) {
			fprintf(stderr, "rawsend: bad MAC in '%s'\n", arg);
			return -1;
		}
		g.t[g.n_t].mac[i] = (uint8_t)m[i];
	}
	g.n_t++;
	return 0;
}

static int iface_info(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(g.iface) >= IFNAMSIZ) {
		fprintf(stderr, "rawsend: bad interface %s\n", g.iface);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, g.iface, strlen(g.iface));
	if (ioctl(fd, SIOCGIFINDEX, &ifr) != 0) {
		fprintf(stderr, "rawsend: %s: %s\n", g.iface, strerror(errno));
		close(fd);
		return -1;
	}
	g.ifindex = ifr.ifr_ifindex;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) {
		fprintf(stderr, "rawsend: %s: no MAC: %s\n", g.iface, strerror(errno));
		close(fd);
		return -1;
	}
	memcpy(g.mac, ifr.ifr_hwaddr.sa_data, 6);
	ifr.ifr_addr.sa_family = AF_INET;
	if (ioctl(fd, SIOCGIFADDR, &ifr) != 0) {
		fprintf(stderr, "rawsend: %s: no IPv4 address: %s\n", g.iface, strerror(errno));
		close(fd);
		return -1;
	}
	g.ip = ntohl(((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr);
	close(fd);
	return 0;
}

/* Every frame, before the clock starts: host fastest, then port. */
static int build_frames(void)
{
	const struct disc_probe_module *syn = disc_probe_find("tcp_syn");
	struct disc_probe_config cfg = {.src_ip = g.ip};
	uint64_t pairs = (uint64_t)g.n_t * (g.hi - g.lo + 1);
	uint16_t sport = (uint16_t)(SPORT + 1 + (unsigned)getpid() % 998);

	memcpy(cfg.src_mac, g.mac, 6);
	g.n_frames = pairs < MAX_PREBUILT ? (size_t)pairs : MAX_PREBUILT;
	if (g.count == 0)
		g.count = pairs;
	if (g.count > MAX_COUNT)
		g.count = MAX_COUNT;
	if (g.n_frames > g.count)
		g.n_frames = (size_t)g.count;
	g.frame_len = syn->frame_len;
	g.frames = calloc(g.n_frames, FRAME_STRIDE);
	if (!g.frames) {
		fprintf(stderr, "rawsend: out of memory for %zu frames\n", g.n_frames);
		return -1;
	}
	for (size_t i = 0; i < g.n_frames; i++) {
		const struct target *t = &g.t[i % g.n_t];
		uint8_t *f = g.frames + i * FRAME_STRIDE;
		struct disc_probe_target pt = {
			.dst_ip = t->ip,
			.dst_port = (uint16_t)(g.lo + i / g.n_t),
			.src_port = sport,
			.seq = (uint32_t)(i * 2654435761u),
			.ip_id = (uint16_t)i,
		};

		memcpy(cfg.dst_mac, t->mac, 6);
		syn->prepare(f, &cfg);
		syn->make(f, &cfg, &pt);
	}
	if (g.shuffle) {
		/* Fisher-Yates with a fixed xorshift stream: a random order, the same every run. */
		uint64_t x = 0x9e3779b97f4a7c15ull;
		uint8_t tmp[FRAME_STRIDE];

		for (size_t i = g.n_frames - 1; i > 0; i--) {
			size_t j;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			j = (size_t)(x % (i + 1));
			memcpy(tmp, g.frames + i * FRAME_STRIDE, FRAME_STRIDE);
			memcpy(g.frames + i * FRAME_STRIDE, g.frames + j * FRAME_STRIDE,
			       FRAME_STRIDE);
			memcpy(g.frames + j * FRAME_STRIDE, tmp, FRAME_STRIDE);
		}
	}
	return 0;
}

static int open_socket(void)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = g.ifindex};
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || bind(fd, (const struct sockaddr *)&sll, sizeof(sll)) != 0) {
		fprintf(stderr, "rawsend: packet socket on %s: %s\n", g.iface, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (g.bypass && setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) != 0)
		fprintf(stderr, "rawsend: PACKET_QDISC_BYPASS: %s\n", strerror(errno));
	return fd;
}

struct sender {
	pthread_t tid;
	int fd;
	uint64_t from, to; /* frame numbers (mod n_frames) this thread sends */
	unsigned stalls;
};

/* PACKET_TX_RING: frames of RING_FRAME bytes, RING_FRAMES of them, one send() per batch. */
#define RING_FRAME  128
#define RING_BLOCK  4096
#define RING_FRAMES 8192

static void *ring_sender_main(void *arg)
{
	struct sender *w = arg;
	struct tpacket_req req = {.tp_block_size = RING_BLOCK,
				  .tp_block_nr = RING_FRAMES * RING_FRAME / RING_BLOCK,
				  .tp_frame_size = RING_FRAME,
				  .tp_frame_nr = RING_FRAMES};
	size_t data_off = TPACKET_ALIGN(sizeof(struct tpacket2_hdr)), slot = 0;
	int ver = TPACKET_V2;
	uint8_t *ring;
	uint64_t i = w->from;

	if (setsockopt(w->fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof(ver)) != 0 ||
	    setsockopt(w->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) != 0) {
		fprintf(stderr, "rawsend: PACKET_TX_RING: %s\n", strerror(errno));
		atomic_store(&g.failed, true);
		return NULL;
	}
	ring = mmap(NULL, (size_t)RING_FRAMES * RING_FRAME, PROT_READ | PROT_WRITE, MAP_SHARED,
		    w->fd, 0);
	if (ring == MAP_FAILED) {
		fprintf(stderr, "rawsend: mmap of the TX ring: %s\n", strerror(errno));
		atomic_store(&g.failed, true);
		return NULL;
	}
	while (i < w->to && !atomic_load(&g.failed)) {
		unsigned n = w->to - i < g.batch ? (unsigned)(w->to - i) : g.batch, k;

		if (now_ns() > g.deadline_ns) {
			atomic_store(&g.failed, true);
			break;
		}
		for (k = 0; k < n; k++) {
			struct tpacket2_hdr *h =
				(struct tpacket2_hdr *)(ring +
							((slot + k) % RING_FRAMES) * RING_FRAME);

			if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE)
				break; /* still owned by the kernel: send what is queued */
			memcpy((uint8_t *)h + data_off,
			       g.frames + ((i + k) % g.n_frames) * FRAME_STRIDE, g.frame_len);
			h->tp_len = (uint32_t)g.frame_len;
			__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
		}
		/* Blocking: the kernel sends every queued frame before it returns. */
		if (k > 0 && send(w->fd, NULL, 0, 0) < 0 && errno != ENOBUFS && errno != EAGAIN) {
			fprintf(stderr, "rawsend: send on the TX ring: %s\n", strerror(errno));
			atomic_store(&g.failed, true);
			break;
		}
		if (k == 0 && ++w->stalls > 1000000) {
			fprintf(stderr, "rawsend: the TX ring stays full\n");
			atomic_store(&g.failed, true);
			break;
		}
		slot = (slot + k) % RING_FRAMES;
		i += k;
		atomic_fetch_add(&g.sent, k);
	}
	munmap(ring, (size_t)RING_FRAMES * RING_FRAME);
	return NULL;
}

static void *sender_main(void *arg)
{
	struct sender *w = arg;
	struct mmsghdr *msgs = calloc(g.batch, sizeof(*msgs));
	struct iovec *iov = calloc(g.batch, sizeof(*iov));
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = g.ifindex};
	uint64_t i = w->from;

	if (!msgs || !iov) {
		fprintf(stderr, "rawsend: out of memory\n");
		atomic_store(&g.failed, true);
		goto out;
	}
	/* The frames carry the destination MAC; the address only names the interface. */
	for (unsigned k = 0; k < g.batch; k++) {
		msgs[k].msg_hdr.msg_iov = &iov[k];
		msgs[k].msg_hdr.msg_iovlen = 1;
		msgs[k].msg_hdr.msg_name = &sll;
		msgs[k].msg_hdr.msg_namelen = sizeof(sll);
		iov[k].iov_len = g.frame_len;
	}
	while (i < w->to && !atomic_load(&g.failed)) {
		unsigned n = w->to - i < g.batch ? (unsigned)(w->to - i) : g.batch;
		int r;

		if (now_ns() > g.deadline_ns) {
			atomic_store(&g.failed, true);
			break;
		}
		for (unsigned k = 0; k < n; k++)
			iov[k].iov_base = g.frames + ((i + k) % g.n_frames) * FRAME_STRIDE;
		r = sendmmsg(w->fd, msgs, n, 0);
		if (r > 0) {
			i += (uint64_t)r;
			atomic_fetch_add(&g.sent, (uint64_t)r);
			continue;
		}
		if (r < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) &&
		    ++w->stalls < 1000000) {
			sched_yield();
			continue;
		}
		fprintf(stderr, "rawsend: sendmmsg: %s\n",
			r < 0 ? strerror(errno) : "sent nothing");
		atomic_store(&g.failed, true);
		break;
	}
out:
	free(msgs);
	free(iov);
	return NULL;
}

static void count_reply(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes)
{
	(void)user;
	(void)h;
	(void)bytes;
	g.replies++;
}

/* A plain capture as a scanner would run it: 32 MiB buffer, 10 ms timeout, inbound only. */
static pcap_t *open_capture(void)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "", filter[512];
	struct bpf_program prog;
	struct in_addr a = {.s_addr = htonl(g.ip)};
	pcap_t *p = pcap_create(g.iface, ebuf);

	if (!p) {
		fprintf(stderr, "rawsend: capture: %s\n", ebuf);
		return NULL;
	}
	pcap_set_snaplen(p, 256);
	pcap_set_timeout(p, 10);
	pcap_set_buffer_size(p, 32 << 20);
	if (g.pcap_filter)
		snprintf(filter, sizeof(filter), "%s", g.pcap_filter);
	else
		snprintf(filter, sizeof(filter), "tcp and dst host %s", inet_ntoa(a));
	if (pcap_activate(p) < 0 || pcap_setdirection(p, PCAP_D_IN) != 0 ||
	    pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		fprintf(stderr, "rawsend: capture: %s\n", pcap_geterr(p));
		pcap_close(p);
		return NULL;
	}
	if (pcap_setfilter(p, &prog) != 0 || pcap_setnonblock(p, 1, ebuf) != 0) {
		fprintf(stderr, "rawsend: capture: %s %s\n", pcap_geterr(p), ebuf);
		pcap_freecode(&prog);
		pcap_close(p);
		return NULL;
	}
	pcap_freecode(&prog);
	return p;
}

static void *rx_main(void *arg)
{
	pcap_t *p = arg;
	struct pollfd pfd = {.fd = pcap_get_selectable_fd(p), .events = POLLIN};
	uint64_t end = 0;

	for (;;) {
		if (atomic_load(&g.stop_rx) && !end)
			end = now_ns() + DRAIN_MS * 1000000ull;
		if (end && now_ns() > end)
			break;
		if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
			break;
		if (pcap_dispatch(p, -1, count_reply, NULL) == PCAP_ERROR) {
			fprintf(stderr, "rawsend: capture: %s\n", pcap_geterr(p));
			break;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"no-bypass", no_argument, NULL, 'B'},
		{"pcap", no_argument, NULL, 'P'},
		{"shuffle", no_argument, NULL, 'S'},
		{"ring", no_argument, NULL, 'R'},
		{"max-seconds", required_argument, NULL, 'M'},
		{"pcap-filter", required_argument, NULL, 'F'},
		{NULL, 0, NULL, 0},
	};
	struct sender w[MAX_THREADS];
	struct rusage r0, r1;
	pcap_t *cap = NULL;
	pthread_t rx;
	uint64_t t0, t1;
	double wall, user, sys;
	int c, rc = 0;
	char *end;

	while ((c = getopt_long(argc, argv, "i:t:p:n:b:T:", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			g.iface = optarg;
			break;
		case 't':
			if (parse_target(optarg) != 0)
				return 2;
			break;
		case 'p':
			if (sscanf(optarg, "%u-%u", &g.lo, &g.hi) != 2 || g.lo == 0 ||
			    g.hi > 65535 || g.lo > g.hi) {
				fprintf(stderr, "rawsend: bad port range '%s'\n", optarg);
				return 2;
			}
			break;
		case 'n':
			g.count = strtoull(optarg, &end, 10);
			if (*end || g.count == 0 || g.count > MAX_COUNT) {
				fprintf(stderr, "rawsend: count 1..%llu\n", MAX_COUNT);
				return 2;
			}
			break;
		case 'b':
			g.batch = (unsigned)strtoul(optarg, &end, 10);
			if (*end || g.batch == 0 || g.batch > MAX_BATCH) {
				fprintf(stderr, "rawsend: batch 1..%d\n", MAX_BATCH);
				return 2;
			}
			break;
		case 'T':
			g.threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end || g.threads == 0 || g.threads > MAX_THREADS) {
				fprintf(stderr, "rawsend: threads 1..%d\n", MAX_THREADS);
				return 2;
			}
			break;
		case 'B':
			g.bypass = 0;
			break;
		case 'P':
			g.pcap = 1;
			break;
		case 'S':
			g.shuffle = 1;
			break;
		case 'R':
			g.ring = 1;
			break;
		case 'F':
			g.pcap_filter = optarg;
			g.pcap = 1;
			break;
		case 'M':
			g.max_seconds = strtod(optarg, &end);
			if (*end || !(g.max_seconds > 0 && g.max_seconds <= 600)) {
				fprintf(stderr, "rawsend: max-seconds in (0, 600]\n");
				return 2;
			}
			break;
		default:
			return usage();
		}
	}
	if (!g.iface || g.n_t == 0 || optind != argc)
		return usage();
	if (iface_info() != 0 || build_frames() != 0)
		return 1;
	for (unsigned k = 0; k < g.threads; k++) {
		w[k].fd = open_socket();
		if (w[k].fd < 0)
			return 1;
		w[k].from = g.count * k / g.threads;
		w[k].to = g.count * (k + 1) / g.threads;
		w[k].stalls = 0;
	}
	if (g.pcap) {
		cap = open_capture();
		if (!cap || pthread_create(&rx, NULL, rx_main, cap) != 0)
			return 1;
	}
	getrusage(RUSAGE_SELF, &r0);
	t0 = now_ns();
	g.deadline_ns = t0 + (uint64_t)(g.max_seconds * 1e9);
	for (unsigned k = 0; k < g.threads; k++)
		if (pthread_create(&w[k].tid, NULL, g.ring ? ring_sender_main : sender_main,
				   &w[k]) != 0) {
			fprintf(stderr, "rawsend: cannot start a sender\n");
			return 1;
		}
	for (unsigned k = 0; k < g.threads; k++)
		pthread_join(w[k].tid, NULL);
	t1 = now_ns();
	getrusage(RUSAGE_SELF, &r1);
	if (cap) {
		struct pcap_stat ps;

		atomic_store(&g.stop_rx, true);
		pthread_join(rx, NULL);
		if (pcap_stats(cap, &ps) == 0)
			g.pcap_drops = ps.ps_drop;
		pcap_close(cap);
	}
	wall = (double)(t1 - t0) / 1e9;
	user = cpu_seconds(&r1.ru_utime) - cpu_seconds(&r0.ru_utime);
	sys = cpu_seconds(&r1.ru_stime) - cpu_seconds(&r0.ru_stime);
	printf("sent=%" PRIu64 " wall_s=%.3f user_s=%.3f sys_s=%.3f pps=%.0f pps_per_cpu_s=%.0f"
	       " threads=%u batch=%u bypass=%d shuffle=%d ring=%d",
	       atomic_load(&g.sent), wall, user, sys, (double)atomic_load(&g.sent) / wall,
	       (double)atomic_load(&g.sent) / (user + sys > 0 ? user + sys : 1e-9), g.threads,
	       g.batch, g.bypass, g.shuffle, g.ring);
	if (g.pcap)
		printf(" replies=%" PRIu64 " pcap_drops=%" PRIu64, g.replies, g.pcap_drops);
	printf("\n");
	if (atomic_load(&g.failed)) {
		fprintf(stderr, "rawsend: stopped early (error or --max-seconds)\n");
		rc = 1;
	}
	for (unsigned k = 0; k < g.threads; k++)
		close(w[k].fd);
	free(g.frames);
	return rc;
}
