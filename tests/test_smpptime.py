"""SMPP time strings (section 7.1.1) and receipt dates: examples, round trips, rejects."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smppcore.smpptime import (
    InvalidTime,
    format_absolute,
    format_receipt_date,
    format_relative,
    is_relative,
    parse_receipt_date,
    parse_time,
)

UTC = timezone.utc
NOW = datetime(2024, 1, 31, 12, 0, 0, tzinfo=UTC)


def tz(quarters: int) -> timezone:
    return timezone(timedelta(minutes=15 * quarters))


# --- absolute ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        # 2024-03-15 14:30:45.6 at UTC+1 (4 quarter hours ahead)
        ("240315143045604+", datetime(2024, 3, 15, 14, 30, 45, 600_000, tz(4))),
        # US Eastern winter: 20 quarter hours behind
        ("991231235959920-", datetime(2099, 12, 31, 23, 59, 59, 900_000, tz(-20))),
        ("000101000000000+", datetime(2000, 1, 1, tzinfo=UTC)),
        ("000101000000000-", datetime(2000, 1, 1, tzinfo=UTC)),
        # Nepal, UTC+05:45 = 23 quarters; the extremes +-12 h
        ("240229120000023+", datetime(2024, 2, 29, 12, tzinfo=tz(23))),
        ("240101000000048+", datetime(2024, 1, 1, tzinfo=tz(48))),
        ("240101000000048-", datetime(2024, 1, 1, tzinfo=tz(-48))),
    ],
)
def test_parse_absolute(s: str, expected: datetime) -> None:
    got = parse_time(s)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()


def test_empty_is_none() -> None:
    assert parse_time("") is None
    assert parse_receipt_date("") is None


def test_format_absolute_examples() -> None:
    assert format_absolute(datetime(2024, 3, 15, 14, 30, 45, 678_901, tz(4))) == "240315143045604+"
    assert format_absolute(datetime(2024, 3, 15, 14, 30, 45, tzinfo=tz(-22))) == "240315143045022-"
    # naive is UTC
    assert format_absolute(datetime(2030, 6, 1, 8, 0, 0, 950_000)) == "300601080000900+"


def test_format_absolute_moves_offsets_the_format_cannot_carry() -> None:
    # UTC+14 (Kiribati) is beyond 48 quarters: same instant, written at UTC+12
    dt = datetime(2024, 1, 1, 14, 0, tzinfo=tz(56))
    s = format_absolute(dt)
    assert s == "240101120000048+"
    assert parse_time(s) == dt
    # an offset that is not a whole quarter hour is rounded, the instant kept
    odd = timezone(timedelta(minutes=37))
    dt = datetime(2024, 1, 1, 12, 0, tzinfo=odd)
    s = format_absolute(dt)
    assert s.endswith("002+")
    assert parse_time(s) == dt


def test_format_absolute_rejects_years_outside_2000s() -> None:
    with pytest.raises(InvalidTime):
        format_absolute(datetime(1999, 12, 31, tzinfo=UTC))
    with pytest.raises(InvalidTime):
        format_absolute(datetime(2100, 1, 1, tzinfo=UTC))


quarter_zones = st.integers(-48, 48).map(tz)
absolute_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)
)


def tenths(dt: datetime) -> datetime:
    return dt.replace(microsecond=dt.microsecond // 100_000 * 100_000)


@given(absolute_times, quarter_zones)
def test_absolute_round_trip(naive: datetime, zone: timezone) -> None:
    dt = naive.replace(tzinfo=zone)
    s = format_absolute(dt)
    assert len(s) == 16 and not is_relative(s)
    got = parse_time(s)
    assert got == tenths(dt)
    assert got.utcoffset() == dt.utcoffset()
    assert format_absolute(got) == s


@given(
    st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31)),
    st.integers(-23 * 60 + 1, 23 * 60 - 1),
)
def test_absolute_round_trip_any_offset_keeps_the_instant(naive: datetime, minutes: int) -> None:
    dt = naive.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    got = parse_time(format_absolute(dt))
    assert got == tenths(dt)
    assert abs(got.utcoffset()) <= timedelta(hours=12)


# --- relative ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("s", "now", "expected"),
    [
        ("000000000100000R", NOW, NOW + timedelta(minutes=1)),
        ("000002103015000R", NOW, NOW + timedelta(days=2, hours=10, minutes=30, seconds=15)),
        # fields are counts, not calendar values: 48 hours, 90 minutes
        ("000000480000000R", NOW, NOW + timedelta(hours=48)),
        ("000000009000000R", NOW, NOW + timedelta(minutes=90)),
        # months clamp to the end of a shorter month (2024 is a leap year)
        ("000100000000000R", NOW, datetime(2024, 2, 29, 12, tzinfo=UTC)),
        ("000300000000000R", NOW, datetime(2024, 4, 30, 12, tzinfo=UTC)),
        ("011300000000000R", NOW, datetime(2026, 2, 28, 12, tzinfo=UTC)),
        (
            "010000000000000R",
            datetime(2024, 2, 29, 8, tzinfo=UTC),
            datetime(2025, 2, 28, 8, tzinfo=UTC),
        ),
        # years/months first, then days
        (
            "000101000000000R",
            datetime(2024, 1, 31, tzinfo=UTC),
            datetime(2024, 3, 1, tzinfo=UTC),
        ),
        ("000000000000000R", NOW, NOW),
    ],
)
def test_parse_relative(s: str, now: datetime, expected: datetime) -> None:
    assert is_relative(s)
    assert parse_time(s, now) == expected


def test_parse_relative_defaults_to_utc_now() -> None:
    before = datetime.now(UTC)
    got = parse_time("000000010000000R")
    after = datetime.now(UTC)
    assert before + timedelta(hours=1) <= got <= after + timedelta(hours=1)
    assert got.utcoffset() == timedelta(0)


def test_parse_relative_keeps_the_zone_of_now() -> None:
    now = datetime(2024, 6, 1, 9, 0, tzinfo=tz(8))
    got = parse_time("000000010000000R", now)
    assert got == now + timedelta(hours=1)
    assert got.utcoffset() == timedelta(hours=2)


def test_format_relative_examples() -> None:
    assert format_relative(timedelta(minutes=1)) == "000000000100000R"
    assert format_relative(timedelta(days=99, hours=23, minutes=59, seconds=59)) == (
        "000099235959000R"
    )
    assert format_relative(timedelta(seconds=5, microseconds=999_999)) == "000000000005000R"
    # beyond 99 days: 365-day years and 30-day months (approximate by design)
    assert format_relative(timedelta(days=100)) == "000310000000000R"
    assert format_relative(timedelta(days=400, hours=1)) == "010105010000000R"


def test_format_relative_rejects_what_it_cannot_write() -> None:
    with pytest.raises(InvalidTime):
        format_relative(timedelta(seconds=-1))
    with pytest.raises(InvalidTime):
        format_relative(timedelta(days=365 * 100))


@given(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100) - timedelta(seconds=1)),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)),
    quarter_zones,
)
def test_relative_round_trip_is_exact_below_100_days(
    delta: timedelta, naive: datetime, zone: timezone
) -> None:
    now = naive.replace(tzinfo=zone)
    s = format_relative(delta)
    assert is_relative(s)
    assert parse_time(s, now) == now + delta - timedelta(microseconds=delta.microseconds)


@given(st.timedeltas(min_value=timedelta(days=100), max_value=timedelta(days=365 * 99)))
def test_relative_long_periods_are_close(delta: timedelta) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    got = parse_time(format_relative(delta), now)
    # 30-day months and 365-day years against the calendar: off by a few days at most
    assert abs(got - (now + delta)) <= timedelta(days=30)


def test_relative_out_of_calendar_range() -> None:
    with pytest.raises(InvalidTime):
        parse_time("990000000000000R", datetime(9950, 1, 1, tzinfo=UTC))


# --- malformed -----------------------------------------------------------------


@pytest.mark.parametrize(
    "s",
    [
        "24031514304560+",  # 15 characters
        "2403151430456004+",  # 17 characters
        "240315143045604",  # no sign
        "240315143045604x",
        "240315143045604r",  # lower-case R
        "24031514304560a+",
        "2403151430456 4+",
        "24031514304560\u0664+",  # an Arabic-Indic digit
        "240315143045649+",  # 49 quarter hours
        "240315143045699-",
        "241315143045604+",  # month 13
        "240015143045604+",  # month 0
        "240230143045604+",  # 30 February
        "240100143045604+",  # day 0
        "240315243045604+",  # hour 24
        "240315146045604+",  # minute 60
        "240315143060604+",  # second 60
        "000000000100100R",  # relative must end in 000R
        "000000000100004R",
        " 00000000100000R",
    ],
)
def test_invalid_times_raise(s: str) -> None:
    with pytest.raises(InvalidTime):
        parse_time(s)
    assert not is_relative(s)


def test_invalid_time_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_time("nonsense")


@given(st.text(max_size=20))
def test_parse_time_raises_only_invalid_time(s: str) -> None:
    try:
        parse_time(s, NOW)
    except InvalidTime:
        pass


# --- receipt dates ---------------------------------------------------------------


def test_receipt_dates() -> None:
    assert parse_receipt_date("2403151430") == datetime(2024, 3, 15, 14, 30, tzinfo=UTC)
    assert parse_receipt_date("240315143059") == datetime(2024, 3, 15, 14, 30, 59, tzinfo=UTC)
    dt = datetime(2024, 3, 15, 14, 30, 59, tzinfo=UTC)
    assert format_receipt_date(dt) == "2403151430"
    assert format_receipt_date(dt, seconds=True) == "240315143059"
    # written in UTC; naive is UTC already
    assert format_receipt_date(datetime(2024, 3, 15, 16, 30, tzinfo=tz(8))) == "2403151430"
    assert format_receipt_date(datetime(2024, 3, 15, 14, 30)) == "2403151430"


@pytest.mark.parametrize(
    "s", ["240315143", "24031514300", "2403151430590", "2413151430", "24031514xx", "2402301200"]
)
def test_invalid_receipt_dates(s: str) -> None:
    with pytest.raises(InvalidTime):
        parse_receipt_date(s)


@given(absolute_times, st.booleans())
def test_receipt_date_round_trip(naive: datetime, seconds: bool) -> None:
    dt = naive.replace(tzinfo=UTC, microsecond=0)
    if not seconds:
        dt = dt.replace(second=0)
    assert parse_receipt_date(format_receipt_date(dt, seconds=seconds)) == dt
