"""The receipt leg's shortcuts, each pinned to the general code it stands for.

- smppcore's Client: a run whose results are all one Future (a hub's receipts of one durable
  save) joins that Future's list at once instead of request by request; the bytes on the wire
  are those of one request at a time, over one read or several joining the same Future.
- ``decode_tlvs``: one table says how a tag is read, and a C-Octet String is cut at its
  terminator without a search; it decodes (and refuses) every stream as the two look-ups and
  the search it replaces did (:func:`_decode_tlvs_before`, kept here as the reference). A
  receipt's receipted_message_id and message_state are read at their places: as the loop
  (``_decode_each``) reads them, and near misses of that shape go to the loop.
- The hub's ``ReceiptInFlight`` is a Struct compared by identity, as the class it replaces.
- ``HubStats.final`` counts in plain dicts: the same totals as the Counters it replaces.
"""

from __future__ import annotations

import asyncio
import collections
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_client_answers import bound_client

from smppcore import CommandStatus, DeliverSm, encode
from smppcore.errors import PduError
from smppcore.tlv import TLV_KINDS, _decode_each, decode_tlvs, tlv_name
from smpphub.router.delivery import ReceiptInFlight
from smpphub.router.lifecycle import MessageRow, State
from smpphub.router.stats import HubStats

# --- the Client: a run on one Future -----------------------------------------------------------------


async def _wire(reads: list[int], runs: bool, status: int) -> bytes:
    """The responses to ``reads`` (so many deliver_sm a read), every one answered by one Future."""
    loop = asyncio.get_running_loop()
    shared: asyncio.Future[int] = loop.create_future()
    client, wire = await bound_client(lambda pdu: shared)
    if runs:
        client.on_messages = lambda pdus: [shared] * len(pdus)
    seq = 0
    for count in reads:
        client.data_received(b"".join(encode(DeliverSm(sequence_number=seq + i)) for i in range(1, count + 1)))
        seq += count
    before = wire.data
    shared.set_result(status)
    for _ in range(3):
        await asyncio.sleep(0)
    client.connection_lost(None)
    return before + b"|" + wire.data[len(before):]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=1, max_size=3), st.sampled_from([0, CommandStatus.ESME_RX_T_APPN]))
async def test_a_run_on_one_future_is_answered_as_one_request_at_a_time(reads: list[int], status: int) -> None:
    """Nothing before the Future completes, then every request answered in order, as one at a time."""
    ran = await _wire(reads, runs=True, status=status)
    assert ran == await _wire(reads, runs=False, status=status)
    assert ran.startswith(b"|") and len(ran) == 1 + (16 if status else 17) * sum(reads)  # deliver_sm_resp


async def test_a_run_on_one_future_then_a_run_of_mixed_results_keeps_the_order() -> None:
    """The second run's requests on the same Future queue behind the first run's."""
    loop = asyncio.get_running_loop()
    shared: asyncio.Future[int] = loop.create_future()
    results: dict[int, Any] = {1: shared, 2: shared, 3: 0x45, 4: shared}
    client, wire = await bound_client(lambda pdu: results[pdu.sequence_number])
    client.on_messages = lambda pdus: [results[pdu.sequence_number] for pdu in pdus]
    client.data_received(encode(DeliverSm(sequence_number=1)) + encode(DeliverSm(sequence_number=2)))
    client.data_received(encode(DeliverSm(sequence_number=3)) + encode(DeliverSm(sequence_number=4)))
    assert [(status, seq) for _, status, seq in wire.responses()] == [(0x45, 3)]
    shared.set_result(0)
    for _ in range(3):
        await asyncio.sleep(0)
    assert [(status, seq) for _, status, seq in wire.responses()] == [(0, 1), (0, 2), (0, 4)]
    client.connection_lost(None)


# --- decode_tlvs against the code it replaced ----------------------------------------------------------

_TL = struct.Struct(">HH")
_INT_TAGS = {t: k.size for t, k in TLV_KINDS.items() if k.kind == "int"}
_CSTR_TAGS = {t for t, k in TLV_KINDS.items() if k.kind == "cstr"}


def _decode_tlvs_before(buf: bytes, pos: int, end: int, seq: int, command_id: int) -> dict[int, Any]:
    """decode_tlvs as it was before its one table (the reference; a repeated tag's values gathered
    at the end)."""
    pairs: list[tuple[int, Any]] = []
    while pos < end:
        if end - pos < 4:
            raise PduError(CommandStatus.ESME_RINVOPTPARSTREAM, seq, command_id, "header")
        tag, length = _TL.unpack_from(buf, pos)
        pos += 4
        vend = pos + length
        if vend > end:
            raise PduError(CommandStatus.ESME_RINVPARLEN, seq, command_id, f"{tlv_name(tag)} past the PDU")
        size = _INT_TAGS.get(tag)
        value: Any
        if size is not None:
            if length != size:
                raise PduError(CommandStatus.ESME_RINVPARLEN, seq, command_id, f"{tlv_name(tag)} size")
            value = buf[pos] if size == 1 else int.from_bytes(buf[pos:vend], "big")
        elif tag in _CSTR_TAGS:
            nul = buf.find(0, pos, vend)
            value = buf[pos:vend if nul < 0 else nul].decode("latin-1")
        else:
            value = buf[pos:vend]
        pairs.append((tag, value))
        pos = vend
    values: dict[int, list[Any]] = {}
    for tag, value in pairs:
        values.setdefault(tag, []).append(value)
    return {tag: kept[0] if len(kept) == 1 else kept for tag, kept in values.items()}


#: tags of every kind: Integers of each size, C-Octet Strings, Octet Strings, unknown ones
_TAGS = st.sampled_from(sorted({0x0005, 0x0204, 0x0017, 0x001E, 0x001D, 0x0427, 0x0423, 0x0424, 0x0202, 0x1400,
                                0xFFFF} | _CSTR_TAGS))
_VALUES = st.one_of(
    st.binary(max_size=12),
    st.builds(lambda text, nul: text + (b"\0" if nul else b""), st.binary(max_size=10).filter(lambda b: 0 not in b),
              st.booleans()),
)


def _tlv(tag: int, value: bytes, length_off: int) -> bytes:
    return _TL.pack(tag, max(0, len(value) + length_off)) + value


_STREAMS = st.one_of(
    st.lists(st.builds(_tlv, _TAGS, _VALUES, st.sampled_from([0, 0, 0, -1, 1]))).map(b"".join),
    st.lists(st.builds(_tlv, _TAGS, _VALUES, st.just(0)), min_size=1).map(b"".join).flatmap(
        lambda stream: st.builds(lambda cut: stream[:cut], st.integers(0, len(stream)))),
    st.binary(max_size=40),
)


def _outcome(decoder: Any, buf: bytes, pos: int) -> tuple[str, Any]:
    try:
        return "ok", decoder(buf, pos, len(buf), 7, 5)
    except PduError as exc:
        return "refused", exc.command_status


@settings(max_examples=400, deadline=None)
@given(_STREAMS, st.binary(max_size=3))
def test_decode_tlvs_reads_every_stream_as_before(stream: bytes, before: bytes) -> None:
    """Same values, same order, same repeated tags as lists, same refusal status; at any offset."""
    buf = before + stream
    assert _outcome(decode_tlvs, buf, len(before)) == _outcome(_decode_tlvs_before, buf, len(before))


#: a receipt's two parameters and near misses of them: ids with or without their NUL, NULs inside,
#: lengths off, the state of one or two octets or another tag, octets after, the two the other way round
_RECEIPT_SHAPES = st.builds(
    lambda mid, mid_off, state_tag, state, extra, swap: (
        (_tlv(state_tag, state, 0) + _tlv(0x001E, mid, mid_off)) if swap
        else (_tlv(0x001E, mid, mid_off) + _tlv(state_tag, state, 0))) + extra,
    st.one_of(st.binary(max_size=12), st.binary(max_size=10).map(lambda b: b + b"\0"),
              st.tuples(st.binary(max_size=5), st.binary(max_size=5)).map(lambda ab: ab[0] + b"\0" + ab[1] + b"\0")),
    st.sampled_from([0, 0, 0, 0, -1, 1]),
    st.sampled_from([0x0427, 0x0427, 0x0427, 0x0423, 0x001E]),
    st.sampled_from([b"\x02", b"\x02", b"\x00", b"\xff", b"", b"\x00\x02"]),
    st.sampled_from([b"", b"", b"", b"\x00", b"\x04\x27\x00\x01\x02"]),
    st.sampled_from([False, False, False, True]),
)


@settings(max_examples=400, deadline=None)
@given(_RECEIPT_SHAPES, st.binary(max_size=3), st.binary(max_size=3))
def test_a_receipts_parameters_are_read_as_the_loop_reads_them(stream: bytes, before: bytes, after: bytes) -> None:
    """At any offset, with other octets after the stream's end: what the loop gives or refuses."""
    buf = before + stream + after
    end = len(before) + len(stream)

    def outcome(decoder: Any) -> tuple[str, Any]:
        try:
            return "ok", decoder(buf, len(before), end, 7, 5)
        except PduError as exc:
            return "refused", exc.command_status

    assert outcome(decode_tlvs) == outcome(_decode_each)


def test_a_receipts_parameters_are_read_at_their_places() -> None:
    stream = _tlv(0x001E, b"abc123\0", 0) + _tlv(0x0427, b"\x02", 0)
    assert decode_tlvs(stream, 0, len(stream), 1, 5) == {0x001E: "abc123", 0x0427: 2}


def test_decode_tlvs_cuts_a_c_string_at_its_first_nul() -> None:
    cases = {b"abc\0": "abc", b"abc": "abc", b"ab\0c\0": "ab", b"\0abc": "", b"": "", b"\0": "", b"a\0\0": "a"}
    for raw, text in cases.items():
        stream = _tlv(0x001E, raw, 0)
        assert decode_tlvs(stream, 0, len(stream), 1, 5) == {0x001E: text}, raw


# --- the hub's objects ---------------------------------------------------------------------------------


def _row(n: int) -> MessageRow:
    return MessageRow(id=f"m{n}", account="esme", pdu=b"", route=["u"], state=State.DELIVERED)


def test_a_receipt_in_flight_is_itself_alone() -> None:
    """Compared by identity, as the class it replaces: two made alike are two receipts."""
    row, pdu = _row(1), DeliverSm()
    one, two = ReceiptInFlight(row, pdu), ReceiptInFlight(row, pdu)
    assert one.attempts == 0 and one.row is row and one.pdu is pdu
    assert one == one and one != two and [one].count(two) == 0
    one.attempts += 1
    assert one.attempts == 1


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["delivered", "expired", "rejected"]))))
def test_final_counts_as_counters_did(finals: list[tuple[str, str]]) -> None:
    stats = HubStats()
    counters: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for account, state in finals:
        stats.final(account, state)
        counters[account][state] += 1
    assert stats.finals == {account: dict(counts) for account, counts in counters.items()}
    total = collections.Counter(state for _, state in finals)
    assert {k: v for k, v in stats.totals().items() if k in total} == dict(total)
