/*
 * Unit tests for disc_xml: observations in, nmap-style XML out, checked by
 * parsing the document back with libxml2 and querying it with XPath.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "disc/obs.h"
#include "disc/xml.h"

static void add(struct disc_xml *x, const char *line)
{
	json_error_t jerr;
	json_t *o = json_loads(line, 0, &jerr);
	struct disc_error err = {0};

	if (!o)
		fail_msg("bad test JSON: %s: %s", line, jerr.text);
	assert_int_equal(disc_xml_add(x, o, &err), DISC_OK);
	json_decref(o);
}

static xmlDocPtr render(const struct disc_xml *x, const struct disc_xml_info *info)
{
	char *doc = NULL;
	size_t len = 0;
	struct disc_error err = {0};
	xmlDocPtr d;

	assert_int_equal(disc_xml_render(x, info, &doc, &len, &err), DISC_OK);
	assert_int_equal(strlen(doc), len);
	d = xmlReadMemory(doc, (int)len, "t.xml", NULL, XML_PARSE_NONET);
	if (!d)
		fail_msg("not well-formed: %s", doc);
	free(doc);
	return d;
}

/* The string value of an XPath expression ("" when it selects nothing). */
static char *xp(xmlDocPtr d, const char *expr)
{
	static char buf[1024];
	xmlXPathContextPtr ctx = xmlXPathNewContext(d);
	xmlXPathObjectPtr r = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	xmlChar *s = r ? xmlXPathCastToString(r) : NULL;

	snprintf(buf, sizeof(buf), "%s", s ? (const char *)s : "");
	xmlFree(s);
	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	return buf;
}

#define SCAN                                                                                       \
	"{\"v\":1,\"kind\":\"scan\",\"scan_id\":\"s\",\"at\":\"2026-01-01T00:00:00.000Z\","        \
	"\"targets\":[\"198.18.0.0/24\"],\"started\":\"2026-01-01T00:00:00.000Z\"}"
#define SCAN_END                                                                                   \
	"{\"v\":1,\"kind\":\"scan_end\",\"scan_id\":\"s\",\"at\":\"2026-01-01T00:00:03.500Z\","    \
	"\"complete\":true,\"probes_sent\":10,\"replies\":3,\"drops\":0,\"duration\":3.5}"

static void test_full_document(void **state)
{
	struct disc_xml *x = disc_xml_new();
	static const uint16_t ports[] = {22, 80, 81, 82, 83, 443};
	struct disc_xml_info info = {.args = "cmdb discover -p 22,80-83,443 198.18.0.0/24",
				     .version = "0.1.0",
				     .scan_type = "syn",
				     .ports = ports,
				     .n_ports = 6};
	xmlDocPtr d;

	assert_non_null(x);
	add(x, SCAN);
	add(x, "{\"kind\":\"host\",\"at\":\"2026-01-01T00:00:01.000Z\",\"ip\":\"198.18.0.2\","
	       "\"mac\":\"00:1b:21:aa:bb:cc\",\"vendor\":\"Intel Corporate\",\"hostname\":"
	       "\"web.lab.test\",\"ttl\":64,\"reason\":\"arp-response\",\"os\":{\"family\":"
	       "\"Linux\",\"guess\":\"Linux 4.x-6.x\",\"confidence\":90}}");
	add(x, "{\"kind\":\"port\",\"ip\":\"198.18.0.2\",\"proto\":\"tcp\",\"port\":22,"
	       "\"state\":\"open\",\"reason\":\"syn-ack\"}");
	add(x, "{\"kind\":\"port\",\"ip\":\"198.18.0.2\",\"proto\":\"tcp\",\"port\":443,"
	       "\"state\":\"open\",\"reason\":\"syn-ack\"}");
	add(x, "{\"kind\":\"host\",\"ip\":\"198.18.0.9\",\"reason\":\"echo-reply\"}");
	/* services after all hosts and ports, as service detection writes them */
	add(x, "{\"kind\":\"service\",\"ip\":\"198.18.0.2\",\"proto\":\"tcp\",\"port\":22,"
	       "\"service\":\"ssh\",\"product\":\"OpenSSH\",\"version\":\"9.2p1\",\"extra\":"
	       "{\"protocol\":\"2.0\"},\"banner\":\"SSH-2.0-x <&\\\"> \\u2400\\r\\n\","
	       "\"confidence\":95}");
	add(x, "{\"kind\":\"service\",\"ip\":\"198.18.0.2\",\"proto\":\"tcp\",\"port\":443,"
	       "\"service\":\"http\",\"tls\":{\"subject\":\"CN=web\"}}");
	add(x, SCAN_END);
	d = render(x, &info);
	assert_string_equal(xp(d, "string(/nmaprun/@scanner)"), "cmdb");
	assert_string_equal(xp(d, "string(/nmaprun/@args)"), info.args);
	assert_string_equal(xp(d, "string(/nmaprun/@start)"), "1767225600");
	assert_string_equal(xp(d, "string(/nmaprun/@xmloutputversion)"), "1.05");
	assert_string_equal(xp(d, "string(/nmaprun/scaninfo/@type)"), "syn");
	assert_string_equal(xp(d, "string(/nmaprun/scaninfo/@services)"), "22,80-83,443");
	assert_string_equal(xp(d, "string(/nmaprun/scaninfo/@numservices)"), "6");
	assert_string_equal(xp(d, "count(/nmaprun/host)"), "2");
	/* hosts in the order the observations gave them */
	assert_string_equal(xp(d, "string(/nmaprun/host[1]/address[@addrtype='ipv4']/@addr)"),
			    "198.18.0.2");
	assert_string_equal(xp(d, "string(/nmaprun/host[1]/@starttime)"), "1767225601");
	assert_string_equal(xp(d, "string(/nmaprun/host[1]/status/@reason)"), "arp-response");
	assert_string_equal(xp(d, "string(/nmaprun/host[1]/status/@reason_ttl)"), "64");
	assert_string_equal(xp(d, "string(//host[1]/address[@addrtype='mac']/@addr)"),
			    "00:1B:21:AA:BB:CC");
	assert_string_equal(xp(d, "string(//host[1]/address[@addrtype='mac']/@vendor)"),
			    "Intel Corporate");
	assert_string_equal(xp(d, "string(//host[1]/hostnames/hostname[@type='user']/@name)"),
			    "web.lab.test");
	assert_string_equal(xp(d, "string(//host[1]/ports/port[1]/@portid)"), "22");
	assert_string_equal(xp(d, "string(//port[@portid='22']/state/@state)"), "open");
	assert_string_equal(xp(d, "string(//port[@portid='22']/service/@name)"), "ssh");
	assert_string_equal(xp(d, "string(//port[@portid='22']/service/@product)"), "OpenSSH");
	assert_string_equal(xp(d, "string(//port[@portid='22']/service/@version)"), "9.2p1");
	assert_string_equal(xp(d, "string(//port[@portid='22']/service/@extrainfo)"),
			    "protocol: 2.0");
	assert_string_equal(xp(d, "string(//port[@portid='22']/service/@conf)"), "10");
	assert_string_equal(xp(d, "count(//port[@portid='22']/service/@tunnel)"), "0");
	/* the banner survives XML escaping byte for byte */
	assert_string_equal(xp(d, "string(//port[@portid='22']/script[@id='banner']/@output)"),
			    "SSH-2.0-x <&\"> \xe2\x90\x80\r\n");
	assert_string_equal(xp(d, "string(//port[@portid='443']/service/@tunnel)"), "ssl");
	assert_string_equal(xp(d, "string(//port[@portid='443']/service/@conf)"), "3");
	assert_string_equal(xp(d, "string(//host[1]/os/osmatch/@name)"), "Linux 4.x-6.x");
	assert_string_equal(xp(d, "string(//host[1]/os/osmatch/@accuracy)"), "90");
	assert_string_equal(xp(d, "string(//host[1]/os/osmatch/osclass/@osfamily)"), "Linux");
	/* a host without MAC, names, ports or OS */
	assert_string_equal(xp(d, "count(//host[2]/address)"), "1");
	assert_string_equal(xp(d, "count(//host[2]/ports/port)"), "0");
	assert_string_equal(xp(d, "count(//host[2]/os)"), "0");
	assert_string_equal(xp(d, "string(//host[2]/status/@reason_ttl)"), "0");
	assert_string_equal(xp(d, "string(/nmaprun/runstats/finished/@exit)"), "success");
	assert_string_equal(xp(d, "string(/nmaprun/runstats/finished/@elapsed)"), "3.50");
	assert_string_equal(xp(d, "string(/nmaprun/runstats/finished/@time)"), "1767225603");
	assert_string_equal(xp(d, "string(/nmaprun/runstats/hosts/@up)"), "2");
	xmlFreeDoc(d);
	disc_xml_free(x);
}

/*
 * A streaming scan writes a host line as soon as the host answers and again
 * when it learns more: one host in the XML, with the last line's facts and
 * the first line's time.
 */
static void test_repeated_host_line(void **state)
{
	struct disc_xml *x = disc_xml_new();
	struct disc_xml_info info = {.version = "0.1.0", .scan_type = "syn"};
	xmlDocPtr d;

	assert_non_null(x);
	add(x, SCAN);
	add(x, "{\"kind\":\"host\",\"at\":\"2026-01-01T00:00:01.000Z\",\"ip\":\"198.18.0.2\","
	       "\"mac\":\"00:1b:21:aa:bb:cc\",\"reason\":\"arp-response\"}");
	add(x, "{\"kind\":\"port\",\"ip\":\"198.18.0.2\",\"proto\":\"tcp\",\"port\":22,"
	       "\"state\":\"open\",\"reason\":\"syn-ack\"}");
	add(x, "{\"kind\":\"host\",\"at\":\"2026-01-01T00:00:03.000Z\",\"ip\":\"198.18.0.2\","
	       "\"mac\":\"00:1b:21:aa:bb:cc\",\"ttl\":64,\"reason\":\"arp-response\","
	       "\"os\":{\"family\":\"Linux\",\"confidence\":80}}");
	add(x, SCAN_END);
	d = render(x, &info);
	assert_string_equal(xp(d, "count(/nmaprun/host)"), "1");
	assert_string_equal(xp(d, "string(/nmaprun/host/@starttime)"), "1767225601");
	assert_string_equal(xp(d, "string(/nmaprun/host/status/@reason_ttl)"), "64");
	assert_string_equal(xp(d, "string(/nmaprun/host/os/osmatch/@name)"), "Linux");
	assert_string_equal(xp(d, "count(/nmaprun/host/ports/port)"), "1");
	assert_string_equal(xp(d, "string(/nmaprun/host/ports/port/@portid)"), "22");
	xmlFreeDoc(d);
	disc_xml_free(x);
}

static void test_incomplete_and_passive(void **state)
{
	struct disc_xml *x = disc_xml_new();
	struct disc_xml_info info = {.args = "cmdb discover --pcap f", .version = "0"};
	xmlDocPtr d;

	add(x, SCAN);
	/* a port and a service whose host line never came are not a host */
	add(x, "{\"kind\":\"port\",\"ip\":\"198.18.0.5\",\"proto\":\"tcp\",\"port\":1,"
	       "\"state\":\"open\"}");
	/* a service without its port line still makes an open port */
	add(x, "{\"kind\":\"host\",\"ip\":\"198.18.0.6\"}");
	add(x, "{\"kind\":\"service\",\"ip\":\"198.18.0.6\",\"proto\":\"tcp\",\"port\":25,"
	       "\"service\":\"unknown\",\"banner\":\"220 hi\"}");
	/* kinds XML has no place for, and lines without what it needs, are ignored */
	add(x, "{\"kind\":\"ci\",\"type\":\"host\",\"name\":\"x\"}");
	add(x, "{\"kind\":\"port\",\"ip\":\"198.18.0.6\",\"port\":\"bad\"}");
	add(x, "{\"no\":\"kind\"}");
	d = render(x, &info); /* no scan_end: the run was cut off */
	assert_string_equal(xp(d, "count(/nmaprun/scaninfo)"), "0");
	assert_string_equal(xp(d, "count(/nmaprun/host)"), "1");
	assert_string_equal(xp(d, "string(//host/status/@reason)"), "unknown");
	assert_string_equal(xp(d, "string(//port[@portid='25']/state/@state)"), "open");
	assert_string_equal(xp(d, "string(//port[@portid='25']/service/@name)"), "unknown");
	assert_string_equal(xp(d, "string(/nmaprun/runstats/finished/@exit)"), "error");
	assert_string_equal(xp(d, "string(/nmaprun/runstats/finished/@errormsg)"),
			    "interrupted before the end");
	xmlFreeDoc(d);
	/* an interrupted scan's scan_end */
	add(x, "{\"kind\":\"scan_end\",\"at\":\"2026-01-01T00:00:01.000Z\",\"complete\":false,"
	       "\"duration\":1}");
	d = render(x, &info);
	assert_string_equal(xp(d, "string(/nmaprun/runstats/finished/@exit)"), "error");
	assert_non_null(
		strstr(xp(d, "string(/nmaprun/runstats/finished/@errormsg)"), "interrupted"));
	xmlFreeDoc(d);
	disc_xml_free(x);
}

/* Through the observation writer's tee, the XML sees exactly the lines written. */
static void test_writer_tee_and_fd(void **state)
{
	struct disc_xml *x = disc_xml_new();
	struct disc_xml_info info = {.args = "a", .version = "0"};
	struct disc_obs_writer w;
	struct disc_error err = {0};
	struct disc_obs_host h = {.ip = 0xc6120003, .ttl = -1, .os_confidence = -1};
	char *text = NULL, path[] = "/tmp/disc_xml_testXXXXXX", back[8192];
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	int fd = mkstemp(path);
	ssize_t n;

	assert_true(fd >= 0);
	/* old content longer than the document: it must be replaced, not overwritten */
	memset(back, 'x', sizeof(back));
	assert_int_equal(write(fd, back, sizeof(back)), (ssize_t)sizeof(back));
	disc_obs_writer_init(&w, out, "s");
	w.tee = disc_xml_tee;
	w.tee_ctx = x;
	assert_int_equal(disc_obs_emit(&w, disc_obs_host_json(&w, &h, NULL), &err), DISC_OK);
	fclose(out);
	free(text);
	assert_int_equal(disc_xml_write_fd(x, &info, fd, path, &err), DISC_OK);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	n = read(fd, back, sizeof(back) - 1);
	assert_true(n > 0 && n < (ssize_t)sizeof(back) - 1);
	back[n] = '\0';
	assert_non_null(strstr(back, "<address addr=\"198.18.0.3\" addrtype=\"ipv4\"/>"));
	assert_null(strstr(back, "xxx")); /* nothing of the old content is left */
	assert_true(back[n - 1] == '\n');
	close(fd);
	unlink(path);
	disc_xml_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_document),
		cmocka_unit_test(test_repeated_host_line),
		cmocka_unit_test(test_incomplete_and_passive),
		cmocka_unit_test(test_writer_tee_and_fd),
	};

	xmlInitParser();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
