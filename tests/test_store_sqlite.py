"""The SQLite store on its own: round trips, group commit, durability across SIGKILL, failures.

(tests/test_store.py runs the interface tests against every backend.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from smpphub.router.store import Delivery, MessageRecord, MessageState
from smpphub.router.store.sqlite import SCHEMA_VERSION, SqliteStore

ROOT = Path(__file__).resolve().parent.parent


def record(i: int, **kw) -> MessageRecord:
    kw.setdefault("created_at", 1000.0 + i)
    kw.setdefault("pdu", b"\x00pdu" + i.to_bytes(4, "big"))
    return MessageRecord(id=f"m{i}", account="acme", route=["a", "b"], **kw)


@pytest.fixture
async def store(tmp_path):
    s = SqliteStore(str(tmp_path / "s.db"))
    await s.open()
    yield s
    await s.close()


async def reopen(path: str, **kw) -> SqliteStore:
    s = SqliteStore(path, **kw)
    await s.open()
    return s


# ---- round trips ---------------------------------------------------------------------------


async def test_message_round_trip_keeps_every_field(store):
    full = MessageRecord(
        id="hub-1", account="acme", pdu=bytes(range(256)), route=["smsc-a", "smsc-b", "smsc-c"], state=MessageState.SENT,
        upstream="smsc-b", upstream_id="0xABC", attempts=3, created_at=1700000000.25, not_before=1700000060.5,
        expires_at=1700086400.0, registered_delivery=17, error=0x58, updated_at=1700000001.125,
    )
    bare = MessageRecord(id="hub-2", account="beta", pdu=b"", route=[])
    await store.add_messages([full, bare])
    assert await store.get("hub-1") == full
    assert await store.get("hub-2") == bare
    assert await store.get("hub-3") is None
    assert await store.add_messages([]) is None


async def test_adding_a_record_again_replaces_it(store):
    await store.add_messages([record(1)])
    await store.add_messages([record(1, state=MessageState.SENT)])
    assert (await store.get("m1")).state == MessageState.SENT
    assert await store.counts() == {MessageState.SENT: 1}


async def test_delivery_round_trip_ids_and_order(tmp_path):
    path = str(tmp_path / "d.db")
    s = await reopen(path)
    a = Delivery(account="acme", pdu=b"\x01receipt", created_at=5.5, expires_at=99.0, attempts=2, kind="receipt")
    b = Delivery(account="beta", pdu=b"\x02mo", created_at=6.0, kind="mo")
    ids = await s.add_deliveries([a, b])
    c_id = await s.add_delivery(Delivery(account="acme", pdu=b"\x03"))
    assert ids == sorted(ids) and c_id > ids[1]
    got = await s.pending_deliveries()
    assert [d.id for d in got] == [*ids, c_id]
    assert got[0] == Delivery(id=ids[0], account="acme", pdu=b"\x01receipt", created_at=5.5, expires_at=99.0, attempts=2, kind="receipt")
    assert got[1] == Delivery(id=ids[1], account="beta", pdu=b"\x02mo", created_at=6.0, kind="mo")
    assert [d.id for d in await s.pending_deliveries("acme")] == [ids[0], c_id]
    assert await s.pending_deliveries("nobody") == []
    s.delete_delivery(ids[0])
    s.delete_delivery(12345)  # unknown: nothing happens
    await s.close()
    # ids keep growing across a restart (they come from MAX(id) at open)
    s = await reopen(path)
    assert [d.id for d in await s.pending_deliveries()] == [ids[1], c_id]
    assert await s.add_delivery(Delivery(account="acme", pdu=b"\x04")) == c_id + 1
    await s.close()


# ---- update ---------------------------------------------------------------------------------


async def test_update_every_field(store):
    await store.add_messages([record(1)])
    changes = dict(
        account="other", pdu=b"new", route=["x"], state=MessageState.FAILED, upstream="x", upstream_id="U1", attempts=4,
        created_at=1.0, not_before=2.0, expires_at=3.0, registered_delivery=1, error=8, updated_at=4.0,
    )
    store.update("m1", **changes)
    assert await store.get("m1") == MessageRecord(id="m1", **changes)
    store.update("m1", route=[], expires_at=None)
    got = await store.get("m1")
    assert got.route == [] and got.expires_at is None
    store.update("nope", state=MessageState.SENT)  # unknown id: nothing happens
    store.update("m1")  # no fields: nothing to do
    await store.flush()
    assert await store.counts() == {MessageState.FAILED: 1}


async def test_update_rejects_unknown_fields_at_once_and_queues_nothing(store):
    await store.add_messages([record(1)])
    with pytest.raises(ValueError, match="colour"):
        store.update("m1", state=MessageState.SENT, colour="red")
    with pytest.raises(ValueError):
        store.update("m1", id="m2")
    with pytest.raises(ValueError):
        store.update("m1", route="a,b")  # a list of names, not a string
    await store.flush()
    assert (await store.get("m1")).state == MessageState.QUEUED
    assert store.errors == 0


async def test_updates_in_one_turn_apply_in_order(store):
    """Thousands of updates of one shape become a few statements; the last update of an id wins."""
    await store.add_messages([record(i) for i in range(3000)])
    for i in range(3000):
        store.update(f"m{i}", state=MessageState.SENT, upstream="a", upstream_id=f"U{i}")
    for i in range(0, 3000, 3):
        store.update(f"m{i}", state=MessageState.DELIVERED, upstream="a", upstream_id=f"V{i}")
    store.update("m1", attempts=9)  # another shape, after them
    store.update("m1", state=MessageState.FAILED, upstream="b", upstream_id="W")
    await store.flush()
    assert await store.counts() == {MessageState.SENT: 1999, MessageState.DELIVERED: 1000, MessageState.FAILED: 1}
    assert (await store.find_by_upstream_id("a", "V2997")).id == "m2997"
    assert await store.find_by_upstream_id("a", "U3") is None
    m1 = await store.get("m1")
    assert (m1.state, m1.upstream, m1.upstream_id, m1.attempts) == (MessageState.FAILED, "b", "W", 9)


async def test_reads_see_the_writes_queued_before_them(store):
    # add (not yet committed), update and read without waiting in between
    add = asyncio.ensure_future(store.add_messages([record(1)]))
    await asyncio.sleep(0)  # the add is queued
    assert not add.done()
    store.update("m1", state=MessageState.SENT, upstream="a", upstream_id="X")
    found = await store.find_by_upstream_id("a", "X")
    await add
    assert found is not None and found.id == "m1"
    ids = await store.add_deliveries([Delivery(account="acme", pdu=b"r")])
    store.delete_delivery(ids[0])
    assert await store.pending_deliveries() == []


# ---- queries ----------------------------------------------------------------------------------


async def test_find_by_upstream_id(store):
    await store.add_messages([record(1), record(2), record(3, created_at=2000.0), record(4)])
    store.update("m1", state=MessageState.SENT, upstream="a", upstream_id="42")
    store.update("m2", state=MessageState.SENT, upstream="b", upstream_id="42")  # same id, other SMSC
    store.update("m3", state=MessageState.SENT, upstream="a", upstream_id="7")
    assert (await store.find_by_upstream_id("a", "42")).id == "m1"
    assert (await store.find_by_upstream_id("b", "42")).id == "m2"
    assert await store.find_by_upstream_id("c", "42") is None
    assert await store.find_by_upstream_id("a", "43") is None
    # an SMSC that reuses an id: the newest message has it
    store.update("m4", state=MessageState.SENT, upstream="a", upstream_id="7", created_at=3000.0)
    assert (await store.find_by_upstream_id("a", "7")).id == "m4"


async def test_open_messages_are_the_unfinished_ones_oldest_first(store):
    states = [MessageState.QUEUED, MessageState.SENT, MessageState.DELIVERED, MessageState.FAILED, MessageState.EXPIRED,
              MessageState.CANCELLED, MessageState.SENT, MessageState.QUEUED]
    await store.add_messages([record(i, state=s, created_at=100.0 - i) for i, s in enumerate(states)])
    assert [r.id for r in await store.open_messages()] == ["m7", "m6", "m1", "m0"]
    store.update("m6", state=MessageState.DELIVERED)
    assert [r.id for r in await store.open_messages()] == ["m7", "m1", "m0"]
    assert await store.counts() == {
        MessageState.QUEUED: 2, MessageState.SENT: 1, MessageState.DELIVERED: 2, MessageState.FAILED: 1,
        MessageState.EXPIRED: 1, MessageState.CANCELLED: 1,
    }


async def test_purge_forgets_old_final_messages_only(store):
    old_final = [record(i, state=MessageState.DELIVERED, updated_at=10.0) for i in range(4500)]  # more than one chunk
    await store.add_messages(old_final + [
        record(5000, state=MessageState.FAILED, updated_at=50.0),  # final but recent
        record(5001, state=MessageState.QUEUED, updated_at=1.0),  # old but open
        record(5002, state=MessageState.SENT, updated_at=1.0),
    ])
    assert await store.purge(older_than=20.0) == 4500
    assert await store.counts() == {MessageState.FAILED: 1, MessageState.QUEUED: 1, MessageState.SENT: 1}
    assert await store.purge(older_than=20.0) == 0


# ---- group commit --------------------------------------------------------------------------------


async def test_concurrent_adds_share_few_commits_and_one_callback_each(store, monkeypatch):
    loop = asyncio.get_running_loop()
    real = loop.call_soon_threadsafe
    callbacks = 0

    def counting(*args, **kw):
        nonlocal callbacks
        callbacks += 1
        return real(*args, **kw)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    before = store.commits
    await asyncio.gather(*(store.add_messages([record(i)]) for i in range(1000)))
    commits = store.commits - before
    assert 1 <= commits <= 10  # 1000 callers in one turn: one transaction (a few at most)
    assert callbacks == commits  # one loop callback per batch, not per caller
    assert store.requests >= 1000
    assert len(await store.open_messages()) == 1000


async def test_callers_in_successive_turns_still_group(store):
    """Callers that keep submitting while a commit is under way end up sharing commits."""
    before = store.commits

    async def caller(k: int) -> None:
        for j in range(20):
            await store.add_messages([record(k * 100 + j)])

    await asyncio.gather(*(caller(k) for k in range(50)))
    assert store.commits - before < 1000 / 5
    assert len(await store.open_messages()) == 1000


async def test_commit_interval_groups_too(tmp_path):
    s = await reopen(str(tmp_path / "i.db"), commit_interval=0.005, synchronous="normal")
    try:
        async def late(i: int) -> None:
            await asyncio.sleep(0.001)
            await s.add_messages([record(i)])

        await asyncio.gather(*(s.add_messages([record(i)]) for i in range(100)), *(late(i) for i in range(100, 200)))
        assert s.commits < 20  # 200 requests, a handful of transactions
        assert len(await s.open_messages()) == 200
    finally:
        await s.close()


async def test_large_batches_are_atomic_and_complete(store):
    records = [record(i) for i in range(5000)]  # several multi-row statements
    await store.add_messages(records)
    assert len(await store.open_messages()) == 5000
    assert await store.get("m4999") == records[-1]


# ---- the file ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sync, code", [("full", 2), ("normal", 1)])
async def test_wal_synchronous_and_schema_version(tmp_path, sync, code):
    path = str(tmp_path / "p.db")
    s = await reopen(path, synchronous=sync)
    pragmas = await s._submit(None, lambda db: [db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("journal_mode", "synchronous", "user_version")])
    await s.close()
    assert pragmas == ["wal", code, SCHEMA_VERSION]


async def test_a_newer_schema_is_refused(tmp_path):
    path = str(tmp_path / "new.db")
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    s = SqliteStore(path)
    with pytest.raises(RuntimeError, match="schema version"):
        await s.open()
    await s.close()  # nothing to do, no hang


def test_bad_options_are_refused():
    with pytest.raises(ValueError):
        SqliteStore("x.db", synchronous="off")
    with pytest.raises(ValueError):
        SqliteStore("x.db", commit_interval=-1)
    with pytest.raises(ValueError):
        SqliteStore("x.db", max_batch=0)


# ---- durability ----------------------------------------------------------------------------------------------

KILL_SCRIPT = """
import asyncio, os, signal, sys
from smpphub.router.store import Delivery, MessageRecord
from smpphub.router.store.sqlite import SqliteStore

async def main(path, sync, n):
    s = SqliteStore(path, synchronous=sync)
    await s.open()
    # 50 concurrent callers, as the hub's connections would be
    async def caller(k):
        for i in range(k, n, 50):
            await s.add_messages([MessageRecord(id=f"k{i}", account="a", pdu=b"x" * 100, route=["u"], created_at=i)])
    await asyncio.gather(*(caller(k) for k in range(50)))
    ids = await s.add_deliveries([Delivery(account="a", pdu=b"r%d" % i) for i in range(10)])
    s.update("k0", state="sent", upstream="u", upstream_id="U0")
    await s.flush()
    print("acked", s.commits, flush=True)
    # more work in flight, never acknowledged: may or may not be there
    for i in range(n, n + 1000):
        s.update(f"k{i - n}", attempts=1)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@pytest.mark.parametrize("sync", ["full", "normal"])
def test_acknowledged_writes_survive_sigkill(tmp_path, sync):
    path = str(tmp_path / f"kill-{sync}.db")
    n = 3000
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, path, sync, str(n)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.startswith("acked"), proc.stderr
    assert int(proc.stdout.split()[1]) < n  # it did group its commits

    async def check() -> None:
        s = await reopen(path)
        try:
            records = await s.open_messages()
            assert len(records) == n
            assert {r.id for r in records} == {f"k{i}" for i in range(n)}
            assert all(r.pdu == b"x" * 100 and r.route == ["u"] for r in records)
            assert (await s.find_by_upstream_id("u", "U0")).id == "k0"
            assert [d.pdu for d in await s.pending_deliveries("a")] == [b"r%d" % i for i in range(10)]
        finally:
            await s.close()

    asyncio.run(check())


# ---- failures ------------------------------------------------------------------------------------------------


async def test_a_bad_value_fails_its_caller_only(store):
    await store.add_messages([record(0)])
    bad = [record(1), record(2, pdu=object())]  # SQLite cannot store an object
    too_big = [record(3, attempts=2**70)]  # nor an int beyond 64 bits (OverflowError, not sqlite3.Error)
    no_id = [MessageRecord(id=None, account="a", pdu=b"", route=[])]  # type: ignore[arg-type]
    results = await asyncio.wait_for(asyncio.gather(
        store.add_messages([record(4)]), store.add_messages(bad), store.add_messages(too_big),
        store.add_messages(no_id), store.add_messages([record(5)]), return_exceptions=True,
    ), 10)
    assert results[0] is None and results[4] is None
    assert isinstance(results[1], sqlite3.Error)
    assert isinstance(results[2], OverflowError)
    assert isinstance(results[3], sqlite3.Error)
    # a failed call stored nothing, not even its good record
    assert {r.id for r in await store.open_messages()} == {"m0", "m4", "m5"}
    assert store.errors == 3

    # a fire-and-forget write that fails is logged and counted; the ones around it happen
    with structlog.testing.capture_logs() as logs:
        store.update("m0", state=MessageState.SENT)
        store.update("m4", attempts=2**70)
        store.update("m5", state=MessageState.SENT)
        await asyncio.wait_for(store.flush(), 10)
    assert [e["log_level"] for e in logs if e["event"] == "store_write_lost"] == ["error"]
    assert store.errors == 4
    assert await store.counts() == {MessageState.SENT: 2, MessageState.QUEUED: 1}


async def test_disk_full_fails_the_batch_and_the_store_recovers(store):
    await store.add_messages([record(0)])
    # SQLITE_FULL without filling the disk: cap the file at its current size
    await store._submit(None, lambda db: db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}").fetchone())
    big = [record(i, pdu=os.urandom(50_000)) for i in range(1, 5)]
    results = await asyncio.wait_for(asyncio.gather(
        store.add_messages(big[:2]), store.add_messages(big[2:]), return_exceptions=True), 10)
    assert all(isinstance(r, sqlite3.OperationalError) and "full" in str(r) for r in results), results
    assert await store.get("m1") is None
    # space again: the same writer thread carries on
    await store._submit(None, lambda db: db.execute("PRAGMA max_page_count=1073741823").fetchone())
    await asyncio.wait_for(store.add_messages(big), 10)
    assert len(await store.open_messages()) == 5


async def test_a_broken_connection_fails_callers_instead_of_hanging(tmp_path):
    s = await reopen(str(tmp_path / "b.db"))
    await s.add_messages([record(0)])
    with pytest.raises(sqlite3.Error):  # the file is gone from under the writer (its own COMMIT fails)
        await asyncio.wait_for(s._submit(None, lambda db: db.close()), 10)
    with pytest.raises(sqlite3.Error):
        await asyncio.wait_for(s.add_messages([record(1)]), 10)
    with pytest.raises(sqlite3.Error):
        await asyncio.wait_for(s.get("m0"), 10)
    s.update("m0", state=MessageState.SENT)  # lost, logged
    with pytest.raises(sqlite3.Error):
        await asyncio.wait_for(s.flush(), 10)
    await asyncio.wait_for(s.close(), 10)


async def test_an_exception_in_the_writer_fails_only_its_request(store):
    def boom(db):
        raise KeyError("bug")

    results = await asyncio.gather(store._submit(None, boom), store.add_messages([record(1)]), return_exceptions=True)
    assert isinstance(results[0], KeyError) and results[1] is None
    assert (await store.get("m1")).id == "m1"


async def test_a_cancelled_caller_does_not_disturb_the_others(store):
    task = asyncio.ensure_future(store.add_messages([record(1)]))
    other = asyncio.ensure_future(store.add_messages([record(2)]))
    await asyncio.sleep(0)
    task.cancel()
    await other
    await store.flush()
    assert task.cancelled()
    assert (await store.get("m2")) is not None


# ---- close -----------------------------------------------------------------------------------------------------


async def test_close_flushes_pending_writes(tmp_path):
    path = str(tmp_path / "c.db")
    s = await reopen(path)
    await s.add_messages([record(i) for i in range(100)])
    ids = await s.add_deliveries([Delivery(account="acme", pdu=b"r1"), Delivery(account="acme", pdu=b"r2")])
    # queued in this very turn, nobody awaits them
    for i in range(100):
        s.update(f"m{i}", state=MessageState.FAILED, error=i)
    s.delete_delivery(ids[0])
    add = asyncio.ensure_future(s.add_messages([record(500)]))
    await asyncio.sleep(0)  # the add is queued, not handed to the writer yet
    await s.close()
    assert add.done() and add.exception() is None
    with pytest.raises(RuntimeError):
        s.update("m1", state=MessageState.SENT)
    with pytest.raises(RuntimeError):
        await s.get("m1")
    await s.close()  # twice is fine

    s = await reopen(path)
    try:
        assert await s.counts() == {MessageState.FAILED: 100, MessageState.QUEUED: 1}
        assert (await s.get("m42")).error == 42
        assert [d.id for d in await s.pending_deliveries()] == [ids[1]]
    finally:
        await s.close()


async def test_close_under_load_completes_every_caller(tmp_path):
    s = await reopen(str(tmp_path / "l.db"), synchronous="normal", max_batch=7)
    futures = [asyncio.ensure_future(s.add_messages([record(i)])) for i in range(200)]
    await asyncio.sleep(0)
    await s.close()
    assert all(f.done() and f.exception() is None for f in futures)
    s = await reopen(str(tmp_path / "l.db"))
    try:
        assert len(await s.open_messages()) == 200
    finally:
        await s.close()
