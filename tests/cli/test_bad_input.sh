# Bad input: one message naming the problem, exit 1 (2 for usage), and the
# database exactly as it was.
. "$(dirname "$0")/lib.sh"
cli_db cli_bad_input

"$CMDB" ci add host keeper -d "holds identities" -i mac=02:00:00:00:00:aa -i serial=SN-1 >/dev/null
"$CMDB" ci add host twin -d "twin one" >/dev/null
"$CMDB" ci add service twin -d "twin two" >/dev/null
"$CMDB" ci add host other -d "a third" >/dev/null
# the kernel caps one argument at 128 KiB; megabyte values are tested through the library
big=$(head -c 100000 /dev/zero | tr '\0' 'x')

# refused ARGS... CODE PATTERN: the command fails with CODE, says PATTERN in
# one line on stderr, prints nothing, and changes nothing.
refused() {
  local want=$1 pattern=$2; shift 2
  local before after
  before=$(state)
  expect "$want" "$@"; expect_err "$pattern"; expect_eq "$(wc -c <"$out")" 0 "no stdout for $1 $2"
  after=$(state)
  expect_eq "$after" "$before" "database unchanged by: $*"
}

refused 1 'unknown CI type "nosuch"' ci add nosuch x -d y
refused 2 'needs a description' ci add host x
refused 1 'a CI needs a description' ci add host x -d "   "
refused 1 'a CI needs a name' ci add host "" -d y
refused 1 'identity mac=02:00:00:00:00:aa is already held by CI [0-9]+ \(keeper\)' ci add host y -d y -i mac=0200.0000.00AA
refused 1 'identity serial=SN-1 is already held' ci add host y -d y -i mac=02:00:00:00:00:bb -i serial=SN-1
refused 1 'invalid MAC address "zz"' ci add host y -d y -i mac=zz
refused 1 'serial=0 is a placeholder, not an identity' ci add host y -d y -i serial=0
refused 1 'serial=To be filled by O.E.M. is a placeholder' ci add host y -d y -i 'serial=To be filled by O.E.M.'
refused 1 'mac=ff:ff:ff:ff:ff:ff is a placeholder' ci add host y -d y -i mac=FF-FF-FF-FF-FF-FF
refused 1 'fqdn=localhost is a placeholder' ci set keeper -i fqdn=localhost
refused 2 'malformed identity' ci add host y -d y -i novalue
refused 2 'malformed attribute "noequals"' ci add host y -d y -a noequals
refused 2 'malformed attribute' ci add host y -d y -a =v
refused 2 'invalid JSON value' ci add host y -d y -a 'n:={bad json'
refused 2 'attribute a given twice' ci add host y -d y -a a=1 -a a=2
refused 1 'invalid attribute name' ci add host y -d y -a 'bad key=v'
refused 1 'unknown status "zombie"' ci add host y -d y -s zombie
refused 1 'unknown criticality' ci add host y -d y -c extreme
refused 1 'cannot start as retired' ci add host y -d y -s retired
refused 1 'control character' ci add host "$(printf 'tab\there')" -d y
refused 1 'invalid byte sequence for encoding "UTF8"' ci add host "$(printf 'bad\xff')" -d y
refused 1 'not valid UTF-8' ci add host y -d y -a "k=$(printf 'v\xfe')"
refused 1 'name is 100000 characters long; the limit is 255' ci add host "$big" -d y
refused 1 'description is 100000 characters long' ci add host y -d "$big"
refused 1 'attribute "blob" is [0-9]+ bytes long; the limit is 65536' ci add host y -d y -a "blob=$big"
refused 1 'no CI named "ghost"' ci show ghost
refused 1 'no CI with id 99999' ci show 99999
refused 1 '2 CIs are named "twin": [0-9]+ \(host, live\), [0-9]+ \(service, live\); use an id' ci show twin
refused 1 'no CI holds identity mac=02:00:00:00:00:ff' ci show mac=02:00:00:00:00:ff
refused 1 'invalid time "yesterdayish"' ci show keeper --as-of yesterdayish
refused 1 'illegal status change for CI [0-9]+: live -> disposed \(from live only: maintenance, retired, merged\)' ci set keeper -s disposed
refused 2 'nothing to change' ci set keeper
refused 1 'has no attribute "nope" to unset' ci set keeper -u nope
refused 1 'already held' ci set other -s maintenance -i mac=02:00:00:00:00:aa
refused 2 'needs --reason' ci retire keeper
refused 1 'retiring a CI needs a reason' ci retire keeper --reason ""
refused 1 'unknown relationship type "likes"' rel add keeper likes other
refused 1 'cannot be related to itself' rel add keeper depends_on keeper
refused 1 'no current depends_on relationship' rel rm keeper depends_on mac=02:00:00:00:00:aa
refused 2 '--direction is in, out or both' rel list keeper --direction sideways
refused 1 'invalid type name "Bad-Type"' type add Bad-Type -d x
refused 1 'type host already exists' type add host -d x
refused 1 'unknown parent type "nope"' type add t1 -d x --parent nope
refused 1 'unknown CI type "nope"' type show nope
refused 2 'unknown format "xml"' ci list --format xml
refused 2 'positive whole number' ci list --limit -3
refused 2 'unexpected argument "extra"' ci show keeper extra
refused 2 'missing argument' ci show
refused 2 "unrecognized option '--frobnicate'" ci list --frobnicate

# quotes and SQL fragments are data, stored byte-exact
for name in "O'Brien \"quoted\"" "x'); DROP TABLE cmdb.ci; --" '$1 \N %s'; do
  expect 0 ci add host "$name" -d "$name" -a "note=$name"
  id=$(cat "$out")
  expect 0 ci show "$id" --json
  got=$(sql "SELECT name FROM cmdb.ci WHERE id = $id")
  expect_eq "$got" "$name" "name stored byte-exact"
done

# an unreachable server is a clear failure
expect 1 --db "host=/nonexistent-cmdb-test dbname=x connect_timeout=2" ci list
expect_err 'cannot connect to the CMDB'
# a database without the schema says what to do
psql -X -q "host=$CMDB_TEST_HOME/run user=cmdb dbname=postgres" -c 'DROP DATABASE IF EXISTS cli_empty' -c 'CREATE DATABASE cli_empty'
expect 1 --db "host=$CMDB_TEST_HOME/run user=cmdb dbname=cli_empty" ci list
expect_err 'holds no CMDB yet: run `cmdb init` first'

# a broken history chain is found and named
expect 0 audit chain
sql "SET session_replication_role = replica; UPDATE cmdb.history SET new = '\"forged\"' WHERE id = (SELECT min(id) FROM cmdb.history WHERE op = 'create')" >/dev/null
expect 1 audit chain; expect_err 'history chain BROKEN at rows [0-9]+\.\.[0-9]+ \(block [0-9]+\): a row was altered'
expect 1 audit chain --json; expect_out '"intact": false'
finish
