"""``smpphub check-esme`` against real ESMEs: ours, smpplib, aiosmpplib, node-smpp, and
one deliberately broken ESME per item.

Every ESME is a script under tests/esmes/ run as a subprocess against a checker in
this test's loop (or the ``smpphub check-esme`` command itself, as the README prints
it). The checker listens on 127.0.0.1 port 0; every wait is bounded by the run's own
limits; every process started is stopped on the way out. What each peer fails is
asserted here and written in simulator/README.md's "check-esme" section.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest
from interop_util import RecordingProxy, tshark_available, tshark_smpp, write_tcp_pcap
from oracles import node_available, require
from test_cli_errors import Outcome, Row, assert_one_line, run_in_process, run_subprocess
from venvkit import fenced_blocks

from smpphub.simulator.conformance import CHECKS, EsmeChecker, Limits, Report, Status
from smpphub.simulator.conformance.policies import Throttle
from smpphub.simulator.conformance.probe import Harness

ROOT = Path(__file__).resolve().parent.parent
ESMES = Path(__file__).resolve().parent / "esmes"
HOST = "127.0.0.1"
#: short enough for the suite, long enough for a loaded CI machine: every wait is a bound, not a
#: pause (the first bind waits for a Python or node process to start, eight at once: the longest)
LIMITS = Limits(bind_timeout=60.0, timeout=5.0, throttle_for=0.5)
ALL = [check.name for check in CHECKS]
INFORMATIONAL = {check.name: Status.INFO for check in CHECKS if check.informational}
PASSES = {name: Status.PASS for name in ALL} | INFORMATIONAL


def python_esme(script: str, *args: str) -> list[str]:
    return [sys.executable, str(ESMES / script), *args]


class Esme:
    """An ESME subprocess; its output kept for the assertion messages."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out = ""

    async def stop(self, grace: float) -> None:
        """Let it end by itself for ``grace`` seconds (ours exits when unbound), then kill it."""
        try:
            out, err = await asyncio.wait_for(self.proc.communicate(), grace)
        except TimeoutError:
            self.proc.kill()
            out, err = await self.proc.communicate()
        self.out = (out + err).decode(errors="replace")


@asynccontextmanager
async def esme_process(argv: list[str]) -> AsyncIterator[Esme]:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    esme = Esme(proc)
    try:
        yield esme
    finally:
        if proc.returncode is None:
            await esme.stop(0)


async def check(argv_for_port, limits: Limits = LIMITS, grace: float = 5.0, **checker_args: str) -> tuple[Report, Esme]:
    """Run the battery in this loop against the ESME that ``argv_for_port(port)`` starts."""
    checker = EsmeChecker(limits, host=HOST, port=0, **checker_args)
    port = await checker.start()
    try:
        async with esme_process(argv_for_port(port)) as esme:
            report = await checker.run()
            await checker.close()
            await esme.stop(grace)
    finally:
        await checker.close()
    return report, esme


def statuses(report: Report) -> dict[str, Status]:
    return {r.name: r.status for r in report.results}


def explain(report: Report, esme: Esme) -> str:
    lines = [f"{r.status.name} {r.name}: {r.summary}" for r in report.results]
    return "\n".join(lines) + "\n--- ESME output ---\n" + esme.out[-3000:]


# --- a good ESME and broken ones ------------------------------------------------------------


#: --break ITEM makes our ESME get exactly that item wrong
BROKEN = ["bind", "enquire_link", "window", "throttling", "receipts_mo", "reject", "reconnect", "unbind"]


async def run_ours(*args: str, limits: Limits = LIMITS) -> tuple[Report, Esme]:
    return await check(lambda port: python_esme("smppcore_esme.py", "--port", str(port), *args), limits=limits)


async def test_each_broken_esme_fails_exactly_its_item():
    """Eight runs side by side: each broken ESME fails its own item and passes the others
    (an ESME that does not come back cannot be unbound: that one is skipped). The failing
    line says what was seen, not only that it failed."""
    limits = msgspec.structs.replace(LIMITS, timeout=2.5)  # the broken reconnect waits this long for nothing
    runs = await asyncio.gather(*(run_ours("--break", broken, limits=limits) for broken in BROKEN))
    assert set(BROKEN) == set(ALL) - set(INFORMATIONAL), "a broken ESME for every judged item"
    said = {}
    for broken, (report, esme) in zip(BROKEN, runs, strict=True):
        expected = PASSES | {broken: Status.FAIL}
        if broken == "reconnect":
            expected["unbind"] = Status.SKIP
        assert statuses(report) == expected, f"--break {broken}:\n" + explain(report, esme)
        assert not report.passed
        said[broken] = next(r.summary for r in report.results if r.name == broken)
    limit = f"{LIMITS.response_limit:g} s"
    assert "interface_version 0x33" in said["bind"]
    assert said["enquire_link"] == f"no enquire_link_resp within {limit}"
    assert "over the window of 10" in said["window"]
    assert "hammering" in said["throttling"] and "sooner than 0.1 s" in said["throttling"]
    assert said["receipts_mo"].startswith("receipt: answered deliver_sm_resp with ESME_RX_T_APPN, expected ESME_ROK")
    assert re.fullmatch(
        rf"command_id 0x00000077: no answer within {limit} \(expected generic_nack ESME_RINVCMDID\); "
        r"deliver_sm with sm_length past its end: deliver_sm_resp ESME_RINVMSGLEN in [\d.]+ ms, sequence number echoed",
        said["reject"]), said["reject"]
    assert said["reconnect"] == f"dropped 1 connection(s); no new bind within {limits.timeout:g} s"
    # the session reads the unbind and closes without an answer: the check sees the close
    assert said["unbind"] in ("the ESME closed the connection instead of answering unbind",
                              f"no unbind_resp within {limit}")


async def test_our_client_passes_every_check():
    """Our client as a transceiver, and as a transmitter and a receiver on two connections,
    passes everything (receipts go to the receiver; both are dropped and must both come
    back; both are unbound); a transmitter alone fails receipts_mo, as it would never see
    a receipt. The three runs side by side."""
    (trx, trx_esme), (pair, pair_esme), (alone, alone_esme) = await asyncio.gather(
        run_ours(), run_ours("--bind", "tx+rx"), run_ours("--bind", "tx"))
    assert statuses(trx) == PASSES, explain(trx, trx_esme)
    assert trx.passed
    assert trx_esme.proc.returncode == 0 and "unbound" in trx_esme.out, trx_esme.out  # it left when unbound
    figures = {r.name: r.figures for r in trx.results}
    # it stopped at its window (filling it takes 0.1 s without a pause: not promised on a loaded machine)
    assert 1 <= figures["window"]["peak_in_flight"] <= 10
    assert figures["throttling"]["dropped"] == 0 and figures["throttling"]["first_retry_seconds_min"] >= 0.25
    assert figures["bind"]["interface_version"] == 0x34 and figures["bind"]["bind_type"] == "bind_transceiver"

    assert statuses(pair) == PASSES, explain(pair, pair_esme)
    said = {r.name: r.summary for r in pair.results}
    assert said["bind"] == "bind_transmitter + bind_receiver system_id 'esme' interface_version 0x34"
    assert said["reconnect"].startswith("dropped 2 connection(s); ")
    assert said["unbind"].count("unbind_resp ESME_ROK") == 2
    assert pair_esme.proc.returncode == 0

    assert statuses(alone) == PASSES | {"receipts_mo": Status.FAIL}, explain(alone, alone_esme)
    said = {r.name: r.summary for r in alone.results}
    assert said["bind"].endswith("; a transmitter alone gets no receipts or MO")
    assert said["receipts_mo"] == "no receiver or transceiver bind: the ESME cannot get receipts or MO"
    assert said["reject"].endswith("no receiver bind: no malformed deliver_sm sent")


async def test_no_esme_at_all_fails_bind_and_skips_the_rest_at_once():
    checker = EsmeChecker(Limits(bind_timeout=0.3), host=HOST, port=0)
    await checker.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        report = await checker.run()
    finally:
        await checker.close()
    assert loop.time() - started < 3  # one timeout, not one per check
    assert statuses(report) == {"bind": Status.FAIL} | {n: Status.SKIP for n in ALL[1:]} | INFORMATIONAL
    assert report.results[0].summary == "no bind within 0.3 s (0 connection(s) open)"


async def test_refused_credentials_and_garbage_are_reported_not_raised():
    """--system-id/--password refuse other binds (the line says with what); bytes that are
    not SMPP cost the connection, not the run."""
    checker = EsmeChecker(Limits(bind_timeout=0.5), host=HOST, port=0, system_id="esme", password="right")
    port = await checker.start()
    try:
        async with esme_process(python_esme("smppcore_esme.py", "--port", str(port), "--password", "wrong")):
            _, writer = await asyncio.open_connection(HOST, port)
            writer.write(b"GET / HTTP/1.1\r\n\r\n" * 4)
            await writer.drain()
            harness = checker.harness
            assert await harness.wait_until(lambda: any(b.status for b in harness.binds), 60)  # the ESME started
            report = await checker.run()
            writer.close()
    finally:
        await checker.close()
    first = report.results[0]
    assert first.status is Status.FAIL and "ESME_RINVPASWD" in first.summary and "'esme'" in first.summary, first
    assert statuses(report) == {"bind": Status.FAIL} | {n: Status.SKIP for n in ALL[1:]} | INFORMATIONAL
    errors = report.results[-1]
    assert errors.name == "esme_errors" and errors.figures["count"] >= 1, errors
    assert "ESME_RINVCMDLEN" in errors.summary, errors


async def test_a_flood_that_never_reads_its_answers_is_bounded():
    """A hostile ESME binds, then writes submits without reading an answer: the checker
    stops reading it once its answers back up, so memory stays bounded."""
    from smppcore import BindTransceiver, SubmitSm, encode

    checker = EsmeChecker(LIMITS, host=HOST, port=0)
    port = await checker.start()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no kernel autotuning to soak answers up
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        writer.write(encode(BindTransceiver(sequence_number=1, system_id="flood", password="x")))
        submits = b"".join(encode(SubmitSm(sequence_number=n, destination_addr="447700900001",
                                           short_message=b"flood")) for n in range(2, 20_002))
        sent = 0
        harness = checker.harness

        def backed_up() -> bool:
            return any("write" in c._paused for c in harness.connections)

        while not backed_up() and sent < 200:
            writer.write(submits)  # 20,000 submits a round; the answers pile up unread
            sent += 1
            await harness.wait_until(backed_up, 0.05)
        assert backed_up(), f"{harness.submits} submits read and answered, reading never paused"
        (conn,) = harness.connections
        assert conn.transport.get_write_buffer_size() < 1 << 20
        read = harness.submits
        await harness.wait_until(lambda: harness.submits > read + 20_000, 0.3)
        assert harness.submits < read + 20_000 + 1000  # at most what was read before the pause took hold
        writer.transport.abort()
    finally:
        sock.close()
        await checker.close()


def test_throttle_policy_measures_each_retry():
    """The throttling check's bookkeeping with a made-up clock: a retry is the same message again."""
    from smppcore import SubmitSm

    policy = Throttle(throttle_for=1.0)
    a = SubmitSm(source_addr="S", destination_addr="1", short_message=b"a")
    b = SubmitSm(source_addr="S", destination_addr="2", short_message=b"b")
    assert policy.decide(None, a, 10.0) == 0x58
    assert policy.decide(None, b, 10.1) == 0x58
    assert policy.decide(None, a, 10.5) == 0x58  # retried 0.5 s later: throttled again
    assert policy.decide(None, a, 11.2) == 0  # past the window: accepted
    assert policy.dropped() == 1 and policy.attempts == 3
    assert policy.gaps == pytest.approx([0.5, 0.7])
    assert policy.decide(None, b, 11.3) == 0 and policy.dropped() == 0


async def test_harness_wait_is_bounded():
    harness = Harness()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await harness.wait_until(lambda: False, 0.05)
    assert loop.time() - started < 1


# --- peers nobody here wrote -------------------------------------------------------------------


async def test_smpplib_esme():
    """smpplib (with the window and throttling retry its user writes) fails two items:
    an unknown command_id raises in its listen() (the connection closes) and a deliver_sm
    whose sm_length runs past its end is answered ESME_ROK; it reads the SMSC's unbind
    without ever sending unbind_resp."""
    pytest.importorskip("smpplib")
    report, esme = await check(lambda port: python_esme("smpplib_esme.py", "--port", str(port)), grace=0)
    expected = PASSES | {"reject": Status.FAIL, "unbind": Status.FAIL}
    assert statuses(report) == expected, explain(report, esme)
    said = {r.name: r.summary for r in report.results}
    assert said["reject"].startswith("command_id 0x00000077: the ESME closed the connection"), said
    assert "deliver_sm with sm_length past its end: deliver_sm_resp ESME_ROK" in said["reject"], said
    assert said["unbind"] == f"no unbind_resp within {LIMITS.response_limit:g} s"
    assert "UnknownCommandError" in esme.out


async def test_aiosmpplib_esme():
    """aiosmpplib fails three items: it keeps no window (its sender goes on while answers
    are held), its default throttle handler stops the sender for the rest of its 180 s
    sampling period once over 1% of 50+ answers were ESME_RTHROTTLED (so the throttled
    messages do not come back in time), and an unknown command_id ends its connection
    (a deliver_sm whose sm_length runs past its end is answered ESME_ROK, too)."""
    pytest.importorskip("aiosmpplib")
    report, esme = await check(lambda port: python_esme("aiosmpplib_esme.py", "--port", str(port), "--seconds", "40"),
                               limits=Limits(bind_timeout=60.0, timeout=3.0, throttle_for=0.5), grace=0)
    expected = PASSES | {"window": Status.FAIL, "throttling": Status.FAIL, "reject": Status.FAIL}
    assert statuses(report) == expected, explain(report, esme)
    said = {r.name: r.summary for r in report.results}
    assert "over the window of 10" in said["window"]
    assert "never submitted again" in said["throttling"], said["throttling"]
    assert "closed the connection" in said["reject"]
    assert "deliver_sm with sm_length past its end: deliver_sm_resp ESME_ROK" in said["reject"], said


async def test_node_smpp_esme():
    """node-smpp answers nothing by itself; with enquire_link, unbind, deliver_sm and
    unknown PDUs answered as its API offers (pdu.response()), a window, a throttling
    retry and a reconnect written by its user, it fails one item: it decodes a deliver_sm
    whose sm_length runs past the end without a word, so the message is answered
    ESME_ROK. It binds as SMPP 5.0 (interface_version 0x50), which the bind check notes."""
    require(node_available(), "node-smpp (node + tests/interop/node/node_modules)")
    report, esme = await check(lambda port: ["node", str(ESMES / "node_esme.js"), str(port)])
    assert statuses(report) == PASSES | {"reject": Status.FAIL}, explain(report, esme)
    said = {r.name: r.summary for r in report.results}
    assert said["reject"].startswith("command_id 0x00000077: generic_nack ESME_RINVCMDID in ")
    assert "deliver_sm with sm_length past its end: deliver_sm_resp ESME_ROK" in said["reject"], said
    assert "interface_version 0x50 (SMPP 5.0)" in report.results[0].summary
    assert esme.proc.returncode == 0


# --- Wireshark's reading of what the checker sends ----------------------------------------------


class FirstConnectionProxy(RecordingProxy):
    """Records only the first relayed connection (the ESME's before the reconnect check)."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.first: tuple[int, int] | None = None  # (client port, chunks recorded when the second came)

    async def _accept(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        if self.client_port is not None and self.first is None:
            self.first = (self.client_port, len(self.chunks))
        await super()._accept(creader, cwriter)


async def test_tshark_reads_the_run_and_flags_only_the_deliberately_bad_pdus(tmp_path: Path):
    """A capture of the first connection of a run against our ESME, read by Wireshark's SMPP
    dissector: the only PDU it finds fault with is the deliver_sm the reject check makes
    malformed on purpose (sm_length past its end): an independent decoder agrees that
    one is broken and that everything else the checker and the ESME wrote is sound."""
    require(tshark_available(), "tshark")
    checker = EsmeChecker(LIMITS, host=HOST, port=0)
    port = await checker.start()
    proxy = FirstConnectionProxy(port)
    proxy_port = await proxy.start()
    try:
        async with esme_process(python_esme("smppcore_esme.py", "--port", str(proxy_port))) as esme:
            report = await checker.run()
            await checker.close()
            await esme.stop(5)
    finally:
        await checker.close()
        await proxy.close()
    assert statuses(report) == PASSES, explain(report, esme)
    assert proxy.first is not None, "the ESME came back through the proxy"
    client_port, cut = proxy.first
    chunks = proxy.chunks[:cut]
    pcap = tmp_path / "check-esme.pcap"
    write_tcp_pcap(pcap, chunks, client=(HOST, client_port), server=(HOST, proxy_port))
    seen = await asyncio.to_thread(tshark_smpp, pcap, proxy_port)

    def cid(pdu: dict) -> int:
        return int(pdu["smpp.command_id"], 16)

    assert sum(1 for p in seen.pdus if not cid(p) & 0x80000000) >= 5, "binds, submits, enquire_link, deliver_sm"
    # the ESME's answer to command_id 0x77 (which Wireshark passes over without a word)
    assert [p["smpp.command_status"] for p in seen.pdus if cid(p) == 0x80000000] == ["0x00000003"]
    (malformed,) = [p for p in seen.pdus if cid(p) == 0x05 and p.get("smpp.sm_length") == "200"]
    problems = seen.problems()
    assert malformed["frame"] in seen.malformed, problems
    assert all(p.startswith(f"frame {malformed['frame']}:") for p in problems), problems


# --- the command, as the README prints it ---------------------------------------------------------


def readme_blocks() -> tuple[list[str], list[str]]:
    """simulator/README.md's check-esme example: the two command lines and the report it shows."""
    blocks = fenced_blocks("simulator/README.md")
    (run,) = [b for b in blocks if b.first_line.startswith("smpphub check-esme ")]
    (shown,) = [b for b in blocks if b.first_line.startswith("check-esme: listening on ")]
    lines = [line for line in run.code.splitlines() if line.strip()]
    return lines, shown.code.splitlines()


def columns(line: str) -> tuple[str, ...]:
    """What does not depend on timing: the status and the check of a report line, or the summary."""
    words = line.split()
    if words and words[0] in {s.name for s in Status}:
        return tuple(words[:2])
    return (re.sub(r"\d+(\.\d+)?", "N", line),)


async def test_readme_example_runs_as_printed(tmp_path: Path):
    (checker_line, esme_line), shown = readme_blocks()
    argv = checker_line.split()
    assert argv[:2] == ["smpphub", "check-esme"] and "--listen" in argv
    argv[argv.index("--listen") + 1] = f"{HOST}:0"  # the tests' one change: any free port
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smpphub", *argv[1:], cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        port = re.search(r"listening on 127\.0\.0\.1:(\d+)", first)
        assert port, first
        esme_argv = esme_line.split("#")[0].split()
        assert esme_argv[:2] == ["python", "tests/esmes/smppcore_esme.py"]
        esme_argv = [sys.executable, str(ROOT / esme_argv[1]),
                     *(a.replace("2775", port.group(1)) for a in esme_argv[2:])]
        async with esme_process(esme_argv) as esme:
            rest, err = await asyncio.wait_for(proc.communicate(), 120)
            await esme.stop(10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    printed = (first + rest.decode()).splitlines()
    assert proc.returncode == 0, (printed, err.decode(), esme.out)
    assert [columns(line) for line in printed] == [columns(line) for line in shown], printed
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["passed"] is True and [c["name"] for c in written["checks"]] == ALL
    assert {c["name"]: c["status"] for c in written["checks"]} == {k: v.value for k, v in PASSES.items()}


async def test_a_run_that_fails_exits_1():
    outcome = await run_subprocess(["check-esme", "--listen", f"{HOST}:0", "--bind-timeout", "0.3"], timeout=60)
    assert outcome.code == 1 and not outcome.err, outcome
    assert "FAIL  bind              no bind within 0.3 s" in outcome.out
    summary = "check-esme: 0 of 8 checks passed (1 failed, 7 skipped, 2 informational)"
    assert outcome.out.rstrip().endswith(summary), outcome.out


def test_list_says_what_each_check_catches(capsys):
    """--list prints every check with the ESME bug it catches; the README's table of checks
    has the same names, in the same order."""
    from smpphub import cli

    assert cli.main(["check-esme", "--list"]) == 0
    printed = capsys.readouterr().out
    names = [line for line in printed.splitlines() if line and not line.startswith(" ")]
    assert names == ALL
    words = " ".join(printed.split())
    assert "ESME_RTHROTTLED" in words and "generic_nack ESME_RINVCMDID" in words
    readme = (ROOT / "simulator" / "README.md").read_text()
    section = readme[readme.index("## check-esme"):]
    assert re.findall(r"^\| `(\w+)` \| ", section, re.M)[:len(ALL)] == ALL


# --- bad input: one line, never a traceback ---------------------------------------------------


ERROR_ROWS = [
    Row(["check-esme", "--listen", "nohostport"], 2,
        "smpphub check-esme: --listen: expected HOST:PORT, got 'nohostport'"),
    Row(["check-esme", "--listen", "127.0.0.1:70000"], 2, "--listen: port must be 0 to 65535"),
    Row(["check-esme", "--timeout", "0"], 2, "--timeout: expected seconds above 0 and at most 3600, got '0'"),
    Row(["check-esme", "--timeout", "soon"], 2, "--timeout: expected seconds, got 'soon'"),
    Row(["check-esme", "--timeout", "nan"], 2, "--timeout: expected seconds above 0"),
    Row(["check-esme", "--bind-timeout", "1e9"], 2, "--bind-timeout: expected seconds above 0 and at most 3600"),
    Row(["check-esme", "--response-limit", "-1"], 2, "--response-limit: expected seconds above 0 and at most 600"),
    Row(["check-esme", "--window", "0"], 2, "--window: expected 1 to 100000, got '0'"),
    Row(["check-esme", "--window", "ten"], 2, "--window: expected a whole number, got 'ten'"),
    Row(["check-esme", "--json", "{tmp}/missing/report.json"], 2, "--json: no such folder {tmp}/missing"),
    Row(["check-esme", "--json", "{tmp}"], 2, "--json: {tmp} is a directory"),
    Row(["check-esme", "--frobnicate"], 2, "unrecognized arguments: --frobnicate"),
]


@pytest.mark.parametrize("row", ERROR_ROWS, ids=str)
def test_bad_arguments_are_one_line(row: Row, tmp_path: Path, capsys, monkeypatch):
    places = {"tmp": str(tmp_path)}
    argv = [a.replace("{tmp}", str(tmp_path)) for a in row.argv]
    outcome: Outcome = run_in_process(argv, capsys, monkeypatch)
    assert_one_line(row, outcome, places)


async def test_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        outcome = await run_subprocess(["check-esme", "--listen", f"{HOST}:{port}"], timeout=30)
    row = Row(["check-esme"], 1, f"smpphub check-esme: cannot listen on {HOST}:{port}: address already in use")
    assert_one_line(row, outcome, {})
