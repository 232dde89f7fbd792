"""pytest plugin shipped with smpphub: a simulated SMSC per test.

Installing smpphub registers this plugin (entry point ``pytest11``). It gives:

- ``smsc``: an async fixture (needs pytest-asyncio) running the simulator on the
  test's own event loop, on a free port of 127.0.0.1;
- ``smsc_sync``: the same in a background thread, for synchronous clients;
- ``smsc_config``: the configuration dict both use (override it in a conftest),
  updated by ``@pytest.mark.smsc(**config)`` on a test.

::

    @pytest.mark.smsc(errors={"rules": [{"destination": "999$", "status": "ESME_RINVDSTADR"}]})
    async def test_rejects(smsc):
        async with smppcore.connect(smsc.host, smsc.port, system_id="me", password="pw") as c:
            ...
        await smsc.wait_for_messages(1)
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

__all__ = ["SmscFixture", "SyncSmscFixture"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "smsc(**config): configuration of the smsc / smsc_sync simulator for this test")


class SmscFixture:
    """A running simulator and what a test asks of it."""

    def __init__(self, running: Any) -> None:
        self._running = running
        self.sim = running.sim

    @property
    def host(self) -> str:
        return self._running.host

    @property
    def port(self) -> int:
        return self._running.port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def config(self):
        return self.sim.config

    @property
    def stats(self):
        return self.sim.stats

    @property
    def messages(self) -> list:
        """Whole messages received (long ones reassembled), oldest first."""
        return list(self.sim.messages)

    @property
    def submits(self) -> list:
        """Every accepted submit (one per segment), with its message_id and PDU."""
        return list(self.sim.submits)

    @property
    def receipts(self) -> list:
        return list(self.sim.receipts)

    @property
    def mo_sent(self) -> list:
        return list(self.sim.mo_sent)

    async def wait_for_messages(self, n: int, timeout: float = 10.0) -> list:
        return await self.sim.wait_for_messages(n, timeout)

    async def send_mo(self, source_addr: str, destination_addr: str, text: str | bytes, *, system_id: str | None = None, data_coding: int | None = None) -> list:
        return self.sim.send_mo(source_addr, destination_addr, text, system_id=system_id, data_coding=data_coding)

    def fail_next(self, status: int | str, count: int = 1) -> None:
        self.sim.fail_next(status, count)

    def clear(self) -> None:
        self.sim.clear()


class SyncSmscFixture(SmscFixture):
    """The simulator on its own loop in a thread; helpers block instead of awaiting."""

    def __init__(self, running: Any, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        super().__init__(running)
        self._loop = loop
        self._thread = thread

    def _call(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout + 1)

    def _run(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` on the simulator's loop (its records change there), its result or exception here."""
        if threading.current_thread() is self._thread:
            return fn(*args)

        async def go() -> Any:
            return fn(*args)

        return self._call(go(), 5)

    @property
    def messages(self) -> list:
        return self._run(list, self.sim.messages)

    @property
    def submits(self) -> list:
        return self._run(list, self.sim.submits)

    @property
    def receipts(self) -> list:
        return self._run(list, self.sim.receipts)

    @property
    def mo_sent(self) -> list:
        return self._run(list, self.sim.mo_sent)

    @property
    def stats(self):
        """A copy of the counters, taken on the simulator's loop."""
        import msgspec

        return self._run(lambda s: msgspec.structs.replace(s, rejected=dict(s.rejected)), self.sim.stats)

    def clear(self) -> None:
        self._run(self.sim.clear)

    def wait_for_messages(self, n: int, timeout: float = 10.0) -> list:  # type: ignore[override]
        return self._call(self.sim.wait_for_messages(n, timeout), timeout)

    def send_mo(self, source_addr: str, destination_addr: str, text: str | bytes, *, system_id: str | None = None, data_coding: int | None = None) -> list:  # type: ignore[override]
        return self._run(lambda: self.sim.send_mo(source_addr, destination_addr, text, system_id=system_id, data_coding=data_coding))

    def fail_next(self, status: int | str, count: int = 1) -> None:
        self._run(self.sim.fail_next, status, count)  # done (or refused: ValueError) when this returns


def _build_config(request: pytest.FixtureRequest, base: dict[str, Any]):
    from .config import ConfigError, config_from_dict

    data = dict(base)
    marker = request.node.get_closest_marker("smsc")
    if marker is not None:
        data.update(marker.kwargs)
    data["listen"] = "127.0.0.1:0"
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        problem = str(exc)
    # outside the except block: the report is this one line, not a chain of two exceptions
    pytest.fail(f"smsc configuration: {problem}", pytrace=False)


@pytest.fixture
def smsc_config() -> dict[str, Any]:
    """The simulator configuration (a dict, as in simulator.toml); override to change it."""
    return {}


@pytest.fixture
def smsc_sync(request: pytest.FixtureRequest, smsc_config: dict[str, Any]):
    from .app import start

    config = _build_config(request, smsc_config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="smpphub-simulator", daemon=True)
    thread.start()
    running = asyncio.run_coroutine_threadsafe(start(config, port=0), loop).result(10)
    try:
        yield SyncSmscFixture(running, loop, thread)
    finally:
        asyncio.run_coroutine_threadsafe(running.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - only the synchronous fixture then
    pytest_asyncio = None

if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def smsc(request: pytest.FixtureRequest, smsc_config: dict[str, Any]):
        from .app import start

        config = _build_config(request, smsc_config)
        running = await start(config, port=0)
        try:
            yield SmscFixture(running)
        finally:
            await running.close()
