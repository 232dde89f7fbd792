"""TurnBatcher (router/batching.py): one batch per loop turn, one flush task per batch.

Its contract, as written there: every item added during a turn of the loop joins the same
batch, and one task per batch runs the flush coroutine with all of them; drain() flushes
what waits and waits for every flush under way. A flush that raises loses only its own
batch: the hub's flushes (Acceptor._commit, Deliveries._flush) catch store errors
themselves, so an exception here is a bug, and it must not stop later batches.
"""

from __future__ import annotations

import asyncio

from smpphub.router.batching import TurnBatcher


class Flushes:
    """A flush coroutine that records its batches; ``gate`` (when set) holds every flush until opened."""

    def __init__(self, gate: asyncio.Event | None = None, fail_first: bool = False) -> None:
        self.gate = gate
        self.fail_first = fail_first
        self.started: list[list[int]] = []
        self.finished: list[list[int]] = []
        self.running = asyncio.Event()

    async def __call__(self, batch: list[int]) -> None:
        self.started.append(batch)
        self.running.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_first and len(self.started) == 1:
            raise RuntimeError("flush failed")
        self.finished.append(batch)


async def next_turn() -> None:
    await asyncio.sleep(0)


async def test_everything_added_in_one_turn_is_one_batch():
    flushes = Flushes()
    batcher: TurnBatcher[int] = TurnBatcher(flushes)
    for i in range(100):
        batcher.add(i)
    await batcher.drain()
    assert flushes.finished == [list(range(100))]
    assert batcher.batches == 1


async def test_each_turn_is_a_batch_of_its_own():
    flushes = Flushes()
    batcher: TurnBatcher[int] = TurnBatcher(flushes)
    for turn in range(3):
        for i in range(4):
            batcher.add(turn * 10 + i)
        await next_turn()
        await next_turn()
    await batcher.drain()
    assert flushes.finished == [[0, 1, 2, 3], [10, 11, 12, 13], [20, 21, 22, 23]]
    assert batcher.batches == 3


async def test_items_added_while_a_flush_runs_go_in_the_next_batch_and_drain_waits_for_both():
    gate = asyncio.Event()
    flushes = Flushes(gate)
    batcher: TurnBatcher[int] = TurnBatcher(flushes)
    batcher.add(1)
    batcher.add(2)
    await asyncio.wait_for(flushes.running.wait(), 5)  # the first flush is under way, held by the gate
    batcher.add(3)
    batcher.add(4)
    drain = asyncio.ensure_future(batcher.drain())
    for _ in range(20):  # drain cannot finish while a flush is held: many turns go by, it stays pending
        await next_turn()
    assert not drain.done()
    assert flushes.started == [[1, 2], [3, 4]]  # the new items started a batch of their own
    assert flushes.finished == []
    gate.set()
    await asyncio.wait_for(drain, 5)
    assert sorted(flushes.finished) == [[1, 2], [3, 4]]
    assert batcher.batches == 2


async def test_drain_flushes_what_was_added_this_turn():
    flushes = Flushes()
    batcher: TurnBatcher[int] = TurnBatcher(flushes)
    batcher.add(7)
    await batcher.drain()  # without waiting for the loop to start the batch
    assert flushes.finished == [[7]]
    await batcher.drain()  # nothing left: returns at once, flushes nothing more
    assert flushes.finished == [[7]] and batcher.batches == 1


async def test_a_flush_that_raises_loses_only_its_own_batch():
    flushes = Flushes(fail_first=True)
    batcher: TurnBatcher[int] = TurnBatcher(flushes)
    batcher.add(1)
    await next_turn()
    await next_turn()
    batcher.add(2)
    batcher.add(3)
    await batcher.drain()  # does not raise
    assert flushes.started == [[1], [2, 3]]
    assert flushes.finished == [[2, 3]]
    batcher.add(4)
    await batcher.drain()
    assert flushes.finished == [[2, 3], [4]]
    assert batcher.batches == 3
