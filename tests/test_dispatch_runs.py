"""The dispatcher's runs against its general path, one row at a time.

A commit's messages accepted, a pool's turn taken and a run of its answers are moved by
the table in one loop (MessageTable.accept_all / move_all) and stepped in one
(Dispatcher._steps: IN_FLIGHT, SENT and a new target's QUEUED without a call of _step;
a run's pool looked up once for each change of target). Each is pinned here to the
path it shortcuts: the same rows given one at a time, stepped through _step (the path
taken while the message log is on), whatever the run holds: messages in one piece and
segments of long messages, due now or later, for an upstream that is up or down, on a
route of one upstream or two, answered ok, "not now", refused or not at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smppcore import CommandStatus, GenericNack, Pdu, SubmitSm, SubmitSmResp, encode
from smpphub.router.config import HubConfig, Upstream
from smpphub.router.delivery import Deliveries
from smpphub.router.dispatch import Dispatcher
from smpphub.router.lifecycle import InvalidTransition, MessageRow, RetryPolicy, State, Transition
from smpphub.router.lifecycle_events import Cancel, Event, Taken
from smpphub.router.messages import MessageTable
from smpphub.router.stats import HubStats
from smpphub.router.store.memory import MemoryStore
from smpphub.router.trace import TraceRing
from smpphub.router.upstream import Outgoing, UpstreamPool

NOW = 1_790_000_000.0


class NoReceivers:
    def receivers(self, account: str) -> list[Any]:
        return []


class StepLog:
    """A message log that is on: every step goes through Dispatcher._step, one at a time."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, State, State]] = []

    def moved(self, out: Outgoing | None, row: MessageRow, transition: Transition, now: float) -> None:
        self.steps.append((row.id, transition.before, transition.after))


def dispatcher(general: bool, v_up: bool) -> Dispatcher:
    ups = [Upstream(name=n, host="127.0.0.1", port=i + 1, system_id="hub") for i, n in enumerate("uv")]
    store = MemoryStore()
    d = Dispatcher(HubConfig(upstreams=ups), store, Deliveries(store, NoReceivers()), clock=lambda: NOW,
                   stats=HubStats())
    for up in ups:
        pool = UpstreamPool(up, d)
        pool.links_up = 1 if up.name == "u" or v_up else 0
        d.pools[up.name] = pool
    ring = TraceRing(1000)
    d._record = ring.record
    if general:
        d.msglog = StepLog()  # type: ignore[assignment]
        d._msglog_on = True
    return d


def outgoing(spec: tuple[int, str, bool, bool], i: int) -> Outgoing:
    group, route, later, wants = spec
    pdu = SubmitSm(destination_addr="447700900123", short_message=b"m%d" % i, registered_delivery=int(wants))
    row = MessageRow(id=f"m{i}", account="acme", pdu=encode(pdu), route=list(route), group=f"g{group}" if group else "",
                     due=NOW + 5 if later else 0.0, expires_at=NOW + 600, registered_delivery=int(wants),
                     created_at=NOW - 1)
    return Outgoing(row, pdu)


def answer(kind: str, seq: int) -> Pdu:
    if kind == "nack":
        return GenericNack(seq, CommandStatus.ESME_RINVCMDLEN)
    status = {"ok": 0, "throttled": CommandStatus.ESME_RTHROTTLED, "invdst": CommandStatus.ESME_RINVDSTADR}[kind]
    return SubmitSmResp(sequence_number=seq, command_status=status, message_id=f"up{seq}" if not status else "")


def answers(turn: list[Outgoing], kinds: list[str]) -> list[tuple[Outgoing, Pdu]]:
    """The answers a turn gets (``kinds[i]`` for ``turn[i]``), but those that get none."""
    return [(out, answer(kind, i + 1)) for i, (out, kind) in enumerate(zip(turn, kinds[: len(turn)], strict=True))
            if kind != "none"]


def snapshot(d: Dispatcher) -> tuple[Any, ...]:
    rows = sorted((r.id, r.state, r.route_index, r.upstream, r.upstream_id, r.error, r.due, r.attempts, r.pinned)
                  for r in d.table)
    queues = {name: [out.row.id for out in pool.queue] for name, pool in d.pools.items()}
    assert d._record is not None
    # each message's steps in the ring, in order (a run records its commit's acceptances before it
    # hands them over: one message's steps may come between another's, never out of its own order)
    ring: dict[str, list[tuple[State, State, str | None, int]]] = {}
    for t in d._record.__self__:  # type: ignore[attr-defined]
        ring.setdefault(t.message_id, []).append((t.before, t.after, t.upstream, t.route_index))
    return (rows, queues, sorted(d.parked), sorted(d.outgoing), sorted(d.receipts.awaiting), dict(d.stats.sent),
            d.stats.temporary_failures, d.stats.permanent_failures, sorted(r.id for r in d.table._changed.values()),
            ring)


MESSAGES = st.lists(
    st.tuples(st.sampled_from([0, 0, 0, 1, 2]), st.sampled_from(["uv", "vu", "u", "v"]), st.booleans(), st.booleans()),
    min_size=1, max_size=10,
)
ANSWERS = st.lists(st.sampled_from(["ok", "ok", "ok", "throttled", "invdst", "nack", "none"]), min_size=10, max_size=10)


@settings(max_examples=150, deadline=None)
@given(MESSAGES, ANSWERS, st.booleans())
def test_runs_leave_the_dispatcher_as_rows_stepped_one_at_a_time(specs: list[Any], kinds: list[str],
                                                                    v_up: bool) -> None:
    async def both() -> None:  # in a loop: a refused message owes its ESME a receipt, queued in an outbox
        run, alone = dispatcher(False, v_up), dispatcher(True, v_up)
        run.loop = alone.loop = asyncio.get_running_loop()
        outs_run = [outgoing(spec, i) for i, spec in enumerate(specs)]
        outs_alone = [outgoing(spec, i) for i, spec in enumerate(specs)]
        run.accept_all(outs_run)
        for out in outs_alone:
            alone.accept_all([out])
        assert snapshot(run) == snapshot(alone)
        for name in "uv":
            pool_r, pool_a = run.pools[name], alone.pools[name]
            turn_r = run.still_for(list(pool_r.queue), pool_r)
            turn_a = alone.still_for(list(pool_a.queue), pool_a)
            pool_r.queue.clear()
            pool_a.queue.clear()
            run.taken(turn_r, pool_r)
            for out in turn_a:
                alone.taken([out], pool_a)
            assert snapshot(run) == snapshot(alone)
            answered_r, answered_a = answers(turn_r, kinds), answers(turn_a, kinds)
            if answered_r:
                run.answered([o for o, _ in answered_r], pool_r, [a for _, a in answered_r])
            for out, response in answered_a:
                alone.answered([out], pool_a, [response])
            assert snapshot(run) == snapshot(alone)

    asyncio.run(both())


ROWS = st.lists(st.tuples(st.sampled_from(["", "", "g1", "g2"]), st.booleans()), min_size=1, max_size=12)


@given(ROWS)
def test_the_tables_runs_hold_move_and_release_as_one_row_at_a_time(specs: list[tuple[str, bool]]) -> None:
    def rows() -> list[MessageRow]:
        return [MessageRow(id=f"m{i}", account="a", pdu=b"", route=["u"], group=group, due=NOW + 5 if later else 0.0,
                           expires_at=NOW + 600) for i, (group, later) in enumerate(specs)]

    def state(table: MessageTable, moved: list[Transition]) -> tuple[Any, ...]:
        return (sorted(table.rows), {g: list(m) for g, m in table._groups.items()}, dict(table._armed),
                sorted(table._changed), [(t.message_id, t.before, t.after) for t in moved], len(table._heap))

    policy = RetryPolicy(initial=1.0, maximum=10.0)
    run, alone = MessageTable(policy), MessageTable(policy)
    rows_run, rows_alone = rows(), rows()
    moved_run = run.accept_all(rows_run, NOW)
    moved_alone = [alone.accept(row, NOW) for row in rows_alone]
    assert state(run, moved_run) == state(alone, moved_alone)
    # taken (IN_FLIGHT: not written, no timer) or cancelled (final: written, its timer stale)
    events: list[Event] = [Taken("u") if row.state is State.QUEUED else Cancel() for row in rows_run]
    moved_run = []
    run.move_all(rows_run, events, NOW + 1, moved_run)
    moved_alone = [alone.move(row, event, NOW + 1) for row, event in zip(rows_alone, events, strict=True)]
    assert state(run, moved_run) == state(alone, moved_alone)
    run.release_all(rows_run[::2])
    for row in rows_alone[::2]:
        alone.release(row.id)
    assert state(run, []) == state(alone, [])


@given(st.lists(st.booleans(), min_size=1, max_size=8))
def test_a_run_that_meets_an_event_its_row_does_not_take_says_how_far_it_went(later: list[bool]) -> None:
    table = MessageTable(RetryPolicy())
    rows = [MessageRow(id=f"m{i}", account="a", pdu=b"", route=["u"], due=NOW + 5 if t else 0.0)
            for i, t in enumerate(later)]
    table.accept_all(rows, NOW)
    moved: list[Transition] = []
    first_scheduled = later.index(True) if True in later else len(later)
    try:
        table.move_all(rows, [Taken("u")] * len(rows), NOW, moved)  # a SCHEDULED message is not taken
    except InvalidTransition:
        assert first_scheduled < len(later)
    assert [t.message_id for t in moved] == [row.id for row in rows[:first_scheduled]]
    assert [row.state for row in rows[first_scheduled:]] == [  # the rest did not move
        State.SCHEDULED if t else State.QUEUED for t in later[first_scheduled:]]


@given(st.lists(st.sampled_from([None, -1.0, 0.0, 1.0]), min_size=1, max_size=8))
def test_a_turn_keeps_what_has_not_expired_as_the_row_says(ends: list[float | None]) -> None:
    """still_for reads a row's validity itself (no call of MessageRow.expired a message): it keeps
    exactly those the row says have not expired at the turn's time, and expires the others."""
    async def turn() -> None:
        d = dispatcher(False, True)
        d.loop = asyncio.get_running_loop()
        outs = [outgoing((0, "u", False, False), i) for i in range(len(ends))]
        for out, end in zip(outs, ends, strict=True):
            out.row.expires_at = None if end is None else NOW + end
        d.accept_all(outs)
        pool = d.pools["u"]
        queued = list(pool.queue)
        pool.queue.clear()
        expected = [out for out in queued if not out.row.expired(NOW)]
        assert d.still_for(queued, pool) == expected
        assert [out.row.state for out in outs] == [
            State.QUEUED if out in expected else State.EXPIRED for out in outs]

    asyncio.run(turn())
