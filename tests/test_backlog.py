"""Messages the hub does not hold in memory (router/backlog.py): spilled to the store, taken back
as room frees, streamed in after a restart; the ESME side refuses new submits past max_backlog."""

from __future__ import annotations

import asyncio

from hubkit import hub_config, running_hub, simulator, wait_until
from netkit import free_port

import smppcore
from smppcore import CommandStatus, MessageState
from smpphub.router.backlog import Backlog
from smpphub.router.hub import open_store
from smpphub.router.lifecycle import MessageRow, State
from smpphub.router.store.memory import MemoryStore

HOST = "127.0.0.1"


class Holder:
    """A dispatcher stand-in: holds what it is given, up to nothing in particular."""

    def __init__(self) -> None:
        self.rows: list[MessageRow] = []

    def held(self) -> int:
        return len(self.rows)

    def take_back(self, rows: list[MessageRow]) -> None:
        self.rows.extend(rows)


async def test_the_backlog_hands_back_earliest_due_first_within_the_limit_and_the_horizon() -> None:
    store = MemoryStore()
    now = 1000.0
    rows = [MessageRow(id=f"m{i}", account="a", pdu=b"", route=["u"], due=now + i, created_at=now) for i in range(30)]
    await store.add_messages(rows)
    holder = Holder()
    backlog = Backlog(store, holder, max_held=8, horizon=10.0, clock=lambda: now)
    backlog.spill([r.id for r in rows])
    assert backlog.size == 30 and backlog.full() is False and backlog.too_far(now + 11) and not backlog.too_far(now + 9)
    backlog.refill()
    await wait_until(lambda: not backlog._refilling, what="refill done")
    assert [r.id for r in holder.rows] == [f"m{i}" for i in range(8)]  # the limit, earliest due first
    assert backlog.size == 22 and backlog.full()
    holder.rows.clear()
    backlog.refill()
    await wait_until(lambda: not backlog._refilling, what="refill done")
    assert [r.id for r in holder.rows] == ["m8", "m9"]  # only those due within the horizon (before now + 10)
    assert backlog.size == 20
    await backlog.stop()


async def test_a_full_hub_keeps_at_most_max_held_in_memory_and_loses_nothing() -> None:
    port = free_port()
    config = hub_config({"later": port}, [{"prefix": "44", "upstreams": ["later"]}], max_held=40)
    async with running_hub(config, wait=False) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw", window=100) as esme:
            futures = [await esme.send(smppcore.SubmitSm(destination_addr=f"4477009{i:05d}", short_message=b"%d" % i))
                       for i in range(400)]
            ids = [(await f).message_id for f in futures]
            assert len(set(ids)) == 400
            assert len(hub.dispatcher.table) <= 40 and hub.status()["backlog"] == 360
            smsc = await simulator(listen=f"{HOST}:{port}")
            try:
                await wait_until(lambda: len(smsc.sim.submits) == 400, timeout=20, what="all 400 sent")
                await wait_until(lambda: hub.status()["backlog"] == 0 and hub.status()["held"] == 0,
                                 what="backlog drained")
                sent = sorted(int(s.pdu.short_message) for s in smsc.sim.submits)
                assert sent == list(range(400))  # each exactly once
            finally:
                await smsc.close()


async def test_a_message_scheduled_far_ahead_waits_in_the_store_only() -> None:
    smsc = await simulator()
    try:
        config = hub_config({"uk": smsc}, [{"prefix": "44", "upstreams": ["uk"]}], hold_horizon=5)
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as esme:
                later = await esme.submit_sm(destination_addr="447700900001", schedule_delivery_time="000001000000000R")
                soon = await esme.submit_sm(destination_addr="447700900002", schedule_delivery_time="000000000002000R")
                assert later.message_id not in hub.dispatcher.table  # due in an hour: the store only
                assert soon.message_id in hub.dispatcher.table
                assert hub.status()["backlog"] == 1
                query = await esme.request(smppcore.QuerySm(message_id=later.message_id))
                assert query.message_state == MessageState.ENROUTE
                stored = await hub.store.get(later.message_id)
                assert stored is not None and stored.state is State.SCHEDULED
                await wait_until(lambda: len(smsc.sim.submits) == 1, what="the soon one sent")
    finally:
        await smsc.close()


async def test_a_restart_streams_its_backlog_instead_of_loading_it_whole(tmp_path) -> None:
    port = free_port()
    config = hub_config({"later": port}, [{"prefix": "44", "upstreams": ["later"]}], max_held=25,
                        store={"backend": "sqlite", "path": str(tmp_path / "hub.db")})
    async with running_hub(config, store=open_store(config), wait=False) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw", window=100) as esme:
            futures = [await esme.send(smppcore.SubmitSm(destination_addr=f"4477009{i:05d}", short_message=b"%d" % i))
                       for i in range(300)]
            await asyncio.gather(*futures)
    async with running_hub(config, store=open_store(config), wait=False) as hub:
        assert hub.status()["backlog"] + hub.status()["held"] == 300
        await wait_until(lambda: hub.status()["held"] > 0, what="the first ones taken back")
        assert hub.status()["held"] <= 25
        smsc = await simulator(listen=f"{HOST}:{port}")
        try:
            await wait_until(lambda: len(smsc.sim.submits) == 300, timeout=20, what="all 300 sent after the restart")
            assert sorted(int(s.pdu.short_message) for s in smsc.sim.submits) == list(range(300))
        finally:
            await smsc.close()


async def test_past_max_backlog_submits_are_refused_with_msgqful() -> None:
    port = free_port()
    config = hub_config({"later": port}, [{"prefix": "44", "upstreams": ["later"]}], max_held=5, max_backlog=10)
    async with running_hub(config, wait=False) as hub:
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as esme:
            answers = []
            for i in range(20):
                fut = await esme.send(smppcore.SubmitSm(destination_addr=f"4477009{i:05d}"))
                answers.append((await fut).command_status)
            assert answers.count(0) == 15  # 5 held, 10 in the store
            assert answers[15:] == [CommandStatus.ESME_RMSGQFUL] * 5
            assert hub.status()["backlog"] == 10
