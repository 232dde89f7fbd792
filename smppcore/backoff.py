"""Exponential back-off with jitter, for reconnect loops."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each jittered.

    "Full jitter" (a uniform draw between ``initial`` and the current ceiling)
    keeps a fleet of clients that lost one SMSC from reconnecting in lock step.
    """

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        factor: float = 2.0,
        jitter: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError("need 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.attempts = 0

    def next_delay(self) -> float:
        exponent = min(self.attempts, 64)  # past that the ceiling is the maximum anyway
        ceiling = min(self.maximum, self.initial * self.factor**exponent)
        self.attempts += 1
        if not self.jitter:
            return ceiling
        return self._rng.uniform(self.initial, ceiling) if ceiling > self.initial else self.initial

    def reset(self) -> None:
        self.attempts = 0
