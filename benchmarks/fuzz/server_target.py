"""Fuzz target 2: hostile bytes through a whole SmscConnection, no sockets.

The input is delivered to :class:`smppcore.SmscConnection` in chunks (cut as in
:func:`~smpphub.bench.fuzz.invariants.chunks`) through a :class:`FakeTransport`
standing for a peer that writes and never reads, on a real asyncio event loop that
runs between chunks (so answers given later by a coroutine go out too). The handler
accepts binds (but the system_id ``bad``), answers submit_sm/submit_multi at once and
data_sm from a coroutine, and refuses the rest, like smppcore's null SMSC.

Checked for every input:

- no exception escapes ``data_received``, ``eof_received`` or ``connection_lost``,
  and none is raised in a callback or task on the loop;
- what was written is whole valid PDUs, back to back: our decoder accepts every one
  (no error item, no partial PDU at the end) and re-encodes it byte for byte;
  every one is a response. What is written after ``close()`` is checked the same
  way and counted apart (``ServerRun.late``): a socket transport sends it if its
  buffer still held data at close() and drops it otherwise, so it must be valid but
  cannot be counted on (the answers to what followed an unbind in the same chunk);
- no more responses than requests: every response's sequence number is that of a
  request (or undecodable PDU) received, at most as many times as it was received;
- bounded memory: the Framer holds at most ``max_pdu_size`` octets, each chunk
  writes at most twice the octets it completed (plus a header), the connection stops
  reading once the peer's unread backlog passes the high-water mark, and when the
  connection is gone the server holds nothing of it (no connection, task or window
  entry).

Wireshark's dissector is the second judge of the output; it runs on a sample in
tests/test_fuzz.py (a subprocess per input would be far too slow here).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from smppcore.codec import Framer, encode
from smppcore.constants import CommandId, CommandStatus
from smppcore.errors import PduError
from smppcore.pdus import Pdu
from smppcore.server import Server, SmscConnection, SmscHandler
from smppcore.session import SessionConfig

from .invariants import InvariantBroken, chunks

__all__ = ["check_server", "ServerRun", "FakeTransport", "FuzzHandler", "SERVER_MAX_PDU_SIZE", "HIGH_WATER"]

SERVER_MAX_PDU_SIZE = 2048
#: The unread backlog at which the fake transport tells the connection to stop writing.
HIGH_WATER = 4096
#: Loop turns allowed for the answers given later to go out; they need two or three.
_SETTLE_TURNS = 20

_ANSWERED_AT_ONCE = {CommandId.SUBMIT_SM, CommandId.SUBMIT_MULTI}


class FuzzHandler(SmscHandler):
    """Accepts binds but ``bad``; answers submits at once and data_sm from a coroutine."""

    system_id = "fuzzsmsc"

    def __init__(self) -> None:
        super().__init__()
        self.later = 0  # answers promised by a coroutine, not given yet

    def authenticate(self, conn: SmscConnection, bind: Pdu) -> int:
        return CommandStatus.ESME_RINVPASWD if getattr(bind, "system_id", "") == "bad" else 0

    def handle(self, conn: SmscConnection, pdu: Pdu) -> Pdu | None | Awaitable[Pdu | None]:
        if pdu.command_id == CommandId.DATA_SM:
            self.later += 1
            return self._answer_later(pdu)
        if pdu.command_id in _ANSWERED_AT_ONCE:
            return pdu.make_response(message_id=str(next(self._ids)))
        return super().handle(conn, pdu)

    async def _answer_later(self, pdu: Pdu) -> Pdu | None:
        self.later -= 1
        return pdu.make_response(message_id=str(next(self._ids)))


class FakeTransport(asyncio.Transport):
    """A peer that never reads: everything written stays in ``written``.

    Past ``high_water`` unread octets it calls the protocol's ``pause_writing``, as
    a socket transport does; ``close()`` and ``abort()`` call ``connection_lost`` on
    the next loop turn, as a socket transport does.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, high_water: int) -> None:
        super().__init__()
        self.loop = loop
        self.protocol = protocol
        self.high_water = high_water
        self.written = bytearray()
        self.written_after_close = bytearray()
        self.closing = False
        self.lost = False
        self.reading = True
        self.writing_paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing:
            self.written_after_close += data
            return
        self.written += data
        if not self.writing_paused and len(self.written) > self.high_water:
            self.writing_paused = True
            self.protocol.pause_writing()

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.loop.call_soon(self._lost)

    def abort(self) -> None:
        self.close()

    def _lost(self) -> None:
        if not self.lost:
            self.lost = True
            self.protocol.connection_lost(None)

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return len(self.written)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


@dataclass
class ServerRun:
    """What one input did: the octets the connection read, and what it wrote back."""

    fed: bytes
    output: list[bytes] = field(default_factory=list)
    closed: bool = False
    paused: bool = False
    #: PDUs written after close() (also in ``output``, at its end)
    late: int = 0


class _LoopErrors:
    """Collects what the loop's exception handler is given (an exception in a callback or task)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        self.seen.append(f"{context.get('message')}: {exc!r}")


_loop: asyncio.AbstractEventLoop | None = None
_loop_errors = _LoopErrors()


def _the_loop() -> asyncio.AbstractEventLoop:
    """One event loop for every input: a loop per input would cost more than the check."""
    global _loop
    if _loop is None:
        logging.getLogger("smppcore").disabled = True  # hostile input is logged per PDU otherwise
        _loop = asyncio.new_event_loop()
        _loop.set_exception_handler(_loop_errors)
    return _loop


def _turn(loop: asyncio.AbstractEventLoop) -> None:
    loop.call_soon(loop.stop)
    loop.run_forever()


def check_server(data: bytes) -> ServerRun:
    """Deliver ``data`` to a fresh server connection and check every invariant."""
    loop = _the_loop()
    _loop_errors.seen.clear()
    handler = FuzzHandler()
    server = Server(handler, config=SessionConfig(enquire_link_interval=0, max_pdu_size=SERVER_MAX_PDU_SIZE))
    conn = SmscConnection(server, loop)
    transport = FakeTransport(loop, conn, HIGH_WATER)
    conn.connection_made(transport)
    fed = bytearray()
    for piece in chunks(data):
        if transport.closing or not transport.reading:
            break
        before = len(transport.written)
        pending = conn.session.framer.buffered
        conn.data_received(piece)
        fed += piece
        _check_bounded(conn, transport, before, pending + len(piece))
        if handler.later:
            for _ in range(_SETTLE_TURNS):
                _turn(loop)
                if not handler.later:
                    break
            _turn(loop)  # the answer's write comes one turn after the coroutine
    run = ServerRun(bytes(fed), closed=transport.closing, paused=not transport.reading)
    if not transport.closing:
        if not conn.eof_received():
            transport.close()  # the peer hung up
    for _ in range(_SETTLE_TURNS):
        if transport.lost and not handler.later:
            break
        _turn(loop)
    _check_gone(conn, server, transport)
    run.output = _check_output(bytes(transport.written + transport.written_after_close))
    run.late = len(run.output) - len(_check_output(bytes(transport.written)))
    _check_answers(run)
    return run


def _check_bounded(conn: SmscConnection, transport: FakeTransport, before: int, consumed: int) -> None:
    framer = conn.session.framer
    if framer.buffered > framer.max_pdu_size:
        raise InvariantBroken(f"the connection buffers {framer.buffered} octets, over {framer.max_pdu_size}")
    wrote = len(transport.written) - before
    if wrote > 2 * consumed + 16:
        raise InvariantBroken(f"{consumed} octets read made the connection write {wrote}")
    if transport.writing_paused and transport.reading:
        raise InvariantBroken("the peer's backlog is over the high-water mark and the connection still reads")
    if _loop_errors.seen:
        raise InvariantBroken(f"exception on the loop: {_loop_errors.seen}")


def _check_gone(conn: SmscConnection, server: Server, transport: FakeTransport) -> None:
    if _loop_errors.seen:
        raise InvariantBroken(f"exception on the loop: {_loop_errors.seen}")
    if not transport.lost:
        raise InvariantBroken("the connection was closed but connection_lost never ran")
    if server.connections:
        raise InvariantBroken("the server still holds a connection that is gone")
    if len(conn.session.window):
        raise InvariantBroken(f"{len(conn.session.window)} requests still in the window of a closed session")


def _check_output(out: bytes) -> list[bytes]:
    framer = Framer(SERVER_MAX_PDU_SIZE)
    items = framer.feed(out)
    if framer.buffered:
        raise InvariantBroken(f"the connection wrote a partial PDU: {out[-framer.buffered:].hex()}")
    pdus: list[bytes] = []
    p = 0
    for item in items:
        if isinstance(item, PduError):
            raise InvariantBroken(f"the connection wrote a PDU our decoder refuses: {item}")
        raw = out[p : p + int.from_bytes(out[p : p + 4], "big")]
        if encode(item) != raw:
            raise InvariantBroken(f"the connection wrote {raw.hex()}, which re-encodes differently: {item!r}")
        if not item.is_response:
            raise InvariantBroken(f"the server sent a request of its own: {item!r}")
        pdus.append(raw)
        p += len(raw)
    return pdus


def _check_answers(run: ServerRun) -> None:
    received: collections.Counter[int] = collections.Counter()
    for item in Framer(SERVER_MAX_PDU_SIZE).feed(run.fed):
        if isinstance(item, PduError) or not item.is_response:
            received[item.sequence_number] += 1
    answered = collections.Counter(int.from_bytes(raw[12:16], "big") for raw in run.output)
    for seq, count in answered.items():
        if count > received[seq]:
            raise InvariantBroken(f"{count} responses with sequence_number {seq}, {received[seq]} requests")
