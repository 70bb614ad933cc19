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
