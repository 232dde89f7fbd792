"""Failures on request: the statuses ``fail_next`` queued, for anyone's submits or one account's.

A deque (subclassed, not wrapped) because the engine's fast path asks "is anything
queued?" on every submit: a deque's truth test is one C call, a Python ``__len__``
would cost every message of a benchmark a frame.
"""

from __future__ import annotations

import collections

__all__ = ["FailureQueue", "MAX_QUEUED"]

MAX_QUEUED = 100_000  # failures waiting at once, every account together


class FailureQueue(collections.deque[tuple[str | None, int]]):
    """(system_id or None for anyone, command_status), in the order they were asked for."""

    def add(self, status: int, count: int, system_id: str | None = None) -> None:
        """Queue ``count`` failures; ValueError past :data:`MAX_QUEUED` (nothing queued then)."""
        if count < 0 or len(self) + count > MAX_QUEUED:
            raise ValueError(f"{len(self)} failures are queued already; at most {MAX_QUEUED} at once")
        self.extend([(system_id, status)] * count)

    def take(self, system_id: str) -> int | None:
        """The status the next submit of ``system_id`` fails with (None: it does not fail)."""
        for i, (owner, status) in enumerate(self):
            if owner is None or owner == system_id:
                del self[i]
                return status
        return None
