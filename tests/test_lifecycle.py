"""The message lifecycle (router/lifecycle.py) walked state by state, with a fake clock.

The grid below is written out by hand from the design (not derived from
``TRANSITIONS``): for every state and every event it says where a canonical message
goes, or ``None`` when the event is impossible there and must raise.
"""

from __future__ import annotations

import pytest

from smppcore import CommandStatus
from smppcore import MessageState as SmppState
from smpphub.router.lifecycle import (
    FINAL_STATES,
    TRANSITIONS,
    Accepted,
    Cancel,
    Due,
    Event,
    Expire,
    Failover,
    Intermediate,
    InvalidTransition,
    MessageRow,
    Receipt,
    ReceiptDelivered,
    ReceiptDropped,
    Replace,
    Restarted,
    RetryPolicy,
    SiblingAccepted,
    State,
    SubmitOk,
    SubmitPermanent,
    SubmitTemporary,
    Taken,
    UpstreamDown,
    UpstreamUp,
    accept,
    apply,
    smpp_state,
)

NOW = 1_000_000.0
POLICY = RetryPolicy(initial=1.0, maximum=60.0, throttled_maximum=1.0, attempts_per_upstream={"a": 3, "b": 2})

S = State
EVENTS: dict[str, Event] = {
    "due": Due(),
    "taken": Taken("a"),
    "ok": SubmitOk("up-1"),
    "temporary": SubmitTemporary(CommandStatus.ESME_RSYSERR),
    "permanent": SubmitPermanent(CommandStatus.ESME_RINVDSTADR),
    "down": UpstreamDown(),
    "up": UpstreamUp(),
    "failover": Failover(0),
    "receipt": Receipt(SmppState.DELIVERED),
    "intermediate": Intermediate(),
    "expire": Expire(),
    "cancel": Cancel(),
    "replace": Replace(due=0.0, expires_at=NOW + 3600),
    "receipt_delivered": ReceiptDelivered(),
    "receipt_dropped": ReceiptDropped(),
    "restarted": Restarted(),
    "sibling_accepted": SiblingAccepted(0),
}

# state -> event -> next state for the canonical message below (None: InvalidTransition).
# The canonical message: route [a, b], route_index 0, first attempt, due in the past, expired
# (only for the "expire" column), registered_delivery 1 (a receipt is owed on any final state).
GRID: dict[State, dict[str, State | None]] = {
    S.SCHEDULED: {"due": S.QUEUED, "taken": None, "ok": None, "temporary": None, "permanent": None, "down": None,
                  "up": None, "failover": S.SCHEDULED, "receipt": None, "intermediate": None, "expire": S.EXPIRED,
                  "cancel": S.CANCELLED, "replace": S.QUEUED, "receipt_delivered": None,
                  "receipt_dropped": None, "restarted": None, "sibling_accepted": S.SCHEDULED},
    S.QUEUED: {"due": None, "taken": S.IN_FLIGHT, "ok": None, "temporary": None, "permanent": None, "down": S.QUEUED,
               "up": None, "failover": S.QUEUED, "receipt": None, "intermediate": None, "expire": S.EXPIRED,
               "cancel": S.CANCELLED, "replace": S.QUEUED, "receipt_delivered": None,
               "receipt_dropped": None, "restarted": None, "sibling_accepted": S.QUEUED},
    S.PARKED: {"due": None, "taken": None, "ok": None, "temporary": None, "permanent": None, "down": None,
               "up": S.QUEUED, "failover": S.PARKED, "receipt": None, "intermediate": None, "expire": S.EXPIRED,
               "cancel": S.CANCELLED, "replace": S.PARKED, "receipt_delivered": None,
               "receipt_dropped": None, "restarted": None, "sibling_accepted": S.PARKED},
    S.IN_FLIGHT: {"due": None, "taken": None, "ok": S.SENT, "temporary": S.SCHEDULED, "permanent": S.UNDELIVERABLE,
                  "down": S.QUEUED, "up": None, "failover": None, "receipt": None, "intermediate": None,
                  "expire": None, "cancel": None, "replace": None, "receipt_delivered": None,
                  "receipt_dropped": None, "restarted": S.QUEUED, "sibling_accepted": S.IN_FLIGHT},
    S.SENT: {"due": None, "taken": None, "ok": None, "temporary": None, "permanent": None, "down": None, "up": None,
             "failover": None, "receipt": S.DELIVERED, "intermediate": S.SENT, "expire": None, "cancel": None,
             "replace": None, "receipt_delivered": None, "receipt_dropped": None, "restarted": None,
             "sibling_accepted": None},
    **{final: {**{name: None for name in EVENTS}, "receipt_delivered": final, "receipt_dropped": final}
       for final in FINAL_STATES},
}


def row_in(state: State, **fields: object) -> MessageRow:
    defaults: dict[str, object] = dict(id="m1", account="acme", pdu=b"", route=["a", "b"], state=state,
                                       registered_delivery=1, due=NOW - 1, expires_at=NOW + 3600,
                                       receipt_owed=state in FINAL_STATES)
    defaults.update(fields)
    return MessageRow(**defaults)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
@pytest.mark.parametrize("name", list(EVENTS))
def test_every_state_and_event(state: State, name: str) -> None:
    event = EVENTS[name]
    row = row_in(state, expires_at=NOW - 1 if name == "expire" else NOW + 3600)
    expected = GRID[state][name]
    if expected is None:
        with pytest.raises(InvalidTransition):
            apply(row, event, NOW, POLICY)
        assert row.state is state  # a refused event changes nothing
        return
    result = apply(row, event, NOW, POLICY)
    assert (result.before, result.after, row.state) == (state, expected, expected)
    assert expected in TRANSITIONS[(state, type(event))]
    # every event stamps the row but the receipt's delivery, which changes nothing of the message
    assert row.updated_at == (0.0 if name in ("receipt_delivered", "receipt_dropped") else NOW)


def test_the_table_lists_exactly_the_grid() -> None:
    listed = {(state, type(event)) for state in State for name, event in EVENTS.items() if GRID[state][name] is not None}
    assert listed == set(TRANSITIONS)


def test_accept_schedules_or_queues() -> None:
    later = row_in(S.QUEUED, due=NOW + 60)
    assert accept(later, NOW) == Accepted(S.QUEUED, S.SCHEDULED, message_id=later.id, at=NOW)
    assert later.next_timer() == NOW + 60
    now = row_in(S.QUEUED, due=0.0)
    assert accept(now, NOW).after is S.QUEUED
    assert now.next_timer() is None  # queued: its upstream checks its validity when it takes it
    assert now.expired(NOW + 3600) and not now.expired(NOW + 3599)
    assert (now.created_at, now.updated_at) == (NOW, NOW)


def test_temporary_failures_back_off_then_fail_over_then_restart_the_route() -> None:
    row = row_in(S.QUEUED)
    t = NOW
    steps = []
    for _ in range(6):
        if row.state is S.SCHEDULED:
            t = row.due
            apply(row, Due(), t, POLICY)
        apply(row, Taken(row.target), t, POLICY)
        result = apply(row, SubmitTemporary(CommandStatus.ESME_RSYSERR), t, POLICY)
        steps.append((row.state, row.target, row.due - t if row.state is S.SCHEDULED else None, result.failed_over_from))
    assert steps == [
        (S.SCHEDULED, "a", 1.0, None),  # a: 1st failure, retry in 1 s
        (S.SCHEDULED, "a", 2.0, None),  # 2nd, in 2 s
        (S.QUEUED, "b", None, 0),  # 3rd = a's max_attempts: fail over to b at once
        (S.SCHEDULED, "b", 1.0, None),  # b: 1st failure
        (S.SCHEDULED, "a", 32.0, 1),  # b's 2nd = its max: route exhausted, back off 2**5 (attempts), from a again
        (S.SCHEDULED, "a", 1.0, None),
    ]
    assert row.attempts == 6 and row.error == CommandStatus.ESME_RSYSERR


def test_throttled_answers_retry_within_a_second() -> None:
    policy = RetryPolicy(initial=5.0, maximum=60.0, throttled_maximum=1.0, default_attempts=10)
    row = row_in(S.IN_FLIGHT, upstream="a", attempts_here=4)
    apply(row, SubmitTemporary(CommandStatus.ESME_RTHROTTLED, throttled=True), NOW, policy)
    assert (row.state, row.due) == (S.SCHEDULED, NOW + 1.0)
    row2 = row_in(S.IN_FLIGHT, upstream="a", attempts_here=1)
    apply(row2, SubmitTemporary(CommandStatus.ESME_RMSGQFUL), NOW, policy)
    assert row2.due == NOW + 10.0


def test_a_temporary_failure_after_the_validity_expires_the_message() -> None:
    row = row_in(S.IN_FLIGHT, upstream="a", expires_at=NOW - 0.5)
    apply(row, SubmitTemporary(CommandStatus.ESME_RSYSERR), NOW, POLICY)
    assert row.state is S.EXPIRED and row.receipt_owed


def test_scheduled_past_its_validity_expires_at_the_expiry_not_at_the_due_time() -> None:
    row = row_in(S.QUEUED, due=NOW + 100, expires_at=NOW + 50)
    accept(row, NOW)
    assert row.next_timer() == NOW + 50
    with pytest.raises(InvalidTransition):
        apply(row, Expire(), NOW + 49, POLICY)  # too early: the caller's clock is wrong
    assert apply(row, Expire(), NOW + 50, POLICY).after is S.EXPIRED
    late = row_in(S.SCHEDULED, due=NOW + 10, expires_at=NOW + 5)
    assert apply(late, Due(), NOW + 10, POLICY).after is S.EXPIRED


def test_upstreams_down_park_the_message_until_one_comes_back() -> None:
    row = row_in(S.QUEUED)
    assert apply(row, UpstreamDown(), NOW, POLICY).failed_over_from == 0
    assert (row.state, row.target) == (S.QUEUED, "b")
    apply(row, UpstreamDown(), NOW, POLICY)
    assert (row.state, row.next_timer()) == (S.PARKED, NOW + 3600)
    apply(row, UpstreamUp(), NOW + 1, POLICY)
    assert (row.state, row.target, row.attempts_here) == (S.QUEUED, "a", 0)


def test_a_lost_connection_sends_it_again_elsewhere_and_counts_the_attempt() -> None:
    row = row_in(S.IN_FLIGHT, upstream="a")
    result = apply(row, UpstreamDown(), NOW, POLICY)
    assert (row.state, row.target, row.attempts, result.failed_over_from) == (S.QUEUED, "b", 1, 0)


def test_siblings_follow_a_failover_once() -> None:
    waiting = row_in(S.QUEUED)
    apply(waiting, Failover(0), NOW, POLICY)
    assert waiting.target == "b"
    apply(waiting, Failover(0), NOW, POLICY)  # a second sibling failing over from a: already moved
    assert waiting.target == "b"
    last = row_in(S.SCHEDULED, route_index=1)
    apply(last, Failover(1), NOW, POLICY)  # nowhere further to go: it stays, its own failure decides
    assert last.target == "b"


def test_a_restart_writes_an_unanswered_message_again_to_the_same_upstream() -> None:
    row = row_in(S.IN_FLIGHT, upstream="b", route_index=1, attempts=2)
    apply(row, Restarted(), NOW, POLICY)
    assert (row.state, row.target, row.attempts) == (S.QUEUED, "b", 3)


def test_a_segment_pinned_by_an_accepted_sibling_retries_there_instead_of_failing_over() -> None:
    row = row_in(S.QUEUED)
    apply(row, SiblingAccepted(1), NOW, POLICY)  # accepted elsewhere on the route: not its upstream
    assert row.pinned is False
    apply(row, SiblingAccepted(0), NOW, POLICY)
    assert row.pinned is True
    t = NOW
    for attempt in range(1, 8):  # far past a's 3 attempts: still a, back-off growing to its cap
        apply(row, Taken("a"), t, POLICY)
        apply(row, SubmitTemporary(CommandStatus.ESME_RSYSERR), t, POLICY)
        assert (row.state, row.target, row.due - t) == (S.SCHEDULED, "a", min(60.0, 2.0 ** (attempt - 1)))
        t = row.due
        apply(row, Due(), t, POLICY)
    apply(row, UpstreamDown(), t, POLICY)  # a is gone altogether: it fails over after all
    assert (row.state, row.target, row.pinned) == (S.QUEUED, "b", False)


def test_a_pinned_segment_fails_over_after_pinned_attempts() -> None:
    policy = RetryPolicy(initial=1.0, maximum=60.0, default_attempts=1, pinned_attempts=4)
    row = row_in(S.QUEUED, pinned=True)
    t = NOW
    for _ in range(3):
        apply(row, Taken("a"), t, policy)
        apply(row, SubmitTemporary(CommandStatus.ESME_RMSGQFUL), t, policy)
        assert (row.state, row.target) == (S.SCHEDULED, "a")
        t = row.due
        apply(row, Due(), t, policy)
    apply(row, Taken("a"), t, policy)
    result = apply(row, SubmitTemporary(CommandStatus.ESME_RMSGQFUL), t, policy)
    assert (row.state, row.target, row.pinned, result.failed_over_from) == (S.QUEUED, "b", False, 0)


def test_retry_delay_never_overflows() -> None:
    assert POLICY.retry_delay(10_000, throttled=False) == 60.0


def test_success_records_the_upstream_and_its_id() -> None:
    row = row_in(S.QUEUED)
    apply(row, Taken("a"), NOW, POLICY)
    apply(row, SubmitOk("5f3a"), NOW + 0.01, POLICY)
    assert (row.state, row.upstream, row.upstream_id, row.attempts, row.receipt_owed) == (S.SENT, "a", "5f3a", 1, False)


@pytest.mark.parametrize(
    ("smpp", "final"),
    [(SmppState.DELIVERED, S.DELIVERED), (SmppState.EXPIRED, S.EXPIRED), (SmppState.DELETED, S.CANCELLED),
     (SmppState.UNDELIVERABLE, S.UNDELIVERABLE), (SmppState.REJECTED, S.REJECTED), (SmppState.UNKNOWN, S.UNDELIVERABLE)],
)
def test_final_receipts(smpp: SmppState, final: State) -> None:
    row = row_in(S.SENT, upstream="a", upstream_id="x")
    apply(row, Receipt(smpp, error=0x0B), NOW, POLICY)
    assert (row.state, row.error) == (final, 0x0B)
    assert smpp_state(final) == (SmppState.UNDELIVERABLE if smpp is SmppState.UNKNOWN else smpp)


# registered_delivery bits 0-1 (SMPP 3.4 5.2.17; 3 as SMPP 5.0 defines it) x outcome -> receipt owed
@pytest.mark.parametrize(
    ("registered_delivery", "outcome", "owed"),
    [
        (0, SmppState.DELIVERED, False), (0, SmppState.UNDELIVERABLE, False),
        (1, SmppState.DELIVERED, True), (1, SmppState.UNDELIVERABLE, True),
        (2, SmppState.DELIVERED, False), (2, SmppState.UNDELIVERABLE, True), (2, SmppState.EXPIRED, True),
        (3, SmppState.DELIVERED, True), (3, SmppState.UNDELIVERABLE, False),
        (0x11, SmppState.DELIVERED, True), (0x10, SmppState.DELIVERED, False),
    ],
)
def test_receipt_owed_by_registered_delivery(registered_delivery: int, outcome: SmppState, owed: bool) -> None:
    row = row_in(S.SENT, registered_delivery=registered_delivery)
    apply(row, Receipt(outcome), NOW, POLICY)
    assert row.receipt_owed is owed
    if owed:
        apply(row, ReceiptDelivered(), NOW + 1, POLICY)
        assert row.receipt_owed is False
    with pytest.raises(InvalidTransition):  # nothing (more) is owed
        apply(row, ReceiptDelivered(), NOW + 2, POLICY)


@pytest.mark.parametrize("settled", [ReceiptDelivered(), ReceiptDropped()])
def test_the_receipts_delivery_keeps_the_time_of_the_last_change(settled: Event) -> None:
    """updated_at is the time of the message's last change of state (a receipt's done date),
    in memory as in the store, whose acknowledgement does not write the row."""
    row = row_in(S.SENT, registered_delivery=1)
    apply(row, Receipt(SmppState.DELIVERED), NOW, POLICY)
    assert row.updated_at == NOW
    apply(row, settled, NOW + 5, POLICY)
    assert row.receipt_owed is False and row.updated_at == NOW


def test_hub_decided_outcomes_owe_failure_receipts() -> None:
    for event, final in ((Cancel(), S.CANCELLED), (SubmitPermanent(CommandStatus.ESME_RINVDSTADR), S.UNDELIVERABLE)):
        for rd, owed in ((0, False), (1, True), (2, True), (3, False)):
            row = row_in(S.IN_FLIGHT if isinstance(event, SubmitPermanent) else S.QUEUED, registered_delivery=rd)
            apply(row, event, NOW, POLICY)
            assert (row.state, row.receipt_owed) == (final, owed), (event, rd)


def test_intermediate_notifications_are_forwarded_only_when_asked() -> None:
    asked = row_in(S.SENT, registered_delivery=0x11)
    assert apply(asked, Intermediate(), NOW, POLICY).forward_intermediate is True
    not_asked = row_in(S.SENT, registered_delivery=0x01)
    assert apply(not_asked, Intermediate(), NOW, POLICY).forward_intermediate is False
    assert not_asked.state is S.SENT


def test_a_duplicate_receipt_is_refused_explicitly() -> None:
    row = row_in(S.SENT)
    apply(row, Receipt(SmppState.DELIVERED), NOW, POLICY)
    with pytest.raises(InvalidTransition) as info:
        apply(row, Receipt(SmppState.DELIVERED), NOW + 1, POLICY)
    assert info.value.state is S.DELIVERED and "cannot take Receipt" in str(info.value)


def test_replace_moves_the_times() -> None:
    row = row_in(S.QUEUED)
    apply(row, Replace(due=NOW + 30, expires_at=NOW + 90, registered_delivery=2), NOW, POLICY)
    assert (row.state, row.due, row.expires_at, row.registered_delivery) == (S.SCHEDULED, NOW + 30, NOW + 90, 2)
    apply(row, Replace(due=0.0, expires_at=None), NOW + 1, POLICY)
    assert (row.state, row.next_timer(), row.registered_delivery) == (S.QUEUED, None, 2)
