"""The rate window's running sums agree with adding up its buckets."""

from __future__ import annotations

import random

from data_plane.limits import WINDOW, Window


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
