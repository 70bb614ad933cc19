#!/usr/bin/env bash
# End-to-end: `cmdb scan` port scans of the namespace lab mark what they no
# longer see as missing (their scan line carries scope and scope_ports,
# docs/observations.md), into a private embedded CMDB:
#
#   1. a full scan: the lab's ground truth, nothing missing;
#   2. one service stopped (a4's openssl s_server on 8443, killed by PID in
#      a4's namespace) and one host's link down (a3, six services): exactly
#      that service, and a3 with its interface, address and services, are
#      marked missing, each with a history entry; nothing else;
#   3. both back: a scan clears every mark (ingest drops 'missing' from a
#      CI it sees), and the CMDB is the ground truth again;
#   4. a4 behind a SYN proxy (nftables synproxy): the scan cannot see its
#      ports (its host line says syn_proxy, no port line of it is written),
#      and its services, seen by the scans before, are not marked missing.
#
# The scanners run inside the lab's scanner namespace (raw SYN scans, no
# service detection: port lines alone make the service CIs, and the scope
# is the same). Exit 77 (skip) without root or network namespaces.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lab_env.sh"
lab_env scan_missing

lab_up missing m

# 1-1500 and every open port of the truth above it: at least 64 ports, so
# that the scanner can tell a SYN proxy (step 4). The router's far address
# is left out (as in test_scan_lab.sh: a scan cannot tell it is the router's).
ports=$(lab_wide_ports)
lab_targets
down_ip=198.18.1.13 # a3, the mail host: six services
svc_ip=198.18.1.14  # a4: 21 ftp, 22 ssh (labsvc.py) and 8443 (openssl s_server)
svc_port=8443

expect 0 init -q
cmdb_sql() { psql "host=$home/run dbname=cmdb user=cmdb" -XAtq -c "$1"; }
by_type() {
  cmdb_sql "SELECT string_agg(type || ':' || n, ' ' ORDER BY type) FROM
    (SELECT type, count(*) n FROM cmdb.ci WHERE $1 GROUP BY type) x"
}
# the missing services as ADDRESS:PORT, sorted
MISSING_SVC="SELECT string_agg(a.ip || ':' || split_part(e.value, '/', 3), ' ' ORDER BY a.ip, split_part(e.value, '/', 3)::int)
  FROM cmdb.ci c JOIN cmdb.ci_identity e ON e.ci_id = c.id AND e.kind = 'endpoint' AND upper_inf(e.valid)
  JOIN (SELECT DISTINCT split_part(x.value, '%', 1) AS ip, coalesce(f.source_id, r.source_id) AS host
          FROM cmdb.ci_identity x JOIN cmdb.rel r ON r.target_id = x.ci_id AND r.type = 'has_address' AND upper_inf(r.valid)
          LEFT JOIN cmdb.rel f ON f.target_id = r.source_id AND f.type = 'has_interface' AND upper_inf(f.valid)
         WHERE x.kind = 'ip' AND upper_inf(x.valid)) a ON a.host = split_part(e.value, '/', 1)::bigint
 WHERE c.type = 'service' AND c.attributes ? 'missing'"
scan() { # NAME: a raw SYN port scan of both subnets into the CMDB
  if sc "$CMDB" scan "${subnets[@]}" --exclude "$excl" -p "$ports" --no-service --wait 0.5 --retries 2 -q \
    >"$out" 2>"$err"; then
    ok "$1: cmdb scan"
  else
    bad "$1: cmdb scan exited $?: $(head -c 600 "$err")"
  fi
  expect_eq "$(cmdb_sql "SELECT complete, array_length(scope, 1) > 0, scope_ports -> 'tcp' -> 0 = '[1, 1500]'
    FROM cmdb.scan_run ORDER BY id DESC LIMIT 1")" "t|t|t" "$1: a complete run with a scope and scope_ports"
}
# listening N PORT: 1 when node N listens on TCP PORT
listening() { "$LAB_SH" exec "$1" ss -Hltn "sport = :$2" | grep -c LISTEN; }

# 1. the full scan
scan first
if "$PY" "$CHECK" "$LAB_TRUTH" "$home/run" "$excl" >"$out" 2>&1; then
  ok "the first scan gives the ground truth ($(tail -n 1 "$out"))"
else
  bad "the first scan differs from the ground truth: $(cat "$out")"
fi
expect_eq "$(by_type "attributes ? 'missing'")" "" "nothing missing after the first scan"
before=$(by_type true)
hist_missing() { cmdb_sql "SELECT count(*) FROM cmdb.history WHERE field = 'attributes.missing'"; }
hist0=$(hist_missing)

# 2. a4's s_server stopped (by its PID, read from its listening socket), a3 down
pid=$("$LAB_SH" exec a4 ss -Hltnp "sport = :$svc_port" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
  ok "a4's listener on $svc_port is PID $pid"
else
  bad "no listener on a4:$svc_port"
fi
mapfile -d '' -t svc_cmd <"/proc/$pid/cmdline"
svc_cwd=$(readlink "/proc/$pid/cwd")
kill "$pid"
for _ in $(seq 1 50); do [ "$(listening a4 $svc_port)" = 0 ] && break; sleep 0.1; done
expect_eq "$(listening a4 $svc_port)" 0 "a4 no longer listens on $svc_port"
"$LAB_SH" exec a3 ip link set eth0 down
scan second
expect_eq "$(by_type true)" "$before" "the second scan creates no CI"
expect_eq "$(by_type "attributes ? 'missing'")" "host:1 ip_address:1 network_interface:1 service:7" \
  "missing: the host that is down with its interface, address and six services, and one service"
expect_eq "$(cmdb_sql "$MISSING_SVC")" \
  "$down_ip:25 $down_ip:110 $down_ip:143 $down_ip:465 $down_ip:993 $down_ip:995 $svc_ip:$svc_port" \
  "the missing services are a3's and a4's $svc_port"
expect_eq "$(cmdb_sql "SELECT string_agg(split_part(x.value, '%', 1), ' ') FROM cmdb.ci c JOIN cmdb.ci_identity x
  ON x.ci_id = c.id AND x.kind = 'ip' AND upper_inf(x.valid) WHERE c.type = 'ip_address' AND c.attributes ? 'missing'")" \
  "$down_ip" "the missing address is $down_ip"
expect_eq "$(cmdb_sql "SELECT missing FROM cmdb.scan_run ORDER BY id DESC LIMIT 1")" 10 "the run counts 10 missing"
expect_eq "$(hist_missing)" "$((hist0 + 10))" "each mark is a history entry"
expect_eq "$(cmdb_sql "SELECT count(*) FROM cmdb.ci WHERE attributes ? 'missing' AND status <> 'live'")" 0 \
  "missing CIs keep their status (never deleted)"

# 3. both back
(cd "$svc_cwd" && "$LAB_SH" exec a4 setsid "${svc_cmd[@]}" </dev/null >/dev/null 2>&1 &)
for _ in $(seq 1 50); do [ "$(listening a4 $svc_port)" = 1 ] && break; sleep 0.1; done
expect_eq "$(listening a4 $svc_port)" 1 "a4 listens on $svc_port again"
"$LAB_SH" exec a3 ip link set eth0 up
scan third
expect_eq "$(by_type "attributes ? 'missing'")" "" "seen again: nothing missing"
expect_eq "$(by_type true)" "$before" "the third scan creates no CI"
if "$PY" "$CHECK" "$LAB_TRUTH" "$home/run" "$excl" >"$out" 2>&1; then
  ok "the ground truth again"
else
  bad "the third scan differs from the ground truth: $(cat "$out")"
fi

# 4. a4 behind a SYN proxy (as in test_scan_stream.sh for a5, which has no
# services): every port answers SYN-ACK, none of its ports is written
"$LAB_SH" synproxy a4
scan proxy
run_id=$(cmdb_sql "SELECT max(id) FROM cmdb.scan_run")
expect_eq "$(cmdb_sql "SELECT count(*) FROM cmdb.observation WHERE run = $run_id AND kind = 'host'
  AND body ->> 'ip' = '$svc_ip' AND body -> 'syn_proxy' = 'true'")" 1 "a4's host line says syn_proxy"
expect_eq "$(cmdb_sql "SELECT count(*) FROM cmdb.observation WHERE run = $run_id AND kind = 'port'
  AND body ->> 'ip' = '$svc_ip'")" 0 "no port line of the SYN proxy"
expect_eq "$(by_type "attributes ? 'missing'")" "" "the SYN proxy's services are not missing, nor anything else"
expect_eq "$(by_type true)" "$before" "the SYN proxy scan creates no CI"
finish
