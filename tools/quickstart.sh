#!/usr/bin/env bash
# Command 1 of the README: installs what is missing, builds, discovers this
# machine (cmdb scan 127.0.0.1) into the CMDB (the embedded PostgreSQL server
# by default) and shows the inventory it produced.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/deps.sh"
dir=$("$top/tools/build.sh" Release)
cmdb=$dir/bin/cmdb
"$cmdb" init
"$cmdb" scan 127.0.0.1
"$cmdb" ci list
echo
echo "cmdb is at $cmdb; try: $cmdb scans;  $cmdb ci show ip=127.0.0.1;  $cmdb help" >&2
