"""The hub and store benchmarks run end to end at a small size and report sane figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_hub_scenario_runs_every_variant_through_smpphub_bench(tmp_path):
    out = tmp_path / "hub.json"
    proc = subprocess.run(
        [sys.executable, "-m", "smpphub.bench.hub", "--count", "1500", "--variants", "ceiling,sqlite,memory,half-rate",
         "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    assert set(results) == {"ceiling", "sqlite", "memory", "half-rate"}
    for name, r in results.items():
        assert r["errors"] == 0 and r["accept_rate"] > 0, (name, r)
        assert r["p50_ms"] <= r["p99_ms"] <= r["p999_ms"], (name, r)
        # CPU comes from /proc in clock ticks (10 ms): the bare server's 1,500 messages take less
        # than one tick, so only the variants that go through the hub must show some
        assert r["hub_cpu_us"] >= 0 and r["load_cpu_us"] > 0, (name, r)
        if name != "ceiling":
            assert r["hub_cpu_us"] > 0, (name, r)
    # receipts on: every accepted message's receipt came back through the hub
    for name in ("sqlite", "memory", "half-rate"):
        assert results[name]["receipts"] == results[name]["count"], (name, results[name])
    assert results["ceiling"]["receipts"] == 0
    # the paced run asked for half the sqlite variant's rate and got about that
    assert results["half-rate"]["accept_rate"] < results["sqlite"]["accept_rate"]
    assert "ceiling = the same load" in proc.stdout


def test_store_scenario_quick_run_prints_its_table():
    proc = subprocess.run([sys.executable, "-m", "smpphub.bench.store", "--quick", "--callers", "1,100", "--sync", "normal",
                           "--intervals", "0"], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in proc.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| op")]
    assert {r[0] for r in rows} == {"add", "save", "lookup", "receipt", "message"}, proc.stdout
    assert all(float(r[6].replace(",", "")) > 0 for r in rows), proc.stdout  # records/s


def test_steadiness_scenario_runs_open_loop_and_reports_latency_and_rss(tmp_path):
    """The 5-minute steadiness run, for two seconds: every figure it prints is there and sane."""
    out = tmp_path / "steady.json"
    proc = subprocess.run(
        [sys.executable, "-m", "smpphub.bench.steady", "--duration", "2", "--rate", "300", "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(out.read_text())
    assert r["sent"] == r["acked"] == 600 and r["errors"] == 0
    assert r["receipts"] == 600  # each came back, after its 0-2 s delay
    assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["p999_ms"] <= r["max_ms"]
    assert 0 < r["rss_start_mib"] <= r["rss_max_mib"] and r["rss_end_mib"] > 0
    assert r["hub_cpu_us"] > 0 and r["load_cpu_us"] > 0
    assert "from the write" in proc.stdout and "hub RSS MiB" in proc.stdout
