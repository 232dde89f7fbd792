"""The load generator against the simulator, its histogram, and its command line."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from benchmarks.histogram import RELATIVE_ERROR, Histogram
from benchmarks.loadgen import BenchResult, DestinationPattern, LoadOptions, Schedule, parse_mix, parse_ramp, run_bench

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


@pytest.fixture
def sim_process():
    """A simulator in its own process (the load generator runs its own event loop)."""
    import socket

    def start(*extra: str):
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "smpphub_cli", "simulate", "--listen", f"{HOST}:{port}", "--quiet", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
        assert b"listening" in proc.stdout.readline()
        procs.append(proc)
        return port

    procs: list[subprocess.Popen] = []
    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def test_counts_balance_and_receipts_are_counted_exactly(sim_process, tmp_path):
    config = tmp_path / "sim.toml"
    config.write_text('seed = 4\n[errors.probabilities]\nESME_RTHROTTLED = 0.1\n')
    port = sim_process("--config", str(config))
    result = run_bench(LoadOptions(host=HOST, port=port, system_id="lg", password="pw", count=3000, binds=2, window=50,
                                   dlr=True, progress=False))
    throttled = result.errors.get("ESME_RTHROTTLED", 0)
    assert result.sent == 3000
    assert result.acked + sum(result.errors.values()) == result.sent
    assert result.throttled == throttled and 150 <= throttled <= 450
    assert result.receipts == result.acked and result.duplicate_receipts == 0
    assert result.latency_us["count"] == 3000 and result.latency_us["p99"] >= result.latency_us["p50"] > 0
    assert result.receipt_latency_us["count"] == result.acked
    # the JSON the command writes decodes into the schema
    path = tmp_path / "r.json"
    path.write_bytes(msgspec.json.encode(result))
    again = msgspec.json.decode(path.read_bytes(), type=BenchResult)
    assert again.acked == result.acked and Histogram.from_data(again.latency_histogram).total == 3000


def test_open_loop_rate_is_within_five_percent(sim_process):
    port = sim_process()
    result = run_bench(LoadOptions(host=HOST, port=port, system_id="lg", password="pw", duration=2.0, rate=500, progress=False))
    # the generator's own accuracy: what it sent over the time it was asked to run
    assert abs(result.sent / 2.0 - 500) / 500 < 0.05
    assert not result.errors


def test_message_mix_sends_long_and_ucs2(sim_process):
    port = sim_process()
    result = run_bench(LoadOptions(host=HOST, port=port, system_id="lg", password="pw", count=30, mix={"long": 1, "ucs2": 1},
                                   progress=False))
    assert result.sent > 30  # long messages are several submit_sm each
    assert not result.errors


def test_schedule_and_ramp():
    s = Schedule(100, None)
    assert s.due(100) == pytest.approx(1.0)
    ramp = Schedule(None, (100, 300, 10))
    assert ramp.due(0) == 0
    assert ramp.count_for(10) == 2000  # the average rate 200/s over 10 s
    assert ramp.due(2000) == pytest.approx(10.0)
    assert ramp.due(2300) == pytest.approx(11.0)  # after the ramp, at the final rate
    assert parse_ramp("1000:20000:60s") == (1000, 20000, 60)
    assert parse_ramp("10:20:2m") == (10, 20, 120)
    for bad in ("1000-2000", "1:2:0s", "a:b:c"):
        with pytest.raises(ValueError):
            parse_ramp(bad)


def test_mix_and_destinations():
    assert parse_mix("gsm:70,ucs2:20,long:10") == {"gsm": 70, "ucs2": 20, "long": 10}
    for bad in ("klingon:1", "gsm:x", "gsm:-1", "gsm:0"):
        with pytest.raises(ValueError):
            parse_mix(bad)
    d = DestinationPattern("4477009{00000-00009}", rng=random.Random(1))
    assert {d.next() for _ in range(200)} == {f"447700900{i:03d}"[:12] for i in range(10)}
    with pytest.raises(ValueError):
        DestinationPattern("44{9-1}")


def test_histogram_percentiles_within_the_stated_error():
    rng = random.Random(7)
    values = [int(rng.lognormvariate(7, 1.5)) for _ in range(20000)]
    h = Histogram()
    for v in values:
        h.record(v)
    exact = sorted(values)
    for p in (50, 90, 99, 99.9):
        true = exact[max(0, int(-(-len(exact) * p // 100)) - 1)]
        assert abs(h.percentile(p) - true) <= max(1, true * RELATIVE_ERROR)
    assert h.percentile(100) == max(values) and h.min == min(values)
    a, b = Histogram(), Histogram()
    for v in values[:10000]:
        a.record(v)
    for v in values[10000:]:
        b.record(v)
    a.merge(b)
    assert a.counts == h.counts and a.total == h.total and a.max == h.max


@pytest.mark.parametrize(
    "args",
    [
        ["--target", "nohost", "--count", "1"],
        ["--target", "127.0.0.1:2775"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--rate", "-5"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--ramp", "fast"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--text-mix", "gsm:1,morse:2"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--rate", "5", "--ramp", "1:2:3s"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--window", "0"],
        ["--target", "127.0.0.1:2775", "--count", "10", "--to", "44{1-"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args):
    proc = subprocess.run([sys.executable, "-m", "smpphub_cli", "bench", "--system-id", "a", "--password", "b", *args],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_compare_smoke(capsys):
    from benchmarks.compare import main

    assert main(["--servers", "raw,ours,simulator", "--count", "500", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[0].strip(): line for line in out.splitlines() if "|" in line}
    for name in ("raw", "ours", "simulator"):
        assert float(rows[name].split("|")[1].replace(",", "")) > 0
    assert main(["--servers", "bogus"]) == 2
