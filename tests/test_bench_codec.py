"""Smoke test of the codec benchmark (benchmarks/codec.py): it runs and measures every operation.

Only smppcore is measured (``--peers none``) with ``--quick`` settings, in-process and
without pinning the test process to a CPU (``--cpu -1``); it takes a second or two.
No timing assertions: the machine running the tests may be anything.
"""

from __future__ import annotations

import re

from smpphub.bench import codec


def test_quick_run_reports_a_positive_rate_for_every_operation(capsys, tmp_path):
    out_json = tmp_path / "codec.json"
    res = codec.main(["--quick", "--peers", "none", "--cpu", "-1", "--quiet", "--json", str(out_json)])
    printed = capsys.readouterr().out

    assert res["columns"] == ["ours"]
    for key, label in codec.OPS:
        # In the printed table: the row's label, then one rate with thousands separators.
        row = next((line for line in printed.splitlines() if line.startswith(label + " ")), None)
        assert row is not None, f"no table row for {label!r} in:\n{printed}"
        cells = [c.strip() for c in row.split("|")]
        assert len(cells) == 2, row
        assert re.fullmatch(r"[\d,]+", cells[1]), row
        assert int(cells[1].replace(",", "")) > 0, row
        # And in the returned figures.
        assert res["median"][key]["ours"] > 0
        assert len(res["runs"][key]["ours"]) == 3

    assert "targets: ours submit_sm encode+decode" in printed
    assert out_json.read_text().startswith("{")
