"""Callbacks the simulator runs later: answers after their latency, receipts after their delay.

A module of its own because every delayed thing the simulator does goes through one
place that can cancel them all when it stops (:meth:`Later.cancel_all`). A callback
due now is not given a timer of its own: the callbacks due in one loop turn run
together, in order, from one ``call_soon`` (a burst of receipts at zero delay costs
one loop callback, not one each).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["Later"]

log = logging.getLogger("simulator")


class Later:
    """Runs ``fn(*args)`` after a delay on ``loop``; all of them cancelled by :meth:`cancel_all`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._timers: set[asyncio.TimerHandle] = set()
        self._soon: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []

    def __call__(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        if delay <= 0:  # batched: one loop callback runs everything due now, in order
            self._soon.append((fn, args))
            if len(self._soon) == 1:
                self.loop.call_soon(self._run_soon)
            return
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            fn(*args)

        handle = self.loop.call_later(delay, fire)
        self._timers.add(handle)

    def _run_soon(self) -> None:
        batch, self._soon = self._soon, []
        for fn, args in batch:
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - one failure must not lose the rest of the batch
                log.exception("simulator: %s failed", getattr(fn, "__name__", fn))

    def cancel_all(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self._soon.clear()
