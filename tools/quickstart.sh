#!/usr/bin/env bash
# Command 1 of the README: installs what is missing, builds, records this
# machine in the CMDB (the embedded PostgreSQL server by default) and shows
# the inventory.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/deps.sh"
dir=$("$top/tools/build.sh" Release)
cmdb=$dir/bin/cmdb
"$cmdb" init
"$top/tools/record-local.sh" "$cmdb"
"$cmdb" ci list
echo
echo "cmdb is at $cmdb; try: $cmdb ci show $(hostname)    $cmdb help" >&2
