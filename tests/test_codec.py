"""Codec properties: round trips for every PDU type, framing, and errors with the right status."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import pdus

import smppcore
from smppcore import (
    PDU_TYPES,
    CommandId,
    CommandStatus,
    DeliverSm,
    EncodeError,
    Framer,
    FramingError,
    PduError,
    SubmitSm,
    SubmitSmResp,
    Tag,
    decode,
    encode,
)
from smppcore.codec import _checked_decode

HDR = struct.Struct(">IIII")


def pdu_bytes(command_id: int, body: bytes, seq: int = 1, status: int = 0) -> bytes:
    return HDR.pack(16 + len(body), command_id, status, seq) + body


# --- round trips ---------------------------------------------------------------


@pytest.mark.parametrize("cls", list(PDU_TYPES.values()), ids=lambda c: c.__name__)
def test_every_type_round_trips(cls):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(pdus(cls))
    def check(pdu):
        data = encode(pdu)
        assert HDR.unpack_from(data)[0] == len(data)
        again = decode(data)
        assert again == pdu
        assert encode(again) == data
        # the checked interpreter and the generated fast decoder agree
        assert _checked_decode(cls, data, 16, len(data), pdu.sequence_number, pdu.command_status) == pdu

    check()


def test_defaults_make_a_valid_pdu():
    pdu = SubmitSm(destination_addr="447700900123", short_message=b"hi")
    assert decode(encode(pdu)) == pdu


def test_spec_layout_of_enquire_link():
    # 4.11.1: header only, command_id 0x00000015
    assert encode(smppcore.EnquireLink(sequence_number=1)) == bytes.fromhex("00000010000000150000000000000001")
    assert decode(bytes.fromhex("00000010800000150000000000000001")) == smppcore.EnquireLinkResp(sequence_number=1)


def test_error_response_with_empty_body_decodes():
    # 3.4 does not return the body of a failed bind or submit
    for cid in (0x80000004, 0x80000009, 0x80000103, 0x80000021, 0x80000003):
        pdu = decode(pdu_bytes(cid, b"", seq=9, status=CommandStatus.ESME_RTHROTTLED))
        assert pdu.command_status == CommandStatus.ESME_RTHROTTLED
        assert pdu.sequence_number == 9
    assert encode(SubmitSmResp(sequence_number=9, command_status=0x58)) == pdu_bytes(0x80000004, b"", 9, 0x58)


def test_unknown_tlv_survives_byte_for_byte():
    body = bytes.fromhex("00") + b"\x00\x00" + b"1\x00" + b"\x00\x00" + b"2\x00" + bytes(3) + b"\x00\x00" + bytes(4) + b"\x00"
    vendor = bytes.fromhex("1401 0005 6162636465") + bytes.fromhex("FFFE 0000")
    data = pdu_bytes(4, body + vendor)
    pdu = decode(data)
    assert pdu.tlvs == {0x1401: b"abcde", 0xFFFE: b""}
    assert encode(pdu) == data


def test_repeated_tlvs_keep_every_value():
    # callback_num may appear several times (5.3.2.36); a repeated tag becomes a list
    body = _submit_body() + bytes.fromhex("0381 0002 aaaa 0381 0002 bbbb 0302 0001 01")
    data = pdu_bytes(4, body)
    pdu = decode(data)
    assert pdu.tlvs[Tag.CALLBACK_NUM] == [b"\xaa\xaa", b"\xbb\xbb"]
    assert pdu.tlvs[Tag.CALLBACK_NUM_PRES_IND] == 1
    assert encode(pdu) == data


def test_typed_tlvs():
    pdu = DeliverSm(
        esm_class=4,
        tlvs={Tag.RECEIPTED_MESSAGE_ID: "abc123", Tag.MESSAGE_STATE: 2, Tag.NETWORK_ERROR_CODE: b"\x03\x00\x01", Tag.SAR_MSG_REF_NUM: 0x1234},
    )
    data = encode(pdu)
    assert b"\x00\x1e\x00\x07abc123\x00" in data
    assert b"\x04\x27\x00\x01\x02" in data
    assert b"\x02\x0c\x00\x02\x12\x34" in data
    assert decode(data).tlvs == pdu.tlvs


# --- the framer ---------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.lists(pdus(), min_size=1, max_size=8), st.data())
def test_framer_reassembles_any_chunking(items, data):
    stream = b"".join(encode(p) for p in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = Framer()
    out = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        out += framer.feed(stream[prev:cut])
        prev = cut
    assert out == items
    assert framer.buffered == 0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.integers(16, 300))
def test_framer_on_garbage_yields_pdus_or_protocol_errors(garbage, max_size):
    framer = Framer(max_pdu_size=max_size)
    try:
        items = framer.feed(garbage)
    except PduError:
        return
    for item in items:
        assert isinstance(item, (smppcore.pdus.Pdu, PduError))
    assert framer.buffered <= max_size


@st.composite
def plausible_pdus(draw):
    """A header with a real command id and a random body: reaches every body decoder."""
    cid = draw(st.sampled_from(list(PDU_TYPES)))
    body = draw(st.binary(max_size=120))
    if draw(st.booleans()):
        # start from a valid PDU and corrupt or cut it
        body = encode(draw(pdus(PDU_TYPES[cid])))[16:]
        if body:
            i = draw(st.integers(0, len(body) - 1))
            body = draw(st.sampled_from([body[:i], body[:i] + bytes([draw(st.integers(0, 255))]) + body[i + 1 :]]))
    return pdu_bytes(cid, body, draw(st.integers(0, 0xFFFFFFFF)), 0)


@settings(max_examples=1500, deadline=None)
@given(plausible_pdus())
def test_body_decoders_never_raise_anything_else(data):
    try:
        pdu = decode(data)
    except PduError as exc:
        assert exc.command_status != 0
        assert exc.sequence_number == HDR.unpack_from(data)[3]
        return
    # whatever decodes must encode again
    encode(pdu)


def test_framer_memory_is_bounded_by_max_pdu_size():
    framer = Framer(max_pdu_size=4096)
    header = HDR.pack(4000, 4, 0, 1)
    framer.feed(header)
    for _ in range(3984 // 16):
        framer.feed(b"\x01" * 16)
        assert framer.buffered <= 4096
    # a declared length over the maximum is refused at once, without buffering the body
    framer = Framer(max_pdu_size=4096)
    items = framer.feed(HDR.pack(0x7FFFFFFF, 4, 0, 5))
    assert isinstance(items[-1], FramingError)
    assert items[-1].command_status == CommandStatus.ESME_RINVCMDLEN
    assert items[-1].fatal
    assert framer.buffered == 0
    with pytest.raises(FramingError):
        framer.feed(b"more")


def test_framer_keeps_good_pdus_around_a_bad_one():
    good = encode(SubmitSm(sequence_number=1, destination_addr="1"))
    unknown = pdu_bytes(0x00000099, b"", seq=2)
    items = Framer().feed(good + unknown + good)
    assert items[0] == items[2] == decode(good)
    assert isinstance(items[1], PduError)
    assert items[1].command_status == CommandStatus.ESME_RINVCMDID
    assert items[1].sequence_number == 2 and not items[1].fatal


# --- errors with the right status ------------------------------------------------------


def _submit_body(service_type=b"", src=b"1", dst=b"2", sm=b"hi", sm_len=None, tail=b""):
    n = len(sm) if sm_len is None else sm_len
    return (
        service_type + b"\0" + b"\x01\x01" + src + b"\0" + b"\x01\x01" + dst + b"\0"
        + b"\x00\x00\x00" + b"\0" + b"\0" + b"\x01\x00\x00\x00" + bytes([n]) + sm + tail
    )


ERROR_TABLE = [
    ("command_length below 16", HDR.pack(12, 4, 0, 1), CommandStatus.ESME_RINVCMDLEN),
    ("unknown command id", pdu_bytes(0x1234, b""), CommandStatus.ESME_RINVCMDID),
    ("service_type too long", pdu_bytes(4, _submit_body(service_type=b"ABCDEFG")), CommandStatus.ESME_RINVSERTYP),
    ("source_addr too long", pdu_bytes(4, _submit_body(src=b"1" * 21)), CommandStatus.ESME_RINVSRCADR),
    ("destination_addr too long", pdu_bytes(4, _submit_body(dst=b"9" * 21)), CommandStatus.ESME_RINVDSTADR),
    ("destination_addr not terminated", pdu_bytes(4, b"\0\x01\x01" + b"1\0" + b"\x01\x01" + b"123"), CommandStatus.ESME_RINVDSTADR),
    ("sm_length beyond the body", pdu_bytes(4, _submit_body(sm=b"hi", sm_len=50)), CommandStatus.ESME_RINVMSGLEN),
    ("sm_length 255", pdu_bytes(4, _submit_body(sm=b"x" * 255)), CommandStatus.ESME_RINVMSGLEN),
    ("body ends before the fields", pdu_bytes(4, b"\0\x01"), CommandStatus.ESME_RINVCMDLEN),
    ("empty submit_sm", pdu_bytes(4, b""), CommandStatus.ESME_RINVCMDLEN),
    ("tlv length past the pdu", pdu_bytes(4, _submit_body(tail=bytes.fromhex("0424 00ff 41"))), CommandStatus.ESME_RINVPARLEN),
    ("tlv header cut", pdu_bytes(4, _submit_body(tail=bytes.fromhex("0424 00"))), CommandStatus.ESME_RINVOPTPARSTREAM),
    ("int tlv of wrong length", pdu_bytes(4, _submit_body(tail=bytes.fromhex("0427 0002 0001"))), CommandStatus.ESME_RINVPARLEN),
    (
        "short_message and message_payload",
        pdu_bytes(4, _submit_body(tail=bytes.fromhex("0424 0002 4142"))),
        CommandStatus.ESME_ROPTPARNOTALLWD,
    ),
    ("system_id too long", pdu_bytes(9, b"A" * 16 + b"\0" + b"pw\0\0\x34\x00\x00\0"), CommandStatus.ESME_RINVSYSID),
    ("password too long", pdu_bytes(9, b"sys\0" + b"p" * 9 + b"\0" + b"\0\x34\x00\x00\0"), CommandStatus.ESME_RINVPASWD),
    ("message_id too long", pdu_bytes(0x80000004, b"7" * 65 + b"\0"), CommandStatus.ESME_RINVMSGID),
    ("bad dest_flag", pdu_bytes(0x21, b"\0\x01\x01" + b"1\0" + b"\x01\x03"), CommandStatus.ESME_RINVDESTFLAG),
    ("schedule time too long", pdu_bytes(4, b"\0\x01\x011\0\x01\x012\0\x00\x00\x00" + b"1" * 17 + b"\0"), CommandStatus.ESME_RINVSCHED),
]


@pytest.mark.parametrize("data,status", [(d, s) for _, d, s in ERROR_TABLE], ids=[n for n, _, _ in ERROR_TABLE])
def test_malformed_pdus_get_the_right_status(data, status):
    with pytest.raises(PduError) as info:
        decode(data)
    assert info.value.command_status == status
    assert info.value.sequence_number == HDR.unpack_from(data)[3] or status == CommandStatus.ESME_RINVCMDLEN
    # the framer reports the same error without raising it (unless the stream is lost)
    items = Framer().feed(data)
    assert isinstance(items[-1], PduError)
    assert items[-1].command_status == status


def test_message_payload_alone_is_fine():
    data = pdu_bytes(4, _submit_body(sm=b"", tail=bytes.fromhex("0424 0003 414243")))
    assert decode(data).tlvs[Tag.MESSAGE_PAYLOAD] == b"ABC"


@pytest.mark.parametrize(
    "pdu",
    [
        SubmitSm(source_addr="1" * 21),
        SubmitSm(destination_addr="a\0b"),
        SubmitSm(short_message=b"x" * 255),
        SubmitSm(esm_class=256),
        SubmitSm(data_coding=-1),
        SubmitSm(source_addr="\u20ac"),
        SubmitSm(sequence_number=2**32),
        SubmitSm(tlvs={Tag.MESSAGE_STATE: 300}),
        SubmitSm(tlvs={0x1400: b"x" * 70000}),
    ],
)
def test_encode_refuses_what_does_not_fit(pdu):
    with pytest.raises(EncodeError):
        encode(pdu)


def test_command_ids_cover_the_spec():
    assert set(PDU_TYPES) == {int(c) for c in CommandId}
    for cid, cls in PDU_TYPES.items():
        assert cls.command_id == cid
        assert cls.is_response == bool(cid & 0x80000000)
        if cls.response_type is not None:
            assert cls.response_type.command_id == cid | 0x80000000


def test_make_response_keeps_the_sequence_number():
    resp = SubmitSm(sequence_number=42).make_response(message_id="m1")
    assert resp == SubmitSmResp(sequence_number=42, message_id="m1")
