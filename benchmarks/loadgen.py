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

__all__ = [
    "LoadOptions", "BenchResult", "Second", "run_bench", "parse_ramp", "parse_mix", "DestinationPattern", "BenchError",
    "Progress", "Schedule",
]


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
    """One second of the run (``t`` seconds after the start), all workers together.

    ``sent``: submit_sm written; ``acked``/``errors``: responses (and failures) that
    came back in that second; ``p*_us``: their latency (0 when none came back);
    ``target_rate``: what the open-loop schedule asked for in that second (None in
    closed loop).
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


class BenchResult(msgspec.Struct):
    """Everything a run measured (this is the JSON file's schema).

    Times are seconds, latencies microseconds. ``options`` are the run's options
    with the password blanked. ``latency_us`` (p50/p90/p99/p999/max/mean/min/count)
    is submit_sm -> submit_sm_resp, measured from the moment each message was due
    in open loop (no coordinated omission) and from its write in closed loop;
    ``service_us`` always from the write. ``errors`` counts responses by
    command_status name plus requests that got none (``ResponseTimeout``,
    ``ConnectionClosed``), so ``sent == acked + sum(errors.values())``.
    ``receipts`` counts final receipts (first one per message id);
    ``receipt_latency_us`` those matched to a submit of this run by message_id.
    ``first_send``/``last_send`` are seconds from the start, ``send_rate`` the rate
    achieved between them.
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
    receipt_wait: float = 0.0


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
    if seconds <= 0 or end <= 0:
        raise ValueError(f"bad --ramp {value!r}: the duration and the final rate must be positive")
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


# --- one worker ---------------------------------------------------------------------------

#: Connect and bind within this many seconds.
CONNECT_TIMEOUT = 10.0
#: How long a bind keeps trying to bind again after losing its connection, when the run
#: has no deadline of its own, before the run fails.
RECONNECT_FOR = 30.0
#: The most a run waits for the responses still in flight once it has sent everything
#: (each one times out on its own after the session's response timeout anyway).
SETTLE_FOR = 60.0


class BenchError(Exception):
    """The run could not be carried out (a worker failed); the message says why."""


class Tick(msgspec.Struct, array_like=True):
    """A worker's progress after one second, for the live line."""

    worker: int
    second: int
    sent_total: int
    errors_total: int
    receipts_total: int
    sent: int
    hist: HistogramData | None


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


_CLIENT_CLASS: Any = None


def _stamping_client() -> Any:
    """A ``smppcore.Client`` that notes when each response was read.

    A response's Future runs its callbacks on a later turn of the loop, after the rest
    of the chunk (and, under load, after much else): timing the callback would add
    that wait to the latency. The read time is kept by the Future's id until its
    callback takes it.
    """
    global _CLIENT_CLASS
    if _CLIENT_CLASS is None:
        import smppcore
        from smppcore.session import Response

        class StampingClient(smppcore.Client):
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.read_at: dict[int, float] = {}

            def handle_events(self, events: list) -> None:
                now = time.perf_counter()
                stamps = self.read_at
                for ev in events:
                    if ev.__class__ is Response and ev.context is not None:
                        stamps[id(ev.context)] = now
                super().handle_events(events)

        _CLIENT_CLASS = StampingClient
    return _CLIENT_CLASS


class Worker:
    """One process's share: its binds, its part of the count and of the rate.

    ``report``: where the per-second :class:`Tick` goes when progress is on (the
    parent's queue in a worker process; a :class:`Progress` in-process).
    """

    def __init__(self, opts: LoadOptions, count: int | None, rate_share: float, seed: int, *, index: int = 0,
                 report: Any = None) -> None:
        self.opts = opts
        self.count = count
        self.share = rate_share
        self.index = index
        self.report = report
        self.rng = random.Random(seed)
        self.dest = DestinationPattern(opts.to, opts.to_file, self.rng)
        kinds = [k for k, w in opts.mix.items() if w > 0]
        self.kinds = kinds
        self.weights = list(itertools.accumulate(opts.mix[k] for k in kinds))
        self._templates: dict[str, list] = {}
        self.latency = Histogram()
        self.service = Histogram()
        self.receipt_latency = Histogram()
        self.errors: dict[str, int] = {}
        self.sent = self.acked = self.throttled = self.reconnects = self.receipts = self.messages = 0
        self.pending_receipts: dict[str, float] = {}
        self.early_receipts: dict[str, float] = {}
        self.last_receipt = 0.0
        self.seen_receipts: set[str] = set()
        self.duplicate_receipts = 0
        self.seconds: dict[int, list] = {}
        self.t0 = 0.0
        self.first_send = self.last_send = self.last_response = 0.0
        self.outstanding = 0
        self._settled: asyncio.Event | None = None
        self.clients: list = []
        self._retired: list = []

    def _second(self, now: float) -> list:
        """[sent, acked, errors, receipts, latency histogram, throttled] of the second ``now`` is in."""
        s = int(now - self.t0)
        bucket = self.seconds.get(s)
        if bucket is None:
            bucket = self.seconds[s] = [0, 0, 0, 0, Histogram(), 0]
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
        # worker that sent it knows (an SMSC gives receipts to any bind of the account):
        # what is not matched here is matched when the workers' results are merged.
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
        """Connect and bind like ``smppcore.connect``, with a client that stamps its reads."""
        import smppcore

        o = self.opts
        loop = asyncio.get_running_loop()
        cls = _stamping_client()
        config = smppcore.SessionConfig(window=o.window)

        def make():
            return cls(system_id=o.system_id, password=o.password, bind=o.bind,
                       on_message=self.on_message if o.dlr else None, config=config, loop=loop)

        async def open_and_bind():
            _, client = await loop.create_connection(make, o.host, o.port)
            try:
                await client.bind()
            except BaseException:
                client.close()
                raise
            return client

        return await asyncio.wait_for(open_and_bind(), CONNECT_TIMEOUT)

    async def _reconnect(self, slot: int, deadline: float | None):
        """A new bind in place of ``self.clients[slot]``; None when the run is over first."""
        import smppcore

        self._retired.append(self.clients[slot])
        backoff = smppcore.Backoff(initial=0.05, maximum=2.0)
        give_up = time.perf_counter() + RECONNECT_FOR
        while True:
            if deadline is not None and time.perf_counter() >= deadline:
                return None
            try:
                client = await self._connect()
            except (OSError, asyncio.TimeoutError, smppcore.SmppError) as exc:
                if time.perf_counter() >= give_up:
                    o = self.opts
                    raise BenchError(f"lost the connection to {o.host}:{o.port} and could not bind again "
                                     f"for {RECONNECT_FOR:g}s: {exc}") from None
                await asyncio.sleep(backoff.next_delay())
                continue
            self.reconnects += 1
            self.clients[slot] = client
            return client

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

    def _done(self, fut: asyncio.Future, due: float, sent_at: float, read_at: dict) -> None:
        from smppcore import CommandStatus, status_name

        # when the response was read, not when this callback got its turn
        now = read_at.pop(id(fut), None) or time.perf_counter()
        if now > self.last_response:
            self.last_response = now
        self.outstanding -= 1
        if not self.outstanding and self._settled is not None:
            self._settled.set()
        bucket = self._second(now)
        if fut.cancelled() or fut.exception() is not None:
            name = type(fut.exception()).__name__ if not fut.cancelled() else "cancelled"
            self.errors[name] = self.errors.get(name, 0) + 1
            bucket[2] += 1
            return
        resp = fut.result()
        us = (now - due) * 1e6
        self.latency.record(us)
        self.service.record((now - sent_at) * 1e6)
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
                bucket[5] += 1

    async def run_bind(self, slot: int, schedule: Schedule | None, deadline: float | None, quota: int | None,
                       counter: itertools.count) -> None:
        import smppcore
        from smppcore.session import InvalidState

        client = self.clients[slot]
        perf_counter = time.perf_counter
        while True:
            n = next(counter)
            if quota is not None and n >= quota:
                return
            now = due = perf_counter()
            if schedule is None and deadline is not None and now >= deadline:
                return
            if schedule is not None:
                # open loop: everything due before the deadline is sent, however late
                due = self.t0 + schedule.due(n)
                if deadline is not None and due >= deadline:
                    return
                wait = due - now
                if wait > 0.0005:
                    await asyncio.sleep(wait)
            self.messages += 1
            for pdu in self._pdus():
                while True:
                    try:
                        fut = await client.send(pdu)
                        break
                    except (smppcore.SmppError, InvalidState, OSError):
                        client = await self._reconnect(slot, deadline)
                        if client is None:
                            return
                sent_at = perf_counter()
                if not self.sent:
                    self.first_send = sent_at
                self.last_send = sent_at
                self.sent += 1
                self.outstanding += 1
                self._second(sent_at)[0] += 1
                fut.add_done_callback(
                    lambda f, d=(due if schedule is not None else sent_at), s=sent_at, r=client.read_at: self._done(f, d, s, r)
                )

    async def run(self, start_gate: Any = None) -> dict:
        """Bind, wait at ``start_gate`` (the other workers), send, wait for the answers and receipts."""
        o = self.opts
        self.clients = [await self._connect() for _ in range(o.binds)]
        try:
            if start_gate is not None:
                await start_gate()
            return await self._run()
        finally:
            await asyncio.gather(*(c.unbind(2) for c in self.clients + self._retired if c.is_open), return_exceptions=True)

    async def _run(self) -> dict:
        o = self.opts
        if o.rate:
            schedule: Schedule | None = Schedule(self.share, None)
        elif o.ramp:
            schedule = Schedule(None, (o.ramp[0] * self.share, o.ramp[1] * self.share, o.ramp[2]))
        else:
            schedule = None
        self.t0 = time.perf_counter()
        deadline = self.t0 + o.duration if o.duration else None
        counter = itertools.count()
        progress = asyncio.ensure_future(self._progress()) if self.report is not None else None
        try:
            await asyncio.gather(*(self.run_bind(i, schedule, deadline, self.count, counter) for i in range(o.binds)))
            if self.outstanding:
                self._settled = asyncio.Event()
                try:
                    await asyncio.wait_for(self._settled.wait(), SETTLE_FOR)
                except asyncio.TimeoutError:
                    pass
            end = max(self.last_response, self.last_send, self.t0)
            if o.dlr:
                # wait for the last receipts: until this worker has as many as it sent,
                # or none came for a second (the others may hold them), at most receipt_wait
                wait_until = time.perf_counter() + o.receipt_wait
                while self.receipts < self.acked and time.perf_counter() < wait_until:
                    if time.perf_counter() - max(self.last_receipt, end) > 1.0:
                        break
                    await asyncio.sleep(0.01)
            receipts_end = max(self.last_receipt, end)
        finally:
            if progress is not None:
                progress.cancel()
        return {
            "t0": self.t0, "end": end, "receipts_end": receipts_end, "sent": self.sent, "acked": self.acked,
            "messages": self.messages, "first_send": self.first_send, "last_send": self.last_send,
            "errors": self.errors, "throttled": self.throttled, "reconnects": self.reconnects, "receipts": self.receipts,
            "duplicate_receipts": self.duplicate_receipts, "latency": self.latency.data(), "service": self.service.data(),
            "receipt_latency": self.receipt_latency.data(),
            "pending_receipts": self.pending_receipts, "early_receipts": self.early_receipts,
            "seconds": {s: [b[0], b[1], b[2], b[3], b[4].data(), b[5]] for s, b in self.seconds.items()},
        }

    async def _progress(self) -> None:
        second = 0
        while True:
            await asyncio.sleep(max(0.0, self.t0 + second + 1 - time.perf_counter()))
            bucket = self.seconds.get(second)
            self.report(Tick(
                worker=self.index, second=second, sent_total=self.sent, errors_total=sum(self.errors.values()),
                receipts_total=self.receipts, sent=bucket[0] if bucket else 0,
                hist=bucket[4].data() if bucket and bucket[4].total else None,
            ))
            second += 1


def _worker_process(index: int, opts_raw: dict, count: int | None, share: float, seed: int, barrier: Any,
                    queue: Any) -> None:
    """A worker process: run its share, put ("result", index, dict) or ("error", index, kind, text) on ``queue``."""
    import threading

    import smppcore

    opts = msgspec.convert(opts_raw, LoadOptions)

    def report(tick: Tick) -> None:
        queue.put(("tick", index, tick))

    async def gate() -> None:
        # in a thread of its own: the default executor's threads would keep a
        # broken run's process alive
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def wait() -> None:
            try:
                barrier.wait(120)
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))
            except BaseException as exc:  # noqa: BLE001 - another worker failed
                err = BenchError(f"another worker failed ({type(exc).__name__})")
                loop.call_soon_threadsafe(lambda: done.done() or done.set_exception(err))

        threading.Thread(target=wait, daemon=True).start()
        await done

    try:
        worker = Worker(opts, count, share, seed, index=index, report=report if opts.progress else None)
        result = smppcore.run(worker.run(gate))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, on one line
        barrier.abort()
        kind = "os" if isinstance(exc, (OSError, TimeoutError)) else ("broken" if isinstance(exc, BenchError) and "another worker" in str(exc) else "other")
        queue.put(("error", index, kind, f"{type(exc).__name__}: {exc}" if kind == "other" else str(exc)))
        return
    queue.put(("result", index, result))


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

            worker = Worker(opts, counts[0], opts.rate if opts.rate else 1.0, 1, report=progress.add if progress else None)
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
    procs = []
    for i in range(workers):
        o = msgspec.structs.replace(opts, binds=binds[i])
        share = (opts.rate or 1.0) * shares[i] if opts.rate else shares[i]
        p = ctx.Process(target=_worker_process, args=(i, msgspec.to_builtins(o), counts[i], share, i + 1, barrier, queue),
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
        kind, text = next((f for f in failures.values() if f[0] != "broken"), next(iter(failures.values())))
        if kind == "os":
            raise OSError(text)
        raise BenchError(text)
    return [results[i] for i in range(workers)]


def _histogram(data: Any) -> Histogram:
    return Histogram.from_data(msgspec.convert(data, HistogramData) if isinstance(data, dict) else data)


def _merge(opts: LoadOptions, parts: list[dict], started: float) -> BenchResult:
    latency, service, receipt_latency = Histogram(), Histogram(), Histogram()
    errors: dict[str, int] = {}
    seconds: dict[int, list] = {}
    pending: dict[str, float] = {}
    early: dict[str, float] = {}
    t0 = min(p["t0"] for p in parts)
    for p in parts:
        latency.merge(_histogram(p["latency"]))
        service.merge(_histogram(p["service"]))
        receipt_latency.merge(_histogram(p["receipt_latency"]))
        pending.update(p["pending_receipts"])
        early.update(p["early_receipts"])
        for k, v in p["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for s, (sent, acked, errs, rcpts, hist, throttled) in p["seconds"].items():
            b = seconds.setdefault(int(s), [0, 0, 0, 0, Histogram(), 0])
            b[0] += sent
            b[1] += acked
            b[2] += errs
            b[3] += rcpts
            b[4].merge(_histogram(hist))
            b[5] += throttled
    # receipts that reached another worker's bind than the one that sent the message
    unmatched = 0
    for key, at in early.items():
        due = pending.get(key)
        if due is None:
            unmatched += 1
        else:
            receipt_latency.record((at - due) * 1e6)
    end = max(p["end"] for p in parts)
    receipts_end = max(p["receipts_end"] for p in parts)
    sent = sum(p["sent"] for p in parts)
    receipts = sum(p["receipts"] for p in parts)
    duration = end - t0
    sending = [p for p in parts if p["sent"]]
    first_send = min((p["first_send"] for p in sending), default=t0) - t0
    last_send = max((p["last_send"] for p in sending), default=t0) - t0
    schedule = Schedule(opts.rate, None) if opts.rate else (Schedule(None, opts.ramp) if opts.ramp else None)
    timeline = []
    for s, b in sorted(seconds.items()):
        p50, p90, p99 = (b[4].percentile(q) for q in (50, 90, 99))
        timeline.append(Second(
            t=s, sent=b[0], acked=b[1], errors=b[2], receipts=b[3], p50_us=p50, p99_us=p99, p90_us=p90, max_us=b[4].max,
            throttled=b[5], target_rate=schedule.rate_at(s + 0.5) if schedule is not None else None,
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
        receipt_wait=max(0.0, receipts_end - end),
    )
