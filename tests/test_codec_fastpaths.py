"""The codec's shortcuts give exactly what the general path gives.

A hub answers every receipt with a deliver_sm_resp whose body is one NUL, and writes
every receipt it passes on with two TLVs; those take shortcuts (a response's default
body written and recognised whole, the common TLV kinds written without a call each,
empty C-strings without an encode call, C-strings matched by possessive repeats). Each is
checked here against the path it shortcuts, over generated PDUs and TLVs, errors included.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smppcore import DeliverSmResp, encode
from smppcore.codec import _DECODERS, _DEFAULT_BODIES, LAYOUTS, _checked_decode, _gen_encoder
from smppcore.errors import PduError
from smppcore.fields import CStr, DestList, Int, ShortMessage, UnsuccessList
from smppcore.pdus import PDU_TYPES, Pdu
from smppcore.tlv import _CSTR_TAGS, _INT_TAGS, TLV_KINDS, _encode_one, encode_tlvs
from tests.strategies import pdus

RESPONSES = [cls for cls in PDU_TYPES.values() if cls.is_response and LAYOUTS[cls]]
HEADER = struct.Struct(">IIII")


def _plain_encoder(cls: type[Pdu]) -> Any:
    """The generated encoder without a default body: what every response went through before."""
    return _gen_encoder(cls, LAYOUTS[cls])


def _interpreted_body(pdu: Pdu) -> bytes:
    """The mandatory fields as SMPP 3.4 lays them out, one by one (no generated code)."""
    out = b""
    for name, kind, _ in LAYOUTS[type(pdu)]:
        value = getattr(pdu, name)
        if type(kind) is Int:
            out += value.to_bytes(kind.size, "big")
        elif type(kind) is CStr:
            out += value.encode("latin-1") + b"\0"
        elif type(kind) is ShortMessage:
            out += bytes((len(value),)) + value
        elif type(kind) in (DestList, UnsuccessList):
            return b""  # not what this file is about: the generated list encoders are unchanged
    return out


@pytest.mark.parametrize("cls", RESPONSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("status", [0, 1, 0x45, 0xFFFFFFFF])
@pytest.mark.parametrize("seq", [0, 1, 0x7FFFFFFF])
def test_a_default_response_is_written_as_the_plain_encoder_writes_it(cls: type[Pdu], status: int, seq: int) -> None:
    pdu = cls(seq, status)
    assert encode(pdu) == _plain_encoder(cls)(pdu)


@pytest.mark.parametrize("cls", RESPONSES, ids=lambda c: c.__name__)
def test_a_default_body_decodes_as_the_checked_decoder_reads_it(cls: type[Pdu]) -> None:
    body = _DEFAULT_BODIES[cls]
    for tail in (b"", b"\x00\x1e\x00\x02x\x00"):  # alone, and followed by a TLV (not the shortcut)
        data = HEADER.pack(16 + len(body) + len(tail), cls.command_id, 0, 9) + body + tail
        fast = _DECODERS[cls.command_id](data, 16, len(data), 9, 0)
        assert fast == _checked_decode(cls, data, 16, len(data), 9, 0)
    assert fast.tlvs == {0x001E: "x"}


def test_deliver_sm_resp_default_body_is_one_nul() -> None:
    """SMPP 3.4 section 4.6.2: message_id is unused in deliver_sm_resp and set to NULL."""
    assert encode(DeliverSmResp(sequence_number=7)) == bytes.fromhex("00000011 80000005 00000000 00000007 00")
    # an error status with nothing else: the body left out, as it was
    assert encode(DeliverSmResp(sequence_number=7, command_status=8)) == bytes.fromhex(
        "00000010 80000005 00000008 00000007")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pdus())
def test_generated_encoders_match_an_interpreter_of_the_layout(pdu: Pdu) -> None:
    body = _interpreted_body(pdu)
    if not body and LAYOUTS[type(pdu)]:
        return
    data = encode(pdu)
    start = 16
    if type(pdu).is_response and pdu.command_status and len(data) == 16:
        return  # an error response without a body: the rule above
    assert data[start:start + len(body)] == body
    assert data == _plain_encoder(type(pdu))(pdu)


# --- TLVs ------------------------------------------------------------------------------------


def _tlvs_one_by_one(tlvs: dict[int, Any]) -> bytes:
    """encode_tlvs as it was: every parameter through _encode_one."""
    parts: list[bytes] = []
    for tag, value in tlvs.items():
        for item in value if type(value) is list else [value]:
            _encode_one(tag, item, parts)
    return b"".join(parts)


_TAGS = st.sampled_from(sorted(TLV_KINDS) + [0x1400, 0x3FFF, 0])
_VALUES = st.one_of(
    st.integers(-1, 2**33), st.text(max_size=8), st.sampled_from(["x" * 0xFFFE, "y" * 0xFFFF]),
    st.binary(max_size=8), st.booleans(), st.none(), st.lists(st.one_of(st.integers(0, 9), st.text(max_size=3)),
                                                               max_size=3))


def _outcome(fn: Any, tlvs: dict[int, Any]) -> object:
    try:
        return fn(tlvs)
    except Exception as exc:  # noqa: BLE001 - the kind of failure is what is compared
        return type(exc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_TAGS, _VALUES, max_size=4))
def test_encode_tlvs_writes_and_refuses_what_one_by_one_did(tlvs: dict[int, Any]) -> None:
    assert _outcome(encode_tlvs, tlvs) == _outcome(_tlvs_one_by_one, tlvs)


@pytest.mark.parametrize("value", ["", "x" * 0xFFFE, "x" * 0xFFFF, "é"])
def test_encode_tlvs_at_the_length_limits(value: str) -> None:
    tlvs = {0x001E: value, 0x1400: value}
    assert _outcome(encode_tlvs, tlvs) == _outcome(_tlvs_one_by_one, tlvs)


def test_a_str_for_an_integer_tag_is_still_refused() -> None:
    assert min(_INT_TAGS) not in _CSTR_TAGS
    with pytest.raises(struct.error):
        encode_tlvs({0x0427: "2"})  # message_state takes an int


# --- the generated decoders against the checked one -----------------------------------------

#: layouts the generated decoders read with one regular expression (octets, C-strings, short_message)
_MATCHED = [cls for cls, layout in LAYOUTS.items()
            if layout and all(type(k) in (Int, CStr, ShortMessage) for _, k, _ in layout)
            and any(type(k) is CStr for _, k, _ in layout)]


@st.composite
def _bodies_near_the_limits(draw: st.DrawFn) -> tuple[type[Pdu], bytes]:
    """A body of ``cls``'s fields with each C-string at, just under or over its limit (or anything),
    its NUL sometimes missing, and a cut or a stray octet now and then."""
    cls = draw(st.sampled_from(_MATCHED))
    body = b""
    for _, kind, _ in LAYOUTS[cls]:
        if type(kind) is Int:
            body += draw(st.binary(min_size=kind.size, max_size=kind.size))
        elif type(kind) is CStr:
            size = draw(st.sampled_from([0, kind.max - 2, kind.max - 1, kind.max, kind.max + 1]))
            text = draw(st.binary(min_size=max(size, 0), max_size=max(size, 0)).map(lambda b: b.replace(b"\0", b"a")))
            body += text + (b"\0" if draw(st.integers(0, 9)) else b"")
        else:
            sm = draw(st.binary(max_size=20))
            body += bytes((draw(st.sampled_from([len(sm), len(sm) + 1, 255])),)) + sm
    if draw(st.integers(0, 4)) == 0 and body:
        body = body[: draw(st.integers(0, len(body) - 1))]
    return cls, body


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bodies_near_the_limits())
def test_generated_decoders_read_what_the_checked_decoder_reads(case: tuple[type[Pdu], bytes]) -> None:
    """The generated decoder's regular expression (C-strings as possessive bounded repeats) takes
    exactly the bodies the checked decoder takes, into the same PDU, and refuses the others with
    the same status."""
    cls, body = case
    data = HEADER.pack(16 + len(body), cls.command_id, 0, 7) + body
    results = []
    for decode in (_DECODERS[cls.command_id], lambda *a: _checked_decode(cls, *a)):
        try:
            results.append(decode(data, 16, len(data), 7, 0))
        except PduError as exc:
            results.append(("refused", exc.command_status))
    assert results[0] == results[1]
