"""Test kit for the hub: simulators as upstream SMSCs and a hub wired to them, on free ports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from smpphub.router.config import config_from_dict
from smpphub.router.hub import Hub
from smpphub.router.store.memory import MemoryStore
from smpphub.simulator.app import RunningSimulator
from smpphub.simulator.app import start as start_simulator
from smpphub.simulator.config import config_from_dict as simulator_config


async def simulator(**config: Any) -> RunningSimulator:
    """A simulator on a free port, or on ``listen`` when given (to revive one on its old port)."""
    return await start_simulator(simulator_config(config), port=None if "listen" in config else 0)


class Listening(Protocol):
    """A simulator as the hub's config needs it: a RunningSimulator, or the simulator plugin's smsc fixture."""

    @property
    def port(self) -> int: ...


def hub_config(upstreams: dict[str, Listening | int], routes: list[dict], **extra: Any):
    """A hub config: accounts acme/beta (password pw), the given upstreams (simulators or bare ports) and routes."""
    data: dict[str, Any] = {
        "listeners": [{"host": "127.0.0.1", "port": 0}],
        "accounts": [{"system_id": "acme", "password": "pw"}, {"system_id": "beta", "password": "pw"}],
        "upstreams": [
            {"name": name, "host": "127.0.0.1", "port": sim if isinstance(sim, int) else sim.port, "system_id": "hub",
             "password": "x", "reconnect_initial": 0.05, "reconnect_max": 0.2, "response_timeout": 5}
            for name, sim in upstreams.items()
        ],
        "routes": routes,
        "retry_initial": 0.05,
        "retry_max": 0.5,
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return config_from_dict(data)


@contextlib.asynccontextmanager
async def running_hub(config, store=None, wait: bool = True) -> AsyncIterator[Hub]:
    hub = Hub(config, store=store if store is not None else MemoryStore())
    await hub.start()
    try:
        if wait:
            await hub.wait_ready(10)
        yield hub
    finally:
        await hub.stop(timeout=2)


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.01)
