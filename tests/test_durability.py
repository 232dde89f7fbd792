"""Nothing acknowledged is lost: SIGKILL the hub right after the acks, restart it, count.

The hub runs as a real process (``smpphub serve``) with the SQLite store; the
upstream SMSC is a simulator in the test process.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import sys
from pathlib import Path

import pytest
from faultkit import HubProcess, free_port
from hubkit import simulator, wait_until

import smppcore
from smppcore import SubmitSm

HOST = "127.0.0.1"


def write_config(path: Path, hub_port: int, smsc_port: int, db: Path) -> None:
    path.write_text(f"""
retry_initial = 0.05
retry_max = 0.2

[[listeners]]
host = "{HOST}"
port = {hub_port}

[[accounts]]
system_id = "acme"
password = "pw"

[[upstreams]]
name = "smsc"
host = "{HOST}"
port = {smsc_port}
system_id = "hub"
password = "x"
reconnect_initial = 0.05
reconnect_max = 0.2
response_timeout = 5

[[routes]]
prefix = "44"
upstreams = ["smsc"]

[store]
path = "{db}"

[log]
level = "info"
""")


async def submit_all(port: int, n: int, tag: str) -> list[str]:
    async with smppcore.connect(HOST, port, system_id="acme", password="pw", window=50) as client:
        futures = [await client.send(SubmitSm(destination_addr=f"4477{i:08d}", short_message=f"{tag}{i}".encode())) for i in range(n)]
        responses = await asyncio.gather(*futures)
    assert all(r.command_status == 0 for r in responses)
    return [r.message_id for r in responses]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
async def test_acked_messages_survive_sigkill_while_the_upstream_is_down(tmp_path):
    hub_port, smsc_port = free_port(), free_port()
    config = tmp_path / "hub.toml"
    write_config(config, hub_port, smsc_port, tmp_path / "hub.db")
    hub = HubProcess(config, hub_port)
    await hub.start()
    try:
        ids = await submit_all(hub_port, 300, "a")
        hub.signal(signal.SIGKILL)  # right after the last ack; the SMSC never saw any of them
        assert await hub.wait() == -signal.SIGKILL
        smsc = await simulator(listen=f"{HOST}:{smsc_port}")
        try:
            await hub.start()
            await wait_until(lambda: len(smsc.sim.messages) >= 300, timeout=30, what="all acked messages delivered after restart")
            got = collections.Counter(m.payload for m in smsc.sim.messages)
            assert set(got) == {f"a{i}".encode() for i in range(300)}
            assert max(got.values()) == 1  # none of them had been sent before the kill
            assert len(set(ids)) == 300
        finally:
            await hub.terminate()
            await smsc.close()
    finally:
        if hub.running:
            await hub.kill()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
async def test_sigkill_mid_flight_loses_nothing_and_duplicates_only_what_was_in_flight(tmp_path):
    hub_port, smsc_port = free_port(), free_port()
    config = tmp_path / "hub.toml"
    write_config(config, hub_port, smsc_port, tmp_path / "hub.db")
    # a slow SMSC: messages are still in flight upstream when the hub dies
    smsc = await simulator(listen=f"{HOST}:{smsc_port}", submit_latency={"kind": "fixed", "ms": 300})
    hub = HubProcess(config, hub_port)
    try:
        await hub.start()
        await submit_all(hub_port, 400, "b")
        await hub.kill()
        before = len(smsc.sim.messages)
        await hub.start()
        await wait_until(lambda: len({m.payload for m in smsc.sim.messages}) == 400, timeout=30, what="every acked message upstream")
        await hub.terminate()
        got = collections.Counter(m.payload for m in smsc.sim.messages)
        assert set(got) == {f"b{i}".encode() for i in range(400)}
        duplicates = sum(c - 1 for c in got.values())
        # at-least-once: only messages the SMSC had received but the hub had not yet seen answered
        # (at most one window of 100 in flight) may arrive twice
        assert duplicates <= min(before, 100)
    finally:
        if hub.running:
            await hub.kill()
        await smsc.close()


async def test_sigterm_drains_and_exits_0(tmp_path):
    hub_port, smsc_port = free_port(), free_port()
    config = tmp_path / "hub.toml"
    write_config(config, hub_port, smsc_port, tmp_path / "hub.db")
    smsc = await simulator(listen=f"{HOST}:{smsc_port}")
    hub = HubProcess(config, hub_port)
    try:
        await hub.start()
        await submit_all(hub_port, 100, "c")
        assert await hub.terminate() == 0
        # whatever the drain did not send yet is stored, and goes out after a restart, once
        await hub.start()
        await wait_until(lambda: len(smsc.sim.messages) >= 100, timeout=30, what="all 100 upstream")
        assert await hub.terminate() == 0
        got = collections.Counter(m.payload for m in smsc.sim.messages)
        assert set(got) == {f"c{i}".encode() for i in range(100)} and max(got.values()) == 1
    finally:
        if hub.running:
            await hub.kill()
        await smsc.close()
