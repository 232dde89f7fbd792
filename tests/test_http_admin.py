"""The admin API over a running hub: binds kicked, upstreams paused, drained and resumed
(messages wait, then flow), routes replaced without a restart, route explain, one
message's trace, and every bad request answered with the JSON error naming its field."""

from __future__ import annotations

import pytest
from httpkit import ACME_TOKEN, ADMIN_TOKEN, http_client, http_hub_config, running_hub
from hubkit import wait_until

import smppcore

HOST = "127.0.0.1"
ROUTES = [{"prefix": "44", "upstreams": ["uk", "fr"]}, {"prefix": "33", "upstreams": ["fr"]},
          {"prefix": "447", "upstreams": ["fr"], "accounts": ["beta"]}]


@pytest.fixture
def smsc_names() -> tuple[str, ...]:
    return ("uk", "fr")


@pytest.fixture
async def hub(smscs):
    async with running_hub(http_hub_config(smscs, ROUTES)) as hub:
        yield hub


async def call(hub, method: str, path: str, *, json=None, data=None, token: str | None = ADMIN_TOKEN):
    async with http_client(hub, token=token) as http:
        async with http.request(method, path, json=json, data=data) as resp:
            return resp.status, await resp.json()


async def test_kick_a_bind(hub):
    async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
        status, body = await call(hub, "GET", "/v1/binds")
        assert status == 200
        (bind,) = body["binds"]
        assert bind["account"] == "acme" and bind["state"] == "bound_trx" and bind["peer"].startswith("127.0.0.1:")
        status, body = await call(hub, "DELETE", f"/v1/binds/{bind['id']}")
        assert (status, body) == (200, {"unbound": bind["id"], "account": "acme"})
        await wait_until(lambda: not acme.is_open, what="the ESME unbound")
    assert (await call(hub, "GET", "/v1/binds"))[1] == {"binds": []}


async def test_pause_holds_messages_and_resume_lets_them_flow(hub, smscs):
    uk = smscs["uk"]
    status, body = await call(hub, "POST", "/v1/upstreams/uk/pause")
    assert status == 200 and body["state"]["mode"] == "paused" and body["name"] == "uk"
    async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
        for i in range(3):
            await acme.submit_sm(destination_addr=f"44770090000{i}", short_message=b"wait")
        # answered, handed to uk's pool, and held there: nothing written to the SMSC
        (up,) = [u for u in (await call(hub, "GET", "/v1/upstreams"))[1]["upstreams"] if u["name"] == "uk"]
        assert up["state"]["queued"] == 3 and up["state"]["mode"] == "paused"
        assert len(uk.sim.messages) == 0
        status, body = await call(hub, "POST", "/v1/upstreams/uk/resume")
        assert status == 200 and body["state"]["mode"] == "running"
        await wait_until(lambda: len(uk.sim.messages) == 3, what="the held messages sent after resume")


async def test_drain_sends_the_next_messages_to_the_next_upstream(hub, smscs):
    uk, fr = smscs["uk"], smscs["fr"]
    status, body = await call(hub, "POST", "/v1/upstreams/uk/drain")
    assert status == 200 and body["state"]["mode"] == "draining" and body["state"]["available"] is False
    async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
        await acme.submit_sm(destination_addr="447700900001", short_message=b"a")
        await wait_until(lambda: len(fr.sim.messages) == 1, what="failover to fr while uk drains")
        await call(hub, "POST", "/v1/upstreams/uk/resume")
        await acme.submit_sm(destination_addr="447700900002", short_message=b"b")
        await wait_until(lambda: len(uk.sim.messages) == 1, what="uk again after resume")
    assert len(fr.sim.messages) == 1


async def test_put_routes_applies_without_restart_and_says_what_changed(hub, smscs):
    uk, fr = smscs["uk"], smscs["fr"]
    status, body = await call(hub, "GET", "/v1/routes")
    assert status == 200 and [r["prefix"] for r in body["routes"]] == ["44", "33", "447"]
    new = [{"prefix": "44", "upstreams": ["fr"]}, {"prefix": "33", "upstreams": ["fr"]}]
    status, body = await call(hub, "PUT", "/v1/routes", json={"routes": new})
    assert status == 200, body
    assert [r["prefix"] for r in body["added"]] == ["44"]
    assert sorted(r["prefix"] for r in body["removed"]) == ["44", "447"]
    assert body["unchanged"] == 1
    async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
        await acme.submit_sm(destination_addr="447700900003", short_message=b"c")
        await wait_until(lambda: len(fr.sim.messages) == 1, what="the new route used")
    assert len(uk.sim.messages) == 0
    assert (await call(hub, "GET", "/v1/routes"))[1]["routes"][0] == {"prefix": "44", "upstreams": ["fr"],
                                                                      "weights": {}, "accounts": [],
                                                                      "route_group": None, "source_prefix": None}


async def test_a_large_put_of_routes_is_taken_whole(hub):
    routes = [{"prefix": f"9{i:05d}", "upstreams": ["fr"]} for i in range(5_000)] + ROUTES
    status, body = await call(hub, "PUT", "/v1/routes", json={"routes": routes})
    assert status == 200, body
    assert (len(body["added"]), len(body["removed"]), body["unchanged"]) == (5_000, 0, 3)
    status, body = await call(hub, "GET", "/v1/route?to=904242123&account=acme")
    assert body["route"]["prefix"] == "904242"


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"routes": [{"prefix": "44", "upstreams": ["nowhere"]}]}, 422, "routes[0].upstreams"),
    ({"routes": [{"prefix": "4a", "upstreams": ["uk"]}]}, 422, "routes[0].prefix"),
    ({"routes": [{"prefix": "44"}]}, 422, "routes[0]"),
    ({"routes": [{"prefix": "44", "upstreams": ["uk"], "accounts": ["ghost"]}]}, 422, "routes[0].accounts"),
    ({"routes": [{"prefix": "44", "upstreams": ["uk"], "colour": "red"}]}, 422, "routes[0].colour"),
    ({"default_route": {"upstreams": ["uk"]}}, 422, "routes"),
    ({"routes": "44"}, 422, "routes"),
    (b"{not json", 400, None),
    (b"[]", 400, None),
])
async def test_put_routes_refuses_bad_routes_naming_the_field_and_keeps_the_old(hub, body, status, field):
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    got, answer = await call(hub, "PUT", "/v1/routes", **kwargs)
    assert got == status, answer
    assert answer["error"]["field"] == field
    assert [r.prefix for r in hub.config.routes] == ["44", "33", "447"]


@pytest.mark.parametrize(("query", "prefix", "upstreams", "candidates"), [
    ("to=%2B44%207700%20900123&account=acme", "44", ["uk", "fr"], [("447", False), ("44", True)]),
    ("to=447700900123&account=beta", "447", ["fr"], [("447", True), ("44", True)]),
    ("to=0033612345678&account=acme", "33", ["fr"], [("33", True)]),
    ("to=4912345&account=acme", None, None, []),
])
async def test_route_explain(hub, query, prefix, upstreams, candidates):
    status, body = await call(hub, "GET", f"/v1/route?{query}")
    assert status == 200, body
    if prefix is None:
        assert body["route"] is None and body["why"].startswith("unroutable")
    else:
        assert body["route"]["prefix"] == prefix and body["route"]["upstreams"] == upstreams
    assert [(c["prefix"], c["matches"]) for c in body["candidates"]] == candidates
    skipped = [c for c in body["candidates"] if not c["matches"]]
    assert all(c["reason"] == "only for accounts beta" for c in skipped)


async def test_trace_of_one_message_has_every_step_with_times(hub):
    async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
        resp = await acme.submit_sm(destination_addr="447700900004", short_message=b"t", registered_delivery=1)
        await acme.next_message(timeout=10)
        await wait_until(lambda: hub.deliveries.delivered == 1, what="the receipt acknowledged")
    status, body = await call(hub, "GET", f"/v1/messages/{resp.message_id}/trace")
    assert status == 200, body
    assert body["id"] == resp.message_id and body["state"] == "delivered" and body["upstream"] == "uk"
    assert body["steps_kept"] is True
    assert [s["step"] for s in body["steps"]] == ["queued", "in_flight", "sent", "delivered", "receipt_delivered"]
    times = [s["after_s"] for s in body["steps"]]
    assert times == sorted(times) and times[0] >= 0
    assert body["steps"][2]["upstream"] == "uk"


@pytest.mark.parametrize("trace_messages", [0, 1])
async def test_a_message_out_of_the_ring_is_told_from_its_stored_row(smscs, trace_messages):
    uk = smscs["uk"]
    config = http_hub_config(smscs, ROUTES, log={"trace_messages": trace_messages})
    async with running_hub(config) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
            first = await acme.submit_sm(destination_addr="447700900005", short_message=b"1")
            await acme.submit_sm(destination_addr="447700900006", short_message=b"2")  # pushes the first out
            await wait_until(lambda: len(uk.sim.messages) == 2, what="both sent")
        status, body = await call(hub, "GET", f"/v1/messages/{first.message_id}/trace")
    assert status == 200, body
    assert body["steps_kept"] is False and body["steps"] == []
    assert body["state"] == "sent" and body["upstream"] == "uk" and body["upstream_id"]
    assert body["updated_at"] >= body["created_at"] > 0


@pytest.mark.parametrize(("method", "path", "status", "field"), [
    ("DELETE", "/v1/binds/999", 404, "id"),
    ("DELETE", "/v1/binds/x%20y", 404, "id"),
    ("POST", "/v1/upstreams/nowhere/pause", 404, "name"),
    ("POST", "/v1/upstreams/uk/explode", 404, "action"),
    ("GET", "/v1/route?account=acme", 422, "to"),
    ("GET", "/v1/route?to=44123", 422, "account"),
    ("GET", "/v1/route?to=44123&account=ghost", 422, "account"),
    ("GET", "/v1/route?to=call-me&account=acme", 422, "to"),
    ("GET", "/v1/route?to=4" + "1" * 40 + "&account=acme", 422, "to"),
    ("GET", "/v1/messages/nope/trace", 404, "id"),
])
async def test_bad_admin_requests(hub, method, path, status, field):
    got, body = await call(hub, method, path)
    assert got == status, body
    assert body["error"]["field"] == field


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/binds"), ("DELETE", "/v1/binds/1"), ("GET", "/v1/upstreams"), ("POST", "/v1/upstreams/uk/pause"),
    ("GET", "/v1/routes"), ("PUT", "/v1/routes"), ("GET", "/v1/route?to=44&account=acme"),
    ("GET", "/v1/messages/x/trace"),
])
async def test_admin_routes_need_the_admin_token(hub, method, path):
    for token, status in ((None, 401), ("shk_wrong", 401), (ACME_TOKEN, 403)):
        got, body = await call(hub, method, path, token=token)
        assert got == status, (token, body)
        assert body["error"]["field"] == "Authorization"
    assert hub.dispatcher.pools["uk"].mode == "running"
