"""When a held save goes to the SQLite writer (router/store/sqlite_saves.py), on a fake
writer and a fake clock: every rule of HeldSaves.gather walked step by step, no sleeping.

A save someone waits for goes at the next hand-over; one nobody waits for skips the first
hand-over after it (so the message's next save merges into it) and never waits longer than
LAZY_SAVE_DELAY: the timer runs from the first save of the youngest hand-over's saves.
"""

from __future__ import annotations

import asyncio

import pytest

from smpphub.router.lifecycle import MessageRow, State
from smpphub.router.store import sqlite_schema as schema
from smpphub.router.store.sqlite_saves import LAZY_SAVE_DELAY, HeldSaves


class FakeTimer:
    def __init__(self, when: float, callback) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """The two things HeldSaves asks of a loop: the time, and a timer."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[FakeTimer] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback) -> FakeTimer:
        return self.call_at(self.now + delay, callback)

    def call_at(self, when: float, callback) -> FakeTimer:
        self.timers.append(FakeTimer(when, callback))
        return self.timers[-1]

    def armed(self) -> list[float]:
        return [t.when for t in self.timers if not t.cancelled]

    def advance(self, seconds: float) -> None:
        """Time passes; the timers due fire."""
        self.now += seconds
        for t in list(self.timers):
            if not t.cancelled and t.when <= self.now:
                t.cancelled = True
                t.callback()


class FakeWriter:
    """Records what is queued: the message ids of each write and the columns it sets."""

    running = True

    def __init__(self, loop: FakeLoop, real_loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.real_loop = loop, real_loop
        self.writes: list[tuple[list[str], tuple[str, ...]]] = []
        self.woken = 0

    def open_loop(self) -> FakeLoop:
        return self.loop

    def wake(self) -> None:
        self.woken += 1

    def write(self, shape, rows, wait: bool = True):
        # the columns it sets, and receipts_owed's write when one goes with it (Shape.then)
        owed = () if shape.then is None else (shape.then.template.split(" (")[0],)
        self.writes.append(([row[-1] for row in rows], shape.fields + owed))
        if not wait:
            return None
        done = self.real_loop.create_future()
        done.set_result(None)
        return done

    def all_of(self, futures):
        return futures[0] if len(futures) == 1 else asyncio.gather(*futures)

    def taken(self) -> list[str]:
        """The ids written since the last call, in order."""
        ids = [i for ids, _ in self.writes for i in ids]
        self.writes.clear()
        return ids


def row(i: int, state: State = State.SENT, **kw) -> MessageRow:
    return MessageRow(id=f"m{i}", account="acme", pdu=b"x", route=["a"], state=state, upstream="a",
                      upstream_id=f"U{i}", **kw)


@pytest.fixture
def held():
    loop = FakeLoop()
    writer = FakeWriter(loop, asyncio.new_event_loop())
    try:
        yield HeldSaves(writer), writer, loop  # type: ignore[arg-type]
    finally:
        writer.real_loop.close()


def test_a_save_nobody_waits_for_skips_the_first_hand_over_and_goes_at_the_second(held):
    saves, writer, loop = held
    saves.keep([row(1)], None)
    saves.gather(False)  # no commit coming: it waits for one (or the timer)
    assert writer.taken() == []
    saves.gather(True)  # the first hand-over after it
    assert writer.taken() == []
    saves.gather(True)
    assert writer.taken() == ["m1"]
    assert loop.armed() == []  # nothing held, no timer


def test_the_next_save_of_a_held_message_merges_and_goes_when_waited_for(held):
    saves, writer, loop = held
    saves.keep([row(1), row(2)], None)  # SENT
    saves.gather(True)
    final = row(1, State.DELIVERED, receipt_owed=True, receipt=b"dlr")
    waiter = writer.real_loop.create_future()
    saves.keep([final], waiter)  # its receipt, stored durably
    saves.gather(False)  # someone waits: it goes at once, merged, with m2 (held once already)
    assert sorted(writer.writes) == sorted([
        # one UPDATE, and its receipt owed in the same request
        (["m1"], (*(f for f in schema.COLUMNS if f in schema.SAVED_SENT + schema.SAVED_FINAL),
                  "INSERT OR IGNORE INTO receipts_owed")),
        (["m2"], schema.SAVED_SENT),
    ])
    writer.real_loop.run_until_complete(asyncio.sleep(0))
    assert waiter.done() and waiter.exception() is None


def test_the_timer_runs_from_the_first_save_of_those_kept(held):
    saves, writer, loop = held
    saves.keep([row(1)], None)
    assert loop.armed() == [100.0 + LAZY_SAVE_DELAY]
    loop.advance(0.005)
    saves.gather(True)  # m1 kept; the timer stays for it
    assert writer.taken() == [] and loop.armed() == [100.0 + LAZY_SAVE_DELAY]
    loop.advance(0.005)
    saves.keep([row(2)], None)  # the next hand-over's young save, made at 100.010
    loop.advance(0.005)
    saves.gather(True)  # m1 goes; m2 is kept, the timer now for it
    assert writer.taken() == ["m1"]
    assert loop.armed() == [pytest.approx(100.010 + LAZY_SAVE_DELAY)]
    loop.advance(LAZY_SAVE_DELAY)  # no hand-over for that long: the timer fires and wakes the writer
    assert writer.woken == 1
    saves.gather(False)  # the hand-over it asked for: m2, held LAZY_SAVE_DELAY, goes though no commit comes
    assert writer.taken() == ["m2"] and loop.armed() == []


def test_when_the_timer_fires_only_the_saves_held_that_long_go(held):
    saves, writer, loop = held
    saves.keep([row(1)], None)  # at 100.000
    saves.gather(True)  # kept; the timer for 100.020 stays
    loop.advance(0.019)
    saves.keep([row(2)], None)  # at 100.019: young
    loop.advance(0.001)  # 100.020: the timer fires
    saves.gather(False)
    assert writer.taken() == ["m1"]  # m2 is 1 ms old: it waits for the next hand-over
    assert loop.armed() == [pytest.approx(100.019 + LAZY_SAVE_DELAY)]
    saves.gather(True)
    assert writer.taken() == ["m2"]


def test_a_young_save_held_longer_than_the_delay_goes_at_the_next_hand_over(held):
    saves, writer, loop = held
    saves.keep([row(1)], None)
    loop.now += 2 * LAZY_SAVE_DELAY  # the loop was too busy to run the timer
    saves.gather(True)
    assert writer.taken() == ["m1"]


def test_queue_all_and_close_take_everything_held(held):
    saves, writer, loop = held
    saves.keep([row(1)], None)
    saves.gather(True)
    saves.keep([row(2)], None)
    saves.queue_all()  # a read comes next: it must see both
    assert sorted(writer.taken()) == ["m1", "m2"] and loop.armed() == []
    saves.keep([row(3)], None)
    saves.close()
    assert writer.taken() == ["m3"] and loop.armed() == []


def test_saves_of_one_kind_are_queued_side_by_side_whether_a_receipt_owed_goes_with_them_or_not(held):
    """A receipt stored durably (its UPDATE and the receipt owed, one request) and one acknowledged
    before the writer took it (the UPDATE alone) set the same columns: their requests are queued
    next to each other, so the writer runs their rows as one statement."""
    saves, writer, loop = held
    saves.keep([row(1), row(2), row(3)], None)  # SENT
    waiter = writer.real_loop.create_future()
    saves.keep([row(1, State.DELIVERED, receipt_owed=True, receipt=b"dlr")], waiter)
    saves.keep([row(2, State.DELIVERED, receipt_owed=True, receipt=b"dlr")], None)
    saves.keep([row(2, State.DELIVERED, receipt=b"dlr")], None)  # acknowledged at once
    saves.queue_all()
    final = tuple(f for f in schema.COLUMNS if f in schema.SAVED_SENT + schema.SAVED_FINAL)
    kinds = [fields[:len(final)] == final for _, fields in writer.writes]
    assert sorted(ids for ids, _ in writer.writes) == [["m1"], ["m2"], ["m3"]]
    assert kinds in ([True, True, False], [False, True, True])
    assert (["m1"], (*final, "INSERT OR IGNORE INTO receipts_owed")) in writer.writes
    assert (["m2"], final) in writer.writes  # no delete from receipts_owed: nothing of m2 was owed on file
