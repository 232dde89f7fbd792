"""Codec benchmark: smppcore against smpp34, smpplib, aiosmpplib and node-smpp.

Run ``python -m smpphub.bench.codec`` (or ``python benchmarks/codec.py``). It measures,
on one core, operations per second of:

- decode, encode and encode+decode pairs of three typical PDUs: a submit_sm
  (international source and destination, a 40-octet GSM text, registered_delivery=1),
  its submit_sm_resp (16-character message_id) and a deliver_sm delivery receipt
  (esm_class 4, the usual ``id:... sub:... dlvrd:... stat:DELIVRD ...`` text and the
  receipted_message_id and message_state TLVs);
- the Framer over one buffer of 10,000 back-to-back submit_sm (PDUs per second).

What is timed, for every implementation alike:

- *encode*: build the PDU object from field values and serialise it to bytes (what
  an application does per message; some peers cache the serialisation on the object,
  so encoding a prebuilt object would not be comparable);
- *decode*: bytes of one whole PDU to a PDU object, dispatching on command_id;
- *encode+decode*: decode what was just encoded; the rate is of pairs;
- *framer*: ``Framer().feed(buf)`` once per repetition. The peers have no buffer
  framer, so theirs is a command_length split loop around their decode (which is
  what their socket readers do, minus the socket).

Methodology: the loops are compiled inline (like :mod:`timeit`, but with the garbage
collector left on, as in production) and timed with :func:`time.perf_counter`. Each
measurement runs for about ``--seconds`` (0.5 s) after a calibration pass that also
warms up; each is repeated ``--repeat`` (5) times and the median is reported. The
implementations are measured interleaved (for each repetition, for each operation,
every implementation in turn, in a rotating order), node-smpp included through a
long-running ``node benchmarks/peers/node_codec.js --serve`` child, so a noisy
neighbour hits all of them alike: the ratios are what matter. The process (and the
node child, which inherits it) is pinned to one CPU (``--cpu``).

Before timing, every peer's encoding of each PDU is decoded by smppcore and compared
with smppcore's own, and every peer's decoding of smppcore's bytes is probed, so a
peer that silently does something else is reported rather than timed.

A peer that is not installed shows as ``n/a``. ``--quick`` is a smoke run for CI;
``--json PATH`` writes every figure; ``--peers none`` measures smppcore alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

if __name__ == "__main__" and not __package__:  # python benchmarks/codec.py
    _ROOT = Path(__file__).resolve().parent.parent
    # Do not let benchmarks/ shadow top-level modules; make smppcore importable.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "benchmarks"]
    sys.path.insert(0, str(_ROOT))

# What is measured (the workload, the adapters, their checks) lives in codec_peers; its
# names are importable from here as before.
from smpphub.bench.codec_peers import (  # noqa: E402,F401
    DESTINATION,
    FRAMER_COUNT,
    MESSAGE_ID,
    MESSAGE_STATE_DELIVERED,
    NODE_MODULES,
    NODE_SCRIPT,
    RECEIPT,
    REFERENCE,
    ROOT,
    SEQ,
    SOURCE,
    STREAM,
    TEXT,
    WIRE,
    _EXPECT,
    _U32,
    Impl,
    NodePeer,
    _version,
    aiosmpplib_impl,
    check_node,
    check_python,
    ours,
    reference_pdus,
    smpp34_impl,
    smpplib_impl,
)

#: (key, label) in table order. The key is "<pdu>.<operation>" (node_codec.js uses the same).
OPS: list[tuple[str, str]] = [
    ("submit_sm.decode", "submit_sm decode"),
    ("submit_sm.encode", "submit_sm encode"),
    ("submit_sm.pair", "submit_sm encode+decode"),
    ("submit_sm_resp.decode", "submit_sm_resp decode"),
    ("submit_sm_resp.encode", "submit_sm_resp encode"),
    ("submit_sm_resp.pair", "submit_sm_resp encode+decode"),
    ("deliver_sm.decode", "deliver_sm receipt decode"),
    ("deliver_sm.encode", "deliver_sm receipt encode"),
    ("deliver_sm.pair", "deliver_sm receipt encode+decode"),
    ("framer", "framer, 10k submit_sm (PDUs/s)"),
]
OP_KEYS = [k for k, _ in OPS]
#: node-smpp only, for the footnote: with its default presentation filters on. Each is
#: measured right after the operation it varies (the key), to keep the pairing side by side.
NODE_EXTRA_OPS = {
    "submit_sm.decode": "submit_sm.decode_filtered",
    "submit_sm.pair": "submit_sm.pair_filtered",
    "deliver_sm.decode": "deliver_sm.decode_filtered",
}

PEERS = ["smpp34", "smpplib", "aiosmpplib", "node-smpp"]

TARGET_PAIRS = 250_000
TARGET_VS_NODE = 8.0
TARGET_VS_SMPP34 = 0.4


# --- timing --------------------------------------------------------------------------

_TEMPLATE = """
def inner(_it, _timer):
    _t0 = _timer()
    for _ in _it:
        {expr}
    return _timer() - _t0
"""


class PyCase:
    """One (implementation, operation): a loop compiled around the expression."""

    def __init__(self, expr: str, ns: dict[str, Any], per_eval: int) -> None:
        local = dict(ns)
        exec(compile(_TEMPLATE.format(expr=expr), f"<bench {expr[:40]}>", "exec"), local)  # noqa: S102
        self.inner = local["inner"]
        self.per_eval = per_eval
        self.n = 0

    def time(self, n: int) -> float:
        return self.inner(itertools.repeat(None, n), time.perf_counter)

    def calibrate(self, seconds: float) -> None:
        """Find the iterations for ~``seconds`` (this is the warm-up too)."""
        floor = min(0.05, seconds / 5)
        n = 1
        t = self.time(n)
        while t < floor:
            n *= min(10, max(2, int(floor / t) + 1)) if t > 0 else 10
            t = self.time(n)
        self.n = max(1, round(n * seconds / t))

    def measure(self, seconds: float) -> float:
        if not self.n:
            self.calibrate(seconds)
        return self.n * self.per_eval / self.time(self.n)


# --- running ---------------------------------------------------------------------------


def pin(cpu: int | None) -> tuple[set[int] | None, int | None]:
    """Pin this process to one CPU; returns (previous affinity, the CPU) to restore later."""
    if cpu is None or cpu < 0 or not hasattr(os, "sched_setaffinity"):
        return None, None
    before = os.sched_getaffinity(0)
    if cpu not in before:
        raise SystemExit(f"--cpu {cpu}: not one of the allowed CPUs {sorted(before)}")
    os.sched_setaffinity(0, {cpu})
    return before, cpu


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m smpphub.bench.codec",
        description="SMPP codec ops/s: smppcore vs smpp34, smpplib, aiosmpplib, node-smpp.",
    )
    ap.add_argument("--quick", action="store_true", help="short smoke run (CI): 0.02 s x 3 per figure")
    ap.add_argument("--seconds", type=float, help="seconds per measurement (default 0.5; --quick 0.02)")
    ap.add_argument("--repeat", type=int, help="measurements per figure, median reported (default 5; --quick 3)")
    ap.add_argument(
        "--peers", default="all",
        help="comma-separated peers to compare with: smpp34, smpplib, aiosmpplib, node-smpp (or node); "
        "'all' (default) or 'none'",
    )
    ap.add_argument("--cpu", type=int, help="CPU to pin to (default: the highest allowed; -1: do not pin)")
    ap.add_argument("--json", metavar="PATH", help="also write every figure as JSON to PATH")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    args.seconds = args.seconds or (0.02 if args.quick else 0.5)
    args.repeat = args.repeat or (3 if args.quick else 5)
    want = args.peers.strip().lower()
    if want in ("all", ""):
        args.peer_list = list(PEERS)
    elif want == "none":
        args.peer_list = []
    else:
        names = [("node-smpp" if p.strip() == "node" else p.strip()) for p in want.split(",") if p.strip()]
        bad = [p for p in names if p not in PEERS]
        if bad:
            ap.error(f"unknown peer(s) {bad}; choose from {PEERS}")
        args.peer_list = [p for p in PEERS if p in names]
    if args.cpu is None and hasattr(os, "sched_getaffinity"):
        args.cpu = max(os.sched_getaffinity(0))
    return args


def fmt_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:,.0f}"


def fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    started: list[NodePeer] = []
    try:
        return _run(args, log, started)
    finally:
        for node in started:
            node.close()


def _run(args: argparse.Namespace, log: Callable[[str], None], started: list[NodePeer]) -> dict[str, Any]:
    impls: list[Impl] = [ours()]
    makers = {"smpp34": smpp34_impl, "smpplib": smpplib_impl, "aiosmpplib": aiosmpplib_impl}
    node: NodePeer | None = None
    status: dict[str, str | None] = {}
    versions: dict[str, str | None] = {"ours": impls[0].version}
    for name in args.peer_list:
        if name == "node-smpp":
            node = NodePeer()
            started.append(node)
            if node.unavailable is None:
                problem = check_node(node)
                if problem:
                    node.unavailable = f"check failed: {problem}"
                    node.close()
            status[name] = node.unavailable
            versions[name] = node.info.get("smpp")
            if node.unavailable:
                node = None
            continue
        impl = makers[name]()
        if impl.unavailable is None:
            problem = check_python(impl)
            if problem:
                impl.unavailable = f"check failed: {problem}"
        status[name] = impl.unavailable
        versions[name] = impl.version
        if impl.unavailable is None:
            impls.append(impl)
    problem = check_python(impls[0])
    if problem:
        raise RuntimeError(f"smppcore fails its own benchmark check: {problem}")
    for name, why in status.items():
        if why:
            log(f"{name}: n/a ({why})")

    cases: dict[tuple[str, str], Callable[[float], float]] = {}
    for impl in impls:
        for key in OP_KEYS:
            if key in impl.exprs:
                case = PyCase(impl.exprs[key], impl.ns, impl.per_eval.get(key, 1))
                cases[(impl.name, key)] = case.measure
    names = [impl.name for impl in impls]
    extra_keys: list[str] = []
    if node is not None:
        names.append("node-smpp")
        node_ops = set(node.info.get("ops", []))
        for key in OP_KEYS:
            if key in node_ops:
                cases[("node-smpp", key)] = (lambda k: lambda s: node.measure(k, s))(key)
        extra_keys = [k for k in NODE_EXTRA_OPS.values() if k in node_ops]
        for key in extra_keys:
            cases[("node-smpp", key)] = (lambda k: lambda s: node.measure(k, s))(key)

    runs: dict[str, dict[str, list[float]]] = {k: {} for k in OP_KEYS + extra_keys}
    t_start = time.perf_counter()
    log(f"calibrating {len(cases)} measurements ...")
    for measure in cases.values():
        measure(args.seconds)  # calibration + warm-up; not recorded
    for rep in range(args.repeat):
        log(f"run {rep + 1}/{args.repeat} ...")
        for key in OP_KEYS:
            order = names[rep % len(names):] + names[: rep % len(names)]
            todo = [(name, key) for name in order]
            if NODE_EXTRA_OPS.get(key) in extra_keys:
                todo.append(("node-smpp", NODE_EXTRA_OPS[key]))
            for name, k in todo:
                measure = cases.get((name, k))
                if measure is not None:
                    runs[k].setdefault(name, []).append(measure(args.seconds))
    elapsed = time.perf_counter() - t_start

    medians = {key: {name: statistics.median(v) for name, v in per.items()} for key, per in runs.items()}
    marks = {impl.name: impl.marks for impl in impls}
    return {
        "columns": ["ours", *args.peer_list],
        "status": status,
        "versions": versions,
        "runs": runs,
        "median": medians,
        "marks": marks,
        "elapsed_s": elapsed,
    }


def report(args: argparse.Namespace, res: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    cols = res["columns"]
    peers = cols[1:]
    med = res["median"]
    marks = res["marks"]

    def rate(name: str, key: str) -> float | None:
        return med.get(key, {}).get(name)

    def ratio(key: str, peer: str, peer_key: str | None = None) -> float | None:
        """Median of the per-run ratios: each run's two figures were taken side by side."""
        a = res["runs"].get(key, {}).get("ours")
        b = res["runs"].get(peer_key or key, {}).get(peer)
        if not a or not b:
            return None
        return statistics.median(x / y for x, y in zip(a, b))

    headers = ["operation", *cols, *(f"ours/{p}" for p in peers)]
    rows = []
    for key, label in OPS:
        row = [label]
        for name in cols:
            row.append(fmt_rate(rate(name, key)) + marks.get(name, {}).get(key, ""))
        for p in peers:
            row.append(fmt_ratio(ratio(key, p)) + marks.get(p, {}).get(key, ""))
        rows.append(row)
    out = [render_table(headers, rows)]

    pairs = rate("ours", "submit_sm.pair")
    vs_node = ratio("submit_sm.pair", "node-smpp")
    vs_s34 = ratio("submit_sm.pair", "smpp34")

    def verdict(value: float | None, target: float) -> str:
        return "n/a" if value is None else ("MET" if value >= target else "MISSED")

    targets = {
        "ours_submit_sm_pairs_per_s": {"value": pairs, "target": TARGET_PAIRS, "verdict": verdict(pairs, TARGET_PAIRS)},
        "ratio_vs_node_smpp": {"value": vs_node, "target": TARGET_VS_NODE, "verdict": verdict(vs_node, TARGET_VS_NODE)},
        "ratio_vs_smpp34": {"value": vs_s34, "target": TARGET_VS_SMPP34, "verdict": verdict(vs_s34, TARGET_VS_SMPP34)},
    }
    out.append("")
    out.append(
        f"targets: ours submit_sm encode+decode {fmt_rate(pairs)} pairs/s (>= {TARGET_PAIRS:,}: "
        f"{targets['ours_submit_sm_pairs_per_s']['verdict']}); "
        f"vs node-smpp {fmt_ratio(vs_node)} (>= {TARGET_VS_NODE:g}x: {targets['ratio_vs_node_smpp']['verdict']}); "
        f"vs smpp34 {fmt_ratio(vs_s34)} (>= {TARGET_VS_SMPP34:g}x: {targets['ratio_vs_smpp34']['verdict']})"
    )

    notes = [
        f"ops/s, median of {args.repeat} runs of ~{args.seconds:g} s each, implementations interleaved"
        + (f", pinned to CPU {args.cpu}" if args.cpu is not None and args.cpu >= 0 else "")
        + f"; {res['elapsed_s']:.0f} s in all.",
        "encode = build the PDU object + serialise; decode = bytes -> PDU object; encode+decode per pair.",
    ]
    if "smpp34" in peers and res["status"].get("smpp34") is None:
        notes.append(
            "* smpp34 has no submit_sm_resp type: its decode gives a RawPdu (header, body left undecoded);"
            " it cannot encode one."
        )
    if "aiosmpplib" in peers and res["status"].get("aiosmpplib") is None:
        notes.append("aiosmpplib keeps short_message as str: its encode/decode include GSM 03.38 text coding.")
    if "node-smpp" in peers and res["status"].get("node-smpp") is None:
        node_med = {k: med.get(k, {}).get("node-smpp") for k in NODE_EXTRA_OPS.values()}
        stock_pair = node_med.get("submit_sm.pair_filtered")
        notes.append(
            "node-smpp decodes with its presentation filters off (raw wire view, as ours); with its default"
            f" filters (text decoding, dates) decode is submit_sm {fmt_rate(node_med.get('submit_sm.decode_filtered'))}/s,"
            f" deliver_sm {fmt_rate(node_med.get('deliver_sm.decode_filtered'))}/s, and submit_sm encode+decode"
            f" {fmt_rate(stock_pair)} pairs/s (ours/node-smpp {fmt_ratio(ratio('submit_sm.pair', 'node-smpp', 'submit_sm.pair_filtered'))})."
        )
    if any(res["status"].get(p) is None for p in peers):
        notes.append("framer: peers have no buffer framer; theirs is a command_length split loop around their decode.")
    for name, why in res["status"].items():
        if why:
            notes.append(f"{name}: n/a: {why}")
    out.append("")
    out.extend(notes)
    return "\n".join(out), targets


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(f"codec bench: {msg}", file=sys.stderr, flush=True))
    before, cpu = pin(args.cpu)
    try:
        res = run(args, log)
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)
    table, targets = report(args, res)
    vers = ", ".join(f"{k} {v}" for k, v in res["versions"].items() if v)
    print(f"SMPP codec benchmark -- Python {platform.python_version()} ({platform.python_implementation()}), {vers}")
    print()
    print(table)
    res["targets"] = targets
    res["table"] = table
    if args.json:
        doc = {
            "benchmark": "codec",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu": cpu,
            "seconds": args.seconds,
            "repeat": args.repeat,
            "quick": args.quick,
            "operations": dict(OPS),
            **{k: res[k] for k in ("columns", "status", "versions", "median", "runs", "targets", "elapsed_s")},
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
