"""The application API end to end: a hub with [http], a simulator upstream, an aiohttp client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from httpkit import ADMIN_TOKEN, BETA_TOKEN, http_client, http_hub_config, running_hub
from hubkit import wait_until

from smppcore.concat import concat_info

ROUTES = [{"prefix": "44", "upstreams": ["uk"]}]


@pytest.fixture
async def hub(smsc):
    async with running_hub(http_hub_config({"uk": smsc}, ROUTES)) as hub:
        yield hub


async def test_send_one_message_then_its_status(hub, smsc):
    async with http_client(hub) as http:
        async with http.post("/v1/messages", json={"to": "+447700900001", "text": "hello", "from": "ACME"}) as resp:
            assert resp.status == 202, await resp.text()
            body = await resp.json()
        assert body["accepted"] == 1 and body["rejected"] == 0
        item = body["messages"][0]
        assert item["status"] == "accepted" and item["parts"] == 1 and item["to"] == "+447700900001"
        await wait_until(lambda: len(smsc.sim.messages) == 1, what="the message upstream")
        got = smsc.sim.messages[0]
        assert got.destination_addr == "447700900001" and got.source_addr == "ACME"
        async with http.get(f"/v1/messages/{item['id']}") as resp:
            assert resp.status == 200
            status = await resp.json()
        assert status["id"] == item["id"] and status["to"] == "447700900001" and status["from"] == "ACME"
        assert status["route"] == ["uk"]
        assert status["state"] in ("queued", "in_flight", "sent", "delivered")


async def test_a_receipt_shows_in_the_status(hub, smsc):
    async with http_client(hub) as http:
        async with http.post("/v1/messages", json={"to": "447700900002", "text": "hi", "receipt": True}) as resp:
            mid = (await resp.json())["messages"][0]["id"]

        async def state() -> dict:
            async with http.get(f"/v1/messages/{mid}") as resp:
                return await resp.json()

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (status := await state())["state"] != "delivered" and loop.time() < deadline:
            await asyncio.sleep(0.02)  # polling, bounded by the deadline
        assert status["state"] == "delivered", status
        assert status["upstream"] == "uk" and status["upstream_id"]
        assert [r["state"] for r in status["receipts"]] == ["delivered"]


async def test_long_unicode_text_is_split_and_coded(hub, smsc):
    text = "Привет, мир! " * 12  # 156 characters, not GSM: UCS-2 in 3 parts
    async with http_client(hub) as http:
        async with http.post("/v1/messages", json={"to": "447700900003", "text": text}) as resp:
            item = (await resp.json())["messages"][0]
        assert item["parts"] == 3
        await wait_until(lambda: len(smsc.sim.messages) == 1, what="the message reassembled upstream")
        assert smsc.sim.messages[0].text == text
        async with http.get(f"/v1/messages/{item['id']}") as resp:
            assert len((await resp.json())["parts"]) == 3


async def test_a_long_message_is_listed_once_with_its_parts(hub, smsc):
    async with http_client(hub) as http:
        async with http.post("/v1/messages", json={"to": "447700900270", "text": "long " * 80}) as resp:
            item = (await resp.json())["messages"][0]
        async with http.get("/v1/messages", params={"to": "447700900270"}) as resp:
            page = await resp.json()
    assert page["count"] == 1 and page["messages"][0]["id"] == item["id"]
    assert len(page["messages"][0]["parts"]) == item["parts"] == 3


async def test_batch_with_one_bad_item(hub, smsc):
    batch = {"messages": [
        {"to": "447700900010", "text": "one"},
        {"to": "not a number", "text": "two"},
        {"to": ["447700900011", "33123456789"], "text": "three"},  # the second has no route
        {"to": "447700900012", "text": "four", "reference": "r-4"},
    ]}
    async with http_client(hub) as http:
        async with http.post("/v1/messages", json=batch) as resp:
            assert resp.status == 202
            body = await resp.json()
    assert body["accepted"] == 3 and body["rejected"] == 2
    by = [(m["index"], m["status"]) for m in body["messages"]]
    assert by == [(0, "accepted"), (1, "rejected"), (2, "accepted"), (2, "rejected"), (3, "accepted")]
    assert body["messages"][1]["error"]["field"] == "messages[1].to"
    assert body["messages"][3]["error"] == {"code": "no_route", "field": "messages[2].to",
                                            "message": "messages[2].to: no route for this destination"}
    assert body["messages"][4]["reference"] == "r-4"
    await wait_until(lambda: len(smsc.sim.messages) == 3, what="the three accepted messages upstream")


async def test_scheduled_send_waits_and_can_be_cancelled(hub, smsc):
    # within the hub's hold_horizon (60 s): held in memory, where cancel_sm's path can reach it
    later = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    async with http_client(hub) as http:
        async with http.post("/v1/messages", json={"to": "447700900020", "text": "later", "send_at": later}) as resp:
            mid = (await resp.json())["messages"][0]["id"]
        async with http.get(f"/v1/messages/{mid}") as resp:
            status = await resp.json()
        assert status["state"] == "scheduled" and status["send_at"]
        async with http.delete(f"/v1/messages/{mid}") as resp:
            assert resp.status == 200
            assert (await resp.json())["cancelled"] == [mid]
        async with http.get(f"/v1/messages/{mid}") as resp:
            assert (await resp.json())["state"] == "cancelled"
        async with http.delete(f"/v1/messages/{mid}") as resp:
            assert resp.status == 409
            assert (await resp.json())["error"]["code"] == "not_cancellable"
    assert not smsc.sim.messages


async def test_a_message_scheduled_far_ahead_waits_in_the_store_and_can_be_cancelled(hub, smsc):
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()  # past the hold horizon: spilled to the store
    async with http_client(hub) as http:
        async with http.post("/v1/messages", json={"to": "447700900021", "text": "x" * 300, "send_at": later}) as resp:
            item = (await resp.json())["messages"][0]
        assert item["parts"] == 2
        await hub.store.flush()
        assert hub.dispatcher.backlog.size == 2 and not hub.dispatcher.table.get(item["id"])
        async with http.delete(f"/v1/messages/{item['id']}") as resp:
            assert resp.status == 200, await resp.text()
            assert len((await resp.json())["cancelled"]) == 2
        assert hub.dispatcher.backlog.size == 0
        async with http.get(f"/v1/messages/{item['id']}") as resp:
            assert (await resp.json())["state"] == "cancelled"
    await hub.store.flush()
    assert await hub.store.take_spilled(1e12, 10) == []


async def test_list_filters_by_state_destination_and_time(hub, smsc):
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with http_client(hub) as http:
        for i in range(3):
            async with http.post("/v1/messages", json={"to": f"44770090003{i}", "text": "x", "send_at": later}):
                pass
        async with http.post("/v1/messages", json={"to": "447700900040", "text": "now"}):
            pass
        async with http.get("/v1/messages", params={"state": "scheduled"}) as resp:
            page = await resp.json()
        assert page["count"] == 3 and {m["state"] for m in page["messages"]} == {"scheduled"}
        async with http.get("/v1/messages", params={"to": "+447700900031"}) as resp:
            page = await resp.json()
        assert [m["to"] for m in page["messages"]] == ["447700900031"]
        async with http.get("/v1/messages", params={"limit": "2"}) as resp:
            assert (await resp.json())["count"] == 2
        future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        async with http.get("/v1/messages", params={"since": future}) as resp:
            assert (await resp.json())["count"] == 0
    async with http_client(hub, BETA_TOKEN) as http:  # another account sees none of them
        async with http.get("/v1/messages") as resp:
            assert (await resp.json())["count"] == 0


async def test_idempotent_retry_sends_once(hub, smsc):
    headers = {"Idempotency-Key": "order-7"}
    body = {"to": "447700900050", "text": "once"}
    async with http_client(hub) as http:
        async with http.post("/v1/messages", json=body, headers=headers) as resp:
            first = await resp.json()
        async with http.post("/v1/messages", json=body, headers=headers) as resp:
            assert resp.status == 202 and resp.headers["Idempotent-Replayed"] == "true"
            assert await resp.json() == first
        async with http.post("/v1/messages", json={**body, "text": "other"}, headers=headers) as resp:
            assert resp.status == 422
            assert (await resp.json())["error"]["field"] == "Idempotency-Key"
    async with http_client(hub, BETA_TOKEN) as http:  # keys are per account
        async with http.post("/v1/messages", json=body, headers=headers) as resp:
            assert (await resp.json())["messages"][0]["id"] != first["messages"][0]["id"]
    await wait_until(lambda: len(smsc.sim.messages) == 2, what="one message per account")
    await hub.store.flush()
    assert len([r for r in (await hub.store.find_messages(_all("acme")))]) == 1


def _all(account: str):
    from smpphub.router.store.base import MessageQuery

    return MessageQuery(account=account)


async def test_status_of_another_accounts_message_is_404(hub):
    async with http_client(hub) as http:
        async with http.post("/v1/messages", json={"to": "447700900060", "text": "mine"}) as resp:
            mid = (await resp.json())["messages"][0]["id"]
    async with http_client(hub, BETA_TOKEN) as http:
        for method in ("GET", "DELETE"):
            async with http.request(method, f"/v1/messages/{mid}") as resp:
                assert resp.status == 404


@pytest.mark.parametrize(("token", "status", "code"), [
    (None, 401, "unauthorized"),
    ("shk_not-a-token", 401, "unauthorized"),
    (ADMIN_TOKEN, 403, "forbidden"),
])
async def test_tokens(hub, token, status, code):
    async with http_client(hub, token) as http:
        for method, path in (("POST", "/v1/messages"), ("GET", "/v1/messages"), ("GET", "/v1/messages/x"),
                             ("DELETE", "/v1/messages/x")):
            async with http.request(method, path, json={"to": "447700900070", "text": "x"}) as resp:
                assert resp.status == status, (method, path)
                body = await resp.json()
                assert body["error"]["code"] == code and body["error"]["field"] == "Authorization"


SOON = "2030-01-01T00:00:00Z"
BAD_REQUESTS = [
    # (body bytes, status, field)
    (b"{not json", 400, None),
    (b"[1, 2]", 400, None),
    (b'"text"', 400, None),
    (b"", 400, None),
    (b'{"text": "x"}', 422, "to"),
    (b'{"to": "447700900080"}', 422, "text"),
    (b'{"to": "447700900080", "text": ""}', 422, "text"),
    (b'{"to": "44-77", "text": "x"}', 422, "to"),
    (b'{"to": 447700900080, "text": "x"}', 422, "to"),
    (b'{"to": [], "text": "x"}', 422, "to"),
    (b'{"to": "447700900080", "text": "x", "from": "much too long sender"}', 422, "from"),
    (b'{"to": "447700900080", "text": "x", "coding": "ebcdic"}', 422, "coding"),
    (b'{"to": "447700900080", "text": "\xd0\x9f", "coding": "gsm7"}', 422, "text"),
    (b'{"to": "447700900080", "text": "x", "send_at": "tomorrow"}', 422, "send_at"),
    (b'{"to": "447700900080", "text": "x", "send_at": "2030-01-01T00:00:00"}', 422, "send_at"),
    (b'{"to": "447700900080", "text": "x", "valid_until": "2001-01-01T00:00:00Z"}', 422, "valid_until"),
    (b'{"to": "447700900080", "text": "x", "callback_url": "ftp://x"}', 422, "callback_url"),
    (b'{"to": "447700900080", "text": "x", "callback_url": "http://x/hook"}', 422, "callback_url"),  # no secret
    (b'{"to": "447700900080", "text": "x", "colour": "red"}', 422, "colour"),
    (b'{"to": "33123456789", "text": "x"}', 422, "to"),  # no route
    (b'{"messages": []}', 422, "messages"),
    (b'{"messages": "x"}', 422, "messages"),
    (b'{"to": "447700900080", "text": "x", "reference": "' + b"r" * 65 + b'"}', 422, "reference"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_REQUESTS, ids=[r[0][:40].decode("latin-1")
                                                                          for r in BAD_REQUESTS])
async def test_bad_requests_name_the_field(hub, smsc, body, status, field):
    async with http_client(hub) as http:
        async with http.post("/v1/messages", data=body, headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == status, await resp.text()
            error = (await resp.json())["error"]
    assert error["field"] == field, error
    assert error["message"]
    assert not smsc.sim.messages


@pytest.mark.parametrize(("query", "field"), [
    ("state=lost", "state"), ("to=abc", "to"), ("since=yesterday", "since"), ("until=2030-01-01T00:00:00", "until"),
    ("limit=0", "limit"), ("limit=5000", "limit"), ("limit=x", "limit"), ("colour=red", "colour"),
])
async def test_bad_list_queries_name_the_parameter(hub, query, field):
    async with http_client(hub) as http:
        async with http.get(f"/v1/messages?{query}") as resp:
            assert resp.status == 422
            assert (await resp.json())["error"]["field"] == field


async def test_wrong_method_is_a_json_405(hub):
    async with http_client(hub) as http:
        async with http.put("/v1/messages") as resp:
            assert resp.status == 405
            assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_throttled_account_gets_429_and_batch_items_say_so(smsc):
    config = http_hub_config({"uk": smsc}, ROUTES, acme={"max_rate": 1})
    async with running_hub(config) as hub, http_client(hub) as http:
        batch = {"messages": [{"to": "447700900090", "text": f"m{i}"} for i in range(5)]}
        async with http.post("/v1/messages", json=batch) as resp:
            body = await resp.json()
        assert body["accepted"] >= 1 and body["rejected"] >= 1
        assert {m["error"]["code"] for m in body["messages"] if m["status"] == "rejected"} == {"throttled"}
        async with http.post("/v1/messages", json={"to": "447700900091", "text": "again"}) as resp:
            assert resp.status == 429


async def test_sender_not_allowed_for_the_account_is_422_on_from(smsc):
    config = http_hub_config({"uk": smsc}, ROUTES, acme={"source_addrs": ["ACME"]})
    async with running_hub(config) as hub, http_client(hub) as http:
        async with http.post("/v1/messages", json={"to": "447700900092", "text": "x", "from": "EVIL"}) as resp:
            assert resp.status == 422
            assert (await resp.json())["error"]["field"] == "from"
        async with http.post("/v1/messages", json={"to": "447700900092", "text": "x", "from": "ACME"}) as resp:
            assert resp.status == 202


def test_long_text_parts_carry_one_reference():
    from smpphub.router.http.compose import Draft, submits

    pdus = submits(Draft("447700900001", "x" * 400))
    assert len(pdus) == 3
    refs = {concat_info(p).reference for p in pdus}
    assert len(refs) == 1


async def test_max_batch_bounds_messages_and_destinations(smsc):
    config = http_hub_config({"uk": smsc}, ROUTES, http={"max_batch": 3})
    async with running_hub(config) as hub, http_client(hub) as http:
        four = {"messages": [{"to": f"44770090020{i}", "text": "x"} for i in range(4)]}
        async with http.post("/v1/messages", json=four) as resp:
            assert resp.status == 422
            assert (await resp.json())["error"]["field"] == "messages"
        wide = {"to": [f"44770090021{i}" for i in range(4)], "text": "x"}
        async with http.post("/v1/messages", json=wide) as resp:
            assert resp.status == 422
            assert (await resp.json())["error"]["field"] == "to"
        three = {"messages": [{"to": ["447700900220", "447700900221"], "text": "x"}, {"to": "447700900222",
                                                                                       "text": "y"}]}
        async with http.post("/v1/messages", json=three) as resp:
            assert resp.status == 202 and (await resp.json())["accepted"] == 3
    assert not [m for m in smsc.sim.messages if m.destination_addr.startswith("44770090020")]


@pytest.mark.parametrize(("headers", "status", "field"), [
    ({"Authorization": "Basic YWNtZTpwdw=="}, 401, "Authorization"),
    ({"Authorization": "Bearer"}, 401, "Authorization"),
    ({"Authorization": "Bearer " + "x" * 5000}, 401, "Authorization"),
    ({"Idempotency-Key": "k" * 256}, 422, "Idempotency-Key"),
    ({"Idempotency-Key": "tab\there"}, 422, "Idempotency-Key"),
])
async def test_bad_headers_name_the_header(hub, headers, status, field):
    async with http_client(hub) as http:
        async with http.post("/v1/messages", json={"to": "447700900230", "text": "x"}, headers=headers) as resp:
            assert resp.status == status
            assert (await resp.json())["error"]["field"] == field


async def test_a_reload_takes_new_tokens_and_drops_old_ones(hub):
    import msgspec
    from httpkit import ACME_TOKEN

    from smpphub.router.http.tokens import hash_token

    new_token = "shk_a-new-token-for-acme-0123456789abcdefghijkl"
    accounts = [msgspec.structs.replace(a, api_tokens=[hash_token(new_token)]) if a.system_id == "acme" else a
                for a in hub.config.accounts]
    hub.reload(msgspec.structs.replace(hub.config, accounts=accounts))
    async with http_client(hub, ACME_TOKEN) as http:
        async with http.get("/v1/messages") as resp:
            assert resp.status == 401
    async with http_client(hub, new_token) as http:
        async with http.get("/v1/messages") as resp:
            assert resp.status == 200


async def test_concurrent_retries_with_one_key_send_once(hub, smsc):
    headers = {"Idempotency-Key": "burst-1"}
    body = {"to": "447700900240", "text": "once, however many at once"}
    async with http_client(hub) as http:
        async def post() -> dict:
            async with http.post("/v1/messages", json=body, headers=headers) as resp:
                assert resp.status == 202
                return await resp.json()

        answers = await asyncio.gather(*(post() for _ in range(5)))
    assert len({a["messages"][0]["id"] for a in answers}) == 1
    await wait_until(lambda: smsc.sim.messages, what="the message upstream")
    await hub.store.flush()
    assert len(await hub.store.find_messages(_all("acme"))) == 1


async def test_an_idempotent_retry_after_a_restart_sends_nothing(smsc, tmp_path):
    from smpphub.router.store.sqlite import SqliteStore

    config = http_hub_config({"uk": smsc}, ROUTES, http={"idempotency_keys": 1})  # memory keeps one key only
    headers = {"Idempotency-Key": "restart-1"}
    body = {"to": "447700900250", "text": "before the restart"}
    async with running_hub(config, store=SqliteStore(str(tmp_path / "hub.db"))) as hub, http_client(hub) as http:
        async with http.post("/v1/messages", json=body, headers=headers) as resp:
            first = await resp.json()
        async with http.post("/v1/messages", json={**body, "to": "447700900251"},
                             headers={"Idempotency-Key": "other"}) as resp:  # pushes restart-1 out of memory
            assert resp.status == 202
        async with http.post("/v1/messages", json=body, headers=headers) as resp:  # read back from the store
            assert resp.headers.get("Idempotent-Replayed") == "true" and await resp.json() == first
    async with running_hub(config, store=SqliteStore(str(tmp_path / "hub.db"))) as hub, http_client(hub) as http:
        async with http.post("/v1/messages", json=body, headers=headers) as resp:
            assert resp.status == 202 and resp.headers.get("Idempotent-Replayed") == "true"
            assert await resp.json() == first
        async with http.post("/v1/messages", json={**body, "text": "changed"}, headers=headers) as resp:
            assert resp.status == 422
        await hub.store.flush()
        assert len(await hub.store.find_messages(_all("acme"))) == 2


async def test_cancel_sm_over_smpp_reaches_a_message_waiting_in_the_store(hub, smsc):
    import smppcore
    from smppcore.pdus import CancelSm, QuerySm

    async with smppcore.connect("127.0.0.1", hub.servers[0].port, system_id="acme", password="pw") as esme:
        resp = await esme.submit_sm(destination_addr="447700900260", short_message=b"tomorrow",
                                    schedule_delivery_time="000001000000000R")
        await hub.store.flush()
        assert hub.dispatcher.table.get(resp.message_id) is None  # spilled: past the hold horizon
        answer = await esme.request(CancelSm(message_id=resp.message_id, destination_addr="447700900260"))
        assert answer.command_status == 0
        state = await esme.request(QuerySm(message_id=resp.message_id))
        assert state.message_state == smppcore.MessageState.DELETED
    assert not smsc.sim.messages
