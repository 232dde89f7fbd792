"""A smoke run of benchmarks/ops_overhead.py: it runs and prints its table (figures aside)."""

from __future__ import annotations

from smpphub.bench.ops_overhead import CASES, main


def test_prints_one_row_per_case(capsys):
    assert main(["--count", "2000", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["per", "message", "CPU", "us"]
    assert [line[:34].strip() for line in lines[1:]] == list(CASES)
