"""Whole SMPP sessions against implementations we did not write.

1. smpplib (PyPI, synchronous, run in a thread) binds to our server: submit_sm,
   a delivery receipt back, enquire_link, a long message split by smpplib, unbind.
2. aiosmpplib (PyPI, asyncio) binds to our server: submit_sm, receipt correlated
   by aiosmpplib to its own submit, enquire_link from its keep-alive, unbind.
3. node-smpp as an ESME (tests/interop/node/esme.js) against our server.
4. Our client against node-smpp as an SMSC (tests/interop/node/smsc.js).
5. A session of ours (client and server) recorded byte for byte by a relay,
   written to a pcap and dissected by Wireshark's SMPP dissector (tshark).

Every test runs over 127.0.0.1 on OS-chosen ports, waits on events (or polls
with a bound), and stops whatever it started.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
from datetime import datetime, timezone
from typing import Any, Callable

import smppcore
from interop_util import NodeScript, RecordingProxy, tshark_available, tshark_smpp, write_tcp_pcap
from oracles import node_available, require, smpplib_available
from smppcore import CommandId, CommandStatus, EnquireLink, MessageState, SessionConfig, State, Tag
from smppcore.receipt import build_receipt, is_receipt, parse_receipt, receipt_info
from smppcore.text import concat_info, decode_text, encode_text

HOST = "127.0.0.1"
PASSWORD = "secret"
SUBMIT_DATE = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
DONE_DATE = datetime(2026, 11, 25, 8, 1, tzinfo=timezone.utc)

# 300 GSM 03.38 characters (basic table only, some of them non-ASCII): two parts.
LONG_TEXT = ("Long message £@Ø é ü, split by the peer and carried as UDH parts. " * 5)[:300]


async def eventually(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` (bounded) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


def s(value: Any) -> Any:
    """smpplib hands C-strings back as bytes; compare them as str."""
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value


class RecordingSmsc(smppcore.SmscHandler):
    """Our server's handler for these tests.

    Checks the password, records binds and submits, answers submit_sm with
    ``msg-000N`` and, when ``receipts`` and the submit asks for one
    (registered_delivery), sends a DELIVERED receipt back on the same connection
    right after the response, recording the ESME's deliver_sm_resp; with
    ``ping_after_receipt`` it then sends an enquire_link of its own (``pings``).
    """

    system_id = "smpphub"

    def __init__(self, receipts: bool = True, ping_after_receipt: bool = False) -> None:
        super().__init__()
        self.receipts = receipts
        self.ping_after_receipt = ping_after_receipt
        self.pings: list = []
        self.binds: list = []
        self.bound_conns: list = []
        self.closed_conns: list = []
        self.submits: list = []
        self.receipts_sent: list = []
        self.receipt_resps: list = []
        self.failures: list = []
        self._tasks: set[asyncio.Task] = set()

    def authenticate(self, conn, bind):
        self.binds.append(bind)
        return 0 if bind.password == PASSWORD else CommandStatus.ESME_RINVPASWD

    def bound(self, conn):
        self.bound_conns.append(conn)

    def closed(self, conn):
        self.closed_conns.append(conn)

    def handle(self, conn, pdu):
        if pdu.command_id != CommandId.SUBMIT_SM:
            return super().handle(conn, pdu)
        self.submits.append(pdu)
        resp = pdu.make_response(message_id=f"msg-{len(self.submits):04d}")
        if self.receipts and pdu.registered_delivery & 0x03:
            task = asyncio.ensure_future(self._send_receipt(conn, pdu, resp.message_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return resp

    async def _send_receipt(self, conn, submit, message_id: str) -> None:
        receipt = build_receipt(
            message_id=message_id,
            state=MessageState.DELIVERED,
            source_addr=submit.source_addr,
            destination_addr=submit.destination_addr,
            source_addr_ton=submit.source_addr_ton,
            source_addr_npi=submit.source_addr_npi,
            dest_addr_ton=submit.dest_addr_ton,
            dest_addr_npi=submit.dest_addr_npi,
            submit_date=SUBMIT_DATE,
            done_date=DONE_DATE,
            text=submit.short_message,
        )
        self.receipts_sent.append(receipt)
        try:
            self.receipt_resps.append(await conn.request(receipt))
            if self.ping_after_receipt:
                self.pings.append(await conn.request(EnquireLink()))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.failures.append(exc)

    async def settle(self) -> None:
        if self._tasks:
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5)


# --- 1. smpplib ---------------------------------------------------------------------


def _smpplib_session(port: int) -> dict[str, Any]:
    """One whole smpplib session, run in a worker thread. Returns what it saw."""
    import smpplib.client
    import smpplib.consts as c
    import smpplib.gsm
    import smpplib.smpp

    client = smpplib.client.Client(HOST, port, timeout=5, allow_unknown_opt_params=True)
    sent: list = []
    received: list = []
    client.set_message_sent_handler(lambda pdu, **kw: sent.append(pdu))
    client.set_message_received_handler(lambda pdu, **kw: received.append(pdu))
    out: dict[str, Any] = {"sent": sent, "received": received}

    def read_until(done: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"smpplib: timed out; sent={sent} received={received}")
            client.read_once(auto_send_enquire_link=False)

    client.connect()
    try:
        out["bind_resp"] = client.bind_transceiver(system_id="smpplib", password=PASSWORD, system_type="interop")
        out["submit"] = client.send_message(
            source_addr_ton=c.SMPP_TON_ALNUM,
            source_addr_npi=c.SMPP_NPI_UNK,
            source_addr="SmppLib",
            dest_addr_ton=c.SMPP_TON_INTL,
            dest_addr_npi=c.SMPP_NPI_ISDN,
            destination_addr="447700900123",
            short_message=b"hello from smpplib",
            data_coding=c.SMPP_ENCODING_DEFAULT,
            esm_class=c.SMPP_MSGMODE_DEFAULT,
            priority_flag=1,
            registered_delivery=c.SMPP_SMSC_DELIVERY_RECEIPT_BOTH,
        )
        read_until(lambda: len(sent) == 1 and len(received) == 1)

        enquire = smpplib.smpp.make_pdu("enquire_link", client=client)
        client.send_pdu(enquire)
        out["enquire_link"] = enquire
        out["enquire_link_resp"] = client.read_pdu()

        parts, coding, esm_class = smpplib.gsm.make_parts(LONG_TEXT)
        out["parts"], out["parts_coding"], out["parts_esm_class"] = parts, coding, esm_class
        out["part_pdus"] = [
            client.send_message(
                source_addr_ton=c.SMPP_TON_ALNUM,
                source_addr="SmppLib",
                dest_addr_ton=c.SMPP_TON_INTL,
                dest_addr_npi=c.SMPP_NPI_ISDN,
                destination_addr="447700900123",
                short_message=part,
                data_coding=coding,
                esm_class=esm_class,
                registered_delivery=0,
            )
            for part in parts
        ]
        read_until(lambda: len(sent) == 1 + len(parts))
        out["unbind_resp"] = client.unbind()
    finally:
        client.disconnect()
    return out


async def test_smpplib_esme_against_our_server():
    require(smpplib_available(), "smpplib")
    handler = RecordingSmsc()
    server = await smppcore.serve(handler, HOST, 0)
    try:
        got = await asyncio.wait_for(asyncio.to_thread(_smpplib_session, server.port), 30)
        await eventually(lambda: handler.closed_conns, what="the server to see smpplib go")
        await handler.settle()
    finally:
        await server.close(timeout=1)

    # The bind, as we decoded it, and smpplib's view of our answer.
    (bind,) = handler.binds
    assert bind.command_id == CommandId.BIND_TRANSCEIVER
    assert (bind.system_id, bind.password, bind.system_type, bind.interface_version) == (
        "smpplib", PASSWORD, "interop", 0x34)
    assert handler.bound_conns and handler.bound_conns[0].system_id == "smpplib"
    assert got["bind_resp"].command == "bind_transceiver_resp" and got["bind_resp"].status == 0
    assert s(got["bind_resp"].system_id) == "smpphub"

    # The submit_sm, field by field as we decoded it.
    first = handler.submits[0]
    assert first.sequence_number == got["submit"].sequence
    assert (first.source_addr_ton, first.source_addr_npi, first.source_addr) == (5, 0, "SmppLib")
    assert (first.dest_addr_ton, first.dest_addr_npi, first.destination_addr) == (1, 1, "447700900123")
    assert first.short_message == b"hello from smpplib"
    assert (first.esm_class, first.priority_flag, first.registered_delivery, first.data_coding) == (0, 1, 1, 0)
    assert first.tlvs == {}

    # submit_sm_resp and the receipt, as smpplib read them.
    resp = got["sent"][0]
    assert resp.command == "submit_sm_resp" and resp.status == 0
    assert resp.sequence == got["submit"].sequence and s(resp.message_id) == "msg-0001"
    (dlr,) = got["received"]
    sent_receipt = handler.receipts_sent[0]
    assert dlr.command == "deliver_sm" and dlr.sequence == sent_receipt.sequence_number
    assert dlr.esm_class == 0x04 and s(dlr.receipted_message_id) == "msg-0001"
    assert dlr.message_state == MessageState.DELIVERED
    assert (s(dlr.source_addr), dlr.source_addr_ton, dlr.source_addr_npi) == ("447700900123", 1, 1)
    assert (s(dlr.destination_addr), dlr.dest_addr_ton) == ("SmppLib", 5)
    text = bytes(dlr.short_message).decode("ascii")
    assert text.startswith("id:msg-0001 sub:001 dlvrd:001 submit date:2611250800 done date:2611250801 stat:DELIVRD err:000")
    assert text.endswith(" text:hello from smpplib")
    assert parse_receipt(text).id == "msg-0001"
    # smpplib answered the receipt with a deliver_sm_resp we matched to it.
    assert [(r.command_status, r.sequence_number) for r in handler.receipt_resps] == [(0, dlr.sequence)]
    assert not handler.failures

    # enquire_link from smpplib, answered by our session.
    assert got["enquire_link_resp"].command == "enquire_link_resp"
    assert got["enquire_link_resp"].status == 0 and got["enquire_link_resp"].sequence == got["enquire_link"].sequence

    # The long message, split by smpplib: UDH parts, in order, that join to the text.
    parts, part_pdus = got["parts"], got["part_pdus"]
    assert len(parts) == 2 and got["parts_esm_class"] == 0x40 and got["parts_coding"] == 0
    segments = handler.submits[1:]
    assert [p.short_message for p in segments] == parts
    assert [p.sequence_number for p in segments] == [p.sequence for p in part_pdus]
    infos = [concat_info(p) for p in segments]
    assert all(p.esm_class & 0x40 and p.data_coding == 0 for p in segments)
    assert [(i.total, i.seq, i.ref_bits) for i in infos] == [(2, 1, 8), (2, 2, 8)]
    assert infos[0].reference == infos[1].reference == parts[0][3]
    assert decode_text(b"".join(i.payload for i in infos), 0) == LONG_TEXT
    assert [s(r.message_id) for r in got["sent"][1:]] == ["msg-0002", "msg-0003"]
    assert len(handler.receipts_sent) == 1  # registered_delivery 0: no receipts for the parts

    # unbind from smpplib: answered, then the connection closed.
    assert got["unbind_resp"].command == "unbind_resp" and got["unbind_resp"].status == 0


# --- 2. aiosmpplib ------------------------------------------------------------------


async def test_aiosmpplib_esme_against_our_server():
    try:
        import aiosmpplib
        from aiosmpplib import NPI, TON, AbstractHook, PhoneNumber
    except ImportError:
        require(False, "aiosmpplib")
        return

    class Hook(AbstractHook):
        def __init__(self) -> None:
            self.outgoing: list = []
            self.incoming: list = []
            self.errors: list = []

        async def sending(self, smpp_message, pdu, client_id):
            self.outgoing.append((smpp_message, pdu))

        async def received(self, smpp_message, pdu, client_id):
            self.incoming.append((smpp_message, pdu))

        async def send_error(self, smpp_message, error, client_id):
            self.errors.append((smpp_message, error))

    def seen(cls, live: bool = False):
        if live and task.done():  # ESME.start() only returns early when something broke
            raise AssertionError(f"aiosmpplib's ESME stopped: {task.exception() if not task.cancelled() else 'cancelled'}")
        return [m for m, _ in hook.incoming if isinstance(m, cls)]

    handler = RecordingSmsc()
    server = await smppcore.serve(handler, HOST, 0)
    proxy = RecordingProxy(server.port)  # to see the unbind exchange on the wire
    proxy_port = await proxy.start()
    hook = Hook()
    esme = aiosmpplib.ESME(
        smsc_host=HOST,
        smsc_port=proxy_port,
        system_id="aiosmpplib",
        password=PASSWORD,
        hook=hook,
        enquire_link_interval=0.2,  # its keep-alive: fires once the line is quiet
        socket_timeout=5.0,
        log_level="WARNING",
    )
    task = asyncio.ensure_future(esme.start())
    try:
        await esme.broker.enqueue(
            aiosmpplib.SubmitSm(
                short_message="hello from aiosmpplib",
                source=PhoneNumber("AioSmpp", TON.ALPHANUMERIC, NPI.UNKNOWN),
                destination=PhoneNumber("447700900124", TON.INTERNATIONAL, NPI.ISDN),
                registered_delivery=1,
                log_id="aio-1",
                extra_data="mine",
            )
        )
        receipts = await eventually(lambda: seen(aiosmpplib.DeliverSm, live=True), what="aiosmpplib to get the receipt")
        await eventually(lambda: seen(aiosmpplib.EnquireLinkResp, live=True), what="aiosmpplib's enquire_link answered")
        await asyncio.wait_for(esme.stop(), 10)
        await asyncio.wait_for(task, 10)
        await eventually(lambda: handler.closed_conns, what="the server to see aiosmpplib go")
        await proxy.wait_closed()
        await handler.settle()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await proxy.close()
        await server.close(timeout=1)

    assert not hook.errors
    (bind,) = handler.binds
    assert (bind.command_id, bind.system_id, bind.password, bind.interface_version) == (
        CommandId.BIND_TRANSCEIVER, "aiosmpplib", PASSWORD, 0x34)
    (submit,) = handler.submits
    assert (submit.source_addr_ton, submit.source_addr_npi, submit.source_addr) == (5, 0, "AioSmpp")
    assert (submit.dest_addr_ton, submit.dest_addr_npi, submit.destination_addr) == (1, 1, "447700900124")
    assert decode_text(submit.short_message, submit.data_coding) == "hello from aiosmpplib"
    assert submit.registered_delivery == 1

    (resp,) = seen(aiosmpplib.SubmitSmResp)
    assert resp.command_status == 0 and resp.message_id == "msg-0001" and resp.log_id == "aio-1"
    (dlr,) = receipts
    assert dlr.is_receipt()
    # aiosmpplib matched our receipt to its own submit by the id in the text.
    assert (dlr.log_id, dlr.extra_data) == ("aio-1", "mine")
    fields = dlr.parse_receipt()
    assert fields["id"] == "msg-0001" and fields["stat"] == "DELIVRD"
    assert [(r.command_status, r.sequence_number) for r in handler.receipt_resps] == [
        (0, handler.receipts_sent[0].sequence_number)]
    assert all(m.command_status == 0 for m in seen(aiosmpplib.EnquireLinkResp))
    # It unbound and we answered. aiosmpplib itself never reads the unbind_resp: its
    # stop() writes the unbind and EOF, then drops its StreamWriter, whose __del__
    # (Python 3.11) closes the socket under the reader. So it is checked on the wire.
    (unbind,) = [m for m, _ in hook.outgoing if isinstance(m, aiosmpplib.Unbind)]
    c2s = split_stream(b"".join(d for direction, d in proxy.chunks if direction == "c2s"))
    s2c = split_stream(b"".join(d for direction, d in proxy.chunks if direction == "s2c"))
    assert c2s[-1][1:] == (CommandId.UNBIND, 0, unbind.sequence_num)
    assert s2c[-1] == (16, CommandId.UNBIND_RESP, 0, unbind.sequence_num)


# --- 3. node-smpp as the ESME -------------------------------------------------------


async def test_node_smpp_esme_against_our_server():
    require(node_available(), "node-smpp (node + tests/interop/node/node_modules)")
    # Once node-smpp has acknowledged the receipt, our side sends an enquire_link of
    # its own; esme.js waits for it (expect_enquire_link) before it unbinds.
    handler = RecordingSmsc(ping_after_receipt=True)
    server = await smppcore.serve(handler, HOST, 0)
    text = "héllo from node-smpp ✓"  # node-smpp encodes this as UCS-2
    opts = {
        "system_id": "nodeesme",
        "password": PASSWORD,
        "system_type": "node",
        "expect_enquire_link": True,
        "submit": {
            "source_addr_ton": 5,
            "source_addr": "NodeEsme",
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "destination_addr": "447700900125",
            "registered_delivery": 1,
            "short_message": text,
        },
    }
    try:
        async with NodeScript("esme.js", str(server.port), json.dumps(opts)) as node:
            assert await node.finished(20) == 0, (node.events, node.stderr)
        await eventually(lambda: handler.closed_conns, what="the server to see node-smpp go")
        await handler.settle()
    finally:
        await server.close(timeout=1)

    ev = {e["event"]: e for e in node.events}
    names = node.names()
    assert sorted(names) == sorted([
        "bind_transceiver_resp", "submit_sm_resp", "deliver_sm", "deliver_sm_resp_sent",
        "enquire_link", "enquire_link_resp", "unbind_resp", "closed",
    ]), node.events
    assert names[0] == "bind_transceiver_resp" and names[-2:] == ["unbind_resp", "closed"]
    assert names.index("submit_sm_resp") < names.index("deliver_sm") < names.index("enquire_link_resp")
    assert names.index("enquire_link") < names.index("enquire_link_resp")

    # Our side: the bind and the submit, decoded.
    (bind,) = handler.binds
    # node-smpp 0.5.1 binds with interface_version 0x50 (SMPP 5.0) unless told otherwise.
    assert (bind.command_id, bind.system_id, bind.password, bind.system_type, bind.interface_version) == (
        CommandId.BIND_TRANSCEIVER, "nodeesme", PASSWORD, "node", 0x50)
    (submit,) = handler.submits
    assert (submit.source_addr_ton, submit.source_addr_npi, submit.source_addr) == (5, 0, "NodeEsme")
    assert (submit.dest_addr_ton, submit.dest_addr_npi, submit.destination_addr) == (1, 1, "447700900125")
    assert submit.data_coding == 8 and decode_text(submit.short_message, 8) == text
    assert submit.short_message == text.encode("utf-16-be")
    assert submit.registered_delivery == 1 and submit.sequence_number == ev["submit_sm_resp"]["sequence_number"]

    # node-smpp's side: our responses and our receipt.
    assert ev["bind_transceiver_resp"]["command_status"] == 0
    assert ev["bind_transceiver_resp"]["system_id"] == "smpphub"
    assert ev["submit_sm_resp"]["command_status"] == 0 and ev["submit_sm_resp"]["message_id"] == "msg-0001"
    dlr = ev["deliver_sm"]
    assert dlr["sequence_number"] == handler.receipts_sent[0].sequence_number
    assert dlr["esm_class"] == 4 and dlr["data_coding"] == 0
    assert (dlr["source_addr"], dlr["source_addr_ton"], dlr["source_addr_npi"]) == ("447700900125", 1, 1)
    assert (dlr["destination_addr"], dlr["dest_addr_ton"]) == ("NodeEsme", 5)
    assert dlr["receipted_message_id"] == "msg-0001" and dlr["message_state"] == 2
    assert dlr["text"].startswith("id:msg-0001 sub:001 dlvrd:001 submit date:2611250800 done date:2611250801 stat:DELIVRD")
    assert [(r.command_status, r.sequence_number) for r in handler.receipt_resps] == [(0, dlr["sequence_number"])]
    assert not handler.failures

    # enquire_link both ways, then node-smpp's unbind.
    assert [p.command_status for p in handler.pings] == [0]
    assert ev["enquire_link"]["sequence_number"] == handler.pings[0].sequence_number
    assert ev["enquire_link_resp"]["command_status"] == 0
    assert ev["unbind_resp"]["command_status"] == 0


# --- 4. our client against node-smpp as the SMSC --------------------------------------


async def test_our_client_against_a_node_smpp_smsc():
    require(node_available(), "node-smpp (node + tests/interop/node/node_modules)")
    async with NodeScript("smsc.js") as node:
        port = (await node.event("listening"))["port"]
        async with smppcore.connect(
            HOST, port, system_id="smpphub", password=PASSWORD, system_type="interop",
            config=SessionConfig(enquire_link_interval=0),
        ) as client:
            assert client.session.state is State.BOUND_TRX
            assert client.session.system_id == "nodesmsc"
            resp = await client.submit_sm(
                source_addr_ton=5, source_addr="Smpphub", dest_addr_ton=1, dest_addr_npi=1,
                destination_addr="447700900126", short_message=encode_text("to node-smpp @ £5 ü", 0), registered_delivery=1,
            )
            assert resp.command_status == 0 and resp.message_id == "node-1"
            dlr = await client.next_message(timeout=10)
            ucs2 = await client.submit_text("447700900126", "Ελληνικά ✓", source_addr="Smpphub")
            pong = await client.enquire_link()
        assert client.closed.done() and client.session.state in (State.UNBOUND, State.CLOSED)
        await node.event("unbind")
        await node.event("session_closed")
        dlr_resp = await node.event("deliver_sm_resp")

    # The receipt node-smpp sent, as we decoded it.
    assert dlr.command_id == CommandId.DELIVER_SM and is_receipt(dlr)
    assert dlr.esm_class == 0x04 and dlr.data_coding == 0
    assert (dlr.source_addr, dlr.source_addr_ton, dlr.source_addr_npi) == ("447700900126", 1, 1)
    assert (dlr.destination_addr, dlr.dest_addr_ton, dlr.dest_addr_npi) == ("Smpphub", 5, 0)
    assert dlr.tlvs[Tag.RECEIPTED_MESSAGE_ID] == "node-1"
    assert dlr.tlvs[Tag.MESSAGE_STATE] == MessageState.DELIVERED
    info = receipt_info(dlr)
    assert info.message_id == resp.message_id and info.state is MessageState.DELIVERED and info.is_final
    assert info.receipt is not None and info.receipt.stat == "DELIVRD" and info.receipt.dlvrd == 1
    # ... and node-smpp got our deliver_sm_resp for it.
    assert dlr_resp["command_status"] == 0 and dlr_resp["sequence_number"] == dlr.sequence_number

    # What node-smpp decoded from our PDUs.
    bind = next(e for e in node.events if e["event"] == "bind")
    assert (bind["command"], bind["system_id"], bind["password"], bind["system_type"], bind["interface_version"]) == (
        "bind_transceiver", "smpphub", PASSWORD, "interop", 0x34)
    submits = [e for e in node.events if e["event"] == "submit_sm"]
    assert len(submits) == 2
    assert (submits[0]["source_addr_ton"], submits[0]["source_addr"]) == (5, "Smpphub")
    assert (submits[0]["dest_addr_ton"], submits[0]["dest_addr_npi"], submits[0]["destination_addr"]) == (
        1, 1, "447700900126")
    assert submits[0]["data_coding"] == 0 and submits[0]["registered_delivery"] == 1
    assert submits[0]["text"] == "to node-smpp @ £5 ü"  # GSM 03.38 both ways ('@' is 0x00)
    assert submits[1]["data_coding"] == 8 and submits[1]["text"] == "Ελληνικά ✓"
    assert submits[1]["registered_delivery"] == 0 and [r.message_id for r in ucs2] == ["node-2"]
    assert pong.command_status == 0
    assert [e["event"] for e in node.events if e["event"] in ("enquire_link", "unbind")] == ["enquire_link", "unbind"]
    assert not [e for e in node.events if e["event"] == "error"]


# --- 5. tshark over a capture of one of our sessions -----------------------------------


def split_stream(data: bytes) -> list[tuple[int, int, int, int]]:
    """(command_length, command_id, command_status, sequence_number) of each PDU in
    one direction's byte stream, read straight from the headers (no smppcore)."""
    out = []
    pos = 0
    while pos < len(data):
        length, cid, status, seq = struct.unpack_from("!IIII", data, pos)
        assert length >= 16 and pos + length <= len(data), f"bad PDU header at {pos}: {data[pos:pos + 16].hex()}"
        out.append((length, cid, status, seq))
        pos += length
    return out


async def test_a_whole_session_of_ours_dissects_cleanly_in_tshark(tmp_path):
    require(tshark_available(), "tshark")
    handler = RecordingSmsc(receipts=False)
    server = await smppcore.serve(handler, HOST, 0)
    proxy = RecordingProxy(server.port)
    proxy_port = await proxy.start()
    try:
        async with smppcore.connect(
            HOST, proxy_port, system_id="capture", password=PASSWORD, system_type="pcap",
            config=SessionConfig(enquire_link_interval=0),
        ) as client:
            (conn,) = await eventually(lambda: handler.bound_conns, what="the bind")
            plain = await client.submit_sm(
                source_addr_ton=5, source_addr="Capture", dest_addr_ton=1, dest_addr_npi=1,
                destination_addr="447700900001", short_message=b"plain text", registered_delivery=1,
            )
            with_tlvs = await client.submit_sm(
                source_addr="Capture", destination_addr="447700900002", short_message=b"with TLVs",
                tlvs={Tag.USER_MESSAGE_REFERENCE: 0x1234, Tag.SOURCE_PORT: 1000, Tag.DESTINATION_PORT: 2000,
                      Tag.PAYLOAD_TYPE: 0, Tag.LANGUAGE_INDICATOR: 1},
            )
            long_parts = await client.submit_text("447700900003", LONG_TEXT, method="udh", reference=0x42,
                                                  source_addr="Capture")
            receipt = build_receipt(
                message_id=plain.message_id, state=MessageState.DELIVERED, source_addr="Capture",
                destination_addr="447700900001", source_addr_ton=5, dest_addr_ton=1, dest_addr_npi=1,
                submit_date=SUBMIT_DATE, done_date=DONE_DATE, text=b"plain text", network_error=(3, 0),
            )
            receipt_resp = await conn.request(receipt)
            delivered = await client.next_message(timeout=5)
            client_ping = await client.enquire_link()
            server_ping = await conn.request(EnquireLink())
        await proxy.wait_closed()
        await eventually(lambda: handler.closed_conns, what="the server to see the client go")
    finally:
        await proxy.close()
        await server.close(timeout=1)

    assert delivered.tlvs[Tag.RECEIPTED_MESSAGE_ID] == plain.message_id
    assert receipt_resp.command_status == client_ping.command_status == server_ping.command_status == 0
    n = len(long_parts)
    assert n == 2 and with_tlvs.message_id == "msg-0002"

    # What each side wrote, PDU by PDU, read from the raw headers.
    c2s = split_stream(b"".join(d for direction, d in proxy.chunks if direction == "c2s"))
    s2c = split_stream(b"".join(d for direction, d in proxy.chunks if direction == "s2c"))
    C = CommandId
    assert [(cid, seq) for _, cid, _, seq in c2s] == [
        (C.BIND_TRANSCEIVER, 1), (C.SUBMIT_SM, 2), (C.SUBMIT_SM, 3),
        *[(C.SUBMIT_SM, 4 + i) for i in range(n)],
        (C.DELIVER_SM_RESP, 1), (C.ENQUIRE_LINK, 4 + n), (C.ENQUIRE_LINK_RESP, 2), (C.UNBIND, 5 + n),
    ]
    assert [(cid, seq) for _, cid, _, seq in s2c] == [
        (C.BIND_TRANSCEIVER_RESP, 1), (C.SUBMIT_SM_RESP, 2), (C.SUBMIT_SM_RESP, 3),
        *[(C.SUBMIT_SM_RESP, 4 + i) for i in range(n)],
        (C.DELIVER_SM, 1), (C.ENQUIRE_LINK_RESP, 4 + n), (C.ENQUIRE_LINK, 2), (C.UNBIND_RESP, 5 + n),
    ]
    assert all(status == 0 for _, _, status, _ in c2s + s2c)

    # The order in which both directions' PDUs complete, chunk by chunk: what tshark must report.
    expected = []
    buffers = {"c2s": b"", "s2c": b""}
    for direction, data in proxy.chunks:
        buf = buffers[direction] + data
        while len(buf) >= 16 and len(buf) >= struct.unpack_from("!I", buf)[0]:
            length, cid, status, seq = struct.unpack_from("!IIII", buf)
            expected.append((direction, length, cid, seq))
            buf = buf[length:]
        buffers[direction] = buf
    assert buffers == {"c2s": b"", "s2c": b""}

    pcap = tmp_path / "session.pcap"
    write_tcp_pcap(pcap, proxy.chunks, client=(HOST, proxy.client_port), server=(HOST, proxy_port))
    seen = await asyncio.to_thread(tshark_smpp, pcap, proxy_port)
    assert not seen.problems(), seen.problems()
    assert [(int(p["smpp.command_id"], 16), int(p["smpp.sequence_number"])) for p in seen.pdus] == [
        (cid, seq) for _, _, cid, seq in expected
    ]
    assert [int(p["smpp.command_length"]) for p in seen.pdus] == [length for _, length, _, _ in expected]
    # (Wireshark shows command_status on responses only.)
    assert all(int(p["smpp.command_status"], 16) == 0 for p in seen.pdus if int(p["smpp.command_id"], 16) & 0x80000000)

    # A few fields as Wireshark read them.
    def only(cid: int, seq: int) -> dict:
        (pdu,) = [p for p in seen.pdus if int(p["smpp.command_id"], 16) == cid and int(p["smpp.sequence_number"]) == seq]
        return pdu

    bind = only(C.BIND_TRANSCEIVER, 1)
    assert (bind["smpp.system_id"], bind["smpp.password"], bind["smpp.system_type"]) == ("capture", PASSWORD, "pcap")
    assert only(C.BIND_TRANSCEIVER_RESP, 1)["smpp.system_id"] == "smpphub"
    first = only(C.SUBMIT_SM, 2)
    assert (first["smpp.source_addr"], first["smpp.destination_addr"], first["smpp.sm_length"]) == (
        "Capture", "447700900001", "10")
    assert only(C.SUBMIT_SM_RESP, 2)["smpp.message_id"] == plain.message_id
    tlv = only(C.SUBMIT_SM, 3)
    assert int(tlv["smpp.user_message_reference"], 0) == 0x1234
    assert int(tlv["smpp.source_port"], 0) == 1000 and int(tlv["smpp.destination_port"], 0) == 2000
    assert int(tlv["smpp.language_indicator"], 0) == 1
    for i in range(n):
        part = only(C.SUBMIT_SM, 4 + i)
        assert int(part["smpp.esm.submit.features"], 0) & 0x1  # UDHI, as Wireshark names it
        assert part["smpp.message"].startswith(f"05:00:03:42:{n:02x}:{i + 1:02x}:")
        assert int(part["smpp.sm_length"]) == len(bytes.fromhex(part["smpp.message"].replace(":", "")))
    dlr = only(C.DELIVER_SM, 1)
    assert dlr["smpp.receipted_message_id"] == plain.message_id
    assert int(dlr["smpp.message_state"], 0) == MessageState.DELIVERED
    assert dlr["smpp.source_addr"] == "447700900001" and dlr["smpp.destination_addr"] == "Capture"
    assert int(dlr["smpp.esm.submit.msg_type"], 0) == 1  # esm_class bits 2-5: delivery receipt
    assert (dlr["smpp.network_error.type"], int(dlr["smpp.network_error.code"], 0)) == ("3", 0)
    text = bytes.fromhex(dlr["smpp.message"].replace(":", "")).decode("ascii")
    assert text == (f"id:{plain.message_id} sub:001 dlvrd:001 submit date:2611250800 "
                    "done date:2611250801 stat:DELIVRD err:000 text:plain text")
