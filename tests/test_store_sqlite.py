"""The SQLite store on its own: round trips, saves merged into few statements, group commit,
durability across SIGKILL, failures, and the migration of a version-1 file.

(tests/test_store.py runs the interface tests against every backend.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import msgspec
import pytest
import structlog

from smpphub.router.lifecycle import MessageRow, State
from smpphub.router.store import Delivery
from smpphub.router.store.sqlite import LAZY_SAVE_DELAY, SCHEMA_VERSION, SqliteStore

ROOT = Path(__file__).resolve().parent.parent


def record(i: int, **kw) -> MessageRow:
    kw.setdefault("created_at", 1000.0 + i)
    kw.setdefault("pdu", b"\x00pdu" + i.to_bytes(4, "big"))
    return MessageRow(id=f"m{i}", account="acme", route=["a", "b"], **kw)


def changed(r: MessageRow, **kw) -> MessageRow:
    """The row after a lifecycle step, as a new object (the old one keeps what was saved before)."""
    return msgspec.structs.replace(r, route=list(r.route), **kw)


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


async def trace(store: SqliteStore, verb: str) -> list[str]:
    """From now on, the statements starting with ``verb`` that the writer's connection runs."""
    seen: list[str] = []

    def callback(sql: str) -> None:
        if sql.lstrip().upper().startswith(verb):
            seen.append(sql)

    await store._read(lambda db: db.set_trace_callback(callback))
    return seen


async def trace_saves(store: SqliteStore) -> list[str]:
    """From now on, the statements that write saves (upserts of messages rows: see sqlite_schema.save_shape)."""
    return await trace(store, "INSERT INTO MESSAGES (ID, ACCOUNT, PDU, ROUTE, CREATED_AT, STATE")


# ---- round trips ---------------------------------------------------------------------------


async def test_message_round_trip_keeps_every_field(store):
    full = MessageRow(
        id="hub-1", account="acme", pdu=bytes(range(256)), route=["smsc-a", "smsc-b", "smsc-c"], group="g-7",
        state=State.SENT, route_index=1, attempts_here=2, attempts=3, due=1700000060.5, expires_at=1700086400.0,
        registered_delivery=17, upstream="smsc-b", upstream_id="0xABC", error=0x58, receipt_owed=True,
        receipt=b"\x00deliver_sm" * 20, created_at=1700000000.25, updated_at=1700000001.125,
    )
    bare = MessageRow(id="hub-2", account="beta", pdu=b"", route=[])
    await store.add_messages([full, bare])
    assert await store.get("hub-1") == full
    assert await store.get("hub-2") == bare
    assert await store.get("hub-3") is None
    assert await store.add_messages([]) is None


async def test_new_messages_are_inserted_without_the_columns_they_have_not_lived_through(store):
    """A batch of just-accepted messages binds the 11 columns such a message can have set; one
    with anything more (an attempt, an upstream, a receipt, a pin) makes it the full insert."""
    fresh = [record(1, state=State.SCHEDULED, due=1700000060.5, expires_at=1700086400.0, registered_delivery=1,
                    group="g-7", updated_at=1000.5), record(2)]
    lived = [record(3), record(4, attempts=1, upstream="a", upstream_id="U4", pinned=True, receipt_owed=True,
                                receipt=b"dlr", error=8, route_index=1, attempts_here=1)]
    inserts = await trace(store, "INSERT")
    await store.add_messages(fresh)
    await store.add_messages(lived)
    columns = [sql.partition("(")[2].partition(")")[0].split(", ") for sql in inserts if "INTO messages" in sql]
    assert [len(c) for c in columns] == [11, 19] and "attempts" not in columns[0]
    assert len(inserts) == 3 and "INTO receipts_owed" in inserts[2]  # m4's receipt is owed
    for row in fresh + lived:
        assert await store.get(row.id) == row
    replaced = record(4)  # added again, new: the lived columns go back to their defaults
    await store.add_messages([replaced])
    assert await store.get("m4") == replaced


LIVED = {"attempts": 1, "attempts_here": 2, "route_index": 1, "upstream": "a", "upstream_id": "U", "error": 8,
         "receipt_owed": True, "receipt": b"dlr", "pinned": True}


@pytest.mark.parametrize("column", sorted(LIVED))
async def test_any_column_a_message_has_lived_through_makes_its_batch_the_full_insert(store, column):
    """Each column outside the new messages' insert, alone and last in its batch, is noticed: the
    batch is written whole, that column kept."""
    inserts = await trace(store, "INSERT")
    rows = [record(1), record(2), record(3, **{column: LIVED[column]})]
    await store.add_messages(rows)
    assert [sql.startswith("INSERT OR REPLACE") for sql in inserts if "INTO messages" in sql] == [True]
    assert [await store.get(r.id) for r in rows] == rows


async def test_adding_a_row_again_replaces_it(store):
    await store.add_messages([record(1)])
    await store.add_messages([record(1, state=State.SENT)])
    assert (await store.get("m1")).state is State.SENT
    assert await store.counts() == {"sent": 1}


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
    assert got[0] == msgspec.structs.replace(a, id=ids[0])
    assert got[1] == msgspec.structs.replace(b, id=ids[1])
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


# ---- save ----------------------------------------------------------------------------------------


async def test_save_of_an_unknown_id_or_nothing_writes_nothing(store):
    await store.add_messages([record(1)])
    requests = store.requests
    store.save([])
    await store.flush()
    assert store.requests == requests + 1  # the flush: an empty save is no request at all
    await store.save_durably([])
    store.save([record(2, state=State.SENT)])
    await store.save_durably([record(3, state=State.SENT)])
    assert await store.counts() == {"queued": 1}
    assert store.errors == 0


async def test_saves_of_one_turn_merge_into_few_statements_and_the_last_save_wins(store):
    """Thousands of saves in a turn: one UPDATE per 1,024 rows of one kind; the saves of one id merge,
    the last value of each column winning."""
    rows = [record(i) for i in range(3000)]
    await store.add_messages(rows)
    updates = await trace_saves(store)
    commits = store.commits
    for i, r in enumerate(rows):
        r.state, r.upstream, r.upstream_id = State.SENT, "a", f"U{i}"
        store.save([r])  # one call per row
    for i, r in enumerate(rows[::3]):
        r.upstream_id = f"V{i * 3}"
        store.save([r])  # the same rows again: the same statement, and these values win
    for r in rows[1::3]:
        r.state, r.receipt_owed, r.receipt = State.DELIVERED, True, b"dlr"
    store.save(rows[1::3])  # one call for many (the dispatcher saves what a turn changed at its end)
    rows[2].attempts = 9
    store.save([rows[2]])
    await store.flush()
    # 2,000 rows only SENT: two statements; 1,000 sent then delivered: one save each (upstream id and
    # final state together), one statement; rows[2]'s third save merged into its entry too
    assert len(updates) == 2 + 1
    assert store.commits - commits == 1  # all of it, the flush included, in one transaction
    assert await store.counts() == {"sent": 2000, "delivered": 1000}
    assert (await store.find_by_upstream_id("a", "V2997")).id == "m2997"
    assert await store.find_by_upstream_id("a", "U3") is None
    assert (await store.find_by_upstream_id("a", "U1")).state is State.DELIVERED
    assert (await store.get("m2")).attempts == 9
    assert len(await store.owed_receipts("acme")) == 1000


def test_merged_saves_set_every_column_either_sets_with_the_later_value():
    """Every pair and chain of three kinds of save, against the plain rule: the columns of both,
    each with the value of the later save that sets it, then the id."""
    from smpphub.router.store import sqlite_schema as schema

    kinds = [schema.SAVE_WAITING, schema.SAVE_SENT, schema.SAVE_FINAL, schema.SAVE_ENDED]

    def values(shape, tag):
        return (*(f"{tag}:{f}" for f in shape.fields), "id")

    def expected(saves):
        merged: dict[str, object] = {}
        for shape, vals in saves:
            merged.update(zip(shape.fields, vals[:-1], strict=True))
        fields = tuple(f for f in schema.COLUMNS if f in merged)
        return fields, (*(merged[f] for f in fields), "id")

    for chain in [(a, b) for a in kinds for b in kinds] + [(a, b, c) for a in kinds for b in kinds for c in kinds]:
        saves = [(shape, values(shape, str(i))) for i, shape in enumerate(chain)]
        shape, vals = saves[0]
        for then, then_values in saves[1:]:
            shape, vals = schema.merged_save(shape, vals, then, then_values)
        assert (shape.fields, vals) == expected(saves), chain
        assert "ON CONFLICT (id) DO UPDATE SET" in shape.template and shape.width == len(vals)


async def busy_writer(store: SqliteStore) -> tuple[threading.Event, asyncio.Future[None]]:
    """The writer held inside a batch until the Event is set (and the Future of that batch)."""
    gate, inside = threading.Event(), threading.Event()

    def hold(db: sqlite3.Connection) -> None:
        inside.set()
        assert gate.wait(10)

    held = store._read(hold)
    for _ in range(1000):  # bounded: the writer takes it within milliseconds
        if inside.is_set():
            break
        await asyncio.sleep(0.005)
    assert inside.is_set()
    return gate, held


async def test_saves_of_one_message_made_while_the_writer_is_busy_are_written_as_one(store):
    """Sent, then its receipt stored durably, then the receipt acknowledged by the ESME, all while
    the writer commits the batch before: one UPDATE with the upstream id and the final state,
    nothing owed for the one acknowledged; the durable save completes when that UPDATE is committed."""
    rows = [record(i) for i in range(3)]
    await store.add_messages(rows)
    updates = await trace_saves(store)
    gate, held = await busy_writer(store)
    for i, r in enumerate(rows):
        r.state, r.upstream, r.upstream_id, r.updated_at = State.SENT, "a", f"U{i}", 2000.0
    store.save(rows)
    for r in rows:
        r.state, r.receipt_owed, r.receipt, r.updated_at = State.DELIVERED, True, b"dlr", 2001.0
    durable = store.save_durably(rows)
    rows[1].receipt_owed, rows[1].updated_at = False, 2002.0  # the ESME acknowledged this one at once
    store.save([rows[1]])
    await asyncio.sleep(0.05)
    assert not durable.done() and updates == []  # nothing handed over while the writer is busy
    gate.set()
    await asyncio.wait_for(held, 10)
    await asyncio.wait_for(durable, 10)
    assert len(updates) == 1  # the three messages' nine saves, in one statement (receipts_owed beside it)
    assert "upstream_id" in updates[0] and "receipt" in updates[0]
    stored = {r.id: r for r in [await store.get(f"m{i}") for i in range(3)]}
    assert {i: (r.state, r.upstream_id, r.receipt_owed, r.receipt) for i, r in stored.items()} == {
        "m0": (State.DELIVERED, "U0", True, b"dlr"),
        "m1": (State.DELIVERED, "U1", False, b"dlr"),
        "m2": (State.DELIVERED, "U2", True, b"dlr"),
    }
    assert [r.id for r in await store.owed_receipts()] == ["m0", "m2"]
    assert (await store.find_by_upstream_id("a", "U1")).id == "m1"


async def test_a_save_nobody_waits_for_rides_with_a_later_commit_or_goes_after_a_short_delay(store, monkeypatch):
    """A message sent, alone, is no commit of its own: it waits for a transaction that happens
    anyway (a new message stored), the second after it (the first may be under way already),
    or LAZY_SAVE_DELAY at most."""
    from smpphub.router.store import sqlite_saves

    monkeypatch.setattr(sqlite_saves, "LAZY_SAVE_DELAY", 60.0)  # a slow fsync under load must not decide it
    await store.add_messages([record(1), record(2)])
    updates = await trace_saves(store)
    commits = store.commits
    store.save([changed(record(1), state=State.SENT, upstream="a", upstream_id="X")])
    for _ in range(5):
        await asyncio.sleep(0)
    assert store.commits == commits  # held
    await store.add_messages([record(3)])  # a commit anyway, the first after the save: it is held on
    assert store.commits == commits + 1 and updates == []
    await store.add_messages([record(4)])  # the second: the save goes with it
    assert store.commits == commits + 2 and len(updates) == 1
    assert (await store.find_by_upstream_id("a", "X")).id == "m1"

    monkeypatch.undo()
    commits = store.commits
    loop = asyncio.get_running_loop()
    started = loop.time()
    store.save([changed(record(2), state=State.SENT, upstream="a", upstream_id="Y")])
    for _ in range(400):  # bounded: it goes after LAZY_SAVE_DELAY
        if store.commits > commits:
            break
        await asyncio.sleep(0.005)
    assert store.commits == commits + 1
    assert loop.time() - started >= LAZY_SAVE_DELAY * 0.9
    assert (await store.find_by_upstream_id("a", "Y")).id == "m2"


async def test_a_message_sent_then_given_its_receipt_a_commit_later_is_written_once(store, monkeypatch):
    """SENT (nobody waits) and, a batch later, the receipt stored durably: one UPDATE carries the
    upstream id and the final state; the durable save's caller waits for that one commit only.
    A receipt that comes later than that finds the SENT written already: two UPDATEs."""
    from smpphub.router.store import sqlite_saves

    monkeypatch.setattr(sqlite_saves, "LAZY_SAVE_DELAY", 60.0)  # a slow fsync under load must not decide it
    rows = [record(i) for i in range(4)]
    await store.add_messages(rows)
    updates = await trace_saves(store)
    for i, r in enumerate(rows):
        r.state, r.upstream, r.upstream_id = State.SENT, "a", f"U{i}"
    store.save(rows[:2])
    await store.add_messages([record(10)])  # a batch goes by: the SENT saves are held on
    for r in rows[:2]:
        r.state, r.receipt_owed, r.receipt = State.DELIVERED, True, b"dlr"
    await store.save_durably(rows[:2])
    assert len(updates) == 1 and "upstream_id" in updates[0] and "receipt" in updates[0]

    store.save(rows[2:])
    await store.add_messages([record(11)])
    await store.add_messages([record(12)])  # two batches go by: the SENT saves went with the second
    for r in rows[2:]:
        r.state, r.receipt_owed, r.receipt = State.DELIVERED, True, b"dlr"
    await store.save_durably(rows[2:])
    assert len(updates) == 3
    assert sorted(r.id for r in await store.owed_receipts()) == ["m0", "m1", "m2", "m3"]
    assert [(await store.find_by_upstream_id("a", f"U{i}")).id for i in range(4)] == ["m0", "m1", "m2", "m3"]


async def test_close_writes_the_saves_still_held(tmp_path):
    path = str(tmp_path / "held.db")
    s = await reopen(path)
    await s.add_messages([record(1)])
    s.save([changed(record(1), state=State.SENT, upstream="a", upstream_id="X")])
    await s.close()  # before LAZY_SAVE_DELAY
    s = await reopen(path)
    try:
        assert (await s.get("m1")).upstream_id == "X"
    finally:
        await s.close()


async def test_a_read_sees_the_saves_held_before_it(store):
    await store.add_messages([record(1)])
    gate, held = await busy_writer(store)
    store.save([changed(record(1), state=State.SENT, upstream="a", upstream_id="X")])
    got = store.get("m1")  # queued behind the save, which is held for the writer's next batch
    gate.set()
    await held
    assert (await asyncio.wait_for(got, 10)).upstream_id == "X"


async def test_save_durably_waits_for_its_commit_and_groups_too(store):
    await store.add_messages([record(i) for i in range(100)])
    before = store.commits
    done = await asyncio.gather(*(store.save_durably([record(i, state=State.DELIVERED, receipt_owed=True)])
                                  for i in range(100)))
    assert done == [None] * 100
    assert 1 <= store.commits - before <= 5
    assert len(await store.owed_receipts()) == 100


async def test_reads_see_the_writes_queued_before_them(store):
    # add (not yet committed), save and read without waiting in between
    add = asyncio.ensure_future(store.add_messages([record(1)]))
    await asyncio.sleep(0)  # the add is queued
    assert not add.done()
    store.save([record(1, state=State.SENT, upstream="a", upstream_id="X")])
    found = await store.find_by_upstream_id("a", "X")
    await add
    assert found is not None and found.id == "m1"
    store.save([record(1, state=State.DELIVERED, upstream="a", upstream_id="X", receipt_owed=True, receipt=b"r")])
    assert [r.receipt for r in await store.owed_receipts()] == [b"r"]
    ids = await store.add_deliveries([Delivery(account="acme", pdu=b"r")])
    store.delete_delivery(ids[0])
    assert await store.pending_deliveries() == []


# ---- queries ----------------------------------------------------------------------------------


async def test_find_by_upstream_id(store):
    await store.add_messages([record(1), record(2), record(3), record(4, created_at=3000.0)])
    store.save([
        record(1, state=State.SENT, upstream="a", upstream_id="42"),
        record(2, state=State.SENT, upstream="b", upstream_id="42"),  # the same id at another SMSC
        record(3, state=State.SENT, upstream="a", upstream_id="7"),
    ])
    assert (await store.find_by_upstream_id("a", "42")).id == "m1"
    assert (await store.find_by_upstream_id("b", "42")).id == "m2"
    assert await store.find_by_upstream_id("c", "42") is None
    assert await store.find_by_upstream_id("a", "43") is None
    # an SMSC that reuses an id: the newest message has it
    store.save([record(4, state=State.SENT, upstream="a", upstream_id="7", created_at=3000.0)])
    assert (await store.find_by_upstream_id("a", "7")).id == "m4"


async def test_open_messages_are_the_ones_to_recover_oldest_first(store):
    await store.add_messages([record(i, state=s, created_at=100.0 - i) for i, s in enumerate(State)])
    # SCHEDULED m0, QUEUED m1, PARKED m2, IN_FLIGHT m3; SENT m4 waits for a receipt; the rest are final
    assert [r.id for r in await store.open_messages()] == ["m3", "m2", "m1", "m0"]
    store.save([record(2, state=State.CANCELLED, created_at=98.0)])
    assert [r.id for r in await store.open_messages()] == ["m3", "m1", "m0"]
    assert await store.counts() == {
        "scheduled": 1, "queued": 1, "in_flight": 1, "sent": 1, "delivered": 1, "undeliverable": 1, "expired": 1,
        "rejected": 1, "cancelled": 2,
    }


async def test_purge_forgets_old_final_messages_with_nothing_owed(store):
    old_final = [record(i, state=State.DELIVERED, created_at=10.0) for i in range(4500)]  # more than one chunk
    await store.add_messages(old_final + [
        record(5000, state=State.UNDELIVERABLE, created_at=50.0),  # final but recent
        record(5001, state=State.QUEUED, created_at=1.0),  # old but open
        record(5002, state=State.SENT, created_at=1.0),
        record(5003, state=State.REJECTED, created_at=1.0, receipt_owed=True, receipt=b"r"),  # its receipt is owed
    ])
    deletes = await trace(store, "DELETE")
    assert await store.purge(older_than=20.0) == 4500
    assert len(deletes) == 3  # 2,000 rows per transaction: the writer is never held long
    assert await store.counts() == {"undeliverable": 1, "queued": 1, "sent": 1, "rejected": 1}
    assert await store.purge(older_than=20.0) == 0
    store.save([record(5003, state=State.REJECTED, updated_at=2.0)])  # the ESME acked its receipt
    assert await store.purge(older_than=20.0) == 1


async def test_the_queries_use_their_indexes(store):
    """Recovery, receipts owed, upstream ids and purge never scan the table, however many messages it holds
    (at most an index: a partial one holds only the rows such a query returns)."""
    from smpphub.router.store import sqlite_schema as schema

    queries = {
        "open": (schema.OPEN, ()), "owed": (schema.OWED, ()), "owed_by_account": (schema.OWED_BY_ACCOUNT, ("a",)),
        "spill_open": (schema.SPILL_OPEN, ()), "take_spilled": (schema.TAKE_SPILLED, (1.0, 10)),
        "by_upstream": (schema.BY_UPSTREAM, ("a", "1")), "purge": (schema.PURGE, (1.0,)),
        "get": (schema.GET, ("x",)),
        "stubs_gone": (schema.STUBS_GONE, ()),  # run after every write of saves
    }
    plans = await store._read(lambda db: {
        name: " / ".join(step[3] for step in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))
        for name, (sql, args) in queries.items()
    })
    for name, plan in plans.items():
        assert not any(step.startswith("SCAN") and "USING" not in step for step in plan.split(" / ")), (name, plan)
    # what a restart reads comes from the rows it acts on, nothing else: the partial index of the
    # messages to send, the table of the receipts owed (each message then found by its id)
    for name in ("open", "spill_open"):
        assert "USING INDEX messages_pending" in plans[name], (name, plans[name])
    for name in ("owed", "owed_by_account"):
        assert "receipts_owed" in plans[name] and "SEARCH messages USING INDEX sqlite_autoindex_messages_1 (id=?)" \
            in plans[name], (name, plans[name])
    assert "USING INDEX messages_spilled" in plans["take_spilled"]
    assert "SEARCH messages USING INDEX messages_created (created_at<?)" in plans["stubs_gone"]


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
    rows = [record(i) for i in range(5000)]  # several multi-row statements
    await store.add_messages(rows)
    assert len(await store.open_messages()) == 5000
    assert await store.get("m4999") == rows[-1]


# ---- the file ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sync, code", [("full", 2), ("normal", 1)])
async def test_wal_synchronous_and_schema_version(tmp_path, sync, code):
    path = str(tmp_path / "p.db")
    s = await reopen(path, synchronous=sync)
    pragmas = await s._read(lambda db: [db.execute(f"PRAGMA {p}").fetchone()[0]
                                                for p in ("journal_mode", "synchronous", "user_version")])
    await s.close()
    assert pragmas == ["wal", code, SCHEMA_VERSION] and SCHEMA_VERSION == 5


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


# ---- migration from version 1 -----------------------------------------------------------------------------

#: The schema of SCHEMA_VERSION = 1, as router/store/sqlite.py created it (one record per message,
#: receipts owed in the deliveries table, "failed" for every unsuccessful end).
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    pdu BLOB NOT NULL,
    route TEXT NOT NULL,
    state TEXT NOT NULL,
    upstream TEXT,
    upstream_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    not_before REAL NOT NULL DEFAULT 0,
    expires_at REAL,
    registered_delivery INTEGER NOT NULL DEFAULT 0,
    error INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_upstream ON messages (upstream, upstream_id) WHERE upstream_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_open ON messages (state) WHERE state IN ('queued', 'sent');
CREATE INDEX IF NOT EXISTS messages_final ON messages (state, updated_at) WHERE state IN ('cancelled', 'delivered', \
'expired', 'failed');
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    pdu BLOB NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL
);
"""
V1_COLUMNS = ("id, account, pdu, route, state, upstream, upstream_id, attempts, created_at, not_before, expires_at, "
              "registered_delivery, error, updated_at")
V1_MESSAGES = [
    ("q1", "acme", b"\x00q1", "smsc-a,smsc-b", "queued", None, None, 1, 100.0, 1700000100.0, 1700086400.0, 1, 0x58,
     101.0),
    ("s1", "acme", b"\x00s1", "smsc-a", "sent", "smsc-a", "ABC", 1, 200.0, 0.0, None, 1, 0, 201.0),
    ("f1", "beta", b"\x00f1", "smsc-b", "failed", "smsc-b", None, 2, 300.0, 0.0, None, 0, 0x45, 10.0),
    ("d1", "acme", b"\x00d1", "smsc-a", "delivered", "smsc-a", "DEF", 1, 50.0, 0.0, None, 1, 0, 11.0),
]


def make_v1(path: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.execute("PRAGMA user_version=1")
    db.executemany(f"INSERT INTO messages ({V1_COLUMNS}) VALUES ({', '.join('?' * 14)})", V1_MESSAGES)
    deliveries = [("acme", b"\x05receipt-for-d1", 12.0, None, 1, "receipt"), ("beta", b"\x05mo", 13.0, 999.0, 0, "mo")]
    db.executemany("INSERT INTO deliveries (account, pdu, created_at, expires_at, attempts, kind) "
                   "VALUES (?, ?, ?, ?, ?, ?)", deliveries)
    db.commit()
    db.close()


async def schema(s: SqliteStore) -> tuple[int, set[str], list[str]]:
    """The file's user_version, its indexes' definitions and the messages table's columns."""
    return await s._read(lambda db: (
        db.execute("PRAGMA user_version").fetchone()[0],
        {r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")},
        sorted(r[1] for r in db.execute("PRAGMA table_info(messages)")),
    ))


async def check_migrated(path: str) -> None:
    fresh = await reopen(path + ".fresh.db")
    s = await reopen(path)
    try:
        assert await s.get("q1") == MessageRow(
            id="q1", account="acme", pdu=b"\x00q1", route=["smsc-a", "smsc-b"], state=State.QUEUED, attempts=1,
            due=1700000100.0, expires_at=1700086400.0, registered_delivery=1, error=0x58, created_at=100.0,
            updated_at=101.0,
        )
        assert await s.get("f1") == MessageRow(
            id="f1", account="beta", pdu=b"\x00f1", route=["smsc-b"], state=State.UNDELIVERABLE, attempts=2,
            upstream="smsc-b", error=0x45, created_at=300.0, updated_at=10.0,
        )
        assert (await s.find_by_upstream_id("smsc-a", "ABC")).state is State.SENT
        assert [r.id for r in await s.open_messages()] == ["q1"]  # s1 waits for its receipt by upstream id
        assert await s.counts() == {"queued": 1, "sent": 1, "undeliverable": 1, "delivered": 1}
        assert await s.owed_receipts() == []  # version 1's owed receipt stays a delivery, delivered as it is
        pending = await s.pending_deliveries()
        assert [(d.id, d.account, d.pdu, d.kind, d.attempts) for d in pending] == [
            (1, "acme", b"\x05receipt-for-d1", "receipt", 1), (2, "beta", b"\x05mo", "mo", 0)]
        assert await schema(s) == await schema(fresh)  # version 1's indexes gone, the new ones there
        assert (await schema(s))[0] == SCHEMA_VERSION
    finally:
        await s.close()
        await fresh.close()


async def test_a_version_1_file_is_migrated(tmp_path):
    path = str(tmp_path / "v1.db")
    make_v1(path)
    await check_migrated(path)
    await check_migrated(path)  # opening it again changes nothing

    s = await reopen(path)
    try:
        # the migrated rows live on like new ones
        await s.save_durably([MessageRow(
            id="s1", account="acme", pdu=b"\x00s1", route=["smsc-a"], state=State.DELIVERED, attempts=1,
            registered_delivery=1, upstream="smsc-a", upstream_id="ABC", receipt_owed=True, receipt=b"dlr",
            created_at=200.0, updated_at=5.0,
        )])
        assert [r.id for r in await s.owed_receipts("acme")] == ["s1"]
        assert await s.purge(older_than=400.0) == 2  # f1 and d1; s1's receipt is still owed, q1 is open
        assert await s.add_delivery(Delivery(account="acme", pdu=b"new")) == 3
        s.delete_delivery(1)  # the ESME acked version 1's receipt
        await s.add_messages([record(9)])
        assert [r.id for r in await s.open_messages()] == ["q1", "m9"]
        assert [d.id for d in await s.pending_deliveries()] == [2, 3]
    finally:
        await s.close()


# The pending index as versions 2 and 3 defined it (history: these files exist on disk).
V2_PENDING = "(state IN ('in_flight', 'parked', 'queued', 'scheduled', 'sent') OR receipt_owed = 1)"
V3_PENDING = "(state IN ('in_flight', 'parked', 'queued', 'scheduled') OR receipt_owed = 1)"


V4_PENDING = ("(state = 'in_flight' OR state = 'parked' OR state = 'queued' OR state = 'scheduled' "
              "OR receipt_owed = 1)")


@pytest.mark.parametrize("version, old_pending", [(2, V2_PENDING), (3, V3_PENDING), (4, V4_PENDING)])
async def test_a_version_2_3_or_4_file_gets_the_pending_index_and_receipts_owed_of_now(tmp_path, version, old_pending):
    """Version 2's pending index held SENT rows too, version 3's named its states with IN (...),
    and up to version 4 a receipt owed was the row's receipt_owed column, in the pending index:
    the migration moves those to receipts_owed and makes the index again, and the restart's
    queries still find what they must, through them."""
    path = str(tmp_path / f"v{version}.db")
    s = await reopen(path)
    await s.add_messages([record(1), record(2, state=State.SENT, upstream="a", upstream_id="U2"),
                          record(3, state=State.DELIVERED, upstream="a", upstream_id="U3", receipt_owed=True,
                                 receipt=b"dlr")])
    await s.close()
    from smpphub.router.store import sqlite_schema
    assert old_pending != sqlite_schema.PENDING
    db = sqlite3.connect(path)
    db.executescript(f"DROP TABLE receipts_owed; UPDATE messages SET receipt_owed = 1 WHERE id = 'm3'; "
                     f"DROP INDEX messages_pending; CREATE INDEX messages_pending ON messages (state) "
                     f"WHERE {old_pending}; PRAGMA user_version={version};")
    db.close()
    s = await reopen(path)
    fresh = await reopen(str(tmp_path / "fresh.db"))
    try:
        assert await schema(s) == await schema(fresh) and (await schema(s))[0] == SCHEMA_VERSION
        assert [r.id for r in await s.open_messages()] == ["m1"]
        assert [r.id for r in await s.owed_receipts()] == ["m3"]
        assert (await s.find_by_upstream_id("a", "U2")).id == "m2"
        assert await s.get("m2") == record(2, state=State.SENT, upstream="a", upstream_id="U2")
        entries = await s._read(lambda db: db.execute(
            f"SELECT COUNT(*) FROM messages INDEXED BY messages_pending WHERE {sqlite_schema.PENDING}").fetchone()[0])
        assert entries == 1  # m1 (queued); the SENT m2 is not in it, nor m3, whose receipt is owed
        assert await s._read(lambda db: db.execute(
            "SELECT id, receipt_owed FROM receipts_owed JOIN messages USING (id)").fetchall()) == [("m3", 0)]
    finally:
        await s.close()
        await fresh.close()


# Kill the process at the first statement of the migration that starts with argv[2].
MIGRATION_KILL_SCRIPT = """
import asyncio, os, signal, sys
from smpphub.router.store.sqlite import SqliteStore

class Killed(SqliteStore):
    def _migrate(self, db):
        def trace(sql):
            if sql.lstrip().startswith(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)
        db.set_trace_callback(trace)
        super()._migrate(db)

async def main(path):
    s = Killed(path)
    await s.open()
    print("not killed", flush=True)

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.parametrize("at", [
    "ALTER TABLE messages ADD COLUMN grp", "UPDATE messages", "DROP INDEX", "CREATE TABLE IF NOT EXISTS deliveries",
    "CREATE TABLE IF NOT EXISTS receipts_owed", "INSERT OR IGNORE INTO receipts_owed", "PRAGMA user_version=", "COMMIT",
])
def test_a_migration_killed_midway_leaves_a_file_that_opens(tmp_path, at):
    path = str(tmp_path / "v1.db")
    make_v1(path)
    proc = subprocess.run([sys.executable, "-c", MIGRATION_KILL_SCRIPT, path, at], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    asyncio.run(check_migrated(path))


# ---- durability ----------------------------------------------------------------------------------------------

KILL_SCRIPT = """
import asyncio, os, signal, sys
from smpphub.router.lifecycle import MessageRow, State
from smpphub.router.store import Delivery
from smpphub.router.store.sqlite import SqliteStore

async def main(path, sync, n):
    s = SqliteStore(path, synchronous=sync)
    await s.open()
    rows = [MessageRow(id=f"k{i}", account="a", pdu=b"x" * 100, route=["u"], created_at=i) for i in range(n)]
    # 50 concurrent callers, as the hub's connections would be
    async def caller(k):
        for i in range(k, n, 50):
            await s.add_messages([rows[i]])
    await asyncio.gather(*(caller(k) for k in range(50)))
    ids = await s.add_deliveries([Delivery(account="a", pdu=b"r%d" % i) for i in range(10)])
    rows[0].state, rows[0].upstream, rows[0].upstream_id = State.SENT, "u", "U0"
    s.save([rows[0]])
    await s.flush()
    # a receipt arrived for each of these: saved durably before the SMSC hears ESME_ROK
    for r in rows[n - 500:]:
        r.state, r.upstream, r.upstream_id = State.SENT, "u", f"U{r.id[1:]}"
    s.save(rows[n - 500:])  # the upstream accepted them (fire-and-forget, as the hub saves it)
    async def receipt(i):
        r = rows[i]
        r.state, r.receipt_owed, r.receipt = State.DELIVERED, True, b"dlr%d" % i
        await s.save_durably([r])
    await asyncio.gather(*(receipt(i) for i in range(n - 500, n)))
    # replace_sm of a scheduled message: its new text, durably
    rows[1].pdu, rows[1].state, rows[1].due = b"y" * 100, State.SCHEDULED, 5000.0
    await s.save_message(rows[1])
    print("acked", s.commits, flush=True)
    # more work in flight, never acknowledged: may or may not be there
    for r in rows[:1000]:
        r.attempts = 1
        s.save([r])
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
            open_rows = await s.open_messages()
            assert {r.id for r in open_rows} == {f"k{i}" for i in range(1, n - 500)}  # k0 was sent
            assert all(r.pdu == b"x" * 100 and r.route == ["u"] for r in open_rows if r.id != "k1")
            k1 = await s.get("k1")
            assert (k1.pdu, k1.state, k1.due) == (b"y" * 100, State.SCHEDULED, 5000.0)
            assert (await s.find_by_upstream_id("u", "U0")).id == "k0"
            owed = await s.owed_receipts("a")
            assert {r.id: r.receipt for r in owed} == {f"k{i}": b"dlr%d" % i for i in range(n - 500, n)}
            assert all(r.state is State.DELIVERED and r.upstream_id == f"U{r.id[1:]}" for r in owed)
            assert [d.pdu for d in await s.pending_deliveries("a")] == [b"r%d" % i for i in range(10)]
        finally:
            await s.close()

    asyncio.run(check())


# ---- failures ------------------------------------------------------------------------------------------------


async def test_a_bad_value_fails_its_caller_only(store):
    await store.add_messages([record(0)])
    bad = [record(1), record(2, pdu=object())]  # SQLite cannot store an object
    too_big = [record(3, attempts=2**70)]  # nor an int beyond 64 bits (OverflowError, not sqlite3.Error)
    no_id = [MessageRow(id=None, account="a", pdu=b"", route=[])]  # type: ignore[arg-type]
    results = await asyncio.wait_for(asyncio.gather(
        store.add_messages([record(4)]), store.add_messages(bad), store.add_messages(too_big),
        store.add_messages(no_id), store.add_messages([record(5)]), return_exceptions=True,
    ), 10)
    assert results[0] is None and results[4] is None
    assert isinstance(results[1], sqlite3.Error)
    assert isinstance(results[2], OverflowError)
    assert isinstance(results[3], sqlite3.Error)
    # a failed call stored nothing, not even its good row
    assert {r.id for r in await store.open_messages()} == {"m0", "m4", "m5"}
    assert store.errors == 3

    # a fire-and-forget save that fails is logged and counted; the ones around it happen
    with structlog.testing.capture_logs() as logs:
        store.save([record(0, state=State.IN_FLIGHT)])  # the three merge into one statement, which fails:
        store.save([record(4, attempts=2**70)])  # each save is then run alone
        store.save([record(5, state=State.IN_FLIGHT)])
        await asyncio.wait_for(store.flush(), 10)
    assert [e["log_level"] for e in logs if e["event"] == "store_write_lost"] == ["error"]
    assert store.errors == 4
    assert await store.counts() == {"in_flight": 2, "queued": 1}

    # a durable save that fails fails its caller alone
    results = await asyncio.gather(store.save_durably([record(4, route_index=None)]),
                                   store.save_durably([record(5, error=3)]), return_exceptions=True)
    assert isinstance(results[0], sqlite3.IntegrityError) and results[1] is None
    assert (await store.get("m4")).route_index == 0 and (await store.get("m5")).error == 3


async def test_a_durable_save_of_rows_in_several_states_fails_if_any_part_failed(store):
    """Rows of different states are written by different statements: a failure in any fails the caller."""
    await store.add_messages([record(1), record(2), record(3)])
    with pytest.raises(OverflowError):
        await asyncio.wait_for(store.save_durably([
            record(1, state=State.SENT, upstream="a", upstream_id="U1", attempts=2**70),  # the first statement fails
            record(2, state=State.DELIVERED, receipt_owed=True, receipt=b"dlr"),
            record(3, state=State.SCHEDULED, due=5.0),
        ]), 10)
    assert (await store.get("m1")).state is State.QUEUED
    assert (await store.get("m2")).receipt == b"dlr" and (await store.get("m3")).due == 5.0  # the others are written
    assert await asyncio.wait_for(store.save_durably([record(1, state=State.SENT), record(2, state=State.DELIVERED)]),
                                  10) is None


async def test_disk_full_fails_the_batch_and_the_store_recovers(store):
    await store.add_messages([record(0)])
    # SQLITE_FULL without filling the disk: cap the file at its current size
    await store._read(lambda db: db.execute(
        f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}").fetchone())
    big = [record(i, pdu=os.urandom(50_000)) for i in range(1, 5)]
    results = await asyncio.wait_for(asyncio.gather(
        store.add_messages(big[:2]), store.add_messages(big[2:]),
        store.save_durably([record(0, state=State.DELIVERED, receipt_owed=True, receipt=os.urandom(50_000))]),
        return_exceptions=True), 10)
    assert all(isinstance(r, sqlite3.OperationalError) and "full" in str(r) for r in results), results
    assert await store.get("m1") is None
    assert (await store.get("m0")).state is State.QUEUED
    # space again: the same writer thread carries on
    await store._read(lambda db: db.execute("PRAGMA max_page_count=1073741823").fetchone())
    await asyncio.wait_for(store.add_messages(big), 10)
    assert len(await store.open_messages()) == 5


async def test_a_broken_connection_fails_callers_instead_of_hanging(tmp_path):
    s = await reopen(str(tmp_path / "b.db"))
    await s.add_messages([record(0)])
    with pytest.raises(sqlite3.Error):  # the file is gone from under the writer (its own COMMIT fails)
        await asyncio.wait_for(s._read(lambda db: db.close()), 10)
    with pytest.raises(sqlite3.Error):
        await asyncio.wait_for(s.add_messages([record(1)]), 10)
    with pytest.raises(sqlite3.Error):
        await asyncio.wait_for(s.get("m0"), 10)
    with pytest.raises(sqlite3.Error):
        await asyncio.wait_for(s.save_durably([record(0, state=State.SENT)]), 10)
    s.save([record(0, state=State.SENT)])  # lost, logged
    with pytest.raises(sqlite3.Error):
        await asyncio.wait_for(s.flush(), 10)
    await asyncio.wait_for(s.close(), 10)


async def test_an_exception_in_the_writer_fails_only_its_request(store):
    def boom(db):
        raise KeyError("bug")

    results = await asyncio.gather(store._read(boom), store.add_messages([record(1)]), return_exceptions=True)
    assert isinstance(results[0], KeyError) and results[1] is None
    assert (await store.get("m1")).id == "m1"


async def test_a_cancelled_caller_does_not_disturb_the_others(store):
    await store.add_messages([record(3)])
    task = asyncio.ensure_future(store.add_messages([record(1)]))
    saving = asyncio.ensure_future(store.save_durably([record(3, state=State.SENT)]))
    other = asyncio.ensure_future(store.add_messages([record(2)]))
    await asyncio.sleep(0)
    task.cancel()
    saving.cancel()
    await other
    await store.flush()
    assert task.cancelled() and saving.cancelled()
    assert (await store.get("m2")) is not None
    assert (await store.get("m3")).state is State.SENT  # the write happened anyway


# ---- close -----------------------------------------------------------------------------------------------------


async def test_close_flushes_pending_writes(tmp_path):
    path = str(tmp_path / "c.db")
    s = await reopen(path)
    rows = [record(i) for i in range(100)]
    await s.add_messages(rows)
    ids = await s.add_deliveries([Delivery(account="acme", pdu=b"r1"), Delivery(account="acme", pdu=b"r2")])
    # queued in this very turn, nobody awaits them
    for i, r in enumerate(rows):
        r.state, r.error = State.UNDELIVERABLE, i
    s.save(rows)
    s.delete_delivery(ids[0])
    add = asyncio.ensure_future(s.add_messages([record(500)]))
    await asyncio.sleep(0)  # the add is queued, not handed to the writer yet
    await s.close()
    assert add.done() and add.exception() is None
    with pytest.raises(RuntimeError):
        s.save([record(1, state=State.SENT)])
    with pytest.raises(RuntimeError):
        await s.get("m1")
    await s.close()  # twice is fine

    s = await reopen(path)
    try:
        assert await s.counts() == {"undeliverable": 100, "queued": 1}
        assert (await s.get("m42")).error == 42
        assert [d.id for d in await s.pending_deliveries()] == [ids[1]]
    finally:
        await s.close()


async def test_close_under_load_completes_every_caller(tmp_path):
    s = await reopen(str(tmp_path / "l.db"), synchronous="normal", max_batch=7)
    await s.add_messages([record(i) for i in range(200)])
    futures = [asyncio.ensure_future(s.save_durably([record(i, state=State.IN_FLIGHT)])) for i in range(100)]
    futures += [asyncio.ensure_future(s.add_messages([record(i)])) for i in range(200, 300)]
    await asyncio.sleep(0)
    await s.close()
    assert all(f.done() and f.exception() is None for f in futures)
    s = await reopen(str(tmp_path / "l.db"))
    try:
        assert await s.counts() == {"in_flight": 100, "queued": 200}
    finally:
        await s.close()
