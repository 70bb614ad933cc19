#!/usr/bin/env bash
# Benchmark of the CMDB core (issue 2, "Performance").
#
# Builds the Release binary, starts a throwaway embedded server in a fresh
# CMDB_HOME under /tmp, loads a data set through the tables and their
# triggers (so history and versions are written as for any client), times
# the reads through the real `cmdb` command end to end, shows the server
# side of each read with EXPLAIN (ANALYZE), prints a results table, and
# stops and removes the server at the end, also on failure.
#
#   bench/core/run.sh                               # full size: 1M CIs, 3M relationships
#   CIS=20000 RELS=60000 RUNS=30 bench/core/run.sh  # smoke run, under a minute
#
# Environment:
#   CIS=1000000      configuration items to load
#   RELS=3000000     relationships to load (at least 0.95 * CIS + CIS * 0.08)
#   BATCH=500        rows per load transaction
#   HOT_CHANGES=1000 changes of the CI whose history is read (`cmdb ci set`, one process each)
#   RUNS=100         timed runs per read (after 5 warm-up runs)
#   OUT=DIR          where raw results, plans and the report go (default /tmp/cmdb-bench-core-DATE)
#   MD=FILE          also write the results as a markdown fragment
#   KEEP=1           leave the server running at the end (prints how to reach and remove it)
#   LOAD_WITHOUT_GIST=1  only for schemas before the set-based trigger rewrite (commit
#                    4e94d3c), which had a GiST index ci_version_valid_idx that made each
#                    CI write O(CIs): drops it for the writes, recreates it before the reads.
#                    The current schema has no such index; leave this off.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CIS=${CIS:-1000000}
RELS=${RELS:-3000000}
BATCH=${BATCH:-500}
HOT_CHANGES=${HOT_CHANGES:-1000}
RUNS=${RUNS:-100}
OUT=${OUT:-/tmp/cmdb-bench-core-$(date +%Y%m%dT%H%M%S)}
MD=${MD:-}
KEEP=${KEEP:-0}
LOAD_WITHOUT_GIST=${LOAD_WITHOUT_GIST:-0}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools -------------------------------------------------------------------
command -v psql >/dev/null || die "psql is missing: run tools/deps.sh"
command -v python3 >/dev/null || die "python3 is missing: run tools/deps.sh"
if ! command -v hyperfine >/dev/null; then
  [ "$(id -u)" -eq 0 ] || die "hyperfine is missing: apt-get install hyperfine"
  log "installing hyperfine (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hyperfine >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hyperfine >/dev/null; }
fi

log "building the Release binary"
cmdb=$("$top/tools/build.sh" Release)/bin/cmdb
[ -x "$cmdb" ] || die "no binary at $cmdb"

# --- throwaway server --------------------------------------------------------
unset CMDB_DB PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS
home=$(mktemp -d /tmp/cmdb-bench.XXXXXX)   # short: the socket path must fit in 107 bytes
export CMDB_HOME=$home CMDB_EMBEDDED_NOSYNC=1
cleanup() {
  local rc=$?
  if [ "$KEEP" = 1 ]; then
    log "KEEP=1: server left running; remove it with: CMDB_HOME=$home $cmdb db stop && rm -rf $home"
  else
    "$cmdb" db stop -q 2>/dev/null || log "warning: could not stop the server in $home"
    rm -rf "$home"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT/raw" "$OUT/plans"
rm -f "$OUT"/*.tsv "$OUT"/raw/* "$OUT"/plans/*
log "starting a throwaway embedded server in $home; results in $OUT"
"$cmdb" -q db start
"$cmdb" -q init >/dev/null
conninfo=$("$cmdb" db status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["conninfo"])')

# psql as the embedded superuser; history rows say source=bench-load
pg() { PGOPTIONS="-c cmdb.source=bench-load -c cmdb.os_user=bench" psql -X -q -v ON_ERROR_STOP=1 -d "$conninfo" "$@"; }
val() { pg -A -t -c "$1"; }

env_set() { printf '%s\t%s\n' "$1" "$2" >>"$OUT/env.tsv"; }
env_set cis "$CIS"
env_set rels "$RELS"
env_set batch "$BATCH"
env_set runs "$RUNS"
env_set load_without_gist "$LOAD_WITHOUT_GIST"
env_set date "$(date -u +%Y-%m-%dT%H:%MZ)"
env_set host "$(hostname)"
env_set cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
env_set nproc "$(nproc)"
env_set mem "$(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
env_set pg "$(val 'SHOW server_version')"
env_set commit "$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$top" diff --quiet HEAD -- cmdb schema tools 2>/dev/null || echo +changes)"

pg -f "$here/sql/setup.sql"

# --- load ---------------------------------------------------------------------
now() { date +%s.%N; }
hist_rows() { val "SELECT rows FROM cmdb.history_head"; }

# phase NAME TABLE GENERATOR: feeds GENERATOR's psql script to one session,
# records the time and the rows the phase added to TABLE and to history.
phase() {
  local name=$1 table=$2 gen=$3 t0 t1 n0 n1 h0 h1 secs
  n0=$(val "SELECT count(*) FROM $table"); h0=$(hist_rows)
  log "load: $name"
  t0=$(now)
  "$gen" | pg
  t1=$(now)
  n1=$(val "SELECT count(*) FROM $table"); h1=$(hist_rows)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  printf '%s\t%s\t%s\t%s\n' "$name" $((n1 - n0)) $((h1 - h0)) "$secs" >>"$OUT/load.tsv"
  log "load: $name: $((n1 - n0)) rows ($((h1 - h0)) history rows) in ${secs}s"
}

# batches LO END STEP FILE [LABEL]: one \i FILE per batch of [LO, END)
batches() {
  local lo=$1 end=$2 step=$3 file=$4 label=${5:-} i=0
  while [ "$lo" -lt "$end" ]; do
    local hi=$((lo + step - 1))
    [ "$hi" -ge "$end" ] && hi=$((end - 1))
    printf '\\set lo %d\n\\set hi %d\n\\i %s\n' "$lo" "$hi" "$file"
    i=$((i + 1))
    if [ -n "$label" ] && [ $((i % 400)) -eq 0 ]; then
      printf '\\! echo "$(date +%%H:%%M:%%S)   %s %d of %d" >&2\n' "$label" "$lo" "$end"
    fi
    lo=$((hi + 1))
  done
}

# step NAME SQL...: a timed load step that adds no rows
step() {
  local name=$1 t0 t1 secs
  shift
  log "load: $name"
  t0=$(now)
  pg "$@"
  t1=$(now)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  printf '%s\t0\t0\t%s\n' "$name" "$secs" >>"$OUT/load.tsv"
}

if [ "$LOAD_WITHOUT_GIST" = 1 ]; then
  gist_def=$(val "SELECT pg_get_indexdef('cmdb.ci_version_valid_idx'::regclass)")
  pg -c "DROP INDEX cmdb.ci_version_valid_idx"
fi

gen_cis() { batches 0 "$CIS" "$BATCH" "$here/sql/ci_batch.sql" cis; }
phase "CIs" cmdb.ci gen_cis

pg -f "$here/sql/map.sql"
declare -A N
while IFS='|' read -r t n; do N[$t]=$n; done < <(val "SELECT type, n FROM bench.type_count")
for t in host network_interface ip_address service application software subnet business_service; do
  [ "${N[$t]:-0}" -gt 1 ] || die "CIS=$CIS is too small: fewer than 2 CIs of type $t"
done
env_set types "$(val "SELECT string_agg(type || ' ' || to_char(n, 'FM9,999,999'), ', ' ORDER BY n DESC) FROM bench.type_count")"
env_set os_mix "$(val "SELECT string_agg(os || ' ' || pct || '%', ', ' ORDER BY n DESC)
                       FROM (SELECT os, n, round(100.0 * n / sum(n) OVER ())::int AS pct
                             FROM (SELECT attributes->>'os' AS os, count(*) AS n FROM cmdb.ci
                                   WHERE type = 'host' GROUP BY 1) x) y")"

id_lo=$(val "SELECT min(id) FROM cmdb.ci"); id_hi=$(val "SELECT max(id) FROM cmdb.ci")
gen_identities() { batches "$id_lo" $((id_hi + 1)) "$BATCH" "$here/sql/ident_batch.sql" identities; }
phase "identities" cmdb.ci_identity gen_identities

# Relationship kinds: the structural ones follow from the CI counts (every
# interface belongs to a host, every address to an interface and a subnet,
# every service to a host, every application to a business service); the
# rest of RELS is runs_on 20%, depends_on 20%, connects_to 60%.
H=${N[host]} I=${N[network_interface]} IP=${N[ip_address]} SV=${N[service]} A=${N[application]}
S=${N[subnet]} B=${N[business_service]}
natural=$((I + IP + IP + SV + A))
rest=$((RELS - natural))
[ "$rest" -ge 3 ] || die "RELS=$RELS is too small for CIS=$CIS: the structural relationships alone are $natural"
runs_on=$((rest / 5)) depends=$((rest / 5))
connects=$((rest - runs_on - depends))
# rtype stype dtype count mul step
rel_specs=(
  "has_interface host network_interface $I 1 $H"
  "has_address network_interface ip_address $IP 1 $I"
  "member_of ip_address subnet $IP 1 1"
  "provides host service $SV 1 $H"
  "depends_on business_service application $A 1 $B"
  "runs_on application host $runs_on 7 7919"
  "depends_on application service $depends 13 7901"
  "connects_to host host $connects 1 7907"
)
declare -A NS=([host]=$H [network_interface]=$I [ip_address]=$IP [service]=$SV [application]=$A [subnet]=$S [business_service]=$B)
rel_vars() { # rtype stype dtype mul step
  printf '\\set rtype %s\n\\set stype %s\n\\set dtype %s\n\\set ns %d\n\\set nd %d\n\\set mul %d\n\\set step %d\n' \
    "$1" "$2" "$3" "${NS[$2]}" "${NS[$3]}" "$4" "$5"
}
gen_rels() {
  local spec rtype stype dtype count mul step
  for spec in "${rel_specs[@]}"; do
    read -r rtype stype dtype count mul step <<<"$spec"
    rel_vars "$rtype" "$stype" "$dtype" "$mul" "$step"
    batches 0 "$count" "$BATCH" "$here/sql/rel_batch.sql" "$rtype:$stype-$dtype"
  done
}
phase "relationships" cmdb.rel gen_rels

gen_churn_a() { batches "$id_lo" $((id_hi + 1)) $((BATCH * 10)) "$here/sql/churn_a_batch.sql"; }
phase "changes A (1 host in 10 patched)" cmdb.ci_version gen_churn_a

# The CI whose history is read: a host in the middle of the id range that
# the churn leaves alone; it is changed HOT_CHANGES times through
# `cmdb ci set`, one process and one transaction each, half of them before
# and half after the as-of time.
hot=$(val "SELECT id FROM bench.ci_map WHERE type = 'host' AND k >= $H / 2
            AND abs(hashint8(id)::bigint) % 10 = 5 ORDER BY k LIMIT 1")
hot_phase() {
  local from=$1 to=$2 t0 t1 h0 h1 i secs
  h0=$(hist_rows)
  log "load: ci set $hot, changes $from..$to through the cmdb command"
  t0=$(now)
  for ((i = from; i <= to; i++)); do
    "$cmdb" -q ci set "$hot" --attr "build=$i" >/dev/null
  done
  t1=$(now)
  h1=$(hist_rows)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  printf '%s\t%s\t%s\t%s\n' "cmdb ci set (one process each)" $((to - from + 1)) $((h1 - h0)) "$secs" >>"$OUT/load.tsv"
  log "load: $((to - from + 1)) ci set in ${secs}s"
}
half=$((HOT_CHANGES / 2))
hot_phase 1 "$half"

sleep 0.2
as_of=$(val "SELECT cmdb.rfc3339(clock_timestamp())")
sleep 0.2
env_set as_of "$as_of"
log "as-of time: $as_of"

hot_phase $((half + 1)) "$HOT_CHANGES"

gen_churn_b() {
  batches "$id_lo" $((id_hi + 1)) $((BATCH * 10)) "$here/sql/churn_b_batch.sql"
  # new connections, 1% of connects_to, continuing the generator's rounds
  rel_vars connects_to host host 1 7907
  batches "$connects" $((connects + connects / 100 + 1)) "$BATCH" "$here/sql/rel_batch.sql"
}
phase "changes B (1 host in 10 patched, apps retired, 1% connections ended and added)" cmdb.ci_version gen_churn_b

[ "$LOAD_WITHOUT_GIST" = 1 ] && step "recreate ci_version_valid_idx (LOAD_WITHOUT_GIST=1)" -c "$gist_def"
step "VACUUM ANALYZE, CHECKPOINT" -c "VACUUM (ANALYZE)" -c "CHECKPOINT"

# --- read targets -------------------------------------------------------------
# `ci show` target: a host in the middle of the id range that the second
# round of changes touched, so the as-of read returns an older version.
show=$(val "SELECT id FROM bench.ci_map WHERE type = 'host' AND k >= $H / 2
             AND abs(hashint8(id)::bigint) % 10 = 1 ORDER BY k LIMIT 1")
show_name=$(val "SELECT name FROM cmdb.ci WHERE id = $show")
env_set show_id "$show"
env_set hot_id "$hot"
env_set show_rels "$(val "SELECT count(*) FROM cmdb.rel WHERE (source_id = $show OR target_id = $show) AND upper_inf(valid)")"
env_set hot_history "$(val "SELECT count(*) FROM cmdb.history WHERE ci_id = $hot OR other_ci_id = $hot")"
env_set n_ci "$(val "SELECT count(*) FROM cmdb.ci")"
env_set n_rel "$(val "SELECT count(*) FROM cmdb.rel")"
env_set n_rel_current "$(val "SELECT count(*) FROM cmdb.rel WHERE upper_inf(valid)")"
env_set n_identity "$(val "SELECT count(*) FROM cmdb.ci_identity")"
env_set n_version "$(val "SELECT count(*) FROM cmdb.ci_version")"
env_set n_history "$(val "SELECT rows FROM cmdb.history_head")"
env_set db_size "$(val "SELECT pg_size_pretty(pg_database_size(current_database()))")"

# --- reads ----------------------------------------------------------------------
# measure NAME GOAL SQLFILE:CONSTANT PARAMS -- cmdb ARGS...
#   GOAL: <MS, x2:OTHER (within 2x of OTHER's median) or -
#   PARAMS: the main query's parameters as SQL literals, for EXPLAIN
measure() {
  local name=$1 goal=$2 src=$3 params=$4
  shift 5
  local label="cmdb $*"
  printf '%s\t%s\t%s\t%s\n' "$name" "$label" "$goal" "$cmdb $*" >>"$OUT/measure.tsv"
  log "read: $label"
  "$cmdb" "$@" >"$OUT/raw/$name.out"   # fails the run if the command fails
  hyperfine -N --style none --warmup 5 --runs "$RUNS" --export-json "$OUT/raw/$name.json" \
    "$cmdb $*" >/dev/null
  if [ "$src" != - ]; then
    local file=${src%%:*} const=${src#*:} i
    {
      printf 'SET ROLE cmdb_reader;\nSET TimeZone = %s;\nSET plan_cache_mode = force_custom_plan;\n' "'UTC'"
      printf 'PREPARE q AS %s;\n' "$(python3 "$here/bench.py" sql "$top/$file" "$const")"
      for i in 1 2 3 4 5 6; do
        printf '\\echo -- run %d\nEXPLAIN (ANALYZE, BUFFERS) EXECUTE q(%s);\n' "$i" "$params"
      done
    } | pg -A -t >"$OUT/plans/$name.txt"
  fi
}
q() { printf "'%s'" "${1//\'/\'\'}"; }
attrs=$(q '{"os":"linux"}')

env_set loadavg "$(cut -d' ' -f1-3 /proc/loadavg)"
# the floor: process start, two connections (the embedded server check and
# the session), schema check, one query on an 8-row table
measure floor - - "" -- rel types
measure show "<20" cmdb/ci.c:SQL_CI_SHOW "$(q "$show"), NULL" -- ci show "$show"
measure show_as_of "x2:show" cmdb/ci.c:SQL_CI_SHOW "$(q "$show"), $(q "$as_of")" -- ci show "$show" --as-of "$as_of"
measure show_by_name - cmdb/ci.c:SQL_BY_NAME "$(q "$show_name")" -- ci show "$show_name"
measure list "<100" cmdb/ci.c:SQL_CI_LIST "'host', NULL, $attrs, NULL, NULL, '50', NULL, 'false'" -- ci list --type host --attr os=linux --limit 50
measure list_as_of "x2:list" cmdb/ci.c:SQL_CI_LIST "'host', NULL, $attrs, NULL, $(q "$as_of"), '50', NULL, 'false'" -- ci list --type host --attr os=linux --limit 50 --as-of "$as_of"
measure history "<50" cmdb/ci.c:SQL_CI_HISTORY "$(q "$hot")" -- ci history "$hot"
measure show_hot_as_of - cmdb/ci.c:SQL_CI_SHOW "$(q "$hot"), $(q "$as_of")" -- ci show "$hot" --as-of "$as_of"
measure rel_list - cmdb/rel.c:SQL_REL_LIST "$(q "$show"), NULL, NULL" -- rel list "$show"
measure rel_list_as_of "x2:rel_list" cmdb/rel.c:SQL_REL_LIST "$(q "$show"), NULL, $(q "$as_of")" -- rel list "$show" --as-of "$as_of"

python3 "$here/bench.py" report "$OUT" ${MD:+"$MD"}
log "done: raw timings, command outputs and query plans in $OUT"
