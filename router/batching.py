"""Group what arrives in one event-loop turn and hand it to one coroutine.

This is how the hub turns many small durable writes into one commit: every
item added during a turn of the loop joins the same batch, and one task per
batch runs the flush coroutine with all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Generic, TypeVar

__all__ = ["TurnBatcher"]

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
        self._batch.append(item)
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
