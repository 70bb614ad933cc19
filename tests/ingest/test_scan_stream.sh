#!/usr/bin/env bash
# End-to-end: `cmdb scan` streams. While a slow scan of the namespace lab is
# still running (its process alive, its run not finished: no scan_end
# ingested yet), the CMDB already holds host CIs, service CIs of open ports
# and services named by service detection of this run. Checked in one
# snapshot per look: CIs counted only while cmdb.scan_run.finished is NULL,
# which scan_end's batch sets, so rows that arrive only with the end count
# nothing and the test fails. No time is asserted; only the order of events.
#
#   1. connect() mode on an empty CMDB: hosts are written only once their MAC
#      is known, so a host with a universal MAC (a1) does not become two CIs
#      (one by address, one by MAC);
#   2. raw SYN mode with a SYN proxy in front of a5 (nftables synproxy): its
#      ports are held back while the scan runs and never written, so no port
#      observation and no service CI of it exist, and its host line says
#      syn_proxy.
# After each, the CMDB is the lab's ground truth (check_lab_cmdb.py).
#
# The scanner runs inside the lab's scanner namespace; the CMDB's server
# stays in the root namespace, reached through its Unix socket. Exit 77
# (skip) without root or network namespaces.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lab_env.sh"
lab_env scan_stream

scan_pid=
lab_cleanup_more() { [ -n "$scan_pid" ] && kill "$scan_pid" 2>/dev/null; }
lab_up stream s

# Every open port of the truth plus 1-1500: at --rate 3000 over the lab's ten
# live hosts the port scan takes a few seconds, and the list is long enough
# (>= 64 ports) for the SYN proxy rule. a8's port 9999 accepts and never
# speaks: its service detection outlasts the others'.
ports=$(lab_wide_ports)
lab_targets

expect 0 init -q
cmdb_sql() { psql "host=$home/run dbname=cmdb user=cmdb" -XAtq -c "$1"; }

# What the latest run put in the CMDB before its end: its host, port and
# service observations, and the host and service CIs it saw; nothing (no
# row) once the run is finished.
EARLY="SELECT (SELECT count(*) FROM cmdb.observation o WHERE o.run = r.id AND o.kind = 'host') || ' ' ||
              (SELECT count(*) FROM cmdb.observation o WHERE o.run = r.id AND o.kind = 'port') || ' ' ||
              (SELECT count(*) FROM cmdb.observation o WHERE o.run = r.id AND o.kind = 'service') || ' ' ||
              (SELECT count(*) FROM cmdb.ci c WHERE c.type = 'host' AND c.last_seen >= r.started) || ' ' ||
              (SELECT count(*) FROM cmdb.ci c WHERE c.type = 'service' AND c.last_seen >= r.started)
         FROM cmdb.scan_run r WHERE r.id = (SELECT max(id) FROM cmdb.scan_run) AND r.finished IS NULL"

# stream_scan NAME ARGS...: runs cmdb scan in the background and looks at the
# CMDB while it runs (at most 900 looks); each of seen[0..4] becomes 1 when
# the matching count of EARLY was above 0 while the scanner still ran.
stream_scan() {
  local name=$1 looks=0 row i
  local -a got
  shift
  seen=(0 0 0 0 0)
  sc "$CMDB" scan "${subnets[@]}" --exclude "$excl" -p "$ports" --rate 3000 --wait 0.5 -q "$@" \
    >"$out" 2>"$err" &
  scan_pid=$!
  while kill -0 "$scan_pid" 2>/dev/null && [ $looks -lt 900 ]; do
    looks=$((looks + 1))
    row=$(cmdb_sql "$EARLY" 2>/dev/null) || row=""
    read -r -a got <<<"${row:-0 0 0 0 0}"
    # rows of an unfinished run, and the scanner still running after they were seen
    if kill -0 "$scan_pid" 2>/dev/null; then
      for i in 0 1 2 3 4; do
        [ "${got[$i]:-0}" -gt 0 ] && seen[$i]=1
      done
    fi
    sleep 0.2
  done
  if wait "$scan_pid"; then ok; else bad "$name: cmdb scan exited $?: $(head -c 600 "$err")"; fi
  scan_pid=
  expect_eq "${seen[0]}" 1 "$name: host observations in the CMDB while the scan ran"
  expect_eq "${seen[1]}" 1 "$name: port observations in the CMDB while the scan ran"
  expect_eq "${seen[2]}" 1 "$name: service observations (named services) in the CMDB while the scan ran"
  expect_eq "${seen[3]}" 1 "$name: host CIs seen by the run while it ran"
  expect_eq "${seen[4]}" 1 "$name: service CIs seen by the run while it ran"
  expect_eq "$(cmdb_sql "SELECT complete FROM cmdb.scan_run ORDER BY id DESC LIMIT 1")" t \
    "$name: the run ended complete"
  if "$PY" "$CHECK" "$LAB_TRUTH" "$home/run" "$excl" >"$out" 2>&1; then
    ok
  else
    bad "$name: the CMDB differs from the lab's ground truth: $(cat "$out")"
  fi
}

# 1. connect() mode, empty CMDB
stream_scan connect --connect

# 2. raw SYN scan, a5 behind a SYN proxy (as in discover_e2e_synproxy)
"$LAB_SH" synproxy a5
a5=$("$PY" -c '
import json, sys
print(next(h["ip"] for h in json.load(open(sys.argv[1]))["hosts"] if h["name"] == "a5"))' "$LAB_TRUTH")
stream_scan syn
run_id=$(cmdb_sql "SELECT max(id) FROM cmdb.scan_run")
expect_eq "$(cmdb_sql "SELECT count(*) FROM cmdb.observation WHERE run = $run_id AND kind = 'host'
  AND body ->> 'ip' = '$a5' AND (body ->> 'syn_proxy')::boolean")" 1 "a5's last host line says syn_proxy"
expect_eq "$(cmdb_sql "SELECT count(*) FROM cmdb.observation WHERE run = $run_id AND kind IN ('port', 'service')
  AND body ->> 'ip' = '$a5'")" 0 "no port or service line of the SYN proxy, ever"
expect_eq "$(cmdb_sql "WITH h AS (
    SELECT coalesce(f.source_id, a.source_id) AS host FROM cmdb.ci_identity i
      JOIN cmdb.rel a ON a.target_id = i.ci_id AND a.type = 'has_address' AND upper_inf(a.valid)
      LEFT JOIN cmdb.rel f ON f.target_id = a.source_id AND f.type = 'has_interface' AND upper_inf(f.valid)
     WHERE i.kind = 'ip' AND i.value = '$a5' AND upper_inf(i.valid))
  SELECT count(*) FROM cmdb.rel p JOIN h ON p.source_id = h.host
   WHERE p.type = 'provides' AND upper_inf(p.valid)")" 0 "no service CI of the SYN proxy"
finish
