"""Whole SMPP sessions against Python implementations we did not write.

1. smpplib (PyPI, synchronous, run in a thread) binds to our server: submit_sm,
   a delivery receipt back, enquire_link, a long message split by smpplib, unbind.
2. aiosmpplib (PyPI, asyncio) binds to our server: submit_sm, receipt correlated
   by aiosmpplib to its own submit, enquire_link from its keep-alive, unbind.

node-smpp's sessions are in test_interop_node.py, Wireshark's reading of ours in
test_interop_tshark.py. Every test runs over 127.0.0.1 on OS-chosen ports, waits on
events (or polls with a bound), and stops whatever it started.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import smppcore
from interop_util import RecordingProxy
from interopkit import HOST, LONG_TEXT, PASSWORD, RecordingSmsc, eventually, s, split_stream
from oracles import require, smpplib_available
from smppcore import CommandId, MessageState
from smppcore.receipt import is_receipt, parse_receipt
from smppcore.text import concat_info, decode_text


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
