"""The simulator's HTTP control API, driven by curl from another process against `smpphub simulate`.

One ``smpphub simulate`` process serves the whole module (stopped with SIGTERM at the
end: exit 0); each test binds its own ESME (our client, in this process) and resets
the record first. Every request is a curl process, as a test suite in another
language would make it. The README's curl block runs here exactly as printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from simulatekit import simulate_process

import smppcore
from smppcore import CommandStatus
from smppcore.connection import SmppStatusError
from smppcore.text import decode_text, parse_udh

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CONFIG = """
[[accounts]]
system_id = "acme"
password = "secret"

[[accounts]]
system_id = "other"
password = "secret"
"""


@dataclass
class Served:
    smpp_port: int
    http_port: int

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.http_port}"


@contextmanager
def simulate(directory: Path) -> Iterator[Served]:
    """``smpphub simulate`` with two accounts, on free ports."""
    (directory / "sim.toml").write_text(CONFIG)
    with simulate_process(directory, "--config", "sim.toml", "--listen", f"{HOST}:0", "--http", f"{HOST}:0",
                          "--quiet") as sim:
        yield Served(sim.port(r"listening on [\d.]+:(\d+)\n"), sim.port(r"http://[\d.]+:(\d+)/"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with simulate(tmp_path_factory.mktemp("simulate")) as running:
        yield running


async def curl(*args: str, body: bytes | None = None) -> tuple[int, dict]:
    """Run curl (another process; -g: brackets in a URL are not globs); its HTTP status and JSON answer."""
    if body is not None:
        args = (*args, "--data-binary", "@-")
    proc = await asyncio.create_subprocess_exec(
        "curl", "-s", "-g", "-w", "\n%{http_code}", *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(body), 60)
    assert proc.returncode == 0, err.decode()
    body, _, code = out.decode().rpartition("\n")
    return int(code), json.loads(body)


async def post(served: Served, path: str, body: object = None, method: str = "POST") -> tuple[int, dict]:
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    return await curl("-X", method, served.base + path, body=data)


class Esme:
    """Our client bound to the simulator, collecting what it is sent."""

    def __init__(self, client: smppcore.Client) -> None:
        self.client = client
        self.received: asyncio.Queue[smppcore.Pdu] = asyncio.Queue()

    async def next(self, timeout: float = 10) -> smppcore.Pdu:
        return await asyncio.wait_for(self.received.get(), timeout)


@pytest.fixture
async def esme(served: Served) -> AsyncIterator[Esme]:
    status, _ = await post(served, "/reset")
    assert status == 200
    async with bound_esme(served) as bound:
        yield bound


@asynccontextmanager
async def bound_esme(served: Served) -> AsyncIterator[Esme]:
    holder: list[Esme] = []

    def on_message(pdu: smppcore.Pdu) -> int:
        holder[0].received.put_nowait(pdu)
        return 0

    client = await smppcore.connect(HOST, served.smpp_port, system_id="acme", password="secret", on_message=on_message)
    holder.append(Esme(client))
    try:
        yield holder[0]
    finally:
        if client.is_open:
            await client.unbind(timeout=2)


async def my_bind_id(served: Served, esme: Esme) -> int:
    status, body = await curl(served.base + "/binds")
    assert status == 200
    local = esme.client.transport.get_extra_info("sockname")
    (mine,) = [b for b in body["binds"] if b["peer"] == f"{local[0]}:{local[1]}"]
    assert mine["system_id"] == "acme" and mine["bind_type"] == "trx" and mine["state"] == "bound_trx"
    return mine["id"]


# ---- POST /mo ------------------------------------------------------------------------------------


def whole_text(pdus: list[smppcore.Pdu]) -> str:
    parts = []
    for pdu in pdus:
        data = pdu.short_message
        if pdu.esm_class & 0x40:
            data = parse_udh(data)[1]
        parts.append(decode_text(data, pdu.data_coding))
    return "".join(parts)


@pytest.mark.parametrize("text,data_coding,expected_coding,segments", [
    ("Hello from the network", None, 0, 1),
    ("Grüße {aus} dem Netz €", None, 0, 1),  # GSM with its extension table
    ("Привет, мир", None, 8, 1),  # not GSM: UCS-2
    ("ab" * 200, None, 0, 3),  # long: split with a UDH
    ("Ünïcødé " * 30, 8, 8, 4),  # asked for UCS-2
    ("café", 3, 3, 1),  # Latin-1
])
async def test_mo_reaches_the_esme_in_any_coding(served: Served, esme: Esme, text: str, data_coding: int | None,
                                                 expected_coding: int, segments: int) -> None:
    body: dict[str, object] = {"source_addr": "447700900123", "destination_addr": "12345", "text": text,
                               "system_id": "acme"}
    if data_coding is not None:
        body["data_coding"] = data_coding
    status, answer = await post(served, "/mo", body)
    assert status == 200, answer
    assert answer == {"system_ids": ["acme"], "segments": segments, "data_coding": expected_coding}
    pdus = [await esme.next() for _ in range(segments)]
    assert {p.data_coding for p in pdus} == {expected_coding}
    assert {(p.source_addr, p.destination_addr) for p in pdus} == {("447700900123", "12345")}
    assert whole_text(pdus) == text


async def test_mo_binary_takes_hex(served: Served, esme: Esme) -> None:
    status, answer = await post(served, "/mo", {"source_addr": "1", "destination_addr": "2", "hex": "00ff10",
                                               "data_coding": 4})
    assert (status, answer) == (200, {"system_ids": ["acme"], "segments": 1, "data_coding": 4})
    pdu = await esme.next()
    assert pdu.short_message == b"\x00\xff\x10" and pdu.data_coding == 4


async def test_mo_without_a_receiver_is_409(served: Served, esme: Esme) -> None:
    status, answer = await post(served, "/mo", {"source_addr": "1", "destination_addr": "2", "text": "x",
                                               "system_id": "other"})
    assert status == 409 and answer["field"] == "system_id"


# ---- bad input: every entry point, one JSON line naming the field ---------------------------------

BAD = [
    ("POST", "/mo", "", 400, "body"),
    ("POST", "/mo", "not json", 400, "body"),
    ("POST", "/mo", "[1, 2]", 400, None),
    ("POST", "/mo", {"destination_addr": "2", "text": "x"}, 400, "source_addr"),
    ("POST", "/mo", {"source_addr": "1" * 21, "destination_addr": "2", "text": "x"}, 400, "source_addr"),
    ("POST", "/mo", {"source_addr": "1", "destination_addr": "2", "text": ""}, 400, "text"),
    ("POST", "/mo", {"source_addr": "1", "destination_addr": "2", "text": "x", "colour": 1}, 400, "colour"),
    ("POST", "/mo", {"source_addr": "1", "destination_addr": "2", "text": "x", "data_coding": 256}, 400,
     "data_coding"),
    ("POST", "/mo", {"source_addr": "1", "destination_addr": "2", "text": "Привет", "data_coding": 3}, 400,
     "data_coding"),
    ("POST", "/mo", {"source_addr": "1", "destination_addr": "2", "text": "x", "data_coding": 4}, 400,
     "data_coding"),
    ("POST", "/mo", {"source_addr": "1", "destination_addr": "2", "hex": "zz"}, 400, "hex"),
    ("POST", "/mo", {"source_addr": "1", "destination_addr": "2", "text": "x" * 50_000}, 400, "text"),
    ("POST", "/mo", {"source_addr": "1", "destination_addr": "2", "text": "x", "system_id": "x" * 16}, 400,
     "system_id"),
    ("POST", "/accounts/acme/fail-next", {"count": 0}, 400, "count"),
    ("POST", "/accounts/acme/fail-next", {"count": 100_001}, 400, "count"),
    ("POST", "/accounts/acme/fail-next", {"status": "ESME_NOPE"}, 400, "status"),
    ("POST", "/accounts/acme/fail-next", {"status": "ESME_ROK"}, 400, "status"),
    ("POST", "/accounts/nobody/fail-next", {"count": 1}, 404, "system_id"),
    ("POST", "/accounts/" + "x" * 16 + "/fail-next", {"count": 1}, 400, "system_id"),
    ("PUT", "/settings", {}, 400, None),
    ("PUT", "/settings", {"submit_latency": {"kind": "fixed", "ms": -5}}, 400, "submit_latency.ms"),
    ("PUT", "/settings", {"throttle": {"per_bind": "fast"}}, 400, "throttle.per_bind"),
    ("PUT", "/settings", {"errors": {"probabilities": {"ESME_RSYSERR": 2}}}, 400, "errors.probabilities.ESME_RSYSERR"),
    ("PUT", "/settings", {"errors": {"rules": [{"destination": "(", "status": "ESME_RSYSERR"}]}}, 400,
     "errors.rules[0].destination"),
    ("PUT", "/settings", {"receipts": {"final_states": {"GONE": 1}}}, 400, "receipts.final_states"),
    ("PUT", "/settings", {"listen": "0.0.0.0:1"}, 400, "listen"),
    ("PUT", "/settings", {"receipts": 5}, 400, "receipts"),
    ("PUT", "/settings", {"receipts": {"message_id_format": "hex"}}, 400, "receipts.message_id_format"),
    ("PUT", "/settings", {"network": [{"prefix": "44x"}]}, 400, "network[0].prefix"),
    ("PUT", "/settings", {"network": [{"prefix": "44", "undeliverable": 2}]}, 400, "network[0].undeliverable"),
    ("PATCH", "/settings", {"receipts": {"delay": {"kind": "uniform", "min_ms": 9, "max_ms": 1}}}, 400,
     "receipts.delay"),
    ("POST", "/binds/abc/drop", None, 400, "id"),
    ("POST", "/binds/0/hang", None, 400, "id"),
    ("POST", "/binds/999999/drop", None, 404, "id"),
    ("GET", "/messages?limit=many", None, 400, "limit"),
    ("GET", "/messages?limit=-1", None, 400, "limit"),
    ("GET", "/wait", None, 400, "to"),
    ("GET", "/wait?text=(", None, 400, "text"),
    ("GET", "/wait?to=1&timeout=0", None, 400, "timeout"),
    ("GET", "/wait?to=1&timeout=121", None, 400, "timeout"),
    ("GET", "/wait?to=1&timeout=soon", None, 400, "timeout"),
    ("GET", "/wait?to=1&colour=red", None, 400, "colour"),
    ("GET", "/static/../../etc/passwd", None, 404, None),
    ("GET", "/nowhere", None, 404, None),
    ("DELETE", "/mo", None, 405, None),
]


@pytest.mark.parametrize("method,path,body,status,field", BAD, ids=[f"{m} {p} {i}" for i, (m, p, *_) in enumerate(BAD)])
async def test_bad_requests_get_json_naming_the_field(served: Served, method: str, path: str, body: object,
                                                      status: int, field: str | None) -> None:
    got, answer = await post(served, path, body, method=method)
    assert got == status, answer
    assert isinstance(answer.get("error"), str) and answer["error"]
    if field is not None:
        assert answer.get("field") == field, answer


async def test_a_body_too_large_is_413_json(served: Served) -> None:
    status, answer = await post(served, "/mo", "x" * (300 * 1024))
    assert status == 413 and "error" in answer


# ---- fail-next, settings ---------------------------------------------------------------------------


async def test_fail_next_of_one_account(served: Served, esme: Esme) -> None:
    status, answer = await post(served, "/accounts/acme/fail-next", {"count": 2, "status": "ESME_RTHROTTLED"})
    assert (status, answer["count"], answer["status"], answer["queued"]) == (200, 2, 0x58, 2)
    async with smppcore.connect(HOST, served.smpp_port, system_id="other", password="secret") as other:
        await other.submit_sm(destination_addr="1", short_message=b"not acme's: accepted")
    for _ in range(2):
        with pytest.raises(SmppStatusError) as info:
            await esme.client.submit_sm(destination_addr="1", short_message=b"fails")
        assert info.value.response.command_status == CommandStatus.ESME_RTHROTTLED
    await esme.client.submit_sm(destination_addr="1", short_message=b"accepted again")
    status, answer = await post(served, "/fail-next", {"count": 1, "status": "0x45"})  # anyone's, by number
    assert status == 200 and answer["system_id"] is None and answer["status"] == 0x45
    with pytest.raises(SmppStatusError):
        await esme.client.submit_sm(destination_addr="1", short_message=b"fails")


async def test_settings_change_live(served: Served, esme: Esme) -> None:
    rule = {"rules": [{"destination": "^999", "status": "ESME_RINVDSTADR"}]}
    status, answer = await post(served, "/settings", {"errors": rule}, method="PUT")
    assert status == 200 and answer["errors"]["rules"][0]["status"] == "ESME_RINVDSTADR"
    with pytest.raises(SmppStatusError) as info:
        await esme.client.submit_sm(destination_addr="999123", short_message=b"refused now")
    assert info.value.response.command_status == CommandStatus.ESME_RINVDSTADR
    await esme.client.submit_sm(destination_addr="447700900123", short_message=b"others pass")
    # receipts: UNDELIV from now on
    status, _ = await post(served, "/settings", {"receipts": {"final_states": {"UNDELIV": 1}}}, method="PATCH")
    assert status == 200
    await esme.client.submit_sm(destination_addr="447700900123", short_message=b"r", registered_delivery=1)
    receipt = await esme.next()
    assert b"stat:UNDELIV" in receipt.short_message
    status, current = await curl(served.base + "/settings")
    assert status == 200 and current["receipts"]["final_states"] == {"UNDELIV": 1.0}
    # back to the defaults for the other tests
    status, _ = await post(served, "/settings", {"errors": {}, "receipts": {}}, method="PUT")
    assert status == 200
    await esme.client.submit_sm(destination_addr="999123", short_message=b"accepted again")


# ---- binds: list, hang, drop --------------------------------------------------------------------------


async def test_hang_then_drop_a_bind(served: Served, esme: Esme) -> None:
    bind_id = await my_bind_id(served, esme)
    status, answer = await post(served, f"/binds/{bind_id}/hang")
    assert status == 200 and answer["hung"]["hung"] is True
    fut = esme.client.send_nowait(smppcore.pdus.EnquireLink())
    done, _ = await asyncio.wait([fut], timeout=0.5)
    assert not done  # not answered: the simulator stopped reading this connection
    fut.cancel()
    status, answer = await post(served, f"/binds/{bind_id}/drop")
    assert status == 200 and answer["dropped"]["id"] == bind_id
    await asyncio.wait_for(asyncio.shield(esme.client.closed), 10)
    status, answer = await post(served, f"/binds/{bind_id}/drop")
    assert status == 404


# ---- reset, wait -----------------------------------------------------------------------------------------


async def test_reset_forgets_the_record(served: Served, esme: Esme) -> None:
    await esme.client.submit_sm(destination_addr="447700900123", short_message=b"kept, then forgotten")
    status, body = await curl(served.base + "/messages")
    assert status == 200 and body["count"] == 1
    status, body = await post(served, "/reset")
    assert (status, body) == (200, {"reset": True})
    status, body = await curl(served.base + "/messages")
    assert body == {"count": 0, "messages": []}


async def test_wait_answers_when_the_message_arrives(served: Served, esme: Esme) -> None:
    waiting = asyncio.ensure_future(curl(served.base + "/wait?to=447700900999&text=code%20[0-9]%2B&timeout=30"))
    await asyncio.sleep(0)  # let curl start; the wait answers whenever the message comes, before or after
    await esme.client.submit_sm(destination_addr="447700900999", short_message=b"no digits: not this one")
    await esme.client.submit_sm(destination_addr="447700900111", short_message=b"code 1: wrong number")
    await esme.client.submit_sm(destination_addr="447700900999", short_message=b"your code 4821")
    status, body = await waiting
    assert status == 200
    assert body["message"]["text"] == "your code 4821" and body["message"]["destination_addr"] == "447700900999"
    # already there: answered at once
    status, body = await curl(served.base + "/wait?text=wrong&timeout=1")
    assert status == 200 and body["message"]["destination_addr"] == "447700900111"


async def test_wait_times_out_with_what_was_seen(served: Served, esme: Esme) -> None:
    await esme.client.submit_sm(destination_addr="447700900123", short_message=b"something else")
    started = time.monotonic()
    status, body = await curl(served.base + "/wait?to=447700900999&timeout=0.5")
    assert time.monotonic() - started < 20
    assert status == 408
    assert [m["text"] for m in body["seen"]] == ["something else"]


# ---- the README's curl examples, as printed ------------------------------------------------------------------


def readme_curl_block() -> str:
    readme = (ROOT / "simulator" / "README.md").read_text()
    (block,) = re.findall(r"```sh\n(curl -sf 127\.0\.0\.1:8080/binds\n.*?)```", readme, re.S)
    return block


async def test_readme_curl_examples_run_as_printed(tmp_path: Path) -> None:
    """In a simulator of its own: the block names bind 1, the first connection it sees."""
    with simulate(tmp_path) as served:
        async with bound_esme(served) as esme:
            await run_readme_block(served, esme)


async def run_readme_block(served: Served, esme: Esme) -> None:
    await esme.client.submit_sm(source_addr="Shop", destination_addr="447700900123", short_message=b"Your code is 4821")
    lines = readme_curl_block().strip().splitlines()
    assert len(lines) >= 8
    dropped = False
    for line in lines:
        args = shlex.split(line.replace("127.0.0.1:8080", f"127.0.0.1:{served.http_port}"))
        assert args[0] == "curl"
        proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                    env={**os.environ, "LC_ALL": "C.UTF-8"})
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, f"{line}: exit {proc.returncode} {out!r} {err!r}"
        answer = json.loads(out)
        assert "error" not in answer, line
        if "/mo" in line:
            await esme.next()  # each MO reached the ESME
        if "/drop" in line:
            dropped = True
    assert dropped
    await asyncio.wait_for(asyncio.shield(esme.client.closed), 10)



async def test_a_pending_wait_does_not_hold_the_shutdown(tmp_path: Path) -> None:
    with simulate(tmp_path) as served:
        waiting = asyncio.ensure_future(curl(served.base + "/wait?to=1&timeout=100"))
        deadline = time.monotonic() + 20
        while (await curl(served.base + "/snapshot?limit=0"))[1]["waiting"] != 1:
            assert time.monotonic() < deadline, "the long-poll never arrived"
    # out of the block: SIGTERM, and the process exited 0 within simulate_process's bound
    assert await waiting == (503, {"error": "the simulator is shutting down"})
