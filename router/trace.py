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

Cost on the hot path: one ``OrderedDict`` lookup and a small record per lifecycle
transition (about four per message), only when the ring is on. The record keeps the
raw facts; naming them for a person happens when the trace is read.
"""

from __future__ import annotations

import collections

import msgspec

from .lifecycle import MessageRow, State, Transition

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
        self._steps: collections.OrderedDict[str, list[Step]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._steps)

    def _for(self, message_id: str) -> list[Step]:
        steps = self._steps.get(message_id)
        if steps is None:
            steps = self._steps[message_id] = []
            if len(self._steps) > self.max_messages:
                self._steps.popitem(last=False)
        return steps

    def moved(self, row: MessageRow, transition: Transition) -> None:
        """``row`` took ``transition`` (at ``row.updated_at``, which the lifecycle set)."""
        steps = self._for(row.id)
        if len(steps) < self.max_steps:
            after = transition.after
            failed = after is State.SCHEDULED or after is State.UNDELIVERABLE or transition.failed_over_from is not None
            upstream = row.upstream if after is not State.QUEUED and after is not State.PARKED else row.target
            steps.append(Step(row.updated_at, after.value, transition.before.value, upstream,
                              row.error if failed else 0))

    def note(self, message_id: str, what: str, at: float, error: int = 0) -> None:
        """Something outside the lifecycle: a receipt handed to the ESME, say."""
        steps = self._steps.get(message_id)
        if steps is not None and len(steps) < self.max_steps:
            steps.append(Step(at, what, error=error))

    def steps(self, message_id: str) -> list[Step] | None:
        """The steps kept for ``message_id``, oldest first (None: not in the ring)."""
        steps = self._steps.get(message_id)
        return list(steps) if steps is not None else None
