"""The asyncio edge: one ``asyncio.Protocol`` per SMPP connection around a Session.

Everything protocol-shaped lives in :class:`smppcore.session.Session`; this module
only moves bytes and time in and out of it:

- one read path: every PDU of a chunk is framed, handled, and all the responses
  that chunk produced go out in a single ``transport.write``; the peer's requests
  of one read go to :meth:`SmppConnection.on_requests` in runs (at most a write's
  worth, nothing else of the read between them), so a handler may take them together;
- requests we send get a Future, resolved with the response (or failed with
  :class:`ResponseTimeout` / :class:`ConnectionClosed`), or a callback; a sender
  with many at once sends a batch (:meth:`SmppConnection.send_tracked`) and takes
  their answers in runs (:class:`AnswerSink`);
- back-pressure both ways: while the transport's write buffer is above its
  high-water mark we stop reading from the peer (so a peer that does not read
  cannot make us buffer without bound); senders wait while the window is full;
- timers: a single ``call_at`` handle, moved to :meth:`Session.next_timer`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .constants import CommandStatus, status_name
from .errors import SmppError
from .pdus import Pdu
from .session import (
    Bound,
    Closing,
    ConnectionLost,
    Outbound,
    ProtocolError,
    Reply,
    RequestRejected,
    RequestTimeout,
    Response,
    Role,
    Session,
    SessionConfig,
    SessionEvent,
    State,
    Unbound,
    UnexpectedResponse,
    WindowFull,
)

__all__ = [
    "SmppConnection", "SmppStatusError", "ResponseTimeout", "ConnectionClosed", "ResponseCallback", "AnswerSink",
]

#: ``callback(response, error)`` for :meth:`SmppConnection.send_callback`: one of the two is None.
ResponseCallback = Callable[["Pdu | None", "Exception | None"], None]

log = logging.getLogger("smppcore")

#: for is_open, asked per receipt sent: see smppcore.constants on Enum members on a hot path
_CLOSED = State.CLOSED

#: Write as soon as this many PDUs are queued, instead of at the end of the chunk or
#: the loop turn: the peer starts on them while we go on, so the two sides overlap
#: instead of taking turns (measured: ~1.6x messages/s at window 100, same CPU).
EARLY_FLUSH = 16


class SmppStatusError(SmppError):
    """A request was answered with a non-zero command_status."""

    def __init__(self, response: Pdu) -> None:
        self.response = response
        self.command_status = response.command_status
        super().__init__(f"{response.command_name}: {status_name(response.command_status)}")


class ResponseTimeout(SmppError, asyncio.TimeoutError):
    """No response arrived within the session's response timeout."""


class ConnectionClosed(SmppError, ConnectionError):
    """The connection went away before the request was answered."""


class AnswerSink(Protocol):
    """Who takes the answers to the requests a connection sent with :meth:`SmppConnection.send_tracked`.

    The sender's own object for each request (its context) comes back with the request's
    answer. The answers of one read come in runs: every answer read before the next PDU
    that is not one (a request from the peer, say) comes in one call, in the order read,
    so the sender acts on each run once, not once an answer. Neither method may block; an
    exception either raises is logged and does not reach the connection.
    """

    def answered(self, contexts: list[Any], responses: list[Pdu]) -> None:
        """``responses[i]`` answers the request sent with ``contexts[i]``, whatever its command_status."""

    def unanswered(self, context: Any, error: Exception) -> None:
        """The request sent with ``context`` gets no answer: :class:`ResponseTimeout` or :class:`ConnectionClosed`."""


class SmppConnection(asyncio.Protocol):
    """Base protocol for both roles. Subclasses implement :meth:`on_request`."""

    role: Role = Role.ESME

    def __init__(self, config: SessionConfig | None = None, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.config = config or SessionConfig()
        #: the loop's clock; asyncio's own loops read time.monotonic in a Python method, called here
        #: once per request sent and per chunk read: their clock is taken without that call
        own_clock = getattr(self.loop.time, "__func__", None) is asyncio.BaseEventLoop.time
        self.clock: Callable[[], float] = time.monotonic if own_clock else self.loop.time
        self.session = Session(self.role, self.config, clock=self.clock)
        self.transport: asyncio.Transport | None = None
        self.peername: Any = None
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.bound: asyncio.Future[State] = self.loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._read_pauses: set[str] = set()
        self._window_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._flush_scheduled = False
        #: who takes the answers to what :meth:`send_tracked` sends (set by the sender before it sends)
        self.answer_sink: AnswerSink | None = None

    # ---- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peername = transport.get_extra_info("peername")
        self.session.opened_at = self.session.last_received = self.session.last_activity = self.loop.time()
        self._reschedule()

    def data_received(self, data: bytes) -> None:
        session = self.session
        try:
            events = session.receive_data(data)
            if events:
                self.handle_events(events)
            if session.held:  # rare: PDUs wait behind a bind, or for answers to what came before
                self.release_held()
        except Exception:  # noqa: BLE001 - our bug: this connection ends, the loop and the others go on
            log.exception("failed on data from %s; closing the connection", self.peername)
            self.abort()
            return
        out = session.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)

    def release_held(self) -> None:
        """Handle what the session held behind a bind, now that the bind is decided.

        A loop, not a recursion: a held bind decided at once releases what follows it
        in the next round.
        """
        session = self.session
        while self.transport is not None:
            events = session.release_held()
            if not events:
                break
            self.handle_events(events)
        if session.held and not session.bind_pending and session.quota <= 0:
            # too many requests unanswered: read no more until answers go out (see SmscConnection.respond)
            self.pause_reading("unanswered")

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        events = self.session.connection_lost()
        if events:
            self.handle_events(events)
        for fut in self._window_waiters:
            if not fut.done():
                fut.set_exception(ConnectionClosed("connection closed"))
        self._window_waiters.clear()
        self._wake_drainers()
        if not self.bound.done():
            self.bound.set_exception(ConnectionClosed(self.session.close_reason or "connection closed before bind"))
            self.bound.exception()  # mark retrieved: nobody may be waiting
        if not self.closed.done():
            self.closed.set_result(None)
        self.transport = None
        self.on_closed(exc)

    def pause_writing(self) -> None:
        self._writing_paused = True
        self.pause_reading("write-backlog")

    def resume_writing(self) -> None:
        self._writing_paused = False
        self.resume_reading("write-backlog")
        self._wake_drainers()

    # ---- flow control -------------------------------------------------------------------

    def pause_reading(self, reason: str) -> None:
        if not self._read_pauses and self.transport is not None:
            self.transport.pause_reading()
        self._read_pauses.add(reason)

    def resume_reading(self, reason: str) -> None:
        if reason in self._read_pauses:
            self._read_pauses.discard(reason)
            if not self._read_pauses and self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if self._writing_paused and self.transport is not None:
            fut = self.loop.create_future()
            self._drain_waiters.append(fut)
            await fut

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # ---- sending ------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.transport is not None and self.session.state is not _CLOSED

    def send_nowait(self, pdu: Pdu, encoded: bytes | None = None) -> asyncio.Future[Pdu]:
        """Send a request now; the Future resolves with its response, whatever its status
        (a request that takes no response, outbind or alert_notification: with itself, once queued).

        ``encoded``: ``pdu`` already encoded, if the caller has it (see Session.send_request).

        Raises WindowFull when the window is full (see :meth:`send` to wait instead),
        InvalidState when the request is not allowed in this state, and
        ConnectionClosed when the connection is gone.
        """
        fut = self.loop.create_future()
        self._send(pdu, fut, encoded)
        return fut

    def send_callback(self, pdu: Pdu, callback: ResponseCallback, encoded: bytes | None = None) -> None:
        """Send a request now; ``callback(response, None)`` runs as soon as its response is
        read, or ``callback(None, error)`` when it times out (:class:`ResponseTimeout`) or
        the connection goes (:class:`ConnectionClosed`).

        For code that sends many requests and reacts to each answer (a hub's upstream
        queue, an outbox): no Future and no extra turn of the loop per request, the
        callback runs while the chunk that holds the response is handled. It must not
        block; an exception it raises is logged and does not reach the connection.
        Raises like :meth:`send_nowait`.
        """
        self._send(pdu, callback, encoded)

    def send_callbacks(self, pdus: Sequence[Pdu], callbacks: Sequence[ResponseCallback],
                       encoded: Sequence[bytes | None]) -> None:
        """:meth:`send_callback` for a batch (``pdus[i]`` answered to ``callbacks[i]``, ``encoded[i]``
        its bytes or None), checked and queued as one (:meth:`Session.send_requests`): a sender
        that has many requests for this connection at once (a hub's upstream queue) pays the
        checks, the clock and the flush once. Raises like :meth:`send_nowait`, or ValueError for
        a request that only :meth:`send_callback` sends (unbind, enquire_link, outbind,
        alert_notification), before any of them is queued.
        """
        self._send_batch(pdus, callbacks, encoded)

    def send_tracked(self, pdus: Sequence[Pdu], contexts: Sequence[Any], encoded: Sequence[bytes | None]) -> None:
        """:meth:`send_callbacks` whose answers go to :attr:`answer_sink` with ``contexts[i]``, the
        sender's own object for ``pdus[i]`` (not a callable, a Future or None): no callback made
        per request, and the answers of one read handed over in runs (see :class:`AnswerSink`).
        Raises like :meth:`send_callbacks`, and ValueError while no answer_sink is set.
        """
        if self.answer_sink is None:
            raise ValueError("send_tracked needs an answer_sink")
        self._send_batch(pdus, contexts, encoded)

    def _send_batch(self, pdus: Sequence[Pdu], contexts: Sequence[Any], encoded: Sequence[bytes | None]) -> None:
        if self.transport is None:
            raise ConnectionClosed("connection is closed")
        session = self.session
        session.send_requests(pdus, contexts, encoded)
        self._requests_queued()

    def _send(self, pdu: Pdu, context: Any, encoded: bytes | None) -> None:
        if self.transport is None:
            raise ConnectionClosed("connection is closed")
        session = self.session
        session.send_request(pdu, context, encoded)
        if pdu.response_type is None:  # outbind, alert_notification: nothing will answer, done once sent
            if callable(context):
                self._call(context, pdu, None)
            elif isinstance(context, asyncio.Future) and not context.done():
                context.set_result(pdu)
        self._requests_queued()

    def _requests_queued(self) -> None:
        """After requests joined the session's output: they go out now if a write's worth waits,
        else with the rest of this turn of the loop; and the timer is brought forward when their
        response deadline comes before it."""
        if len(self.session._out) >= EARLY_FLUSH:
            self._flush()
        elif not self._flush_scheduled:  # _flush_soon(), without one more call
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        timeout = self.config.response_timeout
        if timeout and self.clock() + timeout < self._timer_at:
            self._reschedule()

    async def send(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        """Wait for room in the window, send ``pdu``, return the Future of its response."""
        while pdu.response_type is not None and not self.session.can_send:
            await self.wait_for_window()
        return self.send_nowait(pdu)

    async def request(self, pdu: Pdu) -> Pdu:
        """Send ``pdu`` and return its response; raise SmppStatusError on an error status."""
        resp = await (await self.send(pdu))
        if resp.command_status != CommandStatus.ESME_ROK:
            raise SmppStatusError(resp)
        return resp

    async def wait_for_window(self) -> None:
        if self.session.can_send:
            return
        if self.transport is None:
            raise ConnectionClosed("connection is closed")
        fut = self.loop.create_future()
        self._window_waiters.append(fut)
        await fut

    def respond(self, response: Pdu) -> None:
        """Send a response (built with ``request.make_response(...)``)."""
        if self.transport is None:
            return
        self.session.send_response(response)
        self._flush_soon()

    def _flush_soon(self) -> None:
        # Everything queued in this turn of the loop goes out in one write: inside
        # data_received the write at the end of the chunk takes it, elsewhere the
        # callback below does.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out = self.session.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)

    async def unbind(self, timeout: float = 5.0) -> None:
        """Unbind politely and close; closes anyway when the peer does not answer."""
        if self.transport is None:
            return
        pdu = self.session.unbind()
        if pdu is not None:
            self._flush_soon()
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), timeout)
                return
            except (TimeoutError, SmppError):
                pass
        self.close()
        await asyncio.shield(self.closed)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # ---- events ------------------------------------------------------------------------

    def handle_events(self, events: list[SessionEvent]) -> None:
        waiters = self._window_waiters
        out = self.session._out
        # the run of answers to send_tracked's requests, handed to the answer_sink before anything else
        tracked: list[Any] = []
        answers: list[Pdu] = []
        # the run of requests from the peer (at most EARLY_FLUSH), handed over before anything else
        requests: list[Pdu] = []
        for ev in events:
            if isinstance(ev, Response):  # the common case first: an answer to one of ours
                if requests:
                    self.on_requests(requests)
                    requests = []
                ctx = ev.context
                if ctx is not None:
                    if callable(ctx):  # send_callback (a Future is not callable); _call's work, inline
                        try:
                            ctx(ev.pdu, None)
                        except Exception:  # noqa: BLE001 - the caller's bug must not end the connection
                            log.exception("response callback failed")
                    elif isinstance(ctx, asyncio.Future):
                        if not ctx.done():
                            ctx.set_result(ev.pdu)
                    else:  # send_tracked's
                        tracked.append(ctx)
                        answers.append(ev.pdu)
                if waiters:
                    self._window_freed()
                continue
            if tracked:
                self._hand_answers(tracked, answers)
                tracked, answers = [], []
            if isinstance(ev, Pdu):
                requests.append(ev)
                if len(requests) >= EARLY_FLUSH:  # a run is one write's worth of answers at most
                    self.on_requests(requests)
                    requests = []
                continue
            if requests:
                self.on_requests(requests)
                requests = []
            if isinstance(ev, Reply):
                out.append(ev.data)
            elif isinstance(ev, RequestTimeout):
                what = f"no response to {ev.request.command_name} seq={ev.request.sequence_number}"
                self._fail(ev.context, ResponseTimeout(what))
                self._window_freed()
            elif isinstance(ev, ConnectionLost):
                self._fail(ev.context, ConnectionClosed(self.session.close_reason or "connection closed"))
            elif isinstance(ev, Bound):
                if not self.bound.done():
                    self.bound.set_result(ev.state)
                self.on_bound(ev)
            elif isinstance(ev, Unbound):
                self.on_unbound(ev)
            elif isinstance(ev, Closing):
                log.info("closing %s: %s", self.peername, ev.reason)
                self._close_after_flush()
            elif isinstance(ev, ProtocolError):
                log.warning("bad PDU from %s: %s", self.peername, ev.error)
            elif isinstance(ev, RequestRejected):
                log.info("rejected %s from %s: %s", ev.pdu.command_name, self.peername, status_name(ev.command_status))
            elif isinstance(ev, UnexpectedResponse):
                log.info("unexpected %s seq=%d from %s", ev.pdu.command_name, ev.pdu.sequence_number, self.peername)
            elif isinstance(ev, Outbound):
                self.on_outbind(ev.pdu)
        if tracked:
            self._hand_answers(tracked, answers)
        if requests:
            self.on_requests(requests)

    def _hand_answers(self, contexts: list[Any], responses: list[Pdu]) -> None:
        """A run of answers to send_tracked's requests, to the answer_sink (set: send_tracked asks)."""
        sink = self.answer_sink
        if sink is None:  # taken away since: nobody to tell
            log.error("%d answers and no answer_sink to take them", len(responses))
            return
        try:
            sink.answered(contexts, responses)
        except Exception:  # noqa: BLE001 - the caller's bug must not end the connection
            log.exception("answer sink failed")

    def _fail(self, ctx: Any, error: Exception) -> None:
        if ctx is None:
            return
        if callable(ctx):
            self._call(ctx, None, error)
        elif isinstance(ctx, asyncio.Future):
            if not ctx.done():
                ctx.set_exception(error)
        elif self.answer_sink is not None:  # send_tracked's
            try:
                self.answer_sink.unanswered(ctx, error)
            except Exception:  # noqa: BLE001 - the caller's bug must not end the connection
                log.exception("answer sink failed")

    @staticmethod
    def _call(callback: ResponseCallback, response: Pdu | None, error: Exception | None) -> None:
        try:
            callback(response, error)
        except Exception:  # noqa: BLE001 - the caller's bug must not end the connection
            log.exception("response callback failed")

    def _window_freed(self) -> None:
        waiters = self._window_waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                break

    def _close_after_flush(self) -> None:
        out = self.session.data_to_send()
        if self.transport is not None:
            if out:
                self.transport.write(out)
            self.transport.close()

    # ---- timers --------------------------------------------------------------------------

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        at = self.session.next_timer()
        if at is None or self.transport is None:
            self._timer_at = float("inf")
            return
        self._timer_at = at
        self._timer = self.loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        events = self.session.tick()
        if events:
            self.handle_events(events)
        self._flush()
        if self.transport is not None:
            self._reschedule()

    # ---- for subclasses -------------------------------------------------------------------

    def on_requests(self, pdus: list[Pdu]) -> None:
        """A run of requests from the peer read together (at most :data:`EARLY_FLUSH`, nothing else
        of the read between them), in order: :meth:`on_request` for each, and what they queued
        written as soon as it is a write's worth, so the peer starts on it while we go on.
        A subclass that gains from seeing them together overrides this (the SMSC side does)."""
        out = self.session._out
        for pdu in pdus:
            self.on_request(pdu)
            if len(out) >= EARLY_FLUSH and self.transport is not None:
                self.transport.write(self.session.data_to_send())

    def on_request(self, pdu: Pdu) -> None:
        """A request from the peer, allowed in this state. Answer it with :meth:`respond`."""
        if pdu.response_type is not None:
            self.respond(pdu.make_response(command_status=CommandStatus.ESME_RX_R_APPN))

    def on_bound(self, event: Bound) -> None:
        pass

    def on_outbind(self, pdu: Pdu) -> None:
        pass

    def on_unbound(self, event: Unbound) -> None:
        """The unbind handshake is over: close once what is queued is written."""
        self.session.answer_unbind()
        self._close_after_flush()

    def on_closed(self, exc: Exception | None) -> None:
        pass


__all__ += ["WindowFull"]
