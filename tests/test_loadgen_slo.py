"""The load generator's objectives (--slo, --assert) and the --find-max search, without a network.

The grammar and the search are pure: the search is driven here by a made-up target
that holds below a known rate, so its bracketing, bisection and every way it stops
are checked exactly, and fast. The end-to-end search and the exit statuses against a
simulator are in tests/test_loadgen_findmax.py.
"""

from __future__ import annotations

import io

import pytest

from smpphub.bench.findmax import MIN_RATE, Search, SearchResult, Step, conclusion, find_max
from smpphub.bench.histogram import Histogram
from smpphub.bench.loadgen import BenchResult, LoadOptions
from smpphub.bench.slo import ASSERT_METRICS, SLO_METRICS, Objective, check, parse_objectives

# --- the grammar ---------------------------------------------------------------------------------

GOOD = [
    ("p99<50ms", "p99", "<", 50_000),
    ("p50 <= 2.5ms", "p50", "<=", 2_500),
    ("p99.9<0.2s", "p99.9", "<", 200_000),
    ("max<800us", "max", "<", 800),
    ("P90<1S", "p90", "<", 1_000_000),
    ("errors<0.1%", "errors", "<", 0.001),
    ("errors<=0%", "errors", "<=", 0.0),
    ("receipts>=100%", "receipts", ">=", 1.0),
    ("rate>=900", "rate", ">=", 900),
    ("rate>1.5e3/s", "rate", ">", 1500),
    ("receipt_p99<2s", "receipt_p99", "<", 2_000_000),
    ("receipt_p99.9<=1500ms", "receipt_p99.9", "<=", 1_500_000),
]


@pytest.mark.parametrize("text, metric, op, value", GOOD, ids=[g[0] for g in GOOD])
def test_objectives_read_in_their_units(text, metric, op, value):
    (o,) = parse_objectives(text, ASSERT_METRICS, "--assert")
    assert (o.metric, o.op, o.text) == (metric, op, text.strip())
    assert o.value == pytest.approx(value)


def test_several_objectives_separated_by_commas():
    got = parse_objectives("p99<50ms, errors<0.1%", SLO_METRICS, "--slo")
    assert [o.metric for o in got] == ["p99", "errors"]


BAD = [
    ("p99<50", "--slo: 'p99<50': give the latency a unit: us, ms or s (e.g. p99<50ms)"),
    ("p99<fast", "--slo: cannot read 'p99<fast': expected METRIC<VALUE like p99<50ms or errors<0.1%"),
    ("p98<50ms", "--slo: unknown metric 'p98' in 'p98<50ms' (known: p50, p90, p99, p99.9, max, errors, receipt_p50,"),
    ("receipts>=100%", "--slo: unknown metric 'receipts'"),
    ("errors<1", "--slo: 'errors<1': give errors in percent (e.g. errors<1%)"),
    ("errors<101%", "--slo: 'errors<101%': a percentage is at most 100"),
    ("p99<-5ms", "--slo: 'p99<-5ms': the value must be a number >= 0"),
    ("p99=50ms", "--slo: cannot read 'p99=50ms'"),
    ("p99<50ms,", "--slo: empty objective in 'p99<50ms,'"),
    ("", "--slo: empty objective"),
]


@pytest.mark.parametrize("text, says", BAD, ids=[b[0] or "empty" for b in BAD])
def test_a_bad_objective_is_one_line_naming_it(text, says):
    with pytest.raises(ValueError) as err:
        parse_objectives(text, SLO_METRICS, "--slo")
    assert str(err.value).startswith(says) and "\n" not in str(err.value)


def test_rate_takes_no_time_unit():
    with pytest.raises(ValueError, match="rate is in messages per second"):
        parse_objectives("rate>=900ms", ASSERT_METRICS, "--assert")


def _result(*, sent=1000, errors=0, p99_us=10_000.0, receipts=0, expected=0, rate=500.0,
            receipt_p99_us=None) -> BenchResult:
    h = Histogram()
    return BenchResult(
        options=LoadOptions(host="h", port=1, system_id="a", password=""), environment={}, started_at=0.0,
        duration=2.0, sent=sent, acked=sent - errors, errors={"ESME_RTHROTTLED": errors} if errors else {},
        throttled=errors, reconnects=0, receipts=receipts, duplicate_receipts=0, submit_rate=rate, receipt_rate=0.0,
        latency_us={"p50": 1000.0, "p90": 5000.0, "p99": p99_us, "p999": p99_us, "max": p99_us, "mean": 1.0,
                    "count": sent},
        receipt_latency_us={} if receipt_p99_us is None else {"p99": receipt_p99_us, "count": receipts},
        latency_histogram=h.data(), receipt_histogram=h.data(), timeline=[],
        receipts_expected=expected,
    )


CHECKS = [
    ("p99<50ms", {"p99_us": 49_999.0}, True, "p99<50ms: measured 50.00 ms"),
    ("p99<50ms", {"p99_us": 50_000.0}, False, "p99<50ms: measured 50.00 ms"),
    ("p99<=50ms", {"p99_us": 50_000.0}, True, "p99<=50ms: measured 50.00 ms"),
    ("errors<1%", {"errors": 9}, True, "errors<1%: measured 0.9%"),
    ("errors<1%", {"errors": 10}, False, "errors<1%: measured 1%"),
    ("errors<1%", {"sent": 0}, False, "errors<1%: nothing measured"),
    ("receipts>=100%", {"receipts": 99, "expected": 100}, False, "receipts>=100%: measured 99%"),
    ("receipts>=100%", {"receipts": 100, "expected": 100}, True, "receipts>=100%: measured 100%"),
    ("rate>=900", {"rate": 899.0}, False, "rate>=900: measured 899/s"),
    ("receipt_p99<2s", {"receipts": 10, "receipt_p99_us": 2_500_000.0}, False, "receipt_p99<2s: measured 2500.00 ms"),
    ("receipt_p99<2s", {"receipts": 10, "receipt_p99_us": 900_000.0}, True, "receipt_p99<2s: measured 900.00 ms"),
    ("receipt_p99<2s", {}, False, "receipt_p99<2s: nothing measured"),
]


@pytest.mark.parametrize("text, figures, passed, line", CHECKS, ids=[f"{c[0]} {c[2]}" for c in CHECKS])
def test_checks_against_a_result(text, figures, passed, line):
    (verdict,) = check(parse_objectives(text, ASSERT_METRICS, "--assert"), _result(**figures))
    assert verdict.passed is passed and verdict.line() == line


# --- the search ----------------------------------------------------------------------------------


def _drive(search: Search, limit: float) -> list[float]:
    """The rates the search tries against a target that holds up to ``limit``."""
    tried = []
    while (rate := search.next_rate()) is not None:
        tried.append(rate)
        search.record(rate, rate <= limit)
    return tried


@pytest.mark.parametrize("limit, start", [(1000, 400), (1000, 5000), (3000, 1000), (12_345, 10), (77, 1000)])
def test_search_brackets_then_bisects_to_within_the_tolerance(limit, start):
    search = Search(start, tolerance=0.05, max_steps=40, max_rate=1e6)
    tried = _drive(search, limit)
    assert search.converged and search.held <= limit < search.failed
    assert (search.failed - search.held) <= 0.05 * search.held
    assert tried[0] == start and len(tried) == search.steps <= 20


def test_search_doubles_up_and_halves_down_while_bracketing():
    up = Search(100, tolerance=0.05, max_steps=40, max_rate=1e6)
    assert _drive(up, 1000)[:5] == [100, 200, 400, 800, 1600]
    down = Search(8000, tolerance=0.05, max_steps=40, max_rate=1e6)
    assert _drive(down, 1000)[:4] == [8000, 4000, 2000, 1000]


def test_search_stops_after_max_steps_unconverged():
    search = Search(1000, tolerance=0.001, max_steps=5, max_rate=1e6)
    assert len(_drive(search, 1234)) == 5 and not search.converged


def test_search_stops_at_max_rate_when_everything_holds():
    search = Search(1000, tolerance=0.05, max_steps=40, max_rate=3000)
    assert _drive(search, 1e9) == [1000, 2000, 3000] and search.converged and search.failed is None


def test_search_gives_up_below_the_minimum_rate_when_nothing_holds():
    search = Search(16, tolerance=0.05, max_steps=40, max_rate=1e6)
    tried = _drive(search, 0)
    assert min(tried) >= MIN_RATE and search.held is None and not search.converged


def test_find_max_prints_a_row_per_step_and_concludes():
    limit = 1500.0
    opts = LoadOptions(host="h", port=1, system_id="a", password="p", duration=1.0, rate=1000.0)

    def fake_run(o: LoadOptions) -> BenchResult:
        over = o.rate > limit
        return _result(sent=int(o.rate), p99_us=90_000.0 if over else 5_000.0, rate=o.rate)

    out = io.StringIO()
    search = Search(1000, tolerance=0.05, max_steps=12, max_rate=1e6)
    result = find_max(opts, parse_objectives("p99<50ms", SLO_METRICS, "--slo"), search, run=fake_run, out=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["step", "rate/s", "sent/s", "p50", "ms", "p99", "ms", "errors", "holds"]
    assert len(lines) == 1 + len(result.steps)
    assert lines[2].split()[1:2] == ["2,000"] and "no: p99<50ms: measured 90.00 ms" in lines[2]
    assert result.found is not None and result.found <= limit < result.failed_at and result.converged
    assert conclusion(result).startswith(f"highest rate holding p99<50ms: {result.found:,.0f}/s")


def test_a_step_that_sent_too_little_does_not_hold():
    opts = LoadOptions(host="h", port=1, system_id="a", password="p", duration=2.0, rate=1000.0)
    search = Search(1000, tolerance=0.05, max_steps=2, max_rate=1e6)
    result = find_max(opts, [Objective("p99", "<", 50_000.0, "p99<50ms")], search,
                      run=lambda o: _result(sent=int(o.rate), rate=o.rate), out=io.StringIO())
    assert not result.steps[0].held and result.steps[0].failed == ["sent 1,000 of the 2,000 the rate asked for"]


def test_conclusions_say_how_the_search_ended():
    def res(found, failed_at, converged):
        step = Step(n=1, rate=10.0, duration=1, sent=1, send_rate=1, p50_us=1, p99_us=1, errors=0, held=True)
        return SearchResult(objectives=["p99<5ms"], tolerance=0.05, max_steps=12, max_rate=1e6, steps=[step],
                            found=found, failed_at=failed_at, converged=converged)

    assert conclusion(res(None, 10.0, False)).startswith("no rate tried holds p99<5ms (lowest tried 10/s")
    assert "holds at every rate tried, up to 1,000,000/s (--max-rate)" in conclusion(res(1e6, None, True))
    assert "stopped after --max-steps" in conclusion(res(1000.0, 1500.0, False))
    assert "within 4.0%" in conclusion(res(1000.0, 1040.0, True))
