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
finish
