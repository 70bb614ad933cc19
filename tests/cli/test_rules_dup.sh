# Identification rules (cmdb type rules), reconciliation following them,
# junk identifiers, suspected duplicates (cmdb dup list) and merges
# (cmdb dup merge), through the cmdb command on a real PostgreSQL.
. "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work" "$out" "$err"' EXIT
cli_db cli_rules_dup

at=2026-11-21T07:00:00.000Z
obs() { printf '{"v":1,"scan_id":"%s","at":"%s",%s}\n' "$1" "$at" "$2"; }
# id NAME: the id of the one CI named NAME
id() { sql "SELECT id FROM cmdb.ci WHERE name = '$1'"; }
hid() { sql "SELECT id FROM cmdb.ci WHERE type = 'host' AND name = '$1'"; }
hosts_named() { sql "SELECT count(*) FROM cmdb.ci WHERE type = 'host' AND name = '$1'"; }

for c in "type rules" "dup list" "dup merge"; do
  # shellcheck disable=SC2086
  expect 0 $c -h; expect_out '^Usage: cmdb '"$c"
  expect 0 help $c; expect_out '^Usage: cmdb '"$c"
done
expect 2 dup; expect_err 'Commands of cmdb dup'

# --- listing and editing the rules
expect 0 type rules host
expect_out '^1 +serial +host +serial number'
expect_out '^3 +mac +universal +host'
expect_out '^5 +ip +host'
expect_out '^6 +\* +host +identities of kinds of your own'
expect 0 type rules service --json; expect_out '"kind": "endpoint"'
expect 0 type rules host --csv; expect_out '^position,kind,options,defined_by,matches'
expect 0 type add virtual_machine --parent host -d "a virtual machine"
expect 0 type rules virtual_machine; expect_out '^4 +fqdn +host +host name'   # inherited
hist=$(sql "SELECT count(*) FROM cmdb.history")
expect 0 type rules virtual_machine --move fqdn --at 1 --dry-run
expect_out '^1 +fqdn +virtual_machine'; expect_err 'dry run'
expect_eq "$(sql "SELECT count(*) FROM cmdb.history")" "$hist" "a dry-run edit writes nothing"
expect 0 type rules virtual_machine; expect_out '^1 +serial +host'
expect 0 type rules virtual_machine --add asset --at 2 --change CHG-42
expect_out '^2 +asset +virtual_machine +identity asset'; expect_out '^3 +uuid'
expect_eq "$(sql "SELECT change_ref || ' ' || (new -> 'rules' ->> 1) FROM cmdb.history WHERE op = 'rules'")" \
  "CHG-42 asset" "a rule edit is recorded in history with its change reference"
expect 0 type rules virtual_machine --rm serial; expect_no_out 'serial'
expect 0 type rules host --json; expect_out '"kind": "serial"'   # the parent keeps its own
expect 0 type rules virtual_machine --reset; expect_out '^1 +serial +host'
expect_eq "$(sql "SELECT count(*) FROM cmdb.history WHERE op = 'rules'")" 3 "one history row per edit"
expect 0 audit chain

# bad edits: a clear message, exit 1 or 2, nothing changed
before=$(state)
expect 1 type rules spaceship; expect_err 'unknown CI type "spaceship"'
expect 1 type rules host --add serial; expect_err 'already has a rule for serial \(position 1\)'
expect 1 type rules host --rm asset; expect_err 'type host has no rule for asset'
expect 1 type rules host --add 'Bad-Kind'; expect_err 'invalid identity kind "Bad-Kind"'
expect 1 type rules host --add 'asset:universal'; expect_err 'unknown option "universal" for kind asset'
expect 1 type rules host --set serial,uuid,serial; expect_err 'kind serial is listed twice'
expect 1 type rules ip_address --rm ip; expect_err 'type ip_address must keep the rule ip'
expect 1 type rules network_interface --set 'mac:universal,*'; expect_err 'must keep the rule mac'
expect 1 type rules host --add asset --at 9; expect_err 'position 9 is outside 1..7'
expect 2 type rules host --move fqdn; expect_err 'needs --at N'
expect 2 type rules host --rm fqdn --add asset; expect_err 'one edit per command'
expect 2 type rules host --set 'serial,,uuid'; expect_err 'an empty kind'
expect 2 type rules host --dry-run; expect_err '--dry-run goes with an edit'
expect 2 type rules host --at 0; expect_err '--at takes a position'
expect_eq "$(state)" "$before" "refused rule edits change nothing"
sql "DELETE FROM cmdb.ident_rule WHERE type = 'host'" >/dev/null 2>&1
expect_eq "$(sql "SELECT count(*) FROM cmdb.ident_rule WHERE type = 'host'")" 6 "rules change only through the API"

# --- discovered hosts are matched by the host rules, in their order
{
  obs r1 '"kind":"host","ip":"198.18.20.1","hostname":"alpha.example"'
  obs r1 '"kind":"host","ip":"198.18.20.2","mac":"00:1b:21:00:20:02"'
  obs r1 '"kind":"host","ip":"198.18.20.5","mac":"02:00:00:00:20:05"'
} >"$work/r1.ndjson"
expect 0 ingest "$work/r1.ndjson"
h1=$(hid alpha.example); h2=$(hid 198.18.20.2)
# one observation whose MAC says h2 and whose name says h1
obs r2 '"kind":"host","ip":"198.18.20.3","mac":"00:1b:21:00:20:02","hostname":"alpha.example","os":{"family":"Plan9"}' >"$work/r2.ndjson"
expect 0 ingest "$work/r2.ndjson"
expect_eq "$(sql "SELECT string_agg(id || '=' || (attributes->>'os_family'), ' ') FROM cmdb.ci WHERE attributes ? 'os_family'")" \
  "$h2=Plan9" "mac before fqdn: the MAC's host"
expect 0 type rules host --move fqdn --at 1
obs r3 '"kind":"host","ip":"198.18.20.3","mac":"00:1b:21:00:20:02","hostname":"alpha.example","os":{"family":"Inferno"}' >"$work/r3.ndjson"
expect 0 ingest "$work/r3.ndjson"
expect_eq "$(sql "SELECT attributes->>'os_family' FROM cmdb.ci WHERE id = $h1")" Inferno "fqdn first: the name's host"
expect_eq "$(sql "SELECT attributes->>'os_family' FROM cmdb.ci WHERE id = $h2")" Plan9 "the MAC's host untouched"
# without the fqdn rule the name matches nothing: a new host
obs r4 '"kind":"host","ip":"198.18.20.9","hostname":"alpha.example"' >"$work/r4.ndjson"
expect 0 ingest "$work/r4.ndjson" --dry-run; expect_no_out 'would create host'
expect 0 type rules host --rm fqdn
expect 0 ingest "$work/r4.ndjson" --dry-run; expect_out '^would create host alpha.example'
expect 0 ingest "$work/r4.ndjson"
expect_eq "$(hosts_named alpha.example)" 2 "a removed rule no longer matches"
# a locally administered MAC matches only when the rule has no 'universal'
obs r5 '"kind":"host","ip":"198.18.20.6","mac":"02:00:00:00:20:05"' >"$work/r5.ndjson"
expect 0 ingest "$work/r5.ndjson" --dry-run; expect_out '^would create host 198.18.20.6'
expect 0 type rules host --set serial,uuid,mac,fqdn,ip,'*'
expect 0 ingest "$work/r5.ndjson" --dry-run; expect_no_out 'would create host'
expect 0 type rules host --reset; expect_out '^3 +mac +universal'

# --- inventory records are matched by their type's rules, in rule order
printf 'name,identity:serial,identity:uuid\nbox-a,SN-A,\nbox-b,,11111111-2222-3333-4444-555555555555\n' >"$work/base.csv"
expect 0 import csv "$work/base.csv" --type host --json; expect_out '"created": 2'
printf 'name,identity:serial,identity:uuid,note\nwhich,SN-A,11111111-2222-3333-4444-555555555555,%s\n' first >"$work/n1.csv"
expect 0 import csv "$work/n1.csv" --type host
expect_eq "$(sql "SELECT name FROM cmdb.ci WHERE attributes->>'note' = 'first'")" box-a "serial before uuid"
expect 0 type rules host --move uuid --at 1
printf 'name,identity:serial,identity:uuid,note\nwhich,SN-A,11111111-2222-3333-4444-555555555555,%s\n' second >"$work/n2.csv"
expect 0 import csv "$work/n2.csv" --type host
expect_eq "$(sql "SELECT name FROM cmdb.ci WHERE attributes->>'note' = 'second'")" box-b "uuid first"
expect 0 type rules host --rm serial
printf 'name,identity:serial\nbox-c,SN-A\n' >"$work/n3.csv"
expect 0 import csv "$work/n3.csv" --type host --json; expect_out '"created": 1'
expect_err 'identity serial=SN-A is held by CI [0-9]+, not by this one'
# kinds of your own match through '*', and stop when it goes
printf 'name,identity:asset\nbox-d,A-77\n' >"$work/a1.csv"
expect 0 import csv "$work/a1.csv" --type host --json; expect_out '"created": 1'
printf 'name,identity:asset,note\nbox-d-renamed,A-77,%s\n' asset >"$work/a2.csv"
expect 0 import csv "$work/a2.csv" --type host --json; expect_out '"created": 0'
expect_eq "$(sql "SELECT attributes->>'note' FROM cmdb.ci WHERE name = 'box-d'")" asset "matched through *"
expect 0 type rules host --rm '*'
expect 0 import csv "$work/a2.csv" --type host --json; expect_out '"created": 1'
expect 0 type rules host --reset

# --- junk identifiers never match, whatever the rules say
expect 0 type rules host --set serial,uuid,mac,fqdn,ip,'*'
{
  printf 'name,identity:serial,identity:uuid,identity:asset\n'
  printf 'junk-1,To be filled by O.E.M.,00000000-0000-0000-0000-000000000000,None\n'
  printf 'junk-2,Default string,FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF,Not Specified\n'
  printf 'junk-3,0,03000200-0400-0500-0006-000700080009,N/A\n'
  printf 'junk-4,System Serial Number,,0\n'
} >"$work/junk.csv"
expect 0 import csv "$work/junk.csv" --type host --json; expect_out '"created": 4'
expect 0 import csv "$work/junk.csv" --type host --json; expect_out '"created": 0'   # found again by name
sed 's/^junk-/other-/' "$work/junk.csv" >"$work/junk2.csv"
expect 0 import csv "$work/junk2.csv" --type host --json; expect_out '"created": 4'
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci_identity i JOIN cmdb.ci c ON c.id = i.ci_id WHERE c.name LIKE 'junk-%' OR c.name LIKE 'other-%'")" 0 \
  "junk values are no identities"
{
  obs j1 '"kind":"host","ip":"198.18.21.1","hostname":"localhost"'
  obs j1 '"kind":"host","ip":"198.18.21.2","hostname":"localhost.localdomain"'
  obs j1 '"kind":"host","ip":"198.18.21.3","hostname":"LOCALHOST"'
  obs j1 '"kind":"host","ip":"198.18.21.4","mac":"00:00:00:00:00:00"'
  obs j1 '"kind":"host","ip":"198.18.21.5","mac":"00:00:00:00:00:00"'
} >"$work/junk.ndjson"
expect 0 ingest "$work/junk.ndjson" --json; expect_out '"created": 10'   # five addresses, five hosts
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci_identity WHERE kind IN ('fqdn', 'mac') AND value IN ('localhost', 'localhost.localdomain', '00:00:00:00:00:00')")" 0 \
  "junk host names and MACs are no identities"
expect 0 type rules host --reset

# --- suspected duplicates on a constructed set
add() { "$CMDB" ci add "$@" </dev/null; }
k_web=$(add host web01 -d "web server" -i serial=SN-W1)
o_web=$(add host WEB01 -d "web server, discovered" -i fqdn=web01.example -a rack=r7)
add host db-a -d db -a serial=SN-DB >/dev/null
add host db-b -d db -a serial=sn-db >/dev/null
add host mail -d mail -a hostname=mail.example. >/dev/null
add host mx -d mx -i fqdn=mail.example >/dev/null
add host pc1 -d "inventory pc" -a ip=198.18.30.5 >/dev/null
ip30=$(add ip_address 198.18.30.5 -d addr -i ip=198.18.30.5)
pc1d=$(add host pc1-discovered -d "discovered pc")
expect 0 -q rel add "$pc1d" has_address "$ip30"
add host j1 -d j -a serial="To be filled by O.E.M." >/dev/null
add host j2 -d j -a serial="to be filled by o.e.m." >/dev/null
add host lo1 -d j -a ip=127.0.0.1 >/dev/null
add host lo2 -d j -a ip=127.0.0.1 >/dev/null
old=$(add host old -d "gone")
expect 0 -q ci retire "$old" --reason "replaced"
add host OLD -d "its successor" >/dev/null
app=$(add application web01 -d "the shop")
add host twin -d t -i serial=T1 >/dev/null
add host Twin -d t -i serial=T2 >/dev/null
expect 0 dup list --json
python3 - "$out" >"$work/pairs" <<'EOF'
import json, sys
for p in json.load(open(sys.argv[1])):
    if p["type"] == "host" and not p["keep_name"].startswith(("alpha", "198.", "box", "junk", "other", "localhost")):
        print(p["score"], p["keep_name"], p["other_name"], p["reasons"], sep="|")
EOF
expect_eq "$(cat "$work/pairs")" "90|db-a|db-b|same serial sn-db
70|mail|mx|same host name mail.example
60|pc1|pc1-discovered|same address 198.18.30.5
50|web01|WEB01|same name web01
20|twin|Twin|same name twin; but different serial" "pairs, scores, reasons and order"
expect 0 dup list --type application; expect_no_out 'web01'
expect 0 dup list --min-score 60 --csv; expect_out '^score,type,keep,keep_name,other,other_name,reasons'
expect_out ',db-a,'; expect_no_out 'WEB01'; expect_no_out 'twin'
expect 0 dup list; expect_out '^SCORE +TYPE +KEEP +KEEP_NAME'
expect 1 dup list --type spaceship; expect_err 'unknown CI type "spaceship"'
expect 2 dup list --min-score 101; expect_err '--min-score takes'
expect 2 dup list extra; expect_err 'unexpected argument'

# --- merge: identities and relationships move, both histories show it
shop=$(add application shop -d "the shop front")
svc=$(add service web01-https -d "https" -a port:=443)
expect 0 -q rel add "$shop" runs_on "$k_web"
expect 0 -q rel add "$shop" runs_on "$o_web"       # KEEP has it already: dropped
expect 0 -q rel add "$o_web" depends_on "$k_web"   # would become a self-loop: dropped
expect 0 -q rel add "$o_web" provides "$svc"        # moves
before=$(state)
hist=$(sql "SELECT count(*) FROM cmdb.history")
expect 0 dup merge "$k_web" "$o_web" --dry-run
expect_out "^move identity +fqdn=web01.example +from CI $o_web to CI $k_web"
expect_out "^drop relationship +CI $shop runs_on CI $o_web +CI $k_web already has it"
expect_out "^drop relationship +CI $o_web depends_on CI $k_web +it would relate CI $k_web to itself"
expect_out "^move relationship +CI $o_web provides CI $svc +now CI $k_web provides CI $svc"
expect_out '^copy claim +rack from cli'; expect_out '^set attribute +rack +null -> "r7"'
expect_out "^close +CI $o_web \(WEB01\) +status live -> merged, merged_into $k_web"
expect_err 'dry run: nothing written'
cp "$out" "$work/dry.out"
expect_eq "$(sql "SELECT count(*) FROM cmdb.history")" "$hist" "a dry run writes no history"
expect_eq "$(state)" "$before" "a dry run writes nothing"
expect 0 dup merge "$k_web" "$o_web" --change CHG-9
expect_eq "$(cat "$out")" "$(cat "$work/dry.out")" "the dry run showed exactly what the merge did"
expect_err "CI $o_web merged into CI $k_web"
expect_eq "$(sql "SELECT ci_id FROM cmdb.ci_identity WHERE kind = 'fqdn' AND value = 'web01.example' AND upper_inf(valid)")" "$k_web" "identity moved"
expect_eq "$(sql "SELECT count(*) FROM cmdb.rel WHERE (source_id = $o_web OR target_id = $o_web) AND upper_inf(valid)")" 0 "no relationship left on the merged CI"
expect_eq "$(sql "SELECT string_agg(type || ':' || source_id || '>' || target_id, ' ' ORDER BY id) FROM cmdb.rel WHERE (source_id = $k_web OR target_id = $k_web) AND upper_inf(valid)")" \
  "runs_on:$shop>$k_web provides:$k_web>$svc" "relationships of the CI kept"
expect_eq "$(sql "SELECT status || ' ' || (attributes->>'merged_into') FROM cmdb.ci WHERE id = $o_web")" "merged $k_web" "merged, never deleted"
expect_eq "$(sql "SELECT attributes->>'rack' FROM cmdb.ci WHERE id = $k_web")" r7 "attributes carried over"
expect 0 ci history "$o_web"; expect_out 'merge +merged_into'; expect_out 'identity_remove +fqdn'; expect_out 'CHG-9'
expect 0 ci history "$k_web" --json; expect_out '"op": "merge"'; expect_out '"other_ci": '"$o_web"
expect_out '"reason": "merge of CI '"$o_web"' into CI '"$k_web"'"'
expect 0 ci show "$k_web"; expect_out 'fqdn=web01.example'; expect_out 'serial=SN-W1'
expect 0 audit chain
expect 0 dup list --json; expect_no_out '"other": '"$o_web"','

# refusals: a clear message, exit 1, nothing changed
before=$(state)
expect 1 dup merge "$k_web" "$o_web"; expect_err "CI $o_web \(WEB01\) was already merged into CI $k_web"
expect 1 dup merge "$o_web" "$k_web"; expect_err 'already merged'
expect 1 dup merge "$k_web" "$k_web"; expect_err "cannot merge CI $k_web into itself"
expect 1 dup merge "$k_web" "$app"; expect_err 'is a host, CI [0-9]+ \(web01\) a application: only CIs of the same type'
expect 1 dup merge "$old" OLD; expect_err "CI $old \(old\) is retired: keep a CI in operation"
expect 1 dup merge "$k_web" 999999; expect_err 'no CI with id 999999'
expect 1 ci set "$o_web" -a rack=r8; expect_err 'was merged into CI [0-9]+: its record is closed'
expect 1 ci set twin --status merged; expect_err 'cannot be set to merged by hand'
expect 1 rel add "$shop" depends_on "$o_web"; expect_err 'is merged and takes no new relationships'
expect 1 ci set "$o_web" -i serial=SN-X; expect_err 'its record is closed'
expect 2 dup merge "$k_web"; expect_err 'missing argument'
expect_eq "$(state)" "$before" "refused merges change nothing"
# a reader can list duplicates but not merge
psql -X -q "host=$CMDB_TEST_HOME/run user=cmdb dbname=postgres" -c \
  "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cmdb_test_reader') THEN
     CREATE ROLE cmdb_test_reader LOGIN IN ROLE cmdb_reader; END IF; END \$\$" >/dev/null
writer_db=$CMDB_DB
export CMDB_DB="host=$CMDB_TEST_HOME/run user=cmdb_test_reader dbname=cli_rules_dup"
expect 0 dup list --json; expect_out '"keep_name": "db-a"'
expect 1 dup merge db-a db-b; expect_err 'permission denied'
expect 1 dup merge db-a db-b --dry-run; expect_err 'permission denied'
expect 1 type rules host --rm fqdn; expect_err 'permission denied'
export CMDB_DB=$writer_db
expect_eq "$(state)" "$before" "the reader changed nothing"

# --- merging discovered hosts: services follow, and a re-scan finds them
{
  obs m1 '"kind":"host","ip":"198.18.40.1"'
  obs m1 '"kind":"port","ip":"198.18.40.1","proto":"tcp","port":22,"state":"open"'
  obs m1 '"kind":"host","ip":"198.18.40.2"'
  obs m1 '"kind":"port","ip":"198.18.40.2","proto":"tcp","port":22,"state":"open"'
  obs m1 '"kind":"port","ip":"198.18.40.2","proto":"tcp","port":443,"state":"open"'
} >"$work/m1.ndjson"
expect 0 ingest "$work/m1.ndjson"
ha=$(hid 198.18.40.1); hb=$(hid 198.18.40.2)
s22a=$(id 198.18.40.1:22/tcp); s22b=$(id 198.18.40.2:22/tcp); s443=$(id 198.18.40.2:443/tcp)
expect 0 dup merge "$ha" "$hb" --csv
expect_out "^[0-9]+,rekey identity,endpoint=$hb/tcp/443 of CI $s443,now endpoint=$ha/tcp/443"
expect_out "^[0-9]+,merge service,CI $s22b into CI $s22a,both on the endpoint tcp/22 of CI $ha"
expect_out "^[0-9]+,drop relationship,CI $hb provides CI $s22b,CI $ha provides a service on that port already \(merged below\)"
expect_out "^[0-9]+,close,CI $s22b \(198.18.40.2:22/tcp\),"
expect_eq "$(sql "SELECT status || ' ' || (attributes->>'merged_into') FROM cmdb.ci WHERE id = $s22b")" "merged $s22a" "the service on the same endpoint merged too"
expect_eq "$(sql "SELECT count(*) FROM cmdb.rel WHERE type = 'provides' AND source_id = $ha AND upper_inf(valid)")" 2 "one service per port"
expect 0 ci history "$s22b"; expect_out "merge of CI $s22b into CI $s22a"
expect 0 ingest "$work/m1.ndjson" --json; expect_out '"created": 0'
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE status = 'merged'")" 3 "three CIs merged"
expect 0 audit chain
finish
