#!/usr/bin/env bash
# cmdb network-namespace test lab.
#
#   lab.sh up            build the lab, start every service, wait until each
#                        port listens, write the ground truth; prints
#                        KEY=value lines for eval (LAB_ID, LAB_STATE,
#                        LAB_TRUTH, LAB_SCANNER_NS, ...)
#   lab.sh down          tear it down (idempotent): kill every process in the
#                        lab's namespaces, delete them, remove the temp dir
#   lab.sh down --stale  tear down every lab whose creator process is gone
#   lab.sh status [--all] show this lab (or every lab on the machine)
#   lab.sh env           print the KEY=value lines of a running lab again
#   lab.sh exec HOST CMD...  run CMD in a lab namespace; HOST is a node name
#                        (sc|scanner, rt|router, br, a1..aN, b1, b2) or its IP
#   lab.sh truth         print the ground truth JSON (also in $LAB_TRUTH)
#   lab.sh quiet-scanner add the nftables rule that keeps the scanner
#                        namespace's kernel from answering SYN-ACKs meant for
#                        a raw scan (docs/scanning.md); idempotent
#   lab.sh synproxy HOST put nftables' SYN proxy in front of HOST: it answers
#                        SYN-ACK on every port, as a tarpit or load balancer
#                        would; idempotent
#
# Environment:
#   LAB_ID     instance id, [A-Za-z0-9]{1,12}; prefixes every namespace
#              (cmdblab-$LAB_ID-*). Default: "p" + the caller's pid ($PPID),
#              so repeated calls from one shell address one lab. Tests should
#              set it explicitly: export LAB_ID=t$$.
#   LAB_HOSTS  hosts on subnet A (1..64, default 8)
#   LAB_SERVICES  "full" adds two nodes for service detection: s1 with real
#              daemons (sshd, redis, memcached, mosquitto, dnsmasq, snmpd)
#              and s2 with protocol servers (mysql, mongodb, smb, rdp, ldap,
#              ldaps, vnc, telnet, PJL, IPP); default: none (quicker up)
#   LAB_WAIT   seconds to wait for all services to listen (default 20)
#   LAB_OWNER_PID  pid whose death makes the lab stale (default $PPID)
#   LAB_KEEP=1 keep a lab whose `up` failed, for inspection (default: remove)
#
# RULE FOR TESTS: every test that calls `lab.sh up` must install a trap that
# calls `lab.sh down` on EXIT (and so also on failure or interruption), before
# calling up:
#     export LAB_ID=t$$
#     trap '"$LAB_SH" down >/dev/null 2>&1 || true' EXIT
#     eval "$("$LAB_SH" up)"
# A failed `up` cleans up after itself. `down --stale` sweeps labs whose
# creator was killed before its trap could run (e.g. SIGKILL by a timeout).
#
# SAFETY: nothing is created in the root network namespace: no interface,
# route, bridge or nft rule. Bridges live in their own namespace (…-br), every
# veth is created inside lab namespaces, and no lab namespace has a link to
# the outside, so no packet can leave the lab. Addresses are from the RFC 2544
# benchmarking range (198.18.0.0/15). No namespace has a default route; `up`
# verifies that before it succeeds. See README.md.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_SH="$LAB_DIR/lab.sh"
STATE_ROOT=/tmp
NS_PREFIX=cmdblab
SUBNET_A=198.18.1.0/24
SUBNET_B=198.18.2.0/24
ROUTER_A=198.18.1.254
ROUTER_B=198.18.2.254
SCANNER_IP=198.18.1.1
MAX_HOSTS=64

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "$LAB_SH" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3 || echo python3); fi
export PYTHONDONTWRITEBYTECODE=1   # keep the source tree clean

lab_id_default() {
  local id=${LAB_ID:-p$PPID}
  [[ $id =~ ^[A-Za-z0-9]{1,12}$ ]] || die "LAB_ID must match [A-Za-z0-9]{1,12}, got '$id'"
  printf '%s' "$id"
}

ns_name() { printf '%s-%s-%s' "$NS_PREFIX" "$1" "$2"; }   # id node
state_dir() { printf '%s/cmdb-lab-%s' "$STATE_ROOT" "$1"; }

# Start time of a pid (clock ticks since boot), empty when it does not exist.
pid_start() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  # shellcheck disable=SC2086 # split the fields on purpose
  set -- $stat
  printf '%s' "${20}"
}

# All namespaces of lab $1 that exist now.
lab_namespaces() {
  ip netns list 2>/dev/null | awk -v p="$NS_PREFIX-$1-" 'index($1, p) == 1 { print $1 }'
}

# Lab ids known on this machine (state dirs and namespaces).
all_lab_ids() {
  {
    local d
    for d in "$STATE_ROOT"/cmdb-lab-*; do
      [ -d "$d" ] && printf '%s\n' "${d##*/cmdb-lab-}"
    done
    ip netns list 2>/dev/null | awk -v p="$NS_PREFIX-" 'index($1, p) == 1 { print $1 }' |
      sed -n "s/^$NS_PREFIX-\([A-Za-z0-9]*\)-.*/\1/p"
  } | sort -u
}

# ---------------------------------------------------------------------------
# down

lab_down() {
  local id=$1 st nss ns pids p all i
  st=$(state_dir "$id")
  mapfile -t nss < <(lab_namespaces "$id")
  if [ ${#nss[@]} -gt 0 ]; then
    # PostgreSQL: fast shutdown (SIGINT) first, so that open client sessions
    # do not hold up a smart shutdown; only if the pid is inside the lab.
    local pgpid f lab_pids=" "
    for ns in "${nss[@]}"; do lab_pids+="$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"; done
    for f in "$st"/*/pg/data/postmaster.pid; do
      [ -f "$f" ] || continue
      pgpid=$(head -n 1 "$f")
      if [[ $lab_pids == *" $pgpid "* ]]; then kill -INT "$pgpid" 2>/dev/null || true; fi
    done
    # TERM everything, wait up to 3 s, then KILL what is left, wait up to 2 s.
    for sig in TERM KILL; do
      all=()
      for ns in "${nss[@]}"; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        for p in $pids; do [ "$p" != "$$" ] && all+=("$p"); done
      done
      [ ${#all[@]} -eq 0 ] && break
      kill -s "$sig" "${all[@]}" 2>/dev/null || true
      for ((i = 0; i < 30; i++)); do
        local alive=0
        for p in "${all[@]}"; do [ -d "/proc/$p" ] && { alive=1; break; }; done
        [ $alive -eq 0 ] && break
        sleep 0.1
      done
    done
    for ns in "${nss[@]}"; do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -n "$pids" ] && log "warning: processes survive in $ns: $pids"
      ip netns del "$ns" 2>/dev/null || log "warning: could not delete namespace $ns"
    done
  fi
  if [ -d "$st" ]; then
    rm -rf --one-file-system "$st"
  fi
  [ -z "$(lab_namespaces "$id")" ] && [ ! -e "$st" ]
}

lab_is_stale() {
  local id=$1 st pid start
  st=$(state_dir "$id")
  if [ ! -f "$st/lab.env" ]; then
    # A state dir younger than a minute without lab.env is an `up` in its
    # first instant; anything else without lab.env is orphaned.
    if [ -d "$st" ] && [ -n "$(find "$st" -maxdepth 0 -mmin -1 2>/dev/null)" ]; then return 1; fi
    return 0
  fi
  pid=$(sed -n 's/^CREATOR_PID=//p' "$st/lab.env")
  start=$(sed -n 's/^CREATOR_START=//p' "$st/lab.env")
  [ -n "$pid" ] && [ -n "$start" ] || return 0
  if [ "$(pid_start "$pid")" = "$start" ]; then return 1; fi
  return 0
}

cmd_down() {
  if [ "${1:-}" = "--stale" ]; then
    local id n=0
    for id in $(all_lab_ids); do
      if lab_is_stale "$id"; then
        log "removing stale lab $id"
        lab_down "$id" || true
        n=$((n + 1))
      fi
    done
    log "$n stale lab(s) removed"
    return 0
  fi
  [ $# -eq 0 ] || usage
  local id
  id=$(lab_id_default)
  lab_down "$id" || die "lab $id not completely removed"
}

# ---------------------------------------------------------------------------
# The plan: nodes, addresses, MACs, services

declare -a NODES=()
declare -A N_NS N_IP N_MAC N_SUBNET N_ROLE N_HOST N_PY N_NGINX N_PG N_SSRV N_FW N_HIDDEN N_CERT N_REAL

add_node() { # name role subnet ip mac hostname
  NODES+=("$1")
  N_ROLE[$1]=$2 N_SUBNET[$1]=$3 N_IP[$1]=$4 N_MAC[$1]=$5 N_HOST[$1]=$6
  N_PY[$1]="" N_NGINX[$1]=0 N_PG[$1]=0 N_SSRV[$1]="" N_FW[$1]=none N_HIDDEN[$1]=0 N_CERT[$1]=0
  N_REAL[$1]=""
}

mac_for() { printf '02:1a:b0:00:%02x:%02x' "$1" "$2"; }   # subnet-octet host-octet

plan() {
  local id=$1 hosts=$2 i ip last
  add_node sc scanner A "$SCANNER_IP" "$(mac_for 1 1)" scanner.lab.test
  add_node rt router A "$ROUTER_A" "$(mac_for 1 254)" router.lab.test
  for ((i = 1; i <= hosts; i++)); do
    last=$((10 + i)); ip=198.18.1.$last
    case $i in
      1) add_node a$i web A "$ip" "$(printf '00:1b:21:00:01:%02x' $last)" web.lab.test   # Intel OUI
         N_NGINX[a$i]=1 N_PY[a$i]="http:8080" N_CERT[a$i]=1 ;;
      2) add_node a$i db A "$ip" "$(mac_for 1 $last)" db.lab.test
         N_PG[a$i]=1 N_PY[a$i]="redis:6379" ;;
      3) add_node a$i mail A "$ip" "$(mac_for 1 $last)" mail.lab.test
         N_PY[a$i]="smtp:25 pop3:110 imap:143 smtps:465 imaps:993 pop3s:995" N_CERT[a$i]=1 ;;
      4) add_node a$i shell A "$ip" "$(mac_for 1 $last)" shell.lab.test
         N_PY[a$i]="ftp:21 ssh:22" N_SSRV[a$i]=8443 N_CERT[a$i]=1 ;;
      5) add_node a$i quiet A "$ip" "$(mac_for 1 $last)" quiet.lab.test ;;
      6) add_node a$i dark A "$ip" "$(mac_for 1 $last)" dark.lab.test
         N_FW[a$i]=dropall N_PY[a$i]="http:80" N_HIDDEN[a$i]=1 ;;
      7) add_node a$i firewalled A "$ip" "$(mac_for 1 $last)" fw.lab.test
         N_FW[a$i]=sshonly N_PY[a$i]="ssh:22" ;;
      8) add_node a$i misc A "$ip" "$(mac_for 1 $last)" misc.lab.test
         N_PY[a$i]="http:80 ssh:2222 silent:9999 unknown:31337" ;;
      *) add_node a$i generic A "$ip" "$(mac_for 1 $last)" "host$i.lab.test"
         if ((i % 2)); then N_PY[a$i]="ssh:22 smtp:25 http:80"; else N_PY[a$i]="ftp:21 ssh:22 redis:6379"; fi
         N_PY[a$i]+=" unknown:$((40000 + i))" ;;
    esac
  done
  add_node b1 generic B 198.18.2.11 "$(mac_for 2 11)" b1.lab.test
  N_PY[b1]="ssh:22 http:80"
  add_node b2 mail B 198.18.2.12 "$(mac_for 2 12)" b2.lab.test
  N_PY[b2]="smtp:25 redis:6379 imaps:993" N_CERT[b2]=1
  if [ "${LAB_SERVICES:-}" = full ]; then
    add_node s1 services A 198.18.1.201 "$(mac_for 1 201)" s1.lab.test
    N_REAL[s1]="sshd:22 redis-server:6379 memcached:11211 mosquitto:1883 dnsmasq:53 dnsmasq-udp:53 snmpd:161"
    add_node s2 protocols A 198.18.1.202 "$(mac_for 1 202)" s2.lab.test
    N_PY[s2]="telnet:23 ldap:389 smb:445 ipp:631 ldaps:636 mysql:3306 rdp:3389 vnc:5900 pjl:9100 mongodb:27017"
    N_CERT[s2]=1
  fi
  local n
  for n in "${NODES[@]}"; do N_NS[$n]=$(ns_name "$id" "$n"); done
}

# ---------------------------------------------------------------------------
# up

UP_OK=0
UP_ID=""
up_cleanup() {
  local rc=$?
  if [ "$UP_OK" != 1 ] && [ -n "$UP_ID" ] && [ "${LAB_KEEP:-0}" = 1 ]; then
    log "up failed (exit $rc); LAB_KEEP=1: lab $UP_ID kept for inspection in $ST; 'LAB_ID=$UP_ID $LAB_SH down' removes it"
  elif [ "$UP_OK" != 1 ] && [ -n "$UP_ID" ]; then
    log "up failed (exit $rc); tearing down lab $UP_ID"
    local j
    for j in $(jobs -p); do kill "$j" 2>/dev/null || true; done
    lab_down "$UP_ID" >/dev/null 2>&1 || log "warning: cleanup of lab $UP_ID incomplete"
  fi
}

require() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || die "'$c' not found; run tools/deps.sh"; done
}

nsx() { local n=$1; shift; ip netns exec "${N_NS[$n]}" "$@"; }

# Background service: name label cmd... (cwd is the state dir, stdio to a log)
declare -a SVC_PIDS=()
start_svc() {
  local n=$1 label=$2; shift 2
  local logf="$ST/log/$n-$label.log"
  (cd "$ST" && exec ip netns exec "${N_NS[$n]}" setsid "$@" </dev/null >"$logf" 2>&1) &
  SVC_PIDS+=("$!|$n|$label|$logf")
}

# Ports a node must be listening on: "port:label ..."
declare -A N_LISTEN N_ULISTEN
want_listen() { N_LISTEN[$1]+="$2:$3 "; }
want_listen_udp() { N_ULISTEN[$1]+="$2:$3 "; }

# Real daemons of a LAB_SERVICES=full node, each in the foreground under
# start_svc, with its configuration and state under $ST/NODE.
start_real() { # node
  local n=$1 d="$ST/$1" spec kind port
  mkdir -p "$d"
  for spec in ${N_REAL[$n]}; do
    kind=${spec%%:*} port=${spec#*:}
    case $kind in
      sshd)
        require /usr/sbin/sshd ssh-keygen
        ssh-keygen -q -t ed25519 -N '' -f "$d/ssh_host_ed25519_key" </dev/null >/dev/null ||
          die "ssh-keygen failed for $n"
        printf 'Port %s\nListenAddress 0.0.0.0\nHostKey %s\nPidFile %s\nUsePAM no\nUseDNS no\nPasswordAuthentication no\n' \
          "$port" "$d/ssh_host_ed25519_key" "$d/sshd.pid" >"$d/sshd_config"
        # sshd insists on its privilege separation directory (normally made at boot).
        [ -d /run/sshd ] || install -d -m 0755 /run/sshd
        start_svc "$n" sshd /usr/sbin/sshd -D -e -f "$d/sshd_config"
        want_listen "$n" "$port" sshd ;;
      redis-server)
        require redis-server
        start_svc "$n" redis setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
          redis-server --port "$port" --bind 0.0.0.0 --protected-mode no --save '' \
          --appendonly no --dir /tmp --daemonize no
        want_listen "$n" "$port" redis-server ;;
      memcached)
        require memcached
        start_svc "$n" memcached memcached -u nobody -l 0.0.0.0 -p "$port" -U 0
        want_listen "$n" "$port" memcached ;;
      mosquitto)
        require mosquitto
        printf 'listener %s 0.0.0.0\nallow_anonymous true\npersistence false\nlog_dest stderr\nuser nobody\n' \
          "$port" >"$d/mosquitto.conf"
        start_svc "$n" mosquitto mosquitto -c "$d/mosquitto.conf"
        want_listen "$n" "$port" mosquitto ;;
      dnsmasq)
        require dnsmasq
        start_svc "$n" dnsmasq dnsmasq -k --conf-file=/dev/null --port="$port" \
          --listen-address="${N_IP[$n]}" --bind-interfaces --no-resolv --no-hosts \
          --user=nobody --group=nogroup --pid-file="$d/dnsmasq.pid" --log-facility=- \
          --address=/s1.lab.test/198.18.1.201
        want_listen "$n" "$port" dnsmasq; want_listen_udp "$n" "$port" dnsmasq-udp ;;
      dnsmasq-udp) ;; # the same dnsmasq
      snmpd)
        require snmpd
        printf 'agentaddress udp:%s:%s\nrocommunity public 198.18.0.0/15\nsysDescr cmdb lab %s snmpd\n' \
          "${N_IP[$n]}" "$port" "$n" >"$d/snmpd.conf"
        start_svc "$n" snmpd snmpd -f -Lo -C -I -smux -c "$d/snmpd.conf" -p "$d/snmpd.pid"
        want_listen_udp "$n" "$port" snmpd ;;
      *) die "unknown real daemon $kind" ;;
    esac
  done
}

make_cert() { # node
  local n=$1 h=${N_HOST[$1]} sans
  sans="DNS:$h"
  [ "$n" = a1 ] && sans+=",DNS:www.lab.test"
  [ "$h" != "$n.lab.test" ] && sans+=",DNS:$n.lab.test"
  sans+=",IP:${N_IP[$n]}"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 \
    -subj "/O=cmdb lab/OU=$n/CN=$h" -addext "subjectAltName=$sans" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$ST/certs/$n.key" -out "$ST/certs/$n.crt" >/dev/null 2>&1 ||
    die "openssl could not make the certificate for $n"
}

write_index() { # dir title
  mkdir -p "$1"
  printf '<!DOCTYPE html>\n<html><head><title>%s</title></head>\n<body><h1>%s</h1></body></html>\n' \
    "$2" "$2" >"$1/index.html"
}

nginx_conf() { # node
  local n=$1
  local d="$ST/$n/nginx"
  mkdir -p "$d/tmp"
  write_index "$d/www" "cmdb lab $n nginx"
  cat >"$d/nginx.conf" <<EOF
# cmdb lab $n: generated by lab.sh
daemon off;
master_process on;
worker_processes 1;
user nobody nogroup;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  default_type text/html;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server {
    listen 80 default_server;
    listen 443 ssl default_server;
    server_name ${N_HOST[$n]} www.lab.test;
    ssl_certificate $ST/certs/$n.crt;
    ssl_certificate_key $ST/certs/$n.key;
    root $d/www;
    index index.html;
  }
}
EOF
}

# Run as the postgres user (PostgreSQL refuses to run as root).
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/postgres" ] || die "PostgreSQL server binaries not found; run tools/deps.sh"
  printf '%s' "$d"
}

verify_safety() {
  local n ns routes
  for n in "${NODES[@]}" br; do
    [ "$n" = br ] && ns=$(ns_name "$UP_ID" br) || ns=${N_NS[$n]}
    routes=$(ip -n "$ns" -4 route show table all 2>&1 | grep -v -E '^(local|broadcast) ' || true)
    if grep -q -E '^default|0\.0\.0\.0/0' <<<"$routes"; then die "safety: namespace $ns has a default route"; fi
    if grep -v -E '^198\.18\.[12]\.0/24 |^$' <<<"$routes" | grep -q .; then
      die "safety: namespace $ns has a route outside the lab subnets: $routes"
    fi
    if [ -n "$(ip -n "$ns" -6 route show 2>/dev/null)" ]; then die "safety: namespace $ns has IPv6 routes"; fi
  done
  local sc=${N_NS[sc]}
  [ -z "$(ip -n "$sc" route show default)" ] || die "safety: scanner has a default route"
  if ip -n "$sc" route get 1.1.1.1 >/dev/null 2>&1; then die "safety: scanner can route to 1.1.1.1"; fi
  if ip -n "$sc" route get 8.8.8.8 >/dev/null 2>&1; then die "safety: scanner can route to 8.8.8.8"; fi
  ip -n "$sc" route get 198.18.2.11 >/dev/null 2>&1 || die "scanner has no route to subnet B"
  [ "$(ip -n "$sc" -o link show lo | grep -c 'UP')" = 1 ] || die "scanner loopback is down"
}

cmd_up() {
  [ $# -eq 0 ] || usage
  [ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"
  require ip nft openssl nginx setpriv setsid sysctl ss timeout "$PY"
  local id hosts wait_s st
  id=$(lab_id_default)
  hosts=${LAB_HOSTS:-8}
  [[ $hosts =~ ^[1-9][0-9]{0,2}$ ]] && ((hosts >= 1 && hosts <= MAX_HOSTS)) || die "LAB_HOSTS must be 1..$MAX_HOSTS"
  wait_s=${LAB_WAIT:-20}
  [[ $wait_s =~ ^[1-9][0-9]{0,2}$ ]] && ((wait_s >= 1 && wait_s <= 300)) || die "LAB_WAIT must be 1..300"
  local pgbin; pgbin=$(pg_bindir)
  getent passwd postgres >/dev/null || die "no postgres user; run tools/deps.sh"

  st=$(state_dir "$id")
  [ -n "$(lab_namespaces "$id")" ] && die "lab $id already has namespaces; run 'LAB_ID=$id $0 down' first"
  mkdir -m 0755 "$st" 2>/dev/null || die "lab $id exists ($st); run 'LAB_ID=$id $0 down' first"
  ST=$st UP_ID=$id
  trap up_cleanup EXIT
  trap 'exit 130' INT TERM
  local t0=$SECONDS
  local owner=${LAB_OWNER_PID:-$PPID}
  mkdir -p "$st/log" "$st/certs"
  {
    printf 'LAB_ID=%s\nCREATOR_PID=%s\nCREATOR_START=%s\nCREATED=%s\nLAB_HOSTS=%s\n' \
      "$id" "$owner" "$(pid_start "$owner")" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$hosts"
  } >"$st/lab.env"

  plan "$id" "$hosts"
  local n br
  br=$(ns_name "$id" br)

  # PostgreSQL initdb takes the longest: start it first, in the background.
  local -a initdb_pids=()
  for n in "${NODES[@]}"; do
    [ "${N_PG[$n]}" = 1 ] || continue
    mkdir -p "$st/$n/pg"
    printf 'lab\n' >"$st/$n/pgpass"
    chown -R postgres:postgres "$st/$n/pg" "$st/$n/pgpass"
    chmod 0700 "$st/$n/pg"
    (cd "$st" && exec timeout 60 setpriv --reuid=postgres --regid=postgres --init-groups -- \
      "$pgbin/initdb" -D "$st/$n/pg/data" -U postgres --pwfile="$st/$n/pgpass" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C -N --no-instructions \
      >"$st/log/$n-initdb.log" 2>&1) &
    initdb_pids+=("$!|$n")
  done

  # Namespaces, each with loopback up and IPv6 off (quiet captures).
  log "lab $id: creating namespaces"
  for n in br "${NODES[@]}"; do
    local ns
    [ "$n" = br ] && ns=$br || ns=${N_NS[$n]}
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
      net.ipv6.conf.lo.disable_ipv6=1 >/dev/null
  done
  ip -n "$br" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
  ip -n "$br" link add br1 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
  # Bridged frames bypass netfilter (matters only where br_netfilter is loaded).
  if ip netns exec "$br" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
    ip netns exec "$br" sysctl -q -w net.bridge.bridge-nf-call-iptables=0 \
      net.bridge.bridge-nf-call-arptables=0 >/dev/null 2>&1 || true
  fi
  ip -n "$br" link set br0 up
  ip -n "$br" link set br1 up

  # One veth per node: bridge side named after the node, host side eth0.
  for n in "${NODES[@]}"; do
    local bridge=br0
    [ "${N_SUBNET[$n]}" = B ] && bridge=br1
    ip -n "$br" link add "$n" type veth peer name eth0 address "${N_MAC[$n]}" netns "${N_NS[$n]}"
    ip -n "$br" link set "$n" master "$bridge" up
    ip -n "${N_NS[$n]}" addr add "${N_IP[$n]}/24" dev eth0
    ip -n "${N_NS[$n]}" link set eth0 up
  done
  # The router's second leg, on subnet B.
  ip -n "$br" link add rtb type veth peer name eth1 address "$(mac_for 2 254)" netns "${N_NS[rt]}"
  ip -n "$br" link set rtb master br1 up
  ip -n "${N_NS[rt]}" addr add "$ROUTER_B/24" dev eth1
  ip -n "${N_NS[rt]}" link set eth1 up
  ip netns exec "${N_NS[rt]}" sysctl -q -w net.ipv4.ip_forward=1 >/dev/null

  # Routes: only the other lab subnet, via the router. No default anywhere.
  for n in "${NODES[@]}"; do
    [ "$n" = rt ] && continue
    if [ "${N_SUBNET[$n]}" = A ]; then
      ip -n "${N_NS[$n]}" route add "$SUBNET_B" via "$ROUTER_A"
    else
      ip -n "${N_NS[$n]}" route add "$SUBNET_A" via "$ROUTER_B"
    fi
  done
  verify_safety

  # Firewalls inside host namespaces.
  for n in "${NODES[@]}"; do
    case ${N_FW[$n]} in
      dropall) nsx "$n" nft -f - <<'EOF'
table arp lab {
  chain in { type filter hook input priority 0; policy drop; }
  chain out { type filter hook output priority 0; policy drop; }
}
table inet lab {
  chain in { type filter hook input priority 0; policy drop; }
  chain out { type filter hook output priority 0; policy drop; }
}
EOF
      ;;
      sshonly) nsx "$n" nft -f - <<'EOF'
table inet lab {
  chain in {
    type filter hook input priority 0; policy drop;
    iif "lo" accept
    ct state established,related accept
    tcp dport 22 accept
  }
}
EOF
      ;;
    esac
  done

  # Certificates, documents, configuration.
  for n in "${NODES[@]}"; do
    [ "${N_CERT[$n]}" = 1 ] && make_cert "$n"
    if [ -n "${N_PY[$n]}" ]; then write_index "$st/$n/www" "cmdb lab $n python"; fi
    [ "${N_NGINX[$n]}" = 1 ] && nginx_conf "$n"
  done

  # Services.
  log "lab $id: starting services"
  local spec port
  for n in "${NODES[@]}"; do
    if [ -n "${N_PY[$n]}" ]; then
      local -a certargs=()
      [ "${N_CERT[$n]}" = 1 ] && certargs=(--cert "$st/certs/$n.crt" --key "$st/certs/$n.key")
      # shellcheck disable=SC2086
      start_svc "$n" labsvc "$PY" "$LAB_DIR/labsvc.py" serve "${certargs[@]}" --root "$st/$n/www" ${N_PY[$n]}
      for spec in ${N_PY[$n]}; do want_listen "$n" "${spec#*:}" "labsvc-${spec%%:*}"; done
    fi
    if [ "${N_NGINX[$n]}" = 1 ]; then
      start_svc "$n" nginx nginx -e "$st/$n/nginx/error.log" -p "$st/$n/nginx" -c "$st/$n/nginx/nginx.conf"
      want_listen "$n" 80 nginx; want_listen "$n" 443 nginx-tls
    fi
    if [ -n "${N_SSRV[$n]}" ]; then
      start_svc "$n" s_server openssl s_server -4 -accept "${N_SSRV[$n]}" -cert "$st/certs/$n.crt" \
        -key "$st/certs/$n.key" -www -quiet
      want_listen "$n" "${N_SSRV[$n]}" openssl-s_server
    fi
  done
  for n in "${NODES[@]}"; do
    [ -n "${N_REAL[$n]}" ] && start_real "$n"
  done
  local e pid
  for e in ${initdb_pids[@]+"${initdb_pids[@]}"}; do
    pid=${e%%|*} n=${e#*|}
    wait "$pid" || die "initdb for $n failed: $(tail -n 5 "$st/log/$n-initdb.log" 2>/dev/null)"
    printf 'host all all 198.18.0.0/15 scram-sha-256\n' >>"$st/$n/pg/data/pg_hba.conf"
    start_svc "$n" postgres setpriv --reuid=postgres --regid=postgres --init-groups -- \
      "$pgbin/postgres" -D "$st/$n/pg/data" -c listen_addresses='*' -c port=5432 \
      -c unix_socket_directories="$st/$n/pg" -c shared_buffers=16MB -c max_connections=20 \
      -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c logging_collector=off \
      -c max_wal_senders=0 -c wal_level=minimal -c autovacuum=off \
      -c dynamic_shared_memory_type=mmap
    want_listen "$n" 5432 postgres
  done

  # Wait until every port listens (bounded); fail fast when a service dies.
  local deadline=$((SECONDS + wait_s)) pending
  while :; do
    pending=()
    for n in "${NODES[@]}"; do
      [ -n "${N_LISTEN[$n]:-}${N_ULISTEN[$n]:-}" ] || continue
      local listening want
      listening=" $(nsx "$n" ss -Htln 2>/dev/null | awk '{ sub(/.*:/, "", $4); printf "%s ", $4 }')"
      for want in ${N_LISTEN[$n]:-}; do
        [[ $listening == *" ${want%%:*} "* ]] || pending+=("$n:$want")
      done
      listening=" $(nsx "$n" ss -Huln 2>/dev/null | awk '{ sub(/.*:/, "", $4); printf "%s ", $4 }')"
      for want in ${N_ULISTEN[$n]:-}; do
        [[ $listening == *" ${want%%:*} "* ]] || pending+=("$n:$want")
      done
    done
    [ ${#pending[@]} -eq 0 ] && break
    for e in "${SVC_PIDS[@]}"; do
      IFS='|' read -r pid n label logf <<<"$e"
      if ! kill -0 "$pid" 2>/dev/null; then
        die "service $label on $n (${N_IP[$n]}) exited during start-up; log $logf: $(tail -n 5 "$logf" 2>/dev/null)"
      fi
    done
    if ((SECONDS >= deadline)); then
      local msg="" p
      for p in "${pending[@]}"; do
        IFS=: read -r n port label <<<"$p"
        msg+=" $label on $n (${N_IP[$n]}:$port);"
      done
      for n in $(printf '%s\n' "${pending[@]}" | cut -d: -f1 | sort -u); do
        for logf in "$st/log/$n"-*.log; do
          [ -s "$logf" ] && log "${logf##*/}: $(tail -n 3 "$logf" | tr '\n' ' ')"
        done
      done
      die "not listening after ${wait_s}s:$msg"
    fi
    sleep 0.1
  done

  # Ground truth.
  local m="$st/manifest.tsv" t
  {
    printf 'meta\tlab_id\t%s\n' "$id"
    printf 'meta\tcreated\t%s\n' "$(sed -n 's/^CREATED=//p' "$st/lab.env")"
    printf 'meta\tstate_dir\t%s\n' "$st"
    printf 'meta\tscanner_ns\t%s\n' "${N_NS[sc]}"
    printf 'meta\tscanner_ip\t%s\n' "$SCANNER_IP"
    printf 'meta\tscanner_mac\t%s\n' "${N_MAC[sc]}"
    printf 'meta\tsubnet_a\t%s\nmeta\tsubnet_b\t%s\n' "$SUBNET_A" "$SUBNET_B"
    printf 'meta\trouter_a\t%s\nmeta\trouter_b\t%s\n' "$ROUTER_A" "$ROUTER_B"
    printf 'meta\tpostgres\t%s\n' "$pgbin/postgres"
    for n in "${NODES[@]}"; do
      local arp=1 ping=1 dflt=closed hidden=""
      case ${N_FW[$n]} in
        dropall) arp=0 ping=0 dflt=filtered ;;
        sshonly) ping=0 dflt=filtered ;;
      esac
      [ "${N_SUBNET[$n]}" = B ] && arp=0     # not on the scanner's link
      if [ "${N_HIDDEN[$n]}" = 1 ]; then
        for spec in ${N_PY[$n]}; do hidden+="${spec#*:},"; done
      fi
      printf 'host\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "${N_ROLE[$n]}" "${N_NS[$n]}" \
        "${N_IP[$n]}" "${N_MAC[$n]}" "${N_SUBNET[$n]}" "${N_HOST[$n]}" "$arp" "$ping" "$dflt" "${hidden%,}"
      [ "${N_CERT[$n]}" = 1 ] && printf 'cert\t%s\t%s\n' "$n" "$st/certs/$n.crt"
      if [ "${N_HIDDEN[$n]}" != 1 ]; then
        for spec in ${N_PY[$n]}; do
          t=""; [ "${spec%%:*}" = http ] && t="cmdb lab $n python"
          printf 'port\t%s\t%s\t%s\t%s\t%s\n' "$n" "${spec%%:*}" "${spec#*:}" "$n" "$t"
        done
      fi
      if [ "${N_NGINX[$n]}" = 1 ]; then
        printf 'port\t%s\tnginx-http\t80\t%s\tcmdb lab %s nginx\n' "$n" "$n" "$n"
        printf 'port\t%s\tnginx-https\t443\t%s\tcmdb lab %s nginx\n' "$n" "$n" "$n"
      fi
      [ "${N_PG[$n]}" = 1 ] && printf 'port\t%s\tpostgresql\t5432\t%s\t\n' "$n" "$n"
      [ -n "${N_SSRV[$n]}" ] && printf 'port\t%s\ts_server\t%s\t%s\t\n' "$n" "${N_SSRV[$n]}" "$n"
      for spec in ${N_REAL[$n]}; do
        printf 'port\t%s\treal-%s\t%s\t%s\t\n' "$n" "${spec%%:*}" "${spec#*:}" "$n"
      done
    done
  } >"$m"
  "$PY" "$LAB_DIR/labsvc.py" truth "$m" >"$st/truth.json.tmp" || die "could not write the ground truth"
  mv "$st/truth.json.tmp" "$st/truth.json"

  UP_OK=1
  trap - EXIT INT TERM
  log "lab $id up in $((SECONDS - t0))s: ${#NODES[@]} nodes; truth in $st/truth.json"
  print_env "$id"
}

print_env() {
  local id=$1 st
  st=$(state_dir "$id")
  printf 'LAB_ID=%q\n' "$id"
  printf 'LAB_STATE=%q\n' "$st"
  printf 'LAB_TRUTH=%q\n' "$st/truth.json"
  printf 'LAB_SCANNER_NS=%q\n' "$(ns_name "$id" sc)"
  printf 'LAB_SCANNER_IP=%q\n' "$SCANNER_IP"
  printf 'LAB_SUBNETS=%q\n' "$SUBNET_A $SUBNET_B"
}

# ---------------------------------------------------------------------------
# status, env, exec, truth

cmd_status() {
  if [ "${1:-}" = "--all" ]; then
    local id any=0
    for id in $(all_lab_ids); do
      any=1
      local state=live
      lab_is_stale "$id" && state=stale
      printf '%s\t%s\t%s namespaces\t%s\n' "$id" "$state" "$(lab_namespaces "$id" | wc -l)" "$(state_dir "$id")"
    done
    [ $any = 1 ] || echo "no labs"
    return 0
  fi
  local id st ns nss
  id=$(lab_id_default)
  st=$(state_dir "$id")
  mapfile -t nss < <(lab_namespaces "$id")
  if [ ${#nss[@]} -eq 0 ] && [ ! -d "$st" ]; then
    echo "lab $id: down"
    return 3
  fi
  local stale=no
  lab_is_stale "$id" && stale=yes
  echo "lab $id: ${#nss[@]} namespaces, state $st, truth $([ -f "$st/truth.json" ] && echo present || echo missing), stale $stale"
  for ns in "${nss[@]}"; do
    printf '  %-24s %3s processes  %s\n' "$ns" "$(ip netns pids "$ns" 2>/dev/null | wc -l)" \
      "$(ip -n "$ns" -4 -o addr show scope global 2>/dev/null | awk '{ printf "%s ", $4 }')"
  done
  [ -f "$st/truth.json" ] || return 1
}

resolve_ns() { # host -> namespace
  local id=$1 h=$2 ns
  case $h in
    scanner) h=sc ;;
    router) h=rt ;;
  esac
  if [[ $h =~ ^[0-9.]+$ ]]; then
    for ns in $(lab_namespaces "$id"); do
      if ip -n "$ns" -4 -o addr show 2>/dev/null | awk '{ print $4 }' | grep -qx "$h/24"; then
        printf '%s' "$ns"; return 0
      fi
    done
    die "no node of lab $id has address $h"
  fi
  [[ $h =~ ^[a-z0-9]{1,8}$ ]] || die "bad host name '$h'"
  ns=$(ns_name "$id" "$h")
  [ -e "/run/netns/$ns" ] || die "lab $id has no node '$h' (namespace $ns)"
  printf '%s' "$ns"
}

cmd_exec() {
  [ $# -ge 2 ] || usage
  local id ns
  id=$(lab_id_default)
  ns=$(resolve_ns "$id" "$1")
  shift
  exec ip netns exec "$ns" "$@"
}

cmd_truth() {
  local id f
  id=$(lab_id_default)
  f=$(state_dir "$id")/truth.json
  [ -f "$f" ] || die "lab $id is not up (no $f)"
  cat "$f"
}

cmd_env() {
  local id
  id=$(lab_id_default)
  [ -f "$(state_dir "$id")/truth.json" ] || die "lab $id is not up"
  print_env "$id"
}

# The documented kernel-quieting rule (docs/scanning.md), in the scanner
# namespace only: replies to the scanners' source ports 61000-61999 are
# dropped before the kernel's IP layer (captures tap the interface earlier).
cmd_quiet_scanner() {
  local id ns
  id=$(lab_id_default)
  ns=$(resolve_ns "$id" sc)
  ip netns exec "$ns" nft list table inet cmdbscan >/dev/null 2>&1 && return 0
  ip netns exec "$ns" nft -f - <<'NFT'
table inet cmdbscan {
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    tcp dport 61000-61999 drop
  }
}
NFT
}

cmd_synproxy() {
  local id ns
  [ $# -eq 1 ] || usage
  id=$(lab_id_default)
  ns=$(resolve_ns "$id" "$1")
  ip netns exec "$ns" nft list table ip synp >/dev/null 2>&1 && return 0
  ip netns exec "$ns" nft -f - <<'NFT'
table ip synp {
  chain pre { type filter hook prerouting priority raw; policy accept; tcp flags syn notrack; }
  chain in {
    type filter hook input priority filter; policy accept;
    ct state invalid,untracked synproxy mss 1460 wscale 7 timestamp sack-perm
    ct state invalid drop
  }
}
NFT
}

[ $# -ge 1 ] || usage
sub=$1; shift
case $sub in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  status) cmd_status "$@" ;;
  env) cmd_env "$@" ;;
  exec) cmd_exec "$@" ;;
  truth) cmd_truth "$@" ;;
  quiet-scanner) cmd_quiet_scanner "$@" ;;
  synproxy) cmd_synproxy "$@" ;;
  -h|--help|help) usage ;;
  *) usage ;;
esac
