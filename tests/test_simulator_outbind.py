"""Outbind end to end: the simulator calls an ESME that waits for its SMSC (SMPP 3.4, 2.2.1).

The ESME is smppcore's client listening for a connection: it gets the outbind, binds on
that connection, submits and receives an MO; when it hangs up the simulator calls again.
Wireshark's dissector reads the outbind in the simulator's pcap. The same through
``smpphub simulate --outbind``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import oracles
import pytest

import smppcore
from smppcore import Pdu
from smppcore.session_states import State
from smpphub import cli
from smpphub.simulator.app import start
from smpphub.simulator.config import config_from_dict
from smpphub.simulator.control import MoRequest

HOST = "127.0.0.1"


class WaitingEsme(smppcore.Client):
    """An ESME that does not dial: it answers the SMSC's outbind with its bind."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.outbinds: list[Pdu] = []

    def on_outbind(self, pdu: Pdu) -> None:
        self.outbinds.append(pdu)
        super().on_outbind(pdu)


@asynccontextmanager
async def listening_esme() -> AsyncIterator[tuple[int, asyncio.Queue[WaitingEsme]]]:
    """A listening ESME: its port, and a queue of the connections the SMSC made to it."""
    loop = asyncio.get_running_loop()
    calls: asyncio.Queue[WaitingEsme] = asyncio.Queue()

    def make() -> WaitingEsme:
        esme = WaitingEsme(system_id="acme", password="secret", loop=loop)
        calls.put_nowait(esme)
        return esme

    server = await loop.create_server(make, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1], calls
    finally:
        server.close()
        await server.wait_closed()


async def test_outbind_then_bind_submit_mo_and_call_again(tmp_path: Path) -> None:
    pcap = tmp_path / "outbind.pcap"
    async with listening_esme() as (esme_port, calls):
        running = await start(config_from_dict({
            "listen": f"{HOST}:0", "pcap": str(pcap),
            "accounts": [{"system_id": "acme", "password": "secret"}],
            "outbind": [{"address": f"{HOST}:{esme_port}", "system_id": "smsc-01", "password": "pw",
                         "retry_s": 0.05}]}))
        try:
            esme = await asyncio.wait_for(calls.get(), 10)
            state = await asyncio.wait_for(asyncio.shield(esme.bound), 10)
            assert state is State.BOUND_TRX
            (outbind,) = esme.outbinds
            assert (outbind.system_id, outbind.password) == ("smsc-01", "pw")
            resp = await esme.submit_sm(destination_addr="447700900123", short_message=b"over the outbind")
            assert resp.message_id
            assert [m.text for m in running.sim.messages] == ["over the outbind"]
            running.control.send_mo(MoRequest(source_addr="447700900999", destination_addr="12345", text="STOP",
                                              system_id="acme"))
            mo = await esme.next_message(timeout=10)
            assert mo.short_message == b"STOP"
            (bind,) = [b for b in running.control.binds() if b.system_id == "acme"]
            assert bind.bind_type == "trx"

            esme.close()  # the ESME hangs up: the simulator calls again
            again = await asyncio.wait_for(calls.get(), 10)
            assert await asyncio.wait_for(asyncio.shield(again.bound), 10) is State.BOUND_TRX
            assert running.outbinders[0].calls == 2
            await again.unbind()
        finally:
            await running.close()
    oracles.require(oracles.tshark_available(), "tshark")
    found = oracles.tshark_read(pcap, esme_port)
    assert not found.malformed, found.problems
    outbinds = [p for p in found if p["smpp.command_id"] == "0x0000000b"]
    assert len(outbinds) == 2 and outbinds[0]["smpp.system_id"] == "smsc-01"
    assert [p["smpp.command_id"] for p in found].count("0x00000009") == 2  # bind_transceiver after each


async def test_an_esme_not_there_yet_is_called_until_it_is() -> None:
    loop = asyncio.get_running_loop()
    placeholder = await loop.create_server(asyncio.Protocol, HOST, 0)  # a port nobody listens on, for now
    port = placeholder.sockets[0].getsockname()[1]
    placeholder.close()
    await placeholder.wait_closed()
    running = await start(config_from_dict({
        "listen": f"{HOST}:0",
        "outbind": [{"address": f"{HOST}:{port}", "system_id": "smsc-01", "retry_s": 0.05}]}))
    try:
        calls: asyncio.Queue[WaitingEsme] = asyncio.Queue()

        def make() -> WaitingEsme:
            esme = WaitingEsme(system_id="late", password="x", loop=loop)
            calls.put_nowait(esme)
            return esme

        server = await loop.create_server(make, HOST, port)
        try:
            esme = await asyncio.wait_for(calls.get(), 10)
            assert await asyncio.wait_for(asyncio.shield(esme.bound), 10) is State.BOUND_TRX
            await esme.unbind()
        finally:
            server.close()
            await server.wait_closed()
    finally:
        await running.close()


async def test_simulate_outbind_from_the_command_line(tmp_path: Path) -> None:
    async with listening_esme() as (esme_port, calls):
        out = tmp_path / "out.txt"
        with out.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "smpphub", "simulate", "--listen", f"{HOST}:0", "--quiet",
                 "--outbind", f"{HOST}:{esme_port}", "--outbind-system-id", "smsc-01", "--outbind-password", "pw"],
                stdout=sink, stderr=subprocess.STDOUT)
        try:
            esme = await asyncio.wait_for(calls.get(), 30)
            assert await asyncio.wait_for(asyncio.shield(esme.bound), 10) is State.BOUND_TRX
            assert [(p.system_id, p.password) for p in esme.outbinds] == [("smsc-01", "pw")]
            await esme.submit_sm(destination_addr="447700900123", short_message=b"hello")
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            while process.poll() is None:  # the simulator unbinds us as it stops: keep this loop running
                assert time.monotonic() < deadline, "simulate did not stop"
                await asyncio.sleep(0.02)
            assert process.returncode == 0, out.read_text()
            text = out.read_text()
            assert f"calling {HOST}:{esme_port} with outbind as smsc-01" in text and "Traceback" not in text
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.parametrize("args,line", [
    (["--outbind", "127.0.0.1:1"], "smpphub simulate: --outbind needs --outbind-system-id"),
    (["--outbind-system-id", "x"], "smpphub simulate: --outbind-system-id without --outbind"),
    (["--outbind", "nowhere", "--outbind-system-id", "x"],
     "smpphub simulate: outbind[0].address: expected HOST:PORT, got 'nowhere'"),
    (["--outbind", "127.0.0.1:0", "--outbind-system-id", "x"],
     "smpphub simulate: outbind[0].address: port must be 1 to 65535, got '127.0.0.1:0'"),
    (["--outbind", "127.0.0.1:1", "--outbind-system-id", "x" * 16],
     "smpphub simulate: outbind[0].system_id: expected str of length <= 15"),
])
def test_outbind_arguments_refused_in_one_line(args: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["simulate", "--listen", f"{HOST}:0", *args]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [line]
