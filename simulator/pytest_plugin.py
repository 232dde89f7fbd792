"""pytest plugin shipped with smpphub: a simulated SMSC per test.

Installing smpphub registers this plugin (entry point ``pytest11``). It gives:

- ``smsc``: an async fixture (needs pytest-asyncio) running the simulator on the
  test's own event loop, on a free port of 127.0.0.1. It is declared with
  ``pytest_asyncio.fixture``, so it works in pytest-asyncio's default strict mode (the
  test itself says ``@pytest.mark.asyncio``) and in auto mode alike;
- ``smsc_sync``: the same in a background thread, for synchronous clients;
- ``smsc_config``: the configuration dict both use (override it in a conftest),
  updated by ``@pytest.mark.smsc(**config)`` on a test.

Every pytest run of every project with smpphub installed loads this module, most of
them never asking for a simulator: so it imports nothing of smpphub, smppcore or
asyncio at load time, only when a fixture runs (pytest-asyncio, when installed, is
loaded by pytest anyway).

::

    @pytest.mark.asyncio
    @pytest.mark.smsc(errors={"rules": [{"destination": "999$", "status": "ESME_RINVDSTADR"}]})
    async def test_rejects(smsc):
        async with smppcore.connect(smsc.host, smsc.port, system_id="me", password="pw") as c:
            ...
        await smsc.wait_for_messages(1)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    import asyncio
    import threading

    from smppcore import Pdu

    from .app import RunningSimulator
    from .config import SimulatorConfig
    from .control import BindInfo, Control, FailNextRequest, FailNextResult, MessageView, SettingsPatch, WaitQuery
    from .records import Message, Stats, Submit

__all__ = ["SmscFixture", "SyncSmscFixture"]

T = TypeVar("T")

#: what ``smsc_config`` and ``@pytest.mark.smsc`` hold: the keys of simulator.toml
ConfigDict = dict[str, Any]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "smsc(**config): configuration of the smsc / smsc_sync simulator for this test")


class SmscFixture:
    """A running simulator and what a test asks of it.

    The steering methods (``fail_next``, ``update_settings``, ``binds``, ``drop``,
    ``hang``, ``reset``, ``wait_for``) are the HTTP control API's operations
    (:class:`~smpphub.simulator.control.Control`): the same checks, the same answers,
    a refusal raised as ``ControlError`` (``WaitTimeout``, a TimeoutError, for ``wait_for``).
    """

    def __init__(self, running: RunningSimulator) -> None:
        self._running = running
        self.sim = running.sim
        self.control: Control = running.control

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
    def tls_port(self) -> int | None:
        """The TLS listener's port (configured with ``tls={"cert": ..., "key": ...}``), else None."""
        return self._running.tls_port

    @property
    def http_port(self) -> int | None:
        """The HTTP port (the page, the record, the control API), when ``http_listen`` is set."""
        return self._running.http_port

    @property
    def config(self) -> SimulatorConfig:
        return self.sim.config

    @property
    def stats(self) -> Stats:
        return self.sim.stats

    @property
    def messages(self) -> list[Message]:
        """Whole messages received (long ones reassembled), oldest first."""
        return list(self.sim.messages)

    @property
    def submits(self) -> list[Submit]:
        """Every accepted submit (one per segment), with its message_id and PDU."""
        return list(self.sim.submits)

    @property
    def receipts(self) -> list[Pdu]:
        return list(self.sim.receipts)

    @property
    def mo_sent(self) -> list[Pdu]:
        return list(self.sim.mo_sent)

    async def wait_for_messages(self, n: int, timeout: float = 10.0) -> list[Message]:
        return await self.sim.wait_for_messages(n, timeout)

    async def send_mo(
        self, source_addr: str, destination_addr: str, text: str | bytes, *,
        system_id: str | None = None, data_coding: int | None = None,
    ) -> list[Pdu]:
        return self.sim.send_mo(source_addr, destination_addr, text, system_id=system_id, data_coding=data_coding)

    def fail_next(self, status: int | str, count: int = 1, *, system_id: str | None = None) -> FailNextResult:
        """The next ``count`` submits (of ``system_id``, or anyone's) are answered with ``status``."""
        return self.control.fail_next(_fail_request(status, count), system_id)

    def update_settings(self, **sections: Any) -> None:
        """Replace sections of the running configuration (submit_latency, throttle, errors,
        receipts, network), given as simulator.toml writes them: ``update_settings(throttle={"total": 50})``."""
        self.control.update_settings(_settings_patch(sections))

    def binds(self) -> list[BindInfo]:
        return self.control.binds()

    def drop(self, bind_id: int) -> BindInfo:
        return self.control.drop(bind_id)

    def hang(self, bind_id: int) -> BindInfo:
        return self.control.hang(bind_id)

    def reset(self) -> None:
        self.control.reset()

    def clear(self) -> None:
        self.sim.clear()

    async def wait_for(self, to: str | None = None, text: str | None = None, timeout: float = 10.0) -> MessageView:
        """The newest message to ``to`` / whose text matches the regex ``text``, waiting for
        it to arrive if none has (WaitTimeout after ``timeout``)."""
        return await self.control.wait(_wait_query(to, text, timeout))


class SyncSmscFixture(SmscFixture):
    """The simulator on its own loop in a thread; helpers block instead of awaiting.

    The records change on the simulator's loop, so every read is taken there too.
    """

    def __init__(self, running: RunningSimulator, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        super().__init__(running)
        self._loop = loop
        self._thread = thread

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout + 1)

    def _run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the simulator's loop, its result or exception here."""
        import threading

        if threading.current_thread() is self._thread:
            return fn()

        async def on_the_loop() -> T:
            return fn()

        return self._call(on_the_loop(), 5)

    @property
    def messages(self) -> list[Message]:
        return self._run(partial(list, self.sim.messages))

    @property
    def submits(self) -> list[Submit]:
        return self._run(partial(list, self.sim.submits))

    @property
    def receipts(self) -> list[Pdu]:
        return self._run(partial(list, self.sim.receipts))

    @property
    def mo_sent(self) -> list[Pdu]:
        return self._run(partial(list, self.sim.mo_sent))

    @property
    def stats(self) -> Stats:
        """A copy of the counters, taken on the simulator's loop."""
        return self._run(self._stats_copy)

    def _stats_copy(self) -> Stats:
        import msgspec

        stats = self.sim.stats
        return msgspec.structs.replace(stats, rejected=dict(stats.rejected))

    def clear(self) -> None:
        self._run(self.sim.clear)

    def wait_for_messages(self, n: int, timeout: float = 10.0) -> list[Message]:  # type: ignore[override]
        return self._call(self.sim.wait_for_messages(n, timeout), timeout)

    def send_mo(  # type: ignore[override]
        self, source_addr: str, destination_addr: str, text: str | bytes, *,
        system_id: str | None = None, data_coding: int | None = None,
    ) -> list[Pdu]:
        sim = self.sim
        send = partial(sim.send_mo, source_addr, destination_addr, text, system_id=system_id, data_coding=data_coding)
        return self._run(send)

    def fail_next(self, status: int | str, count: int = 1, *, system_id: str | None = None) -> FailNextResult:
        # done (or refused: ControlError) when this returns
        return self._run(partial(self.control.fail_next, _fail_request(status, count), system_id))

    def update_settings(self, **sections: Any) -> None:
        self._run(partial(self.control.update_settings, _settings_patch(sections)))

    def binds(self) -> list[BindInfo]:
        return self._run(self.control.binds)

    def drop(self, bind_id: int) -> BindInfo:
        return self._run(partial(self.control.drop, bind_id))

    def hang(self, bind_id: int) -> BindInfo:
        return self._run(partial(self.control.hang, bind_id))

    def reset(self) -> None:
        self._run(self.control.reset)

    def wait_for(  # type: ignore[override]
        self, to: str | None = None, text: str | None = None, timeout: float = 10.0,
    ) -> MessageView:
        return self._call(self.control.wait(_wait_query(to, text, timeout)), timeout)


def _fail_request(status: int | str, count: int) -> FailNextRequest:
    # a fixture call's arguments are checked like an HTTP body: ControlError naming the field
    from .control import FailNextRequest, convert

    return convert({"status": str(status), "count": count}, FailNextRequest)


def _settings_patch(sections: dict[str, Any]) -> SettingsPatch:
    from .control import SettingsPatch, convert

    return convert(sections, SettingsPatch)


def _wait_query(to: str | None, text: str | None, timeout: float) -> WaitQuery:
    from .control import WaitQuery, convert

    return convert({"to": to, "text": text, "timeout": timeout}, WaitQuery)


def _build_config(request: pytest.FixtureRequest, base: ConfigDict) -> SimulatorConfig:
    """``smsc_config`` with the closest ``@pytest.mark.smsc`` over it; a bad one fails the setup in one line."""
    from .config import ConfigError, config_from_dict

    data = dict(base)
    marker = request.node.get_closest_marker("smsc")
    if marker is not None:
        data.update(marker.kwargs)
    data["listen"] = "127.0.0.1:0"  # every listener on a free port: tests never fight over one
    if data.get("http_listen") is not None:
        data["http_listen"] = "127.0.0.1:0"
    if isinstance(data.get("tls"), dict):
        data["tls"] = {**data["tls"], "listen": "127.0.0.1:0"}
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        problem = str(exc)
    # outside the except block: the report is this one line, not a chain of two exceptions
    pytest.fail(f"smsc configuration: {problem}", pytrace=False)


@pytest.fixture
def smsc_config() -> ConfigDict:
    """The simulator configuration (a dict, as in simulator.toml); override to change it."""
    return {}


@pytest.fixture
def smsc_sync(request: pytest.FixtureRequest, smsc_config: ConfigDict) -> Iterator[SyncSmscFixture]:
    import asyncio
    import threading

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
except ImportError:  # only the synchronous fixture works then; the async one says why in one line

    @pytest.fixture(name="smsc")
    def smsc_needs_pytest_asyncio() -> None:
        pytest.fail("the smsc fixture needs pytest-asyncio (pip install pytest-asyncio); smsc_sync works without it",
                    pytrace=False)

else:

    @pytest_asyncio.fixture(name="smsc")
    async def smsc_on_the_tests_loop(
        request: pytest.FixtureRequest, smsc_config: ConfigDict,
    ) -> AsyncIterator[SmscFixture]:
        from .app import start

        config = _build_config(request, smsc_config)
        running = await start(config, port=0)
        try:
            yield SmscFixture(running)
        finally:
            await running.close()
