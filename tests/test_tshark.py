"""Wireshark's SMPP dissector reads our bytes: no malformed PDU, the same field values.

A capture of one of every SMPP 3.4 PDU type (with TLVs) as ``smppcore.encode``
writes them goes through ``tshark -d tcp.port==2775,smpp``; each PDU tshark finds
must carry the command_id, sequence_number, lengths, addresses, ids and TLV values
we put in. Skipped when tshark is missing locally, fails in CI (see oracles.require).

Note: with source_port/destination_port set to WAP ports (2948, 9200) Wireshark
hands the message to its WSP dissector and flags a non-WSP payload as malformed;
that is the payload's business, not SMPP's, so the ports below are not WAP ports.
"""

from __future__ import annotations

import struct

import pytest

import oracles
import smppcore
from smppcore import (
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    DestAddress,
    DistributionList,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    ReplaceSmResp,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Tag,
    Unbind,
    UnbindResp,
    UnsuccessSme,
)

T = Tag
RECEIPT = b"id:abc123 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:000 text:Hi"

PDUS: list[Pdu] = [
    BindTransmitter(sequence_number=1, system_id="esme01", password="s3cret", system_type="VMA", addr_ton=1,
                    addr_npi=1, address_range="^44"),
    BindTransmitterResp(sequence_number=1, system_id="SMSC", tlvs={T.SC_INTERFACE_VERSION: 0x34}),
    BindReceiver(sequence_number=2, system_id="esme02", password="pw"),
    BindReceiverResp(sequence_number=2, system_id="SMSC"),
    BindTransceiver(sequence_number=3, system_id="esme03", password="pw3", system_type="SMPP"),
    BindTransceiverResp(sequence_number=3, system_id="smpphub", tlvs={T.SC_INTERFACE_VERSION: 0x34}),
    Outbind(sequence_number=4, system_id="SMSC", password="letmein"),
    EnquireLink(sequence_number=5),
    EnquireLinkResp(sequence_number=5),
    SubmitSm(sequence_number=6, service_type="CMT", source_addr_ton=5, source_addr="SmppHub", dest_addr_ton=1,
             dest_addr_npi=1, destination_addr="447700900123", registered_delivery=1, short_message=b"Hello there",
             tlvs={T.USER_MESSAGE_REFERENCE: 0x1234, T.SOURCE_PORT: 1000, T.DESTINATION_PORT: 2000,
                   T.SAR_MSG_REF_NUM: 0xBEEF, T.SAR_TOTAL_SEGMENTS: 3, T.SAR_SEGMENT_SEQNUM: 2}),
    SubmitSmResp(sequence_number=6, message_id="7f3a9c21-0001"),
    SubmitSm(sequence_number=7, source_addr="Hub", destination_addr="447700900124", data_coding=8,
             tlvs={T.MESSAGE_PAYLOAD: "Длинное сообщение ".encode("utf-16-be") * 20, T.QOS_TIME_TO_LIVE: 3600}),
    SubmitSmResp(sequence_number=7, command_status=0x58),
    DeliverSm(sequence_number=8, source_addr_ton=1, source_addr_npi=1, source_addr="447700900123",
              destination_addr="SmppHub", esm_class=0x04, short_message=RECEIPT,
              tlvs={T.RECEIPTED_MESSAGE_ID: "abc123", T.MESSAGE_STATE: 2, T.NETWORK_ERROR_CODE: b"\x03\x00\x22"}),
    DeliverSmResp(sequence_number=8),
    DataSm(sequence_number=9, service_type="WAP", source_addr="447700900123", destination_addr="447700900456",
           registered_delivery=1, data_coding=4,
           tlvs={T.SOURCE_NETWORK_TYPE: 1, T.DEST_BEARER_TYPE: 4, T.MESSAGE_PAYLOAD: bytes(range(200))}),
    DataSmResp(sequence_number=9, message_id="m-9",
               tlvs={T.ADDITIONAL_STATUS_INFO_TEXT: "queued", T.DELIVERY_FAILURE_REASON: 2, T.DPF_RESULT: 1}),
    QuerySm(sequence_number=10, message_id="7f3a9c21", source_addr_ton=1, source_addr_npi=1,
            source_addr="447700900123"),
    QuerySmResp(sequence_number=10, message_id="7f3a9c21", final_date="240315143100000+", message_state=2,
                error_code=0),
    CancelSm(sequence_number=11, message_id="7f3a9c21", source_addr="447700900123",
             destination_addr="447700900456"),
    CancelSmResp(sequence_number=11),
    ReplaceSm(sequence_number=12, message_id="7f3a9c21", source_addr="447700900123",
              validity_period="000001000000000R", short_message=b"replacement"),
    ReplaceSmResp(sequence_number=12),
    SubmitMulti(sequence_number=13, source_addr="SmppHub",
                dest_address=[DestAddress("447700900001", 1, 1), DistributionList("friends"),
                              DestAddress("5551234", 2, 8)],
                short_message=b"to many", tlvs={T.USER_MESSAGE_REFERENCE: 42}),
    SubmitMultiResp(sequence_number=13, message_id="multi-1",
                    unsuccess_sme=[UnsuccessSme("5551234", 2, 8, 0x0B)]),
    AlertNotification(sequence_number=14, source_addr_ton=1, source_addr_npi=1, source_addr="447700900123",
                      esme_addr_ton=1, esme_addr_npi=1, esme_addr="447700900456",
                      tlvs={T.MS_AVAILABILITY_STATUS: 1}),
    GenericNack(sequence_number=15, command_status=0x03),
    Unbind(sequence_number=16),
    UnbindResp(sequence_number=16),
]

# mandatory text fields: tshark shows them under the spec's name, as text
_TEXT_FIELDS = ("system_id", "password", "system_type", "address_range", "service_type", "source_addr",
                "destination_addr", "message_id", "esme_addr")
# TLVs tshark shows as decimal / 0x%04x / text, under these names
_TLV_DECIMAL = {T.SC_INTERFACE_VERSION: "smpp.SC_interface_version", T.SAR_MSG_REF_NUM: "smpp.sar_msg_ref_num",
                T.SAR_TOTAL_SEGMENTS: "smpp.sar_total_segments", T.SAR_SEGMENT_SEQNUM: "smpp.sar_segment_seqnum",
                T.MESSAGE_STATE: "smpp.message_state", T.QOS_TIME_TO_LIVE: "smpp.qos_time_to_live",
                T.MS_AVAILABILITY_STATUS: "smpp.ms_availability_status", T.DPF_RESULT: "smpp.dpf_result",
                T.DELIVERY_FAILURE_REASON: "smpp.delivery_failure_reason"}
_TLV_HEX16 = {T.USER_MESSAGE_REFERENCE: "smpp.user_message_reference", T.SOURCE_PORT: "smpp.source_port",
              T.DESTINATION_PORT: "smpp.destination_port"}
_TLV_HEX8 = {T.SOURCE_NETWORK_TYPE: "smpp.source_network_type", T.DEST_BEARER_TYPE: "smpp.dest_bearer_type"}
_TLV_TEXT = {T.RECEIPTED_MESSAGE_ID: "smpp.receipted_message_id",
             T.ADDITIONAL_STATUS_INFO_TEXT: "smpp.additional_status_info_text"}


def expected_fields(pdu: Pdu, data: bytes) -> dict[str, object]:
    """What tshark should show for ``pdu``, derived from the PDU's values (not our bytes)."""
    exp: dict[str, object] = {
        "smpp.command_length": str(len(data)),
        "smpp.command_id": f"0x{pdu.command_id:08x}",
        "smpp.sequence_number": str(pdu.sequence_number),
    }
    if pdu.is_response:
        exp["smpp.command_status"] = f"0x{pdu.command_status:08x}"
    for name in _TEXT_FIELDS:
        value = getattr(pdu, name, "")
        if value:  # tshark renders empty ones variously ("(Default)", nothing)
            exp[f"smpp.{name}"] = value
    if hasattr(pdu, "short_message"):
        exp["smpp.sm_length"] = str(len(pdu.short_message))
    if hasattr(pdu, "interface_version"):
        exp["smpp.interface_version"] = str(pdu.interface_version)
    if isinstance(pdu, QuerySmResp):
        exp["smpp.message_state"] = str(pdu.message_state)
        exp["smpp.error_code"] = str(pdu.error_code)
    if isinstance(pdu, AlertNotification):
        exp["smpp.esme_addr_ton"] = f"0x{pdu.esme_addr_ton:02x}"
        exp["smpp.esme_addr_npi"] = f"0x{pdu.esme_addr_npi:02x}"
    if isinstance(pdu, SubmitMulti):
        exp["smpp.destination_addr"] = [d.destination_addr for d in pdu.dest_address if isinstance(d, DestAddress)]
        exp["smpp.dl_name"] = [d.dl_name for d in pdu.dest_address if isinstance(d, DistributionList)][0]
    if isinstance(pdu, SubmitMultiResp):
        exp["smpp.destination_addr"] = [u.destination_addr for u in pdu.unsuccess_sme][0]
        exp["smpp.error_status_code"] = [f"0x{u.error_status_code:08x}" for u in pdu.unsuccess_sme][0]
    tags = []
    for tag, value in pdu.tlvs.items():
        tags.append(f"0x{tag:04x}")
        if tag in _TLV_DECIMAL:
            exp[_TLV_DECIMAL[tag]] = str(value)
        elif tag in _TLV_HEX16:
            exp[_TLV_HEX16[tag]] = f"0x{value:04x}"
        elif tag in _TLV_HEX8:
            exp[_TLV_HEX8[tag]] = f"0x{value:02x}"
        elif tag in _TLV_TEXT:
            exp[_TLV_TEXT[tag]] = value
        elif tag == T.MESSAGE_PAYLOAD:
            exp["smpp.message_payload"] = value.hex(":")
        elif tag == T.NETWORK_ERROR_CODE:
            exp["smpp.network_error.type"] = str(value[0])
            exp["smpp.network_error.code"] = f"0x{int.from_bytes(value[1:], 'big'):04x}"
    if tags:
        exp["smpp.opt_param_tag"] = tags if len(tags) > 1 else tags[0]
    return exp


@pytest.fixture(scope="module")
def encoded() -> list[bytes]:
    return [smppcore.encode(p) for p in PDUS]


def test_every_pdu_type_covered():
    assert {type(p) for p in PDUS} == set(smppcore.PDU_TYPES.values())


@pytest.fixture(scope="module")
def dissected(encoded) -> oracles.TsharkResult:
    return oracles.tshark_decode(encoded)


def test_no_malformed(dissected, encoded):
    assert not dissected.malformed, dissected.problems
    assert len(dissected) == len(encoded)


@pytest.mark.parametrize("index", range(len(PDUS)), ids=[f"{i}-{type(p).__name__}" for i, p in enumerate(PDUS)])
def test_fields(index, dissected, encoded):
    pdu = PDUS[index]
    got = dissected[index]
    want = expected_fields(pdu, encoded[index])
    assert {k: got.get(k) for k in want} == want


def test_many_pdus_in_one_segment(encoded):
    """All PDUs back to back in one TCP segment: tshark finds each one, in order."""
    res = oracles.tshark_decode(encoded, one_segment=True)
    assert not res.malformed, res.problems
    assert [(r["smpp.command_id"], r["smpp.sequence_number"]) for r in res] == [
        (f"0x{p.command_id:08x}", str(p.sequence_number)) for p in PDUS
    ]


def test_oracle_flags_a_malformed_pdu():
    """The check has teeth: a submit_sm whose sm_length runs past the PDU is flagged.

    Hand-built, not from our encoder: header + 17 one-octet/empty fields + sm_length
    0x40 followed by only 3 octets.
    """
    body = b"\0" + b"\0" * 3 + b"\0" * 3 + b"\0" * 9 + b"\x40" + b"abc"
    data = struct.pack(">IIII", 16 + len(body), 0x00000004, 0, 1) + body
    res = oracles.tshark_decode([data])
    assert res.malformed, res
