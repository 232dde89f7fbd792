"""``smpphub bench``: every way a run can fail is one line on stderr naming the problem.

Exit 2 for a bad argument (found before anything is sent), 1 for a failure at run
time; never a traceback. Each case runs through the command a user types (a process
of its own: a traceback printed by the event loop's exception handler shows there)
and through ``cli.main`` in this process (where the loop's handler logs instead).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import smppcore
from smppcore import CommandStatus
from smpphub.bench import cli

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: the one account the test SMSC takes
SYSTEM_ID, PASSWORD, SYSTEM_TYPE = "lg", "pw", "VMA"


class CheckingSmsc:
    """``smppcore.serve`` on a loop of its own that refuses any bind but lg/pw/VMA, each
    with the status a real SMSC would give (the load generator runs its own loop)."""

    def __init__(self) -> None:
        class Handler(smppcore.SmscHandler):
            def authenticate(self, conn: smppcore.SmscConnection, bind: smppcore.Pdu) -> int:
                if bind.system_id != SYSTEM_ID or bind.password != PASSWORD:
                    return CommandStatus.ESME_RINVPASWD
                if bind.system_type != SYSTEM_TYPE:
                    return CommandStatus.ESME_RINVSYSTYP
                return CommandStatus.ESME_ROK

        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(Handler(),), daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def _run(self, handler: smppcore.SmscHandler) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(smppcore.serve(handler, HOST, 0))
        self.port = self.server.port
        self.ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(1), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Targets:
    """The ports the cases point at: ``good`` (the checking SMSC), ``silent`` (accepts
    connections, never reads nor answers: the kernel completes the handshake for a
    listening socket nobody accepts on) and ``closed`` (nobody listens)."""

    def __init__(self, good: int, silent: int, closed: int) -> None:
        self.good, self.silent, self.closed = good, silent, closed


@pytest.fixture(scope="module")
def targets() -> Iterator[Targets]:
    smsc = CheckingSmsc()
    silent = socket.socket()
    silent.bind((HOST, 0))
    silent.listen(16)
    with socket.socket() as s:
        s.bind((HOST, 0))
        closed = s.getsockname()[1]
    try:
        yield Targets(smsc.port, silent.getsockname()[1], closed)
    finally:
        silent.close()
        smsc.close()


# (what it is, the arguments after the account, the exit status, what the line must say).
# {good}, {silent}, {closed} are the targets' ports; {dir} a directory that exists.
GOOD = "127.0.0.1:{good}"
CASES = [
    ("target without a port", ["--target", "nohost", "--count", "1"], 2, "--target: expected HOST:PORT"),
    ("target port 0", ["--target", "127.0.0.1:0", "--count", "1"], 2, "--target: port must be 1 to 65535"),
    ("target port too big", ["--target", "127.0.0.1:70000", "--count", "1"], 2, "--target: port must be"),
    ("IPv6 without brackets", ["--target", "::1:2775", "--count", "1"], 2, "[ADDRESS]:PORT"),
    ("count not a number", ["--target", GOOD, "--count", "abc"], 2, "--count: expected a whole number"),
    ("unknown option", ["--target", GOOD, "--count", "1", "--bogus"], 2, "unrecognized arguments: --bogus"),
    ("no count nor duration", ["--target", GOOD], 2, "give --count N or --duration SECONDS"),
    ("json is a directory", ["--target", GOOD, "--count", "1", "--json", "{dir}"], 2, "--json: is a directory"),
    ("json in no directory", ["--target", GOOD, "--count", "1", "--json", "/nonexistent/r.json"], 2,
     "--json: no such directory"),
    ("json not writable", ["--target", GOOD, "--count", "1", "--json", "/proc/self/r.json"], 2,
     "--json: permission denied"),
    ("plot not writable", ["--target", GOOD, "--count", "1", "--plot", "/proc/self/r.png"], 2,
     "--plot: permission denied"),
    ("plot format unknown", ["--target", GOOD, "--count", "1", "--plot", "{dir}/r.xyz"], 2,
     "--plot: the file name must end in one of"),
    ("tls-ca missing", ["--target", GOOD, "--count", "1", "--tls-ca", "/nonexistent/ca.pem"], 2,
     "--tls-ca: no such file"),
    ("nobody listens", ["--target", "127.0.0.1:{closed}", "--count", "1"], 1,
     "cannot connect to 127.0.0.1:{closed}: Connection refused"),
    ("wrong password", ["--target", GOOD, "--count", "1", "--password", "wrong"], 1,
     "127.0.0.1:{good} refused the bind: ESME_RINVPASWD"),
    ("wrong password, 2 workers", ["--target", GOOD, "--count", "4", "--password", "wrong",
                                   "--binds", "2", "--workers", "2"], 1,
     "127.0.0.1:{good} refused the bind: ESME_RINVPASWD"),
    ("wrong system_type", ["--target", GOOD, "--count", "1", "--system-type", "XYZ"], 1,
     "127.0.0.1:{good} refused the bind: ESME_RINVSYSTYP"),
    ("bind never answered", ["--target", "127.0.0.1:{silent}", "--count", "1", "--timeout", "1"], 1,
     "127.0.0.1:{silent} did not answer the bind within 1 s"),
    ("TLS against a plain server", ["--target", GOOD, "--count", "1", "--tls-insecure"], 1,
     "TLS with 127.0.0.1:{good} failed"),
    ("json cannot be written", ["--target", GOOD, "--count", "5", "--json", "/dev/full"], 1,
     "--json: cannot write /dev/full: No space left on device"),
]


def _fill(text: str, targets: Targets, folder: Path) -> str:
    return text.format(good=targets.good, silent=targets.silent, closed=targets.closed, dir=folder)


def _argv(args: list[str], targets: Targets, folder: Path) -> list[str]:
    good = {"--system-id": SYSTEM_ID, "--password": PASSWORD, "--system-type": SYSTEM_TYPE}
    account = {name: value for name, value in good.items() if name not in args}  # the case's own value wins
    return [x for kv in account.items() for x in kv] + [_fill(a, targets, folder) for a in args]


def _one_line(err: str, says: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(("smpphub bench: ", "smpphub: ")), err  # or the dispatcher, for its own arguments
    assert says in lines[0], err


@pytest.mark.parametrize("name, args, status, says", CASES, ids=[c[0] for c in CASES])
def test_the_command_says_it_on_one_line(name, args, status, says, targets, tmp_path):
    argv = [sys.executable, "-m", "smpphub", "bench", "--quiet", *_argv(args, targets, tmp_path)]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == status, proc.stderr
    _one_line(proc.stderr, _fill(says, targets, tmp_path))
    assert time.monotonic() - started < 20  # bounded: the silent server costs --timeout, not forever


@pytest.mark.parametrize("name, args, status, says", CASES, ids=[c[0] for c in CASES])
def test_cli_main_says_it_on_one_line(name, args, status, says, targets, tmp_path, capsys, caplog):
    caplog.set_level(logging.ERROR)
    code = cli.main(["--quiet", *_argv(args, targets, tmp_path)])
    err = capsys.readouterr().err
    assert code == status, err
    _one_line(err, _fill(says, targets, tmp_path))
    # the event loop's exception handler logs what escaped a callback: nothing may
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_good_bind_runs(targets, tmp_path, capsys):
    """The checking SMSC takes the account the cases change one thing of."""
    argv = _argv(["--target", GOOD, "--count", "20", "--json", "{dir}/r.json"], targets, tmp_path)
    code = cli.main(["--quiet", *argv])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "r.json").stat().st_size > 0
