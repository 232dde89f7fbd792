"""The load generator behind ``smpphub bench``: drive any SMPP server and measure it.

Closed loop sends as fast as the windows allow. Open loop sends on a schedule
(a fixed rate, or a ramp from one rate to another), and measures each latency
from the moment the message was *due*, not from when it could finally be sent:
a server that stalls is charged for every message that had to wait, so the
percentiles do not suffer from coordinated omission.

It measures submits per second, submit_sm -> submit_sm_resp latency, receipt
latency (submit to receipt, matched by message_id), errors by command_status,
throttling and reconnects, per second and in total. Several worker processes
split the binds, the count and the rate when one core cannot drive the target.

This module holds the options, the result's schema, the schedule and the merging
of the workers' results; what is sent is prepared in ``benchmarks.messages``, a
worker process is ``smpphub.bench.worker`` and its binds ``smpphub.bench.bulk`` (the
lean submit_sm lane that keeps the generator faster than what it measures).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import platform
import re
import sys
import time
from typing import Any

import msgspec

from .histogram import Histogram, HistogramData
from .messages import MIX_KINDS, DestinationPattern, parse_mix
from .receipt_book import stem_of
from .worker import BenchError, ReceiptTally, SecondPart, Tick, Worker, worker_process

__all__ = [
    "LoadOptions", "BenchResult", "Second", "run_bench", "parse_ramp", "parse_mix", "DestinationPattern", "BenchError",
    "Progress", "Schedule", "Tick", "MIX_KINDS",
]

#: how many ids :class:`BenchResult` lists of receipts that never came and of receipts matched to nothing
_IDS_SHOWN = 20
#: at most this many unreceipted ids are listed: a soak counts its losses by id against the hub's store
_UNRECEIPTED_LISTED = 10_000


class LoadOptions(msgspec.Struct, kw_only=True):
    host: str
    port: int
    system_id: str
    password: str
    bind: str = "trx"
    system_type: str = ""
    binds: int = 1
    window: int = 100
    count: int | None = None
    duration: float | None = None
    rate: float | None = None  # open loop, messages/s in total
    ramp: tuple[float, float, float] | None = None  # (from rate, to rate, seconds)
    workers: int = 1
    to: str = "4477009{00000-99999}"
    to_file: str | None = None
    source: str = "smpphub"  # a literal or a pattern like destinations: 4477{0000-9999}
    source_file: str | None = None  # source addresses, one per line
    mix: dict[str, float] = msgspec.field(default_factory=lambda: {"gsm": 1.0})
    ops: dict[str, float] = msgspec.field(default_factory=lambda: {"submit_sm": 1.0})  # operation -> weight
    multi_dests: int = 2  # destinations of each submit_multi
    dlr: bool = False
    receipt_wait: float = 10.0  # seconds to wait for outstanding receipts at the end
    response_timeout: float = 30.0  # a submit_sm unanswered this long counts as ResponseTimeout
    tls: bool = False
    tls_ca: str | None = None  # CA file to verify the server with (default: the system's)
    tls_insecure: bool = False  # TLS without verifying the server (test SMSCs with self-signed certificates)
    progress: bool = True


class Second(msgspec.Struct):
    """One second of the run (``t`` seconds after the start), all workers together.

    ``sent``: submit_sm written; ``acked``/``errors``: responses (and failures) that
    came back in that second; ``p*_us``: their latency (0 when none came back);
    ``target_rate``: what the open-loop schedule asked for in that second (None in
    closed loop). ``receipt_p*_us``: submit -> receipt latency of the receipts that
    came in that second and were matched to their submit_sm (0 when none).
    """

    t: int
    sent: int
    acked: int
    errors: int
    receipts: int
    p50_us: int
    p99_us: int
    p90_us: int = 0
    max_us: int = 0
    throttled: int = 0
    target_rate: float | None = None
    receipt_p50_us: int = 0
    receipt_p90_us: int = 0
    receipt_p99_us: int = 0
    receipt_max_us: int = 0


class BenchResult(msgspec.Struct):
    """Everything a run measured (this is the JSON file's schema).

    Times are seconds, latencies microseconds. ``options`` are the run's options
    with the password blanked. ``latency_us`` (p50/p90/p99/p999/max/mean/min/count)
    is submit_sm -> submit_sm_resp, measured from the moment each message was due
    in open loop (no coordinated omission) and from its write in closed loop;
    ``service_us`` always from the write. ``errors`` counts responses by
    command_status name plus requests that got none (``ResponseTimeout``,
    ``ConnectionClosed``), so ``sent == acked + sum(errors.values())``.
    ``messages`` counts messages (a long one once, a submit_multi once), ``recipients``
    the handsets they went to (a submit_multi's destinations each), ``ops`` the
    messages by operation (submit_sm, submit_multi, data_sm).
    ``receipts`` counts final receipts (the first one per message id and handset);
    ``receipts_expected`` how many the acked requests owe (one each, a submit_multi one
    per destination its response did not list as unsuccessful);
    ``receipt_latency_us`` those matched to a submit of this run by message_id, from
    the same start as ``latency_us`` to the receipt's arrival (per second in the
    timeline's ``receipt_p*_us``); at most ``receipt_book.TRACKED_RECEIPTS`` ids are held
    per kind, so a receipt whose id was forgotten counts in ``unmatched_receipts``.
    ``first_send``/``last_send`` are seconds from the start, ``send_rate`` the rate
    achieved between them; ``send_lag_us`` (open loop) how late after its due time
    each message was written: the generator's own accuracy, queueing behind a full
    window included. ``generator_cpu``: CPU seconds the generator's workers spent
    from the start of sending to the end of the run (set-up and binds left out):
    over ``duration`` it says how busy the generator itself was.
    """

    options: LoadOptions
    environment: dict[str, Any]
    started_at: float
    duration: float
    sent: int
    acked: int
    errors: dict[str, int]
    throttled: int
    reconnects: int
    receipts: int
    duplicate_receipts: int
    submit_rate: float
    receipt_rate: float
    latency_us: dict[str, float]
    receipt_latency_us: dict[str, float]
    latency_histogram: HistogramData
    receipt_histogram: HistogramData
    timeline: list[Second]
    mode: str = "closed"
    messages: int = 0
    first_send: float = 0.0
    last_send: float = 0.0
    send_rate: float = 0.0
    service_us: dict[str, float] = {}
    service_histogram: HistogramData | None = None
    unmatched_receipts: int = 0
    #: acked ids (normalised) whose receipts never came: how many, and the first ``_UNRECEIPTED_LISTED``
    #: of them; and a few receipts matched to no id: what to look for in the hub's store and logs
    #: when a run's count does not add up
    unreceipted: int = 0
    unreceipted_ids: list[str] = []
    unmatched_ids: list[str] = []
    #: acks that carried an id an earlier ack of the run still owed a receipt for: two messages
    #: under one id, which a correct server never answers
    reused_ids: int = 0
    receipt_wait: float = 0.0
    send_lag_us: dict[str, float] = {}
    generator_cpu: float = 0.0
    recipients: int = 0
    ops: dict[str, int] = {}
    receipts_expected: int = 0


# --- the schedule ----------------------------------------------------------------------


def parse_ramp(value: str) -> tuple[float, float, float]:
    """``1000:20000:60s`` -> (1000, 20000, 60)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?):(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)(s|m)?\s*", value)
    if not m:
        raise ValueError(f"bad --ramp {value!r}: expected FROM:TO:DURATION like 1000:20000:60s")
    start, end, seconds = float(m.group(1)), float(m.group(2)), float(m.group(3)) * (60 if m.group(4) == "m" else 1)
    if seconds <= 0 or end <= 0:
        raise ValueError(f"bad --ramp {value!r}: the duration and the final rate must be positive")
    return start, end, seconds


class Schedule:
    """When the i-th message is due, in seconds from the start (open loop)."""

    def __init__(self, rate: float | None, ramp: tuple[float, float, float] | None) -> None:
        self.rate = rate
        self.ramp = ramp

    @classmethod
    def for_options(cls, opts: LoadOptions, share: float = 1.0) -> Schedule | None:
        """The schedule ``opts`` ask for (None in closed loop), scaled to ``share`` of the
        run (a worker's part of the binds)."""
        if opts.rate:
            return cls(opts.rate * share, None)
        if opts.ramp:
            start, end, span = opts.ramp
            return cls(None, (start * share, end * share, span))
        return None

    def due(self, i: int) -> float:
        if self.ramp is None:
            return i / self.rate  # type: ignore[operator]
        a, b, span = self.ramp
        slope = (b - a) / span
        ramp_total = (a + b) / 2 * span  # messages sent during the ramp
        if i >= ramp_total:
            return span + (i - ramp_total) / b
        if slope == 0:
            return i / a
        # i = a t + slope t^2 / 2
        return (-a + math.sqrt(a * a + 2 * slope * i)) / slope

    def rate_at(self, t: float) -> float:
        """The rate asked for ``t`` seconds after the start."""
        if self.ramp is None:
            return float(self.rate)  # type: ignore[arg-type]
        a, b, span = self.ramp
        return a + (b - a) * t / span if t < span else b

    def count_for(self, duration: float) -> int:
        if self.ramp is None:
            return int(self.rate * duration)  # type: ignore[operator]
        a, b, span = self.ramp
        if duration <= span:
            slope = (b - a) / span
            return int(a * duration + slope * duration * duration / 2)
        return int((a + b) / 2 * span + b * (duration - span))


class Progress:
    """The live line on stderr: rate, p99 and errors of the last second, elapsed/remaining."""

    def __init__(self, opts: LoadOptions, workers: int = 1, stream: Any = None) -> None:
        self.opts = opts
        self.workers = workers
        self.stream = stream if stream is not None else sys.stderr
        self._ticks: dict[int, list[Tick]] = {}
        self.shown = False

    def add(self, tick: Tick) -> None:
        """One worker's tick; the line is shown once every worker's is in for that second."""
        ticks = self._ticks.setdefault(tick.second, [])
        ticks.append(tick)
        if len(ticks) >= self.workers:
            del self._ticks[tick.second]
            for old in [s for s in self._ticks if s < tick.second]:
                del self._ticks[old]
            self.show(ticks)

    def show(self, ticks: list[Tick]) -> None:
        o = self.opts
        hist = Histogram()
        for t in ticks:
            if t.hist is not None:
                hist.merge(Histogram.from_data(t.hist))
        elapsed = ticks[0].second + 1
        rate = sum(t.sent for t in ticks)
        sent = sum(t.sent_total for t in ticks)
        errors = sum(t.errors_total for t in ticks)
        receipts = sum(t.receipts_total for t in ticks)
        p99 = f"{hist.percentile(99) / 1000:7.2f} ms" if hist.total else "      - ms"
        if o.duration:
            where = f"{elapsed:>4}s / {o.duration:g}s, {max(0.0, o.duration - elapsed):.0f}s left"
        elif o.count:
            eta = f", ~{(o.count - sent) / rate:.0f}s left" if rate and sent < o.count else ""
            where = f"{elapsed:>4}s, {sent:,}/{o.count:,} sent{eta}"
        else:  # pragma: no cover - options always have one
            where = f"{elapsed:>4}s"
        line = f"{where}  {rate:>8,} msg/s  p99 {p99}  errors {errors:,}"
        if o.dlr:
            line += f"  receipts {receipts:,}"
        self.stream.write(f"\r\x1b[2K{line}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


# --- the run -------------------------------------------------------------------------------------


def _environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    import smppcore.runtime as runtime

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        ours = version("smpphub")
    except PackageNotFoundError:
        ours = "unknown"
    return {
        "python": platform.python_version(), "implementation": platform.python_implementation(), "smpphub": ours,
        "cpu": cpu or platform.processor(), "cpus": os.cpu_count(), "platform": platform.platform(),
        "uvloop": runtime.uvloop_enabled(), "msgspec": msgspec.__version__,
    }


def run_bench(opts: LoadOptions) -> BenchResult:
    """Run the load as ``opts`` say (in ``opts.workers`` processes) and merge the results.

    With one worker everything runs in this process, on its own event loop (call it
    from synchronous code). Several workers are spawned processes; each binds its
    share of the binds, they all start at once (a barrier), and each sends its share of
    the count and of the rate. Live progress goes to stderr when ``opts.progress``.
    """
    if opts.count is None and opts.duration is None:
        raise ValueError("give --count or --duration")
    workers = max(1, min(opts.workers, opts.binds))
    binds = [opts.binds // workers + (1 if i < opts.binds % workers else 0) for i in range(workers)]
    counts = [None] * workers if opts.count is None else [opts.count * b // opts.binds for b in binds]
    if opts.count is not None:
        counts[0] += opts.count - sum(counts)  # type: ignore[operator]
    shares = [b / opts.binds for b in binds]
    started = time.time()
    progress = Progress(opts, workers) if opts.progress else None
    try:
        if workers == 1:
            import smppcore

            worker = Worker(opts, counts[0], 1.0, 1, report=progress.add if progress else None)
            parts = [smppcore.run(worker.run())]
        else:
            parts = _run_processes(opts, workers, binds, counts, shares, progress)
    finally:
        if progress is not None:
            progress.close()
    return _merge(opts, parts, started)


def _run_processes(opts: LoadOptions, workers: int, binds: list[int], counts: list, shares: list[float],
                   progress: Progress | None) -> list[dict]:
    import queue as queue_module

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    barrier = ctx.Barrier(workers)
    tally = ReceiptTally(ctx, workers) if opts.dlr else None
    procs = []
    for i in range(workers):
        o = msgspec.structs.replace(opts, binds=binds[i])
        p = ctx.Process(target=worker_process,
                        args=(i, msgspec.to_builtins(o), counts[i], shares[i], i + 1, barrier, queue, tally),
                        name=f"smpphub-bench-{i}", daemon=True)
        p.start()
        procs.append(p)
    results: dict[int, dict] = {}
    failures: dict[int, tuple[str, str]] = {}
    silent_exits: dict[int, int] = {}
    try:
        while len(results) + len(failures) < workers:
            try:
                msg = queue.get(timeout=0.5)
            except queue_module.Empty:
                for i, p in enumerate(procs):
                    if i in results or i in failures or p.exitcode is None:
                        continue
                    silent_exits[i] = silent_exits.get(i, 0) + 1
                    if silent_exits[i] > 4:  # gone for two seconds without a word
                        failures[i] = ("other", f"worker {i} exited with status {p.exitcode}")
                        barrier.abort()
                continue
            if msg[0] == "tick":
                if progress is not None:
                    progress.add(msg[2])
            elif msg[0] == "result":
                results[msg[1]] = msg[2]
            else:
                failures[msg[1]] = (msg[2], msg[3])
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
                p.join(5)
    if failures:
        # the first cause, not the other workers' "another worker failed"
        _, text = next((f for f in failures.values() if f[0] != "broken"), next(iter(failures.values())))
        raise BenchError(text)
    return [results[i] for i in range(workers)]


def _histogram(data: Any) -> Histogram:
    return Histogram.from_data(msgspec.convert(data, HistogramData) if isinstance(data, dict) else data)


class _MergedSecond:
    """One second of the run, all workers together, while the merge adds them up."""

    __slots__ = ("sent", "acked", "errors", "receipts", "throttled", "latency", "receipt_latency")

    def __init__(self) -> None:
        self.sent = self.acked = self.errors = self.receipts = self.throttled = 0
        self.latency = Histogram()
        self.receipt_latency = Histogram()

    def add(self, part: SecondPart) -> None:
        self.sent += part.sent
        self.acked += part.acked
        self.errors += part.errors
        self.receipts += part.receipts
        self.throttled += part.throttled
        self.latency.merge(_histogram(part.latency))
        self.receipt_latency.merge(_histogram(part.receipt_latency))


def _merge(opts: LoadOptions, parts: list[dict], started: float) -> BenchResult:
    latency, service, receipt_latency, lag = Histogram(), Histogram(), Histogram(), Histogram()
    errors: dict[str, int] = {}
    ops: dict[str, int] = {}
    seconds: dict[int, _MergedSecond] = {}
    pending: dict[str, float] = {}
    early: dict[str, float] = {}
    t0 = min(p["t0"] for p in parts)
    for p in parts:
        latency.merge(_histogram(p["latency"]))
        service.merge(_histogram(p["service"]))
        lag.merge(_histogram(p["lag"]))
        receipt_latency.merge(_histogram(p["receipt_latency"]))
        pending.update(p["pending_receipts"])
        early.update(p["early_receipts"])
        for k, v in p["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for k, v in p["ops"].items():
            ops[k] = ops.get(k, 0) + v
        for s, part in p["seconds"].items():
            seconds.setdefault(int(s), _MergedSecond()).add(part)
    # receipts that reached another worker's bind than the one that sent the message
    unmatched = 0
    unmatched_ids: list[str] = []
    matched_late: set[str] = set()
    for key, at in early.items():
        due = pending.get(key)
        if due is None and "." in key:  # a split submit_multi's receipt: owed under its stem
            due = pending.get(stem_of(key))
        if due is None:
            unmatched += 1
            if len(unmatched_ids) < _IDS_SHOWN:
                unmatched_ids.append(key)
        else:
            matched_late.add(key)
            receipt_latency.record((at - due) * 1e6)
            seconds.setdefault(max(0, int(at - t0)), _MergedSecond()).receipt_latency.record((at - due) * 1e6)
    unreceipted = [key for key in pending if key not in matched_late]
    end = max(p["end"] for p in parts)
    receipts_end = max(p["receipts_end"] for p in parts)
    sent = sum(p["sent"] for p in parts)
    receipts = sum(p["receipts"] for p in parts)
    duration = end - t0
    sending = [p for p in parts if p["sent"]]
    first_send = min((p["first_send"] for p in sending), default=t0) - t0
    last_send = max((p["last_send"] for p in sending), default=t0) - t0
    schedule = Schedule.for_options(opts)
    timeline = []
    for s, b in sorted(seconds.items()):
        h, r = b.latency, b.receipt_latency
        timeline.append(Second(
            t=s, sent=b.sent, acked=b.acked, errors=b.errors, receipts=b.receipts, p50_us=h.percentile(50),
            p99_us=h.percentile(99), p90_us=h.percentile(90), max_us=h.max, throttled=b.throttled,
            target_rate=schedule.rate_at(s + 0.5) if schedule is not None else None,
            receipt_p50_us=r.percentile(50), receipt_p90_us=r.percentile(90), receipt_p99_us=r.percentile(99),
            receipt_max_us=r.max,
        ))
    return BenchResult(
        options=msgspec.structs.replace(opts, password=""), environment=_environment(), started_at=started,
        duration=duration, sent=sent,
        acked=sum(p["acked"] for p in parts), errors=errors, throttled=sum(p["throttled"] for p in parts),
        reconnects=sum(p["reconnects"] for p in parts), receipts=receipts,
        duplicate_receipts=sum(p["duplicate_receipts"] for p in parts),
        submit_rate=sent / duration if duration > 0 else 0.0,
        receipt_rate=receipts / (receipts_end - t0) if receipts and receipts_end > t0 else 0.0,
        latency_us=latency.summary(), receipt_latency_us=receipt_latency.summary(),
        latency_histogram=latency.data(), receipt_histogram=receipt_latency.data(), timeline=timeline,
        mode="open" if schedule is not None else "closed", messages=sum(p["messages"] for p in parts),
        first_send=first_send, last_send=last_send,
        send_rate=(sent - 1) / (last_send - first_send) if sent > 1 and last_send > first_send else 0.0,
        service_us=service.summary(), service_histogram=service.data(), unmatched_receipts=unmatched,
        unreceipted=len(unreceipted), unreceipted_ids=unreceipted[:_UNRECEIPTED_LISTED], unmatched_ids=unmatched_ids,
        reused_ids=sum(p.get("reused_ids", 0) for p in parts),
        receipt_wait=max(0.0, receipts_end - end),
        send_lag_us=lag.summary() if schedule is not None else {},
        generator_cpu=sum(p.get("cpu", 0.0) for p in parts),
        recipients=sum(p["recipients"] for p in parts), ops=ops,
        receipts_expected=sum(p["receipts_expected"] for p in parts),
    )
