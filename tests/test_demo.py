"""`smpphub demo`: it stays up, the printed `smpphub send` works as printed, the live
traffic line moves, and every way out (SIGINT, SIGTERM mid-tour, --duration, a bad
argument, a taken port) exits as it should and leaves nothing in the temp folder."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shlex
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from smpphub.router.hub import Traffic

from smpphub.demo import DemoError, TrafficLine, choose_port, listen_problem

ROOT = Path(__file__).resolve().parent.parent
STARTUP = 60.0  # bound on the tour (a loaded 2-core machine); normally about a second


class Demo:
    """A `python -m smpphub demo` subprocess whose stdout is read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.stderr = ""

    @classmethod
    async def start(cls, tmp: Path, *args: str) -> Demo:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smpphub", "demo", *args, cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def read_until(self, wanted: Callable[[str], bool], timeout: float = STARTUP) -> str:
        """The first line from now on that ``wanted`` accepts (fails on EOF or after ``timeout``)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, f"demo exited (stdout so far: {self.lines}, stderr: {await self._stderr()})"
                line = raw.decode().rstrip("\n")
                self.lines.append(line)
                if wanted(line):
                    return line

    async def wait(self, timeout: float) -> int:
        """Its exit status, the rest of stdout read (fails if it is not out within ``timeout``)."""
        assert self.proc.stdout is not None
        rest, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        self.lines += rest.decode().splitlines()
        self.stderr = err.decode()
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def _stderr(self) -> str:
        assert self.proc.stderr is not None
        return (await asyncio.wait_for(self.proc.stderr.read(), 10)).decode()

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


def store_folder(banner_lines: list[str]) -> Path:
    """The temporary folder the banner names on its store row."""
    (path,) = [m.group(1) for line in banner_lines if (m := re.match(r"\s+store\s+(\S+/hub\.db) ", line))]
    return Path(path).parent


def accepted(traffic_line: str) -> int:
    match = re.search(r"\baccepted (\d+) ", traffic_line)
    assert match, traffic_line
    return int(match.group(1))


def left_in(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir())


def is_traffic(line: str) -> bool:
    return line.startswith("traffic: ")


def is_send_line(line: str) -> bool:
    """The banner's ready-to-paste `smpphub send ...` line."""
    return line.strip().startswith("smpphub send ")


def banner_line(lines: list[str], prefix: str) -> str:
    (line,) = [line.strip() for line in lines if line.strip().startswith(prefix)]
    return line


async def send_as_curl_would(curl_line: str) -> tuple[str, str, str]:
    """The banner's curl line sent as curl sends it: (hub message id, base URL, token)."""
    argv = shlex.split(curl_line)
    assert argv[:2] == ["curl", "-s"] and argv[2::2][:3] == ["-H", "-H", "-d"], argv
    headers = dict(h.split(": ", 1) for h in (argv[3], argv[5]))
    url = argv[8]
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=argv[7].encode(), headers=headers) as resp:
            assert resp.status == 202, await resp.text()  # accepted: stored, on its way
            (item,) = (await resp.json())["messages"]
    assert item["status"] == "accepted", item
    return item["id"], url.removesuffix("/v1/messages"), headers["Authorization"]


async def http_receipt(base: str, authorization: str, message_id: str, timeout: float = 30.0) -> dict:
    """GET /v1/messages/{id} until it is final with its receipt (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession(headers={"Authorization": authorization}) as http:
        while True:
            async with http.get(f"{base}/v1/messages/{message_id}") as resp:
                body = await resp.json()
            if body.get("receipts"):
                return body
            assert loop.time() < deadline, f"no receipt for the HTTP message: {body}"
            await asyncio.sleep(0.05)


def starts_with(prefix: str) -> Callable[[str], bool]:
    def wanted(line: str) -> bool:
        return line.startswith(prefix)

    return wanted


def traffic_above(count: int) -> Callable[[str], bool]:
    """A traffic line whose accepted total is above ``count``."""

    def wanted(line: str) -> bool:
        return is_traffic(line) and accepted(line) > count

    return wanted


async def test_demo_stays_up_answers_the_printed_send_and_stops_on_sigint(tmp_path):
    demo = await Demo.start(tmp_path, "--port", "0")
    try:
        send_line = await demo.read_until(is_send_line)
        folder = store_folder(demo.lines)
        assert folder.parent == tmp_path and folder.name.startswith("smpphub-demo-") and (folder / "hub.db").is_file()
        assert any(re.match(r"\s+hub\s+SMPP on 127\.0\.0\.1:\d+$", line) for line in demo.lines)
        assert any(re.match(r"\s+account\s+system_id demo, password demo ", line) for line in demo.lines)
        assert any(re.match(r"\s+carrier-uk\s+127\.0\.0\.1:\d+\s+\+44: delivers", line) for line in demo.lines)
        assert any(re.match(r"\s+carrier-fr\s+127\.0\.0\.1:\d+\s+\+33: hex message ids, .*UNDELIV", line) for line in demo.lines)
        assert "  MO from +447700900123 to 12345: 'STOP'" in demo.lines  # the tour ran before the banner
        before = accepted(await demo.read_until(is_traffic))

        argv = shlex.split(send_line)
        assert argv[0] == "smpphub"
        send = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smpphub", *argv[1:], cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(send.communicate(), 60)
        assert send.returncode == 0, err.decode()
        assert re.search(r"^receipt for \S+: DELIVRD", out.decode(), re.MULTILINE), out.decode()

        # the live line shows the message (it prints every few seconds when the totals moved)
        await demo.read_until(traffic_above(before), timeout=30)

        # one over HTTP, as the printed curl line sends it; its receipt comes back too
        http_row = banner_line(demo.lines, "http ")
        assert re.match(r"http\s+http://127\.0\.0\.1:\d+ \(API token of account demo: shk_", http_row), http_row
        message_id, base, authorization = await send_as_curl_would(banner_line(demo.lines, "curl "))
        status = await http_receipt(base, authorization, message_id)
        assert status["state"] == "delivered" and status["upstream"] == "carrier-uk", status
        assert banner_line(demo.lines, "metrics ") == f"metrics     {base}/metrics"
        assert banner_line(demo.lines, "dashboard ").startswith(f"dashboard   {base}/dashboard#token=shk_")
        # the printed admin line works as printed (env VAR=... smpphub admin ...)
        env_argv = shlex.split(banner_line(demo.lines, "env SMPPHUB_ADMIN_TOKEN="))
        assert env_argv[2:4] == ["smpphub", "admin"]
        admin = await asyncio.create_subprocess_exec(
            *env_argv[:2], sys.executable, "-m", "smpphub", *env_argv[3:], cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(admin.communicate(), 60)
        assert admin.returncode == 0, err.decode()
        assert re.search(r"^carrier-uk\s+running\s+up\s+1/1", out.decode(), re.MULTILINE), out.decode()

        demo.proc.send_signal(signal.SIGINT)
        assert await demo.wait(10) == 0, demo.stderr
    finally:
        demo.kill()
    assert "Traceback" not in demo.stderr
    assert any(line.startswith("demo stopped: ") for line in demo.lines)
    assert not folder.exists()
    assert left_in(tmp_path) == []


async def test_demo_duration_stops_by_itself_and_cleans_up(tmp_path):
    demo = await Demo.start(tmp_path, "--port", "0", "--duration", "2")
    try:
        await demo.read_until(starts_with("smpphub demo is up; it stops in 2 s"))
        await demo.read_until(is_send_line)
        folder = store_folder(demo.lines)
        assert folder.is_dir()
        assert await demo.wait(30) == 0, demo.stderr
    finally:
        demo.kill()
    assert "Traceback" not in demo.stderr
    assert not folder.exists()
    assert left_in(tmp_path) == []


async def test_sigterm_during_the_tour_stops_and_cleans_up(tmp_path):
    demo = await Demo.start(tmp_path, "--port", "0")
    try:
        await demo.read_until(starts_with("tour: "))
        demo.proc.send_signal(signal.SIGTERM)
        assert await demo.wait(10) == 0, demo.stderr
    finally:
        demo.kill()
    assert "Traceback" not in demo.stderr
    assert not any(is_send_line(line) for line in demo.lines)  # stopped before the banner
    assert left_in(tmp_path) == []


async def test_memory_store_makes_no_folder(tmp_path):
    demo = await Demo.start(tmp_path, "--port", "0", "--store", "memory", "--duration", "1")
    try:
        assert await demo.wait(30) == 0, demo.stderr
    finally:
        demo.kill()
    assert any(re.match(r"\s+store\s+memory ", line) for line in demo.lines)
    assert left_in(tmp_path) == []


TAKEN = "<a port something listens on>"


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--duration", "0"], 2, "--duration must be a positive number of seconds, got '0'"),
        (["--duration", "-1"], 2, "--duration must be a positive number of seconds, got '-1'"),
        (["--duration", "abc"], 2, "--duration must be a positive number of seconds, got 'abc'"),
        (["--duration", "nan"], 2, "--duration must be a positive number of seconds, got 'nan'"),
        (["--duration", "inf"], 2, "--duration must be a positive number of seconds, got 'inf'"),
        (["--port", "70000"], 2, "--port must be a port number 0-65535 (0: a free port), got '70000'"),
        (["--port", "-5"], 2, "--port must be a port number 0-65535 (0: a free port), got '-5'"),
        (["--port", "http"], 2, "--port must be a port number 0-65535 (0: a free port), got 'http'"),
        (["--port", TAKEN], 1, "cannot listen on 127.0.0.1:{port}: address already in use"),
        (["--http-port", "x"], 2, "--http-port must be a port number 0-65535 (0: a free port), got 'x'"),
        (["--port", "0", "--http-port", TAKEN], 1, "cannot listen on 127.0.0.1:{port}: address already in use"),
    ],
)
async def test_bad_start_is_one_line_and_leaves_nothing(tmp_path, args, code, says):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [str(port) if a == TAKEN else a for a in args]
        demo = await Demo.start(tmp_path, *args)
        try:
            assert await demo.wait(30) == code
        finally:
            demo.kill()
    lines = [line for line in demo.stderr.splitlines() if line.strip()]
    assert lines == [f"smpphub demo: {says.format(port=port)}"]
    assert left_in(tmp_path) == []


def test_default_port_taken_falls_back_to_a_free_one_with_a_note():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert listen_problem("127.0.0.1", port) == f"cannot listen on 127.0.0.1:{port}: address already in use"
        choice = choose_port(None, default=port)
        assert choice.port == 0
        assert choice.note == f"cannot listen on 127.0.0.1:{port}: address already in use, so the hub took a free port (--port chooses one)"
        with pytest.raises(DemoError, match="address already in use"):
            choose_port(port)
    # free again: the default is taken as it is, without a note
    assert choose_port(None, default=port).port == port and choose_port(None, default=port).note is None
    assert choose_port(0).port == 0


# Failures after the checks passed, each in a driver that patches the demo first:
# - the tour fails after the hub, the carriers and the store folder are up: the carriers
#   hold their receipts for a minute and the tour waits half a second;
# - the hub's own listener fails (another process took the port between the check and the
#   bind): the check is made to pass on a port something listens on.
FAILING_TOUR = """
import sys
import msgspec
import smpphub.demo as demo
from smpphub.cli import main

demo.TOUR_WAIT = 0.5
demo.CARRIERS = tuple(
    msgspec.structs.replace(c, config={"receipts": {"delay": {"kind": "fixed", "ms": 60000}}}) for c in demo.CARRIERS
)
sys.exit(main(["demo", "--port", "0"]))
"""
PORT_TAKEN_AFTER_THE_CHECK = """
import sys
import smpphub.demo as demo
from smpphub.cli import main



def no_problem(host, port):
    return None


demo.listen_problem = no_problem
sys.exit(main(["demo", "--port", sys.argv[1]]))
"""


@pytest.mark.parametrize(
    ("driver", "says", "stopped"),
    [
        (FAILING_TOUR, "smpphub demo: the tour got no receipt within 0.5 s", True),
        (PORT_TAKEN_AFTER_THE_CHECK, "address already in use", False),
    ],
)
async def test_a_failure_after_the_checks_is_one_line_and_cleans_up(tmp_path, driver, says, stopped):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", driver, str(taken.getsockname()[1]), cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp_path)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), STARTUP)
        finally:
            if proc.returncode is None:
                proc.kill()
    assert proc.returncode == 1
    (line,) = [line for line in err.decode().splitlines() if line.strip()]
    assert line.startswith("smpphub demo: ") and says in line and "Traceback" not in line
    if stopped:
        (summary,) = [line for line in out.decode().splitlines() if line.startswith("demo stopped: ")]
        assert "removed " + str(tmp_path / "smpphub-demo-") in summary
    assert left_in(tmp_path) == []

class Counters:
    """A stand-in for the hub: the totals a test sets."""

    def __init__(self) -> None:
        self.now = Traffic(accepted=4, sent=4, receipts_in=4, delivered=5, mo_in=1, esme_binds=0)

    def traffic(self) -> Traffic:
        return self.now


def test_traffic_line_on_a_pipe_is_written_only_when_the_totals_move():
    counters = Counters()
    out = io.StringIO()  # not a terminal: ordinary lines
    line = TrafficLine(counters, out)
    line.show()
    line.show()  # nothing moved: nothing written
    counters.now = Traffic(accepted=7, sent=6, receipts_in=4, delivered=5, mo_in=1, esme_binds=1)
    line.show()
    first, second = out.getvalue().splitlines()
    assert first.startswith("traffic: binds 0 | accepted 4 +0/s | sent 4 +0/s | receipts 4 +0/s | delivered 5 +0/s | MO 1 +0/s")
    assert re.fullmatch(r"traffic: binds 1 \| accepted 7 \+\d+/s \| sent 6 \+\d+/s \| receipts 4 \+0/s \| delivered 5 \+0/s \| MO 1 \+0/s", second)
    assert accepted(second) == 7
