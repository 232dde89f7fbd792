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
"""

from __future__ import annotations

import asyncio
import itertools
import math
import multiprocessing
import os
import platform
import random
import re
import sys
import time
from typing import Any

import msgspec

from .histogram import Histogram, HistogramData

__all__ = ["LoadOptions", "BenchResult", "Second", "run_bench", "parse_ramp", "parse_mix", "DestinationPattern"]


class LoadOptions(msgspec.Struct, kw_only=True):
    host: str
    port: int
    system_id: str
    password: str
    bind: str = "trx"
    binds: int = 1
    window: int = 100
    count: int | None = None
    duration: float | None = None
    rate: float | None = None  # open loop, messages/s in total
    ramp: tuple[float, float, float] | None = None  # (from rate, to rate, seconds)
    workers: int = 1
    to: str = "4477009{00000-99999}"
    to_file: str | None = None
    source: str = "smpphub"
    mix: dict[str, float] = msgspec.field(default_factory=lambda: {"gsm": 1.0})
    dlr: bool = False
    receipt_wait: float = 10.0  # seconds to wait for outstanding receipts at the end
    progress: bool = True


class Second(msgspec.Struct):
    """One second of the run."""

    t: int
    sent: int
    acked: int
    errors: int
    receipts: int
    p50_us: int
    p99_us: int


class BenchResult(msgspec.Struct):
    """Everything a run measured (this is the JSON file's schema)."""

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


# --- message mix -------------------------------------------------------------------------


class DestinationPattern:
    """``4477009{00000-99999}``: a literal with one numeric range; or lines of a file."""

    def __init__(self, pattern: str, file: str | None = None, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self.numbers: list[str] | None = None
        if file is not None:
            with open(file) as f:
                self.numbers = [line.strip() for line in f if line.strip()]
            if not self.numbers:
                raise ValueError(f"{file}: no destinations in it")
            return
        m = re.fullmatch(r"([^{}]*)\{(\d+)-(\d+)\}([^{}]*)", pattern)
        if m:
            self.prefix, lo, hi, self.suffix = m.group(1), m.group(2), m.group(3), m.group(4)
            self.lo, self.hi, self.width = int(lo), int(hi), len(lo)
            if self.hi < self.lo:
                raise ValueError(f"empty range in {pattern!r}")
        elif "{" in pattern or "}" in pattern:
            raise ValueError(f"bad destination pattern {pattern!r} (expected PREFIX{{FROM-TO}})")
        else:
            self.prefix, self.lo, self.hi, self.width, self.suffix = pattern, 0, -1, 0, ""

    def next(self) -> str:
        if self.numbers is not None:
            return self.numbers[self.rng.randrange(len(self.numbers))]
        if self.hi < 0:
            return self.prefix
        return f"{self.prefix}{self.rng.randint(self.lo, self.hi):0{self.width}d}{self.suffix}"


_TEXTS = {
    "gsm": ("Load test message, GSM 03.38 text of about 60 characters long", 0),
    "ucs2": ("Нагрузочный тест 🚀 UCS-2 text", 8),
    "long": ("A long message that needs several segments to get through. " * 5, None),
}
MIX_KINDS = tuple(_TEXTS)


def parse_mix(value: str) -> dict[str, float]:
    """``gsm:70,ucs2:20,long:10`` -> weights; raises ValueError naming the bad part."""
    mix: dict[str, float] = {}
    for part in value.split(","):
        kind, _, weight = part.strip().partition(":")
        if kind not in _TEXTS:
            raise ValueError(f"unknown text kind {kind!r} in --text-mix (known: {', '.join(_TEXTS)})")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"bad weight {weight!r} for {kind} in --text-mix") from None
        if w < 0 or not math.isfinite(w):
            raise ValueError(f"weight of {kind} must be a number >= 0")
        mix[kind] = w
    if not any(mix.values()):
        raise ValueError("--text-mix needs a weight above 0")
    return mix


def parse_ramp(value: str) -> tuple[float, float, float]:
    """``1000:20000:60s`` -> (1000, 20000, 60)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?):(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)(s|m)?\s*", value)
    if not m:
        raise ValueError(f"bad --ramp {value!r}: expected FROM:TO:DURATION like 1000:20000:60s")
    start, end, seconds = float(m.group(1)), float(m.group(2)), float(m.group(3)) * (60 if m.group(4) == "m" else 1)
    if seconds <= 0 or (start <= 0 and end <= 0):
        raise ValueError("--ramp needs a positive duration and a positive rate")
    return start, end, seconds


class Schedule:
    """When the i-th message is due, in seconds from the start (open loop)."""

    def __init__(self, rate: float | None, ramp: tuple[float, float, float] | None) -> None:
        self.rate = rate
        self.ramp = ramp

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

    def count_for(self, duration: float) -> int:
        if self.ramp is None:
            return int(self.rate * duration)  # type: ignore[operator]
        a, b, span = self.ramp
        if duration <= span:
            slope = (b - a) / span
            return int(a * duration + slope * duration * duration / 2)
        return int((a + b) / 2 * span + b * (duration - span))


# --- one worker ---------------------------------------------------------------------------


class Worker:
    """One process's share: its binds, its part of the count and of the rate."""

    def __init__(self, opts: LoadOptions, count: int | None, rate_share: float, seed: int) -> None:
        self.opts = opts
        self.count = count
        self.share = rate_share
        self.rng = random.Random(seed)
        self.dest = DestinationPattern(opts.to, opts.to_file, self.rng)
        kinds = [k for k, w in opts.mix.items() if w > 0]
        self.kinds = kinds
        self.weights = list(itertools.accumulate(opts.mix[k] for k in kinds))
        self._templates: dict[str, list] = {}
        self.latency = Histogram()
        self.receipt_latency = Histogram()
        self.errors: dict[str, int] = {}
        self.sent = self.acked = self.throttled = self.reconnects = self.receipts = 0
        self.pending_receipts: dict[str, float] = {}
        self.early_receipts: dict[str, float] = {}
        self.last_receipt = 0.0
        self.seen_receipts: set[str] = set()
        self.duplicate_receipts = 0
        self.seconds: dict[int, list] = {}
        self.t0 = 0.0

    def _second(self, now: float) -> list:
        s = int(now - self.t0)
        bucket = self.seconds.get(s)
        if bucket is None:
            bucket = self.seconds[s] = [0, 0, 0, 0, Histogram()]
        return bucket

    def on_message(self, pdu) -> None:
        from smppcore.receipt import is_receipt, normalise_message_id, receipt_info

        if not is_receipt(pdu):
            return
        info = receipt_info(pdu)
        if info is None or not info.is_final:
            return
        key = normalise_message_id(info.message_id)
        if key in self.seen_receipts:
            self.duplicate_receipts += 1  # at least once: an SMSC may send one again
            return
        self.seen_receipts.add(key)
        now = time.perf_counter()
        # Every final receipt counts; its latency needs the send time, which only the
        # worker that sent it knows (an SMSC gives receipts to any bind of the account).
        self.receipts += 1
        self.last_receipt = now
        self._second(now)[3] += 1
        sent_at = self.pending_receipts.pop(key, None)
        if sent_at is None:
            # it overtook its own submit_sm_resp, or another worker sent it
            if len(self.early_receipts) < 1_000_000:
                self.early_receipts[key] = now
            return
        self.receipt_latency.record((now - sent_at) * 1e6)

    async def _connect(self):
        import smppcore

        o = self.opts
        return await smppcore.connect(o.host, o.port, system_id=o.system_id, password=o.password, bind=o.bind,
                                      window=o.window, on_message=self.on_message if o.dlr else None)

    def _segments(self, kind: str, reference: int) -> list:
        import smppcore
        from smppcore.text import split_text

        o = self.opts
        text, coding = _TEXTS[kind]
        alpha = not o.source.isdigit()
        return [
            smppcore.SubmitSm(
                source_addr=o.source, source_addr_ton=5 if alpha else 1, source_addr_npi=0 if alpha else 1,
                dest_addr_ton=1, dest_addr_npi=1, esm_class=seg.esm_class, data_coding=seg.data_coding,
                short_message=seg.short_message, tlvs=dict(seg.tlvs), registered_delivery=1 if o.dlr else 0,
            )
            for seg in split_text(text, data_coding=coding, reference=reference)
        ]

    def _pdus(self):
        """The submit_sm(s) of the next message: a prepared template with a fresh destination
        (and, for a long one, a fresh concatenation reference)."""
        kind = self.kinds[0] if len(self.kinds) == 1 else self.rng.choices(self.kinds, cum_weights=self.weights)[0]
        dest = self.dest.next()
        templates = self._templates.get(kind)
        if templates is None:
            templates = self._templates[kind] = self._segments(kind, 0)
        if len(templates) == 1:
            return [msgspec.structs.replace(templates[0], destination_addr=dest)]
        return [msgspec.structs.replace(t, destination_addr=dest) for t in self._segments(kind, self.rng.randrange(256))]

    def _done(self, fut: asyncio.Future, due: float) -> None:
        from smppcore import CommandStatus, status_name

        now = time.perf_counter()
        bucket = self._second(now)
        if fut.cancelled() or fut.exception() is not None:
            name = type(fut.exception()).__name__ if not fut.cancelled() else "cancelled"
            self.errors[name] = self.errors.get(name, 0) + 1
            bucket[2] += 1
            return
        resp = fut.result()
        us = (now - due) * 1e6
        self.latency.record(us)
        bucket[4].record(us)
        if resp.command_status == 0:
            self.acked += 1
            bucket[1] += 1
            if self.opts.dlr:
                from smppcore.receipt import normalise_message_id

                key = normalise_message_id(resp.message_id)
                early = self.early_receipts.pop(key, None)
                if early is None:
                    self.pending_receipts[key] = due
                else:
                    self.receipt_latency.record((early - due) * 1e6)
        else:
            name = status_name(resp.command_status)
            self.errors[name] = self.errors.get(name, 0) + 1
            bucket[2] += 1
            if resp.command_status == CommandStatus.ESME_RTHROTTLED:
                self.throttled += 1

    async def run_bind(self, index: int, binds: int, schedule: Schedule | None, deadline: float | None, quota: int | None,
                       counter: itertools.count) -> None:
        import smppcore

        client = await self._connect()
        try:
            while True:
                n = next(counter)
                if quota is not None and n >= quota:
                    return
                now = time.perf_counter()
                if deadline is not None and now >= deadline:
                    return
                if schedule is not None:
                    due = self.t0 + schedule.due(n)
                    if deadline is not None and due >= deadline:
                        return
                    wait = due - now
                    if wait > 0.0005:
                        await asyncio.sleep(wait)
                for pdu in self._pdus():
                    while True:
                        try:
                            fut = await client.send(pdu)
                            break
                        except (smppcore.ConnectionClosed, smppcore.SmppError, OSError):
                            self.reconnects += 1
                            await asyncio.sleep(0.1)
                            client = await self._connect()
                    sent_due = due if schedule is not None else time.perf_counter()
                    self.sent += 1
                    self._second(time.perf_counter())[0] += 1
                    fut.add_done_callback(lambda f, d=sent_due: self._done(f, d))
        finally:
            await self._drain(client)

    async def _drain(self, client) -> None:
        deadline = time.perf_counter() + 30
        while len(client.session.window) and client.is_open and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        self._clients.append(client)

    async def run(self) -> dict:
        o = self.opts
        self._clients: list = []
        schedule = Schedule(self.share, None) if o.rate else (Schedule(None, tuple(x * self.share for x in o.ramp[:2]) + (o.ramp[2],)) if o.ramp else None)
        self.t0 = time.perf_counter()
        deadline = self.t0 + o.duration if o.duration else None
        quota = self.count
        counter = itertools.count()
        progress = asyncio.ensure_future(self._progress()) if o.progress else None
        try:
            await asyncio.gather(*(self.run_bind(i, o.binds, schedule, deadline, quota, counter) for i in range(o.binds)))
            end = time.perf_counter()
            if o.dlr:
                # wait for the last receipts: until this worker has as many as it sent,
                # or none came for a second (the others may hold them), at most receipt_wait
                wait_until = time.perf_counter() + o.receipt_wait
                while self.receipts < self.acked and time.perf_counter() < wait_until:
                    if time.perf_counter() - max(self.last_receipt, end) > 1.0:
                        break
                    await asyncio.sleep(0.01)
            receipts_end = time.perf_counter()
        finally:
            if progress is not None:
                progress.cancel()
        for client in self._clients:
            try:
                await client.unbind(2)
            except Exception:  # noqa: BLE001 - the run is over
                pass
        return {
            "t0": self.t0, "end": end, "receipts_end": receipts_end, "sent": self.sent, "acked": self.acked,
            "errors": self.errors, "throttled": self.throttled, "reconnects": self.reconnects, "receipts": self.receipts,
            "duplicate_receipts": self.duplicate_receipts, "latency": self.latency.data(), "receipt_latency": self.receipt_latency.data(),
            "seconds": {s: [b[0], b[1], b[2], b[3], b[4].data()] for s, b in self.seconds.items()},
        }

    async def _progress(self) -> None:
        o = self.opts
        while True:
            await asyncio.sleep(1.0)
            elapsed = time.perf_counter() - self.t0
            last = self.seconds.get(int(elapsed) - 1)
            rate = last[0] if last else 0
            p99 = last[4].percentile(99) / 1000 if last else 0.0
            errors = sum(self.errors.values())
            if o.duration:
                remaining = f"{max(0.0, o.duration - elapsed):.0f}s left"
            elif self.count:
                remaining = f"{self.sent}/{self.count}"
            else:
                remaining = ""
            sys.stderr.write(f"\r\x1b[2K{elapsed:6.1f}s  {rate:>8,} msg/s  p99 {p99:7.2f} ms  errors {errors}  {remaining}")
            sys.stderr.flush()


def _worker_main(args: tuple) -> dict:
    opts_raw, count, share, seed = args
    opts = msgspec.convert(opts_raw, LoadOptions)
    import smppcore

    return smppcore.run(Worker(opts, count, share, seed).run())


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
        "uvloop": runtime.uvloop_enabled(),
    }


def run_bench(opts: LoadOptions) -> BenchResult:
    """Run the load as ``opts`` say (in ``opts.workers`` processes) and merge the results."""
    if opts.count is None and opts.duration is None:
        raise ValueError("give --count or --duration")
    workers = max(1, min(opts.workers, opts.binds))
    binds = [opts.binds // workers + (1 if i < opts.binds % workers else 0) for i in range(workers)]
    counts = [None] * workers if opts.count is None else [opts.count * b // opts.binds for b in binds]
    if opts.count is not None:
        counts[0] += opts.count - sum(counts)  # type: ignore[operator]
    shares = [b / opts.binds for b in binds]
    started = time.time()
    if workers == 1:
        import smppcore

        parts = [smppcore.run(Worker(opts, counts[0], 1.0 * (opts.rate or 1.0) if opts.rate else 1.0, 1).run())]
    else:
        ctx = multiprocessing.get_context("spawn")
        jobs = []
        for i in range(workers):
            o = msgspec.structs.replace(opts, binds=binds[i], progress=opts.progress and i == 0)
            jobs.append((msgspec.to_builtins(o), counts[i], (opts.rate or 1.0) * shares[i] if opts.rate else shares[i], i + 1))
        with ctx.Pool(workers) as pool:
            parts = pool.map(_worker_main, jobs)
    if opts.progress:
        sys.stderr.write("\n")
    return _merge(opts, parts, started)


def _merge(opts: LoadOptions, parts: list[dict], started: float) -> BenchResult:
    latency, receipt_latency = Histogram(), Histogram()
    errors: dict[str, int] = {}
    seconds: dict[int, list] = {}
    t0 = min(p["t0"] for p in parts)
    for p in parts:
        latency.merge(Histogram.from_data(msgspec.convert(p["latency"], HistogramData) if isinstance(p["latency"], dict) else p["latency"]))
        receipt_latency.merge(Histogram.from_data(msgspec.convert(p["receipt_latency"], HistogramData) if isinstance(p["receipt_latency"], dict) else p["receipt_latency"]))
        for k, v in p["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for s, (sent, acked, errs, rcpts, hist) in p["seconds"].items():
            b = seconds.setdefault(int(s), [0, 0, 0, 0, Histogram()])
            b[0] += sent
            b[1] += acked
            b[2] += errs
            b[3] += rcpts
            b[4].merge(Histogram.from_data(msgspec.convert(hist, HistogramData) if isinstance(hist, dict) else hist))
    end = max(p["end"] for p in parts)
    receipts_end = max(p["receipts_end"] for p in parts)
    sent = sum(p["sent"] for p in parts)
    receipts = sum(p["receipts"] for p in parts)
    duration = end - t0
    timeline = [
        Second(t=s, sent=b[0], acked=b[1], errors=b[2], receipts=b[3], p50_us=b[4].percentile(50), p99_us=b[4].percentile(99))
        for s, b in sorted(seconds.items())
    ]
    return BenchResult(
        options=opts, environment=_environment(), started_at=started, duration=duration, sent=sent,
        acked=sum(p["acked"] for p in parts), errors=errors, throttled=sum(p["throttled"] for p in parts),
        reconnects=sum(p["reconnects"] for p in parts), receipts=receipts,
        duplicate_receipts=sum(p["duplicate_receipts"] for p in parts),
        submit_rate=sent / duration if duration > 0 else 0.0,
        receipt_rate=receipts / (receipts_end - t0) if receipts and receipts_end > t0 else 0.0,
        latency_us=latency.summary(), receipt_latency_us=receipt_latency.summary(),
        latency_histogram=latency.data(), receipt_histogram=receipt_latency.data(), timeline=timeline,
    )
