#!/usr/bin/env bash
# Regression: a connect() scan that is held up (a loaded machine, here
# SIGSTOP) must still count every connection that completed meanwhile. The
# scan used to take at most one batch of epoll events (256) and then expire
# every overdue connection, so the answered ones beyond the first batch were
# reported as silent: connect scans on a busy machine missed open ports.
#
# In a network namespace of our own (only its loopback exists): 1,000
# listening ports among 2,000 on 127.0.0.1 (every second one: a host open on
# nearly every port would be reported as a SYN proxy), a connect scan at
# 2,000 connections per second stopped for 1.2 s (four times its --wait) in
# the middle; every open port must be reported.   connect_stalled.sh CMDB_BINARY  (77: not root)
set -euo pipefail
cmdb=$1
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root"; exit 77; }
ns=cmdbcs-$$
dir=$(mktemp -d)
cleanup() {
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$ns" 2>/dev/null || { echo "skipped: cannot create a network namespace"; exit 77; }
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" python3 -c '
import socket, sys, time
socks = []
for p in range(42000, 44000, 2):
    s = socket.socket()
    s.bind(("127.0.0.1", p))
    s.listen(8)
    socks.append(s)
open(sys.argv[1], "w").close()
time.sleep(120)' "$dir/ready" &
disown $!  # killed by cleanup: no job notice
for _ in $(seq 1 100); do [ -e "$dir/ready" ] && break; sleep 0.1; done
[ -e "$dir/ready" ] || { echo "FAIL: the listeners did not start"; exit 1; }

ip netns exec "$ns" "$cmdb" discover 127.0.0.1 -p 42000-43999 --connect --no-service --rate 2000 \
  --retries 0 --wait 0.3 -q -o "$dir/out.ndjson" &
scan=$!
sleep 0.4
kill -STOP "$scan"
sleep 1.2
kill -CONT "$scan"
wait "$scan"
n=$(grep -c '"kind":"port"' "$dir/out.ndjson" || true)
if [ "$n" != 1000 ]; then
  echo "FAIL: $n of 1000 open ports reported after the scan was held up"
  exit 1
fi
echo "PASS: all 1000 open ports reported after the scan was held up"
