"""How the checks answer the ESME's submits while they watch it (see :class:`~.probe.SubmitPolicy`).

- :class:`Hold` (window check): keep every answer back, note the most requests in flight;
- :class:`Throttle` (throttling check): ESME_RTHROTTLED for a while, then accept, and
  follow each throttled message to its retries.

Plain bookkeeping over the time they are handed: the tests drive them with made-up clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smppcore import CommandStatus, Pdu

from .probe import MessageKey, ProbeConnection, message_key

__all__ = ["Hold", "Throttle", "MAX_TRACKED_MESSAGES"]

#: messages the throttling check follows one by one (more are only counted)
MAX_TRACKED_MESSAGES = 10_000


@dataclass
class Hold:
    """Window check: hold every answer; note the most requests seen in flight on one connection."""

    peak: int = 0
    held: int = 0
    last_at: float | None = None

    def decide(self, conn: ProbeConnection, pdu: Pdu, now: float) -> int | None:
        self.peak = max(self.peak, len(conn.unanswered))
        self.held += 1
        self.last_at = now
        return None


@dataclass
class Tracked:
    last_throttled: float
    accepted: bool = False


@dataclass
class Throttle:
    """Throttling check: ESME_RTHROTTLED for ``throttle_for`` seconds from the first submit,
    then accept; follow each throttled message to its retries."""

    throttle_for: float
    started: float | None = None
    attempts: int = 0
    messages: dict[MessageKey, Tracked] = field(default_factory=dict)
    untracked: int = 0
    gaps: list[float] = field(default_factory=list)  # from a THROTTLED answer to that message's next submit
    after: int = 0  # submits in the ``throttle_for`` seconds after the throttling: the ESME's own pace

    def decide(self, conn: ProbeConnection, pdu: Pdu, now: float) -> int | None:
        key = message_key(pdu)
        tracked = self.messages.get(key)
        if tracked is not None and not tracked.accepted and len(self.gaps) < MAX_TRACKED_MESSAGES:
            self.gaps.append(now - tracked.last_throttled)
        if self.started is None:
            self.started = now
        if now - self.started < self.throttle_for:
            self.attempts += 1
            if tracked is not None:
                tracked.last_throttled = now
            elif len(self.messages) < MAX_TRACKED_MESSAGES:
                self.messages[key] = Tracked(now)
            else:
                self.untracked += 1
            return CommandStatus.ESME_RTHROTTLED
        if now - self.started < 2 * self.throttle_for:
            self.after += 1
        if tracked is not None:
            tracked.accepted = True
        return CommandStatus.ESME_ROK

    def dropped(self) -> int:
        return sum(1 for t in self.messages.values() if not t.accepted)
