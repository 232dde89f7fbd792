"""smppcore.ratelimit.TokenBucket with a fake clock: exact rates, bursts, refusals."""

from __future__ import annotations

import pytest

from smppcore.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def granted(bucket: TokenBucket) -> int:
    """Take until refused; how many were granted."""
    n = 0
    while bucket.take():
        n += 1
        assert n < 10**6, "an unlimited bucket"
    return n


@pytest.mark.parametrize(
    ("rate", "burst", "step", "seconds"),
    [
        (64.0, 1.0, 1 / 128, 10),  # half a token a step
        (8.0, 1.0, 1 / 2, 30),  # four tokens a step
        (256.0, 2.0, 1 / 1024, 3),  # a quarter a step, a burst of two seconds' worth
        (0.5, 1.0, 1 / 4, 40),  # slower than one a second: the burst is one token
    ],
)
def test_the_rate_is_exact(rate: float, burst: float, step: float, seconds: int):
    # binary fractions throughout, so the float arithmetic is exact and so is the count
    clock = FakeClock()
    bucket = TokenBucket(rate, clock, burst=burst)
    total = granted(bucket)
    capacity = max(rate * burst, 1.0)
    assert total == capacity  # the initial burst
    for _ in range(int(seconds / step)):
        clock.now += step
        total += granted(bucket)
    assert total == capacity + rate * seconds


def test_a_burst_is_capped_after_a_long_silence():
    clock = FakeClock()
    bucket = TokenBucket(10, clock, burst=3)
    assert granted(bucket) == 30
    clock.now += 3600  # an hour idle buys no more than the burst
    assert granted(bucket) == 30
    clock.now += 0.1  # then the rate again: one token per 0.1 s
    assert granted(bucket) == 1


def test_wait_time_says_when_the_next_token_comes():
    clock = FakeClock()
    bucket = TokenBucket(4, clock)
    assert bucket.wait_time() == 0.0
    granted(bucket)
    assert bucket.wait_time() == 0.25
    clock.now += 0.125
    assert not bucket.take()  # half a token
    assert bucket.wait_time() == 0.125
    clock.now += 0.125
    assert bucket.take()


def test_rate_0_is_unlimited():
    clock = FakeClock()
    bucket = TokenBucket(0, clock)
    assert all(bucket.take() for _ in range(100_000))
    assert bucket.wait_time() == 0.0


def test_a_clock_standing_still_grants_nothing_more():
    clock = FakeClock()
    bucket = TokenBucket(100, clock)
    assert granted(bucket) == 100
    assert [bucket.take() for _ in range(10)] == [False] * 10


@pytest.mark.parametrize(("rate", "burst"), [(-1, 1.0), (10, 0.0), (10, -0.5)])
def test_bad_arguments(rate: float, burst: float):
    with pytest.raises(ValueError, match="rate must be >= 0 and burst > 0"):
        TokenBucket(rate, FakeClock(), burst=burst)
