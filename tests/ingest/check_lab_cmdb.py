#!/usr/bin/env python3
"""Compares a CMDB filled by scanning the namespace lab with the lab's truth.

  check_lab_cmdb.py TRUTH.json SOCKET_DIR EXCLUDED_IPS

EXCLUDED_IPS: comma-separated addresses that were not scanned. Reads the CMDB
with psql (user cmdb, database cmdb, on the Unix socket in SOCKET_DIR) and
checks, for every lab host that answers discovery:
  - exactly one host CI holds its address (through its interface, or
    directly), and no two lab hosts share a host CI;
  - a host on the scanner's link has one interface CI whose mac identity is
    the host's MAC; a routed host has no interface with the router's MAC;
  - one service CI, provided by that host CI, per open port (no more);
  - no host, address or service CI beyond those.
Prints one line per difference, exit 1 if any; else a summary line, exit 0.
"""
import json
import subprocess
import sys

QUERY = r"""
WITH addr AS (
  SELECT i.value AS ip, i.ci_id AS ip_ci,
         coalesce(f.source_id, a.source_id) AS host_ci,
         CASE WHEN f.source_id IS NOT NULL THEN a.source_id END AS iface_ci
    FROM cmdb.ci_identity i
    LEFT JOIN cmdb.rel a ON a.target_id = i.ci_id AND a.type = 'has_address' AND upper_inf(a.valid)
    LEFT JOIN cmdb.rel f ON f.target_id = a.source_id AND f.type = 'has_interface' AND upper_inf(f.valid)
   WHERE i.kind = 'ip' AND upper_inf(i.valid)
)
SELECT json_build_object(
  'addresses', (SELECT coalesce(json_agg(json_build_object('ip', ip, 'host', host_ci, 'iface', iface_ci)), '[]') FROM addr),
  'hosts', (SELECT coalesce(json_agg(c.id), '[]') FROM cmdb.ci c WHERE c.type = 'host'),
  'ip_cis', (SELECT count(*) FROM cmdb.ci c WHERE c.type = 'ip_address'),
  'ifaces', (SELECT coalesce(json_agg(json_build_object('ci', f.target_id, 'host', f.source_id, 'mac', m.value)), '[]')
               FROM cmdb.rel f LEFT JOIN cmdb.ci_identity m ON m.ci_id = f.target_id AND m.kind = 'mac' AND upper_inf(m.valid)
              WHERE f.type = 'has_interface' AND upper_inf(f.valid)),
  'services', (SELECT coalesce(json_agg(json_build_object('ci', c.id, 'endpoint', e.value, 'provider', p.source_id)), '[]')
                 FROM cmdb.ci c
                 LEFT JOIN cmdb.ci_identity e ON e.ci_id = c.id AND e.kind = 'endpoint' AND upper_inf(e.valid)
                 LEFT JOIN cmdb.rel p ON p.target_id = c.id AND p.type = 'provides' AND upper_inf(p.valid)
                WHERE c.type = 'service')
)
"""


def main():
    truth_path, sock, excluded = sys.argv[1], sys.argv[2], set(filter(None, sys.argv[3].split(",")))
    truth = json.load(open(truth_path))
    out = subprocess.run(["psql", "-XAtq", "host=%s dbname=cmdb user=cmdb" % sock, "-c", QUERY],
                         check=True, capture_output=True, text=True).stdout
    db = json.loads(out)
    problems = []

    router_mac = next((h["mac"].lower() for h in truth["hosts"] if h["role"] == "router"), None)
    want = [h for h in truth["hosts"] if h["answers"] and h["ip"] not in excluded]
    by_ip = {a["ip"]: a for a in db["addresses"]}
    ifaces = {f["ci"]: f for f in db["ifaces"]}

    host_of = {}
    for h in want:
        a = by_ip.get(h["ip"])
        if not a or a["host"] is None:
            problems.append("%s (%s): no host CI holds this address" % (h["name"], h["ip"]))
            continue
        host_of[h["ip"]] = a["host"]
        macs = sorted(f["mac"] or "?" for f in db["ifaces"] if f["host"] == a["host"])
        if h["on_link"]:
            if macs != [h["mac"].lower()]:
                problems.append("%s (%s): interfaces %s, want [%s]" % (h["name"], h["ip"], macs, h["mac"].lower()))
            elif a["iface"] is None or ifaces.get(a["iface"], {}).get("mac") != h["mac"].lower():
                problems.append("%s (%s): the address is not on the interface with its MAC" % (h["name"], h["ip"]))
        elif router_mac in macs:
            problems.append("%s (%s): routed host got an interface with the router's MAC" % (h["name"], h["ip"]))
    seen = {}
    for ip, ci in host_of.items():
        if ci in seen:
            problems.append("%s and %s share host CI %s" % (seen[ci], ip, ci))
        seen[ci] = ip
    extra_ips = sorted(set(by_ip) - {h["ip"] for h in want})
    if extra_ips:
        problems.append("address CIs that are not live lab hosts: %s" % ", ".join(extra_ips))
    extra_hosts = sorted(set(db["hosts"]) - set(host_of.values()))
    if extra_hosts:
        problems.append("host CIs for no lab host: %s" % extra_hosts)

    want_svc = {(h["ip"], p["proto"], p["port"]) for h in want for p in h["ports"]}
    ip_of_host = {ci: ip for ip, ci in host_of.items()}
    got_svc = set()
    for s in db["services"]:
        if not s["endpoint"]:
            problems.append("service CI %s has no endpoint identity" % s["ci"])
            continue
        host_ci, proto, port = s["endpoint"].split("/")
        ip = ip_of_host.get(int(host_ci))
        if s["provider"] is None or s["provider"] != int(host_ci):
            problems.append("service CI %s (%s) is not provided by host CI %s" % (s["ci"], s["endpoint"], host_ci))
        key = (ip, proto, int(port))
        if key in got_svc:
            problems.append("two service CIs for %s/%s/%s" % key)
        got_svc.add(key)
    for k in sorted(want_svc - got_svc, key=str):
        problems.append("open port %s %s/%s has no service CI" % k)
    for k in sorted(got_svc - want_svc, key=str):
        problems.append("service CI for %s %s/%s, which is not an open lab port" % k)

    for p in problems:
        print(p)
    if problems:
        return 1
    print("%d hosts, %d addresses, %d interfaces, %d services match"
          % (len(host_of), len(by_ip), len(db["ifaces"]), len(got_svc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
