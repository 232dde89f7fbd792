"""The trace ring: what a message's steps read as, and that a story is told whole or not at all."""

from __future__ import annotations

from smppcore import CommandStatus, MessageState
from smpphub.router.lifecycle import (
    MessageRow,
    Receipt,
    RetryPolicy,
    SubmitOk,
    SubmitTemporary,
    Taken,
    UpstreamDown,
    accept,
    apply,
)
from smpphub.router.trace import STEPS_PER_MESSAGE, Step, TraceRing

NOW = 1_000_000.0
POLICY = RetryPolicy(initial=1.0, maximum=60.0, default_attempts=1)


def new_row(message_id: str) -> MessageRow:
    return MessageRow(id=message_id, account="acme", pdu=b"", route=["a", "b"], registered_delivery=1,
                      expires_at=NOW + 3600)


def test_a_message_sent_and_delivered_reads_step_by_step() -> None:
    ring = TraceRing(10)
    row = new_row("m1")
    ring.record(accept(row, NOW))
    ring.record(apply(row, Taken("a"), NOW + 1, POLICY))
    ring.record(apply(row, SubmitOk("up-1"), NOW + 2, POLICY))
    ring.moved(row, apply(row, Receipt(MessageState.DELIVERED), NOW + 3, POLICY))
    ring.note("m1", "receipt_delivered", NOW + 4)
    assert ring.steps("m1", row.route) == [
        Step(NOW, "queued", "queued", "a"),
        Step(NOW + 1, "in_flight", "queued", "a"),
        Step(NOW + 2, "sent", "in_flight", "a"),
        Step(NOW + 3, "delivered", "sent", "a"),
        Step(NOW + 4, "receipt_delivered"),
    ]


def test_a_failover_names_the_upstream_waited_for_and_the_error_that_moved_it() -> None:
    ring = TraceRing(10)
    row = new_row("m1")
    ring.record(accept(row, NOW))
    ring.record(apply(row, Taken("a"), NOW + 1, POLICY))
    ring.record(apply(row, SubmitTemporary(CommandStatus.ESME_RSYSERR), NOW + 2, POLICY))  # attempts on a used up
    ring.record(apply(row, UpstreamDown(), NOW + 3, POLICY))  # b down too: parked
    assert ring.steps("m1", row.route) == [
        Step(NOW, "queued", "queued", "a"),
        Step(NOW + 1, "in_flight", "queued", "a"),
        Step(NOW + 2, "queued", "in_flight", "b", CommandStatus.ESME_RSYSERR),
        Step(NOW + 3, "parked", "queued", "a", CommandStatus.ESME_RSYSERR),
    ]


def test_the_steps_of_messages_together_stay_apart() -> None:
    ring = TraceRing(10)
    rows = [new_row("m1"), new_row("m2")]
    for row in rows:
        ring.record(accept(row, NOW))
    for row in rows:
        ring.record(apply(row, Taken("a"), NOW + 1, POLICY))
    assert [s.after for s in ring.steps("m2", rows[1].route) or []] == ["queued", "in_flight"]
    assert ring.steps("unknown", ["a"]) is None


def test_the_ring_is_bounded_and_a_story_whose_start_was_let_go_is_not_told() -> None:
    ring = TraceRing(2)
    first = new_row("first")
    ring.record(accept(first, NOW))
    for i in range(2 * STEPS_PER_MESSAGE):  # other messages' steps push the first one's acceptance out
        ring.record(accept(new_row(f"m{i}"), NOW + 1))
    ring.record(apply(first, Taken("a"), NOW + 2, POLICY))  # a later step of it is kept...
    assert len(ring) == 2 * STEPS_PER_MESSAGE
    assert ring.steps("first", first.route) is None  # ...but half a story would read as the whole of it
    assert [s.after for s in ring.steps(f"m{2 * STEPS_PER_MESSAGE - 1}", ["a"]) or []] == ["queued"]


def test_steps_of_a_message_taken_back_from_the_store_are_not_a_story() -> None:
    """Accepted before a restart (or spilled before its acceptance was recorded): no start, no steps."""
    ring = TraceRing(10)
    row = new_row("m1")
    accept(row, NOW)  # not recorded
    ring.record(apply(row, Taken("a"), NOW + 1, POLICY))
    assert ring.steps("m1", row.route) is None
