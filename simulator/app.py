"""Running the simulator: the SMPP listeners (plain, TLS), outbind callers, the pcap
capture, the HTTP port (record, control API, web page), the status line.

:func:`start` is what both ``smpphub simulate`` and the pytest fixture use.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import sys
import time
from typing import TYPE_CHECKING

import smppcore
from smppcore import SessionConfig
from smppcore.config import ConfigError, format_host_port, parse_host_port

from .config import SimulatorConfig, Tls
from .control import Control
from .engine import Simulator
from .outbind import Outbinder
from .pcap import PcapWriter, capturing_factory

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["RunningSimulator", "ListenError", "start", "serve_forever", "tls_context"]


class ListenError(OSError):
    """A listener could not start; the message says which address and why."""


def _listen_error(what: str, host: str, port: int, exc: OSError) -> ListenError:
    import os

    # a resolver error (socket.gaierror) has a negative errno that os.strerror does not know
    reason = (os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)).lower()
    return ListenError(exc.errno, f"cannot listen on {format_host_port(host, port)} ({what}): {reason}")


class RunningSimulator:
    """A started simulator: ``sim`` (the behaviour and its records), ``control`` (the
    operations of the HTTP API and the fixture), its listeners and outbind callers."""

    def __init__(self, sim: Simulator, server: smppcore.Server, http_runner: web.AppRunner | None = None,
                 http_port: int | None = None,
                 *, tls_server: smppcore.Server | None = None, capture: PcapWriter | None = None,
                 outbinders: list[Outbinder] | None = None) -> None:
        self.sim = sim
        self.control = Control(sim)
        self.server = server
        self.http_runner = http_runner
        self.http_port = http_port
        self.tls_server = tls_server
        self.capture = capture
        self.outbinders = outbinders or []

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def tls_port(self) -> int | None:
        return self.tls_server.port if self.tls_server is not None else None

    async def close(self) -> None:
        self.control.close()  # long-polls answer now instead of holding the HTTP shutdown
        self.sim.detach()
        for outbinder in self.outbinders:
            await outbinder.stop()
        servers = [s for s in (self.server, self.tls_server) if s is not None]
        await asyncio.gather(*(s.close(timeout=2) for s in servers))
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if self.capture is not None:
            self.capture.close()


def _split(listen: str) -> tuple[str, int]:
    """HOST:PORT of a listener, read by the one parser (the config checked it already)."""
    return parse_host_port(listen, allow_port_zero=True)


def tls_context(tls: Tls) -> ssl.SSLContext:
    """The TLS listener's context; a certificate or key that does not load is a ConfigError naming it."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(tls.cert, tls.key)
    except OSError as exc:  # ssl.SSLError is one
        reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else (exc.strerror or str(exc))
        raise ConfigError(f"tls.cert, tls.key: {tls.cert} and {tls.key} do not load as a certificate and its key "
                          f"({str(reason).lower()})") from None
    return ctx


def open_capture(config: SimulatorConfig) -> PcapWriter | None:
    if config.pcap is None:
        return None
    try:
        return PcapWriter(config.pcap, config.pcap_max_mb * 1024 * 1024)
    except OSError as exc:
        raise ConfigError(f"pcap: cannot write {config.pcap}: {(exc.strerror or str(exc)).lower()}") from None


async def start(
    config: SimulatorConfig | None = None, *, host: str | None = None, port: int | None = None,
) -> RunningSimulator:
    """Start a simulator on the running loop (``port=0``: a free port).

    A TLS certificate that does not load or a pcap file that cannot be written raise
    ConfigError; a listener that cannot start raises ListenError; either way nothing
    is left running.
    """
    config = config or SimulatorConfig()
    ssl_ctx = tls_context(config.tls) if config.tls is not None else None
    sim = Simulator(config)
    capture = open_capture(config)
    sim.attach(asyncio.get_running_loop())
    lhost, lport = _split(config.listen)
    host = host if host is not None else lhost
    port = lport if port is None else port
    session_config = SessionConfig(window=config.window, enquire_link_interval=0, bind_timeout=60,
                                   max_unanswered=config.max_unanswered)
    servers: list[smppcore.Server] = []

    async def listen(what: str, lhost: str, lport: int, ctx: ssl.SSLContext | None) -> smppcore.Server:
        try:
            server = await smppcore.serve(sim, lhost, lport, ssl=ctx, config=session_config, start_serving=False,
                                          max_connections=config.max_connections,
                                          max_connections_per_ip=config.max_connections_per_ip,
                                          max_unbound=config.max_unbound)
        except OSError as exc:
            raise _listen_error(what, lhost, lport, exc) from exc
        servers.append(server)
        if capture is not None:
            server.connection_factory = capturing_factory(capture)
        server.start_serving()
        return server

    try:
        server = await listen("SMPP", host, port, None)
        tls_server = None
        if config.tls is not None:
            thost, tport = _split(config.tls.listen)
            tls_server = await listen("TLS", thost, tport, ssl_ctx)
        running = RunningSimulator(sim, server, tls_server=tls_server, capture=capture)
        if config.http_listen:
            from .http_api import start_http

            hhost, hport = _split(config.http_listen)
            try:
                running.http_runner, running.http_port = await start_http(running.control, hhost, hport)
            except OSError as exc:
                raise _listen_error("HTTP", hhost, hport, exc) from exc
        for target in config.outbind:
            outbinder = Outbinder(running.server, target, capture=capture)
            running.outbinders.append(outbinder)
            outbinder.start()
    except BaseException:
        sim.detach()
        for started in servers:
            await started.close()
        if capture is not None:
            capture.close()
        raise
    return running


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
            f"binds {s.bound:>3} | {rate:>8.0f} msg/s | accepted {s.accepted} rejected {rejected}"
            f" throttled {s.throttled}"
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
    smppcore.quiet_gc()  # thousands of receipts wait on timers: keep the collector off the hot path
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before it says it listens: a SIGTERM right after stops it cleanly
        loop.add_signal_handler(sig, stop.set)
    print(f"smpphub simulator listening on {format_host_port(running.host, running.port)}", flush=True)
    if running.tls_server is not None:
        print(f"TLS on {format_host_port(running.tls_server.host, running.tls_server.port)}", flush=True)
    if running.http_port:
        base = f"http://{format_host_port(_split(config.http_listen)[0], running.http_port)}"  # type: ignore[arg-type]
        print(f"live page at {base}/, records at {base}/messages and /stats, control API (simulator/README.md)",
              flush=True)
    for outbinder in running.outbinders:
        print(f"calling {outbinder.target.address} with outbind as {outbinder.target.system_id}", flush=True)
    if running.capture is not None:
        print(f"writing every PDU to {running.capture.path}", flush=True)
    status = None if quiet else asyncio.ensure_future(StatusLine(running.sim).run())
    try:
        await stop.wait()
    finally:
        if status is not None:
            status.cancel()
        print("\nshutting down", file=sys.stderr, flush=True)
        await running.close()
