"""Upstream SMSCs: a pool of binds per SMSC, a queue, a rate cap, reconnects.

:class:`UpstreamPool` owns ``binds`` :class:`UpstreamLink` connections to one
SMSC. Jobs queued on the pool go out on whichever bound link has room in its
window, no faster than ``max_rate``; each answer (or timeout, or lost
connection) is handed to the pool's ``on_result`` callback, which decides about
retries and failover (see :mod:`router.dispatch`). Links reconnect on their own
with exponential back-off and jitter.

Every failed connect or bind is a warning (``upstream_connect_failed``) with its
attempt number, the error and the delay before the next try, under the rule of
:class:`OutageLog`; ``upstream_up`` says how long the outage lasted and how many
attempts it took, ``upstream_down`` why a bound link went.
"""

from __future__ import annotations

import asyncio
import collections
import time
from functools import partial
from typing import Any, Callable

import structlog

import smppcore
from smppcore import Backoff, Pdu, SessionConfig
from smppcore.ratelimit import TokenBucket

from .config import Upstream
from .store import MessageRecord

__all__ = ["Job", "OutageLog", "UpstreamLink", "UpstreamPool"]

log = structlog.get_logger("smpphub.upstream")


class Job:
    """A message on its way upstream: its record, its PDU, where it is in its route."""

    __slots__ = ("record", "pdu", "route_index", "attempts_here", "timer", "prefix")

    def __init__(self, record: MessageRecord, pdu: Pdu, route_index: int = 0, prefix: str = "") -> None:
        self.record = record
        self.pdu = pdu
        self.route_index = route_index
        self.attempts_here = 0
        self.timer: asyncio.TimerHandle | None = None
        self.prefix = prefix  # the route prefix it matched, for the logs ("" when reloaded from the store)

    @property
    def upstream(self) -> str:
        return self.record.route[self.route_index]


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
        self.task: asyncio.Task | None = None
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
                await asyncio.sleep(delay)
                continue
            if self.stopping:
                # stop() cancelled us while the bind was completing: asyncio.wait_for (3.11)
                # can hand back the result and drop the cancellation, and stop() saw no client
                client.close()
                return
            backoff.reset()
            self.connects += 1
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
        if client is not None:
            await client.unbind(timeout)
        if self.task is not None:
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass


class UpstreamPool:
    """Every bind to one SMSC, and the queue of jobs waiting for them."""

    def __init__(
        self,
        cfg: Upstream,
        *,
        on_result: Callable[[Job, UpstreamPool, Pdu | None, BaseException | None], None],
        on_deliver: Callable[[UpstreamPool, Pdu], Any],
        on_up: Callable[[UpstreamPool], None],
        on_down: Callable[[UpstreamPool, list[Job]], None],
    ) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.links = [UpstreamLink(self, i) for i in range(cfg.binds)]
        self.queue: collections.deque[Job] = collections.deque()
        self.in_flight = 0
        self.sent = 0
        self._on_result = on_result
        self._on_deliver = on_deliver
        self._on_up = on_up
        self._on_down = on_down
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bucket: TokenBucket | None = None
        self._pump_handle: asyncio.TimerHandle | None = None
        self._rr = 0
        self.accepting = True
        self.links_up = 0

    @property
    def available(self) -> bool:
        return self.accepting and self.links_up > 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.bucket = TokenBucket(self.cfg.max_rate, self._loop.time, burst=0.1)
        for link in self.links:
            link.start()

    async def stop(self, timeout: float = 5.0) -> list[Job]:
        """Stop taking jobs, wait (up to ``timeout``) for those in flight, unbind; returns the unsent ones."""
        self.accepting = False
        if self._pump_handle is not None:
            self._pump_handle.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.01)
        left = list(self.queue)
        self.queue.clear()
        await asyncio.gather(*(link.stop(max(0.1, deadline - loop.time())) for link in self.links), return_exceptions=True)
        return left

    # ---- links ---------------------------------------------------------------------

    def link_up(self, link: UpstreamLink) -> None:
        self.links_up += 1
        self._on_up(self)
        self.pump()

    def link_down(self, link: UpstreamLink) -> None:
        self.links_up -= 1
        if not self.links_up and self.queue:
            jobs = list(self.queue)
            self.queue.clear()
            self._on_down(self, jobs)

    def on_deliver_pdu(self, pdu: Pdu) -> Any:
        return self._on_deliver(self, pdu)

    # ---- sending ---------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        self.queue.append(job)
        self.pump()

    def pump(self) -> None:
        self._pump_handle = None
        queue = self.queue
        links = self.links
        n = len(links)
        bucket = self.bucket
        while queue:
            link = None
            for i in range(n):
                candidate = links[(self._rr + i) % n]
                client = candidate.client
                if client is not None and client.session.can_send and client.is_open and client.session.state.is_bound:
                    link = candidate
                    self._rr = (self._rr + i + 1) % n
                    break
            if link is None:
                return  # woken again by a response (window) or a link coming up
            if bucket is not None and not bucket.take():
                if self._pump_handle is None and self._loop is not None:
                    self._pump_handle = self._loop.call_later(bucket.wait_time(), self.pump)
                return
            job = queue.popleft()
            try:
                # answered by a direct call when the response is read: no Future per message
                link.client.send_callback(job.pdu, partial(self._done, job), job.record.pdu)  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - the connection went away between checks
                self._on_result(job, self, None, exc)
                continue
            self.in_flight += 1

    def _done(self, job: Job, response: Pdu | None, error: Exception | None) -> None:
        self.in_flight -= 1
        if error is None:
            self.sent += 1
        self._on_result(job, self, response, error)
        if self.queue:
            self.pump()
