"""The live dashboard in a real headless Chromium: the page loads from the package, shows
a bind the test makes, and its counters move when the test sends traffic; the screenshot
it takes is the README's docs/dashboard.png (written there when SMPPHUB_SCREENSHOTS=1, so an
ordinary run leaves the checkout clean; otherwise into the test's tmp_path). Without a browser: the event stream's
bounds (token, max clients, one snapshot a second for all, the end at hub stop)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest
from browserkit import browser_page
from httpkit import ACME_TOKEN, ADMIN_TOKEN, bearer, http_hub_config, running_hub
from hubkit import simulator, wait_until

import smppcore
from smpphub.router.http.dashboard import BROADCASTER

ROOT = Path(__file__).resolve().parent.parent
README_SCREENSHOT = ROOT / "docs" / "dashboard.png"
HOST = "127.0.0.1"
WAIT_MS = 20_000  # bound on each wait in the page (a loaded 2-core machine); normally well under a second


@pytest.fixture
async def hub():
    uk, fr = await simulator(), await simulator(receipts={"final_states": {"DELIVRD": 3, "UNDELIV": 1}}, seed=3)
    config = http_hub_config({"carrier-uk": uk, "carrier-fr": fr},
                             [{"prefix": "44", "upstreams": ["carrier-uk", "carrier-fr"]},
                              {"prefix": "33", "upstreams": ["carrier-fr"]}])
    async with running_hub(config) as hub:
        yield hub
    await uk.close()
    await fr.close()


async def test_page_shows_a_bind_and_counters_move_with_traffic(hub, tmp_path):
    async with browser_page() as page:
        problems: list[str] = []  # script errors, and what the page's Content-Security-Policy refused
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        await page.set_viewport_size({"width": 1100, "height": 1000})
        await page.goto(f"{hub.http.url}/dashboard#token={ADMIN_TOKEN}")
        await page.wait_for_selector("#status.live", timeout=WAIT_MS)
        assert "token=" not in page.url  # the token left the address bar
        await page.wait_for_selector("#binds td.empty", timeout=WAIT_MS)

        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme, \
                smppcore.connect(HOST, hub.servers[0].port, system_id="beta", password="pw", bind="tx") as beta:
            await page.wait_for_selector('#binds tr[data-name="acme"] td[data-key="state"]:text("bound_trx")',
                                         timeout=WAIT_MS)
            await page.wait_for_selector('#binds tr[data-name="beta"] td[data-key="state"]:text("bound_tx")',
                                         timeout=WAIT_MS)
            # in rounds a snapshot apart, so the chart has a shape: 12 from acme, 8 from beta
            for round_, (from_acme, from_beta) in enumerate(((2, 1), (4, 2), (6, 5))):
                shown = await page.text_content("#updated")
                for i in range(from_acme):
                    await acme.submit_sm(destination_addr=f"44770090{round_}{i:02d}", short_message=b"hi",
                                         registered_delivery=1)
                for i in range(from_beta):
                    await beta.submit_sm(destination_addr=f"3361234{round_}{i:02d}", short_message=b"salut")
                await page.wait_for_function("(shown) => document.getElementById('updated').textContent != shown",
                                             arg=shown, timeout=WAIT_MS)
            with pytest.raises(smppcore.SmppStatusError):
                await beta.submit_sm(destination_addr="49123", short_message=b"nowhere")
            await page.wait_for_selector('#total-accepted:text("20")', timeout=WAIT_MS)
            await page.wait_for_selector('#accounts tr[data-name="acme"] td[data-key="accepted"]:text("12")',
                                         timeout=WAIT_MS)
            await page.wait_for_selector('#accounts tr[data-name="beta"] td[data-key="rejected"]:text("1")',
                                         timeout=WAIT_MS)
            for _ in range(12):
                await acme.next_message(timeout=10)
            await page.wait_for_selector('#total-delivered:text("12")', timeout=WAIT_MS)
            await page.wait_for_selector('#upstreams tr[data-name="carrier-uk"] td[data-key="mode"]:text("running")',
                                         timeout=WAIT_MS)
            shot = README_SCREENSHOT if os.environ.get("SMPPHUB_SCREENSHOTS") == "1" else tmp_path / "dashboard.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        await page.wait_for_selector("#binds td.empty", timeout=WAIT_MS)  # the binds went away
        assert problems == []


async def test_page_asks_for_the_token_and_refuses_a_wrong_one(hub):
    async with browser_page() as page:
        await page.goto(f"{hub.http.url}/dashboard")
        await page.wait_for_selector("#login:not([hidden])", timeout=WAIT_MS)
        await page.fill("#token", ACME_TOKEN)
        await page.click("#login button")
        await page.wait_for_selector('#login-error:text("HTTP 403")', timeout=WAIT_MS)
        await page.fill("#token", ADMIN_TOKEN)
        await page.click("#login button")
        await page.wait_for_selector("#status.live", timeout=WAIT_MS)


async def test_streams_are_bounded_and_share_one_snapshot_a_second(smsc_free_hub):
    hub = smsc_free_hub
    broadcaster = hub.http.app[BROADCASTER]
    url = f"{hub.http.url}/dashboard/events"
    async with aiohttp.ClientSession() as http:
        for token, status in ((None, 401), (ACME_TOKEN, 403)):
            async with http.get(url, headers=bearer(token) if token else {}) as resp:
                assert resp.status == status
        streams = [await http.get(url, headers=bearer(ADMIN_TOKEN)) for _ in range(2)]
        try:
            assert all(s.status == 200 and s.content_type == "text/event-stream" for s in streams)
            async with http.get(url, headers=bearer(ADMIN_TOKEN)) as third:
                assert third.status == 503
                assert (await third.json())["error"]["code"] == "too_many_dashboards"
            seen: list[list[bytes]] = []
            for s in streams:  # the first snapshot at once, then one a second
                events = []
                for _ in range(3):
                    line = await asyncio.wait_for(s.content.readline(), 10)
                    assert line.startswith(b"data: {")
                    assert await s.content.readline() == b"\n"
                    events.append(line)
                seen.append(events)
            # the same snapshots, their times too, for both (one computed each second for all; two
            # in common at least, should the second stream have joined a tick after the first)
            assert len(set(seen[0])) == 3 and len(set(seen[0]) & set(seen[1])) >= 2
        finally:
            for s in streams:
                s.close()
        await wait_until(lambda: not broadcaster.clients, what="the streams left")


@pytest.fixture
async def smsc_free_hub():
    async with running_hub(http_hub_config({}, [], http={"dashboard_clients": 2}), wait=False) as hub:
        yield hub


async def test_open_streams_end_when_the_hub_stops():
    async with running_hub(http_hub_config({}, []), wait=False) as hub:
        url = f"{hub.http.url}/dashboard/events"
        http = aiohttp.ClientSession()
        stream = await http.get(url, headers=bearer(ADMIN_TOKEN))
        assert stream.status == 200
        loop = asyncio.get_running_loop()
        stopping = loop.time()
    # running_hub's stop returned: the stream held it up for at most about a second
    assert loop.time() - stopping < 4
    await stream.read()  # ended, not cut
    stream.close()
    await http.close()


@pytest.mark.parametrize(("path", "status", "kind"), [
    ("/dashboard", 200, "text/html"),
    ("/dashboard/static/dashboard.js", 200, "text/javascript"),
    ("/dashboard/static/dashboard.css", 200, "text/css"),
    ("/dashboard/static/..%2F__init__.py", 404, "application/json"),
    ("/dashboard/static/nothing.js", 404, "application/json"),
])
async def test_only_the_pages_files_are_served(smsc_free_hub, path, status, kind):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{smsc_free_hub.http.url}{path}") as resp:
            assert resp.status == status
            assert resp.content_type == kind
