#!/usr/bin/env bash
# Benchmark of ingest (issue 4, "Performance"), side by side with
# PostgreSQL's own COPY of the same file, in one run.
#
#   bench/ingest/run.sh                 # 111,111 hosts x 4 ports: 1,000,001 observations
#   HOSTS=10000 bench/ingest/run.sh     # smoke run
#
# Builds the Release binary, starts a throwaway embedded server in a fresh
# CMDB_HOME under /tmp, generates the observations (tests/ingest/gen_obs.py:
# each host with an interface, an address and PORTS services), then:
#   1. COPY of the file into an unindexed table (one jsonb column, so
#      PostgreSQL parses every line as we do) on the same server;
#   2. the first `cmdb ingest` (full reconciliation, provenance, history);
#   3. the same file again (nothing changed: no history row may be written);
#   4. a re-scan: the same hosts and services under a new scan id, two hours
#      later (every CI and claim is seen again, nothing changed: no history),
#      which is what a user's second `cmdb scan` of a network does.
# Then times `cmdb ci list --stale 30d --limit 50` on the result (none is
# that stale: every CI is read, as there is no index on
# last_seen since schema 005).
# Reports wall time, observations/s, the ratio to COPY, peak RSS of the
# ingest process and history rows written. Stops and removes the server at
# the end, also on failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
HOSTS=${HOSTS:-111111}
PORTS=${PORTS:-4}
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cmdb=$("$top/tools/build.sh" Release)/bin/cmdb
unset CMDB_DB PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS
home=$(mktemp -d /tmp/cmdb-bench-ingest.XXXXXX)
chmod 755 "$home"
export CMDB_HOME=$home
cleanup() { "$cmdb" db stop -q >/dev/null 2>&1 || true; rm -rf "$home"; }
trap cleanup EXIT
"$cmdb" init -q
conn="host=$home/run dbname=cmdb user=cmdb"
q() { psql -X -At -v ON_ERROR_STOP=1 "$conn" -c "$1"; }

file=$home/obs.ndjson
log "generating $HOSTS hosts x $PORTS ports"
python3 "$top/tests/ingest/gen_obs.py" "$HOSTS" "$PORTS" bench-ingest >"$file"
python3 "$top/tests/ingest/gen_obs.py" "$HOSTS" "$PORTS" bench-rescan --hour 9 >"$home/rescan.ndjson"
lines=$(wc -l <"$file")
log "$lines observations, $(du -m "$file" | cut -f1) MB; load average $(cut -d' ' -f1-3 /proc/loadavg)"

secs() { echo "scale=3; ($2 - $1) / 1000000000" | bc; }
now() { date +%s%N; }

# 1. PostgreSQL's COPY: the raw lines into jsonb (CSV with quote and
#    delimiter bytes that never occur in JSON text, so each line is one value)
q "CREATE TABLE public.bench_copy (body jsonb)" >/dev/null
t0=$(now)
psql -X -q -v ON_ERROR_STOP=1 "$conn" \
  -c "\\copy public.bench_copy FROM '$file' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
t1=$(now)
copy_s=$(secs "$t0" "$t1")
[ "$(q "SELECT count(*) FROM public.bench_copy")" = "$lines" ] || { log "COPY lost lines"; exit 1; }
q "DROP TABLE public.bench_copy" >/dev/null

# 1b. The floor (floor.sql): the rows of the leanest model written with no
#     reconciliation, by INSERT .. SELECT and by COPY, each table timed
log "floor"
psql -X -q -v ON_ERROR_STOP=1 -v hosts="$HOSTS" -v ports="$PORTS" "$conn" -f "$here/floor.sql" >"$home/floor.out"
copy_floor() { # TABLE COLUMNS
  psql -X -q -v ON_ERROR_STOP=1 "$conn" -c "\\copy (SELECT $2 FROM floor.src_$1) TO '$home/floor-$1.tsv'"
  local t0 t1
  t0=$(now)
  psql -X -q -v ON_ERROR_STOP=1 "$conn" -c "\\copy floor.$1 FROM '$home/floor-$1.tsv'"
  t1=$(now)
  echo "floor copy $1 $(wc -l <"$home/floor-$1.tsv") $(secs "$t0" "$t1")" >>"$home/floor.out"
  rm -f "$home/floor-$1.tsv"
}
copy_floor ci "id, type, name, attributes, seen, seen"
copy_floor ci_identity "*"
copy_floor rel "*"
copy_floor history "*"
q "SET client_min_messages = warning; DROP SCHEMA floor CASCADE" >/dev/null
floor_s() { awk -v w="$1" '$1 == "floor" && $2 == w { s += $5 } END { printf "%.3f", s }' "$home/floor.out"; }
floor_insert_s=$(floor_s insert)
floor_copy_s=$(floor_s copy)

# 2. and 3. cmdb ingest, twice
run_ingest() { # [FILE]
  local h0 h1 t0 t1
  h0=$(q "SELECT count(*) FROM cmdb.history")
  t0=$(now)
  /usr/bin/time -f '%M' -o "$home/rss" "$cmdb" ingest -q "${1:-$file}"
  t1=$(now)
  h1=$(q "SELECT count(*) FROM cmdb.history")
  echo "$(secs "$t0" "$t1") $(cat "$home/rss") $((h1 - h0))"
}
log "first ingest"
read -r first_s first_rss first_hist < <(run_ingest)
log "identical re-ingest"
read -r again_s again_rss again_hist < <(run_ingest)
log "re-scan"
read -r rescan_s rescan_rss rescan_hist < <(run_ingest "$home/rescan.ndjson")
t0=$(now)
"$cmdb" ci list --stale 30d --limit 50 >/dev/null
stale_s=$(secs "$t0" "$(now)")
cis=$(q "SELECT count(*) FROM cmdb.ci")

rate() { echo "$lines / $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }
echo
echo "$lines observations ($HOSTS hosts x $PORTS ports), $cis CIs; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| run | seconds | observations/s | vs COPY | peak RSS | history rows |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| PostgreSQL COPY into an unindexed jsonb table | $copy_s | $(rate "$copy_s") | 1.00x | | |"
echo "| floor: the leanest model's rows by INSERT .. SELECT, no reconciliation (floor.sql) | $floor_insert_s | $(rate "$floor_insert_s") | $(ratio "$floor_insert_s" "$copy_s")x | | |"
echo "| floor: the same rows by COPY | $floor_copy_s | $(rate "$floor_copy_s") | $(ratio "$floor_copy_s" "$copy_s")x | | |"
echo "| first \`cmdb ingest\` | $first_s | $(rate "$first_s") | $(ratio "$first_s" "$copy_s")x | $((first_rss / 1024)) MB | $first_hist |"
echo "| identical re-ingest | $again_s | $(rate "$again_s") | $(ratio "$again_s" "$copy_s")x | $((again_rss / 1024)) MB | $again_hist |"
echo "| re-scan (new scan id, nothing changed) | $rescan_s | $(rate "$rescan_s") | $(ratio "$rescan_s" "$copy_s")x | $((rescan_rss / 1024)) MB | $rescan_hist |"
echo
echo "re-ingest speed-up over the first: $(ratio "$first_s" "$again_s")x; re-scan: $(ratio "$first_s" "$rescan_s")x"
echo "cmdb ci list --stale 30d --limit 50 over $cis CIs: $stale_s s"
echo
echo "floor, per table (way, table, rows, seconds):"
grep '^floor' "$home/floor.out" | sed 's/^floor /  /'
