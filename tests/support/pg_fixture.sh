#!/usr/bin/env bash
# ctest fixture: starts (start) or stops (stop) the throwaway PostgreSQL
# server the database tests share, through cmdb's own embedded-server code.
# Each test file then creates a fresh database of its own on it.
#   pg_fixture.sh start|stop CMDB_BINARY HOME
set -euo pipefail
action=$1 cmdb=$2 home=$3
unset CMDB_DB PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE
export CMDB_HOME=$home CMDB_EMBEDDED_NOSYNC=1
case $action in
start)
  # a cluster left by an aborted run is reused if it still works, else replaced
  if ! "$cmdb" db start -q 2>/dev/null; then
    "$cmdb" db stop -q 2>/dev/null || true
    rm -rf "$home"
    "$cmdb" db start -q
  fi
  "$cmdb" db status
  ;;
stop)
  "$cmdb" db stop -q
  rm -rf "$home"
  ;;
*) echo "usage: $0 start|stop CMDB HOME" >&2; exit 2 ;;
esac
