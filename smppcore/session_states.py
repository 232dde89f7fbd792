"""Who may send what when: the session's roles, states and the table of allowed requests.

A module of its own because the table is data, read by the session, the client
(bind types) and the tests that check the session against it, while the session's
module is the machine that walks it.
"""

from __future__ import annotations

from enum import Enum

from .constants import CommandId as C
from .pdus import BindReceiver, BindTransceiver, BindTransmitter

__all__ = [
    "Role",
    "State",
    "ALLOWED_REQUESTS",
    "BIND_COMMANDS",
    "BIND_STATE",
    "BIND_REQUESTS",
    "BIND_TYPES",
    "BindRequest",
    "InvalidState",
]


class Role(Enum):
    ESME = "esme"
    SMSC = "smsc"

    @property
    def peer(self) -> Role:
        return Role.SMSC if self is Role.ESME else Role.ESME


class State(Enum):
    # Members are singletons: hash them by identity, in C, instead of Enum's Python-level
    # hash of the name. The session looks its state up in a dict on every PDU sent and
    # every chunk read, and is_bound below asks a set.
    __hash__ = object.__hash__

    OPEN = "open"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBOUND = "unbound"
    CLOSED = "closed"

    @property
    def is_bound(self) -> bool:
        # a module-level set: naming State.X inside the property cost ~2 us a call, and a
        # hub asks once per message it sends upstream (smppcore.session_states' _BOUND)
        return self in _BOUND


_BOUND = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})


#: The three bind requests' command ids.
BIND_COMMANDS = {C.BIND_TRANSMITTER, C.BIND_RECEIVER, C.BIND_TRANSCEIVER}
_LINK = {C.ENQUIRE_LINK, C.UNBIND}
_ESME_SUBMITS = {C.SUBMIT_SM, C.SUBMIT_MULTI, C.DATA_SM, C.QUERY_SM, C.CANCEL_SM, C.REPLACE_SM}
_SMSC_DELIVERS = {C.DELIVER_SM, C.DATA_SM, C.ALERT_NOTIFICATION}

#: Which requests a side may send in each state (SMPP 3.4 section 2.3 and 4).
#: ``ALLOWED_REQUESTS[role][state]`` is the set of command ids ``role`` may send.
#: Responses are always allowed when they answer an outstanding request.
#: enquire_link is accepted in OPEN as well: many ESMEs send it before binding,
#: and answering it costs nothing.
ALLOWED_REQUESTS: dict[Role, dict[State, frozenset[int]]] = {
    Role.ESME: {
        State.OPEN: frozenset(BIND_COMMANDS | {C.ENQUIRE_LINK}),
        State.BOUND_TX: frozenset(_ESME_SUBMITS | _LINK),
        State.BOUND_RX: frozenset(_LINK),
        State.BOUND_TRX: frozenset(_ESME_SUBMITS | _LINK),
        State.UNBOUND: frozenset(),
        State.CLOSED: frozenset(),
    },
    Role.SMSC: {
        State.OPEN: frozenset({C.OUTBIND, C.ENQUIRE_LINK}),
        State.BOUND_TX: frozenset(_LINK),
        State.BOUND_RX: frozenset(_SMSC_DELIVERS | _LINK),
        State.BOUND_TRX: frozenset(_SMSC_DELIVERS | _LINK),
        State.UNBOUND: frozenset(),
        State.CLOSED: frozenset(),
    },
}

#: The state a bind (request or response) of each kind leads to.
BIND_STATE: dict[int, State] = {
    C.BIND_TRANSMITTER: State.BOUND_TX,
    C.BIND_RECEIVER: State.BOUND_RX,
    C.BIND_TRANSCEIVER: State.BOUND_TRX,
    C.BIND_TRANSMITTER_RESP: State.BOUND_TX,
    C.BIND_RECEIVER_RESP: State.BOUND_RX,
    C.BIND_TRANSCEIVER_RESP: State.BOUND_TRX,
}
#: A bind request of any of the three kinds (their fields are the same).
BindRequest = BindTransmitter | BindReceiver | BindTransceiver
#: The bind request class of each bind type a user names (``--bind trx``).
BIND_TYPES: dict[str, type[BindTransmitter] | type[BindReceiver] | type[BindTransceiver]] = {
    "tx": BindTransmitter, "rx": BindReceiver, "trx": BindTransceiver,
}
#: The bind request classes, for isinstance checks.
BIND_REQUESTS = (BindTransmitter, BindReceiver, BindTransceiver)


class InvalidState(Exception):
    """Raised when the caller asks to send a request its role may not send in this state."""
