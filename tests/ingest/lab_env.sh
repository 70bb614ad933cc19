# Sourced by the tests that scan the namespace lab into a CMDB
# (test_scan_lab.sh, test_scan_stream.sh), after tests/cli/lib.sh.
#
# lab_env NAME: sets TOP, LAB_SH, CHECK and PY, and exits 77 (skip) without
# root or network namespaces, saying why under NAME.
lab_env() {
  local name=$1 probe="cmdblab-probe$$"
  TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  LAB_SH="$TOP/tests/lab/lab.sh"
  CHECK="$TOP/tests/ingest/check_lab_cmdb.py"
  if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
  export PYTHONDONTWRITEBYTECODE=1
  if [ "$(id -u)" != 0 ]; then
    echo "$name: SKIP (needs root)"
    exit 77
  fi
  if ! ip netns add "$probe" 2>/dev/null; then
    echo "$name: SKIP (cannot create network namespaces)"
    exit 77
  fi
  ip netns del "$probe"
}

# lab_up NAME LETTER: a private embedded CMDB home (CMDB_HOME, no fsync) and
# the lab (LAB_ID: LETTER and this shell's pid), both torn down at exit,
# also on failure (a test may define lab_cleanup_more, run first); the
# scanner namespace's kernel is kept from answering the scanner's SYN-ACKs
# (docs/scanning.md). sc CMD... runs CMD in the scanner namespace.
lab_up() {
  home=$(mktemp -d "/tmp/cmdb-$1-XXXXXX")
  chmod 755 "$home"
  export CMDB_HOME=$home CMDB_EMBEDDED_NOSYNC=1
  export LAB_ID="$2$$" LAB_OWNER_PID=$$
  LAB_ID=${LAB_ID:0:12}
  trap lab_cleanup EXIT
  eval "$("$LAB_SH" up)" || { echo "FAIL lab did not come up"; exit 1; }
  "$LAB_SH" quiet-scanner
}
lab_cleanup() {
  if declare -F lab_cleanup_more >/dev/null; then lab_cleanup_more; fi
  "$LAB_SH" down >/dev/null 2>&1 || true
  "$CMDB" db stop -q >/dev/null 2>&1
  rm -rf "$home" "$out" "$err"
}
sc() { "$LAB_SH" exec sc "$@"; }

# lab_targets: subnets (array) and excl, what a scan of the lab leaves out:
# the scanner itself, and the router's addresses beyond its first (a scan
# cannot tell they belong to the router, so each would be a second host).
lab_targets() {
  local router_b
  router_b=$("$PY" -c '
import json, sys
t = json.load(open(sys.argv[1]))
print(" ".join(ip for h in t["hosts"] for ip in h.get("other_ips", []) if ip))' "$LAB_TRUTH")
  read -r -a subnets <<<"$LAB_SUBNETS"
  excl=$LAB_SCANNER_IP${router_b:+,${router_b// /,}}
}

# lab_wide_ports: 1-1500 and every open port of the truth above it, a list
# long enough (>= 64 ports) for the scanner to tell a SYN proxy.
lab_wide_ports() {
  "$PY" -c '
import json, sys
t = json.load(open(sys.argv[1]))
ps = {p["port"] for h in t["hosts"] for p in h["ports"] if p["port"] > 1500}
print(",".join(["1-1500"] + [str(p) for p in sorted(ps)]))' "$LAB_TRUTH"
}
