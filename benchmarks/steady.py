"""Steadiness: the hub under an even open-loop load for minutes, receipts coming back late.

A simulator whose receipts wait a uniform 0-2 s, the hub in front of it (SQLite,
``synchronous = full``), and ``smpphub bench`` sending at a fixed rate in open loop
for the whole duration. It prints the submit_sm -> submit_sm_resp latency
percentiles over the run (from each message's write, which is what the hub is
answerable for; from its due time beside it), the worst second, the hub's RSS at
the start, middle and end, and the CPU each process spent per message. A hub that
stalls (a WAL checkpoint, a bulk delete, a batch too big) shows it in p99.9 and in
the worst second; one that leaks shows a growing RSS.

    python -m smpphub.bench.steady                        # 5 minutes at 4,000 msg/s
    python -m smpphub.bench.steady --duration 30 --rate 2000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .hub import hub_config, measure_through_hub, run_bench
from .loadgen import BenchResult

SIMULATOR = """
[receipts]
delay = { kind = "uniform", min_ms = 0, max_ms = 2000 }
"""


def run(duration: float, rate: float, window: int, binds: int, store: str = "sqlite") -> dict[str, Any]:
    options = ["--duration", f"{duration:g}", "--rate", f"{rate:g}", "--window", str(window), "--binds", str(binds),
               "--dlr", "--receipt-wait", "30"]

    def load(hub_port: int) -> dict[str, Any]:
        return {"bench": run_bench(hub_port, options, timeout=duration + 600)}

    measured = measure_through_hub(
        "smpphub-steady-", lambda path, hub_port, smsc_port, db: hub_config(path, hub_port, smsc_port, store, db),
        b"listening", load, lambda result: result["bench"].sent, simulator_config=SIMULATOR, sample_rss=True)
    r: BenchResult = measured["bench"]
    rss: list[float] = measured["hub_rss_mib"]
    # the second whose slowest answer was slowest (the timeline's latencies run from the due time)
    worst = max(r.timeline, key=lambda second: second.max_us, default=None)
    return {
        "rate_asked": rate,
        "sent": r.sent,
        "acked": r.acked,
        "errors": sum(r.errors.values()),
        "receipts": r.receipts,
        "send_rate": r.send_rate,
        "p50_ms": r.service_us["p50"] / 1000,
        "p99_ms": r.service_us["p99"] / 1000,
        "p999_ms": r.service_us["p999"] / 1000,
        "max_ms": r.service_us["max"] / 1000,
        "due_p99_ms": r.latency_us["p99"] / 1000,
        "due_p999_ms": r.latency_us["p999"] / 1000,
        "worst_second": worst.t if worst is not None else 0,
        "worst_second_p99_ms": worst.p99_us / 1000 if worst is not None else 0.0,
        "worst_second_max_ms": worst.max_us / 1000 if worst is not None else 0.0,
        "rss_start_mib": rss[0] if rss else 0.0,
        "rss_middle_mib": rss[len(rss) // 2] if rss else 0.0,
        "rss_end_mib": rss[-1] if rss else 0.0,
        "rss_max_mib": max(rss, default=0.0),
        "timeline_p99_ms": [second.p99_us / 1000 for second in r.timeline],  # from the due time, per second
        "timeline_max_ms": [second.max_us / 1000 for second in r.timeline],
        "hub_cpu_us": measured["hub_cpu_us"],
        "smsc_cpu_us": measured["smsc_cpu_us"],
        "load_cpu_us": r.generator_cpu / max(1, r.sent) * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smpphub.bench.steady", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=300.0, help="seconds of sending (default 300)")
    p.add_argument("--rate", type=float, default=4000.0, help="messages per second, open loop (default 4,000)")
    p.add_argument("--window", type=int, default=200)
    p.add_argument("--binds", type=int, default=2)
    p.add_argument("--store", choices=("sqlite", "memory"), default="sqlite",
                   help="the hub's store (default sqlite, synchronous = full)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    r = run(args.duration, args.rate, args.window, args.binds, args.store)
    store = "SQLite synchronous=full" if args.store == "sqlite" else "memory store"
    print(f"hub steadiness: {args.duration:g} s at {args.rate:,.0f} msg/s open loop, receipts after 0-2 s, {store}")
    print(f"sent {r['sent']:,} ({r['send_rate']:,.0f}/s), acked {r['acked']:,}, errors {r['errors']:,}, "
          f"receipts {r['receipts']:,}")
    print(f"{'submit latency, ms':<26} | {'p50':>7} | {'p99':>7} | {'p99.9':>7} | {'max':>7}")
    print(f"{'from the write':<26} | {r['p50_ms']:>7.2f} | {r['p99_ms']:>7.2f} | {r['p999_ms']:>7.2f} | "
          f"{r['max_ms']:>7.2f}")
    print(f"{'from the due time':<26} | {'':>7} | {r['due_p99_ms']:>7.2f} | {r['due_p999_ms']:>7.2f} |")
    print(f"worst second: {r['worst_second']:.0f} s in (from the due time: p99 {r['worst_second_p99_ms']:.2f} ms, "
          f"max {r['worst_second_max_ms']:.2f} ms)")
    print(f"hub RSS MiB: start {r['rss_start_mib']:.1f}, middle {r['rss_middle_mib']:.1f}, "
          f"end {r['rss_end_mib']:.1f}, max {r['rss_max_mib']:.1f}")
    print(f"CPU us per message: hub {r['hub_cpu_us']:.1f}, simulator {r['smsc_cpu_us']:.1f}, "
          f"load {r['load_cpu_us']:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
