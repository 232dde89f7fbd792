"""The hub's HTTP server: one aiohttp application on the hub's event loop.

Sections add their routes through :data:`SECTIONS`, a tuple of functions
``register(app, hub)`` each given the :class:`~.view.HubView` (the hub as a
Protocol), called once when the server is made. A new section is one line there.

Like the SMPP listeners, the socket is bound first (:meth:`HttpServer.bind`, before
the store exists, so a port taken fails the start with nothing on disk) and serves
only once the hub is ready (:meth:`HttpServer.start_serving`). Bounds: the request
body (``max_body_bytes``, 413 past it), connections open at once (``max_connections``:
one more is closed as it comes, without reading it), keep-alive idle time, and the
time one request may take (``request_timeout``, 503 past it). Errors of every
section have one JSON shape (:mod:`.errors`), given by the one middleware (:class:`_Guard`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import structlog
from aiohttp import web

from smppcore.config import parse_host_port

from ..config import HttpConfig, server_tls_context
from . import admin, api, dashboard, kannel, metrics, openapi
from .auth import TOKENS, TokenTable
from .errors import ApiError, Handler, error_answer
from .view import HTTP_CONFIG, HUB, HubView

__all__ = ["HttpServer", "SECTIONS", "Registrar", "build_app"]

log = structlog.get_logger("smpphub.http")

Registrar = Callable[[web.Application, HubView], None]

#: every section of the HTTP server, registered in this order
SECTIONS: tuple[Registrar, ...] = (api.register, kannel.register, openapi.register, metrics.register,
                                   admin.register, dashboard.register)

class _Guard:
    """The application's one middleware: every failure as the JSON error shape (:func:`.errors.error_answer`),
    and ``request_timeout``, enforced by one sweep a second rather than a timer per request.

    A timer per request (``asyncio.timeout``) cost ~15% of a small request's time in the
    hub; here a request only enters and leaves a dict, and a sweeper cancels the ones past
    their deadline (up to a second late), which are answered 503. The dict holds at most
    the requests in progress, so it is bounded by ``max_connections``. One middleware, not
    one for errors and one for deadlines: every coroutine level between aiohttp and the
    handler is paid on each suspension and resumption of every request.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running: dict[asyncio.Task[object], float] = {}
        self.expired: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:  # (None: not in a task, never under aiohttp; no deadline then)
            self.running[task] = task.get_loop().time() + self.seconds
        try:
            return await handler(request)
        except asyncio.CancelledError:
            if task is None or task not in self.expired:
                raise
            self.expired.discard(task)
            task.uncancel()
            return error_answer(request, ApiError(503, f"the request took longer than request_timeout "
                                                       f"({self.seconds:g} s)", code="timeout"))
        except Exception as exc:  # noqa: BLE001 - each kind is answered or raised again by error_answer
            return error_answer(request, exc)
        finally:
            if task is not None:
                self.running.pop(task, None)
                self.expired.discard(task)  # a request that finished just as the sweep cancelled it

    def sweep(self, now: float) -> None:
        for task, deadline in list(self.running.items()):
            if deadline <= now and task not in self.expired:
                self.expired.add(task)
                task.cancel()

    async def _sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.seconds / 2))
            self.sweep(loop.time())

    async def start(self, app: web.Application) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self, app: web.Application) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)


def build_app(config: HttpConfig, hub: HubView, sections: tuple[Registrar, ...] = SECTIONS) -> web.Application:
    """The application with every section's routes (also what a test serves on its own)."""
    guard = _Guard(config.request_timeout)
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[guard.middleware])
    app.on_startup.append(guard.start)
    app.on_cleanup.append(guard.stop)
    app[HUB] = hub
    app[HTTP_CONFIG] = config
    app[TOKENS] = TokenTable()
    for register in sections:
        register(app, hub)
    return app


class _Refused(asyncio.Protocol):
    """A connection over ``max_connections``: closed at once, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class HttpServer:
    """The HTTP listener of ``[http]``: bind, serve, stop (bounded)."""

    def __init__(self, config: HttpConfig, hub: HubView, sections: tuple[Registrar, ...] = SECTIONS) -> None:
        self.config = config
        self.app = build_app(config, hub, sections)
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None,
                                     keepalive_timeout=config.keepalive_timeout)
        self._server: asyncio.Server | None = None
        self._web: web.Server | None = None
        self.refused = 0  # connections closed for being over max_connections
        self.host, self.port = parse_host_port(config.listen, allow_port_zero=True)

    def _ssl(self) -> ssl.SSLContext | None:
        if self.config.tls_cert is None:
            return None
        return server_tls_context(self.config.tls_cert, self.config.tls_key)

    async def bind(self) -> None:
        """Bind the socket (OSError if it cannot be), serving nothing yet."""
        await self._runner.setup()
        self._web = self._runner.server
        try:
            self._server = await asyncio.get_running_loop().create_server(
                self._protocol, self.host, self.port, ssl=self._ssl(), start_serving=False, reuse_address=True)
        except BaseException:
            await self._runner.cleanup()
            raise
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]

    def _protocol(self) -> asyncio.BaseProtocol:
        assert self._web is not None
        if len(self._web.connections) >= self.config.max_connections:
            self.refused += 1
            return _Refused()
        return self._web()

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls_cert else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    async def start_serving(self) -> None:
        assert self._server is not None
        await self._server.start_serving()
        log.info("http_listening", url=self.url, tls=self.config.tls_cert is not None)

    def stop_accepting(self) -> None:
        """No new connection from now on; requests in progress go on."""
        if self._server is not None:
            self._server.close()

    async def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, let requests in progress finish for up to ``timeout`` seconds, close."""
        self.stop_accepting()
        if self._web is not None:
            try:
                await asyncio.wait_for(self._web.shutdown(timeout), timeout + 1.0)
            except TimeoutError:
                log.warning("http_shutdown_timeout", seconds=timeout)
        await self._runner.cleanup()
        self._server = None
