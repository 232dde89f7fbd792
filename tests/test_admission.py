"""Admission control of smppcore's server: who gets a connection slot.

Real sockets on 127.0.0.1 (and 127.0.0.2/.3 as other source addresses: Linux routes
all of 127.0.0.0/8 to loopback). The limits are lowered so that a flood fits the machine.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hubkit import wait_until
from tlskit import self_signed

import smppcore
from smppcore import SessionConfig, SmscConnection, SmscHandler
from smppcore.admission import Admission

HOST = "127.0.0.1"


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """True when the server closes the connection (EOF or reset) within ``timeout``."""
    try:
        return await asyncio.wait_for(reader.read(1), timeout) == b""
    except ConnectionResetError:
        return True


async def open_from(source: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, port, local_addr=(source, 0))


# --- the bookkeeping alone ---------------------------------------------------------------------

# (limits, what happens before, ip of the newcomer, expected refusal or "" and whether one is pushed out)
CASES = {
    "room": ((10, 0, 0), [], "a", "", False),
    "total full, none idle": ((2, 0, 0), ["a!", "b!"], "c", "max_connections", False),
    "total full: oldest idle pushed out": ((2, 0, 0), ["a", "b"], "c", "", True),
    "per ip full": ((10, 2, 0), ["a", "a"], "a", "max_connections_per_ip", False),
    "per ip full, other ip": ((10, 2, 0), ["a", "a"], "b", "", False),
    "unbound full: oldest idle pushed out": ((10, 0, 2), ["a", "b"], "c", "", True),
    "unbound full of binds in progress": ((10, 0, 2), ["a!", "b!"], "c", "max_unbound", False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_admission_decisions(name: str) -> None:
    (total, per_ip, unbound), before, ip, refused, evicts = CASES[name]
    adm = Admission(total, per_ip, unbound)
    tickets = []
    for who in before:
        ticket = adm.enter(who.rstrip("!"), 0.0).ticket
        assert ticket is not None
        ticket.conn = SmscHandler  # anything with abort(): only "has a transport" matters here
        ticket.binding = who.endswith("!")
        tickets.append(ticket)
    decision = adm.enter(ip, 1.0)
    assert decision.refused == refused
    assert (decision.ticket is None) == bool(refused)
    assert (decision.evicted is tickets[0]) if evicts else decision.evicted is None
    assert adm.total == len(before) + (0 if refused else 1) - (1 if evicts else 0)


def test_bound_connections_leave_the_unbound_budget() -> None:
    adm = Admission(10, 0, 1)
    first = adm.enter("a", 0).ticket
    assert first is not None
    adm.bound(first)
    second = adm.enter("a", 0)
    assert second.ticket is not None and second.evicted is None
    adm.leave(first)
    adm.leave(first)  # idempotent
    assert adm.total == 1 and adm.per_ip == {"a": 1}


# --- over real sockets -----------------------------------------------------------------------------


async def test_300_idle_connections_cannot_lock_out_a_good_client() -> None:
    srv = await smppcore.serve(SmscHandler(), HOST, 0, max_connections=400, max_connections_per_ip=0, max_unbound=50)
    idle = []
    try:
        for _ in range(300):
            idle.append(await asyncio.open_connection(HOST, srv.port))
        await wait_until(lambda: srv.admission.total <= 50 and len(srv.connections) <= 50)
        client = await smppcore.connect(HOST, srv.port, system_id="good", password="pw", connect_timeout=5)
        assert (await client.submit_sm(destination_addr="1")).command_status == 0
        assert len(srv.admission.unbound) <= 50
        await client.unbind()
    finally:
        for _, writer in idle:
            writer.close()
        await srv.close(timeout=1)


async def test_bound_sessions_keep_their_slots_under_an_idle_flood() -> None:
    srv = await smppcore.serve(SmscHandler(), HOST, 0, max_connections=4, max_connections_per_ip=0, max_unbound=2)
    idle = []
    try:
        clients = [await smppcore.connect(HOST, srv.port, system_id=f"c{i}", password="pw") for i in range(2)]
        for _ in range(20):
            idle.append(await asyncio.open_connection(HOST, srv.port))
        for client in clients:
            assert (await client.submit_sm(destination_addr="1")).command_status == 0
        assert len(srv.bound_connections()) == 2 and srv.admission.total <= 4
        for client in clients:
            await client.unbind()
    finally:
        for _, writer in idle:
            writer.close()
        await srv.close(timeout=1)


async def test_per_ip_limit_refuses_the_third_from_one_address_only() -> None:
    srv = await smppcore.serve(SmscHandler(), HOST, 0, max_connections_per_ip=2)
    conns = []
    try:
        for _ in range(2):
            conns.append(await open_from("127.0.0.2", srv.port))
        await wait_until(lambda: srv.admission.per_ip.get("127.0.0.2") == 2)
        third = await open_from("127.0.0.2", srv.port)
        conns.append(third)
        assert await closed_by_server(third[0])
        other = await open_from("127.0.0.3", srv.port)
        conns.append(other)
        await wait_until(lambda: srv.admission.per_ip.get("127.0.0.3") == 1)
        assert srv.admission.per_ip.get("127.0.0.2") == 2
    finally:
        for _, writer in conns:
            writer.close()
        await srv.close(timeout=1)


class OnlyFrom(SmscHandler):
    def __init__(self, allowed: str) -> None:
        super().__init__()
        self.allowed = allowed
        self.connections = 0

    def admit(self, peer_ip: str) -> bool:
        return peer_ip == self.allowed

    def connected(self, conn: SmscConnection) -> None:
        self.connections += 1


async def test_a_peer_the_handler_refuses_is_closed_at_accept() -> None:
    handler = OnlyFrom("127.0.0.3")
    srv = await smppcore.serve(handler, HOST, 0)
    try:
        reader, writer = await open_from("127.0.0.2", srv.port)
        assert await closed_by_server(reader)
        writer.close()
        assert handler.connections == 0 and srv.admission.total == 0
        reader, writer = await open_from("127.0.0.3", srv.port)
        writer.write(smppcore.encode(smppcore.BindTransceiver(sequence_number=1, system_id="x", password="pw")))
        (resp,) = smppcore.Framer().feed(await asyncio.wait_for(reader.read(4096), 5))
        assert resp.command_status == 0 and handler.connections == 1
        writer.close()
    finally:
        await srv.close(timeout=1)


async def test_tls_handshake_never_started_is_closed_after_the_bind_timeout(tmp_path: Path) -> None:
    server_ctx, client_ctx, _ = self_signed(tmp_path)
    srv = await smppcore.serve(SmscHandler(), HOST, 0, ssl=server_ctx, config=SessionConfig(bind_timeout=0.3),
                               max_unbound=5)
    try:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection(HOST, srv.port)  # plain TCP: no ClientHello
        await wait_until(lambda: srv.admission.total == 1)  # counted from the TCP accept
        started = loop.time()
        assert await closed_by_server(reader, timeout=5)
        assert loop.time() - started < 3
        writer.close()
        await wait_until(lambda: srv.admission.total == 0)
        client = await smppcore.connect(HOST, srv.port, system_id="x", password="pw", ssl=client_ctx)
        assert (await client.submit_sm(destination_addr="1")).command_status == 0
        await client.unbind()
    finally:
        await srv.close(timeout=1)


EMFILE_SERVER = textwrap.dedent("""
    import asyncio, logging, os, resource, sys
    import smppcore
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    async def main():
        srv = await smppcore.serve(smppcore.SmscHandler(), "127.0.0.1", 0, max_connections_per_ip=0,
                                   max_unbound=0, config=smppcore.SessionConfig(bind_timeout=60))
        srv.accept_retry_delay = 0.1
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 3, hard))
        print(srv.port, flush=True)
        await asyncio.Event().wait()
    if sys.argv[1] == "uvloop":
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())
""")


@pytest.mark.parametrize("which", ["asyncio", "uvloop"])
async def test_out_of_file_descriptors_is_logged_once_and_survived(which: str) -> None:
    # uvloop on its own would drop the waiting connections silently (libuv's EMFILE trick)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", EMFILE_SERVER, which,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None and proc.stderr is not None
    socks: list[socket.socket] = []
    try:
        port = int(await asyncio.wait_for(proc.stdout.readline(), 20))
        for _ in range(8):  # more than the server has descriptors for
            socks.append(socket.create_connection((HOST, port)))
        lines: list[str] = []

        async def read_until(word: str) -> None:
            while not any(word in line for line in lines):
                lines.append((await asyncio.wait_for(proc.stderr.readline(), 10)).decode())

        await read_until("accept_paused")
        for s in socks:  # the server sees them go and gets its descriptors back
            s.close()
        socks.clear()
        await read_until("accept_resumed")
        assert sum("accept_paused" in line for line in lines) == 1, lines
        assert not any("Traceback" in line for line in lines), lines
        client = await smppcore.connect(HOST, port, system_id="after", password="pw", connect_timeout=5)
        await client.unbind()
    finally:
        for s in socks:
            s.close()
        proc.kill()
        await proc.wait()
