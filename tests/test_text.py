"""smppcore.text: GSM 03.38, data_coding, splitting, UDH and reassembly.

Golden values come from 3GPP TS 23.038 / 23.040 (the tables and the widely
published packing example) and from an independent GSM table (aiosmpplib's),
never from our own encoder.
"""

from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smppcore.constants import Tag
from smppcore.pdus import DataSm, DeliverSm, SubmitSm
from smppcore.text import (
    ConcatInfo,
    Incomplete,
    Reassembler,
    Segment,
    UnencodableText,
    choose_coding,
    concat_info,
    decode_text,
    encode_text,
    gsm7_decode,
    gsm7_encode,
    gsm7_pack,
    gsm7_septets,
    gsm7_unpack,
    is_gsm7,
    join_segments,
    parse_udh,
    split_binary,
    split_text,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# 23.038 section 6.2.1.1: the extension table.
EXTENSION = {
    "\x0c": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

# Spot values read off the basic table of 23.038 section 6.2.1.
SPEC_BASIC = {
    "@": 0x00, "£": 0x01, "$": 0x02, "¥": 0x03, "è": 0x04, "é": 0x05, "ù": 0x06,
    "ì": 0x07, "ò": 0x08, "Ç": 0x09, "\n": 0x0A, "Ø": 0x0B, "ø": 0x0C, "\r": 0x0D,
    "Å": 0x0E, "å": 0x0F, "Δ": 0x10, "_": 0x11, "Φ": 0x12, "Γ": 0x13, "Λ": 0x14,
    "Ω": 0x15, "Π": 0x16, "Ψ": 0x17, "Σ": 0x18, "Θ": 0x19, "Ξ": 0x1A, "Æ": 0x1C,
    "æ": 0x1D, "ß": 0x1E, "É": 0x1F, " ": 0x20, "¤": 0x24, "¡": 0x40, "Ä": 0x5B,
    "Ö": 0x5C, "Ñ": 0x5D, "Ü": 0x5E, "§": 0x5F, "¿": 0x60, "ä": 0x7B, "ö": 0x7C,
    "ñ": 0x7D, "ü": 0x7E, "à": 0x7F, "A": 0x41, "Z": 0x5A, "a": 0x61, "z": 0x7A,
    "0": 0x30, "9": 0x39, "?": 0x3F, "!": 0x21, "#": 0x23, "/": 0x2F,
}

BASIC_CHARS = [gsm7_decode(bytes([c])) for c in range(128) if c != 0x1B]
GSM_ALPHABET = sorted(set(BASIC_CHARS) | set(EXTENSION))


def _short_or_long(alphabet, single: int, longest: int) -> st.SearchStrategy[str]:
    """Text around the one-message limit or well past it, not only the short text
    hypothesis favours, so splitting is exercised on most examples."""
    return st.one_of(
        st.text(alphabet=alphabet, max_size=single + 10),
        st.text(alphabet=alphabet, min_size=single - 10, max_size=single + 30),
        st.text(alphabet=alphabet, min_size=single, max_size=longest),
    )


gsm_text = _short_or_long(st.sampled_from(GSM_ALPHABET), 160, 700)
latin1_text = _short_or_long(st.characters(min_codepoint=0, max_codepoint=255), 140, 600)
ucs2_text = _short_or_long(
    # Up to 0x1FFFF: half BMP, half astral (emoji, musical symbols) needing surrogates.
    st.characters(max_codepoint=0x1FFFF, exclude_categories=("Cs",)),
    70,
    300,
)


# --- GSM 03.38 table -----------------------------------------------------------------


def test_basic_table_is_complete_and_round_trips():
    chars = [gsm7_decode(bytes([code])) for code in range(128)]
    assert all(len(c) == 1 for c in chars)
    assert len(set(chars)) == 128  # all distinct (0x1B alone reads as NO-BREAK SPACE)
    for code, ch in enumerate(chars):
        if code == 0x1B:
            assert ch == "\xa0"
            assert not is_gsm7(ch)
            continue
        assert gsm7_encode(ch) == bytes([code]), hex(code)
        assert gsm7_septets(ch) == 1
        assert is_gsm7(ch)


def test_basic_table_spot_values_from_spec():
    for ch, code in SPEC_BASIC.items():
        assert gsm7_encode(ch) == bytes([code]), ch
        assert gsm7_decode(bytes([code])) == ch


def test_extension_table_round_trips_as_two_septets():
    assert len(EXTENSION) == 10
    for ch, code in EXTENSION.items():
        assert gsm7_encode(ch) == bytes([0x1B, code])
        assert gsm7_decode(bytes([0x1B, code])) == ch
        assert gsm7_septets(ch) == 2
        assert is_gsm7(ch)
    assert gsm7_encode("€") == b"\x1b\x65"


def test_table_matches_independent_implementation():
    codec = pytest.importorskip("aiosmpplib.codec")
    for code, ch in codec.GSM_BASIC_DECODE_MAP.items():
        assert gsm7_encode(ch) == bytes([code])
        assert gsm7_decode(bytes([code])) == ch
    for code, ch in codec.GSM_EXTENDED_DECODE_MAP.items():
        assert gsm7_encode(ch) == bytes([0x1B, code])


def test_decode_is_tolerant():
    # Unknown escape: the basic-table character of the code (23.038).
    assert gsm7_decode(b"\x1b\x41") == "A"
    assert gsm7_decode(b"\x1b\x00") == "@"
    # 1B 1B (reserved second extension table): a space; trailing escape: NBSP.
    assert gsm7_decode(b"A\x1b\x1bB") == "A B"
    assert gsm7_decode(b"A\x1b") == "A\xa0"
    # High bit masked.
    assert gsm7_decode(b"\xc1\x80\x9b\xe5") == "A@€"
    assert gsm7_decode(b"") == ""


@given(st.binary(max_size=300))
@FAST
def test_gsm_decode_never_raises_and_is_stable(data):
    text = gsm7_decode(data)
    masked = bytes(b & 0x7F for b in data)
    assert gsm7_decode(masked) == text


@given(gsm_text)
@FAST
def test_gsm_round_trip(text):
    data = gsm7_encode(text)
    assert gsm7_decode(data) == text
    assert gsm7_septets(text) == len(data) == len(text) + sum(text.count(c) for c in EXTENSION)
    assert max(data, default=0) < 0x80


def test_unencodable_names_first_bad_character():
    with pytest.raises(UnencodableText) as exc:
        gsm7_encode("ok`x😀")
    assert exc.value.char == "`" and exc.value.position == 2 and exc.value.data_coding == 0
    assert isinstance(exc.value, ValueError)
    assert "U+0060" in str(exc.value)
    again = pickle.loads(pickle.dumps(exc.value))
    assert (again.char, again.position) == ("`", 2)
    assert not is_gsm7("\xa0") and not is_gsm7("ç")


# --- packing -------------------------------------------------------------------------


def test_packing_golden_hellohello():
    packed = bytes.fromhex("E8329BFD4697D9EC37")
    assert gsm7_pack(gsm7_encode("hellohello")) == packed
    assert gsm7_unpack(packed, 10) == b"hellohello"


def test_packing_pads_seven_spare_bits_with_cr():
    # 7 septets leave 7 spare bits: 23.038 6.1.2.3.1 fills them with CR, not '@'.
    packed = gsm7_pack(b"1234567")
    assert packed == bytes.fromhex("31D98C56B3DD1A")
    assert packed[-1] >> 1 == 0x0D
    assert gsm7_unpack(packed, 8) == b"1234567\r"
    assert gsm7_unpack(packed, 7) == b"1234567"


def test_packing_errors():
    with pytest.raises(ValueError):
        gsm7_pack(b"a", fill_bits=7)
    with pytest.raises(ValueError):
        gsm7_unpack(b"\x00", 2)
    assert gsm7_pack(b"") == b"" and gsm7_unpack(b"", 0) == b""


@given(st.binary(max_size=200).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
@FAST
def test_pack_unpack_round_trip(septets, fill):
    packed = gsm7_pack(septets, fill)
    assert len(packed) == (7 * len(septets) + fill + 7) // 8 if septets else packed == b""
    assert gsm7_unpack(packed, len(septets), fill) == septets
    if septets and fill:
        assert packed[0] & ((1 << fill) - 1) == 0  # fill bits are zero


# --- codings -------------------------------------------------------------------------


def test_codings():
    assert encode_text("Hi €", 0) == b"Hi \x1b\x65"
    assert encode_text("Hi", 1) == b"Hi"
    assert encode_text("é", 3) == b"\xe9"
    assert encode_text("Ж", 6) == "Ж".encode("iso8859-5")
    assert encode_text("א", 7) == "א".encode("iso8859-8")
    assert encode_text("😀a", 8) == b"\xd8\x3d\xde\x00\x00a"
    assert decode_text(b"\xd8\x3d\xde\x00\x00a", 8) == "😀a"
    assert encode_text("Hi", 0xF1) == b"Hi"  # message class 1, GSM alphabet
    for dc, bad in ((0, "é\u0101"), (1, "é"), (3, "Ж"), (8, "\ud800")):
        with pytest.raises(UnencodableText):
            encode_text(bad, dc)
    for dc in (2, 4, 0xF4, 5, 0x42):
        with pytest.raises(ValueError):
            encode_text("x", dc)


def test_decode_best_effort():
    assert decode_text(b"A\xff", 1) == "A\ufffd"
    assert decode_text(b"\xff\x00", 4) == "\xff\x00"
    assert decode_text(b"\xff", 2) == "\xff"
    assert decode_text(b"\x00A\x00", 8) == "A\ufffd"  # odd length
    assert decode_text(b"\xd8\x3d\x00A", 8) == "\ufffdA"  # lone high surrogate
    assert decode_text(b"\xde\x00\x00A", 8) == "\ufffdA"  # lone low surrogate
    assert decode_text(b"\xe9", 0x42) == "é"  # unknown coding: Latin-1


@given(st.binary(max_size=200), st.integers(0, 255))
@FAST
def test_decode_never_raises(data, dc):
    assert isinstance(decode_text(data, dc), str)


@given(ucs2_text)
@FAST
def test_ucs2_round_trip(text):
    assert decode_text(encode_text(text, 8), 8) == text


def test_choose_coding():
    assert choose_coding("") == 0
    assert choose_coding("Hello @ £5 {ok} €") == 0
    assert choose_coding("èéùìò ÄÖÑÜ") == 0
    assert choose_coding("ça va") == 3  # ç is not GSM, but Latin-1
    assert choose_coding("ça va", allow_latin1=False) == 8
    assert choose_coding("`") == 3
    assert choose_coding("Привет") == 8
    assert choose_coding("ok 😀") == 8


# --- splitting and reassembly --------------------------------------------------------


def _user_data(seg: Segment) -> bytes:
    if seg.esm_class & 0x40:
        return parse_udh(seg.short_message)[1]
    return seg.short_message


def _air_fits(seg: Segment) -> bool:
    """Does the segment fit the 140-octet TP-UD on the air interface?"""
    if seg.esm_class & 0x40:
        udh_len = seg.short_message[0] + 1
        user = len(seg.short_message) - udh_len
    else:
        udh_len, user = 0, len(seg.short_message)
    if seg.data_coding == 0:
        udh_septets = (udh_len * 8 + 6) // 7  # UDH padded to a septet boundary
        return udh_septets + user <= 160
    return udh_len + user <= 140


def _pdus(segments, cls=SubmitSm):
    out = []
    for seg in segments:
        if cls is DataSm:
            tlvs = dict(seg.tlvs)
            if seg.short_message:
                tlvs[Tag.MESSAGE_PAYLOAD] = seg.short_message
            out.append(DataSm(esm_class=seg.esm_class, data_coding=seg.data_coding, tlvs=tlvs))
        else:
            out.append(
                cls(
                    destination_addr="447700900123",
                    short_message=seg.short_message,
                    esm_class=seg.esm_class,
                    data_coding=seg.data_coding,
                    tlvs=dict(seg.tlvs),
                )
            )
    return out


def _reassemble(pdus, rnd: random.Random) -> bytes:
    """Feed the PDUs shuffled, with duplicates before the last part; exactly one
    completion must come out."""
    order = list(pdus)
    rnd.shuffle(order)
    head, last = order[:-1], order[-1]
    dups = rnd.sample(head, k=min(len(head), 3))
    feed = head + dups
    rnd.shuffle(feed)
    feed.append(last)
    r = Reassembler()
    results = []
    for pdu in feed:
        info = concat_info(pdu)
        if info is None:
            assert len(pdus) == 1
            results.append(getattr(pdu, "short_message", b"") or pdu.tlvs.get(Tag.MESSAGE_PAYLOAD, b""))
            continue
        whole = r.add(("src", "dst"), info, now=0.0)
        if whole is not None:
            results.append(whole)
    if len(pdus) == 1:
        return results[0]
    assert len(results) == 1
    assert r.pending == 0
    assert r.duplicates == len(dups)
    assert r.expire(1e9) == []
    return results[0]


def _check_split(text, dc, method, ref_bits, rnd, reference=0xABCD):
    segments = split_text(text, data_coding=dc, method=method, reference=reference, ref_bits=ref_bits)
    encoded = encode_text(text, dc)
    assert all(isinstance(s, Segment) and s.data_coding == dc for s in segments)
    if method == "payload":
        assert len(segments) == 1
        assert segments[0].short_message == b""
        assert segments[0].tlvs == {Tag.MESSAGE_PAYLOAD: encoded}
        assert concat_info(_pdus(segments, DataSm)[0]) is None
        return
    single_cap = {0: 160, 8: 140}.get(dc, 140)
    if len(encoded) <= single_cap:
        assert segments == [Segment(encoded, dc, 0, {})]
    else:
        assert len(segments) > 1
    total = len(segments)
    decoded_parts = []
    for seq, seg in enumerate(segments, 1):
        assert _air_fits(seg), seg
        assert len(seg.short_message) <= 254
        user = _user_data(seg)
        if total > 1:
            if method == "sar":
                assert seg.esm_class == 0
                assert seg.tlvs == {
                    Tag.SAR_MSG_REF_NUM: reference & 0xFFFF,
                    Tag.SAR_TOTAL_SEGMENTS: total,
                    Tag.SAR_SEGMENT_SEQNUM: seq,
                }
            else:
                assert seg.esm_class == 0x40 and seg.tlvs == {}
                if ref_bits == 8:
                    assert seg.short_message[:6] == bytes([5, 0, 3, reference & 0xFF, total, seq])
                else:
                    assert seg.short_message[:7] == bytes([6, 8, 4, 0xAB, 0xCD, total, seq])
        # No escape pair or surrogate pair is cut: every segment decodes on its own.
        if dc == 0:
            assert not user.endswith(b"\x1b")
        if dc == 8:
            assert len(user) % 2 == 0
            assert not (0xD8 <= user[-2] <= 0xDB) if user else True
        decoded_parts.append(decode_text(user, dc))
    assert "".join(decoded_parts) == text
    for cls in (SubmitSm, DeliverSm):
        whole = _reassemble(_pdus(segments, cls), rnd)
        assert whole == encoded
        assert join_segments([whole], dc) == text
    assert join_segments([_user_data(s) for s in segments], dc) == text


METHODS = [("udh", 8), ("udh", 16), ("sar", 8), ("payload", 8)]


@pytest.mark.parametrize("method,ref_bits", METHODS)
@given(text=gsm_text, rnd=st.randoms(use_true_random=False))
@FAST
def test_split_round_trip_gsm(method, ref_bits, text, rnd):
    _check_split(text, 0, method, ref_bits, rnd)


@pytest.mark.parametrize("method,ref_bits", METHODS)
@given(text=latin1_text, rnd=st.randoms(use_true_random=False))
@FAST
def test_split_round_trip_latin1(method, ref_bits, text, rnd):
    _check_split(text, 3, method, ref_bits, rnd)


@pytest.mark.parametrize("method,ref_bits", METHODS)
@given(text=ucs2_text, rnd=st.randoms(use_true_random=False))
@FAST
def test_split_round_trip_ucs2(method, ref_bits, text, rnd):
    _check_split(text, 8, method, ref_bits, rnd)


def test_split_capacities():
    assert len(split_text("a" * 160)) == 1
    assert [len(s.short_message) for s in split_text("a" * 161)] == [6 + 153, 6 + 8]
    assert [len(s.short_message) for s in split_text("a" * 161, ref_bits=16)] == [7 + 152, 7 + 9]
    assert len(split_text("€" * 80)) == 1
    # 81 euros = 162 septets; 153 would cut the 77th escape pair, so it moves whole.
    seg = split_text("€" * 81)
    assert [len(_user_data(s)) for s in seg] == [152, 10]
    assert len(split_text("é" * 140, data_coding=3)) == 1
    assert [len(_user_data(s)) for s in split_text("é" * 141, data_coding=3)] == [134, 7]
    assert [len(_user_data(s)) for s in split_text("é" * 141, data_coding=3, ref_bits=16)] == [133, 8]
    assert len(split_text("Ж" * 70)) == 1 and split_text("Ж")[0].data_coding == 8
    assert [len(_user_data(s)) for s in split_text("Ж" * 71)] == [134, 8]
    assert [len(_user_data(s)) for s in split_text("Ж" * 71, ref_bits=16)] == [132, 10]
    assert len(split_text("😀" * 35)) == 1  # 70 code units
    # 67 units would cut the 34th emoji in half: the segment takes 66.
    assert [len(_user_data(s)) for s in split_text("😀" * 36)] == [132, 12]
    sar = split_text("a" * 161, method="sar")
    assert [len(s.short_message) for s in sar] == [153, 8]
    assert split_text("", data_coding=0) == [Segment(b"", 0)]


def test_split_reference_masked_and_limits():
    seg = split_text("a" * 200, reference=0x1234)
    assert seg[0].short_message[3] == 0x34
    seg = split_text("a" * 200, reference=0x123456, ref_bits=16)
    assert seg[0].short_message[3:5] == b"\x34\x56"
    seg = split_text("a" * 200, reference=0x123456, method="sar")
    assert seg[0].tlvs[Tag.SAR_MSG_REF_NUM] == 0x3456
    assert len(split_text("a" * 153 * 255)) == 255
    with pytest.raises(ValueError):
        split_text("a" * (153 * 255 + 1))
    with pytest.raises(ValueError):
        split_text("a" * 200, method="smoke-signals")
    with pytest.raises(ValueError):
        split_text("a" * 200, ref_bits=12)
    with pytest.raises(ValueError):
        split_text("abc", data_coding=4)
    with pytest.raises(UnencodableText):
        split_text("😀", data_coding=0)


@given(st.binary(max_size=1000), st.sampled_from(METHODS), st.randoms(use_true_random=False))
@FAST
def test_split_binary_round_trip(data, method_bits, rnd):
    method, ref_bits = method_bits
    segments = split_binary(data, method=method, ref_bits=ref_bits, reference=7)
    if method == "payload":
        assert segments == [Segment(b"", 4, 0, {Tag.MESSAGE_PAYLOAD: data})]
        return
    for seg in segments:
        assert seg.data_coding == 4 and _air_fits(seg)
    assert _reassemble(_pdus(segments), rnd) == data


# --- UDH and concat_info ------------------------------------------------------------


def test_parse_udh():
    assert parse_udh(b"\x05\x00\x03\x2a\x02\x01hello") == ([(0, b"\x2a\x02\x01")], b"hello")
    elements, rest = parse_udh(b"\x0b\x05\x04\x0b\x84\x23\xf0\x00\x03\x01\x02\x01xyz")
    assert elements == [(5, b"\x0b\x84\x23\xf0"), (0, b"\x01\x02\x01")] and rest == b"xyz"
    assert parse_udh(b"\x00abc") == ([], b"abc")


@pytest.mark.parametrize(
    "bad",
    [
        b"",  # no UDHL
        b"\x05\x00\x03\x01",  # UDHL past the end
        b"\x01\x00",  # IE header cut
        b"\x03\x00\x03\x01",  # IE data past the UDH
        b"\x02\x00\x01\xff",  # IE length past the UDH
    ],
)
def test_parse_udh_errors(bad):
    with pytest.raises(ValueError):
        parse_udh(bad)


def test_concat_info():
    pdu = DeliverSm(esm_class=0x40, short_message=b"\x06\x08\x04\x12\x34\x03\x02abc")
    assert concat_info(pdu) == ConcatInfo(0x1234, 3, 2, 16, b"abc")
    sar = {Tag.SAR_MSG_REF_NUM: 9, Tag.SAR_TOTAL_SEGMENTS: 2, Tag.SAR_SEGMENT_SEQNUM: 1}
    pdu = SubmitSm(short_message=b"abc", tlvs=sar)
    assert concat_info(pdu) == ConcatInfo(9, 2, 1, 16, b"abc")
    # data_sm: the UDH sits in message_payload.
    pdu = DataSm(esm_class=0x40, tlvs={Tag.MESSAGE_PAYLOAD: b"\x05\x00\x03\x07\x02\x02xy"})
    assert concat_info(pdu) == ConcatInfo(7, 2, 2, 8, b"xy")
    # Not concatenated.
    assert concat_info(SubmitSm(short_message=b"hi")) is None
    assert concat_info(SubmitSm(esm_class=0x40, short_message=b"\x04\x05\x02\x0b\x84x")) is None
    # 23.040: total 0, seq 0 or seq > total -> ignore the element.
    for total, seq in ((0, 1), (2, 0), (2, 3)):
        pdu = SubmitSm(esm_class=0x40, short_message=bytes([5, 0, 3, 1, total, seq]) + b"x")
        assert concat_info(pdu) is None
    with pytest.raises(ValueError):
        concat_info(SubmitSm(esm_class=0x40, short_message=b"\x04\x00\x02\x01\x02"))
    with pytest.raises(ValueError):
        concat_info(SubmitSm(esm_class=0x40, short_message=b"\x09"))


# --- Reassembler --------------------------------------------------------------------


def _info(ref, total, seq, payload=b"x"):
    return ConcatInfo(ref, total, seq, 8, payload)


def test_reassembler_out_of_order_and_duplicates():
    r = Reassembler()
    assert r.add("k", _info(1, 3, 3, b"c"), 0.0) is None
    assert r.add("k", _info(1, 3, 1, b"a"), 1.0) is None
    assert r.add("k", _info(1, 3, 1, b"A"), 1.0) is None
    assert r.duplicates == 1
    # Same reference under another key is another message.
    assert r.add("other", _info(1, 3, 2, b"Z"), 1.0) is None
    assert r.pending == 2
    assert r.add("k", _info(1, 3, 2, b"b"), 2.0) == b"abc"
    assert r.pending == 1
    assert r.add("k", _info(9, 1, 1, b"solo"), 2.0) == b"solo"
    with pytest.raises(ValueError):
        r.add("k", _info(1, 3, 4), 2.0)


def test_reassembler_expire_reports_missing():
    r = Reassembler(timeout=60.0)
    r.add("k", _info(5, 4, 2), 0.0)
    r.add("k", _info(5, 4, 4), 30.0)
    r.add("j", _info(6, 2, 1), 10.0)
    assert r.expire(59.0) == []
    expired = r.expire(60.0)
    assert expired == [Incomplete("k", 5, 4, 8, [1, 3], "timeout")]
    assert r.pending == 1
    assert r.expire(100.0) == [Incomplete("j", 6, 2, 8, [2], "timeout")]
    assert r.pending == 0 and r.expire(1000.0) == []


def test_reassembler_evicts_oldest_and_reports_on_next_expire():
    r = Reassembler(max_pending=2)
    r.add("a", _info(1, 2, 1), 0.0)
    r.add("b", _info(2, 2, 1), 1.0)
    r.add("c", _info(3, 2, 2), 2.0)
    assert r.pending == 2 and r.evictions == 1
    assert r.expire(3.0) == [Incomplete("a", 1, 2, 8, [2], "evicted")]
    assert r.add("b", _info(2, 2, 2), 3.0) == b"xx"


def test_reassembler_bounds_bytes():
    r = Reassembler(max_bytes=100)
    r.add("a", _info(1, 2, 1, b"x" * 60), 0.0)
    r.add("b", _info(2, 2, 1, b"y" * 60), 1.0)
    assert r.pending == 1
    assert [i.key for i in r.expire(1.0)] == ["a"]
    assert r.add("b", _info(2, 2, 2, b"z"), 1.0) == b"y" * 60 + b"z"
