"""Test kit for the simulator's tests: a simulator on a free port, a client bound to it, pipelined sends."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator

import smppcore
from smpphub.simulator.app import RunningSimulator, start
from smpphub.simulator.config import config_from_dict

HOST = "127.0.0.1"
TO = "447700900123"


@contextlib.asynccontextmanager
async def simulator(**config: Any) -> AsyncIterator[RunningSimulator]:
    """A simulator with ``config`` (the keys of simulator.toml) on a free port."""
    config.setdefault("listen", f"{HOST}:0")
    running = await start(config_from_dict(config), port=0)
    try:
        yield running
    finally:
        await running.close()


def connect(sim: RunningSimulator, **kw: Any):
    kw.setdefault("system_id", "esme")
    kw.setdefault("password", "pw")
    return smppcore.connect(HOST, sim.port, **kw)


async def pipeline(client: smppcore.Client, pdus: list) -> list:
    """Send every PDU keeping the window full; the responses (or exceptions), in order."""
    futures = [await client.send(p) for p in pdus]
    return await asyncio.gather(*futures, return_exceptions=True)
