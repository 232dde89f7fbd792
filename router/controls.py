"""What operators and ESMEs ask of upstreams and messages already in the hub.

The dispatcher (:mod:`router.dispatch`) carries the lifecycle's events between the
message table and the world as they come; this module serves the requests that come
from outside that flow and act on what is already there: the admin API's pause, drain
and resume of an upstream, and an ESME's cancel_sm and replace_sm of a message that has
not left (held in memory, or waiting in the store only and taken back first). Each
request turns into the lifecycle's events through the dispatcher, which acts on them as
it acts on any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from smppcore import encode
from smppcore.pdus import DataSm, SubmitSm

from .lifecycle import WAITING_STATES, InvalidTransition, MessageRow, State
from .lifecycle_events import Cancel, Replace, UpstreamDown
from .messages import Change
from .upstream import Outgoing, UpstreamPool

if TYPE_CHECKING:
    from .dispatch import Dispatcher

__all__ = ["Controls"]

log = structlog.get_logger("smpphub.dispatch")

_QUEUED = State.QUEUED


class Controls:
    """The requests about upstreams and messages of one :class:`~router.dispatch.Dispatcher`."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    # ---- what an operator asks of an upstream (the admin API) --------------------------------

    def pause(self, name: str) -> UpstreamPool:
        """``name`` writes nothing more until :meth:`resume`; its binds stay up and its queue waits.

        Messages keep being routed to it and wait in its queue (expiring there if their
        validity ends): a pause is for a short intervention, a drain for a long one.
        """
        pool = self.dispatcher.pools[name]
        pool.paused = True
        log.warning("upstream_paused", upstream=name, queued=len(pool.queue))
        return pool

    def drain(self, name: str) -> UpstreamPool:
        """``name`` takes no new messages: those waiting for it fail over to the next upstream of
        their route now (or park), those in flight finish, and its binds stay up for receipts."""
        pool = self.dispatcher.pools[name]
        pool.draining = True
        pool.paused = False
        left = list(pool.queue)
        pool.queue.clear()
        log.warning("upstream_draining", upstream=name, moved=len(left))
        now = self.dispatcher.clock()
        changes: list[Change] = []
        for out in left:
            row = out.row
            if row.state is _QUEUED and row.target == name and self.dispatcher.outgoing.get(row.id) is out:
                changes.extend(self.dispatcher.table.apply(row, UpstreamDown(), now))
        self.dispatcher.act(changes)
        return pool

    def resume(self, name: str) -> UpstreamPool:
        """Undo :meth:`pause` or :meth:`drain`: it writes again, and parked messages of its routes come back."""
        pool = self.dispatcher.pools[name]
        was = pool.mode
        pool.paused = pool.draining = False
        log.warning("upstream_resumed", upstream=name, was=was)
        if pool.available:
            self.dispatcher.pool_up(pool)
        pool.pump()
        return pool

    # ---- requests from ESMEs about their messages -------------------------------------------------

    def cancel(self, message_id: str) -> bool:
        """cancel_sm: True if the message had not left and is now cancelled."""
        row = self.dispatcher.table.get(message_id)
        if row is None:
            return False
        try:
            changes = self.dispatcher.table.apply(row, Cancel(), self.dispatcher.clock())
        except InvalidTransition:
            return False
        self.dispatcher.act(changes)
        return True

    async def cancel_anywhere(self, message_ids: list[str]) -> list[str]:
        """cancel_sm for messages held in memory or waiting in the store only; the ids cancelled.

        A message spilled to the store (scheduled past the hold horizon, or the memory
        was full) is taken back first, as the backlog takes messages back, and then
        cancelled like one held here.
        """
        cancelled = [i for i in message_ids if self.cancel(i)]
        rest = [i for i in message_ids if i not in cancelled]
        if rest:
            cancelled += [row.id for row in await self._take_back_by_id(rest) if self.cancel(row.id)]
        return cancelled

    async def _take_back_by_id(self, message_ids: list[str]) -> list[MessageRow]:
        """Those of ``message_ids`` waiting in the store only, taken back into memory as the backlog does."""
        rows = await self.dispatcher.store.take_spilled_by_id(message_ids)
        if rows:
            self.dispatcher.backlog.size = max(0, self.dispatcher.backlog.size - len(rows))
            self.dispatcher.take_back(rows)
        return rows

    def waiting(self, message_id: str) -> Outgoing | None:
        """The message if it is held here and has not left yet (replace_sm may change it), else None."""
        row = self.dispatcher.table.get(message_id)
        if row is None or row.state not in WAITING_STATES:
            return None
        return self.dispatcher.outgoing.get(message_id)

    async def waiting_anywhere(self, message_id: str) -> Outgoing | None:
        """:meth:`waiting` for a message held here or waiting in the store only (taken back first,
        as :meth:`cancel_anywhere` does), so replace_sm reaches one scheduled past the hold horizon."""
        if message_id not in self.dispatcher.table:
            await self._take_back_by_id([message_id])
        return self.waiting(message_id)

    def replaced(self, out: Outgoing, pdu: SubmitSm | DataSm, due: float, expires_at: float | None,
                 registered_delivery: int | None) -> None:
        """replace_sm of a message that has not left: new text and times."""
        out.pdu = pdu
        out.row.pdu = encode(pdu)
        self.dispatcher.event(out.row, Replace(due, expires_at, registered_delivery))
