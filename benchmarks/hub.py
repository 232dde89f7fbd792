"""End-to-end hub benchmark: ESME load -> hub -> simulated SMSC, receipts back.

Three processes share the machine: the load (our client, pipelined), the hub
(``smpphub serve``) and the upstream simulator (``smpphub simulate`` at zero
latency). For each variant it prints accepted messages per second, receipts per
second and submit_sm -> submit_sm_resp latency percentiles, plus the CPU time
each process spent per message. In the same run it measures the session
ceiling (the same load against a bare smppcore server that answers at once) so
the cost of routing and storing is visible, and a paced run at half the
measured rate for the latency under moderate load.

    python -m benchmarks.hub                 # 200,000 messages per variant
    python -m benchmarks.hub --count 20000 --variants sqlite,memory
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
import time
from pathlib import Path

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


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


# --- the load (runs in its own process) -------------------------------------------------------


async def drive(port: int, count: int, window: int, binds: int, receipts: bool, rate: float) -> dict:
    import smppcore

    got_receipts = 0
    all_receipts = asyncio.Event()

    def on_message(pdu) -> None:
        nonlocal got_receipts
        got_receipts += 1
        if got_receipts >= count:
            all_receipts.set()

    clients = [
        await smppcore.connect(HOST, port, system_id="bench", password="bench", window=window, on_message=on_message)
        for _ in range(binds)
    ]
    latencies: list[float] = [0.0] * count
    errors = 0
    loop = asyncio.get_running_loop()
    per_bind = [count // binds + (1 if i < count % binds else 0) for i in range(binds)]
    start = time.perf_counter()
    cpu0 = time.process_time()

    async def run_bind(client, n: int, offset: int) -> None:
        nonlocal errors
        pending = []
        interval = binds / rate if rate else 0.0
        for i in range(n):
            if interval:
                due = start + i * interval
                delay = due - time.perf_counter()
                if delay > 0.001:
                    await asyncio.sleep(delay)
            sent_at = time.perf_counter() if not interval else max(start + i * interval, 0)
            fut = await client.send(smppcore.SubmitSm(
                source_addr="Bench", source_addr_ton=5, dest_addr_ton=1, dest_addr_npi=1,
                destination_addr=f"4477009{(offset + i) % 100000:05d}", short_message=b"Benchmark message, 32 characters",
                registered_delivery=1 if receipts else 0,
            ))
            idx = offset + i

            def done(f, idx=idx, sent_at=sent_at) -> None:
                nonlocal errors
                latencies[idx] = time.perf_counter() - sent_at
                if f.exception() is not None or f.result().command_status != 0:
                    errors += 1

            fut.add_done_callback(done)
            pending.append(fut)
        await asyncio.gather(*pending, return_exceptions=True)

    offsets = [sum(per_bind[:i]) for i in range(binds)]
    await asyncio.gather(*(run_bind(c, n, o) for c, n, o in zip(clients, per_bind, offsets)))
    acked_at = time.perf_counter()
    receipts_at = acked_at
    if receipts:
        try:
            await asyncio.wait_for(all_receipts.wait(), 120)
        except asyncio.TimeoutError:
            pass
        receipts_at = time.perf_counter()
    cpu = time.process_time() - cpu0
    for c in clients:
        await c.unbind()
    lat = sorted(latencies)
    return {
        "count": count,
        "errors": errors,
        "accept_rate": count / (acked_at - start),
        "receipt_rate": got_receipts / (receipts_at - start) if receipts else 0.0,
        "receipts": got_receipts,
        "p50_ms": percentile(lat, 50) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "p999_ms": percentile(lat, 99.9) * 1000,
        "load_cpu_us": cpu / count * 1e6,
        "elapsed": receipts_at - start,
    }


def drive_main(args: list[str]) -> None:
    import smppcore

    port, count, window, binds, receipts, rate = int(args[0]), int(args[1]), int(args[2]), int(args[3]), args[4] == "1", float(args[5])
    result = smppcore.run(drive(port, count, window, binds, receipts, rate))
    print(json.dumps(result), flush=True)


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


def run_load(port: int, count: int, window: int, binds: int, receipts: bool, rate: float = 0.0) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.hub", "--drive", str(port), str(count), str(window), str(binds), "1" if receipts else "0", str(rate)],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_hub(store: str, receipts: bool, count: int, window: int, binds: int, rate: float = 0.0) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="smpphub-bench-"))
    smsc_port, hub_port = free_port(), free_port()
    sim = start([sys.executable, "-m", "smpphub_cli", "simulate", "--listen", f"{HOST}:{smsc_port}", "--quiet"], b"listening")
    try:
        hub_config(tmp / "hub.toml", hub_port, smsc_port, store, tmp / "hub.db")
        hub = start([sys.executable, "-m", "smpphub_cli", "serve", "--config", str(tmp / "hub.toml")], b"listening")
        try:
            time.sleep(0.5)  # let the hub's upstream binds come up (they retry on their own)
            cpu = (cpu_seconds(hub.pid), cpu_seconds(sim.pid))
            result = run_load(hub_port, count, window, binds, receipts, rate)
            result["hub_cpu_us"] = (cpu_seconds(hub.pid) - cpu[0]) / count * 1e6
            result["smsc_cpu_us"] = (cpu_seconds(sim.pid) - cpu[1]) / count * 1e6
        finally:
            stop(hub)
    finally:
        stop(sim)
    return result


def measure_ceiling(count: int, window: int, binds: int) -> dict:
    port = free_port()
    srv = start([sys.executable, "-m", "benchmarks.hub", "--plain-server", str(port)], b"listening")
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
    if argv and argv[0] == "--drive":
        drive_main(argv[1:])
        return 0
    if argv and argv[0] == "--plain-server":
        plain_server_main(int(argv[1]))
        return 0
    p = argparse.ArgumentParser(prog="python -m benchmarks.hub", description=__doc__.split("\n\n")[0])
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
