#!/usr/bin/env bash
# End-to-end: `cmdb scan` of the namespace lab into a private embedded CMDB
# gives the lab's ground truth (one host CI per live host, its interface and
# MAC, its address, one service CI per open port, related correctly); a
# second scan writes no history; an nmap scan of the same lab (Debian's
# nmap, XML) imported with `cmdb import nmap` lands on the same CIs: no new
# host, interface, address or service.
#
# The scanners run inside the lab's scanner namespace (no default route);
# the CMDB's server stays in the root namespace, reached through its Unix
# socket, which namespaces do not separate. Exit 77 (skip) without root or
# network namespaces.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lab_env.sh"
lab_env scan_lab
command -v nmap >/dev/null || { echo "scan_lab: nmap is missing: run tools/deps.sh"; exit 1; }

lab_up lab i

# The ports: every open port of the truth, plus a few that are closed
# everywhere. The router's second address (on subnet B) is left out: a scan
# cannot tell that it belongs to the router, so it would be a second host.
ports=$("$PY" -c '
import json, sys
t = json.load(open(sys.argv[1]))
ps = {p["port"] for h in t["hosts"] for p in h["ports"]} | {1, 7, 9}
print(",".join(str(p) for p in sorted(ps)))' "$LAB_TRUTH")
lab_targets

expect 0 init -q
cmdb_sql() { psql "host=$home/run dbname=cmdb user=cmdb" -XAtq -c "$1"; }

# 1. cmdb scan gives the ground truth
if sc "$CMDB" scan "${subnets[@]}" --exclude "$excl" -p "$ports" --wait 0.5 --retries 2 -q >"$out" 2>"$err"; then
  ok "cmdb scan of the lab"
else
  bad "cmdb scan of the lab exited $?: $(head -c 600 "$err")"
fi
if "$PY" "$CHECK" "$LAB_TRUTH" "$home/run" "$excl" >"$out" 2>&1; then
  ok "the CMDB holds the lab's ground truth ($(tail -n 1 "$out"))"
else
  bad "the CMDB differs from the lab's ground truth:"
  sed 's/^/    /' "$out"
fi
snapshot() {
  cmdb_sql "SELECT type, count(*) FROM cmdb.ci GROUP BY type ORDER BY type" | tr '\n' ' '
}
before=$(snapshot)
hist=$(cmdb_sql "SELECT count(*) FROM cmdb.history")
host_ids=$(cmdb_sql "SELECT string_agg(i.value || '>' || h.ci_id, ' ' ORDER BY i.value)
  FROM cmdb.ci_identity i JOIN cmdb.rel a ON a.target_id = i.ci_id AND a.type = 'has_address' AND upper_inf(a.valid)
  LEFT JOIN cmdb.rel f ON f.target_id = a.source_id AND f.type = 'has_interface' AND upper_inf(f.valid)
  CROSS JOIN LATERAL (SELECT coalesce(f.source_id, a.source_id) AS ci_id) h
  WHERE i.kind = 'ip' AND upper_inf(i.valid)")

# 2. the same scan again changes nothing but sightings
if sc "$CMDB" scan "${subnets[@]}" --exclude "$excl" -p "$ports" --wait 0.5 --retries 2 -q >"$out" 2>"$err"; then
  ok "second cmdb scan"
else
  bad "second cmdb scan exited $?: $(head -c 600 "$err")"
fi
expect_eq "$(cmdb_sql "SELECT count(*) FROM cmdb.history")" "$hist" "an unchanged re-scan writes no history"
expect_eq "$(snapshot)" "$before" "an unchanged re-scan creates no CI"
expect_eq "$(cmdb_sql "SELECT count(*) FROM cmdb.ci WHERE attributes ? 'missing'")" 0 "nothing marked missing"

# 3. nmap's scan of the same lab, imported, lands on the same CIs
xml=$home/nmap.xml
if sc nmap -n -sS -p "$ports" --max-retries 2 --exclude "$excl" -oX "$xml" "${subnets[@]}" >"$out" 2>"$err"; then
  ok "nmap scan of the lab"
else
  bad "nmap exited $?: $(head -c 600 "$err")"
fi
expect 0 import nmap "$xml"
expect_eq "$(snapshot)" "$before" "nmap's import creates no CI: same hosts, interfaces, addresses, services"
expect_eq "$(cmdb_sql "SELECT string_agg(i.value || '>' || h.ci_id, ' ' ORDER BY i.value)
  FROM cmdb.ci_identity i JOIN cmdb.rel a ON a.target_id = i.ci_id AND a.type = 'has_address' AND upper_inf(a.valid)
  LEFT JOIN cmdb.rel f ON f.target_id = a.source_id AND f.type = 'has_interface' AND upper_inf(f.valid)
  CROSS JOIN LATERAL (SELECT coalesce(f.source_id, a.source_id) AS ci_id) h
  WHERE i.kind = 'ip' AND upper_inf(i.valid)")" "$host_ids" "every address still belongs to the same host CI"
if "$PY" "$CHECK" "$LAB_TRUTH" "$home/run" "$excl" >"$out" 2>&1; then
  ok "still the ground truth after the nmap import"
else
  bad "the nmap import moved the CMDB away from the ground truth:"
  sed 's/^/    /' "$out"
fi
expect_eq "$(cmdb_sql "SELECT count(DISTINCT source) FROM cmdb.attr_claim WHERE source IN ('discover', 'nmap')")" 2 \
  "both sources' claims are kept (provenance)"
finish
