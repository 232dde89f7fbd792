"""The steps of recent messages, with their times, for ``GET /v1/messages/{id}/trace``.

A bounded ring in memory, not the store: the steps of the last ``[log] trace_messages``
messages or so (10,000 by default; 0 turns it off), as one log of the most recent
``trace_messages * STEPS_PER_MESSAGE`` steps, all messages together; the oldest step is
forgotten when a new one comes. Why not durable: a write per step would multiply the
store's work per message (the lifecycle writes one row per message per loop turn, on
purpose, and skips the IN_FLIGHT write altogether), for a question asked about a handful
of messages, usually minutes after they went. A message whose first steps the ring let
go (or that was accepted before a restart) gets no steps at all, because half a story
would read as the whole of it; it is still answered from its durable row (its state,
upstream, attempts, last error, times, receipt). ``[log] level = "debug"`` logs every
step of every message for as long as the logs are kept.

Cost on the hot path: one C call per lifecycle transition (about four per message),
only when the ring is on. The record of a step is the :class:`~.lifecycle.Transition`
the lifecycle made anyway, which carries the message id, the time and the row's fields
of the step; :meth:`TraceRing.record` is the log's own ``append``. Measured with
callgrind over the hub's submit path, acceptance to SENT (2026-12-02): the ring on costs
~300 instructions a message more than off, where a list per message in a dict, a tuple
per step and a Python method per step cost ~11,000 (of the ~195,000 a submit took);
with the fields the transitions carry now, the whole path got ~6,000 instructions a
message cheaper with the ring on (the default). :meth:`TraceRing.steps` turns
a message's records into named :class:`Step` records, in this one place, when a trace
is read: a scan of the log, a few milliseconds for the admin API.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import msgspec

from .lifecycle import Accepted, MessageRow, State, Transition

__all__ = ["STEPS_PER_MESSAGE", "Note", "Step", "TraceRing"]

#: steps the ring holds per message of ``trace_messages``: a message sent and acknowledged with
#: its receipt takes five (queued, in flight, sent, delivered, receipt delivered)
STEPS_PER_MESSAGE = 5


class Note(msgspec.Struct, frozen=True, gc=False):
    """Something outside the lifecycle that happened to a message: a receipt handed to the ESME, say."""

    message_id: str
    at: float  # unix time
    what: str  # "receipt_delivered", ...
    error: int = 0  # the command_status of a failure


class Step(msgspec.Struct, frozen=True, gc=False):
    """One thing that happened to a message: a lifecycle transition, or a note (``before`` None)."""

    at: float  # unix time
    after: str  # the state it reached, or the note ("receipt_delivered", ...)
    before: str | None = None
    upstream: str | None = None  # the upstream concerned: the one it is for, went to, or came back from
    error: int = 0  # the command_status or network error of a failure


class TraceRing:
    """The last ``max_messages * steps_per_message`` steps, every message's together; see the module docstring."""

    def __init__(self, max_messages: int, steps_per_message: int = STEPS_PER_MESSAGE) -> None:
        self.max_messages = max_messages
        self._log: collections.deque[Transition | Note] = collections.deque(maxlen=max_messages * steps_per_message)
        #: keep a transition: called per lifecycle transition (the log's own append, no Python frame)
        self.record: Callable[[Transition | Note], None] = self._log.append

    def __len__(self) -> int:
        """Steps kept, all messages together."""
        return len(self._log)

    def moved(self, row: MessageRow, transition: Transition) -> None:
        """``row`` took ``transition``: :meth:`record` for a caller that has the row at hand."""
        self._log.append(transition)

    def note(self, message_id: str, what: str, at: float, error: int = 0) -> None:
        """Something outside the lifecycle: a receipt handed to the ESME, say."""
        self._log.append(Note(message_id, at, what, error))

    def steps(self, message_id: str, route: list[str]) -> list[Step] | None:
        """The steps kept for ``message_id`` (whose route is ``route``), oldest first; None: its story
        does not start in the ring (its acceptance was let go, or came before a restart)."""
        kept = [r for r in self._log if r.message_id == message_id]
        if not kept or type(kept[0]) is not Accepted:
            return None
        steps: list[Step] = []
        for record in kept:
            if isinstance(record, Note):
                steps.append(Step(record.at, record.what, error=record.error))
                continue
            after, upstream = record.after, record.upstream
            if after is State.QUEUED or after is State.PARKED:  # waiting for the route's next upstream
                upstream = route[record.route_index] if record.route_index < len(route) else None
            failed = after is State.SCHEDULED or after is State.UNDELIVERABLE or record.failed_over_from is not None
            steps.append(Step(record.at, after.value, record.before.value, upstream, record.error if failed else 0))
        return steps
