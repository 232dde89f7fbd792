"""The messages the hub holds in memory, their timers and their segment groups (sans-IO).

:mod:`router.lifecycle` moves one message; this table moves many. It keeps the
rows that are in flight or due soon, one heap of their timers (scheduled times,
back-offs, validity ends), and the segments of each long message together so that
a failover of one segment moves its siblings that have not left yet. Like the
lifecycle it never reads a clock: :meth:`MessageTable.next_timer` says when to wake
it and :meth:`MessageTable.tick` fires what is due at the time given.

Every row it changed since the last :meth:`MessageTable.take_changed` is kept in one
list, so the adapter writes all the state changes of one event-loop turn to the
store together. A message that only went IN_FLIGHT is not among them: a restart
would send it again whether or not the store knew it was written (at least once),
so that write would buy nothing.

Rows come in, move and leave in runs too (:meth:`MessageTable.accept_all`,
:meth:`~MessageTable.move_all`, :meth:`~MessageTable.release_all`): a group commit, a
pool's turn, a read's answers. The one-row methods are those runs of one, so each rule
is written once.

Timer entries are never removed from the heap when a row moves; they are found
stale when they reach its top. So that a busy hub (every message has a validity
timer while it is queued) does not pile them up, the heap is rebuilt from the live
timers whenever stale entries outnumber them.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence

from .lifecycle import (
    FINAL_STATES,
    TIMED_STATES,
    UNWRITTEN_STATES,
    WAITING_STATES,
    MessageRow,
    RetryPolicy,
    State,
    Transition,
    accept,
    apply_run,
)
from .lifecycle_events import Due, Event, Expire, Failover, SiblingAccepted

__all__ = ["MessageTable", "Change"]

#: the states a segment can be pinned in (see lifecycle.SiblingAccepted)
_PINNABLE = WAITING_STATES | {State.IN_FLIGHT}
# named in apply, which every event of a segment of a long message takes, by module constants:
# see smppcore.constants on Enum members on a hot path
_IN_FLIGHT, _SENT = State.IN_FLIGHT, State.SENT


class Change:
    """One row moved by one event (a sibling that followed a failover is a change of its own).

    ``new_target``: it waits for an upstream whose pool does not hold it yet, though its
    state may not say so (a message just accepted, due now, is QUEUED before and after;
    so is a sibling that followed a failover).
    """

    __slots__ = ("row", "transition", "new_target")

    def __init__(self, row: MessageRow, transition: Transition, new_target: bool = False) -> None:
        self.row = row
        self.transition = transition
        self.new_target = new_target

    def __repr__(self) -> str:
        return f"Change({self.row.id}: {self.transition.before.value} -> {self.transition.after.value})"


class MessageTable:
    """Rows by id, a timer heap, segment groups, and the rows changed since the last write."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.rows: dict[str, MessageRow] = {}
        self._groups: dict[str, dict[str, None]] = {}  # group -> its ids in memory, in the order they came
        # (when, tie-breaker, id): entries are never removed, only found stale when popped
        self._heap: list[tuple[float, int, str]] = []
        self._armed: dict[str, float] = {}  # id -> the time its live heap entry is for
        self._seq = itertools.count()
        self._changed: dict[str, MessageRow] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, message_id: str) -> bool:
        return message_id in self.rows

    def __iter__(self) -> Iterator[MessageRow]:
        return iter(self.rows.values())

    def get(self, message_id: str) -> MessageRow | None:
        return self.rows.get(message_id)

    # ---- rows in and out ----------------------------------------------------------

    def accept(self, row: MessageRow, now: float) -> Transition:
        """A new message: SCHEDULED or QUEUED (:func:`lifecycle.accept`), held from now on.

        No pool holds it yet, whatever its state: a :class:`Change` of it would say ``new_target``.
        """
        return self.accept_all([row], now)[0]

    def accept_all(self, rows: list[MessageRow], now: float) -> list[Transition]:
        """:meth:`accept` of each of ``rows`` (one group commit's), their transitions in order.

        One loop for the commit: a call of ``accept`` and of ``hold`` a message was most of
        what the table cost it on the way in.
        """
        transitions = [accept(row, now) for row in rows]
        self.hold_all(rows)
        return transitions

    def hold(self, row: MessageRow) -> None:
        """Keep ``row`` (new, or loaded back from the store) and arm its timer."""
        self.hold_all((row,))

    def hold_all(self, rows: Iterable[MessageRow]) -> None:
        """:meth:`hold` of each of ``rows``, in one loop."""
        held = self.rows
        groups = self._groups
        for row in rows:
            held[row.id] = row
            if row.group:
                groups.setdefault(row.group, {})[row.id] = None
            if row.state in TIMED_STATES:
                self._arm(row)

    def release(self, message_id: str) -> MessageRow | None:
        """Forget a row (final and written, or sent away to wait in the store only)."""
        row = self.rows.get(message_id)
        if row is not None:
            self.release_all((row,))
        return row

    def release_all(self, rows: Iterable[MessageRow]) -> None:
        """:meth:`release` of each of ``rows`` (a run of answers' SENT rows), in one loop."""
        held = self.rows
        armed = self._armed
        for row in rows:
            if held.pop(row.id, None) is not None:
                armed.pop(row.id, None)
                if row.group:
                    self._ungroup(row)

    def _ungroup(self, row: MessageRow) -> None:
        members = self._groups.get(row.group)
        if members is not None:
            members.pop(row.id, None)
            if not members:
                del self._groups[row.group]

    # ---- events ---------------------------------------------------------------------

    def apply(self, row: MessageRow, event: Event, now: float) -> list[Change]:
        """Apply ``event`` to ``row``; a failover carries the waiting siblings along.

        Raises :class:`lifecycle.InvalidTransition` (and changes nothing) when the
        row's state does not take the event.
        """
        transition = self.move(row, event, now)
        changes = [Change(row, transition)]
        if not row.group:
            return changes
        if transition.before is _IN_FLIGHT and transition.after is _SENT:
            accepted = SiblingAccepted(row.route_index)
            for sibling in self._siblings(row):
                if sibling.state in _PINNABLE and not sibling.pinned and sibling.route_index == row.route_index:
                    changes.append(Change(sibling, self.move(sibling, accepted, now)))
        elif transition.failed_over_from is not None:
            follow = Failover(transition.failed_over_from)
            for sibling in self._siblings(row):
                if sibling.state in WAITING_STATES:
                    # written even when it stays (it waited elsewhere): its updated_at moved all the same
                    before = sibling.route_index
                    changes.append(Change(sibling, self.move(sibling, follow, now), sibling.route_index != before))
        return changes

    def move(self, row: MessageRow, event: Event, now: float) -> Transition:
        """Apply ``event`` to ``row`` alone; raises like :meth:`apply`.

        What :meth:`apply` does for a row of no group (``row.group`` empty), where it is the
        only change: it makes no :class:`Change`. A segment's siblings are not looked at here:
        use :meth:`apply`.
        """
        moved: list[Transition] = []
        self.move_all((row,), (event,), now, moved)
        return moved[0]

    def move_all(self, rows: Sequence[MessageRow], events: Sequence[Event], now: float,
                 moved: list[Transition]) -> None:
        """:meth:`move` of ``rows[i]`` by ``events[i]`` for each, in order, each transition appended
        to ``moved`` as its row moves: the paths every message takes (a pool's turn taken, a run
        of answers) move a run in one loop, where a call of the dispatcher's, of this table's and
        of its step's a message was most of what a move cost.

        An event a row's state does not take raises like :meth:`move` does, the rows before it
        moved (their transitions in ``moved``: the caller tells how far it went) and the rest not.
        """
        start = len(moved)
        try:
            apply_run(rows, events, now, self.policy, moved)
        finally:  # the rows that moved, also when one of the run could not
            changed = self._changed
            armed = self._armed
            for row in rows[:len(moved) - start]:
                state = row.state
                if state not in UNWRITTEN_STATES:  # written with the turn's other changes
                    changed[row.id] = row
                if state in TIMED_STATES:
                    self._arm(row)
                else:  # no timer in this state: one it had is stale now
                    armed.pop(row.id, None)

    def _siblings(self, row: MessageRow) -> list[MessageRow]:
        """The other segments of ``row``'s message held in memory, in the order they came."""
        return [self.rows[i] for i in self._groups.get(row.group, ()) if i != row.id]

    # ---- time -------------------------------------------------------------------------

    def _arm(self, row: MessageRow) -> None:
        when = row.next_timer()
        if when is None:
            self._armed.pop(row.id, None)
            return
        if self._armed.get(row.id) == when:
            return
        self._armed[row.id] = when
        heap = self._heap
        heapq.heappush(heap, (when, next(self._seq), row.id))
        if len(heap) > 2 * len(self._armed) + 1024:
            armed = self._armed
            self._heap = [entry for entry in heap if armed.get(entry[2]) == entry[0]]
            heapq.heapify(self._heap)

    def next_timer(self) -> float | None:
        """When :meth:`tick` has something to do (None: nothing is waiting for time)."""
        heap = self._heap
        while heap:
            when, _, message_id = heap[0]
            if self._armed.get(message_id) == when:
                return when
            heapq.heappop(heap)  # stale: the row moved or left since
        return None

    def tick(self, now: float) -> list[Change]:
        """Fire every timer due at ``now``: Due (or Expire) for each row concerned."""
        changes: list[Change] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, message_id = heapq.heappop(heap)
            if self._armed.get(message_id) != when:
                continue
            del self._armed[message_id]
            row = self.rows[message_id]
            expired = row.expires_at is not None and row.expires_at <= now
            event: Event = Expire() if expired or row.state is not State.SCHEDULED else Due()
            changes.extend(self.apply(row, event, now))
        return changes

    # ---- what to write --------------------------------------------------------------

    def take_changed(self) -> list[MessageRow]:
        """The rows changed since the last call, once each (write them together)."""
        changed = list(self._changed.values())
        self._changed.clear()
        return changed

    def counts(self) -> dict[str, int]:
        """Rows held per state (for status and the summary line)."""
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row.state.value] = counts.get(row.state.value, 0) + 1
        return counts

    def finals(self) -> list[MessageRow]:
        return [row for row in self.rows.values() if row.state in FINAL_STATES]
