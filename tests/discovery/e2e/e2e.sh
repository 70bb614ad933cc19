#!/usr/bin/env bash
# End-to-end tests of `cmdb discover` against the network-namespace lab
# (tests/lab). Usage: e2e.sh CMDB_BINARY SCENARIO
#
# Each run brings up its own lab (a trap tears it down, even on failure, as
# tests/lab/lab.sh asks), runs the scanner INSIDE the lab's scanner namespace
# and compares its observations with the lab's ground truth (compare.py).
# Nothing runs in the root namespace but lab.sh itself.
#
# Scenarios: syn discovery connect shard exclude dryrun sigint synproxy fullsweep
#            services (with the lab's full service set, LAB_SERVICES=full)
#            os pcap sn
#
# The scanner namespace gets one nftables rule, the documented way to keep its
# kernel from answering our SYN-ACKs with RSTs (docs/scanning.md): replies to
# the scanner's source ports 61000-61999 are dropped before the kernel's IP
# layer sees them (the capture, which taps the interface, still does).
#
# Exit 77 (skip) when not root or when network namespaces are unavailable.
set -euo pipefail

CMDB=$(readlink -f "$1")
SCENARIO=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)
LAB_SH="$TOP/tests/lab/lab.sh"
COMPARE="$HERE/compare.py"
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
export PYTHONDONTWRITEBYTECODE=1

if [ "$(id -u)" != 0 ]; then
  echo "discover_e2e_$SCENARIO: SKIP (needs root)"
  exit 77
fi
probe="cmdblab-dprobe$$"
if ! ip netns add "$probe" 2>/dev/null; then
  echo "discover_e2e_$SCENARIO: SKIP (cannot create network namespaces)"
  exit 77
fi
ip netns del "$probe"

export LAB_ID="d${SCENARIO:0:2}$$"
LAB_ID=${LAB_ID:0:12}
export LAB_OWNER_PID=$$
trap '"$LAB_SH" down >/dev/null 2>&1 || true' EXIT
[ "$SCENARIO" = services ] && export LAB_SERVICES=full
eval "$("$LAB_SH" up)"

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" = 0 ]
}

sc() { "$LAB_SH" exec sc "$@"; }
"$LAB_SH" quiet-scanner

A=198.18.1.0/24
B=198.18.2.0/24
PORTS=1-1024,2222,5432,6379,8080,8443,9999,31337,40000-40100
OUT=$LAB_STATE/e2e
mkdir -p "$OUT"

# discover NAME ARGS...: runs the scanner in the scanner namespace, output in $OUT/NAME.ndjson
discover() {
  local name=$1; shift
  local rc=0
  sc "$CMDB" discover "$@" -o "$OUT/$name.ndjson" 2>"$OUT/$name.err" || rc=$?
  sed 's/^/  stderr: /' "$OUT/$name.err"
  return $rc
}

# compare DESCRIPTION ARGS...: compare.py against the truth
compare() {
  local d=$1; shift
  if "$PY" "$COMPARE" --truth "$LAB_TRUTH" "$@"; then ok "$d"; else bad "$d"; fi
}

scan_end() { # file key -> value of the scan_end line's key
  "$PY" -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1]) if x.strip()]; print(json.dumps(l[-1].get(sys.argv[2])))' "$1" "$2"
}

case $SCENARIO in
syn)
  # SYN scan of both subnets: every live host, MAC and open port; nothing false.
  if discover syn "$A" "$B" -p "$PORTS" --rate 20000 --wait 0.5; then ok "scan exits 0"; else bad "scan exits 0"; fi
  compare "SYN scan matches the truth (hosts, MACs, vendors, ports, reasons)" \
    --obs "$OUT/syn.ndjson" --cidr "$A" --cidr "$B" --ports "$PORTS" --reasons
  # A list that starts with the scanner's own address (a subnet's live hosts,
  # as the benchmark gives them) is still a raw scan: it once fell back to
  # connect() because the interface was picked by the first target's route.
  if discover self 198.18.1.1 198.18.1.11 -p 80,443,8080 --wait 0.3 --no-service; then ok "own address first: exits 0"; else bad "own address first: exits 0"; fi
  if grep -q '"mode":"syn"' "$OUT/self.ndjson" && ! grep -q 'connect() instead' "$OUT/self.err"; then
    ok "own address first: still a SYN scan"; else bad "own address first: still a SYN scan"; fi
  if grep '"ip":"198.18.1.1"' "$OUT/self.ndjson" | grep -q '"localhost-response"' &&
     [ "$(grep -c '"kind":"port","scan_id":"[^"]*","at":"[^"]*","ip":"198.18.1.11".*"syn-ack"' "$OUT/self.ndjson")" = 3 ]; then
    ok "own address first: itself up, the other host's 3 ports by SYN-ACK"
  else bad "own address first: itself up, the other host's 3 ports by SYN-ACK"; fi
  ;;
discovery)
  # Host discovery: ARP on subnet A, ICMP/TCP across the router to subnet B. One
  # port only, so that hosts without it (a1, a5, b2) must come from discovery.
  if discover disc "$A" "$B" -p 22 --wait 0.5; then ok "scan exits 0"; else bad "scan exits 0"; fi
  compare "host discovery finds every live host, each for the right reason" \
    --obs "$OUT/disc.ndjson" --cidr "$A" --cidr "$B" --ports 22 --reasons
  if grep '"ip":"198.18.2.' "$OUT/disc.ndjson" | grep -q '"mac"'; then bad "routed hosts have no MAC"; else ok "routed hosts have no MAC"; fi
  # -Pn: no ping probes across the router; routed hosts appear because their ports answer.
  if discover pn "$B" -Pn -p 22,80,6379 --wait 0.5; then ok "-Pn scan exits 0"; else bad "-Pn scan exits 0"; fi
  compare "-Pn finds subnet B through its ports" --obs "$OUT/pn.ndjson" --cidr "$B" --ports 22,80,6379 --pn
  if grep -q '"echo-reply"\|"timestamp-reply"' "$OUT/pn.ndjson"; then bad "-Pn sent no ICMP"; else ok "-Pn sent no ICMP"; fi
  ;;
connect)
  if discover conn "$A" "$B" --connect -p "$PORTS" --rate 20000 --wait 0.5; then ok "connect scan exits 0"; else bad "connect scan exits 0"; fi
  compare "connect scan matches the truth" --obs "$OUT/conn.ndjson" --cidr "$A" --cidr "$B" --ports "$PORTS" --mode connect
  if grep -q '"mode":"connect"' "$OUT/conn.ndjson"; then ok "scan line says connect mode"; else bad "scan line says connect mode"; fi
  ;;
shard)
  # Two shards with one seed: together exactly the whole scan, no host twice.
  discover s1 "$A" "$B" -p "$PORTS" --rate 20000 --wait 0.5 --shard 1/2 --seed 42 || bad "shard 1/2 exits 0"
  discover s2 "$A" "$B" -p "$PORTS" --rate 20000 --wait 0.5 --shard 2/2 --seed 42 || bad "shard 2/2 exits 0"
  compare "shards 1/2 + 2/2 = the whole, disjoint" --obs "$OUT/s1.ndjson" --obs "$OUT/s2.ndjson" \
    --cidr "$A" --cidr "$B" --ports "$PORTS" --disjoint
  n1=$(grep -c '"kind":"host"' "$OUT/s1.ndjson" || true)
  n2=$(grep -c '"kind":"host"' "$OUT/s2.ndjson" || true)
  if [ "$n1" -gt 0 ] && [ "$n2" -gt 0 ]; then ok "both shards found hosts ($n1 + $n2)"; else bad "both shards found hosts ($n1 + $n2)"; fi
  discover c1 "$A" --connect -p 22,80 --wait 0.5 --shard 1/2 --seed 7 || bad "connect shard 1/2 exits 0"
  discover c2 "$A" --connect -p 22,80 --wait 0.5 --shard 2/2 --seed 7 || bad "connect shard 2/2 exits 0"
  compare "connect shards = the whole, disjoint" --obs "$OUT/c1.ndjson" --obs "$OUT/c2.ndjson" \
    --cidr "$A" --ports 22,80 --mode connect --disjoint
  ;;
exclude)
  printf '# excluded by file\n198.18.1.18\n' >"$OUT/exclude.txt"
  discover ex "$A" -p "$PORTS" --rate 20000 --wait 0.5 --exclude 198.18.1.11,198.18.1.13-14 \
    --excludefile "$OUT/exclude.txt" || bad "scan exits 0"
  compare "--exclude and --excludefile win over the targets" --obs "$OUT/ex.ndjson" --cidr "$A" --ports "$PORTS" \
    --exclude 198.18.1.11 --exclude 198.18.1.13 --exclude 198.18.1.14 --exclude 198.18.1.18
  # Excluding everything is refused, with a reason, before anything is sent.
  rc=0; discover all "$A" -p 80 --exclude "$A" || rc=$?
  if [ $rc = 1 ] && grep -q "no targets left" "$OUT/all.err"; then ok "all excluded: exit 1 with a reason"; else bad "all excluded: exit 1 with a reason (rc $rc)"; fi
  ;;
dryrun)
  # A dry run builds every probe and sends nothing: the scanner's interface
  # counters do not move, and no host or port is reported.
  tx() { sc cat /sys/class/net/eth0/statistics/tx_packets; }
  before=$(tx)
  if discover dry "$A" "$B" -p 1-100 --dry-run; then ok "dry run exits 0"; else bad "dry run exits 0"; fi
  after=$(tx)
  if [ "$before" = "$after" ]; then ok "nothing sent ($before -> $after tx packets)"; else bad "nothing sent ($before -> $after tx packets)"; fi
  if grep -q '"kind":"\(host\|port\)"' "$OUT/dry.ndjson"; then bad "no hosts or ports in a dry run"; else ok "no hosts or ports in a dry run"; fi
  # A: 255 addresses besides ours, one ARP each; B: 256 addresses, 4 discovery probes each;
  # then 100 ports for each of the 511 addresses.
  want=$((255 + 256 * 4 + 511 * 100))
  got=$(scan_end "$OUT/dry.ndjson" probes_built)
  if [ "$got" = "$want" ]; then ok "every probe built ($got)"; else bad "every probe built ($got, want $want)"; fi
  if [ "$(scan_end "$OUT/dry.ndjson" probes_sent)" = 0 ]; then ok "probes_sent 0"; else bad "probes_sent 0"; fi
  ;;
sigint)
  # Ctrl-C mid-scan: stops within a second or two, writes a scan_end line with
  # complete=false, exits 1, and what it did report is true.
  # lab.sh exec execs `ip netns exec`, which execs the scanner: $! is the scanner itself.
  "$LAB_SH" exec sc "$CMDB" discover "$A" -p- --rate 3000 --wait 0.5 -o "$OUT/int.ndjson" 2>"$OUT/int.err" &
  pid=$!
  for _ in $(seq 1 100); do # until the scan is under way (the scan line is out), at most 10 s
    [ -s "$OUT/int.ndjson" ] && break
    sleep 0.1
  done
  sleep 2
  # While it scans: no longer root, no capabilities, no way to gain any.
  st=$(cat "/proc/$pid/status" 2>/dev/null || true)
  if grep -qE '^Uid:\s+65534\s+65534\s+65534\s+65534' <<<"$st"; then ok "runs as nobody"; else bad "runs as nobody: $(grep ^Uid <<<"$st")"; fi
  if grep -qE '^CapEff:\s+0+$' <<<"$st" && grep -qE '^CapPrm:\s+0+$' <<<"$st"; then ok "no capabilities"; else bad "no capabilities: $(grep ^Cap <<<"$st" | tr '\n' ' ')"; fi
  if grep -qE '^NoNewPrivs:\s+1' <<<"$st"; then ok "no_new_privs set"; else bad "no_new_privs set"; fi
  t0=$SECONDS
  kill -INT "$pid"
  for _ in $(seq 1 100); do # bounded: at most 10 s, then it is killed and the test fails
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    bad "scanner ignored SIGINT for 10 s"
  fi
  rc=0; wait "$pid" || rc=$?
  sed 's/^/  stderr: /' "$OUT/int.err"
  if [ $((SECONDS - t0)) -le 5 ]; then ok "stopped within 5 s"; else bad "stopped within 5 s ($((SECONDS - t0)) s)"; fi
  if [ $rc = 1 ]; then ok "exit 1 when interrupted"; else bad "exit 1 when interrupted (rc $rc)"; fi
  if grep -q "interrupted" "$OUT/int.err"; then ok "says it was interrupted"; else bad "says it was interrupted"; fi
  compare "interrupted scan: scan_end complete=false, nothing false" --obs "$OUT/int.ndjson" --cidr "$A" --ports - \
    --complete no --partial
  ;;
synproxy)
  # nftables' synproxy on the quiet host a5 answers SYN-ACK on every port: it
  # must be reported as one host with syn_proxy, not as 200 open ports.
  "$LAB_SH" synproxy a5
  discover sp 198.18.1.11 198.18.1.15 -p 1-200 --wait 0.5 || bad "scan exits 0"
  if grep '"ip":"198.18.1.15"' "$OUT/sp.ndjson" | grep -q '"syn_proxy":true'; then ok "a5 reported as a SYN proxy"; else bad "a5 reported as a SYN proxy"; fi
  n=$(grep '"kind":"port"' "$OUT/sp.ndjson" | grep -c '"ip":"198.18.1.15"' || true)
  if [ "$n" = 0 ]; then ok "no port lines for the proxy"; else bad "no port lines for the proxy ($n)"; fi
  if grep '"kind":"port"' "$OUT/sp.ndjson" | grep -q '"ip":"198.18.1.11","proto":"tcp","port":80,'; then ok "a1 still reports its ports"; else bad "a1 still reports its ports"; fi
  ;;
fullsweep)
  # All 65,536 ports of every host at a high rate: still every open port, nothing false.
  t0=$(date +%s.%N)
  discover full "$A" "$B" -p- --rate 500000 --wait 0.5 || bad "scan exits 0"
  t1=$(date +%s.%N)
  echo "  full sweep took $(echo "$t1 - $t0" | bc 2>/dev/null || echo "?") s"
  compare "full-port sweep matches the truth" --obs "$OUT/full.ndjson" --cidr "$A" --cidr "$B" --ports -
  ;;
services)
  # Service detection over every open port of the full service set: each named
  # as the truth says (product, version, TLS and certificate where it knows
  # them), nothing named that is not open; raw and connect mode; UDP (dns,
  # snmp) through -p U:...; --no-service writes no service line.
  SP=$PORTS,1883,3306,3389,5900,9100,11211,27017
  if discover svc "$A" "$B" -p "$SP,U:53,161" --rate 20000 --wait 0.3; then ok "scan exits 0"; else bad "scan exits 0"; fi
  compare "SYN scan + services match the truth" --obs "$OUT/svc.ndjson" --cidr "$A" --cidr "$B" \
    --ports "$SP" --services --udp-ports 53,161
  if grep -q '"service_detection":true' "$OUT/svc.ndjson"; then ok "scan line says service detection on"; else bad "scan line says service detection on"; fi
  if discover svcc "$A" "$B" --connect -p "$SP" --rate 20000 --wait 0.5; then ok "connect scan exits 0"; else bad "connect scan exits 0"; fi
  compare "connect scan + services match the truth" --obs "$OUT/svcc.ndjson" --cidr "$A" --cidr "$B" \
    --ports "$SP" --mode connect --services
  if discover nosvc "$A" -p 22,80 --wait 0.3 --no-service; then ok "--no-service exits 0"; else bad "--no-service exits 0"; fi
  if grep -q '"kind":"service"' "$OUT/nosvc.ndjson"; then bad "--no-service: no service lines"; else ok "--no-service: no service lines"; fi
  if grep -q '"service_detection":false' "$OUT/nosvc.ndjson"; then ok "scan line says service detection off"; else bad "scan line says service detection off"; fi
  ;;
os)
  # --os on a SYN scan: every host that sent a SYN-ACK is guessed Linux (the
  # lab's hosts are Linux namespaces), the others get no guess; -oX carries it.
  if discover os "$A" "$B" -p "$PORTS" --rate 20000 --wait 0.5 --os -oX "$OUT/os.xml"; then ok "scan exits 0"; else bad "scan exits 0"; fi
  compare "--os scan still matches the truth" --obs "$OUT/os.ndjson" --cidr "$A" --cidr "$B" --ports "$PORTS"
  # the SSH banner of a4 ("Debian-2+deb12u3"), seen by service detection,
  # makes its guess more precise: services are detected before host lines
  if "$PY" "$HERE/check_os.py" --obs "$OUT/os.ndjson" --xml "$OUT/os.xml" --family Linux --min-confidence 60 \
      --guess 198.18.1.14="Debian Linux 12"; then
    ok "every host with a SYN-ACK is Linux, the rest have no guess, a4's SSH banner says Debian 12; the XML agrees"
  else bad "OS guesses"; fi
  ;;
pcap)
  # Passive: capture in the scanner's namespace while a SYN scan runs and a
  # few services are talked to, then read the capture with --pcap. It must
  # show the same hosts and open ports as the scan, with the banners of the
  # services talked to and a Linux guess, and send nothing. (The scanner's
  # own probes bypass the qdisc, and with it the capture: its address shows
  # through the connections the kernel makes. --immediate-mode: without it
  # the last packets wait in a ring block that tcpdump never reads.)
  command -v tcpdump >/dev/null || { echo "discover_e2e_pcap: SKIP (no tcpdump)"; exit 77; }
  "$LAB_SH" exec sc tcpdump -Z root -U --immediate-mode -B 32768 -n -i eth0 -s 0 -w "$OUT/lab.pcap" 2>"$OUT/tcpdump.err" &
  tcpdump_pid=$!
  for _ in $(seq 1 50); do grep -q "listening on" "$OUT/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
  # A modest rate: tcpdump must keep up, or the capture itself has holes.
  discover live "$A" "$B" -p "$PORTS" --rate 4000 --wait 0.5 || bad "live scan exits 0"
  # talk to speak-first services so that their banners are in the capture
  for ep in 198.18.1.13:25 198.18.1.14:22 198.18.2.11:22; do
    sc "$PY" -c 'import socket, sys
h, p = sys.argv[1].split(":")
s = socket.create_connection((h, int(p)), timeout=3)
s.settimeout(3)
s.recv(256)
s.close()' "$ep" || bad "talking to $ep"
  done
  sleep 0.3
  kill -INT "$tcpdump_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$tcpdump_pid" 2>/dev/null || break; sleep 0.1; done
  wait "$tcpdump_pid" 2>/dev/null || true
  sed 's/^/  tcpdump: /' "$OUT/tcpdump.err"
  tx() { sc cat /sys/class/net/eth0/statistics/tx_packets; }
  before=$(tx)
  if discover passive --pcap "$OUT/lab.pcap" "$A" "$B" --os -oX "$OUT/passive.xml"; then ok "--pcap exits 0"; else bad "--pcap exits 0"; fi
  after=$(tx)
  if [ "$before" = "$after" ]; then ok "--pcap sent nothing"; else bad "--pcap sent nothing ($before -> $after)"; fi
  compare "the capture shows the truth's hosts, MACs and open ports" --obs "$OUT/passive.ndjson" \
    --cidr "$A" --cidr "$B" --ports "$PORTS"
  if "$PY" "$HERE/check_os.py" --obs "$OUT/passive.ndjson" --xml "$OUT/passive.xml" --family Linux --min-confidence 60 \
      --banner 198.18.1.13:25="220 mail.lab.test ESMTP Postfix" --banner 198.18.1.14:22=SSH-2.0-OpenSSH_9.2p1 \
      --banner 198.18.2.11:22=SSH-2.0-OpenSSH_9.2p1 --guess 198.18.1.14="Debian Linux 12"; then
    ok "passive OS guesses and banners"
  else bad "passive OS guesses and banners"; fi
  ;;
sn)
  # -sn, host discovery only, on both subnets: every live host (on-link ones
  # by ARP with their MAC, routed ones by ICMP/TCP), nothing invented, not one
  # port or service line; the scan line covers both subnets and no port.
  if discover sn "$A" "$B" -sn --wait 0.5 -oX "$OUT/sn.xml"; then ok "-sn exits 0"; else bad "-sn exits 0"; fi
  compare "-sn finds every live host, for the right reason, and no port" \
    --obs "$OUT/sn.ndjson" --cidr "$A" --cidr "$B" --sn --reasons
  if "$PY" -c 'import json, sys
s = json.loads(open(sys.argv[1]).readline())
sys.exit(not (s.get("scope") == ["198.18.1.0/24", "198.18.2.0/24"] and
              s.get("scope_ports") == {"tcp": [], "udp": []}))' "$OUT/sn.ndjson"; then
    ok "scope: both subnets, no ports"; else bad "scope: both subnets, no ports: $(head -n 1 "$OUT/sn.ndjson")"; fi
  # -oX as nmap writes a ping scan: the hosts up, no scaninfo, no ports
  if "$PY" -c 'import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
up = [h for h in r.iter("host") if h.find("status").get("state") == "up"]
sys.exit(not (len(up) == 12 and r.find("scaninfo") is None and not list(r.iter("port"))))' "$OUT/sn.xml"; then
    ok "-sn -oX: 12 hosts up, no scaninfo, no port"; else bad "-sn -oX: 12 hosts up, no scaninfo, no port"; fi
  # connect mode: discovery by connect() to 80, 443, 22 and the neighbour cache
  if discover snc "$A" "$B" -sn --connect --wait 0.5; then ok "-sn --connect exits 0"; else bad "-sn --connect exits 0"; fi
  compare "-sn --connect finds every live host (MACs from the neighbour cache), no port" \
    --obs "$OUT/snc.ndjson" --cidr "$A" --cidr "$B" --sn --mode connect
  # a dry run builds the discovery probes only and sends nothing
  tx() { sc cat /sys/class/net/eth0/statistics/tx_packets; }
  before=$(tx)
  if discover sndry "$A" "$B" -sn --dry-run; then ok "-sn dry run exits 0"; else bad "-sn dry run exits 0"; fi
  after=$(tx)
  if [ "$before" = "$after" ]; then ok "-sn dry run sent nothing"; else bad "-sn dry run sent nothing ($before -> $after)"; fi
  want=$((255 + 256 * 4)) # an ARP per address of A besides ours, 4 probes per address of B
  got=$(scan_end "$OUT/sndry.ndjson" probes_built)
  if [ "$got" = "$want" ]; then ok "-sn dry run: discovery probes only ($got)"; else bad "-sn dry run: discovery probes only ($got, want $want)"; fi
  ;;
*)
  echo "unknown scenario $SCENARIO" >&2
  exit 2
  ;;
esac
finish
