"""Receipts and MO as signed webhooks: to a receiver in the test, retried until 2xx, never lost across SIGKILL;
[[mo_routes]] webhooks on the same path (the old unsigned key still loads, with a warning)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from aiohttp import web
from httpkit import ACME_TOKEN, http_client, http_hub_config, local_web_server, running_hub
from hubkit import hub_config, wait_until

from smpphub.router.config import ConfigError, config_from_dict, config_warnings
from smpphub.router.http.tokens import hash_token

ROUTES = [{"prefix": "44", "upstreams": ["uk"]}]
SECRET = "s3cret-for-signing"
ROOT = Path(__file__).resolve().parent.parent


class Receiver:
    """An application's webhook endpoint: answers ``fail_first`` attempts 500, then 200; keeps every request."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.accepted: list[dict] = []
        self.gets: list[str] = []

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if len(self.requests) <= self.fail_first:
            return web.Response(status=500)
        self.accepted.append(json.loads(body))
        return web.Response(status=204)

    async def dlr(self, request: web.Request) -> web.Response:
        self.gets.append(str(request.rel_url))
        return web.Response(text="ok")


@pytest.fixture
async def receiver():
    rec = Receiver()
    async with local_web_server(web.post("/hook", rec.hook), web.get("/dlr", rec.dlr)) as rec.url:
        yield rec


def verify(headers: dict[str, str], body: bytes, secret: str = SECRET) -> bool:
    """What a receiver does: HMAC-SHA256 over "<timestamp>.<body>", compared in constant time."""
    stamp = headers["Smpphub-Timestamp"]
    expected = "v1=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["Smpphub-Signature"])


FAST_RETRY = {"webhook_retry_initial": 0.05, "webhook_retry_max": 0.2}


async def test_receipt_webhook_is_signed_and_retried_after_two_500s(smsc, receiver):
    receiver.fail_first = 2
    config = http_hub_config({"uk": smsc}, ROUTES, http=FAST_RETRY, acme={"webhook_secret": SECRET})
    async with running_hub(config) as hub, http_client(hub) as http:
        body = {"to": "447700900001", "text": "hi", "callback_url": receiver.url + "/hook", "reference": "order-1"}
        async with http.post("/v1/messages", json=body) as resp:
            assert resp.status == 202
            mid = (await resp.json())["messages"][0]["id"]
        await wait_until(lambda: receiver.accepted, what="the receipt webhook accepted")
        assert len(receiver.requests) == 3
        ids = {h["Smpphub-Webhook-Id"] for h, _ in receiver.requests}
        assert ids == {f"r-{mid}"}  # the same id on every attempt: the receiver can de-duplicate
        assert all(verify(h, b) for h, b in receiver.requests)
        assert not verify(receiver.requests[0][0], receiver.requests[0][1] + b" ")
        hook = receiver.accepted[0]
        assert hook["type"] == "receipt" and hook["message_id"] == mid and hook["state"] == "delivered"
        assert hook["reference"] == "order-1" and hook["to"] == "447700900001"
        await wait_until(lambda: hub.deliveries.pending() == 0 and hub.webhooks.pending() == 0,
                         what="nothing owed any more")
        await hub.store.flush()
        row = await hub.store.get(mid)
        assert row is not None and not row.receipt_owed


async def test_account_webhook_url_takes_its_receipts(smsc, receiver):
    config = http_hub_config({"uk": smsc}, ROUTES, http=FAST_RETRY,
                             acme={"webhook_url": receiver.url + "/hook", "webhook_secret": SECRET})
    async with running_hub(config) as hub, http_client(hub) as http:
        async with http.post("/v1/messages", json={"to": "447700900002", "text": "hi"}) as resp:
            mid = (await resp.json())["messages"][0]["id"]
        await wait_until(lambda: receiver.accepted, what="the receipt webhook")
        assert receiver.accepted[0]["message_id"] == mid


async def test_long_mo_arrives_as_one_webhook(smsc, receiver):
    config = http_hub_config({"uk": smsc}, ROUTES, http=FAST_RETRY,
                             acme={"webhook_url": receiver.url + "/hook", "webhook_secret": SECRET},
                             mo_routes=[{"prefix": "777", "account": "acme"}])
    text = "Ответ абонента: " + "длинное сообщение " * 10  # UCS-2, 3 parts
    async with running_hub(config) as hub:
        pdus = smsc.sim.send_mo("447700900099", "777", text)
        assert len(pdus) > 1
        await wait_until(lambda: receiver.accepted, what="the MO webhook")
        await wait_until(lambda: hub.deliveries.pending() == 0 and hub.webhooks.pending() == 0,
                         what="the MO parts released")
        assert len(receiver.accepted) == 1
        hook = receiver.accepted[0]
        assert hook["type"] == "mo" and hook["text"] == text and hook["parts"] == len(pdus)
        assert hook["from"] == "447700900099" and hook["to"] == "777" and hook["complete"] is True
        assert verify(*receiver.requests[0])
        await hub.store.flush()
        assert await hub.store.pending_deliveries() == []


# ---- never lost across a SIGKILL ----------------------------------------------------------------


def _hub_toml(tmp_path: Path, smsc, *, account: str = "", mo_route: str = "") -> Path:
    """A hub.toml for a hub run as a process: fast webhook retries, account acme (plus ``account``'s
    lines), upstream ``smsc``, and one MO route (``mo_route``'s lines; prefix 777 unless they give one)."""
    if "prefix" not in mo_route:
        mo_route = 'prefix = "777"\n' + mo_route
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f"""
[[listeners]]
port = 0
[store]
path = "{tmp_path}/hub.db"
[http]
listen = "127.0.0.1:0"
webhook_retry_initial = 0.05
webhook_retry_max = 0.1
[[accounts]]
system_id = "acme"
password = "pw"
{account}
[[upstreams]]
name = "uk"
host = "127.0.0.1"
port = {smsc.port}
system_id = "hub"
password = "x"
[[routes]]
prefix = "44"
upstreams = ["uk"]
[[mo_routes]]
{mo_route}
""")
    return cfg


async def _start_hub(cfg: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smpphub", "serve", "--config", str(cfg), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "the hub ended before saying where its HTTP API is"
        if line.startswith("smpphub http api on "):
            return proc, line.split()[-1]


async def test_receipt_webhook_survives_sigkill(smsc, receiver, tmp_path):
    receiver.fail_first = 10**6  # the application is down: the webhook stays owed
    cfg = _hub_toml(tmp_path, smsc, account=f"""api_tokens = ["{hash_token(ACME_TOKEN)}"]
webhook_url = "{receiver.url}/hook"
webhook_secret = "{SECRET}"
""", mo_route='account = "acme"')
    import aiohttp

    proc, url = await _start_hub(cfg)
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ACME_TOKEN}"}) as http:
            async with http.post(url + "/v1/messages", json={"to": "447700900003", "text": "kill me"}) as resp:
                assert resp.status == 202
                mid = (await resp.json())["messages"][0]["id"]
        # a webhook attempt means the receipt is durable (it is stored before anything is sent)
        await wait_until(lambda: receiver.requests, timeout=20, what="a first webhook attempt")
        mo_text = "Ответ после перезапуска: " + "часть " * 20  # a long MO, owed too when the hub dies
        smsc.sim.send_mo("447700900099", "777", mo_text)
        await wait_until(lambda: any(b'"mo"' in body for _, body in receiver.requests), timeout=20,
                         what="a first MO webhook attempt")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    assert not receiver.accepted
    receiver.fail_first = 0
    receiver.requests.clear()
    proc, _ = await _start_hub(cfg)
    try:
        await wait_until(lambda: len(receiver.accepted) >= 2, timeout=20, what="the webhooks after the restart")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    by_type = {hook["type"]: hook for hook in receiver.accepted}
    assert by_type["receipt"]["message_id"] == mid and by_type["receipt"]["state"] == "delivered"
    assert by_type["mo"]["text"] == mo_text and by_type["mo"]["complete"] is True
    assert len(receiver.accepted) == 2 and all(verify(*r) for r in receiver.requests)


async def test_the_webhook_queue_is_bounded():
    from smpphub.router.config import config_from_dict
    from smpphub.router.http.webhooks import WebhookSender
    from smpphub.router.store.memory import MemoryStore

    sender = WebhookSender(config_from_dict({"http": {"webhook_queue": 2}}), MemoryStore())
    done: list[bool] = []
    for i in range(3):
        sender._queue_job(_job(f"j{i}", done.append))
    assert sender.pending() == 2 and sender.overflow == 1  # the third waits in the store for the next start
    assert done == []


def _job(key, done):
    from smpphub.router.http.webhooks import _Job

    return _Job(key, "http://127.0.0.1:1/", "secret", b"{}", done, deadline=0.0)


# ---- [[mo_routes]] webhooks ------------------------------------------------------------------------

SHORT_CODE = "5555"


def _mo_route(receiver, secret: str | None = SECRET) -> dict[str, str]:
    route = {"prefix": SHORT_CODE, "webhook": receiver.url + "/hook"}
    if secret is not None:
        route["webhook_secret"] = secret
    return route


async def test_mo_route_webhook_is_signed_and_retried_after_a_500(smsc, receiver):
    receiver.fail_first = 1
    config = hub_config({"uk": smsc}, ROUTES, http=FAST_RETRY, mo_routes=[_mo_route(receiver)])
    async with running_hub(config) as hub:
        smsc.sim.send_mo("447700900099", SHORT_CODE, "hello short code")
        await wait_until(lambda: receiver.accepted, what="the MO webhook accepted")
        assert len(receiver.requests) == 2  # a 500, then the retry
        assert len({h["Smpphub-Webhook-Id"] for h, _ in receiver.requests}) == 1  # the same id each time
        assert all(verify(h, b) for h, b in receiver.requests)
        hook = receiver.accepted[0]
        assert hook["type"] == "mo" and hook["text"] == "hello short code"
        assert hook["from"] == "447700900099" and hook["to"] == SHORT_CODE
        await wait_until(lambda: hub.webhooks.pending() == 0, what="nothing owed any more")
        await hub.store.flush()
        assert await hub.store.pending_deliveries() == []  # settled once answered 2xx


async def test_mo_route_webhook_needs_no_http_listener_and_joins_a_long_mo(smsc, receiver):
    config = hub_config({"uk": smsc}, ROUTES, mo_routes=[_mo_route(receiver)])
    assert config.http is None
    text = "Réponse du client: " + "un long message " * 12
    async with running_hub(config) as hub:
        pdus = smsc.sim.send_mo("447700900098", SHORT_CODE, text)
        assert len(pdus) > 1
        await wait_until(lambda: receiver.accepted, what="the MO webhook")
        await wait_until(lambda: hub.webhooks.pending() == 0, what="the parts released")
        assert len(receiver.accepted) == 1
        assert receiver.accepted[0]["text"] == text and receiver.accepted[0]["parts"] == len(pdus)
        assert verify(*receiver.requests[0])


async def test_mo_route_webhook_without_a_secret_still_works_unsigned_with_a_warning(smsc, receiver):
    config = hub_config({"uk": smsc}, ROUTES, mo_routes=[_mo_route(receiver, secret=None)])
    assert config_warnings(config) == [
        "mo_routes[0].webhook_secret: not set (deprecated): its MO webhooks go unsigned; "
        "set one to have them signed (Smpphub-Signature)"]
    async with running_hub(config):
        smsc.sim.send_mo("447700900097", SHORT_CODE, "legacy")
        await wait_until(lambda: receiver.accepted, what="the MO webhook")
    headers, _ = receiver.requests[0]
    assert "Smpphub-Signature" not in headers and receiver.accepted[0]["text"] == "legacy"


@pytest.mark.parametrize(("route", "error"), [
    ({"prefix": "1", "webhook": "ftp://x"}, "mo_routes[0].webhook: must be an http:// or https:// URL"),
    ({"prefix": "1", "webhook": "http://"}, "mo_routes[0].webhook: must be an http:// or https:// URL"),
    ({"prefix": "1", "account": "acme", "webhook_secret": "s"}, "mo_routes[0].webhook_secret: only with webhook"),
    ({"prefix": "1"}, "mo_routes[0]: give exactly one of account and webhook"),
    ({"prefix": "1", "webhook": "http://x/", "webhook_secret": 5}, "mo_routes[0].webhook_secret"),
])
def test_bad_mo_route_webhook_keys_are_one_line_naming_the_key(route, error):
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"accounts": [{"system_id": "acme", "password": "pw"}],
                          "listeners": [{"port": 0}], "mo_routes": [route]})
    assert error in str(exc.value) and "\n" not in str(exc.value)


async def test_mo_route_webhook_survives_sigkill(smsc, receiver, tmp_path):
    receiver.fail_first = 10**6  # the application is down: the MO stays owed
    cfg = _hub_toml(tmp_path, smsc, mo_route=f"""prefix = "{SHORT_CODE}"
webhook = "{receiver.url}/hook"
webhook_secret = "{SECRET}"
""")
    proc, _ = await _start_hub(cfg)
    try:
        await wait_until(lambda: smsc.sim.bound_systems(), timeout=20, what="the hub bound upstream")
        smsc.sim.send_mo("447700900096", SHORT_CODE, "survive the kill")
        # an attempt means the MO is durable (stored before the upstream's answer and before any attempt)
        await wait_until(lambda: receiver.requests, timeout=20, what="a first MO webhook attempt")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    first_id = receiver.requests[0][0]["Smpphub-Webhook-Id"]
    assert not receiver.accepted
    receiver.fail_first = 0
    receiver.requests.clear()
    proc, _ = await _start_hub(cfg)
    try:
        await wait_until(lambda: receiver.accepted, timeout=20, what="the MO webhook after the restart")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert [hook["text"] for hook in receiver.accepted] == ["survive the kill"]
    headers, body = receiver.requests[-1]
    assert verify(headers, body) and headers["Smpphub-Webhook-Id"] == first_id


def _mo_part(reference: int, total: int, seq: int) -> bytes:
    """A deliver_sm carrying one part of a long MO: UDH concatenation IE 0x00 (8-bit reference)
    written out by hand, as 3GPP TS 23.040 9.2.3.24.1 lays it out."""
    from smppcore import DeliverSm, encode

    udh = bytes([0x05, 0x00, 0x03, reference, total, seq])
    return encode(DeliverSm(source_addr="447700900099", destination_addr="777", esm_class=0x40,
                            short_message=udh + f"part {seq}".encode()))


async def test_pending_counts_each_mo_part_waiting_as_its_group_comes_and_goes(monkeypatch):
    """pending() is exact while long MOs wait for their parts: a group completed, pushed out by
    MO_GROUPS, or given up by its timer becomes one queued webhook in place of its parts."""
    from smppcore import decode
    from smpphub.router.config import config_from_dict
    from smpphub.router.http import webhooks
    from smpphub.router.store.base import Delivery
    from smpphub.router.store.memory import MemoryStore

    monkeypatch.setattr(webhooks, "MO_GROUPS", 2)
    config = config_from_dict({"accounts": [{"system_id": "acme", "password": "pw",
                                             "webhook_url": "http://127.0.0.1:1/hook", "webhook_secret": SECRET}]})
    sender = webhooks.WebhookSender(config, MemoryStore())  # not started: queued jobs stay queued
    done: list[bool] = []

    def part(reference: int, total: int, seq: int) -> None:
        pdu = _mo_part(reference, total, seq)
        sender.send_mo(Delivery(id=reference * 10 + seq, account="acme", pdu=pdu), decode(pdu), done.append)

    steps = [  # (reference, total, seq) -> pending after it
        ((1, 3, 1), 1), ((1, 3, 2), 2),  # group 1 waits with two parts
        ((2, 2, 1), 3),  # group 2 waits with one
        ((1, 3, 3), 2),  # group 1 complete: one webhook queued, group 2's part waits
        ((3, 2, 1), 3),
        ((4, 2, 1), 4),  # group 4 pushes out group 2 (the oldest): its one part is queued
    ]
    for (reference, total, seq), expected in steps:
        if reference == 4:  # the last group gives up waiting for its second part soon
            monkeypatch.setattr(webhooks, "MO_PARTS_TIMEOUT", 0.01)
        part(reference, total, seq)
        assert sender.pending() == expected, (reference, total, seq)
    assert len(sender._queue) == 2 and len(sender._groups) == 2
    await wait_until(lambda: len(sender._groups) == 1, what="group 4 given up")
    assert sender.pending() == 4 and len(sender._queue) == 3  # its one part is queued as it is
    assert done == []
    part(5, 3, 1)
    part(5, 3, 2)
    assert sender.pending() == 6  # three queued, group 3's part, group 5's two
    await sender.stop()
    # the groups' parts wait in the store, not in memory: the three queued jobs are all that is left
    assert sender.pending() == 3 and not sender._groups
