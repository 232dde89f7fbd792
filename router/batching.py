"""Group what arrives in one event-loop turn and hand it over once, at the end of the turn.

This is how the hub turns many small durable writes into one: every item added
during a turn of the loop joins the same batch. Two flavours, because the hub
needs both:

- :class:`TurnBatcher` hands each batch to a *coroutine*, one task per batch: the
  accepts (:mod:`router.acceptor`) and the MO deliveries wait for their commit.
- :class:`TurnCollector` hands each batch to a *plain function*, called from the
  loop with ``call_soon``: no task, no Future. The saves nobody waits on in the
  caller (the dispatcher's changed rows, the ESMEs' acknowledgements, the receipts
  whose durable save is taken before they go out) cost one callback per turn, not a
  task each, and run in the order their first item was added, as the hub's
  ordering needs (a row's save is asked for before anything else of that turn
  sees the row).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Generic, Protocol, TypeVar

__all__ = ["Soon", "TurnBatcher", "TurnCollector"]

T = TypeVar("T")


class TurnBatcher(Generic[T]):
    def __init__(self, flush: Callable[[list[T]], Coroutine[object, object, None]]) -> None:
        self._flush = flush
        self._batch: list[T] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0

    def add(self, item: T) -> None:
        self.add_all((item,))

    def add_all(self, items: Iterable[T]) -> None:
        """:meth:`add` for each of ``items``, in order."""
        self._batch += items
        if not self._scheduled:
            self._scheduled = True
            if self.loop is None:
                self.loop = asyncio.get_running_loop()
            self.loop.call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        batch, self._batch = self._batch, []
        if not batch:
            return
        self.batches += 1
        assert self.loop is not None  # set by add(), which scheduled this call
        task = self.loop.create_task(self._flush(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Flush what is waiting and wait for every flush under way."""
        while self._batch or self._tasks:
            if self._batch and not self._scheduled:
                self._start()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            await asyncio.sleep(0)


class Soon(Protocol):
    """What runs a callback at the next turn of the loop: an asyncio loop, or an owner that holds one."""

    def call_soon(self, callback: Callable[[], None]) -> object: ...


class TurnCollector(Generic[T]):
    """Items of one loop turn handed to one plain function at the end of that turn.

    ``flush`` is called once per turn in which something was added (or :meth:`wake`
    asked for the call) with the items in the order they came. It may get an empty
    list: after :meth:`wake` alone, or when :meth:`flush` took the turn's items early.
    It runs as a loop callback, so an exception it raises goes to the loop's
    exception handler; the items of that turn are gone and later turns are not
    affected.

    Until ``runner`` is set (an owner sets it when it starts), items are only
    collected: nothing is scheduled, and :meth:`flush` hands them over. Adding costs
    one list append and one flag test; the callback is scheduled once per turn.
    """

    __slots__ = ("_flush", "_items", "_scheduled", "runner")

    def __init__(self, flush: Callable[[list[T]], None], runner: Soon | None = None) -> None:
        self._flush = flush
        self._items: list[T] = []
        self._scheduled = False
        self.runner = runner

    def __len__(self) -> int:
        """Items waiting for the end of the turn."""
        return len(self._items)

    def add(self, item: T) -> None:
        self._items.append(item)
        if not self._scheduled:
            self.wake()

    def add_all(self, items: Iterable[T]) -> None:
        """:meth:`add` for each of ``items``, in order: a run of them in one call."""
        self._items.extend(items)
        if not self._scheduled:
            self.wake()

    def wake(self) -> None:
        """Ask for the end-of-turn call even if nothing is added: for an owner that keeps what
        changed itself (the dispatcher's table keeps its changed rows)."""
        if self._scheduled or self.runner is None:
            return
        self._scheduled = True
        self.runner.call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        self._scheduled = False
        items, self._items = self._items, []
        self._flush(items)

    def flush(self) -> None:
        """Hand over what was collected now, not at the end of the turn (an owner stopping).

        Nothing is called when nothing waits. A call already scheduled for this turn
        still comes, with what is added after this.
        """
        if self._items:
            items, self._items = self._items, []
            self._flush(items)
