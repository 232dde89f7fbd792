"""Running the simulator: the SMPP listener, the HTTP record endpoint, the status line.

:func:`start` is what both ``smpphub simulate`` and the pytest fixture use.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

import msgspec

import smppcore
from smppcore import SessionConfig
from smppcore.config import format_host_port, parse_host_port

from .config import SimulatorConfig
from .engine import Message, Simulator

__all__ = ["RunningSimulator", "ListenError", "start", "serve_forever"]


class ListenError(OSError):
    """A listener could not start; the message says which address and why."""


def _listen_error(what: str, host: str, port: int, exc: OSError) -> ListenError:
    import os

    # a resolver error (socket.gaierror) has a negative errno that os.strerror does not know
    reason = (os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)).lower()
    return ListenError(exc.errno, f"cannot listen on {format_host_port(host, port)} ({what}): {reason}")


class RunningSimulator:
    """A started simulator: ``sim`` (the behaviour and its records), ``server``, addresses."""

    def __init__(self, sim: Simulator, server: smppcore.Server, http_runner: Any = None, http_port: int | None = None) -> None:
        self.sim = sim
        self.server = server
        self.http_runner = http_runner
        self.http_port = http_port

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    async def close(self) -> None:
        self.sim.detach()
        await self.server.close(timeout=2)
        if self.http_runner is not None:
            await self.http_runner.cleanup()


def _split(listen: str) -> tuple[str, int]:
    """HOST:PORT of a listener, read by the one parser (the config checked it already)."""
    return parse_host_port(listen, allow_port_zero=True)


async def start(config: SimulatorConfig | None = None, *, host: str | None = None, port: int | None = None) -> RunningSimulator:
    """Start a simulator on the running loop (``port=0``: a free port)."""
    config = config or SimulatorConfig()
    sim = Simulator(config)
    sim.attach(asyncio.get_running_loop())
    lhost, lport = _split(config.listen)
    host = host if host is not None else lhost
    port = lport if port is None else port
    session_config = SessionConfig(window=config.window, enquire_link_interval=0, bind_timeout=60,
                                   max_unanswered=config.max_unanswered)
    try:
        server = await smppcore.serve(sim, host, port, config=session_config, max_connections=config.max_connections,
                                      max_connections_per_ip=config.max_connections_per_ip,
                                      max_unbound=config.max_unbound)
    except OSError as exc:
        sim.detach()
        raise _listen_error("SMPP", host, port, exc) from exc
    runner = http_port = None
    if config.http_listen:
        hhost, hport = _split(config.http_listen)
        try:
            runner, http_port = await _start_http(sim, hhost, hport)
        except OSError as exc:
            sim.detach()
            await server.close()
            raise _listen_error("HTTP", hhost, hport, exc) from exc
    return RunningSimulator(sim, server, runner, http_port)


# --- HTTP: the record, as JSON ------------------------------------------------------------


def _message_json(m: Message) -> dict[str, Any]:
    return {
        "system_id": m.system_id,
        "source_addr": m.source_addr,
        "destination_addr": m.destination_addr,
        "data_coding": m.data_coding,
        "text": m.text,
        "parts": m.parts,
        "message_ids": list(m.message_ids),
        "received_at": m.received_at,
    }


async def _start_http(sim: Simulator, host: str, port: int) -> tuple[Any, int]:
    from aiohttp import web

    async def messages(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            return web.json_response({"error": "limit must be an integer"}, status=400)
        items = sim.messages.last(limit)
        return web.json_response({"count": sim.stats.messages, "messages": [_message_json(m) for m in items]})

    async def stats(request: web.Request) -> web.Response:
        return web.Response(body=msgspec.json.encode(sim.stats), content_type="application/json")

    app = web.Application()
    app.router.add_get("/messages", messages)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, bound_port


# --- standalone --------------------------------------------------------------------------


class StatusLine:
    """One line on the terminal, rewritten every second: binds, rate, receipts pending."""

    def __init__(self, sim: Simulator, stream=sys.stderr) -> None:
        self.sim = sim
        self.stream = stream
        self.last = (time.monotonic(), 0)

    def render(self) -> str:
        now = time.monotonic()
        then, count = self.last
        s = self.sim.stats
        rate = (s.submits - count) / max(now - then, 1e-9)
        self.last = (now, s.submits)
        rejected = sum(s.rejected.values())
        return (
            f"binds {s.bound:>3} | {rate:>8.0f} msg/s | accepted {s.accepted} rejected {rejected} throttled {s.throttled}"
            f" | receipts sent {s.receipts_sent} pending {s.receipts_pending} held {s.held} | mo {s.mo_sent}"
        )

    async def run(self) -> None:
        tty = self.stream.isatty()
        while True:
            await asyncio.sleep(1.0)
            line = self.render()
            if tty:
                self.stream.write("\r\x1b[2K" + line)
                self.stream.flush()


async def serve_forever(config: SimulatorConfig, *, quiet: bool = False) -> None:
    running = await start(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before it says it listens: a SIGTERM right after stops it cleanly
        loop.add_signal_handler(sig, stop.set)
    print(f"smpphub simulator listening on {format_host_port(running.host, running.port)}", flush=True)
    if running.http_port:
        print(f"records at http://{format_host_port(_split(config.http_listen)[0], running.http_port)}/messages and /stats", flush=True)
    status = None if quiet else asyncio.ensure_future(StatusLine(running.sim).run())
    try:
        await stop.wait()
    finally:
        if status is not None:
            status.cancel()
        print("\nshutting down", file=sys.stderr, flush=True)
        await running.close()
