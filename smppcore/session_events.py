"""What a :class:`~smppcore.session.Session` reports besides the peer's requests.

A module of its own so that code that only reacts to a session (the asyncio
connection, a test) can read the event types without the machine that makes them.
Every event is a small slotted class (a Struct, for the one a session makes per response).
"""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import PduError
from .pdus import Pdu
from .session_states import State

__all__ = [
    "Event",
    "Response",
    "UnexpectedResponse",
    "RequestRejected",
    "ProtocolError",
    "RequestTimeout",
    "Bound",
    "Unbound",
    "Outbound",
    "Closing",
    "Reply",
    "ConnectionLost",
    "SessionEvent",
]


class Event:
    """Base of what :meth:`Session.receive_data` and :meth:`Session.tick` report
    besides the peer's requests (which come out as the PDUs themselves)."""

    __slots__: tuple[str, ...] = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Response(msgspec.Struct, Event, eq=False, gc=False):
    """A response (or generic_nack) that answers one of our requests.

    A Struct, unlike the other events: one is made per response, and msgspec builds it in C
    (~1.2k instructions less than an ``__init__``'s frame). Compared by identity, as the
    others are; not tracked by the cycle collector, as PDUs are not: an event is handed
    out and dropped, nothing of the session keeps it.
    """

    pdu: Pdu
    request: Pdu
    context: Any


class UnexpectedResponse(Event):
    """A response whose sequence number matches nothing we have in flight."""

    __slots__ = ("pdu",)

    def __init__(self, pdu: Pdu) -> None:
        self.pdu = pdu


class RequestRejected(Event):
    """A request the session answered with an error by itself (wrong state, ...)."""

    __slots__ = ("pdu", "command_status")

    def __init__(self, pdu: Pdu, command_status: int) -> None:
        self.pdu = pdu
        self.command_status = command_status


class ProtocolError(Event):
    """Bytes that did not decode; answered already. ``error.fatal``: the session closes."""

    __slots__ = ("error",)

    def __init__(self, error: PduError) -> None:
        self.error = error


class RequestTimeout(Event):
    """One of our requests got no response within the response timeout."""

    __slots__ = ("request", "context")

    def __init__(self, request: Pdu, context: Any) -> None:
        self.request = request
        self.context = context


class Bound(Event):
    """The session entered a bound state (ESME: bind_resp OK; SMSC: bind accepted)."""

    __slots__ = ("state", "system_id")

    def __init__(self, state: State, system_id: str) -> None:
        self.state = state
        self.system_id = system_id


class Unbound(Event):
    """The unbind handshake is done (either side started it); close the connection."""

    __slots__ = ("by_peer",)

    def __init__(self, by_peer: bool) -> None:
        self.by_peer = by_peer


class Outbound(Event):
    """The SMSC asked us (ESME) to bind, with an outbind."""

    __slots__ = ("pdu",)

    def __init__(self, pdu: Pdu) -> None:
        self.pdu = pdu


class Closing(Event):
    """The session gave up on the connection: close it after flushing what is queued."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Reply(Event):
    """An answer the session gave by itself (enquire_link_resp, unbind_resp, an error status)
    to a request that came after one handed to the application in the same chunk: queue
    ``data`` for sending when this event is reached, so that the answers leave in the order
    of the requests (the application's answer to the earlier request first)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class ConnectionLost(Event):
    """Delivered for every request still in flight when the connection went away."""

    __slots__ = ("request", "context")

    def __init__(self, request: Pdu, context: Any) -> None:
        self.request = request
        self.context = context


#: What the session hands the caller: an event, or a request from the peer to act on.
SessionEvent = Event | Pdu
