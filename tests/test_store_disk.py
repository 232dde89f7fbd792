"""The store's disk is bounded: a size cap (``store.max_size_mb``) and files that shrink.

The cap gives up the oldest finished messages first and never an open message or a
receipt still owed; a new file is created with incremental auto_vacuum so purged
pages go back to the file system; a file made before that still opens and works.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest
from structlog.testing import capture_logs

from smpphub.router.config import ConfigError, config_from_dict
from smpphub.router.hub import Hub
from smpphub.router.lifecycle import MessageRow, State
from smpphub.router.store.sqlite import SqliteStore

BIG = 4000  # bytes of pdu per row: overflow pages, so a few thousand rows make megabytes


def final(i: int, **kw) -> MessageRow:
    kw.setdefault("state", State.DELIVERED)
    return MessageRow(id=f"f{i}", account="acme", pdu=bytes([i % 256]) * BIG, route=["a"], created_at=1000.0 + i,
                      **kw)


def auto_vacuum(path: str) -> int:
    with sqlite3.connect(path) as db:
        mode = int(db.execute("PRAGMA auto_vacuum").fetchone()[0])
    db.close()
    return mode


async def test_purge_oldest_takes_the_oldest_finished_messages_and_nothing_else(tmp_path):
    store = SqliteStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        # the oldest rows are an open message and a receipt owed: they are skipped, not taken
        await store.add_messages([
            final(0, state=State.QUEUED), final(1, receipt_owed=True, receipt=b"dlr"),
            *(final(i) for i in range(2, 7)),
        ])
        assert await store.purge_oldest(2) == 2
        assert [await store.get(f"f{i}") is None for i in range(7)] == [False, False, True, True, False, False,
                                                                        False]
        assert await store.purge_oldest(100) == 3
        assert await store.purge_oldest(100) == 0
        assert {r.id for r in await store.open_messages()} == {"f0"}
        assert [r.id for r in await store.owed_receipts()] == ["f1"]
    finally:
        await store.close()


async def test_a_new_file_shrinks_after_purge_and_incremental_vacuum(tmp_path):
    path = str(tmp_path / "s.db")
    store = SqliteStore(path)
    await store.open()
    await store.add_messages([final(i) for i in range(2000)])
    await store.close()  # the last connection closing checkpoints the WAL into the file
    full = os.path.getsize(path)
    assert auto_vacuum(path) == 2  # INCREMENTAL
    await store.open()
    try:
        assert await store.purge(older_than=1e12) == 2000
        returned = 0
        while n := await store.vacuum(1024):
            assert n <= 1024  # bounded per request: the writer is never held long
            returned += n
        assert returned > 1000
    finally:
        await store.close()
    assert os.path.getsize(path) < full / 4, (full, os.path.getsize(path))


async def test_an_old_file_without_auto_vacuum_opens_works_and_is_left_as_it_is(tmp_path):
    path = str(tmp_path / "old.db")
    store = SqliteStore(path)
    await store.open()
    await store.add_messages([final(i) for i in range(50)])
    await store.close()
    with sqlite3.connect(path, isolation_level=None) as db:  # what a store made before auto_vacuum looks like
        db.execute("PRAGMA auto_vacuum = NONE")
        db.execute("VACUUM")
    db.close()
    assert auto_vacuum(path) == 0
    with capture_logs() as logs:
        await store.open()
    try:
        assert [e["event"] for e in logs if e["event"] == "store_without_auto_vacuum"] == ["store_without_auto_vacuum"]
        assert logs[0]["path"] == path
        await store.add_messages([final(i) for i in range(50, 60)])
        assert (await store.get("f55")) == final(55)
        assert await store.purge(older_than=1030.0) == 30
        assert await store.purge_oldest(5) == 5
        assert await store.vacuum(1024) == 0  # nothing it could return: the file keeps its pages
        assert await store.disk_usage() > 0
        assert (await store.counts()) == {"delivered": 25}
    finally:
        await store.close()
    assert auto_vacuum(path) == 0


async def wait_for_event(logs: list[dict], event: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(e["event"] == event for e in logs):
        if loop.time() > deadline:
            raise AssertionError(f"no {event} within {timeout}s: {[e['event'] for e in logs]}")
        await asyncio.sleep(0.01)


async def test_the_hub_housekeeping_keeps_the_store_under_its_size_cap(tmp_path):
    path = str(tmp_path / "hub.db")
    store = SqliteStore(path)
    await store.open()
    n = 3000
    # the oldest two can never go: an open message and a receipt still owed
    await store.add_messages([final(0, state=State.SCHEDULED), final(1, receipt_owed=True, receipt=b"dlr"),
                              *(final(i) for i in range(2, n))])
    await store.close()  # the insert's 12 MB of WAL go into the file; the WAL starts empty again
    await store.open()
    before = await store.disk_usage()
    cap_mb = before * 0.7 / 1e6  # the WAL of the purges (~4 MB) counts too: most finished messages go
    config = config_from_dict({"store": {"max_size_mb": cap_mb, "keep_final": 1e12}})  # the age rule takes nothing
    hub = Hub(config, store=store)
    hub.housekeeping_interval = 0.01
    hub.purge_chunk = 200
    with capture_logs() as logs:
        task = asyncio.get_running_loop().create_task(hub._purge_forever())
        try:
            await wait_for_event(logs, "store_under_size_cap")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    try:
        events = [e for e in logs if e["event"].startswith("store_")]
        assert [e["event"] for e in events] == ["store_over_size_cap", "store_under_size_cap"]  # once per episode
        assert events[0]["max_size_mb"] == cap_mb and events[0]["size_mb"] > cap_mb
        assert await store.disk_usage() <= cap_mb * 1e6
        kept = [i for i in range(n) if await store.get(f"f{i}") is not None]
        assert kept[:2] == [0, 1]  # the open message and the receipt owed
        finals = kept[2:]
        assert finals and finals == list(range(finals[0], n))  # the oldest finished went first, none after a gap
        assert finals[0] > 2
    finally:
        await store.close()
    assert os.path.getsize(path) < before * 0.8  # the pages freed went back to the file system


async def test_the_hub_without_a_cap_takes_only_what_the_age_rule_takes(tmp_path):
    store = SqliteStore(str(tmp_path / "hub.db"))
    await store.open()
    await store.add_messages([final(i) for i in range(10)])
    hub = Hub(config_from_dict({"store": {"keep_final": 0}}), store=store)  # max_size_mb: 0, no cap
    hub.housekeeping_interval = 0.01
    with capture_logs() as logs:
        task = asyncio.get_running_loop().create_task(hub._purge_forever())
        try:
            await wait_for_event(logs, "purged")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    try:
        assert [e["messages"] for e in logs if e["event"] == "purged"] == [10]
        assert not [e for e in logs if e["event"].startswith("store_")]
    finally:
        await store.close()


@pytest.mark.parametrize("value,fragment", [
    (-1, "store.max_size_mb: expected"),
    ("big", "store.max_size_mb: expected"),
    (True, "store.max_size_mb: expected"),
])
def test_a_bad_max_size_mb_is_one_line_naming_the_key(value, fragment):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"store": {"max_size_mb": value}})
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_max_size_mb_takes_whole_and_fractional_megabytes():
    assert config_from_dict({"store": {"max_size_mb": 500}}).store.max_size_mb == 500.0
    assert config_from_dict({"store": {"max_size_mb": 0.5}}).store.max_size_mb == 0.5
    assert config_from_dict({}).store.max_size_mb == 0.0
