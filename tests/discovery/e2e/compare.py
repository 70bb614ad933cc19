#!/usr/bin/env python3
"""Compares `cmdb discover` observations with the lab's ground truth.

  compare.py --truth TRUTH --obs FILE [--obs FILE ...] --cidr CIDR [--cidr ...]
             (--ports SPEC | --sn) [--exclude IP ...] [--mode syn|connect] [--pn]
             [--complete yes|no] [--partial] [--disjoint] [--reasons]
             [--services] [--udp-ports SPEC]

Expected: every truth host that answers something, at an address inside the
scanned CIDRs and not excluded, and exactly its open TCP ports that were
scanned. Nothing else: the dark host, closed ports and hidden listeners must
be absent. With several --obs files (shards) their union is compared and
--disjoint requires that no host or port appears in two of them. --partial
(an interrupted scan) only checks that nothing false was reported.
--services also checks the service lines: every open port (TCP, and UDP
ports of --udp-ports that the truth lists) has exactly one, with the
truth's service name, its product where the truth names one, TLS where the
truth has TLS (with the certificate's subject and SANs); no service line
for anything else.
--sn (host discovery only) expects the live hosts and not one port or
service line, and a scan line without ports that says host_discovery_only.
Exit 0 when everything matches, 1 with a list of differences otherwise.
"""
import argparse
import ipaddress
import json
import os
import sys


def top_ports(n):
    """The first n TCP ports of discovery/data/top-ports.txt, then the rest ascending."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "..", "discovery", "data", "top-ports.txt")
    ranked = []
    for line in open(path):
        line = line.split("#")[0].strip()
        if line and line.split()[0].endswith("/tcp"):
            ranked.append(int(line.split()[0].split("/")[0]))
    rest = [p for p in range(65536) if p not in set(ranked)]
    return set((ranked + rest)[:n])


def port_set(spec):
    if spec.startswith("top:"):
        return top_ports(int(spec[4:]))
    ports = set()
    for item in spec.split(","):
        if item == "-":
            ports.update(range(65536))
        elif "-" in item:
            lo, hi = item.split("-")
            ports.update(range(int(lo or 0), int(hi or 65535) + 1))
        else:
            ports.add(int(item))
    return ports


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--obs", action="append", required=True)
    ap.add_argument("--cidr", action="append", required=True)
    ap.add_argument("--ports")
    ap.add_argument("--sn", action="store_true", help="-sn: hosts only, no port or service lines")
    ap.add_argument("--exclude", action="append", default=[])
    ap.add_argument("--mode", default="syn", choices=["syn", "connect"])
    ap.add_argument("--pn", action="store_true", help="-Pn: hosts appear only if a port answered")
    ap.add_argument("--complete", default="yes", choices=["yes", "no"])
    ap.add_argument("--partial", action="store_true")
    ap.add_argument("--disjoint", action="store_true")
    ap.add_argument("--reasons", action="store_true", help="check host discovery reasons")
    ap.add_argument("--services", action="store_true", help="check service lines too")
    ap.add_argument("--udp-ports", default="", help="UDP ports given to the scanner")
    a = ap.parse_args()
    if bool(a.ports) == a.sn:
        ap.error("give exactly one of --ports and --sn")

    truth = json.load(open(a.truth))
    nets = [ipaddress.ip_network(c) for c in a.cidr]
    excluded = set(a.exclude)
    scanned = set() if a.sn else port_set(a.ports)
    scanner_ip = truth["scanner"]["ip"]
    errors = []

    def in_scope(ip):
        return ip not in excluded and any(ipaddress.ip_address(ip) in n for n in nets)

    # What should be seen: ip -> (host record, on_link, expected open ports)
    expect = {}
    for h in truth["hosts"]:
        if not h["answers"]:
            continue
        ports = {p["port"] for p in h["ports"] if p["proto"] == "tcp"} & scanned
        if in_scope(h["ip"]):
            expect[h["ip"]] = (h, h["on_link"], ports)
        for other in h.get("other_ips", []):
            if in_scope(other):
                # the router's far address: reached through the router itself, no ports
                expect[other] = (h, False, set())
    if a.pn:
        # -Pn: routed hosts are reported only when a port answered (open or closed)
        for ip in list(expect):
            h, on_link, ports = expect[ip]
            if not on_link and h["default_port_state"] != "closed" and not ports:
                del expect[ip]

    udp_scanned = port_set(a.udp_ports) if a.udp_ports else set()
    hosts, ports_seen, per_file = {}, {}, []
    services = {}
    for path in a.obs:
        lines = [l for l in open(path).read().split("\n") if l]
        if not lines:
            errors.append(f"{path}: empty")
            per_file.append((set(), set()))
            continue
        objs = []
        for n, line in enumerate(lines, 1):
            try:
                objs.append(json.loads(line))
            except ValueError as e:
                errors.append(f"{path}:{n}: not JSON: {e}")
        ids = {o.get("scan_id") for o in objs}
        if len(ids) != 1:
            errors.append(f"{path}: {len(ids)} scan ids")
        if any(o.get("v") != 1 for o in objs):
            errors.append(f"{path}: a line without v=1")
        if objs and objs[0].get("kind") != "scan":
            errors.append(f"{path}: first line is not kind=scan")
        elif a.sn and ("ports" in objs[0] or
                       objs[0].get("options", {}).get("host_discovery_only") is not True):
            errors.append(f"{path}: an -sn scan line has ports or lacks host_discovery_only")
        end = objs[-1] if objs else {}
        if end.get("kind") != "scan_end":
            errors.append(f"{path}: last line is not kind=scan_end")
        elif end.get("complete") != (a.complete == "yes"):
            errors.append(f"{path}: scan_end complete={end.get('complete')}, want {a.complete}")
        fh, fp = set(), set()
        for o in objs:
            if o.get("kind") == "host":
                # A streaming scan may write a host again when it learns more
                # (docs/observations.md): the latest line counts, and it must
                # be stamped later; another file (shard) must not have it.
                if o["ip"] in hosts and (o["ip"] not in fh or o.get("at", "") <= hosts[o["ip"]].get("at", "")):
                    errors.append(f"{path}: host {o['ip']} reported twice")
                hosts[o["ip"]] = o
                fh.add(o["ip"])
            elif o.get("kind") in ("service", "port") and a.sn:
                errors.append(f"{path}: {o['kind']} line in a host discovery only scan: {o}")
            elif o.get("kind") == "service":
                key = (o["ip"], o.get("proto"), o.get("port"))
                if key in services:
                    errors.append(f"{path}: service {key} reported twice")
                services[key] = o
            elif o.get("kind") == "port" and o.get("proto") == "udp" and udp_scanned:
                if o.get("state") != "open" or o.get("reason") != "udp-response":
                    errors.append(f"{path}: unexpected udp port line {o}")
            elif o.get("kind") == "port":
                key = (o["ip"], o["port"])
                if o.get("proto") != "tcp" or o.get("state") != "open":
                    errors.append(f"{path}: unexpected port line {o}")
                if key in fp:
                    errors.append(f"{path}: port {key} reported twice")
                ports_seen.setdefault(o["ip"], set()).add(o["port"])
                fp.add(key)
                if o["ip"] not in fh:
                    errors.append(f"{path}: port {key} before (or without) its host line")
        per_file.append((fh, fp))

    for ip, o in sorted(hosts.items()):
        if ip not in expect:
            errors.append(f"false host {ip} ({o.get('reason')})")
            continue
        h, on_link, _ = expect[ip]
        mac = o.get("mac")
        if on_link and ip != scanner_ip:
            if a.mode == "syn" or mac is not None:
                if mac != h["mac"]:
                    errors.append(f"host {ip}: mac {mac}, truth {h['mac']}")
            elif a.mode == "connect":
                errors.append(f"host {ip}: no mac from the neighbour cache")
            if h.get("vendor") and o.get("vendor") != h["vendor"]:
                errors.append(f"host {ip}: vendor {o.get('vendor')}, truth {h['vendor']}")
        elif not on_link and mac is not None:
            errors.append(f"host {ip}: routed, but reported with mac {mac}")
        if a.reasons:
            r = o.get("reason")
            if ip == scanner_ip:
                want = {"localhost-response"}
            elif on_link:
                want = {"arp-response"}
            else:
                want = {"echo-reply", "timestamp-reply", "syn-ack", "rst"}
            if r not in want:
                errors.append(f"host {ip}: reason {r}, want one of {sorted(want)}")
    for ip, ports in sorted(ports_seen.items()):
        want = expect[ip][2] if ip in expect else set()
        for p in sorted(ports - want):
            errors.append(f"false open port {ip}:{p}")
    if not a.partial:
        for ip, (h, _, ports) in sorted(expect.items()):
            if ip not in hosts:
                errors.append(f"missed host {ip} ({h['name']})")
            for p in sorted(ports - ports_seen.get(ip, set())):
                errors.append(f"missed open port {ip}:{p} ({h['name']})")
    if a.disjoint:
        for i in range(len(per_file)):
            for j in range(i + 1, len(per_file)):
                both_h = per_file[i][0] & per_file[j][0]
                both_p = per_file[i][1] & per_file[j][1]
                if both_h or both_p:
                    errors.append(f"shards {i + 1} and {j + 1} overlap: {sorted(both_h)} {sorted(both_p)[:5]}")

    if a.services:
        want_svc = {}
        for ip, (h, _, ports) in expect.items():
            for p in h["ports"]:
                if (p["proto"] == "tcp" and p["port"] in ports) or \
                        (p["proto"] == "udp" and p["port"] in udp_scanned):
                    want_svc[(ip, p["proto"], p["port"])] = (h, p)
        for key, o in sorted(services.items()):
            if key not in want_svc:
                errors.append(f"service line for {key}, which is not an open port of the truth")
        for key, (h, p) in sorted(want_svc.items()):
            o = services.get(key)
            where = f"{key[0]}:{key[2]}/{key[1]} ({h['name']} {p['kind']})"
            if o is None:
                errors.append(f"no service line for {where}")
                continue
            if o.get("service") != p["service"]:
                errors.append(f"{where}: service {o.get('service')!r}, truth {p['service']!r}")
            if p.get("product") and o.get("product") != p["product"]:
                errors.append(f"{where}: product {o.get('product')!r}, truth {p['product']!r}")
            if p.get("version") and o.get("version") != p["version"]:
                errors.append(f"{where}: version {o.get('version')!r}, truth {p['version']!r}")
            if bool(p.get("tls")) != ("tls" in o):
                errors.append(f"{where}: tls {'tls' in o}, truth {bool(p.get('tls'))}")
            elif p.get("tls"):
                cert, tls = p["cert"], o["tls"]
                if tls.get("subject") != cert["subject"]:
                    errors.append(f"{where}: tls subject {tls.get('subject')!r}, truth {cert['subject']!r}")
                if sorted(tls.get("sans", [])) != sorted(cert["sans"]):
                    errors.append(f"{where}: tls sans {tls.get('sans')}, truth {cert['sans']}")
                if tls.get("not_after") != cert["not_after"]:
                    errors.append(f"{where}: tls not_after {tls.get('not_after')}, truth {cert['not_after']}")
            if p.get("banner") and not o.get("banner", "").startswith(p["banner"]):
                errors.append(f"{where}: banner {o.get('banner', '')[:60]!r}, truth {p['banner']!r}")
        named = sum(1 for k in want_svc if services.get(k, {}).get("service") == want_svc[k][1]["service"])
        print(f"{named} of {len(want_svc)} services named as the truth says")

    n_ports = sum(len(p) for p in ports_seen.values())
    for e in errors:
        print("FAIL", e)
    print(f"{len(hosts)} hosts and {n_ports} open ports reported; "
          f"{len(expect)} hosts and {sum(len(e[2]) for e in expect.values())} open ports expected; "
          f"{len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
