"""The SMSC side: accept connections, let a handler authenticate binds and answer requests.

::

    class Handler(smppcore.SmscHandler):
        def authenticate(self, conn, bind):
            return 0 if bind.password == "secret" else CommandStatus.ESME_RINVPASWD

        def handle(self, conn, pdu):
            return pdu.make_response(message_id=new_id())   # or None, and conn.respond later

    server = await smppcore.serve(Handler(), "127.0.0.1", 2775)
    ...
    await server.close()       # stops listening, unbinds every session, waits for them

The server owns framing, sequence numbers, enquire_link, generic_nack, the error
status of malformed PDUs (closing after a framing error), the bind timeout and
the connection limit. A handler method may return its answer directly (the fast
path: no task, the response joins the chunk's single write) or an awaitable.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import socket
import ssl as _ssl
from collections.abc import Awaitable, Coroutine
from typing import Any

from .connection import SmppConnection
from .constants import CommandId, CommandStatus
from .pdus import Pdu
from .session import Bound, Role, SessionConfig

__all__ = ["SmscHandler", "SmscConnection", "Server", "serve"]

log = logging.getLogger("smppcore.server")

_BIND_IDS = {CommandId.BIND_TRANSMITTER, CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER}
_MESSAGE_IDS = {CommandId.SUBMIT_SM, CommandId.DATA_SM, CommandId.SUBMIT_MULTI}


class SmscHandler:
    """What a server does with binds and requests. Subclass and override.

    The defaults make a "null SMSC": every bind is accepted, every message is
    accepted with a fresh decimal message_id, query/cancel/replace are refused.
    """

    system_id = "smppcore"

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def authenticate(self, conn: SmscConnection, bind: Pdu) -> int | Awaitable[int]:
        """Return 0 to accept ``bind``, or the command_status to refuse it with."""
        return 0

    def handle(self, conn: SmscConnection, pdu: Pdu) -> Pdu | None | Awaitable[Pdu | None]:
        """Answer a request; None means the handler will call ``conn.respond`` itself."""
        if pdu.command_id in _MESSAGE_IDS:
            return pdu.make_response(message_id=str(next(self._ids)))
        return pdu.make_response(command_status=CommandStatus.ESME_RINVCMDID)

    def connected(self, conn: SmscConnection) -> None:
        """A connection was accepted (not bound yet)."""

    def bound(self, conn: SmscConnection) -> None:
        """``conn`` is bound; ``conn.system_id`` and ``conn.session.state`` say how."""

    def closed(self, conn: SmscConnection) -> None:
        """``conn`` is gone (for whatever reason)."""


class SmscConnection(SmppConnection):
    """One ESME's connection to the server."""

    role = Role.SMSC

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(server.config, loop=loop)
        self.server = server
        self.handler = server.handler
        self.system_id = ""
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self.server
        if len(server.connections) >= server.max_connections:
            log.warning("refusing %s: %d connections already", self.peername, len(server.connections))
            transport.close()
            return
        server.connections.add(self)
        self.handler.connected(self)

    def on_request(self, pdu: Pdu) -> None:
        if pdu.command_id in _BIND_IDS:
            self._on_bind(pdu)
            return
        try:
            result = self.handler.handle(self, pdu)
        except Exception:  # noqa: BLE001 - a handler bug answers ESME_RSYSERR, not a dead session
            log.exception("handler failed on %s", pdu.command_name)
            result = _system_error(pdu)
        if result is None:
            return
        if isinstance(result, Pdu):
            self.session.send_response(result)
        elif inspect.isawaitable(result):
            self._spawn(self._answer_later(pdu, result))
        else:
            log.error("handler.handle returned %r for %s; answering ESME_RSYSERR", result, pdu.command_name)
            failed = _system_error(pdu)
            if failed is not None:
                self.session.send_response(failed)

    def _on_bind(self, pdu: Pdu) -> None:
        try:
            result = self.handler.authenticate(self, pdu)
        except Exception:  # noqa: BLE001 - an authenticator bug refuses the bind
            log.exception("authenticate failed")
            result = CommandStatus.ESME_RBINDFAIL
        if inspect.isawaitable(result):
            self._spawn(self._finish_bind_later(pdu, result))
        else:
            self._finish_bind(pdu, result)

    async def _finish_bind_later(self, pdu: Pdu, result: Awaitable[int]) -> None:
        try:
            status = await result
        except Exception:  # noqa: BLE001 - an authenticator bug refuses the bind
            log.exception("authenticate failed")
            status = CommandStatus.ESME_RBINDFAIL
        self._finish_bind(pdu, status)
        self._flush_soon()

    def _finish_bind(self, pdu: Pdu, status: int) -> None:
        if self.transport is None:
            return
        if status:
            self.session.reject_bind(pdu, status)
            return
        self.session.accept_bind(pdu, self.handler.system_id)
        self.system_id = self.session.system_id  # the bind's system_id, taken by accept_bind
        self._reschedule()
        if not self.bound.done():
            self.bound.set_result(self.session.state)
        self.handler.bound(self)

    async def _answer_later(self, pdu: Pdu, result: Awaitable[Pdu | None]) -> None:
        try:
            resp = await result
        except Exception:  # noqa: BLE001 - a handler bug answers ESME_RSYSERR, not a dead session
            log.exception("handler failed on %s", pdu.command_name)
            resp = _system_error(pdu)
        if resp is not None:
            self.respond(resp)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_bound(self, event: Bound) -> None:  # pragma: no cover - SMSC binds via _finish_bind
        pass

    def on_closed(self, exc: Exception | None) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self in self.server.connections:
            self.server.connections.discard(self)
            self.handler.closed(self)


def _system_error(pdu: Pdu) -> Pdu | None:
    """The ESME_RSYSERR answer to ``pdu`` (None for a request that takes no answer)."""
    if pdu.response_type is None:
        return None
    return pdu.make_response(command_status=CommandStatus.ESME_RSYSERR)


class Server:
    """A listening SMPP server. Build it with :func:`serve`."""

    def __init__(
        self,
        handler: SmscHandler,
        *,
        config: SessionConfig | None = None,
        max_connections: int = 1000,
    ) -> None:
        self.handler = handler
        self.config = config or SessionConfig(enquire_link_interval=0)
        self.max_connections = max_connections
        self.connections: set[SmscConnection] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int, *, ssl: _ssl.SSLContext | None = None, **kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SmscConnection(self, loop), host, port, ssl=ssl, **kwargs)

    @property
    def sockets(self) -> list[socket.socket]:
        return list(self._server.sockets) if self._server else []

    @property
    def port(self) -> int:
        port: int = self.sockets[0].getsockname()[1]
        return port

    @property
    def host(self) -> str:
        host: str = self.sockets[0].getsockname()[0]
        return host

    def bound_connections(self, system_id: str | None = None) -> list[SmscConnection]:
        return [
            c for c in self.connections if c.session.state.is_bound and (system_id is None or c.system_id == system_id)
        ]

    async def close(self, timeout: float = 5.0) -> None:
        """Stop listening, unbind every bound session (waiting up to ``timeout``), close the rest."""
        if self._server is not None:
            self._server.close()
        conns = list(self.connections)
        if conns:
            await asyncio.gather(*(c.unbind(timeout) for c in conns), return_exceptions=True)
        for c in list(self.connections):
            c.abort()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def serve(
    handler: SmscHandler | None = None,
    host: str = "127.0.0.1",
    port: int = 2775,
    *,
    ssl: _ssl.SSLContext | None = None,
    config: SessionConfig | None = None,
    max_connections: int = 1000,
    **kwargs: Any,
) -> Server:
    """Start an SMPP server; ``port=0`` picks a free port (see ``server.port``)."""
    server = Server(handler or SmscHandler(), config=config, max_connections=max_connections)
    await server.start(host, port, ssl=ssl, **kwargs)
    return server
