"""``smpphub bench --find-max`` against a simulator of known capacity, and ``--assert`` exit statuses.

The target: a simulator that answers every submit 400 ms after reading it, driven
through one bind with a window of 400, so it carries 1,000 submits/s at most
(window / latency), however fast it is asked; above that, requests wait for room in
the window and their latency (counted from when each was due) grows with every
second. That limit has no burst allowance, unlike the simulator's token-bucket
throttle, which lets a whole second's worth through at once after a pause, and so
lets a 2 s step pass at 1.5 times its rate: a search over short steps would find
the burst, not the throttle. The objective, p99 under 480 ms, leaves 80 ms for a
shared machine's late timers, which also make each answer take a little more than
400 ms: the search must land within 10% of what the window carries at the service
time the first step measured (its p50, some 1,000/s). Steps are 1.5 s: the whole
search takes some 15 s.

The simulator's throttle is searched for too, with its ``burst`` set to a tenth of a
second (``[throttle] burst``), which bounds what a step can pass above the cap.

Other capacity models were tried and left: ``max_unanswered`` (the simulator stops
reading) pauses and resumes reading in bursts, so what it carries depends on how
much the generator keeps in flight, and is not a figure a test can state.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from smpphub.bench import cli
from smpphub.bench.findmax import SearchResult

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
WINDOW = 400  # requests in flight on the one bind
CAPACITY = 1000  # WINDOW / latency
SIMULATOR = '[submit_latency]\nkind = "fixed"\nms = 400\n'


def _simulator(tmp: Path, config: str) -> Iterator[int]:
    """A simulator in its own process (the generator's loop must not share a GIL with it): its port."""
    (tmp / "sim.toml").write_text(config)
    proc = subprocess.Popen([sys.executable, "-m", "smpphub", "simulate", "--listen", f"{HOST}:0", "--quiet",
                             "--config", str(tmp / "sim.toml")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            cwd=ROOT)
    try:
        line = proc.stdout.readline().decode()  # "smpphub simulator listening on 127.0.0.1:PORT"
        assert "listening" in line, line
        yield int(line.rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def capacity_sim(tmp_path_factory):
    yield from _simulator(tmp_path_factory.mktemp("capacity"), SIMULATOR)


def test_find_max_lands_within_10_percent_of_the_targets_capacity(capacity_sim, tmp_path, capsys):
    argv = ["--target", f"{HOST}:{capacity_sim}", "--system-id", "lg", "--password", "pw", "--quiet",
            "--window", str(WINDOW), "--find-max", "--slo", "p99<480ms,errors<1%", "--rate", "700",
            "--duration", "1.5s", "--tolerance", "5%",
            "--max-steps", "8", "--json", str(tmp_path / "search.json"), "--assert", "rate>=100,rate>=100000"]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    result = msgspec.json.decode((tmp_path / "search.json").read_bytes(), type=SearchResult)
    assert result.found is not None, out
    # what the window carries at the service time this machine gives now: the first
    # step, well under the limit, measures that time (its p50)
    capacity = WINDOW / (result.steps[0].p50_us / 1e6)
    assert 0.7 * CAPACITY < capacity <= CAPACITY * 1.01, out  # 400 ms, and a shared machine's lateness
    assert abs(result.found - capacity) <= 0.10 * capacity, (capacity, out)
    # the table: a header, a row per step, then what was found
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["step", "rate/s"])
    rows = lines[header + 1:header + 1 + len(result.steps)]
    assert [int(r.split()[0]) for r in rows] == list(range(1, len(result.steps) + 1))
    assert rows[0].split()[1] == "700"
    assert any("no: p99<480ms: measured" in r for r in rows)
    assert f"highest rate holding p99<480ms,errors<1%: {result.found:,.0f}/s" in out
    assert 2 <= len(result.steps) <= 8
    # one assertion held, the other did not: exit 3, one line for the one that failed
    assert code == cli.EXIT_ASSERTION
    found = f"{result.found:,.0f}/s"
    assert err.strip().splitlines() == [f"smpphub bench: assertion failed: rate>=100000: measured {found}"]


THROTTLE = 1000  # submits/s the throttled simulator lets through in total
THROTTLED = f"[throttle]\ntotal = {THROTTLE}\nburst = 0.1\n"  # 100 submits at most at once after a pause


@pytest.fixture(scope="module")
def throttled_sim(tmp_path_factory):
    yield from _simulator(tmp_path_factory.mktemp("throttled"), THROTTLED)


def test_find_max_finds_a_known_throttle_within_10_percent(throttled_sim, tmp_path, capsys):
    """Above the throttle the excess is answered ESME_RTHROTTLED (errors); with a burst of a
    tenth of a second a 2 s step can pass at most 5% above the cap, so the highest rate
    holding errors<1% lies within 10% of it."""
    argv = ["--target", f"{HOST}:{throttled_sim}", "--system-id", "lg", "--password", "pw", "--quiet",
            "--find-max", "--slo", "errors<1%", "--rate", "600", "--duration", "2s", "--tolerance", "3%",
            "--max-steps", "10", "--json", str(tmp_path / "search.json")]
    assert cli.main(argv) == 0
    out, _ = capsys.readouterr()
    result = msgspec.json.decode((tmp_path / "search.json").read_bytes(), type=SearchResult)
    assert result.found is not None, out
    assert abs(result.found - THROTTLE) <= 0.10 * THROTTLE, out
    assert any("no: errors<1%: measured" in line for line in out.splitlines()), out


@pytest.fixture(scope="module")
def erring_sim(tmp_path_factory):
    config = ('seed = 3\n[errors.probabilities]\nESME_RSYSERR = 0.1\n'
              '[receipts.delay]\nkind = "uniform"\nmin_ms = 0\nmax_ms = 1000\n')
    yield from _simulator(tmp_path_factory.mktemp("erring"), config)


ASSERTS = [
    ("all hold", "errors<50%,p99<10s,receipts>=80%,rate>=10,receipt_p99<5s", 0, []),
    ("errors over", "errors<1%,p99<10s", 3, ["errors<1%: measured"]),
    ("two fail, one line each", "errors<1%,p99<1us,rate>=10", 3, ["errors<1%: measured", "p99<1us: measured"]),
    ("receipts incomplete", "receipts>=100%", 3, ["receipts>=100%: measured"]),
]


@pytest.mark.parametrize("name, checks, code, lines", ASSERTS, ids=[a[0] for a in ASSERTS])
def test_assert_sets_the_exit_status_with_one_line_per_failed_check(erring_sim, capsys, name, checks, code, lines):
    # the simulator answers 10% ESME_RSYSERR (those owe no receipt) and sends the
    # receipts up to 1 s late: all of them come within a 5 s wait, not without one
    argv = ["--target", f"{HOST}:{erring_sim}", "--system-id", "lg", "--password", "pw", "--quiet", "--count", "300",
            "--dlr", "--receipt-wait", "0" if name == "receipts incomplete" else "5", "--assert", checks,
            "--slo", "p99<10s,errors<1%"]
    got = cli.main(argv)
    out, err = capsys.readouterr()
    assert got == code, err
    failed = err.strip().splitlines() if err.strip() else []
    assert len(failed) == len(lines), err
    for line, says in zip(failed, lines, strict=True):
        assert line.startswith(f"smpphub bench: assertion failed: {says}"), err
    if code == 0:
        assert "--assert: all 5 checks hold" in out
    # without --find-max, --slo only reports: it never sets the exit status
    assert "    holds  p99<10s: measured " in out and "    FAILS  errors<1%: measured " in out


def test_the_command_exits_3_on_a_failed_assertion(erring_sim):
    """Through the installed command, as CI runs it."""
    argv = [sys.executable, "-m", "smpphub", "bench", "--target", f"{HOST}:{erring_sim}", "--system-id", "lg",
            "--password", "pw", "--quiet", "--count", "200", "--assert", "errors<=0%"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("smpphub bench: assertion failed: errors<=0%: measured ") and "Traceback" not in done.stderr
    assert "smpphub bench -> " in done.stdout  # the summary still comes first
