#!/usr/bin/env bash
# Side-by-side benchmark of `cmdb discover` against nmap and masscan in the
# network-namespace lab (issue 3, "Performance"). Needs root.
#
#   bench/discover_compare.sh CMDB_BINARY [RUNS]
#
# In one run, interleaved (RUNS rounds, default 3, medians reported):
#   1. full-port sweep (1-65535) of the live hosts of subnet A (LAB_HOSTS,
#      default 16, plus the router and the scanner itself): cmdb discover
#      --no-service, nmap -sS -T4, masscan
#      (--rate 300000, the issue's ceiling, given the live hosts as targets:
#      it has no host discovery);
#   2. ARP discovery of the /24: cmdb discover -sn vs nmap -sn.
# SCANS=arp (or sweep) runs only that part (default: both).
# Every result is checked against the lab's ground truth: open ports missed
# and open ports invented, hosts missed. Prints a markdown table with the
# ratios. Every scanner runs inside the lab's scanner namespace, which has no
# default route; masscan, which keeps its own TCP/IP stack, is given the
# router's MAC explicitly.
#
# Installs nmap and masscan (Debian packages) when missing.
set -euo pipefail
CMDB=$(readlink -f "$1")
RUNS=${2:-3}
SCANS=${SCANS:-sweep,arp}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_SH="$TOP/tests/lab/lab.sh"
export PYTHONDONTWRITEBYTECODE=1
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 77; }
for pkg in nmap masscan; do
  command -v "$pkg" >/dev/null ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
done

export LAB_ID="bc$$" LAB_OWNER_PID=$$ LAB_HOSTS=${LAB_HOSTS:-16}
trap '"$LAB_SH" down >/dev/null 2>&1 || true' EXIT
eval "$("$LAB_SH" up 2>/dev/null)"
sc() { "$LAB_SH" exec sc "$@"; }
# our scanner's documented kernel-quieting rule (docs/scanning.md); masscan's
# own source port is put in the same range, so the rule serves it too
"$LAB_SH" quiet-scanner
OUT=$LAB_STATE/bench
mkdir -p "$OUT"

read -r A _ <<<"$LAB_SUBNETS"
read -r HOSTS RMAC RIP <<<"$(python3 - "$LAB_TRUTH" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
live = [h["ip"] for h in t["hosts"] if h["on_link"] and h["answers"]]
rt = next(h for h in t["hosts"] if h["role"] == "router")
print(",".join(live), rt["mac"], rt["ip"])
EOF
)"
NHOSTS=$(tr ',' '\n' <<<"$HOSTS" | wc -l)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $NHOSTS live hosts on $A"

# check KIND FILE [hosts]: "open M/N, missed X, invented Y" against the truth,
# or with "hosts" (host discovery runs) "hosts M/N, invented Y"
check() {
  python3 - "$LAB_TRUTH" "$HOSTS" "$1" "$2" "${3:-ports}" <<'EOF'
import json, sys, xml.etree.ElementTree as ET
truth, hosts, kind, path = json.load(open(sys.argv[1])), set(sys.argv[2].split(",")), sys.argv[3], sys.argv[4]
measure = sys.argv[5]
want_ports = {(h["ip"], p["port"]) for h in truth["hosts"] if h["ip"] in hosts for p in h["ports"]}
got_ports, got_hosts = set(), set()
if kind == "cmdb":
    for line in open(path):
        o = json.loads(line)
        if o["kind"] == "port" and o.get("state", "open") == "open":
            got_ports.add((o["ip"], o["port"]))
        elif o["kind"] == "host":
            got_hosts.add(o["ip"])
elif kind == "nmap":
    for h in ET.parse(path).getroot().iter("host"):
        if h.find("status").get("state") != "up":
            continue
        ip = next(a.get("addr") for a in h.iter("address") if a.get("addrtype") == "ipv4")
        got_hosts.add(ip)
        for p in h.iter("port"):
            if p.find("state").get("state") == "open":
                got_ports.add((ip, int(p.get("portid"))))
elif kind == "masscan":
    for line in open(path):
        f = line.split()
        if len(f) >= 4 and f[0] == "open":
            got_ports.add((f[3], int(f[2])))
if measure == "hosts":
    want_hosts = hosts
    print("hosts %d/%d, invented %d" % (len(got_hosts & want_hosts), len(want_hosts), len(got_hosts - want_hosts)))
else:
    print("open %d/%d, missed %d, invented %d" % (len(got_ports & want_ports), len(want_ports),
                                                 len(want_ports - got_ports), len(got_ports - want_ports)))
EOF
}

declare -A T V
# run NAME KIND[:hosts] OUTFILE CMD...: one timed run inside the scanner
# namespace, checked for open ports (KIND) or for hosts found (KIND:hosts)
run() {
  local name=$1 kind=$2 file=$3; shift 3
  local t0 t1
  t0=$(date +%s%N)
  sc "$@" >/dev/null 2>"$OUT/$name.err" || { echo "$name failed: $(tail -n 3 "$OUT/$name.err")" >&2; exit 1; }
  t1=$(date +%s%N)
  T[$name]+="$(((t1 - t0) / 1000000)) "
  V[$name]=$(check "${kind%%:*}" "$file" "$([[ $kind == *:hosts ]] && echo hosts || echo ports)")
}
# run_masscan NAME FILE ARGS...: like run, for masscan 1.3.2, which in this
# lab often does not exit after its --wait: the status line counts "waiting
# -N-secs" down forever, its receive thread blocked in a capture on a link
# that has gone quiet. A ping from the scanner's namespace to the router
# gives that thread a frame, and masscan then ends normally (output
# written). Its time is taken where its countdown passed zero; the verdict
# says it had to be woken. If even that fails it is stopped (SIGINT as its
# author advises, then SIGTERM) and its own count of open ports is reported.
run_masscan() {
  local name=$1 file=$2; shift 2
  local t0 t1 pid hung="" found
  : >"$OUT/$name.err"
  rm -f "$file"
  t0=$(date +%s%N)
  "$LAB_SH" exec sc masscan "$@" >/dev/null 2>"$OUT/$name.err" & # exec all the way: $! is masscan
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if tr '\r' '\n' <"$OUT/$name.err" | grep -q 'waiting -1-secs'; then
      t1=$(($(date +%s%N) - 1000000000))
      hung=" (woken after its wait)"
      sc ping -c 3 -i 0.2 -W 1 "$RIP" >/dev/null 2>&1 || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        hung=" (hung after its wait, stopped)"
        for _ in 1 2 3 4 5; do kill -INT "$pid" 2>/dev/null || break; sleep 0.3; done
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
      fi
      break
    fi
    sleep 0.1
  done
  if wait "$pid"; then :; elif [ -z "$hung" ]; then
    echo "$name failed: $(tail -c 300 "$OUT/$name.err")" >&2
    exit 1
  fi
  [ -n "$hung" ] || t1=$(date +%s%N)
  T[$name]+="$(((t1 - t0) / 1000000)) "
  # every run's verdict: they differ when masscan hangs in some runs only
  V[$name]+="${V[$name]:+; }run $i: $(check masscan "$file" 2>/dev/null || echo "no output file")$hung"
  if [[ $hung == *stopped* ]]; then
    found=$(tr '\r' '\n' <"$OUT/$name.err" | sed -n 's/.*found=\([0-9]*\).*/\1/p' | tail -n 1)
    V[$name]+=", its own count: found=$found"
  fi
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | sed -n "$(((RUNS + 1) / 2))p"; }

for i in $(seq 1 "$RUNS"); do
  if [[ $SCANS == *sweep* ]]; then
    # --no-service: nmap -sS and masscan name no services either
    run cmdb_sweep cmdb "$OUT/cmdb_sweep.ndjson" "$CMDB" discover "${HOSTS//,/ }" -p 1-65535 --rate 1000000 \
      --wait 0.3 --no-service -q -o "$OUT/cmdb_sweep.ndjson"
    # shellcheck disable=SC2086 # one argument per host
    run nmap_sweep nmap "$OUT/nmap_sweep.xml" nmap -n -sS -p 1-65535 -T4 -oX "$OUT/nmap_sweep.xml" ${HOSTS//,/ }
    # shellcheck disable=SC2086 # one argument per host
    run_masscan masscan_sweep "$OUT/masscan_sweep.txt" ${HOSTS//,/ } -p 1-65535 --rate 300000 \
      --wait 1 -e eth0 --router-mac "$RMAC" --source-port 61500 -oL "$OUT/masscan_sweep.txt"
  fi
  [[ $SCANS == *arp* ]] || continue
  run cmdb_arp cmdb:hosts "$OUT/cmdb_arp.ndjson" "$CMDB" discover "$A" -sn --retries 0 --wait 0.2 -q \
    -o "$OUT/cmdb_arp.ndjson"
  run nmap_arp nmap:hosts "$OUT/nmap_arp.xml" nmap -n -sn -oX "$OUT/nmap_arp.xml" "$A"
done

ms() { printf '%.2f s' "$(echo "$(median "${T[$1]}") / 1000" | bc -l)"; }
ratio() { printf '%.2fx' "$(echo "$(median "${T[$1]}") / $(median "${T[$2]}")" | bc -l)"; }
echo
echo "| scan | tool | median time | runs (ms) | result vs truth | nmap / this |"
echo "|---|---|---:|---|---|---:|"
for n in cmdb_sweep nmap_sweep masscan_sweep; do
  [[ $SCANS == *sweep* ]] || continue
  echo "| full sweep, $NHOSTS hosts x 65,535 ports | ${n%_*} | $(ms $n) | ${T[$n]}| ${V[$n]} | $(ratio nmap_sweep $n) |"
done
for n in cmdb_arp nmap_arp; do
  [[ $SCANS == *arp* ]] || continue
  echo "| ARP discovery of $A | ${n%_*} | $(ms $n) | ${T[$n]}| ${V[$n]} | $(ratio nmap_arp $n) |"
done
