#!/usr/bin/env bash
# Regression: a raw scan of this machine's own addresses must never put a
# frame on a network interface. The first `cmdb scan 127.0.0.1` sent its
# probes out of the interface of the default route, because loopback lives in
# the kernel's `local` table, which /proc/net/route does not show.
#
# Reproduced in a namespace of our own whose default route points through
# d0, one end of a veth pair whose other end is in the same namespace (frames
# sent there go nowhere else): scanning 127.0.0.1 and the namespace's own
# address must leave d0's transmit counter at zero.
#   local_target.sh CMDB_BINARY     (exit 77: skipped, not root)
set -euo pipefail
cmdb=$1
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root"; exit 77; }
ns=cmdblt-$$
cleanup() { ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true; ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns" 2>/dev/null || { echo "skipped: cannot create a network namespace"; exit 77; }
in_ns() { ip netns exec "$ns" "$@"; }
# no IPv6: the kernel's own router solicitations on d0 would count as traffic
in_ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
in_ns ip link set lo up
in_ns ip link add d0 type veth peer name d1
in_ns ip addr add 198.18.200.1/24 dev d0
in_ns ip link set d1 up
in_ns ip link set d0 up
in_ns ip route add default via 198.18.200.254 dev d0
routes=$(in_ns ip route)
[[ "$routes" == *"default via 198.18.200.254 dev d0"* ]] || { echo "FAIL: the namespace has no default route: $routes"; exit 1; }

tx() { in_ns cat /sys/class/net/d0/statistics/tx_packets; }
passed=0 failed=0
check() { if [ "$1" = "$2" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $3: got $1, want $2"; fi; }

before=$(tx)
out=$(in_ns timeout 60 "$cmdb" discover 127.0.0.1 -p 1-200 --wait 0.2 2>&1) || true
check "$(tx)" "$before" "frames sent on d0 while scanning 127.0.0.1"
if [[ "$out" == *'"kind":"scan_end"'* ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: no scan_end: $out"; fi
if [[ "$out" == *'"iface":"d0"'* ]]; then failed=$((failed + 1)); echo "FAIL: scanner chose d0 for 127.0.0.1"; else passed=$((passed + 1)); fi

before=$(tx)
in_ns timeout 60 "$cmdb" discover 198.18.200.1 -p 1-50 --wait 0.2 >/dev/null 2>&1 || true
check "$(tx)" "$before" "frames sent on d0 while scanning the namespace's own address"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
