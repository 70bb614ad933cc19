# The embedded default: with no connection configured, cmdb creates its own
# server on first use, once even when two commands start together, answers
# status, stops and starts again on demand.
. "$(dirname "$0")/lib.sh"
home=$(mktemp -d /tmp/cmdb-embedded-XXXXXX)
export CMDB_HOME=$home CMDB_EMBEDDED_NOSYNC=1
cleanup() { "$CMDB" db stop -q >/dev/null 2>&1; rm -rf "$home" "$out" "$err"; }
trap cleanup EXIT
chmod 755 "$home"

expect 0 db status --json; expect_out '"exists": false'; expect_out '"running": false'
# two first uses at once: both succeed, one cluster, one server
"$CMDB" ci add host first -d "first use" >"$home/a.out" 2>&1 &
"$CMDB" ci add host second -d "first use too" >"$home/b.out" 2>&1 &
wait %1; a=$?; wait %2; b=$?
expect_eq "$a/$b" "0/0" "concurrent first use: $(cat "$home/a.out" "$home/b.out")"
expect 0 ci list --json; expect_out '"name": "first"'; expect_out '"name": "second"'
expect 0 db status --json; expect_out '"running": true'; expect_out '"schema_version": [1-9]'
expect_eq "$(pgrep -c -f "postgres -D $home/pgdata")" 1 "one server"
if [ "$(id -u)" -eq 0 ]; then
  expect_out '"server_user": "(postgres|nobody)"'
  pid=$(sed -n 's/.*"pid": \([0-9]*\).*/\1/p' "$out")
  expect_eq "$(stat -c %U /proc/"$pid")" "$(sed -n 's/.*"server_user": "\([^"]*\)".*/\1/p' "$out")" "server runs unprivileged"
fi
# no TCP listener: the socket is the only way in
expect_eq "$(grep -c "listen_addresses = ''" "$home/pgdata/postgresql.conf")" 1 "socket only"
expect_eq "$(stat -c %a "$home/run")" 700 "socket directory private"
expect 0 db stop; expect 0 db status --json; expect_out '"running": false'
expect 0 ci list --json; expect_out '"name": "first"'   # started again on demand
expect 0 db status; expect_out 'server: +running'
# Concurrent `cmdb init` of three databases of one new cluster: the roles are
# cluster-wide and each migration creates them if missing; the migrations of
# different databases raced for them (a duplicate key on pg_authid failed all
# but one) until a lost race was retried.
home2=$(mktemp -d /tmp/cmdb-embedded-XXXXXX)
chmod 755 "$home2"
trap 'cleanup; CMDB_HOME=$home2 "$CMDB" db stop -q >/dev/null 2>&1; rm -rf "$home2"' EXIT
CMDB_HOME=$home2 "$CMDB" db start -q
for d in r1 r2 r3; do
  psql -X -q "host=$home2/run user=cmdb dbname=postgres" -c "CREATE DATABASE $d"
done
pids=()
for d in r1 r2 r3; do
  "$CMDB" --db "host=$home2/run user=cmdb dbname=$d" init -q >"$home2/$d.out" 2>&1 &
  pids+=($!)
done
codes=""
for p in "${pids[@]}"; do wait "$p"; codes+="$?"; done
expect_eq "$codes" 000 "concurrent init of three databases: $(cat "$home2"/r*.out)"
CMDB_HOME=$home2 "$CMDB" db stop -q
rm -rf "$home2"
finish
