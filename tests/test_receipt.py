"""Delivery receipts: Appendix B text in its real-world variants, the receipt PDU, ids."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smppcore import DeliverSm, EsmClass, MessageState, SubmitSm, Tag, decode, encode
from smppcore.constants import RECEIPT_STAT
from smppcore.pdus import DataSm
from smppcore.receipt import (
    Receipt,
    ReceiptInfo,
    build_receipt,
    encode_network_error_code,
    format_receipt,
    ids_match,
    intermediate_wanted,
    is_receipt,
    network_error_code,
    normalise_message_id,
    parse_receipt,
    receipt_info,
    receipt_text,
    receipt_wanted,
    receipts_requested,
)
from smppcore.text import encode_text, is_gsm7

UTC = timezone.utc
T1 = datetime(2024, 3, 15, 14, 30, tzinfo=UTC)
T2 = datetime(2024, 3, 15, 14, 31, tzinfo=UTC)


# --- golden texts ----------------------------------------------------------------


def test_canonical_layout() -> None:
    r = Receipt(
        id="0123456789", sub=1, dlvrd=1, submit_date=T1, done_date=T2,
        stat="DELIVRD", err="000", text="Hello world",
    )
    text = (
        "id:0123456789 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 "
        "stat:DELIVRD err:000 text:Hello world"
    )
    assert format_receipt(r) == text
    assert parse_receipt(text) == r
    assert parse_receipt(text.encode("ascii")) == r


def test_text_is_cut_to_20_characters() -> None:
    r = Receipt(id="1", stat="DELIVRD", text="x" * 30)
    assert format_receipt(r).endswith("text:" + "x" * 20)


def test_spec_appendix_b_shape() -> None:
    # Appendix B's template capitalises "Text:" and shows a one-character err.
    r = parse_receipt(
        "id:1234567890 sub:001 dlvrd:000 submit date:0610191018 done date:0610191019 "
        "stat:UNDELIV err:E Text:Hi there"
    )
    assert r == Receipt(
        id="1234567890", sub=1, dlvrd=0,
        submit_date=datetime(2006, 10, 19, 10, 18, tzinfo=UTC),
        done_date=datetime(2006, 10, 19, 10, 19, tzinfo=UTC),
        stat="UNDELIV", err="E", text="Hi there",
    )
    assert r.state is MessageState.UNDELIVERABLE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # simulator style, 12-digit dates
        (
            "id:5f3a9c sub:001 dlvrd:001 submit date:240315143005 done date:240315143107 "
            "stat:DELIVRD err:000 text:Test message",
            Receipt(
                id="5f3a9c", dlvrd=1, stat="DELIVRD", text="Test message",
                submit_date=T1 + timedelta(seconds=5),
                done_date=T2 + timedelta(seconds=7),
            ),
        ),
        # underscores, lower case, no text
        (
            "id:778899 sub:001 dlvrd:001 submit_date:2403151430 done_date:2403151431 "
            "stat:DELIVRD err:000",
            Receipt(id="778899", dlvrd=1, stat="DELIVRD", submit_date=T1, done_date=T2),
        ),
        # all upper case, dates glued to their key
        (
            "ID:A1B2C3 SUB:001 DLVRD:000 SUBMITDATE:2403151430 DONEDATE:2403151431 "
            "STAT:EXPIRED ERR:000 TEXT:",
            Receipt(id="A1B2C3", stat="EXPIRED", submit_date=T1, done_date=T2),
        ),
        # UUID id, minimal receipt
        (
            "id:9b2e6c1e-4f3a-4c55-9a0e-2d1b7c8f0a11 stat:DELIVRD",
            Receipt(id="9b2e6c1e-4f3a-4c55-9a0e-2d1b7c8f0a11", stat="DELIVRD"),
        ),
        # fields out of order, unknown fields, a space after the colon
        (
            "stat: REJECTD mccmnc:23410 id: 42 err:0x0b sub:1 dlvrd:0 text:no",
            Receipt(id="42", stat="REJECTD", err="0x0b", text="no"),
        ),
        # text holding spaces, colons and words that look like keys
        (
            "id:7 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 "
            "stat:DELIVRD err:000 text:Code: 1234 stat:FAILED id:8",
            Receipt(
                id="7", dlvrd=1, submit_date=T1, done_date=T2,
                stat="DELIVRD", text="Code: 1234 stat:FAILED id:8",
            ),
        ),
        # text before the other fields: it ends where the next key starts
        (
            "id:99 text:hello there stat:UNDELIV err:001",
            Receipt(id="99", stat="UNDELIV", err="001", text="hello there"),
        ),
        (
            "text:first stat:DELIVRD id:100",
            Receipt(id="100", stat="DELIVRD", text="first"),
        ),
        # comma separated
        (
            "id:3,sub:002,dlvrd:002,stat:DELIVRD,err:000",
            Receipt(id="3", sub=2, dlvrd=2, stat="DELIVRD"),
        ),
        # empty and broken dates are left out, the rest still reads
        (
            "id:4 sub:001 dlvrd:000 submit date: done date:2413151430 stat:ENROUTE err:000 text:x",
            Receipt(id="4", stat="ENROUTE", text="x"),
        ),
        # long-form stat words are kept as written
        ("id:5 stat:delivered", Receipt(id="5", stat="DELIVERED")),
        # counters that are not numbers fall back to their defaults
        ("id:6 sub:one dlvrd:99999999999 stat:DELIVRD", Receipt(id="6", stat="DELIVRD")),
        # the first of a repeated key wins
        ("id:1 id:2 stat:ACCEPTD stat:DELIVRD", Receipt(id="1", stat="ACCEPTD")),
    ],
)
def test_real_world_variants(text: str, expected: Receipt) -> None:
    assert parse_receipt(text) == expected


def test_bytes_are_latin1_and_trailing_nuls_dropped() -> None:
    data = (
        b"id:1 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 "
        b"stat:DELIVRD err:000 text:caf\xe9 ok\x00\x00"
    )
    r = parse_receipt(data)
    assert r is not None and r.text == "café ok"
    assert parse_receipt(bytearray(data)) == r
    assert parse_receipt(memoryview(data)) == r


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello, this is an MO message",
        "sub:001 dlvrd:001 stat:DELIVRD err:000 text:no id",
        "id:123 sub:001 dlvrd:001 err:000 text:no stat",
        "id: stat:DELIVRD",
        "id:1 stat:",
        "msgid:1 status:DELIVRD",
    ],
)
def test_not_a_receipt(text: str) -> None:
    assert parse_receipt(text) is None


def test_parse_receipt_rejects_non_text() -> None:
    assert parse_receipt(None) is None  # type: ignore[arg-type]
    assert parse_receipt(12345) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        *[(word, state) for state, word in RECEIPT_STAT.items()],
        ("DELIVERED", MessageState.DELIVERED),
        ("delivrd", MessageState.DELIVERED),
        ("UNDELIVERABLE", MessageState.UNDELIVERABLE),
        ("FAILED", MessageState.UNDELIVERABLE),
        ("REJECTED", MessageState.REJECTED),
        ("ACKED", MessageState.ACCEPTED),
        ("ACCEPTED", MessageState.ACCEPTED),
        ("BOGUS", MessageState.UNKNOWN),
        ("", MessageState.UNKNOWN),
    ],
)
def test_stat_words(stat: str, state: MessageState) -> None:
    assert Receipt(id="1", stat=stat).state is state


# --- properties ----------------------------------------------------------------

_FRAGMENTS = [
    "id:", "ID:", "sub:", "dlvrd:", "submit date:", "submit_date:", "done date:",
    "donedate:", "stat:", "STAT:", "err:", "text:", "Text:", " ", "  ", ",", ";", ":",
    "\x00", "\n", "DELIVRD", "UNDELIV", "001", "2403151430", "240315143059",
    "9999999999", "0x1f", "abc", "é", "\u0664\u0665", "9" * 5000,
]


@given(
    st.one_of(
        st.text(),
        st.binary(),
        st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("".join),
        st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map(lambda xs: "".join(xs).encode()),
    )
)
def test_parse_receipt_never_raises(data: str | bytes) -> None:
    r = parse_receipt(data)
    assert r is None or (isinstance(r, Receipt) and r.id and r.stat)
    if r is not None:
        assert isinstance(r.state, MessageState)


_ID_CHARS = "0123456789abcdefABCDEF-_.xyzXYZ"
minutes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59)
).map(lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC))
receipts = st.builds(
    Receipt,
    id=st.text(_ID_CHARS, min_size=1, max_size=65),
    stat=st.sampled_from(sorted({*RECEIPT_STAT.values(), "DELIVERED", "FAILED"})),
    sub=st.integers(0, 999),
    dlvrd=st.integers(0, 999),
    submit_date=st.none() | minutes,
    done_date=st.none() | minutes,
    err=st.text("0123456789ABCDEFx", min_size=1, max_size=6),
    text=st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=20),
)


@given(receipts)
def test_format_parse_round_trip(r: Receipt) -> None:
    assert parse_receipt(format_receipt(r)) == r


_CANONICAL_PARTS = st.tuples(
    st.sampled_from(["id:", "id:abc", "id:0042", "id:a:b", "id:text:", "ID:7", "id:7,"]),
    st.sampled_from([" sub:001", " sub:", " sub:1234567890", " sub:01"]),
    st.sampled_from([" dlvrd:001", " dlvrd:x", " dlvrd:0"]),
    st.sampled_from([" submit date:2403151430", " submit date:", " submit date:240315143059", " submit date:9999999999",
                     " submit date:12"]),
    st.sampled_from([" done date:2403151431", " done date:", " done_date:2403151431"]),
    st.sampled_from([" stat:DELIVRD", " stat:", " stat:delivrd", " stat:text:", " stat:id"]),
    st.sampled_from([" err:000", " err:", " err:0x0b", " err:stat:"]),
    st.sampled_from([" text:", " text:hello", " text:stat:UNDELIV err:1", " text:a\nb", " Text:x", ""]),
    st.sampled_from(["", "\x00\x00", " id:9"]),
)


@given(st.one_of(receipts.map(format_receipt), _CANONICAL_PARTS.map("".join),
                 st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("".join)))
def test_the_one_match_reading_agrees_with_the_tolerant_one(text: str) -> None:
    # parse_receipt reads the Appendix B layout with one match and falls back to the
    # key-by-key reading for anything else: both must give the same answer
    from smppcore.receipt import _parse_tolerant

    assert parse_receipt(text) == _parse_tolerant(text.rstrip("\x00"))


@given(receipts)
def test_format_parse_round_trip_through_latin1_bytes(r: Receipt) -> None:
    text = format_receipt(r)
    if all(ord(c) < 256 for c in text):
        assert parse_receipt(text.encode("latin-1")) == r


# --- the receipt PDU ---------------------------------------------------------------


def make(**kw: object) -> DeliverSm:
    args: dict[str, object] = dict(
        message_id="abc123",
        state=MessageState.DELIVERED,
        source_addr="MyShop",
        destination_addr="447700900123",
        submit_date=T1,
        done_date=T2,
        text="Your code is 123456, valid 5 min",
    )
    args.update(kw)
    return build_receipt(**args)  # type: ignore[arg-type]


def test_build_receipt() -> None:
    pdu = make(
        source_addr_ton=5, source_addr_npi=0, dest_addr_ton=1, dest_addr_npi=1,
        network_error=(3, 0x0B), sequence_number=7,
    )
    assert isinstance(pdu, DeliverSm)
    # goes back the other way: from the handset to the original sender
    assert (pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi) == ("447700900123", 1, 1)
    assert (pdu.destination_addr, pdu.dest_addr_ton, pdu.dest_addr_npi) == ("MyShop", 5, 0)
    assert pdu.esm_class == 0x04
    assert pdu.sequence_number == 7
    assert pdu.short_message == (
        b"id:abc123 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 "
        b"stat:DELIVRD err:000 text:Your code is 123456,"
    )
    assert pdu.tlvs == {
        Tag.RECEIPTED_MESSAGE_ID: "abc123",
        Tag.MESSAGE_STATE: 2,
        Tag.NETWORK_ERROR_CODE: b"\x03\x00\x0b",
    }
    assert is_receipt(pdu)


def test_build_receipt_defaults_and_conversions() -> None:
    pdu = make(state=MessageState.UNDELIVERABLE, err=11, text=b"caf\xe9\x00 and more bytes here")
    assert b"dlvrd:000" in pdu.short_message
    assert b"stat:UNDELIV err:011 " in pdu.short_message
    # bytes read as Latin-1, first 20 only, non-ASCII and controls replaced
    assert pdu.short_message.endswith(b"text:caf?? and more bytes")
    assert Tag.NETWORK_ERROR_CODE not in pdu.tlvs
    assert make(state=MessageState.DELIVERED, dlvrd=0).short_message.count(b"dlvrd:000") == 1
    assert make(state=5).tlvs[Tag.MESSAGE_STATE] == 5
    no_dates = make(submit_date=None, done_date=None)
    assert b"submit date: done date: stat:" in no_dates.short_message
    inter = make(state=MessageState.ENROUTE, esm_class=EsmClass.TYPE_INTERMEDIATE_NOTIFICATION)
    assert inter.esm_class == 0x20 and is_receipt(inter)


def test_build_receipt_survives_the_codec() -> None:
    pdu = make(network_error=(3, 1), sequence_number=9)
    back = decode(encode(pdu))
    assert back == pdu
    info = receipt_info(back)
    assert info == ReceiptInfo(
        message_id="abc123", state=MessageState.DELIVERED, err="000",
        network_error=(3, 1), receipt=parse_receipt(pdu.short_message),
    )
    assert info.is_final


@pytest.mark.parametrize(
    ("esm", "expected"),
    [(0x04, True), (0x20, True), (0x44, True), (0x07, True), (0x00, False),
     (0x03, False), (0x08, False), (0x10, False), (0x40, False), (0x24, False)],
)
def test_is_receipt(esm: int, expected: bool) -> None:
    assert is_receipt(DeliverSm(esm_class=esm)) is expected


def test_is_receipt_on_pdus_without_esm_class() -> None:
    from smppcore.pdus import EnquireLink

    assert not is_receipt(EnquireLink())
    assert is_receipt(DataSm(esm_class=0x04))


# --- receipt_info ------------------------------------------------------------------

TEXT = (
    b"id:0A1B2C sub:001 dlvrd:000 submit date:2403151430 done date:2403151431 "
    b"stat:UNDELIV err:034 text:hello"
)


def test_receipt_info_prefers_tlvs() -> None:
    pdu = DeliverSm(
        esm_class=0x04, short_message=TEXT,
        tlvs={Tag.RECEIPTED_MESSAGE_ID: "0a1b2c00", Tag.MESSAGE_STATE: 3,
              Tag.NETWORK_ERROR_CODE: b"\x03\x00\x22"},
    )
    info = receipt_info(pdu)
    assert info is not None
    assert info.message_id == "0a1b2c00"
    assert info.state is MessageState.EXPIRED
    assert info.err == "034"
    assert info.network_error == (3, 34)
    assert info.receipt is not None and info.receipt.id == "0A1B2C"


def test_receipt_info_from_text_only() -> None:
    info = receipt_info(DeliverSm(esm_class=0x04, short_message=TEXT))
    assert info is not None
    assert (info.message_id, info.state, info.err, info.network_error) == (
        "0A1B2C", MessageState.UNDELIVERABLE, "034", None,
    )


def test_receipt_info_from_message_payload() -> None:
    pdu = DeliverSm(esm_class=0x04, tlvs={Tag.MESSAGE_PAYLOAD: TEXT})
    info = receipt_info(pdu)
    assert info is not None and info.message_id == "0A1B2C"
    assert info.receipt is not None and info.receipt.text == "hello"
    data_sm = DataSm(esm_class=0x04, tlvs={Tag.MESSAGE_PAYLOAD: TEXT})
    assert receipt_info(data_sm) == info


def test_receipt_info_from_tlvs_only() -> None:
    pdu = DataSm(
        esm_class=0x04,
        tlvs={Tag.RECEIPTED_MESSAGE_ID: "77", Tag.MESSAGE_STATE: 5,
              Tag.NETWORK_ERROR_CODE: b"\x03\x00\x0b"},
    )
    assert receipt_info(pdu) == ReceiptInfo(
        message_id="77", state=MessageState.UNDELIVERABLE, err="011", network_error=(3, 11),
    )
    pdu = DataSm(esm_class=0x04, tlvs={Tag.RECEIPTED_MESSAGE_ID: b"78\x00"})
    assert receipt_info(pdu) == ReceiptInfo(message_id="78", state=MessageState.UNKNOWN)


def test_receipt_info_tolerates_odd_tlvs() -> None:
    pdu = DeliverSm(
        esm_class=0x04, short_message=TEXT,
        tlvs={Tag.RECEIPTED_MESSAGE_ID: "", Tag.MESSAGE_STATE: 99,
              Tag.NETWORK_ERROR_CODE: b"\x03\x00"},
    )
    info = receipt_info(pdu)
    assert info is not None
    assert info.message_id == "0A1B2C"  # empty TLV: the text's id
    assert info.state is MessageState.UNDELIVERABLE  # unknown state: the text's stat
    assert info.network_error is None  # wrong length: ignored
    pdu = DeliverSm(esm_class=0x04, short_message=TEXT, tlvs={Tag.MESSAGE_STATE: b"\x02"})
    assert receipt_info(pdu).state is MessageState.DELIVERED


def test_receipt_info_without_an_id() -> None:
    assert receipt_info(DeliverSm(short_message=b"Hi, see you at 5")) is None
    assert receipt_info(DeliverSm(esm_class=0x04, tlvs={Tag.MESSAGE_STATE: 2})) is None


# --- network_error_code ------------------------------------------------------------


def test_network_error_code() -> None:
    assert network_error_code(b"\x03\x01\x02") == (3, 0x0102)
    assert encode_network_error_code(3, 0x0102) == b"\x03\x01\x02"
    assert encode_network_error_code(1, 0xFFFF) == b"\x01\xff\xff"
    for bad in (b"", b"\x03\x00", b"\x03\x00\x00\x00"):
        with pytest.raises(ValueError):
            network_error_code(bad)
    for args in ((256, 0), (-1, 0), (3, 0x10000), (3, -1)):
        with pytest.raises(ValueError):
            encode_network_error_code(*args)


@given(st.integers(0, 255), st.integers(0, 0xFFFF))
def test_network_error_code_round_trip(network_type: int, code: int) -> None:
    assert network_error_code(encode_network_error_code(network_type, code)) == (network_type, code)


# --- message ids -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ABC123", "abc123"),
        ("000123", "123"),
        ("0000", "0"),
        (" 0x12\x00", "0x12"),
        ("9B2E6C1E-4F3A-4C55-9A0E-2D1B7C8F0A11", "9b2e6c1e-4f3a-4c55-9a0e-2d1b7c8f0a11"),
        ("00-12", "00-12"),
        ("", ""),
    ],
)
def test_normalise_message_id(raw: str, expected: str) -> None:
    assert normalise_message_id(raw) == expected


def test_normalise_message_id_with_a_known_base() -> None:
    assert normalise_message_id("1A", base=16) == normalise_message_id("26", base=10) == "26"
    assert normalise_message_id("10", base=16) == "16"
    assert normalise_message_id("0042", base=10) == "42"
    # not a number in that base: the ordinary form
    assert normalise_message_id("xyz-1", base=16) == "xyz-1"
    assert normalise_message_id("1a", base=10) == "1a"
    with pytest.raises(ValueError):
        normalise_message_id("1", base=8)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("abc", "ABC", True),
        ("00042", "42", True),
        ("ff", "255", True),
        ("255", "00FF", True),
        ("0A1B2C", "662316", True),
        ("10", "16", False),  # digits-only hex is never reinterpreted
        ("ff", "254", False),
        ("abc", "abd", False),
        ("", "", False),
        ("0", "", False),
        ("uuid-1", "UUID-1", True),
        ("1" * 70, "1" * 70, True),
        ("1" * 70, "a" + "1" * 69, False),
    ],
)
def test_ids_match(a: str, b: str, expected: bool) -> None:
    assert ids_match(a, b) is expected
    assert ids_match(b, a) is expected


@given(st.integers(0, 2**64))
def test_ids_match_hex_and_decimal(n: int) -> None:
    h = f"{n:x}"
    assert ids_match(str(n), h) is (any(c in "abcdef" for c in h) or str(n) == h)
    assert normalise_message_id(h.upper(), base=16) == normalise_message_id(str(n), base=10)


# --- text in the PDU's data_coding, and receipts without the esm_class flag ----------

UCS2_TEXT = (
    "id:7F3A sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 "
    "stat:DELIVRD err:000 text:Привет, мир 👋"
)


def test_ucs2_receipt_without_tlvs_is_read() -> None:
    pdu = DeliverSm(esm_class=0x04, data_coding=8, short_message=UCS2_TEXT.encode("utf-16-be"))
    info = receipt_info(pdu)
    assert info is not None
    assert (info.message_id, info.state, info.err) == ("7F3A", MessageState.DELIVERED, "000")
    assert info.receipt is not None and info.receipt.text == "Привет, мир 👋"
    assert info.receipt.submit_date == T1 and info.receipt.done_date == T2


def test_ucs2_receipt_in_message_payload_of_a_data_sm() -> None:
    pdu = DataSm(esm_class=0x04, data_coding=8, tlvs={Tag.MESSAGE_PAYLOAD: UCS2_TEXT.encode("utf-16-be") + b"\x00\x00"})
    info = receipt_info(pdu)
    assert info is not None and info.message_id == "7F3A" and info.state is MessageState.DELIVERED
    assert receipt_text(pdu) == UCS2_TEXT  # the NUL padding dropped


def test_the_texts_stat_is_kept_beside_the_tlvs() -> None:
    # the TLVs give id and state; the SMSC's own word stays readable (DELIVRD, not DELIVERED)
    pdu = DeliverSm(
        esm_class=0x04, data_coding=8, short_message=UCS2_TEXT.encode("utf-16-be"),
        tlvs={Tag.RECEIPTED_MESSAGE_ID: "7f3a", Tag.MESSAGE_STATE: 2},
    )
    info = receipt_info(pdu)
    assert info is not None and info.message_id == "7f3a" and info.state is MessageState.DELIVERED
    assert info.receipt is not None and info.receipt.stat == "DELIVRD" and info.receipt.id == "7F3A"


def test_gsm_coded_receipt() -> None:
    text = (
        "id:ab_12 sub:001 dlvrd:000 submit_date:2403151430 done_date:2403151431 "
        "stat:UNDELIV err:0x0b text:Ünö Çà € {x}"
    )
    raw = encode_text(text, 0)
    assert b"\x11" in raw and b"\x1be" in raw  # GSM's "_" and the escaped "€"
    info = receipt_info(DeliverSm(esm_class=0x04, data_coding=0, short_message=raw + b"\x00\x00"))
    assert info is not None
    assert (info.message_id, info.state, info.err) == ("ab_12", MessageState.UNDELIVERABLE, "0x0b")
    assert info.receipt is not None
    assert info.receipt.submit_date == T1 and info.receipt.done_date == T2
    # "Ü" is 0x5E in GSM: read as Latin-1 it would have been "^"; NUL padding is not "@@"
    assert info.receipt.text == "Ünö Çà € {x}"


def test_ascii_underscore_keys_under_data_coding_0() -> None:
    # many SMSCs write ASCII and say data_coding 0: "_" (0x5F) is GSM's "§"
    raw = b"id:99 sub:001 dlvrd:001 submit_date:2403151430 done_date:2403151431 stat:DELIVRD err:000 text:hi"
    info = receipt_info(DeliverSm(esm_class=0x04, data_coding=0, short_message=raw))
    assert info is not None and info.receipt is not None
    assert (info.message_id, info.state) == ("99", MessageState.DELIVERED)
    assert info.receipt.submit_date == T1 and info.receipt.done_date == T2


@pytest.mark.parametrize(
    ("data_coding", "raw", "expected"),
    [
        (1, b"id:1 stat:DELIVRD\x00", "id:1 stat:DELIVRD"),
        (3, b"text:caf\xe9", "text:café"),
        (0, b"text:caf\x05", "text:café"),  # GSM 0x05 is "é"
        (8, b"\x00i\x00d\x00:", "id:"),
        (8, b"\x00i\x00d\x00", "id\ufffd"),  # odd length: one U+FFFD, no error
        (1, b"id:\xff", "id:\ufffd"),  # not IA5: U+FFFD, no error
    ],
)
def test_receipt_text_decodes_by_data_coding(data_coding: int, raw: bytes, expected: str) -> None:
    assert receipt_text(DeliverSm(data_coding=data_coding, short_message=raw)) == expected


APPENDIX_B = b"id:1234 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:000 text:Hello"


@pytest.mark.parametrize(
    ("pdu", "expected"),
    [
        (DeliverSm(esm_class=0x00, short_message=APPENDIX_B), True),
        (DeliverSm(esm_class=0x03, short_message=APPENDIX_B), True),  # store-and-forward mode, default type
        (DeliverSm(esm_class=0x00, data_coding=8, short_message=APPENDIX_B.decode().encode("utf-16-be")), True),
        (DataSm(esm_class=0x00, tlvs={Tag.MESSAGE_PAYLOAD: APPENDIX_B}), True),
        # a variant layout: keys moved and renamed, no sub/dlvrd
        (DeliverSm(short_message=b"stat:UNDELIV id:77 submit_date:2403151430 done_date:2403151431 err:034"), True),
        # the esm_class says something else: an SME acknowledgement, or a UDH (a real MO)
        (DeliverSm(esm_class=0x08, short_message=APPENDIX_B), False),
        (DeliverSm(esm_class=0x40, short_message=b"\x05\x00\x03\x01\x02\x01" + APPENDIX_B), False),
        # plain MO texts that merely look a little like one
        (DeliverSm(short_message=b"my id: 12345, please call"), False),
        (DeliverSm(short_message=b"id:42 stat:DELIVRD"), False),
        (DeliverSm(short_message=b"id:42 stat:ok sub:1 text: dlvrd:1 err:0 done date:1"), False),  # keys after text:
        (DeliverSm(short_message=b"Meet at 10:30, stat: ok?"), False),
        (DeliverSm(short_message=b"Hi, see you at 5"), False),
        (DeliverSm(), False),
        (SubmitSm(short_message=APPENDIX_B), False),  # not something an SMSC delivers
    ],
)
def test_is_receipt_reads_unflagged_texts(pdu: DeliverSm | DataSm, expected: bool) -> None:
    assert is_receipt(pdu) is expected


def test_an_unflagged_receipt_gives_its_info() -> None:
    pdu = DeliverSm(esm_class=0x00, short_message=APPENDIX_B)
    info = receipt_info(pdu)
    assert info is not None and (info.message_id, info.state) == ("1234", MessageState.DELIVERED)


_ALPHABETS = {
    0: sorted(ch for ch in map(chr, range(0x2100)) if is_gsm7(ch) and ch != "@"),  # "@" is GSM 0x00: a NUL pad
    1: [chr(c) for c in range(1, 0x80)],
    3: [chr(c) for c in range(1, 0x100)],
}


@given(receipts, st.sampled_from([0, 1, 3, 8]), st.data())
def test_any_text_coding_round_trips(r: Receipt, data_coding: int, data: st.DataObject) -> None:
    if data_coding == 8:
        chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    else:
        chars = st.sampled_from(_ALPHABETS[data_coding])
    quoted = data.draw(st.text(chars, max_size=20))
    r = msgspec.structs.replace(r, text=quoted)
    raw = encode_text(format_receipt(r), data_coding)
    for esm in (0x04, 0x00):  # flagged, and told by its text alone
        pdu = DeliverSm(esm_class=esm, data_coding=data_coding, short_message=raw)
        assert is_receipt(pdu)
        info = receipt_info(pdu)
        assert info is not None and info.receipt == r and info.message_id == r.id


# --- which receipts a submit asks for ----------------------------------------------

_FINALS = [MessageState.DELIVERED, MessageState.UNDELIVERABLE, MessageState.EXPIRED, MessageState.REJECTED,
           MessageState.DELETED, MessageState.UNKNOWN]


@pytest.mark.parametrize(
    ("registered_delivery", "wanted_for"),
    [
        (0x00, set()),
        (0x01, set(_FINALS)),  # final outcome, success or failure
        (0x02, set(_FINALS) - {MessageState.DELIVERED}),  # failure only
        (0x03, {MessageState.DELIVERED}),  # reserved in 3.4; SMPP 5.0: success only
        (0x10, set()),  # intermediate notifications only
        (0x11, set(_FINALS)),
        (0x12, set(_FINALS) - {MessageState.DELIVERED}),
        (0x04, set()),  # an SME acknowledgement is not an SMSC receipt
        (0x0D, set(_FINALS)),
        (0x1F, {MessageState.DELIVERED}),
    ],
)
def test_receipt_wanted(registered_delivery: int, wanted_for: set[MessageState]) -> None:
    assert {s for s in _FINALS if receipt_wanted(registered_delivery, s)} == wanted_for
    assert intermediate_wanted(registered_delivery) is bool(registered_delivery & 0x10)
    assert receipts_requested(registered_delivery) is bool(wanted_for or intermediate_wanted(registered_delivery))
