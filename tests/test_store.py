"""Both store backends through the one interface, and what only SQLite promises."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from smpphub.router.store import Delivery, MessageRecord, MessageState
from smpphub.router.store.memory import MemoryStore
from smpphub.router.store.sqlite import SqliteStore


def record(i: int, **kw) -> MessageRecord:
    return MessageRecord(id=f"m{i}", account="acme", pdu=bytes([i % 256]) * 5, route=["a", "b"], created_at=1000.0 + i, **kw)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request, tmp_path):
    s = MemoryStore() if request.param == "memory" else SqliteStore(str(tmp_path / "t.db"))
    await s.open()
    yield s
    await s.close()


async def test_messages_round_trip(store):
    await store.add_messages([record(1), record(2, registered_delivery=1)])
    got = await store.get("m2")
    assert got == record(2, registered_delivery=1)
    assert await store.get("nope") is None
    store.update("m1", state=MessageState.SENT, upstream="a", upstream_id="X9", attempts=2)
    found = await store.find_by_upstream_id("a", "X9")
    assert found.id == "m1" and found.state == MessageState.SENT and found.attempts == 2
    assert await store.find_by_upstream_id("b", "X9") is None
    store.update("m2", state=MessageState.DELIVERED, updated_at=5.0)
    await store.flush()
    assert [r.id for r in await store.open_messages()] == ["m1"]
    assert (await store.counts()) == {MessageState.SENT: 1, MessageState.DELIVERED: 1}
    assert await store.purge(older_than=10.0) == 1
    assert await store.get("m2") is None
    with pytest.raises(ValueError):
        store.update("m1", colour="red")


async def test_deliveries(store):
    ids = await store.add_deliveries([Delivery(account="acme", pdu=b"r1", kind="receipt"), Delivery(account="beta", pdu=b"mo", kind="mo")])
    assert len(set(ids)) == 2
    one = await store.add_delivery(Delivery(account="acme", pdu=b"r2"))
    assert [d.pdu for d in await store.pending_deliveries("acme")] == [b"r1", b"r2"]
    store.delete_delivery(ids[0])
    await store.flush()
    assert [d.id for d in await store.pending_deliveries()] == [ids[1], one]


async def test_sqlite_groups_concurrent_writes_into_few_commits(tmp_path):
    s = SqliteStore(str(tmp_path / "g.db"))
    await s.open()
    try:
        await asyncio.gather(*(s.add_messages([record(i)]) for i in range(1000)))
        assert s.commits < 100  # 1000 callers, a handful of transactions
        assert len(await s.open_messages()) == 1000
    finally:
        await s.close()


async def test_sqlite_close_flushes_pending_updates(tmp_path):
    path = str(tmp_path / "c.db")
    s = SqliteStore(path)
    await s.open()
    await s.add_messages([record(1)])
    s.update("m1", state=MessageState.FAILED, error=11)  # not awaited
    await s.close()
    again = SqliteStore(path)
    await again.open()
    got = await again.get("m1")
    await again.close()
    assert got.state == MessageState.FAILED and got.error == 11


async def test_sqlite_failure_fails_the_callers_instead_of_hanging(tmp_path):
    s = SqliteStore(str(tmp_path / "f.db"))
    await s.open()
    try:
        await s.add_messages([record(1)])
        # a NOT NULL violation inside the batch: that caller fails, the store keeps working
        bad = MessageRecord(id="m2", account=None, pdu=b"", route=[])  # type: ignore[arg-type]
        with pytest.raises(Exception):
            await asyncio.wait_for(s.add_messages([bad]), 5)
        await s.add_messages([record(3)])
        assert {r.id for r in await s.open_messages()} == {"m1", "m3"}
    finally:
        await s.close()


def test_sqlite_acked_writes_survive_sigkill(tmp_path):
    path = tmp_path / "k.db"
    script = textwrap.dedent(f"""
        import asyncio, os, signal
        from smpphub.router.store import MessageRecord
        from smpphub.router.store.sqlite import SqliteStore
        async def main():
            s = SqliteStore({str(path)!r})
            await s.open()
            await s.add_messages([MessageRecord(id=f"k{{i}}", account="a", pdu=b"x", route=["u"]) for i in range(500)])
            print("acked", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == -9 and "acked" in proc.stdout

    async def count() -> int:
        s = SqliteStore(str(path))
        await s.open()
        try:
            return len(await s.open_messages())
        finally:
            await s.close()

    assert asyncio.run(count()) == 500
