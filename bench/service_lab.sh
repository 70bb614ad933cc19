#!/usr/bin/env bash
# Service detection in the network-namespace lab: `cmdb discover` (port scan
# plus service detection) against `nmap -sV` on the same targets and ports,
# both run in the lab's scanner namespace in the same run. Needs root.
#
#   bench/service_lab.sh CMDB_BINARY [RUNS]
#
# The lab runs with its full service set (LAB_SERVICES=full: about 40 open
# TCP services: real nginx, PostgreSQL, sshd, redis, memcached, mosquitto,
# dnsmasq, and protocol servers for the rest). Prints the median wall time
# of RUNS runs (default 1: nmap -sV takes minutes here) of each, the ratio, and whether cmdb named every
# service as the lab's ground truth says (tests/discovery/e2e/compare.py).
# nmap's own result is summarised (open ports, how many it named); its names
# follow its own conventions, so it is not compared with the truth.
set -euo pipefail
CMDB=$(readlink -f "$1")
RUNS=${2:-1}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_SH="$TOP/tests/lab/lab.sh"
COMPARE="$TOP/tests/discovery/e2e/compare.py"
export PYTHONDONTWRITEBYTECODE=1
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 77; }
command -v nmap >/dev/null || { echo "nmap not found; run tools/deps.sh" >&2; exit 1; }

export LAB_ID="bs$$" LAB_OWNER_PID=$$ LAB_SERVICES=full
trap '"$LAB_SH" down >/dev/null 2>&1 || true' EXIT
eval "$("$LAB_SH" up 2>/dev/null)"
# The scanner's kernel must not answer our SYN-ACKs (docs/scanning.md).
"$LAB_SH" quiet-scanner
OUT=$LAB_STATE/bench
mkdir -p "$OUT"
A=198.18.1.0/24
B=198.18.2.0/24
# Every open TCP port of the lab and the ports around them.
PORTS=1-1024,1883,2222,3306,3389,5432,5900,6379,8080,8443,9100,9999,11211,27017,31337,40000-40100
N_TRUTH=$(python3 -c '
import json, sys
sys.path.insert(0, sys.argv[2])
from compare import port_set
t = json.load(open(sys.argv[1])); want = port_set(sys.argv[3])
print(sum(1 for h in t["hosts"] if h["answers"] for p in h["ports"] if p["proto"] == "tcp" and p["port"] in want))
' "$LAB_TRUTH" "$(dirname "$COMPARE")" "$PORTS")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $N_TRUTH open TCP services in the lab"

median() { sort -n | sed -n "$(((RUNS + 1) / 2))p"; }

cmdb_ms=() nmap_ms=()
for i in $(seq 1 "$RUNS"); do
  t0=$(date +%s%N)
  "$LAB_SH" exec sc "$CMDB" discover "$A" "$B" -p "$PORTS" --wait 0.3 -q -o "$OUT/cmdb.$i.ndjson"
  t1=$(date +%s%N)
  cmdb_ms+=("$(((t1 - t0) / 1000000))")
  t0=$(date +%s%N)
  "$LAB_SH" exec sc nmap -sV -T4 -n -p "$PORTS" -oX "$OUT/nmap.$i.xml" "$A" "$B" >/dev/null
  t1=$(date +%s%N)
  nmap_ms+=("$(((t1 - t0) / 1000000))")
done
c=$(printf '%s\n' "${cmdb_ms[@]}" | median)
n=$(printf '%s\n' "${nmap_ms[@]}" | median)

if python3 "$COMPARE" --truth "$LAB_TRUTH" --obs "$OUT/cmdb.$RUNS.ndjson" --cidr "$A" --cidr "$B" \
  --ports "$PORTS" --services >"$OUT/cmdb.cmp"; then
  verdict="every service named as the truth says ($(grep 'services named' "$OUT/cmdb.cmp"))"
else
  verdict="MISMATCH: $(grep -c FAIL "$OUT/cmdb.cmp") problems: $(grep FAIL "$OUT/cmdb.cmp" | head -n 5 | tr '\n' ';')"
fi
nmap_summary=$(python3 - "$OUT/nmap.$RUNS.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
ports = ET.parse(sys.argv[1]).getroot().findall(".//port")
open_ = [p for p in ports if p.find("state").get("state") == "open"]
named = [p for p in open_ if p.find("service") is not None
         and p.find("service").get("name") not in (None, "unknown", "tcpwrapped")]
print(f"{len(open_)} open ports, {len(named)} named")
EOF
)
printf '%-28s %7.2f s  (runs: %s ms)  %s\n' "cmdb discover (services)" "$(echo "$c / 1000" | bc -l)" \
  "${cmdb_ms[*]}" "$verdict"
printf '%-28s %7.2f s  (runs: %s ms)  %s\n' "nmap -sV -T4" "$(echo "$n / 1000" | bc -l)" \
  "${nmap_ms[*]}" "$nmap_summary"
printf 'ratio cmdb / nmap: %.3f (goal: under 0.1)\n' "$(echo "$c / $n" | bc -l)"
