"""Session benchmark: two processes on loopback, submit_sm -> submit_sm_resp.

Run ``python -m smpphub.bench.session`` (``--quick`` for a smoke run). For each pair of
client and server and each window (``--windows``, default 1,10,100) it starts a server
process and a client process, both on 127.0.0.1, and reports:

- **msg/s**: messages per second, measured by the client from just before the first
  send to the last response;
- **p50 / p99 ms**: latency of each submit_sm to its submit_sm_resp, one
  ``time.perf_counter_ns`` (node: ``process.hrtime.bigint``) timestamp pair per
  message, percentiles by nearest rank over the sorted list of all of them;
- **client / server CPU us/msg**: user + system CPU time of each process over the
  measured phase only, from the OS accounting (``getrusage(RUSAGE_SELF)``, node:
  ``process.cpuUsage()``; both count every thread of the process), divided by the
  number of messages. The client reports its own delta over its run; the server
  reports its counter when the orchestrator writes ``start`` and ``stop`` to its stdin,
  just before the client is told to go and just after the client reported.

Pairs (``--pairs``, comma separated, default all):

========== =============================================================================
ours       smppcore client -> smppcore server (default SmscHandler), uvloop
smpp34     smpp34 Client -> smpp34 Server (its own API; W concurrent tasks awaiting
           ``Smsc.submit_sm``, ``window_size=W``; the server accepts from ``next()``)
node       node-smpp client -> node-smpp server (peers/node_session_*.js)
raw        smppcore client -> a bare asyncio.Protocol on uvloop that frames the PDU
           stream (command_length, slices whole PDUs, no decoding) and answers each
           submit_sm with fixed submit_sm_resp bytes, its sequence number patched in:
           the ceiling for any Python server on this loop
ours-node  smppcore client -> node-smpp server
node-ours  node-smpp client -> smppcore server
========== =============================================================================

The last two put each server under the same client as the other: a server's CPU per
message is compared with the same client driving both (ours->ours against
ours->node, node->ours against node->node).

Every client binds as a transceiver, submits ``--warmup`` messages (so JITs and caches
are warm), waits for "go", then submits ``--count`` messages keeping ``W`` in flight:
smppcore's client through one producer (``fut = await client.send(SubmitSm(...))``, a
done-callback per future), node-smpp's by sending the next submit_sm from each
response callback. The message is the codec benchmark's submit_sm (international
addresses, 40-octet text, registered_delivery=1), built anew for every send.

Each measurement gets fresh processes. Measurements are repeated ``--repeat`` times
(3), interleaved (repetition, then window, then pair, in a rotating order) so a noisy
neighbour hits every pair alike; each figure is the median of its repetitions. With
``--pin`` (the default when there are two CPUs or more) the client runs on one CPU and
the server on another.

Every process uses TCP_NODELAY: asyncio and uvloop set it on every TCP transport, and
the node scripts set it too (``--node-nagle`` leaves node's default, Nagle on).
The JSON (``--json``) also has each side's system (kernel) CPU per message.

The sub-modes are ``python -m smpphub.bench.session server --impl {ours,raw,smpp34}``
(prints ``PORT n``; stdin ``start``/``stop`` -> ``CPU user_us system_us``; ``quit``)
and ``python -m smpphub.bench.session client --impl {ours,smpp34} --port P ...`` (prints
``READY``, waits for ``go``, prints ``RESULT {json}``, unbinds on ``quit``); both
take ``--profile FILE`` to write a cProfile of their measured phase. The
orchestrator's ``--profile DIR`` passes one to every Python process, ``--pyspy DIR``
samples every Python process's measured phase with py-spy (if installed; it is not a
dependency), and both print each process's top functions by own time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__" and not __package__:  # python benchmarks/session.py
    _ROOT = Path(__file__).resolve().parent.parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
    sys.path.insert(0, str(_ROOT))

# The pieces live in two modules (the child processes' sides, and one measurement's
# process handling); their names are importable from here as before.
from smpphub.bench.session_measure import (  # noqa: E402,F401
    NODE_CLIENT,
    NODE_MODULES,
    NODE_SERVER,
    PAIRS,
    PEERS,
    ROOT,
    _LIVE,
    Child,
    ChildFailed,
    _child_env,
    _child_setup,
    _client_argv,
    _kill_all,
    _node,
    _pick_cpus,
    _server_argv,
    _start_pyspy,
    measure,
)
from smpphub.bench.session_sides import (  # noqa: E402,F401
    DESTINATION,
    HOST,
    SOURCE,
    TEXT,
    Profile,
    RawSmsc,
    StdinCommands,
    _client_main,
    _new_loop,
    _ours_drive,
    _run_submode,
    _server_main,
    _smpp34_drive,
    _start_server,
    _submode,
    cpu_split_us,
    cpu_us,
    percentile,
    say,
)

LABELS = {
    "ours": "ours -> ours",
    "smpp34": "smpp34 -> smpp34",
    "node": "node -> node",
    "raw": "ours -> raw ceiling",
    "ours-node": "ours -> node",
    "node-ours": "node -> ours",
}
METRICS = ("msg_per_s", "p50_ms", "p99_ms", "client_cpu_us", "server_cpu_us", "client_sys_us", "server_sys_us")


# ---- orchestrator ---------------------------------------------------------------------


def _available(pairs: list[str]) -> dict[str, str]:
    """pair -> why it cannot run (missing node, node-smpp or smpp34)."""
    missing: dict[str, str] = {}
    node_ok = shutil.which("node") is not None and (NODE_MODULES / "smpp").is_dir()
    try:
        import smpp34  # noqa: F401

        smpp34_ok = True
    except ImportError:
        smpp34_ok = False
    for pair in pairs:
        impls = PAIRS[pair]
        if "node" in impls and not node_ok:
            missing[pair] = "node or node-smpp not installed"
        elif "smpp34" in impls and not smpp34_ok:
            missing[pair] = "smpp34 not installed"
    return missing


def _fmt_rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _fmt(x: float | None, digits: int) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def format_table(medians: dict[str, dict[int, dict[str, float]]], pairs: list[str], windows: list[int]) -> str:
    head = ["pair", "window", "msg/s", "p50 ms", "p99 ms", "client CPU us/msg", "server CPU us/msg"]
    rows = []
    for pair in pairs:
        for w in windows:
            m = medians.get(pair, {}).get(w)
            if m is None:
                rows.append([LABELS[pair], str(w), "n/a", "n/a", "n/a", "n/a", "n/a"])
                continue
            rows.append(
                [
                    LABELS[pair],
                    str(w),
                    _fmt_rate(m["msg_per_s"]),
                    _fmt(m["p50_ms"], 3),
                    _fmt(m["p99_ms"], 3),
                    _fmt(m["client_cpu_us"], 1),
                    _fmt(m["server_cpu_us"], 1),
                ]
            )
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))

    out = [line(head), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def target_lines(medians: dict[str, dict[int, dict[str, float]]], window: int = 100) -> list[str]:
    def get(pair: str, metric: str) -> float | None:
        m = medians.get(pair, {}).get(window)
        return None if m is None else m[metric]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = [f"targets at window {window}:"]
    a, b = get("ours", "msg_per_s"), get("node", "msg_per_s")
    if a and b:
        r = a / b
        lines.append(f"  ours->ours msg/s / node->node msg/s = {a:,.0f} / {b:,.0f} = {r:.2f}x (target >= 3x: {verdict(r >= 3)})")
    else:
        lines.append("  ours->ours msg/s / node->node msg/s = n/a (needs pairs ours and node)")
    for client, ours_pair, node_pair in (("ours", "ours", "ours-node"), ("node", "node-ours", "node")):
        a, b = get(ours_pair, "server_cpu_us"), get(node_pair, "server_cpu_us")
        if a is not None and b:
            r = a / b
            lines.append(
                f"  server CPU us/msg, same client ({client}): ours {a:.1f} / node-smpp {b:.1f} = {r:.3f}x"
                f" (target <= 0.25x: {verdict(r <= 0.25)})"
            )
        else:
            lines.append(
                f"  server CPU us/msg, same client ({client}): n/a (needs pairs {ours_pair} and {node_pair})"
            )
    a, b = get("ours", "msg_per_s"), get("raw", "msg_per_s")
    if a and b:
        r = a / b
        lines.append(f"  ours->ours msg/s / raw ceiling msg/s = {a:,.0f} / {b:,.0f} = {r:.1%} (target >= 60%: {verdict(r >= 0.6)})")
    else:
        lines.append("  ours->ours msg/s / raw ceiling msg/s = n/a (needs pairs ours and raw)")
    return lines


def summarize_pyspy(path: str, top: int) -> list[tuple[float, str]]:
    """(share of samples, function) by own time, from py-spy's collapsed stacks.

    Samples whose innermost Python frame is the event loop's run call are time in
    uvloop's own C code (reading, writing, polling, running callbacks).
    """
    import collections
    import re

    own: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            if not stack or not n.isdigit():
                continue
            frames = [fr for fr in stack.split(";") if not fr.startswith(("process ", "thread "))]
            if frames:
                own[re.sub(r":\d+\)$", ")", frames[-1])] += int(n)
                total += int(n)
    return [(k / total, name) for name, k in own.most_common(top)] if total else []


def _print_profile(path: str, top: int) -> None:
    import io
    import pstats

    if not os.path.exists(path):
        return
    if path.endswith(".txt"):
        print(f"--- py-spy {path} (top {top} by own time; the loop's run frame is uvloop's C code)")
        for share, name in summarize_pyspy(path, top):
            print(f"  {share:6.1%}  {name}")
        return
    buf = io.StringIO()
    pstats.Stats(path, stream=buf).sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
    keep = text[text.find("   ncalls"):] if "   ncalls" in text else text
    print(f"--- profile {path} (top {top} by own time)")
    print(keep.rstrip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m smpphub.bench.session", description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=None, help="messages per measurement (100000; --quick: 2000)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up messages before each measurement (5000; --quick: 200)")
    p.add_argument("--windows", default="1,10,100", help="comma-separated windows (1,10,100)")
    p.add_argument("--pairs", default="all", help=f"comma-separated pairs from {','.join(PAIRS)} (all)")
    p.add_argument("--repeat", type=int, default=None, help="repetitions; medians are reported (3; --quick: 1)")
    p.add_argument("--quick", action="store_true", help="CI smoke run: ~2000 messages, one repetition")
    p.add_argument("--json", metavar="PATH", help="write every figure to PATH")
    p.add_argument("--pin", dest="pin", action="store_true", default=None, help="client and server on separate CPUs (default with >= 2 CPUs)")
    p.add_argument("--no-pin", dest="pin", action="store_false")
    p.add_argument(
        "--node-nagle",
        action="store_true",
        help="leave Nagle's algorithm on in the node-smpp processes (node's default); by default they set"
        " TCP_NODELAY, as asyncio and uvloop do for every TCP transport",
    )
    p.add_argument("--profile", metavar="DIR", help="cProfile every Python process's measured phase into DIR and print the top functions")
    p.add_argument(
        "--pyspy",
        metavar="DIR",
        help="sample every Python process's measured phase with py-spy into DIR and print the top functions"
        " (needs py-spy; not part of the project's dependencies)",
    )
    p.add_argument("--profile-top", type=int, default=15)
    p.add_argument("--retries", type=int, default=1, help="measure again after a failed attempt, this many times (1)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    if args.count is None:
        args.count = 2000 if args.quick else 100000
    if args.warmup is None:
        args.warmup = 200 if args.quick else min(5000, max(200, args.count // 20))
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    args.window_list = [int(w) for w in args.windows.split(",") if w.strip()]
    if args.pairs == "all":
        args.pair_list = list(PAIRS)
    else:
        args.pair_list = [x.strip() for x in args.pairs.split(",") if x.strip()]
        bad = [x for x in args.pair_list if x not in PAIRS]
        if bad:
            p.error(f"unknown pair(s) {bad}; choose from {list(PAIRS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    pairs, windows = args.pair_list, args.window_list
    cpus = _pick_cpus(args.pin)
    profile_dir = Path(args.profile) if args.profile else None
    pyspy_dir = Path(args.pyspy) if args.pyspy else None
    for d in (profile_dir, pyspy_dir):
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)
    skipped = _available(pairs)
    runnable = [p for p in pairs if p not in skipped]
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {p: {w: [] for w in windows} for p in pairs}
    failures: list[str] = []  # measurements that failed every attempt
    retried: list[str] = []  # attempts that failed and were retried

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    old_term = signal.signal(signal.SIGTERM, on_term) if _is_main_thread() else None
    started = time.monotonic()
    try:
        for rep in range(args.repeat):
            for wi, w in enumerate(windows):
                k = (rep + wi) % max(len(runnable), 1)
                order = runnable[k:] + runnable[:k]
                for pair in order:
                    tag = f"-r{rep + 1}" if args.repeat > 1 else ""
                    r = None
                    for attempt in range(1 + max(args.retries, 0)):
                        try:
                            r = measure(
                                pair, w, count=args.count, warmup=args.warmup, cpus=cpus, profile_dir=profile_dir,
                                pyspy_dir=pyspy_dir, tag=tag, node_nodelay=not args.node_nagle,
                            )
                            break
                        except ChildFailed as exc:
                            what = f"{pair} w={w} rep {rep + 1} attempt {attempt + 1}: {exc}"
                            (failures if attempt >= args.retries else retried).append(what)
                            print(f"[{rep + 1}/{args.repeat}] {LABELS[pair]:<20} w={w:<4} FAILED: {exc}", file=sys.stderr)
                    if r is None:
                        continue
                    runs[pair][w].append(r)
                    if not args.quiet:
                        print(
                            f"[{rep + 1}/{args.repeat}] {LABELS[pair]:<20} w={w:<4} {r['msg_per_s']:>9,.0f} msg/s"
                            f"  p50 {r['p50_ms']:.3f} p99 {r['p99_ms']:.3f} ms"
                            f"  cpu client {r['client_cpu_us']:.1f} ({r['client_sys_us']:.1f} sys)"
                            f" server {r['server_cpu_us']:.1f} ({r['server_sys_us']:.1f} sys) us/msg"
                            + (f"  errors {r['errors']}" if r["errors"] else ""),
                            file=sys.stderr,
                            flush=True,
                        )
    finally:
        _kill_all()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)

    medians: dict[str, dict[int, dict[str, float]]] = {}
    for pair in pairs:
        for w in windows:
            rs = runs[pair][w]
            if rs:
                medians.setdefault(pair, {})[w] = {m: statistics.median(r[m] for r in rs) for m in METRICS}

    print(
        f"session benchmark: {args.count} submit_sm per measurement after {args.warmup} warm-up,"
        f" median of {args.repeat}, two processes on loopback"
        + (f", client on CPU {cpus[0]} and server on CPU {cpus[1]}" if cpus[0] is not None else ", unpinned")
    )
    print(format_table(medians, pairs, windows))
    for pair, why in skipped.items():
        print(f"{LABELS[pair]}: n/a ({why})")
    for f in failures:
        print(f"failed: {f}")
    for f in retried:
        print(f"failed once, measured again: {f}")
    errors = sum(r["errors"] for p in runs.values() for rs in p.values() for r in rs)
    if errors:
        print(f"warning: {errors} submit_sm were answered with an error status")
    if 100 in windows:
        print("\n".join(target_lines(medians, 100)))
    if profile_dir is not None or pyspy_dir is not None:
        for pair in pairs:
            for w in windows:
                for r in runs[pair][w]:
                    for path in r["profiles"].values():
                        _print_profile(path, args.profile_top)

    result = {
        "benchmark": "session",
        "count": args.count,
        "warmup": args.warmup,
        "repeat": args.repeat,
        "windows": windows,
        "pairs": pairs,
        "cpus": list(cpus),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "elapsed_s": time.monotonic() - started,
        "median": {p: {str(w): m for w, m in ws.items()} for p, ws in medians.items()},
        "runs": {p: {str(w): rs for w, rs in ws.items()} for p, ws in runs.items()},
        "skipped": skipped,
        "failures": failures,
        "retried": retried,
        "targets": target_lines(medians, 100) if 100 in windows else [],
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def cli(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("server", "client"):
        return _submode(argv)
    try:
        res = main(argv)
    except KeyboardInterrupt:
        _kill_all()
        return 130
    return 1 if res["failures"] else 0


if __name__ == "__main__":
    sys.exit(cli())
