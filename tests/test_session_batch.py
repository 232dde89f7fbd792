"""Session.send_requests and SmppConnection.send_callbacks: a batch of requests queued as one
(the hub's upstream pump sends a turn of messages so) leaves the session exactly as the same
requests sent one by one with send_request would: the same bytes, the same window, the same
sequence numbers; and a batch the session refuses changes nothing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transportkit import RecordingTransport

from smppcore import DataSm, EnquireLink, Pdu, SubmitSm, SubmitSmResp, Unbind, encode
from smppcore.connection import EARLY_FLUSH, ConnectionClosed, SmppConnection
from smppcore.session import InvalidState, Role, Session, SessionConfig, State, WindowFull

NOW = 1000.0


def bound_session(window: int = 100, response_timeout: float = 30.0) -> Session:
    session = Session(Role.ESME, SessionConfig(window=window, response_timeout=response_timeout), clock=lambda: NOW)
    session.state = State.BOUND_TRX
    return session


def requests(texts: list[bytes], data_sm: list[bool]) -> list[SubmitSm | DataSm]:
    return [DataSm(destination_addr="4477", sequence_number=9) if use_data else
            SubmitSm(destination_addr="447700900123", short_message=text, sequence_number=9)
            for text, use_data in zip(texts, data_sm, strict=True)]


batches = st.integers(min_value=0, max_value=20).flatmap(lambda n: st.tuples(
    st.lists(st.binary(max_size=20), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n),
    st.sampled_from([0.0, 5.0]),
))


@settings(max_examples=60, deadline=None)
@given(batches)
def test_a_batch_leaves_the_session_as_one_send_request_each_would(batch: tuple) -> None:
    texts, data_sm, given_bytes, timeout = batch
    one_by_one, batched = bound_session(response_timeout=timeout), bound_session(response_timeout=timeout)
    one_by_one.send_request(EnquireLink())  # both a request in flight already
    batched.send_request(EnquireLink())
    singles, many = requests(texts, data_sm), requests(texts, data_sm)
    wire = [encode(pdu) if use else None for pdu, use in zip(singles, given_bytes, strict=True)]
    contexts = [object() for _ in texts]
    for pdu, context, data in zip(singles, contexts, wire, strict=True):
        one_by_one.send_request(pdu, context, data)
    batched.send_requests(many, contexts, wire)
    assert batched.data_to_send() == one_by_one.data_to_send()
    assert [p.sequence_number for p in many] == [p.sequence_number for p in singles]
    expected = [(e.request.sequence_number, e.context, e.deadline) for e in one_by_one.window]
    assert [(e.request.sequence_number, e.context, e.deadline) for e in batched.window] == expected
    assert batched.next_sequence_number() == one_by_one.next_sequence_number()


REFUSED = {
    "window too small for all": (lambda: bound_session(window=3), 4, WindowFull),
    "not bound": (lambda: Session(Role.ESME, SessionConfig(), clock=lambda: NOW), 1, InvalidState),
}


@pytest.mark.parametrize(("make", "count", "error"), REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_batch_queues_nothing(make, count: int, error: type[Exception]) -> None:
    session = make()
    with pytest.raises(error):
        session.send_requests(requests([b"x"] * count, [False] * count), [None] * count, [None] * count)
    assert session.data_to_send() == b"" and len(session.window) == 0


@pytest.mark.parametrize("special", [EnquireLink(), Unbind()], ids=["enquire_link", "unbind"])
def test_requests_with_bookkeeping_of_their_own_go_through_send_request(special: Pdu) -> None:
    session = bound_session()
    with pytest.raises(ValueError, match="send_request"):
        session.send_requests([SubmitSm(destination_addr="1"), special], [None, None], [None, None])
    assert session.data_to_send() == b"" and len(session.window) == 0


async def test_send_callbacks_answers_each_callback_and_writes_a_full_batch_at_once() -> None:
    conn = SmppConnection(SessionConfig(window=100))
    transport = RecordingTransport()
    conn.connection_made(transport)
    conn.session.state = State.BOUND_TRX
    answers: list[tuple[int, str]] = []

    def answered(n: int):
        return lambda response, error: answers.append((n, response.message_id))

    pdus = requests([b"m%d" % n for n in range(EARLY_FLUSH)], [False] * EARLY_FLUSH)
    conn.send_callbacks(pdus, [answered(n) for n in range(EARLY_FLUSH)], [None] * EARLY_FLUSH)
    assert transport.writes == [b"".join(encode(pdu) for pdu in pdus)]  # a full batch goes at once
    resps = [SubmitSmResp(sequence_number=pdu.sequence_number, message_id=f"up{n}") for n, pdu in enumerate(pdus)]
    conn.data_received(b"".join(encode(r) for r in reversed(resps)))
    assert answers == [(n, f"up{n}") for n in reversed(range(EARLY_FLUSH))]
    conn.connection_lost(None)
    with pytest.raises(ConnectionClosed):
        conn.send_callbacks(pdus[:1], [answered(0)], [None])
