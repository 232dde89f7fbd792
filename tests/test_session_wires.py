"""A request sent with its stored bytes goes out as encode() writes it with its new sequence number.

The hub sends every message with the bytes it stored (``encoded``): the session patches
the sequence number it hands out into a copy of them (Session._wires) instead of
encoding the PDU again. Checked here against ``encode`` of the PDU as sent, over
generated submit_sm / data_sm and sequence numbers, one at a time and in batches; and
what the session hands the transport is always ``bytes``.
"""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from smppcore import DataSm, Pdu, SubmitSm, encode
from smppcore.session import Role, Session, SessionConfig, State
from tests.strategies import pdus

NOW = 1000.0


def bound_session(first_seq: int) -> Session:
    session = Session(Role.ESME, SessionConfig(window=100), clock=lambda: NOW)
    session.state = State.BOUND_TRX
    for _ in range(first_seq - 1):  # the numbers before it taken
        session.next_sequence_number()
    return session


def stored(pdu: Pdu, seq: int, status: int) -> bytes:
    """The bytes a hub stored for ``pdu``: any sequence number (and the status it stored)."""
    return encode(msgspec.structs.replace(pdu, sequence_number=seq, command_status=status))


submits = st.one_of(pdus(SubmitSm), pdus(DataSm))


@settings(max_examples=120, deadline=None)
@given(submits, st.integers(1, 300), st.integers(0, 0xFFFFFFFF))
def test_one_request_goes_out_as_encode_writes_it_with_its_number(pdu: Pdu, first: int, old_seq: int) -> None:
    session = bound_session(first)
    data = stored(pdu, old_seq, 0)
    sent = session.send_request(msgspec.structs.replace(pdu), None, data)
    assert sent.sequence_number == first
    out = session.data_to_send()
    assert type(out) is bytes
    assert out == encode(msgspec.structs.replace(pdu, sequence_number=first, command_status=0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(submits, st.booleans(), st.integers(0, 0xFFFFFFFF)), max_size=12), st.integers(1, 300))
def test_a_batch_goes_out_as_encode_writes_each_with_its_number(
    batch: list[tuple[Pdu, bool, int]], first: int
) -> None:
    session = bound_session(first)
    sent = [msgspec.structs.replace(pdu) for pdu, _, _ in batch]
    wire = [stored(pdu, old_seq, 0) if use else None for pdu, use, old_seq in batch]
    session.send_requests(sent, [None] * len(sent), wire)
    assert [pdu.sequence_number for pdu in sent] == list(range(first, first + len(sent)))
    out = session.data_to_send()
    assert type(out) is bytes
    expected = b"".join(
        encode(msgspec.structs.replace(pdu, sequence_number=first + i, command_status=0 if use else pdu.command_status))
        for i, (pdu, use, _) in enumerate(batch)
    )
    assert out == expected
