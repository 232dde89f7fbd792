"""A log-linear latency histogram (HDR-style): bounded relative error, mergeable, serialisable.

Values (microseconds, integers) fall in buckets: below 2**SUB_BITS each value has
its own bucket; above, every power of two is split into 2**SUB_BITS equal
sub-buckets, so a bucket's width is at most 1/2**SUB_BITS of its lower edge. With
SUB_BITS = 7 a reported percentile is within 0.8% of the true value.
"""

from __future__ import annotations

import msgspec

__all__ = ["Histogram", "HistogramData", "SUB_BITS", "RELATIVE_ERROR"]

SUB_BITS = 7
_SUB = 1 << SUB_BITS
RELATIVE_ERROR = 1 / _SUB


class HistogramData(msgspec.Struct):
    """What a histogram serialises to: sparse bucket counts and the exact extremes."""

    counts: dict[int, int]
    total: int
    min: int
    max: int
    sum: int


def _lower(i: int) -> int:
    if i < _SUB:
        return i
    shift = (i >> SUB_BITS) - 1
    return ((i & (_SUB - 1)) + _SUB) << shift


def _upper(i: int) -> int:
    """Highest value that lands in bucket ``i``."""
    if i < _SUB:
        return i
    shift = (i >> SUB_BITS) - 1
    return _lower(i) + (1 << shift) - 1


class Histogram:
    __slots__ = ("counts", "total", "min", "max", "sum")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.min = 0
        self.max = 0
        self.sum = 0

    def record(self, value: float) -> None:
        self.record_many((int(value) if value > 0 else 0,))

    def record_many(self, values: list[int] | tuple[int, ...]) -> None:
        """Record integer values at once (the load generator keeps a second's latencies
        in a list and folds them in here, off the path of each response). The bucket
        index is computed inline: this loop sees every latency of a run."""
        if not values:
            return
        counts = self.counts
        get = counts.get
        total = 0
        for v in values:
            if v < _SUB:
                if v < 0:
                    v = 0
                i = v
            else:
                shift = v.bit_length() - SUB_BITS - 1
                i = ((shift + 1) << SUB_BITS) + (v >> shift) - _SUB
            counts[i] = get(i, 0) + 1
            total += v if v > 0 else 0
        lo = min(values)
        lo = lo if lo > 0 else 0
        hi = max(values)
        hi = hi if hi > 0 else 0
        if not self.total or lo < self.min:
            self.min = lo
        if hi > self.max:
            self.max = hi
        self.total += len(values)
        self.sum += total

    def merge(self, other: Histogram) -> None:
        for i, n in other.counts.items():
            self.counts[i] = self.counts.get(i, 0) + n
        if other.total:
            self.min = other.min if not self.total else min(self.min, other.min)
            self.max = max(self.max, other.max)
        self.total += other.total
        self.sum += other.sum

    def percentile(self, p: float) -> int:
        """The value at percentile ``p`` (0..100), within RELATIVE_ERROR of the exact one."""
        if not self.total:
            return 0
        if p >= 100:
            return self.max
        if p <= 0:
            return self.min
        rank = max(1, -(-self.total * p // 100))  # ceil, at least the first value
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                return min(self.max, max(self.min, (_lower(i) + _upper(i)) // 2))
        return self.max

    @property
    def mean(self) -> float:
        return self.sum / self.total if self.total else 0.0

    def summary(self) -> dict[str, float]:
        return {
            "count": self.total, "min": self.min, "p50": self.percentile(50), "p90": self.percentile(90),
            "p99": self.percentile(99), "p999": self.percentile(99.9), "max": self.max, "mean": round(self.mean, 1),
        }

    def data(self) -> HistogramData:
        return HistogramData(counts=dict(self.counts), total=self.total, min=self.min, max=self.max, sum=self.sum)

    @classmethod
    def from_data(cls, data: HistogramData) -> Histogram:
        h = cls()
        h.counts = {int(k): v for k, v in data.counts.items()}
        h.total, h.min, h.max, h.sum = data.total, data.min, data.max, data.sum
        return h
