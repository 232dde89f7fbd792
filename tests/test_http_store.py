"""What the store keeps for the HTTP API (HttpMeta, find_messages), the same on SQLite and in memory."""

from __future__ import annotations

import pytest

from smppcore import SubmitSm, encode
from smpphub.router.lifecycle import MessageRow, State
from smpphub.router.store.base import HttpMeta, MessageQuery
from smpphub.router.store.memory import MemoryStore
from smpphub.router.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "memory"])
async def store(request, tmp_path):
    s = SqliteStore(str(tmp_path / "hub.db")) if request.param == "sqlite" else MemoryStore()
    await s.open()
    yield s
    await s.close()


def row(i: int, account: str = "acme", to: str = "447700900000", state: State = State.QUEUED) -> MessageRow:
    pdu = encode(SubmitSm(destination_addr=to, short_message=b"x"))
    return MessageRow(id=f"m{i:04d}", account=account, pdu=pdu, route=["uk"], state=state, created_at=1000.0 + i,
                      updated_at=1000.0 + i)


async def test_find_messages_filters_and_pages_newest_first(store):
    await store.add_messages([row(i, to=f"44770090000{i % 3}") for i in range(10)]
                             + [row(100, account="beta"), row(101, state=State.DELIVERED)])
    found = await store.find_messages(MessageQuery(account="acme", limit=3))
    assert [r.id for r in found] == ["m0101", "m0009", "m0008"]
    found = await store.find_messages(MessageQuery(account="acme", destination="447700900001"))
    assert [r.id for r in found] == ["m0007", "m0004", "m0001"]
    found = await store.find_messages(MessageQuery(account="acme", state=State.DELIVERED))
    assert [r.id for r in found] == ["m0101"]
    found = await store.find_messages(MessageQuery(account="acme", since=1002.0, until=1004.0))
    assert [r.id for r in found] == ["m0003", "m0002"]
    found = await store.find_messages(MessageQuery(account="acme", scan=2, destination="447700900001"))
    assert found == []  # only the two newest were looked at
    assert [r.id for r in await store.find_messages(MessageQuery(account="beta"))] == ["m0100"]


async def test_http_meta_is_kept_with_its_message_and_purged_with_it(store):
    meta = [HttpMeta(id=i, message="m0001", account="acme", parts=["m0001", "m0002"], callback_url="http://x/",
                     reference="r", created_at=1.0) for i in ("m0001", "m0002")]
    store.add_http_meta(meta)
    await store.add_messages([row(1, state=State.DELIVERED), row(2, state=State.DELIVERED)])
    assert await store.http_meta("m0002") == meta[1]
    assert await store.http_meta("m0003") is None
    assert await store.purge(older_than=1e12) == 2
    assert await store.http_meta("m0001") is None


async def test_take_spilled_by_id_takes_only_spilled_rows_once(store):
    await store.add_messages([row(1), row(2), row(3)])
    store.spill(["m0001", "m0002"])
    taken = await store.take_spilled_by_id(["m0002", "m0003", "m0009"])
    assert [r.id for r in taken] == ["m0002"]
    assert await store.take_spilled_by_id(["m0002"]) == []
    assert [r.id for r in await store.take_spilled(1e12, 10)] == ["m0001"]


async def test_kept_answers_are_read_back_forgotten_and_expire(store):
    import time

    from smpphub.router.store.base import KeptAnswer

    now = time.time()
    store.keep_answer(KeptAnswer(account="acme", key="k1", fingerprint=b"f", status=202, body=b"{}",
                                 expires=now + 60))
    store.keep_answer(KeptAnswer(account="acme", key="old", fingerprint=b"f", status=202, body=b"{}",
                                 expires=now - 1))
    got = await store.kept_answer("acme", "k1")
    assert got is not None and got.status == 202 and got.body == b"{}" and got.fingerprint == b"f"
    assert await store.kept_answer("beta", "k1") is None
    assert await store.kept_answer("acme", "old") is None  # expired
    store.forget_answer("acme", "k1")
    assert await store.kept_answer("acme", "k1") is None
    await store.purge(older_than=0.0)
    assert await store.kept_answer("acme", "old") is None
