"""The receipts a message still owes its ESME, as the SQLite store keeps them (schema version 5):
a row of ``receipts_owed`` added with the receipt and deleted by the ESME's acknowledgement, the
message's own row left as its final save wrote it.

What is pinned here: the acknowledgement writes no UPDATE of the message; the owed receipts
read back, restart's list, purge and every row agree with the last save of each message,
whatever the order of saves and hand-overs (hypothesis, against a plain model of the rule).
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpphub.router.lifecycle import MessageRow, State
from smpphub.router.store import sqlite_schema as schema
from smpphub.router.store.sqlite import SqliteStore


def record(i: int, **kw) -> MessageRow:
    kw.setdefault("created_at", 1000.0 + i)
    return MessageRow(id=f"m{i}", account="acme" if i % 2 else "beta", pdu=b"\x00pdu%d" % i, route=["a"],
                      registered_delivery=1, **kw)


async def opened(path: str) -> SqliteStore:
    s = SqliteStore(path)
    await s.open()
    return s


async def statements(s: SqliteStore) -> list[str]:
    """From now on, every statement the writer's connection runs that writes."""
    seen: list[str] = []

    def callback(sql: str) -> None:
        if sql.lstrip().upper().startswith(("UPDATE", "DELETE", "INSERT")):
            seen.append(sql)

    await s._read(lambda db: db.set_trace_callback(callback))
    return seen


async def test_an_acknowledged_receipt_deletes_its_row_of_receipts_owed_and_nothing_else(tmp_path):
    s = await opened(str(tmp_path / "s.db"))
    try:
        rows = [record(i) for i in range(3)]
        await s.add_messages(rows)
        for i, r in enumerate(rows):
            r.state, r.upstream, r.upstream_id, r.attempts, r.updated_at = State.SENT, "a", f"U{i}", 1, 2000.0
        await s.save_durably(rows)
        for r in rows:
            r.state, r.receipt_owed, r.receipt, r.updated_at = State.DELIVERED, True, b"dlr", 2001.0
        await s.save_durably(rows)
        assert sorted(r.id for r in await s.owed_receipts()) == ["m0", "m1", "m2"]
        written = await statements(s)
        for r in rows[:2]:
            r.receipt_owed, r.updated_at = False, 2002.0  # the ESME acknowledged it
        s.save(rows[:2])
        await s.flush()
        assert len(written) == 1 and written[0].startswith("DELETE FROM receipts_owed")  # no UPDATE of messages
        assert [r.id for r in await s.owed_receipts()] == ["m2"]
        assert [r.id for r in await s.owed_receipts("acme")] == []
        stored = await s.get("m1")
        assert stored == msgspec.structs.replace(rows[1], updated_at=2001.0)  # the time of its final state
        assert await s.purge(older_than=5000.0) == 2  # m2 still owes its receipt
        assert (await s.get("m2")).receipt_owed
    finally:
        await s.close()


async def test_a_receipt_acknowledged_before_its_final_save_was_written_adds_no_row(tmp_path):
    """The final save and the acknowledgement merged (the writer was busy): the message's row
    is written once, final, and receipts_owed is not written at all (the message was not final
    when its save was first held: no receipt of it can be owed on file)."""
    s = await opened(str(tmp_path / "s.db"))
    try:
        r = record(1)
        await s.add_messages([r])
        written = await statements(s)
        r.state, r.upstream, r.upstream_id = State.SENT, "a", "U1"
        s.save([r])
        r.state, r.receipt_owed, r.receipt = State.DELIVERED, True, b"dlr"
        durable = s.save_durably([r])
        r.receipt_owed = False
        s.save([r])
        await asyncio.wait_for(durable, 10)
        await s.flush()
        assert await s.get("m1") == r and await s.owed_receipts() == []
        # the row's save, and the delete of rows it would have added for an id not stored (none)
        assert len(written) == 2 and "DO UPDATE SET" in written[0] and written[1] == schema.STUBS_GONE
        owed = await s._read(lambda db: db.execute("SELECT COUNT(*) FROM receipts_owed").fetchone()[0])
        assert owed == 0
    finally:
        await s.close()


async def test_the_receipts_owed_survive_a_reopen_and_go_when_their_message_is_added_again(tmp_path):
    path = str(tmp_path / "s.db")
    s = await opened(path)
    r = record(1, state=State.DELIVERED, upstream="a", upstream_id="U1", receipt_owed=True, receipt=b"dlr")
    await s.add_messages([record(0), r])  # a row that lived: written whole, its receipt owed with it
    await s.close()
    s = await opened(path)
    try:
        assert [x.id for x in await s.owed_receipts()] == ["m1"] and await s.get("m1") == r
        await s.add_messages([record(1)])  # the same id, new: it replaces the row, nothing owed any more
        assert await s.owed_receipts() == [] and await s.get("m1") == record(1)
        await s.save_message(r)  # replace_sm's whole-row write: owed again
        assert [x.id for x in await s.owed_receipts("acme")] == ["m1"]
    finally:
        await s.close()


# ---- every order of saves and hand-overs, against the rule ------------------------------------------

ACTIONS = ("sent", "final_owed", "final_not_wanted", "acknowledged", "hand_over", "turn")
_files = itertools.count()


def moved(r: MessageRow, action: str, now: float) -> MessageRow | None:
    """The message after ``action`` as the lifecycle would leave it, or None when its state cannot take it."""
    final = r.state in (State.DELIVERED, State.UNDELIVERABLE)
    if action == "sent" and not final:
        return msgspec.structs.replace(r, state=State.SENT, upstream="a", upstream_id=f"U{r.id}", updated_at=now)
    if action == "final_owed" and not final:
        return msgspec.structs.replace(r, state=State.DELIVERED, receipt_owed=True, receipt=b"dlr " + r.id.encode(),
                                       updated_at=now)
    if action == "final_not_wanted" and not final:
        return msgspec.structs.replace(r, state=State.UNDELIVERABLE, error=11, updated_at=now)
    if action == "acknowledged" and r.receipt_owed:
        return msgspec.structs.replace(r, receipt_owed=False)  # updated_at: the final state's, as stored
    return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(ACTIONS), st.booleans()), max_size=30))
def test_the_stored_rows_and_receipts_owed_follow_the_last_save_of_each_message(tmp_path, steps):
    """Saves of four messages, some waited for, loop turns and hand-overs (a flush) anywhere between them: every
    row reads back as its last save left it, and the receipts owed are exactly those of the
    messages whose last save owes one (the model: a dict of the rows saved)."""

    async def run() -> None:
        s = await opened(str(tmp_path / f"h{next(_files)}.db"))
        try:
            rows = {i: record(i) for i in range(4)}
            await s.add_messages(list(rows.values()))
            waits = []
            now = 2000.0
            for i, action, durable in steps:
                now += 1.0
                if action == "hand_over":
                    await s.flush()
                    continue
                if action == "turn":  # a turn of the loop: what is held may be handed over, or stay
                    await asyncio.sleep(0)
                    continue
                after = moved(rows[i], action, now)
                if after is None:
                    continue
                rows[i] = after
                if durable:
                    waits.append(s.save_durably([after]))
                else:
                    s.save([after])
            await asyncio.wait_for(asyncio.gather(*waits), 10)
            await s.flush()
            for i, r in rows.items():
                assert await s.get(r.id) == r, (i, steps)
            assert sorted(r.id for r in await s.owed_receipts()) == sorted(r.id for r in rows.values()
                                                                           if r.receipt_owed)
            in_table = await s._read(lambda db: db.execute("SELECT COUNT(*) FROM receipts_owed").fetchone()[0])
            assert in_table == sum(r.receipt_owed for r in rows.values())
        finally:
            await s.close()

    asyncio.run(run())


def test_a_version_4_file_keeps_its_owed_receipts(tmp_path):
    """Up to version 4 a receipt owed was the row's receipt_owed = 1: opened, such a file has
    them in receipts_owed (the column left at 0) and a restart still finds each of them."""
    path = str(tmp_path / "v4.db")

    async def make() -> None:
        s = await opened(path)
        await s.add_messages([record(1), record(2), record(3)])
        await s.close()

    asyncio.run(make())
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE receipts_owed; UPDATE messages SET state = 'delivered', receipt = x'01', "
                     "receipt_owed = 1 WHERE id IN ('m1', 'm3'); PRAGMA user_version = 4;")
    db.close()

    async def check() -> None:
        s = await opened(path)
        try:
            assert [r.id for r in await s.owed_receipts()] == ["m1", "m3"]
            assert [r.id for r in await s.owed_receipts("acme")] == ["m1", "m3"]
            assert await s._read(lambda db: db.execute(
                "SELECT COUNT(*) FROM messages WHERE receipt_owed != 0").fetchone()[0]) == 0
            assert [r.id for r in await s.open_messages()] == ["m2"]
        finally:
            await s.close()

    asyncio.run(check())


async def test_a_final_save_that_fails_adds_no_receipt_owed(tmp_path):
    """The row's final save and its row of receipts_owed are one request: should the first fail
    (a value SQLite cannot store), the receipt is not owed either (a restart would have found
    no receipt to deliver), and the other messages' saves of that call are not held back."""
    s = await opened(str(tmp_path / "s.db"))
    try:
        rows = [record(1), record(2)]
        await s.add_messages(rows)
        good, bad = (msgspec.structs.replace(r, state=State.DELIVERED, upstream="a", upstream_id=f"U{r.id}",
                                             receipt_owed=True, receipt=b"dlr") for r in rows)
        bad.attempts = 2**70  # not a 64-bit int
        failed = s.save_durably([bad])
        saved = s.save_durably([good])
        [outcome] = await asyncio.wait_for(asyncio.gather(failed, return_exceptions=True), 10)
        assert isinstance(outcome, OverflowError)
        await asyncio.wait_for(saved, 10)
        assert [r.id for r in await s.owed_receipts()] == ["m1"]
        assert (await s.get("m2")).state is State.QUEUED and not (await s.get("m2")).receipt_owed
    finally:
        await s.close()
