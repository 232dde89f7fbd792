"""smppcore: the SMPP 3.4 protocol library.

A sans-IO core (PDU types, codec, framer, text codings, receipts, session state
machine) and a thin asyncio edge. Import what you need from here::

    from smppcore import SubmitSm, encode, decode, Framer
"""

from .codec import DEFAULT_MAX_PDU_SIZE, Framer, decode, encode
from .constants import *  # noqa: F401,F403
from .constants import __all__ as _constants_all
from .errors import EncodeError, FramingError, PduError, SmppError
from .pdus import *  # noqa: F401,F403
from .pdus import __all__ as _pdus_all
from .tlv import TLV_KINDS
from .backoff import Backoff
from .window import Window, WindowFull
from .session import InvalidState, Role, Session, SessionConfig, State
from .connection import ConnectionClosed, ResponseTimeout, SmppConnection, SmppStatusError
from .client import BindError, Client, connect, reconnecting
from .server import Server, SmscConnection, SmscHandler, serve
from .runtime import run, new_event_loop
from . import receipt, smpptime, text  # noqa: E402 - submodules reachable as smppcore.receipt etc.

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
    "new_event_loop",
    *_constants_all,
    *_pdus_all,
]
