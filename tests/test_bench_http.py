"""The HTTP API benchmark runs end to end at a small size and prints its table (a smoke test, not a measure)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_http_benchmark_runs_its_http_variants(tmp_path):
    out = tmp_path / "http.json"
    proc = subprocess.run(
        [sys.executable, "-m", "smpphub.bench.http", "--count", "300", "--connections", "8", "--batch-count", "2000",
         "--batch", "500", "--repeat", "1", "--variants", "ceiling,single,batch", "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    assert results["single"]["messages"] == 300 and results["batch"]["messages"] == 2000
    assert results["ceiling"]["messages"] == 300
    for name, r in results.items():
        assert r["errors"] == 0 and r["msg_rate"] > 0 and r["p50_ms"] <= r["p99_ms"], (name, r)
        assert r["hub_cpu_us"] >= 0 and r["load_cpu_us"] > 0, (name, r)
        if name != "ceiling":  # /proc counts CPU in 10 ms ticks: the bare server's 300 requests may take less
            assert r["hub_cpu_us"] > 0, (name, r)
    assert "HTTP API vs SMPP" in proc.stdout


def test_wrk_summary_is_parsed_into_the_table_figures():
    from benchmarks.http import _parse_wrk

    r = _parse_wrk("Running 2s test\nWRK_RESULT 1000 2000000 10 0 1 0 0 1500 9000\n")
    assert r["requests"] == 1000 and r["messages"] == 990 and r["errors"] == 11
    assert r["req_rate"] == 500 and r["msg_rate"] == 495 and r["p50_ms"] == 1.5 and r["p99_ms"] == 9.0


def test_http_benchmark_wrk_variants_run_or_say_why_not(tmp_path):
    out = tmp_path / "http.json"
    proc = subprocess.run(
        [sys.executable, "-m", "smpphub.bench.http", "--connections", "8", "--duration", "1", "--repeat", "1",
         "--variants", "wrk-ceiling,wrk-single", "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    if shutil.which("wrk") is None:  # tests/run.sh installs it; elsewhere the variants say why they did not run
        assert results == {} and "wrk-single: skipped: wrk is not installed" in proc.stdout
        return
    for name in ("wrk-ceiling", "wrk-single"):
        r = results[name]
        assert r["errors"] == 0 and r["messages"] > 0 and r["p50_ms"] <= r["p99_ms"], (name, r)
        assert r["load_cpu_us"] > 0, (name, r)
    assert results["wrk-single"]["hub_cpu_us"] > 0
    assert "wrk-single" in proc.stdout
