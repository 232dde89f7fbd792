"""The pytest plugin as a user's project sees it: installed smpphub, a test file, pytest.

Each test writes a small project with ``pytester`` and runs pytest on it in a
subprocess; the plugin comes from smpphub's ``pytest11`` entry point, nothing here
imports it.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
#: pytest-asyncio as a user gets it: no configuration at all (strict mode)
STRICT_INI = "[pytest]\n"


def run(pytester: pytest.Pytester, ini: str = INI, *options: str, **files: str) -> pytest.RunResult:
    pytester.makeini(ini)
    pytester.makepyfile(**files)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *options, timeout=120)


ASYNC_ESME = '''
import pytest
import smppcore
from smppcore.receipt import receipt_info


@pytest.mark.smsc(
    errors={"rules": [{"destination": "999$", "status": "ESME_RINVDSTADR"}]},
    receipts={"final_states": {"UNDELIV": 1}, "message_id_format": "hex"},
)
async def test_my_esme(smsc):
    async with smppcore.connect(smsc.host, smsc.port, system_id="me", password="pw") as c:
        resp = await c.submit_sm(destination_addr="447700900123", short_message=b"hello", registered_delivery=1)
        info = receipt_info(await c.next_message(timeout=5))
        assert info.message_id == resp.message_id and info.state.name == "UNDELIVERABLE"
        with pytest.raises(smppcore.SmppStatusError) as refused:
            await c.submit_sm(destination_addr="447700900999")
        assert refused.value.command_status == smppcore.CommandStatus.ESME_RINVDSTADR
        smsc.fail_next("ESME_RTHROTTLED")
        with pytest.raises(smppcore.SmppStatusError):
            await c.submit_sm(destination_addr="1")
        await smsc.send_mo("447700900123", "555", "STOP")
        assert (await c.next_message(timeout=5)).short_message == b"STOP"
    (message,) = await smsc.wait_for_messages(1)
    assert message.text == "hello" and message.message_ids == (resp.message_id,)
    assert smsc.stats.rejected == {"ESME_RINVDSTADR": 1, "ESME_RTHROTTLED": 1}
    assert len(smsc.receipts) == 1 and len(smsc.mo_sent) == 1 and len(smsc.submits) == 1
    assert smsc.address == f"{smsc.host}:{smsc.port}" and smsc.host == "127.0.0.1"


async def test_each_test_has_a_fresh_simulator(smsc):
    assert smsc.messages == [] and smsc.stats.submits == 0
    assert smsc.config.errors.rules == []  # the other test's marker does not leak here
'''


def test_async_fixture_with_marker_config(pytester):
    result = run(pytester, test_user=ASYNC_ESME)
    result.assert_outcomes(passed=2)


CONFTEST = '''
import pytest


@pytest.fixture
def smsc_config():
    return {"accounts": [{"system_id": "acme", "password": "secret"}], "throttle": {"per_bind": 1000}}
'''

OVERRIDES = '''
import pytest
import smppcore


async def test_conftest_config_applies(smsc):
    assert smsc.config.throttle.per_bind == 1000
    with pytest.raises(smppcore.BindError):
        await smppcore.connect(smsc.host, smsc.port, system_id="acme", password="wrong")
    async with smppcore.connect(smsc.host, smsc.port, system_id="acme", password="secret") as c:
        await c.submit_sm(destination_addr="1")


@pytest.mark.smsc(throttle={"per_bind": 5, "status": "ESME_RMSGQFUL"})
async def test_marker_overrides_a_key_of_it(smsc):
    assert smsc.config.throttle.per_bind == 5 and smsc.config.accounts[0].system_id == "acme"


pytestmark = pytest.mark.smsc(seed=7)


async def test_module_marker(smsc):
    assert smsc.config.seed == 7
'''


def test_smsc_config_fixture_and_marker_layers(pytester):
    pytester.makeconftest(CONFTEST)
    result = run(pytester, test_layers=OVERRIDES)
    result.assert_outcomes(passed=3)


SYNC_ESME = '''
import time

import pytest
import smpplib.client
import smpplib.exceptions


def read_until(client, done, timeout=10):
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline
        client.read_once()


@pytest.mark.smsc(errors={"rules": [{"destination": "^0", "status": "ESME_RINVDSTADR"}]})
def test_sync_esme(smsc_sync):
    client = smpplib.client.Client(smsc_sync.host, smsc_sync.port, timeout=1, allow_unknown_opt_params=True)
    sent, received = [], []
    client.set_message_sent_handler(lambda pdu: sent.append(pdu))
    client.set_message_received_handler(lambda pdu: received.append(pdu))
    client.connect()
    try:
        client.bind_transceiver(system_id="me", password="pw")
        client.send_message(source_addr="Shop", destination_addr="0123", short_message=b"bad number")
        with pytest.raises(smpplib.exceptions.PDUError):
            read_until(client, lambda: False)
        client.send_message(source_addr="Shop", destination_addr="447700900123", short_message=b"order shipped",
                            registered_delivery=1)
        read_until(client, lambda: sent and received)
        smsc_sync.send_mo("447700900123", "Shop", "thanks")
        read_until(client, lambda: len(received) == 2)
        client.unbind()
    finally:
        client.disconnect()
    (message,) = smsc_sync.wait_for_messages(1)
    assert message.text == "order shipped"
    assert received[0].receipted_message_id.decode() == sent[0].message_id.decode()
    assert received[1].short_message == b"thanks"
    assert smsc_sync.stats.rejected == {"ESME_RINVDSTADR": 1}
'''


def test_sync_fixture_with_smpplib(pytester):
    result = run(pytester, test_sync=SYNC_ESME)
    result.assert_outcomes(passed=1)


BAD = '''
import pytest


@pytest.mark.smsc(wndow=5)
async def test_unknown_key(smsc):
    pass


@pytest.mark.smsc(throttle={"per_bind": -1})
def test_out_of_range(smsc_sync):
    pass


@pytest.mark.smsc(receipts={"final_states": {"DELIVERD": 1}})
async def test_bad_state(smsc):
    pass
'''


def test_bad_marker_config_fails_with_one_line_naming_the_key(pytester):
    result = run(pytester, test_bad=BAD)
    result.assert_outcomes(errors=3)
    out = result.stdout.str()
    lines = [line for line in out.splitlines() if "smsc configuration:" in line]
    assert any("smsc configuration: wndow: unknown key" in line for line in lines), out
    assert any("smsc configuration: throttle.per_bind: expected float >= 0" in line for line in lines), out
    assert any("smsc configuration: receipts.final_states: 'DELIVERD' is not a final state" in line for line in lines), out
    assert "Traceback" not in out and "msgspec" not in out  # the message, not a stack
    assert "During handling" not in out and "unknown key\n\n" not in out  # one line, no exception chain


@pytest.mark.parametrize("ini", [STRICT_INI, INI], ids=["strict", "auto"])
def test_every_python_example_of_the_readme_passes(pytester: pytest.Pytester, ini: str) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "simulator" / "README.md").read_text()
    examples = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(examples) >= 2
    result = run(pytester, ini, **{f"test_readme_{i}": code for i, code in enumerate(examples)})
    result.assert_outcomes(passed=len(examples))


MARKED_ASYNC = '''
import pytest
import smppcore


@pytest.mark.asyncio
async def test_marked(smsc):
    async with smppcore.connect(smsc.host, smsc.port, system_id="me", password="pw") as c:
        await c.submit_sm(destination_addr="1", short_message=b"hi")
    assert (await smsc.wait_for_messages(1))[0].text == "hi"


def test_sync_beside_it(smsc_sync):
    assert smsc_sync.stats.submits == 0
'''


@pytest.mark.parametrize("ini", [STRICT_INI, INI], ids=["strict", "auto"])
def test_the_async_fixture_works_in_strict_and_auto_mode(pytester: pytest.Pytester, ini: str) -> None:
    result = run(pytester, ini, test_modes=MARKED_ASYNC)
    result.assert_outcomes(passed=2)


WITHOUT_PYTEST_ASYNCIO = '''
def test_async_fixture(smsc):
    pass


def test_sync_fixture(smsc_sync):
    assert smsc_sync.stats.submits == 0
'''


def test_without_pytest_asyncio_smsc_says_so_in_one_line_and_smsc_sync_works(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(pytest_asyncio="raise ImportError('pytest-asyncio is not installed here')")  # first on the path
    result = run(pytester, STRICT_INI, "-p", "no:asyncio", test_plain=WITHOUT_PYTEST_ASYNCIO)
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    assert "the smsc fixture needs pytest-asyncio (pip install pytest-asyncio); smsc_sync works without it" in out, out
    assert "Traceback" not in out


def test_loading_the_plugin_imports_neither_the_simulator_nor_smppcore() -> None:
    """Every pytest run of a project with smpphub installed loads the plugin: it must cost next to nothing."""
    import subprocess
    import sys

    heavy = ["smppcore", "msgspec", "aiohttp", "structlog", "smpphub.simulator.app", "smpphub.simulator.engine",
             "smpphub.simulator.config", "smpphub.router", "smpphub.bench"]
    code = (
        "import sys, pytest\n"
        "import smpphub.simulator.pytest_plugin\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr
