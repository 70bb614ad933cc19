#!/usr/bin/env bash
# End-to-end: `cmdb scan -sn` (host discovery only) of the namespace lab into
# a private embedded CMDB that a full scan filled first. A ping scan says
# nothing about ports: it creates no CI (the hosts, interfaces and addresses
# are there), marks no service missing, not even the services of a host that
# went down; that host, its interface and its address are marked missing,
# because the -sn scan line's scope covers them (docs/observations.md).
#
# The host is taken down by setting its link down inside its own lab
# namespace. The scanners run inside the lab's scanner namespace; exit 77
# (skip) without root or network namespaces.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lab_env.sh"
lab_env scan_sn

lab_up sn n

# every open port of the truth; the router's far address left out (as in
# test_scan_lab.sh: a scan cannot tell it belongs to the router)
ports=$("$PY" -c '
import json, sys
t = json.load(open(sys.argv[1]))
print(",".join(str(p) for p in sorted({p["port"] for h in t["hosts"] for p in h["ports"]})))' "$LAB_TRUTH")
lab_targets
down_ip=198.18.1.13 # a3, the mail host: six services

expect 0 init -q
cmdb_sql() { psql "host=$home/run dbname=cmdb user=cmdb" -XAtq -c "$1"; }
by_type() {
  cmdb_sql "SELECT string_agg(type || ':' || n, ' ' ORDER BY type) FROM
    (SELECT type, count(*) n FROM cmdb.ci WHERE $1 GROUP BY type) x"
}

# 1. a full scan (ports, no service detection: the port lines make the service CIs)
if sc "$CMDB" scan "${subnets[@]}" --exclude "$excl" -p "$ports" --no-service --wait 0.5 --retries 2 -q >"$out" 2>"$err"; then
  ok "full cmdb scan of the lab"
else
  bad "full cmdb scan exited $?: $(head -c 600 "$err")"
fi
n_svc=$(cmdb_sql "SELECT count(*) FROM cmdb.ci WHERE type = 'service'")
if [ "$n_svc" -gt 10 ]; then ok "the full scan made service CIs ($n_svc)"; else bad "the full scan made service CIs ($n_svc)"; fi
down_svc=$(cmdb_sql "SELECT count(*) FROM cmdb.ci c JOIN cmdb.ci_identity i ON i.ci_id = c.id
  AND i.kind = 'endpoint' AND upper_inf(i.valid) WHERE c.type = 'service'
  AND split_part(i.value, '/', 1)::bigint = (SELECT coalesce(f.source_id, a.source_id)
    FROM cmdb.ci_identity x JOIN cmdb.rel a ON a.target_id = x.ci_id AND a.type = 'has_address' AND upper_inf(a.valid)
    LEFT JOIN cmdb.rel f ON f.target_id = a.source_id AND f.type = 'has_interface' AND upper_inf(f.valid)
    WHERE x.kind = 'ip' AND split_part(x.value, '%', 1) = '$down_ip' AND upper_inf(x.valid))")
if [ "$down_svc" -ge 3 ]; then ok "$down_ip provides services ($down_svc)"; else bad "$down_ip provides services ($down_svc)"; fi
before=$(by_type true)

# 2. a3 goes down; a ping scan of both subnets
"$LAB_SH" exec a3 ip link set eth0 down
if sc "$CMDB" scan "${subnets[@]}" --exclude "$excl" -sn --wait 0.5 --retries 2 -q >"$out" 2>"$err"; then
  ok "cmdb scan -sn of the lab"
else
  bad "cmdb scan -sn exited $?: $(head -c 600 "$err")"
fi
expect_eq "$(cmdb_sql "SELECT ports IS NULL, scope_ports::text, options ->> 'host_discovery_only',
  array_length(scope, 1) > 0 FROM cmdb.scan_run ORDER BY id DESC LIMIT 1")" \
  't|{"tcp": [], "udp": []}|true|t' "the -sn run: no ports, a scope, empty scope_ports"
expect_eq "$(by_type true)" "$before" "-sn creates no CI"
expect_eq "$(by_type "type = 'service' AND attributes ? 'missing'")" "" \
  "no service CI is missing, not even those of the host that is down"
expect_eq "$(by_type "attributes ? 'missing'")" "host:1 ip_address:1 network_interface:1" \
  "the host that did not answer is missing, with its interface and address"
expect_eq "$(cmdb_sql "SELECT split_part(x.value, '%', 1) FROM cmdb.ci c JOIN cmdb.ci_identity x ON x.ci_id = c.id
  AND x.kind = 'ip' AND upper_inf(x.valid) WHERE c.type = 'ip_address' AND c.attributes ? 'missing'")" \
  "$down_ip" "the missing address is $down_ip"
finish
