"""Every server driven by the same load generator (``smpphub bench``), in one run.

Servers, each in its own process: the raw asyncio/uvloop ceiling (frames PDUs,
answers fixed bytes), smppcore's plain server, the simulator's fast path
(``smpphub simulate``, zero latency, no faults), the simulator with receipts,
the Rust-backed smpp34 server and node-smpp's server. The load is the same for
all: closed loop, ``--binds`` x ``--window``. The table gives messages/s,
latency percentiles and ratios; the raw ceiling row shows how fast the load
generator itself can go (it is not the bottleneck of any server slower than that).

    python -m smpphub.bench.compare                      # 100,000 messages, median of 3
    python -m smpphub.bench.compare --servers ours,simulator --count 50000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from .hub import cpu_seconds
from .loadgen import LoadOptions, run_bench
from .session import NODE_SERVER, _child_env, _node

HOST = "127.0.0.1"
SERVERS = ("raw", "ours", "simulator", "simulator-dlr", "smpp34", "node")


def _start(name: str) -> tuple[subprocess.Popen, int]:
    if name == "node":
        argv = [_node(), str(NODE_SERVER), "--host", HOST, "--port", "0", "--nodelay", "1"]
    elif name.startswith("simulator"):
        import socket

        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        argv = [sys.executable, "-m", "smpphub", "simulate", "--listen", f"{HOST}:{port}", "--quiet"]
    else:
        argv = [sys.executable, "-m", "smpphub.bench.session", "server", "--impl", name, "--host", HOST, "--port", "0"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_child_env(), text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        if line.startswith("PORT "):
            return proc, int(line.split()[1])
        if "listening" in line:
            return proc, port
    proc.kill()
    raise RuntimeError(f"{name} server did not start")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.stdin.write("quit\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure(name: str, count: int, binds: int, window: int) -> dict:
    proc, port = _start(name)
    try:
        dlr = name == "simulator-dlr"
        warm = LoadOptions(host=HOST, port=port, system_id="bench", password="bench", count=2000, binds=binds, window=window,
                           progress=False)
        run_bench(warm)
        server_cpu = cpu_seconds(proc.pid)
        r = run_bench(LoadOptions(host=HOST, port=port, system_id="bench", password="bench", count=count, binds=binds,
                                  window=window, dlr=dlr, progress=False))
        server_cpu = cpu_seconds(proc.pid) - server_cpu  # all its threads, kernel time included
        cpu = r.generator_cpu
        return {"rate": r.submit_rate, "p50": r.latency_us["p50"] / 1000, "p99": r.latency_us["p99"] / 1000,
                "errors": sum(r.errors.values()), "receipt_rate": r.receipt_rate,
                "gen_us": cpu / max(1, r.sent) * 1e6, "gen_busy": cpu / (r.duration + r.receipt_wait or 1),
                "server_us": server_cpu / max(1, r.sent) * 1e6}
    finally:
        _stop(proc)


def scaling(server: str, count: int, window: int, binds_list: list[int], workers_list: list[int]) -> int:
    """One server, the load spread over more binds and worker processes."""
    proc, port = _start(server)
    rows = []
    try:
        run_bench(LoadOptions(host=HOST, port=port, system_id="bench", password="bench", count=2000, progress=False))
        for binds in binds_list:
            for workers in workers_list:
                if workers > binds:
                    continue
                r = run_bench(LoadOptions(host=HOST, port=port, system_id="bench", password="bench", count=count, binds=binds,
                                          window=window, workers=workers, progress=False))
                rows.append((binds, workers, r.submit_rate, r.latency_us["p50"] / 1000, r.latency_us["p99"] / 1000))
                print(f"  binds {binds} workers {workers}: {r.submit_rate:,.0f} msg/s", file=sys.stderr, flush=True)
    finally:
        _stop(proc)
    print(f"\nscaling against the {server} server: {count:,} submit_sm, window {window} per bind")
    print(f"{'binds':>5} | {'workers':>7} | {'msg/s':>9} | {'p50 ms':>7} | {'p99 ms':>7}")
    print("-" * 47)
    for binds, workers, rate, p50, p99 in rows:
        print(f"{binds:>5} | {workers:>7} | {rate:>9,.0f} | {p50:>7.2f} | {p99:>7.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smpphub.bench.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default=",".join(SERVERS))
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--binds", type=int, default=2)
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--scaling", metavar="SERVER", help="instead: one server under 1/2/4 binds and 1/2 workers")
    args = p.parse_args(argv)
    if args.scaling:
        if args.scaling not in SERVERS:
            print(f"python -m smpphub.bench.compare: unknown server {args.scaling!r}", file=sys.stderr)
            return 2
        return scaling(args.scaling, args.count, args.window, [1, 2, 4], [1, 2])
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        print(f"python -m smpphub.bench.compare: unknown server(s) {', '.join(unknown)}; known: {', '.join(SERVERS)}", file=sys.stderr)
        return 2
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for i in range(args.repeat):  # interleaved: every server once per round
        for name in names:
            try:
                runs[name].append(measure(name, args.count, args.binds, args.window))
                print(f"[{i + 1}/{args.repeat}] {name}: {runs[name][-1]['rate']:,.0f} msg/s", file=sys.stderr, flush=True)
            except Exception as exc:  # noqa: BLE001 - a peer that cannot run shows as n/a
                print(f"[{i + 1}/{args.repeat}] {name}: failed ({exc})", file=sys.stderr, flush=True)
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in runs.items() if rs}
    raw = med.get("raw", {}).get("rate")
    ours = med.get("ours", {}).get("rate")
    print(f"\nsmpphub bench (closed loop, {args.binds} binds x window {args.window}, {args.count:,} submit_sm) against each server; median of {args.repeat}")
    print(f"{'server':<14} | {'msg/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'errors':>6} | {'vs raw':>7} | {'vs ours':>7}"
          f" | {'gen us/msg':>10} | {'gen busy':>8} | {'server us/msg':>13} | {'vs ours':>7}")
    print("-" * 130)
    ours_cpu = med.get("ours", {}).get("server_us")
    for name in names:
        m = med.get(name)
        if m is None:
            print(f"{name:<14} | {'n/a':>9} |")
            continue
        vs_raw = f"{m['rate'] / raw:.2f}x" if raw else "n/a"
        vs_ours = f"{m['rate'] / ours:.2f}x" if ours else "n/a"
        cpu_vs_ours = f"{m['server_us'] / ours_cpu:.2f}x" if ours_cpu else "n/a"
        print(f"{name:<14} | {m['rate']:>9,.0f} | {m['p50']:>7.2f} | {m['p99']:>7.2f} | {int(m['errors']):>6} | {vs_raw:>7} | {vs_ours:>7}"
              f" | {m['gen_us']:>10.2f} | {m['gen_busy']:>8.0%} | {m['server_us']:>13.2f} | {cpu_vs_ours:>7}")
    if "simulator" in med and ours:
        print(f"simulator fast path / plain smppcore server: {med['simulator']['rate'] / ours:.2f} (target >= 0.90)")
    print("gen us/msg: the load generator's CPU per submit_sm; gen busy: its CPU time over the run's wall time"
          " (one core = 100%): below 100% it waited for the server")
    print("server us/msg: the server process's CPU (user + system, all threads, from /proc) per submit_sm during the run")
    if raw:
        slower = [n for n in names if n != "raw" and n in med and med[n]["rate"] > raw]
        print("load generator vs raw ceiling: " + ("faster than every server under test" if not slower else f"NOT faster than {', '.join(slower)}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
