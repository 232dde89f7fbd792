"""router/messages.py: the in-memory table of messages, its timers and segment groups, with a fake clock."""

from __future__ import annotations

from smppcore import CommandStatus
from smpphub.router.lifecycle import (
    Cancel,
    MessageRow,
    RetryPolicy,
    State,
    SubmitOk,
    SubmitTemporary,
    Taken,
    UpstreamDown,
)
from smpphub.router.messages import MessageTable

NOW = 1_000_000.0
POLICY = RetryPolicy(initial=1.0, maximum=60.0, default_attempts=1)


def new_row(message_id: str, *, due: float = 0.0, expires_at: float | None = None, group: str = "") -> MessageRow:
    return MessageRow(id=message_id, account="acme", pdu=b"", route=["a", "b"], due=due, expires_at=expires_at, group=group)


def test_timers_fire_in_time_order_and_only_when_due() -> None:
    table = MessageTable(POLICY)
    table.accept(new_row("late", due=NOW + 20), NOW)
    table.accept(new_row("soon", due=NOW + 5), NOW)
    table.accept(new_row("expiring", due=NOW + 30, expires_at=NOW + 10), NOW)  # its validity ends first
    table.accept(new_row("now"), NOW)
    assert table.next_timer() == NOW + 5
    assert table.tick(NOW + 4.9) == []
    fired = table.tick(NOW + 10)
    assert [(c.row.id, c.transition.after) for c in fired] == [("soon", State.QUEUED), ("expiring", State.EXPIRED)]
    assert table.next_timer() == NOW + 20
    assert [(c.row.id, c.transition.after) for c in table.tick(NOW + 100)] == [("late", State.QUEUED)]
    assert table.next_timer() is None


def test_a_row_that_moves_leaves_its_old_timer_behind() -> None:
    table = MessageTable(POLICY)
    row = new_row("m", expires_at=NOW + 30)
    table.accept(row, NOW)
    table.apply(row, Taken("a"), NOW)  # in flight: no timer at all
    assert table.next_timer() is None
    table.apply(row, SubmitTemporary(CommandStatus.ESME_RSYSERR), NOW + 1)  # a's 1 attempt used: to b at once
    assert (row.state, row.target) == (State.QUEUED, "b")
    assert table.next_timer() is None  # queued: b checks its validity when it takes it
    table.apply(row, Taken("b"), NOW + 2)
    table.apply(row, SubmitOk("x"), NOW + 3)
    assert table.next_timer() is None and table.tick(NOW + 1000) == []


def test_a_failover_carries_the_waiting_segments_of_the_same_message() -> None:
    table = MessageTable(POLICY)
    parts = [new_row(f"p{i}", group="acme:447700900123:42") for i in range(3)]
    other = new_row("other", group="acme:447700900999:42")
    for row in (*parts, other):
        table.accept(row, NOW)
    table.take_changed()
    table.apply(parts[0], Taken("a"), NOW)  # written, not answered yet: it stays with a
    table.apply(parts[1], Taken("a"), NOW)
    changes = table.apply(parts[1], SubmitTemporary(CommandStatus.ESME_RSYSERR), NOW)
    assert [(c.row.id, c.row.target) for c in changes] == [("p1", "b"), ("p2", "b")]
    assert (parts[0].target, parts[0].state, other.target) == ("a", State.IN_FLIGHT, "a")
    assert sorted(r.id for r in table.take_changed()) == ["p1", "p2"]  # p0 in flight: not written
    assert table.take_changed() == []


def test_once_an_upstream_accepted_a_segment_the_others_stay_with_it() -> None:
    table = MessageTable(POLICY)  # one attempt per upstream: an unpinned segment would fail over at once
    parts = [new_row(f"p{i}", group="acme:447700900123:7") for i in range(3)]
    for row in parts:
        table.accept(row, NOW)
    table.apply(parts[0], Taken("a"), NOW)
    table.apply(parts[1], Taken("a"), NOW)
    changes = table.apply(parts[0], SubmitOk("x"), NOW)
    assert [(c.row.id, c.transition.after) for c in changes] == [
        ("p0", State.SENT), ("p1", State.IN_FLIGHT), ("p2", State.QUEUED)]
    assert (parts[1].pinned, parts[2].pinned) == (True, True)
    changes = table.apply(parts[1], SubmitTemporary(CommandStatus.ESME_RSYSERR), NOW)
    assert [(c.row.id, c.row.state, c.row.target) for c in changes] == [("p1", State.SCHEDULED, "a")]
    assert parts[2].target == "a"
    table.apply(parts[2], UpstreamDown(), NOW)  # a down altogether: the rest may leave it
    assert (parts[2].target, parts[2].pinned) == ("b", False)


def test_upstream_down_moves_siblings_too_and_release_forgets_the_row() -> None:
    table = MessageTable(POLICY)
    a, b = new_row("a1", group="g"), new_row("a2", group="g")
    table.accept(a, NOW)
    table.accept(b, NOW)
    table.apply(a, UpstreamDown(), NOW)
    assert (a.target, b.target) == ("b", "b")
    table.apply(b, Cancel(), NOW)
    assert table.counts() == {"queued": 1, "cancelled": 1}
    assert [r.id for r in table.finals()] == ["a2"]
    assert table.release("a2") is b and "a2" not in table and len(table) == 1
    table.apply(a, UpstreamDown(), NOW)  # the group has only a1 left: nothing else follows
    assert a.state is State.PARKED
