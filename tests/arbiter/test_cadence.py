"""The cadence: beats on pulse boundaries of an anchored schedule, overruns counted late."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.arbiter import Cadence, Pulse
from swarmvar.errors import InvalidParameter


class FakeTime:
    def __init__(self, start: float = 600.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        assert s > 0
        self.slept.append(s)
        self.now += s


def _beats(c: Cadence, t: FakeTime, works: list[float]) -> list[tuple[float, float, bool]]:
    out = []
    for w in works:
        start = c.begin()
        t.now += w
        seconds, late = c.mark()
        assert c.mark() == (seconds, late)  # measured once
        assert c.end() == (seconds, late)
        out.append((start, seconds, late))
    return out


def test_beats_start_on_the_boundaries_and_a_slow_beat_is_late() -> None:
    t = FakeTime()
    c = Cadence(Pulse(), t.clock, t.sleep)
    b = c.budget
    assert b == pytest.approx(0.004211, abs=5e-7)
    works = [0.3 * b] * 5 + [2.5 * b] + [0.3 * b] * 4  # beat 6 overruns into boundary 8
    got = _beats(c, t, works)
    starts = [s for s, _, _ in got]
    expect = [600.0 + n * b for n in (0, 1, 2, 3, 4, 5, 8, 9, 10, 11)]
    assert starts == pytest.approx(expect, abs=1e-12)
    assert [late for _, _, late in got] == [False] * 5 + [True] + [False] * 4
    assert c.beats == 10 and c.late == 1 and c.skipped == 2
    assert [s for _, s, _ in got] == pytest.approx(works, abs=1e-12)
    assert t.now == pytest.approx(600.0 + 12 * b, abs=1e-12)  # the last wait ends on 12


def test_no_drift_over_many_beats() -> None:
    """The 10,000th start is where anchor + n * budget puts it, not a sum of waits."""
    t = FakeTime(100.0)
    c = Cadence(0.1 / 0.95, t.clock, t.sleep)
    for _ in range(10_000):
        c.begin()
        t.now += 0.013
        c.end()
    assert c.begin() == pytest.approx(100.0 + 10_000 * c.budget, rel=0, abs=1e-9)
    assert c.late == 0 and c.skipped == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 3.5), min_size=1, max_size=40))
def test_any_work_pattern_keeps_the_schedule(works: list[float]) -> None:
    t = FakeTime()
    c = Cadence(1.0, t.clock, t.sleep)
    got = _beats(c, t, works)
    for (start, _, _), (nxt, _, _) in zip(got, got[1:], strict=False):
        n = (nxt - 600.0) / c.budget
        assert abs(n - round(n)) < 1e-9  # every start is on a boundary
        assert nxt > start
    assert c.late == sum(w > 1.0 for w in works)
    assert c.beats == len(works)
    ends = [s + w for (s, _, _), w in zip(got, works, strict=True)]
    # each beat starts on the first boundary at or after the previous one's end
    for end, (nxt, _, _) in zip(ends, got[1:], strict=False):
        assert end - 1e-9 <= nxt < end + c.budget + 1e-9
    assert c.skipped == round((t.now - 600.0) / c.budget) - len(works)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "0.1", 5e-324, 9e-7])
def test_a_bad_budget_is_refused(bad: object) -> None:
    with pytest.raises(InvalidParameter):
        Cadence(bad)  # type: ignore[arg-type]


def test_real_clock_paces_ten_beats_within_generous_bounds() -> None:
    """The one real-time test: ten idle beats on a 20 ms pulse take about 200 ms."""
    c = Cadence(0.02)
    began = time.monotonic()
    for _ in range(10):
        c.begin()
        c.end()
    took = time.monotonic() - began
    assert c.beats == 10
    assert 10 * 0.02 - 0.005 <= took < 2.0


def test_the_smallest_budget_keeps_its_schedule_after_a_long_beat() -> None:
    """The floor (1e-6 s, as T_Λ's): a beat of an hour skips boundaries, never overflows."""
    t = FakeTime()
    c = Cadence(1e-6, t.clock, t.sleep)
    c.begin()
    t.now += 3600.0
    assert c.end() == (pytest.approx(3600.0), True)
    assert c.skipped == pytest.approx(3600.0 / 1e-6, rel=1e-6)
