"""``smpphub simulate`` as a separate process, for the tests that steer it from outside.

Its output goes to a file, not a pipe (a process never blocks on a pipe nobody reads),
and what it prints is polled with a bound. At the end it gets SIGTERM and must exit 0
without a traceback.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Simulate", "simulate_process"]


@dataclass
class Simulate:
    process: subprocess.Popen[bytes]
    output: Path

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Poll (bounded) what the process printed until ``pattern`` shows up."""
        deadline = time.monotonic() + timeout
        while (match := re.search(pattern, self.output.read_text(errors="replace"))) is None:
            assert self.process.poll() is None, f"exited {self.process.returncode}: {self.output.read_text()}"
            assert time.monotonic() < deadline, f"no {pattern!r} within {timeout}s: {self.output.read_text()}"
            time.sleep(0.02)
        return match

    def port(self, pattern: str) -> int:
        """The port in the first group of ``pattern`` (e.g. ``r"listening on [\\d.]+:(\\d+)\\n"``)."""
        return int(self.wait_for(pattern).group(1))


@contextmanager
def simulate_process(directory: Path, *args: str) -> Iterator[Simulate]:
    """``python -m smpphub simulate ARGS`` run in ``directory``; SIGTERM after, which must exit 0."""
    output = directory / "simulate-output.txt"
    with output.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "smpphub", "simulate", *args], cwd=directory,
                                   stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield Simulate(process, output)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, output.read_text()
        assert "Traceback" not in output.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
