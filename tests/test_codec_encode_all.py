"""codec.encode_all writes what encode() writes, one PDU after another, errors included.

A hub answers every submit it stored with a submit_sm_resp, a run of them per group
commit (Session.send_responses): encode_all writes a response of a message_id alone
inline instead of calling encode() for each. Checked here against ``encode`` over
generated PDUs of every type and over hostile message ids (too long, a NUL, not
latin-1, not a str, numbers past 32 bits), where both must raise the same EncodeError.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smppcore import DataSmResp, DeliverSmResp, EncodeError, SubmitSm, SubmitSmResp, encode
from smppcore.codec import _MESSAGE_ID_ONLY, encode_all
from smppcore.pdus import Pdu
from smppcore.session import Role, Session
from tests.strategies import pdus

ID_RESPONSES = [SubmitSmResp, DataSmResp, DeliverSmResp]


def outcome(make: Any) -> bytes | list[bytes] | str:
    """What a call gives, or the message of the EncodeError it raises."""
    try:
        result: bytes | list[bytes] = make()
        return result
    except EncodeError as exc:
        return f"EncodeError: {exc}"


def test_the_shortcut_covers_the_responses_of_a_message_id_alone() -> None:
    assert set(_MESSAGE_ID_ONLY) == set(ID_RESPONSES)


message_ids = st.one_of(
    st.text(max_size=70),
    st.text(st.characters(max_codepoint=255), max_size=70),
    st.sampled_from(["", "\0", "a\0b", "x" * 64, "x" * 65, "\u20ac", 7, None, b"bytes"]),
)
numbers = st.one_of(st.integers(0, 0xFFFFFFFF), st.sampled_from([-1, 1 << 32, 0, 0xFFFFFFFF]))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ID_RESPONSES), message_ids, numbers, numbers, st.sampled_from([{}, {0x1400: b"x"}]))
def test_a_message_id_response_is_written_as_encode_writes_it(
    cls: type[Pdu], message_id: Any, seq: int, status: int, tlvs: dict[int, bytes]
) -> None:
    pdu = cls(seq, status, dict(tlvs), message_id)
    expected = outcome(lambda: [encode(pdu)])
    assert outcome(lambda: encode_all([pdu])) == expected


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(pdus(), max_size=8))
def test_a_run_of_any_pdus_is_written_as_encode_writes_each(run: list[Pdu]) -> None:
    assert encode_all(run) == [encode(pdu) for pdu in run]


def test_send_responses_queues_what_encode_writes() -> None:
    answers = [SubmitSmResp(sequence_number=i + 1, message_id=f"{i:016x}") for i in range(5)]
    answers.append(DataSmResp(sequence_number=9, command_status=0x45))
    session = Session(Role.SMSC)
    session.send_responses(answers)
    assert session.data_to_send() == b"".join(encode(pdu) for pdu in answers)


def test_a_bad_answer_in_a_run_raises_before_anything_is_queued() -> None:
    session = Session(Role.SMSC)
    with pytest.raises(EncodeError, match="message_id"):
        session.send_responses([SubmitSmResp(sequence_number=1, message_id="ok"),
                                SubmitSmResp(sequence_number=2, message_id="x" * 65)])
    assert session.data_to_send() == b""


def test_a_request_goes_through_encode() -> None:
    pdu = SubmitSm(sequence_number=3, destination_addr="447700900123", short_message=b"hi")
    assert encode_all([pdu]) == [encode(pdu)]
