#!/usr/bin/env bash
# Installs every Debian 12 package that the build, the embedded PostgreSQL
# server and the test suite need. Idempotent: quiet and quick when all is
# present; runs apt-get only for what is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  clang                       # libFuzzer targets and the fuzz build type
  libpq-dev postgresql        # client library and the embedded server (initdb, pg_ctl, postgres)
  libjansson-dev              # JSON
  libcmocka-dev               # unit tests
  libxml2-dev libcsv-dev      # importers: nmap XML (streaming reader), CSV inventories
  nmap                        # test fixtures: nmap XML generated against loopback listeners
  libpcap-dev libpcre2-dev libssl-dev  # discovery: capture, service matching, TLS
  ieee-data                   # MAC vendor registry files
  iproute2 nftables procps util-linux  # namespace test lab, pkill/setpriv
  python3
  nginx openssl               # test lab: real http/https server, TLS certificates and s_server
  openssh-server redis-server memcached mosquitto dnsmasq-base snmpd  # lab: real daemons for service detection (LAB_SERVICES=full)
  tcpdump                     # test lab: captures inside a lab namespace for the --pcap e2e test
  ndiff                       # tests: nmap's ndiff reads cmdb discover -oX files
  time bc                     # bench/discover_*.sh: CPU time and peak RSS of a run, arithmetic
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "deps: missing packages (${missing[*]}) and not root; install them or run as root" >&2
    exit 1
  fi
else
  SUDO=
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
