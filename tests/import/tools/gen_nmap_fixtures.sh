#!/usr/bin/env bash
# Regenerates the nmap XML fixtures in tests/import/data/ by scanning
# listeners this script starts on 127.0.0.1 for the duration. Packets go to
# loopback only. Needs root (SYN scan, OS detection), nmap, openssl, python3.
# The tests check exact values, so after regenerating, update them
# (test_import_nmap.c) to the new times, ports and versions.
set -euo pipefail

out=$(cd "$(dirname "$0")/.." && pwd)/data
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

HTTP=48080 TLS=48443 BANNER=48022

# A plain HTTP server.
(cd "$work" && exec python3 -m http.server --bind 127.0.0.1 "$HTTP" >/dev/null 2>&1) &
pids+=($!)

# A TLS server with a self-signed certificate whose subject and SANs the
# test checks.
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$work/key.pem" \
	-out "$work/cert.pem" -subj "/C=DE/O=cmdb test/CN=fixture.test" \
	-addext "subjectAltName=DNS:fixture.test,DNS:www.fixture.test,IP:127.0.0.1" 2>/dev/null
openssl s_server -quiet -accept "127.0.0.1:$TLS" -cert "$work/cert.pem" -key "$work/key.pem" \
	-www >/dev/null 2>&1 &
pids+=($!)

# A listener that greets like an SSH server, so that version detection has
# product and version to report.
python3 - "$BANNER" >/dev/null 2>&1 <<'EOF' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
        c.settimeout(2)
        c.recv(1024)
    except OSError:
        pass
    c.close()
EOF
pids+=($!)
sleep 2

# Service and OS detection, the TLS certificate script, one closed port.
nmap -sS -sV -O --script ssl-cert -p "$HTTP,$TLS,$BANNER,48999" -oX "$out/nmap_loopback.xml" \
	127.0.0.1 >/dev/null
# A plain connect scan with no version detection, of two targets written
# differently (one host, scanned once).
nmap -sT -Pn -p "$HTTP,$BANNER" -oX "$out/nmap_connect.xml" localhost 127.0.0.1/32 >/dev/null
echo "written: $out/nmap_loopback.xml $out/nmap_connect.xml"
