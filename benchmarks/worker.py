"""One load-generator process: its binds, its share of the messages and of the rate.

The binds (:class:`smpphub.bench.bulk.BulkEsme`) pull messages from the worker's feed
whenever their window has room: in closed loop at once, in open loop only those
already due on the schedule (a timer wakes the binds when the next one falls due).
No task or Future per message: responses are counted and timed per chunk read.
Latencies go into a list per second and are folded into that second's histogram
once a second, so the path of each response stays short.
"""

from __future__ import annotations

import asyncio
import functools
import math
import ssl
import time
from typing import Any

import msgspec

import smppcore
from smppcore import CommandStatus, status_name
from smppcore.receipt import is_receipt, receipt_info, receipt_info_from_tlvs

from .bulk import BulkEsme
from .failures import BenchError, connect_failure
from .histogram import Histogram, HistogramData
from .messages import OPS, MessagePool
from .receipt_book import TRACKED_RECEIPTS, ReceiptBook

__all__ = [
    "Worker", "Tick", "BenchError", "ReceiptTally", "SecondPart", "CONNECT_TIMEOUT", "RECONNECT_FOR", "SETTLE_FOR",
    "TRACKED_RECEIPTS",
]

#: Connect and bind within this many seconds (or the run's response timeout, if shorter:
#: a bind is a request like any other).
CONNECT_TIMEOUT = 10.0
#: How long a bind keeps trying to bind again after losing its connection, when the run
#: has no deadline of its own, before the run fails.
RECONNECT_FOR = 30.0
#: The most a run waits for the responses still in flight once it has sent everything
#: (each one times out on its own after the response timeout anyway).
SETTLE_FOR = 60.0
#: In open loop a message may go this much before it is due: the loop's timers are
#: not finer than a millisecond.
EARLY = 0.0005
TIMER_RESOLUTION = 0.001


class OtherWorkerFailed(BenchError):
    """This worker stopped only because another one failed: the parent reports that one's cause."""


class Tick(msgspec.Struct, array_like=True):
    """A worker's progress after one second, for the live line."""

    worker: int
    second: int
    sent_total: int
    errors_total: int
    receipts_total: int
    sent: int
    hist: HistogramData | None


class ReceiptTally:
    """Acks and receipts of every worker of a run, in shared memory, so that each worker
    waits for the run's last receipts rather than only its own."""

    def __init__(self, ctx: Any, workers: int) -> None:
        self.workers = workers
        self.lock = ctx.Lock()
        self.acked = ctx.Value("q", 0, lock=False)
        self.receipts = ctx.Value("q", 0, lock=False)
        self.finished = ctx.Value("i", 0, lock=False)

    def add(self, *, acked: int = 0, receipts: int = 0, finished: int = 0) -> None:
        with self.lock:
            self.acked.value += acked
            self.receipts.value += receipts
            self.finished.value += finished

    def over(self) -> bool:
        """Every worker has sent all and has its answers, and every acked message has its receipt."""
        with self.lock:
            return self.finished.value >= self.workers and self.receipts.value >= self.acked.value


class Bucket:
    """One second of one worker: counters, and latencies not yet folded into histograms."""

    __slots__ = ("sent", "acked", "errors", "receipts", "throttled", "latencies", "service", "lag", "hist",
                 "service_hist", "lag_hist", "receipt_hist")

    def __init__(self) -> None:
        self.sent = self.acked = self.errors = self.receipts = self.throttled = 0
        self.latencies: list[int] = []
        self.service: list[int] = []
        self.lag: list[int] = []
        self.hist = Histogram()
        self.service_hist = Histogram()
        self.lag_hist = Histogram()
        self.receipt_hist = Histogram()  # submit -> receipt, of the receipts that came in this second

    def fold(self) -> None:
        for values, hist in ((self.latencies, self.hist), (self.service, self.service_hist), (self.lag, self.lag_hist)):
            if values:
                hist.record_many(values)
                values.clear()

    def part(self) -> SecondPart:
        self.fold()
        return SecondPart(sent=self.sent, acked=self.acked, errors=self.errors, receipts=self.receipts,
                          throttled=self.throttled, latency=self.hist.data(), receipt_latency=self.receipt_hist.data())


class SecondPart(msgspec.Struct, kw_only=True):
    """One second of one worker as it goes to the merge (counts, and the latencies of the
    responses and of the receipts that came in that second)."""

    sent: int
    acked: int
    errors: int
    receipts: int
    throttled: int
    latency: HistogramData
    receipt_latency: HistogramData


class Worker:
    """One process's share: its binds, its part of the count and of the rate.

    ``report``: where the per-second :class:`Tick` goes when progress is on (the
    parent's queue in a worker process; a :class:`Progress` in-process).
    """

    def __init__(self, opts: Any, count: int | None, share: float, seed: int, *, index: int = 0,
                 report: Any = None, tally: ReceiptTally | None = None) -> None:
        self.opts = opts
        self.tally = tally
        self.index = index
        self.report = report
        self.quota = count if count is not None else math.inf
        self.open_loop = bool(opts.rate or opts.ramp)
        self.share = share  # this worker's part of the run's binds, so of its rate
        pool = MessagePool(to=opts.to, to_file=opts.to_file, mix=opts.mix, source=opts.source, dlr=opts.dlr, seed=seed,
                           source_file=opts.source_file, ops=opts.ops, multi_dests=opts.multi_dests)
        self.pool = pool.messages
        self.pool_size = len(pool.messages)
        self.schedule: Any = None
        self.next_index = 0
        self.requeued: list = []
        self.errors: dict[str, int] = {}
        self.sent = self.acked = self.throttled = self.reconnects = self.receipts = 0
        self.book = ReceiptBook()
        self.last_receipt = 0.0
        self.seconds: dict[int, Bucket] = {}
        self._bucket_second = -1
        self._bucket = Bucket()
        self.t0 = 0.0
        self.deadline = math.inf
        self.first_send = self.last_send = self.last_response = 0.0
        self.binds: list[BulkEsme | None] = []
        self._retired: list[BulkEsme] = []
        self._reconnecting: dict[int, asyncio.Task] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._rr = 0
        self._done: asyncio.Future | None = None
        self.closing = False
        self._ssl: Any = None

    # ---- the feed ---------------------------------------------------------------------------

    def _next_due(self, now: float) -> float | None:
        """When the next new message is due (``now`` in closed loop); None when there is
        none: the count is reached or the deadline passed."""
        i = self.next_index
        if i >= self.quota:
            return None
        due = now if self.schedule is None else self.t0 + self.schedule.due(i)
        return None if due >= self.deadline else due

    def take(self, now: float) -> Any:
        """The next message for a bind with room, as (its submit_sm, when it was due), or None:
        in closed loop any message left, in open loop only one already due (the timer is
        set for the next one)."""
        if self.requeued:
            return self.requeued.pop()
        due = self._next_due(now)
        if due is None:
            return None
        if due > now:
            if due > now + EARLY:
                self._arm(due)
                return None
            due = now  # a little early: its latency runs from the write
        i = self.next_index
        self.next_index = i + 1
        return self.pool[i % self.pool_size], due

    def exhausted(self, now: float) -> bool:
        """Nothing more to send (everything sent, or the deadline passed)."""
        return not self.requeued and self._next_due(now) is None

    def _arm(self, due: float) -> None:
        if due >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        loop = asyncio.get_running_loop()
        # at least a millisecond: uvloop's timers count whole milliseconds and would fire
        # a shorter one at once, again and again until the message is due
        self._timer = loop.call_later(max(TIMER_RESOLUTION, due - time.perf_counter() - EARLY), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        binds = self.binds
        n = len(binds)
        self._rr = (self._rr + 1) % n
        for k in range(n):
            b = binds[(self._rr + k) % n]
            if b is not None:
                b.pump()
        self.bind_idle()

    # ---- what the binds report ----------------------------------------------------------------

    def bucket(self, now: float) -> Bucket:
        s = int(now - self.t0)
        if s != self._bucket_second:
            b = self.seconds.get(s)
            if b is None:
                b = self.seconds[s] = Bucket()
            self._bucket, self._bucket_second = b, s
        return self._bucket

    def on_sent(self, n: int, now: float, lags: list[int] | None) -> None:
        if not self.sent:
            self.first_send = now
        self.last_send = now
        self.sent += n
        b = self.bucket(now)
        b.sent += n
        if lags:
            b.lag += lags

    def on_responses(self, now: float, latencies: list[int], service: list[int] | None, failed: list[int] | None,
                     ids: list | None) -> None:
        if now > self.last_response:
            self.last_response = now
        b = self.bucket(now)
        b.latencies += latencies
        if service:
            b.service += service
        acked = len(latencies)
        if failed:
            acked -= len(failed)
            for status in failed:
                self._failures(status_name(status), 1, now)
                if status == CommandStatus.ESME_RTHROTTLED:
                    self.throttled += 1
                    b.throttled += 1
        self.acked += acked
        b.acked += acked
        if ids:
            self._expect_receipts(ids)

    def _expect_receipts(self, ids: list) -> None:
        """Accepted requests (body of the response, due time, receipts owed) now await their receipts."""
        owe = self.book.owe
        for body, due, owed in ids:
            for came in owe(body[:body.find(b"\0")].decode("latin-1"), due, owed):
                self._receipt_latency(came, due)

    def _receipt_latency(self, at: float, due: float) -> None:
        """A receipt matched to its submit_sm: its latency goes to the second it came in."""
        self.bucket(at).receipt_hist.record((at - due) * 1e6)

    def on_message(self, pdu: Any) -> None:
        """A deliver_sm (answered by the bind): count a final receipt once, when receipts were asked for."""
        if not self.opts.dlr or not is_receipt(pdu):
            return
        info = receipt_info_from_tlvs(pdu) or receipt_info(pdu)
        if info is None or not info.is_final:
            return
        if self.book.seen_before(info.message_id, pdu.source_addr):
            return
        now = time.perf_counter()
        # Every final receipt counts; its latency needs the send time, which only the
        # worker that sent it knows (an SMSC gives receipts to any bind of the account):
        # what is not matched here is matched when the workers' results are merged.
        self.receipts += 1
        self.last_receipt = now
        self.bucket(now).receipts += 1
        due = self.book.match(info.message_id, now)
        if due is None:
            return  # it overtook its own response, or another worker sent it
        self._receipt_latency(now, due)

    def _failures(self, name: str, n: int, now: float) -> None:
        if n:
            self.errors[name] = self.errors.get(name, 0) + n
            self.bucket(now).errors += n

    def bind_lost(self, bind: BulkEsme, lost: int, held: Any) -> None:
        """A bind's connection is gone: its requests in flight count as ConnectionClosed."""
        self._failures("ConnectionClosed", lost, time.perf_counter())
        if held is not None:
            self.requeued.append(held)
        if self.closing or (self._done is not None and self._done.done()):
            return
        slot = bind.slot
        # a bind that never completed was never put in its slot: nothing to reconnect
        # (its failure reaches the run through connect)
        if self.binds[slot] is bind and slot not in self._reconnecting:
            self.binds[slot] = None
            self._retired.append(bind)
            task = asyncio.get_running_loop().create_task(self._reconnect(slot))
            self._reconnecting[slot] = task
        self.bind_idle()

    def bind_idle(self) -> None:
        """A bind has nothing in flight: the run is over when nobody has and nothing is left."""
        done = self._done
        if done is None or done.done():
            return
        if not self.exhausted(time.perf_counter()):
            return
        for b in self.binds:
            if b is not None and (b.inflight or b.held is not None):
                return
        done.set_result(None)

    # ---- binds --------------------------------------------------------------------------------

    @property
    def connect_timeout(self) -> float:
        return min(CONNECT_TIMEOUT, self.opts.response_timeout)

    async def _connect(self, slot: int) -> BulkEsme:
        """Connect and bind a :class:`BulkEsme` for ``slot``."""
        o = self.opts
        ssl_ctx = self._tls_context()
        return await smppcore.connect(
            o.host, o.port, system_id=o.system_id, password=o.password, system_type=o.system_type, bind=o.bind,
            connect_timeout=self.connect_timeout,
            config=smppcore.SessionConfig(window=o.window, response_timeout=o.response_timeout),
            on_message=self.on_message, client_class=functools.partial(BulkEsme, self, slot),
            ssl=ssl_ctx, server_hostname=o.host if ssl_ctx is not None else None,
        )  # type: ignore[return-value]

    def _tls_context(self) -> Any:
        """The client TLS context the options ask for (None: plain TCP); made once per worker."""
        o = self.opts
        if not (o.tls or o.tls_ca or o.tls_insecure):
            return None
        if self._ssl is None:
            ctx = ssl.create_default_context(cafile=o.tls_ca)
            if o.tls_insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl = ctx
        return self._ssl

    async def _reconnect(self, slot: int) -> None:
        """Bind again in ``slot`` with back-off, and go on sending; fail the run after RECONNECT_FOR."""
        backoff = smppcore.Backoff(initial=0.05, maximum=2.0)
        give_up = time.perf_counter() + RECONNECT_FOR
        try:
            while True:
                now = time.perf_counter()
                if now >= self.deadline or self.exhausted(now) or self.closing:
                    return
                try:
                    client = await self._connect(slot)
                except (TimeoutError, OSError, smppcore.SmppError) as exc:
                    if time.perf_counter() >= give_up:
                        o = self.opts
                        why = connect_failure(o.host, o.port, exc, self.connect_timeout)
                        raise BenchError(f"lost the connection and could not bind again for {RECONNECT_FOR:g}s: "
                                         f"{why}") from None
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if self.closing:  # the run ended while this bind was being made
                    client.close()
                    return
                self.reconnects += 1
                self.binds[slot] = client
                client.pump()
                return
        except BaseException as exc:
            if self._done is not None and not self._done.done():
                self._done.set_exception(exc)
            raise
        finally:
            self._reconnecting.pop(slot, None)
            self.bind_idle()

    # ---- the run ------------------------------------------------------------------------------

    async def run(self, start_gate: Any = None) -> dict:
        """Bind, wait at ``start_gate`` (the other workers), send, wait for the answers and receipts."""
        o = self.opts
        self.binds = [None] * o.binds  # each filled once its bind completes
        try:
            for slot in range(o.binds):
                try:
                    self.binds[slot] = await self._connect(slot)
                except (TimeoutError, OSError, smppcore.SmppError) as exc:
                    raise BenchError(connect_failure(o.host, o.port, exc, self.connect_timeout)) from None
            if start_gate is not None:
                await start_gate()
            return await self._run()
        finally:
            self.closing = True
            if self._timer is not None:
                self._timer.cancel()
            for task in list(self._reconnecting.values()):
                task.cancel()
            clients = [c for c in self.binds + self._retired if c is not None and c.is_open]
            await asyncio.gather(*(c.unbind(2) for c in clients), return_exceptions=True)

    async def _run(self) -> dict:
        from .loadgen import Schedule

        o = self.opts
        loop = asyncio.get_running_loop()
        self.schedule = Schedule.for_options(o, self.share)
        self._done = loop.create_future()
        cpu0 = time.process_time()
        self.t0 = time.perf_counter()
        if o.duration:
            self.deadline = self.t0 + o.duration
            loop.call_later(o.duration, self.bind_idle)  # a closed loop drains from then on
        every_second = loop.create_task(self._every_second())
        try:
            for b in self.binds:
                b.pump()  # type: ignore[union-attr]
            if self.open_loop:
                self._on_timer()
            self.bind_idle()
            try:
                await asyncio.wait_for(asyncio.shield(self._done), None if math.isinf(self.deadline) else
                                       max(0.0, self.deadline - time.perf_counter()) + SETTLE_FOR)
            except TimeoutError:
                pass
            end = max(self.last_response, self.last_send, self.t0)
            if o.dlr:
                await self._last_receipts()
            receipts_end = max(self.last_receipt, end)
            cpu = time.process_time() - cpu0
        finally:
            every_second.cancel()
        return self._result(end, receipts_end, cpu)

    async def _last_receipts(self) -> None:
        """Wait for the run's last receipts, at most ``receipt_wait`` (an SMSC may take
        seconds to report, or never report on some).

        One worker waits until no acked id still owes a receipt: a count of receipts
        against acks would stop one short whenever a receipt came for a message whose ack
        never did (stored at a hub's kill), and the receipt still owed then came after the
        run's figures were taken. With several workers the counts are the whole run's
        (:class:`ReceiptTally`): an SMSC hands a message's receipt to any bind of the
        account, so a worker may be holding another's, and only the merge can match them."""
        wait_until = time.perf_counter() + self.opts.receipt_wait
        tally = self.tally
        if tally is None:
            while self.book.pending and time.perf_counter() < wait_until:
                await asyncio.sleep(0.01)
            return
        tally.add(acked=self.book.expected, finished=1)
        reported = 0
        while time.perf_counter() < wait_until:
            if self.receipts > reported:
                tally.add(receipts=self.receipts - reported)
                reported = self.receipts
            if tally.over():
                return
            await asyncio.sleep(0.01)

    async def _every_second(self) -> None:
        """Fold the last second's latencies, time out old requests, report progress."""
        timeout = self.opts.response_timeout
        second = 0
        while True:
            await asyncio.sleep(max(0.0, self.t0 + second + 1 - time.perf_counter()))
            now = time.perf_counter()
            for b in self.binds:
                if b is not None:
                    self._failures("ResponseTimeout", b.expire(now, timeout), now)
                    if not b.inflight:
                        self.bind_idle()
            bucket = self.seconds.get(second)
            if bucket is not None:
                bucket.fold()
            if self.report is not None:
                self.report(Tick(
                    worker=self.index, second=second, sent_total=self.sent, errors_total=sum(self.errors.values()),
                    receipts_total=self.receipts, sent=bucket.sent if bucket else 0,
                    hist=bucket.hist.data() if bucket and bucket.hist.total else None,
                ))
            second += 1

    def _sent_by_op(self) -> tuple[dict[str, int], int]:
        """Messages sent by operation, and the handsets they went to (a submit_multi's
        destinations each): those taken from the pool (``next_index`` of them, in order, round
        after round), less those a lost bind handed back unsent. Counted here, once, rather
        than per message in :meth:`take`."""
        rounds, rest = divmod(self.next_index, self.pool_size)
        counts = [0] * len(OPS)
        recipients = 0
        for j, message in enumerate(self.pool):
            n = rounds + (j < rest)
            counts[message[2]] += n
            recipients += n * (message[1] or 1)
        for message, _ in self.requeued:
            counts[message[2]] -= 1
            recipients -= message[1] or 1
        return {op: n for op, n in zip(OPS, counts, strict=True) if n}, recipients

    def _result(self, end: float, receipts_end: float, cpu: float) -> dict:
        latency, service, lag, receipt_latency = Histogram(), Histogram(), Histogram(), Histogram()
        for b in self.seconds.values():
            b.fold()
            latency.merge(b.hist)
            service.merge(b.service_hist if self.open_loop else b.hist)
            lag.merge(b.lag_hist)
            receipt_latency.merge(b.receipt_hist)
        ops, recipients = self._sent_by_op()
        return {
            "t0": self.t0, "end": end, "receipts_end": receipts_end, "cpu": cpu, "sent": self.sent, "acked": self.acked,
            "messages": self.next_index - len(self.requeued), "ops": ops,
            "recipients": recipients,
            "receipts_expected": self.book.expected, "first_send": self.first_send, "last_send": self.last_send,
            "errors": self.errors, "throttled": self.throttled, "reconnects": self.reconnects,
            "receipts": self.receipts,
            "duplicate_receipts": self.book.duplicates, "reused_ids": self.book.reused,
            "latency": latency.data(), "service": service.data(),
            "lag": lag.data(), "receipt_latency": receipt_latency.data(),
            # copies: a receipt that comes while the binds close is in neither these nor ``receipts``
            "pending_receipts": dict(self.book.pending), "early_receipts": dict(self.book.early),
            "seconds": {s: b.part() for s, b in self.seconds.items()},
        }


def worker_process(index: int, opts_raw: dict, count: int | None, share: float, seed: int, barrier: Any,
                   queue: Any, tally: ReceiptTally | None = None) -> None:
    """A worker process: run its share, put ("result", index, dict) or ("error", index, kind, text) on ``queue``."""
    import threading

    from .loadgen import LoadOptions

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
                err = OtherWorkerFailed(f"another worker failed ({type(exc).__name__})")
                loop.call_soon_threadsafe(lambda: done.done() or done.set_exception(err))

        threading.Thread(target=wait, daemon=True).start()
        await done

    smppcore.quiet_gc()  # a worker process: its receipt book and histograms out of the collector's walks
    try:
        worker = Worker(opts, count, share, seed, index=index, report=report if opts.progress else None, tally=tally)
        result = smppcore.run(worker.run(gate))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, on one line
        barrier.abort()
        if isinstance(exc, BenchError):
            kind = "broken" if isinstance(exc, OtherWorkerFailed) else "bench"
            text = str(exc)
        else:
            kind, text = "other", f"{type(exc).__name__}: {exc}"
        queue.put(("error", index, kind, text))
        return
    queue.put(("result", index, result))
