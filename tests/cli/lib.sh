# Assertions for shell tests of the cmdb command. Source it; call
# cli_db NAME for a fresh database on the fixture server, then run, expect_*,
# and finish at the end (prints "N passed, N failed", exits non-zero on any
# failure).
set -u
: "${CMDB:?CMDB must name the cmdb binary (set by ctest)}"
unset CMDB_DB CMDB_HOME PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE
passed=0 failed=0
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

# run ARGS...: runs cmdb, keeping stdout, stderr and the exit code.
run() {
  "$CMDB" "$@" >"$out" 2>"$err" </dev/null
  code=$?
}

ok() { passed=$((passed + 1)); }
bad() {
  failed=$((failed + 1))
  local msg="$*"
  echo "FAIL: ${msg:0:300}" >&2
  echo "  stdout: $(head -c 600 "$out")" >&2
  echo "  stderr: $(head -c 600 "$err")" >&2
}

# expect CODE ARGS...: runs cmdb and checks the exit code.
expect() {
  local want=$1; shift
  run "$@"
  if [ "$code" -eq "$want" ]; then ok; else bad "cmdb $* exited $code, want $want"; fi
}
expect_out() { if grep -qE -- "$1" "$out"; then ok; else bad "stdout lacks /$1/ (cmdb: last command)"; fi; }
expect_no_out() { if grep -qE -- "$1" "$out"; then bad "stdout has /$1/"; else ok; fi; }
expect_err() { if grep -qE -- "$1" "$err"; then ok; else bad "stderr lacks /$1/"; fi; }
expect_err_lines() {
  local n; n=$(wc -l <"$err")
  if [ "$n" -eq "$1" ]; then ok; else bad "stderr has $n lines, want $1"; fi
}
expect_eq() { if [ "$1" = "$2" ]; then ok; else bad "got [$1], want [$2] ($3)"; fi; }

# cli_db NAME: a fresh database on the fixture server; exports CMDB_DB.
cli_db() {
  local admin="host=$CMDB_TEST_HOME/run user=cmdb dbname=postgres"
  psql -X -q "$admin" -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\"" >/dev/null
  export CMDB_DB="host=$CMDB_TEST_HOME/run user=cmdb dbname=$1"
  "$CMDB" init -q >/dev/null
}

# sql QUERY: one value from the test database.
sql() { psql -X -At "$CMDB_DB" -c "$1"; }

# state: a fingerprint of everything a change could touch.
state() {
  sql "SELECT (SELECT count(*) FROM cmdb.ci) || '/' || (SELECT count(*) FROM cmdb.history) || '/' ||
          (SELECT count(*) FROM cmdb.ci_identity) || '/' || (SELECT count(*) FROM cmdb.rel) || '/' ||
          (SELECT count(*) FROM cmdb.ci_type) || '/' || (SELECT md5(string_agg(c::text, '' ORDER BY id)) FROM cmdb.ci c)"
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
