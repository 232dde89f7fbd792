"""Counts the hub keeps for its metrics and dashboard: plain ints, read at scrape time.

Why not prometheus-client's own Counter and Histogram on the hot path: ``labels(...)``
is a dict lookup under a lock and ``observe`` takes a lock too, about a microsecond
per call; at 15,000 messages a second and several counts per message that is a few
percent of a core spent on bookkeeping. Here a count is one ``Counter`` increment
(no lock: everything runs on the hub's event loop) and a latency is one ``bisect``
into a fixed list of bucket bounds. :mod:`router.http.metrics` turns these into
Prometheus families when it is scraped, and nothing is computed between scrapes.

Latencies are observed where the hub already touches each message once (a message
becoming SENT, a final receipt matched); the store's commit time and batch size once
per group commit. Everything here is bounded: counters are keyed by account,
upstream, status or state, which the configuration and the SMPP status table bound.

Each event is counted here and nowhere else: the hub's status (its ``counters``),
the ``hub_summary`` line and ``/metrics`` all read these. Hub-wide totals of what is
kept per account (segments sent, final states) are summed at read time, over the
accounts, rather than kept a second time on the hot path.
"""

from __future__ import annotations

import collections
from bisect import bisect_left

__all__ = ["Histogram", "HubStats", "LATENCY_BOUNDS", "COMMIT_BOUNDS", "BATCH_BOUNDS"]

#: seconds: from well under a millisecond (a local SMSC) to the minutes a back-off can add
LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: seconds a group commit takes (fsync included with synchronous=full)
COMMIT_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: messages per group commit
BATCH_BOUNDS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class Histogram:
    """Counts of observations per bucket (``value <= bound``; the last bucket is +Inf) and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def observe_all(self, values: list[float]) -> None:
        """:meth:`observe` for each of ``values`` (a run of them: one call, not one each)."""
        counts, bounds = self.counts, self.bounds
        total = self.total
        for value in values:
            counts[bisect_left(bounds, value)] += 1
            total += value
        self.total = total

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[int]:
        """Observations at or under each bound, then all of them (Prometheus' ``le`` buckets)."""
        out: list[int] = []
        running = 0
        for n in self.counts:
            running += n
            out.append(running)
        return out

    def quantile(self, q: float) -> float | None:
        """The bucket bound under which ``q`` of the observations fall (None: none yet; inf: past the last)."""
        total = self.count
        if not total:
            return None
        wanted = q * total
        for bound, seen in zip((*self.bounds, float("inf")), self.cumulative(), strict=True):
            if seen >= wanted:
                return bound
        return float("inf")  # pragma: no cover - the last cumulative count is the total


class HubStats:
    """The hub's own counts, by account where an operator asks "who"; see the module docstring."""

    def __init__(self) -> None:
        self.accepted: collections.Counter[str] = collections.Counter()  # segments stored, by account
        self.refused: dict[str, collections.Counter[int]] = {}  # account -> command_status -> submits refused
        self.sent: collections.Counter[str] = collections.Counter()  # segments an upstream accepted, by account
        # account -> final state -> messages; plain dicts: a Counter is a Python subclass of dict, and
        # ``counter[key] += 1`` stores through its __setitem__ slot, a method call (callgrind: final()
        # 2.5k -> 1.5k instructions)
        self.finals: dict[str, dict[str, int]] = {}
        self.submit_latency = Histogram(LATENCY_BOUNDS)  # accepted -> an upstream accepted it
        self.receipt_latency = Histogram(LATENCY_BOUNDS)  # accepted -> its final receipt
        self.store_commit = Histogram(COMMIT_BOUNDS)  # one group commit of accepted messages
        self.store_batch = Histogram(BATCH_BOUNDS)  # messages in it
        # hub-wide only: nobody asks these by account
        self.temporary_failures = 0  # submits an upstream answered "not now" (or did not answer)
        self.permanent_failures = 0  # submits an upstream refused for good
        self.receipts_in = 0  # upstream receipts matched to a message (duplicates too)
        self.receipts_duplicate = 0  # of those, for a message that had taken its final receipt already
        self.receipts_unmatched = 0  # upstream receipts that matched no message
        self.mo_in = 0  # MO messages routed to an account or a webhook
        self.mo_unroutable = 0  # MO messages no MO route took

    def refuse(self, account: str, status: int) -> None:
        counts = self.refused.get(account)
        if counts is None:
            counts = self.refused[account] = collections.Counter()
        counts[status] += 1

    def final(self, account: str, state: str) -> None:
        counts = self.finals.get(account)
        if counts is None:
            counts = self.finals[account] = {}
        counts[state] = counts.get(state, 0) + 1

    def accepted_total(self) -> int:
        """Segments stored and answered, every account together."""
        return sum(self.accepted.values())

    def sent_total(self) -> int:
        """Segments an upstream accepted, every account together."""
        return sum(self.sent.values())

    def totals(self) -> dict[str, int]:
        """The hub-wide counts by name (the hub status' ``counters``): only what happened at least once.

        Keys: ``sent``, ``temporary_failures``, ``permanent_failures``, ``receipts_in``,
        ``receipts_duplicate``, ``receipts_unmatched``, ``mo_in``, ``mo_unroutable``, and
        one per final state reached (``delivered``, ``expired``, ...).
        """
        finals: collections.Counter[str] = collections.Counter()
        for counts in self.finals.values():
            finals.update(counts)
        named = {
            "sent": self.sent_total(),
            "temporary_failures": self.temporary_failures,
            "permanent_failures": self.permanent_failures,
            "receipts_in": self.receipts_in,
            "receipts_duplicate": self.receipts_duplicate,
            "receipts_unmatched": self.receipts_unmatched,
            "mo_in": self.mo_in,
            "mo_unroutable": self.mo_unroutable,
            **finals,
        }
        return {name: n for name, n in named.items() if n}
