"""The simulator benchmark runs (``--quick``) and measures a positive rate for every server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_prints_the_table_with_positive_rates(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "smpphub.bench.simulator", "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=20, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    medians = result["medians"]
    assert set(medians) == {"plain", "simulator", "simulator+dlr"}
    assert all(m["msg_per_s"] > 0 for m in medians.values())
    assert medians["simulator+dlr"]["receipts"] == result["args"]["count"]  # every receipt came
    assert all(r["errors"] == 0 for runs in result["runs"].values() for r in runs)
    table = proc.stdout
    for name in ("plain", "simulator", "simulator+dlr"):
        assert any(line.startswith(name + " ") for line in table.splitlines()), table
    assert "simulator / plain server: " in table
