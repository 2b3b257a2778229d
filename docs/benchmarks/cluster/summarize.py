#!/usr/bin/env python3
"""Summarize the cluster benchmark reports in this directory (the JSON
files load-tests/cluster-bench.sh writes): the numbers BENCHMARKS.md
quotes in "Cluster (issue 16)". Usage: python3 summarize.py [DIR]"""
import glob
import json
import os
import statistics
import sys

D = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))


def load(name):
    p = os.path.join(D, name)
    if not os.path.exists(p) or os.path.getsize(p) == 0:
        return None
    with open(p) as f:
        return json.load(f)


def runs(pattern):
    out = []
    for p in sorted(glob.glob(os.path.join(D, pattern))):
        if os.path.getsize(p) > 0:
            with open(p) as f:
                out.append((os.path.basename(p), json.load(f)))
    return out


print("== 100,000 listeners over 6 nodes")
for name, r in runs("listeners-100k*.json"):
    if name.endswith("-machine.json"):
        continue
    c = r["connections"]
    print(f"  {name}: {r['plan']['sessions']} sessions x {r['plan']['listeners'] // r['plan']['sessions']}: "
          f"joined {c['listeners_joined']} + {c['writers_joined']} writers, failures {c['failures']}, "
          f"connect {c['connect_s']:.1f} s, join p99 {c['join_latency']['p99_ms']} ms")
    print("    per node (listeners, failures):",
          [(s["listeners_joined"], s["failures"]) for s in c["per_server"]])
    dl = r["deliveries"]
    print(f"    deliveries {dl['total']} ({dl['per_s']:.0f}/s in window), gaps {dl['gaps']}, "
          f"out of order {dl['out_of_order']}, acked ops {r['ops']['acked']}")
    print("    node RSS loaded KiB:", [n["rss_loaded_kib"] for n in r["nodes"]],
          "generator RSS KiB:", r["generator_rss_kib"])
    print("    errors:", r["errors"], "closes:", r["closes"])

for prefix, what in (("fanout", "5 writers per session"), ("fanout-w25", "25 writers per session")):
    a = runs(prefix + "-[0-9][0-9]-one-node.json")
    b = runs(prefix + "-[0-9][0-9]-three-nodes.json")
    if not a:
        continue
    print(f"== fan-out 10 x 1,000, {what}: one node (A) vs three nodes (B)")
    ratios = []
    for (na, ra), (nb, rb) in zip(a, b):
        x, y = ra["deliveries"]["per_s"], rb["deliveries"]["per_s"]
        ratios.append(y / x)
        print(f"  {na}: {x:,.0f}/s ({ra['ops']['acked_per_s']:.0f} ops/s, ack p50 {ra['ops']['ack_latency']['p50_ms']:.0f} ms, "
              f"gaps {ra['deliveries']['gaps']})  {nb}: {y:,.0f}/s ({rb['ops']['acked_per_s']:.0f} ops/s, "
              f"ack p50 {rb['ops']['ack_latency']['p50_ms']:.0f} ms, gaps {rb['deliveries']['gaps']})  ratio {y / x:.2f}")
    if ratios:
        print(f"  ratio per pair {[round(q, 2) for q in ratios]}, median {statistics.median(ratios):.2f}")

print("== failover: kill -9 of the owner of 1,000 sessions at 1,000 ops/s")
for name, r in runs("failover-[0-9]*.json") + runs("failover-natural-*.json"):
    o, db, li = r["ops"], r["db_check"], r["listeners"]
    s = o.get("session_first_ack_after_kill") or {}
    h = o["first_send_to_ack"]["in_flight_at_kill_or_sent_within_window_after"]
    print(f"  {name}: per-session kill→first ack p50 {s.get('p50_ms')} p99 {s.get('p99_ms')} max {s.get('max_ms')} ms "
          f"(n={s.get('count')}, none: {o.get('sessions_without_ack_after_kill')}); "
          f"affected ops p99 {h['p99_ms']} ms; acked {o['acked']}, lost {db.get('acked_lost')}, "
          f"dup {db.get('acked_duplicated')}, other version {db.get('acked_at_other_version')}, "
          f"unanswered {o['unanswered_at_end']}; listener gaps {li['gaps']}, out of order {li['out_of_order']}, "
          f"resumed {li['resumed']}/{li['rejoins']}")

print("== memory per idle listener")
nb = runs("memory-*-non-owner.json")
sg = runs("memory-*-single.json")
mratios = []
for (n1, r1), (n2, r2) in zip(nb, sg):
    def per(r):
        h = r["hub"]
        j = r["connections"]["per_server"][0]["listeners_joined"] if r["connections"]["per_server"] \
            else r["connections"]["listeners_joined"]
        return (h["rss_loaded_kib"] - h["rss_before_kib"]) * 1024 / j, h["rss_before_kib"], h["rss_loaded_kib"], j
    p1, p2 = per(r1), per(r2)
    print(f"  {n1}: {p1[0]:,.0f} B/listener ({p1[1]}→{p1[2]} KiB, {p1[3]} joined)  "
          f"{n2}: {p2[0]:,.0f} B/listener ({p2[1]}→{p2[2]} KiB, {p2[3]} joined)  ratio {p1[0] / p2[0]:.2f}")
    mratios.append((p1[0], p2[0], p1[0] / p2[0]))
if mratios:
    print(f"  median: non-owner {statistics.median(m[0] for m in mratios):,.0f} B, "
          f"single {statistics.median(m[1] for m in mratios):,.0f} B, "
          f"ratio {statistics.median(m[2] for m in mratios):.2f}")
