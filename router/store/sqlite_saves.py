"""The saves of messages the SQLite writer has not been given yet, held by message id.

Kept apart from :mod:`smpphub.router.store.sqlite` because it is one mechanism with its
own timing rules: :meth:`SqliteStore.save` and :meth:`SqliteStore.save_durably` hold each
message's save here, a later save of the same message merges into the held one (every
column either sets, each with the later value), and the writer takes them (``gather``)
when it starts its next batch. When a save is due is said in :meth:`HeldSaves.gather`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import partial

import msgspec

from . import sqlite_schema as schema
from .base import MessageRow
from .sqlite_writer import Row, Shape, SqliteWriter

__all__ = ["HeldSaves", "LAZY_SAVE_DELAY"]


class HeldSaves:
    """The saves held for ``writer``'s next batch. All methods run on the writer's event loop.

    Two dicts by message id, not one whose entries remember the hand-over they were made
    after: a hand-over takes one whole and keeps the other whole, without looking at each
    save to decide (callgrind over the real store, the hub's write pattern: the event loop's
    instructions a message 38,200 -> 37,000)."""

    def __init__(self, writer: SqliteWriter) -> None:
        self._writer = writer
        # by message id, a later save of the same message merging into its entry (see _PendingSave):
        # the saves that go at the next hand-over (made before the last one, or waited for), and
        # those nobody waits for made since the last (they skip the next: see gather)
        self._due: dict[str, _PendingSave] = {}
        self._young: dict[str, _PendingSave] = {}
        self._calls = 0  # save calls so far: held saves remember theirs
        self._young_since: float | None = None  # loop time of the first save nobody waits for since the last
        self._saves_waited = False  # a held save has a save_durably caller: queue at the next hand-over
        self._lazy_timer: asyncio.TimerHandle | None = None  # LAZY_SAVE_DELAY after the first save held
        self._lazy_due = False

    def close(self) -> None:
        """Queue what is held (the writer is about to drain its queue and stop); no timer left behind."""
        if self._writer.running:
            self.queue_all()
        self._lazy_timer_cancelled()

    def keep(self, rows: Iterable[MessageRow], waiter: asyncio.Future[None] | None) -> None:
        """The rows' state as it is now, held for the writer's next batch (merged with saves held already)."""
        if waiter is not None:
            self._saves_waited = True
            self._writer.wake()  # it refuses once the store is closed
        else:
            self._lazy_timer_armed()
        self._calls += 1
        call = self._calls
        due, young = self._due, self._young
        joins = young if waiter is None else due  # where a message's first save goes
        save_of = schema.save_of
        for r in rows:
            shape, values, owed = save_of(r)
            message_id = r.id
            held = due.get(message_id)
            if held is None:
                held = young.get(message_id)
                if held is None:
                    joins[message_id] = _PendingSave(message_id, shape, values, owed, call,
                                                     None if waiter is None else [waiter], owed is not None)
                    continue
                if waiter is not None:  # waited for now: it goes at the next hand-over
                    del young[message_id]
                    due[message_id] = held
            if shape is not None:  # None: the receipt acknowledged, nothing else
                if held.shape is None:
                    held.shape, held.values = shape, values
                else:
                    held.shape, held.values = schema.merged_save(held.shape, held.values, shape, values)
            if owed is not None:
                # a delete from receipts_owed for a message not final when first held finds
                # nothing: its receipt owed, if any, is in this save, not written yet
                held.owed = owed if held.was_final or owed is not schema.OWED_DROP else None
            held.call = call
            if waiter is not None:
                if held.waiters is None:
                    held.waiters = [waiter]
                else:
                    held.waiters.append(waiter)

    def _lazy_timer_armed(self) -> None:
        """The held saves go after LAZY_SAVE_DELAY at the latest (RuntimeError once the store is closed)."""
        loop = self._writer.open_loop()
        if self._young_since is None:
            self._young_since = loop.time()
        if self._lazy_timer is None:
            self._lazy_timer = loop.call_later(LAZY_SAVE_DELAY, self._lazy_saves_due)

    def _lazy_saves_due(self) -> None:
        self._lazy_timer = None
        if self._due or self._young:
            self._lazy_due = True
            self._writer.wake()

    def queue_all(self) -> None:
        """Queue every save held so far (a read or a write that must come after them is next)."""
        due, young = self._due, self._young
        if not (due or young):
            return
        self._due, self._young = {}, {}
        self._saves_waited = self._lazy_due = False
        self._young_since = None
        self._lazy_timer_cancelled()
        self._queue([*due.values(), *young.values()])

    def gather(self, commit_coming: bool) -> None:
        """The writer takes its next batch: queue the saves held that are due.

        A save someone waits for (:meth:`SqliteStore.save_durably`) is due at once. One nobody waits for
        (:meth:`SqliteStore.save`) waits for a transaction that happens anyway (``commit_coming``), and
        skips the first hand-over after it was made: the save that comes next for the same
        message (SENT, then its receipt a few milliseconds later) merges into it, one UPDATE
        rather than two. :data:`LAZY_SAVE_DELAY` bounds the wait either way: a save alone is a
        commit of its own, and one held that long goes at the next hand-over."""
        due, young = self._due, self._young
        if not (due or young):
            return
        lazy_due, self._lazy_due = self._lazy_due, False
        if not (commit_coming or self._saves_waited or lazy_due):
            self._lazy_timer_armed()
            return
        loop = self._writer.open_loop()
        self._saves_waited = False
        since, self._young_since = self._young_since, None
        self._lazy_timer_cancelled()
        if since is not None and loop.time() - since >= LAZY_SAVE_DELAY:  # held long enough already: all go
            self.queue_all()
            return
        # the young saves are kept until the next hand-over, whole: no save is looked at twice
        self._due, self._young = young, {}
        # the timer runs for the saves kept, from the first of them (left running for the
        # saves that went, it fired every 20 ms under load, and a tenth of the pairs that
        # merge went apart)
        if young and since is not None:
            self._lazy_timer = loop.call_at(since + LAZY_SAVE_DELAY, self._lazy_saves_due)
        self._queue(list(due.values()))

    def _lazy_timer_cancelled(self) -> None:
        if self._lazy_timer is not None:
            self._lazy_timer.cancel()
            self._lazy_timer = None

    def _queue(self, saves: list[_PendingSave]) -> None:
        """Queue ``saves``: one request per call and kind of write (the row's columns, its row of
        receipts_owed), as if each call had queued its own (so a bad one fails only its call's),
        those of one kind side by side (the writer runs each such run as one statement)."""
        if not saves:
            return
        groups: dict[tuple[Shape | None, Shape | None, int], list[_PendingSave]] = {}
        for held in saves:
            key = (held.shape, held.owed, held.call)
            group = groups.get(key)
            if group is None:
                groups[key] = [held]
            else:
                group.append(held)
        writes: list[_Write] = []
        for (shape, owed, call), group in groups.items():
            waiters = [w for held in group if held.waiters is not None for w in held.waiters]
            if owed is schema.OWED_ADD and shape is not None:
                # the row and its receipt owed, one request: they commit or fail together (a
                # receipt owed whose final save failed would have no receipt to deliver)
                writes.append(_Write(schema.followed_by(shape, owed), call, [held.values for held in group], waiters))
                continue
            if shape is not None:
                writes.append(_Write(shape, call, [held.values for held in group], waiters))
            if owed is not None:  # OWED_DROP: true whatever becomes of the row's save (acknowledged, or none owed)
                writes.append(_Write(owed, call, [(held.id,) for held in group], waiters))
        writes.sort(key=_Write.order)
        writer = self._writer
        waited: dict[asyncio.Future[None], list[asyncio.Future[None]]] = {}
        for write in writes:
            if not write.waiters:
                writer.write(write.shape, write.rows, wait=False)
                continue
            written = writer.write(write.shape, write.rows)
            for waiter in dict.fromkeys(write.waiters):
                waited.setdefault(waiter, []).append(written)
        for waiter, written_all in waited.items():
            writer.all_of(written_all).add_done_callback(partial(_tell_waiter, waiter))


#: The longest a save nobody waits for (:meth:`SqliteStore.save`: a message sent, a receipt
#: acknowledged) is held for a transaction to ride with. Under traffic one comes within
#: milliseconds (a new message, a receipt stored), and the save rides with the second of
#: them; alone, each such save was a commit and an fsync of its own: at 1,000 msg/s the
#: writer committed ~4,000 times a second. The price: a message an upstream accepted less
#: than this before a crash is sent again after the restart, as one still in flight is (at
#: least once, as the dispatcher says).
LAZY_SAVE_DELAY = 0.02


class _PendingSave(msgspec.Struct, gc=False):
    """A message's save the writer has not taken yet; later saves of the message merge into it.

    ``shape`` and ``values``: the row's columns it writes (None and (): none, the receipt was only
    acknowledged); ``owed``: what it does to the message's row of receipts_owed (the later
    save's, when both say); ``call``: the save call it came from last (saves are queued by
    call); ``waiters``: the Futures of :meth:`SqliteStore.save_durably` calls that included it
    (None: nobody waits), told when the merged save is committed; ``was_final``: whether the message was final
    then. Only then can its row of receipts_owed be on file already (a final state is final:
    a receipt is owed from the save that makes a message final), so a message sent and given
    its receipt, acknowledged before the writer took the save, writes no delete from
    receipts_owed that would find nothing (callgrind, the real SqliteStore over the hub's
    pattern: 1,600 instructions a message in the writer).

    A msgspec Struct: made in C, without the frame of an ``__init__`` (one a message, or two);
    no reference cycle runs through it (``gc=False``).
    """

    id: str
    shape: Shape | None
    values: Row
    owed: Shape | None
    call: int
    waiters: list[asyncio.Future[None]] | None
    was_final: bool


class _Write:
    """One request for the writer: rows of one kind of write from one save call, and who waits for them."""

    __slots__ = ("shape", "call", "rows", "waiters")

    def __init__(self, shape: Shape, call: int, rows: list[Row], waiters: list[asyncio.Future[None]]) -> None:
        self.shape = shape
        self.call = call
        self.rows = rows
        self.waiters = waiters

    def order(self) -> tuple[int, int]:
        """Writes of one kind side by side (the writer runs each such run as one statement, those
        followed by a write of receipts_owed too: Shape.base), by call."""
        return id(self.shape.base), self.call


def _tell_waiter(waiter: asyncio.Future[None], written: asyncio.Future[None]) -> None:
    """The saves of a save_durably call are committed (or one failed): so is the call."""
    if waiter.done():  # the caller gave up
        return
    error = asyncio.CancelledError() if written.cancelled() else written.exception()
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(error)
