"""The rate window's running sums agree with adding up its buckets, and the
limiter's answers name the tightest scope."""

from __future__ import annotations

import random

import pytest

from data_plane.limits import WINDOW, Limiter, Window
from shared.errors import RateLimited
from shared.state import Policy


def _reference(events: list[tuple[int, int, int]], now: int) -> tuple[int, int]:
    """Requests and tokens added in the seconds (now - WINDOW, now]."""
    inside = [(r, t) for second, r, t in events if now - WINDOW < second <= now]
    return sum(r for r, _ in inside), sum(t for _, t in inside)


def test_running_sums_match_the_buckets_as_time_moves() -> None:
    rng = random.Random(7)
    window, events, now = Window(), [], 1_000_000
    for _ in range(5_000):
        now += rng.choice((0, 0, 0, 1, 1, 3, 59, 60, 61, 200))
        requests, tokens = rng.randint(0, 3), rng.randint(-50, 400)
        window.add(now, requests, tokens)
        events.append((now, requests, tokens))
        assert window.totals(now) == _reference(events, now)
        later = now + rng.randint(0, 90)  # a read that moves the window without adding
        assert window.totals(later) == _reference(events, later)
        now = later


def test_a_late_correction_lands_in_its_own_second() -> None:
    window = Window()
    window.add(100, 1, 10)
    window.add(130, 1, 10)
    window.add(100, 0, 5)  # settling the request admitted at second 100
    assert window.totals(130) == (2, 25)
    assert window.totals(159) == (2, 25)
    assert window.totals(160) == (1, 10)  # second 100 has left the window
    assert window.totals(190) == (0, 0)


def test_a_clock_that_steps_back_does_not_lock_a_scope_out() -> None:
    rng = random.Random(11)
    window, events, now = Window(), [], 2_000_000
    for _ in range(3_000):
        step = rng.choice((0, 1, 1, 2, 7, 61, -1, -5, -59, -61, -3600))
        now += step
        # what left the window, or what the clock stepped back over, is gone for good
        events = [e for e in events if now - WINDOW < e[0] <= now]
        assert window.totals(now) == _reference(events, now)  # a check, then the count
        window.add(now, 1, 10)
        events.append((now, 1, 10))
        assert window.totals(now) == _reference(events, now)


def test_headers_and_refusals_name_the_tightest_scope() -> None:
    limiter = Limiter()
    limits = [("tenant:t", Policy(rpm=2)), ("key:k", Policy(rpm=100, tpm=50))]
    admitted = dict(limiter.admit(limits, 10, 1_000.0).headers)
    assert admitted[b"x-ratelimit-limit-requests"] == b"2"  # the tenant's, not the key's
    assert admitted[b"x-ratelimit-remaining-requests"] == b"1"
    assert admitted[b"x-ratelimit-remaining-tokens"] == b"40"
    assert len(limiter.admit(limits, 10, 1_000.0).headers) == 6  # one set, not one per scope
    with pytest.raises(RateLimited) as refused:
        limiter.admit(limits, 45, 1_001.0)  # over the tenant's requests and the key's tokens
    headers = dict(refused.value.headers)
    assert headers[b"x-ratelimit-limit-requests"] == b"2"
    assert headers[b"x-ratelimit-remaining-requests"] == b"0"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"0"
    assert int(headers[b"retry-after"]) == 59  # both admitted at second 1,000
    assert limiter.windows["key:k"].totals(1_001) == (2, 20)  # the refusal counted nothing
