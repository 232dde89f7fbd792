"""ESMEs that vanish (TCP reset, no unbind) against a real hub process: with receipts still
pending upstream, and with a window of submits in flight.

Receipts that find no receiver bound are held durably and delivered, each once, when
the ESME binds again. Submits in flight when the ESME vanished are either stored and
sent (the ESME never saw the ack: it will submit again, at-least-once) or not stored
at all; nothing the ESME saw acked is lost.
"""

from __future__ import annotations

import asyncio

from faultkit import Esme, Upstream, payloads, settle, start_hub
from hubkit import simulator, wait_until

from smppcore import MessageState


async def test_an_esme_that_vanishes_with_receipts_pending_gets_each_once_when_it_returns(tmp_path):
    smsc = await simulator(receipts={"delay": {"kind": "uniform", "min_ms": 100, "max_ms": 400}})
    hub = await start_hub(tmp_path, [Upstream(name="smsc", port=smsc.port)])
    esme = Esme(hub.port)
    n = 300
    try:
        await esme.connect()
        await esme.submit(payloads("v", n))
        assert len(esme.acked) == n
        early = len(esme.receipts)
        esme.vanish()  # most receipts are still to come from the SMSC
        assert early < n
        await wait_until(lambda: smsc.sim.stats.receipts_acked >= n, timeout=30, what="the hub took every receipt")
        await esme.connect()
        await wait_until(lambda: len(esme.receipts) == n, timeout=30, what="every receipt once the ESME returned")
        assert set(esme.receipts.values()) == {MessageState.DELIVERED}
        # one delivery each: those before the vanish were acknowledged, the rest were held
        assert max(esme.receipts_seen.values()) == 1
        result = await settle([esme], [smsc])
        assert result.delivered == n and result.duplicates == 0 and not result.lost, result.explain()
    finally:
        await esme.close()
        await hub.terminate()
        await smsc.close()


async def test_esmes_that_vanish_mid_window_lose_nothing_they_saw_acked(tmp_path):
    smsc = await simulator()
    hub = await start_hub(tmp_path, [Upstream(name="smsc", port=smsc.port)])
    esmes = [Esme(hub.port, window=50) for _ in range(3)]
    try:
        for round_ in range(3):
            for esme in esmes:
                await esme.connect()
            streams = [asyncio.ensure_future(e.submit(payloads(f"w{round_}-{i}-", 400))) for i, e in enumerate(esmes)]
            target = sum(len(e.acked) for e in esmes) + 300
            await wait_until(lambda t=target: sum(len(e.acked) for e in esmes) >= t, timeout=30, what="acks flowing")
            for esme in esmes:
                esme.vanish()  # a window of submits in flight, some stored, some not
            await asyncio.gather(*streams)
        result = await settle(esmes, [smsc])
        assert not result.lost and result.delivered == result.acked and result.duplicates == 0, result.explain()
        assert result.acked < 3 * 3 * 400, "nothing was in flight when they vanished"
        # the hub is still whole: a new bind submits and is answered
        fresh = Esme(hub.port)
        await fresh.submit(payloads("after", 10))
        assert len(fresh.acked) == 10
        await fresh.close()
    finally:
        await hub.terminate()
        await smsc.close()
