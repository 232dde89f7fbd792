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
the limits below. A handler method may return its answer directly (the fast
path: no task, the response joins the chunk's single write) or an awaitable.
A handler that gains from seeing the requests of one read together (a hub admitting
a run of submits) takes them with ``handle_all``; by default they come one at a time.

Order of answers. SMPP 3.4 matches a response to its request by sequence_number
and lets an SMSC answer a window of requests in any order, so an answer the
handler gives later (an awaitable, or ``conn.respond``) goes out when it is ready,
not held behind slower ones (a request the handler never answers, or a simulated
latency, would otherwise stall every answer after it). What the server does
guarantee: a bind is a barrier. Everything the client sent after a bind, in the
same TCP write or later, waits until the bind is decided (synchronously or by an
awaitable ``authenticate``), is then judged in the state the bind left (a second
bind: ESME_RALYBND, a submit_sm after an accepted bind: handled), and the bind's
response goes out before any of their answers. Answers given synchronously go out
in request order, in the chunk's one write.

Limits (every one configurable, each with a safe default):

- admission at accept time, before any TLS handshake (see :mod:`smppcore.admission`):
  ``max_connections``, ``max_connections_per_ip``, ``max_unbound`` (oldest idle
  unbound connection pushed out first), and ``SmscHandler.admit(ip)``;
- a TLS handshake must finish within the session's ``bind_timeout``, and the bind
  timeout counts from the TCP accept;
- ``SessionConfig.max_unanswered``: requests read but not answered yet on one
  connection. At the limit the connection stops reading until half of them are
  answered, as it does while the peer does not read its answers (the transport's
  write buffer above its high-water mark). The requests of the chunk being read
  still count, so a connection holds at most the limit plus one read's worth;
- running out of file descriptors (EMFILE/ENFILE on accept) pauses accepting for
  ``accept_retry_delay`` seconds and logs one line per episode (and one when it
  recovers) instead of spinning or dropping connections silently.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import itertools
import logging
import os
import socket
import ssl as _ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from .admission import Admission, RefusalLog, Ticket
from .connection import EARLY_FLUSH, SmppConnection
from .constants import CommandId, CommandStatus
from .pdus import Pdu
from .session import Bound, Role, SessionConfig, State, Unbound
from .session_states import BIND_COMMANDS

__all__ = ["SmscHandler", "SmscConnection", "Server", "serve"]

log = logging.getLogger("smppcore.server")

_MESSAGE_IDS = {CommandId.SUBMIT_SM, CommandId.DATA_SM, CommandId.SUBMIT_MULTI}
#: accept() errors that mean "out of a resource": pause accepting, do not spin
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


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

    def handle_all(self, conn: SmscConnection, pdus: list[Pdu]) -> list[Pdu | None | Awaitable[Pdu | None]] | None:
        """A run of requests read together, for a handler that gains from seeing them at once (a hub
        admitting the submits of one read with one look at their account): one answer each, in
        order, as :meth:`handle` gives them; or None (the default) to have them handled one at a
        time with ``handle``. An exception out of it answers every request of the run
        ESME_RSYSERR, so it must raise before it answers or takes any of them, never after."""
        return None

    def admit(self, peer_ip: str) -> bool:
        """Accept-time filter: False closes a connection from ``peer_ip`` before it costs
        anything (no TLS handshake, no session). A hub answers False for an address no
        account may bind from. The default admits everyone."""
        return True

    def connected(self, conn: SmscConnection) -> None:
        """A connection was accepted (not bound yet)."""

    def bound(self, conn: SmscConnection) -> None:
        """``conn`` is bound; ``conn.system_id`` and ``conn.session.state`` say how."""

    def closed(self, conn: SmscConnection) -> None:
        """``conn`` is gone (for whatever reason)."""


class SmscConnection(SmppConnection):
    """One ESME's connection to the server."""

    role = Role.SMSC

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop, ticket: Ticket | None = None) -> None:
        super().__init__(server.config, loop=loop)
        self.server = server
        self.handler = server.handler
        self._max_unanswered = self.config.max_unanswered
        self._resume_scheduled = False
        self._ticket = ticket
        self._tasks: set[asyncio.Task[None]] = set()
        self._unbind_grace: asyncio.TimerHandle | None = None  # the peer unbound; answers still owed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self.server
        ticket = self._ticket
        if ticket is None:  # not through the server's accept loop (a transport made elsewhere)
            ticket = self._ticket = server._admit(_ip_of(self.peername), self.loop.time())
            if ticket is None:
                transport.close()
                return
        ticket.conn = self
        # the bind timeout counts from the TCP accept, a TLS handshake included
        self.session.opened_at = ticket.accepted_at
        self._reschedule()
        server.connections.add(self)
        self.handler.connected(self)

    def on_requests(self, pdus: list[Pdu]) -> None:
        """A run of requests read together: to the handler at once if it takes runs
        (:meth:`SmscHandler.handle_all`), else one at a time, each answer given now queued before
        the next request is handled (a handler may write what is queued, as a simulator
        dropping a connection does); answers go out in request order, a write's worth at a time."""
        last = pdus[-1]
        if last.command_id in BIND_COMMANDS:  # a bind ends what the session hands out until it is decided
            if len(pdus) > 1:
                self.on_requests(pdus[:-1])
            self._on_bind(last)
            return
        try:
            results = self.handler.handle_all(self, pdus)
        except Exception:  # noqa: BLE001 - a handler bug answers ESME_RSYSERR, not a dead session
            log.exception("handler failed on a run of %d requests", len(pdus))
            results = [_system_error(pdu) for pdu in pdus]
        if results is None:  # one at a time
            for pdu in pdus:
                self.on_request(pdu)
            return
        for pdu, result in zip(pdus, results, strict=True):
            if result is not None:  # None: the handler answers later with respond()
                self._answered(pdu, result)

    def on_request(self, pdu: Pdu) -> None:
        if pdu.command_id in BIND_COMMANDS:
            self._on_bind(pdu)
            return
        try:
            result = self.handler.handle(self, pdu)
        except Exception:  # noqa: BLE001 - a handler bug answers ESME_RSYSERR, not a dead session
            log.exception("handler failed on %s", pdu.command_name)
            result = _system_error(pdu)
        if result is not None:  # None: the handler answers later with respond()
            self._answered(pdu, result)

    def _answered(self, pdu: Pdu, result: Pdu | Awaitable[Pdu | None]) -> None:
        """What the handler gave for ``pdu``: its answer, queued now (in this chunk's write), or an awaitable."""
        session = self.session
        if isinstance(result, Pdu):  # the fast path: answered now, in this chunk's write
            session.quota += 1
            session.send_response(result)
            if len(session._out) >= EARLY_FLUSH and self.transport is not None:
                # let the peer start on these while we handle the rest of the chunk
                self.transport.write(session.data_to_send())
        elif inspect.isawaitable(result):
            self._spawn(self._answer_later(pdu, result))
        else:
            log.error("handler.handle returned %r for %s; answering ESME_RSYSERR", result, pdu.command_name)
            session.quota += 1
            failed = _system_error(pdu)
            if failed is not None:
                session.send_response(failed)

    @property
    def system_id(self) -> str:
        """The system_id the peer bound with ("" before the bind): the session's, taken by accept_bind."""
        return self.session.system_id

    @property
    def unanswered(self) -> int:
        """Requests handed to the handler and not answered yet (see SessionConfig.max_unanswered)."""
        return self._max_unanswered - self.session.quota

    def respond(self, response: Pdu) -> None:
        """Send the answer to a request the handler did not answer at once."""
        self.respond_all((response,))

    def respond_all(self, responses: Sequence[Pdu]) -> None:
        """:meth:`respond` for each of ``responses``, in order: the answers a handler gives together
        (a hub's group commit) cost one look at the quota, the unbind and the flush, not one each."""
        session = self.session
        given = min(len(responses), self._max_unanswered - session.quota)
        if given > 0:
            session.quota += given
            if (
                not self._resume_scheduled
                and "unanswered" in self._read_pauses
                and session.quota >= self._max_unanswered // 2
            ):
                # not from here: respond() may run inside the handling of a chunk
                self._resume_scheduled = True
                self.loop.call_soon(self._resume_unanswered)
        if self.transport is None:
            return
        session.send_responses(responses)
        if self._unbind_grace is not None and self.unanswered <= 0:
            self._finish_unbind()  # that was the last answer owed
            return
        self._flush_soon()

    def on_unbound(self, event: Unbound) -> None:
        """The peer unbound: its unbind_resp waits for the answers still owed to it
        (a submit waiting for the store), at most ``response_timeout`` seconds, then
        the connection closes. Requests after the unbind are refused by the session."""
        if self.session.unbind_response is not None and self.unanswered > 0:
            grace = self.config.response_timeout or 5.0
            self._unbind_grace = self.loop.call_later(grace, self._finish_unbind)
            return
        self._finish_unbind()

    def _finish_unbind(self) -> None:
        self._cancel_unbind_grace()
        self.session.answer_unbind()
        self._close_after_flush()

    def _resume_unanswered(self) -> None:
        """Enough answers went out: handle what waited, then read again."""
        self._resume_scheduled = False
        self.release_held()
        if not self.session.held:  # read again only once what was read is handled
            self.resume_reading("unanswered")
        self._flush()

    def _on_bind(self, pdu: Pdu) -> None:
        if self._ticket is not None:
            self._ticket.binding = True
        try:
            result = self.handler.authenticate(self, pdu)
        except Exception:  # noqa: BLE001 - an authenticator bug refuses the bind
            log.exception("authenticate failed")
            result = CommandStatus.ESME_RBINDFAIL
        if inspect.isawaitable(result):
            # what the client sent after the bind waits in the session; read no more meanwhile
            self.pause_reading("bind")
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
        self.resume_reading("bind")
        self.release_held()
        self._flush_soon()

    def _finish_bind(self, pdu: Pdu, status: int) -> None:
        ticket = self._ticket
        if ticket is not None:
            ticket.binding = False
        if self.transport is None or self.session.state is not State.OPEN:
            return
        if status:
            self.session.reject_bind(pdu, status)
            return
        self.session.accept_bind(pdu, self.handler.system_id)
        if ticket is not None:
            self.server.admission.bound(ticket)
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

    def _cancel_unbind_grace(self) -> None:
        if self._unbind_grace is not None:
            self._unbind_grace.cancel()
            self._unbind_grace = None

    def on_closed(self, exc: Exception | None) -> None:
        self._cancel_unbind_grace()
        for task in list(self._tasks):
            task.cancel()
        if self._ticket is not None:
            self.server.admission.leave(self._ticket)
        if self in self.server.connections:
            self.server.connections.discard(self)
            self.handler.closed(self)


def _ip_of(peername: Any) -> str:
    """The address part of a transport's peername ("" when it has none, e.g. a UNIX socket)."""
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return ""


def _system_error(pdu: Pdu) -> Pdu | None:
    """The ESME_RSYSERR answer to ``pdu`` (None for a request that takes no answer)."""
    if pdu.response_type is None:
        return None
    return pdu.make_response(command_status=CommandStatus.ESME_RSYSERR)


#: What makes the protocol object of one connection: SmscConnection itself, or a subclass
#: that watches the bytes (a simulator writing a pcap) built with the same arguments.
ConnectionFactory = Callable[["Server", asyncio.AbstractEventLoop, "Ticket | None"], SmscConnection]


class Server:
    """A listening SMPP server. Build it with :func:`serve`.

    It accepts connections itself (not through ``loop.create_server``): admission is
    decided on the raw socket, before a transport or a TLS handshake exists, and an
    accept() that fails for lack of file descriptors is logged and retried later the
    same way on asyncio and on uvloop (uvloop would drop the waiting connections
    silently).
    """

    def __init__(
        self,
        handler: SmscHandler,
        *,
        config: SessionConfig | None = None,
        max_connections: int = 1000,
        max_connections_per_ip: int = 100,
        max_unbound: int = 100,
        accept_retry_delay: float = 0.5,
    ) -> None:
        self.handler = handler
        #: set before ``start_serving()`` to build connections of another class
        self.connection_factory: ConnectionFactory = SmscConnection
        self.config = config or SessionConfig(enquire_link_interval=0)
        self.admission = Admission(max_connections, max_connections_per_ip, max_unbound)
        self.accept_retry_delay = accept_retry_delay
        self.connections: set[SmscConnection] = set()
        self._sockets: list[socket.socket] = []
        self._ssl: _ssl.SSLContext | None = None
        self._serving = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handshakes: set[asyncio.Task[None]] = set()
        self._refusals = RefusalLog(log)
        self._accept_failures = 0  # accept() errors in the current out-of-descriptors episode
        self._accept_failed_at = 0.0
        self._retry: asyncio.TimerHandle | None = None

    @property
    def max_connections(self) -> int:
        return self.admission.max_connections

    async def start(
        self, host: str | None, port: int, *, ssl: _ssl.SSLContext | None = None, start_serving: bool = True,
        backlog: int = 100,
    ) -> None:
        """Bind the listening socket(s) of ``host`` (every interface when empty) and ``port``."""
        loop = self._loop = asyncio.get_running_loop()
        self._ssl = ssl
        infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        seen = set()
        try:
            for family, type_, proto, _name, address in infos:
                if (family, address) in seen:
                    continue
                seen.add((family, address))
                sock = socket.socket(family, type_, proto)
                self._sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    sock.bind(address)
                except OSError as exc:
                    raise OSError(exc.errno, f"error while attempting to bind on address {address!r}: "
                                             f"{(exc.strerror or str(exc)).lower()}") from None
                sock.listen(backlog)
                sock.setblocking(False)
        except BaseException:
            self._close_sockets()
            raise
        if start_serving:
            self.start_serving()

    def start_serving(self) -> None:
        """Start accepting connections (after ``start(..., start_serving=False)``)."""
        if self._serving or self._closed or self._loop is None:
            return
        self._serving = True
        for sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def stop_accepting(self) -> None:
        """Close the listening sockets; connections already made go on."""
        self._closed = True
        self._pause_accepting()
        self._close_sockets()

    def _pause_accepting(self) -> None:
        if self._serving and self._loop is not None:
            for sock in self._sockets:
                if sock.fileno() >= 0:
                    self._loop.remove_reader(sock.fileno())
        self._serving = False

    def _close_sockets(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for sock in self._sockets:
            sock.close()

    # ---- accepting --------------------------------------------------------------------

    def _accept(self, sock: socket.socket) -> None:
        loop = self._loop
        assert loop is not None
        for _ in range(64):  # a burst, then let the loop breathe
            try:
                conn, address = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._out_of_resources(exc)
                else:
                    log.warning("accept_failed listener=%s error=%s", _sockname(sock), exc)
                return
            if self._accept_failures:
                log.warning("accept_resumed listener=%s paused_for=%.1fs failed_accepts=%d", _sockname(sock),
                            loop.time() - self._accept_failed_at, self._accept_failures)
                self._accept_failures = 0
            ip = _ip_of(address)
            ticket = self._admit(ip, loop.time())
            if ticket is None:
                conn.close()
                continue
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(self._connect(conn, ticket))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _connect(self, conn: socket.socket, ticket: Ticket) -> None:
        loop = self._loop
        assert loop is not None
        ssl = self._ssl
        timeout = self.config.bind_timeout or None
        factory = self.connection_factory

        def make() -> SmscConnection:
            return factory(self, loop, ticket)

        try:
            if ssl is None:
                await loop.connect_accepted_socket(make, conn)
            else:
                await loop.connect_accepted_socket(make, conn, ssl=ssl,
                                                   ssl_handshake_timeout=timeout)
        except (OSError, _ssl.SSLError) as exc:  # a failed or too slow TLS handshake, a peer gone already
            self._refusals.note("tls_handshake_failed" if ssl else "connect_failed", type(exc).__name__,
                                ticket.ip, loop.time())
            conn.close()
            self.admission.leave(ticket)
        except BaseException:
            conn.close()
            self.admission.leave(ticket)
            raise

    def _admit(self, ip: str, now: float) -> Ticket | None:
        """The slot of a connection from ``ip`` accepted at ``now``, or None (refused and logged)."""
        try:
            allowed = self.handler.admit(ip)
        except Exception:  # noqa: BLE001 - a filter bug refuses (fails closed), logged with its traceback
            log.exception("admit failed for %s", ip)
            allowed = False
        if not allowed:
            self._refusals.note("connection_refused", "handler_refused_ip", ip, now)
            return None
        decision = self.admission.enter(ip, now)
        if decision.ticket is None:
            self._refusals.note("connection_refused", decision.refused, ip, now)
            return None
        victim = decision.evicted
        if victim is not None and victim.conn is not None:
            self._refusals.note("connection_evicted", "oldest_idle_unbound", victim.ip, now)
            victim.conn.abort()
        return decision.ticket

    def _out_of_resources(self, exc: OSError) -> None:
        """accept() has no descriptor to give: pause accepting, retry later, log once per episode."""
        loop = self._loop
        assert loop is not None
        if not self._accept_failures:
            self._accept_failed_at = loop.time()
            log.error("accept_paused reason=%s listeners=%s retry_every=%.1fs connections=%d",
                      os.strerror(exc.errno or 0), ",".join(_sockname(s) for s in self._sockets),
                      self.accept_retry_delay, len(self.connections))
        self._accept_failures += 1
        self._pause_accepting()
        self._retry = loop.call_later(self.accept_retry_delay, self._resume_accepting)

    def _resume_accepting(self) -> None:
        self._retry = None
        if not self._closed:
            self.start_serving()

    # ---- the rest ---------------------------------------------------------------------

    @property
    def sockets(self) -> list[socket.socket]:
        return [s for s in self._sockets if s.fileno() >= 0]

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
        self.stop_accepting()
        for task in list(self._handshakes):
            task.cancel()
        if self._handshakes:
            await asyncio.gather(*self._handshakes, return_exceptions=True)
        conns = list(self.connections)
        if conns:
            await asyncio.gather(*(c.unbind(timeout) for c in conns), return_exceptions=True)
        for c in list(self.connections):
            c.abort()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _sockname(sock: socket.socket) -> str:
    try:
        name = sock.getsockname()
    except OSError:
        return "?"
    return f"{name[0]}:{name[1]}" if isinstance(name, tuple) else str(name)


async def serve(
    handler: SmscHandler | None = None,
    host: str = "127.0.0.1",
    port: int = 2775,
    *,
    ssl: _ssl.SSLContext | None = None,
    config: SessionConfig | None = None,
    max_connections: int = 1000,
    max_connections_per_ip: int = 100,
    max_unbound: int = 100,
    start_serving: bool = True,
    backlog: int = 100,
) -> Server:
    """Start an SMPP server; ``port=0`` picks a free port (see ``server.port``).

    ``max_connections``: every connection; ``max_connections_per_ip``: from one
    source address (0: no limit); ``max_unbound``: not bound yet (0: no limit), the
    oldest idle one pushed out for a newcomer. Per-connection limits and timers
    (window, bind_timeout, which also bounds a TLS handshake, max_unanswered) are in
    ``config``. ``start_serving=False``: bind now, accept after ``server.start_serving()``.
    """
    server = Server(handler or SmscHandler(), config=config, max_connections=max_connections,
                    max_connections_per_ip=max_connections_per_ip, max_unbound=max_unbound)
    await server.start(host, port, ssl=ssl, start_serving=start_serving, backlog=backlog)
    return server
