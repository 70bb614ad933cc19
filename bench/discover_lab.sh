#!/usr/bin/env bash
# Measures `cmdb discover` in the network-namespace lab (tests/lab) and
# checks each result against the ground truth. Needs root.
#
#   bench/discover_lab.sh CMDB_BINARY [RUNS]
#
# LAB_HOSTS (default 16) sets the number of subnet A hosts. Prints one line
# per measurement: what, wall seconds (median of RUNS, default 3), probes,
# and whether the result matched the truth. Also the peak RSS of a dry run
# over a /16 x 1,000 ports. The machine's load average is printed first:
# the figures mean little on a busy machine.
set -euo pipefail
CMDB=$(readlink -f "$1")
RUNS=${2:-3}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_SH="$TOP/tests/lab/lab.sh"
COMPARE="$TOP/tests/discovery/e2e/compare.py"
export PYTHONDONTWRITEBYTECODE=1
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 77; }

export LAB_ID="bn$$" LAB_OWNER_PID=$$ LAB_HOSTS=${LAB_HOSTS:-16}
trap '"$LAB_SH" down >/dev/null 2>&1 || true' EXIT
eval "$("$LAB_SH" up 2>/dev/null)"
"$LAB_SH" quiet-scanner
OUT=$LAB_STATE/bench
mkdir -p "$OUT"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; LAB_HOSTS=$LAB_HOSTS"

# measure NAME COMPARE_ARGS -- DISCOVER_ARGS: median wall time of RUNS runs
measure() {
  local name=$1; shift
  local cmp=()
  while [ "$1" != "--" ]; do cmp+=("$1"); shift; done
  shift
  local times=() i t0 t1 verdict probes
  for i in $(seq 1 "$RUNS"); do
    t0=$(date +%s%N)
    "$LAB_SH" exec sc "$CMDB" discover "$@" -q -o "$OUT/$name.$i.ndjson"
    t1=$(date +%s%N)
    times+=("$(((t1 - t0) / 1000000))")
  done
  if python3 "$COMPARE" --truth "$LAB_TRUTH" --obs "$OUT/$name.$RUNS.ndjson" "${cmp[@]}" >"$OUT/$name.cmp"; then
    verdict="matches the truth"
  else
    verdict="MISMATCH: $(tail -n 1 "$OUT/$name.cmp")"
  fi
  probes=$(tail -n 1 "$OUT/$name.$RUNS.ndjson" | python3 -c 'import json,sys; print(json.load(sys.stdin)["probes_sent"])')
  local med
  med=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
  printf '%-34s %7.2f s  (runs: %s ms)  %9s probes  %s\n' "$name" "$(echo "$med / 1000" | bc -l)" \
    "${times[*]}" "$probes" "$verdict"
}

A=198.18.1.0/24
B=198.18.2.0/24
measure "full sweep A+B -p- (raw)" --cidr $A --cidr $B --ports - -- \
  "$A" "$B" -p- --rate 1000000 --wait 0.3 --retries 0
measure "full sweep A+B -p- retries 1" --cidr $A --cidr $B --ports - -- \
  "$A" "$B" -p- --rate 1000000 --wait 0.3
measure "ARP discovery of A, 1 port" --cidr $A --ports 22 -- \
  "$A" -p 22 --rate 100000 --wait 0.2 --retries 0
measure "top 1000 A+B (raw)" --cidr $A --cidr $B --ports top:1000 -- \
  "$A" "$B" --top-ports 1000 --rate 100000 --wait 0.3
measure "connect top 1000 A+B" --cidr $A --cidr $B --ports top:1000 --mode connect -- \
  "$A" "$B" --top-ports 1000 --connect --rate 100000 --wait 0.3
# Memory and generation speed: a dry run over a /16 x 1,000 ports (65,536,000
# probes), inside the lab's scanner namespace like everything else.
t0=$(date +%s%N)
rss=$("$LAB_SH" exec sc /usr/bin/time -f '%M' "$CMDB" discover --dry-run -q -Pn 198.18.0.0/16 \
  --top-ports 1000 -o /dev/null 2>&1 | tail -n 1)
t1=$(date +%s%N)
printf '%-34s %7.2f s  peak RSS %s KiB, 65,536,000 probes built\n' "dry run /16 x 1000 ports" \
  "$(echo "($t1 - $t0) / 1000000000" | bc -l)" "$rss"
