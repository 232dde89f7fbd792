"""Smoke test of the session benchmark (benchmarks/session.py): it runs and measures.

``--quick --pairs ours,raw``: our client against our server and against the raw
ceiling server, each pair in two fresh processes per window, ~2000 messages each; a few
seconds. No timing assertions: the machine running the tests may be anything.
"""

from __future__ import annotations

import json
import re

from smpphub.bench import session


def test_quick_run_reports_positive_rates(capsys, tmp_path):
    out_json = tmp_path / "session.json"
    res = session.main(["--quick", "--pairs", "ours,raw", "--quiet", "--json", str(out_json)])
    printed = capsys.readouterr().out

    assert res["failures"] == []
    assert res["pairs"] == ["ours", "raw"]
    for pair in ("ours", "raw"):
        for w in (1, 10, 100):
            row = next(
                (line for line in printed.splitlines() if line.startswith(session.LABELS[pair] + " ") and f"| {w:>6} |" in line),
                None,
            )
            assert row is not None, f"no table row for {pair} window {w} in:\n{printed}"
            cells = [c.strip() for c in row.split("|")]
            assert len(cells) == 7, row
            assert re.fullmatch(r"[\d,]+", cells[2]), row
            assert int(cells[2].replace(",", "")) > 0, row
            for cell in cells[3:]:
                assert float(cell) >= 0, row

            m = res["median"][pair][str(w)]
            assert m["msg_per_s"] > 0
            assert 0 < m["p50_ms"] <= m["p99_ms"]
            assert m["client_cpu_us"] > 0
            assert m["server_cpu_us"] >= 0
            (run,) = res["runs"][pair][str(w)]
            assert run["n"] == 2000 and run["errors"] == 0

    assert "ours->ours msg/s / raw ceiling msg/s = " in printed
    assert json.loads(out_json.read_text())["median"]["ours"]["100"]["msg_per_s"] > 0


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert session.percentile(values, 50) == 50
    assert session.percentile(values, 99) == 99
    assert session.percentile(values, 100) == 100
    assert session.percentile([7], 99) == 7
    assert session.percentile([], 50) == 0
