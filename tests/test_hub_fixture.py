"""The ``hub`` pytest fixture as a user's project sees it: installed smpphub, a test file, pytest.

Each test writes a small project with ``pytester`` and runs pytest on it in a
subprocess; the plugin comes from smpphub's ``pytest11`` entry point ``smpphub-hub``,
nothing here imports it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_simulator_plugin import STRICT_INI, run  # a user project's pytest run, as for the smsc fixture

pytest_plugins = ["pytester"]


ROUTING = '''
import pytest
import smppcore
from smppcore.receipt import receipt_info

ROUTES = dict(
    simulators={"uk": {}, "world": {"receipts": {"final_states": {"UNDELIV": 1}}}},
    routes=[{"prefix": "44", "upstreams": ["uk", "world"]}],
    default_route={"upstreams": ["world"]},
)


@pytest.mark.asyncio
@pytest.mark.hub(**ROUTES)
async def test_routes_by_prefix_and_receipts_come_back_with_the_hubs_id(hub):
    assert set(hub.upstreams) == {"uk", "world"} and hub.host == "127.0.0.1" and hub.port > 0
    async with hub.connect() as esme:
        uk = await esme.submit_sm(destination_addr="447700900123", short_message=b"to the uk", registered_delivery=1)
        world = await esme.submit_sm(destination_addr="15550001", short_message=b"abroad", registered_delivery=1)
        receipts = {}
        while len(receipts) < 2:
            info = receipt_info(await esme.next_message(timeout=5))
            receipts[info.message_id] = info.state.name
    assert receipts == {uk.message_id: "DELIVERED", world.message_id: "UNDELIVERABLE"}
    name, message = await hub.wait_for_message(to="447700900123")
    assert name == "uk" and message.text == "to the uk"
    name, message = await hub.wait_for_message(text="^abr")
    assert name == "world" and message.destination_addr == "15550001"
    assert hub.upstreams["uk"].messages[0].message_ids != (uk.message_id,)  # the hub has its own ids
    assert sorted(n for n, _ in hub.messages()) == ["uk", "world"]


@pytest.mark.asyncio
@pytest.mark.hub(**ROUTES)
async def test_fails_over_when_the_first_upstream_refuses(hub):
    hub.upstreams["uk"].fail_next("ESME_RSYSERR", 3)  # temporary, on every attempt the hub makes there
    async with hub.connect() as esme:
        await esme.submit_sm(destination_addr="447700900999", short_message=b"second choice")
    name, message = await hub.wait_for_message(to="447700900999", timeout=10)
    assert name == "world" and message.text == "second choice"


@pytest.mark.asyncio
@pytest.mark.hub(**ROUTES)
async def test_mo_from_an_upstream_reaches_the_esme(hub):
    async with hub.connect() as esme:
        await hub.upstreams["uk"].send_mo("447700900123", "555", "STOP")
        mo = await esme.next_message(timeout=5)
    assert mo.short_message == b"STOP" and mo.source_addr == "447700900123"


@pytest.mark.asyncio
async def test_waiting_for_a_message_that_never_comes_times_out_naming_it(hub):
    with pytest.raises(TimeoutError, match="no message to 123 at smsc within 0.2 s"):
        await hub.wait_for_message(to="123", timeout=0.2)
    with pytest.raises(ValueError, match="no upstream 'nowhere'"):
        await hub.wait_for_message(upstream="nowhere")


@pytest.mark.asyncio
async def test_defaults_one_upstream_one_account_everything_routed(hub):
    assert (hub.system_id, hub.password) == ("esme", "secret") and list(hub.upstreams) == ["smsc"]
    async with hub.connect(bind="tx") as esme:
        await esme.submit_sm(destination_addr="999", short_message=b"anywhere")
    name, _ = await hub.wait_for_message(to="999")
    assert name == "smsc" and hub.status()["accepted"] == 1
'''


def test_routing_failover_receipts_and_mo_through_the_hub_and_smpplib_through_hub_sync(pytester) -> None:
    """pytest-asyncio as a user gets it (strict mode, each async test marked); the
    conftest test below runs in auto mode."""
    result = run(pytester, STRICT_INI, test_user=ROUTING, test_sync=SYNC)
    result.assert_outcomes(passed=6)


CONFTEST = '''
import pytest


@pytest.fixture
def hub_config():
    return {
        "accounts": [{"system_id": "acme", "password": "s3cret", "max_rate": 1000}],
        "simulators": {"carrier": {"accounts": [{"system_id": "hub", "password": "hub"}]}},
        "upstreams": [{"name": "carrier", "binds": 2}],
    }
'''

LAYERS = '''
import pytest
import smppcore


async def test_conftest_config_applies(hub):
    assert (hub.system_id, hub.password) == ("acme", "s3cret")
    assert hub.config.upstreams[0].binds == 2 and hub.config.accounts[0].max_rate == 1000
    with pytest.raises(smppcore.BindError):
        await smppcore.connect(hub.host, hub.port, system_id="acme", password="wrong")
    async with hub.connect() as esme:
        await esme.submit_sm(destination_addr="1", short_message=b"x")
    await hub.wait_for_message(to="1", upstream="carrier")


@pytest.mark.hub(retry_initial=0.5)
async def test_marker_overrides_a_key_of_it(hub):
    assert hub.config.retry_initial == 0.5 and hub.system_id == "acme"
'''


def test_hub_config_fixture_and_marker_layers(pytester: pytest.Pytester) -> None:
    """In pytest-asyncio's auto mode: async tests without a mark."""
    pytester.makeconftest(CONFTEST)
    result = run(pytester, test_layers=LAYERS)
    result.assert_outcomes(passed=2)


BAD = '''
import pytest


@pytest.mark.hub(simulators={"a": {"wndow": 5}})
async def test_bad_simulator_key(hub):
    pass


@pytest.mark.hub(routes=[{"prefix": "44", "upstreams": ["nowhere"]}])
async def test_route_to_an_unknown_upstream(hub):
    pass


@pytest.mark.hub(upstreams=[{"name": "b"}])
async def test_hub_side_of_an_upstream_with_no_simulator(hub):
    pass


@pytest.mark.hub(retry_intial=1)
async def test_unknown_hub_key(hub):
    pass


@pytest.mark.hub(simulators={})
async def test_no_simulator(hub):
    pass


@pytest.mark.hub(accounts=[])
def test_no_account(hub_sync):
    pass


@pytest.mark.hub(store="memory")
async def test_store_not_a_table(hub):
    pass


@pytest.mark.hub(listeners=[{}, {}])
async def test_two_listeners(hub):
    pass
'''


def test_bad_config_fails_the_setup_with_one_line_naming_the_key(pytester: pytest.Pytester) -> None:
    result = run(pytester, test_bad=BAD)
    result.assert_outcomes(errors=8)
    out = result.stdout.str()
    lines = [line for line in out.splitlines() if "hub configuration:" in line]
    for says in ("simulators.a.wndow: unknown key", "routes[0].upstreams: unknown upstream 'nowhere'",
                 "upstreams[0].name: no simulator 'b' (simulators: smsc)", "retry_intial: unknown key",
                 "simulators: expected a table of upstream name -> simulator configuration",
                 "accounts: the hub fixture needs a list of at least one account table",
                 "store: expected a table, got str", "listeners: the hub fixture has one listener"):
        assert any(says in line for line in lines), (says, out)
    assert "Traceback" not in out and "During handling" not in out


SYNC = '''
import time

import pytest
import smpplib.client


def read_until(client, done, timeout=10):
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline
        client.read_once()


@pytest.mark.hub(simulators={"a": {}, "b": {}}, routes=[{"prefix": "4477", "upstreams": ["b"]}])
def test_smpplib_through_the_hub(hub_sync):
    client = smpplib.client.Client(hub_sync.host, hub_sync.port, timeout=1, allow_unknown_opt_params=True)
    sent, received = [], []
    client.set_message_sent_handler(lambda pdu: sent.append(pdu))
    client.set_message_received_handler(lambda pdu: received.append(pdu))
    client.connect()
    try:
        client.bind_transceiver(system_id=hub_sync.system_id, password=hub_sync.password)
        client.send_message(source_addr="Shop", destination_addr="447700900123", short_message=b"order shipped",
                            registered_delivery=1)
        read_until(client, lambda: sent and received)
        client.unbind()
    finally:
        client.disconnect()
    name, message = hub_sync.wait_for_message(to="447700900123")
    assert (name, message.text) == ("b", "order shipped")
    assert received[0].receipted_message_id.decode() == sent[0].message_id.decode()
    assert [n for n, _ in hub_sync.messages()] == ["b"] and hub_sync.status()["accepted"] == 1
    assert len(hub_sync.upstreams["b"].receipts) == 1 and hub_sync.upstreams["a"].messages == []
    with pytest.raises(TimeoutError):
        hub_sync.wait_for_message(to="1", timeout=0.1)
'''


def test_without_pytest_asyncio_hub_says_so_in_one_line_and_hub_sync_works(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pytest_asyncio="raise ImportError('pytest-asyncio is not installed here')")  # first on the path
    plain = "def test_it(hub):\n    pass\n\n\ndef test_sync(hub_sync):\n    assert hub_sync.status()['accepted'] == 0\n"
    result = run(pytester, STRICT_INI, "-p", "no:asyncio", test_plain=plain)
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    assert "the hub fixture needs pytest-asyncio (pip install pytest-asyncio); hub_sync works without it" in out, out
    assert "Traceback" not in out


def test_loading_the_plugin_imports_neither_the_hub_nor_smppcore() -> None:
    """Every pytest run of a project with smpphub installed loads the plugin: it must cost next to nothing."""
    heavy = ["smppcore", "msgspec", "aiohttp", "structlog", "smpphub.router", "smpphub.simulator.app",
             "smpphub.simulator.config", "smpphub.bench"]
    code = (
        "import sys, pytest\n"
        "before = set(sys.modules)\n"
        "import smpphub.pytest_hub\n"
        f"print([m for m in {heavy!r} if m in sys.modules and m not in before])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_the_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    found = {e.name: e.value for e in entry_points(group="pytest11")}
    assert found.get("smpphub-hub") == "smpphub.pytest_hub"
