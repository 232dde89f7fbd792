"""The simulator's live page in a real headless Chromium (tests/browserkit.py): it loads
from the package, lists a message the test's ESME sends (with its receipt's state), shows
the bind, and its forms work: an MO the ESME receives, failures queued, settings applied,
the record reset, the bind dropped. What the network sent is
shown as text, never run as HTML; a refused form shows the field the API named."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from browserkit import browser_page

import smppcore
from smpphub.simulator.app import RunningSimulator, start
from smpphub.simulator.config import config_from_dict

HOST = "127.0.0.1"
WAIT_MS = 20_000  # bound on each wait in the page (a loaded 2-core machine); normally well under a second


@pytest.fixture
async def running() -> AsyncIterator[RunningSimulator]:
    sim = await start(config_from_dict({"listen": f"{HOST}:0", "http_listen": f"{HOST}:0",
                                        "accounts": [{"system_id": "acme", "password": "secret"}]}))
    try:
        yield sim
    finally:
        await sim.close()


async def test_page_lists_messages_and_injects_an_mo(running: RunningSimulator) -> None:
    received: asyncio.Queue[smppcore.Pdu] = asyncio.Queue()

    def on_message(pdu: smppcore.Pdu) -> int:
        received.put_nowait(pdu)
        return 0

    async with smppcore.connect(HOST, running.port, system_id="acme", password="secret",
                                on_message=on_message) as esme, browser_page() as page:
        await page.goto(f"http://{HOST}:{running.http_port}/")
        await page.wait_for_selector('#status:text("live")', timeout=WAIT_MS)
        await page.wait_for_selector('#binds td:text("acme")', timeout=WAIT_MS)
        await page.wait_for_selector('#binds td:text("bound_trx")', timeout=WAIT_MS)

        await esme.submit_sm(source_addr="Shop", destination_addr="447700900123",
                             short_message=b"Your code is 4821", registered_delivery=1)
        receipt = await asyncio.wait_for(received.get(), 10)
        assert b"stat:DELIVRD" in receipt.short_message
        await page.wait_for_selector('#messages td:text("Your code is 4821")', timeout=WAIT_MS)
        await page.wait_for_selector('#messages td:text("DELIVRD")', timeout=WAIT_MS)
        await page.wait_for_selector('dd[data-counter="accepted"]:text("1")', timeout=WAIT_MS)

        # hostile text is shown as text
        await esme.submit_sm(destination_addr="447700900123", short_message=b"<img src=x onerror=alert(1)>")
        await page.wait_for_selector('#messages td:text("<img src=x onerror=alert(1)>")', timeout=WAIT_MS)
        assert await page.locator("#messages img").count() == 0

        # the MO form
        form = page.locator("#mo-form")
        await form.locator('input[name="source_addr"]').fill("447700900555")
        await form.locator('input[name="destination_addr"]').fill("12345")
        await form.locator('textarea[name="text"]').fill("STOP from the page")
        await form.locator('input[name="system_id"]').fill("acme")
        await form.locator('button[type="submit"]').click()
        mo = await asyncio.wait_for(received.get(), 10)
        assert (mo.source_addr, mo.destination_addr) == ("447700900555", "12345")
        assert mo.short_message == b"STOP from the page"
        await page.wait_for_selector('#mo-form output:text("segments")', timeout=WAIT_MS)

        # a refusal shows the status and the field the API named
        await form.locator('input[name="data_coding"]').fill("3")
        await form.locator('textarea[name="text"]').fill("Привет")
        await form.locator('button[type="submit"]').click()
        await page.wait_for_selector('#mo-form output.error:text("400")', timeout=WAIT_MS)
        assert "data_coding" in await form.locator("output").text_content()
        assert received.empty()

        # fail-next from its form: the ESME's next submit fails
        fail = page.locator("#fail-form")
        await fail.locator('input[name="system_id"]').fill("acme")
        await fail.locator('input[name="status"]').fill("ESME_RTHROTTLED")
        await fail.locator('button[type="submit"]').click()
        await page.wait_for_selector('#fail-form output:text("queued")', timeout=WAIT_MS)
        with pytest.raises(smppcore.SmppStatusError):
            await esme.submit_sm(destination_addr="447700900123", short_message=b"refused")

        # settings from their form: a rule refusing 999...
        settings = page.locator("#settings-form")
        await settings.locator("textarea").fill(json.dumps({"errors": {"rules": [
            {"destination": "^999", "status": "ESME_RINVDSTADR"}]}}))
        await settings.locator('button[type="submit"]').click()
        await page.wait_for_selector('#settings-form output:text("ESME_RINVDSTADR")', timeout=WAIT_MS)
        with pytest.raises(smppcore.SmppStatusError) as info:
            await esme.submit_sm(destination_addr="999123", short_message=b"refused by the page's rule")
        assert info.value.response.command_status == smppcore.CommandStatus.ESME_RINVDSTADR

        # reset empties the list; drop closes the ESME's connection
        await page.locator("#reset-form button").click()
        await page.wait_for_function("document.querySelectorAll('#messages tbody tr').length === 0", timeout=WAIT_MS)
        await page.locator('#binds button:text("drop")').click()
        await asyncio.wait_for(asyncio.shield(esme.closed), 10)
        await page.wait_for_function("document.querySelectorAll('#binds tbody tr').length === 0", timeout=WAIT_MS)
