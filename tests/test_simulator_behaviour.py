"""The simulator's configurable behaviours, asserted from the client side."""

from __future__ import annotations

import asyncio
import collections
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from hubkit import simulator, wait_until

import smppcore
from smppcore import CommandStatus, MessageState, SubmitSm
from smppcore.receipt import receipt_info

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]


async def connect(sim, **kw):
    kw.setdefault("system_id", "me")
    kw.setdefault("password", "pw")
    return await smppcore.connect(HOST, sim.port, **kw)


async def test_accounts_bind_types_and_max_binds():
    sim = await simulator(accounts=[{"system_id": "acme", "password": "pw", "bind_types": ["tx"], "max_binds": 1}])
    try:
        for kw, status in (
            (dict(system_id="acme", password="bad", bind="tx"), CommandStatus.ESME_RINVPASWD),
            (dict(system_id="nobody", password="pw", bind="tx"), CommandStatus.ESME_RINVSYSID),
            (dict(system_id="acme", password="pw", bind="trx"), CommandStatus.ESME_RBINDFAIL),
        ):
            with pytest.raises(smppcore.BindError) as info:
                await connect(sim, **kw)
            assert info.value.command_status == status
        first = await connect(sim, system_id="acme", password="pw", bind="tx")
        with pytest.raises(smppcore.BindError):
            await connect(sim, system_id="acme", password="pw", bind="tx")
        await first.unbind()
    finally:
        await sim.close()


async def test_fixed_latency_delays_every_answer():
    sim = await simulator(submit_latency={"kind": "fixed", "ms": 50})
    try:
        async with await connect(sim) as c:
            loop = asyncio.get_running_loop()
            t = loop.time()
            await asyncio.gather(*[c.submit_sm(destination_addr="1") for _ in range(5)])
            assert loop.time() - t >= 0.05
    finally:
        await sim.close()


@pytest.mark.parametrize("kind", [{"kind": "uniform", "min_ms": 0, "max_ms": 5}, {"kind": "exponential", "mean_ms": 2, "max_ms": 10}])
async def test_random_latencies_answer_everything(kind):
    sim = await simulator(submit_latency=kind, seed=3)
    try:
        async with await connect(sim) as c:
            futures = [await c.send(SubmitSm(destination_addr="1")) for _ in range(50)]
            assert all(r.command_status == 0 for r in await asyncio.gather(*futures))
    finally:
        await sim.close()


@pytest.mark.parametrize("status", ["ESME_RTHROTTLED", "ESME_RMSGQFUL"])
async def test_throttle_answers_the_configured_status(status):
    sim = await simulator(throttle={"per_bind": 10, "status": status})
    try:
        async with await connect(sim) as c:
            futures = [await c.send(SubmitSm(destination_addr="1")) for _ in range(40)]
            got = collections.Counter(r.command_status for r in await asyncio.gather(*futures))
            assert got[CommandStatus[status]] >= 25 and got[0] >= 1
    finally:
        await sim.close()


async def test_error_rules_and_probabilities_are_reproducible():
    config = dict(errors={"rules": [{"destination": "999$", "status": "ESME_RINVDSTADR"}],
                          "probabilities": {"ESME_RSYSERR": 0.2}}, seed=42)
    counts = []
    for _ in range(2):
        sim = await simulator(**config)
        try:
            async with await connect(sim) as c:
                with pytest.raises(smppcore.SmppStatusError) as info:
                    await c.submit_sm(destination_addr="447700900999")
                assert info.value.command_status == CommandStatus.ESME_RINVDSTADR
                futures = [await c.send(SubmitSm(destination_addr="447700900123")) for _ in range(500)]
                counts.append(sum(r.command_status == CommandStatus.ESME_RSYSERR for r in await asyncio.gather(*futures)))
        finally:
            await sim.close()
    assert counts[0] == counts[1]  # same seed, same faults
    assert 60 <= counts[0] <= 140  # about 20% of 500


async def test_fail_next():
    sim = await simulator()
    try:
        async with await connect(sim) as c:
            sim.sim.fail_next("ESME_RX_T_APPN", 2)
            statuses = [r.command_status for r in await asyncio.gather(*[await c.send(SubmitSm()) for _ in range(3)])]
            assert statuses == [CommandStatus.ESME_RX_T_APPN] * 2 + [0]
    finally:
        await sim.close()


async def test_receipt_mix_intermediate_states_and_on_failure_only():
    sim = await simulator(receipts={"final_states": {"DELIVRD": 1, "UNDELIV": 1}, "intermediate": ["ENROUTE", "ACCEPTD"]}, seed=1)
    try:
        async with await connect(sim) as c:
            ids = [(await c.submit_sm(destination_addr="1", registered_delivery=1)).message_id for _ in range(40)]
            finals = collections.Counter()
            for _ in range(40):
                info = receipt_info(await c.next_message(timeout=5))
                assert info.message_id in ids
                finals[info.state] += 1
            assert finals[MessageState.DELIVERED] > 5 and finals[MessageState.UNDELIVERABLE] > 5
            # intermediate notifications when asked for (registered_delivery bit 0x10)
            await c.submit_sm(destination_addr="1", registered_delivery=0x11)
            states = [receipt_info(await c.next_message(timeout=5)).state for _ in range(3)]
            assert states[:2] == [MessageState.ENROUTE, MessageState.ACCEPTED] and states[2].is_final
        sim2 = await simulator(receipts={"final_states": {"DELIVRD": 1}})
        try:
            async with await connect(sim2) as c:
                await c.submit_sm(destination_addr="1", registered_delivery=2)  # on failure only: none comes
                await wait_until(lambda: sim2.sim.stats.receipts_pending == 0, what="message final")
                assert sim2.sim.stats.receipts_sent == 0
        finally:
            await sim2.close()
    finally:
        await sim.close()


async def test_receipt_held_until_a_receiver_binds():
    sim = await simulator()
    try:
        async with await connect(sim, bind="tx") as tx:
            resp = await tx.submit_sm(destination_addr="1", registered_delivery=1)
        await wait_until(lambda: sim.sim.stats.held == 1, what="receipt held")
        async with await connect(sim, bind="rx") as rx:
            assert receipt_info(await rx.next_message(timeout=5)).message_id == resp.message_id
    finally:
        await sim.close()


@pytest.mark.parametrize("fmt,pattern", [("decimal", r"\d+"), ("hex", r"[0-9a-f]+"), ("uuid", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")])
async def test_message_id_formats(fmt, pattern):
    sim = await simulator(receipts={"message_id_format": fmt})
    try:
        async with await connect(sim) as c:
            assert re.fullmatch(pattern, (await c.submit_sm(destination_addr="1")).message_id)
    finally:
        await sim.close()


async def test_mo_templates_and_echo():
    sim = await simulator(mo={"rate": 50, "templates": [{"source_addr": "447700900001", "destination_addr": "555", "text": "tick"}]})
    try:
        async with await connect(sim, bind="rx") as rx:
            mo = await rx.next_message(timeout=5)
            assert mo.short_message == b"tick" and mo.destination_addr == "555"
    finally:
        await sim.close()
    echo = await simulator(mo={"echo": True})
    try:
        async with await connect(echo) as c:
            await c.submit_sm(source_addr="Acme", destination_addr="447700900123", short_message=b"ping")
            mo = await c.next_message(timeout=5)
            assert (mo.source_addr, mo.destination_addr, mo.short_message) == ("447700900123", "Acme", b"ping")
    finally:
        await echo.close()


async def test_chaos_drop_after_and_ignored_enquire_link_and_bind_delay():
    sim = await simulator(chaos={"drop_after": 3})
    try:
        c = await connect(sim)
        for _ in range(3):
            await c.submit_sm(destination_addr="1")
        await asyncio.wait_for(c.closed, 5)
    finally:
        await sim.close()
    sim = await simulator(chaos={"ignore_enquire_link": True, "bind_delay_ms": 100})
    try:
        loop = asyncio.get_running_loop()
        t = loop.time()
        c = await connect(sim, config=smppcore.SessionConfig(response_timeout=0.3, enquire_link_interval=0))
        assert loop.time() - t >= 0.1
        with pytest.raises(smppcore.ResponseTimeout):
            await c.enquire_link()
        await c.unbind(timeout=1)
    finally:
        await sim.close()


async def test_chaos_drop_probability_closes_connections():
    sim = await simulator(chaos={"drop_probability": 0.5}, seed=5)
    try:
        c = await connect(sim)
        with pytest.raises(smppcore.ConnectionClosed):
            for _ in range(50):
                await c.submit_sm(destination_addr="1")
        assert sim.sim.stats.dropped_connections == 1
    finally:
        await sim.close()


@pytest.mark.parametrize("method", ["udh", "sar", "payload"])
async def test_long_messages_are_recorded_whole(method):
    sim = await simulator()
    try:
        async with await connect(sim) as c:
            text = "Ünïcödé text that needs several parts → " * 5
            await c.submit_text("447700900123", text, method=method)
            (message,) = await sim.sim.wait_for_messages(1)
            assert message.text == text
    finally:
        await sim.close()


async def test_query_cancel_replace_from_the_record():
    sim = await simulator(receipts={"delay": {"kind": "fixed", "ms": 5000}})
    try:
        async with await connect(sim) as c:
            a = await c.submit_sm(destination_addr="1", short_message=b"a", registered_delivery=1)
            b = await c.submit_sm(destination_addr="2", short_message=b"b", registered_delivery=1)
            q = await c.request(smppcore.QuerySm(message_id=a.message_id))
            assert q.message_state == MessageState.ENROUTE
            await c.request(smppcore.ReplaceSm(message_id=b.message_id, short_message=b"new"))
            assert sim.sim.by_id[b.message_id].pdu.short_message == b"new"
            await c.request(smppcore.CancelSm(message_id=a.message_id))
            assert (await c.request(smppcore.QuerySm(message_id=a.message_id))).message_state == MessageState.DELETED
            with pytest.raises(smppcore.SmppStatusError):
                await c.request(smppcore.CancelSm(message_id=a.message_id))
            with pytest.raises(smppcore.SmppStatusError):
                await c.request(smppcore.QuerySm(message_id="unknown"))
    finally:
        await sim.close()


async def test_submit_multi_and_data_sm():
    sim = await simulator(errors={"rules": [{"destination": "999$", "status": "ESME_RINVDSTADR"}]})
    try:
        async with await connect(sim) as c:
            resp = await c.request(smppcore.SubmitMulti(
                dest_address=[smppcore.DestAddress("447700900123", 1, 1), smppcore.DestAddress("447700900999", 1, 1)], short_message=b"m"))
            assert [u.destination_addr for u in resp.unsuccess_sme] == ["447700900999"]
            resp = await c.request(smppcore.DataSm(destination_addr="1", tlvs={smppcore.Tag.MESSAGE_PAYLOAD: b"payload"}))
            assert resp.message_id
            messages = await sim.sim.wait_for_messages(2)
            assert messages[-1].payload == b"payload"
    finally:
        await sim.close()


async def test_http_record_endpoint():
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        http_port = s.getsockname()[1]
    sim = await simulator(http_listen=f"{HOST}:{http_port}")
    try:
        async with await connect(sim) as c:
            await c.submit_sm(destination_addr="447700900123", short_message=b"over http")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{HOST}:{sim.http_port}/messages") as r:
                body = await r.json()
                assert body["count"] == 1 and body["messages"][0]["text"] == "over http"
            async with http.get(f"http://{HOST}:{sim.http_port}/stats") as r:
                assert (await r.json())["accepted"] == 1
            async with http.get(f"http://{HOST}:{sim.http_port}/messages?limit=x") as r:
                assert r.status == 400
    finally:
        await sim.close()


async def test_ten_thousand_messages_with_latency_errors_and_receipts_balance_exactly():
    sim = await simulator(submit_latency={"kind": "uniform", "min_ms": 0, "max_ms": 5}, errors={"probabilities": {"ESME_RSYSERR": 0.05}},
                          seed=11, receipts={"delay": {"kind": "uniform", "min_ms": 0, "max_ms": 20}})
    try:
        receipts: list[str] = []
        done = asyncio.Event()
        accepted = 0

        def on_message(pdu):
            receipts.append(receipt_info(pdu).message_id)
            if accepted and len(receipts) == accepted:
                done.set()

        c = await connect(sim, window=200, on_message=on_message)
        futures = [await c.send(SubmitSm(destination_addr="447700900123", registered_delivery=1)) for _ in range(10_000)]
        responses = await asyncio.gather(*futures)
        accepted = sum(r.command_status == 0 for r in responses)
        rejected = sum(r.command_status == CommandStatus.ESME_RSYSERR for r in responses)
        assert accepted + rejected == 10_000 and 350 <= rejected <= 650
        if len(receipts) == accepted:
            done.set()
        await asyncio.wait_for(done.wait(), 30)
        assert len(receipts) == len(set(receipts)) == accepted
        assert set(receipts) == {r.message_id for r in responses if r.command_status == 0}
        await wait_until(lambda: sim.sim.stats.receipts_acked == accepted, what="receipts acknowledged")
        await c.unbind()
    finally:
        await sim.close()


@pytest.mark.smsc(errors={"rules": [{"destination": "999$", "status": "ESME_RINVDSTADR"}]})
def test_smpplib_client_against_the_sync_fixture(smsc_sync):
    import smpplib.client
    import smpplib.exceptions

    client = smpplib.client.Client(smsc_sync.host, smsc_sync.port, allow_unknown_opt_params=True)
    receipts, sent, refused = [], [], []
    client.set_message_received_handler(lambda pdu: receipts.append(pdu))
    client.set_message_sent_handler(lambda pdu: sent.append(pdu))
    client.connect()
    try:
        client.bind_transceiver(system_id="me", password="pw")
        client.send_message(source_addr="A", destination_addr="447700900999", short_message=b"refused")
        try:
            client.read_once()
        except smpplib.exceptions.PDUError as exc:
            refused.append(exc.args[1])
        client.send_message(source_addr="A", destination_addr="447700900123", short_message=b"second", registered_delivery=1)
        while not sent or not receipts:
            client.read_once()
        smsc_sync.send_mo("447700900123", "555", "mo for smpplib")
        while len(receipts) < 2:
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    assert refused == [CommandStatus.ESME_RINVDSTADR]
    (message,) = smsc_sync.wait_for_messages(1)
    assert message.text == "second"
    mid = sent[0].message_id.decode() if isinstance(sent[0].message_id, bytes) else sent[0].message_id
    got = receipts[0].receipted_message_id
    assert (got.decode() if isinstance(got, bytes) else got) == mid
    assert receipts[1].short_message == b"mo for smpplib"


PLUGIN_TEST = '''
import pytest
import smppcore

@pytest.mark.smsc(errors={"rules": [{"destination": "999$", "status": "ESME_RINVDSTADR"}]})
async def test_my_esme(smsc):
    async with smppcore.connect(smsc.host, smsc.port, system_id="me", password="pw") as c:
        await c.submit_sm(destination_addr="447700900123", short_message=b"hello")
        with pytest.raises(smppcore.SmppStatusError):
            await c.submit_sm(destination_addr="447700900999")
        smsc.fail_next("ESME_RTHROTTLED")
        with pytest.raises(smppcore.SmppStatusError):
            await c.submit_sm(destination_addr="1")
    messages = await smsc.wait_for_messages(1)
    assert messages[0].text == "hello"
    assert smsc.stats.rejected == {"ESME_RINVDSTADR": 1, "ESME_RTHROTTLED": 1}

@pytest.mark.smsc(window="wide")
async def test_bad_config(smsc):
    pass
'''


def test_pytest_plugin_as_a_user_project_uses_it(pytester):
    pytester.makepyfile(test_user=PLUGIN_TEST)
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*smsc configuration: window: expected int, got str*"])


def test_simulate_command_runs_standalone_and_stops_on_sigterm(tmp_path):
    import signal
    import socket
    import urllib.request

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind((HOST, 0))
            ports.append(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "smpphub", "simulate", "--listen", f"{HOST}:{ports[0]}", "--http", f"{HOST}:{ports[1]}", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert b"listening" in proc.stdout.readline()

        async def one():
            async with smppcore.connect(HOST, ports[0], system_id="x", password="y") as c:
                await c.submit_sm(destination_addr="1", short_message=b"standalone")

        smppcore.run(one())
        with urllib.request.urlopen(f"http://{HOST}:{ports[1]}/stats", timeout=5) as r:
            assert b'"accepted":1' in r.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    "content,fragment",
    [("window = [", "not valid TOML"), ("wndow = 5\n", "wndow: unknown key"), ("[throttle]\nper_bind = -1\n", "throttle.per_bind: expected float >= 0")],
)
def test_simulate_config_errors_exit_2(tmp_path, content, fragment):
    path = tmp_path / "sim.toml"
    path.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "smpphub", "simulate", "--config", str(path)], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]


def test_the_readme_example_passes(pytester):
    readme = (ROOT / "simulator" / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    pytester.makepyfile(test_readme_example=example)
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=1)
