"""The control API's operations as methods of the pytest fixtures (``smsc`` and ``smsc_sync``):
the same Control behind both doors, the same refusals (ControlError naming the field), and
the bound on the number of long-polls waiting at once."""

from __future__ import annotations

import asyncio

import pytest

import smppcore
from smppcore import CommandStatus
from smppcore.connection import SmppStatusError
from smpphub.simulator.control import Control, ControlError, WaitQuery, WaitTimeout

ACCOUNTS = [{"system_id": "acme", "password": "secret"}, {"system_id": "other", "password": "secret"}]


@pytest.mark.smsc(accounts=ACCOUNTS)
async def test_fail_next_settings_reset_and_wait_for(smsc) -> None:
    async with smppcore.connect(smsc.host, smsc.port, system_id="acme", password="secret") as acme, \
            smppcore.connect(smsc.host, smsc.port, system_id="other", password="secret") as other:
        result = smsc.fail_next("ESME_RMSGQFUL", 1, system_id="acme")
        assert (result.system_id, result.count, result.status, result.queued) == ("acme", 1, 0x14, 1)
        await other.submit_sm(destination_addr="1", short_message=b"other's: accepted")
        with pytest.raises(SmppStatusError) as info:
            await acme.submit_sm(destination_addr="1", short_message=b"acme's: refused")
        assert info.value.response.command_status == CommandStatus.ESME_RMSGQFUL

        smsc.update_settings(errors={"rules": [{"destination": "^0", "status": "ESME_RINVDSTADR"}]})
        with pytest.raises(SmppStatusError):
            await acme.submit_sm(destination_addr="0123", short_message=b"refused by the new rule")
        smsc.update_settings(errors={})

        waiting = asyncio.ensure_future(smsc.wait_for(to="447700900123", text=r"code \d+", timeout=10))
        await asyncio.sleep(0)
        await acme.submit_sm(destination_addr="447700900123", short_message=b"your code 4821")
        found = await waiting
        assert (found.text, found.system_id, found.parts) == ("your code 4821", "acme", 1)

        smsc.reset()
        assert smsc.messages == []
        with pytest.raises(WaitTimeout) as timeout:
            await smsc.wait_for(to="447700900123", timeout=0.05)
        assert timeout.value.status == 408 and isinstance(timeout.value, TimeoutError)


@pytest.mark.smsc(accounts=ACCOUNTS)
async def test_binds_drop_and_hang(smsc) -> None:
    async with smppcore.connect(smsc.host, smsc.port, system_id="acme", password="secret") as acme:
        (bind,) = smsc.binds()
        assert (bind.system_id, bind.bind_type, bind.state, bind.hung) == ("acme", "trx", "bound_trx", False)
        assert smsc.hang(bind.id).hung
        probe = acme.send_nowait(smppcore.pdus.EnquireLink())
        done, _ = await asyncio.wait([probe], timeout=0.3)
        assert not done
        probe.cancel()
        smsc.drop(bind.id)
        await asyncio.wait_for(asyncio.shield(acme.closed), 5)
    assert smsc.binds() == []
    assert smsc.stats.dropped_connections == 1


@pytest.mark.parametrize("call,field", [
    (lambda s: s.fail_next("ESME_NOPE"), "status"),
    (lambda s: s.fail_next("ESME_RSYSERR", 0), "count"),
    (lambda s: s.fail_next("ESME_RSYSERR", system_id="nobody"), "system_id"),
    (lambda s: s.update_settings(throttle={"per_bind": -1}), "throttle.per_bind"),
    (lambda s: s.update_settings(window=5), "window"),
    (lambda s: s.drop(42), "id"),
    (lambda s: s.hang(42), "id"),
])
@pytest.mark.smsc(accounts=ACCOUNTS)
def test_refusals_in_the_sync_fixture_name_the_field(smsc_sync, call, field) -> None:
    with pytest.raises(ControlError) as info:
        call(smsc_sync)
    assert info.value.field == field and isinstance(info.value, ValueError)


@pytest.mark.smsc(accounts=ACCOUNTS)
def test_sync_fixture_steers_too(smsc_sync) -> None:
    import smpplib.client
    import smpplib.exceptions

    smsc_sync.fail_next("ESME_RTHROTTLED", 1, system_id="acme")
    client = smpplib.client.Client(smsc_sync.host, smsc_sync.port, timeout=5, allow_unknown_opt_params=True)
    client.connect()
    try:
        client.bind_transceiver(system_id="acme", password="secret")
        (bind,) = smsc_sync.binds()
        assert bind.system_id == "acme"
        client.send_message(destination_addr="447700900123", short_message=b"refused: the queued failure")
        with pytest.raises(smpplib.exceptions.PDUError) as info:
            client.read_once()
        assert info.value.args[1] == CommandStatus.ESME_RTHROTTLED
        client.send_message(destination_addr="447700900123", short_message=b"your code 1234")
        found = smsc_sync.wait_for(text="code 1234", timeout=5)
        assert found.destination_addr == "447700900123"
        smsc_sync.reset()
        assert smsc_sync.messages == []
    finally:
        client.disconnect()


async def test_waiters_are_bounded(smsc) -> None:
    control = Control(smsc.sim, max_waiters=2)
    query = WaitQuery(to="447700900123", timeout=10)
    first = asyncio.ensure_future(control.wait(query))
    second = asyncio.ensure_future(control.wait(query))
    await asyncio.sleep(0)
    with pytest.raises(ControlError) as info:
        await control.wait(query)
    assert info.value.status == 429
    async with smppcore.connect(smsc.host, smsc.port, system_id="a", password="b") as esme:
        await esme.submit_sm(destination_addr="447700900123", short_message=b"wakes both")
    assert [m.text for m in await asyncio.gather(first, second)] == ["wakes both", "wakes both"]
    assert control.waiting == 0


async def test_close_answers_pending_waits(smsc) -> None:
    control = Control(smsc.sim)
    waiting = asyncio.ensure_future(control.wait(WaitQuery(to="1", timeout=60)))
    await asyncio.sleep(0)
    control.close()
    with pytest.raises(ControlError) as info:
        await asyncio.wait_for(waiting, 5)
    assert info.value.status == 503 and control.waiting == 0
    with pytest.raises(ControlError):
        await control.wait(WaitQuery(to="1", timeout=1))


async def test_requests_handled_at_once_are_bounded(smsc) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from smpphub.simulator.http_api import make_app

    async with TestClient(TestServer(make_app(smsc.control, max_in_flight=1))) as client:
        waiting = asyncio.ensure_future(client.get("/wait", params={"to": "447700900123", "timeout": "10"}))
        deadline = asyncio.get_running_loop().time() + 10
        while smsc.control.waiting == 0:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        refused = await client.get("/stats")
        assert refused.status == 503 and "at most 1" in (await refused.json())["error"]
        async with smppcore.connect(smsc.host, smsc.port, system_id="a", password="b") as esme:
            await esme.submit_sm(destination_addr="447700900123", short_message=b"frees the slot")
        answered = await waiting
        assert answered.status == 200
        assert (await client.get("/stats")).status == 200


@pytest.mark.smsc(receipts={"message_id_format": "hex"})
async def test_settings_latency_network_and_the_fixed_receipt_keys(smsc) -> None:
    async with smppcore.connect(smsc.host, smsc.port, system_id="a", password="b") as esme:
        smsc.update_settings(submit_latency={"kind": "fixed", "ms": 150})
        started = asyncio.get_running_loop().time()
        await esme.submit_sm(destination_addr="447700900123", short_message=b"late")
        assert asyncio.get_running_loop().time() - started >= 0.14  # a floor: a loaded machine only adds to it
        smsc.update_settings(submit_latency={}, network=[{"prefix": "4479", "undeliverable": 1.0}])
        await esme.submit_sm(destination_addr="447900900123", short_message=b"x", registered_delivery=1)
        receipt = await esme.next_message(timeout=10)
        assert b"stat:UNDELIV" in receipt.short_message
        # receipts replaced whole, the id format kept: the next id is still hex
        smsc.update_settings(receipts={"final_states": {"EXPIRED": 1}})
        resp = await esme.submit_sm(destination_addr="447700900123", short_message=b"y", registered_delivery=1)
        assert len(resp.message_id) == 8 and int(resp.message_id, 16)
        assert b"stat:EXPIRED" in (await esme.next_message(timeout=10)).short_message
        with pytest.raises(ControlError) as info:
            smsc.update_settings(receipts={"message_id_format": "decimal"})
        assert info.value.field == "receipts.message_id_format"
        smsc.update_settings(receipts={"message_id_format": "hex", "hold_limit": 100_000})  # the same: fine
