"""The steps of recent messages, with their times, for ``GET /v1/messages/{id}/trace``.

A bounded ring in memory, not the store: the last ``[log] trace_messages`` messages
accepted (10,000 by default; 0 turns it off) keep every step they took, up to
:data:`MAX_STEPS` each; the oldest message is forgotten when a new one comes. Why not
durable: a write per step would multiply the store's work per message (the lifecycle
writes one row per message per loop turn, on purpose, and skips the IN_FLIGHT write
altogether), for a question asked about a handful of messages, usually minutes after
they went. A message older than the ring is still answered from its durable row (its
state, upstream, attempts, last error, times, receipt), without the steps in between;
and ``[log] level = "debug"`` logs every step of every message for as long as the logs
are kept.

Cost on the hot path: one dict lookup and a plain tuple appended per
lifecycle transition (about four per message), only when the ring is on. The tuple
holds the raw facts (time, the :class:`Transition` object the lifecycle made anyway,
upstream, route index, error); :meth:`TraceRing.steps` turns them into named
:class:`Step` records, in this one place, when a trace is read. Measured with
``python -m smpphub.bench.ops_overhead`` (2-core machine shared with other work,
2026-12-01, two runs): 1.9-2.2 us of CPU per message, where a named struct per
transition costs 2.6-3.6 us and one dict store 0.25-0.3 us; against the 112-140 us the
hub spends per message with receipts (README, "Hub end to end") that is under 2%.
``trace_messages = 0`` saves it.
"""

from __future__ import annotations

import collections

import msgspec

from .lifecycle import MessageRow, State, Transition

#: what :meth:`TraceRing.moved` keeps per transition: (at, transition, upstream, route index, error)
_Raw = tuple[float, Transition, str | None, int, int]
#: what :meth:`TraceRing.note` keeps: (at, what, error)
_Note = tuple[float, str, int]

__all__ = ["MAX_STEPS", "Step", "TraceRing"]

#: steps kept per message: a message retried and failed over many times keeps its first ones
MAX_STEPS = 64


class Step(msgspec.Struct, frozen=True, gc=False):
    """One thing that happened to a message: a lifecycle transition, or a note (``before`` None)."""

    at: float  # unix time
    after: str  # the state it reached, or the note ("receipt_delivered", ...)
    before: str | None = None
    upstream: str | None = None  # the upstream concerned: the one it is for, went to, or came back from
    error: int = 0  # the command_status or network error of a failure


class TraceRing:
    """Steps per message id, for the last ``max_messages`` messages; see the module docstring."""

    def __init__(self, max_messages: int, max_steps: int = MAX_STEPS) -> None:
        self.max_messages = max_messages
        self.max_steps = max_steps
        self._steps: dict[str, list[_Raw | _Note]] = {}
        # ids in the order they came, to forget the oldest: a dict and a deque take about half the
        # time of an OrderedDict's insert and popitem(last=False) per message (timeit: 270 vs 520 ns)
        self._order: collections.deque[str] = collections.deque()

    def __len__(self) -> int:
        return len(self._steps)

    def start(self, message_id: str) -> None:
        """A message accepted now: it gets a place, the oldest message gives up its own.

        Only acceptance makes a place: a later step of a message the ring already let go
        is not kept (half a story would read as the whole of it), nor are the steps of a
        message accepted before a restart.
        """
        steps = self._steps
        if message_id not in steps:
            self._order.append(message_id)
        steps[message_id] = []
        if len(steps) > self.max_messages:
            del steps[self._order.popleft()]

    def moved(self, row: MessageRow, transition: Transition) -> None:
        """``row`` took ``transition`` (at ``row.updated_at``, which the lifecycle set)."""
        steps = self._steps.get(row.id)
        if steps is not None and len(steps) < self.max_steps:
            steps.append((row.updated_at, transition, row.upstream, row.route_index, row.error))

    def note(self, message_id: str, what: str, at: float, error: int = 0) -> None:
        """Something outside the lifecycle: a receipt handed to the ESME, say."""
        steps = self._steps.get(message_id)
        if steps is not None and len(steps) < self.max_steps:
            steps.append((at, what, error))

    def steps(self, message_id: str, route: list[str]) -> list[Step] | None:
        """The steps kept for ``message_id`` (whose route is ``route``), oldest first; None: not in the ring."""
        kept = self._steps.get(message_id)
        if kept is None:
            return None
        steps: list[Step] = []
        for raw in kept:
            if len(raw) == 3:  # a note
                at, what, error = raw
                steps.append(Step(at, what, error=error))
                continue
            at, transition, upstream, route_index, error = raw
            after = transition.after
            if after is State.QUEUED or after is State.PARKED:  # waiting for the route's next upstream
                upstream = route[route_index] if route_index < len(route) else None
            failed = after is State.SCHEDULED or after is State.UNDELIVERABLE or transition.failed_over_from is not None
            steps.append(Step(at, after.value, transition.before.value, upstream, error if failed else 0))
        return steps
