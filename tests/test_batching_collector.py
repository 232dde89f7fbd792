"""TurnCollector (router/batching.py): the items of one loop turn handed to one plain function.

Its contract, as written there: one call per turn in which something was added (or
wake() asked for it), with the items in the order they came, as a loop callback (no
task); nothing is scheduled until ``runner`` is set; flush() hands over what waits now;
an exception in the function loses only that turn's items. The three users in the hub
(Dispatcher._settle, Deliveries._save_settled, Receipts._save_receipts) rely on the
order of callbacks: a collector's call runs where its first item of the turn put it.
"""

from __future__ import annotations

import asyncio

import pytest

from smpphub.router.batching import TurnCollector
from smpphub.router.stats import HubStats


class Calls:
    """A flush function that records what it was handed."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> None:
        self.batches.append(items)


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_everything_added_in_one_turn_is_one_call_in_order():
    calls = Calls()
    collector: TurnCollector[int] = TurnCollector(calls, asyncio.get_running_loop())
    for i in range(100):
        collector.add(i)
    assert calls.batches == [] and len(collector) == 100  # not before the end of the turn
    await next_turn()
    assert calls.batches == [list(range(100))] and len(collector) == 0


async def test_each_turn_is_a_call_of_its_own_and_idle_turns_call_nothing():
    calls = Calls()
    collector: TurnCollector[int] = TurnCollector(calls, asyncio.get_running_loop())
    for turn in range(3):
        collector.add(turn * 10)
        collector.add(turn * 10 + 1)
        await next_turn()
        await next_turn()  # a turn with nothing added
    assert calls.batches == [[0, 1], [10, 11], [20, 21]]


async def test_the_call_is_a_plain_callback_on_the_loop_not_a_task():
    seen: list[asyncio.Task[object] | None] = []
    collector: TurnCollector[int] = TurnCollector(lambda items: seen.append(asyncio.current_task()),
                                                  asyncio.get_running_loop())
    collector.add(1)
    await next_turn()
    assert seen == [None]


async def test_callbacks_run_in_the_order_of_each_collectors_first_item():
    """What Receipts relies on: a save asked for first in a turn runs first, whatever is added later."""
    order: list[str] = []
    loop = asyncio.get_running_loop()
    first: TurnCollector[int] = TurnCollector(lambda items: order.append(f"first {items}"), loop)
    second: TurnCollector[int] = TurnCollector(lambda items: order.append(f"second {items}"), loop)
    first.add(1)
    second.add(2)
    first.add(3)  # joins first's call, which was scheduled before second's
    loop.call_soon(order.append, "a callback scheduled after both")
    await next_turn()
    assert order == ["first [1, 3]", "second [2]", "a callback scheduled after both"]


async def test_an_item_added_by_the_call_itself_goes_to_the_next_turn():
    calls: list[list[int]] = []
    loop = asyncio.get_running_loop()

    def flush(items: list[int]) -> None:
        calls.append(items)
        if items == [1]:
            collector.add(2)

    collector: TurnCollector[int] = TurnCollector(flush, loop)
    collector.add(1)
    await next_turn()
    assert calls == [[1]]
    await next_turn()
    assert calls == [[1], [2]]


async def test_wake_asks_for_the_call_without_an_item_once_per_turn():
    """The dispatcher's use: its table keeps what changed, the collector only says "end of turn"."""
    calls = Calls()
    collector: TurnCollector[int] = TurnCollector(calls, asyncio.get_running_loop())
    for _ in range(5):
        collector.wake()
    await next_turn()
    assert calls.batches == [[]]
    collector.wake()
    collector.add(7)
    await next_turn()
    assert calls.batches == [[], [7]]


async def test_without_a_runner_items_wait_for_flush():
    """The owner sets ``runner`` when it starts; before that nothing is scheduled (the dispatcher
    and the deliveries before start())."""
    calls = Calls()
    collector: TurnCollector[int] = TurnCollector(calls)
    collector.add(1)
    collector.wake()
    await next_turn()
    assert calls.batches == [] and len(collector) == 1
    collector.runner = asyncio.get_running_loop()
    collector.add(2)
    await next_turn()
    assert calls.batches == [[1, 2]]


def test_flush_hands_over_now_and_nothing_when_nothing_waits():
    calls = Calls()
    collector: TurnCollector[int] = TurnCollector(calls)
    collector.flush()
    assert calls.batches == []
    collector.add(1)
    collector.add(2)
    collector.flush()
    assert calls.batches == [[1, 2]] and len(collector) == 0


async def test_flush_early_leaves_the_scheduled_call_what_came_after():
    """Deliveries.stop() flushes while a call may be scheduled: nothing is handed over twice."""
    calls = Calls()
    collector: TurnCollector[int] = TurnCollector(calls, asyncio.get_running_loop())
    collector.add(1)
    collector.flush()
    collector.add(2)
    await next_turn()
    assert calls.batches == [[1], [2]]
    collector.flush()
    await next_turn()
    assert calls.batches == [[1], [2]]


async def test_a_call_that_raises_loses_its_turn_only():
    loop = asyncio.get_running_loop()
    errors: list[BaseException | None] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context.get("exception")))
    calls: list[list[int]] = []

    def flush(items: list[int]) -> None:
        calls.append(items)
        if items == [1]:
            raise RuntimeError("save failed")

    collector: TurnCollector[int] = TurnCollector(flush, loop)
    try:
        collector.add(1)
        await next_turn()
        collector.add(2)
        await next_turn()
    finally:
        loop.set_exception_handler(None)
    assert calls == [[1], [2]]
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)


class Runner:
    """An owner that holds the loop (as the dispatcher does for Receipts): the Soon interface."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.scheduled = 0

    def call_soon(self, callback) -> None:
        self.scheduled += 1
        self.loop.call_soon(callback)


async def test_any_owner_with_call_soon_runs_it_once_per_turn():
    calls = Calls()
    runner = Runner(asyncio.get_running_loop())
    collector: TurnCollector[int] = TurnCollector(calls, runner)
    for i in range(10):
        collector.add(i)
    await next_turn()
    assert calls.batches == [list(range(10))] and runner.scheduled == 1


# ---- HubStats: each event counted once, hub-wide totals derived ---------------------------------


def test_totals_are_the_per_account_counts_summed_and_only_what_happened():
    stats = HubStats()
    assert stats.totals() == {}
    stats.sent["acme"] += 2
    stats.sent["beta"] += 3
    stats.final("acme", "delivered")
    stats.final("beta", "delivered")
    stats.final("beta", "expired")
    stats.receipts_in += 2
    stats.temporary_failures += 1
    assert stats.totals() == {"sent": 5, "delivered": 2, "expired": 1, "receipts_in": 2, "temporary_failures": 1}
    assert stats.sent_total() == 5


@pytest.mark.parametrize("name", ["temporary_failures", "permanent_failures", "receipts_in", "receipts_duplicate",
                                  "receipts_unmatched", "mo_in", "mo_unroutable"])
def test_each_hub_wide_count_appears_under_its_status_name(name):
    stats = HubStats()
    setattr(stats, name, getattr(stats, name) + 1)
    assert stats.totals() == {name: 1}
