#!/usr/bin/env python3
"""Checks --os guesses (and, for --pcap, banners) in observations and -oX XML.

  check_os.py --obs FILE --xml FILE --family F --min-confidence N
              [--banner IP:PORT=PREFIX ...] [--guess IP=GUESS ...]

Every host line with a tcp_fingerprint (it sent a SYN-ACK) must carry an os
object of family F with a confidence of at least N; a host without one must
carry no os object (no guess is invented). The XML must be well-formed
nmaprun with the same hosts, and an osmatch of family F for exactly the
hosts guessed. --banner: a service line for IP:PORT whose banner starts
with PREFIX. --guess: the host's os.guess.
Exit 0 when everything holds, 1 with the differences otherwise.
"""
import argparse
import json
import sys
import xml.etree.ElementTree as ET


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--obs", required=True)
    ap.add_argument("--xml", required=True)
    ap.add_argument("--family", required=True)
    ap.add_argument("--min-confidence", type=int, required=True)
    ap.add_argument("--banner", action="append", default=[])
    ap.add_argument("--guess", action="append", default=[])
    a = ap.parse_args()
    errors = []
    lines = [json.loads(l) for l in open(a.obs) if l.strip()]
    hosts = {o["ip"]: o for o in lines if o["kind"] == "host"}
    guessed = set()
    for ip, h in sorted(hosts.items()):
        os_ = h.get("os")
        if "tcp_fingerprint" in h:
            if not os_:
                errors.append(f"{ip}: SYN-ACK {h['tcp_fingerprint']!r} but no guess")
                continue
            guessed.add(ip)
            if os_.get("family") != a.family:
                errors.append(f"{ip}: family {os_.get('family')}, want {a.family} ({h['tcp_fingerprint']})")
            if os_.get("confidence", -1) < a.min_confidence:
                errors.append(f"{ip}: confidence {os_.get('confidence')} < {a.min_confidence}")
        elif os_:
            errors.append(f"{ip}: a guess {os_} without a SYN-ACK")
    if not guessed:
        errors.append("no host was guessed at all")
    for spec in a.guess:
        ip, want = spec.split("=", 1)
        got = (hosts.get(ip, {}).get("os") or {}).get("guess")
        if got != want:
            errors.append(f"{ip}: guess {got!r}, want {want!r}")
    services = {(o["ip"], o["port"]): o for o in lines if o["kind"] == "service"}
    for spec in a.banner:
        ep, prefix = spec.split("=", 1)
        ip, port = ep.split(":")
        s = services.get((ip, int(port)))
        if not s or not s.get("banner", "").startswith(prefix):
            errors.append(f"{ep}: banner {s and s.get('banner')!r}, want it to start with {prefix!r}")
    try:
        root = ET.parse(a.xml).getroot()
        if root.tag != "nmaprun":
            errors.append(f"{a.xml}: root {root.tag}")
        xhosts = {}
        for h in root.findall("host"):
            ip = [x.get("addr") for x in h.findall("address") if x.get("addrtype") == "ipv4"][0]
            xhosts[ip] = h
        if set(xhosts) != set(hosts):
            errors.append(f"XML hosts differ: {sorted(set(xhosts) ^ set(hosts))}")
        xguessed = {ip for ip, h in xhosts.items()
                    if h.find(f"os/osmatch/osclass[@osfamily='{a.family}']") is not None}
        if xguessed != guessed:
            errors.append(f"XML OS guesses differ: {sorted(xguessed ^ guessed)}")
        if root.find("runstats/finished[@exit='success']") is None:
            errors.append("XML: finished is not exit=success")
    except (ET.ParseError, OSError, IndexError) as e:
        errors.append(f"{a.xml}: {e}")
    for e in errors:
        print("FAIL", e)
    print(f"{len(hosts)} hosts, {len(guessed)} guessed, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
