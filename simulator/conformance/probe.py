"""The SMSC that ``check-esme`` plays: it answers the ESME and writes down what it saw.

A conformance run needs what a normal SMSC hides: the exact moment each request
arrived and each answer went out, answers held back on purpose, responses whose
sequence number matches nothing (the ESME got it wrong), a PDU no SMSC may send.
So this is not :mod:`smppcore.server` with a handler but a small
``asyncio.Protocol`` of its own around :class:`smppcore.Session` (SMSC role): the
session still frames, numbers, and polices what may be sent in which state; this
module only moves bytes, keeps the clock readings, and lets the running check
decide each submit through a :class:`SubmitPolicy`.

Everything kept is bounded (see the ``MAX_*`` constants): an ESME that floods the
checker costs counters, not memory. The session runs with no timers of its own
(no response timeout, no keep-alive, no bind timeout): every wait is a check's,
bounded by the check, and the run closes whatever is left when it ends.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import itertools
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import structlog

from smppcore import CommandId, CommandStatus, Pdu, Role, Session, SessionConfig, State, Tag
from smppcore.session_events import (
    Closing,
    ConnectionLost,
    ProtocolError,
    Reply,
    RequestRejected,
    Response,
    SessionEvent,
    Unbound,
    UnexpectedResponse,
)
from smppcore.session_states import BIND_COMMANDS

__all__ = [
    "Harness",
    "ProbeConnection",
    "SubmitPolicy",
    "AcceptAll",
    "BindSeen",
    "Answer",
    "message_key",
    "MessageKey",
    "Accepted",
    "Sent",
]

log = structlog.get_logger("smpphub.check_esme")

#: connections the checker keeps at once (an ESME has one, or a tx and an rx)
MAX_CONNECTIONS = 16
#: binds, stray responses, enquire_links and protocol errors remembered (oldest dropped)
MAX_RECORDS = 256
#: requests read and not answered yet, per connection, before reading stops
MAX_UNANSWERED = 10_000

_SUBMITS = frozenset({CommandId.SUBMIT_SM, CommandId.DATA_SM, CommandId.SUBMIT_MULTI})

class MessageKey(NamedTuple):
    """How a retry is told from a new message: the same addresses and text again."""

    source_addr: str
    destination_addr: str
    text: bytes


def message_key(pdu: Pdu) -> MessageKey:
    """The identity of a submitted message, to recognise it when the ESME sends it again."""
    text = getattr(pdu, "short_message", b"") or pdu.tlvs.get(Tag.MESSAGE_PAYLOAD, b"")
    if not isinstance(text, bytes):
        text = str(text).encode()
    return MessageKey(getattr(pdu, "source_addr", ""), getattr(pdu, "destination_addr", ""), text)


@dataclass(frozen=True)
class Accepted:
    """A submit the checker accepted, and the message_id it gave (a receipt needs one)."""

    submit: Pdu
    message_id: str


@dataclass(frozen=True)
class Sent:
    """A PDU the checker wrote raw: its sequence number and when it went out."""

    sequence_number: int
    at: float


@dataclass(frozen=True)
class BindSeen:
    """A bind request as it arrived, and what the checker answered."""

    command_id: int
    system_id: str
    system_type: str
    interface_version: int
    address_range: str
    peer: str
    at: float
    status: int  # 0: accepted

    @property
    def bind_type(self) -> str:
        return CommandId(self.command_id).name.lower()


@dataclass(frozen=True)
class Answer:
    """A response to one of the checker's requests, with when it came."""

    pdu: Pdu | None  # None: the connection went away first
    sent_at: float
    at: float

    @property
    def elapsed(self) -> float:
        return self.at - self.sent_at


class SubmitPolicy(Protocol):
    """How the running check answers submits: a status now, or None to hold the answer."""

    def decide(self, conn: ProbeConnection, pdu: Pdu, now: float) -> int | None: ...


class AcceptAll:
    """Between checks: every submit is accepted at once."""

    def decide(self, conn: ProbeConnection, pdu: Pdu, now: float) -> int | None:
        return CommandStatus.ESME_ROK


@dataclass
class Harness:
    """The shared state of one run: connections, what they saw, the submit policy.

    Checks read it and wait on it (:meth:`wait_until`); connections write to it.
    """

    system_id: str | None = None
    password: str | None = None
    #: time.perf_counter, not the loop's clock: uvloop's reads in whole milliseconds
    clock: Callable[[], float] = time.perf_counter
    policy: SubmitPolicy = field(default_factory=AcceptAll)
    connections: set[ProbeConnection] = field(default_factory=set)
    binds: collections.deque[BindSeen] = field(default_factory=lambda: collections.deque(maxlen=MAX_RECORDS))
    esme_enquire_links: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=MAX_RECORDS))
    protocol_errors: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=MAX_RECORDS))
    submits: int = 0
    accepted: int = 0
    last_accepted: Accepted | None = None
    refused_connections: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def changed(self) -> None:
        """Something was seen: wake every :meth:`wait_until`."""
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until ``predicate()``; whether it came true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while not predicate():
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return predicate()
        return True

    def bound(self) -> list[ProbeConnection]:
        return [c for c in self.connections if c.session.state.is_bound]

    def receivers(self) -> list[ProbeConnection]:
        """Bound connections that may be sent deliver_sm (receiver or transceiver)."""
        return [c for c in self.bound() if c.session.state in (State.BOUND_RX, State.BOUND_TRX)]

    def authenticate(self, bind: Pdu) -> int:
        """ESME_ROK, or why the bind is refused (--system-id / --password; compared in constant time)."""
        if self.system_id is not None and not _same(getattr(bind, "system_id", ""), self.system_id):
            return CommandStatus.ESME_RINVSYSID
        if self.password is not None and not _same(getattr(bind, "password", ""), self.password):
            return CommandStatus.ESME_RINVPASWD
        return CommandStatus.ESME_ROK

    def next_message_id(self) -> str:
        return str(next(self._ids))

    def release_all(self) -> None:
        """Answer every held submit with ESME_ROK (a hold policy ended)."""
        for conn in list(self.connections):
            conn.release_held()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


class ProbeConnection(asyncio.Protocol):
    """One ESME connection to the checker."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        config = SessionConfig(
            response_timeout=0, bind_timeout=0, enquire_link_interval=0, max_unanswered=MAX_UNANSWERED
        )
        self.session = Session(Role.SMSC, config, clock=harness.clock)
        self.session.answer_enquire_link = False  # seen (counted), then answered here
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        #: requests read and not answered yet: sequence_number -> the request
        self.unanswered: dict[int, Pdu] = {}
        self.held: list[Pdu] = []
        self.duplicate_sequence_numbers = 0
        #: responses that matched no request of ours (a wrong sequence number, an
        #: answer to a PDU sent raw): the checks look for theirs here
        self.stray: collections.deque[Answer] = collections.deque(maxlen=MAX_RECORDS)
        self.closed_at: float | None = None
        self._paused: set[str] = set()  # why reading is paused: "unanswered", "write"
        self.opened_at = harness.clock()

    # ---- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if len(self.harness.connections) >= MAX_CONNECTIONS:
            self.harness.refused_connections += 1
            log.warning("esme_connection_refused", peer=self.peer, reason="too_many_connections",
                        limit=MAX_CONNECTIONS)
            transport.close()
            return
        self.harness.connections.add(self)
        self.harness.changed()

    def data_received(self, data: bytes) -> None:
        self._handle(self.session.receive_data(data))
        self._drain_held()

    def _drain_held(self) -> None:
        """Handle what the session held back (behind a bind, or past MAX_UNANSWERED), then
        write; read no more while requests wait for the answers a hold policy keeps."""
        session = self.session
        while session.held and not session.bind_pending and session.quota > 0 and self.transport is not None:
            self._handle(session.release_held())
        self._flush()
        if session.held and session.quota <= 0:
            self._pause("unanswered")
        else:
            self._resume("unanswered")

    def pause_writing(self) -> None:
        """The ESME does not read its answers: read no more of its requests until it does,
        so a flood costs the transport's high-water mark, not memory without bound."""
        self._pause("write")

    def resume_writing(self) -> None:
        self._resume("write")

    def _pause(self, reason: str) -> None:
        if not self._paused and self.transport is not None:
            self.transport.pause_reading()
        self._paused.add(reason)

    def _resume(self, reason: str) -> None:
        if reason in self._paused:
            self._paused.discard(reason)
            if not self._paused and self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._handle(self.session.connection_lost())
        self.transport = None
        self.closed_at = self.harness.clock()
        self.harness.connections.discard(self)
        self.harness.changed()

    # ---- what the ESME sends ----------------------------------------------------------

    def _handle(self, events: Sequence[SessionEvent]) -> None:
        harness = self.harness
        now = harness.clock()
        for ev in events:
            if isinstance(ev, Pdu):
                self._on_request(ev, now)
            elif isinstance(ev, Response):
                context = ev.context
                if isinstance(context, asyncio.Future) and not context.done():
                    context.set_result(ev.pdu)
            elif isinstance(ev, UnexpectedResponse):
                self.stray.append(Answer(ev.pdu, now, now))
            elif isinstance(ev, ConnectionLost):
                context = ev.context
                if isinstance(context, asyncio.Future) and not context.done():
                    context.set_result(None)
            elif isinstance(ev, Reply):
                self._write(self.session.data_to_send() + ev.data)
            elif isinstance(ev, ProtocolError):
                harness.protocol_errors.append(f"{self.peer}: {ev.error}")
            elif isinstance(ev, RequestRejected):
                harness.protocol_errors.append(
                    f"{self.peer}: {ev.pdu.command_name} not allowed in state {self.session.state.value}"
                )
            elif isinstance(ev, Unbound | Closing):
                self._write(self.session.data_to_send())
                if self.transport is not None:
                    self.transport.close()
        harness.changed()

    def _on_request(self, pdu: Pdu, now: float) -> None:
        cid = pdu.command_id
        harness = self.harness
        if cid in BIND_COMMANDS:
            status = harness.authenticate(pdu)
            harness.binds.append(BindSeen(
                cid, getattr(pdu, "system_id", ""), getattr(pdu, "system_type", ""),
                getattr(pdu, "interface_version", 0), getattr(pdu, "address_range", ""), self.peer, now, status,
            ))
            if status:
                self.session.reject_bind(pdu, status)
            else:
                self.session.accept_bind(pdu, "check-esme")
            return
        if cid == CommandId.ENQUIRE_LINK:
            harness.esme_enquire_links.append(now)
            self._answer(pdu, pdu.make_response())
            return
        if pdu.sequence_number in self.unanswered:
            self.duplicate_sequence_numbers += 1
        self.unanswered[pdu.sequence_number] = pdu
        if cid not in _SUBMITS:
            self._answer(pdu, pdu.make_response(command_status=CommandStatus.ESME_RINVCMDID))
            return
        harness.submits += 1
        decided = harness.policy.decide(self, pdu, now)
        if decided is None:
            self.held.append(pdu)
        else:
            self._answer_submit(pdu, decided)

    def _answer_submit(self, pdu: Pdu, status: int) -> None:
        harness = self.harness
        if status:
            self._answer(pdu, pdu.make_response(command_status=status))
            return
        message_id = harness.next_message_id()
        harness.accepted += 1
        harness.last_accepted = Accepted(pdu, message_id)
        self._answer(pdu, pdu.make_response(message_id=message_id))

    def _answer(self, request: Pdu, response: Pdu) -> None:
        self.unanswered.pop(request.sequence_number, None)
        self.session.quota += 1
        self.session.send_response(response)

    def release_held(self) -> None:
        """Answer the submits a hold policy kept, ESME_ROK, in the order they came."""
        held, self.held = self.held, []
        for pdu in held:
            self._answer_submit(pdu, CommandStatus.ESME_ROK)
        self._drain_held()

    # ---- what the checker sends --------------------------------------------------------

    async def request(self, pdu: Pdu, timeout: float) -> Answer:
        """Send ``pdu`` and wait (bounded) for its response; ``Answer.pdu`` None: none came."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Pdu | None] = loop.create_future()
        sent_at = self.harness.clock()
        if self.transport is None:
            return Answer(None, sent_at, sent_at)
        self.session.send_request(pdu, future)
        self._flush()
        try:
            response = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            response = None
        return Answer(response, sent_at, self.harness.clock())

    def send_raw(self, command_id: int, body: bytes = b"") -> Sent:
        """Write a PDU the session would refuse to build (an unknown command id, a bad
        field), numbered from the session's sequence numbers."""
        seq = self.session.next_sequence_number()
        self._flush()
        self._write(struct.pack("!IIII", 16 + len(body), command_id, 0, seq) + body)
        return Sent(seq, self.harness.clock())

    def drop(self) -> None:
        """Cut the TCP connection without an unbind, as a crashed SMSC would."""
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # ---- bytes out ---------------------------------------------------------------------

    def _flush(self) -> None:
        self._write(self.session.data_to_send())

    def _write(self, data: bytes) -> None:
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
