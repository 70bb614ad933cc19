/*
 * cmdb discover: find hosts and open TCP ports and write them as observation
 * lines (docs/observations.md). Needs no database.
 *
 * The work is libdisc's (disc/scan.h); this file turns options into a scan
 * configuration, opens the output, drops privileges once the raw sockets are
 * open, reports progress on a terminal, and writes the first (scan) and last
 * (scan_end) lines around what the engine found. What is found is written as
 * it is found, flushed (docs/observations.md, "Order and timing"), so that
 * `cmdb scan` can ingest it while the scan runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "disc/obs.h"
#include "disc/os.h"
#include "disc/pcapin.h"
#include "disc/perm.h"
#include "disc/ports.h"
#include "disc/priv.h"
#include "disc/random.h"
#include "disc/rate.h"
#include "disc/route.h"
#include "disc/scan.h"
#include "disc/svc.h"
#include "disc/targets.h"
#include "disc/value.h"
#include "disc/vendor.h"
#include "disc/xml.h"

const char usage_discover[] =
	"Usage: cmdb discover TARGET... [-p PORTS | --top-ports N | -sn] [-iL FILE]\n"
	"                     [--exclude LIST] [--excludefile FILE] [-Pn] [--rate PPS]\n"
	"                     [--retries N] [--wait SECONDS] [-i IFACE] [--shard I/N]\n"
	"                     [--seed N] [--connect] [--no-service] [--dry-run] [--os]\n"
	"                     [-o FILE] [-oX FILE] [--quiet]\n"
	"       cmdb discover --pcap FILE [TARGET...] [--os] [-o FILE] [-oX FILE]\n"
	"\n"
	"Finds live hosts and open TCP ports and writes what it saw as observations,\n"
	"one JSON object per line (docs/observations.md): a scan line, then each\n"
	"host, open port and service (what runs on the port) as soon as it is found,\n"
	"flushed, so that a reader can act on it while the scan runs; at the end a\n"
	"host line again for each host of which more became known (TTL, OS guess,\n"
	"SYN proxy), then a scan_end line. Needs no database.\n"
	"\n"
	"Host discovery sends ARP requests to targets on a directly attached network\n"
	"and ICMP echo, ICMP timestamp, TCP SYN to 443 and TCP ACK to 80 to routed\n"
	"ones; live hosts then get a TCP SYN scan from raw sockets (needs root or\n"
	"CAP_NET_RAW; every privilege is dropped once the sockets are open). Without\n"
	"that privilege, or with --connect, ports are tried with connect() instead.\n"
	"A host that answers SYN-ACK on nearly every port is reported once, as a SYN\n"
	"proxy (\"syn_proxy\": true), not as thousands of open ports.\n"
	"\n"
	"Targets: addresses, CIDR blocks (198.18.0.0/24), per-octet ranges\n"
	"(198.18.0-3.1-20) and hostnames (resolved once).\n"
	"  -iL FILE            read targets from FILE (- for standard input)\n"
	"  --exclude LIST      never scan these targets (comma or space separated)\n"
	"  --excludefile FILE  never scan the targets in FILE; exclusions always win\n"
	"\n"
	"Ports (TCP; default: --top-ports 1000):\n"
	"  -p PORTS            22,80,1000-2000, service names, or - for all 65,536;\n"
	"                      U:161,53 adds UDP ports, which only service detection\n"
	"                      probes (a UDP port is open when it answers a probe)\n"
	"  --top-ports N       the N most common ports of the project's own list\n"
	"  -sn, --sn           host discovery only (a ping scan): the scan line, a host\n"
	"                      line per live host (MAC and vendor on-link) and scan_end;\n"
	"                      no port scan, no service detection. Not with -p,\n"
	"                      --top-ports, --no-service, --os or -Pn. Its scan line\n"
	"                      carries the networks covered (scope) and no ports, so\n"
	"                      cmdb scan marks the hosts that did not answer missing\n"
	"                      and never a service\n"
	"\n"
	"Scan:\n"
	"  -Pn                 skip host discovery: scan every target (on-link ones\n"
	"                      still need an ARP answer to be reachable); a host is\n"
	"                      reported only if it answers\n"
	"  --rate PPS          probes per second, 1-100000000 (default 10000)\n"
	"  --retries N         extra probes for what got no answer, 0-10 (default 1)\n"
	"  --wait SECONDS      wait for late replies after each phase, 0-60, e.g. 0.5\n"
	"                      or 250ms (default 1); the connect timeout with --connect\n"
	"  -i IFACE            send on IFACE (default: the route to the first target)\n"
	"  --shard I/N         scan part I of N; shards with the same --seed cover\n"
	"                      every host once between them (needs --seed)\n"
	"  --seed N            the random order of probes (default: random)\n"
	"  --connect           connect() scan: no raw sockets, no privileges needed\n"
	"  --no-service        no service detection. By default every open port is\n"
	"                      probed (after privileges are dropped) to name its\n"
	"                      service, product and version from the project's probe\n"
	"                      database; TLS is detected on any port (certificate\n"
	"                      recorded) and probed again inside\n"
	"  --dry-run           build every probe but open no socket and send nothing\n"
	"                      (discovery and port probes for every target; with -sn\n"
	"                      the discovery probes only)\n"
	"  --os                guess each host's OS family from its SYN-ACKs (and,\n"
	"                      passively, its banners): \"os\" in the host line; a\n"
	"                      connect() scan sees no SYN-ACKs and guesses nothing\n"
	"\n"
	"Passive:\n"
	"  --pcap FILE         send nothing: read a pcap or pcapng capture (- for\n"
	"                      standard input) and report the hosts it shows (ARP,\n"
	"                      IPv4 sources), ports that sent SYN-ACKs and the\n"
	"                      first bytes their servers sent; TARGETs, if given,\n"
	"                      limit the hosts reported. Needs no privilege\n"
	"\n"
	"Output:\n"
	"  -o FILE             write the observations to FILE instead of stdout\n"
	"  -oX FILE            also write nmap-compatible XML to FILE\n"
	"  -q, --quiet         no progress line and no summary on stderr\n"
	"\n"
	"The scan line says what the scan covered: the targets after --exclude as\n"
	"CIDR blocks (scope) and the ports probed (scope_ports), so that cmdb ingest\n"
	"marks what a complete scan did not see there as missing. None for --shard,\n"
	"--dry-run or --pcap; targets without a route through the interface make\n"
	"such a scan incomplete (exit 1).\n"
	"\n"
	"Ctrl-C stops the scan, writes what was found and a scan_end line with\n"
	"\"complete\": false.\n"
	"\n"
	"Exit status: 0 when the scan completed, 1 on failure or interruption,\n"
	"2 on usage errors.\n";

enum {
	OPT_TOP_PORTS = OPT_FIRST_LOCAL,
	OPT_IL,
	OPT_EXCLUDE,
	OPT_EXCLUDEFILE,
	OPT_PN,
	OPT_RATE,
	OPT_RETRIES,
	OPT_WAIT,
	OPT_SHARD,
	OPT_SEED,
	OPT_CONNECT,
	OPT_NO_SERVICE,
	OPT_DRY_RUN,
	OPT_NOT_YET,
	OPT_OS,
	OPT_PCAP,
	OPT_OX,
	OPT_SN,
};

#define MAX_FILES 64

struct discover_opts {
	const char *ports_spec;
	uint64_t top_ports;
	const char *input_files[MAX_FILES];
	size_t n_input_files;
	const char *excludes[MAX_FILES];
	size_t n_excludes;
	const char *exclude_files[MAX_FILES];
	size_t n_exclude_files;
	bool skip_discovery, connect, dry_run, seed_given, no_service, os;
	bool discovery_only; /* -sn */
	uint64_t rate, retries, wait_ms, seed;
	uint32_t shard, shards;
	const char *iface, *output, *pcap, *xml_output;
	int argc;
	char **argv; /* as given, for the XML's args */
	char ports_label[32];
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/*
 * nmap spells some options as several letters after one dash (-Pn, -iL);
 * getopt would read them as -P n and -i L. They are rewritten to their long
 * forms first (up to a "--"), into a copy of argv. Caller frees the copy.
 */
static char **nmap_style_args(int argc, char **argv)
{
	static char pn[] = "--Pn", il[] = "--iL", ox[] = "--oX", sn[] = "--sn",
		    not_yet[] = "--output-format-not-implemented";
	char **copy = calloc((size_t)argc + 1, sizeof(*copy));

	if (!copy)
		return NULL;
	for (int i = 0, end = 0; i < argc; i++) {
		copy[i] = argv[i];
		if (end || i == 0)
			continue;
		if (strcmp(argv[i], "--") == 0)
			end = 1;
		else if (strcmp(argv[i], "-oX") == 0)
			copy[i] = ox;
		else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2] &&
			 strchr("XNGAS", argv[i][2]))
			copy[i] = not_yet; /* nmap's -oX/-oN/...: getopt would read -o X */
		else if (strcmp(argv[i], "-Pn") == 0)
			copy[i] = pn;
		else if (strcmp(argv[i], "-sn") == 0)
			copy[i] = sn;
		else if (strcmp(argv[i], "-iL") == 0)
			copy[i] = il;
	}
	return copy;
}

static bool add_to(const char **list, size_t *n, const char *v)
{
	if (*n >= MAX_FILES)
		return false;
	list[(*n)++] = v;
	return true;
}

/* Parses the options into *o; returns -1 to go on, or the exit code to end with. */
static int parse_options(struct cli *cli, int argc, char **argv, struct discover_opts *o)
{
	static const struct option local[] = {
		{"ports", required_argument, NULL, 'p'},
		{"top-ports", required_argument, NULL, OPT_TOP_PORTS},
		{"iL", required_argument, NULL, OPT_IL},
		{"exclude", required_argument, NULL, OPT_EXCLUDE},
		{"excludefile", required_argument, NULL, OPT_EXCLUDEFILE},
		{"Pn", no_argument, NULL, OPT_PN},
		{"rate", required_argument, NULL, OPT_RATE},
		{"retries", required_argument, NULL, OPT_RETRIES},
		{"wait", required_argument, NULL, OPT_WAIT},
		{"iface", required_argument, NULL, 'i'},
		{"shard", required_argument, NULL, OPT_SHARD},
		{"seed", required_argument, NULL, OPT_SEED},
		{"connect", no_argument, NULL, OPT_CONNECT},
		{"no-service", no_argument, NULL, OPT_NO_SERVICE},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"output", required_argument, NULL, 'o'},
		{"output-format-not-implemented", no_argument, NULL, OPT_NOT_YET},
		{"os", no_argument, NULL, OPT_OS},
		{"pcap", required_argument, NULL, OPT_PCAP},
		{"oX", required_argument, NULL, OPT_OX},
		{"sn", no_argument, NULL, OPT_SN},
		{NULL, 0, NULL, 0},
	};
	struct disc_error derr = {0};
	bool stop, top_given = false;
	int c;

	while ((c = cli_next_opt(cli, argc, argv, "p:i:o:", local, &stop)) != -1) {
		switch (c) {
		case 'p':
			if (o->ports_spec)
				return cli_usage(cli, "-p given twice");
			o->ports_spec = optarg;
			break;
		case OPT_TOP_PORTS:
			if (disc_value_uint(optarg, 1, 65536, "--top-ports", &o->top_ports, &derr))
				return cli_usage(cli, "%s", derr.msg);
			top_given = true;
			break;
		case OPT_IL:
			if (!add_to(o->input_files, &o->n_input_files, optarg))
				return cli_usage(cli, "at most %d -iL files", MAX_FILES);
			break;
		case OPT_EXCLUDE:
			if (!add_to(o->excludes, &o->n_excludes, optarg))
				return cli_usage(cli, "at most %d --exclude lists", MAX_FILES);
			break;
		case OPT_EXCLUDEFILE:
			if (!add_to(o->exclude_files, &o->n_exclude_files, optarg))
				return cli_usage(cli, "at most %d --excludefile files", MAX_FILES);
			break;
		case OPT_PN:
			o->skip_discovery = true;
			break;
		case OPT_RATE:
			if (disc_value_uint(optarg, 1, DISC_RATE_MAX, "--rate", &o->rate, &derr))
				return cli_usage(cli, "%s", derr.msg);
			break;
		case OPT_RETRIES:
			if (disc_value_uint(optarg, 0, DISC_SCAN_MAX_RETRIES, "--retries",
					    &o->retries, &derr))
				return cli_usage(cli, "%s", derr.msg);
			break;
		case OPT_WAIT:
			if (disc_value_ms(optarg, DISC_SCAN_MAX_WAIT, "--wait", &o->wait_ms, &derr))
				return cli_usage(cli, "%s", derr.msg);
			break;
		case 'i':
			if (!*optarg || strlen(optarg) >= DISC_IFNAME_MAX)
				return cli_usage(cli, "bad interface name \"%s\"", optarg);
			o->iface = optarg;
			break;
		case OPT_SHARD:
			if (disc_perm_parse_shard(optarg, &o->shard, &o->shards, &derr))
				return cli_usage(cli, "--shard: %s", derr.msg);
			break;
		case OPT_SEED:
			if (disc_value_uint(optarg, 0, UINT64_MAX, "--seed", &o->seed, &derr))
				return cli_usage(cli, "%s", derr.msg);
			o->seed_given = true;
			break;
		case OPT_CONNECT:
			o->connect = true;
			break;
		case OPT_NO_SERVICE:
			o->no_service = true;
			break;
		case OPT_DRY_RUN:
			o->dry_run = true;
			break;
		case 'o':
			o->output = optarg;
			break;
		case OPT_NOT_YET:
			return cli_usage(cli, "observation lines (-o FILE) and XML (-oX FILE) are "
					      "written; -oN, -oG, -oA, -oS and -oXFILE are not");
		case OPT_OS:
			o->os = true;
			break;
		case OPT_PCAP:
			o->pcap = optarg;
			break;
		case OPT_OX:
			o->xml_output = optarg;
			break;
		case OPT_SN:
			o->discovery_only = true;
			break;
		default:
			return cli_usage(cli, NULL);
		}
	}
	if (stop)
		return cli->exit;
	if (o->ports_spec && top_given)
		return cli_usage(cli, "-p and --top-ports exclude each other");
	if (o->pcap) {
		/* A capture is read, not scanned: scan options would mean nothing. */
		if (o->ports_spec || top_given || o->connect || o->dry_run || o->skip_discovery ||
		    o->discovery_only || o->iface || o->shards > 1)
			return cli_usage(cli, "--pcap reads a capture and sends nothing: -p, "
					      "--top-ports, --connect, --dry-run, -Pn, -sn, -i and "
					      "--shard do not apply");
		return -1; /* targets are optional */
	}
	if (o->discovery_only) {
		const char *other = o->ports_spec   ? "-p"
				    : top_given	    ? "--top-ports"
				    : o->no_service ? "--no-service"
				    : o->os	    ? "--os"
						    : NULL;

		if (other)
			return cli_usage(cli,
					 "-sn and %s exclude each other: -sn finds live hosts "
					 "only, with no port scan and no service detection",
					 other);
		/* nmap's -sn -Pn lists the targets without probing them: that
		 * would report every target up, which a CMDB must not believe */
		if (o->skip_discovery)
			return cli_usage(cli, "-sn and -Pn exclude each other: -sn is host "
					      "discovery only and -Pn skips it (listing the "
					      "targets unprobed, as nmap does, is not done)");
	}
	if (!o->ports_spec && !top_given)
		o->top_ports = 1000;
	if (optind >= argc && o->n_input_files == 0)
		return cli_usage(cli, "no targets: give addresses, networks or -iL FILE");
	if (o->shards > 1 && !o->seed_given)
		return cli_usage(cli, "--shard needs --seed, the same for every shard of the scan");
	return -1;
}

/* Targets from the arguments and files, minus exclusions. Returns -1 or an exit code. */
static int build_targets(struct cli *cli, int argc, char **argv, const struct discover_opts *o,
			 struct disc_targets *t)
{
	struct disc_error err = {0};

	for (int i = optind; i < argc; i++)
		if (disc_targets_add(t, argv[i], &err))
			return err.status == DISC_ERR_SYNTAX || err.status == DISC_ERR_RANGE
				       ? cli_usage(cli, "%s", err.msg)
				       : cli_fail("%s", err.msg);
	for (size_t i = 0; i < o->n_input_files; i++)
		if (disc_targets_add_file(t, o->input_files[i], &err))
			return cli_fail("%s", err.msg);
	for (size_t i = 0; i < o->n_excludes; i++)
		if (disc_targets_exclude(t, o->excludes[i], &err))
			return err.status == DISC_ERR_SYNTAX || err.status == DISC_ERR_RANGE
				       ? cli_usage(cli, "--exclude: %s", err.msg)
				       : cli_fail("--exclude: %s", err.msg);
	for (size_t i = 0; i < o->n_exclude_files; i++)
		if (disc_targets_exclude_file(t, o->exclude_files[i], &err))
			return cli_fail("%s", err.msg);
	if (disc_targets_finalize(t, &err))
		return cli_fail("%s", err.msg);
	if (disc_targets_count(t) == 0)
		return cli_fail("no targets left after the exclusions");
	return -1;
}

static int build_ports(struct cli *cli, struct discover_opts *o, struct disc_ports *p)
{
	struct disc_error err = {0};

	if (o->ports_spec) {
		if (disc_ports_parse(p, o->ports_spec, DISC_PROTO_TCP, &err))
			return cli_usage(cli, "-p: %s", err.msg);
		if (p->n_udp && o->no_service)
			return cli_usage(cli, "-p: UDP ports are probed by service detection only; "
					      "drop --no-service or the UDP ports");
		if (p->n_tcp == 0 && p->n_udp)
			return cli_usage(cli, "-p: UDP ports are probed by service detection only, "
					      "on the hosts a TCP scan finds; give TCP ports too");
		if (p->n_tcp == 0)
			return cli_usage(cli, "-p: no TCP ports in \"%s\"", o->ports_spec);
		return -1;
	}
	if (disc_ports_add_top(p, DISC_PROTO_TCP, (unsigned)o->top_ports, &err))
		return cli_fail("%s", err.msg);
	snprintf(o->ports_label, sizeof(o->ports_label), "top:%llu",
		 (unsigned long long)o->top_ports);
	return -1;
}

/* The scan line's options: everything that shapes the result, for provenance. */
static json_t *options_json(const struct discover_opts *o, const struct disc_scan *scan,
			    bool connect)
{
	json_t *opt = json_object();
	char shard[32];

	if (!opt)
		return NULL;
	json_object_set_new(opt, "mode", json_string(connect ? "connect" : "syn"));
	json_object_set_new(opt, "rate", json_integer((json_int_t)o->rate));
	json_object_set_new(opt, "retries", json_integer((json_int_t)o->retries));
	json_object_set_new(opt, "wait", json_real((double)o->wait_ms / 1000.0));
	snprintf(shard, sizeof(shard), "%u/%u", o->shard + 1, o->shards);
	json_object_set_new(opt, "shard", json_string(shard));
	/* As a string: a 64-bit seed does not survive JSON readers that use doubles. */
	snprintf(shard, sizeof(shard), "%llu", (unsigned long long)o->seed);
	json_object_set_new(opt, "seed", json_string(shard));
	json_object_set_new(opt, "host_discovery", json_boolean(!o->skip_discovery));
	json_object_set_new(opt, "host_discovery_only", json_boolean(o->discovery_only));
	json_object_set_new(opt, "dry_run", json_boolean(o->dry_run));
	json_object_set_new(opt, "service_detection",
			    json_boolean(!o->no_service && !o->dry_run && !o->discovery_only));
	json_object_set_new(opt, "os", json_boolean(o->os));
	if (scan && disc_scan_iface(scan)[0])
		json_object_set_new(opt, "iface", json_string(disc_scan_iface(scan)));
	if (o->n_input_files || o->n_excludes || o->n_exclude_files) {
		json_t *arr = json_array();

		for (size_t i = 0; arr && i < o->n_input_files; i++)
			json_array_append_new(arr, json_string(o->input_files[i]));
		json_object_set_new(opt, "input_files", arr);
		arr = json_array();
		for (size_t i = 0; arr && i < o->n_excludes; i++)
			json_array_append_new(arr, json_string(o->excludes[i]));
		json_object_set_new(opt, "exclude", arr);
		arr = json_array();
		for (size_t i = 0; arr && i < o->n_exclude_files; i++)
			json_array_append_new(arr, json_string(o->exclude_files[i]));
		json_object_set_new(opt, "exclude_files", arr);
	}
	return opt;
}

/* The most networks a scan line's scope lists: ~21 bytes each stays far below
 * the ingest's line limit (CMDB_INGEST_LINE_MAX). */
#define SCOPE_MAX_NETWORKS 4096
/* The most port ranges scope_ports lists, both protocols together: ~14 bytes
 * each, with the networks still below the line limit. A list of every other
 * port (32,768 ranges) is refused; an ordinary list is a few hundred. */
#define SCOPE_MAX_PORT_RANGES 8192

/*
 * Appends the runs of consecutive ports of a sorted, distinct list to arr as
 * [lo, hi] pairs (cmdb.port_in reads them). Returns the number of ranges,
 * or -1 when more than max would be needed or memory ran out.
 */
static long add_port_ranges(json_t *arr, const uint16_t *p, size_t n, long max)
{
	long ranges = 0;

	for (size_t i = 0; i < n;) {
		uint16_t lo, hi;

		i = disc_ports_run(p, n, i, &lo, &hi);
		if (++ranges > max ||
		    json_array_append_new(arr, json_pack("[ii]", (int)lo, (int)hi)) != 0)
			return -1;
	}
	return ranges;
}

/*
 * What a scan covered (docs/observations.md), so that cmdb ingest marks
 * what in it was not seen as missing: "scope", the targets after the
 * exclusions as the fewest CIDR blocks, and "scope_ports", the ports probed.
 * ports is NULL for -sn: a ping scan says nothing about services, and a
 * scope_ports with empty lists says so to every reader. udp says whether
 * the UDP ports of ports were probed (only service detection probes them).
 * Adds both keys to line; false (line unchanged) when the targets need more
 * than SCOPE_MAX_NETWORKS blocks, the ports more than SCOPE_MAX_PORT_RANGES
 * ranges, or memory ran out.
 */
static bool add_scope(json_t *line, const struct disc_targets *t, const struct disc_ports *ports,
		      bool udp)
{
	json_t *scope = json_array(), *sp = NULL, *tcp = json_array(), *udps = json_array();
	size_t n = 0;
	long left = SCOPE_MAX_PORT_RANGES, got;

	for (size_t i = 0; scope && i < t->n_ranges; i++) {
		uint64_t lo = t->ranges[i].lo, hi = t->ranges[i].hi;

		while (lo <= hi) {
			unsigned bits = 32;
			char net[32], ip[16];

			/* the largest block that starts at lo and ends within hi */
			while (bits > 0 && (lo & ((1ull << (33 - bits)) - 1)) == 0 &&
			       lo + (1ull << (33 - bits)) - 1 <= hi)
				bits--;
			if (++n > SCOPE_MAX_NETWORKS)
				goto fail;
			snprintf(net, sizeof(net), "%s/%u", disc_ipv4_str((uint32_t)lo, ip), bits);
			if (json_array_append_new(scope, json_string(net)) != 0)
				goto fail;
			lo += 1ull << (32 - bits);
		}
	}
	if (!scope || !tcp || !udps)
		goto fail;
	if (ports) {
		got = add_port_ranges(tcp, ports->tcp, ports->n_tcp, left);
		if (got < 0)
			goto fail;
		left -= got;
		if (udp && add_port_ranges(udps, ports->udp, ports->n_udp, left) < 0)
			goto fail;
	}
	/* pack's "o" steals its references, also when it fails */
	sp = json_pack("{soso}", "tcp", tcp, "udp", udps);
	tcp = udps = NULL;
	if (!sp)
		goto fail;
	if (json_object_set_new(line, "scope", scope) != 0) {
		scope = NULL; /* set_new took it */
		goto fail;
	}
	scope = NULL;
	if (json_object_set_new(line, "scope_ports", sp) != 0) {
		json_object_del(line, "scope");
		return false;
	}
	return true;
fail:
	json_decref(scope);
	json_decref(sp);
	json_decref(tcp);
	json_decref(udps);
	return false;
}

struct progress_ctx {
	bool shown;
};

static void show_progress(void *vctx, const struct disc_scan_stats *st)
{
	struct progress_ctx *ctx = vctx;
	double pct = st->planned ? 100.0 * (double)st->sent / (double)st->planned : 0;
	double eta = st->rate > 0 && st->planned > st->sent
			     ? (double)(st->planned - st->sent) / st->rate
			     : 0;

	if (pct > 100)
		pct = 100;
	fprintf(stderr, "\r\033[K%s %5.1f%% %.0f pps, %llu hosts, %llu open ports, ETA %.0f s",
		st->phase, pct, st->rate, (unsigned long long)st->hosts,
		(unsigned long long)st->open_ports, eta);
	ctx->shown = true;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* A second Ctrl-C ends the program at once, for a scan that will not stop. */
	sa.sa_flags = (int)SA_RESETHAND;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* What --os and -oX need; opened before privileges are dropped. */
struct extras {
	struct disc_os_db os;
	bool have_os;
	struct disc_xml *xml; /* -oX: fed by the observation writer's tee */
	int xml_fd;
};

/* -o FILE, or standard output: -1 when ready, else the exit code. */
static int open_output(const struct discover_opts *o, FILE **out)
{
	*out = stdout;
	if (!o->output)
		return -1;
	*out = fopen(o->output, "w");
	if (!*out) {
		*out = stdout;
		return cli_fail("cannot write %s: %s", o->output, strerror(errno));
	}
	return -1;
}

static int extras_open(const struct discover_opts *o, struct extras *e)
{
	struct disc_error err = {0};

	if (o->os) {
		if (disc_os_db_load_builtin(&e->os, &err))
			return cli_fail("%s", err.msg);
		e->have_os = true;
	}
	if (o->xml_output) {
		/* Not truncated yet: a run that fails before the end leaves a file as it was. */
		e->xml_fd = open(o->xml_output, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (e->xml_fd < 0)
			return cli_fail("cannot write %s: %s", o->xml_output, strerror(errno));
		e->xml = disc_xml_new();
		if (!e->xml)
			return cli_fail("out of memory");
	}
	return -1;
}

/* Appends n bytes of src to buf at *o (room is the caller's). */
static void append(char *buf, size_t *o, const char *src, size_t n)
{
	memcpy(buf + *o, src, n);
	*o += n;
	buf[*o] = '\0';
}

/* The command line as given, shell-quoted where needed, for the XML's args; NULL: no memory. */
static char *command_line(const struct discover_opts *o)
{
	size_t len = 1, n = 0;
	char *s;

	for (int i = 0; i < o->argc; i++)
		len += strlen(o->argv[i]) * 4 + 3;
	s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (int i = 0; i < o->argc; i++) {
		const char *a = o->argv[i];
		/* argv[0] is "cmdb discover", two words that need no quotes. */
		bool quote = i && (!a[0] || strpbrk(a, " \t\n'\"\\$`*?&;|<>()") != NULL);

		if (i)
			append(s, &n, " ", 1);
		if (!quote) {
			append(s, &n, a, strlen(a));
			continue;
		}
		append(s, &n, "'", 1);
		for (; *a; a++)
			if (*a == '\'')
				append(s, &n, "'\\''", 4);
			else
				append(s, &n, a, 1);
		append(s, &n, "'", 1);
	}
	return s;
}

/* Writes the -oX file from what the writer's tee collected. Returns -1 or an exit code. */
static int extras_write_xml(const struct discover_opts *o, struct extras *e, const char *scan_type,
			    const struct disc_ports *ports)
{
	struct disc_error err = {0};
	struct disc_xml_info info = {
		.version = CMDB_VERSION,
		.scan_type = scan_type,
		.ports = ports ? ports->tcp : NULL,
		.n_ports = ports ? ports->n_tcp : 0,
	};
	char *args;
	int code = -1;

	if (!e->xml)
		return -1;
	args = command_line(o);
	info.args = args;
	if (!args || disc_xml_write_fd(e->xml, &info, e->xml_fd, o->xml_output, &err))
		code = cli_fail("%s", args ? err.msg : "out of memory");
	free(args);
	return code;
}

static int extras_release(const struct discover_opts *o, struct extras *e, int code)
{
	if (e->xml_fd >= 0 && close(e->xml_fd) != 0 && code == EXIT_OK)
		code = cli_fail("cannot write %s: %s", o->xml_output, strerror(errno));
	disc_xml_free(e->xml);
	disc_os_db_release(&e->os);
	return code;
}

/* Service detection's on_result: each service line as soon as it is known. */
static enum disc_status write_service(void *ctx, const struct disc_svc_result *r,
				      struct disc_error *err)
{
	struct disc_obs_writer *w = ctx;
	enum disc_status st = disc_svc_emit_one(r, w, err);

	if (st == DISC_OK && fflush(w->out) != 0)
		st = disc_error_set(err, DISC_ERR_IO, "writing the output: %s", strerror(errno));
	return st;
}

static int run(struct cli *cli, int argc, char **argv, struct discover_opts *o)
{
	struct disc_targets targets;
	struct disc_ports ports;
	struct disc_vendor_db vendors;
	struct disc_error err = {0}, svc_err = {0};
	struct disc_scan *scan = NULL;
	struct disc_scan_config cfg;
	struct disc_obs_writer w;
	struct disc_scan_stats st;
	struct disc_svc_results svc = {0};
	struct progress_ctx pctx = {false};
	struct extras ex = {.xml_fd = -1};
	struct timespec started, mono0;
	char scan_id[DISC_OBS_SCAN_ID_MAX];
	bool have_vendors = false, connect = o->connect, complete = false, svc_ran = false;
	bool scoped = false; /* the scan line has a scope: its absences count */
	size_t n_hosts = 0, n_ports = 0, n_proxies = 0, n_named = 0;
	FILE *out = stdout;
	json_t *opts = NULL, *line;
	enum disc_status run_st;
	int code;

	disc_targets_init(&targets, 0);
	disc_ports_init(&ports);
	disc_vendor_init(&vendors);
	disc_os_db_init(&ex.os);
	code = build_targets(cli, argc, argv, o, &targets);
	if (code < 0 && !o->discovery_only)
		code = build_ports(cli, o, &ports);
	if (code >= 0)
		goto out;
	if (!o->seed_given && disc_random_bytes(&o->seed, sizeof(o->seed), &err)) {
		code = cli_fail("%s", err.msg);
		goto out;
	}
	code = open_output(o, &out);
	if (code >= 0)
		goto out;
	/* Before dropping privileges: the registry files may not be readable afterwards. */
	have_vendors = disc_vendor_load_dir(&vendors, NULL, NULL) == DISC_OK;
	code = extras_open(o, &ex);
	if (code >= 0)
		goto out;

	memset(&cfg, 0, sizeof(cfg));
	cfg.targets = &targets;
	cfg.ports = ports.tcp;
	cfg.n_ports = ports.n_tcp;
	cfg.mode = connect ? DISC_SCAN_CONNECT : DISC_SCAN_SYN;
	cfg.iface = o->iface;
	cfg.rate = o->rate;
	cfg.retries = (unsigned)o->retries;
	cfg.wait_ms = (unsigned)o->wait_ms;
	cfg.shard = o->shard;
	cfg.shards = o->shards;
	cfg.seed = o->seed;
	cfg.skip_discovery = o->skip_discovery;
	cfg.discovery_only = o->discovery_only;
	cfg.dry_run = o->dry_run;
	cfg.os = ex.have_os ? &ex.os : NULL;
	cfg.stop = &stop_requested;
	if (!cli->quiet && isatty(STDERR_FILENO)) {
		cfg.progress = show_progress;
		cfg.progress_ctx = &pctx;
		cfg.progress_ms = 1000;
	}
	if (disc_scan_open(&scan, &cfg, &err)) {
		if (err.status != DISC_ERR_UNSUPPORTED || connect || o->dry_run) {
			code = cli_fail("%s", err.msg);
			goto out;
		}
		cli_note(cli, "cmdb: %s; scanning with connect() instead", err.msg);
		connect = true;
		cfg.mode = DISC_SCAN_CONNECT;
		if (disc_scan_open(&scan, &cfg, &err)) {
			code = cli_fail("%s", err.msg);
			goto out;
		}
	}
	if (disc_priv_drop(NULL, &err)) {
		code = cli_fail("%s", err.msg);
		goto out;
	}
	if (disc_obs_new_scan_id(scan_id, &err)) {
		code = cli_fail("%s", err.msg);
		goto out;
	}
	if (o->os && connect)
		cli_note(cli, "cmdb: --os: a connect() scan receives no SYN-ACKs; no OS guesses");
	disc_obs_writer_init(&w, out, scan_id);
	w.tee = ex.xml ? disc_xml_tee : NULL;
	w.tee_ctx = ex.xml;
	opts = options_json(o, scan, connect);
	clock_gettime(CLOCK_REALTIME, &started);
	clock_gettime(CLOCK_MONOTONIC, &mono0);
	{
		struct disc_obs_scan sl = {
			.targets = (const char *const *)(argv + optind),
			.n_targets = (size_t)(argc - optind),
			/* -sn scans no ports: no "ports" at all, not "-" (every port) */
			.ports = o->discovery_only ? NULL
				 : o->ports_spec   ? o->ports_spec
						   : o->ports_label,
			.options = opts,
			.started = started,
		};

		line = disc_obs_scan_json(&w, &sl, &started);
		/*
		 * The scan says what it covered, so that its absences count (ingest
		 * marks what in scope was not seen missing); a shard covers a
		 * scattered part of the targets and a dry run probes nothing.
		 * --no-service does not narrow it: the port lines alone make the
		 * service CIs (and it refuses UDP ports, which only service
		 * detection probes).
		 */
		if (line && o->shards == 1 && !o->dry_run) {
			scoped = add_scope(line, &targets, o->discovery_only ? NULL : &ports,
					   !o->no_service);
			if (!scoped)
				cli_note(cli,
					 "cmdb: discover: the targets make more than %d networks "
					 "or the ports more than %d ranges; the scan line carries "
					 "no scope, so nothing will be marked missing",
					 SCOPE_MAX_NETWORKS, SCOPE_MAX_PORT_RANGES);
		}
		if (disc_obs_emit(&w, line, &err)) {
			code = cli_fail("writing the output: %s", err.msg);
			goto out;
		}
	}
	fflush(out);
	install_signals();
	disc_scan_stream(scan, &w, have_vendors ? &vendors : NULL);
	run_st = disc_scan_run(scan, &err);
	if (pctx.shown)
		fputs("\r\033[K", stderr);
	disc_scan_get_stats(scan, &st);
	complete = run_st == DISC_OK && !st.interrupted;
	/* The hosts and ports are out (streamed); each service line follows as
	 * soon as its detection ends. The last host lines come after them: with
	 * --os the banners hint at each host's platform. A failure here still
	 * ends the output with scan_end, marked incomplete. */
	/*
	 * A target the scan had no route for was not probed: with a scope its
	 * absence would mark it missing, so such a run is not complete.
	 */
	if (scoped && st.unreachable)
		complete = false;
	if (run_st == DISC_OK && complete && !o->no_service && !o->dry_run && !o->discovery_only) {
		struct disc_svc_config sc = {.stop = &stop_requested,
					     .progress = cfg.progress,
					     .progress_ctx = cfg.progress_ctx,
					     .progress_ms = cfg.progress_ms,
					     .on_result = write_service,
					     .result_ctx = &w};

		svc_ran = disc_svc_scan_detect(scan, &sc, ports.udp, ports.n_udp, &svc, &svc_err) ==
			  DISC_OK;
		if (pctx.shown)
			fputs("\r\033[K", stderr);
		complete = svc_ran && !svc.interrupted;
	}
	if (disc_scan_emit(scan, &w, have_vendors ? &vendors : NULL, &n_hosts, &n_ports, &n_proxies,
			   &err)) {
		code = cli_fail("writing the output: %s", err.msg);
		goto out;
	}
	for (size_t i = 0; svc_ran && i < svc.n; i++)
		n_named += svc.r[i].m.service[0] != '\0';
	{
		struct disc_obs_scan_end e = {
			.complete = complete,
			.probes_sent = o->dry_run ? 0 : st.sent,
			.replies = st.replies,
			.drops = st.drops,
			.duration = seconds_since(&mono0),
		};

		line = disc_obs_scan_end_json(&w, &e, NULL);
		if (line && o->dry_run)
			json_object_set_new(line, "probes_built",
					    json_integer((json_int_t)st.sent));
		if (disc_obs_emit(&w, line, &err) || fflush(out) != 0) {
			code = cli_fail("writing the output: %s",
					err.msg[0] ? err.msg : strerror(errno));
			goto out;
		}
	}
	/* -sn: no scaninfo, as nmap writes none for a ping scan */
	code = extras_write_xml(o, &ex,
				o->discovery_only ? NULL
				: connect	  ? "connect"
						  : "syn",
				o->discovery_only ? NULL : &ports);
	if (code >= 0)
		goto out;
	cli_note(cli,
		 "cmdb: discover: %llu probes %s, %llu replies, %llu dropped by the capture, "
		 "%zu hosts up, %zu open ports%s, %zu services named, %.2f s%s",
		 (unsigned long long)st.sent, o->dry_run ? "built (none sent)" : "sent",
		 (unsigned long long)st.replies, (unsigned long long)st.drops, n_hosts, n_ports,
		 n_proxies ? " (SYN proxies left out)" : "", n_named, seconds_since(&mono0),
		 st.unreachable ? "; some targets have no route through the interface" : "");
	if (run_st != DISC_OK)
		code = cli_fail("scan failed: %s; the results are incomplete", err.msg);
	else if (svc_err.msg[0])
		code = cli_fail("service detection failed: %s; the results are incomplete",
				svc_err.msg);
	else if (scoped && st.unreachable && !st.interrupted)
		code = cli_fail("%llu targets have no route through the interface and were not "
				"probed; the results are incomplete (nothing is marked missing)",
				(unsigned long long)st.unreachable);
	else if (!complete)
		code = cli_fail("scan interrupted; the results are incomplete");
	else
		code = EXIT_OK;
out:
	disc_svc_results_release(&svc);
	json_decref(opts);
	disc_scan_free(scan);
	if (out != stdout && fclose(out) != 0 && code == EXIT_OK)
		code = cli_fail("cannot write %s: %s", o->output, strerror(errno));
	code = extras_release(o, &ex, code);
	disc_vendor_release(&vendors);
	disc_ports_release(&ports);
	disc_targets_release(&targets);
	return cli_finish(code);
}

/*
 * --pcap: passive discovery from a capture. The whole file is read before
 * anything is written, so a bad or cut-off capture leaves no partial output.
 */
static int run_pcap(struct cli *cli, int argc, char **argv, struct discover_opts *o)
{
	struct disc_targets targets;
	struct disc_vendor_db vendors;
	struct disc_error err = {0};
	struct disc_pcapin *in = NULL;
	struct disc_pcapin_stats st;
	struct disc_obs_writer w;
	struct extras ex = {.xml_fd = -1};
	struct timespec started, mono0;
	char scan_id[DISC_OBS_SCAN_ID_MAX];
	bool have_targets = optind < argc || o->n_input_files, have_vendors;
	size_t n_hosts = 0, n_ports = 0, n_services = 0;
	FILE *out = stdout;
	json_t *opts = NULL, *line;
	int code = -1;

	disc_targets_init(&targets, 0);
	disc_vendor_init(&vendors);
	disc_os_db_init(&ex.os);
	if (!have_targets && (o->n_excludes || o->n_exclude_files)) {
		code = cli_usage(cli, "--exclude with --pcap needs targets to exclude from");
		goto out;
	}
	if (have_targets)
		code = build_targets(cli, argc, argv, o, &targets);
	if (code < 0)
		code = extras_open(o, &ex);
	if (code >= 0)
		goto out;
	{
		struct disc_pcapin_config cfg = {
			.targets = have_targets ? &targets : NULL,
			.os = ex.have_os ? &ex.os : NULL,
			.stop = &stop_requested,
		};

		if (disc_pcapin_open(&in, o->pcap, &cfg, &err)) {
			code = cli_fail("%s", err.msg);
			goto out;
		}
	}
	code = open_output(o, &out);
	if (code >= 0)
		goto out;
	have_vendors = disc_vendor_load_dir(&vendors, NULL, NULL) == DISC_OK;
	/* The capture is hostile input: read it with no privilege left. */
	if (disc_priv_drop(NULL, &err) || disc_obs_new_scan_id(scan_id, &err)) {
		code = cli_fail("%s", err.msg);
		goto out;
	}
	clock_gettime(CLOCK_REALTIME, &started);
	clock_gettime(CLOCK_MONOTONIC, &mono0);
	install_signals();
	if (disc_pcapin_run(in, &err)) {
		code = cli_fail("%s", err.msg);
		goto out;
	}
	disc_pcapin_get_stats(in, &st);
	disc_obs_writer_init(&w, out, scan_id);
	w.tee = ex.xml ? disc_xml_tee : NULL;
	w.tee_ctx = ex.xml;
	opts = json_pack("{s:s,s:s,s:s,s:b}", "mode", "pcap", "pcap", o->pcap, "link", st.link,
			 "os", o->os);
	{
		struct disc_obs_scan sl = {
			.targets = (const char *const *)(argv + optind),
			.n_targets = (size_t)(argc - optind),
			.options = opts,
			.started = started,
		};

		line = disc_obs_scan_json(&w, &sl, &started);
		if (line && json_object_set_new(line, "pcap", json_string(o->pcap)) != 0) {
			json_decref(line);
			line = NULL;
		}
	}
	if (disc_obs_emit(&w, line, &err) ||
	    disc_pcapin_emit(in, &w, have_vendors ? &vendors : NULL, &n_hosts, &n_ports,
			     &n_services, &err)) {
		code = cli_fail("writing the output: %s", err.msg);
		goto out;
	}
	{
		struct disc_obs_scan_end e = {
			.complete = !st.interrupted,
			.replies = st.packets,
			.duration = seconds_since(&mono0),
		};

		if (disc_obs_emit(&w, disc_obs_scan_end_json(&w, &e, NULL), &err) ||
		    fflush(out) != 0) {
			code = cli_fail("writing the output: %s",
					err.msg[0] ? err.msg : strerror(errno));
			goto out;
		}
	}
	code = extras_write_xml(o, &ex, NULL, NULL);
	if (code >= 0)
		goto out;
	cli_note(cli,
		 "cmdb: discover: %llu packets read from %s (%s), %llu unreadable frames skipped, "
		 "%zu hosts, %zu open ports, %zu banners, %.2f s",
		 (unsigned long long)st.packets, o->pcap, st.link,
		 (unsigned long long)st.bad_frames, n_hosts, n_ports, n_services,
		 seconds_since(&mono0));
	code = st.interrupted ? cli_fail("reading interrupted; the results are incomplete")
			      : EXIT_OK;
out:
	json_decref(opts);
	disc_pcapin_free(in);
	if (out != stdout && fclose(out) != 0 && code == EXIT_OK)
		code = cli_fail("cannot write %s: %s", o->output, strerror(errno));
	code = extras_release(o, &ex, code);
	disc_vendor_release(&vendors);
	disc_targets_release(&targets);
	return cli_finish(code);
}

int cmd_discover(struct cli *cli, int argc, char **argv)
{
	struct discover_opts o = {
		.rate = DISC_SCAN_DEFAULT_RATE,
		.retries = 1,
		.wait_ms = DISC_SCAN_DEFAULT_WAIT,
		.shard = 0,
		.shards = 1,
	};
	char **args = nmap_style_args(argc, argv);
	int code;

	if (!args)
		return cli_fail("out of memory");
	o.argc = argc;
	o.argv = argv;
	code = parse_options(cli, argc, args, &o);
	if (code < 0)
		code = o.pcap ? run_pcap(cli, argc, args, &o) : run(cli, argc, args, &o);
	free(args);
	return code;
}
