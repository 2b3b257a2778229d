#!/usr/bin/env python3
"""Plot the sweeps in docs/benchmarks/sweeps.md from the --json reports of audotics-load.

Usage: python3 load-tests/plot.py RESULTS_DIR docs/
Reads RESULTS_DIR/sweep_listeners_*.json, sweep_sessions_*.json, sweep_ops_*.json
and writes docs/bench-sweeps.png.
"""
import glob
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(pattern):
    rows = []
    for p in glob.glob(pattern):
        n = int(re.search(r"_(\d+)\.json$", p).group(1))
        with open(p) as f:
            try:
                rows.append((n, json.load(f)))
            except json.JSONDecodeError:
                pass
    return sorted(rows, key=lambda r: r[0])


def ms(v, key):
    return v[key] if v else float("nan")


def main():
    src, out = sys.argv[1], sys.argv[2]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))

    rows = [r for r in load(os.path.join(src, "sweep_listeners_*.json")) if r[1]["deliveries"]["per_s"] > 0]
    if rows:
        ax = axes[0]
        x = [n for n, _ in rows]
        ax.plot(x, [r["deliveries"]["per_s"] for _, r in rows], "o-", label="deliveries/s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("listeners in one session (20 ops/s)")
        ax.set_ylabel("deliveries/s")
        ax2 = ax.twinx()
        ax2.plot(x, [ms(r["deliveries"]["latency"], "p99_ms") for _, r in rows], "s--", color="C3", label="p99 send→receive")
        ax2.set_ylabel("p99 send→receive (ms)")
        ax.set_title("Listeners per session")
        ax.legend(loc="upper left")
        ax2.legend(loc="lower right")

    rows = load(os.path.join(src, "sweep_sessions_*.json"))
    if rows:
        ax = axes[1]
        x = [n for n, _ in rows]
        ax.plot(x, [ms(r["ops"]["ack_latency"], "p99_ms") for _, r in rows], "o-", label="p99 ack")
        ax.plot(x, [ms(r["ops"]["ack_latency"], "p50_ms") for _, r in rows], "o--", label="p50 ack")
        ax.set_xscale("log")
        ax.set_xlabel("sessions (1 writer each, 1 op/s each)")
        ax.set_ylabel("ack latency (ms)")
        ax2 = ax.twinx()
        ax2.plot(x, [r["ops"]["acked_per_s"] / max(r["plan"]["rate_ops_per_s"], 1) for _, r in rows], "s:", color="C2", label="acked / offered")
        ax2.set_ylim(0, 1.1)
        ax2.set_ylabel("acked / offered ops")
        ax.set_title("Sessions")
        ax.legend(loc="upper left")
        ax2.legend(loc="lower right")

    rows = load(os.path.join(src, "sweep_ops_*.json"))
    if rows:
        ax = axes[2]
        x = [n for n, _ in rows]
        ax.plot(x, [r["ops"]["acked_per_s"] for _, r in rows], "o-", label="acked ops/s")
        ax.plot(x, x, ":", color="grey", label="offered")
        ax.set_xlabel("offered ops/s (1,000 sessions)")
        ax.set_ylabel("durably acked ops/s")
        ax2 = ax.twinx()
        ax2.plot(x, [ms(r["ops"]["ack_latency"], "p99_ms") for _, r in rows], "s--", color="C3", label="p99 ack (ms)")
        ax2.set_yscale("log")
        ax2.set_ylabel("p99 ack (ms)")
        ax.set_title("Op rate")
        ax.legend(loc="upper left")
        ax2.legend(loc="lower right")

    fig.tight_layout()
    path = os.path.join(out, "bench-sweeps.png")
    fig.savefig(path, dpi=110)
    print(path)


if __name__ == "__main__":
    main()
