"""Both store backends through the one interface, and what only SQLite promises.

Every test taking the ``store`` fixture runs against memory and SQLite alike, so the
two agree on each property asserted here; :func:`test_backends_agree_on_a_random_history`
also replays one history on both and compares everything the interface can read.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import textwrap

import msgspec
import pytest

from smppcore import MessageState as SmppState
from smpphub.router.lifecycle import (
    FINAL_STATES,
    Cancel,
    Due,
    Event,
    Expire,
    Failover,
    Intermediate,
    InvalidTransition,
    MessageRow,
    Receipt,
    ReceiptDelivered,
    ReceiptDropped,
    Replace,
    Restarted,
    RetryPolicy,
    State,
    SubmitOk,
    SubmitPermanent,
    SubmitTemporary,
    Taken,
    UpstreamDown,
    UpstreamUp,
    accept,
    apply,
)
from smpphub.router.store import Delivery, Store
from smpphub.router.store.memory import MemoryStore
from smpphub.router.store.sqlite import SqliteStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def row(i: int, **kw) -> MessageRow:
    kw.setdefault("created_at", 1000.0 + i)
    kw.setdefault("updated_at", kw["created_at"])
    return MessageRow(id=f"m{i}", account=kw.pop("account", "acme"), pdu=bytes([i % 256]) * 5, route=["a", "b"], **kw)


def changed(r: MessageRow, **kw) -> MessageRow:
    """The row as the lifecycle would leave it after a step (a new object: the old one is what was saved)."""
    return msgspec.structs.replace(r, route=list(r.route), **kw)


async def open_store(kind: str, path: str) -> Store:
    s: Store = MemoryStore() if kind == "memory" else SqliteStore(path)
    await s.open()
    return s


@pytest.fixture(params=["memory", "sqlite"])
async def store(request, tmp_path):
    s = await open_store(request.param, str(tmp_path / "t.db"))
    yield s
    await s.close()


async def test_messages_round_trip(store):
    await store.add_messages([row(1), row(2, registered_delivery=1)])
    assert await store.get("m2") == row(2, registered_delivery=1)
    assert await store.get("nope") is None
    m1 = changed(row(1), state=State.SENT, upstream="a", upstream_id="X9", attempts=2)
    store.save([m1])
    assert await store.find_by_upstream_id("a", "X9") == m1
    assert await store.find_by_upstream_id("b", "X9") is None
    store.save([changed(row(2, registered_delivery=1), state=State.DELIVERED, updated_at=5.0)])
    await store.flush()
    assert [r.id for r in await store.open_messages()] == []  # SENT waits for its receipt: nothing to recover
    assert await store.counts() == {"sent": 1, "delivered": 1}
    assert await store.purge(older_than=1002.5) == 1  # m2, final and created before; m1 is still open
    assert await store.get("m2") is None
    assert await store.counts() == {"sent": 1}


async def test_save_of_an_unknown_id_changes_nothing(store):
    await store.add_messages([row(1), row(5)])
    store.save([row(2, state=State.SENT, upstream="a", upstream_id="U2")])
    await store.save_durably([row(3, state=State.DELIVERED)])
    assert await store.get("m2") is None and await store.get("m3") is None
    assert await store.find_by_upstream_id("a", "U2") is None
    assert await store.counts() == {"queued": 2}
    store.save([])  # nothing to write
    await store.save_durably([])
    assert await store.get("m1") == row(1)
    # unknown ids beside known ones in one call, their saves merged (SQLite writes saves as upserts
    # whose rows for ids not stored are deleted again: none may remain, none may be loaded at a restart)
    sent = [row(i, state=State.SENT, upstream="a", upstream_id=f"U{i}") for i in (4, 5, 6)]
    store.save(sent)
    for r in sent:
        r.state, r.receipt_owed, r.receipt = State.DELIVERED, True, b"dlr"
    await store.save_durably(sent)
    store.save([row(7, state=State.QUEUED, due=5.0)])
    await store.flush()
    assert [await store.get(f"m{i}") for i in (4, 6, 7)] == [None, None, None]
    assert (await store.get("m5")).state is State.DELIVERED
    assert await store.counts() == {"queued": 1, "delivered": 1}
    assert [r.id for r in await store.open_messages()] == ["m1"]


async def test_the_last_save_of_a_row_in_one_turn_wins(store):
    await store.add_messages([row(1), row(2)])
    m1 = row(1)
    for step in (dict(state=State.IN_FLIGHT, upstream="a"), dict(state=State.SENT, upstream_id="U1", attempts=1)):
        for k, v in step.items():
            setattr(m1, k, v)
        store.save([m1, row(2, state=State.PARKED)])  # the same row object, saved after each step
    store.save([row(2, state=State.SCHEDULED, due=2000.0)])
    got = await store.get("m1")
    assert (got.state, got.upstream, got.upstream_id, got.attempts) == (State.SENT, "a", "U1", 1)
    got2 = await store.get("m2")
    assert (got2.state, got2.due) == (State.SCHEDULED, 2000.0)


async def test_a_save_writes_the_row_as_it_was_when_saved(store):
    """save() takes the row's values at once: changing the object afterwards changes nothing stored."""
    r = row(1)
    await store.add_messages([r])
    r.state, r.upstream, r.upstream_id = State.SENT, "a", "U1"
    store.save([r])
    r.state, r.upstream_id = State.DELIVERED, "U2"  # not saved
    r.route.append("c")
    got = await store.get("m1")
    assert (got.state, got.upstream, got.upstream_id, got.route) == (State.SENT, "a", "U1", ["a", "b"])
    got.state = State.DELIVERED  # a copy: changing it changes nothing stored either
    got.route.clear()
    assert await store.get("m1") == changed(row(1), state=State.SENT, upstream="a", upstream_id="U1")


def comparable(r: MessageRow | None) -> MessageRow | None:
    """The row without what SQLite's save() leaves out by design (it writes per state only the columns
    the lifecycle changes there, to spare index rewrites): which upstream a message waiting or in flight
    was last written to (a restart sends it again by ``route_index``), and the retry bookkeeping of a
    final message."""
    if r is None:
        return None
    if r.state is not State.SENT and not r.state.is_final:
        r = msgspec.structs.replace(r, upstream=None)
    if r.state.is_final:
        r = msgspec.structs.replace(r, route_index=0, attempts_here=0, due=0.0, expires_at=None)
    return r


POLICY = RetryPolicy(initial=1.0, default_attempts=3)

#: walks through the lifecycle, from an accepted message (registered_delivery=1: a receipt is owed at the end)
PATHS: dict[str, list[Event]] = {
    "delivered": [Taken("a"), SubmitOk("U1"), Intermediate(), Receipt(SmppState.DELIVERED), ReceiptDelivered()],
    "retried, failed over, refused": [
        Taken("a"), SubmitTemporary(0x58), Due(), Taken("a"), SubmitTemporary(0x58, throttled=True), Due(),
        Taken("a"), SubmitTemporary(0x14), Taken("b"), SubmitPermanent(0x0B), ReceiptDropped(),
    ],
    "parked, lost, restarted, cancelled": [
        UpstreamDown(), UpstreamDown(), UpstreamUp(), Taken("a"), UpstreamDown(), Taken("b"), Restarted(), Cancel(),
        ReceiptDelivered(),
    ],
    "replaced, followed a sibling, expired": [
        Replace(due=1e9 + 100, expires_at=1e9 + 200, registered_delivery=1), Failover(0), Expire(), ReceiptDelivered(),
    ],
}


@pytest.mark.parametrize("path", list(PATHS))
async def test_every_lifecycle_step_is_stored_as_the_hub_left_it(store, path):
    r = row(1, registered_delivery=1, expires_at=1e9 + 150)
    now = 1e9
    accept(r, now)
    await store.add_messages([r])
    changed_at = r.updated_at
    for k, event in enumerate(PATHS[path]):
        now += 1000.0 if isinstance(event, Expire) else 1.0
        apply(r, event, now, POLICY)
        if not isinstance(event, (ReceiptDelivered, ReceiptDropped)):
            changed_at = r.updated_at  # an acknowledged receipt leaves the time of the last change of state
        if r.receipt_owed and not r.receipt:
            r.receipt = b"\x00deliver_sm for " + r.id.encode()  # what the hub fills in
        if isinstance(event, Replace):
            r.pdu = b"replaced text"
            await store.save_message(r)
        elif k % 2:
            await store.save_durably([r])
        else:
            store.save([r])
        expected = msgspec.structs.replace(r, updated_at=changed_at)
        assert comparable(await store.get(r.id)) == comparable(expected), (k, event)
    assert r.state.is_final and not r.receipt_owed


async def test_save_leaves_the_message_and_what_never_changes(store):
    """save() writes the lifecycle's fields only: the text (replace_sm's business, through save_message),
    the account, route, group and creation time stay as stored."""
    original = row(1, group="g", expires_at=50.0)
    await store.add_messages([original])
    moved = changed(original, state=State.SENT, route_index=1, upstream="b", upstream_id="U1", updated_at=4.0)
    other = msgspec.structs.replace(moved, pdu=b"replaced", account="other", route=["x"], group="h", created_at=1.0)
    store.save([other])
    assert await store.get("m1") == moved
    await store.save_durably([other])
    assert await store.get("m1") == moved
    assert (await store.find_by_upstream_id("b", "U1")).pdu == original.pdu


async def test_save_message_writes_the_whole_row_durably(store):
    await store.add_messages([row(1), row(2)])
    replaced = changed(row(1), pdu=b"new text", state=State.SCHEDULED, due=5000.0, expires_at=6000.0,
                       registered_delivery=1, updated_at=3000.0)
    assert await store.save_message(replaced) is None
    assert await store.get("m1") == replaced
    store.save([changed(replaced, state=State.QUEUED)])  # the lifecycle goes on with the new text
    assert (await store.get("m1")).pdu == b"new text"
    # it writes the row whole: one the store did not have is there afterwards
    await store.save_message(row(3, state=State.QUEUED))
    assert await store.get("m3") == row(3)
    assert await store.get("m2") == row(2)


async def test_open_messages_are_the_ones_to_recover_oldest_first(store):
    states = list(State)
    await store.add_messages([row(i, state=s, created_at=100.0 - i) for i, s in enumerate(states)])
    open_ids = [f"m{i}" for i in reversed(range(len(states))) if states[i] not in FINAL_STATES | {State.SENT}]
    assert [r.id for r in await store.open_messages()] == open_ids
    assert {r.state for r in await store.open_messages()} == {State.SCHEDULED, State.QUEUED, State.PARKED,
                                                               State.IN_FLIGHT}
    store.save([row(0, state=State.DELIVERED, created_at=100.0)])  # m0 was scheduled
    assert [r.id for r in await store.open_messages()] == open_ids[:-1]
    want = {s.value: 2 if s is State.DELIVERED else 1 for s in State if s is not State.SCHEDULED}
    assert await store.counts() == want


async def test_find_by_upstream_id(store):
    await store.add_messages([row(1), row(2), row(3), row(4, created_at=3000.0), row(5)])
    store.save([
        row(1, state=State.SENT, upstream="a", upstream_id="42"),
        row(2, state=State.SENT, upstream="b", upstream_id="42"),  # the same id at another SMSC
        row(3, state=State.SENT, upstream="a", upstream_id="7"),
    ])
    assert (await store.find_by_upstream_id("a", "42")).id == "m1"
    assert (await store.find_by_upstream_id("b", "42")).id == "m2"
    assert await store.find_by_upstream_id("c", "42") is None
    assert await store.find_by_upstream_id("a", "43") is None
    # an SMSC that reuses an id: the newest message has it, whichever was saved last
    store.save([row(4, state=State.SENT, upstream="a", upstream_id="7", created_at=3000.0)])
    assert (await store.find_by_upstream_id("a", "7")).id == "m4"
    store.save([row(3, state=State.DELIVERED, upstream="a", upstream_id="7")])
    assert (await store.find_by_upstream_id("a", "7")).id == "m4"
    # sent again elsewhere (its connection was lost): the old id no longer finds it
    store.save([row(5, state=State.SENT, upstream="a", upstream_id="old")])
    store.save([row(5, state=State.SENT, upstream="b", upstream_id="new", attempts=2)])
    assert await store.find_by_upstream_id("a", "old") is None
    assert (await store.find_by_upstream_id("b", "new")).attempts == 2
    # a purged message is not found either
    store.save([row(1, state=State.DELIVERED, upstream="a", upstream_id="42")])
    assert await store.purge(older_than=1001.5) == 1
    assert await store.find_by_upstream_id("a", "42") is None


async def test_owed_receipts_oldest_updated_first_and_by_account(store):
    owed = dict(receipt_owed=True, receipt=b"\x00deliver_sm")
    await store.add_messages([
        row(1, state=State.DELIVERED, updated_at=30.0, **owed),
        row(2, state=State.UNDELIVERABLE, updated_at=10.0, account="beta", **owed),
        row(3, state=State.EXPIRED, updated_at=20.0, **owed),
        row(4, state=State.DELIVERED, updated_at=5.0),  # final, nothing owed
        row(5, state=State.SENT, updated_at=1.0),
    ])
    assert [r.id for r in await store.owed_receipts()] == ["m2", "m3", "m1"]
    assert [r.id for r in await store.owed_receipts("acme")] == ["m3", "m1"]
    assert await store.owed_receipts("nobody") == []
    assert (await store.owed_receipts("beta"))[0].receipt == b"\x00deliver_sm"
    # a receipt becomes owed when the lifecycle says so (durably, before the SMSC's ack)
    await store.save_durably([row(5, state=State.REJECTED, updated_at=15.0, **owed)])
    assert [r.id for r in await store.owed_receipts()] == ["m2", "m5", "m3", "m1"]
    # the ESME acked one: no longer owed
    store.save([row(3, state=State.EXPIRED, updated_at=40.0)])
    assert [r.id for r in await store.owed_receipts("acme")] == ["m5", "m1"]


async def test_purge_keeps_open_messages_recent_ones_and_owed_receipts(store):
    """purge(older_than) forgets final messages created before it whose receipt is not owed."""
    await store.add_messages([
        row(1, state=State.DELIVERED, created_at=10.0),  # old, final, nothing owed: goes
        row(2, state=State.UNDELIVERABLE, created_at=10.0, receipt_owed=True, receipt=b"r"),  # its receipt is owed
        row(3, state=State.CANCELLED, created_at=50.0),  # final but recent
        *[row(10 + i, state=s, created_at=1.0) for i, s in enumerate(State) if s not in FINAL_STATES],  # old but open
        row(20, state=State.REJECTED, created_at=19.999),
    ])
    assert await store.purge(older_than=20.0) == 2
    assert await store.get("m1") is None and await store.get("m20") is None
    assert (await store.get("m2")).receipt == b"r"
    assert sum((await store.counts()).values()) == 7
    assert await store.purge(older_than=20.0) == 0
    store.save([row(2, state=State.UNDELIVERABLE, updated_at=11.0)])  # the ESME acked it
    assert await store.purge(older_than=20.0) == 1
    assert await store.owed_receipts() == []


async def test_deliveries(store):
    ids = await store.add_deliveries([Delivery(account="acme", pdu=b"r1", kind="receipt"),
                                      Delivery(account="beta", pdu=b"mo")])
    assert len(set(ids)) == 2
    one = await store.add_delivery(Delivery(account="acme", pdu=b"r2"))
    assert [d.pdu for d in await store.pending_deliveries("acme")] == [b"r1", b"r2"]
    store.delete_delivery(ids[0])
    store.delete_delivery(98765)  # unknown: nothing happens
    await store.flush()
    assert [d.id for d in await store.pending_deliveries()] == [ids[1], one]
    assert await store.add_deliveries([]) == []


# ---- the two backends agree ------------------------------------------------------------------------


async def snapshot(s: Store, ids: list[str], keys: set[tuple[str, str]]) -> dict:
    """Everything the interface can read back about these messages and the store's deliveries."""
    return {
        "rows": [comparable(await s.get(i)) for i in ids],
        "by_upstream": {k: (await s.find_by_upstream_id(*k) or row(-1)).id for k in sorted(keys)},
        "open": [r.id for r in await s.open_messages()],
        "owed": [r.id for r in await s.owed_receipts()],
        "owed_beta": [r.id for r in await s.owed_receipts("beta")],
        "counts": await s.counts(),
        "deliveries": [(d.id, d.account, d.pdu) for d in await s.pending_deliveries()],
    }


def random_event(rnd: random.Random, now: float) -> Event:
    """Any event, whether the message's state takes it or not (apply() says)."""
    kinds: list[Event] = [
        Taken(rnd.choice("ab")), SubmitOk(str(rnd.randrange(8))), SubmitTemporary(0x58, throttled=rnd.random() < 0.5),
        SubmitPermanent(0x0B), UpstreamDown(), UpstreamUp(), Failover(rnd.randrange(2)), Due(), Intermediate(),
        Receipt(rnd.choice(list(SmppState))), Expire(), Cancel(), ReceiptDelivered(), ReceiptDropped(), Restarted(),
        Replace(due=now + rnd.choice([-5.0, 5.0]), expires_at=now + 30.0, registered_delivery=rnd.randrange(2)),
    ]
    return rnd.choice(kinds)


async def play(s: Store, seed: int) -> list[dict]:
    """A random history: messages moved by the lifecycle and saved as the hub saves them, and deliveries."""
    rnd = random.Random(seed)
    rows: dict[str, MessageRow] = {}
    keys: set[tuple[str, str]] = set()
    snaps = []
    delivery_ids: list[int] = []
    now = 1000.0  # updated_at comes from it: unique, so every ordering is defined
    for turn in range(60):
        # created_at: unique (so is "oldest first" and "the newest with that upstream id") but not in id order
        new = [row(turn * 10 + k, account=rnd.choice(["acme", "beta"]), created_at=float((turn * 10 + k) * 7919 % 613),
                   registered_delivery=rnd.randrange(2), expires_at=now + rnd.choice([20.0, 1e6]))
               for k in range(rnd.randrange(4))]
        for r in new:
            accept(r, now)
        await s.add_messages(new)
        rows.update({r.id: r for r in new})
        changed_now: list[MessageRow] = []
        for r in rnd.sample(sorted(rows.values(), key=lambda r: r.id), min(len(rows), 6)):
            now += 1.0
            event = random_event(rnd, now)
            try:
                apply(r, event, now, POLICY)
            except InvalidTransition:
                continue
            if r.upstream and r.upstream_id:
                keys.add((r.upstream, r.upstream_id))
            if r.receipt_owed and not r.receipt:
                r.receipt = b"dlr " + r.id.encode()
            if isinstance(event, Replace):
                r.pdu = bytes([turn])
                await s.save_message(r)
            elif rnd.random() < 0.2:
                await s.save_durably([r])
            else:
                changed_now.append(r)
        s.save(changed_now)  # the rows a turn changed, in one call at its end
        if rnd.random() < 0.3:
            delivery_ids += await s.add_deliveries([Delivery(account="acme", pdu=bytes([turn]))])
        if delivery_ids and rnd.random() < 0.2:
            s.delete_delivery(delivery_ids.pop(rnd.randrange(len(delivery_ids))))
        if turn % 10 == 9:
            purged = await s.purge(older_than=rnd.uniform(0.0, 613.0))  # by created_at
            snaps.append({"purged": purged, **await snapshot(s, sorted(rows), keys)})
            for i in [i for i in rows if await s.get(i) is None]:
                del rows[i]
    return snaps


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_backends_agree_on_a_random_history(tmp_path, seed):
    memory = await open_store("memory", "")
    sqlite = await open_store("sqlite", str(tmp_path / "agree.db"))
    try:
        expected = await play(memory, seed)
        got = await play(sqlite, seed)
    finally:
        await memory.close()
        await sqlite.close()
    assert sum(s["purged"] for s in expected) > 0 and any(s["owed"] for s in expected)  # the history did something
    for want, have in zip(expected, got, strict=True):
        assert have == want


# ---- what only SQLite promises ----------------------------------------------------------------------


async def test_sqlite_groups_concurrent_writes_into_few_commits(tmp_path):
    s = SqliteStore(str(tmp_path / "g.db"))
    await s.open()
    try:
        await asyncio.gather(*(s.add_messages([row(i)]) for i in range(1000)))
        assert s.commits < 100  # 1000 callers, a handful of transactions
        before = s.commits
        await asyncio.gather(*(s.save_durably([row(i, state=State.IN_FLIGHT)]) for i in range(1000)))
        assert s.commits - before < 100
        assert len(await s.open_messages()) == 1000
    finally:
        await s.close()


async def test_sqlite_close_flushes_pending_saves(tmp_path):
    path = str(tmp_path / "c.db")
    s = SqliteStore(path)
    await s.open()
    await s.add_messages([row(1)])
    s.save([row(1, state=State.UNDELIVERABLE, error=11, receipt_owed=True, receipt=b"r")])  # not awaited
    await s.close()
    again = SqliteStore(path)
    await again.open()
    got = await again.get("m1")
    await again.close()
    assert (got.state, got.error, got.receipt) == (State.UNDELIVERABLE, 11, b"r")


async def test_sqlite_failure_fails_the_callers_instead_of_hanging(tmp_path):
    s = SqliteStore(str(tmp_path / "f.db"))
    await s.open()
    try:
        await s.add_messages([row(1)])
        # a NOT NULL violation inside the batch: that caller fails, the store keeps working
        bad = MessageRow(id="m2", account=None, pdu=b"", route=[])  # type: ignore[arg-type]
        with pytest.raises(Exception, match="NOT NULL"):
            await asyncio.wait_for(s.add_messages([bad]), 5)
        with pytest.raises(Exception, match="NOT NULL"):
            await asyncio.wait_for(s.save_durably([changed(row(1), route_index=None)]), 5)  # type: ignore[arg-type]
        await s.add_messages([row(3)])
        assert {r.id for r in await s.open_messages()} == {"m1", "m3"}
    finally:
        await s.close()


def test_sqlite_acked_writes_survive_sigkill(tmp_path):
    path = tmp_path / "k.db"
    script = textwrap.dedent(f"""
        import asyncio, os, signal
        from smpphub.router.lifecycle import MessageRow, State
        from smpphub.router.store.sqlite import SqliteStore
        async def main():
            s = SqliteStore({str(path)!r})
            await s.open()
            rows = [MessageRow(id=f"k{{i}}", account="a", pdu=b"x", route=["u"]) for i in range(500)]
            await s.add_messages(rows)
            for r in rows[:100]:
                r.state, r.receipt_owed, r.receipt = State.DELIVERED, True, b"dlr"
            await s.save_durably(rows[:100])
            print("acked", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == -9 and "acked" in proc.stdout, proc.stderr

    async def read() -> tuple[int, int]:
        s = SqliteStore(str(path))
        await s.open()
        try:
            return len(await s.open_messages()), len(await s.owed_receipts("a"))
        finally:
            await s.close()

    assert asyncio.run(read()) == (400, 100)


# ---- the store benchmark's command line (its runs: tests/test_bench_hub.py) ----------------------------------


@pytest.mark.parametrize("argv, error", [
    (["--records", "0"], "argument --records: 0 is not at least 1"),
    (["--records", "many"], "argument --records: 'many' is not a whole number"),
    (["--callers", "1,x"], "argument --callers: 'x' is not a whole number"),
    (["--callers", "1,0"], "argument --callers: 0 is not at least 1"),
    (["--sync", "full,off"], "argument --sync: 'off' is neither full nor normal"),
    (["--intervals", "0,-2"], "argument --intervals: -2 is not >= 0"),
    (["--intervals", "nan"], "argument --intervals: nan is not >= 0"),
    (["--intervals", "2ms"], "argument --intervals: '2ms' is not a number of ms"),
    (["--turn", "-5"], "argument --turn: -5 is not at least 1"),
    (["--repeat", "0"], "argument --repeat: 0 is not at least 1"),
    (["--dir", "/nonexistent/smpphub"], "--dir: /nonexistent/smpphub is not a folder"),
    (["--records", "50", "--callers", "100"], "--callers: 100 callers for 50 records leaves some with none"),
    (["--colour"], "unrecognized arguments: --colour"),
])
def test_store_benchmark_bad_arguments_are_one_line_exit_2(capsys, argv, error):
    from smpphub.bench.store import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and out == ""
    assert err.splitlines() == [f"python -m smpphub.bench.store: {error}"]
