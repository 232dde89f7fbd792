"""A token bucket: the rate limiter behind throttling on both sides of a link."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` events per second, with bursts of up to ``burst`` seconds' worth (at least one).

    ``rate`` 0 means unlimited. Time comes from ``clock`` (``loop.time`` in the
    asyncio code, a fake clock in tests).
    """

    __slots__ = ("rate", "capacity", "tokens", "stamp", "clock")

    def __init__(self, rate: float, clock: Callable[[], float], *, burst: float = 1.0) -> None:
        if rate < 0 or burst <= 0:
            raise ValueError("rate must be >= 0 and burst > 0")
        self.rate = rate
        self.capacity = max(rate * burst, 1.0)
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        if not self.rate:
            return True
        now = self.clock()
        tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1:
            self.tokens = tokens - 1
            return True
        self.tokens = tokens
        return False

    def wait_time(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1 - self.tokens) / self.rate) if self.rate else 0.0
