# cmdb discover --pcap, --os and -oX from the command line, without a lab:
# captures from tests/discovery/corpus/pcapin (tools/make_pcap_corpus.py),
# and one connect() scan of a listener of our own on 127.0.0.1. The XML is
# checked for being well-formed, read back by `cmdb import nmap` and (when
# Debian's ndiff is installed) by ndiff; the passive observations are
# ingested into a fresh database, so the fields they add are accepted.
. "$(dirname "$0")/../cli/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
caps=$here/corpus/pcapin
tmp=$(mktemp -d)
listener=
cleanup() {
  [ -n "$listener" ] && kill "$listener" 2>/dev/null
  rm -rf "$tmp" "$out" "$err"
}
trap cleanup EXIT
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi

# well_formed FILE: parses as XML with an nmaprun root
well_formed() {
  "$PY" -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); sys.exit(r.tag != "nmaprun")' "$1"
}
# xpath FILE EXPR: how many elements match an ElementTree path
xcount() {
  "$PY" -c 'import sys, xml.etree.ElementTree as E; print(len(E.parse(sys.argv[1]).getroot().findall(sys.argv[2])))' "$1" "$2"
}

# ---- usage errors: scanning options do not apply to a capture ----
expect 2 discover --pcap "$caps/session.pcap" -p 80;        expect_err "do not apply"
expect 2 discover --pcap "$caps/session.pcap" --connect;    expect_err "do not apply"
expect 2 discover --pcap "$caps/session.pcap" --dry-run;    expect_err "do not apply"
expect 2 discover --pcap "$caps/session.pcap" --exclude 198.18.0.1; expect_err "needs targets"
expect 2 discover --pcap;                                   expect_err "requires an argument"
expect 2 discover --dry-run -p 80 -oN "$tmp/x.txt" 127.0.0.1; expect_err "-oN"
if [ -e "$tmp/x.txt" ]; then bad "-oN wrote a file"; else ok; fi

# ---- bad captures: exit 1, the file and the problem named, nothing written ----
expect 1 discover --pcap "$caps/garbage.bin";     expect_err "garbage.bin: not a pcap or pcapng capture file"
expect_no_out .
expect 1 discover --pcap "$caps/header_cut.pcap"; expect_err "header_cut.pcap: the capture file's header is cut off"
expect 1 discover --pcap "$caps/usb.pcap";        expect_err "usb.pcap: link type USB_LINUX \(189\) is not supported"
expect 1 discover --pcap "$tmp/missing.pcap";     expect_err "cannot open .*missing.pcap"
expect 1 discover --pcap "$caps/truncated.pcap" -o "$tmp/trunc.ndjson" -oX "$tmp/trunc.xml"
expect_err "truncated.pcap: the capture is cut off after packet 4"
expect_eq "$(wc -c <"$tmp/trunc.ndjson" | tr -d ' ')" 0 "nothing written for a cut-off capture"
expect_eq "$(wc -c <"$tmp/trunc.xml" | tr -d ' ')" 0 "no XML for a cut-off capture"

# ---- a capture: hosts, ports, banners, the scan line names it ----
expect 0 discover -q --pcap "$caps/session.pcap"
expect_out '^\{"v":1,"kind":"scan",.*"options":\{"mode":"pcap","pcap":".*session.pcap","link":"EN10MB","os":false\}'
expect_out '"pcap":".*session.pcap"\}$'
expect_out '"kind":"host",.*"ip":"198.18.0.2","mac":"00:1b:21:aa:bb:cc",.*"reason":"arp-response"'
expect_out '"kind":"port",.*"ip":"198.18.0.2","proto":"tcp","port":22,"state":"open","reason":"syn-ack"'
expect_out '"kind":"service",.*"port":22,"service":"ssh","product":"OpenSSH".*"banner":"SSH-2.0-OpenSSH_9.2p1 Debian-2\+deb12u3\\r\\n"'
expect_out '"kind":"scan_end",.*"complete":true,"probes_sent":0,"replies":20,'
expect_no_out '"os":\{'
expect_eq "$(grep -c '"kind":"host"' "$out")" 4 "four hosts in session.pcap"
cp "$out" "$tmp/session.ndjson"
# targets limit the hosts; standard input works
"$CMDB" discover -q --pcap - 198.18.0.2 <"$caps/session.pcap" >"$tmp/one.ndjson" 2>"$err"
expect_eq "$?" 0 "--pcap - reads standard input"
expect_eq "$(grep -c '"kind":"host"' "$tmp/one.ndjson")" 1 "targets limit the hosts"
# the summary
expect 0 discover --pcap "$caps/session.pcap"
expect_err "20 packets read from .*session.pcap \(EN10MB\), 1 unreadable frames skipped, 4 hosts, 2 open ports, 2 banners"

# ---- --os from a capture ----
expect 0 discover -q --os --pcap "$caps/session.pcap"
expect_out '"ip":"198.18.0.2",.*"os":\{"family":"Linux","guess":"Debian Linux 12","confidence":[0-9]+\},"tcp_fingerprint":"64 \| 65160 \| 1460 \| M,S,T,N,W \| 7 \| df,id0"'
expect 0 discover -q --os --pcap "$caps/sll.pcap"
expect_out '"ip":"198.18.0.5",.*"os":\{"family":"Windows"'

# ---- -oX from a capture ----
expect 0 discover -q --os --pcap "$caps/session.pcap" -oX "$tmp/a.xml"
if well_formed "$tmp/a.xml"; then ok; else bad "a.xml is not well-formed nmaprun XML"; fi
expect_eq "$(xcount "$tmp/a.xml" host)" 4 "four hosts in the XML"
expect_eq "$(xcount "$tmp/a.xml" "host/ports/port[@portid='22']/service[@name='ssh'][@product='OpenSSH']")" 1 "port 22 with its service"
expect_eq "$(xcount "$tmp/a.xml" "host/os/osmatch[@name='Debian Linux 12']/osclass[@osfamily='Linux']")" 1 "the OS guess"
expect_eq "$(xcount "$tmp/a.xml" "host/address[@addrtype='mac'][@addr='00:1B:21:AA:BB:CC']")" 1 "the MAC, upper case as nmap writes it"
expect_eq "$(xcount "$tmp/a.xml" "runstats/finished[@exit='success']")" 1 "finished with success"
expect_eq "$(xcount "$tmp/a.xml" scaninfo)" 0 "no scaninfo for a passive reading"

# ---- a connect() scan of our own listener on 127.0.0.1, with -oX and --os ----
"$PY" - "$tmp/port" <<'PY' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
s.settimeout(0.5)
end = time.time() + 60  # bounded: the test is over long before
while time.time() < end:
    try:
        c, _ = s.accept()
        c.close()
    except OSError:
        pass
PY
listener=$!
for _ in $(seq 1 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port" 2>/dev/null)
if [ -n "$port" ]; then ok; else bad "the listener did not start"; fi
expect 0 discover --connect --os -p "$port" --wait 0.5 127.0.0.1 -o "$tmp/c.ndjson" -oX "$tmp/c.xml"
expect_err "--os: a connect\(\) scan receives no SYN-ACKs; no OS guesses"
if grep -q '"os":{' "$tmp/c.ndjson"; then bad "an OS guess without SYN-ACKs"; else ok; fi
if well_formed "$tmp/c.xml"; then ok; else bad "c.xml is not well-formed nmaprun XML"; fi
expect_eq "$(xcount "$tmp/c.xml" "scaninfo[@type='connect'][@protocol='tcp'][@services='$port']")" 1 "scaninfo"
expect_eq "$(xcount "$tmp/c.xml" "host/ports/port[@portid='$port']/state[@state='open']")" 1 "the open port"
expect_eq "$(xcount "$tmp/c.xml" "host/os")" 0 "no os element"
# the same scan twice: ndiff (nmap's own tool) reads both
expect 0 discover -q --connect -p "$port" --wait 0.5 127.0.0.1 -oX "$tmp/c2.xml"
if command -v ndiff >/dev/null 2>&1; then
  rc=0; ndiff "$tmp/c.xml" "$tmp/c2.xml" >"$tmp/ndiff.out" 2>&1 || rc=$?
  if [ $rc -le 1 ] && grep -q "scan initiated" "$tmp/ndiff.out"; then ok; else bad "ndiff failed ($rc): $(head -c 300 "$tmp/ndiff.out")"; fi
  rc=0; ndiff "$tmp/a.xml" "$tmp/c.xml" >"$tmp/ndiff.out" 2>&1 || rc=$?
  if [ $rc = 1 ] && grep -q "^-198.18.0.2" "$tmp/ndiff.out"; then ok; else bad "ndiff a/c ($rc): $(head -c 300 "$tmp/ndiff.out")"; fi
else
  echo "note: ndiff not installed; skipping its checks"
fi
# an unwritable -oX: exit 1 before scanning
expect 1 discover --dry-run -p 80 127.0.0.1 -oX "$tmp/no/such/dir/x.xml"; expect_err "cannot write .*x.xml"

# ---- read back: our own nmap importer, and ingest of the passive lines ----
cli_db passive_xml
expect 0 import nmap "$tmp/a.xml" --dry-run
expect 0 import nmap "$tmp/c.xml" --dry-run
expect 0 ingest "$tmp/session.ndjson"
expect_eq "$(sql "SELECT count(*) FROM cmdb.ci WHERE type = 'host'")" 4 "four host CIs"
"$CMDB" discover -q --os --pcap "$caps/session.pcap" -o "$tmp/os.ndjson" 2>"$err"
expect 0 ingest "$tmp/os.ndjson"
expect_err " 0 rejected"
expect_eq "$(sql "SELECT attributes->>'os_family' FROM cmdb.ci WHERE type = 'host' AND name = '198.18.0.2'")" \
  Linux "the OS guess reaches the host CI"
finish
