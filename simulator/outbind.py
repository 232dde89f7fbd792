"""Outbind: the simulator calls an ESME that waits for its SMSC (SMPP 3.4, 2.2.1 and 4.1.7).

Some ESMEs never dial out: they listen, and the SMSC connects to them and sends an
``outbind`` (system_id, password, no response); the ESME then sends its bind on that
same connection and the session goes on as if the ESME had called. The connection
is an ordinary :class:`smppcore.server.SmscConnection` of the simulator's server, so
accounts, limits, receipts, MO and the pcap capture treat it like any other.

One :class:`Outbinder` per configured target keeps calling: when the connection
cannot be made or ends, it waits ``retry_s`` and calls again, until stopped.
"""

from __future__ import annotations

import asyncio

import structlog

from smppcore.config import parse_host_port
from smppcore.pdus import Outbind
from smppcore.server import Server, SmscConnection

from .config import OutbindTarget
from .pcap import CapturedConnection, PcapWriter

__all__ = ["Outbinder"]

log = structlog.get_logger("simulator.outbind")

CONNECT_TIMEOUT = 10.0


class Outbinder:
    """Keeps one ESME called: connect, outbind, wait for the connection to end, again."""

    def __init__(self, server: Server, target: OutbindTarget, *, capture: PcapWriter | None = None) -> None:
        self.server = server
        self.target = target
        self.capture = capture
        self.host, self.port = parse_host_port(target.address)
        self.calls = 0  # connections made
        self.connection: SmscConnection | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.connection is not None:
            self.connection.close()

    def _make(self) -> SmscConnection:
        loop = asyncio.get_running_loop()
        if self.capture is not None:
            return CapturedConnection(self.server, loop, None, capture=self.capture, outgoing=True)
        return SmscConnection(self.server, loop, None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(self._make, self.host, self.port),
                    CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                log.warning("outbind_connect_failed", address=self.target.address, error=str(exc) or type(exc).__name__)
            else:
                self.calls += 1
                self.connection = conn
                if conn.is_open:  # the server's admission may have refused it already
                    conn.send_nowait(Outbind(system_id=self.target.system_id, password=self.target.password))
                    log.info("outbind_sent", address=self.target.address, system_id=self.target.system_id)
                await asyncio.shield(conn.closed)
                self.connection = None
            await asyncio.sleep(self.target.retry_s)
