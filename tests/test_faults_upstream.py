"""Upstream faults against a real hub process: an SMSC that drops its connection mid-window,
one that answers nothing, one that answers every error status there is, one that throttles.

Each test ends with the reconciliation of tests/faultkit.py: everything acked is
delivered upstream or failed with a receipt, nothing is lost, and duplicates stay
within what was in flight when the fault struck.
"""

from __future__ import annotations

from faultkit import Esme, Upstream, payloads, reconcile, settle, start_hub, upstream_counts
from hubkit import simulator, wait_until

from smppcore import CommandStatus, MessageState
from smpphub.router.dispatch import TEMPORARY_STATUSES


async def test_an_upstream_that_drops_its_connection_mid_window(tmp_path):
    # answers come 5-30 ms late, so a drop always leaves submits in flight, their answers lost
    smsc = await simulator(submit_latency={"kind": "uniform", "min_ms": 5, "max_ms": 30},
                           chaos={"drop_probability": 0.01}, seed=7)
    window = 20
    hub = await start_hub(tmp_path, [Upstream(name="smsc", port=smsc.port, window=window)])
    esme = Esme(hub.port)
    try:
        await esme.submit(payloads("d", 800))
        assert len(esme.acked) == 800
        result = await settle([esme], [smsc])
        drops = smsc.sim.stats.dropped_connections
        assert drops >= 2, "the fault never happened"
        assert result.delivered + result.failed == result.acked == 800 and not result.lost, result.explain()
        assert result.duplicates <= drops * window, result.explain()
    finally:
        await esme.close()
        await hub.terminate()
        await smsc.close()


async def test_an_upstream_that_answers_nothing_is_failed_over(tmp_path):
    mute = await simulator(submit_latency={"kind": "fixed", "ms": 600_000})  # accepts, never answers in time
    backup = await simulator()
    window = 10
    hub = await start_hub(tmp_path, [Upstream(name="mute", port=mute.port, window=window, response_timeout=0.5,
                                              max_attempts=1),
                                     Upstream(name="backup", port=backup.port)])
    esme = Esme(hub.port)
    try:
        await esme.submit(payloads("n", 100))
        assert len(esme.acked) == 100
        # delivered means at the backup: the mute SMSC's records are what it never answered
        result = await settle([esme], [backup])
        assert result.delivered == result.acked == 100 and not result.lost, result.explain()
        unanswered = upstream_counts([mute])
        assert unanswered, "the fault never happened"
        assert reconcile([esme], upstream_counts([mute, backup])).duplicates == sum(unanswered.values())
        assert max(unanswered.values()) == 1  # each was tried there once (max_attempts = 1), then failed over
    finally:
        await esme.close()
        await hub.terminate()
        await mute.close()
        await backup.close()


ALL_ERRORS = [s for s in CommandStatus if s != CommandStatus.ESME_ROK]


async def test_every_error_status_temporary_ones_retried_permanent_ones_receipted(tmp_path):
    # each status owns a destination prefix; temporary ones fire half the time (a retry gets through),
    # permanent ones always
    rules = [{"destination": f"^447{i:03d}", "status": s.name,
              "probability": 0.5 if s in TEMPORARY_STATUSES else 1.0} for i, s in enumerate(ALL_ERRORS)]
    smsc = await simulator(errors={"rules": rules}, seed=11)
    hub = await start_hub(tmp_path, [Upstream(name="smsc", port=smsc.port, max_attempts=5)])
    esme = Esme(hub.port)
    per_status = 4
    try:
        await esme.connect()
        for i, status in enumerate(ALL_ERRORS):
            await esme.submit(payloads(f"e{status.value:x}-", per_status), dest=f"447{i:03d}{{:05d}}")
        assert len(esme.acked) == per_status * len(ALL_ERRORS)
        result = await settle([esme], [smsc])
        assert not result.lost and result.duplicates == 0, result.explain()
        upstream = upstream_counts([smsc])
        for status in ALL_ERRORS:
            mine = {p: mid for p, mid in esme.acked.items() if p.startswith(f"e{status.value:x}-".encode())}
            if status in TEMPORARY_STATUSES:
                assert all(upstream[p] == 1 for p in mine), f"{status.name}: retried until accepted, once"
            else:
                assert not any(upstream[p] for p in mine), status.name
                assert {esme.receipts.get(mid) for mid in mine.values()} == {MessageState.UNDELIVERABLE}, status.name
        assert result.acked == result.delivered + result.failed
        temporary = sum(1 for s in ALL_ERRORS if s in TEMPORARY_STATUSES)
        assert result.failed == per_status * (len(ALL_ERRORS) - temporary)
    finally:
        await esme.close()
        await hub.terminate()
        await smsc.close()


async def test_a_throttling_upstream_gets_everything_once_at_its_pace(tmp_path):
    smsc = await simulator(throttle={"per_bind": 200, "status": "ESME_RTHROTTLED"})
    hub = await start_hub(tmp_path, [Upstream(name="smsc", port=smsc.port, max_attempts=50)])
    esme = Esme(hub.port)
    try:
        await esme.submit(payloads("t", 600))
        assert len(esme.acked) == 600
        result = await settle([esme], [smsc])
        assert smsc.sim.stats.throttled > 0, "the fault never happened"
        assert result.delivered == 600 and result.duplicates == 0 and not result.lost, result.explain()
        await wait_until(lambda: len(esme.receipts) == 600, timeout=20, what="a receipt for every message")
        assert set(esme.receipts.values()) == {MessageState.DELIVERED}
    finally:
        await esme.close()
        await hub.terminate()
        await smsc.close()
