"""smppcore: the SMPP 3.4 protocol library.

A sans-IO core (PDU types, codec, framer, text codings, receipts, session state
machine) and a thin asyncio edge. Import what you need from here::

    from smppcore import SubmitSm, encode, decode, Framer
"""

from . import receipt, smpptime, text  # submodules reachable as smppcore.receipt etc.
from .backoff import Backoff
from .client import BindError, Client, connect, reconnecting
from .codec import DEFAULT_MAX_PDU_SIZE, Framer, decode, encode
from .connection import ConnectionClosed, ResponseTimeout, SmppConnection, SmppStatusError
from .constants import *  # noqa: F401,F403
from .constants import __all__ as _constants_all
from .errors import EncodeError, FramingError, PduError, SmppError
from .pdus import *  # noqa: F401,F403
from .pdus import __all__ as _pdus_all
from .runtime import new_event_loop, quiet_gc, run
from .server import Server, SmscConnection, SmscHandler, serve
from .session import InvalidState, Role, Session, SessionConfig, State
from .tlv import TLV_KINDS
from .window import Window, WindowFull

__all__ = [
    "encode",
    "decode",
    "Framer",
    "DEFAULT_MAX_PDU_SIZE",
    "SmppError",
    "PduError",
    "FramingError",
    "EncodeError",
    "TLV_KINDS",
    "Backoff",
    "Window",
    "WindowFull",
    "InvalidState",
    "Role",
    "Session",
    "SessionConfig",
    "State",
    "ConnectionClosed",
    "ResponseTimeout",
    "SmppConnection",
    "SmppStatusError",
    "BindError",
    "Client",
    "connect",
    "reconnecting",
    "Server",
    "SmscConnection",
    "SmscHandler",
    "serve",
    "run",
    "quiet_gc",
    "new_event_loop",
    "receipt",
    "smpptime",
    "text",
    *_constants_all,
    *_pdus_all,
]
