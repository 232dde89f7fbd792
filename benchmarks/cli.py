"""``smpphub bench``: arguments, validation (one-line errors, exit 2), summary, JSON, plot."""

from __future__ import annotations

import argparse
import sys

import msgspec

from .loadgen import LoadOptions, parse_mix, parse_ramp, run_bench

__all__ = ["add_arguments", "run", "main"]


class UsageError(Exception):
    pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", required=True, metavar="HOST:PORT")
    p.add_argument("--system-id", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--bind", choices=("tx", "trx"), default="trx")
    p.add_argument("--binds", type=int, default=1, help="connections (default 1)")
    p.add_argument("--window", type=int, default=100, help="requests in flight per bind (default 100)")
    p.add_argument("--count", type=int, help="messages to send")
    p.add_argument("--duration", type=float, help="seconds to run")
    p.add_argument("--rate", type=float, help="open loop: messages per second in total")
    p.add_argument("--ramp", help="open loop: FROM:TO:DURATION, e.g. 1000:20000:60s")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the binds (default 1)")
    p.add_argument("--to", default="4477009{00000-99999}", help="destinations: PREFIX{FROM-TO} or a literal")
    p.add_argument("--to-file", help="destinations, one per line")
    p.add_argument("--from", dest="source", default="smpphub", help="source address")
    p.add_argument("--text-mix", default="gsm:1", help="kinds and weights: gsm, ucs2, long (e.g. gsm:70,ucs2:20,long:10)")
    p.add_argument("--dlr", action="store_true", help="ask for receipts and measure their latency")
    p.add_argument("--receipt-wait", type=float, default=10.0, help="seconds to wait for the last receipts")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    p.add_argument("--plot", metavar="PATH.png", help="plot rate and latency over time (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no live progress")


def options_from(args: argparse.Namespace) -> LoadOptions:
    host, sep, port = args.target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--target: expected HOST:PORT, got {args.target!r}")
    for name in ("binds", "window", "workers"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1")
    if args.count is None and args.duration is None:
        raise UsageError("give --count or --duration")
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1")
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be positive")
    if args.rate is not None and args.ramp is not None:
        raise UsageError("give --rate or --ramp, not both")
    if args.rate is not None and not args.rate > 0:
        raise UsageError("--rate must be positive")
    try:
        ramp = parse_ramp(args.ramp) if args.ramp else None
        mix = parse_mix(args.text_mix)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib (pip install 'smpphub[plot]')") from None
    if args.to_file:
        try:
            open(args.to_file).close()
        except OSError as exc:
            raise UsageError(f"--to-file: {exc.strerror}: {args.to_file}") from None
    else:
        from .loadgen import DestinationPattern

        try:
            DestinationPattern(args.to)
        except ValueError as exc:
            raise UsageError(f"--to: {exc}") from None
    return LoadOptions(
        host=host.strip("[]"), port=int(port), system_id=args.system_id, password=args.password, bind=args.bind,
        binds=args.binds, window=args.window, count=args.count, duration=args.duration, rate=args.rate, ramp=ramp,
        workers=args.workers, to=args.to, to_file=args.to_file, source=args.source, mix=mix, dlr=args.dlr,
        receipt_wait=args.receipt_wait, progress=not args.quiet and sys.stderr.isatty(),
    )


def summary(result) -> str:
    lat, rl = result.latency_us, result.receipt_latency_us
    rows = [
        ("sent", f"{result.sent:,}"),
        ("acked", f"{result.acked:,}"),
        ("errors", ", ".join(f"{k} {v:,}" for k, v in sorted(result.errors.items())) or "0"),
        ("throttled", f"{result.throttled:,}"),
        ("reconnects", f"{result.reconnects:,}"),
        ("duration", f"{result.duration:.2f} s"),
        ("submits/s", f"{result.submit_rate:,.0f}"),
        ("submit->resp ms", f"p50 {lat['p50'] / 1000:.2f}  p90 {lat['p90'] / 1000:.2f}  p99 {lat['p99'] / 1000:.2f}  "
                            f"p99.9 {lat['p999'] / 1000:.2f}  max {lat['max'] / 1000:.2f}"),
    ]
    if result.options.dlr:
        rows += [
            ("receipts", f"{result.receipts:,}"),
            ("receipts/s", f"{result.receipt_rate:,.0f}"),
            ("submit->receipt ms", f"p50 {rl['p50'] / 1000:.2f}  p99 {rl['p99'] / 1000:.2f}  max {rl['max'] / 1000:.2f}"),
        ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}} | {v}" for k, v in rows)


def plot(result, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t for s in result.timeline]
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    ax1.plot(t, [s.acked for s in result.timeline], label="acked/s")
    ax1.plot(t, [s.errors for s in result.timeline], label="errors/s")
    ax1.set_ylabel("messages per second")
    ax1.legend()
    ax2.plot(t, [s.p50_us / 1000 for s in result.timeline], label="p50")
    ax2.plot(t, [s.p99_us / 1000 for s in result.timeline], label="p99")
    ax2.set_ylabel("submit_sm -> resp (ms)")
    ax2.set_xlabel("seconds")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path)


def run(args: argparse.Namespace) -> int:
    try:
        opts = options_from(args)
    except UsageError as exc:
        print(f"smpphub bench: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_bench(opts)
    except (OSError, TimeoutError) as exc:
        print(f"smpphub bench: cannot drive {args.target}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a refused bind and the like, said on one line
        print(f"smpphub bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(summary(result))
    if args.json:
        with open(args.json, "wb") as f:
            f.write(msgspec.json.format(msgspec.json.encode(result)))
    if args.plot:
        plot(result, args.plot)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="smpphub bench", description="Load generator for any SMPP server.")
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
