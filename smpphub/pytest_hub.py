"""pytest plugin shipped with smpphub: a routing hub with simulated upstream SMSCs per test.

The ``smsc`` fixture (``smpphub.simulator.pytest_plugin``) plays one carrier; an ESME
team that sends through a hub wants to test against the routing too: which carrier a
destination goes to, failover when one refuses, receipts coming back through the hub
with the hub's message ids. This plugin gives the ``hub`` fixture for that: a
:class:`~smpphub.router.hub.Hub` with an in-memory store on a free port of 127.0.0.1,
wired to one simulator per upstream, all on the test's own event loop.

It lives here and not beside ``smsc`` because the simulator may not import the router
(arrows point down): this module sits above both. Like the simulator's plugin it is
loaded by every pytest run of every project with smpphub installed (entry point
``pytest11`` ``smpphub-hub``), so it imports nothing of smpphub or smppcore at load
time, only when a ``hub`` fixture runs (pytest-asyncio, when installed, is loaded by
pytest anyway).

Configuration is a dict of hub.toml keys (the ``hub_config`` fixture, overridden in a
conftest, with ``@pytest.mark.hub(**keys)`` over it per test) plus one key of its own:

- ``simulators``: upstream name -> that simulator's configuration (simulator.toml keys);
  default one upstream ``smsc`` with the simulator's defaults;
- ``upstreams``: hub-side settings of those upstreams (``binds``, ``window``,
  ``max_rate``, ...) by ``name``; ``host``, ``port``, ``system_id`` are filled in;
- ``accounts``: default one account, :data:`SYSTEM_ID` / :data:`PASSWORD`;
- ``routes`` / ``default_route``: default, every destination to every simulator in
  the order given (failover);
- ``mo_routes``: default, every MO to the first account;
- ``listeners`` and the store are the fixture's: 127.0.0.1 port 0, in memory.

A bad configuration fails the test's setup with one line naming the key.

::

    @pytest.mark.asyncio
    @pytest.mark.hub(simulators={"uk": {}, "world": {}}, routes=[{"prefix": "44", "upstreams": ["uk"]}],
                     default_route={"upstreams": ["world"]})
    async def test_uk_goes_to_uk(hub):
        async with hub.connect() as esme:
            await esme.submit_sm(destination_addr="447700900123", short_message=b"hi")
        name, message = await hub.wait_for_message(to="447700900123")
        assert name == "uk" and message.text == "hi"
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import asyncio

    from smpphub.router.config import HubConfig
    from smpphub.router.hub import Hub
    from smpphub.simulator.app import RunningSimulator
    from smpphub.simulator.config import SimulatorConfig
    from smpphub.simulator.pytest_plugin import SmscFixture
    from smpphub.simulator.records import Message

__all__ = ["HubFixture", "SyncHubFixture", "SYSTEM_ID", "PASSWORD", "DEFAULT_UPSTREAM"]

#: the account the hub has when the configuration names none
SYSTEM_ID, PASSWORD = "esme", "secret"
#: the one simulated upstream when the configuration names none
DEFAULT_UPSTREAM = "smsc"
#: the hub's side of a simulated upstream unless the configuration says otherwise: a
#: lost bind comes back within a fraction of a second (a test does not wait 30 s), and
#: an unanswered submit fails in 5 s rather than 30
UPSTREAM_DEFAULTS: dict[str, Any] = {"reconnect_initial": 0.05, "reconnect_max": 0.5, "response_timeout": 5.0}
#: retries of a temporarily refused message start this soon (hub.toml default 1 s)
RETRY_DEFAULTS: dict[str, Any] = {"retry_initial": 0.1, "retry_max": 2.0}

ConfigDict = dict[str, Any]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hub(**config): configuration of the hub fixture for this test (hub.toml keys, "
                                       "plus simulators={name: simulator config})")


class HubFixture:
    """A running hub, its simulated upstreams, and what a test asks of them.

    ``upstreams``: name -> the simulator behind it, as the ``smsc`` fixture gives one
    (records, ``wait_for_messages``, ``send_mo``, ``fail_next``, ...).
    """

    def __init__(self, hub: Hub, upstreams: dict[str, SmscFixture], system_id: str, password: str) -> None:
        self.hub = hub
        self.upstreams = upstreams
        self.system_id = system_id
        self.password = password

    @property
    def host(self) -> str:
        return self.hub.servers[0].host

    @property
    def port(self) -> int:
        return self.hub.servers[0].port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def config(self) -> HubConfig:
        return self.hub.config

    def connect(self, **kwargs: Any) -> Any:
        """``smppcore.connect`` to the hub with the first account (a transceiver unless
        ``bind=`` says otherwise); use it as ``async with hub.connect() as esme``."""
        import smppcore

        kwargs.setdefault("system_id", self.system_id)
        kwargs.setdefault("password", self.password)
        return smppcore.connect(self.host, self.port, **kwargs)

    def messages(self) -> list[tuple[str, Message]]:
        """Every whole message the upstreams received, as (upstream name, message)."""
        return [(name, m) for name, up in self.upstreams.items() for m in up.messages]

    async def wait_for_message(self, to: str | None = None, text: str | None = None, *, upstream: str | None = None,
                               timeout: float = 10.0) -> tuple[str, Message]:
        """The first message (already there, or the next to arrive) at ``upstream`` (or any)
        whose destination is ``to`` and whose text matches the regular expression ``text``
        (each when given), as (upstream name, message). TimeoutError after ``timeout`` s."""
        import asyncio

        if upstream is not None and upstream not in self.upstreams:
            raise ValueError(f"no upstream {upstream!r} (the hub has: {', '.join(self.upstreams)})")
        names = [upstream] if upstream is not None else list(self.upstreams)
        pattern = re.compile(text) if text is not None else None

        def found() -> tuple[str, Message] | None:
            for name in names:
                for m in self.upstreams[name].messages:
                    if (to is None or m.destination_addr == to) and (pattern is None or pattern.search(m.text)):
                        return name, m
            return None

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (hit := found()) is None:
            left = deadline - loop.time()
            if left <= 0:
                what = " and ".join(x for x in (f"to {to}" if to else "", f"matching {text!r}" if text else "") if x)
                raise TimeoutError(f"no message {what or 'at all'} at {', '.join(names)} within {timeout:g} s")
            # wake at the next message anywhere we look (the simulators' own waiters), not by a sleep
            waits = [asyncio.ensure_future(self.upstreams[n].sim.wait_for_messages(self.upstreams[n].stats.messages + 1,
                                                                                 left)) for n in names]
            try:
                await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
        return hit

    def status(self) -> dict[str, object]:
        """The hub's own status (accepted, upstreams, what it holds)."""
        return self.hub.status()


def build_configs(data: ConfigDict) -> tuple[dict[str, SimulatorConfig], ConfigDict]:
    """The simulators' configurations and the hub's dict without the upstreams' addresses
    (known once the simulators listen); a bad key raises ConfigError naming it."""
    from smpphub.simulator.config import ConfigError, config_from_dict

    hub = dict(data)
    sims_raw = hub.pop("simulators", {DEFAULT_UPSTREAM: {}})
    if not isinstance(sims_raw, dict) or not sims_raw:
        raise ConfigError("simulators: expected a table of upstream name -> simulator configuration, at least one")
    simulators: dict[str, SimulatorConfig] = {}
    for name, raw in sims_raw.items():
        if not isinstance(raw, dict):
            raise ConfigError(f"simulators.{name}: expected a table (simulator.toml keys), got {type(raw).__name__}")
        try:
            simulators[str(name)] = config_from_dict({**raw, "listen": "127.0.0.1:0"})
        except ConfigError as exc:
            raise ConfigError(f"simulators.{name}.{exc}") from None
    sides = hub.get("upstreams", [])
    if not isinstance(sides, list) or not all(isinstance(u, dict) for u in sides):
        raise ConfigError("upstreams: expected a list of tables with a name each")
    for i, side in enumerate(sides):
        if side.get("name") not in simulators:
            raise ConfigError(f"upstreams[{i}].name: no simulator {side.get('name')!r} "
                              f"(simulators: {', '.join(simulators)})")
    accounts = hub.setdefault("accounts", [{"system_id": SYSTEM_ID, "password": PASSWORD}])
    if not isinstance(accounts, list) or not accounts or not isinstance(accounts[0], dict):
        raise ConfigError("accounts: the hub fixture needs a list of at least one account table")
    if "mo_routes" not in hub:
        hub["mo_routes"] = [{"prefix": "", "account": accounts[0].get("system_id")}]
    if "routes" not in hub and "default_route" not in hub:
        hub["default_route"] = {"upstreams": list(simulators)}
    for key, value in RETRY_DEFAULTS.items():
        hub.setdefault(key, value)
    hub["listeners"] = [{"host": "127.0.0.1", "port": 0, **_listener_keys(hub.get("listeners"))}]
    store = hub.get("store") or {}
    if not isinstance(store, dict):
        raise ConfigError(f"store: expected a table, got {type(store).__name__}")
    hub["store"] = {**store, "backend": "memory"}
    return simulators, hub


def _listener_keys(listeners: object) -> dict[str, Any]:
    """What a test may set of the one listener (limits, timeouts), without its address."""
    if not listeners:
        return {}
    from smpphub.simulator.config import ConfigError

    if not isinstance(listeners, list) or len(listeners) != 1 or not isinstance(listeners[0], dict):
        raise ConfigError("listeners: the hub fixture has one listener; give at most one table (no host or port)")
    return {k: v for k, v in listeners[0].items() if k not in ("host", "port")}


def hub_config_with(hub: ConfigDict, ports: dict[str, int]) -> HubConfig:
    """The hub's typed configuration, its upstreams pointing at the simulators on ``ports``."""
    from smpphub.router.config import config_from_dict

    sides = {u["name"]: u for u in hub.get("upstreams", [])}
    upstreams = [
        {**UPSTREAM_DEFAULTS, **sides.get(name, {}), "name": name, "host": "127.0.0.1", "port": port,
         "system_id": "hub", "password": "hub"}
        for name, port in ports.items()
    ]
    return config_from_dict({**hub, "upstreams": upstreams})


def _config(request: pytest.FixtureRequest, base: ConfigDict) -> ConfigDict:
    """``hub_config`` with the closest ``@pytest.mark.hub`` over it."""
    data = dict(base)
    marker = request.node.get_closest_marker("hub")
    if marker is not None:
        data.update(marker.kwargs)
    return data


@pytest.fixture
def hub_config() -> ConfigDict:
    """The hub's configuration (hub.toml keys plus ``simulators``); override to change it."""
    return {}


class _Stack:
    """The simulators and the hub wired to them, started on the running loop; ``close`` stops all."""

    def __init__(self) -> None:
        self.running: dict[str, RunningSimulator] = {}
        self.hub: Hub | None = None

    async def start(self, sims: dict[str, SimulatorConfig], hub_dict: ConfigDict) -> Hub:
        """Start everything (ConfigError: the hub's configuration is bad; what started is stopped)."""
        from smpphub.router.hub import Hub
        from smpphub.simulator.app import start

        try:
            for name, cfg in sims.items():
                self.running[name] = await start(cfg, port=0)
            config = hub_config_with(hub_dict, {name: r.port for name, r in self.running.items()})
            hub = Hub(config)
            await hub.start()
            self.hub = hub
            await hub.wait_ready(10)
        except BaseException:
            await self.close()
            raise
        return hub

    async def close(self) -> None:
        if self.hub is not None:
            await self.hub.stop(timeout=2)
            self.hub = None
        for r in self.running.values():
            await r.close()
        self.running.clear()


def _credentials(hub: Hub) -> tuple[str, str]:
    account = hub.config.accounts[0]
    return account.system_id, account.password or ""


async def _start(stack: _Stack, request: pytest.FixtureRequest, base: ConfigDict) -> Hub:
    """Start ``stack`` as the test's configuration says; a bad one fails the setup in one line."""
    from smppcore.config import ConfigError

    try:
        return await stack.start(*build_configs(_config(request, base)))
    except ConfigError as exc:
        problem = str(exc)
    pytest.fail(f"hub configuration: {problem}", pytrace=False)


class SyncHubFixture(HubFixture):
    """The hub and its simulators on their own loop in a thread, for synchronous clients
    (smpplib, ...): helpers block instead of awaiting, and read on that loop."""

    def __init__(self, hub: Hub, upstreams: dict[str, SmscFixture], system_id: str, password: str,
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(hub, upstreams, system_id, password)
        self._loop = loop

    def wait_for_message(self, to: str | None = None, text: str | None = None, *,  # type: ignore[override]
                         upstream: str | None = None, timeout: float = 10.0) -> tuple[str, Message]:
        import asyncio

        waiting = super().wait_for_message(to, text, upstream=upstream, timeout=timeout)
        return asyncio.run_coroutine_threadsafe(waiting, self._loop).result(timeout + 5)

    def status(self) -> dict[str, object]:
        import asyncio

        async def on_the_loop() -> dict[str, object]:
            return self.hub.status()

        return asyncio.run_coroutine_threadsafe(on_the_loop(), self._loop).result(5)


@pytest.fixture
def hub_sync(request: pytest.FixtureRequest, hub_config: ConfigDict) -> Iterator[SyncHubFixture]:
    import asyncio
    import threading

    from smpphub.simulator.pytest_plugin import SyncSmscFixture

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="smpphub-hub", daemon=True)
    thread.start()
    stack = _Stack()
    try:
        hub = asyncio.run_coroutine_threadsafe(_start(stack, request, hub_config), loop).result(30)
        upstreams = {name: SyncSmscFixture(r, loop, thread) for name, r in stack.running.items()}
        yield SyncHubFixture(hub, upstreams, *_credentials(hub), loop)  # type: ignore[arg-type]
    finally:
        asyncio.run_coroutine_threadsafe(stack.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


try:
    import pytest_asyncio
except ImportError:  # the hub runs on the test's loop: without pytest-asyncio there is none

    @pytest.fixture(name="hub")
    def hub_needs_pytest_asyncio() -> None:
        pytest.fail("the hub fixture needs pytest-asyncio (pip install pytest-asyncio); hub_sync works without it",
                    pytrace=False)

else:

    @pytest_asyncio.fixture(name="hub")
    async def hub_on_the_tests_loop(
        request: pytest.FixtureRequest, hub_config: ConfigDict,
    ) -> AsyncIterator[HubFixture]:
        from smpphub.simulator.pytest_plugin import SmscFixture

        stack = _Stack()
        try:
            hub = await _start(stack, request, hub_config)
            yield HubFixture(hub, {name: SmscFixture(r) for name, r in stack.running.items()}, *_credentials(hub))
        finally:
            await stack.close()
