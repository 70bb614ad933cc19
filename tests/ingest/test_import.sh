# cmdb import nmap|masscan|csv: other tools' output through the same reconciliation.
. "$(dirname "$0")/../cli/lib.sh"
data="$(dirname "$0")/../import/data"
work=$(mktemp -d)
trap 'rm -rf "$work" "$out" "$err"' EXIT
cli_db cli_import

expect 0 import nmap "$data/nmap_loopback.xml" --json
expect_out '"created": 5'
expect_eq "$(sql "SELECT string_agg(name, ' ' ORDER BY id) FROM cmdb.ci")" \
  "127.0.0.1 localhost localhost:48022/tcp localhost:48080/tcp localhost:48443/tcp" "nmap hosts, addresses and services"
expect_eq "$(sql "SELECT attributes->>'service' || '/' || (attributes->>'product') FROM cmdb.ci WHERE name = 'localhost:48080/tcp'")" \
  "$(sql "SELECT 'http/' || (attributes->>'product') FROM cmdb.ci WHERE name = 'localhost:48080/tcp'")" "service detected"
expect_eq "$(sql "SELECT source FROM cmdb.scan_run")" nmap "recorded as source nmap"
hist=$(sql "SELECT count(*) FROM cmdb.history")
expect 0 import nmap "$data/nmap_loopback.xml" --json; expect_out '"created": 0'; expect_out '"updated": 0'
expect_eq "$(sql "SELECT count(*) FROM cmdb.history")" "$hist" "re-import writes no history"
expect_eq "$(sql "SELECT count(*) FROM cmdb.scan_run")" 1 "the same file is the same scan"

expect 0 import masscan "$data/masscan_oj.json" --json; expect_out '"created": 10'
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE name = '10.1.0.12:53/udp'")" 1 "udp service"

# inventories: found again by identity, else by a unique name; types checked
expect 0 import csv "$data/inventory_crlf.csv" --type host --json; expect_out '"created": 3'
expect_eq "$(sql "SELECT attributes->>'location' FROM cmdb.ci WHERE name = 'web01'")" 'Rack 4, Room "B"' "quoted CSV field"
expect 0 import csv "$data/inventory_crlf.csv" --type host --json; expect_out '"created": 0'
printf 'name,identity:serial,rack\nweb01-renamed,SN-001,R9\nstray,SN-099,R1\n' >"$work/moved.csv"
expect 0 import csv "$work/moved.csv" --type host --json; expect_out '"created": 1'
expect_eq "$(sql "SELECT attributes->>'rack' FROM cmdb.ci WHERE name = 'web01'")" R9 "matched by serial despite the new name"
printf 'name,identity:serial\nthief,SN-001\n' >"$work/conflict.csv"
expect 0 import csv "$work/conflict.csv" --type application
expect_err 'conflict: application thief: its identities name CI [0-9]+ \(web01\), a host, not a application: not applied'
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE name = 'thief'")" 0 "a contradicting record applies nothing"
printf 'name,identity:serial,identity:uuid\nweb02,SN-002,0f8c6f2e-7c1d-4f0a-9b3e-2d1c5a7e9f10\ndb01,,0F8C6F2E-7C1D-4F0A-9B3E-2D1C5A7E9F10\n' >"$work/shared.csv"
# db01's only identity is web02's (given on the line before): by identity it is web02
expect 0 import csv "$work/shared.csv" --type host --json; expect_out '"created": 0'
expect_eq "$(sql "SELECT c.name FROM cmdb.ci_identity i JOIN cmdb.ci c ON c.id = i.ci_id WHERE i.kind = 'uuid'")" web02 "identity kept by the CI it names"
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE name = 'db01'")" 1 "no duplicate db01"
printf 'name,identity:serial,identity:asset\nnew-a,SN-500,A-1\nnew-b,SN-501,A-1\n' >"$work/twice.csv"
expect 0 import csv "$work/twice.csv" --type host
expect_err 'conflict: host new-b: identity asset=A-1 is also given for CI [0-9]+ \(line 2\): kept there'
printf 'name,description\nx1,fine\n' >"$work/type.csv"
expect 1 import csv "$work/type.csv" --type spaceship
expect_err 'line 2: rejected: unknown CI type "spaceship"'
printf 'name,bad key\nk1,v\n' >"$work/badkey.csv"
expect 1 import csv "$work/badkey.csv" --type host
expect_err 'rejected: invalid attribute name "bad key"'
before=$(state)
expect 0 import csv "$work/type.csv" --type host --dry-run
expect_out '^would create host x1'
expect_eq "$(state)" "$before" "dry run writes nothing"
expect 1 import csv "$data/inventory_hostile.csv" --type host
expect_err 'records skipped; the first: .*inventory_hostile.csv:3'

# bad files: one message, exit code, nothing written
before=$(state)
expect 1 import nmap "$data/nmap_billion_laughs.xml"; expect_err 'nmap_billion_laughs.xml'
expect 1 import nmap /nonexistent.xml; expect_err 'cannot read /nonexistent.xml'
expect 2 import csv "$work/type.csv"; expect_err 'give the CI type of the rows'
expect 2 import nmap "$data/nmap_loopback.xml" --type host; expect_err 'is an option of cmdb import csv'
expect_eq "$(state)" "$before" "refused imports write nothing"
expect 0 audit chain
finish
