/* Unit tests for disc_obs: observation lines of format version 1, parsed back with Jansson. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc/obs.h"

static const struct timespec at = {.tv_sec = 1767225600, .tv_nsec = 123456789}; /* 2026-01-01 */

/* Emits obj through a writer on a temporary file and returns the text (caller frees). */
static char *emit_to_string(json_t *obj)
{
	char *text = calloc(1, 65536);
	size_t len;
	FILE *f = tmpfile();
	struct disc_obs_writer w;
	struct disc_error err = {0};

	assert_non_null(text);
	assert_non_null(f);
	disc_obs_writer_init(&w, f, "scan-1");
	assert_int_equal(disc_obs_emit(&w, obj, &err), DISC_OK);
	assert_int_equal(w.lines, 1);
	rewind(f);
	len = fread(text, 1, 65535, f);
	assert_true(len > 0 && len < 65535);
	fclose(f);
	return text;
}

static json_t *round_trip(json_t *obj, char **line_out)
{
	char *line = emit_to_string(obj);
	json_error_t jerr;
	json_t *back;

	/* Exactly one line, newline-terminated. */
	assert_non_null(strchr(line, '\n'));
	assert_int_equal(strchr(line, '\n')[1], '\0');
	back = json_loads(line, 0, &jerr);
	if (!back)
		fail_msg("not JSON: %s (%s)", line, jerr.text);
	if (line_out)
		*line_out = line;
	else
		free(line);
	return back;
}

static void check_common(json_t *o, const char *kind)
{
	assert_int_equal(json_integer_value(json_object_get(o, "v")), 1);
	assert_string_equal(json_string_value(json_object_get(o, "kind")), kind);
	assert_string_equal(json_string_value(json_object_get(o, "scan_id")), "scan-1");
	assert_string_equal(json_string_value(json_object_get(o, "at")),
			    "2026-01-01T00:00:00.123Z");
}

static void test_scan_and_scan_end(void **state)
{
	struct disc_obs_writer w;
	const char *targets[] = {"10.0.0.0/24", "lab-host"};
	json_t *opts = json_pack("{s:i, s:b}", "rate", 100000, "service", 1);
	struct disc_obs_scan s = {targets, 2, "22,80,443", opts, at};
	struct disc_obs_scan_end e = {false, 1048576, 1203, 7, 3.6004};
	json_t *o;
	char *line;

	disc_obs_writer_init(&w, NULL, "scan-1");
	o = round_trip(disc_obs_scan_json(&w, &s, &at), &line);
	/* The common fields come first, in this order, for people reading the file. */
	assert_memory_equal(line, "{\"v\":1,\"kind\":\"scan\",\"scan_id\":\"scan-1\",\"at\":", 45);
	free(line);
	check_common(o, "scan");
	assert_int_equal(json_array_size(json_object_get(o, "targets")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(o, "targets"), 1)),
			    "lab-host");
	assert_string_equal(json_string_value(json_object_get(o, "ports")), "22,80,443");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "options"), "rate")),
			 100000);
	assert_string_equal(json_string_value(json_object_get(o, "started")),
			    "2026-01-01T00:00:00.123Z");
	json_decref(o);
	json_decref(opts);

	o = round_trip(disc_obs_scan_end_json(&w, &e, &at), NULL);
	check_common(o, "scan_end");
	assert_true(json_is_false(json_object_get(o, "complete")));
	assert_int_equal(json_integer_value(json_object_get(o, "probes_sent")), 1048576);
	assert_int_equal(json_integer_value(json_object_get(o, "replies")), 1203);
	assert_int_equal(json_integer_value(json_object_get(o, "drops")), 7);
	assert_true(json_real_value(json_object_get(o, "duration")) == 3.6);
	json_decref(o);
}

static void test_host(void **state)
{
	struct disc_obs_writer w;
	const uint8_t mac[6] = {0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xcc};
	struct disc_obs_host h = {
		.ip = 0x0a000002,
		.mac = mac,
		.vendor = "Intel Corporate",
		.hostname = "db1",
		.ttl = 64,
		.reason = "arp-response",
		.os_family = "Linux",
		.os_guess = "Linux 5.x",
		.os_confidence = 85,
	};
	struct disc_obs_host bare = {.ip = 0xc0a80001, .ttl = -1, .os_confidence = -1};
	json_t *o, *os;

	disc_obs_writer_init(&w, NULL, "scan-1");
	o = round_trip(disc_obs_host_json(&w, &h, &at), NULL);
	check_common(o, "host");
	assert_string_equal(json_string_value(json_object_get(o, "ip")), "10.0.0.2");
	assert_string_equal(json_string_value(json_object_get(o, "mac")), "00:1b:21:aa:bb:cc");
	assert_null(json_object_get(o, "mac_local"));
	assert_string_equal(json_string_value(json_object_get(o, "vendor")), "Intel Corporate");
	assert_string_equal(json_string_value(json_object_get(o, "hostname")), "db1");
	assert_int_equal(json_integer_value(json_object_get(o, "ttl")), 64);
	assert_string_equal(json_string_value(json_object_get(o, "reason")), "arp-response");
	os = json_object_get(o, "os");
	assert_string_equal(json_string_value(json_object_get(os, "family")), "Linux");
	assert_string_equal(json_string_value(json_object_get(os, "guess")), "Linux 5.x");
	assert_int_equal(json_integer_value(json_object_get(os, "confidence")), 85);
	json_decref(o);

	/* Unknown fields are absent, not null; only the common ones and ip remain. */
	o = round_trip(disc_obs_host_json(&w, &bare, &at), NULL);
	assert_int_equal(json_object_size(o), 5);
	assert_string_equal(json_string_value(json_object_get(o, "ip")), "192.168.0.1");
	json_decref(o);
}

static void test_port(void **state)
{
	struct disc_obs_writer w;
	struct disc_obs_port p = {0x0a000002, "tcp", 443, "open", "syn-ack"};
	struct disc_obs_port bad = {0x0a000002, NULL, 443, "open", NULL};
	struct disc_error err = {0};
	json_t *o;

	disc_obs_writer_init(&w, stdout, "scan-1");
	o = round_trip(disc_obs_port_json(&w, &p, &at), NULL);
	check_common(o, "port");
	assert_string_equal(json_string_value(json_object_get(o, "proto")), "tcp");
	assert_int_equal(json_integer_value(json_object_get(o, "port")), 443);
	assert_string_equal(json_string_value(json_object_get(o, "state")), "open");
	assert_string_equal(json_string_value(json_object_get(o, "reason")), "syn-ack");
	json_decref(o);

	/* A missing required field builds nothing, and emit reports it without writing. */
	assert_null(disc_obs_port_json(&w, &bad, &at));
	assert_int_equal(disc_obs_emit(&w, NULL, &err), DISC_ERR_NOMEM);
	assert_int_equal(w.lines, 0);
}

static void test_service_and_banner_bytes(void **state)
{
	struct disc_obs_writer w;
	uint8_t banner[256];
	const char *sans[] = {"www.example.test", "example.test"};
	struct disc_obs_tls tls = {"CN=www.example.test",  "CN=Lab CA", "2026-01-01T00:00:00Z",
				   "2027-01-01T00:00:00Z", sans,	2};
	json_t *extra = json_pack("{s:s}", "title", "Welcome");
	struct disc_obs_service s = {
		.ip = 0x0a000002,
		.proto = "tcp",
		.port = 443,
		.service = "https",
		.product = "nginx",
		.version = "1.22.1",
		.extra = extra,
		.banner = banner,
		.banner_len = sizeof(banner),
		.tls = &tls,
		.confidence = 90,
	};
	json_t *o, *t;
	const char *b;
	size_t blen, k = 0;

	for (int i = 0; i < 256; i++)
		banner[i] = (uint8_t)i;
	disc_obs_writer_init(&w, NULL, "scan-1");
	o = round_trip(disc_obs_service_json(&w, &s, &at), NULL);
	check_common(o, "service");
	assert_string_equal(json_string_value(json_object_get(o, "service")), "https");
	assert_string_equal(json_string_value(json_object_get(o, "product")), "nginx");
	assert_string_equal(json_string_value(json_object_get(o, "version")), "1.22.1");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(o, "extra"), "title")),
		"Welcome");
	assert_int_equal(json_integer_value(json_object_get(o, "confidence")), 90);
	t = json_object_get(o, "tls");
	assert_string_equal(json_string_value(json_object_get(t, "issuer")), "CN=Lab CA");
	assert_int_equal(json_array_size(json_object_get(t, "sans")), 2);
	assert_null(json_object_get(o, "banner_truncated"));

	/* Every byte value survives: decode per docs/observations.md and compare. */
	b = json_string_value(json_object_get(o, "banner"));
	blen = json_string_length(json_object_get(o, "banner"));
	assert_null(memchr(b, 0, blen));
	for (size_t i = 0; i < blen; k++) {
		const uint8_t *u = (const uint8_t *)b + i;
		unsigned cp;

		if (u[0] < 0x80) {
			cp = u[0];
			i++;
		} else if (u[0] < 0xe0) {
			cp = ((u[0] & 0x1fu) << 6) | (u[1] & 0x3fu);
			i += 2;
		} else {
			cp = ((u[0] & 0x0fu) << 12) | ((u[1] & 0x3fu) << 6) | (u[2] & 0x3fu);
			i += 3;
		}
		if (cp == 0x2421)
			cp = 0x7f;
		else if (cp >= 0x2400 && cp < 0x2420)
			cp -= 0x2400;
		assert_int_equal(cp, k);
	}
	assert_int_equal(k, 256);
	json_decref(o);

	/* Capped banners say so. */
	w.banner_max = 10;
	o = round_trip(disc_obs_service_json(&w, &s, &at), NULL);
	/* Bytes 0-9: nine control pictures of 3 UTF-8 bytes each, and a tab. */
	assert_int_equal(json_string_length(json_object_get(o, "banner")), 9 * 3 + 1);
	assert_true(json_is_true(json_object_get(o, "banner_truncated")));
	json_decref(o);
	json_decref(extra);
}

static void test_ids_and_times(void **state)
{
	char id1[DISC_OBS_SCAN_ID_MAX], id2[DISC_OBS_SCAN_ID_MAX], buf[32];
	struct timespec t = {.tv_sec = 0, .tv_nsec = 999999999};

	assert_int_equal(disc_obs_new_scan_id(id1, NULL), DISC_OK);
	assert_int_equal(disc_obs_new_scan_id(id2, NULL), DISC_OK);
	assert_int_equal(strlen(id1), 36);
	assert_int_equal(id1[14], '4');
	assert_true(strchr("89ab", id1[19]) != NULL);
	assert_string_not_equal(id1, id2);
	assert_string_equal(disc_obs_time_str(&t, buf), "1970-01-01T00:00:00.999Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_and_scan_end),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_port),
		cmocka_unit_test(test_service_and_banner_bytes),
		cmocka_unit_test(test_ids_and_times),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
