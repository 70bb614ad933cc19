# Ingest and reconciliation through the cmdb command, on a real PostgreSQL.
. "$(dirname "$0")/../cli/lib.sh"
gen="$(dirname "$0")/gen_obs.py"
work=$(mktemp -d)
trap 'rm -rf "$work" "$out" "$err"' EXIT
cli_db cli_ingest

at=2026-11-21T07:00:00.000Z
obs() { printf '{"v":1,"scan_id":"%s","at":"%s",%s}\n' "$1" "$at" "$2"; }

# --- hostile and malformed lines: each rejected with its number, the rest ingested
{
  obs h1 '"kind":"scan","targets":["198.18.9.0/24"]'
  obs h1 '"kind":"host","ip":"198.18.9.1","mac":"00:1b:21:00:09:01"'
  echo 'not json at all'
  printf '{"v":1,"kind":"host","scan_id":"h1","at":"%s","ip":"198.18.9.2","hostname":"a\\u0000b"}\n' "$at"
  obs h1 '"kind":"host","ip":"198.18.9.3","hostname":"x'"'"'); DROP TABLE cmdb.ci; --"'
  obs h1 '"kind":"port","ip":"198.18.9.1","proto":"tcp","port":70000,"state":"open"'
  obs h1 '"kind":"port","ip":"198.18.9.1","proto":"tcp","state":"open"'
  obs h1 '"kind":"teleport","ip":"198.18.9.1"'
  printf '{"v":1,"kind":"host","scan_id":"h1","at":"%s","ip":"198.18.9.4","vendor":"\xff\xfe"}\n' "$at"
  obs h1 "\"kind\":\"service\",\"ip\":\"198.18.9.1\",\"proto\":\"tcp\",\"port\":80,\"service\":\"http\",\"banner\":\"$(head -c 300000 /dev/zero | tr '\0' A)\""
  obs h1 '"kind":"service","ip":"198.18.9.1","proto":"tcp","port":22,"service":"ssh","banner":"SSH-2.0-x\r\n\t\u001b[0m \" quotes \\ backslash"'
  printf '{"v":1,"kind":"host","scan_id":"h1","at":"%s","ip":"198.18.9.5"}\0garbage\n' "$at"
  obs h1 '"kind":"host","ip":"198.18.9.6","ip":"198.18.9.7"'
} >"$work/hostile.ndjson"
expect 1 ingest "$work/hostile.ndjson"
expect_err 'line 3: rejected: not valid JSON'
expect_err 'line 4: rejected: not valid JSON.*(NUL|\\u0000)'
expect_err 'line 6: rejected: field "port" is 70000, outside 0..65535'
expect_err 'line 7: rejected: missing field "port"'
expect_err 'line 8: rejected: unknown kind "teleport"'
expect_err 'line 9: rejected: not valid JSON: unable to decode byte 0xff'
expect_err 'line 10: rejected: line is [0-9]+ bytes long; the limit is 262144'
expect_err 'line 12: rejected: line contains a NUL byte'
expect_err 'line 13: rejected: not valid JSON.*duplicate'
expect_err '4 observations ingested, 9 rejected'
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE type = 'host'")" 2 "two valid hosts"
expect_eq "$(sql "SELECT name FROM cmdb.ci WHERE name LIKE 'x''%'")" "x'); DROP TABLE cmdb.ci; --" "hostile hostname stored byte-exact"
expect_eq "$(sql "SELECT attributes->>'banner' FROM cmdb.ci WHERE type = 'service' AND attributes->>'port' = '22'")" \
  "$(printf 'SSH-2.0-x\r\n\t\033[0m " quotes \\ backslash')" "banner stored exact"

# --- a clean scan, then the same again: nothing changes, no history
python3 "$gen" 20 3 run-a --hour 1 >"$work/a.ndjson"
expect 0 ingest "$work/a.ndjson" --json
expect_out '"created": 120'   # 20 addresses, interfaces and hosts, 60 services
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE type = 'service' AND attributes->>'service' IS NOT NULL")" 61 "services with names"
hist=$(sql "SELECT count(*) FROM cmdb.history")
expect 0 ingest "$work/a.ndjson" --json
expect_out '"created": 0'; expect_out '"updated": 0'; expect_out '"unchanged": 120'
expect_eq "$(sql "SELECT count(*) FROM cmdb.history")" "$hist" "unchanged re-scan writes no history"
expect_eq "$(sql "SELECT count(*) FROM (SELECT kind, value FROM cmdb.ci_identity WHERE upper_inf(valid) GROUP BY 1, 2 HAVING count(*) > 1) d")" 0 "no identity held twice"
expect_eq "$(sql "SELECT count(*) FROM cmdb.rel WHERE type = 'provides' AND upper_inf(valid)")" 61 "host provides service"
expect_eq "$(sql "SELECT count(*) FROM cmdb.rel WHERE type = 'has_interface' AND upper_inf(valid)")" 21 "host has interface"

# --- dry run: reports, writes nothing
python3 "$gen" 2 1 run-dry --first 500 --hour 2 >"$work/dry.ndjson"
before=$(state)
expect 0 ingest "$work/dry.ndjson" --dry-run
expect_out '^would create host 198.18.1.244'; expect_out '^would create service'
expect_eq "$(state)" "$before" "dry run writes nothing"
expect_eq "$(sql "SELECT count(*) FROM cmdb.scan_run WHERE scan_id = 'run-dry'")" 0 "dry run records no scan"

# --- priority: a manual value stands against the scanner, and why says so
svc=$(sql "SELECT min(id) FROM cmdb.ci WHERE type = 'service' AND attributes->>'product' = 'prod0'")
expect 0 ci set "$svc" -a product=hand-checked
expect 0 ingest "$work/a.ndjson"
expect_eq "$(sql "SELECT attributes->>'product' FROM cmdb.ci WHERE id = $svc")" hand-checked "manual outranks scanner"
expect 0 ci why "$svc" product
expect_out '^cli +100 +"hand-checked" .* yes +highest priority'
expect_out '^discover +20 .* no +lower priority than cli'
expect 0 source set discover --priority 150
python3 "$gen" 20 3 run-b --hour 3 >"$work/b.ndjson"
expect 0 ingest "$work/b.ndjson"
expect_eq "$(sql "SELECT attributes->>'product' FROM cmdb.ci WHERE id = $svc")" prod0 "a source raised above manual wins"
expect 0 source set discover --priority 20
expect 0 source list --json; expect_out '"name": "discover"'

# --- every attribute keeps its own time and run: a statement that does not
# restate one (a service line without its banner) leaves that one's as it was
{
  printf '{"v":1,"scan_id":"t1","at":"2026-11-21T10:00:00.000Z","kind":"service","ip":"198.18.11.1","proto":"tcp","port":25,"service":"smtp","banner":"220 mx ESMTP"}\n'
} >"$work/t1.ndjson"
{
  printf '{"v":1,"scan_id":"t2","at":"2026-11-21T11:00:00.000Z","kind":"service","ip":"198.18.11.1","proto":"tcp","port":25,"service":"smtp","product":"Postfix"}\n'
} >"$work/t2.ndjson"
expect 0 ingest "$work/t1.ndjson"
expect 0 ingest "$work/t2.ndjson"
mx=$(sql "SELECT id FROM cmdb.ci WHERE type = 'service' AND name LIKE '198.18.11.1:25/tcp'")
expect 0 ci why "$mx" banner --json
expect_out '"observed_at": "2026-11-21T10:00:00(\.0+)?Z"'; expect_out '"scan_id": "t1"'
expect 0 ci why "$mx" product --json
expect_out '"observed_at": "2026-11-21T11:00:00(\.0+)?Z"'; expect_out '"scan_id": "t2"'
expect_eq "$(sql "SELECT attributes->>'banner' || '/' || (attributes->>'product') FROM cmdb.ci WHERE id = $mx")" \
  "220 mx ESMTP/Postfix" "both statements' attributes"
expect_eq "$(sql "SELECT count(*) FROM cmdb.claim WHERE ci_id = $mx")" 1 "one claim row for the CI and source"
expect_eq "$(sql "SELECT string_agg(k, ',') FROM cmdb.claim c, jsonb_object_keys(c.earlier) k WHERE c.ci_id = $mx")" \
  banner "only the banner keeps an earlier time"
# the older statement ingested again moves nothing back
expect 0 ingest "$work/t1.ndjson"
expect 0 ci why "$mx" product --json; expect_out '"observed_at": "2026-11-21T11:00:00(\.0+)?Z"'
expect 0 ci why "$mx" service --json; expect_out '"scan_id": "t2"'
# a manual removal is a claim that the attribute is absent, and it wins
expect 0 ci set "$mx" -u banner
expect_eq "$(sql "SELECT attributes ? 'banner' FROM cmdb.ci WHERE id = $mx")" f "banner removed by hand"
expect 0 ci why "$mx" banner
expect_out '^cli +100 +2026-[^ ]+Z +yes +highest priority'
expect 0 ingest "$work/t1.ndjson"
expect_eq "$(sql "SELECT attributes ? 'banner' FROM cmdb.ci WHERE id = $mx")" f "the scanner does not bring it back"
# the view and the fold are each other's inverse (006 migrated the claims
# of before through claim_fold): every claim row, earlier times and absent
# attributes included, is the fold of its own attributes as the view shows them
expect_eq "$(sql "SELECT count(*) FILTER (WHERE f IS DISTINCT FROM c), count(*) FILTER (WHERE c.earlier <> '{}') > 0,
  count(*) FILTER (WHERE c.absent <> '{}') > 0
  FROM cmdb.claim c CROSS JOIN LATERAL cmdb.claim_fold(c.ci_id, c.source, ARRAY(
    SELECT ROW(a.attr, a.value, a.observed_at, a.run)::cmdb.claim_attr FROM cmdb.attr_claim a
     WHERE a.ci_id = c.ci_id AND a.source = c.source)) f" | tr '|' ' ')" "0 t t" "claim rows round-trip through the view"

# --- missing: a complete scan marks what it did not see; an incomplete one marks nothing
python3 "$gen" 15 3 run-c-incomplete --incomplete --hour 4 >"$work/c1.ndjson"
expect 0 ingest "$work/c1.ndjson" --json; expect_out '"missing": 0'
python3 "$gen" 15 3 run-c --hour 5 >"$work/c2.ndjson"
# in scope and not seen since the scan started: 5 generated hosts, their interfaces, addresses
# and 15 services (the hostile file's CIs were seen later, at 07:00, so they are not missing)
expect 0 ingest "$work/c2.ndjson" --json; expect_out '"missing": 30'
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE attributes ? 'missing'")" 30 "hosts, interfaces, addresses and services missing"
expect_eq "$(sql "SELECT string_agg(type || ':' || n, ' ' ORDER BY type) FROM (SELECT type, count(*) n FROM cmdb.ci
  WHERE attributes ? 'missing' GROUP BY type) x")" "host:5 ip_address:5 network_interface:5 service:15" "missing by type"
expect_eq "$(sql "SELECT count(*) FROM cmdb.history WHERE field = 'attributes.missing'")" 30 "missing is recorded in history"
expect 0 ci list --missing --json; expect_eq "$(grep -c '"id"' "$out")" 30 "ci list --missing"
stale=$(sql "SELECT count(*) FROM cmdb.ci WHERE type = 'ip_address' AND last_seen < now() - interval '1 hour'")
expect 0 ci list --stale '1 hour' --type ip_address --json; expect_eq "$(grep -c '"id"' "$out")" "$stale" "ci list --stale"
expect 2 ci list --stale; expect 1 ci list --stale soon; expect_err 'invalid --stale duration "soon"'
expect 1 ci list --stale '-2 days'; expect_err 'positive duration'
python3 "$gen" 20 3 run-a2 --hour 6 >"$work/a2.ndjson"
expect 0 ingest "$work/a2.ndjson"   # seen again: no longer missing
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE attributes ? 'missing' AND name LIKE '198.18.0.%'")" 0 "seen again"
expect 0 scans --json; expect_out '"scan_id": "run-c"'; expect_out '"complete": false'

# --- junk identifiers identify nothing
{
  obs j1 '"kind":"host","ip":"198.18.10.1","mac":"00:00:00:00:00:00"'
  obs j1 '"kind":"host","ip":"198.18.10.2","mac":"ff:ff:ff:ff:ff:ff"'
  obs j1 '"kind":"host","ip":"198.18.10.3","mac":"01:00:5e:00:00:01"'
} >"$work/junk.ndjson"
expect 0 ingest "$work/junk.ndjson"
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci_identity WHERE kind = 'mac' AND value IN ('00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01')")" 0 "junk MACs are no identity"
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE type = 'host' AND name LIKE '198.18.10.%'")" 3 "three hosts"

# --- four ingesters at once over overlapping networks: no duplicate, nothing lost
for i in 0 1 2 3; do python3 "$gen" 60 2 conc-$i --first $((1000 + i * 30)) --hour 8 >"$work/conc$i.ndjson"; done
for i in 0 1 2 3; do "$CMDB" ingest "$work/conc$i.ndjson" --batch 50 -q >"$work/conc$i.out" 2>&1 & done
fails=0; for i in 0 1 2 3; do wait %$((i + 1)) || fails=$((fails + 1)); done
expect_eq "$fails" 0 "concurrent ingests succeed: $(cat "$work"/conc*.out)"
expect_eq "$(sql "SELECT count(*) FROM (SELECT kind, value FROM cmdb.ci_identity WHERE upper_inf(valid) GROUP BY 1, 2 HAVING count(*) > 1) d")" 0 "no identity held twice"
expect_eq "$(sql "SELECT count(DISTINCT i.value) FROM cmdb.ci_identity i WHERE i.kind = 'ip' AND i.value LIKE '198.18.%' AND split_part(i.value, '.', 3)::int BETWEEN 3 AND 5")" 150 "every address of 1000..1149 recorded once"
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci c WHERE c.type = 'ip_address' AND NOT EXISTS (SELECT FROM cmdb.ci_identity i WHERE i.ci_id = c.id)")" 0 "no CI without its identity"

# --- kill -9 mid-ingest: whole batches only; the same ingest again completes it
python3 "$gen" 3000 2 big-kill --first 4000 --hour 9 >"$work/big.ndjson"
"$CMDB" ingest "$work/big.ndjson" --batch 500 -q >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  [ "$(sql "SELECT coalesce(sum(observations), 0) FROM cmdb.scan_run WHERE scan_id = 'big-kill'")" -gt 0 ] && break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
n=$(sql "SELECT observations FROM cmdb.scan_run WHERE scan_id = 'big-kill'")
expect_eq "$(( n % 500 == 0 || n == 0 ))" 1 "killed ingest kept whole batches only ($n observations)"
expect_eq "$(sql "SELECT complete FROM cmdb.scan_run WHERE scan_id = 'big-kill'")" f "the killed run is incomplete"
expect 0 audit chain
expect 0 ingest "$work/big.ndjson" --batch 500
expect_eq "$(sql "SELECT complete FROM cmdb.scan_run WHERE scan_id = 'big-kill'")" t "run again: complete"
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci c JOIN cmdb.ci_identity i ON i.ci_id = c.id AND i.kind = 'mac' WHERE i.value LIKE '00:1b:21:00:%' AND ('x' || replace(substr(i.value, 13), ':', ''))::bit(16)::int BETWEEN 4000 AND 6999")" 3000 "every interface there once"
# A host line and its port and service lines in different batches: the
# address stays on the host's interface (it used to be re-pointed to the
# host by the batch without the MAC, and back again by every re-ingest).
python3 "$gen" 30 4 split --first 60000 --hour 11 --no-end >"$work/split.ndjson"
expect 0 ingest "$work/split.ndjson" --batch 7
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci_identity i
  JOIN cmdb.rel a ON a.target_id = i.ci_id AND a.type = 'has_address' AND upper_inf(a.valid)
  JOIN cmdb.ci f ON f.id = a.source_id AND f.type = 'network_interface'
  WHERE i.kind = 'ip' AND upper_inf(i.valid)
    AND split_part(i.value, '%', 1)::inet BETWEEN '198.18.234.96' AND '198.18.234.125'")" 30 \
  "every address split from its host line is on the host's interface"
hist=$(sql "SELECT count(*) FROM cmdb.history")
expect 0 ingest "$work/split.ndjson" --batch 7
expect_eq "$(sql "SELECT count(*) FROM cmdb.history")" "$hist" "re-ingest across batch boundaries writes no history"

# A complete scan that sees those hosts without their MACs (port and service
# lines only, as from beyond a router): hosts seen, so neither they nor their
# interfaces are missing.
python3 "$gen" 30 4 split-routed --first 60000 --hour 12 | python3 -c '
import json, sys
for line in sys.stdin:
    o = json.loads(line)
    if o["kind"] == "host":
        continue
    if o["kind"] == "scan":
        o["scope"] = ["198.18.234.96/27"]
    print(json.dumps(o, separators=(",", ":")))' >"$work/routed.ndjson"
expect 0 ingest "$work/routed.ndjson" --json; expect_out '"missing": 0'
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE attributes ? 'missing' AND name LIKE '198.18.234.%'")" 0 \
  "a host seen without its MAC: neither it nor its interface is missing"

# A SYN proxy (005): a complete scan whose host line of 198.18.234.96 says
# syn_proxy, and which therefore has none of its port lines, leaves that
# host's services alone; the same scan without syn_proxy marks exactly them
# missing, and a scan that sees them again clears the marks.
proxy_scan() { # SCAN_ID HOUR SYN_PROXY(true|false)
  python3 "$gen" 30 4 "$1" --first 60000 --hour "$2" | python3 -c '
import json, sys
proxy = sys.argv[1] == "true"
for line in sys.stdin:
    o = json.loads(line)
    if o["kind"] == "scan":
        o["scope"] = ["198.18.234.96/27"]
    if o.get("ip") == "198.18.234.96":
        if o["kind"] != "host":
            continue
        if proxy:
            o["syn_proxy"], o["open_ports_suppressed"] = True, 1000
    print(json.dumps(o, separators=(",", ":")))' "$3" >"$work/$1.ndjson"
}
svc96="SELECT count(*) FROM cmdb.ci c JOIN cmdb.ci_identity i ON i.ci_id = c.id AND i.kind = 'endpoint'
  AND upper_inf(i.valid) WHERE c.type = 'service' AND c.attributes ? 'missing'
  AND split_part(i.value, '/', 1)::bigint = (SELECT r.source_id FROM cmdb.ci_identity m
    JOIN cmdb.rel r ON r.target_id = m.ci_id AND r.type = 'has_interface' AND upper_inf(r.valid)
    WHERE m.kind = 'mac' AND m.value = '00:1b:21:00:ea:60' AND upper_inf(m.valid))"
proxy_scan proxy-1 13 true
expect 0 ingest "$work/proxy-1.ndjson" --json; expect_out '"missing": 0'
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE attributes ? 'missing' AND name LIKE '198.18.234.%'")" 0 \
  "a SYN proxy's services are not missing"
proxy_scan proxy-2 14 false
expect 0 ingest "$work/proxy-2.ndjson" --json; expect_out '"missing": 4'
expect_eq "$(sql "$svc96")" 4 "the same host's services, not seen and no proxy, are missing"
python3 "$gen" 30 4 proxy-3 --first 60000 --hour 15 | sed 's#"scope":\["198.18.0.0/15"\]#"scope":["198.18.234.96/27"]#' \
  >"$work/proxy-3.ndjson"
expect 0 ingest "$work/proxy-3.ndjson" --json; expect_out '"missing": 0'
expect_eq "$(sql "$svc96")" 0 "seen again: no longer missing"
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE attributes ? 'missing_since' AND NOT attributes ? 'missing'")" 0 \
  "seen again: missing_since goes with missing (005)"

# 004: the evidence tables' references are checked per statement (no
# foreign keys): claims and observations that point at nothing are refused,
# and what they point at can be neither deleted nor re-keyed.
sql_refused() { # SQL PATTERN WHAT
  local msg
  if msg=$(psql -X -At -v ON_ERROR_STOP=1 "$CMDB_DB" -c "$1" 2>&1); then
    bad "$3: accepted"
  elif grep -qE -- "$2" <<<"$msg"; then ok; else bad "$3: [$msg] lacks /$2/"; fi
}
before=$(state)
sql_refused "INSERT INTO cmdb.claim (ci_id, source, attrs, observed_at) VALUES (999999999, 'manual', '{\"x\": 1}', now())" \
  "attribute claim for CI 999999999, which does not exist" "claim of a CI that does not exist"
sql_refused "INSERT INTO cmdb.claim (ci_id, source, attrs, observed_at) SELECT min(id), 'nosuchsource', '{\"x\": 1}', now() FROM cmdb.ci" \
  'source "nosuchsource", which is not registered' "claim of an unregistered source"
sql_refused "UPDATE cmdb.claim SET run = 999999 WHERE ci_id = (SELECT min(ci_id) FROM cmdb.claim)" \
  "scan run 999999, which does not exist" "claim moved to a scan run that does not exist"
sql_refused "UPDATE cmdb.claim SET ci_id = 999999999 WHERE ci_id = (SELECT min(ci_id) FROM cmdb.claim)" \
  "a claim stays with its CI and source" "claim moved to another CI"
sql_refused "INSERT INTO cmdb.observation (run, line, kind, at, body) VALUES (999999, 1, 'host', now(), '{}')" \
  "observation of scan run 999999, which does not exist" "observation of a scan run that does not exist"
sql_refused "DELETE FROM cmdb.source WHERE name = 'nmap'" "source rows are never deleted" "a source deleted"
sql_refused "DELETE FROM cmdb.scan_run" "scan_run rows are never deleted" "a scan run deleted"
sql_refused "UPDATE cmdb.source SET name = 'renamed' WHERE name = 'nmap'" "the key of a source row never changes" "a source renamed"
sql_refused "UPDATE cmdb.ci SET id = DEFAULT WHERE id = (SELECT min(id) FROM cmdb.ci)" "the key of a ci row never changes" "a CI re-keyed"
# 005: the same for CIs, identities and relationships
sql_refused "INSERT INTO cmdb.ci (type, name, description) VALUES ('nosuchtype', 'x', 'x')" \
  'unknown CI type "nosuchtype"' "a CI of an unknown type"
sql_refused "INSERT INTO cmdb.ci (type, name, description, status) VALUES ('host', 'x', 'x', 'gone')" \
  'unknown status "gone"' "a CI with an unknown status"
sql_refused "UPDATE cmdb.ci SET criticality = 'extreme' WHERE id = (SELECT min(id) FROM cmdb.ci)" \
  'unknown criticality "extreme"' "a CI given an unknown criticality"
sql_refused "UPDATE cmdb.ci SET type = 'nosuchtype' WHERE id = (SELECT min(id) FROM cmdb.ci)" \
  'unknown CI type "nosuchtype"' "a CI given an unknown type"
sql_refused "INSERT INTO cmdb.ci_identity (ci_id, kind, value) VALUES (999999999, 'serial', 'S-404')" \
  "identity for CI 999999999, which does not exist" "an identity of a CI that does not exist"
sql_refused "INSERT INTO cmdb.rel (type, source_id, target_id) SELECT 'depends_on', min(id), 999999999 FROM cmdb.ci" \
  "relationship with CI 999999999, which does not exist" "a relationship to a CI that does not exist"
sql_refused "INSERT INTO cmdb.rel (type, source_id, target_id) SELECT 'nosuchrel', min(id), max(id) FROM cmdb.ci" \
  'unknown relationship type "nosuchrel"' "a relationship of an unknown type"
sql_refused "DELETE FROM cmdb.rel_type WHERE name = 'connects_to'" "rel_type rows are never deleted" "a relationship type deleted"
sql_refused "UPDATE cmdb.rel_type SET name = 'linked' WHERE name = 'connects_to'" "the key of a rel_type row never changes" \
  "a relationship type renamed"
sql_refused "DELETE FROM cmdb.ci_status WHERE name = 'disposed'" "ci_status rows are never deleted" "a status deleted"
sql_refused "UPDATE cmdb.criticality SET name = 'urgent' WHERE name = 'critical'" "the key of a criticality row never changes" \
  "a criticality renamed"
expect_eq "$(state)" "$before" "refused writes change nothing"

# 005: a relationship and an identity made and ended in one transaction
# (their ranges end up empty) are ended like any other, with history
ha=$(sql "SELECT min(id) FROM cmdb.ci WHERE type = 'host'"); hb=$(sql "SELECT max(id) FROM cmdb.ci WHERE type = 'host'")
if msg=$(psql -X -q -v ON_ERROR_STOP=1 "$CMDB_DB" -c "BEGIN" -c "SELECT cmdb.rel_add($ha, 'depends_on', $hb, '{}')" \
          -c "SELECT cmdb.rel_rm($ha, 'depends_on', $hb)" -c "SELECT cmdb.identity_add($ha, 'serial', 'SAME-TX-1')" \
          -c "SELECT cmdb.identity_remove($ha, 'serial', 'SAME-TX-1')" -c "COMMIT" 2>&1); then ok
else bad "made and ended in one transaction: $msg"; fi
expect_eq "$(sql "SELECT string_agg(op, ' ' ORDER BY id) FROM cmdb.history WHERE ci_id = $ha AND (field = 'depends_on' OR field = 'serial')")" \
  "relate unrelate identity_add identity_remove" "their history"
expect_eq "$(sql "SELECT count(*) FROM cmdb.rel WHERE source_id = $ha AND type = 'depends_on' AND upper_inf(valid)")" 0 "no current relationship left"
# 005: settings are checked, and every ingest applies the evidence retention
expect 0 settings list --json; expect_out '"observation_retention"'; expect_out '"90 days"'
expect 1 settings set observation_retention forever; expect_err 'must be a duration such as "90 days"'
expect 1 settings set observation_retention '0 seconds'; expect_err 'longer than 0'
expect 1 settings set observation_retention -- '-1 day'; expect_err 'longer than 0'
expect 1 settings set nosuch 1; expect_err 'unknown setting "nosuch"'
expect 2 settings set observation_retention
expect 1 settings set ip_scope site-b; expect_err 'ip_scope can only change before the first address is recorded'
expect 1 settings set ip_scope 'bad scope!'; expect_err 'ip_scope must be empty or up to 64'
expect_eq "$(sql "SELECT value FROM cmdb.setting WHERE name = 'ip_scope'")" "" "refused settings change nothing"
expect 0 settings set observation_retention '1 second'
sleep 1.2
python3 "$gen" 3 1 retention-1 --first 61000 --hour 16 >"$work/retention.ndjson"
expect 0 ingest "$work/retention.ndjson" --json
purged=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["purged"])' "$out")
if [ "$purged" -gt 0 ]; then ok; else bad "nothing purged with a 1 second retention ($purged)"; fi
last_run=$(sql "SELECT max(id) FROM cmdb.scan_run")
expect_eq "$(sql "SELECT count(*) FROM cmdb.observation WHERE run < $last_run")" 0 "older runs' evidence removed"
expect_eq "$(sql "SELECT count(*) > 5 FROM cmdb.scan_run WHERE id < $last_run")" t "scan runs stay, only their evidence goes"
expect 0 settings set observation_retention '90 days'
# ... and who changed a setting or a source's priority, when, is in the history
expect_eq "$(sql "SELECT string_agg(old ->> 'value' || ' -> ' || (new ->> 'value'), ', ' ORDER BY id) FROM cmdb.history
                  WHERE entity = 'setting' AND field = 'observation_retention'")" \
  "90 days -> 1 second, 1 second -> 90 days" "setting changes recorded (refused ones not)"
nmap_prio=$(sql "SELECT priority FROM cmdb.source WHERE name = 'nmap'")
expect 0 source set nmap --priority 55
expect_eq "$(sql "SELECT (old ->> 'priority') || ' -> ' || (new ->> 'priority') FROM cmdb.history
                  WHERE entity = 'source' AND field = 'nmap' AND op = 'update' ORDER BY id DESC LIMIT 1")" \
  "$nmap_prio -> 55" "a source's priority change recorded"
expect 0 audit chain
finish
