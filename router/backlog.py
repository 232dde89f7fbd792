"""Messages the hub does not hold in memory: they wait in the store and come back as room frees.

The dispatcher holds the messages that are in flight or due soon, at most
``max_held`` of them. A message accepted while it is full, or due later than
``hold_horizon`` seconds from now (a scheduled delivery, a long retry back-off), is
*spilled*: the store marks it and the dispatcher lets it go. :class:`Backlog` brings
spilled messages back, earliest due first, whenever the dispatcher has fallen below
three quarters of its limit and once a second for those that came due; a restart
spills every open message the store has and lets this loop stream them in, so a
backlog of millions costs store space and a bounded amount of memory.

``size`` counts the spilled messages (from the store's count at start, then kept by
hand); the ESME side refuses new submits with ESME_RMSGQFUL above ``max_backlog``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import structlog

from .lifecycle import MessageRow
from .store import Store

__all__ = ["Backlog", "Holder"]

log = structlog.get_logger("smpphub.backlog")

#: messages taken from the store in one read
TAKE = 1000
#: how often spilled messages that came due are looked for
POLL_INTERVAL = 1.0


class Holder(Protocol):
    """The dispatcher, as the backlog sees it."""

    def held(self) -> int:
        """Messages held in memory now."""

    def take_back(self, rows: list[MessageRow]) -> None:
        """Hold these spilled messages again and act on their states."""


class Backlog:
    """Spilled messages: how many, and the loop that brings them back."""

    def __init__(self, store: Store, holder: Holder, *, max_held: int, horizon: float,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.holder = holder
        self.max_held = max_held
        self.horizon = horizon
        self.clock = clock
        self.size = 0  # spilled messages (the store's count at start, then kept here)
        self.spilled_total = 0
        self.taken_total = 0
        self._refilling = False
        self._poller: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, spilled_at_start: int) -> None:
        self.size = spilled_at_start
        if spilled_at_start:
            log.info("backlog_at_start", messages=spilled_at_start)
        self._poller = asyncio.get_running_loop().create_task(self._poll_forever())
        self.refill()

    async def stop(self) -> None:
        for task in (self._poller, self._task):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._poller, self._task) if t is not None), return_exceptions=True)

    def room(self) -> int:
        """How many more messages the dispatcher may hold (0 or less: a new one waits in the store)."""
        return self.max_held - self.holder.held()

    def full(self) -> bool:
        """Whether a new message must wait in the store (the dispatcher holds its limit)."""
        return self.room() <= 0

    def too_far(self, due: float) -> bool:
        """Whether a message due at ``due`` waits in the store until it comes close."""
        return due > self.clock() + self.horizon

    def spill(self, message_ids: list[str]) -> None:
        self.store.spill(message_ids)
        self.size += len(message_ids)
        self.spilled_total += len(message_ids)

    def refill(self) -> None:
        """Bring spilled messages back if there are some and room for them (one loop at a time)."""
        if self.size <= 0 or self._refilling or self.holder.held() >= self.max_held * 3 // 4:
            return
        self._refilling = True
        self._task = asyncio.get_running_loop().create_task(self._refill())

    async def _refill(self) -> None:
        try:
            while self.size > 0:
                room = self.room()
                if room <= 0:
                    return
                rows = await self.store.take_spilled(self.clock() + self.horizon, min(room, TAKE))
                if not rows:
                    return
                self.size = max(0, self.size - len(rows))
                self.taken_total += len(rows)
                self.holder.take_back(rows)
        except Exception as exc:  # noqa: BLE001 - the store failed: the messages stay spilled, try again later
            log.error("backlog_refill_failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._refilling = False

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            self.refill()
