"""The shortcuts of the hub's per-message path do what the general code they stand for does.

Each shortcut (router/messages.py ``MessageTable.move``, ``TIMED_STATES``, the dispatcher's
one pump per group commit, the pump's one check per link, the trace ring's plain dict and
deque) was taken for CPU per message, measured in the commits that made them; these tests
pin that the hub behaves exactly as the longer way did.
"""

from __future__ import annotations

import msgspec
import pytest

from smppcore import CommandStatus, Pdu, SubmitSm, encode
from smppcore.session import Role, Session, SessionConfig
from smppcore.session import State as SessionState
from smpphub.router.config import HubConfig, Upstream
from smpphub.router.delivery import Deliveries
from smpphub.router.dispatch import Dispatcher
from smpphub.router.lifecycle import (
    TIMED_STATES,
    Due,
    MessageRow,
    RetryPolicy,
    State,
    SubmitOk,
    SubmitTemporary,
    Taken,
    UpstreamDown,
)
from smpphub.router.messages import MessageTable
from smpphub.router.store.memory import MemoryStore
from smpphub.router.trace import TraceRing
from smpphub.router.upstream import TURN, Outgoing, UpstreamPool

NOW = 1_000_000.0
POLICY = RetryPolicy(initial=1.0, maximum=60.0, default_attempts=2)


def new_row(message_id: str, **fields: object) -> MessageRow:
    return MessageRow(id=message_id, account="acme", pdu=b"", route=["a", "b"], expires_at=NOW + 600, **fields)


# ---- MessageTable.move: apply for a row alone ------------------------------------------------------


EVENT_RUNS = {
    "sent": [Taken("a"), SubmitOk("up-1")],
    "retried": [Taken("a"), SubmitTemporary(CommandStatus.ESME_RSYSERR)],
    "failed over": [Taken("a"), SubmitTemporary(CommandStatus.ESME_RSYSERR), Due(), Taken("a"),
                    SubmitTemporary(CommandStatus.ESME_RSYSERR)],
    "parked": [UpstreamDown(), UpstreamDown()],
}


@pytest.mark.parametrize("events", EVENT_RUNS.values(), ids=EVENT_RUNS.keys())
def test_move_leaves_a_row_of_no_group_as_apply_does(events: list) -> None:
    by_apply, by_move = MessageTable(POLICY), MessageTable(POLICY)
    rows = {"apply": new_row("m"), "move": new_row("m")}
    by_apply.accept(rows["apply"], NOW)
    by_move.accept(rows["move"], NOW)
    for i, event in enumerate(events):
        changes = by_apply.apply(rows["apply"], event, NOW + i)
        transition = by_move.move(rows["move"], event, NOW + i)
        assert [c.transition for c in changes] == [transition]
        assert msgspec.structs.asdict(rows["apply"]) == msgspec.structs.asdict(rows["move"])
        assert by_apply.next_timer() == by_move.next_timer()
        assert [r.id for r in by_apply.take_changed()] == [r.id for r in by_move.take_changed()]


def test_a_state_outside_timed_states_never_has_a_timer() -> None:
    """The table asks next_timer() only in TIMED_STATES: in any other state it must be None."""
    for state in State:
        row = new_row("m", due=NOW + 30, state=state)
        if state in TIMED_STATES:
            assert row.next_timer() is not None, state
        else:
            assert row.next_timer() is None, state


def test_a_row_leaving_a_timed_state_loses_its_timer() -> None:
    table = MessageTable(POLICY)
    row = new_row("m", due=NOW + 30)
    table.accept(row, NOW)  # SCHEDULED: its due time is armed
    assert (row.state, table.next_timer()) == (State.SCHEDULED, NOW + 30)
    table.move(row, Due(), NOW + 30)  # QUEUED: no timer (its upstream checks the validity)
    assert row.state is State.QUEUED and table.next_timer() is None and table.tick(NOW + 10_000) == []


# ---- the upstream pump ----------------------------------------------------------------------------


class FakeSession:
    """What the pump asks of a link's session: its room (bound, and the window's free places)."""

    def __init__(self, room: int, bound: bool = True) -> None:
        self.window_room = room
        self.bound = bound

    @property
    def room(self) -> int:
        return self.window_room if self.bound else 0


class FakeClient:
    def __init__(self, room: int, bound: bool = True) -> None:
        self.transport = object()
        self.session = FakeSession(room, bound)
        self.sent: list[str] = []

    def send_tracked(self, pdus: list[Pdu], contexts: list[object], encoded: list[bytes | None]) -> None:
        assert len(pdus) <= self.session.room
        self.session.window_room -= len(pdus)
        self.sent += [pdu.short_message.decode() for pdu in pdus]


class Events:
    """An UpstreamEvents that takes everything and records the order."""

    def __init__(self) -> None:
        self.took: list[str] = []

    def still_for(self, outs: list[Outgoing], pool: UpstreamPool) -> list[Outgoing]:
        return outs

    def taken(self, outs: list[Outgoing], pool: UpstreamPool) -> None:
        self.took += [out.row.id for out in outs]

    def answered(self, outs: list[Outgoing], pool: UpstreamPool, responses: list[Pdu]) -> None:
        pass

    def unanswered(self, out: Outgoing, pool: UpstreamPool, error: BaseException) -> None:
        pass

    def deliver_received(self, pool: UpstreamPool, pdu: Pdu) -> int:
        return 0

    def deliver_received_all(self, pool: UpstreamPool, pdus: list[Pdu]) -> list[int]:
        return [0] * len(pdus)

    def pool_up(self, pool: UpstreamPool) -> None:
        pass

    def pool_down(self, pool: UpstreamPool, left: list[Outgoing]) -> None:
        pass


def outgoing(n: int) -> Outgoing:
    pdu = SubmitSm(destination_addr="447700900123", short_message=f"m{n}".encode())
    return Outgoing(MessageRow(id=f"m{n}", account="acme", pdu=encode(pdu), route=["u"]), pdu)


def pool_with(clients: list[FakeClient | None], events: object | None = None) -> UpstreamPool:
    pool = UpstreamPool(Upstream(name="u", host="127.0.0.1", port=1, system_id="hub", binds=len(clients)),
                        events or Events())
    for link, client in zip(pool.links, clients, strict=True):
        link.client = client
    pool.links_up = sum(c is not None for c in clients)
    return pool


def test_the_pump_takes_the_links_in_turns_of_a_batch_and_skips_those_down_unbound_or_full() -> None:
    a, b, unbound, full = FakeClient(room=20), FakeClient(room=2), FakeClient(room=10, bound=False), FakeClient(0)
    pool = pool_with([a, None, b, unbound, full])
    for n in range(30):
        pool.queue.append(outgoing(n))
    pool.pump()
    names = [f"m{n}" for n in range(30)]
    # a takes a turn (TURN messages), b what its window has room for, a the rest of its room
    assert TURN == 16
    assert (a.sent, b.sent) == (names[:16] + names[18:22], names[16:18])
    assert unbound.sent == full.sent == [] and [o.row.id for o in pool.queue] == names[22:] and pool.in_flight == 22


def test_the_pump_stops_when_every_window_is_full_and_goes_on_in_turn() -> None:
    a, b = FakeClient(room=1), FakeClient(room=1)
    pool = pool_with([a, b])
    for n in range(3):
        pool.queue.append(outgoing(n))
    pool.pump()
    assert (a.sent, b.sent, len(pool.queue)) == (["m0"], ["m1"], 1)
    a.session.window_room = b.session.window_room = 1  # both answered
    pool.pump()
    assert (a.sent, b.sent, len(pool.queue)) == (["m0", "m2"], ["m1"], 0)


class Tokens:
    """A rate bucket holding ``left`` tokens."""

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0

    def wait_time(self) -> float:
        return 1.0


def test_a_turn_the_rate_cuts_short_leaves_the_rest_first_in_the_queue_in_order() -> None:
    a = FakeClient(room=10)
    pool = pool_with([a])
    pool.bucket = Tokens(2)  # type: ignore[assignment]
    for n in range(5):
        pool.queue.append(outgoing(n))
    pool.pump()
    assert a.sent == ["m0", "m1"] and [o.row.id for o in pool.queue] == ["m2", "m3", "m4"] and pool.in_flight == 2


# ---- the dispatcher's group commit ---------------------------------------------------------------


class NoReceivers:
    def receivers(self, account: str) -> list:
        return []


class CountingPool(UpstreamPool):
    pumps = 0

    def pump(self) -> None:
        self.pumps += 1
        super().pump()


async def test_a_group_commit_is_queued_whole_then_each_pool_pumped_once() -> None:
    up = Upstream(name="u", host="127.0.0.1", port=1, system_id="hub", binds=2)
    store = MemoryStore()
    dispatcher = Dispatcher(HubConfig(upstreams=[up]), store, Deliveries(store, NoReceivers()))
    pool = CountingPool(up, dispatcher)
    clients = [FakeClient(room=3), FakeClient(room=3)]
    for link, client in zip(pool.links, clients, strict=True):
        link.client = client
    pool.links_up = 2
    dispatcher.pools["u"] = pool
    outs = [outgoing(n) for n in range(8)]
    dispatcher.accept_all(outs)
    assert pool.pumps == 1
    assert [c.sent for c in clients] == [["m0", "m1", "m2"], ["m3", "m4", "m5"]]  # each link a turn
    assert [o.row.state for o in outs] == [State.IN_FLIGHT] * 6 + [State.QUEUED] * 2
    assert [o.row.id for o in pool.queue] == ["m6", "m7"] and all(o.row.upstream == "u" for o in outs[:6])


# ---- the session, the trace ring, the events ----------------------------------------------------------


def test_room_is_the_windows_free_places_while_bound() -> None:
    session = Session(Role.ESME, SessionConfig(window=2), clock=lambda: NOW)
    for state in SessionState:
        session.state = state
        assert session.room == (2 if state.is_bound else 0), state
    session.state = SessionState.BOUND_TRX
    session.send_request(SubmitSm(destination_addr="1", short_message=b"x"))
    assert session.room == 1 and session.can_send
    session.send_request(SubmitSm(destination_addr="1", short_message=b"x"))
    assert session.room == 0 and not session.can_send


def test_the_trace_ring_records_a_step_without_a_python_frame() -> None:
    """The dispatcher calls ring.record per transition: the log's own append, a C method."""
    ring = TraceRing(2)
    assert type(ring.record) is type([].append) and ring.record.__self__ is ring._log


def test_events_are_frozen_values_with_a_readable_repr() -> None:
    assert Taken("a") == Taken("a") and repr(SubmitTemporary(8, throttled=True)) == (
        "SubmitTemporary(status=8, throttled=True)")
    with pytest.raises(AttributeError):
        Taken("a").upstream = "b"


# ---- the connection's clock ----------------------------------------------------------------------


async def test_a_connection_reads_the_loops_clock_without_its_python_method_when_it_is_asyncios_own() -> None:
    """asyncio's loop.time() is time.monotonic() in a Python method: the session reads time.monotonic
    directly then, the same clock; a loop with a clock of its own keeps it."""
    import asyncio
    import time

    from smppcore.connection import SmppConnection

    loop = asyncio.get_running_loop()
    conn = SmppConnection()
    assert conn.clock is time.monotonic and conn.session.clock is time.monotonic
    assert abs(conn.clock() - loop.time()) < 1.0

    class OwnClock(type(loop)):  # type: ignore[misc]
        def time(self) -> float:
            return 42.0

    other = OwnClock()
    try:
        conn = SmppConnection(loop=other)
        assert conn.clock() == 42.0 and conn.session.clock() == 42.0
    finally:
        other.close()
    loop.time = lambda: 7.0  # type: ignore[method-assign]  # patched on the instance: kept too
    try:
        assert SmppConnection().clock() == 7.0
    finally:
        del loop.time


# ---- the ESME side's admission ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 0xABCDE, 0xFFFFFFFE, 0xFFFFFFFF, 0x1_0000_0000])
def test_hub_ids_are_the_prefix_and_the_counter_in_hex(n: int) -> None:
    from smpphub.router.esme import HubIds

    ids = HubIds()
    ids.n = n
    assert ids.next() == f"{ids.prefix}{n + 1:08x}"


def test_an_unconditional_route_is_one_that_matches_anything() -> None:
    from smpphub.router.routing import Route

    examples = [("acme", "default", "12345"), ("", "", ""), ("vip", "gold", "BANK")]
    for route in [Route("44", ["a"]), Route("44", ["a"], accounts=["vip"]), Route("44", ["a"], route_group="gold"),
                  Route("44", ["a"], source_prefix="BA")]:
        assert route.unconditional is all(route.matches(*example) for example in examples), route


def test_an_account_without_a_rate_has_no_bucket_and_is_never_throttled() -> None:
    from smpphub.router.accounts import AccountState
    from smpphub.router.config import Account

    assert AccountState(Account(system_id="a", password="pw"), clock=lambda: NOW).bucket is None
    capped = AccountState(Account(system_id="a", password="pw", max_rate=1.0), clock=lambda: NOW)
    assert capped.bucket is not None and capped.bucket.take() and not capped.bucket.take()


class CapturingAcceptor:
    """What EsmeHandler hands to Acceptor.accept_run, kept (the handler reads only these three attributes)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        from smpphub.router.msglog import MessageLog

        self.dispatcher = dispatcher
        self.msglog = MessageLog.off()
        self.accepted: list[tuple[Pdu, Pdu]] = []

    def accept_run(self, conn: object, requests: list[Pdu], responses: list[Pdu], messages: list[object]) -> None:
        self.accepted += list(zip(requests, responses, strict=True))


@pytest.mark.parametrize("kind", ["submit_sm", "data_sm"])
def test_the_answer_to_an_accepted_submit_is_what_make_response_makes(kind: str) -> None:
    from smppcore.pdus import DataSm
    from smpphub.router.config import Account, Route
    from smpphub.router.esme import EsmeHandler
    from smpphub.router.routing import RouteTable

    up = Upstream(name="u", host="127.0.0.1", port=1, system_id="hub")
    config = HubConfig(upstreams=[up], accounts=[Account(system_id="acme", password="pw")],
                       routes=[Route(prefix="44", upstreams=["u"])])
    store = MemoryStore()
    acceptor = CapturingAcceptor(Dispatcher(config, store, Deliveries(store, NoReceivers())))
    handler = EsmeHandler(config, store, acceptor, RouteTable.build(config), binds=None)  # type: ignore[arg-type]

    class Conn:
        system_id = "acme"
        session = Session(Role.SMSC)  # its framer: the submit's bytes (none here: the PDU was not decoded)

    pdu = (SubmitSm if kind == "submit_sm" else DataSm)(destination_addr="447700900123", sequence_number=77)
    assert handler.handle(Conn(), pdu) is None  # type: ignore[arg-type]
    [(request, response)] = acceptor.accepted
    assert request is pdu
    assert response == pdu.make_response(message_id=response.message_id) and response.message_id  # type: ignore[attr-defined]


TIMES_CASES = {
    "submit_sm naming no time": ("submit_sm", {}),
    "submit_sm with a validity": ("submit_sm", {"validity_period": "000001000000000R"}),
    "submit_sm scheduled": ("submit_sm", {"schedule_delivery_time": "000000100000000R"}),
    "data_sm": ("data_sm", {}),
}


@pytest.mark.parametrize(("kind", "fields"), TIMES_CASES.values(), ids=TIMES_CASES.keys())
def test_a_submit_gets_the_times_that_times_reads_from_it(kind: str, fields: dict[str, str]) -> None:
    """A message made by admit_submit has the due and validity end _times reads from its submit."""
    from smppcore.pdus import DataSm
    from smpphub.router.config import Account, Route
    from smpphub.router.esme import EsmeHandler
    from smpphub.router.routing import RouteTable

    up = Upstream(name="u", host="127.0.0.1", port=1, system_id="hub")
    config = HubConfig(upstreams=[up], accounts=[Account(system_id="acme", password="pw", source_addrs=["12345"])],
                       routes=[Route(prefix="44", upstreams=["u"])])
    store = MemoryStore()
    acceptor = CapturingAcceptor(Dispatcher(config, store, Deliveries(store, NoReceivers())))
    handler = EsmeHandler(config, store, acceptor, RouteTable.build(config), binds=None)  # type: ignore[arg-type]
    pdu = (SubmitSm if kind == "submit_sm" else DataSm)(source_addr="12345", destination_addr="447700900123", **fields)
    out = handler.admit_submit("acme", pdu)
    assert isinstance(out, Outgoing)
    assert (out.row.due, out.row.expires_at) == handler._times(pdu, out.row.created_at)
    other = (SubmitSm if kind == "submit_sm" else DataSm)(source_addr="54321", destination_addr="447700900123")
    assert handler.admit_submit("acme", other) == CommandStatus.ESME_RINVSRCADR  # the account's source filter holds
