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
    ("find-max, nobody listens", ["--target", "127.0.0.1:{closed}", "--find-max", "--slo", "p99<5ms"], 1,
     "cannot connect to 127.0.0.1:{closed}: Connection refused"),
    ("a bad --slo, through the command", ["--target", GOOD, "--count", "1", "--slo", "p99<50"], 2,
     "--slo: 'p99<50': give the latency a unit: us, ms or s"),
    ("a bad --op-mix, through the command", ["--target", GOOD, "--count", "1", "--op-mix", "query_sm:1"], 2,
     "unknown operation 'query_sm' in --op-mix"),
]

# The flags of the operation mix, the addresses, --slo, --find-max and --assert: all
# refused before anything is sent, so in this process only (a process per case costs a
# second each; the rows above take two of them through the command).
FLAG_CASES = [
    # addresses and the operation mix
    ("from pattern bad", ["--target", GOOD, "--count", "1", "--from", "4477{{9-1}}"], 2, "--from: empty range in"),
    ("from pattern too long", ["--target", GOOD, "--count", "1", "--from", "44770090012345678901{{0-9}}"], 2,
     "--from: '44770090012345678901{{0-9}}' makes addresses longer than 20 characters"),
    ("from and from-file", ["--target", GOOD, "--count", "1", "--from", "A", "--from-file", "{dir}/x"], 2,
     "give --from or --from-file, not both"),
    ("from-file missing", ["--target", GOOD, "--count", "1", "--from-file", "/nonexistent/senders.txt"], 2,
     "--from-file: No such file or directory: /nonexistent/senders.txt"),
    ("from-file a directory", ["--target", GOOD, "--count", "1", "--from-file", "{dir}"], 2,
     "--from-file: Is a directory: {dir}"),
    ("to-file missing", ["--target", GOOD, "--count", "1", "--to-file", "/nonexistent/to.txt"], 2,
     "--to-file: No such file or directory"),
    ("op-mix unknown", ["--target", GOOD, "--count", "1", "--op-mix", "submit_sm:1,query_sm:1"], 2,
     "unknown operation 'query_sm' in --op-mix (known: submit_sm, submit_multi, data_sm)"),
    ("op-mix bad weight", ["--target", GOOD, "--count", "1", "--op-mix", "data_sm:x"], 2,
     "bad weight 'x' for data_sm in --op-mix"),
    ("op-mix all zero", ["--target", GOOD, "--count", "1", "--op-mix", "data_sm:0"], 2,
     "--op-mix needs a weight above 0"),
    ("multi-dests zero", ["--target", GOOD, "--count", "1", "--multi-dests", "0"], 2,
     "--multi-dests must be at least 1"),
    ("multi-dests too many", ["--target", GOOD, "--count", "1", "--multi-dests", "255"], 2,
     "--multi-dests: at most 254 (SMPP 3.4 submit_multi), got 255"),
    # objectives, the search and the checks
    ("slo without a unit", ["--target", GOOD, "--count", "1", "--slo", "p99<50"], 2,
     "--slo: 'p99<50': give the latency a unit: us, ms or s"),
    ("slo unknown metric", ["--target", GOOD, "--count", "1", "--slo", "p95<5ms"], 2,
     "--slo: unknown metric 'p95' in 'p95<5ms'"),
    ("slo unreadable", ["--target", GOOD, "--count", "1", "--slo", "fast"], 2, "--slo: cannot read 'fast'"),
    ("assert errors not in percent", ["--target", GOOD, "--count", "1", "--assert", "errors<0.1"], 2,
     "--assert: 'errors<0.1': give errors in percent (e.g. errors<0.1%)"),
    ("assert over 100%", ["--target", GOOD, "--count", "1", "--assert", "receipts>=101%"], 2,
     "a percentage is at most 100"),
    ("assert receipts without dlr", ["--target", GOOD, "--count", "1", "--assert", "receipts>=100%"], 2,
     "--assert receipts>=100%: receipts needs --dlr"),
    ("slo on receipt latency without dlr", ["--target", GOOD, "--find-max", "--slo", "p99<5ms,receipt_p99<2s"], 2,
     "--slo receipt_p99<2s: receipt_p99 needs --dlr"),
    ("assert receipt latency without a unit", ["--target", GOOD, "--count", "1", "--dlr", "--assert", "receipt_max<2"],
     2, "--assert: 'receipt_max<2': give the latency a unit"),
    ("find-max without slo", ["--target", GOOD, "--find-max"], 2, "--find-max needs --slo"),
    ("find-max with count", ["--target", GOOD, "--find-max", "--slo", "p99<5ms", "--count", "5"], 2,
     "--find-max runs steps of --duration, each at its own rate: --count does not apply"),
    ("find-max with ramp", ["--target", GOOD, "--find-max", "--slo", "p99<5ms", "--ramp", "1:2:3s"], 2,
     "--ramp does not apply"),
    ("find-max asserting p99", ["--target", GOOD, "--find-max", "--slo", "p99<5ms", "--assert", "p99<5ms"], 2,
     "--assert p99<5ms: with --find-max only rate can be checked (the highest rate found)"),
    ("find-max with plot", ["--target", GOOD, "--find-max", "--slo", "p99<5ms", "--plot", "{dir}/r.png"], 2,
     "--plot draws one run; with --find-max each step is a run of its own (use --json)"),
    ("tolerance not a percentage", ["--target", GOOD, "--find-max", "--slo", "p99<5ms", "--tolerance", "tight"], 2,
     "--tolerance: expected a percentage like 5%, got 'tight'"),
    ("tolerance zero", ["--target", GOOD, "--find-max", "--slo", "p99<5ms", "--tolerance", "0%"], 2,
     "--tolerance must be above 0% and at most 50%"),
    ("tolerance too wide", ["--target", GOOD, "--find-max", "--slo", "p99<5ms", "--tolerance", "80%"], 2,
     "--tolerance must be above 0% and at most 50%"),
    ("max-steps one", ["--target", GOOD, "--find-max", "--slo", "p99<5ms", "--max-steps", "1"], 2,
     "--max-steps must be at least 2"),
    ("max-steps too many", ["--target", GOOD, "--find-max", "--slo", "p99<5ms", "--max-steps", "1000"], 2,
     "--max-steps: at most 100"),
    ("max-rate not a number", ["--target", GOOD, "--find-max", "--slo", "p99<5ms", "--max-rate", "lots"], 2,
     "--max-rate: expected messages per second, got 'lots'"),
    ("start above max-rate", ["--target", GOOD, "--find-max", "--slo", "p99<5ms", "--rate", "500",
                              "--max-rate", "100"], 2,
     "--rate (500, where the search starts) is above --max-rate (100)"),
    ("tolerance without find-max", ["--target", GOOD, "--count", "1", "--tolerance", "10%"], 2,
     "--tolerance is for --find-max"),
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


@pytest.mark.parametrize("name, args, status, says", FLAG_CASES, ids=[c[0] for c in FLAG_CASES])
def test_a_bad_flag_is_one_line_before_anything_is_sent(name, args, status, says, targets, tmp_path, capsys):
    code = cli.main(["--quiet", *_argv(args, targets, tmp_path)])
    err = capsys.readouterr().err
    assert code == status == 2, err
    _one_line(err, _fill(says, targets, tmp_path))


def test_a_good_bind_runs(targets, tmp_path, capsys):
    """The checking SMSC takes the account the cases change one thing of."""
    argv = _argv(["--target", GOOD, "--count", "20", "--json", "{dir}/r.json"], targets, tmp_path)
    code = cli.main(["--quiet", *argv])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "r.json").stat().st_size > 0
