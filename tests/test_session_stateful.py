"""Two sans-IO sessions, an ESME and an SMSC, back to back, driven at random by hypothesis.

Each side's ``data_to_send`` goes onto a wire (a byte queue) and reaches the other
side's ``receive_data`` in random cuts, when a rule says so. The rules bind, send
requests of every kind either way (allowed or not in the current state), answer or
drop the requests each side's application got, unbind, and move a fake clock on (so
responses time out, and the SMSC's bind timeout fires). The "application" around each
session does what smppcore's asyncio edge does: it closes the connection after
Unbound or Closing, and the ESME closes when its bind gets no answer (as
``smppcore.Client`` does); the other side then reads end-of-file and is told
``connection_lost``.

Checked after every step:

- window accounting: on each side, the requests in flight are exactly those sent and
  not yet answered, timed out or failed by connection loss (as sets of sequence
  numbers, and as counts: in flight == sent - responses - timeouts - lost);
- sequence numbers: unique among a side's outstanding requests, in 1..0x7FFFFFFF, and
  each request leaving a side has the number after the previous one, wrapping from
  0x7FFFFFFF to 1 (the counters start a few steps before the wrap);
- no event is lost: every request that reaches a side is answered on the wire by the
  session or handed to the application (as the PDU, an Outbound or a
  RequestRejected), every response that reaches a side is a Response event of the
  request it answers (or an UnexpectedResponse only for one of ours that timed out),
  and at the end every request sent got exactly one Response, RequestTimeout or
  ConnectionLost; valid bytes never produce a ProtocolError;
- consistent states: whenever nothing is in transit and the SMSC's application has
  no bind to decide, both sides are in the same state (both OPEN, the same bound
  state, or both CLOSED).

Keep-alive probes are off here (``enquire_link_interval=0``): they are answered
without an event by design, and tests/test_session.py covers them; the tests send
their own enquire_link, with a context, instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from smppcore import CommandId, CommandStatus, Framer, PduError
from smppcore import pdus as P
from smppcore.session import (
    ALLOWED_REQUESTS,
    Bound,
    Closing,
    ConnectionLost,
    InvalidState,
    Outbound,
    ProtocolError,
    Reply,
    RequestRejected,
    RequestTimeout,
    Response,
    Role,
    Session,
    SessionConfig,
    SessionEvent,
    State,
    Unbound,
    UnexpectedResponse,
    WindowFull,
)
from smppcore.window import MAX_SEQUENCE, SequenceNumbers

#: Every request type either side might try to send (the state table decides which may go).
REQUEST_TYPES: list[type[P.Pdu]] = [
    P.BindTransmitter,
    P.BindReceiver,
    P.BindTransceiver,
    P.SubmitSm,
    P.SubmitMulti,
    P.DataSm,
    P.QuerySm,
    P.CancelSm,
    P.ReplaceSm,
    P.DeliverSm,
    P.AlertNotification,
    P.Outbind,
    P.EnquireLink,
    P.Unbind,
]
BINDS = {CommandId.BIND_TRANSMITTER, CommandId.BIND_RECEIVER, CommandId.BIND_TRANSCEIVER}
NOT_TRAFFIC = BINDS | {CommandId.UNBIND}
STATUSES = st.sampled_from([0, 0, 0, CommandStatus.ESME_RSYSERR, CommandStatus.ESME_RTHROTTLED])


class Clock:
    """The time both sessions read; only the ``advance`` rule moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Token:
    """The context of one request we sent: identity is what matters."""

    seq: int
    command_id: int


@dataclass
class Side:
    """One session and what the test knows about it."""

    name: str
    session: Session
    #: requests this side sent that have had no Response/RequestTimeout/ConnectionLost yet
    sent: dict[int, Token] = field(default_factory=dict)
    timed_out: set[int] = field(default_factory=set)
    #: outbind / alert_notification sent: no response is owed, but a refusal (generic_nack) may come
    unanswerable: set[int] = field(default_factory=set)
    n_sent: int = 0
    n_responses: int = 0
    n_timeouts: int = 0
    n_lost: int = 0
    #: requests the peer sent that this side's application holds, unanswered
    inbox: list[P.Pdu] = field(default_factory=list)
    #: bytes on the way from this side to the other, and whether this side hung up after them
    wire: bytearray = field(default_factory=bytearray)
    closed: bool = False
    eof_delivered: bool = False
    last_seq: int = 0
    #: the same bytes the session reads, framed by the test: what completed in each chunk
    reader: Framer = field(default_factory=Framer)


class TwoSessions(RuleBasedStateMachine):
    """An ESME session and an SMSC session connected through two byte queues."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.esme: Side
        self.smsc: Side

    @initialize(
        window=st.integers(1, 4),
        response_timeout=st.sampled_from([0.0, 5.0]),
        bind_timeout=st.sampled_from([0.0, 50.0]),
        esme_start=st.integers(0, 4),
        smsc_start=st.integers(0, 4),
        bind_first=st.sampled_from([None, P.BindTransmitter, P.BindReceiver, P.BindTransceiver]),
    )
    def connect(self, window: int, response_timeout: float, bind_timeout: float, esme_start: int,
                smsc_start: int, bind_first: type[P.Pdu] | None) -> None:
        """Two fresh sessions; most runs start with a completed bind, so that they reach bound traffic."""
        config = SessionConfig(window=window, response_timeout=response_timeout, bind_timeout=bind_timeout,
                               enquire_link_interval=0)
        self.esme = Side("esme", Session(Role.ESME, config, clock=self.clock))
        self.smsc = Side("smsc", Session(Role.SMSC, config, clock=self.clock))
        # start the counters a few numbers before the wrap (the session's counter is not public)
        self.esme.session._seq = SequenceNumbers(MAX_SEQUENCE - esme_start)
        self.smsc.session._seq = SequenceNumbers(MAX_SEQUENCE - smsc_start)
        self.esme.last_seq = MAX_SEQUENCE - esme_start - 1
        self.smsc.last_seq = MAX_SEQUENCE - smsc_start - 1
        if bind_first is not None:
            self.send(True, bind_first)
            self.deliver_everything()
            self.smsc_decides_bind(0)
            self.deliver_everything()
            assert self.esme.session.state is self.smsc.session.state
            assert self.esme.session.state.is_bound

    def side(self, esme: bool) -> tuple[Side, Side]:
        return (self.esme, self.smsc) if esme else (self.smsc, self.esme)

    # ---- sending ------------------------------------------------------------------------

    @rule(esme=st.booleans(), cls=st.sampled_from(REQUEST_TYPES))
    def send(self, esme: bool, cls: type[P.Pdu]) -> None:
        me, _ = self.side(esme)
        if me.closed:
            return
        session = me.session
        pdu = cls(system_id="esme", password="pw") if cls.command_id in BINDS else cls()
        allowed = cls.command_id in ALLOWED_REQUESTS[session.role][session.state]
        # outbind and alert_notification take no response: they never enter the window
        full = len(session.window) >= session.window.size and cls.response_type is not None
        token = Token(0, cls.command_id)
        try:
            session.send_request(pdu, token)
        except InvalidState:
            assert not allowed, f"{me.name} may send {pdu.command_name} in {session.state}"
            return
        except WindowFull:
            assert allowed and full, f"WindowFull with {len(session.window)} of {session.window.size} in flight"
            return
        assert allowed and not full, f"{me.name} sent {pdu.command_name} in {session.state} with a full window"
        self._sent(me, pdu, token)

    @rule(esme=st.booleans(), pick=st.integers(0, 20))
    def send_allowed(self, esme: bool, pick: int) -> None:
        """A request this side may send now (binds and unbind aside: they have rules of their own)."""
        me, _ = self.side(esme)
        allowed = ALLOWED_REQUESTS[me.session.role][me.session.state]
        kinds = [cls for cls in REQUEST_TYPES if cls.command_id in allowed and cls.command_id not in NOT_TRAFFIC]
        if kinds:
            self.send(esme, kinds[pick % len(kinds)])

    def esme_may_bind(self) -> bool:
        return not self.esme.closed and self.esme.session.state is State.OPEN

    @precondition(esme_may_bind)
    @rule(cls=st.sampled_from([P.BindTransmitter, P.BindReceiver, P.BindTransceiver]))
    def esme_binds(self, cls: type[P.Pdu]) -> None:
        """A bind, more often than ``send`` would draw one, so that most runs get bound."""
        self.send(True, cls)

    def smsc_holds_a_bind(self) -> bool:
        return any(p.command_id in BINDS for p in self.smsc.inbox)

    @precondition(smsc_holds_a_bind)
    @rule(status=STATUSES)
    def smsc_decides_bind(self, status: int) -> None:
        pick = next(i for i, p in enumerate(self.smsc.inbox) if p.command_id in BINDS)
        self.answer(False, pick, status)

    @rule(esme=st.booleans(), now=st.integers(0, 3))
    def unbind(self, esme: bool, now: int) -> None:
        """Unbind, one time in four: it ends the run's traffic."""
        me, _ = self.side(esme)
        if me.closed or now:
            return
        unbinding = any(t.command_id == CommandId.UNBIND for t in me.sent.values())
        may = me.session.state.is_bound and not unbinding and not me.session.window.full
        token = Token(0, CommandId.UNBIND)
        try:
            pdu = me.session.unbind(token)
        except WindowFull:
            assert me.session.window.full
            return
        if pdu is None:
            assert not may, f"{me.name} refused to unbind in {me.session.state}"
            return
        assert may, f"{me.name} unbound in {me.session.state}, unbinding={unbinding}"
        self._sent(me, pdu, token)

    def _sent(self, me: Side, pdu: P.Pdu, token: Token) -> None:
        seq = pdu.sequence_number
        assert 1 <= seq <= MAX_SEQUENCE
        assert seq not in me.sent, f"sequence_number {seq} reused while outstanding"
        assert seq == (1 if me.last_seq >= MAX_SEQUENCE else me.last_seq + 1), f"{me.last_seq} then {seq}"
        if seq == 1:
            event("sequence numbers wrapped")
        me.last_seq = seq
        token.seq = seq
        if pdu.response_type is None:  # nothing will answer it: not outstanding
            me.unanswerable.add(seq)  # but a peer that may not take it now answers generic_nack
            self._flush(me)
            return
        me.sent[seq] = token
        me.n_sent += 1
        self._flush(me)

    def _flush(self, me: Side) -> None:
        me.wire += me.session.data_to_send()

    # ---- the applications --------------------------------------------------------------------

    def someone_holds_a_request(self) -> bool:
        return bool(self.esme.inbox or self.smsc.inbox)

    @precondition(someone_holds_a_request)
    @rule(esme=st.booleans(), pick=st.integers(0, 20), status=STATUSES)
    def answer(self, esme: bool, pick: int, status: int) -> None:
        me, _ = self.side(esme)
        if me.closed or not me.inbox:
            return
        request = me.inbox.pop(pick % len(me.inbox))
        session = me.session
        if request.command_id in BINDS:
            if status == 0 and session.state is State.OPEN:
                session.accept_bind(request, "smsc")
                assert session.state.is_bound
            else:
                session.reject_bind(request, status or CommandStatus.ESME_RALYBND)
            self._flush(me)  # the bind's answer goes before anything released from behind it
            self._handle(me, session.release_held())
        elif request.response_type is not None:
            session.send_response(request.make_response(command_status=status))
        self._flush(me)

    @precondition(someone_holds_a_request)
    @rule(esme=st.booleans(), pick=st.integers(0, 20))
    def drop_answer(self, esme: bool, pick: int) -> None:
        me, _ = self.side(esme)
        if me.inbox:
            me.inbox.pop(pick % len(me.inbox))

    # ---- the wire and the clock ---------------------------------------------------------------

    @rule(esme_to_smsc=st.booleans(), size=st.one_of(st.integers(1, 40), st.just(1 << 20)))
    def deliver(self, esme_to_smsc: bool, size: int) -> None:
        sender, receiver = self.side(esme_to_smsc)
        self._deliver(sender, receiver, size)

    @rule()
    def deliver_everything(self) -> None:
        """Both ways, all that is in transit (and what it provokes, one round)."""
        self._deliver(self.esme, self.smsc, 1 << 20)
        self._deliver(self.smsc, self.esme, 1 << 20)

    def _deliver(self, sender: Side, receiver: Side, size: int) -> None:
        if receiver.closed:
            sender.wire.clear()  # nobody reads: the bytes die with the connection
        if sender.wire:
            chunk = bytes(sender.wire[:size])
            del sender.wire[:size]
            arrived = receiver.reader.feed(chunk)
            events = receiver.session.receive_data(chunk)
            out = receiver.session.data_to_send()
            receiver.wire += out
            if receiver.session.held:
                event("PDUs held behind a bind")
            replies = b"".join(ev.data for ev in events if isinstance(ev, Reply))
            # an unbind_resp held back behind answers the application owes counts as answered
            replies += receiver.session.unbind_response or b""
            answered = {pdu.sequence_number for pdu in Framer().feed(out + replies) if pdu.is_response}
            self._check_arrivals(receiver, arrived, events, answered)
            self._handle(receiver, events)
        if sender.closed and not sender.wire and not receiver.closed:
            self._close(receiver)  # end of file: the peer hung up

    @rule(seconds=st.sampled_from([0.5, 3.0, 6.0, 60.0]))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds
        for me in (self.esme, self.smsc):
            if not me.closed:
                self._handle(me, me.session.tick())

    # ---- events ------------------------------------------------------------------------------

    @staticmethod
    def _check_arrivals(me: Side, arrived: list[P.Pdu | PduError], events: list[SessionEvent],
                        answered: set[int]) -> None:
        """Every PDU that completed in this chunk shows up: answered on the wire, as an event, or
        held behind a bind the SMSC's application has not decided yet."""
        handed = {pdu.sequence_number for pdu in me.session.held if isinstance(pdu, P.Pdu)}
        for ev in events:
            if isinstance(ev, P.Pdu):
                handed.add(ev.sequence_number)
            elif isinstance(ev, Outbound | RequestRejected | Response | UnexpectedResponse):
                handed.add(ev.pdu.sequence_number)
        for item in arrived:
            assert isinstance(item, P.Pdu), f"valid bytes did not decode: {item!r}"
            if item.is_response:
                assert item.sequence_number in handed, f"{me.name} lost the response {item!r}"
            else:
                assert item.sequence_number in handed | answered, f"{me.name} lost the request {item!r}"

    def _handle(self, me: Side, events: list[SessionEvent]) -> None:
        for ev in events:
            if isinstance(ev, P.Pdu):
                me.inbox.append(ev)
                event(f"{me.name} application got {ev.command_name}")
            elif isinstance(ev, Reply):  # the session's own answer, in line behind the application's
                self._flush(me)
                me.wire += ev.data
            elif isinstance(ev, Response):
                token = me.sent.pop(ev.request.sequence_number, None)
                assert token is ev.context, f"{me.name}: Response {ev!r} for no request of ours"
                assert ev.pdu.sequence_number == token.seq
                me.n_responses += 1
            elif isinstance(ev, RequestTimeout):
                token = me.sent.pop(ev.request.sequence_number, None)
                assert token is ev.context, f"{me.name}: RequestTimeout {ev!r} for no request of ours"
                me.n_timeouts += 1
                event("a request timed out")
                me.timed_out.add(token.seq)
                if token.command_id in BINDS and me is self.esme and not me.closed:
                    self._close(me)  # the Client gives up on a bind with no answer
            elif isinstance(ev, ConnectionLost):
                token = me.sent.pop(ev.request.sequence_number, None)
                assert token is ev.context, f"{me.name}: ConnectionLost {ev!r} for no request of ours"
                me.n_lost += 1
            elif isinstance(ev, UnexpectedResponse):
                refused = ev.pdu.command_id == CommandId.GENERIC_NACK and ev.pdu.sequence_number in me.unanswerable
                assert refused or ev.pdu.sequence_number in me.timed_out, f"{me.name}: response to nothing sent: {ev!r}"
            elif isinstance(ev, ProtocolError):
                raise AssertionError(f"{me.name}: our own bytes did not decode: {ev.error}")
            elif isinstance(ev, Bound):
                assert me is self.esme and ev.state.is_bound  # (the state may have moved on later in the chunk)
                event(f"bound {ev.state.value}")
            elif isinstance(ev, Unbound | Closing):
                event(f"{me.name}: {type(ev).__name__}")
                me.session.answer_unbind()  # the I/O layer sends a held unbind_resp before it closes
                if not me.closed:
                    self._close(me)
        self._flush(me)

    def _close(self, me: Side) -> None:
        """The I/O layer closes: what is queued still goes out, then the session is told."""
        self._flush(me)
        me.closed = True
        me.inbox.clear()
        self._handle(me, me.session.connection_lost())
        assert me.session.state is State.CLOSED

    # ---- invariants ----------------------------------------------------------------------------

    @invariant()
    def window_accounting(self) -> None:
        for me in (getattr(self, "esme", None), getattr(self, "smsc", None)):
            if me is None:
                continue
            window = me.session.window
            in_flight = {entry.request.sequence_number for entry in window}
            assert in_flight == set(me.sent), f"{me.name}: window {sorted(in_flight)}, sent {sorted(me.sent)}"
            assert len(window) == me.n_sent - me.n_responses - me.n_timeouts - me.n_lost
            assert len(window) <= window.size

    @invariant()
    def states_agree_when_quiet(self) -> None:
        if not hasattr(self, "esme"):
            return
        esme, smsc = self.esme, self.smsc
        quiet = not esme.wire and not smsc.wire and esme.closed == smsc.closed
        deciding = any(p.command_id in BINDS for p in smsc.inbox) or bool(smsc.session.held)
        if quiet and not deciding:
            assert esme.session.state is smsc.session.state, (
                f"nothing in transit, yet esme is {esme.session.state.value} and smsc {smsc.session.state.value}"
            )

    def teardown(self) -> None:
        if not hasattr(self, "esme"):
            return
        for _ in range(20):  # everything in transit arrives
            if not self.esme.wire and not self.smsc.wire:
                break
            self._deliver(self.esme, self.smsc, 1 << 20)
            self._deliver(self.smsc, self.esme, 1 << 20)
        for me in (self.esme, self.smsc):
            if not me.closed:
                self._close(me)
        for me in (self.esme, self.smsc):
            assert not me.sent, f"{me.name}: requests with no Response, RequestTimeout or ConnectionLost: {me.sent}"
            assert me.n_sent == me.n_responses + me.n_timeouts + me.n_lost


TwoSessions.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_two_sessions = TwoSessions.TestCase
