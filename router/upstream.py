"""Upstream SMSCs: a pool of binds per SMSC, a queue, a rate cap, reconnects.

:class:`UpstreamPool` owns ``binds`` :class:`UpstreamLink` connections to one
SMSC. Messages queued on the pool go out on whichever bound link has room in its
window, no faster than ``max_rate``, a link's turn of them as one batch; their
answers come back in runs (every answer of one read, see
:class:`smppcore.connection.AnswerSink`), and a timeout or a lost connection one
by one, to the pool's :class:`UpstreamEvents` (the dispatcher), which decides
about retries and failover (see :mod:`router.dispatch`). The SMSC's deliver_sm come
the same way: a read's run of them to :meth:`UpstreamEvents.deliver_received_all`. Links reconnect on their
own with exponential back-off and jitter.

Why batches and runs: the hub's CPU per message is interpreter work spread over a
chain of calls, and what a turn of messages shares (the state's rule, the window's
room, the clock, the flush, the end of the turn) is asked once for the turn instead
of once a message (callgrind, submit leg over fakes, 2026-12-02: 172.3k -> 153.9k
instructions a message, with the ESME side's runs of :mod:`router.esme`).

Every failed connect or bind is a warning (``upstream_connect_failed``) with its
attempt number, the error and the delay before the next try, under the rule of
:class:`OutageLog`; ``upstream_up`` says how long the outage lasted and how many
attempts it took, ``upstream_down`` why a bound link went.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Protocol

import msgspec
import structlog

import smppcore
from smppcore import Backoff, Pdu, SessionConfig, decode
from smppcore.connection import EARLY_FLUSH
from smppcore.pdus import DataSm, SubmitSm
from smppcore.ratelimit import TokenBucket

from .config import Upstream
from .lifecycle import MessageRow

__all__ = ["NO_ANSWER", "Outgoing", "OutageLog", "UpstreamEvents", "UpstreamLink", "UpstreamPool", "stored_submit"]

log = structlog.get_logger("smpphub.upstream")

#: the key of :attr:`UpstreamPool.answers` for a submit that got no answer (timeout, connection lost)
NO_ANSWER = -1
#: messages a link takes in one turn of :meth:`UpstreamPool.pump` (one write's worth: see
#: smppcore.connection.EARLY_FLUSH), before the next link that has room takes its turn
TURN = EARLY_FLUSH


class Outgoing(msgspec.Struct, eq=False, gc=False):
    """A message on its way to an upstream: its row, the PDU to write, the route prefix it matched.

    A Struct (one is made per message, and msgspec builds it in C) compared by identity, as
    the dispatcher does. The cycle collector does not track it: its row and PDU never lead
    back to it.
    """

    row: MessageRow
    pdu: SubmitSm | DataSm
    prefix: str = ""  # for the logs ("" when reloaded from the store)


def stored_submit(row: MessageRow) -> SubmitSm | DataSm:
    """The submit_sm or data_sm a message row keeps (the ESME side stores nothing else in ``row.pdu``)."""
    pdu = decode(row.pdu)
    if not isinstance(pdu, (SubmitSm, DataSm)):
        raise TypeError(f"message {row.id} holds a {pdu.command_name}, not a submit_sm or data_sm")
    return pdu


class UpstreamEvents(Protocol):
    """What a pool reports, and to whom (the dispatcher)."""

    def still_for(self, outs: list[Outgoing], pool: UpstreamPool) -> list[Outgoing]:
        """Those of ``outs``, next in ``pool``'s queue, still for it, in order (the others are skipped)."""

    def taken(self, outs: list[Outgoing], pool: UpstreamPool) -> None:
        """``pool`` writes ``outs`` now (each was still for it), in this order."""

    def answered(self, outs: list[Outgoing], pool: UpstreamPool, responses: list[Pdu]) -> None:
        """Their submit_sm_resp (``responses[i]`` for ``outs[i]``), a run of them read at once."""

    def unanswered(self, out: Outgoing, pool: UpstreamPool, error: BaseException) -> None:
        """No answer will come (``error``: a timeout, the connection lost, or it could not be written)."""

    def deliver_received(self, pool: UpstreamPool, pdu: Pdu) -> int | asyncio.Future[int]:
        """A deliver_sm/data_sm from the SMSC; the status to answer it with (or its Future)."""

    def deliver_received_all(self, pool: UpstreamPool, pdus: list[Pdu]) -> list[int | asyncio.Future[int]]:
        """A run of deliver_sm/data_sm read at once: :meth:`deliver_received`'s result for each, in order."""

    def pool_up(self, pool: UpstreamPool) -> None:
        """A bind of ``pool`` came up."""

    def pool_down(self, pool: UpstreamPool, left: list[Outgoing]) -> None:
        """Every bind of ``pool`` is down; ``left`` waited in its queue."""


class OutageLog:
    """Which failed reconnect attempts of one outage get a warning line.

    The rule: each of the first :attr:`LOUD_ATTEMPTS` attempts is logged (an
    operator sees at once what is wrong and that the delays grow); after that at
    most one line per :attr:`QUIET_INTERVAL` seconds, carrying how many attempts
    went unlogged since the previous line. A day-long outage with a 30 s back-off
    writes 5 lines and then one a minute: never silence, never a flood. Time is
    passed in (``time.monotonic()`` in the hub), so the rule is tested without waiting.
    """

    LOUD_ATTEMPTS = 5
    QUIET_INTERVAL = 60.0

    __slots__ = ("started", "attempts", "suppressed", "_last_line")

    def __init__(self, now: float) -> None:
        self.started = now
        self.attempts = 0  # failed attempts so far
        self.suppressed = 0  # failed attempts not logged since the last line
        self._last_line = now

    def failed(self, now: float) -> bool:
        """Count a failed attempt; True when it should be logged (then ``suppressed`` says how many were not)."""
        self.attempts += 1
        if self.attempts <= self.LOUD_ATTEMPTS or now - self._last_line >= self.QUIET_INTERVAL:
            self._last_line = now
            return True
        self.suppressed += 1
        return False

    def logged(self) -> None:
        """The line for the last attempt is written: the unlogged count starts again."""
        self.suppressed = 0


class UpstreamLink:
    """One bind to the SMSC, kept up by a reconnect loop."""

    def __init__(self, pool: UpstreamPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.client: smppcore.Client | None = None
        self.task: asyncio.Task[None] | None = None
        self.connects = 0
        self.stopping = False

    @property
    def ready(self) -> bool:
        c = self.client
        return c is not None and c.is_open and c.session.state.is_bound

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"upstream-{self.pool.name}-{self.index}")

    async def run(self) -> None:
        cfg = self.pool.cfg
        backoff = Backoff(cfg.reconnect_initial, cfg.reconnect_max)
        session = SessionConfig(
            window=cfg.window,
            response_timeout=cfg.response_timeout,
            enquire_link_interval=cfg.enquire_link_interval,
        )
        ssl_ctx = None
        if cfg.tls:
            import ssl

            ssl_ctx = ssl.create_default_context()
        outage = OutageLog(time.monotonic())  # not bound yet: an outage until the first bind
        while True:
            try:
                client = await smppcore.connect(
                    cfg.host, cfg.port, system_id=cfg.system_id, password=cfg.password, system_type=cfg.system_type,
                    bind=cfg.bind_type, config=session, on_message=self.pool.on_deliver_pdu, ssl=ssl_ctx,
                    server_hostname=cfg.host if ssl_ctx else None,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure to connect or bind means: retry later
                delay = backoff.next_delay()
                if outage.failed(time.monotonic()):
                    # the delay is jittered (see smppcore.Backoff); its ceiling is what grows
                    ceiling = min(backoff.maximum, backoff.initial * backoff.factor ** min(backoff.attempts - 1, 64))
                    log.warning("upstream_connect_failed", upstream=self.pool.name, bind=self.index,
                                attempt=outage.attempts, error=f"{type(exc).__name__}: {exc}", delay=round(delay, 3),
                                ceiling=round(ceiling, 3), suppressed=outage.suppressed)
                    outage.logged()
                if self.stopping:
                    # stop() cancelled us while the connect failed: asyncio.wait_for (3.11) can raise
                    # the connect's error and drop the cancellation, and this loop would go on for ever
                    return
                await asyncio.sleep(delay)
                continue
            if self.stopping:
                # stop() cancelled us while the bind was completing: asyncio.wait_for (3.11)
                # can hand back the result and drop the cancellation, and stop() saw no client
                client.close()
                return
            backoff.reset()
            self.connects += 1
            client.answer_sink = self.pool  # the answers to what the pool sends on it
            client.on_messages = self.pool.on_deliver_run  # a read's deliver_sm as one run
            self.client = client
            log.info("upstream_up", upstream=self.pool.name, bind=self.index, failed_attempts=outage.attempts,
                     outage=round(time.monotonic() - outage.started, 3))
            self.pool.link_up(self)
            try:
                await client.closed
            finally:
                self.client = None
                outage = OutageLog(time.monotonic())
                if not self.stopping:
                    log.warning("upstream_down", upstream=self.pool.name, bind=self.index,
                                reason=client.session.close_reason or "closed")
                self.pool.link_down(self)

    async def stop(self, timeout: float) -> None:
        self.stopping = True
        if self.task is not None:
            self.task.cancel()
        client = self.client
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if client is not None:
            await client.unbind(timeout)
        if self.task is not None:
            # bounded: a task that swallowed its cancellation must not hold the hub's exit
            await asyncio.wait({self.task}, timeout=max(0.01, deadline - loop.time()))


class UpstreamPool:
    """Every bind to one SMSC, and the queue of messages waiting for them.

    The queue may hold messages that are no longer for this pool (cancelled, expired,
    failed over while they waited): :meth:`UpstreamEvents.still_for` says so when their
    turn comes, and they are skipped then, rather than searched for in the queue.

    Messages join the queue at its end: by :meth:`submit`, which pumps, or appended to
    :attr:`queue` by the dispatcher, which pumps once after a whole commit (no call a
    message: see Dispatcher.accept_all).
    """

    def __init__(self, cfg: Upstream, events: UpstreamEvents) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.events = events
        self.links = [UpstreamLink(self, i) for i in range(cfg.binds)]
        self.queue: collections.deque[Outgoing] = collections.deque()
        self.in_flight = 0
        self.sent = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bucket: TokenBucket | None = None
        self._pump_handle: asyncio.TimerHandle | None = None
        self._rr = 0
        self.accepting = True
        self.links_up = 0
        # set by an operator (the admin API): paused, its binds stay up and its queue waits;
        # draining, it takes no new messages (they go to the next upstream of their route)
        self.paused = False
        self.draining = False
        #: its answers to submits by command_status (NO_ANSWER: a timeout or a lost connection), for metrics
        self.answers: collections.Counter[int] = collections.Counter()

    @property
    def available(self) -> bool:
        return self.accepting and self.links_up > 0 and not self.draining

    @property
    def mode(self) -> str:
        """What an operator set: "draining", "paused" or "running"."""
        return "draining" if self.draining else "paused" if self.paused else "running"

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # no rate cap, no bucket: nothing to ask per message
        self.bucket = TokenBucket(self.cfg.max_rate, self._loop.time, burst=0.1) if self.cfg.max_rate else None
        for link in self.links:
            link.start()

    async def stop(self, timeout: float = 5.0) -> list[Outgoing]:
        """Stop taking messages, wait (up to ``timeout``) for those in flight, unbind; returns the unsent ones."""
        self.accepting = False
        if self._pump_handle is not None:
            self._pump_handle.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.01)
        left = list(self.queue)
        self.queue.clear()
        await asyncio.gather(*(link.stop(max(0.1, deadline - loop.time())) for link in self.links),
                             return_exceptions=True)
        return left

    # ---- links ---------------------------------------------------------------------

    def link_up(self, link: UpstreamLink) -> None:
        self.links_up += 1
        self.events.pool_up(self)
        self.pump()

    def link_down(self, link: UpstreamLink) -> None:
        self.links_up -= 1
        if not self.links_up and self.queue:
            left = list(self.queue)
            self.queue.clear()
            self.events.pool_down(self, left)

    def on_deliver_pdu(self, pdu: Pdu) -> int | asyncio.Future[int]:
        return self.events.deliver_received(self, pdu)

    def on_deliver_run(self, pdus: list[Pdu]) -> list[int | asyncio.Future[int]]:
        return self.events.deliver_received_all(self, pdus)

    # ---- sending ---------------------------------------------------------------------

    def submit(self, out: Outgoing) -> None:
        self.queue.append(out)
        self.pump()

    def pump(self) -> None:
        """Write queued messages while a bound link has room in its window (and the rate allows).

        The links take them in turns of up to :data:`TURN` messages, each turn one batch for
        the link (:meth:`smppcore.SmppConnection.send_tracked`: its checks, clock and write
        once for the batch, and their answers back in runs, see :meth:`answered`) and one
        :meth:`UpstreamEvents.taken` for the dispatcher.
        """
        self._pump_handle = None
        queue = self.queue
        if self.paused or not queue:
            return  # resume() pumps again
        links = self.links
        n = len(links)
        bucket = self.bucket
        events = self.events
        while queue:
            client: smppcore.Client | None = None  # the next link that is up, bound, with room in its window
            room = 0
            rr = self._rr
            for i in range(n):
                candidate = links[(rr + i) % n].client
                # transport, not is_open: a bound session is not CLOSED (one call less per turn)
                if candidate is not None and candidate.transport is not None:
                    room = candidate.session.room
                    if room:
                        client = candidate
                        self._rr = (rr + i + 1) % n
                        break
            if client is None:
                return  # woken again by a response (window) or a link coming up
            popleft = queue.popleft
            batch = events.still_for([popleft() for _ in range(min(room, TURN, len(queue)))], self)
            limited = False
            if bucket is not None:  # a token for each message that goes (none for one no longer for us)
                granted = 0
                for _ in batch:
                    if not bucket.take():
                        break
                    granted += 1
                if granted < len(batch):
                    queue.extendleft(reversed(batch[granted:]))  # first again when the rate allows
                    del batch[granted:]
                    if self._pump_handle is None and self._loop is not None:
                        self._pump_handle = self._loop.call_later(bucket.wait_time(), self.pump)
                    limited = True
            if batch:
                events.taken(batch, self)
                try:
                    # answered in runs: no Future, no callback a message
                    client.send_tracked([out.pdu for out in batch], batch, [out.row.pdu for out in batch])
                except Exception as exc:  # noqa: BLE001 - the connection went away between checks
                    for out in batch:
                        events.unanswered(out, self, exc)
                else:
                    self.in_flight += len(batch)
            if limited:
                return

    # ---- answers (the AnswerSink of every link's connection) -----------------------------

    def answered(self, contexts: list[Outgoing], responses: list[Pdu]) -> None:
        """A run of submit_sm_resp read on one of the links (``responses[i]`` for ``contexts[i]``)."""
        self.in_flight -= len(contexts)
        self.sent += len(contexts)
        self.answers.update([response.command_status for response in responses])
        self.events.answered(contexts, self, responses)
        if self.queue:
            self.pump()

    def unanswered(self, context: Outgoing, error: Exception) -> None:
        """A submit that will get no answer: a timeout, or its connection went."""
        self.in_flight -= 1
        self.answers[NO_ANSWER] += 1
        self.events.unanswered(context, self, error)
        if self.queue:
            self.pump()
