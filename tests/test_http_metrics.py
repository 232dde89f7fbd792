"""GET /metrics: Prometheus text that prometheus_client's own parser reads, counters that
move by exactly the messages sent, and a registry per hub (two hubs keep their numbers)."""

from __future__ import annotations

import pytest
from aiohttp import web
from httpkit import ACME_TOKEN, http_client, http_hub_config, running_hub
from hubkit import wait_until
from prometheus_client.parser import text_string_to_metric_families

import smppcore

HOST = "127.0.0.1"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, by (name, sorted labels), parsed by prometheus_client."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(hub) -> dict:
    async with http_client(hub, token=None) as http:
        async with http.get("/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return samples(await resp.text())


async def test_counters_move_by_exactly_the_messages_sent(smsc):
    config = http_hub_config({"uk": smsc}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as hub:
        before = await scrape(hub)
        assert value(before, "smpphub_upstream_binds_up", upstream="uk") == 1
        assert value(before, "smpphub_upstream_mode", upstream="uk", mode="running") == 1
        n = 7
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
            for i in range(n):
                await acme.submit_sm(destination_addr=f"4477009000{i:02d}", short_message=b"hi", registered_delivery=1)
            with pytest.raises(smppcore.SmppStatusError):
                await acme.submit_sm(destination_addr="4912345", short_message=b"no route")
            for _ in range(n):
                await acme.next_message(timeout=10)  # the receipts
            await wait_until(lambda: hub.deliveries.delivered >= n, what="receipts acknowledged")
            after = await scrape(hub)
            assert value(after, "smpphub_binds", account="acme") == 1
        diff = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}

        def moved(name: str, **labels: str) -> float:
            return diff.get((name, tuple(sorted(labels.items()))), 0.0)

        assert moved("smpphub_messages_accepted_total", account="acme") == n
        assert moved("smpphub_messages_sent_total", account="acme") == n
        assert moved("smpphub_messages_rejected_total", account="acme", status="ESME_RINVDSTADR") == 1
        assert moved("smpphub_messages_final_total", account="acme", state="delivered") == n
        assert moved("smpphub_upstream_answers_total", upstream="uk", status="ESME_ROK") == n
        assert moved("smpphub_receipts_in_total") == n
        assert moved("smpphub_delivered_to_esme_total") == n
        assert moved("smpphub_submit_latency_seconds_count") == n
        assert moved("smpphub_receipt_latency_seconds_count") == n
        assert moved("smpphub_store_commit_messages_sum") == n
        assert moved("smpphub_messages_accepted_total", account="beta") == 0
        assert value(after, "smpphub_account_queue_depth", account="acme") == 0


async def test_two_hubs_keep_their_own_numbers(smsc):
    config = http_hub_config({"uk": smsc}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as one, running_hub(config) as two:
        async with smppcore.connect(HOST, one.servers[0].port, system_id="beta", password="pw") as beta:
            await beta.submit_sm(destination_addr="447700900111", short_message=b"x")
        assert value(await scrape(one), "smpphub_messages_accepted_total", account="beta") == 1
        assert value(await scrape(two), "smpphub_messages_accepted_total", account="beta") == 0


async def test_webhook_deliveries_and_retries_are_counted(smsc):
    answers = [500, 200]
    got: list[bytes] = []

    async def receiver(request: web.Request) -> web.Response:
        got.append(await request.read())
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", receiver)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        config = http_hub_config({"uk": smsc}, [{"prefix": "44", "upstreams": ["uk"]}],
                                 http={"webhook_retry_initial": 0.05}, acme={"webhook_secret": "s3cret"})
        async with running_hub(config) as hub:
            async with http_client(hub, token=ACME_TOKEN) as http:
                body = {"to": "+447700900123", "text": "hook", "callback_url": f"http://{HOST}:{port}/hook"}
                async with http.post("/v1/messages", json=body) as resp:
                    assert resp.status == 202, await resp.text()
            await wait_until(lambda: len(got) == 2, what="the webhook answered 500, then 200")
            await wait_until(lambda: hub.webhooks.sent == 1, what="the webhook counted")
            after = await scrape(hub)
    finally:
        await runner.cleanup()
    assert value(after, "smpphub_webhook_delivered_total") == 1
    assert value(after, "smpphub_webhook_retries_total") == 1
    assert value(after, "smpphub_webhook_dropped_total") == 0


async def test_messages_over_http_count_like_smpp_ones(smsc):
    config = http_hub_config({"uk": smsc}, [{"prefix": "44", "upstreams": ["uk"]}])
    async with running_hub(config) as hub:
        before = await scrape(hub)
        async with http_client(hub, token=ACME_TOKEN) as http:
            body = {"messages": [{"to": "+447700900123", "text": "one"}, {"to": "+4912345", "text": "no route"},
                                 {"to": ["+447700900124", "+447700900125"], "text": "two more"}]}
            async with http.post("/v1/messages", json=body) as resp:
                answer = await resp.json()
        assert (answer["accepted"], answer["rejected"]) == (3, 1), answer
        await wait_until(lambda: len(smsc.sim.messages) == 3, what="the three sent")
        after = await scrape(hub)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("smpphub_messages_accepted_total", account="acme") == 3
    assert moved("smpphub_messages_rejected_total", account="acme", status="ESME_RINVDSTADR") == 1
    assert moved("smpphub_upstream_answers_total", upstream="uk", status="ESME_ROK") == 3
