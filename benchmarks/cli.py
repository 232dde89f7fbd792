"""``smpphub bench``: arguments, validation (one-line errors, exit 2), summary, JSON, plot.

Every way a run can go wrong ends in one line on stderr naming the problem: exit 2
for a bad argument (found before anything is sent), 1 for a failure at run time
(the target cannot be reached, refuses the bind, a file cannot be written).
``--assert`` adds exit 3 (:data:`EXIT_ASSERTION`): the run went through and measured
something its checks do not accept, one line on stderr per failed check, so CI can
tell "the system got slower" from "the benchmark could not run".
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from typing import TYPE_CHECKING

import msgspec

from smppcore.config import ConfigError, parse_host_port

from .loadgen import BenchError, BenchResult, LoadOptions, Second, parse_mix, parse_ramp, run_bench
from .messages import MAX_MULTI_DESTS, parse_op_mix
from .slo import ASSERT_METRICS, SLO_METRICS, Objective, Verdict, check, parse_objectives

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "add_arguments", "run", "main", "summary", "plot", "figure", "rate_series", "RateSeries", "PLOT_SIZE", "PLOT_DPI",
    "Plan", "plan_from", "EXIT_ASSERTION",
]

#: Exit status when the run went through but an --assert check failed.
EXIT_ASSERTION = 3
#: --find-max defaults: the first step's rate, a step's length, the most steps, the highest rate asked.
FIND_MAX_START = 1000.0
FIND_MAX_STEP = 5.0
FIND_MAX_STEPS = 12
FIND_MAX_RATE = 1_000_000.0


class UsageError(Exception):
    pass


# Every value is parsed here rather than by argparse, so that a bad one is reported on
# one line (argparse would print the usage block too), under `smpphub bench` as well.


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", metavar="HOST:PORT", help="the SMPP server to drive (required)")
    p.add_argument("--system-id", help="bind system_id (required)")
    p.add_argument("--password", help="bind password (required)")
    p.add_argument("--system-type", default="", help="bind system_type, for SMSCs that ask for one (default empty)")
    p.add_argument("--bind", default="trx", metavar="{tx,trx}", help="bind type (default trx; receipts need trx)")
    p.add_argument("--binds", default="1", metavar="N", help="connections (default 1)")
    p.add_argument("--window", default="100", metavar="W", help="requests in flight per bind (default 100)")
    p.add_argument("--count", metavar="N", help="messages to send")
    p.add_argument("--duration", metavar="SECONDS", help="how long to send: 90, 90s, 2m, 500ms")
    p.add_argument("--rate", metavar="R", help="open loop: messages per second in total")
    p.add_argument("--ramp", metavar="FROM:TO:DURATION",
                   help="open loop: rate rising linearly, e.g. 1000:20000:60s, then held")
    p.add_argument("--workers", default="1", metavar="K",
                   help="processes sharing the binds, count and rate (default 1)")
    p.add_argument("--to", default="4477009{00000-99999}", help="destinations: PREFIX{FROM-TO} or a literal")
    p.add_argument("--to-file", metavar="FILE", help="destinations, one per line")
    p.add_argument("--from", dest="source", help="source addresses: a literal (default smpphub) or PREFIX{FROM-TO}")
    p.add_argument("--from-file", metavar="FILE", help="source addresses, one per line")
    p.add_argument("--op-mix", default="submit_sm:1", metavar="OP:WEIGHT,...",
                   help="operations and weights: submit_sm, submit_multi, data_sm "
                        "(e.g. submit_sm:8,submit_multi:1,data_sm:1)")
    p.add_argument("--multi-dests", default="2", metavar="N",
                   help=f"destinations of each submit_multi (default 2, at most {MAX_MULTI_DESTS})")
    p.add_argument("--text-mix", default="gsm:1", metavar="KIND:WEIGHT,...",
                   help="kinds and weights: gsm, ucs2, long (e.g. gsm:70,ucs2:20,long:10)")
    p.add_argument("--dlr", action="store_true", help="ask for receipts and measure their latency")
    p.add_argument("--tls", action="store_true", help="connect with TLS, verifying the server against the system's CAs")
    p.add_argument("--tls-ca", metavar="FILE", help="TLS, verifying the server against this CA file (PEM)")
    p.add_argument("--tls-insecure", action="store_true",
                   help="TLS without verifying the server (self-signed test SMSCs)")
    p.add_argument("--timeout", default="30", metavar="SECONDS",
                   help="a submit_sm unanswered this long counts as ResponseTimeout (default 30); "
                        "also bounds the connect and bind (at most 10)")
    p.add_argument("--receipt-wait", default="10", metavar="SECONDS",
                   help="most to wait for the last receipts (default 10)")
    p.add_argument("--json", metavar="PATH",
                   help="write every figure as JSON (schema: smpphub.bench.loadgen.BenchResult; "
                        "with --find-max smpphub.bench.findmax.SearchResult)")
    p.add_argument("--plot", metavar="PATH.png", help="plot rate and latency over time (needs matplotlib)")
    p.add_argument("--quiet", action="store_true",
                   help="no live progress (there is none when stderr is not a terminal)")
    p.add_argument("--slo", action="append", metavar="OBJECTIVES",
                   help="objectives each --find-max step must hold, e.g. 'p99<50ms,errors<0.1%%' "
                        f"(metrics: {', '.join(SLO_METRICS)})")
    p.add_argument("--find-max", action="store_true",
                   help=f"search for the highest open-loop rate holding --slo: steps of --duration (default "
                        f"{FIND_MAX_STEP:g}s) from --rate (default {FIND_MAX_START:g}/s), bracketing then bisecting")
    p.add_argument("--tolerance", default="5%", metavar="PERCENT",
                   help="--find-max stops when the highest rate that held and the lowest that did not are this close "
                        "(default 5%%)")
    p.add_argument("--max-steps", default=str(FIND_MAX_STEPS), metavar="N",
                   help=f"--find-max runs at most this many steps (default {FIND_MAX_STEPS})")
    p.add_argument("--max-rate", metavar="R",
                   help=f"--find-max asks at most this rate (default {FIND_MAX_RATE:,.0f}/s)")
    p.add_argument("--assert", dest="asserts", action="append", metavar="CHECKS",
                   help="checks that set the exit status, e.g. 'errors<0.1%%,p99<50ms,receipts>=100%%,rate>=900': "
                        f"exit {EXIT_ASSERTION} and one line per failed check (metrics: {', '.join(ASSERT_METRICS)}; "
                        "with --find-max only rate, the rate found)")


def _int(name: str, value: str | None, minimum: int = 1) -> int | None:
    if value is None:
        return None
    try:
        n = int(str(value).replace("_", ""))
    except ValueError:
        raise UsageError(f"--{name}: expected a whole number, got {value!r}") from None
    if n < minimum:
        raise UsageError(f"--{name} must be at least {minimum}, got {n}")
    return n


_UNITS = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0}


def _seconds(name: str, value: str | None, *, allow_zero: bool = False) -> float | None:
    if value is None:
        return None
    m = re.fullmatch(r"\s*(-?\d+(?:\.\d*)?|-?\.\d+)\s*(ms|s|m|h)?\s*", str(value))
    if not m:
        raise UsageError(f"--{name}: expected a duration like 60, 60s, 2m or 500ms, got {value!r}")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or ""]
    if seconds < 0 or (seconds == 0 and not allow_zero) or not math.isfinite(seconds):
        raise UsageError(f"--{name} must be {'zero or more' if allow_zero else 'positive'}, got {value!r}")
    return seconds


def options_from(args: argparse.Namespace) -> LoadOptions:
    for name in ("target", "system_id", "password"):
        if getattr(args, name, None) is None:
            raise UsageError(f"--{name.replace('_', '-')} is required")
    try:
        host, port = parse_host_port(args.target)
    except ConfigError as exc:
        raise UsageError(f"--target: {exc}") from None
    if len(args.system_type) > 12:
        raise UsageError(f"--system-type: at most 12 characters (SMPP 3.4), got {len(args.system_type)}")
    if args.bind not in ("tx", "trx"):
        raise UsageError(f"--bind: expected tx or trx, got {args.bind!r}")
    if args.dlr and args.bind == "tx":
        raise UsageError("--dlr needs --bind trx (a transmitter bind gets no receipts)")
    binds, window, workers = _int("binds", args.binds), _int("window", args.window), _int("workers", args.workers)
    if workers > binds:  # type: ignore[operator]
        raise UsageError(f"--workers ({workers}) cannot be more than --binds ({binds}): each worker needs a bind")
    count = _int("count", args.count)
    duration = _seconds("duration", args.duration)
    if count is None and duration is None:
        raise UsageError("give --count N or --duration SECONDS")
    if args.rate is not None and args.ramp is not None:
        raise UsageError("give --rate or --ramp, not both")
    rate = None
    if args.rate is not None:
        try:
            rate = float(args.rate)
        except ValueError:
            raise UsageError(f"--rate: expected messages per second, got {args.rate!r}") from None
        if not rate > 0 or not math.isfinite(rate):
            raise UsageError(f"--rate must be positive, got {args.rate!r}")
    receipt_wait = _seconds("receipt-wait", args.receipt_wait, allow_zero=True)
    timeout = _seconds("timeout", args.timeout)
    try:
        ramp = parse_ramp(args.ramp) if args.ramp is not None else None
        mix = parse_mix(args.text_mix)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.plot:
        _check_plot_format(args.plot)
    for name, path in (("json", args.json), ("plot", args.plot)):
        if path:
            _check_writable(name, path)
    if args.tls_ca and args.tls_insecure:
        raise UsageError("give --tls-ca or --tls-insecure, not both")
    if args.tls_ca and not os.path.isfile(args.tls_ca):
        raise UsageError(f"--tls-ca: no such file: {args.tls_ca}")
    _check_addresses("to", args.to, args.to_file)
    if args.source is not None and args.from_file:
        raise UsageError("give --from or --from-file, not both")
    source = args.source if args.source is not None else "smpphub"
    _check_addresses("from", source, args.from_file)
    try:
        ops = parse_op_mix(args.op_mix)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    multi_dests = _int("multi-dests", args.multi_dests)
    if multi_dests > MAX_MULTI_DESTS:  # type: ignore[operator]
        raise UsageError(f"--multi-dests: at most {MAX_MULTI_DESTS} (SMPP 3.4 submit_multi), got {multi_dests}")
    return LoadOptions(
        host=host, port=port, system_id=args.system_id, password=args.password, bind=args.bind,
        system_type=args.system_type,
        binds=binds, window=window, count=count, duration=duration, rate=rate, ramp=ramp,  # type: ignore[arg-type]
        workers=workers, to=args.to, to_file=args.to_file, source=source, source_file=args.from_file,  # type: ignore[arg-type]
        mix=mix, ops=ops, multi_dests=multi_dests, dlr=args.dlr,  # type: ignore[arg-type]
        receipt_wait=receipt_wait, response_timeout=timeout, tls=args.tls or bool(args.tls_ca) or args.tls_insecure,
        tls_ca=args.tls_ca, tls_insecure=args.tls_insecure, progress=not args.quiet and sys.stderr.isatty(),  # type: ignore[arg-type]
    )


def _check_addresses(flag: str, pattern: str, file: str | None) -> None:
    """An address pattern or file that cannot be used is refused before the run."""
    from .messages import AddressPattern

    try:
        AddressPattern(pattern, file)
    except OSError as exc:
        raise UsageError(f"--{flag}-file: {exc.strerror}: {file}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"--{flag}{'-file' if file else ''}: {exc}") from None


class Plan(msgspec.Struct, kw_only=True):
    """What the command line asks for: one run (``options``), or a ``--find-max`` search
    over runs like it, and the ``--slo`` objectives and ``--assert`` checks."""

    options: LoadOptions
    slo: list[Objective] = []
    checks: list[Objective] = []
    find_max: bool = False
    tolerance: float = 0.05
    max_steps: int = FIND_MAX_STEPS
    max_rate: float = FIND_MAX_RATE


def _objectives(values: list[str] | None, allowed: tuple[str, ...], flag: str) -> list[Objective]:
    out: list[Objective] = []
    for value in values or []:
        try:
            out += parse_objectives(value, allowed, flag)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return out


def _fraction(name: str, value: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(%?)\s*", value)
    if not m:
        raise UsageError(f"--{name}: expected a percentage like 5%, got {value!r}")
    fraction = float(m.group(1)) / (100 if m.group(2) else 1)
    if not 0 < fraction <= 0.5:
        raise UsageError(f"--{name} must be above 0% and at most 50%, got {value!r}")
    return fraction


def _rate(name: str, value: str) -> float:
    try:
        rate = float(value.replace("_", ""))
    except ValueError:
        raise UsageError(f"--{name}: expected messages per second, got {value!r}") from None
    if not rate > 0 or not math.isfinite(rate):
        raise UsageError(f"--{name} must be positive, got {value!r}")
    return rate


def _needs_dlr(objectives: list[Objective], flag: str, opts: LoadOptions) -> None:
    """Receipt objectives without receipts asked for could never hold: refused now."""
    wants = next((o for o in objectives if o.metric.startswith("receipt")), None)
    if wants is not None and not opts.dlr:
        raise UsageError(f"{flag} {wants.text}: {wants.metric} needs --dlr (without it no receipt is asked for)")


def plan_from(args: argparse.Namespace) -> Plan:
    """The whole command line, checked: every problem a :class:`UsageError` of one line."""
    slo = _objectives(args.slo, SLO_METRICS, "--slo")
    checks = _objectives(args.asserts, ASSERT_METRICS, "--assert")
    if not args.find_max:
        for flag, given in (("--tolerance", args.tolerance != "5%"), ("--max-rate", args.max_rate is not None),
                            ("--max-steps", args.max_steps != str(FIND_MAX_STEPS))):
            if given:
                raise UsageError(f"{flag} is for --find-max")
        opts = options_from(args)
        _needs_dlr(slo, "--slo", opts)
        _needs_dlr(checks, "--assert", opts)
        return Plan(options=opts, slo=slo, checks=checks)
    if not slo:
        raise UsageError("--find-max needs --slo: the objectives each rate must hold, "
                         "e.g. --slo 'p99<50ms,errors<0.1%'")
    for flag, given in (("--count", args.count), ("--ramp", args.ramp)):
        if given is not None:
            raise UsageError(f"--find-max runs steps of --duration, each at its own rate: {flag} does not apply")
    wrong = [c.text for c in checks if c.metric != "rate"]
    if wrong:
        raise UsageError(f"--assert {wrong[0]}: with --find-max only rate can be checked (the highest rate found)")
    if args.plot:
        raise UsageError("--plot draws one run; with --find-max each step is a run of its own (use --json)")
    max_steps = _int("max-steps", args.max_steps, minimum=2)
    if max_steps > 100:  # type: ignore[operator]
        raise UsageError(f"--max-steps: at most 100, got {max_steps}")
    max_rate = _rate("max-rate", args.max_rate) if args.max_rate is not None else FIND_MAX_RATE
    start = _rate("rate", args.rate) if args.rate is not None else min(FIND_MAX_START, max_rate)
    if start > max_rate:
        raise UsageError(f"--rate ({start:g}, where the search starts) is above --max-rate ({max_rate:g})")
    step = args.duration if args.duration is not None else f"{FIND_MAX_STEP:g}"
    opts = options_from(argparse.Namespace(**{**vars(args), "duration": step, "rate": str(start)}))
    _needs_dlr(slo, "--slo", opts)
    return Plan(options=opts, slo=slo, checks=checks, find_max=True, tolerance=_fraction("tolerance", args.tolerance),
                max_steps=max_steps, max_rate=max_rate)  # type: ignore[arg-type]


def _check_plot_format(path: str) -> None:
    """The plot's format comes from its file name: refused now rather than after the run."""
    try:
        import matplotlib  # noqa: F401 - first: the submodule may be loaded when matplotlib itself cannot be
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise UsageError("--plot needs matplotlib, which is not installed (pip install 'smpphub[plot]')") from None
    known = FigureCanvasBase.get_supported_filetypes()
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext not in known:
        raise UsageError(f"--plot: the file name must end in one of .{', .'.join(sorted(known))}, got {path!r}")


def _check_writable(name: str, path: str) -> None:
    """A result file that cannot be written is found before the run, not after it."""
    if os.path.isdir(path):
        raise UsageError(f"--{name}: is a directory: {path}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"--{name}: no such directory: {folder}")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"--{name}: permission denied: {path}")


def _ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def summary(result: BenchResult) -> str:
    """The table printed at the end of a run."""
    o = result.options
    if result.mode == "open":
        how = (f"open loop at {o.rate:g}/s" if o.rate
               else f"open loop, ramp {o.ramp[0]:g} -> {o.ramp[1]:g}/s over {o.ramp[2]:g}s")
    else:
        how = "closed loop"
    head = (f"smpphub bench -> {o.host}:{o.port}: {how}, {o.binds} bind(s) x window {o.window}"
            f"{f', {o.workers} workers' if o.workers > 1 else ''}")
    rows = [
        ("messages", f"{result.messages:,}" + (f" ({result.sent:,} PDUs)" if result.sent != result.messages else "")
                     + (f" to {result.recipients:,} recipients" if result.recipients > result.messages else "")),
    ]
    if set(result.ops) - {"submit_sm"}:
        multi = f" of {o.multi_dests} destinations" if "submit_multi" in result.ops else ""
        rows.append(("operations", ", ".join(f"{op} {n:,}" + (multi if op == "submit_multi" else "")
                                             for op, n in result.ops.items())))
    rows += [
        ("sent", f"{result.sent:,} PDUs in {result.duration:.2f} s"),
        ("submits/s", f"{result.submit_rate:,.0f}"
                      + (f" (sent at {result.send_rate:,.0f}/s)" if result.mode == "open" else "")),
        ("acked", f"{result.acked:,}"),
        ("errors", f"{sum(result.errors.values()):,}"
                   + (" (" + ", ".join(f"{k} {v:,}" for k, v in sorted(result.errors.items())) + ")"
                      if result.errors else "")),
        ("throttled", f"{result.throttled:,}"),
        ("reconnects", f"{result.reconnects:,}"),
    ]
    if o.dlr:
        rows += [
            ("receipts", f"{result.receipts:,} of {result.receipts_expected:,}"
                         + (f", {result.duplicate_receipts:,} duplicate" if result.duplicate_receipts else "")
                         + (f", {result.unmatched_receipts:,} for other messages"
                            if result.unmatched_receipts else "")),
            ("receipts/s", f"{result.receipt_rate:,.0f}"),
        ]
    cpu = result.generator_cpu
    if cpu:
        span = result.duration + result.receipt_wait
        rows.append(("generator CPU", f"{cpu:.2f} s"
                     + (f", {cpu / result.messages * 1e6:,.1f} µs per message" if result.messages else "")
                     + (f" ({cpu / span:.0%} of a core)" if span > 0 else "")))
    width = max(len(k) for k, _ in rows)
    lines = [head, ""] + [f"  {k:<{width}}  {v}" for k, v in rows]
    lat = [("submit_sm -> resp", result.latency_us)]
    if result.mode == "open" and result.service_us:
        lat.append(("  from the write", result.service_us))
    if result.mode == "open" and result.send_lag_us:
        lat.append(("due -> written", result.send_lag_us))
    if o.dlr:
        lat.append(("submit -> receipt", result.receipt_latency_us))
    cols = ("p50", "p90", "p99", "p99.9", "max", "mean")
    keys = ("p50", "p90", "p99", "p999", "max", "mean")
    label_w = max(len(name) for name, _ in lat) + 3
    lines += ["", f"  {'latency, ms':<{label_w}}" + "".join(f"{c:>10}" for c in cols) + f"{'count':>10}"]
    for name, figures in lat:
        if figures.get("count"):
            cells = "".join(f"{_ms(figures[k]):>10}" for k in keys)
            lines.append(f"  {name:<{label_w}}" + cells + f"{figures['count']:>10,}")
        else:
            lines.append(f"  {name:<{label_w}}" + f"{'-':>10}" * len(cols) + f"{0:>10}")
    return "\n".join(lines)


#: A last second shorter than this is folded into the second before it: the rate of a
#: sliver of a second is mostly noise.
MIN_PARTIAL = 0.1
#: The plot's size in inches (width, height per panel) and its resolution.
PLOT_SIZE = (10.0, 3.5)
PLOT_DPI = 100


class RateSeries(msgspec.Struct):
    """A count per second as a rate: ``t`` the seconds since the start, ``per_second`` the rate in each."""

    t: list[int]
    per_second: list[float]


def rate_series(seconds: list[int], counts: list[int], end: float) -> RateSeries:
    """The rate in each second of a series that ends ``end`` seconds after the start.

    A second is a count over the part of it the run covered: the last one, cut short
    at ``end``, is not a whole second, and drawing its count as one would show a dip
    that never happened. A last part shorter than :data:`MIN_PARTIAL` is added to the
    second before it (a run that short on its own is drawn as it is).
    """
    t: list[int] = []
    totals: list[float] = []
    spans: list[float] = []
    for second, count in zip(seconds, counts, strict=True):
        span = min(1.0, end - second)
        if span < MIN_PARTIAL and t and t[-1] == second - 1:
            totals[-1] += count
            spans[-1] += max(span, 0.0)
            continue
        t.append(second)
        totals.append(count)
        spans.append(max(span, 0.001))
    return RateSeries(t=t, per_second=[total / span for total, span in zip(totals, spans, strict=True)])


def _latency_panel(ax: Axes, timeline: list[Second], fields: dict[str, str], label: str) -> None:
    """Percentiles per second (log scale, ms) of the seconds that have any."""
    has = [s for s in timeline if getattr(s, fields["max"])]
    for name, attr in fields.items():
        ax.plot([s.t for s in has], [max(getattr(s, attr), 1) / 1000 for s in has], marker=".", label=name)
    ax.set_yscale("log")
    ax.set_ylabel(label)
    ax.legend(loc="best")


def plot(result: BenchResult, path: str) -> None:
    """Draw the run (:func:`figure`) into ``path``, its format from the file name."""
    import matplotlib.pyplot as plt

    fig = figure(result)
    try:
        fig.savefig(path)
    finally:
        plt.close(fig)


def figure(result: BenchResult) -> Figure:
    """Rates per second, and latency percentiles per second (log scale): submit_sm ->
    resp, and with receipts submit -> receipt in a panel of its own. The caller closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = result.timeline
    t = [s.t for s in tl]
    dlr = result.options.dlr
    panels = 3 if dlr else 2
    fig, axes = plt.subplots(panels, 1, sharex=True, figsize=(PLOT_SIZE[0], PLOT_SIZE[1] * panels), dpi=PLOT_DPI)
    rates = axes[0]
    end = result.duration
    series = [("sent/s", [s.sent for s in tl], end), ("acked/s", [s.acked for s in tl], end)]
    if any(s.errors for s in tl):
        series.append(("errors/s", [s.errors for s in tl], end))
    if dlr:
        series.append(("receipts/s", [s.receipts for s in tl], end + result.receipt_wait))
    for label, counts, until in series:
        r = rate_series(t, counts, until)
        rates.plot(r.t, r.per_second, marker=".", label=label)
    if result.mode == "open":
        rates.plot(t, [s.target_rate for s in tl], "--", color="grey", label="asked (messages/s)")
    rates.set_ylabel("per second")
    rates.set_title(f"smpphub bench -> {result.options.host}:{result.options.port}")
    rates.legend(loc="best")
    _latency_panel(axes[1], tl, {"p50": "p50_us", "p90": "p90_us", "p99": "p99_us", "max": "max_us"},
                   "submit_sm -> resp (ms)")
    if dlr:
        _latency_panel(axes[2], tl, {"p50": "receipt_p50_us", "p90": "receipt_p90_us", "p99": "receipt_p99_us",
                                     "max": "receipt_max_us"}, "submit -> receipt (ms)")
    axes[-1].set_xlabel("seconds since start")
    fig.tight_layout()
    return fig


def _say(line: str) -> None:
    print(f"smpphub bench: {line}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    try:
        plan = plan_from(args)
    except UsageError as exc:
        _say(str(exc))
        return 2
    try:
        return _search(plan, args) if plan.find_max else _once(plan, args)
    except BenchError as exc:  # the target cannot be reached, refuses the bind, goes away for good
        _say(str(exc))
    except (OSError, TimeoutError) as exc:
        _say(f"cannot drive {args.target}: {exc or type(exc).__name__}")
    except Exception as exc:  # noqa: BLE001 - a failure nobody foresaw: still one line
        _say(f"{type(exc).__name__}: {exc}")
    return 1


def _once(plan: Plan, args: argparse.Namespace) -> int:
    """One run: its summary, the --slo verdicts, the files, then the --assert checks."""
    result = run_bench(plan.options)
    print(summary(result))
    if plan.slo:
        print("\n  objectives (--slo)")
        for v in check(plan.slo, result):
            print(f"    {'holds' if v.passed else 'FAILS'}  {v.line()}")
    if not _write_json(args.json, result):
        return 1
    if args.plot:
        try:
            plot(result, args.plot)
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            _say(f"--plot: cannot write {args.plot}: {why}")
            return 1
    return _asserted(check(plan.checks, result))


def _search(plan: Plan, args: argparse.Namespace) -> int:
    """A --find-max search: the table of its steps as they go, what it found, the --assert checks on that."""
    from .findmax import Search, conclusion, find_max
    from .slo import Verdict

    o = plan.options
    print(f"smpphub bench --find-max -> {o.host}:{o.port}: {','.join(x.text for x in plan.slo)}, "
          f"steps of {o.duration:g}s from {o.rate:,.0f}/s, {o.binds} bind(s) x window {o.window}\n", flush=True)
    search = Search(o.rate or FIND_MAX_START, tolerance=plan.tolerance, max_steps=plan.max_steps,
                    max_rate=plan.max_rate)
    result = find_max(o, plan.slo, search)
    print(f"\n{conclusion(result)}")
    if not _write_json(args.json, result):
        return 1
    found = result.found
    return _asserted([Verdict(c, found, found is not None and c.holds(found)) for c in plan.checks])


def _write_json(path: str | None, result: msgspec.Struct) -> bool:
    if not path:
        return True
    try:
        with open(path, "wb") as f:
            f.write(msgspec.json.format(msgspec.json.encode(result)))
    except OSError as exc:
        _say(f"--json: cannot write {path}: {exc.strerror or exc}")
        return False
    return True


def _asserted(verdicts: list[Verdict]) -> int:
    """One line on stderr per failed --assert check; the exit status."""
    failed = [v for v in verdicts if not v.passed]
    for v in failed:
        _say(f"assertion failed: {v.line()}")
    if verdicts and not failed:
        print(f"\n--assert: all {len(verdicts)} checks hold")
    return EXIT_ASSERTION if failed else 0


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line on one line (exit 2), like every other bad argument."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message}\n")


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="smpphub bench", description="Load generator for any SMPP server.")
    add_arguments(p)
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # --help, or a command line argparse could not read
        return exc.code if isinstance(exc.code, int) else 2
    return run(args)


if __name__ == "__main__":
    import smppcore

    smppcore.quiet_gc()  # a process of its own (the hub benchmarks run it so): its latency figures without GC pauses
    sys.exit(main())
