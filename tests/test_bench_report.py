"""What ``smpphub bench`` reports: the printed summary (receipt latency, the generator's
own CPU), the JSON's per-second receipt latency, and the plot (its size, and rates
that do not dip in a last second the run only partly covered)."""

from __future__ import annotations

import re
import struct

import msgspec
import pytest

from smpphub.bench import cli
from smpphub.bench.loadgen import BenchResult


@pytest.mark.parametrize(
    "seconds, counts, end, t, rates",
    [
        # a run that ends mid-second: the last second is its count over the part covered
        ([0, 1, 2], [1000, 1000, 500], 2.5, [0, 1, 2], [1000.0, 1000.0, 1000.0]),
        ([0, 1, 2], [800, 900, 300], 2.25, [0, 1, 2], [800.0, 900.0, 1200.0]),
        # whole seconds stay counts
        ([0, 1, 2], [10, 20, 30], 3.0, [0, 1, 2], [10.0, 20.0, 30.0]),
        # a series that ends later (receipts after the last send): whole seconds too
        ([0, 1], [10, 20], 7.5, [0, 1], [10.0, 20.0]),
        # a sliver under MIN_PARTIAL is added to the second before it
        ([0, 1, 2], [1000, 1000, 50], 2.05, [0, 1], [1000.0, 1050 / 1.05]),
        # a run shorter than that on its own is drawn as it is
        ([0], [43], 0.043, [0], [1000.0]),
        # a sliver after a gap has no second before it to join: over its own span
        ([0, 5], [100, 20], 5.05, [0, 5], [100.0, 400.0]),
        ([], [], 1.0, [], []),
    ],
)
def test_rate_series(seconds, counts, end, t, rates):
    series = cli.rate_series(seconds, counts, end)
    assert series.t == t
    assert series.per_second == pytest.approx(rates)


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _sync_run(smsc_sync, tmp_path, capsys, *extra: str) -> tuple[BenchResult, str]:
    path = tmp_path / "run.json"
    code = cli.main(["--target", smsc_sync.address, "--system-id", "lg", "--password", "pw", "--quiet",
                     "--json", str(path), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return msgspec.json.decode(path.read_bytes(), type=BenchResult), out


def test_receipts_report_their_latency_and_the_plot_draws_real_rates(smsc_sync, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "run.png"
    # 1,500 messages at 1,000/s: the run ends half-way into its second second
    r, out = _sync_run(smsc_sync, tmp_path, capsys, "--count", "1500", "--rate", "1000", "--dlr", "--plot", str(png))
    assert r.acked == r.receipts == 1500

    # the summary: receipt latency percentiles, and the generator's own CPU
    row = next(line for line in out.splitlines() if line.strip().startswith("submit -> receipt"))
    assert row.split()[-1] == "1,500"
    assert r.receipt_latency_us["count"] == 1500 and r.receipt_latency_us["p50"] > 0
    cpu = re.search(r"generator CPU\s+([\d.]+) s, ([\d,.]+) µs per message", out)
    assert cpu, out
    assert float(cpu.group(1)) == pytest.approx(r.generator_cpu, abs=0.006)
    assert float(cpu.group(2).replace(",", "")) == pytest.approx(r.generator_cpu / 1500 * 1e6, rel=0.01)

    # per second in the JSON: the latency of the receipts that came in that second
    with_receipts = [s for s in r.timeline if s.receipts]
    assert sum(s.receipts for s in with_receipts) == 1500
    assert all(0 < s.receipt_p50_us <= s.receipt_p99_us <= s.receipt_max_us for s in with_receipts)

    # the plot: three panels (rates, submit_sm -> resp, submit -> receipt) of the stated size
    width, height = _png_size(png.read_bytes())
    assert (width, height) == (cli.PLOT_SIZE[0] * cli.PLOT_DPI, cli.PLOT_SIZE[1] * 3 * cli.PLOT_DPI)
    fig = cli.figure(r)
    try:
        rates, resp, receipts = fig.axes
        sent = next(line for line in rates.lines if line.get_label() == "sent/s")
        last = r.timeline[-1]
        assert 0.2 < r.duration - last.t < 0.8  # the run did end mid-second
        # the last second drawn at its real rate: its count over the part of it the run covered
        assert sent.get_ydata()[-1] == pytest.approx(last.sent / (r.duration - last.t))
        assert sent.get_ydata()[-1] == pytest.approx(1000, rel=0.2)  # no false dip
        assert receipts.get_ylabel() == "submit -> receipt (ms)" and len(receipts.lines) == 4
        assert resp.get_ylabel() == "submit_sm -> resp (ms)"
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_without_receipts_two_panels_and_no_receipt_row(smsc_sync, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "run.png"
    r, out = _sync_run(smsc_sync, tmp_path, capsys, "--count", "300", "--plot", str(png))
    assert r.acked == 300 and r.receipts == 0
    assert "submit -> receipt" not in out and "generator CPU" in out
    assert _png_size(png.read_bytes()) == (cli.PLOT_SIZE[0] * cli.PLOT_DPI, cli.PLOT_SIZE[1] * 2 * cli.PLOT_DPI)
