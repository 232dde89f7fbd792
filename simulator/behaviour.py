"""Small deterministic building blocks of the simulator's behaviour.

All randomness comes from one ``random.Random`` (seeded from the config), so a
scenario with a seed replays the same latencies, errors and states.
"""

from __future__ import annotations

import itertools
import random
from typing import Callable

from smppcore.ratelimit import TokenBucket

from .config import Delay

__all__ = ["DelaySampler", "TokenBucket", "MessageIds", "WeightedChoice"]


class DelaySampler:
    """Draws delays in seconds from a :class:`Delay` distribution."""

    def __init__(self, delay: Delay, rng: random.Random) -> None:
        self.delay = delay
        self.rng = rng
        self.is_zero = delay.is_zero

    def __call__(self) -> float:
        d = self.delay
        if d.kind == "fixed":
            return d.ms / 1000
        if d.kind == "uniform":
            return self.rng.uniform(d.min_ms, d.max_ms) / 1000
        value = self.rng.expovariate(1 / d.mean_ms) if d.mean_ms else 0.0
        if d.max_ms:
            value = min(value, d.max_ms)
        return value / 1000


class MessageIds:
    """message_id generator in the format ESMEs expect: decimal, hex or UUID-like.

    ``next()`` returns the next id; decimal and hex ids come straight from a C-level
    iterator (no Python frame per id: this is on the simulator's fast path).
    """

    def __init__(self, fmt: str, rng: random.Random) -> None:
        self._counter = itertools.count(1)
        self._rng = rng
        self.fmt = fmt
        if fmt == "decimal":
            self.next: Callable[[], str] = map(str, self._counter).__next__
        elif fmt == "hex":
            self.next = map("{:x}".format, itertools.count(0x10000001)).__next__
        else:
            self.next = getattr(self, f"_{fmt}")

    def number(self, message_id: str) -> int | None:
        """The sequence number inside an id this generator made (None: not one of its ids)."""
        try:
            if self.fmt == "decimal":
                return int(message_id) if message_id.isdigit() else None
            if self.fmt == "hex":
                return int(message_id, 16) - 0x10000000 if len(message_id) == 8 else None
            return int(message_id[-8:], 16) if len(message_id) == 36 else None
        except ValueError:
            return None

    def _uuid(self) -> str:
        n = (self._rng.getrandbits(96) << 32) | (next(self._counter) & 0xFFFFFFFF)
        h = format(n, "032x")
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class WeightedChoice:
    """Picks keys of ``weights`` with those relative weights."""

    def __init__(self, weights: dict[str, float], rng: random.Random) -> None:
        items = [(k, w) for k, w in weights.items() if w > 0]
        self.keys = [k for k, _ in items]
        self.cum = list(itertools.accumulate(w for _, w in items))
        self.rng = rng

    def __call__(self) -> str:
        if len(self.keys) == 1:
            return self.keys[0]
        return self.rng.choices(self.keys, cum_weights=self.cum)[0]
