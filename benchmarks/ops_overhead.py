"""What the operator's view costs the hub per message: the trace ring and the metrics counts.

The hub spends tens of microseconds of CPU per message end to end (``python -m
smpphub.bench.hub``); this measures, in isolation and in the same process, the work
the metrics and the admin API's trace add to each message, next to a reference (one
dict store per message, the cheapest bookkeeping there is), so the figures can be
read on any machine:

- ``trace ring``: :meth:`TraceRing.record` of the five transitions a delivered message
  takes (accepted, in flight, sent, delivered, and the note of its receipt handed over),
  each message's in a row as in the hub, 10,000 messages kept;
- ``trace ring, Step per transition``: the same ring building a named :class:`Step` per
  transition instead of keeping the transition the lifecycle made anyway (what
  router/trace.py chose not to do);
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

from smpphub.router.lifecycle import Accepted, MessageRow, State, Transition
from smpphub.router.stats import HubStats
from smpphub.router.trace import Note, Step, TraceRing


def transitions(row: MessageRow) -> list[Transition]:
    """The transitions of a message sent and delivered, as the lifecycle makes them (the ids and times in them)."""
    at, uk = row.updated_at, row.upstream
    return [
        Accepted(State.QUEUED, State.QUEUED, message_id=row.id, at=at),
        Transition(State.QUEUED, State.IN_FLIGHT, message_id=row.id, at=at, upstream=uk),
        Transition(State.IN_FLIGHT, State.SENT, message_id=row.id, at=at, upstream=uk),
        Transition(State.SENT, State.DELIVERED, message_id=row.id, at=at, upstream=uk),
    ]


class StepRing(TraceRing):
    """The alternative: a :class:`Step` built per transition (``record`` made a Python method)."""

    def __init__(self, max_messages: int) -> None:
        super().__init__(max_messages)
        self.steps_made: collections.deque[Step] = collections.deque(maxlen=max_messages * 5)
        self.record = self._step

    def _step(self, record: Transition | Note) -> None:
        if isinstance(record, Transition):
            self.steps_made.append(Step(record.at, record.after.value, record.before.value, record.upstream,
                                        record.error))


def rows(n: int) -> list[MessageRow]:
    return [MessageRow(id=f"{i:016x}", account=f"acct{i % 10}", pdu=b"", route=["uk"], upstream="uk",
                       created_at=1.0, updated_at=1.05) for i in range(n)]


def ring_run(ring_type: type[TraceRing]) -> Callable[[list[MessageRow]], None]:
    def run(messages: list[MessageRow]) -> None:
        ring = ring_type(10_000)
        made = [transitions(row) for row in messages[:1000]]  # the lifecycle makes these anyway: not timed apart
        for i, row in enumerate(messages):
            for transition in made[i % 1000]:
                ring.record(transition)
            ring.note(row.id, "receipt_delivered", row.updated_at)

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
    "trace ring (5 steps)": ring_run(TraceRing),
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
