"""What the operator's view costs the hub per message: the trace ring and the metrics counts.

The hub spends tens of microseconds of CPU per message end to end (``python -m
smpphub.bench.hub``); this measures, in isolation and in the same process, the work
the metrics and the admin API's trace add to each message, next to a reference (one
dict store per message, the cheapest bookkeeping there is), so the figures can be
read on any machine:

- ``trace ring``: :meth:`TraceRing.moved` for the four transitions a delivered message
  takes (queued, in flight, sent, delivered), each message's in a row as in the hub,
  10,000 messages kept;
- ``trace ring, Step per transition``: the same ring building a named struct per
  transition instead of a tuple (what router/trace.py chose not to do);
- ``metrics counts``: the :class:`HubStats` work of one message (accepted, sent, final
  state, the two latencies);
- ``reference``: ``d[id] = account``.

    python -m smpphub.bench.ops_overhead            # 100,000 messages, median of 5 interleaved runs
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from collections.abc import Callable

from smpphub.router.lifecycle import MessageRow, State, Transition
from smpphub.router.stats import HubStats
from smpphub.router.trace import MAX_STEPS, Step, TraceRing

TRANSITIONS = (
    Transition(State.QUEUED, State.QUEUED),
    Transition(State.QUEUED, State.IN_FLIGHT),
    Transition(State.IN_FLIGHT, State.SENT),
    Transition(State.SENT, State.DELIVERED),
)


class StepRing(TraceRing):
    """The alternative: a :class:`Step` built per transition."""

    def moved(self, row: MessageRow, transition: Transition) -> None:
        steps = self._steps.get(row.id)
        if steps is not None and len(steps) < MAX_STEPS:
            steps.append(Step(row.updated_at, transition.after.value, transition.before.value,
                              row.upstream, row.error))


def rows(n: int) -> list[MessageRow]:
    return [MessageRow(id=f"{i:016x}", account=f"acct{i % 10}", pdu=b"", route=["uk"], upstream="uk",
                       created_at=1.0, updated_at=1.05) for i in range(n)]


def ring_run(ring_type: type[TraceRing]) -> Callable[[list[MessageRow]], None]:
    def run(messages: list[MessageRow]) -> None:
        ring = ring_type(10_000)
        for row in messages:
            ring.start(row.id)
            for transition in TRANSITIONS:
                ring.moved(row, transition)

    return run


def stats_run(messages: list[MessageRow]) -> None:
    stats = HubStats()
    stats.accepted.update([row.account for row in messages])  # one group commit's worth at once
    for row in messages:
        stats.sent[row.account] += 1
        stats.submit_latency.observe(row.updated_at - row.created_at)
        stats.final(row.account, "delivered")
        stats.receipt_latency.observe(row.updated_at - row.created_at)


def reference_run(messages: list[MessageRow]) -> None:
    seen: dict[str, str] = {}
    for row in messages:
        seen[row.id] = row.account


CASES: dict[str, Callable[[list[MessageRow]], None]] = {
    "trace ring (4 transitions)": ring_run(TraceRing),
    "trace ring, Step per transition": ring_run(StepRing),
    "metrics counts": stats_run,
    "reference: one dict store": reference_run,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smpphub.bench.ops_overhead", description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    messages = rows(args.count)
    times: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(args.repeat):  # interleaved: a busy moment of the machine hits every case alike
        for name, case in CASES.items():
            started = time.process_time()
            case(messages)
            times[name].append((time.process_time() - started) / args.count * 1e6)
    reference = statistics.median(times["reference: one dict store"])
    print(f"{'per message':34} {'CPU us':>8} {'x reference':>12}   (median of {args.repeat}, {args.count:,} messages)")
    for name in CASES:
        us = statistics.median(times[name])
        print(f"{name:34} {us:8.2f} {us / reference:12.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
