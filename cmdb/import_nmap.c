/*
 * import_nmap: nmap's XML output (-oX) to observations.
 *
 * The file is read with libxml2's streaming reader, one node at a time, so
 * memory does not grow with the number of hosts. nmap writes a host's OS
 * guess after its ports, so each host's port and service observations wait
 * in a per-host list until </host> and leave after the host observation
 * that carries the OS; that list is capped.
 *
 * The input is hostile: no network, no DTD loading, no entity substitution,
 * and a document whose DTD declares any entity is refused before any of its
 * elements is read (nmap never writes one, and libxml2 expands entity
 * references when an attribute value is fetched). libxml2's error messages
 * are caught per reader, never printed.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h> /* isfinite, a macro: no libm */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlreader.h>

#include "import_internal.h"

/* nmap has three port protocols of 65536 ports, each giving at most a port
 * and a service observation; a file claiming more for one host repeats
 * itself and the surplus is dropped (and counted). */
#define MAX_PENDING_PER_HOST (3 * 65536 * 2)
#define TEXT_MAX	     16384 /* the text of one <elem> kept from a script */
#define DN_PARTS_MAX	     16
#define SANS_MAX	     64
#define TABLE_DEPTH_MAX	     8

/* XML_PARSE_NONET: no network; not NOENT, DTDLOAD, DTDATTR or HUGE: no
 * entity substitution, no external DTD, libxml2's size limits kept. */
#define NMAP_XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_COMPACT)

struct dn_part {
	char *key;   /* nmap's name for the attribute (owned) */
	char *value; /* owned */
};

struct dn {
	struct dn_part part[DN_PARTS_MAX];
	size_t n;
};

/* What the ssl-cert script of the current port said. */
struct cert {
	struct dn subject, issuer;
	char not_before[32], not_after[32];
	char *ext_name, *ext_value; /* of the extension table being read (owned) */
	json_t *sans;		    /* array (owned), NULL until one is seen */
};

struct port {
	bool active;
	int depth;
	unsigned long line;
	char proto[8];
	int64_t portid;
	bool open;
	char *reason;	  /* owned */
	json_t *service;  /* partial service observation (owned), NULL without <service> */
	bool in_ssl_cert; /* inside <script id="ssl-cert"> */
	int script_depth;
	struct cert cert;
	bool has_cert;
};

struct host {
	bool active;
	int depth;
	unsigned long line;
	char at[32];
	bool up;
	char *reason; /* owned */
	char ip[INET_ADDRSTRLEN];
	char *ipv6; /* the first IPv6 address, for the skip message (owned) */
	bool bad_ip;
	char mac[18];
	char *vendor;	/* owned */
	char *hostname; /* owned: the first user-given name, else the first PTR */
	bool hostname_is_user;
	int os_best;	 /* accuracy of the best <osmatch> so far, -1 before any */
	char *os_guess;	 /* owned */
	char *os_family; /* owned: osfamily of the best match's first <osclass> */
	bool in_best_osmatch;
	json_t *pending; /* array of partial port/service observations (owned) */
	uint64_t dropped;
};

struct nmap {
	struct cmdb_import_run run;
	xmlTextReaderPtr reader;
	char xml_error[512]; /* libxml2's first error, with its line */
	unsigned long xml_error_line;
	bool refused; /* a DTD declared entities */
	bool unended; /* the input does not end in </nmaprun> */

	/* <nmaprun> */
	bool seen_root;
	char start_at[32];
	char *args;    /* owned */
	char *version; /* owned */
	bool ours;     /* scanner="cmdb": args is a cmdb discover command line */
	char ports_spec[4096];
	char scan_types[128];
	int n_scaninfo;
	bool ports_overflow;
	bool scan_sent;

	struct host host;
	struct port port;

	/* <elem> and <table> inside an ssl-cert script */
	char *table_key[TABLE_DEPTH_MAX]; /* owned; NULL for a table without a key */
	int table_depth;
	int elem_depth; /* reader depth of the open <elem>, -1 when none */
	char *elem_key; /* owned */
	char *text;	/* owned, TEXT_MAX + 1 bytes */
	size_t text_len;
	bool text_overflow;

	/* <runstats> */
	bool finished;
	bool finished_ok;
	char end_at[32];
	double elapsed;
	bool has_elapsed;
};

/* ---- small helpers ---- */

/* An attribute of the current element, a new string (free with xmlFree),
 * or NULL. */
static char *attr(struct nmap *nm, const char *name)
{
	return (char *)xmlTextReaderGetAttribute(nm->reader, (const xmlChar *)name);
}

static bool attr_eq(struct nmap *nm, const char *name, const char *want)
{
	char *v = attr(nm, name);
	bool eq = v && strcmp(v, want) == 0;

	xmlFree(v);
	return eq;
}

/* An owned copy (free with free) of an attribute cut to CMDB_IMPORT_FIELD_MAX
 * bytes, or NULL. */
static char *attr_dup(struct nmap *nm, const char *name)
{
	char *v = attr(nm, name), *copy;
	size_t len;

	if (!v)
		return NULL;
	len = cmdb_import_utf8_cut(v, strlen(v), CMDB_IMPORT_FIELD_MAX);
	copy = strndup(v, len);
	xmlFree(v);
	if (!copy)
		nm->run.oom = true;
	return copy;
}

/* An attribute holding seconds since the epoch, as RFC 3339. */
static bool attr_time(struct nmap *nm, const char *name, char out[32])
{
	char *v = attr(nm, name);
	int64_t sec;
	bool ok = v && cmdb_import_parse_int(v, 0, INT64_MAX, &sec) &&
		  cmdb_import_time_str(sec, 0, out);

	xmlFree(v);
	return ok;
}

static void replace(char **slot, char *value)
{
	free(*slot);
	*slot = value;
}

/* The line of the current node; the parser's own line (which runs ahead
 * of the node handed out) only when the node has none. */
static unsigned long line_now(struct nmap *nm)
{
	xmlNodePtr node = xmlTextReaderCurrentNode(nm->reader);
	long line = node ? xmlGetLineNo(node) : -1;

	if (line <= 0)
		line = xmlTextReaderGetParserLineNumber(nm->reader);
	return line > 0 ? (unsigned long)line : 0;
}

static void dn_release(struct dn *dn)
{
	for (size_t i = 0; i < dn->n; i++) {
		free(dn->part[i].key);
		free(dn->part[i].value);
	}
	dn->n = 0;
}

static void cert_release(struct cert *c)
{
	dn_release(&c->subject);
	dn_release(&c->issuer);
	free(c->ext_name);
	free(c->ext_value);
	json_decref(c->sans);
	memset(c, 0, sizeof(*c));
}

static void port_release(struct port *p)
{
	free(p->reason);
	json_decref(p->service);
	cert_release(&p->cert);
	memset(p, 0, sizeof(*p));
}

static void host_release(struct host *h)
{
	free(h->reason);
	free(h->ipv6);
	free(h->vendor);
	free(h->hostname);
	free(h->os_guess);
	free(h->os_family);
	json_decref(h->pending);
	memset(h, 0, sizeof(*h));
	h->os_best = -1;
}

static void elem_reset(struct nmap *nm)
{
	nm->elem_depth = -1;
	replace(&nm->elem_key, NULL);
	nm->text_len = 0;
	nm->text_overflow = false;
}

static void tables_reset(struct nmap *nm)
{
	for (int i = 0; i < nm->table_depth && i < TABLE_DEPTH_MAX; i++)
		replace(&nm->table_key[i], NULL);
	nm->table_depth = 0;
	elem_reset(nm);
}

/* ---- the scan observation ---- */

/* nmap options that take the next word as their argument; everything else
 * not starting with '-' on the command line is a target. */
static const char *const option_with_arg[] = {
	"-p",
	"-e",
	"-S",
	"-D",
	"-g",
	"-b",
	"-iL",
	"-iR",
	"-oN",
	"-oX",
	"-oG",
	"-oA",
	"-oS",
	"-oM",
	"-sI",
	"-PS",
	"--exclude",
	"--excludefile",
	"--exclude-ports",
	"--dns-servers",
	"--script",
	"--script-args",
	"--script-args-file",
	"--script-help",
	"--script-timeout",
	"--top-ports",
	"--port-ratio",
	"--version-intensity",
	"--min-hostgroup",
	"--max-hostgroup",
	"--min-parallelism",
	"--max-parallelism",
	"--min-rtt-timeout",
	"--max-rtt-timeout",
	"--initial-rtt-timeout",
	"--max-retries",
	"--host-timeout",
	"--scan-delay",
	"--max-scan-delay",
	"--min-rate",
	"--max-rate",
	"--mtu",
	"--data",
	"--data-string",
	"--data-length",
	"--ip-options",
	"--ttl",
	"--spoof-mac",
	"--proxies",
	"--proxy",
	"--source-port",
	"--datadir",
	"--servicedb",
	"--versiondb",
	"--stylesheet",
	"--resume",
	"--max-os-tries",
	"--stats-every",
	"--ports",
	"--port",
};

/* The same for `cmdb discover ... -oX FILE` (tools/cmd_discover.c), whose
 * XML says scanner="cmdb". */
static const char *const cmdb_option_with_arg[] = {
	"-p", "--ports", "--top-ports", "-iL", "--iL", "--exclude", "--excludefile", "--rate", "--retries",
	"--wait", "-i", "--iface", "--shard", "--seed", "-o", "--output", "-oX", "--oX", "--pcap",
};

static bool takes_arg(const char *word, bool ours)
{
	const char *const *list = ours ? cmdb_option_with_arg : option_with_arg;
	size_t n = ours ? sizeof(cmdb_option_with_arg) / sizeof(cmdb_option_with_arg[0])
			: sizeof(option_with_arg) / sizeof(option_with_arg[0]);

	for (size_t i = 0; i < n; i++)
		if (strcmp(word, list[i]) == 0)
			return true;
	return false;
}

/* Targets from the args attribute, as well as words split on blanks allow
 * (the shell's quoting is gone by the time nmap records them). The first
 * word is the program (for cmdb's own XML, the first two: cmdb discover).
 * -iL's file goes into options, its entries are not known. */
static json_t *targets_from_args(struct nmap *nm, json_t *options)
{
	json_t *targets = json_array();
	char *copy = nm->args ? strdup(nm->args) : NULL, *save = NULL, *w;
	int program_words = nm->ours ? 2 : 1;
	bool skip_next = false;
	const char *prev = NULL;

	if (!targets || (nm->args && !copy)) {
		nm->run.oom = true;
		free(copy);
		return targets;
	}
	for (w = copy ? strtok_r(copy, " \t\r\n", &save) : NULL; w;
	     w = strtok_r(NULL, " \t\r\n", &save)) {
		if (program_words > 0) {
			program_words--;
			continue;
		}
		if (skip_next) {
			skip_next = false;
			if (prev && strcmp(prev, "-iL") == 0)
				cmdb_import_set_text(&nm->run, options, "input_list", w);
			continue;
		}
		if (w[0] == '-') {
			skip_next = strchr(w, '=') == NULL && takes_arg(w, nm->ours);
			prev = w;
			continue;
		}
		if (json_array_size(targets) < 4096 && cmdb_import_utf8_valid(w, strlen(w)))
			json_array_append_new(targets, json_string(w));
	}
	free(copy);
	return targets;
}

static cmdb_rc send_scan(struct nmap *nm)
{
	json_t *obs, *options;
	char at[32];

	if (nm->scan_sent)
		return CMDB_OK;
	nm->scan_sent = true;
	if (nm->start_at[0])
		memcpy(at, nm->start_at, sizeof(at));
	else
		cmdb_import_time_now(at);
	obs = cmdb_import_obs_new(&nm->run, "scan", at);
	options = json_object();
	if (!options)
		nm->run.oom = true;
	cmdb_import_set(&nm->run, obs, "targets", targets_from_args(nm, options));
	if (nm->n_scaninfo > 0 && !nm->ports_overflow)
		cmdb_import_set_str(&nm->run, obs, "ports",
				    nm->n_scaninfo == 1 ? nm->ports_spec + 2 : nm->ports_spec);
	cmdb_import_set_str(&nm->run, options, "importer", "nmap");
	cmdb_import_set_text(&nm->run, options, "args", nm->args);
	cmdb_import_set_text(&nm->run, options, "nmap_version", nm->version);
	if (nm->scan_types[0])
		cmdb_import_set_str(&nm->run, options, "scan_type", nm->scan_types);
	cmdb_import_set(&nm->run, obs, "options", options);
	if (nm->start_at[0])
		cmdb_import_set_str(&nm->run, obs, "started", nm->start_at);
	return cmdb_import_emit(&nm->run, obs);
}

static void on_nmaprun(struct nmap *nm)
{
	struct cmdb_import_digest d;
	char *start = attr(nm, "start");
	int64_t sec;

	nm->seen_root = true;
	nm->args = attr_dup(nm, "args");
	nm->version = attr_dup(nm, "version");
	nm->ours = attr_eq(nm, "scanner", "cmdb");
	if (start && cmdb_import_parse_int(start, 0, INT64_MAX, &sec))
		cmdb_import_time_str(sec, 0, nm->start_at);
	/* The same file (same start and command line) is the same scan. */
	cmdb_import_digest_init(&d);
	cmdb_import_digest_add(&d, "nmap", 5);
	if (start)
		cmdb_import_digest_add(&d, start, strlen(start));
	cmdb_import_digest_add(&d, "", 1);
	if (nm->args)
		cmdb_import_digest_add(&d, nm->args, strlen(nm->args));
	cmdb_import_digest_uuid(&d, nm->run.scan_id);
	xmlFree(start);
}

static void append(char *buf, size_t size, bool *overflow, const char *s)
{
	size_t used = strlen(buf), n = strlen(s);

	if (used + n + 1 > size) {
		*overflow = true;
		return;
	}
	memcpy(buf + used, s, n + 1);
}

/* One <scaninfo>: its services join the port specification, each list
 * prefixed by its protocol (T:, U:, S:); send_scan drops the prefix when
 * there is only one list. */
static void on_scaninfo(struct nmap *nm)
{
	char *type = attr(nm, "type"), *proto = attr(nm, "protocol"),
	     *services = attr(nm, "services");
	bool bad_types = false;

	if (services && cmdb_import_utf8_valid(services, strlen(services))) {
		const char *prefix = proto && strcmp(proto, "udp") == 0	   ? "U:"
				     : proto && strcmp(proto, "sctp") == 0 ? "S:"
									   : "T:";

		if (nm->n_scaninfo > 0)
			append(nm->ports_spec, sizeof(nm->ports_spec), &nm->ports_overflow, ",");
		append(nm->ports_spec, sizeof(nm->ports_spec), &nm->ports_overflow, prefix);
		append(nm->ports_spec, sizeof(nm->ports_spec), &nm->ports_overflow, services);
		nm->n_scaninfo++;
	}
	if (type && cmdb_import_utf8_valid(type, strlen(type)) && strlen(type) < 32) {
		if (nm->scan_types[0])
			append(nm->scan_types, sizeof(nm->scan_types), &bad_types, ",");
		append(nm->scan_types, sizeof(nm->scan_types), &bad_types, type);
	}
	xmlFree(type);
	xmlFree(proto);
	xmlFree(services);
}

/* ---- hosts ---- */

static void on_host(struct nmap *nm, int depth)
{
	struct host *h = &nm->host;

	host_release(h);
	h->active = true;
	h->depth = depth;
	h->line = line_now(nm);
	nm->run.stats->records++;
	if (!attr_time(nm, "endtime", h->at)) {
		if (nm->start_at[0])
			memcpy(h->at, nm->start_at, sizeof(h->at));
		else
			cmdb_import_time_now(h->at);
	}
	h->pending = json_array();
	if (!h->pending)
		nm->run.oom = true;
}

static bool valid_mac(const char *s, char out[18])
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (s[i] != ':' && s[i] != '-')
				return false;
			out[i] = ':';
		} else {
			if (!isxdigit((unsigned char)s[i]))
				return false;
			out[i] = (char)tolower((unsigned char)s[i]);
		}
	}
	out[17] = '\0';
	return true;
}

static void on_address(struct nmap *nm)
{
	struct host *h = &nm->host;
	char *addr = attr(nm, "addr"), *type = attr(nm, "addrtype");
	struct in_addr a4;

	if (!addr || !type)
		goto out;
	if (strcmp(type, "ipv4") == 0 && h->ip[0] == '\0') {
		/* inet_pton takes only the dotted quad nmap writes; the text is
		 * written back from the parsed address so it is canonical. */
		if (inet_pton(AF_INET, addr, &a4) == 1)
			inet_ntop(AF_INET, &a4, h->ip, sizeof(h->ip));
		else
			h->bad_ip = true;
	} else if (strcmp(type, "ipv6") == 0 && !h->ipv6) {
		h->ipv6 = strndup(addr, cmdb_import_utf8_cut(addr, strlen(addr), 64));
	} else if (strcmp(type, "mac") == 0 && h->mac[0] == '\0') {
		if (valid_mac(addr, h->mac))
			replace(&h->vendor, attr_dup(nm, "vendor"));
	}
out:
	xmlFree(addr);
	xmlFree(type);
}

/* A host name worth keeping: a DNS name (letters, digits, '-', '_', '.'),
 * at most 253 bytes. A name from a hostile PTR record that is not one is
 * dropped rather than cut into a different name. */
static bool valid_hostname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static void on_hostname(struct nmap *nm)
{
	struct host *h = &nm->host;
	char *name = attr(nm, "name");
	bool user = attr_eq(nm, "type", "user");

	if (name && valid_hostname(name) && (!h->hostname || (user && !h->hostname_is_user))) {
		replace(&h->hostname, strdup(name));
		h->hostname_is_user = user;
		if (!h->hostname)
			nm->run.oom = true;
	}
	xmlFree(name);
}

static void on_status(struct nmap *nm)
{
	struct host *h = &nm->host;

	h->up = attr_eq(nm, "state", "up");
	replace(&h->reason, attr_dup(nm, "reason"));
}

static void on_osmatch(struct nmap *nm)
{
	struct host *h = &nm->host;
	char *acc = attr(nm, "accuracy");
	int64_t a;

	h->in_best_osmatch = false;
	/* The first of equally accurate matches wins: nmap lists the best first. */
	if (acc && cmdb_import_parse_int(acc, 0, 100, &a) && a > h->os_best) {
		h->os_best = (int)a;
		replace(&h->os_guess, attr_dup(nm, "name"));
		replace(&h->os_family, NULL);
		h->in_best_osmatch = true;
	}
	xmlFree(acc);
}

static void on_osclass(struct nmap *nm)
{
	struct host *h = &nm->host;

	char *family;

	if (!h->in_best_osmatch || h->os_family)
		return;
	family = attr_dup(nm, "osfamily");
	if (family && *family)
		h->os_family = family;
	else
		free(family);
}

/* ---- ports ---- */

static void on_port(struct nmap *nm, int depth)
{
	struct port *p = &nm->port;
	char *proto = attr(nm, "protocol"), *id = attr(nm, "portid");

	port_release(p);
	tables_reset(nm);
	p->active = true;
	p->depth = depth;
	p->line = line_now(nm);
	p->portid = -1;
	if (proto && (strcmp(proto, "tcp") == 0 || strcmp(proto, "udp") == 0))
		snprintf(p->proto, sizeof(p->proto), "%s", proto);
	if (!id || !cmdb_import_parse_int(id, 0, 65535, &p->portid))
		p->portid = -1;
	xmlFree(proto);
	xmlFree(id);
}

static void on_state(struct nmap *nm)
{
	struct port *p = &nm->port;

	p->open = attr_eq(nm, "state", "open");
	replace(&p->reason, attr_dup(nm, "reason"));
}

static void on_service(struct nmap *nm)
{
	struct cmdb_import_run *run = &nm->run;
	struct port *p = &nm->port;
	char *name = attr(nm, "name"), *conf = attr(nm, "conf"), *tunnel = attr(nm, "tunnel");
	json_t *svc = json_object(), *extra = json_object();
	static const char *const extra_attrs[] = {"extrainfo", "ostype", "devicetype", "method",
						  "hostname"};
	int64_t c;

	if (!svc || !extra) {
		run->oom = true;
		goto out;
	}
	cmdb_import_set_str(run, svc, "kind", "service");
	if (!name || !*name || !cmdb_import_set_text(run, svc, "service", name))
		cmdb_import_set_str(run, svc, "service", "unknown");
	for (int i = 0; i < 2; i++) {
		const char *key = i == 0 ? "product" : "version";
		char *v = attr(nm, key);

		if (v && *v)
			cmdb_import_set_text(run, svc, key, v);
		xmlFree(v);
	}
	for (size_t i = 0; i < sizeof(extra_attrs) / sizeof(extra_attrs[0]); i++) {
		char *v = attr(nm, extra_attrs[i]);

		if (v && *v)
			cmdb_import_set_text(run, extra, extra_attrs[i], v);
		xmlFree(v);
	}
	if (tunnel && *tunnel)
		cmdb_import_set_text(run, extra, "tunnel", tunnel);
	/* nmap's conf is 0-10. */
	if (conf && cmdb_import_parse_int(conf, 0, INT32_MAX, &c))
		cmdb_import_set(run, svc, "confidence", json_integer(c >= 10 ? 100 : c * 10));
	if (json_object_size(extra) > 0) {
		cmdb_import_set(run, svc, "extra", extra);
		extra = NULL;
	}
	json_decref(p->service);
	p->service = svc;
	svc = NULL;
out:
	json_decref(svc);
	json_decref(extra);
	xmlFree(name);
	xmlFree(conf);
	xmlFree(tunnel);
}

/* RFC 4514 string of a distinguished name from nmap's table of it. nmap
 * sorts the table by key, so the certificate's order is lost; the usual
 * attributes are put in the order RFC 4514 strings usually show them (most
 * specific first), any others after them as nmap names them. */
static json_t *dn_string(const struct dn *dn)
{
	static const struct {
		const char *nmap, *short_name;
	} known[] = {{"commonName", "CN"},	    {"organizationalUnitName", "OU"},
		     {"organizationName", "O"},	    {"localityName", "L"},
		     {"stateOrProvinceName", "ST"}, {"countryName", "C"},
		     {"domainComponent", "DC"},	    {"userId", "UID"}};
	const size_t n_known = sizeof(known) / sizeof(known[0]);
	char out[2048];
	size_t o = 0;
	bool used[DN_PARTS_MAX] = {false};

	for (size_t pass = 0; pass <= n_known; pass++) {
		for (size_t i = 0; i < dn->n; i++) {
			const char *type = NULL;
			const char *v = dn->part[i].value;
			size_t vlen = strlen(v);

			if (used[i])
				continue;
			if (pass < n_known) {
				if (strcmp(dn->part[i].key, known[pass].nmap) != 0)
					continue;
				type = known[pass].short_name;
			} else {
				type = dn->part[i].key;
			}
			used[i] = true;
			/* type=value, with RFC 4514 section 2.4 escapes. */
			if (o + strlen(type) + 3 >= sizeof(out))
				return NULL;
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s=", o ? "," : "",
					      type);
			for (size_t k = 0; k < vlen; k++) {
				char ch = v[k];
				bool esc = strchr(",+\"\\<>;", ch) != NULL ||
					   (k == 0 && (ch == ' ' || ch == '#')) ||
					   (k == vlen - 1 && ch == ' ');

				if (o + 3 >= sizeof(out))
					return NULL;
				if (esc)
					out[o++] = '\\';
				out[o++] = ch;
			}
			out[o] = '\0';
		}
	}
	return o ? json_stringn(out, o) : NULL;
}

/* "2026-11-21T06:55:13" (nmap writes UTC without a zone), optionally with
 * "Z" or "+00:00", to RFC 3339 UTC. */
static bool cert_time(const char *s, char out[32])
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t n = strlen(s);

	if (n < sizeof(shape) - 1)
		return false;
	for (size_t i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
			return false;
	if (strcmp(s + 19, "") != 0 && strcmp(s + 19, "Z") != 0 && strcmp(s + 19, "+00:00") != 0)
		return false;
	snprintf(out, 32, "%.19sZ", s);
	return true;
}

static void sans_add(struct nmap *nm, const char *list)
{
	struct cert *c = &nm->port.cert;
	char *copy = strdup(list), *save = NULL, *w;

	if (!copy) {
		nm->run.oom = true;
		return;
	}
	if (!c->sans && !(c->sans = json_array())) {
		nm->run.oom = true;
		free(copy);
		return;
	}
	for (w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		while (*w == ' ')
			w++;
		if (strncmp(w, "DNS:", 4) == 0)
			w += 4;
		else if (strncmp(w, "IP Address:", 11) == 0)
			w += 11;
		if (*w && json_array_size(c->sans) < SANS_MAX)
			json_array_append_new(c->sans, json_string(w));
	}
	free(copy);
}

static void dn_add(struct nmap *nm, struct dn *dn, const char *key, const char *value)
{
	if (dn->n >= DN_PARTS_MAX)
		return;
	dn->part[dn->n].key = strndup(key, cmdb_import_utf8_cut(key, strlen(key), 64));
	dn->part[dn->n].value = strndup(value, cmdb_import_utf8_cut(value, strlen(value), 256));
	if (!dn->part[dn->n].key || !dn->part[dn->n].value) {
		free(dn->part[dn->n].key);
		free(dn->part[dn->n].value);
		nm->run.oom = true;
		return;
	}
	dn->n++;
	nm->port.has_cert = true;
}

/* An <elem> inside the ssl-cert script ended; file its text by table path. */
static void on_cert_elem(struct nmap *nm)
{
	struct cert *c = &nm->port.cert;
	const char *key = nm->elem_key, *outer = nm->table_depth >= 1 ? nm->table_key[0] : NULL;
	const char *text = nm->text;

	if (!key || nm->text_overflow || nm->table_depth > TABLE_DEPTH_MAX)
		return;
	nm->text[nm->text_len] = '\0';
	if (nm->table_depth == 1 && outer && strcmp(outer, "subject") == 0)
		dn_add(nm, &c->subject, key, text);
	else if (nm->table_depth == 1 && outer && strcmp(outer, "issuer") == 0)
		dn_add(nm, &c->issuer, key, text);
	else if (nm->table_depth == 1 && outer && strcmp(outer, "validity") == 0) {
		if (strcmp(key, "notBefore") == 0 && cert_time(text, c->not_before))
			nm->port.has_cert = true;
		else if (strcmp(key, "notAfter") == 0 && cert_time(text, c->not_after))
			nm->port.has_cert = true;
	} else if (nm->table_depth == 2 && outer && strcmp(outer, "extensions") == 0) {
		if (strcmp(key, "name") == 0)
			replace(&c->ext_name, strdup(text));
		else if (strcmp(key, "value") == 0)
			replace(&c->ext_value, strdup(text));
	}
}

/* An extension table ended: keep its value if it was the SAN extension. */
static void on_cert_table_end(struct nmap *nm)
{
	struct cert *c = &nm->port.cert;

	if (nm->table_depth == 2 && nm->table_key[0] &&
	    strcmp(nm->table_key[0], "extensions") == 0 && c->ext_name && c->ext_value &&
	    strcmp(c->ext_name, "X509v3 Subject Alternative Name") == 0) {
		sans_add(nm, c->ext_value);
		nm->port.has_cert = true;
	}
	if (nm->table_depth == 2) {
		replace(&c->ext_name, NULL);
		replace(&c->ext_value, NULL);
	}
}

static json_t *cert_json(struct nmap *nm)
{
	struct cert *c = &nm->port.cert;
	json_t *tls = json_object();

	if (!tls) {
		nm->run.oom = true;
		return NULL;
	}
	if (c->subject.n)
		cmdb_import_set(&nm->run, tls, "subject", dn_string(&c->subject));
	if (c->issuer.n)
		cmdb_import_set(&nm->run, tls, "issuer", dn_string(&c->issuer));
	if (c->not_before[0])
		cmdb_import_set_str(&nm->run, tls, "not_before", c->not_before);
	if (c->not_after[0])
		cmdb_import_set_str(&nm->run, tls, "not_after", c->not_after);
	if (c->sans) {
		cmdb_import_set(&nm->run, tls, "sans", c->sans);
		c->sans = NULL;
	}
	return tls;
}

static void pending_add(struct nmap *nm, json_t *partial)
{
	struct host *h = &nm->host;

	if (!partial)
		return;
	if (json_array_size(h->pending) >= MAX_PENDING_PER_HOST) {
		h->dropped++;
		json_decref(partial);
		return;
	}
	if (json_array_append_new(h->pending, partial) != 0)
		nm->run.oom = true;
}

static void on_port_end(struct nmap *nm)
{
	struct cmdb_import_run *run = &nm->run;
	struct port *p = &nm->port;
	json_t *po;

	if (!nm->host.active)
		goto out;
	if (!p->proto[0] || p->portid < 0) {
		cmdb_import_skip(run, p->line,
				 "port without a valid protocol (tcp, udp) or portid skipped");
		goto out;
	}
	if (!p->open)
		goto out; /* closed and filtered ports are not reported */
	po = json_object();
	if (!po) {
		run->oom = true;
		goto out;
	}
	cmdb_import_set_str(run, po, "kind", "port");
	cmdb_import_set_str(run, po, "proto", p->proto);
	cmdb_import_set(run, po, "port", json_integer(p->portid));
	cmdb_import_set_str(run, po, "state", "open");
	if (p->reason && *p->reason)
		cmdb_import_set_text(run, po, "reason", p->reason);
	pending_add(nm, po);
	if (p->service) {
		json_t *svc = p->service;

		p->service = NULL;
		cmdb_import_set_str(run, svc, "proto", p->proto);
		cmdb_import_set(run, svc, "port", json_integer(p->portid));
		if (p->has_cert)
			cmdb_import_set(run, svc, "tls", cert_json(nm));
		pending_add(nm, svc);
	}
out:
	port_release(p);
	tables_reset(nm);
}

/* Emits the host and its ports and services, in that order. */
static cmdb_rc on_host_end(struct nmap *nm)
{
	struct cmdb_import_run *run = &nm->run;
	struct host *h = &nm->host;
	json_t *obs, *os;
	size_t i;
	json_t *partial;
	cmdb_rc rc = CMDB_OK;

	if (!h->up)
		goto out; /* nmap lists down hosts only when asked to be verbose */
	if (h->ip[0] == '\0') {
		if (h->ipv6)
			cmdb_import_skip(
				run, h->line,
				"IPv6 host %s skipped (observation format version 1 is IPv4 only)",
				h->ipv6);
		else if (h->bad_ip)
			cmdb_import_skip(run, h->line, "host with an invalid IPv4 address skipped");
		else
			cmdb_import_skip(run, h->line, "host without an address skipped");
		goto out;
	}
	if ((rc = send_scan(nm)) != CMDB_OK)
		goto out;
	obs = cmdb_import_obs_new(run, "host", h->at);
	cmdb_import_set_str(run, obs, "ip", h->ip);
	if (h->mac[0]) {
		unsigned first = (unsigned)strtoul(h->mac, NULL, 16);
		bool local = (first & 0x02) != 0;

		cmdb_import_set_str(run, obs, "mac", h->mac);
		if (local)
			cmdb_import_set(run, obs, "mac_local", json_true());
		else if (h->vendor && *h->vendor)
			cmdb_import_set_text(run, obs, "vendor", h->vendor);
	}
	if (h->hostname)
		cmdb_import_set_str(run, obs, "hostname", h->hostname);
	if (h->reason && *h->reason)
		cmdb_import_set_text(run, obs, "reason", h->reason);
	/* An os object needs a family; a match without an osclass naming one
	 * is not reported (its name is no family). */
	if (h->os_best >= 0 && h->os_family) {
		os = json_object();
		if (!os)
			run->oom = true;
		cmdb_import_set_text(run, os, "family", h->os_family);
		if (h->os_guess && *h->os_guess)
			cmdb_import_set_text(run, os, "guess", h->os_guess);
		cmdb_import_set(run, os, "confidence", json_integer(h->os_best));
		cmdb_import_set(run, obs, "os", os);
	}
	if ((rc = cmdb_import_emit(run, obs)) != CMDB_OK)
		goto out;
	json_array_foreach(h->pending, i, partial)
	{
		json_t *o = cmdb_import_obs_new(
			run, json_string_value(json_object_get(partial, "kind")), h->at);

		cmdb_import_set_str(run, o, "ip", h->ip);
		if (o && json_object_update(o, partial) != 0)
			run->oom = true;
		if ((rc = cmdb_import_emit(run, o)) != CMDB_OK)
			goto out;
	}
	if (h->dropped)
		cmdb_import_skip(run, h->line,
				 "host lists more ports than exist; %llu repeated dropped",
				 (unsigned long long)h->dropped);
out:
	host_release(h);
	return rc;
}

/* ---- runstats ---- */

static void on_finished(struct nmap *nm)
{
	char *elapsed = attr(nm, "elapsed");

	nm->finished = true;
	nm->finished_ok = attr_eq(nm, "exit", "success");
	if (!attr_time(nm, "time", nm->end_at))
		nm->end_at[0] = '\0';
	if (elapsed) {
		char *end;
		double v;

		errno = 0;
		v = strtod(elapsed, &end);
		if (errno == 0 && *end == '\0' && end != elapsed && isfinite(v) && v >= 0 &&
		    v < 1e9) {
			nm->elapsed = (double)(int64_t)(v * 1000 + 0.5) / 1000;
			nm->has_elapsed = true;
		}
	}
	xmlFree(elapsed);
}

static cmdb_rc send_scan_end(struct nmap *nm, bool complete)
{
	json_t *obs;
	char at[32];

	if (nm->end_at[0])
		memcpy(at, nm->end_at, sizeof(at));
	else if (nm->start_at[0])
		memcpy(at, nm->start_at, sizeof(at));
	else
		cmdb_import_time_now(at);
	obs = cmdb_import_obs_new(&nm->run, "scan_end", at);
	cmdb_import_set(&nm->run, obs, "complete", json_boolean(complete));
	if (nm->has_elapsed)
		cmdb_import_set(&nm->run, obs, "duration", json_real(nm->elapsed));
	return cmdb_import_emit(&nm->run, obs);
}

/* ---- the reader loop ---- */

static void on_xml_error(void *arg, xmlErrorPtr e)
{
	struct nmap *nm = arg;
	size_t n;

	if (!e || e->level < XML_ERR_ERROR || nm->xml_error[0])
		return;
	snprintf(nm->xml_error, sizeof(nm->xml_error), "%s", e->message ? e->message : "XML error");
	/* libxml2's messages end in a newline. */
	n = strlen(nm->xml_error);
	while (n > 0 && (nm->xml_error[n - 1] == '\n' || nm->xml_error[n - 1] == ' '))
		nm->xml_error[--n] = '\0';
	nm->xml_error_line = e->line > 0 ? (unsigned long)e->line : 0;
}

/* A DTD that declares entities (general or parameter) is refused. */
static bool dtd_declares_entities(struct nmap *nm)
{
	xmlNodePtr node = xmlTextReaderCurrentNode(nm->reader);
	xmlDtdPtr dtd;

	if (!node || node->type != XML_DTD_NODE)
		return false;
	dtd = (xmlDtdPtr)node;
	return dtd->entities != NULL || dtd->pentities != NULL;
}

static void on_text(struct nmap *nm)
{
	const char *v = (const char *)xmlTextReaderConstValue(nm->reader);
	size_t n;

	if (!v || nm->text_overflow)
		return;
	n = strlen(v);
	if (n > TEXT_MAX - nm->text_len) {
		nm->text_overflow = true;
		return;
	}
	memcpy(nm->text + nm->text_len, v, n);
	nm->text_len += n;
}

/* Start of an element in a script table of an ssl-cert script. */
static void on_cert_start(struct nmap *nm, const char *name, int depth, bool empty)
{
	if (strcmp(name, "table") == 0) {
		if (nm->table_depth < TABLE_DEPTH_MAX)
			nm->table_key[nm->table_depth] = attr_dup(nm, "key");
		nm->table_depth++;
		if (empty) {
			on_cert_table_end(nm);
			nm->table_depth--;
			if (nm->table_depth < TABLE_DEPTH_MAX)
				replace(&nm->table_key[nm->table_depth], NULL);
		}
	} else if (strcmp(name, "elem") == 0 && nm->elem_depth < 0) {
		elem_reset(nm);
		nm->elem_key = attr_dup(nm, "key");
		nm->elem_depth = depth;
		if (empty) {
			on_cert_elem(nm);
			elem_reset(nm);
		}
	}
}

static cmdb_rc on_start(struct nmap *nm, const char *name, int depth, bool empty)
{
	struct host *h = &nm->host;
	struct port *p = &nm->port;
	cmdb_rc rc = CMDB_OK;

	if (!nm->seen_root) {
		if (strcmp(name, "nmaprun") != 0)
			return cmdb_error_set(
				nm->run.err, CMDB_EINVAL,
				"%s:%lu: not an nmap XML file (the root element is <%.64s>, "
				"not <nmaprun>)",
				nm->run.name, line_now(nm), name);
		on_nmaprun(nm);
		return CMDB_OK;
	}
	if (p->active && p->in_ssl_cert) {
		on_cert_start(nm, name, depth, empty);
		return CMDB_OK;
	}
	if (strcmp(name, "scaninfo") == 0 && !h->active) {
		on_scaninfo(nm);
	} else if (strcmp(name, "host") == 0 && !h->active) {
		if ((rc = send_scan(nm)) != CMDB_OK)
			return rc;
		on_host(nm, depth);
		if (empty)
			rc = on_host_end(nm);
	} else if (strcmp(name, "runstats") == 0 && !h->active) {
		rc = send_scan(nm);
	} else if (strcmp(name, "finished") == 0 && !h->active) {
		on_finished(nm);
	} else if (!h->active) {
		return CMDB_OK;
	} else if (strcmp(name, "status") == 0) {
		on_status(nm);
	} else if (strcmp(name, "address") == 0) {
		on_address(nm);
	} else if (strcmp(name, "hostname") == 0) {
		on_hostname(nm);
	} else if (strcmp(name, "osmatch") == 0) {
		on_osmatch(nm);
	} else if (strcmp(name, "osclass") == 0) {
		on_osclass(nm);
	} else if (strcmp(name, "port") == 0 && !p->active) {
		on_port(nm, depth);
		if (empty)
			on_port_end(nm);
	} else if (!p->active) {
		return CMDB_OK;
	} else if (strcmp(name, "state") == 0) {
		on_state(nm);
	} else if (strcmp(name, "service") == 0) {
		on_service(nm);
	} else if (strcmp(name, "script") == 0 && !empty && attr_eq(nm, "id", "ssl-cert")) {
		tables_reset(nm);
		p->in_ssl_cert = true;
		p->script_depth = depth;
	}
	return rc;
}

static cmdb_rc on_end(struct nmap *nm, const char *name, int depth)
{
	struct port *p = &nm->port;

	if (p->active && p->in_ssl_cert) {
		if (depth == p->script_depth && strcmp(name, "script") == 0) {
			p->in_ssl_cert = false;
			tables_reset(nm);
		} else if (strcmp(name, "elem") == 0 && depth == nm->elem_depth) {
			on_cert_elem(nm);
			elem_reset(nm);
		} else if (strcmp(name, "table") == 0 && nm->table_depth > 0) {
			on_cert_table_end(nm);
			nm->table_depth--;
			if (nm->table_depth < TABLE_DEPTH_MAX)
				replace(&nm->table_key[nm->table_depth], NULL);
		}
		return CMDB_OK;
	}
	if (p->active && depth == p->depth && strcmp(name, "port") == 0) {
		on_port_end(nm);
		return CMDB_OK;
	}
	if (nm->host.active && depth == nm->host.depth && strcmp(name, "host") == 0) {
		port_release(p);
		return on_host_end(nm);
	}
	return CMDB_OK;
}

static cmdb_rc read_all(struct nmap *nm)
{
	cmdb_rc rc = CMDB_OK;
	int ret;

	while ((ret = xmlTextReaderRead(nm->reader)) == 1) {
		int type = xmlTextReaderNodeType(nm->reader);
		int depth = xmlTextReaderDepth(nm->reader);
		const char *name = (const char *)xmlTextReaderConstLocalName(nm->reader);

		if (type == XML_READER_TYPE_DOCUMENT_TYPE && dtd_declares_entities(nm)) {
			nm->refused = true;
			return cmdb_error_set(
				nm->run.err, CMDB_EINVAL,
				"%s: refused: the document type declares entities "
				"(nmap never writes any; entity expansion is an attack)",
				nm->run.name);
		}
		if (type == XML_READER_TYPE_ENTITY_REFERENCE) {
			nm->refused = true;
			return cmdb_error_set(
				nm->run.err, CMDB_EINVAL,
				"%s:%lu: refused: entity reference &%.64s; in the document",
				nm->run.name, line_now(nm), name ? name : "");
		}
		if (type == XML_READER_TYPE_ELEMENT && name)
			rc = on_start(nm, name, depth,
				      xmlTextReaderIsEmptyElement(nm->reader) == 1);
		else if (type == XML_READER_TYPE_END_ELEMENT && name)
			rc = on_end(nm, name, depth);
		else if ((type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_CDATA ||
			  type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE) &&
			 nm->elem_depth >= 0)
			on_text(nm);
		if (rc == CMDB_OK && nm->run.oom)
			rc = cmdb_error_set(nm->run.err, CMDB_ENOMEM, "%s: out of memory",
					    nm->run.name);
		if (rc != CMDB_OK)
			return rc;
	}
	if (ret < 0 || nm->xml_error[0]) {
		unsigned long line = nm->xml_error_line ? nm->xml_error_line : line_now(nm);

		rc = cmdb_error_set(
			nm->run.err, CMDB_EINVAL, "%s:%lu: malformed XML: %s%s%s", nm->run.name,
			line, nm->xml_error[0] ? nm->xml_error : "the reader failed",
			nm->unended ? " (the file does not end in </nmaprun>: cut off?)" : "",
			nm->seen_root ? " (what came before it was imported; the scan "
					"is marked incomplete)"
				      : "");
		return rc;
	}
	if (!nm->seen_root)
		return cmdb_error_set(nm->run.err, CMDB_EINVAL,
				      "%s: not an nmap XML file (no <nmaprun> element)",
				      nm->run.name);
	return CMDB_OK;
}

/*
 * Where the reader's bytes come from. A killed nmap leaves a file cut off
 * anywhere; libxml2's reader drops every node it parsed but had not yet
 * handed out when it meets the end (up to a block of 512 bytes), which can
 * lose whole hosts. So when the file does not end in </nmaprun>, the reader
 * gets the bytes up to the last complete </host> and then a </nmaprun> of
 * ours: every whole host is imported, the cut-off one is reported as
 * skipped, and the scan is marked incomplete.
 */
struct xml_source {
	int fd;		    /* -1 for a buffer */
	bool stream;	    /* fd is a pipe: read() as it comes, no planning */
	const uint8_t *buf; /* borrowed */
	uint64_t len;	    /* bytes of the input */
	uint64_t limit;	    /* bytes handed to the reader */
	uint64_t pos;
	bool truncated; /* add the closing tag after limit */
	bool unended;	/* the input does not end in </nmaprun> */
	size_t close_pos;
	unsigned long lines; /* newlines handed out, for the skip message */
};

static const char close_root[] = "\n</nmaprun>\n";

static ssize_t source_pread(struct xml_source *src, void *out, size_t n, uint64_t off)
{
	if (off >= src->len)
		return 0;
	if (n > src->len - off)
		n = (size_t)(src->len - off);
	if (src->fd < 0) {
		memcpy(out, src->buf + off, n);
		return (ssize_t)n;
	}
	if (src->stream) {
		ssize_t r;

		do
			r = read(src->fd, out, n);
		while (r < 0 && errno == EINTR);
		return r;
	}
	return pread(src->fd, out, n, (off_t)off);
}

/* Decides whether the input is cut off and where to stop. Leaves the whole
 * input to the reader when it ends properly, when it cannot be read twice
 * (a pipe), or when there is no complete host to keep. */
static void source_plan(struct xml_source *src)
{
	static const char end_tag[] = "</nmaprun>", host_end[] = "</host>";
	uint8_t block[65536 + sizeof(host_end)];
	uint64_t end = src->len;
	ssize_t n;
	size_t tail;

	src->limit = src->len;
	if (src->stream)
		return;
	while (end > 0) { /* skip trailing white space */
		uint8_t c;

		if (source_pread(src, &c, 1, end - 1) != 1)
			return;
		if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
			break;
		end--;
	}
	tail = sizeof(end_tag) - 1;
	if (end >= tail && source_pread(src, block, tail, end - tail) == (ssize_t)tail &&
	    memcmp(block, end_tag, tail) == 0)
		return;
	src->unended = true;
	/* Search backwards, block by block, for the last "</host>". */
	while (end > 0) {
		uint64_t start = end > 65536 ? end - 65536 : 0;
		size_t want = (size_t)(end - start);

		if (end < src->len) /* overlap, so a tag across blocks is found */
			want += (end + sizeof(host_end) - 1 <= src->len) ? sizeof(host_end) - 1
									 : (size_t)(src->len - end);
		n = source_pread(src, block, want, start);
		if (n != (ssize_t)want)
			return;
		for (size_t i = want; i >= sizeof(host_end) - 1; i--) {
			if (memcmp(block + i - (sizeof(host_end) - 1), host_end,
				   sizeof(host_end) - 1) == 0) {
				src->limit = start + i;
				src->truncated = true;
				return;
			}
		}
		end = start;
	}
}

static int source_read(void *ctx, char *out, int len)
{
	struct xml_source *src = ctx;
	ssize_t n = 0;

	if (len <= 0)
		return 0;
	if (src->pos < src->limit) {
		size_t want = (size_t)len;

		if (want > src->limit - src->pos)
			want = (size_t)(src->limit - src->pos);
		n = source_pread(src, out, want, src->pos);
		if (n < 0)
			return -1;
		for (ssize_t i = 0; i < n; i++)
			src->lines += out[i] == '\n';
		src->pos += (uint64_t)n;
		return (int)n;
	}
	if (src->truncated && src->close_pos < sizeof(close_root) - 1) {
		size_t want = sizeof(close_root) - 1 - src->close_pos;

		if (want > (size_t)len)
			want = (size_t)len;
		memcpy(out, close_root + src->close_pos, want);
		src->close_pos += want;
		return (int)want;
	}
	return 0;
}

static int source_close(void *ctx)
{
	(void)ctx;
	return 0; /* the fd belongs to the caller */
}

/* Runs a reader over src to the end. */
static cmdb_rc run_reader(struct nmap *nm, struct xml_source *src)
{
	xmlTextReaderPtr reader;
	cmdb_rc rc;

	source_plan(src);
	nm->unended = src->unended;
	reader = xmlReaderForIO(source_read, source_close, src, NULL, NULL, NMAP_XML_OPTIONS);

	if (!reader) {
		rc = cmdb_error_set(nm->run.err, CMDB_ENOMEM, "%s: cannot create an XML reader",
				    nm->run.name);
		goto out;
	}
	nm->reader = reader;
	xmlTextReaderSetStructuredErrorHandler(reader, on_xml_error, nm);
	rc = read_all(nm);
	if (rc == CMDB_OK) {
		if (src->truncated)
			cmdb_import_skip(&nm->run, src->lines + 1,
					 "the file is cut off after the last complete host (no "
					 "</nmaprun>); the rest was dropped and the scan is marked "
					 "incomplete");
		if ((rc = send_scan(nm)) == CMDB_OK)
			rc = send_scan_end(nm, nm->finished && nm->finished_ok && !src->truncated);
	} else if (rc == CMDB_EINVAL && nm->scan_sent && !nm->refused) {
		/* The input broke off: say so to the ingest before the error. */
		struct cmdb_error saved = *nm->run.err;

		if (send_scan_end(nm, false) == CMDB_OK)
			*nm->run.err = saved;
	}
out:
	if (reader)
		xmlFreeTextReader(reader);
	host_release(&nm->host);
	port_release(&nm->port);
	tables_reset(nm);
	free(nm->text);
	free(nm->args);
	free(nm->version);
	return rc;
}

static bool nmap_init(struct nmap *nm, const char *name, cmdb_obs_sink sink, void *ctx,
		      struct cmdb_import_stats *stats, struct cmdb_import_stats *local,
		      struct cmdb_error *err)
{
	memset(nm, 0, sizeof(*nm));
	cmdb_import_run_init(&nm->run, name, sink, ctx, stats, local, err);
	nm->host.os_best = -1;
	nm->elem_depth = -1;
	xmlInitParser();
	nm->text = malloc(TEXT_MAX + 1); /* freed in run_reader */
	return nm->text != NULL;
}

cmdb_rc cmdb_import_nmap_xml(const char *path, cmdb_obs_sink sink, void *ctx,
			     struct cmdb_import_stats *stats, struct cmdb_error *err)
{
	struct cmdb_import_stats local;
	struct xml_source src = {.fd = -1};
	struct nmap nm;
	struct stat st;
	cmdb_rc rc;

	if (!nmap_init(&nm, path, sink, ctx, stats, &local, err)) {
		free(nm.text);
		return cmdb_error_set(err, CMDB_ENOMEM, "%s: out of memory", path);
	}
	/* Opened here so that a missing file is our message, not one libxml2
	 * prints. */
	src.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (src.fd < 0 || fstat(src.fd, &st) != 0) {
		rc = cmdb_error_set(nm.run.err, CMDB_ESYS, "%s: cannot open: %s", path,
				    strerror(errno));
		if (src.fd >= 0)
			close(src.fd);
		free(nm.text);
		return rc;
	}
	/* Only a regular file can be looked at from its end; a pipe is read
	 * once, as it comes. */
	src.stream = !S_ISREG(st.st_mode);
	src.len = src.stream ? UINT64_MAX : (uint64_t)st.st_size;
	rc = run_reader(&nm, &src);
	close(src.fd);
	return rc;
}

cmdb_rc cmdb_import_nmap_xml_buffer(const uint8_t *buf, size_t len, const char *name,
				    cmdb_obs_sink sink, void *ctx, struct cmdb_import_stats *stats,
				    struct cmdb_error *err)
{
	struct cmdb_import_stats local;
	struct xml_source src = {.fd = -1, .buf = buf, .len = len};
	struct nmap nm;

	if (!nmap_init(&nm, name, sink, ctx, stats, &local, err)) {
		free(nm.text);
		return cmdb_error_set(err, CMDB_ENOMEM, "%s: out of memory", name);
	}
	return run_reader(&nm, &src);
}
