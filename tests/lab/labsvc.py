#!/usr/bin/python3
"""Services and ground truth for the cmdb network-namespace lab (tests/lab/lab.sh).

  labsvc.py serve [--cert C --key K] [--root DIR] SPEC...
      Serve every SPEC (KIND:PORT) on all addresses of the current network
      namespace, one thread per listener, until killed. Prints "ready" on
      stdout once every port is bound. KINDs: see KINDS below.

  labsvc.py truth MANIFEST
      Print the lab's ground truth as JSON, from the manifest lab.sh writes.

  labsvc.py check TRUTH
      Used by selftest.sh inside the scanner namespace: connect to every
      ground-truth port, compare banners, certificates and HTTP headers, probe
      closed and filtered ports. Prints one "PASS ..." or "FAIL ..." per check.

Standard library only (Debian 12 python3). Every read has a timeout and every
connection a bounded number of exchanges, so no client can pin a thread.
"""

import concurrent.futures
import datetime
import errno
import hashlib
import http.server
import json
import os
import re
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time

PY_VERSION = "%d.%d.%d" % sys.version_info[:3]
HTTP_SERVER_HEADER = "%s %s" % (http.server.SimpleHTTPRequestHandler.server_version,
                                http.server.SimpleHTTPRequestHandler.sys_version)

SSH_BANNER = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
SMTP_BANNER = "220 mail.lab.test ESMTP Postfix (Debian/GNU)"
FTP_BANNER = "220 (vsFTPd 3.0.3)"
POP3_BANNER = "+OK Dovecot (Debian) ready."
IMAP_CAPS = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN"
IMAP_BANNER = "* OK [CAPABILITY %s] Dovecot (Debian) ready." % IMAP_CAPS
REDIS_VERSION = "7.0.15"
UNKNOWN_BANNER = "HELLO cmdb-lab custom-service 1.0"

IO_TIMEOUT = 10.0      # seconds a connection may stay idle
MAX_EXCHANGES = 32     # requests answered per connection before closing


# --------------------------------------------------------------------------
# Protocol handlers (server side)

class Conn:
    """Line-oriented helper around a connected (possibly TLS) socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def readline(self, limit=4096):
        while b"\n" not in self.buf:
            if len(self.buf) > limit:
                break
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        if b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            return line.rstrip(b"\r").decode("latin-1")
        line, self.buf = self.buf, b""
        return line.decode("latin-1") if line else None


def serve_ssh(c):
    c.send(SSH_BANNER + "\r\n")
    # Read the client's identification, then hang up (a real server would
    # start the key exchange here; no scanner needs more than the banner).
    c.readline()


def serve_smtp(c):
    c.send(SMTP_BANNER + "\r\n")
    for _ in range(MAX_EXCHANGES):
        line = c.readline()
        if line is None:
            return
        cmd = line.split(" ", 1)[0].upper()
        if cmd == "EHLO":
            c.send("250-mail.lab.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                   "250-VRFY\r\n250-ETRN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
                   "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n")
        elif cmd == "HELO":
            c.send("250 mail.lab.test\r\n")
        elif cmd == "QUIT":
            c.send("221 2.0.0 Bye\r\n")
            return
        elif cmd in ("NOOP", "RSET"):
            c.send("250 2.0.0 Ok\r\n")
        else:
            c.send("502 5.5.2 Error: command not recognized\r\n")


def serve_ftp(c):
    c.send(FTP_BANNER + "\r\n")
    for _ in range(MAX_EXCHANGES):
        line = c.readline()
        if line is None:
            return
        cmd = line.split(" ", 1)[0].upper()
        if cmd == "USER":
            c.send("331 Please specify the password.\r\n")
        elif cmd == "PASS":
            c.send("530 Login incorrect.\r\n")
        elif cmd == "SYST":
            c.send("215 UNIX Type: L8\r\n")
        elif cmd == "FEAT":
            c.send("211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n REST STREAM\r\n"
                   " SIZE\r\n TVFS\r\n211 End\r\n")
        elif cmd == "QUIT":
            c.send("221 Goodbye.\r\n")
            return
        else:
            c.send("530 Please login with USER and PASS.\r\n")


def serve_pop3(c):
    c.send(POP3_BANNER + "\r\n")
    for _ in range(MAX_EXCHANGES):
        line = c.readline()
        if line is None:
            return
        cmd = line.split(" ", 1)[0].upper()
        if cmd == "CAPA":
            c.send("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n"
                   "USER\r\nSASL PLAIN\r\n.\r\n")
        elif cmd == "QUIT":
            c.send("+OK Logging out.\r\n")
            return
        elif cmd in ("USER", "PASS"):
            c.send("-ERR [AUTH] Authentication failed.\r\n" if cmd == "PASS" else "+OK\r\n")
        else:
            c.send("-ERR Unknown command.\r\n")


def serve_imap(c):
    c.send(IMAP_BANNER + "\r\n")
    for _ in range(MAX_EXCHANGES):
        line = c.readline()
        if line is None:
            return
        parts = line.split(" ", 2)
        tag = parts[0] if parts and parts[0] else "*"
        cmd = parts[1].upper() if len(parts) > 1 else ""
        if cmd == "CAPABILITY":
            c.send("* CAPABILITY %s\r\n%s OK Pre-login capabilities listed, post-login capabilities have more.\r\n"
                   % (IMAP_CAPS, tag))
        elif cmd == "NOOP":
            c.send("%s OK NOOP completed.\r\n" % tag)
        elif cmd == "LOGOUT":
            c.send("* BYE Logging out\r\n%s OK Logout completed.\r\n" % tag)
            return
        elif cmd == "LOGIN":
            c.send("%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n" % tag)
        else:
            c.send("%s BAD Error in IMAP command received by server.\r\n" % tag)


def redis_info():
    body = ("# Server\r\nredis_version:%s\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n"
            "os:Linux x86_64\r\narch_bits:64\r\ntcp_port:6379\r\n"
            "# Clients\r\nconnected_clients:1\r\n" % REDIS_VERSION)
    return "$%d\r\n%s\r\n" % (len(body.encode()), body)


def redis_read_command(c):
    """One command, inline ("PING") or RESP array ("*1\\r\\n$4\\r\\nPING\\r\\n")."""
    line = c.readline()
    if line is None:
        return None
    if not line.startswith("*"):
        return line.split()
    try:
        n = min(int(line[1:]), 16)
    except ValueError:
        return ["<protocol-error>"]
    args = []
    for _ in range(n):
        hdr = c.readline()
        if hdr is None:
            return None
        if hdr.startswith("$"):
            arg = c.readline()
            if arg is None:
                return None
            args.append(arg)
        else:
            args.append(hdr)
    return args


def serve_redis(c):
    for _ in range(MAX_EXCHANGES):
        args = redis_read_command(c)
        if args is None:
            return
        if not args:
            continue
        cmd = args[0].upper()
        if cmd == "PING":
            c.send("+PONG\r\n" if len(args) == 1 else "$%d\r\n%s\r\n" % (len(args[1]), args[1]))
        elif cmd == "INFO":
            c.send(redis_info())
        elif cmd == "QUIT":
            c.send("+OK\r\n")
            return
        elif cmd == "<protocol-error>":
            c.send("-ERR Protocol error: invalid multibulk length\r\n")
            return
        else:
            c.send("-ERR unknown command '%s', with args beginning with: \r\n" % args[0][:64])


def serve_unknown(c):
    c.send(UNKNOWN_BANNER + "\r\n")
    for _ in range(MAX_EXCHANGES):
        line = c.readline()
        if line is None:
            return
        c.send("ERR what?\r\n")


def serve_silent(c):
    # Accepts, never speaks, closes after the first request (or the idle timeout).
    c.readline()


# --- Protocol servers for the full service set (LAB_SERVICES=full). Each
# speaks the real protocol's opening exchange, built from its specification,
# enough for a client to recognise the service; none implements more.

MYSQL_VERSION = "8.0.36"
MONGODB_VERSION = "7.0.5"
PJL_ID = "HP LaserJet 4250"
CUPS_SERVER = "CUPS/2.4 IPP/2.1"


class RawConn:
    """Byte-oriented reads with a bound on what is kept."""

    def __init__(self, c):
        self.c = c

    def read(self, n):
        data = b""
        if self.c.buf:
            data, self.c.buf = self.c.buf[:n], self.c.buf[n:]
        while len(data) < n:
            chunk = self.c.sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data


def serve_mysql(c):
    # Initial handshake packet, protocol version 10 (MySQL client/server protocol).
    import struct
    payload = (b"\x0a" + MYSQL_VERSION.encode() + b"\x00" + struct.pack("<I", 8) + b"abcdefgh\x00"
               + struct.pack("<H", 0xffff) + b"\xff" + struct.pack("<H", 2)
               + struct.pack("<H", 0xdfff) + b"\x15" + b"\x00" * 10 + b"ijklmnopqrst\x00"
               + b"caching_sha2_password\x00")
    c.send(struct.pack("<I", len(payload))[:3] + b"\x00" + payload)
    RawConn(c).read(4)  # the client's answer header, then hang up


def serve_mongodb(c):
    import struct
    r = RawConn(c)
    for _ in range(MAX_EXCHANGES):
        hdr = r.read(16)
        if hdr is None:
            return
        length, req_id, _, opcode = struct.unpack("<iiii", hdr)
        if length < 16 or length > 1 << 20 or r.read(length - 16) is None:
            return
        # BSON {version: MONGODB_VERSION, gitVersion: "...", ok: 1.0}
        def bstr(k, v):
            v = v.encode() + b"\x00"
            return b"\x02" + k.encode() + b"\x00" + struct.pack("<i", len(v)) + v
        body = (bstr("version", MONGODB_VERSION) + bstr("gitVersion", "0d2f1c9e7d1a8b6c5f4e3d2c1b0a9f8e7d6c5b4a")
                + b"\x01ok\x00" + struct.pack("<d", 1.0))
        doc = struct.pack("<i", len(body) + 5) + body + b"\x00"
        msg = struct.pack("<I", 0) + b"\x00" + doc
        c.send(struct.pack("<iiii", 16 + len(msg), 100, req_id, 2013) + msg)


def serve_smb(c):
    # SMB2 NEGOTIATE response choosing dialect 3.0.2 (MS-SMB2 2.2.4).
    import struct
    r = RawConn(c)
    nb = r.read(4)
    if nb is None or nb[0] != 0:
        return
    req = r.read(int.from_bytes(nb[1:], "big") & 0xffffff)
    if req is None or req[:4] != b"\xfeSMB":
        return
    hdr = (b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ", 64, 0, 0, 0, 1, 1, 0, 0, 0xfeff, 0, 0)
           + b"\x00" * 16)
    body = (struct.pack("<HHHH", 65, 1, 0x0302, 0) + b"cmdb-lab-smb-srv" + struct.pack("<IIII", 0x7, 65536, 65536, 65536)
            + struct.pack("<QQ", 0, 0) + struct.pack("<HHI", 128, 0, 0))
    msg = hdr + body
    c.send(b"\x00" + len(msg).to_bytes(3, "big") + msg)
    r.read(1)


def serve_rdp(c):
    # X.224 Connection Confirm with RDP_NEG_RSP selecting PROTOCOL_HYBRID (MS-RDPBCGR 2.2.1.2).
    r = RawConn(c)
    tpkt = r.read(4)
    if tpkt is None or tpkt[0] != 3:
        return
    if r.read(max(0, int.from_bytes(tpkt[2:4], "big") - 4)) is None:
        return
    c.send(b"\x03\x00\x00\x13\x0e\xd0\x00\x00\x12\x34\x00\x02\x1f\x08\x00\x02\x00\x00\x00")
    r.read(1)


def ber_read(r):
    """One BER TLV: (tag, value bytes) or None."""
    tag = r.read(1)
    ln = r.read(1) if tag else None
    if ln is None:
        return None
    n = ln[0]
    if n & 0x80:
        raw = r.read(n & 0x7f)
        if raw is None or len(raw) > 3:
            return None
        n = int.from_bytes(raw, "big")
    val = r.read(n) if n else b""
    return None if val is None else (tag[0], val)


def serve_ldap(c):
    # RFC 4511: answer a simple bind with success (anonymous binds allowed).
    r = RawConn(c)
    for _ in range(MAX_EXCHANGES):
        msg = ber_read(r)
        if msg is None or msg[0] != 0x30:
            return
        v = msg[1]
        if len(v) < 3 or v[0] != 0x02:
            return
        msgid = v[2:2 + v[1]]
        op = v[2 + v[1]] if len(v) > 2 + v[1] else None
        if op == 0x60:  # bindRequest -> bindResponse success
            resp = b"\x0a\x01\x00\x04\x00\x04\x00"
            body = b"\x02" + bytes([len(msgid)]) + msgid + b"\x61" + bytes([len(resp)]) + resp
            c.send(b"\x30" + bytes([len(body)]) + body)
        elif op == 0x42:  # unbindRequest
            return
        else:
            return


def serve_vnc(c):
    # RFB 6.1.1: the server sends its ProtocolVersion first.
    c.send(b"RFB 003.008\n")
    if RawConn(c).read(12) is None:
        return
    c.send(b"\x01\x02")  # one security type: VNC authentication
    RawConn(c).read(1)


def serve_telnet(c):
    # RFC 854/1091/857: ask for the terminal type, offer echo and suppress-go-ahead, then a prompt.
    c.send(b"\xff\xfd\x18\xff\xfd\x20\xff\xfb\x01\xff\xfb\x03")
    c.send(b"\r\nDebian GNU/Linux 12\r\nlogin: ")
    c.readline()


def serve_pjl(c):
    for _ in range(MAX_EXCHANGES):
        line = c.readline()
        if line is None:
            return
        if "@PJL INFO ID" in line:
            c.send('@PJL INFO ID\r\n"%s"\r\n\x0c' % PJL_ID)


def serve_ipp(c):
    # CUPS answers plain HTTP on the IPP port.
    request = c.readline()
    if request is None:
        return
    for _ in range(64):
        line = c.readline()
        if not line:
            break
    body = "<html><head><title>Home - CUPS 2.4.2</title></head><body></body></html>"
    c.send("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Language: en_US\r\n"
           "Content-Length: %d\r\nContent-Type: text/html; charset=utf-8\r\nServer: %s\r\n\r\n%s"
           % (len(body), CUPS_SERVER, body))


# kind -> (handler, tls, truth entry without port)
KINDS = {
    "ssh":     (serve_ssh, False, {"service": "ssh", "product": "OpenSSH", "version": "9.2p1",
                                   "extra": {"distro": "Debian-2+deb12u3"}, "banner": SSH_BANNER}),
    "smtp":    (serve_smtp, False, {"service": "smtp", "product": "Postfix smtpd",
                                    "extra": {"hostname": "mail.lab.test"}, "banner": SMTP_BANNER}),
    "smtps":   (serve_smtp, True, {"service": "smtp", "product": "Postfix smtpd",
                                   "extra": {"hostname": "mail.lab.test"}, "banner": SMTP_BANNER}),
    "ftp":     (serve_ftp, False, {"service": "ftp", "product": "vsftpd", "version": "3.0.3",
                                   "banner": FTP_BANNER}),
    "pop3":    (serve_pop3, False, {"service": "pop3", "product": "Dovecot pop3d", "banner": POP3_BANNER}),
    "pop3s":   (serve_pop3, True, {"service": "pop3", "product": "Dovecot pop3d", "banner": POP3_BANNER}),
    "imap":    (serve_imap, False, {"service": "imap", "product": "Dovecot imapd", "banner": IMAP_BANNER}),
    "imaps":   (serve_imap, True, {"service": "imap", "product": "Dovecot imapd", "banner": IMAP_BANNER}),
    "redis":   (serve_redis, False, {"service": "redis", "product": "Redis key-value store",
                                     "version": REDIS_VERSION}),
    "unknown": (serve_unknown, False, {"service": "unknown", "banner": UNKNOWN_BANNER}),
    "silent":  (serve_silent, False, {"service": "unknown"}),
    "http":    (None, False, {"service": "http", "product": "SimpleHTTP", "version": "0.6",
                              "extra": {"python": PY_VERSION, "server_header": HTTP_SERVER_HEADER}}),
    "mysql":   (serve_mysql, False, {"service": "mysql", "product": "MySQL", "version": MYSQL_VERSION}),
    "mongodb": (serve_mongodb, False, {"service": "mongodb", "product": "MongoDB",
                                       "version": MONGODB_VERSION}),
    "smb":     (serve_smb, False, {"service": "smb", "extra": {"dialect": "3.0.2"}}),
    "rdp":     (serve_rdp, False, {"service": "rdp", "extra": {"security": "CredSSP"}}),
    "ldap":    (serve_ldap, False, {"service": "ldap"}),
    "ldaps":   (serve_ldap, True, {"service": "ldap"}),
    "vnc":     (serve_vnc, False, {"service": "vnc", "extra": {"protocol": "003.008"}}),
    "telnet":  (serve_telnet, False, {"service": "telnet"}),
    "pjl":     (serve_pjl, False, {"service": "printer-pjl", "product": PJL_ID}),
    "ipp":     (serve_ipp, False, {"service": "ipp", "product": "CUPS", "version": "2.4"}),
}

# Real daemons lab.sh starts in LAB_SERVICES=full: kind -> (proto, truth entry). The
# versions are read from the installed programs when the truth is written.
REAL = {
    "sshd":          ("tcp", {"service": "ssh", "product": "OpenSSH"}),
    "redis-server":  ("tcp", {"service": "redis", "product": "Redis key-value store"}),
    "memcached":     ("tcp", {"service": "memcached", "product": "memcached"}),
    "mosquitto":     ("tcp", {"service": "mqtt", "extra": {"actual_product": "Mosquitto"}}),
    "dnsmasq":       ("tcp", {"service": "dns", "product": "dnsmasq"}),
    "dnsmasq-udp":   ("udp", {"service": "dns", "product": "dnsmasq"}),
    "snmpd":         ("udp", {"service": "snmp", "extra": {"actual_product": "Net-SNMP"}}),
}


class QuietHTTPHandler(http.server.SimpleHTTPRequestHandler):
    timeout = IO_TIMEOUT

    def log_message(self, fmt, *args):
        pass


class ProtoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(IO_TIMEOUT)
        try:
            if self.server.tls_ctx is not None:
                sock = self.server.tls_ctx.wrap_socket(sock, server_side=True)
            self.server.proto(Conn(sock))
        except (OSError, ssl.SSLError, UnicodeError):
            pass


class ProtoServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


class HTTPServer(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


def cmd_serve(argv):
    cert = key = None
    root = os.getcwd()
    specs = []
    it = iter(argv)
    for a in it:
        if a == "--cert":
            cert = next(it)
        elif a == "--key":
            key = next(it)
        elif a == "--root":
            root = next(it)
        else:
            specs.append(a)
    tls_ctx = None
    servers = []
    for spec in specs:
        kind, port = spec.split(":")
        handler, tls, _ = KINDS[kind]
        if kind == "http":
            srv = HTTPServer(("", int(port)),
                             lambda *a, **kw: QuietHTTPHandler(*a, directory=root, **kw))
        else:
            srv = ProtoServer(("", int(port)), ProtoHandler)
            srv.proto = handler
            srv.tls_ctx = None
            if tls:
                if tls_ctx is None:
                    tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    tls_ctx.load_cert_chain(cert, key)
                srv.tls_ctx = tls_ctx
        servers.append(srv)
    for srv in servers:
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 1.0}, daemon=True).start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


# --------------------------------------------------------------------------
# Ground truth

def oui_vendor(mac):
    first = int(mac[:2], 16)
    if first & 0x02:
        return None
    prefix = mac[:8].upper().replace(":", "-")
    try:
        with open("/usr/share/ieee-data/oui.txt", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(prefix) and "(hex)" in line:
                    return line.split("(hex)", 1)[1].strip()
    except OSError:
        pass
    return None


def cert_info(path):
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-subject", "-issuer",
                          "-startdate", "-enddate", "-ext", "subjectAltName",
                          "-fingerprint", "-sha256", "-nameopt", "RFC2253"],
                         check=True, capture_output=True, text=True).stdout

    def field(name):
        m = re.search(r"^%s=(.*)$" % name, out, re.M)
        return m.group(1).strip() if m else None

    def iso(d):
        return datetime.datetime.strptime(d, "%b %d %H:%M:%S %Y %Z").strftime("%Y-%m-%dT%H:%M:%SZ")

    sans = []
    m = re.search(r"X509v3 Subject Alternative Name:.*?\n\s*(.*)", out)
    if m:
        for item in m.group(1).split(","):
            kind, _, val = item.strip().partition(":")
            sans.append({"DNS": "dns", "IP Address": "ip"}.get(kind, kind.lower()) + ":" + val)
    subject = field("subject")
    return {
        "subject": subject,
        "subject_cn": re.search(r"CN=([^,]+)", subject).group(1),
        "issuer": field("issuer"),
        "self_signed": subject == field("issuer"),
        "sans": sans,
        "not_before": iso(field("notBefore")),
        "not_after": iso(field("notAfter")),
        "sha256": field("sha256 Fingerprint").replace(":", "").lower(),
    }


def tool_version(cmd, pattern):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        m = re.search(pattern, r.stdout + r.stderr)
        return m.group(1) if m else None
    except (OSError, subprocess.SubprocessError):
        return None


_REAL_VERSIONS = None


def real_versions():
    global _REAL_VERSIONS
    if _REAL_VERSIONS is None:
        dnsmasq = tool_version(["dnsmasq", "--version"], r"Dnsmasq version (\S+)")
        _REAL_VERSIONS = {
            "sshd": tool_version(["ssh", "-V"], r"OpenSSH_([0-9A-Za-z.]+)"),
            "redis-server": tool_version(["redis-server", "--version"], r"v=(\S+)"),
            "memcached": tool_version(["memcached", "-V"], r"memcached (\S+)"),
            "dnsmasq": dnsmasq,
            "dnsmasq-udp": dnsmasq,
        }
    return _REAL_VERSIONS


def cmd_truth(argv):
    manifest = argv[0]
    meta, hosts, order = {}, {}, []
    certs = {}
    ports = []
    with open(manifest) as f:
        for line in f:
            row = line.rstrip("\n").split("\t")
            if row[0] == "meta":
                meta[row[1]] = row[2]
            elif row[0] == "host":
                (_, name, role, ns, ip, mac, subnet, hostname, arp, ping, default_state,
                 hidden) = row
                hosts[name] = {
                    "name": name, "role": role, "hostname": hostname or None, "ns": ns,
                    "ip": ip, "mac": mac, "vendor": oui_vendor(mac),
                    "locally_administered": bool(int(mac[:2], 16) & 0x02),
                    "subnet": subnet, "on_link": subnet == "A",
                    "answers": arp == "1" or ping == "1",
                    "answers_arp": arp == "1", "answers_ping": ping == "1",
                    "default_port_state": default_state,
                    "ports": [],
                    "hidden_listeners": [int(p) for p in hidden.split(",") if p],
                }
                order.append(name)
            elif row[0] == "cert":
                certs[row[1]] = row[2]
            elif row[0] == "port":
                ports.append(row[1:])
            else:
                raise SystemExit("truth: bad manifest line: %r" % line)
    router_mac = hosts["rt"]["mac"] if "rt" in hosts else None
    for h in hosts.values():
        h["mac_seen_by_scanner"] = h["mac"] if h["on_link"] else router_mac
        if not h["on_link"]:
            h["via"] = meta.get("router_a")
        if h["role"] == "router":
            h["other_ips"] = [meta.get("router_b")]

    nginx_version = tool_version(["nginx", "-v"], r"nginx/(\S+)")
    pg_version = tool_version([meta["postgres"], "--version"], r"PostgreSQL\)\s+(\S+)")
    ssl_version = tool_version(["openssl", "version"], r"OpenSSL\s+(\S+)")
    cert_cache = {}

    for name, kind, port, certname, title in ports:
        if kind == "nginx-http" or kind == "nginx-https":
            entry = {"service": "http", "product": "nginx", "version": nginx_version,
                     "extra": {"server_header": "nginx/%s" % nginx_version}}
            tls = kind == "nginx-https"
        elif kind == "postgresql":
            entry = {"service": "postgresql", "product": "PostgreSQL",
                     "extra": {"actual_version": pg_version,
                               "note": "version is not sent before authentication"}}
            tls = False
        elif kind == "s_server":
            entry = {"service": "http", "product": "OpenSSL s_server",
                     "extra": {"openssl": ssl_version,
                               "note": "openssl s_server -www: HTTP/1.0 status page, one client at a time"}}
            tls = True
        elif kind.startswith("real-"):
            proto, base = REAL[kind[5:]]
            entry = json.loads(json.dumps(base))
            version = real_versions().get(kind[5:])
            if version and "product" in entry:
                entry["version"] = version
            tls = False
        else:
            _, tls, base = KINDS[kind]
            entry = json.loads(json.dumps(base))
        if title:
            entry.setdefault("extra", {})["title"] = title
        proto = REAL[kind[5:]][0] if kind.startswith("real-") else "tcp"
        entry = {"proto": proto, "port": int(port), "tls": tls, "kind": kind, **entry}
        entry["speaks_first"] = "banner" in entry
        if tls:
            if certname not in cert_cache:
                cert_cache[certname] = cert_info(certs[certname])
            entry["cert"] = cert_cache[certname]
        hosts[name]["ports"].append(entry)
    for h in hosts.values():
        h["ports"].sort(key=lambda p: p["port"])

    truth = {
        "format": "cmdb-lab-truth",
        "version": 1,
        "lab_id": meta["lab_id"],
        "created": meta["created"],
        "state_dir": meta["state_dir"],
        "scanner": {"ns": meta["scanner_ns"], "ip": meta["scanner_ip"], "mac": meta["scanner_mac"],
                    "iface": "eth0"},
        "subnets": [
            {"name": "A", "cidr": meta["subnet_a"], "on_link": True, "gateway": meta["router_a"]},
            {"name": "B", "cidr": meta["subnet_b"], "on_link": False, "via": meta["router_a"],
             "gateway": meta["router_b"]},
        ],
        "hosts": [hosts[n] for n in order],
    }
    json.dump(truth, sys.stdout, indent=2)
    sys.stdout.write("\n")


# --------------------------------------------------------------------------
# Self-test client (run inside the scanner namespace)

def classify_connect(ip, port, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((ip, port))
        return "open", s
    except socket.timeout:
        s.close()
        return "timeout", None
    except OSError as e:
        s.close()
        if e.errno == errno.ECONNREFUSED:
            return "refused", None
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "unreachable", None
        return "error:%s" % errno.errorcode.get(e.errno, e.errno), None


def recv_until(sock, pred, limit=65536, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while not pred(data) and len(data) < limit and time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


def check_port(h, p):
    """Returns (ok, description)."""
    ip, port = h["ip"], p["port"]
    label = "%s %s:%d %s" % (h["name"], ip, port, p["kind"])
    state, s = classify_connect(ip, port, 3.0)
    if state != "open":
        return False, "%s: expected open, got %s" % (label, state)
    try:
        if p["tls"]:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s, server_hostname=p["cert"]["subject_cn"])
            fp = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
            if fp != p["cert"]["sha256"]:
                return False, "%s: certificate sha256 %s != truth %s" % (label, fp, p["cert"]["sha256"])
        if p.get("banner"):
            data = recv_until(s, lambda d: b"\n" in d)
            line = data.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
            if line != p["banner"]:
                return False, "%s: banner %r != truth %r" % (label, line, p["banner"])
        elif p["service"] == "http":
            s.sendall(b"GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % ip.encode())
            data = recv_until(s, lambda d: False, timeout=5.0)
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            if not head.startswith("HTTP/1."):
                return False, "%s: no HTTP response: %r" % (label, head[:80])
            want = p.get("extra", {}).get("server_header")
            if want and ("\r\nServer: %s\r\n" % want) not in head + "\r\n":
                return False, "%s: Server header != %r in %r" % (label, want, head)
            title = p.get("extra", {}).get("title")
            if title and ("<title>%s</title>" % title).encode() not in data:
                return False, "%s: title %r not found" % (label, title)
        elif p["service"] == "redis":
            s.sendall(b"*1\r\n$4\r\nINFO\r\n")
            data = recv_until(s, lambda d: b"redis_version:" in d and d.endswith(b"\r\n"))
            if ("redis_version:%s\r\n" % p["version"]).encode() not in data:
                return False, "%s: INFO lacks redis_version:%s" % (label, p["version"])
        elif p["service"] == "postgresql":
            # SSLRequest: a PostgreSQL server answers with one byte, 'S' or 'N'.
            s.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
            data = recv_until(s, lambda d: len(d) >= 1)
            if data[:1] not in (b"N", b"S"):
                return False, "%s: SSLRequest answer %r" % (label, data[:8])
        return True, "%s: open, %s verified" % (label, p["service"])
    finally:
        s.close()


def cmd_check(argv):
    with open(argv[0]) as f:
        truth = json.load(f)
    jobs = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
        for h in truth["hosts"]:
            if h["role"] == "scanner":
                continue
            for p in h["ports"]:
                jobs.append(ex.submit(check_port, h, p))
            open_ports = {p["port"] for p in h["ports"]}
            closed = next(x for x in (81, 1, 7, 9) if x not in open_ports)
            if not h["answers"]:
                for port in [closed] + h["hidden_listeners"]:
                    jobs.append(ex.submit(expect_state, h, port, ("timeout", "unreachable"), 1.0))
            elif h["default_port_state"] == "filtered":
                jobs.append(ex.submit(expect_state, h, closed, ("timeout",), 1.0))
            else:
                jobs.append(ex.submit(expect_state, h, closed, ("refused",), 3.0))
        results = [j.result() for j in jobs]
    results += check_l2_l3(truth)
    failed = 0
    for ok, desc in results:
        print(("PASS " if ok else "FAIL ") + desc, flush=True)
        failed += not ok
    sys.exit(1 if failed else 0)


def icmp_checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ping_all(ips, wait=1.5):
    """ICMP echo to every ip at once (raw socket, needs root); returns the set that replied."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    for seq, ip in enumerate(ips):
        hdr = bytes([8, 0, 0, 0]) + ident.to_bytes(2, "big") + seq.to_bytes(2, "big") + b"cmdb-lab"
        pkt = hdr[:2] + icmp_checksum(hdr).to_bytes(2, "big") + hdr[4:]
        s.sendto(pkt, (ip, 0))
    replied = set()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and len(replied) < len(ips):
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, addr = s.recvfrom(2048)
        except socket.timeout:
            break
        ihl = (data[0] & 0x0F) * 4
        if data[ihl] == 0 and int.from_bytes(data[ihl + 4:ihl + 6], "big") == ident:
            replied.add(addr[0])
    s.close()
    return replied


def arp_table():
    """ip -> mac of complete entries in this namespace's neighbour table."""
    table = {}
    with open("/proc/net/arp") as f:
        next(f)
        for line in f:
            ip, _hw, flags, mac = line.split()[:4]
            if int(flags, 16) & 0x2:
                table[ip] = mac.lower()
    return table


def check_l2_l3(truth):
    results = []
    hosts = [h for h in truth["hosts"] if h["role"] != "scanner"]
    replied = ping_all([h["ip"] for h in hosts])
    for h in hosts:
        got = h["ip"] in replied
        results.append((got == h["answers_ping"], "%s %s: ICMP echo reply %s, truth answers_ping %s"
                        % (h["name"], h["ip"], got, h["answers_ping"])))
    arp = arp_table()   # filled by the pings and connections made so far
    for h in hosts:
        if not h["on_link"]:
            continue
        mac = arp.get(h["ip"])
        if h["answers_arp"]:
            ok = mac == h["mac"]
        else:
            ok = mac is None
        results.append((ok, "%s %s: ARP %s, truth %s" % (h["name"], h["ip"], mac,
                                                          h["mac"] if h["answers_arp"] else "no answer")))
    return results


def expect_state(h, port, states, timeout):
    state, s = classify_connect(h["ip"], port, timeout)
    if s:
        s.close()
    ok = state in states
    return ok, "%s %s:%d: expected %s, got %s" % (h["name"], h["ip"], port, "/".join(states), state)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("serve", "truth", "check"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    {"serve": cmd_serve, "truth": cmd_truth, "check": cmd_check}[sys.argv[1]](sys.argv[2:])
