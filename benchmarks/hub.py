"""End-to-end hub benchmark: ESME load -> hub -> simulated SMSC, receipts back.

Three processes share the machine: the load (``smpphub bench``), the hub
(``smpphub serve``) and the upstream simulator (``smpphub simulate`` at zero
latency). For each variant it prints accepted messages per second, receipts per
second and submit_sm -> submit_sm_resp latency percentiles, plus the CPU time
each process spent per message. In the same run it measures the session
ceiling (the same load against a bare smppcore server that answers at once) so
the cost of routing and storing is visible, and a paced run at half the
measured rate for the latency under moderate load.

    python -m smpphub.bench.hub                 # 200,000 messages per variant
    python -m smpphub.bench.hub --count 20000 --variants sqlite,memory
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .loadgen import BenchResult

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# --- the processes ------------------------------------------------------------------------------


def start(cmd: list[str], ready: bytes) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if ready in line:
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"{cmd[3:5]} did not start")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def hub_config(path: Path, hub_port: int, smsc_port: int, store: str, db: Path) -> None:
    path.write_text(f"""
[[listeners]]
host = "{HOST}"
port = {hub_port}

[[accounts]]
system_id = "bench"
password = "bench"
window = 200

[[upstreams]]
name = "smsc"
host = "{HOST}"
port = {smsc_port}
system_id = "hub"
password = "hub"
binds = 2
window = 200

[[routes]]
prefix = "44"
upstreams = ["smsc"]

[store]
backend = "{store}"
path = "{db}"

[log]
level = "warning"
""")


def run_bench(port: int, options: list[str], timeout: float = 900) -> BenchResult:
    """``smpphub bench`` against ``port`` as the benchmarks' ``bench`` account, in a process of
    its own, with ``options`` (what to send and how); what it measured."""
    import msgspec

    from .loadgen import BenchResult

    with tempfile.TemporaryDirectory(prefix="smpphub-load-") as tmp:
        path = Path(tmp) / "load.json"
        argv = [sys.executable, "-m", "smpphub.bench.cli", "--target", f"{HOST}:{port}", "--system-id", "bench",
                "--password", "bench", "--from", "Bench", "--quiet", "--json", str(path), *options]
        out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        return msgspec.json.decode(path.read_bytes(), type=BenchResult)


def run_load(port: int, count: int, window: int, binds: int, receipts: bool, rate: float = 0.0) -> dict:
    """``count`` messages through ``smpphub bench``; its figures, and its CPU per message."""
    options = ["--count", str(count), "--window", str(window), "--binds", str(binds), "--receipt-wait", "120"]
    if receipts:
        options.append("--dlr")
    if rate:
        options += ["--rate", f"{rate:.1f}"]
    r = run_bench(port, options)
    return {
        "count": r.sent,
        "errors": sum(r.errors.values()),
        "accept_rate": r.submit_rate,
        "receipt_rate": r.receipt_rate if receipts else 0.0,
        "receipts": r.receipts,
        "p50_ms": r.latency_us["p50"] / 1000,
        "p99_ms": r.latency_us["p99"] / 1000,
        "p999_ms": r.latency_us["p999"] / 1000,
        "load_cpu_us": r.generator_cpu / max(1, r.sent) * 1e6,
        "elapsed": r.duration + r.receipt_wait,
    }


def rss_mib(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The RSS of a process once a second, on a thread of its own, from start to :meth:`stop`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(rss_mib(self.pid))
            except OSError:
                return
            self._stop.wait(1.0)

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join()
        return self.samples


def measure_through_hub(prefix: str, config: Callable[[Path, int, int, Path], None], ready: bytes,
                        load: Callable[[int], dict], messages: Callable[[dict], int], *,
                        simulator_config: str = "", sample_rss: bool = False) -> dict:
    """A simulator (``simulator_config``: its TOML, if any) and a hub in front of it (``config(path,
    hub_port, smsc_port, db)`` writes its hub.toml; ``ready``: its line once it listens), then
    ``load(hub_port)``; the result gets the CPU microseconds each of the two spent per message
    (``messages(result)`` of them) and, with ``sample_rss``, the hub's RSS once a second (``hub_rss_mib``)."""
    # the hub's config and database live in a temp directory removed however the run ends
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        tmp = Path(folder)
        smsc_port, hub_port = free_port(), free_port()
        simulate = [sys.executable, "-m", "smpphub", "simulate", "--listen", f"{HOST}:{smsc_port}", "--quiet"]
        if simulator_config:
            (tmp / "simulator.toml").write_text(simulator_config)
            simulate += ["--config", str(tmp / "simulator.toml")]
        sim = start(simulate, b"listening")
        try:
            config(tmp / "hub.toml", hub_port, smsc_port, tmp / "hub.db")
            hub = start([sys.executable, "-m", "smpphub", "serve", "--config", str(tmp / "hub.toml")], ready)
            try:
                time.sleep(0.5)  # let the hub's upstream binds come up (they retry on their own)
                cpu = (cpu_seconds(hub.pid), cpu_seconds(sim.pid))
                sampler = RssSampler(hub.pid) if sample_rss else None
                result = load(hub_port)
                if sampler is not None:
                    result["hub_rss_mib"] = sampler.stop()
                n = max(1, messages(result))
                result["hub_cpu_us"] = (cpu_seconds(hub.pid) - cpu[0]) / n * 1e6
                result["smsc_cpu_us"] = (cpu_seconds(sim.pid) - cpu[1]) / n * 1e6
            finally:
                stop(hub)  # before the folder goes: the hub holds its database open
        finally:
            stop(sim)
    return result


def measure_hub(store: str, receipts: bool, count: int, window: int, binds: int, rate: float = 0.0) -> dict:
    # the simulator holds every receipt the hub has not taken yet: closed loop, receipts come
    # back slower than submits go out, and past its default hold_limit the oldest would give way
    simulator = f"[receipts]\nhold_limit = {max(100_000, count)}\n"
    return measure_through_hub(
        "smpphub-bench-", lambda path, hub_port, smsc_port, db: hub_config(path, hub_port, smsc_port, store, db),
        b"listening", lambda hub_port: run_load(hub_port, count, window, binds, receipts, rate), lambda _: count,
        simulator_config=simulator)


def measure_ceiling(count: int, window: int, binds: int) -> dict:
    port = free_port()
    srv = start([sys.executable, "-m", "smpphub.bench.hub", "--plain-server", str(port)], b"listening")
    try:
        cpu = cpu_seconds(srv.pid)
        result = run_load(port, count, window, binds, False)
        result["hub_cpu_us"] = (cpu_seconds(srv.pid) - cpu) / count * 1e6
        result["smsc_cpu_us"] = 0.0
    finally:
        stop(srv)
    return result


def plain_server_main(port: int) -> None:
    import smppcore

    async def main() -> None:
        server = await smppcore.serve(smppcore.SmscHandler(), HOST, port)
        print("listening", flush=True)
        await asyncio.Event().wait()
        await server.close()

    smppcore.run(main())


def median_of(runs: list[dict]) -> dict:
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        out[key] = statistics.median(values) if isinstance(values[0], (int, float)) else values[0]
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--plain-server":
        plain_server_main(int(argv[1]))
        return 0
    p = argparse.ArgumentParser(prog="python -m smpphub.bench.hub", description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=200_000)
    p.add_argument("--window", type=int, default=200)
    p.add_argument("--binds", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--variants", default="ceiling,sqlite,sqlite-noreceipts,memory,half-rate")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    rows = []
    results: dict[str, dict] = {}
    for name in variants:
        runs = []
        for _ in range(args.repeat):
            if name == "ceiling":
                runs.append(measure_ceiling(args.count, args.window, args.binds))
            elif name == "half-rate":
                base = results.get("sqlite") or measure_hub("sqlite", True, args.count, args.window, args.binds)
                rate = base["accept_rate"] / 2
                runs.append(measure_hub("sqlite", True, max(1000, args.count // 4), args.window, args.binds, rate=rate))
                runs[-1]["rate_asked"] = rate
            else:
                store = "memory" if name.startswith("memory") else "sqlite"
                runs.append(measure_hub(store, not name.endswith("noreceipts"), args.count, args.window, args.binds))
            print(f"  {name}: {runs[-1]['accept_rate']:,.0f} msg/s", file=sys.stderr, flush=True)
        results[name] = median_of(runs)
        rows.append((name, results[name]))
    print()
    print(f"hub end to end: {args.count:,} messages, {args.binds} binds x window {args.window}, median of {args.repeat}")
    print(f"{'variant':<18} | {'accepted/s':>10} | {'receipts/s':>10} | {'p50 ms':>7} | {'p99 ms':>7} | {'p99.9 ms':>8} | {'errors':>6} | {'load us':>7} | {'hub us':>7} | {'smsc us':>7}")
    print("-" * 118)
    for name, r in rows:
        print(f"{name:<18} | {r['accept_rate']:>10,.0f} | {r['receipt_rate']:>10,.0f} | {r['p50_ms']:>7.2f} | {r['p99_ms']:>7.2f} | {r['p999_ms']:>8.2f} | "
              f"{int(r['errors']):>6} | {r['load_cpu_us']:>7.1f} | {r['hub_cpu_us']:>7.1f} | {r['smsc_cpu_us']:>7.1f}")
    print("ceiling = the same load against a bare smppcore server (no routing, no store, no upstream);")
    print("half-rate = sqlite with receipts, paced at half the sqlite variant's accepted rate; us = CPU microseconds per message.")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
