"""lifecycle.apply_run against lifecycle.apply, one event at a time (the checked path behind it).

apply_run takes the two steps every message takes (Taken from QUEUED, SubmitOk from
IN_FLIGHT) inline and sends every other (state, event) to apply: over random rows in every
state and random runs of events, the rows, the transitions and where an event that a state
does not take stops the run must be the same as apply's, one row at a time.
"""

from __future__ import annotations

import copy

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from smpphub.router.lifecycle import (
    Due,
    Expire,
    InvalidTransition,
    MessageRow,
    ReceiptDelivered,
    RetryPolicy,
    State,
    SubmitOk,
    SubmitTemporary,
    Taken,
    Transition,
    apply,
    apply_run,
)

POLICY = RetryPolicy(initial=1.0, maximum=60.0)
NOW = 1_800_000_000.0

rows = st.builds(
    MessageRow,
    id=st.text("0123456789abcdef", min_size=1, max_size=16),
    account=st.just("acme"),
    pdu=st.just(b"\0" * 17),
    route=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3),
    state=st.sampled_from(list(State)),
    route_index=st.just(0),
    attempts=st.integers(0, 5),
    expires_at=st.none() | st.floats(NOW - 10, NOW + 10),
    registered_delivery=st.integers(0, 3),
    upstream=st.none() | st.sampled_from(["a", "b"]),
    upstream_id=st.none() | st.text("0123456789", min_size=1, max_size=8),
    error=st.integers(0, 0x45),
    receipt_owed=st.booleans(),
    updated_at=st.floats(NOW - 100, NOW),
)
events = st.one_of(
    st.builds(Taken, upstream=st.sampled_from(["a", "b"])),
    st.builds(SubmitOk, upstream_id=st.text("0123456789abcdef", min_size=1, max_size=10)),
    st.just(Due()), st.just(Expire()), st.just(ReceiptDelivered()),
    st.builds(SubmitTemporary, status=st.sampled_from([0x08, 0x14, 0x58])),
)


def one_at_a_time(rows: list[MessageRow], evs: list, moved: list[Transition]) -> type[Exception] | None:
    for row, event in zip(rows, evs):
        try:
            moved.append(apply(row, event, NOW, POLICY))
        except InvalidTransition:
            return InvalidTransition
    return None


def as_run(rows: list[MessageRow], evs: list, moved: list[Transition]) -> type[Exception] | None:
    try:
        apply_run(rows, evs, NOW, POLICY, moved)
    except InvalidTransition:
        return InvalidTransition
    return None


taken = st.builds(Taken, upstream=st.sampled_from(["a", "b"]))
submit_ok = st.builds(SubmitOk, upstream_id=st.text("0123456789abcdef", min_size=1, max_size=10))
# mostly the two steps from the states that take them (a run goes on), sometimes anything
pairs = st.one_of(
    st.tuples(rows.map(lambda r: msgspec.structs.replace(r, state=State.QUEUED)), taken),
    st.tuples(rows.map(lambda r: msgspec.structs.replace(r, state=State.IN_FLIGHT)), submit_ok),
    st.tuples(rows, events),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(pairs, max_size=12))
def test_a_run_moves_rows_as_apply_does_one_at_a_time(pairs):
    first = [row for row, _ in pairs]
    second = copy.deepcopy(first)
    evs = [event for _, event in pairs]
    by_one: list[Transition] = []
    by_run: list[Transition] = []
    assert one_at_a_time(first, evs, by_one) is as_run(second, evs, by_run)
    assert by_run == by_one
    assert [msgspec.structs.asdict(r) for r in second] == [msgspec.structs.asdict(r) for r in first]


def test_the_two_run_steps_are_taken_inline_and_every_other_goes_through_apply(monkeypatch):
    import smpphub.router.lifecycle as lifecycle

    seen: list[str] = []

    def counting(row, event, now, policy):
        seen.append(type(event).__name__)
        return apply(row, event, now, policy)

    monkeypatch.setattr(lifecycle, "apply", counting)
    queued = MessageRow(id="1", account="acme", pdu=b"", route=["a"], state=State.QUEUED)
    in_flight = MessageRow(id="2", account="acme", pdu=b"", route=["a"], state=State.IN_FLIGHT)
    scheduled = MessageRow(id="3", account="acme", pdu=b"", route=["a"], state=State.SCHEDULED, due=NOW - 1)
    moved: list[Transition] = []
    apply_run([queued, in_flight, scheduled], [Taken("a"), SubmitOk("77"), Due()], NOW, POLICY, moved)
    assert seen == ["Due"]
    assert [(t.before, t.after) for t in moved] == [(State.QUEUED, State.IN_FLIGHT), (State.IN_FLIGHT, State.SENT),
                                                    (State.SCHEDULED, State.QUEUED)]
    assert (queued.upstream, in_flight.upstream_id, in_flight.attempts) == ("a", "77", 1)
