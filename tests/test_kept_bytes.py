"""A submit's own bytes stand for encoding it again, and only where they are what encode() writes.

The hub keeps every submit_sm it accepts as bytes (the message row's ``pdu``); the
Framer hands it the bytes the PDU came in (:meth:`Framer.bytes_of`) instead of the hub
encoding the decoded PDU again. Checked here: the bytes handed over are exactly
``encode(pdu)`` with sequence_number and command_status 0, over generated submit_sm and
data_sm (optional parameters included) and over bytes no encoder of ours wrote (a
repeated tag, a C-string parameter without its NUL or with octets after it, a non-zero
status); a PDU that is not kept, changed, or from an earlier chunk gets None; and the
hub stores what it stored before, whichever way the bytes came.
"""

from __future__ import annotations

import struct

import msgspec
import oracles
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smppcore import Pdu, SubmitSm, encode
from smppcore.codec import Framer
from smppcore.pdus import DataSm, DeliverSm, EnquireLink
from smppcore.session import Role, Session
from smppcore.session import State as SessionState
from smpphub.router.config import Account, HubConfig, Route, Upstream
from smpphub.router.delivery import Deliveries
from smpphub.router.dispatch import Dispatcher
from smpphub.router.esme import EsmeHandler
from smpphub.router.msglog import MessageLog
from smpphub.router.routing import RouteTable
from smpphub.router.store.memory import MemoryStore
from smpphub.router.upstream import Outgoing
from tests.strategies import pdus
from tests.test_golden import CASES, COMMANDS, node_spec, smpplib_kwargs

HEADER = struct.Struct(">IIII")
KEPT = (SubmitSm, DataSm)


def stored_form(pdu: Pdu) -> bytes:
    """What the hub stored before: the PDU encoded again, sequence_number and status 0."""
    return encode(msgspec.structs.replace(pdu, sequence_number=0, command_status=0))


def keeping_framer() -> Framer:
    framer = Framer()
    framer.keep_bytes(*KEPT)
    return framer


def with_tlv_bytes(pdu: Pdu, raw: bytes) -> bytes:
    """``pdu``'s bytes with ``raw`` appended to its optional parameters, command_length fixed."""
    data = encode(pdu) + raw
    return HEADER.pack(len(data), *HEADER.unpack_from(data)[1:]) + data[16:]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(pdus(SubmitSm), pdus(DataSm), pdus(DeliverSm)), min_size=1, max_size=4),
       st.integers(1, 64))
def test_the_bytes_handed_over_are_what_encode_writes(sent: list[Pdu], step: int) -> None:
    stream = b"".join(encode(p) for p in sent)
    framer = keeping_framer()
    got: list[Pdu] = []
    for i in range(0, len(stream), step):  # any cut of the stream: PDUs split across chunks too
        for pdu in framer.feed(stream[i:i + step]):
            assert isinstance(pdu, Pdu)
            got.append(pdu)
            wire = framer.bytes_of(pdu)
            if isinstance(pdu, KEPT) and not pdu.tlvs:
                assert wire == stored_form(pdu)
            else:  # optional parameters, or a type not kept: the caller encodes
                assert wire is None
    assert got == sent


ODD_TLVS = {
    # the same tag twice, apart: decoded as a list, encoded together
    "repeated tag": struct.pack(">HHB", 0x0005, 1, 3) + struct.pack(">HHH", 0x020C, 2, 7)
    + struct.pack(">HHB", 0x0005, 1, 4),
    # receipted_message_id without its NUL: decoded tolerantly, encoded with it
    "C-string without NUL": struct.pack(">HH", 0x001E, 3) + b"abc",
    # octets after the C-string's NUL: dropped by the decoder
    "octets after the NUL": struct.pack(">HH", 0x001E, 5) + b"ab\0cd",
    "an unknown tag": struct.pack(">HH", 0x1400, 2) + b"\xff\x00",
}


@pytest.mark.parametrize("raw", ODD_TLVS.values(), ids=ODD_TLVS.keys())
def test_odd_but_valid_optional_parameters_are_encoded_again(raw: bytes) -> None:
    data = with_tlv_bytes(SubmitSm(destination_addr="447700900123", short_message=b"hi", sequence_number=9), raw)
    framer = keeping_framer()
    [pdu] = framer.feed(data)
    assert isinstance(pdu, SubmitSm) and pdu.tlvs
    assert framer.bytes_of(pdu) is None


def test_a_submit_with_a_status_is_kept_with_status_zero() -> None:
    """A request carries no status; one that does is stored without it, as the hub stored it before."""
    sent = SubmitSm(destination_addr="447700900123", short_message=b"hi", sequence_number=5, command_status=0x45)
    framer = keeping_framer()
    [pdu] = framer.feed(encode(sent))
    assert framer.bytes_of(pdu) == stored_form(sent) == encode(SubmitSm(destination_addr="447700900123",
                                                                          short_message=b"hi"))


def test_only_the_last_chunks_own_pdus_are_found() -> None:
    framer = keeping_framer()
    one = SubmitSm(destination_addr="447700900123", short_message=b"one", sequence_number=1)
    [first] = framer.feed(encode(one))
    assert framer.bytes_of(first) is not None
    assert framer.bytes_of(msgspec.structs.replace(first)) is None  # an equal PDU is not the one decoded
    assert framer.bytes_of(one) is None  # nor is the one it was encoded from
    [second] = framer.feed(encode(msgspec.structs.replace(one, sequence_number=2)))
    assert framer.bytes_of(first) is None  # a PDU of an earlier chunk (held behind a bind, say): encoded
    assert framer.bytes_of(second) is not None
    assert framer.feed(b"") == [] and framer.bytes_of(second) is None


def test_a_framer_keeps_nothing_unless_asked_and_only_the_types_asked() -> None:
    plain = Framer()
    [pdu] = plain.feed(encode(SubmitSm(destination_addr="447700900123")))
    assert plain.bytes_of(pdu) is None
    framer = Framer()
    framer.keep_bytes(DataSm)
    submit, data_sm, link = framer.feed(encode(SubmitSm()) + encode(DataSm()) + encode(EnquireLink()))
    assert framer.bytes_of(submit) is None and framer.bytes_of(link) is None
    assert framer.bytes_of(data_sm) == stored_form(data_sm)


@given(st.lists(st.sampled_from(["submit", "data_sm", "tlv", "link"]), max_size=8))
def test_the_bytes_of_a_run_are_the_bytes_of_each(kinds: list[str]) -> None:
    """Framer.bytes_of_all (the hub asks it once a read) gives what bytes_of gives each PDU, kept or not,
    a PDU of the chunk before and one never decoded included."""
    made = {"submit": SubmitSm(destination_addr="447700900123", short_message=b"x"),
            "data_sm": DataSm(destination_addr="447700900124"),
            "tlv": SubmitSm(destination_addr="447700900125", tlvs={0x0204: 7}),
            "link": EnquireLink()}
    framer = keeping_framer()
    [earlier] = framer.feed(encode(made["submit"]))
    decoded = framer.feed(b"".join(encode(made[kind]) for kind in kinds))
    run = [*decoded, earlier, made["submit"]]
    assert framer.bytes_of_all(run) == [framer.bytes_of(pdu) for pdu in run]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(pdus(SubmitSm), st.binary(max_size=12), st.integers(16, 200))
def test_hostile_bytes_never_hand_over_bytes_unlike_the_encoding(sent: SubmitSm, junk: bytes, cut: int) -> None:
    """A submit_sm's bytes with octets spliced into its body: whatever still decodes is
    either not kept or kept exactly as encode() writes it; what does not decode is an error."""
    data = encode(sent)
    cut = min(cut, len(data))
    body = data[16:cut] + junk + data[cut:]
    framer = keeping_framer()
    for item in framer.feed(HEADER.pack(16 + len(body), *HEADER.unpack_from(data)[1:]) + body):
        if isinstance(item, Pdu):
            wire = framer.bytes_of(item)
            assert wire is None or wire == stored_form(item)


def test_the_bytes_of_peers_are_kept_exactly_as_encode_writes_them() -> None:
    """submit_sm and data_sm written by node-smpp and smpplib (the golden cases): kept when they have
    no optional parameters, and then byte for byte what our encoder writes for what they decode to."""
    cases = [c for c in CASES if isinstance(c.pdu, KEPT)]
    stream = oracles.node_encode([node_spec(c.pdu) for c in cases if c.node]) + [
        oracles.smpplib_encode(COMMANDS[type(c.pdu)], c.pdu.sequence_number, c.pdu.command_status,
                               **smpplib_kwargs(c.pdu))
        for c in cases if c.smpplib
    ]
    framer = keeping_framer()
    kept = 0
    for data in stream:
        [pdu] = framer.feed(data)
        assert isinstance(pdu, KEPT)
        wire = framer.bytes_of(pdu)
        assert wire == (None if pdu.tlvs else stored_form(pdu))
        if wire is not None:
            assert wire[16:] == data[16:]  # the peer's own body
            kept += 1
    assert kept == 8  # four cases without optional parameters, from each peer


# --- the hub: the row keeps what it kept before ------------------------------------------------


class CapturingAcceptor:
    """What EsmeHandler hands to Acceptor.accept / accept_run, kept (the handler reads only these three attributes)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.msglog = MessageLog.off()
        self.messages: list[Outgoing] = []

    def accept(self, conn: object, request: Pdu, response: Pdu, messages: list[Outgoing]) -> None:
        self.messages += messages

    def accept_run(self, conn: object, requests: list[Pdu], responses: list[Pdu], messages: list[Outgoing]) -> None:
        self.messages += messages


class NoReceivers:
    def receivers(self, account: str) -> list[object]:
        return []


class Conn:
    """An ESME's connection as the handler sees it: its account and its session."""

    system_id = "acme"

    def __init__(self) -> None:
        self.session = Session(Role.SMSC)
        self.session.state = SessionState.BOUND_TX


#: one account, every destination starting 44 to one upstream
CONFIG = HubConfig(upstreams=[Upstream(name="u", host="127.0.0.1", port=1, system_id="hub")],
                   accounts=[Account(system_id="acme", password="pw")], routes=[Route(prefix="44", upstreams=["u"])])


def hub() -> tuple[EsmeHandler, CapturingAcceptor]:
    store = MemoryStore()
    acceptor = CapturingAcceptor(Dispatcher(CONFIG, store, Deliveries(store, NoReceivers())))
    return EsmeHandler(CONFIG, store, acceptor, RouteTable.build(CONFIG), binds=None), acceptor  # type: ignore[arg-type]


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(pdus(SubmitSm), pdus(DataSm)), min_size=1, max_size=5))
def test_the_hub_stores_each_submit_as_it_did_encoding_it_again(sent: list[Pdu]) -> None:
    sent = [msgspec.structs.replace(p, destination_addr="44" + p.destination_addr[:18], esm_class=0,  # type: ignore[attr-defined]
                                    schedule_delivery_time="", validity_period="")
            if isinstance(p, SubmitSm) else msgspec.structs.replace(p, destination_addr="44", esm_class=0)
            for p in sent]
    handler, acceptor = hub()
    conn = Conn()
    handler.connected(conn)  # type: ignore[arg-type]
    taken = []
    decoded = conn.session.receive_data(b"".join(encode(p) for p in sent))
    for pdu in decoded:
        assert isinstance(pdu, (SubmitSm, DataSm))
        taken.append(conn.session.framer.bytes_of(pdu))
        assert handler.handle(conn, pdu) is None  # type: ignore[arg-type]
    assert [out.row.pdu for out in acceptor.messages] == [stored_form(p) for p in sent]
    for out, wire, pdu in zip(acceptor.messages, taken, decoded, strict=True):
        # the message goes on as the submit itself (its numbers the ESME's until an upstream's
        # session numbers it): what is stored, and written, has sequence_number and status 0
        assert out.pdu is pdu
        if wire is not None:
            assert out.row.pdu is wire  # the submit's own bytes, not encoded again
    assert any(w is not None for w in taken) or all(p.tlvs for p in sent)
