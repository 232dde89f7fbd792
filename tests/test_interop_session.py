"""Whole sessions with implementations we did not write: node-smpp both ways, and
Wireshark's dissector reading a capture of one of our sessions."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import tempfile
from pathlib import Path

import pytest
from oracles import _ACK, _PSH, _SYN, _frame, node_available, require, tshark_available

import smppcore
from smppcore import CommandStatus, DeliverSm, EnquireLink, Framer, MessageState, Tag
from smppcore.receipt import build_receipt, receipt_info

NODE_DIR = Path(__file__).resolve().parent / "interop" / "node"
HOST = "127.0.0.1"


async def node(script: str, *args: str) -> asyncio.subprocess.Process:
    env = dict(os.environ, NODE_PATH=str(NODE_DIR / "node_modules"))
    return await asyncio.create_subprocess_exec("node", str(NODE_DIR / script), *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)


async def json_lines(proc: asyncio.subprocess.Process, timeout: float = 20.0) -> list[dict]:
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


class ReceiptingSmsc(smppcore.SmscHandler):
    """Answers submits and sends their receipt to the same connection."""

    def __init__(self) -> None:
        super().__init__()
        self.submits: list = []
        self.acked: list = []

    def handle(self, conn, pdu):
        resp = super().handle(conn, pdu)
        self.submits.append(pdu)
        if getattr(pdu, "registered_delivery", 0):
            receipt = build_receipt(message_id=resp.message_id, state=MessageState.DELIVERED, source_addr=pdu.source_addr,
                                    destination_addr=pdu.destination_addr, submit_date=None, done_date=None, text=pdu.short_message)

            async def send() -> None:
                self.acked.append(await conn.request(receipt))

            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(send()))
        return resp


async def test_node_smpp_esme_against_our_server():
    require(node_available(), "node-smpp")
    handler = ReceiptingSmsc()
    server = await smppcore.serve(handler, HOST, 0)
    try:
        events = await json_lines(await node("esme.js", str(server.port)))
    finally:
        await server.close(timeout=1)
    by = {e["event"]: e for e in events}
    assert by["bind_resp"]["command_status"] == 0 and by["bind_resp"]["system_id"] == "smppcore"
    assert by["submit_sm_resp"]["command_status"] == 0 and by["submit_sm_resp"]["message_id"] == "1"
    assert handler.submits[0].short_message == b"from node-smpp" and handler.submits[0].destination_addr == "447700900123"
    assert by["deliver_sm"]["esm_class"] == 4 and by["deliver_sm"]["receipted_message_id"] == "1"
    assert "stat:DELIVRD" in by["deliver_sm"]["short_message"]
    assert by["enquire_link_resp"]["command_status"] == 0 and by["unbind_resp"]["command_status"] == 0
    assert handler.acked and handler.acked[0].command_status == 0


async def test_our_client_against_a_node_smpp_smsc():
    require(node_available(), "node-smpp")
    proc = await node("smsc.js")
    try:
        port = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))["port"]
        async with smppcore.connect(HOST, port, system_id="ours", password="pw") as client:
            assert client.session.system_id == "nodesmsc"
            resp = await client.submit_sm(source_addr="Ours", destination_addr="447700900123", short_message=b"to node",
                                          registered_delivery=1)
            info = receipt_info(await client.next_message(timeout=10))
            assert info.message_id == resp.message_id and info.state == MessageState.DELIVERED
            assert (await client.enquire_link()).command_status == 0
        assert client.session.state.value in ("unbound", "closed")
        proc.terminate()
        lines = [json.loads(x) for x in (await asyncio.wait_for(proc.stdout.read(), 10)).decode().splitlines() if x.strip()]
        assert [e["event"] for e in lines][:4] == ["bind", "submit_sm", "enquire_link", "unbind"]
        assert lines[1]["text"] == "to node"
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


class RecordingProxy:
    """A TCP relay that keeps every chunk with its direction, for the capture."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.chunks: list[tuple[str, bytes]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, HOST, 0)
        return self.server.sockets[0].getsockname()[1]

    async def _relay(self, creader, cwriter) -> None:
        sreader, swriter = await asyncio.open_connection(HOST, self.target_port)

        async def pump(reader, writer, direction: str) -> None:
            while data := await reader.read(65536):
                self.chunks.append((direction, data))
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(pump(creader, swriter, "c2s"), pump(sreader, cwriter, "s2c"), return_exceptions=True)

    async def close(self) -> None:
        self.server.close()


def session_pcap(path: str, chunks: list[tuple[str, bytes]], port: int) -> None:
    cport, cseq, sseq = 40000, 1001, 5001
    frames = [_frame(cport, port, 1000, 0, _SYN, b"", 1), _frame(port, cport, 5000, 1001, _SYN | _ACK, b"", 2),
              _frame(cport, port, 1001, 5001, _ACK, b"", 3)]
    for i, (direction, data) in enumerate(chunks, start=4):
        if direction == "c2s":
            frames.append(_frame(cport, port, cseq, sseq, _PSH | _ACK, data, i))
            cseq += len(data)
        else:
            frames.append(_frame(port, cport, sseq, cseq, _PSH | _ACK, data, i))
            sseq += len(data)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet, as _frame builds
        for frame in frames:
            f.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame)


async def test_a_whole_session_of_ours_dissects_cleanly_in_tshark():
    require(tshark_available(), "tshark")
    handler = ReceiptingSmsc()
    server = await smppcore.serve(handler, HOST, 0, config=smppcore.SessionConfig(enquire_link_interval=0))
    proxy = RecordingProxy(server.port)
    port = await proxy.start()
    try:
        async with smppcore.connect(HOST, port, system_id="capture", password="pw") as client:
            await client.submit_sm(destination_addr="447700900001", short_message=b"plain", registered_delivery=1)
            await client.submit_sm(destination_addr="447700900002", short_message=b"tlvs", tlvs={Tag.USER_MESSAGE_REFERENCE: 7})
            await client.submit_text("447700900003", "long message " * 20)
            await client.next_message(timeout=5)
            await client.enquire_link()
            (conn,) = [c for c in server.connections]
            await conn.request(EnquireLink())  # the other way round
            await conn.request(DeliverSm(source_addr="447700900009", destination_addr="12345", short_message=b"MO"))
            await client.next_message(timeout=5)
    finally:
        await proxy.close()
        await server.close(timeout=1)
    pdus = []
    framers = {"c2s": Framer(), "s2c": Framer()}
    for direction, data in proxy.chunks:
        pdus += [(direction, p) for p in framers[direction].feed(data)]
    assert len(pdus) >= 16
    with tempfile.TemporaryDirectory() as tmp:
        path = os.environ.get("SMPPHUB_KEEP_PCAP") or os.path.join(tmp, "session.pcap")
        session_pcap(path, proxy.chunks, 2775)
        proc = await asyncio.create_subprocess_exec(
            "tshark", "-r", path, "-d", "tcp.port==2775,smpp", "-T", "fields", "-e", "smpp.command_id", "-e", "smpp.sequence_number",
            "-e", "_ws.malformed", "-e", "_ws.expert.severity", "-E", "occurrence=a", "-E", "aggregator=;",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    seen = []
    for line in out.decode().splitlines():
        cols = line.split("\t")
        assert not cols[2], f"malformed: {line}"
        if cols[0]:
            ids = [int(x, 16) for x in cols[0].split(";")]
            seqs = [int(x) for x in cols[1].split(";")]
            seen += list(zip(ids, seqs))
    assert seen == [(p.command_id, p.sequence_number) for _, p in pdus]
    assert (0x80000000 | 0x15) in {cid for cid, _ in seen} and 0x5 in {cid for cid, _ in seen}
    assert all(p.command_status == CommandStatus.ESME_ROK for _, p in pdus)
