#!/usr/bin/env bash
# Self-test of the network-namespace lab (ctest: lab_selftest, label "lab").
#
# Brings a lab up, checks from the scanner namespace that every ground-truth
# port is open and speaks as the truth says, that closed ports refuse, that
# filtered and dark hosts time out, that ICMP and ARP answers and MACs match,
# that no namespace has a default route and the root namespace is untouched;
# checks that a second lab does not collide and that `down --stale` removes
# it; brings the lab down and checks that nothing of it remains.
#
# Exit 77 (skip) when not root or when network namespaces cannot be created.
# Like every test that calls `lab.sh up`, it traps EXIT to call `lab.sh down`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_SH="$HERE/lab.sh"
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
export PYTHONDONTWRITEBYTECODE=1

if [ "$(id -u)" != 0 ]; then
  echo "lab_selftest: SKIP (needs root)"
  exit 77
fi
probe="cmdblab-probe$$"
if ! ip netns add "$probe" 2>/dev/null; then
  echo "lab_selftest: SKIP (cannot create network namespaces)"
  exit 77
fi
ip netns del "$probe"

export LAB_ID="st$$"
export LAB_OWNER_PID=$$
STALE_ID="st$$x"
owner=""
cleanup() {
  if [ -n "$owner" ]; then kill "$owner" 2>/dev/null || true; fi
  LAB_ID=$STALE_ID "$LAB_SH" down >/dev/null 2>&1 || true
  "$LAB_SH" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { # description command...
  local d=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi
}

root_snapshot() {
  ip -o link show | awk -F': ' '{ print $2 }' | sort
  ip route show table all 2>/dev/null | sort
  nft list ruleset 2>/dev/null | md5sum
}
before=$(root_snapshot)
t0=$SECONDS

# --- up -------------------------------------------------------------------
if ! out=$("$LAB_SH" up); then
  bad "lab.sh up"
  echo "$pass passed, $fail failed"
  exit 1
fi
ok "lab.sh up ($((SECONDS - t0))s)"
eval "$out"
check "up printed LAB_ID" test "$LAB_ID" = "st$$"
check "truth file exists" test -s "$LAB_TRUTH"
check "truth is valid JSON" "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$LAB_TRUTH"
check "lab.sh truth prints the truth file" cmp -s "$LAB_TRUTH" <("$LAB_SH" truth)
check "lab.sh status" "$LAB_SH" status

nodes=$("$PY" -c 'import json,sys; print(" ".join(h["name"] for h in json.load(open(sys.argv[1]))["hosts"]))' "$LAB_TRUTH")
mapfile -t nss < <(ip netns list | awk -v p="cmdblab-$LAB_ID-" 'index($1, p) == 1 { print $1 }')
check "one namespace per node plus the bridge (${#nss[@]})" test "${#nss[@]}" = "$(($(wc -w <<<"$nodes") + 1))"
check "default lab has 8 hosts on subnet A" test "$(grep -o '"subnet": "A"' "$LAB_TRUTH" | wc -l)" = 10

# --- safety ---------------------------------------------------------------
for ns in "${nss[@]}"; do
  check "$ns: no default route" test -z "$(ip -n "$ns" route show default; ip -n "$ns" -6 route show default 2>/dev/null)"
  check "$ns: only lab routes" bash -c "! ip -n '$ns' -4 route show | grep -v -E '^198\.18\.[12]\.0/24 ' | grep -q ."
done
check "scanner: 'ip route get 1.1.1.1' fails" bash -c "! ip -n '$LAB_SCANNER_NS' route get 1.1.1.1"
check "scanner: loopback up" bash -c "ip -n '$LAB_SCANNER_NS' -o link show lo | grep -q UP"
check "scanner: route to subnet B via the router" bash -c \
  "ip -n '$LAB_SCANNER_NS' route get 198.18.2.11 | grep -q 'via 198.18.1.254'"
check "exec by name runs in the scanner namespace" bash -c \
  "'$LAB_SH' exec sc ip -4 -o addr show dev eth0 | grep -q 198.18.1.1/24"
check "exec by address runs in that host's namespace" bash -c \
  "'$LAB_SH' exec 198.18.2.12 ip -4 -o addr show dev eth0 | grep -q 198.18.2.12/24"

# --- services, closed ports, dark hosts, ICMP, ARP (from the scanner) ------
while IFS= read -r line; do
  case $line in
    PASS\ *) ok "${line#PASS }" ;;
    FAIL\ *) bad "${line#FAIL }" ;;
    *) bad "check output: $line" ;;
  esac
done < <("$LAB_SH" exec sc timeout 60 "$PY" "$HERE/labsvc.py" check "$LAB_TRUTH" 2>&1 || true)

# A second, independent implementation for one open and one closed port.
check "bash /dev/tcp: a1:80 accepts" "$LAB_SH" exec sc timeout 3 bash -c 'exec 3<>/dev/tcp/198.18.1.11/80'
check "bash /dev/tcp: a5:80 refuses" "$LAB_SH" exec sc timeout 3 bash -c \
  '! exec 3<>/dev/tcp/198.18.1.15/80 && [ $? != 124 ]'
# The dark host never answers: a time-out, or "No route to host" once the
# scanner's neighbour entry for it has failed (it never answers ARP either).
dark=$("$LAB_SH" exec sc timeout 1 bash -c 'exec 3<>/dev/tcp/198.18.1.16/80' 2>&1) && rc=0 || rc=$?
if [ "$rc" = 124 ] || { [ "$rc" != 0 ] && [[ $dark == *"No route to host"* ]]; }; then
  ok "bash /dev/tcp: dark host a6:80 does not answer"
else
  bad "bash /dev/tcp: dark host a6:80 does not answer (rc $rc: $dark)"
fi

# --- a second lab: no collision, and down --stale ---------------------------
# Its owner is a sleep that is killed before `down --stale`, so that the lab
# is live (and safe from other tests' --stale sweeps) while it is checked.
sleep 60 &
owner=$!
if LAB_ID=$STALE_ID LAB_HOSTS=1 LAB_OWNER_PID=$owner "$LAB_SH" up >/dev/null; then
  ok "second lab up beside the first"
  check "second lab has its own scanner" test -e "/run/netns/cmdblab-$STALE_ID-sc"
  check "second lab's a1 answers in its own namespace" env LAB_ID="$STALE_ID" "$LAB_SH" exec sc \
    timeout 3 bash -c 'exec 3<>/dev/tcp/198.18.1.11/80'
  check "first lab still answers" "$LAB_SH" exec sc timeout 3 bash -c 'exec 3<>/dev/tcp/198.18.1.11/443'
  check "down --stale keeps a lab whose owner lives" bash -c \
    "'$LAB_SH' down --stale && test -e /run/netns/cmdblab-$STALE_ID-sc"
  kill "$owner" 2>/dev/null || true
  wait "$owner" 2>/dev/null || true
  "$LAB_SH" down --stale >/dev/null 2>&1 || true
  check "down --stale removed the orphaned lab" bash -c \
    "! ip netns list | grep -q 'cmdblab-$STALE_ID-' && ! test -e /tmp/cmdb-lab-$STALE_ID"
  check "down --stale kept the live lab" test -e "/run/netns/$LAB_SCANNER_NS"
else
  bad "second lab up beside the first"
fi

# --- down -------------------------------------------------------------------
pids=""
for ns in "${nss[@]}"; do pids+=" $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"; done
check "services are running before down" test -n "${pids// /}"
check "lab.sh down" "$LAB_SH" down
check "no namespace of the lab remains" bash -c "! ip netns list | grep -q 'cmdblab-$LAB_ID-'"
left=""
for p in $pids; do [ -d "/proc/$p" ] && left+=" $p"; done
check "no process of the lab remains${left:+ (left:$left)}" test -z "$left"
check "temp dir removed" test ! -e "$LAB_STATE"
check "down is idempotent" "$LAB_SH" down
check "status reports down" bash -c "'$LAB_SH' status; [ \$? = 3 ]"
after=$(root_snapshot)
check "root namespace links, routes and nft ruleset unchanged" test "$before" = "$after"

echo "$pass passed, $fail failed ($((SECONDS - t0))s)"
[ "$fail" = 0 ]
