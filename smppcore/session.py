"""The SMPP session as a sans-IO state machine.

A :class:`Session` is fed the bytes that arrived (:meth:`Session.receive_data`)
and returns events; what it wants to send accumulates until the I/O layer takes it
with :meth:`Session.data_to_send` (one write for everything a chunk produced).
It never reads a clock by itself and never sleeps: time comes from the ``clock``
callable given to it, and :meth:`Session.tick` fires the timers. Tests drive it
with a fake clock and plain bytes.

The session answers on its own what the protocol fixes: enquire_link, unbind,
a request not allowed in the current state (ESME_RINVBNDSTS, or ESME_RALYBND for
a second bind), an unknown command id (generic_nack ESME_RINVCMDID) and a PDU
that does not decode (its response, or generic_nack, with the decoder's status).
Everything else (binds to authenticate, messages to answer, responses to the
caller's requests) comes out as events.

A bind is a barrier in the stream (SMSC side): the PDUs that came after it, in the
same chunk or later, wait in the session until the caller decides the bind with
:meth:`Session.accept_bind` or :meth:`Session.reject_bind`, and
:meth:`Session.release_held` then hands them out, judged in the state the bind left.
A client that pipelines (bind and submit_sm in one write) gets its submit handled as
bound, two binds in one write get ESME_ROK then ESME_RALYBND, and the bind's response
goes out before any response to what followed it.

The roles, states and table of allowed requests live in :mod:`smppcore.session_states`,
the events in :mod:`smppcore.session_events`; this module re-exports both.
"""

from __future__ import annotations

import collections
import math
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .codec import DEFAULT_MAX_PDU_SIZE, Framer, encode, encode_all, encode_status_responses
from .constants import CommandId as C
from .constants import CommandStatus
from .errors import PduError
from .pdus import (
    PDU_TYPES,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    Unbind,
    UnbindResp,
)
from .session_events import (
    Bound,
    Closing,
    ConnectionLost,
    Event,
    Outbound,
    ProtocolError,
    Reply,
    RequestRejected,
    RequestTimeout,
    Response,
    SessionEvent,
    Unbound,
    UnexpectedResponse,
)
from .session_states import (
    ALLOWED_REQUESTS,
    BIND_COMMANDS,
    BIND_REQUESTS,
    BIND_STATE,
    InvalidState,
    Role,
    State,
)
from .session_states import BIND_TYPES as BIND_TYPES  # re-exported: the client's bind types
from .session_states import BindRequest as BindRequest  # re-exported for the client
from .window import Pending, SequenceNumbers, Window, WindowFull

#: State.is_bound as a set, asked without a property call (the upstream pump asks per message)
_BOUND_STATES = frozenset(state for state in State if state.is_bound)
# Enum members named in the per-PDU methods below, by module constants (a submit_sm_resp met
# four of them on its way through): see smppcore.constants on Enum members on a hot path
_OPEN, _CLOSED = State.OPEN, State.CLOSED
_ENQUIRE_LINK, _UNBIND, _OUTBIND = C.ENQUIRE_LINK, C.UNBIND, C.OUTBIND
_SUBMIT_SM, _DELIVER_SM = C.SUBMIT_SM, C.DELIVER_SM
#: ``[role][state]``: the requests :meth:`Session.send_requests` takes, those allowed that need none of
#: send_request's own bookkeeping (unbind, enquire_link, and the untracked outbind and alert_notification)
_PLAIN_REQUESTS: dict[Role, dict[State, frozenset[int]]] = {
    role: {
        state: frozenset(cid for cid in allowed if cid not in (_UNBIND, _ENQUIRE_LINK)
                         and PDU_TYPES[cid].response_type is not None)
        for state, allowed in by_state.items()
    }
    for role, by_state in ALLOWED_REQUESTS.items()
}


#: What the session queues to send: bytes, or a request's stored bytes patched in a copy of them
Wire = bytes | bytearray

_patch_u32 = struct.Struct(">I").pack_into


def _wires(pdus: Sequence[Pdu], encoded: Sequence[bytes | None], next_seq: Callable[[], int]) -> list[Wire]:
    """The requests' bytes as sent, each given the next sequence number (set on the PDU too):
    ``encoded[i]`` (``pdus[i]`` already encoded, any sequence number) with it patched in, or the
    PDU encoded when there are none.

    The patch is a copy of the bytes with four octets written over in place, inline in this
    loop: slicing the bytes around the sequence number and formatting them together again, in
    a call a request, cost 3.7k instructions where this costs 2.2k (callgrind).
    """
    wire: list[Wire] = []
    append = wire.append
    for pdu, data in zip(pdus, encoded, strict=True):
        pdu.sequence_number = seq = next_seq()
        if data is None:
            append(encode(pdu))
        else:
            patched = bytearray(data)
            _patch_u32(patched, 12, seq)
            append(patched)
    return wire


__all__ = [
    "Role",
    "State",
    "Session",
    "SessionConfig",
    "Response",
    "UnexpectedResponse",
    "RequestRejected",
    "ProtocolError",
    "RequestTimeout",
    "Bound",
    "Unbound",
    "Outbound",
    "ConnectionLost",
    "Closing",
    "Reply",
    "WindowFull",
    "InvalidState",
    "ALLOWED_REQUESTS",
    "NO_DEADLINE",
    "Event",
    "SessionEvent",
]

#: The quota of a session that never runs out (the ESME side: deliver_sm has its own window).
NO_QUOTA = 1 << 62

#: The deadline of a request that has none (``response_timeout=0``): later than any clock.
NO_DEADLINE = math.inf


# --- configuration -----------------------------------------------------------------


class SessionConfig:
    """Limits and timers of one session; every one has a safe default.

    Times are seconds; 0 disables a timer:

    - ``response_timeout``: how long a request waits for its response before a
      :class:`RequestTimeout`. 0 means no response timeout: a request waits as long
      as the connection lives. Dead-peer detection does not depend on it: the
      keep-alive enquire_link must be answered within ``response_timeout``, or within
      ``enquire_link_interval`` when that is 0, whatever else is in flight.
    - ``bind_timeout``: how long a connection may stay unbound.
    - ``enquire_link_interval``: silence from the peer after which we send an
      enquire_link (0: never; then nothing detects a dead peer but TCP itself).
    - ``inactivity_timeout``: how long without a PDU other than keep-alives before
      the session closes (0: never).

    ``max_unanswered`` (server side): requests read from the peer and not answered
    yet, on one connection, above which the server stops reading it until half are
    answered. A client that keeps to its window never gets near the default (ten
    times the default window); one that floods without reading its answers cannot
    make the server hold more than this (plus one read's worth).
    """

    __slots__ = (
        "window",
        "response_timeout",
        "bind_timeout",
        "enquire_link_interval",
        "inactivity_timeout",
        "max_pdu_size",
        "max_unanswered",
    )

    def __init__(
        self,
        *,
        window: int = 100,
        response_timeout: float = 30.0,
        bind_timeout: float = 30.0,
        enquire_link_interval: float = 30.0,
        inactivity_timeout: float = 0.0,
        max_pdu_size: int = DEFAULT_MAX_PDU_SIZE,
        max_unanswered: int = 1000,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        if max_unanswered < 1:
            raise ValueError("max_unanswered must be at least 1")
        for name, value in (
            ("response_timeout", response_timeout),
            ("bind_timeout", bind_timeout),
            ("enquire_link_interval", enquire_link_interval),
            ("inactivity_timeout", inactivity_timeout),
        ):
            if value < 0:
                raise ValueError(f"{name} must not be negative")
        self.window = window
        self.response_timeout = response_timeout
        self.bind_timeout = bind_timeout
        self.enquire_link_interval = enquire_link_interval
        self.inactivity_timeout = inactivity_timeout
        self.max_pdu_size = max_pdu_size
        self.max_unanswered = max_unanswered


# --- the session --------------------------------------------------------------------


class Session:
    """One side (``role``) of one SMPP connection."""

    def __init__(
        self,
        role: Role,
        config: SessionConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.role = role
        self.config = config or SessionConfig()
        self.clock = clock
        self.state = _OPEN
        self.system_id = ""  # the peer's (SMSC side) or the SMSC's (ESME side) system_id
        self.window = Window(self.config.window)
        self.framer = Framer(self.config.max_pdu_size)
        self._seq = SequenceNumbers()
        self._out: list[Wire] = []
        now = clock()
        self.opened_at = now
        self.last_received = now
        self.last_activity = now  # last non-keepalive PDU either way
        self._link_probe: int | None = None  # sequence number of our unanswered enquire_link
        # when that enquire_link counts as unanswered: kept here, not only in the window,
        # because with response_timeout=0 the requests before it have no deadline and
        # the window (ordered by deadline) would never reach it
        self._probe_deadline = NO_DEADLINE
        self._unbinding = False
        self._behind = False  # this chunk handed a request to the application: answers of our own wait in line
        self._may_send = ALLOWED_REQUESTS[role]
        self._may_receive = ALLOWED_REQUESTS[role.peer]
        self.close_reason = ""
        #: PDUs read after a bind that is not decided yet (see :meth:`release_held`)
        self.held: collections.deque[Pdu | PduError] = collections.deque()
        #: a bind went to the application and awaits accept_bind / reject_bind
        self.bind_pending = False
        #: SMSC side: the peer unbound while the application still owed answers; this
        #: unbind_resp goes out after them (see :meth:`answer_unbind`), or the peer, which
        #: closes on it, would never read them
        self.unbind_response: bytes | None = None
        #: requests the session may still hand to the application; at 0 the rest of the
        #: stream waits in :attr:`held`. The caller gives one back per answer (the server
        #: does: SessionConfig.max_unanswered); accept_bind / reject_bind give theirs back.
        self.quota = self.config.max_unanswered if role is Role.SMSC else NO_QUOTA
        #: False hands enquire_link to the application instead of answering it
        #: (a simulator uses this to play a hung peer).
        self.answer_enquire_link = True

    # ---- sending -------------------------------------------------------------------

    @property
    def can_send(self) -> bool:
        """True while the window has room for another request."""
        window = self.window
        return len(window._pending) < window.size  # not len(window): Window.__len__ is a Python call

    @property
    def room(self) -> int:
        """Requests that may go now: the window's free places while bound, else 0 (a sender asks once
        for a batch of them, see :meth:`send_requests`)."""
        window = self.window
        return window.size - len(window._pending) if self.state in _BOUND_STATES else 0

    def next_sequence_number(self) -> int:
        """Take a sequence number for a request the caller tracks itself.

        A bulk sender that writes prepared submit_sm bytes and matches the responses
        on its own (the load generator) takes its numbers here, so that they never
        collide with the requests this session tracks in its window.
        """
        return self._seq.next()

    def send_request(self, pdu: Pdu, context: Any = None, encoded: bytes | None = None) -> Pdu:
        """Queue a request: give it the next sequence number and track it in the window.

        ``encoded``, when given, is ``pdu`` already encoded (any sequence number):
        only its sequence number is patched, which spares a hub that stored the
        bytes a second encoding. Raises :class:`InvalidState` if our role may not
        send it in this state and :class:`WindowFull` if the window is full.
        Returns the PDU as sent.

        outbind and alert_notification take no response (SMPP 3.4, 4.1.7 and 4.12):
        they get a sequence number and go out, but never enter the window, where they
        would hold a slot until the response timeout and then fail as unanswered.
        """
        cid = pdu.command_id
        if cid not in self._may_send[self.state]:
            raise InvalidState(f"{self.role.value} may not send {pdu.command_name} in state {self.state.value}")
        window = self.window
        untracked = pdu.response_type is None
        if not untracked and len(window._pending) >= window.size:
            raise WindowFull(f"{window.size} requests already in flight")
        data = _wires((pdu,), (encoded,), self._seq.next)[0]
        seq = pdu.sequence_number
        if untracked:
            self._out.append(data)
            return pdu
        now = self.clock()
        timeout = self.config.response_timeout
        window.add(pdu, context, now + timeout if timeout else NO_DEADLINE)
        self._out.append(data)
        if cid == _UNBIND:
            self._unbinding = True
        elif cid == _ENQUIRE_LINK and self._link_probe is None:
            self._link_probe = seq
            self._probe_deadline = now + self._probe_timeout()
        return pdu

    def send_requests(self, pdus: Sequence[Pdu], contexts: Sequence[Any], encoded: Sequence[bytes | None]) -> None:
        """:meth:`send_request` for a batch: ``pdus[i]`` with ``contexts[i]`` and ``encoded[i]``, in order.

        For the requests a sender queues by the hundred (submit_sm, data_sm, deliver_sm...):
        the state's rule, the window's room and the clock are asked once for the whole batch,
        not once a request. All or nothing: it raises :class:`InvalidState` (a request our role
        may not send in this state), ``ValueError`` (unbind, enquire_link, outbind or
        alert_notification, whose bookkeeping is :meth:`send_request`'s) or :class:`WindowFull`
        (no room for all of them) before it queues any.
        """
        plain = _PLAIN_REQUESTS[self.role][self.state]
        for pdu in pdus:
            if pdu.command_id not in plain:
                if pdu.command_id in self._may_send[self.state]:
                    raise ValueError(f"{pdu.command_name} goes through send_request")
                raise InvalidState(f"{self.role.value} may not send {pdu.command_name} in state {self.state.value}")
        wire = _wires(pdus, encoded, self._seq.next)
        timeout = self.config.response_timeout
        self.window.add_all(pdus, contexts, self.clock() + timeout if timeout else NO_DEADLINE)  # or WindowFull
        self._out += wire

    def _probe_timeout(self) -> float:
        """How long an enquire_link may go unanswered before the peer counts as dead."""
        cfg = self.config
        return cfg.response_timeout or cfg.enquire_link_interval or NO_DEADLINE

    def send_response(self, pdu: Pdu) -> None:
        """Queue a response (its sequence_number set by ``request.make_response``)."""
        self._out.append(encode(pdu))

    def send_responses(self, pdus: Iterable[Pdu]) -> None:
        """:meth:`send_response` for each of ``pdus``, in order."""
        self._out += encode_all(pdus)

    def answer(self, requests: Iterable[Pdu], command_status: int = 0) -> None:
        """Queue the response to each of ``requests`` (that takes one) with ``command_status``
        and every field at its default: what ``send_response(request.make_response(command_status=...))``
        queues, written without making the responses (a client answers every deliver_sm so).
        """
        self._out += encode_status_responses(requests, command_status)

    def accept_bind(self, request: Pdu, system_id: str = "") -> None:
        """SMSC side: answer ``request`` (a bind) with success and enter its bound state."""
        if self.state is not _OPEN:
            raise InvalidState(f"cannot accept a bind in state {self.state.value}")
        if not isinstance(request, BIND_REQUESTS):
            raise TypeError(f"accept_bind takes a bind request, not {request.command_name}")
        self.bind_pending = False
        self.quota += 1
        self.send_response(request.make_response(system_id=system_id))
        self.state = BIND_STATE[request.command_id]
        self.system_id = request.system_id

    def reject_bind(self, request: Pdu, status: int = CommandStatus.ESME_RBINDFAIL) -> None:
        """SMSC side: answer ``request`` (a bind) with an error; the session stays OPEN."""
        self.bind_pending = False
        self.quota += 1
        self.send_response(request.make_response(command_status=status))

    def answer_unbind(self) -> None:
        """Queue the unbind_resp held back by :attr:`unbind_response` (no-op if none)."""
        if self.unbind_response is not None:
            self._out.append(self.unbind_response)
            self.unbind_response = None

    def unbind(self, context: Any = None) -> Pdu | None:
        """Start the unbind handshake (if bound); None if there is nothing to unbind."""
        if not self.state.is_bound or self._unbinding:
            return None
        return self.send_request(Unbind(), context)

    def data_to_send(self) -> bytes:
        """Everything queued since the last call, as one buffer for one write."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data if type(data) is bytes else bytes(data)

    # ---- receiving ------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[SessionEvent]:
        """Feed bytes from the peer; returns the events they produce, in order.

        Requests the application must answer come out as the PDU objects
        themselves (``pdu.is_response`` is False); everything else is an
        :class:`Event`. On the SMSC side a bind ends the list: what follows it
        waits in :attr:`held` until the bind is decided (see :meth:`release_held`).
        """
        if self.state is _CLOSED:
            return []
        items = self.framer.feed(data)
        now = self.last_received = self.clock()
        if self.held or self.bind_pending:  # rare: the stream waits behind a bind or for answers
            self.held.extend(items)
            return self.release_held()
        return self._receive(items, now, None)

    def release_held(self) -> list[SessionEvent]:
        """The events of the PDUs held behind a bind, now that it is decided.

        Call it after :meth:`accept_bind` / :meth:`reject_bind` (and again while
        :attr:`held` is not empty: a held bind holds what follows it in turn).
        Returns [] while a bind is still pending.
        """
        held = self.held
        if self.bind_pending or not held or self.state is _CLOSED or self.quota <= 0:
            return []
        return self._receive(_popping(held), self.clock(), held)

    def _receive(
        self, items: Iterable[Pdu | PduError], now: float, held: collections.deque[Pdu | PduError] | None
    ) -> list[SessionEvent]:
        """Judge ``items`` in order. ``held``: they are popped from it (what stays, waits)."""
        events: list[SessionEvent] = []
        allowed = self._may_receive[self.state]
        opening = self.state is _OPEN
        behind = self._behind = False
        quota = self.quota
        pending = self.window._pending
        it = iter(items)
        for pdu in it:
            if isinstance(pdu, PduError):
                self._protocol_error(pdu, events)
                if pdu.fatal:
                    self.held.clear()
                    break
                continue
            cid = pdu.command_id
            if pdu.is_response:
                entry = pending.pop(pdu.sequence_number, None)
                if entry is not None:
                    request = entry.request
                    rcid = request.command_id
                    if (rcid == _SUBMIT_SM or rcid == _DELIVER_SM) and cid == rcid | 0x80000000:
                        # the answers to messages, nearly every response: judged here, where a call
                        # of _on_response and of Window.pop cost ~1.2k instructions a response
                        self.last_activity = self.last_received
                        events.append(Response(pdu, request, entry.context))
                        continue
                state = self.state
                self._on_response(pdu, entry, events)
                if self.state is not state:  # a bind or unbind answered: judge what follows in the new state
                    allowed = self._may_receive[self.state]
                    opening = self.state is _OPEN
            elif cid in allowed:
                if cid == _ENQUIRE_LINK and self.answer_enquire_link:
                    self._answer(encode(EnquireLinkResp(sequence_number=pdu.sequence_number)), events)
                    continue
                self.last_activity = now
                if cid == _UNBIND:
                    answer = encode(UnbindResp(sequence_number=pdu.sequence_number))
                    if self.role is Role.SMSC and quota < self.config.max_unanswered:
                        self.unbind_response = answer  # answers owed: the caller sends it after them
                    else:
                        self._answer(answer, events)
                    self.state = State.UNBOUND
                    events.append(Unbound(by_peer=True))
                    allowed = self._may_receive[self.state]
                    opening = False
                elif cid == _OUTBIND:
                    events.append(Outbound(pdu))
                else:
                    events.append(pdu)
                    quota -= 1
                    if not behind:
                        behind = self._behind = True
                    if opening and cid in BIND_COMMANDS:
                        # a barrier: what follows waits for the bind's outcome
                        self.bind_pending = True
                    elif quota > 0:
                        continue
                    # a bind, or unanswered requests at the limit: the rest waits
                    if held is None:
                        self.held.extend(it)
                    break
            else:
                self._reject(pdu, events)
        self.quota = quota
        return events

    def _answer(self, data: bytes, events: list[SessionEvent]) -> None:
        """Queue an answer of our own, behind the application's to earlier requests of the chunk."""
        if self._behind:
            events.append(Reply(data))
        else:
            self._out.append(data)

    def _on_response(self, pdu: Pdu, entry: Pending | None, events: list[SessionEvent]) -> None:
        """A response but those :meth:`_receive` judges itself (the answers to submit_sm and
        deliver_sm); ``entry``: the request it answers, taken from the window (None: nobody asked)."""
        if entry is None:
            events.append(UnexpectedResponse(pdu))
            return
        request = entry.request
        rcid = request.command_id
        if pdu.command_id != GenericNack.command_id and pdu.command_id != rcid | 0x80000000:
            # a response of the wrong type for that sequence number: report it and keep
            # waiting for the right one (the request times out if it never comes)
            self.window._pending[pdu.sequence_number] = entry
            events.append(UnexpectedResponse(pdu))
            return
        if rcid == _ENQUIRE_LINK:
            if self._link_probe == pdu.sequence_number:
                self._link_probe = None
            if entry.context is None:
                return  # our own keep-alive
        else:
            self.last_activity = self.last_received
            if rcid in BIND_COMMANDS and pdu.command_status == 0 and pdu.command_id != GenericNack.command_id:
                self.state = BIND_STATE[rcid]
                self.system_id = getattr(pdu, "system_id", "")
                events.append(Bound(self.state, self.system_id))
            elif rcid == _UNBIND:
                self.state = State.UNBOUND
                events.append(Response(pdu, request, entry.context))
                events.append(Unbound(by_peer=False))
                return
        events.append(Response(pdu, request, entry.context))

    def _reject(self, pdu: Pdu, events: list[SessionEvent]) -> None:
        cid = pdu.command_id
        if cid in BIND_COMMANDS and self.state.is_bound and self.role is Role.SMSC:
            status = CommandStatus.ESME_RALYBND
        else:
            status = CommandStatus.ESME_RINVBNDSTS
        resp_type = pdu.response_type
        resp: Pdu
        if resp_type is None:  # outbind / alert_notification have no response
            resp = GenericNack(pdu.sequence_number, status)
        else:
            resp = resp_type(pdu.sequence_number, status)
        self._answer(encode(resp), events)
        events.append(RequestRejected(pdu, status))

    def _protocol_error(self, err: PduError, events: list[SessionEvent]) -> None:
        cls = PDU_TYPES.get(err.command_id)
        if err.fatal or cls is None or cls.is_response or cls.response_type is None:
            # unknown command or out-of-step stream: generic_nack (never nack a response... unless
            # it failed to decode, where the peer deserves to know)
            resp: Pdu = GenericNack(err.sequence_number, err.command_status)
        else:
            resp = cls.response_type(err.sequence_number, err.command_status)
        self._answer(encode(resp), events)
        events.append(ProtocolError(err))
        if err.fatal:
            self._close(f"framing error: {err}", events)

    # ---- time ------------------------------------------------------------------------

    def tick(self) -> list[SessionEvent]:
        """Fire whatever timers are due; returns events (and may queue an enquire_link)."""
        if self.state is _CLOSED:
            return []
        now = self.clock()
        cfg = self.config
        events: list[SessionEvent] = []
        dead = False
        for entry in self.window.expired(now):
            request = entry.request
            if request.command_id == _ENQUIRE_LINK and request.sequence_number == self._link_probe:
                self._link_probe = None
                dead = True
                if entry.context is None:
                    continue  # our own keep-alive: nobody waits for it
            elif request.command_id == _UNBIND:
                self.state = State.UNBOUND
                events.append(Unbound(by_peer=False))
            events.append(RequestTimeout(request, entry.context))
        probe = self._link_probe
        if probe is not None and now >= self._probe_deadline:
            # no response timeout: the window holds the probe behind requests without one
            self._link_probe = None
            dead = True
            unanswered = self.window.pop(probe)
            if unanswered is not None and unanswered.context is not None:
                events.append(RequestTimeout(unanswered.request, unanswered.context))
        if dead:
            self._close("enquire_link went unanswered: peer is dead", events)
            return events
        if self.state is _OPEN and cfg.bind_timeout and now - self.opened_at >= cfg.bind_timeout:
            self._close(f"no bind within {cfg.bind_timeout:g}s", events)
            return events
        if cfg.inactivity_timeout and now - self.last_activity >= cfg.inactivity_timeout:
            self._close(f"no activity for {cfg.inactivity_timeout:g}s", events)
            return events
        if (
            cfg.enquire_link_interval
            and self._link_probe is None
            and (self.state.is_bound)
            and now - self.last_received >= cfg.enquire_link_interval
        ):
            self._send_probe(now)
        return events

    def _send_probe(self, now: float) -> None:
        probe = EnquireLink(sequence_number=self._seq.next())
        timeout = self.config.response_timeout
        self.window.add(probe, None, now + timeout if timeout else NO_DEADLINE, force=True)
        self._link_probe = probe.sequence_number
        self._probe_deadline = now + self._probe_timeout()
        self._out.append(encode(probe))

    def next_timer(self) -> float | None:
        """The clock time at which :meth:`tick` next has something to do (None: nothing)."""
        if self.state is _CLOSED:
            return None
        cfg = self.config
        times = []
        deadline = self.window.next_deadline()
        if deadline is not None and deadline != NO_DEADLINE:
            times.append(deadline)
        if self._link_probe is not None and self._probe_deadline != NO_DEADLINE:
            times.append(self._probe_deadline)
        if self.state is _OPEN and cfg.bind_timeout:
            times.append(self.opened_at + cfg.bind_timeout)
        if cfg.inactivity_timeout:
            times.append(self.last_activity + cfg.inactivity_timeout)
        if cfg.enquire_link_interval and self._link_probe is None and self.state.is_bound:
            times.append(self.last_received + cfg.enquire_link_interval)
        return min(times) if times else None

    # ---- closing ------------------------------------------------------------------------

    def _close(self, reason: str, events: list[SessionEvent]) -> None:
        self.close_reason = reason
        events.append(Closing(reason))
        events.extend(self.connection_lost())

    def connection_lost(self) -> list[SessionEvent]:
        """The transport is gone: CLOSED, and a ConnectionLost for each request in flight."""
        self.state = _CLOSED
        self.held.clear()
        # everything in flight fails, except our own keep-alive, which nobody waits for
        return [
            ConnectionLost(e.request, e.context)
            for e in self.window.clear()
            if e.context is not None or e.request.command_id != _ENQUIRE_LINK
        ]

    def __repr__(self) -> str:
        return f"<Session {self.role.value} {self.state.value} in_flight={len(self.window)}>"



def _popping(queue: collections.deque[Pdu | PduError]) -> Iterator[Pdu | PduError]:
    """Take items off the front of ``queue`` one at a time: what is not taken stays queued."""
    while queue:
        yield queue.popleft()
