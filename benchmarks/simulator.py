"""Simulator fast-path benchmark: the simulator against the plain smppcore server.

Run ``python -m smpphub.bench.simulator`` (``--quick`` for a smoke run). Each
measurement starts two fresh processes on 127.0.0.1 (pinned to two CPUs when
there are two or more): a server and an smppcore client that binds as a
transceiver, submits ``--warmup`` messages, then ``--count`` submit_sm
(registered_delivery=1) keeping ``--window`` in flight. Servers:

=============== ==========================================================================
plain           ``smppcore.serve(SmscHandler())``: the null SMSC (accepts every message)
simulator       the simulator's fast path: zero latency, no faults, receipts off
simulator+dlr   the same with receipts on (zero delay): every message also gets a
                deliver_sm receipt, which the client acknowledges
simulator-full  the fast path once its record is full: the warm-up also sends
                ``record_limit`` (100,000) messages, so the measured ones each push the
                oldest record out. This is where a long run spends its time; the
                ``simulator`` row measures the record growing from empty (new memory
                for every message)
simulator-0     the fast path with ``record_limit = 0``: counters only, no record (the
                setting for pure load tests): the cost of recording, by difference
=============== ==========================================================================

**msg/s** (and the **range** of the repetitions) is measured by the client from just before its first submit to the last
submit_sm_resp; **p50 / p99 ms** are submit-to-response latencies; **server CPU
us/msg** is the server process's user+system CPU over the measured phase. With
receipts on, **receipts** counts the receipts the client got (it waits for all of
them, bounded) and **dlr/s** is the rate from the first submit to the last receipt.
Each figure is the median of ``--repeat`` (3) measurements, interleaved. The last
lines give the ratio simulator / plain server (the target is 0.90 or more) and how
much more CPU the simulator spends per message (the figure that noise from other
processes on the machine disturbs least).

``--pyspy DIR`` samples each server process's measured phase with py-spy (if
installed) and prints its top functions by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__" and not __package__:  # python benchmarks/simulator.py
    _ROOT = Path(__file__).resolve().parent.parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
    sys.path.insert(0, str(_ROOT))

from smpphub.bench.session_sides import _run_submode, go_and_quit, serve_until_quit  # noqa: E402
from smpphub.bench.session import (  # noqa: E402
    HOST,
    Child,
    ChildFailed,
    _child_env,
    _kill_all,
    _ours_drive,
    _pick_cpus,
    _start_pyspy,
    cpu_split_us,
    percentile,
    say,
    summarize_pyspy,
)

SERVERS = ("plain", "simulator", "simulator+dlr", "simulator-full", "simulator-0")
QUICK_SERVERS = SERVERS[:3]


# ---- server sub-mode ------------------------------------------------------------------


async def _server_main(args: argparse.Namespace) -> None:
    import smppcore

    if args.impl == "plain":
        server = await smppcore.serve(smppcore.SmscHandler(), HOST, 0)
        port, stop = server.port, server.close
    else:
        from smpphub.simulator.app import start
        from smpphub.simulator.config import config_from_dict

        config: dict[str, Any] = {"listen": f"{HOST}:0", "receipts": {"enabled": args.impl == "simulator+dlr"}}
        if args.impl == "simulator-0":
            config["record_limit"] = 0
        running = await start(config_from_dict(config), port=0)
        port, stop = running.port, running.close
    await serve_until_quit(port, stop)


# ---- client sub-mode ------------------------------------------------------------------


async def _client_main(args: argparse.Namespace) -> None:
    import smppcore

    loop = asyncio.get_running_loop()
    receipts = {"n": 0, "last": 0, "want": None}
    all_receipts = loop.create_future()

    def on_message(pdu: Any) -> None:
        receipts["n"] += 1
        receipts["last"] = time.perf_counter_ns()
        if receipts["want"] is not None and receipts["n"] >= receipts["want"] and not all_receipts.done():
            all_receipts.set_result(None)

    go, quit_ = go_and_quit(loop)
    client = await smppcore.connect(HOST, args.port, system_id="bench", password="bench", window=args.window,
                                    on_message=on_message)
    await _ours_drive(client, args.warmup)
    if args.dlr:  # the warm-up's receipts first, so they are not counted below
        receipts["want"] = args.warmup
        if receipts["n"] < args.warmup:
            await asyncio.wait_for(all_receipts, 30)
        receipts["n"], receipts["want"] = 0, None
        all_receipts = loop.create_future()
    say("READY")
    await go
    if quit_.done():
        return
    u0, s0 = cpu_split_us()
    t0, starts, ends, errors = await _ours_drive(client, args.count)
    got_all = True
    if args.dlr:
        receipts["want"] = args.count
        if receipts["n"] < args.count:
            try:
                await asyncio.wait_for(all_receipts, 30 + args.count / 5000)
            except asyncio.TimeoutError:
                got_all = False
    u1, s1 = cpu_split_us()
    lat = sorted(e - s for s, e in zip(starts, ends))
    say("RESULT " + json.dumps({
        "n": args.count,
        "errors": errors,
        "elapsed_ns": max(ends) - t0 if args.count else 0,
        "receipts": receipts["n"],
        "receipts_elapsed_ns": (receipts["last"] - t0) if args.dlr and receipts["n"] else 0,
        "all_receipts": got_all,
        "cpu_us": (u1 - u0) + (s1 - s0),
        "p50_ns": percentile(lat, 50),
        "p99_ns": percentile(lat, 99),
    }))
    await quit_
    try:
        await asyncio.wait_for(client.unbind(), 2)
    except Exception:  # noqa: BLE001 - exiting anyway
        pass


# ---- orchestrator ---------------------------------------------------------------------


def measure(name: str, *, count: int, window: int, warmup: int, cpus: tuple[int | None, int | None],
            pyspy_dir: Path | None = None, tag: str = "") -> dict[str, Any]:
    env = _child_env()
    me = [sys.executable, "-m", "smpphub.bench.simulator"]
    server = client = spy = None
    ok = False
    pyspy_path = None
    if name == "simulator-full":
        from smpphub.simulator.config import SimulatorConfig

        warmup += SimulatorConfig().record_limit
    try:
        server = Child([*me, "server", "--impl", name], f"{name} server", cpus[1], env)
        port = int(server.expect("PORT", 30).split()[1])
        argv = [*me, "client", "--port", str(port), "--count", str(count), "--window", str(window), "--warmup", str(warmup)]
        if name == "simulator+dlr":
            argv.append("--dlr")
        client = Child(argv, f"{name} client", cpus[0], env)
        client.expect("READY", 60 + warmup * 0.001)
        if pyspy_dir is not None:
            pyspy_path = str(pyspy_dir / f"{name.replace('+', '-')}{tag}-server.txt")
            spy = _start_pyspy(server.proc.pid, pyspy_path)
            time.sleep(1.0)  # let py-spy attach
        server.send("start")
        s0 = [int(x) for x in server.expect("CPU", 10).split()[1:3]]
        client.send("go")
        res = json.loads(client.expect("RESULT", 60 + count * 0.002)[len("RESULT "):])
        server.send("stop")
        s1 = [int(x) for x in server.expect("CPU", 10).split()[1:3]]
        ok = True
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
            spy.wait()
        for child in (client, server):
            if child is not None:
                child.close() if ok else child.kill()
    n = res["n"]
    elapsed = res["elapsed_ns"] / 1e9
    dlr_elapsed = res["receipts_elapsed_ns"] / 1e9
    return {
        "server": name,
        "n": n,
        "errors": res["errors"],
        "msg_per_s": n / elapsed if elapsed > 0 else 0.0,
        "p50_ms": res["p50_ns"] / 1e6,
        "p99_ms": res["p99_ns"] / 1e6,
        "server_cpu_us": (s1[0] + s1[1] - s0[0] - s0[1]) / n if n else 0.0,
        "receipts": res["receipts"],
        "dlr_per_s": res["receipts"] / dlr_elapsed if dlr_elapsed > 0 else 0.0,
        "all_receipts": res["all_receipts"],
        "pyspy": pyspy_path,
    }


def format_table(medians: dict[str, dict[str, float]], names: list[str], runs: dict[str, list[dict[str, Any]]] | None = None) -> str:
    head = ["server", "msg/s", "range", "p50 ms", "p99 ms", "server CPU us/msg", "receipts", "dlr/s", "vs plain"]
    plain = medians.get("plain", {}).get("msg_per_s")
    rows = []
    for name in names:
        m = medians.get(name)
        if m is None:
            rows.append([name] + ["n/a"] * (len(head) - 1))
            continue
        dlr = name.endswith("+dlr")
        rates = [r["msg_per_s"] for r in (runs or {}).get(name, [])] or [m["msg_per_s"]]
        rows.append([
            name,
            f"{m['msg_per_s']:,.0f}",
            f"{min(rates) / 1000:.0f}k-{max(rates) / 1000:.0f}k",
            f"{m['p50_ms']:.3f}",
            f"{m['p99_ms']:.3f}",
            f"{m['server_cpu_us']:.1f}",
            f"{m['receipts']:,.0f}" if dlr else "-",
            f"{m['dlr_per_s']:,.0f}" if dlr else "-",
            f"{m['msg_per_s'] / plain:.2f}" if plain else "n/a",
        ])
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))

    return "\n".join([line(head), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m smpphub.bench.simulator", description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", default=None, help=f"comma separated, of {', '.join(SERVERS)} (default: all; "
                   f"--quick: {', '.join(QUICK_SERVERS)})")
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--warmup", type=int, default=5_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke run: 2,000 messages, once")
    p.add_argument("--no-pin", action="store_true", help="do not pin client and server to separate CPUs")
    p.add_argument("--json", metavar="FILE", help="also write every measurement and the medians here")
    p.add_argument("--pyspy", metavar="DIR", help="sample each server with py-spy; print its top functions")
    args = p.parse_args(argv)
    if args.quick:
        args.count, args.warmup, args.repeat = 2_000, 200, 1
    if args.servers is None:
        args.servers = ",".join(QUICK_SERVERS if args.quick else SERVERS)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        print(f"python -m smpphub.bench.simulator: unknown server(s) {', '.join(unknown)}; known: {', '.join(SERVERS)}",
              file=sys.stderr)
        return 2
    pyspy_dir = Path(args.pyspy) if args.pyspy else None
    if pyspy_dir is not None:
        pyspy_dir.mkdir(parents=True, exist_ok=True)
    cpus = _pick_cpus(False if args.no_pin else None)

    def on_term(signum: int, frame: Any) -> None:
        _kill_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    failures = 0
    try:
        for i in range(args.repeat):
            order = names[i % len(names):] + names[: i % len(names)]  # rotate: no server always first
            for name in order:
                try:
                    r = measure(name, count=args.count, window=args.window, warmup=args.warmup, cpus=cpus,
                                pyspy_dir=pyspy_dir, tag=f"-{i + 1}")
                except ChildFailed as exc:
                    failures += 1
                    print(f"[{i + 1}/{args.repeat}] {name}: failed ({exc})", file=sys.stderr, flush=True)
                    continue
                runs[name].append(r)
                print(f"[{i + 1}/{args.repeat}] {name}: {r['msg_per_s']:,.0f} msg/s", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        _kill_all()
        return 130
    keys = ("msg_per_s", "p50_ms", "p99_ms", "server_cpu_us", "receipts", "dlr_per_s")
    medians = {n: {k: statistics.median(r[k] for r in rs) for k in keys} for n, rs in runs.items() if rs}
    pinned = "client and server pinned to CPUs %s and %s" % cpus if cpus[0] is not None else "not pinned"
    print(f"\nsmppcore client -> server, two processes on 127.0.0.1 ({pinned}); window {args.window}, "
          f"{args.count:,} submit_sm; median of {args.repeat}")
    print(format_table(medians, names, runs))
    plain = medians.get("plain", {}).get("msg_per_s")
    for name in names:
        if name != "plain" and name in medians and plain:
            ratio = medians[name]["msg_per_s"] / plain
            note = f" (target >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'})" if name in ("simulator", "simulator-full", "simulator-0") else ""
            cpu = medians[name]["server_cpu_us"] / medians["plain"]["server_cpu_us"] if medians["plain"]["server_cpu_us"] else 0
            print(f"{name} / plain server: {ratio:.2f}{note}; server CPU per message {cpu:.2f}x the plain server's")
    errors = sum(r["errors"] for rs in runs.values() for r in rs)
    lost = [r["server"] for rs in runs.values() for r in rs if r["server"].endswith("+dlr") and not r["all_receipts"]]
    if errors or lost:
        print(f"errors: {errors} submit errors; runs missing receipts: {', '.join(lost) or 'none'}")
    if pyspy_dir is not None:
        for name, rs in runs.items():
            for r in rs[:1]:
                if r["pyspy"]:
                    print(f"\n{name} server, py-spy top functions by own time:")
                    for share, fn in summarize_pyspy(r["pyspy"], 15):
                        print(f"  {share:6.1%}  {fn}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": runs, "medians": medians}, f, indent=2)
    return 1 if failures or errors or lost else 0


def cli(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("server", "client"):
        p = argparse.ArgumentParser(prog=f"python -m smpphub.bench.simulator {argv[0]}")
        if argv[0] == "server":
            p.add_argument("--impl", choices=SERVERS, required=True)
            return _run_submode(_server_main, p.parse_args(argv[1:]))
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--count", type=int, required=True)
        p.add_argument("--window", type=int, default=100)
        p.add_argument("--warmup", type=int, default=0)
        p.add_argument("--dlr", action="store_true")
        return _run_submode(_client_main, p.parse_args(argv[1:]))
    return main(argv)


if __name__ == "__main__":
    sys.exit(cli())
