"""``smpphub bench --find-max``: the highest open-loop rate at which the target holds an objective.

The search runs short open-loop steps, each a whole run of its own (fresh binds, the
step's rate for the step's duration, its answers and receipts waited for), and holds
each to the objectives of ``--slo``. A step holds when every objective does *and*
the generator sent at least :data:`SENT_ENOUGH` of what the rate asked: a target that
stops reading is not allowed to pass by being sent less.

:class:`Search` decides the rates, sans-IO like the session: it is told each step's
outcome and says the next rate, or None when it is done. It brackets first
(doubling from the start rate while steps hold, halving while they fail) and then
bisects between the highest rate that held and the lowest that did not, until they
are within ``tolerance`` of each other, or after ``max_steps`` steps in all, or when
the bracket reaches ``max_rate`` (held there) or :data:`MIN_RATE` (nothing held).

Step by step the search assumes that a rate which held would hold again and one that
failed would fail again. Near the limit a short step may go either way on a shared
machine; bisection then settles on one side of that band, which is why the result is
reported with the bracket around it and the steps that led to it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

import msgspec

from .loadgen import BenchResult, LoadOptions, run_bench
from .slo import Objective, Verdict, check

__all__ = ["Search", "Step", "SearchResult", "find_max", "step_row", "STEP_HEADER", "SENT_ENOUGH", "MIN_RATE"]

#: A step holds only if at least this share of the messages its rate asked for was sent.
SENT_ENOUGH = 0.95
#: Below this rate (messages per second) the search stops looking for one that holds.
MIN_RATE = 1.0


class Search:
    """Which rate to try next, from the outcomes so far (bracketing, then bisection)."""

    def __init__(self, start: float, *, tolerance: float, max_steps: int, max_rate: float) -> None:
        self.start = min(start, max_rate)
        self.tolerance = tolerance
        self.max_steps = max_steps
        self.max_rate = max_rate
        self.held: float | None = None  # the highest rate that held
        self.failed: float | None = None  # the lowest rate that did not
        self.steps = 0

    def record(self, rate: float, held: bool) -> None:
        self.steps += 1
        if held:
            self.held = rate if self.held is None else max(self.held, rate)
        else:
            self.failed = rate if self.failed is None else min(self.failed, rate)

    def next_rate(self) -> float | None:
        if self.steps >= self.max_steps:
            return None
        held, failed = self.held, self.failed
        if held is None and failed is None:
            return self.start
        if failed is None:  # bracketing upwards
            return None if held >= self.max_rate else min(held * 2, self.max_rate)  # type: ignore[operator]
        if held is None:  # bracketing downwards
            rate = failed / 2
            return None if rate < MIN_RATE else rate
        if failed - held <= self.tolerance * held:
            return None
        return (held + failed) / 2

    @property
    def converged(self) -> bool:
        """The bracket is within the tolerance (or the rate held at ``max_rate``)."""
        if self.held is not None and self.failed is None:
            return self.held >= self.max_rate
        held, failed = self.held, self.failed
        return held is not None and failed is not None and failed - held <= self.tolerance * held


class Step(msgspec.Struct, kw_only=True):
    """One step of the search: the rate asked, what came of it, whether it held (and why not)."""

    n: int
    rate: float
    duration: float
    sent: int
    send_rate: float
    p50_us: float
    p99_us: float
    errors: float  # fraction of the requests sent
    held: bool
    failed: list[str] = []  # the objectives that did not hold, each as "p99<50ms: measured 73.20 ms"


class SearchResult(msgspec.Struct, kw_only=True):
    """The search as ``--json`` writes it: the objectives, every step, and what was found.

    ``found`` is the highest rate that held (None: none did), ``failed_at`` the lowest
    that did not (None: none failed below ``max_rate``); ``converged`` says the two
    are within ``tolerance`` of each other (or ``found`` is ``max_rate``).
    """

    objectives: list[str]
    tolerance: float
    max_steps: int
    max_rate: float
    steps: list[Step]
    found: float | None
    failed_at: float | None
    converged: bool


def step_of(n: int, rate: float, duration: float, result: BenchResult, verdicts: list[Verdict]) -> Step:
    """A step's row from its run: held when every objective did and enough was sent."""
    asked = int(rate * duration)
    failed = [v.line() for v in verdicts if not v.passed]
    if result.sent < SENT_ENOUGH * asked:
        failed.append(f"sent {result.sent:,} of the {asked:,} the rate asked for")
    lat = result.latency_us
    return Step(n=n, rate=rate, duration=duration, sent=result.sent, send_rate=result.send_rate,
                p50_us=lat.get("p50", 0.0), p99_us=lat.get("p99", 0.0),
                errors=sum(result.errors.values()) / result.sent if result.sent else 0.0,
                held=not failed, failed=failed)


STEP_HEADER = f"{'step':>4}  {'rate/s':>10}  {'sent/s':>10}  {'p50 ms':>9}  {'p99 ms':>9}  {'errors':>8}  holds"


def step_row(step: Step) -> str:
    """One line of the table printed as the search goes."""
    verdict = "yes" if step.held else "no: " + "; ".join(step.failed)
    return (f"{step.n:>4}  {step.rate:>10,.0f}  {step.send_rate:>10,.0f}  {step.p50_us / 1000:>9.2f}  "
            f"{step.p99_us / 1000:>9.2f}  {step.errors * 100:>7.3g}%  {verdict}")


RunStep = Callable[[LoadOptions], BenchResult]


def find_max(opts: LoadOptions, objectives: list[Objective], search: Search, *, run: RunStep = run_bench,
             out: TextIO | None = None) -> SearchResult:
    """Run the search; each step is ``opts`` at the step's rate (``opts.duration`` long),
    and its row goes to ``out`` (default stdout) as soon as it is done."""
    out = out if out is not None else sys.stdout
    duration = opts.duration or 0.0
    steps: list[Step] = []
    print(STEP_HEADER, file=out, flush=True)
    while (rate := search.next_rate()) is not None:
        result = run(msgspec.structs.replace(opts, rate=rate, ramp=None, count=None))
        step = step_of(len(steps) + 1, rate, duration, result, check(objectives, result))
        search.record(rate, step.held)
        steps.append(step)
        print(step_row(step), file=out, flush=True)
    return SearchResult(objectives=[o.text for o in objectives], tolerance=search.tolerance,
                        max_steps=search.max_steps, max_rate=search.max_rate, steps=steps, found=search.held,
                        failed_at=search.failed, converged=search.converged)


def conclusion(result: SearchResult) -> str:
    """The line under the table: what was found, and how sure the search is of it."""
    slo = ",".join(result.objectives)
    n = len(result.steps)
    if result.found is None:
        return f"no rate tried holds {slo} (lowest tried {min(s.rate for s in result.steps):,.0f}/s; {n} steps)"
    if result.failed_at is None:
        return (f"{slo} holds at every rate tried, up to {result.found:,.0f}/s"
                + (" (--max-rate)" if result.converged else " (stopped after --max-steps)") + f"; {n} steps")
    spread = (result.failed_at - result.found) / result.found
    how = f"within {spread:.1%}" if result.converged else f"{spread:.1%} apart: stopped after --max-steps"
    return (f"highest rate holding {slo}: {result.found:,.0f}/s ({result.found:,.0f} held, "
            f"{result.failed_at:,.0f} did not: {how}; {n} steps)")
