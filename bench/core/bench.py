#!/usr/bin/env python3
"""Helpers of bench/core/run.sh (standard library only).

  bench.py sql FILE NAME      print the SQL of `static const char NAME[]` in a C file,
                              so that EXPLAIN runs exactly the text the cmdb binary sends
  bench.py report OUT [MD]    print the results table of the run in directory OUT
                              (and write a markdown fragment to MD)

OUT holds: env.tsv (key, value), load.tsv (phase, rows, history rows,
seconds), measure.tsv (name, label, goal, command), raw/NAME.json
(hyperfine --export-json) and plans/NAME.txt (EXPLAIN ANALYZE output,
several runs of the same query).
"""
import json
import os
import re
import statistics
import sys


def c_string_constant(path, name):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"static const char " + re.escape(name) + r"\[\]\s*=\s*((?:\"(?:[^\"\\]|\\.)*\"\s*)+);", text)
    if not m:
        sys.exit(f"bench.py: no constant {name} in {path}")
    parts = re.findall(r"\"((?:[^\"\\]|\\.)*)\"", m.group(1))
    s = "".join(parts)
    return re.sub(r"\\(.)", lambda e: {"n": "\n", "t": "\t"}.get(e.group(1), e.group(1)), s)


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def plan_times(path):
    """Median planning + execution time (ms) over the EXPLAIN runs after the
    first (a warm-up), the execution part alone, and the last plan's text."""
    if not os.path.exists(path):
        return None
    text = open(path, encoding="utf-8").read()
    plans = re.split(r"(?m)^-- run \d+\n", text)
    totals, execs = [], []
    for p in plans:
        pl = re.search(r"Planning Time: ([\d.]+) ms", p)
        ex = re.search(r"Execution Time: ([\d.]+) ms", p)
        if pl and ex:
            totals.append(float(pl.group(1)) + float(ex.group(1)))
            execs.append(float(ex.group(1)))
    if not totals:
        return None
    if len(totals) > 1:
        totals, execs = totals[1:], execs[1:]
    return statistics.median(totals), statistics.median(execs)


def report(out, md_path):
    env = dict((r[0], r[1]) for r in read_tsv(os.path.join(out, "env.tsv")) if len(r) >= 2)
    load = read_tsv(os.path.join(out, "load.tsv"))
    meas = read_tsv(os.path.join(out, "measure.tsv"))

    results = {}
    for name, label, goal, command in meas:
        raw = os.path.join(out, "raw", name + ".json")
        if not os.path.exists(raw):
            continue
        times = [t * 1000.0 for t in json.load(open(raw))["results"][0]["times"]]
        results[name] = {
            "label": label, "goal": goal, "command": command, "n": len(times),
            "median": statistics.median(times), "p95": pct(times, 95),
            "server": plan_times(os.path.join(out, "plans", name + ".txt")),
        }

    def verdict(r):
        goal = r["goal"]
        if goal.startswith("<"):
            limit = float(goal[1:])
            return f"< {limit:g} ms", ("met" if r["median"] < limit else "MISSED")
        if goal.startswith("x2:"):
            base = results.get(goal[3:])
            if not base:
                return "<= 2x", "?"
            ratio = r["median"] / base["median"]
            return f"<= 2x {goal[3:]}", f"{ratio:.2f}x " + ("met" if ratio <= 2.0 else "MISSED")
        return "", ""

    rows = []
    for name, r in results.items():
        goal_text, v = verdict(r)
        srv = r["server"]
        rows.append([name, r["label"], f"{r['median']:.1f}", f"{r['p95']:.1f}",
                     f"{srv[0]:.2f}" if srv else "-", goal_text, v])

    lines = []
    total = 0.0
    lrows = []
    for phase, n, hist, secs in load:
        s = float(secs)
        total += s
        n = int(n)
        lrows.append([phase, f"{n:,}", f"{int(hist):,}", f"{s:.1f}", f"{n / s:,.0f}" if s > 0 and n else "-"])
    lrows.append(["total", "", "", f"{total:.1f}", ""])

    def table(head, body):
        w = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        fmt = "  ".join("{:<%d}" % n for n in w)
        return [fmt.format(*head)] + [fmt.format(*b) for b in body]

    print()
    print(f"cmdb core benchmark: {env.get('cis', '?')} CIs, {env.get('rels', '?')} relationships requested")
    print(f"as-of time (middle of the load): {env.get('as_of', '?')}")
    print()
    print("\n".join(table(["load phase", "rows", "history rows", "seconds", "rows/s"], lrows)))
    print()
    print("\n".join(table(["read", "command", "median ms", "p95 ms", "server ms", "goal", "verdict"], rows)))
    print()
    print("median/p95: end to end through the cmdb command (process start, connect, query, output),")
    print("server ms: planning + execution of the command's main query (EXPLAIN ANALYZE, median).")

    if not md_path:
        return
    md = []
    md.append(f"Run of {env.get('date', '?')} on {env.get('host', '?')}: {env.get('cpu', '?')}, "
              f"{env.get('nproc', '?')} CPUs, {env.get('mem', '?')} RAM; PostgreSQL {env.get('pg', '?')} "
              f"(embedded server, shipped settings, fsync off); cmdb {env.get('commit', '?')}.")
    md.append("")
    md.append(f"Data set: {int(env.get('n_ci', 0)):,} CIs, {int(env.get('n_rel', 0)):,} relationships "
              f"({int(env.get('n_rel_current', 0)):,} current), {int(env.get('n_identity', 0)):,} identities, "
              f"{int(env.get('n_version', 0)):,} CI versions, {int(env.get('n_history', 0)):,} history rows; "
              f"database {env.get('db_size', '?')}.")
    md.append(f"CI types: {env.get('types', '?')}. Hosts' os: {env.get('os_mix', '?')}.")
    md.append(f"Load average when the reads started: {env.get('loadavg', '?')} (the machine is shared).")
    md.append(f"Read targets: `ci show` host {env.get('show_id', '?')} ({env.get('show_rels', '?')} current "
              f"relationships, changed after the as-of time); `ci history` host {env.get('hot_id', '?')} "
              f"({env.get('hot_history', '?')} history rows); as-of time {env.get('as_of', '?')}, "
              f"in the middle of the changes.")
    md.append("")
    md.append("Load (one psql session per phase, batches of %s rows, one transaction each, through the "
              "tables and their triggers%s):" % (env.get("batch", "?"),
              "; with LOAD_WITHOUT_GIST=1: ci_version_valid_idx dropped for the writes and recreated "
              "before the reads" if env.get("load_without_gist") == "1" else ""))
    md.append("")
    md.append("| phase | rows | history rows | seconds | rows/s |")
    md.append("|---|---:|---:|---:|---:|")
    for r in lrows:
        md.append("| " + " | ".join(r) + " |")
    md.append("")
    md.append("Reads (%s runs each after 5 warm-up runs, hyperfine; end to end through the `cmdb` command; "
              "server = planning + execution of the command's main query, EXPLAIN ANALYZE median):"
              % env.get("runs", "?"))
    md.append("")
    md.append("| read | command | median ms | p95 ms | server ms | goal | verdict |")
    md.append("|---|---|---:|---:|---:|---|---|")
    for r in rows:
        md.append("| " + " | ".join(x.replace("|", "\\|") if i != 1 else "`" + x + "`" for i, x in enumerate(r)) + " |")
    md.append("")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("\n".join(md))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "sql":
        print(c_string_constant(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else None)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
