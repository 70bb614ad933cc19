#!/usr/bin/env bash
# Records this machine in the CMDB from what it can read without scanning:
# its host name, network interfaces and addresses, related to each other.
# Idempotent: what is recorded already is left alone (identities decide).
# Stands in for the main job until `cmdb scan` exists.
#   tools/record-local.sh CMDB_BINARY
set -euo pipefail
cmdb=$1
host=$(hostname)

# has IDENTITY: is it held by a CI already?
has() { "$cmdb" ci show "$1" --json >/dev/null 2>&1; }
# relate SRC TYPE DST, tolerating "already"
relate() {
  local msg
  if ! msg=$("$cmdb" -q rel add "$1" "$2" "$3" 2>&1); then
    case $msg in *already*) ;; *) echo "$msg" >&2; return 1 ;; esac
  fi
}

has "fqdn=$host" || "$cmdb" ci add host "$host" -d "this machine (recorded locally)" \
  -a "os=$(uname -s | tr '[:upper:]' '[:lower:]')" -a "kernel=$(uname -r)" -a "arch=$(uname -m)" \
  -i "fqdn=$host" >/dev/null

# interfaces: "2: eth0    link/ether 02:42:ac:11:00:02 brd ..."
ip -o link show | while read -r _ ifname rest; do
  ifname=${ifname%:}; ifname=${ifname%@*}
  mac=$(sed -n 's/.*link\/\(ether\|loopback\) \([0-9a-f:]*\).*/\2/p' <<<"$rest")
  ident="interface=$host/$ifname"
  if ! has "$ident"; then
    args=(-i "$ident")
    # all-zero MACs (loopback) identify nothing
    [ -n "$mac" ] && [ "$mac" != 00:00:00:00:00:00 ] && ! has "mac=$mac" && args+=(-i "mac=$mac")
    "$cmdb" ci add network_interface "$host/$ifname" -d "interface $ifname of $host" \
      ${mac:+-a "mac=$mac"} "${args[@]}" >/dev/null
  fi
  relate "fqdn=$host" has_interface "$ident"
done

# addresses: "1: lo    inet 127.0.0.1/8 scope host lo ..."
ip -o addr show | while read -r _ ifname family cidr _; do
  addr=${cidr%/*}
  ident="host_ip=$host/$addr"
  has "$ident" || "$cmdb" ci add ip_address "$addr" -d "$family address of $host/$ifname" \
    -a "prefix=$cidr" -a "family=$family" -i "$ident" >/dev/null
  relate "interface=$host/$ifname" has_address "$ident"
done
