#!/usr/bin/env bash
# The full-sweep ceiling (issue 3, "Performance") against `cmdb discover`, in
# the network-namespace lab (tests/lab). Needs root.
#
#   bench/discover_ceiling.sh BUILD_DIR [RUNS]
#
# BUILD_DIR holds bin/rawsend (bench/rawsend.c) and bin/cmdb-full. Every
# round (RUNS, default 3, interleaved so that the machine's load hits each
# alike) sends the same sweep, every port 1-65535 of the live hosts of
# subnet A but the scanner itself (LAB_HOSTS, default 16: 15 hosts and the
# router), with:
#   rawsend T1         the minimal sender, one thread, no receiver
#   rawsend T2         two threads (one per CPU here)
#   rawsend T2 + pcap  two threads and a plain libpcap receiver
#   cmdb retries 0     cmdb discover --no-service --retries 0
#   cmdb               cmdb discover --no-service (default retries)
# and prints per variant the median wall time, the median CPU time of the
# process (user + system), frames per wall second and per CPU-second, and
# the CPU the kernel's softirq threads spent meanwhile (work the sender's
# own system calls did not absorb). Wall time on a shared machine follows
# its load (printed first); CPU time much less.
#
# CMDB_BEFORE=PATH (another cmdb-full) adds its two cmdb rows, "before", for
# a before/after comparison in one run.
#
# LAB_REUSE=1 with LAB_ID set measures in a lab that is already up (and
# leaves it up); otherwise a lab is brought up and torn down.
set -euo pipefail
BUILD=$(readlink -f "$1")
RUNS=${2:-3}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_SH="$TOP/tests/lab/lab.sh"
export PYTHONDONTWRITEBYTECODE=1
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 77; }
for b in rawsend cmdb-full; do
  [ -x "$BUILD/bin/$b" ] || { echo "no $BUILD/bin/$b" >&2; exit 2; }
done

if [ "${LAB_REUSE:-0}" = 1 ]; then
  [ -n "${LAB_ID:-}" ] || { echo "LAB_REUSE=1 needs LAB_ID" >&2; exit 2; }
  eval "$("$LAB_SH" env)"
else
  export LAB_ID="bl$$" LAB_OWNER_PID=$$ LAB_HOSTS=${LAB_HOSTS:-16}
  trap '"$LAB_SH" down >/dev/null 2>&1 || true' EXIT
  eval "$("$LAB_SH" up 2>/dev/null)"
fi
sc() { "$LAB_SH" exec sc "$@"; }
# the documented kernel-quieting rule (docs/scanning.md), once
"$LAB_SH" quiet-scanner
OUT=$LAB_STATE/ceiling
mkdir -p "$OUT"

read -r HOSTS TARGETS <<<"$(python3 - "$LAB_TRUTH" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
live = [h for h in t["hosts"] if h["on_link"] and h["answers"] and h["role"] != "scanner"]
print(",".join(h["ip"] for h in live), " ".join("-t %s,%s" % (h["ip"], h["mac"]) for h in live))
EOF
)"
read -ra HOSTLIST <<<"${HOSTS//,/ }"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $(tr ',' '\n' <<<"$HOSTS" | wc -l) hosts x 65,535 ports"

# CPU ticks (user + system) of the softirq threads, all CPUs
SOFTIRQ_PIDS=$(pgrep -x 'ksoftirqd/[0-9]+' | tr '\n' ' ')
softirq_ticks() {
  local p s=0 f
  for p in $SOFTIRQ_PIDS; do
    read -ra f <"/proc/$p/stat" || continue
    s=$((s + f[13] + f[14]))
  done
  echo "$s"
}
HZ=$(getconf CLK_TCK)

declare -A WALL CPU SENT SOFT
# run NAME CMD...: one timed run in the scanner namespace; the command's own
# figures come from /usr/bin/time (wall, user, sys); frames from its output
run() {
  local name=$1; shift
  local k0 k1 wall user sys sent
  k0=$(softirq_ticks)
  sc /usr/bin/time -f 'TIME %e %U %S' "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" ||
    { echo "$name failed: $(tail -n 3 "$OUT/$name.err")" >&2; exit 1; }
  k1=$(softirq_ticks)
  read -r wall user sys <<<"$(grep '^TIME ' "$OUT/$name.err" | tail -n 1 | cut -d' ' -f2-)"
  if [[ $name == rawsend* ]]; then
    sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' "$OUT/$name.out")
  else
    sent=$(tail -n 1 "$OUT/$name.ndjson" | python3 -c 'import json,sys; print(json.load(sys.stdin)["probes_sent"])')
  fi
  WALL[$name]+="$wall " CPU[$name]+="$(echo "$user + $sys" | bc) " SENT[$name]=$sent
  SOFT[$name]+="$(echo "scale=2; ($k1 - $k0) / $HZ" | bc) "
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | sed -n "$(((RUNS + 1) / 2))p"; }

RS="$BUILD/bin/rawsend"
CM="$BUILD/bin/cmdb-full"
for _ in $(seq 1 "$RUNS"); do
  if [ "${CMDB_ONLY:-0}" = 1 ]; then
    run "cmdb retries 0" "$CM" discover "${HOSTLIST[@]}" -p 1-65535 --rate 1000000 --wait 0.3 \
      --retries 0 --no-service -q -o "$OUT/cmdb retries 0.ndjson"
    run "before: cmdb retries 0" "$CMDB_BEFORE" discover "${HOSTLIST[@]}" -p 1-65535 --rate 1000000 \
      --wait 0.3 --retries 0 --no-service -q -o "$OUT/before: cmdb retries 0.ndjson"
    continue
  fi
  # shellcheck disable=SC2086 # TARGETS is a list of -t options
  run "rawsend T1" "$RS" -i eth0 $TARGETS -T 1
  # shellcheck disable=SC2086
  run "rawsend T2" "$RS" -i eth0 $TARGETS -T 2
  # shellcheck disable=SC2086
  run "rawsend T2 + pcap" "$RS" -i eth0 $TARGETS -T 2 --pcap
  run "cmdb retries 0" "$CM" discover "${HOSTLIST[@]}" -p 1-65535 --rate 1000000 --wait 0.3 \
    --retries 0 --no-service -q -o "$OUT/cmdb retries 0.ndjson"
  run "cmdb" "$CM" discover "${HOSTLIST[@]}" -p 1-65535 --rate 1000000 --wait 0.3 \
    --no-service -q -o "$OUT/cmdb.ndjson"
  if [ -n "${CMDB_BEFORE:-}" ]; then
    run "before: cmdb retries 0" "$CMDB_BEFORE" discover "${HOSTLIST[@]}" -p 1-65535 --rate 1000000 \
      --wait 0.3 --retries 0 --no-service -q -o "$OUT/before: cmdb retries 0.ndjson"
    run "before: cmdb" "$CMDB_BEFORE" discover "${HOSTLIST[@]}" -p 1-65535 --rate 1000000 \
      --wait 0.3 --no-service -q -o "$OUT/before: cmdb.ndjson"
  fi
done

echo
echo "| sender | frames | wall (median) | CPU s (median) | frames/s | frames per CPU-s | softirq threads CPU s | walls (s) | CPUs (s) |"
echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
NAMES=("rawsend T1" "rawsend T2" "rawsend T2 + pcap" "cmdb retries 0" "cmdb")
[ -n "${CMDB_BEFORE:-}" ] && NAMES+=("before: cmdb retries 0" "before: cmdb")
for n in "${NAMES[@]}"; do
  [ -n "${WALL[$n]:-}" ] || continue
  w=$(median "${WALL[$n]}") c=$(median "${CPU[$n]}") s=${SENT[$n]}
  printf '| %s | %s | %.2f s | %.2f | %.0f | %.0f | %s | %s| %s|\n' "$n" "$s" "$w" "$c" \
    "$(echo "$s / $w" | bc -l)" "$(echo "$s / $c" | bc -l)" "$(median "${SOFT[$n]}")" "${WALL[$n]}" \
    "${CPU[$n]}"
done
