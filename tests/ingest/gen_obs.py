#!/usr/bin/env python3
"""Writes a synthetic observation stream (format v1) for ingest tests and
benchmarks: HOSTS hosts in 198.18.0.0/15 (the benchmarking range), each
with a MAC, an address and PORTS open ports with services.
   gen_obs.py HOSTS PORTS SCAN_ID [--first N] [--hour H] [--no-end] [--incomplete]
Scans of one test must differ in --hour: a CI is missing from a complete
scan when it was last seen before the scan started."""
import json, sys

def main():
    hosts, ports, scan_id = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    first = int(sys.argv[sys.argv.index('--first') + 1]) if '--first' in sys.argv else 0
    hour = int(sys.argv[sys.argv.index('--hour') + 1]) if '--hour' in sys.argv else 7
    at = "2026-11-21T%02d:00:00.000Z" % hour
    out = sys.stdout
    w = lambda o: out.write(json.dumps(o, separators=(',', ':')) + '\n')
    w({"v": 1, "kind": "scan", "scan_id": scan_id, "at": at, "targets": ["198.18.0.0/15"],
       "ports": "1-%d" % ports, "scope": ["198.18.0.0/15"], "scope_ports": {"tcp": [[1, 1000]]},
       "started": at})
    services = ["ssh", "http", "https", "smtp", "postgresql", "redis", "imap", "pop3"]
    for h in range(first, first + hosts):
        ip = "198.%d.%d.%d" % (18 + (h >> 16 & 1), h >> 8 & 255, h & 255)
        mac = "00:1b:21:%02x:%02x:%02x" % (h >> 16 & 255, h >> 8 & 255, h & 255)
        w({"v": 1, "kind": "host", "scan_id": scan_id, "at": at, "ip": ip, "mac": mac,
           "vendor": "Intel Corporate", "reason": "arp-response"})
        for p in range(ports):
            port = 20 + p * 7
            w({"v": 1, "kind": "port", "scan_id": scan_id, "at": at, "ip": ip, "proto": "tcp",
               "port": port, "state": "open", "reason": "syn-ack"})
            w({"v": 1, "kind": "service", "scan_id": scan_id, "at": at, "ip": ip, "proto": "tcp",
               "port": port, "service": services[p % len(services)], "product": "prod%d" % p,
               "version": "1.%d" % (h % 5), "confidence": 80})
    if '--no-end' not in sys.argv:
        w({"v": 1, "kind": "scan_end", "scan_id": scan_id, "at": "2026-11-21T%02d:05:00.000Z" % hour,
           "complete": '--incomplete' not in sys.argv, "probes_sent": hosts * ports, "replies": hosts * ports,
           "drops": 0, "duration": 300.0})

main()
