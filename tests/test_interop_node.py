"""Whole SMPP sessions with node-smpp (npm ``smpp``), which we did not write.

3. node-smpp as an ESME (tests/interop/node/esme.js) against our server.
4. Our client against node-smpp as an SMSC (tests/interop/node/smsc.js).

Every test runs over 127.0.0.1 on OS-chosen ports, waits on events (or polls with a
bound), and stops whatever it started.
"""

from __future__ import annotations

import json

import smppcore
from interop_util import NodeScript
from interopkit import HOST, PASSWORD, RecordingSmsc, eventually
from oracles import node_available, require
from smppcore import CommandId, MessageState, SessionConfig, State, Tag
from smppcore.receipt import is_receipt, receipt_info
from smppcore.text import decode_text, encode_text


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
