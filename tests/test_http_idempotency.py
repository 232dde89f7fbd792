"""Idempotency-Key across a failing store: a kept answer never outlives messages that were not stored.

The answer is written ahead of its messages (so it is durable no later than they are),
provisional until they are stored. The crash window this closes: the messages' write
fails, the answer's does not, and the hub dies before forgetting it. Here the failure
is made inside the writer's own SQLite connection (an authorizer, as
tests/test_faults_store.py does): inserts into ``messages`` fail, and so does the
``DELETE`` that forgets the answer, which leaves the store exactly as a crash right
then would. A hub started again on the same file must send the retried request for
real, not replay a 202 for ids that do not exist.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
import threading

import pytest
from aiohttp import web
from httpkit import http_client, http_hub_config, running_hub
from hubkit import wait_until

from smpphub.router.http.idempotency import IdempotencyKeys
from smpphub.router.lifecycle import MessageRow
from smpphub.router.store.base import KeptAnswer
from smpphub.router.store.memory import MemoryStore
from smpphub.router.store.sqlite import SqliteStore

ROUTES = [{"prefix": "44", "upstreams": ["uk"]}]
KEY = {"Idempotency-Key": "crash-window-1"}
REQUEST = b"the request's body"
BODY = {"to": "447700900301", "text": "only once"}


def fail_message_writes_while(failing: threading.Event, db: sqlite3.Connection) -> None:
    """On the writer's connection: no message is inserted, and no kept answer deleted, while ``failing``."""

    def authorizer(action: int, table: str | None, *_: object) -> int:
        refused = (action == sqlite3.SQLITE_INSERT and table == "messages") or (
            action == sqlite3.SQLITE_DELETE and table == "idempotency")
        return sqlite3.SQLITE_DENY if refused and failing.is_set() else sqlite3.SQLITE_OK

    db.set_authorizer(authorizer)


def stored_status(path: str) -> list[int]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT status FROM idempotency WHERE key = ?", (KEY["Idempotency-Key"],))]


async def test_an_answer_whose_messages_failed_is_not_replayed_after_a_crash(smsc, tmp_path):
    path = str(tmp_path / "hub.db")
    config = http_hub_config({"uk": smsc}, ROUTES)
    store = SqliteStore(path)
    async with running_hub(config, store=store) as hub, http_client(hub) as http:
        failing = threading.Event()
        await store._read(functools.partial(fail_message_writes_while, failing))
        failing.set()
        async with http.post("/v1/messages", json=BODY, headers=KEY) as resp:
            assert resp.status == 503, await resp.text()
        await hub.store.flush()  # the forgetting ran (and was refused, as a crash would have it)
    assert stored_status(path) == [-202]  # the answer survived alone, provisional
    async with running_hub(config, store=SqliteStore(path)) as hub, http_client(hub) as http:
        async with http.post("/v1/messages", json=BODY, headers=KEY) as resp:
            assert resp.status == 202 and "Idempotent-Replayed" not in resp.headers  # sent for real
            first = await resp.json()
        await wait_until(lambda: len(smsc.sim.messages) == 1, what="the message upstream")
        async with http.post("/v1/messages", json=BODY, headers=KEY) as resp:  # and now it is kept
            assert resp.headers.get("Idempotent-Replayed") == "true" and await resp.json() == first
        await hub.store.flush()
        assert await hub.store.get(first["messages"][0]["id"]) is not None
    assert stored_status(path) == [202]  # confirmed once its messages were stored
    assert len(smsc.sim.messages) == 1


async def test_a_kept_answer_is_confirmed_once_its_messages_are_stored(smsc, tmp_path):
    path = str(tmp_path / "hub.db")
    async with running_hub(http_hub_config({"uk": smsc}, ROUTES), store=SqliteStore(path)) as hub, \
            http_client(hub) as http:
        async with http.post("/v1/messages", json=BODY, headers=KEY) as resp:
            assert resp.status == 202
        await hub.store.flush()
    assert stored_status(path) == [202]


def _row(message_id: str) -> MessageRow:
    return MessageRow(id=message_id, account="acme", pdu=b"", route=["uk"])


def _provisional(body: bytes) -> KeptAnswer:
    return KeptAnswer(account="acme", key="k", fingerprint=hashlib.sha256(REQUEST).digest(), status=-202, body=body,
                      expires=2e9)


async def _never(keep):  # the request's handler: a replay must not get here
    raise AssertionError("sent again")


@pytest.mark.parametrize(("body", "stored_ids", "replayed"), [
    # the hub died after the messages were stored, before the confirmation: replayed (and confirmed)
    (b'{"messages":[{"index":0,"to":"44","status":"accepted","id":"m1"}],"accepted":1,"rejected":0}', ["m1"], True),
    # every item was rejected: nothing to have lost, replayed
    (b'{"messages":[{"index":0,"to":"x","status":"rejected"}],"accepted":0,"rejected":1}', [], True),
    # the messages never made it: forgotten, sent for real
    (b'{"messages":[{"index":0,"to":"44","status":"accepted","id":"m1"}],"accepted":1,"rejected":0}', [], False),
])
async def test_a_provisional_answer_holds_only_with_its_messages(body, stored_ids, replayed):
    store = MemoryStore()
    await store.open()
    await store.add_messages([_row(i) for i in stored_ids])
    store.keep_answer(_provisional(body))
    keys = IdempotencyKeys(10, 60.0, store)
    fresh = web.Response(status=202, body=b"{}")

    async def handler(keep):
        return fresh
    response = await keys.run("acme", "k", REQUEST, _never if replayed else handler)
    if replayed:
        assert response.headers["Idempotent-Replayed"] == "true" and response.body == body
        assert store.answers[("acme", "k")].status == 202  # confirmed
    else:
        assert response is fresh and ("acme", "k") not in store.answers
