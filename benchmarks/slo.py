"""Objectives over a bench run: ``p99<50ms``, ``errors<0.1%``, ``receipts>=100%``, ``rate>=900``.

``smpphub bench --slo`` holds each step of a ``--find-max`` search to objectives, and
``--assert`` turns them into the run's exit status for CI. Both take the same grammar,
one or more objectives separated by commas::

    METRIC OP VALUE      p99<50ms   p99.9<=0.2s   max<1s   errors<0.1%   receipts>=99.9%   rate>=900

- latency (submit -> response, from the moment each message was due in open loop):
  ``p50``, ``p90``, ``p99``, ``p99.9``, ``max``, with a unit ``us``, ``ms`` or ``s``;
  and submit -> final receipt (needs ``--dlr``): ``receipt_p50`` ... ``receipt_max``;
- ``errors``: requests answered with an error status or not at all, over those sent,
  in percent;
- ``receipts``: final receipts that came, over those the accepted requests owe
  (needs ``--dlr``), in percent;
- ``rate``: submits per second achieved (``/s`` optional); for ``--find-max`` the
  highest rate found.

The unit is required: ``p99<50`` could mean 50 ms or 50 s, and ``errors<1`` 1% or 100%;
a guess there would let a CI gate pass that should fail. Everything here is pure:
parsing raises ValueError with one line naming the bad part, and checking reads a
:class:`~benchmarks.loadgen.BenchResult`.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:  # pragma: no cover
    from .loadgen import BenchResult

__all__ = [
    "Objective", "Verdict", "parse_objectives", "check", "measure", "LATENCY", "RECEIPT_LATENCY", "SLO_METRICS",
    "ASSERT_METRICS",
]

#: latency metric -> its key in BenchResult.latency_us
LATENCY = {"p50": "p50", "p90": "p90", "p99": "p99", "p99.9": "p999", "max": "max"}
#: receipt latency metric -> its key in BenchResult.receipt_latency_us
RECEIPT_LATENCY = {f"receipt_{name}": key for name, key in LATENCY.items()}
_TIMES = {**LATENCY, **RECEIPT_LATENCY}
#: what --slo may hold a step to: how the target behaves at a rate
SLO_METRICS = (*LATENCY, "errors", *RECEIPT_LATENCY)
#: what --assert may check after a run
ASSERT_METRICS = (*LATENCY, "errors", "receipts", "rate", *RECEIPT_LATENCY)

_TIME_UNITS = {"us": 1.0, "µs": 1.0, "ms": 1000.0, "s": 1_000_000.0}
_GRAMMAR = re.compile(r"\s*([a-z0-9._]+)\s*(<=|>=|<|>)\s*(-?[0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*(µs|us|ms|s|%|/s)?\s*",
                      re.I)

Op = Literal["<", "<=", ">", ">="]


class Objective(msgspec.Struct, frozen=True):
    """One objective: ``metric`` ``op`` ``value``, the value in the metric's own unit
    (microseconds for latency, a fraction for errors and receipts, per second for
    rate); ``text`` as the user wrote it."""

    metric: str
    op: Op
    value: float
    text: str

    def holds(self, measured: float) -> bool:
        if self.op == "<":
            return measured < self.value
        if self.op == "<=":
            return measured <= self.value
        if self.op == ">":
            return measured > self.value
        return measured >= self.value

    def show(self, value: float) -> str:
        """``value`` of this objective's metric, in the unit a reader expects."""
        if self.metric in _TIMES:
            return f"{value / 1000:.2f} ms"
        if self.metric in ("errors", "receipts"):
            return f"{value * 100:.3g}%"
        return f"{value:,.0f}/s"


class Verdict(msgspec.Struct, frozen=True):
    """An objective against what was measured (None: nothing to measure, which fails)."""

    objective: Objective
    measured: float | None
    passed: bool

    def line(self) -> str:
        """``p99<50ms: measured 73.20 ms``."""
        got = "nothing measured" if self.measured is None else f"measured {self.objective.show(self.measured)}"
        return f"{self.objective.text}: {got}"


def parse_objectives(value: str, allowed: tuple[str, ...], flag: str) -> list[Objective]:
    """``p99<50ms,errors<0.1%`` -> objectives; ValueError naming ``flag`` and the bad part."""
    out = []
    for part in value.split(","):
        if not part.strip():
            raise ValueError(f"{flag}: empty objective in {value!r}")
        out.append(_parse_one(part, allowed, flag))
    return out


def _parse_one(part: str, allowed: tuple[str, ...], flag: str) -> Objective:
    text = part.strip()
    m = _GRAMMAR.fullmatch(part)
    if not m:
        raise ValueError(f"{flag}: cannot read {text!r}: expected METRIC<VALUE like p99<50ms or errors<0.1% "
                         f"(metrics: {', '.join(allowed)})")
    metric, op, number, unit = m.group(1).lower(), m.group(2), float(m.group(3)), (m.group(4) or "").lower()
    if metric not in allowed:
        raise ValueError(f"{flag}: unknown metric {metric!r} in {text!r} (known: {', '.join(allowed)})")
    if number < 0 or not math.isfinite(number):
        raise ValueError(f"{flag}: {text!r}: the value must be a number >= 0")
    if metric in _TIMES:
        if unit not in _TIME_UNITS:
            raise ValueError(f"{flag}: {text!r}: give the latency a unit: us, ms or s (e.g. {metric}<50ms)")
        return Objective(metric, op, number * _TIME_UNITS[unit], text)  # type: ignore[arg-type]
    if metric in ("errors", "receipts"):
        if unit != "%":
            raise ValueError(f"{flag}: {text!r}: give {metric} in percent (e.g. {metric}{op}{number:g}%)")
        if number > 100:
            raise ValueError(f"{flag}: {text!r}: a percentage is at most 100")
        return Objective(metric, op, number / 100, text)  # type: ignore[arg-type]
    if unit not in ("", "/s"):
        raise ValueError(f"{flag}: {text!r}: rate is in messages per second (e.g. rate>=900)")
    return Objective(metric, op, number, text)  # type: ignore[arg-type]


def measure(metric: str, result: BenchResult) -> float | None:
    """The figure of ``result`` an objective on ``metric`` is held to (None: none measured)."""
    if metric in LATENCY:
        return float(result.latency_us[LATENCY[metric]]) if result.latency_us.get("count") else None
    if metric in RECEIPT_LATENCY:
        figures = result.receipt_latency_us
        return float(figures[RECEIPT_LATENCY[metric]]) if figures.get("count") else None
    if metric == "errors":
        return sum(result.errors.values()) / result.sent if result.sent else None
    if metric == "receipts":
        return result.receipts / result.receipts_expected if result.receipts_expected else 1.0
    return result.submit_rate


def check(objectives: list[Objective], result: BenchResult) -> list[Verdict]:
    verdicts = []
    for o in objectives:
        got = measure(o.metric, result)
        verdicts.append(Verdict(o, got, got is not None and o.holds(got)))
    return verdicts
