"""What the hub logs: each message's steps at debug, the access log, the summary line,
and upstream reconnects (every attempt, with its delay; then ``upstream_up``)."""

from __future__ import annotations

import collections
import json
import os
import re
import socket

import pytest
import structlog
from hubkit import hub_config, running_hub, simulator, wait_until

import smppcore
from smppcore import CommandStatus
from smppcore.receipt import receipt_info
from smpphub.router.config import ConfigError, config_from_dict
from smpphub.router.upstream import OutageLog

HOST = "127.0.0.1"
UK = [{"prefix": "44", "upstreams": ["uk"]}]


@pytest.fixture
async def uk():
    sim = await simulator(errors={"rules": [{"destination": "^447700999", "status": "ESME_RINVDSTADR"}]})
    yield sim
    await sim.close()


def events(logs: list[dict], name: str) -> list[dict]:
    return [e for e in logs if e["event"] == name]


# ---- one message, step by step ---------------------------------------------------------------------


async def test_a_message_with_a_receipt_logs_each_step_with_its_keys(uk):
    config = hub_config({"uk": uk}, UK, log={"level": "debug"})
    with structlog.testing.capture_logs() as logs:
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
                resp = await acme.submit_sm(source_addr="12345", destination_addr="447700900123",
                                            short_message=b"hello", registered_delivery=1)
                assert receipt_info(await acme.next_message(timeout=5)).message_id == resp.message_id
                await wait_until(lambda: events(logs, "receipt_delivered"), what="receipt_delivered logged")
                record = await hub.store.get(resp.message_id)
    mine = [e for e in logs if e.get("message_id") == resp.message_id]
    assert [e["event"] for e in mine] == [
        "message_accepted", "message_routed", "message_submitted", "receipt_received", "receipt_delivered",
    ]
    assert all(e["log_level"] == "debug" and e["account"] == "acme" for e in mine)
    accepted, routed, submitted, received, delivered = mine
    assert (accepted["source"], accepted["dest"], accepted["segments"], accepted["part"], accepted["length"]) == \
        ("12345", "447700900123", 1, 1, 5)
    assert (routed["upstream"], routed["prefix"], routed["attempt"]) == ("uk", "44", 1)
    assert record is not None and record.upstream_id
    assert (submitted["upstream"], submitted["upstream_id"]) == ("uk", record.upstream_id)
    assert (received["upstream"], received["upstream_id"], received["state"]) == ("uk", record.upstream_id, "DELIVERED")
    assert received["final"] is True and received["forwarded"] is True
    assert re.fullmatch(r"127\.0\.0\.1:\d+/bound_trx", delivered["bind"])
    assert delivered["status"] == "ESME_ROK"
    assert (delivered["source"], delivered["dest"]) == ("12345", "447700900123")  # the message's, not the receipt's


async def test_a_receipt_waiting_for_a_receiver_bind_is_logged_held_then_delivered(uk):
    config = hub_config({"uk": uk}, UK, log={"level": "debug"})
    with structlog.testing.capture_logs() as logs:
        async with running_hub(config) as hub:
            port = hub.servers[0].port
            async with smppcore.connect(HOST, port, system_id="acme", password="pw", bind="tx") as tx:
                resp = await tx.submit_sm(destination_addr="447700900123", short_message=b"x", registered_delivery=1)
            await wait_until(lambda: events(logs, "receipt_held"), what="receipt_held logged")
            async with smppcore.connect(HOST, port, system_id="acme", password="pw", bind="rx") as rx:
                await rx.next_message(timeout=5)
                await wait_until(lambda: events(logs, "receipt_delivered"), what="receipt_delivered logged")
    held, = events(logs, "receipt_held")
    delivered, = events(logs, "receipt_delivered")
    assert held["message_id"] == delivered["message_id"] == resp.message_id
    assert held["account"] == "acme" and held["hold"] > 0
    assert delivered["bind"].endswith("/bound_rx")


async def test_retries_failover_and_a_permanent_failure_are_logged_in_order():
    flaky = await simulator(errors={"probabilities": {"ESME_RTHROTTLED": 1.0}})
    good = await simulator()
    try:
        routes = [{"prefix": "44", "upstreams": ["flaky", "good"]}, {"prefix": "49", "upstreams": ["good"]}]
        config = hub_config({"flaky": flaky, "good": good}, routes, log={"level": "debug"})
        with structlog.testing.capture_logs() as logs:
            async with running_hub(config) as hub:
                async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
                    moved = (await acme.submit_sm(destination_addr="447700900001")).message_id
                    await wait_until(lambda: len(good.sim.messages) == 1, what="failed over after retries")
                    good.sim.fail_next("ESME_RINVDSTADR")
                    refused = (await acme.submit_sm(destination_addr="491234567")).message_id
                    await wait_until(lambda: events(logs, "message_failed"), what="message_failed logged")
    finally:
        await flaky.close()
        await good.close()
    story = [(e["event"], e.get("upstream")) for e in logs if e.get("message_id") == moved]
    assert story == [
        ("message_accepted", None),
        ("message_routed", "flaky"), ("message_retry", "flaky"),
        ("message_routed", "flaky"), ("message_retry", "flaky"),
        ("message_routed", "flaky"), ("message_failover", "flaky"),
        ("message_routed", "good"), ("message_submitted", "good"),
    ]
    retries = [e for e in logs if e.get("message_id") == moved and e["event"] == "message_retry"]
    assert [(e["status"], e["attempt"]) for e in retries] == [("ESME_RTHROTTLED", 1), ("ESME_RTHROTTLED", 2)]
    failover, = (e for e in logs if e.get("message_id") == moved and e["event"] == "message_failover")
    assert (failover["next_upstream"], failover["delay"]) == ("good", None)
    story = [(e["event"], e.get("upstream"), e.get("status")) for e in logs if e.get("message_id") == refused]
    assert story == [("message_accepted", None, None), ("message_routed", "good", None),
                     ("message_failed", "good", "ESME_RINVDSTADR")]


async def test_an_mo_is_logged_received_then_delivered_to_a_bind(uk):
    config = hub_config({"uk": uk}, UK, log={"level": "debug"}, mo_routes=[{"prefix": "12345", "account": "beta"}])
    with structlog.testing.capture_logs() as logs:
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="beta", password="pw", bind="rx") as beta:
                uk.sim.send_mo("447700900001", "12345", "for beta")
                assert (await beta.next_message(timeout=5)).short_message == b"for beta"
                await wait_until(lambda: events(logs, "mo_delivered"), what="mo_delivered logged")
    received, = events(logs, "mo_received")
    delivered, = events(logs, "mo_delivered")
    assert (received["upstream"], received["account"], received["source"], received["dest"]) == \
        ("uk", "beta", "447700900001", "12345")
    assert (delivered["account"], delivered["source"], delivered["dest"]) == ("beta", "447700900001", "12345")
    assert delivered["bind"].endswith("/bound_rx")


REFUSALS = [
    # (name, account settings, submits (the last is the one refused), status, reason says)
    ("throttled", {"max_rate": 0.01}, [{}, {}], CommandStatus.ESME_RTHROTTLED, "max_rate"),
    ("unroutable", {}, [{"destination_addr": "4912345678"}], CommandStatus.ESME_RINVDSTADR, "no route"),
    ("source not allowed", {"source_addrs": ["12345"]}, [{"source_addr": "999"}], CommandStatus.ESME_RINVSRCADR,
     "source"),
    ("bad validity", {}, [{"validity_period": "not a time"}], CommandStatus.ESME_RINVEXPIRY, "validity_period"),
]


@pytest.mark.parametrize("name, account, submits, status, says", REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_a_refused_submit_logs_message_refused_with_its_status(uk, name, account, submits, status, says):
    config = hub_config({"uk": uk}, UK, log={"level": "debug"},
                        accounts=[{"system_id": "acme", "password": "pw", **account}])
    with structlog.testing.capture_logs() as logs:
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
                answers = []
                for fields in submits:
                    pdu = smppcore.SubmitSm(**{"destination_addr": "447700900123", **fields})
                    answers.append(await (await acme.send(pdu)))
    assert [a.command_status for a in answers[:-1]] == [0] * (len(submits) - 1)
    assert answers[-1].command_status == status
    refused, = events(logs, "message_refused")
    assert refused["status"] == status.name and refused["account"] == "acme"
    assert says in refused["reason"]
    assert refused["sequence"] == answers[-1].sequence_number
    assert "message_id" not in refused  # refused: it never got one


async def test_at_info_level_no_message_step_is_logged(uk):
    with structlog.testing.capture_logs() as logs:
        async with running_hub(hub_config({"uk": uk}, UK)) as hub:
            assert not hub.msglog.on
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
                await acme.submit_sm(destination_addr="447700900123", registered_delivery=1)
                await acme.next_message(timeout=5)
                with pytest.raises(smppcore.SmppStatusError):
                    await acme.submit_sm(destination_addr="4912345678")
    assert {e["event"] for e in logs if e["event"].startswith(("message_", "receipt_", "mo_"))} == set()


# ---- the access log ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["console", "json"])
async def test_the_access_log_file_has_exactly_one_line_per_outcome(uk, tmp_path, fmt):
    path = tmp_path / "access.log"
    config = hub_config({"uk": uk}, UK, log={"access_log": str(path), "format": fmt},
                        mo_routes=[{"prefix": "12345", "account": "acme"}])
    n = 6
    async with running_hub(config) as hub:
        assert not path.exists()  # opened at the first line
        async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
            ids = [(await acme.submit_sm(source_addr="777", destination_addr=f"4477009{i:05d}", short_message=b"hi",
                                         registered_delivery=1)).message_id for i in range(n)]
            failed = (await acme.submit_sm(destination_addr="447700999000", registered_delivery=1)).message_id
            with pytest.raises(smppcore.SmppStatusError):
                await acme.submit_sm(destination_addr="4912345678")
            uk.sim.send_mo("447700900001", "12345", "hello hub")
            got = [await acme.next_message(timeout=5) for _ in range(n + 2)]  # n receipts, 1 failure receipt, 1 MO
            assert sum(1 for m in got if m.short_message == b"hello hub") == 1
    lines = path.read_text().splitlines()
    if fmt == "json":
        entries = [json.loads(line) for line in lines]
        assert {e["event"] for e in entries} == {"access"}
    else:
        entries = [_parse_line(line) for line in lines]
    steps = collections.Counter(e["step"] for e in entries)
    assert steps == {"sent": n, "receipt": n, "failed": 1, "refused": 1, "mo": 1}
    sent = {e["message_id"]: e for e in entries if e["step"] == "sent"}
    assert sorted(sent) == sorted(ids)
    first = sent[ids[0]]
    assert (first["account"], first["upstream"], first["source"], first["dest"], first["status"]) == \
        ("acme", "uk", "777", "447700900000", "ESME_ROK")
    assert str(first["segments"]) == "1" and str(first["length"]) == "2" and first["upstream_id"] not in (None, "-")
    receipts = {e["message_id"]: e for e in entries if e["step"] == "receipt"}
    assert sorted(receipts) == sorted(ids)
    assert receipts[ids[0]]["upstream_id"] == first["upstream_id"] and receipts[ids[0]]["status"] == "DELIVERED"
    assert (receipts[ids[0]]["source"], receipts[ids[0]]["dest"]) == ("777", "447700900000")
    fail, = (e for e in entries if e["step"] == "failed")
    assert (fail["message_id"], fail["status"], fail["upstream"]) == (failed, "ESME_RINVDSTADR", "uk")
    refused, = (e for e in entries if e["step"] == "refused")
    assert (refused["dest"], refused["status"]) == ("4912345678", "ESME_RINVDSTADR")
    mo, = (e for e in entries if e["step"] == "mo")
    assert (mo["account"], mo["source"], mo["dest"], mo["status"]) == ("acme", "447700900001", "12345", "ESME_ROK")


def _parse_line(line: str) -> dict[str, str]:
    """``<time> <step> key=value ...`` back into a dict (values may be JSON-quoted)."""
    stamp, step, rest = line.split(" ", 2)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", stamp), line
    fields = {"step": step}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', rest):
        fields[m.group(1)] = json.loads(m.group(2)) if m.group(2).startswith('"') else m.group(2)
    return fields


async def test_access_log_dash_is_access_events_with_the_other_logs(uk):
    config = hub_config({"uk": uk}, UK, log={"access_log": "-"})
    with structlog.testing.capture_logs() as logs:
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
                resp = await acme.submit_sm(destination_addr="447700900123")
                await wait_until(lambda: events(logs, "access"), what="access event")
    access, = events(logs, "access")
    assert (access["step"], access["message_id"], access["log_level"]) == ("sent", resp.message_id, "info")


# ---- the periodic summary ------------------------------------------------------------------------------


async def test_the_summary_line_comes_every_interval_and_stops_with_the_hub(uk):
    config = hub_config({"uk": uk}, UK, log={"summary_interval": 0.05})
    with structlog.testing.capture_logs() as logs:
        async with running_hub(config) as hub:
            async with smppcore.connect(HOST, hub.servers[0].port, system_id="acme", password="pw") as acme:
                for _ in range(3):
                    await acme.submit_sm(destination_addr="447700900123")
                await wait_until(lambda: any(e["accepted_per_s"] > 0 for e in events(logs, "hub_summary")),
                                 what="a summary counting the messages")
                await wait_until(lambda: events(logs, "hub_summary")[-1]["binds"] == {"acme": 1},
                                 what="a summary with the bind")
            task = hub._summary_task
            assert task is not None
        assert task.done()
    lines = events(logs, "hub_summary")
    assert sum(e["accepted_per_s"] * e["seconds"] for e in lines) == pytest.approx(3, abs=0.1)
    last = lines[-1]
    assert (last["upstreams_up"], last["upstreams_down"], last["log_level"]) == (["uk"], [], "info")
    for key in ("sent_per_s", "receipts_per_s", "mo_per_s", "delivered_per_s", "queued", "in_flight", "parked",
                "waiting", "receipts_held"):
        assert key in last


async def test_summary_interval_0_turns_it_off(uk):
    async with running_hub(hub_config({"uk": uk}, UK, log={"summary_interval": 0})) as hub:
        assert hub._summary_task is None


# ---- upstream reconnects ---------------------------------------------------------------------------------


async def test_an_upstream_that_is_down_logs_every_attempt_with_its_delay_then_up():
    closed = socket.socket()  # bound, never listening: connecting to it is refused
    closed.bind((HOST, 0))
    port = closed.getsockname()[1]
    config = hub_config({"uk": port}, UK)
    revived = None
    try:
        with structlog.testing.capture_logs() as logs:
            async with running_hub(config, wait=False) as hub:
                await wait_until(lambda: len(events(logs, "upstream_connect_failed")) >= 3,
                                 what="three failed attempts")
                closed.close()
                revived = await simulator(listen=f"{HOST}:{port}")
                await wait_until(lambda: events(logs, "upstream_up"), what="upstream_up")
                await hub.wait_ready(5)
    finally:
        closed.close()
        if revived is not None:
            await revived.close()
    failed = events(logs, "upstream_connect_failed")
    assert all(e["log_level"] == "warning" and e["upstream"] == "uk" for e in failed)
    assert [e["attempt"] for e in failed] == list(range(1, len(failed) + 1))  # each attempt, none skipped (<= 5)
    assert all("ConnectionRefusedError" in e["error"] or "OSError" in e["error"] for e in failed), failed[0]["error"]
    ceilings = [e["ceiling"] for e in failed]
    assert ceilings == sorted(ceilings) and ceilings[0] < ceilings[2]  # the back-off grows: 0.05, 0.1, 0.2 ...
    assert all(0.05 <= e["delay"] <= e["ceiling"] for e in failed)  # the delay is drawn under it (jitter)
    up, = events(logs, "upstream_up")
    assert up["failed_attempts"] == len(failed) and up["outage"] > 0 and up["log_level"] == "info"


OUTAGE = [
    # (seconds since the outage began, logged?, suppressed reported on the logged line)
    (0.0, True, 0), (1.0, True, 0), (2.0, True, 0), (3.0, True, 0), (4.0, True, 0),  # the first 5: each one
    (10.0, False, None), (50.0, False, None), (63.0, False, None),  # then quiet for 60 s after the last line (at 4 s)
    (64.0, True, 3),  # 60 s after it: logged, saying 3 went unlogged
    (100.0, False, None), (124.0, True, 1),
]


def test_outage_log_rule_first_five_then_one_a_minute():
    outage = OutageLog(now=0.0)
    for n, (at, logged, suppressed) in enumerate(OUTAGE, 1):
        assert outage.failed(at) is logged, at
        assert outage.attempts == n
        if logged:
            assert outage.suppressed == suppressed, at
            outage.logged()


# ---- configuration ---------------------------------------------------------------------------------------


def test_log_settings_are_checked_at_load(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    # the tests may run as root, for whom every folder is writable: say this one is not
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(ro) else real_access(path, mode))
    rows = [
        ({"access_log": ""}, None),
        ({"access_log": "-"}, None),
        ({"access_log": str(tmp_path / "access.log")}, None),
        ({"access_log": str(tmp_path / "nope" / "access.log")}, "log.access_log: no such directory"),
        ({"access_log": str(tmp_path)}, f"log.access_log: {str(tmp_path)!r} is a directory"),
        ({"access_log": str(ro / "access.log")}, f"log.access_log: {str(ro / 'access.log')!r} is not writable"),
        ({"summary_interval": -1}, "log.summary_interval: expected float >= 0"),
        ({"summary_interval": 0}, None),
        ({"access": "-"}, "log.access: unknown key"),
    ]
    for log, error in rows:
        data = {"log": log}
        if error is None:
            assert config_from_dict(data).log.access_log == log.get("access_log", "")
            continue
        with pytest.raises(ConfigError) as info:
            config_from_dict(data)
        assert str(info.value).startswith(error), (log, str(info.value))
        assert "\n" not in str(info.value)
