# cmdb discover without a network: option parsing, usage errors (exit 2),
# failures (exit 1) and dry runs (exit 0, nothing sent: a dry run opens no
# socket). Every target is in 127.0.0.0/8, and every command that could scan
# is a --dry-run or fails before a socket is opened.
. "$(dirname "$0")/../cli/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "$out" "$err"' EXIT

# usage errors
expect 2 discover;                                  expect_err "no targets"
expect 2 discover --dry-run;                        expect_err "no targets"
expect 2 discover --dry-run -p 80 --top-ports 10 127.0.0.1; expect_err "exclude each other"
expect 2 discover --dry-run --rate 0 127.0.0.1;     expect_err "out of range"
expect 2 discover --dry-run --rate 1k 127.0.0.1;    expect_err "not a number"
expect 2 discover --dry-run --retries 11 127.0.0.1
expect 2 discover --dry-run --wait 61 127.0.0.1
expect 2 discover --dry-run --wait 0.1234 127.0.0.1; expect_err "not a duration"
expect 2 discover --dry-run --shard 2/2 127.0.0.1;  expect_err "needs --seed"
expect 2 discover --dry-run --shard 3/2 --seed 1 127.0.0.1
expect 2 discover --dry-run -p U:53 127.0.0.1;      expect_err "UDP"
expect 2 discover --dry-run --no-service -p 22,U:53 127.0.0.1; expect_err "UDP ports are probed by service detection only"
expect 2 discover --dry-run -p 99999 127.0.0.1
expect 2 discover --dry-run -p 80 127.0.0.300;      expect_err "127.0.0.300"
expect 2 discover --dry-run --bogus 127.0.0.1
expect 2 discover --dry-run --exclude 127.0.0.1-0 127.0.0.1
expect 2 discover --dry-run -i '' 127.0.0.1
expect 2 discover --dry-run -p 80 -- -Pn;           expect_err "-Pn"
expect 2 discover --dry-run -p 80 -oG "$tmp/x.txt" 127.0.0.1; expect_err "are not"
if [ -e G ] || [ -e "$tmp/x.txt" ]; then bad "-oG wrote a file"; else ok; fi
expect_no_out .
# -sn is host discovery only: whatever asks for ports, services or no discovery is refused
expect 2 discover --dry-run -sn -p 80 127.0.0.1;          expect_err "-sn and -p exclude each other"
expect 2 discover --dry-run -sn --top-ports 10 127.0.0.1; expect_err "-sn and --top-ports exclude each other"
expect 2 discover --dry-run --sn --no-service 127.0.0.1;  expect_err "-sn and --no-service exclude each other"
expect 2 discover --dry-run -sn --os 127.0.0.1;           expect_err "-sn and --os exclude each other"
expect 2 discover --dry-run -Pn -sn 127.0.0.1;            expect_err "-sn and -Pn exclude each other"
expect_no_out .
expect 2 discover --pcap "$tmp/none.pcap" -sn;            expect_err "-sn"
# failures
expect 1 discover --dry-run -iL "$tmp/missing.txt"; expect_err "missing.txt"
expect 1 discover --dry-run -p 80 127.0.0.1 --exclude 127.0.0.0/8; expect_err "no targets left"
expect 1 discover --dry-run -p 80 127.0.0.1 -o "$tmp/no/such/dir/out"; expect_err "cannot write"
# help
expect 0 help discover;                             expect_out "^Usage: cmdb discover TARGET"
expect 0 discover --help;                           expect_out "--dry-run"

# dry runs: first line scan, last line scan_end, nothing sent
line() { sed -n "$1p" "$out"; }
expect 0 discover --dry-run -q -p 22,80 127.0.0.0/30 --seed 5
expect_eq "$(wc -l <"$out" | tr -d ' ')" 2 "a dry run writes two lines"
expect_out '^\{"v":1,"kind":"scan",.*"targets":\["127.0.0.0/30"\],"ports":"22,80"'
expect_out '"seed":"5"'
expect_out '"service_detection":false'   # a dry run probes no services
expect_no_out '"kind":"service"'
expect_out '"dry_run":true'
expect_out '"kind":"scan_end",.*"complete":true,"probes_sent":0,'
expect_out '"probes_built":[1-9][0-9]*'
built=$(grep -o '"probes_built":[0-9]*' "$out")
expect 0 discover --dry-run -q -p 22,80 127.0.0.0/30 --seed 5
expect_eq "$(grep -o '"probes_built":[0-9]*' "$out")" "$built" "the same scan builds the same probes"
expect_err_lines 0
# -Pn, -iL, --top-ports, -o
printf '# targets\n127.0.0.1 127.0.0.2\n127.0.0.3\n' >"$tmp/targets.txt"
expect 0 discover --dry-run -q -Pn -iL "$tmp/targets.txt" --top-ports 10 -o "$tmp/obs.ndjson"
expect_no_out .
if grep -q '"host_discovery":false' "$tmp/obs.ndjson"; then ok; else bad "-Pn not in the options"; fi
if grep -q '"ports":"top:10"' "$tmp/obs.ndjson"; then ok; else bad "--top-ports not in the scan line"; fi
if grep -q '"input_files":\[".*targets.txt"\]' "$tmp/obs.ndjson"; then ok; else bad "-iL file not in the options"; fi
if grep -q '"kind":"scan_end"' "$tmp/obs.ndjson"; then ok; else bad "no scan_end in -o file"; fi
# -sn dry run: the discovery probes only, no ports, no scope (it probed nothing)
expect 0 discover --dry-run -q -sn 127.0.0.0/30 --seed 5
expect_eq "$(wc -l <"$out" | tr -d ' ')" 2 "an -sn dry run writes two lines"
expect_out '"host_discovery_only":true'
expect_out '"service_detection":false'
expect_no_out '"ports"'
expect_no_out '"scope"'
sn_built=$(grep -o '"probes_built":[0-9]*' "$out")
expect 0 discover --dry-run -q 127.0.0.0/30 --seed 5 -p 22,80
expect_out '"host_discovery_only":false'
if [ "${sn_built#*:}" -gt 0 ] && [ "${sn_built#*:}" -lt "$(grep -o '"probes_built":[0-9]*' "$out" | cut -d: -f2)" ]; then
  ok "-sn builds the discovery probes only (${sn_built#*:})"
else bad "-sn builds the discovery probes only ($sn_built)"; fi
# -sn's scope: the targets after the exclusions as the fewest CIDR blocks, no
# ports. A connect() ping scan of loopback addresses (refused at once); none
# for a shard, and none for targets that need more than 4096 blocks
expect 0 discover -sn --connect --wait 0.1 -q 127.0.0.1-6 --exclude 127.0.0.3
expect_out '"scope":\["127.0.0.1/32","127.0.0.2/32","127.0.0.4/31","127.0.0.6/32"\],"scope_ports":\{"tcp":\[\],"udp":\[\]\}'
expect_no_out '"kind":"port"'
expect 0 discover -sn --connect --wait 0.1 -q 127.0.0.0/24 --exclude 127.0.0.0,127.0.0.255
expect_out '"scope":\["127.0.0.1/32","127.0.0.2/31","127.0.0.4/30",.*"127.0.0.128/26",.*"127.0.0.252/31","127.0.0.254/32"\]'
expect 0 discover -sn --connect --wait 0.1 -q 127.0.0.1-6 --shard 1/2 --seed 3
expect_no_out '"scope"'
expect 0 discover -sn --connect --wait 0.1 --retries 0 --rate 100000 '127.0-31.0-255.1'
expect_no_out '"scope"'
expect_err "more than 4096 networks"
# A port scan's scope: the same CIDR cover, and scope_ports the probed ports
# as ranges (UDP ones too with service detection). None for a dry run, a
# shard, or a port list of more than 8192 ranges. Connect scans of loopback
# addresses; 127.0.0.2's ports are closed (refused at once)
expect 0 discover --connect --wait 0.1 -q -p 22,80-82,443,1000-1002,U:53,161-162 127.0.0.1-6 --exclude 127.0.0.3
expect_out '"ports":"22,80-82,443,1000-1002,U:53,161-162",.*"scope":\["127.0.0.1/32","127.0.0.2/32","127.0.0.4/31","127.0.0.6/32"\],"scope_ports":\{"tcp":\[\[22,22\],\[80,82\],\[443,443\],\[1000,1002\]\],"udp":\[\[53,53\],\[161,162\]\]\}'
expect_out '"kind":"scan_end",.*"complete":true'
expect 0 discover --connect --wait 0.1 -q --no-service --top-ports 5 127.0.0.2
expect_out '"scope":\["127.0.0.2/32"\],"scope_ports":\{"tcp":\[(\[[0-9]+,[0-9]+\],?)+\],"udp":\[\]\}'
expect 0 discover --dry-run -q -p 22 127.0.0.2
expect_no_out '"scope"'
expect 0 discover --connect --wait 0.1 -q -p 22 127.0.0.1-6 --shard 2/2 --seed 3
expect_no_out '"scope"'
expect 0 discover --connect --wait 0.1 --retries 0 --no-service -p "$(seq -s, 1 2 16385)" 127.0.0.2
expect_no_out '"scope"'
expect_err "more than 8192 ranges"
# runs of one port, at both ends of the range
expect 0 discover --connect --wait 0.1 -q --no-service -p 1-3,7,65535 127.0.0.2
expect_out '"scope_ports":\{"tcp":\[\[1,3\],\[7,7\],\[65535,65535\]\],"udp":\[\]\}'
# the summary goes to stderr, not into the observations
expect 0 discover --dry-run -p 80 127.0.0.1
expect_err "probes built \(none sent\)"
expect_no_out "probes built"

# a connect() dry run connects to nothing either (it used to: the connect
# engine ignored --dry-run, reported replies and hosts, and a listener on
# 127.0.0.1 saw every attempt)
"${PYTHON:-python3}" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64); s.settimeout(0.2)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
n, end = 0, time.time() + 4
while time.time() < end and n < 100:
    try:
        c, _ = s.accept(); n += 1; c.close()
    except socket.timeout:
        pass
open(sys.argv[2], "w").write(str(n))
' "$tmp/port" "$tmp/accepted" &
listener=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.05; done
lport=$(cat "$tmp/port")
expect 0 discover --connect --dry-run -p "$((lport - 2))-$((lport + 2))" 127.0.0.1
expect_err "8 probes built \(none sent\), 0 replies, .* 0 hosts up, 0 open ports"
expect_eq "$(grep -c '"kind":"host"\|"kind":"port"' "$out")" 0 "a connect dry run finds nothing"
wait "$listener"
expect_eq "$(cat "$tmp/accepted")" 0 "a connect dry run made no connection"
finish
