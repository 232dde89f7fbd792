"""The sans-IO session: the state table, the window, timers from a fake clock."""

from __future__ import annotations

import pytest

from smppcore import (
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    CommandStatus,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    decode,
    encode,
)
from smppcore import pdus as P
from smppcore.codec import Framer
from smppcore.session import (
    Bound,
    Closing,
    ConnectionLost,
    InvalidState,
    Outbound,
    ProtocolError,
    RequestRejected,
    RequestTimeout,
    Response,
    Role,
    Session,
    SessionConfig,
    State,
    Unbound,
    UnexpectedResponse,
    WindowFull,
)
from smppcore.window import SequenceNumbers, Window


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sent(session: Session) -> list:
    return Framer().feed(session.data_to_send())


# --- the state table -------------------------------------------------------------------
# What happens when a side RECEIVES each request in each state:
#   "app"     handed to the application as an event
#   "auto"    answered by the session itself (enquire_link, unbind)
#   "outbind" an Outbound event
#   a status  answered by the session with that error
INV = CommandStatus.ESME_RINVBNDSTS
ALY = CommandStatus.ESME_RALYBND

REQUESTS = {
    "bind_tx": BindTransmitter,
    "bind_rx": BindReceiver,
    "bind_trx": BindTransceiver,
    "submit_sm": SubmitSm,
    "submit_multi": P.SubmitMulti,
    "data_sm": P.DataSm,
    "query_sm": P.QuerySm,
    "cancel_sm": P.CancelSm,
    "replace_sm": P.ReplaceSm,
    "deliver_sm": DeliverSm,
    "alert_notification": P.AlertNotification,
    "outbind": P.Outbind,
    "enquire_link": EnquireLink,
    "unbind": Unbind,
}

#                         OPEN       BOUND_TX   BOUND_RX   BOUND_TRX  UNBOUND
SMSC_RECEIVES = {
    "bind_tx":            ("app",    ALY,       ALY,       ALY,       INV),
    "bind_rx":            ("app",    ALY,       ALY,       ALY,       INV),
    "bind_trx":           ("app",    ALY,       ALY,       ALY,       INV),
    "submit_sm":          (INV,      "app",     INV,       "app",     INV),
    "submit_multi":       (INV,      "app",     INV,       "app",     INV),
    "data_sm":            (INV,      "app",     INV,       "app",     INV),
    "query_sm":           (INV,      "app",     INV,       "app",     INV),
    "cancel_sm":          (INV,      "app",     INV,       "app",     INV),
    "replace_sm":         (INV,      "app",     INV,       "app",     INV),
    "deliver_sm":         (INV,      INV,       INV,       INV,       INV),
    "alert_notification": (INV,      INV,       INV,       INV,       INV),
    "outbind":            (INV,      INV,       INV,       INV,       INV),
    "enquire_link":       ("auto",   "auto",    "auto",    "auto",    INV),
    "unbind":             (INV,      "auto",    "auto",    "auto",    INV),
}
ESME_RECEIVES = {
    "bind_tx":            (INV,      INV,       INV,       INV,       INV),
    "bind_rx":            (INV,      INV,       INV,       INV,       INV),
    "bind_trx":           (INV,      INV,       INV,       INV,       INV),
    "submit_sm":          (INV,      INV,       INV,       INV,       INV),
    "submit_multi":       (INV,      INV,       INV,       INV,       INV),
    "data_sm":            (INV,      INV,       "app",     "app",     INV),
    "query_sm":           (INV,      INV,       INV,       INV,       INV),
    "cancel_sm":          (INV,      INV,       INV,       INV,       INV),
    "replace_sm":         (INV,      INV,       INV,       INV,       INV),
    "deliver_sm":         (INV,      INV,       "app",     "app",     INV),
    "alert_notification": (INV,      INV,       "app",     "app",     INV),
    "outbind":            ("outbind", INV,      INV,       INV,       INV),
    "enquire_link":       ("auto",   "auto",    "auto",    "auto",    INV),
    "unbind":             (INV,      "auto",    "auto",    "auto",    INV),
}
STATES = (State.OPEN, State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX, State.UNBOUND)

CASES = [
    (role, state, name, expected)
    for role, table in ((Role.SMSC, SMSC_RECEIVES), (Role.ESME, ESME_RECEIVES))
    for name, row in table.items()
    for state, expected in zip(STATES, row)
]


@pytest.mark.parametrize("role,state,name,expected", CASES, ids=[f"{r.value}-{s.value}-{n}" for r, s, n, _ in CASES])
def test_receive_table(role, state, name, expected):
    session = Session(role, clock=FakeClock())
    session.state = state
    request = REQUESTS[name](sequence_number=77)
    events = session.receive_data(encode(request))
    out = sent(session)
    if expected == "app":
        assert events == [request]
        assert out == []
    elif expected == "auto":
        assert len(out) == 1 and out[0].sequence_number == 77 and out[0].command_status == 0
        assert out[0].command_id == request.command_id | 0x80000000
        if name == "unbind":
            assert session.state is State.UNBOUND
            assert isinstance(events[0], Unbound) and events[0].by_peer
        else:
            assert events == []
    elif expected == "outbind":
        assert len(events) == 1 and isinstance(events[0], Outbound)
    else:
        assert len(events) == 1 and isinstance(events[0], RequestRejected)
        assert len(out) == 1
        assert out[0].sequence_number == 77
        assert out[0].command_status == expected
        # a request without a response type (outbind, alert_notification) gets generic_nack
        if request.response_type is None:
            assert isinstance(out[0], GenericNack)
        else:
            assert isinstance(out[0], request.response_type)


#                         OPEN   BOUND_TX BOUND_RX BOUND_TRX UNBOUND
ESME_MAY_SEND = {
    "bind_trx":           (True,  False,  False,  False,  False),
    "submit_sm":          (False, True,   False,  True,   False),
    "data_sm":            (False, True,   False,  True,   False),
    "deliver_sm":         (False, False,  False,  False,  False),
    "enquire_link":       (True,  True,   True,   True,   False),
    "unbind":             (False, True,   True,   True,   False),
}
SMSC_MAY_SEND = {
    "outbind":            (True,  False,  False,  False,  False),
    "submit_sm":          (False, False,  False,  False,  False),
    "deliver_sm":         (False, False,  True,   True,   False),
    "data_sm":            (False, False,  True,   True,   False),
    "alert_notification": (False, False,  True,   True,   False),
    "enquire_link":       (True,  True,   True,   True,   False),
    "unbind":             (False, True,   True,   True,   False),
}
SEND_CASES = [
    (role, state, name, ok)
    for role, table in ((Role.ESME, ESME_MAY_SEND), (Role.SMSC, SMSC_MAY_SEND))
    for name, row in table.items()
    for state, ok in zip(STATES, row)
]


@pytest.mark.parametrize("role,state,name,ok", SEND_CASES, ids=[f"{r.value}-{s.value}-{n}" for r, s, n, _ in SEND_CASES])
def test_send_table(role, state, name, ok):
    session = Session(role, clock=FakeClock())
    session.state = state
    if ok:
        pdu = session.send_request(REQUESTS[name]())
        assert sent(session) == [pdu]
    else:
        with pytest.raises(InvalidState):
            session.send_request(REQUESTS[name]())
        assert session.data_to_send() == b""


# --- bind, responses, unbind ------------------------------------------------------------


def test_bind_handshake_both_sides():
    clock = FakeClock()
    esme, smsc = Session(Role.ESME, clock=clock), Session(Role.SMSC, clock=clock)
    bind = esme.send_request(BindTransceiver(system_id="acme", password="pw"), "ctx")
    (event,) = smsc.receive_data(esme.data_to_send())
    assert event == bind
    smsc.accept_bind(event, system_id="hub")
    assert smsc.state is State.BOUND_TRX and smsc.system_id == "acme"
    events = esme.receive_data(smsc.data_to_send())
    assert isinstance(events[0], Bound) and events[0].state is State.BOUND_TRX
    assert isinstance(events[1], Response) and events[1].context == "ctx"
    assert events[1].pdu == BindTransceiverResp(sequence_number=bind.sequence_number, system_id="hub")
    assert esme.state is State.BOUND_TRX and esme.system_id == "hub"


def test_refused_bind_stays_open():
    clock = FakeClock()
    esme, smsc = Session(Role.ESME, clock=clock), Session(Role.SMSC, clock=clock)
    esme.send_request(BindTransmitter(system_id="acme", password="bad"))
    (bind,) = smsc.receive_data(esme.data_to_send())
    smsc.reject_bind(bind, CommandStatus.ESME_RINVPASWD)
    (event,) = esme.receive_data(smsc.data_to_send())
    assert event.pdu.command_status == CommandStatus.ESME_RINVPASWD
    assert esme.state is State.OPEN and smsc.state is State.OPEN


def test_unbind_started_by_us():
    clock = FakeClock()
    esme = Session(Role.ESME, clock=clock)
    esme.state = State.BOUND_TX
    unbind = esme.unbind("u")
    assert esme.unbind() is None  # only once
    events = esme.receive_data(encode(UnbindResp(sequence_number=unbind.sequence_number)))
    assert [type(e) for e in events] == [Response, Unbound]
    assert esme.state is State.UNBOUND and not events[1].by_peer


def test_out_of_order_responses_match():
    clock = FakeClock()
    esme = Session(Role.ESME, SessionConfig(window=10), clock=clock)
    esme.state = State.BOUND_TRX
    reqs = [esme.send_request(SubmitSm(destination_addr=str(i)), i) for i in range(5)]
    resps = b"".join(encode(SubmitSmResp(sequence_number=r.sequence_number, message_id=f"m{i}")) for i, r in reversed(list(enumerate(reqs))))
    events = esme.receive_data(resps)
    assert [(e.context, e.pdu.message_id) for e in events] == [(i, f"m{i}") for i in reversed(range(5))]
    assert len(esme.window) == 0


def test_unexpected_and_mismatched_responses_are_reported():
    esme = Session(Role.ESME, clock=FakeClock())
    esme.state = State.BOUND_TX
    req = esme.send_request(SubmitSm())
    events = esme.receive_data(encode(SubmitSmResp(sequence_number=999)) + encode(DeliverSmResp(sequence_number=req.sequence_number)))
    assert [type(e) for e in events] == [UnexpectedResponse, UnexpectedResponse]
    assert req.sequence_number in esme.window  # still waiting for the right answer
    (event,) = esme.receive_data(encode(GenericNack(sequence_number=req.sequence_number, command_status=3)))
    assert isinstance(event, Response) and isinstance(event.pdu, GenericNack)


def test_window_full_raises_and_frees():
    esme = Session(Role.ESME, SessionConfig(window=2), clock=FakeClock())
    esme.state = State.BOUND_TX
    a = esme.send_request(SubmitSm())
    esme.send_request(SubmitSm())
    assert not esme.can_send
    with pytest.raises(WindowFull):
        esme.send_request(SubmitSm())
    esme.receive_data(encode(SubmitSmResp(sequence_number=a.sequence_number)))
    assert esme.can_send


def test_sequence_numbers_wrap():
    seq = SequenceNumbers(0x7FFFFFFE)
    assert [seq.next() for _ in range(3)] == [0x7FFFFFFE, 0x7FFFFFFF, 1]


def test_window_rejects_duplicate_sequence_numbers():
    w = Window(5)
    w.add(SubmitSm(sequence_number=1), None, 10.0)
    with pytest.raises(ValueError):
        w.add(SubmitSm(sequence_number=1), None, 11.0)


# --- timers -----------------------------------------------------------------------------


def test_response_timeout_fires_from_the_clock():
    clock = FakeClock()
    esme = Session(Role.ESME, SessionConfig(response_timeout=5, enquire_link_interval=0), clock=clock)
    esme.state = State.BOUND_TX
    esme.send_request(SubmitSm(), "a")
    clock.now += 2
    esme.send_request(SubmitSm(), "b")
    assert esme.next_timer() == 1005
    clock.now = 1004.9
    assert esme.tick() == []
    clock.now = 1005
    events = esme.tick()
    assert [(type(e), e.context) for e in events] == [(RequestTimeout, "a")]
    clock.now = 1007
    assert [e.context for e in esme.tick()] == ["b"]
    assert len(esme.window) == 0


def test_enquire_link_keepalive_and_dead_peer():
    clock = FakeClock()
    esme = Session(Role.ESME, SessionConfig(enquire_link_interval=30, response_timeout=10), clock=clock)
    esme.state = State.BOUND_TRX
    assert esme.next_timer() == 1030
    clock.now = 1030
    assert esme.tick() == []
    (probe,) = sent(esme)
    assert isinstance(probe, EnquireLink)
    # answered: silence, and the next probe is due 30 s after the answer
    clock.now = 1031
    assert esme.receive_data(encode(EnquireLinkResp(sequence_number=probe.sequence_number))) == []
    assert esme.next_timer() == 1061
    clock.now = 1061
    esme.tick()
    (probe,) = sent(esme)
    # unanswered: the peer is declared dead after the response timeout
    clock.now = 1071
    events = esme.tick()
    assert isinstance(events[0], Closing) and "enquire_link" in events[0].reason
    assert esme.state is State.CLOSED


def test_incoming_traffic_postpones_the_keepalive():
    clock = FakeClock()
    esme = Session(Role.ESME, SessionConfig(enquire_link_interval=30), clock=clock)
    esme.state = State.BOUND_RX
    clock.now = 1020
    esme.receive_data(encode(DeliverSm(sequence_number=5)))
    clock.now = 1030
    esme.tick()
    assert esme.data_to_send() == b""
    assert esme.next_timer() == 1050


def test_bind_timeout_closes_a_silent_connection():
    clock = FakeClock()
    smsc = Session(Role.SMSC, SessionConfig(bind_timeout=10), clock=clock)
    clock.now = 1009
    assert smsc.tick() == []
    clock.now = 1010
    (event,) = smsc.tick()
    assert isinstance(event, Closing) and "bind" in event.reason
    assert smsc.state is State.CLOSED
    assert smsc.receive_data(encode(EnquireLink(sequence_number=1))) == []


def test_inactivity_timeout_ignores_keepalives():
    clock = FakeClock()
    smsc = Session(Role.SMSC, SessionConfig(inactivity_timeout=60, enquire_link_interval=0), clock=clock)
    smsc.state = State.BOUND_TX
    clock.now = 1050
    smsc.receive_data(encode(EnquireLink(sequence_number=1)))
    clock.now = 1060
    events = smsc.tick()
    assert isinstance(events[0], Closing) and "activity" in events[0].reason


def test_connection_lost_fails_everything_in_flight():
    esme = Session(Role.ESME, clock=FakeClock())
    esme.state = State.BOUND_TX
    esme.send_request(SubmitSm(), "x")
    esme.send_request(SubmitSm(), "y")
    assert [e.context for e in esme.connection_lost()] == ["x", "y"]
    assert esme.state is State.CLOSED


# --- malformed input --------------------------------------------------------------------


def test_unknown_command_gets_generic_nack():
    smsc = Session(Role.SMSC, clock=FakeClock())
    smsc.state = State.BOUND_TX
    data = bytes.fromhex("00000010 00000099 00000000 0000002a".replace(" ", ""))
    (event,) = smsc.receive_data(data)
    assert isinstance(event, ProtocolError)
    (nack,) = sent(smsc)
    assert nack == GenericNack(sequence_number=42, command_status=CommandStatus.ESME_RINVCMDID)


def test_bad_field_gets_the_request_response_with_the_status():
    smsc = Session(Role.SMSC, clock=FakeClock())
    smsc.state = State.BOUND_TX
    body = b"\0\x01\x01" + b"1" * 30 + b"\0"
    data = (16 + len(body)).to_bytes(4, "big") + bytes.fromhex("00000004 00000000 00000007".replace(" ", "")) + body
    (event,) = smsc.receive_data(data)
    assert isinstance(event, ProtocolError)
    (resp,) = sent(smsc)
    assert resp == SubmitSmResp(sequence_number=7, command_status=CommandStatus.ESME_RINVSRCADR)


def test_framing_error_nacks_and_closes():
    smsc = Session(Role.SMSC, clock=FakeClock())
    data = bytes.fromhex("7fffffff 00000004 00000000 00000003".replace(" ", ""))
    events = smsc.receive_data(data)
    assert isinstance(events[0], ProtocolError) and events[0].error.fatal
    assert isinstance(events[1], Closing)
    (nack,) = sent(smsc)
    assert nack == GenericNack(sequence_number=3, command_status=CommandStatus.ESME_RINVCMDLEN)
    assert smsc.state is State.CLOSED


def test_many_pdus_in_one_chunk_answered_in_one_buffer():
    smsc = Session(Role.SMSC, clock=FakeClock())
    smsc.state = State.BOUND_TRX
    chunk = b"".join(encode(EnquireLink(sequence_number=i)) for i in range(1, 101))
    assert smsc.receive_data(chunk) == []
    out = smsc.data_to_send()
    assert len(out) == 1600
    assert [p.sequence_number for p in Framer().feed(out)] == list(range(1, 101))
    assert decode(out[:16]) == EnquireLinkResp(sequence_number=1)


def test_callers_unanswered_enquire_link_times_out_and_closes():
    clock = FakeClock()
    esme = Session(Role.ESME, SessionConfig(enquire_link_interval=0, response_timeout=5), clock=clock)
    esme.state = State.BOUND_TRX
    esme.send_request(EnquireLink(), "mine")
    clock.now += 5
    events = esme.tick()
    assert [(type(e), getattr(e, "context", None)) for e in events[:2]] == [(RequestTimeout, "mine"), (Closing, None)]
    assert esme.state is State.CLOSED


# --- response_timeout=0: no response timeout, dead peers still found ---------------------


def test_response_timeout_0_lets_requests_wait_for_ever():
    clock = FakeClock()
    esme = Session(Role.ESME, SessionConfig(response_timeout=0, enquire_link_interval=0), clock=clock)
    esme.state = State.BOUND_TX
    esme.send_request(SubmitSm(), "a")
    assert esme.next_timer() is None  # nothing to wake for
    clock.now += 10**9
    assert esme.tick() == []
    assert len(esme.window) == 1 and esme.state is State.BOUND_TX


def test_response_timeout_0_still_detects_a_dead_peer_with_requests_in_flight():
    clock = FakeClock()
    esme = Session(Role.ESME, SessionConfig(response_timeout=0, enquire_link_interval=30), clock=clock)
    esme.state = State.BOUND_TRX
    esme.send_request(SubmitSm(), "a")  # never answered, no deadline of its own
    esme.data_to_send()
    assert esme.next_timer() == 1030
    clock.now = 1030
    assert esme.tick() == []
    (probe,) = sent(esme)
    assert isinstance(probe, EnquireLink)
    # the probe sits in the window behind a request without a deadline: the session still
    # wakes for it, after enquire_link_interval (there is no response timeout to use)
    assert esme.next_timer() == 1060
    clock.now = 1059.9
    assert esme.tick() == []
    clock.now = 1060
    events = esme.tick()
    assert isinstance(events[0], Closing) and "enquire_link" in events[0].reason
    assert [(type(e), e.context) for e in events[1:]] == [(ConnectionLost, "a")]  # not the keep-alive
    assert esme.state is State.CLOSED


def test_response_timeout_0_an_answered_probe_keeps_the_link():
    clock = FakeClock()
    esme = Session(Role.ESME, SessionConfig(response_timeout=0, enquire_link_interval=30), clock=clock)
    esme.state = State.BOUND_TRX
    esme.send_request(SubmitSm(), "a")
    esme.data_to_send()
    clock.now = 1030
    esme.tick()
    (probe,) = sent(esme)
    clock.now = 1045
    assert esme.receive_data(encode(EnquireLinkResp(sequence_number=probe.sequence_number))) == []
    assert esme.next_timer() == 1075  # the next keep-alive, 30 s after the answer
    clock.now = 1075
    assert esme.tick() == []
    (probe,) = sent(esme)
    assert isinstance(probe, EnquireLink) and esme.state is State.BOUND_TRX


def test_response_timeout_0_the_callers_enquire_link_counts_too():
    clock = FakeClock()
    esme = Session(Role.ESME, SessionConfig(response_timeout=0, enquire_link_interval=20), clock=clock)
    esme.state = State.BOUND_TRX
    esme.send_request(SubmitSm(), "a")
    clock.now = 1005
    esme.send_request(EnquireLink(), "mine")
    # the caller's enquire_link is the probe (no keep-alive of our own meanwhile), due
    # enquire_link_interval after it went out
    assert esme.next_timer() == 1025
    clock.now = 1024.9
    assert esme.tick() == []
    assert [type(p) for p in sent(esme)] == [SubmitSm, EnquireLink]  # no keep-alive of its own
    clock.now = 1025
    events = esme.tick()
    assert [(type(e), getattr(e, "context", None)) for e in events] == [
        (RequestTimeout, "mine"), (Closing, None), (ConnectionLost, "a"),
    ]


@pytest.mark.parametrize(("role", "request_type"),
                         [(Role.ESME, SubmitSm), (Role.SMSC, DeliverSm), (Role.ESME, P.QuerySm)],
                         ids=["submit_sm", "deliver_sm", "query_sm"])
def test_each_answer_to_a_message_is_judged_alike_on_the_hot_paths_and_off_them(role: Role, request_type: type) -> None:
    """submit_sm and deliver_sm take a shortcut in Session._receive, query_sm the general path:
    the same events, the same activity."""
    clock = FakeClock()
    session = Session(role, clock=clock)
    session.state = State.BOUND_TRX
    reqs = [session.send_request(request_type(), i) for i in range(3)]
    clock.now += 5
    right, nack, wrong = (request_type.response_type(sequence_number=reqs[0].sequence_number),
                          GenericNack(sequence_number=reqs[1].sequence_number, command_status=8),
                          UnbindResp(sequence_number=reqs[2].sequence_number))
    events = session.receive_data(encode(right) + encode(nack) + encode(wrong))
    assert [(type(e), e.pdu) for e in events] == [(Response, right), (Response, nack), (UnexpectedResponse, wrong)]
    assert [(e.request, e.context) for e in events[:2]] == [(reqs[0], 0), (reqs[1], 1)]
    assert session.last_activity == clock.now and list(session.window._pending) == [reqs[2].sequence_number]
