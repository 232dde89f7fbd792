"""A session of ours (client and server) recorded byte for byte by a relay, written to
a pcap and dissected by Wireshark's SMPP dissector (tshark), which we did not write.
"""

from __future__ import annotations

import asyncio
import struct

import smppcore
from interop_util import RecordingProxy, tshark_available, tshark_smpp, write_tcp_pcap
from interopkit import DONE_DATE, HOST, LONG_TEXT, PASSWORD, SUBMIT_DATE, RecordingSmsc, eventually, split_stream
from oracles import require
from smppcore import CommandId, EnquireLink, MessageState, SessionConfig, Tag
from smppcore.receipt import build_receipt


# --- 5. tshark over a capture of one of our sessions -----------------------------------


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
