#!/usr/bin/env python3
"""Writes the small capture files that test and seed the --pcap reader.

Every file is built here byte by byte with Python's struct module (pcap and
pcapng formats as their specifications describe them), never captured from
a real interface. Run from anywhere:
    python3 tests/discovery/tools/make_pcap_corpus.py
It rewrites tests/discovery/corpus/pcapin/*. test_pcapin.c checks what the
reader makes of each file, so the contents below are its ground truth:

session.pcap   Ethernet, microseconds, little-endian. 198.18.0.1 (client, MAC
               02:00:00:00:00:01) asks for 198.18.0.2 by ARP; 198.18.0.2 (MAC
               00:1b:21:aa:bb:cc, Intel) replies. TCP to 198.18.0.2:22: SYN
               with full options, a Linux SYN-ACK (65160, M,S,T,N,W, DF, id
               0), ACK, the server's banner "SSH-2.0-OpenSSH_9.2p1
               Debian-2+deb12u3\\r\\n", the client's data, a retransmission of
               the banner. TCP to 198.18.0.2:80: SYN, SYN-ACK, client request,
               the server's "HTTP/1.0 200 OK" response. TCP to 198.18.0.2:81:
               SYN, RST (closed). 198.18.0.2:8080 sends data in a connection
               whose SYN-ACK is not in the capture (no banner, no port).
               198.19.0.7 (routed, through MAC 02:00:00:00:00:fe) sends an
               ICMP echo reply with TTL 60. 0.0.0.0 sends a DHCP discover to
               255.255.255.255 (no host). An IPv6 frame (ignored). A frame
               cut short by the snap length inside the TCP header, from
               198.18.0.3 (a host, no port). An IPv4 frame with a bad header
               checksum from 198.18.0.99 (no host).
session.pcapng the same packets as pcapng (one section, one interface,
               enhanced packet blocks, nanosecond resolution).
sll.pcap       Linux cooked (SLL): an ARP reply from 198.18.0.5 and a SYN-ACK
               from 198.18.0.5:443 (Windows-like: TTL 128, 8192).
raw.pcap       raw IPv4 (LINKTYPE_RAW): a SYN-ACK from 198.18.0.6:25 and the
               server's "220 mail ESMTP\\r\\n" (OS hint none).
nanosec_be.pcap big-endian, nanosecond magic: an echo reply from 198.18.0.7.
empty.pcap     a header and no packets.
truncated.pcap session.pcap cut in the middle of its 5th packet.
header_cut.pcap the first 10 bytes of a pcap header.
garbage.bin    not a capture at all.
usb.pcap       link type 189 (USB): refused as unsupported.
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "pcapin")

CLIENT_MAC = bytes([0x02, 0, 0, 0, 0, 0x01])
SERVER_MAC = bytes([0x00, 0x1B, 0x21, 0xAA, 0xBB, 0xCC])
ROUTER_MAC = bytes([0x02, 0, 0, 0, 0, 0xFE])
BCAST = b"\xff" * 6
CLIENT = bytes([198, 18, 0, 1])
SERVER = bytes([198, 18, 0, 2])
T0 = 1767225600  # 2026-01-01T00:00:00Z


def ip(s):
    return bytes(int(x) for x in s.split("."))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(dst, src, etype, payload):
    return dst + src + struct.pack("!H", etype) + payload


def ipv4(src, dst, proto, payload, ttl=64, ident=0, df=True, bad_csum=False):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident,
                    0x4000 if df else 0, ttl, proto, 0, src, dst)
    c = csum(h) ^ (0x5555 if bad_csum else 0)
    return h[:10] + struct.pack("!H", c) + h[12:] + payload


def tcp(src, dst, sport, dport, seq, ack, flags, window, options=b"", payload=b""):
    assert len(options) % 4 == 0
    off = (20 + len(options)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, window, 0, 0) + options
    seg = h + payload
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp(src, dst, sport, dport, payload):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return seg


def arp(op, smac, sip, tmac, tip):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, smac, sip, tmac, tip)


SYN, ACK, PSH, RST = 0x02, 0x10, 0x08, 0x04
# Client SYN options: mss 1460, sackOK, TS, nop, wscale 7.
CLIENT_OPTS = bytes([2, 4, 5, 0xB4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7])
# Linux SYN-ACK options to it, same layout.
LINUX_OPTS = bytes([2, 4, 5, 0xB4, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 1, 1, 3, 3, 7])
MSS_ONLY = bytes([2, 4, 5, 0xB4])
BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
HTTP = b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\n\r\n"


def session():
    """(frame, caplen or None) in order; Ethernet."""
    f = []

    def add(frame, caplen=None):
        f.append((frame, caplen))

    def to_srv(payload_tcp):
        add(eth(SERVER_MAC, CLIENT_MAC, 0x0800, ipv4(CLIENT, SERVER, 6, payload_tcp, ident=100)))

    def to_cli(payload_tcp):
        add(eth(CLIENT_MAC, SERVER_MAC, 0x0800, ipv4(SERVER, CLIENT, 6, payload_tcp)))

    add(eth(BCAST, CLIENT_MAC, 0x0806, arp(1, CLIENT_MAC, CLIENT, b"\0" * 6, SERVER)))
    add(eth(CLIENT_MAC, SERVER_MAC, 0x0806, arp(2, SERVER_MAC, SERVER, CLIENT_MAC, CLIENT)))
    # ssh: handshake, banner, client data, banner retransmitted
    to_srv(tcp(CLIENT, SERVER, 40000, 22, 1000, 0, SYN, 64240, CLIENT_OPTS))
    to_cli(tcp(SERVER, CLIENT, 22, 40000, 5000, 1001, SYN | ACK, 65160, LINUX_OPTS))
    to_srv(tcp(CLIENT, SERVER, 40000, 22, 1001, 5001, ACK, 502))
    to_cli(tcp(SERVER, CLIENT, 22, 40000, 5001, 1001, PSH | ACK, 509, payload=BANNER))
    to_srv(tcp(CLIENT, SERVER, 40000, 22, 1001, 5001 + len(BANNER), PSH | ACK, 502,
               payload=b"SSH-2.0-client\r\n"))
    to_cli(tcp(SERVER, CLIENT, 22, 40000, 5001, 1017, PSH | ACK, 509, payload=b"X" + BANNER))
    # http: the client speaks first; the banner is the server's response
    to_srv(tcp(CLIENT, SERVER, 40001, 80, 2000, 0, SYN, 64240, CLIENT_OPTS))
    to_cli(tcp(SERVER, CLIENT, 80, 40001, 7000, 2001, SYN | ACK, 65160, LINUX_OPTS))
    to_srv(tcp(CLIENT, SERVER, 40001, 80, 2001, 7001, PSH | ACK, 502, payload=b"GET / HTTP/1.0\r\n\r\n"))
    to_cli(tcp(SERVER, CLIENT, 80, 40001, 7001, 2019, PSH | ACK, 509, payload=HTTP))
    # closed port
    to_srv(tcp(CLIENT, SERVER, 40002, 81, 3000, 0, SYN, 64240, CLIENT_OPTS))
    to_cli(tcp(SERVER, CLIENT, 81, 40002, 0, 3001, RST | ACK, 0))
    # a connection already under way when the capture started
    to_cli(tcp(SERVER, CLIENT, 8080, 40003, 123456, 99, PSH | ACK, 509, payload=b"mid-stream data"))
    # a routed host's echo reply, through the router's MAC
    icmp = struct.pack("!BBHHH", 0, 0, 0, 7, 1) + b"ping"
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    add(eth(CLIENT_MAC, ROUTER_MAC, 0x0800, ipv4(ip("198.19.0.7"), CLIENT, 1, icmp, ttl=60, ident=7)))
    # DHCP discover from 0.0.0.0
    add(eth(BCAST, bytes([2, 0, 0, 0, 0, 0x33]), 0x0800,
            ipv4(ip("0.0.0.0"), ip("255.255.255.255"), 17, udp(b"\0" * 4, b"\xff" * 4, 68, 67, b"\0" * 240),
                 ttl=64, df=False)))
    # IPv6 (ignored)
    add(eth(SERVER_MAC, CLIENT_MAC, 0x86DD, bytes([0x60]) + b"\0" * 39))
    # cut by the snap length in the middle of the TCP header
    cut = eth(CLIENT_MAC, bytes([2, 0, 0, 0, 0, 3]), 0x0800,
              ipv4(ip("198.18.0.3"), CLIENT, 6, tcp(ip("198.18.0.3"), CLIENT, 443, 40004, 1, 1, ACK, 100)))
    add(cut, 14 + 20 + 10)
    # a bad IPv4 header checksum
    add(eth(CLIENT_MAC, bytes([2, 0, 0, 0, 0, 0x63]), 0x0800,
            ipv4(ip("198.18.0.99"), CLIENT, 6, tcp(ip("198.18.0.99"), CLIENT, 22, 40005, 1, 1, SYN | ACK, 100),
                 bad_csum=True)))
    return f


def pcap(frames, linktype=1, nano=False, big=False, snaplen=65535):
    e = ">" if big else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
    for i, (frame, caplen) in enumerate(frames):
        data = frame if caplen is None else frame[:caplen]
        frac = i * 1000 + 1 if not nano else i * 1000000 + 1
        out += struct.pack(e + "IIII", T0 + i, frac, len(data), len(frame)) + data
    return out


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def pcapng(frames, linktype=1):
    def block(btype, body):
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    # if_tsresol = 9 (nanoseconds), then opt_endofopt
    opts = struct.pack("<HHB", 9, 1, 9) + b"\0" * 3 + struct.pack("<HH", 0, 0)
    idb = block(0x00000001, struct.pack("<HHI", linktype, 0, 65535) + opts)
    out = shb + idb
    for i, (frame, caplen) in enumerate(frames):
        data = frame if caplen is None else frame[:caplen]
        ts = (T0 + i) * 1000000000 + i * 1000000 + 1
        body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(frame)) + pad4(data)
        out += block(0x00000006, body)
    return out


def sll(proto, payload, pkttype=0):
    return struct.pack("!HHH8sH", pkttype, 1, 6, SERVER_MAC + b"\0\0", proto) + payload


def main():
    os.makedirs(OUT, exist_ok=True)
    frames = session()
    files = {}
    files["session.pcap"] = pcap(frames)
    files["session.pcapng"] = pcapng(frames)
    w = ip("198.18.0.5")
    files["sll.pcap"] = pcap([
        (sll(0x0806, arp(2, SERVER_MAC, w, CLIENT_MAC, CLIENT)), None),
        (sll(0x0800, ipv4(w, CLIENT, 6, tcp(w, CLIENT, 443, 40010, 9, 77, SYN | ACK, 8192, MSS_ONLY),
                          ttl=127, ident=0x4321)), None),
    ], linktype=113)
    m = ip("198.18.0.6")
    files["raw.pcap"] = pcap([
        (ipv4(m, CLIENT, 6, tcp(m, CLIENT, 25, 40011, 500, 78, SYN | ACK, 64240, MSS_ONLY)), None),
        (ipv4(m, CLIENT, 6, tcp(m, CLIENT, 25, 40011, 501, 78, PSH | ACK, 502,
                                payload=b"220 mail ESMTP\r\n")), None),
    ], linktype=101)
    e = ip("198.18.0.7")
    icmp = struct.pack("!BBHHH", 0, 0, 0, 1, 1)
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    files["nanosec_be.pcap"] = pcap([(eth(CLIENT_MAC, ROUTER_MAC, 0x0800, ipv4(e, CLIENT, 1, icmp, ttl=128)), None)],
                                    nano=True, big=True)
    files["empty.pcap"] = pcap([])
    whole = files["session.pcap"]
    # 24-byte header, then records of 16 + len bytes: cut inside the 5th record's data
    off = 24
    for frame, caplen in frames[:4]:
        off += 16 + len(frame if caplen is None else frame[:caplen])
    files["truncated.pcap"] = whole[:off + 16 + 10]
    files["header_cut.pcap"] = whole[:10]
    files["garbage.bin"] = b"This is not a capture file; it is plain text.\n" * 3
    files["usb.pcap"] = pcap([(b"\0" * 64, None)], linktype=189)
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as fh:
            fh.write(data)
    print(f"wrote {len(files)} files to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
