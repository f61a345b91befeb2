"""Policy.f_steps: the trimmed mean drops more per side from a roster size on (the third study)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.consensus import (
    DEFAULT_POLICY,
    Aggregator,
    KeyRing,
    LevelForecasts,
    Policy,
    combine,
    consensus_levels,
    private_key_from_seed,
    sign_estimate,
)
from swarmvar.consensus.combine import aggregate_many, aggregate_rows
from swarmvar.errors import InvalidParameter
from swarmvar.types import Estimate

from .conftest import NOW

STEPPED = dataclasses.replace(DEFAULT_POLICY, f_steps=((6, 2),))


def test_the_default_drops_two_per_side_from_six_agents() -> None:
    assert DEFAULT_POLICY.f == 1 and DEFAULT_POLICY.f_steps == ((6, 2),)
    assert [DEFAULT_POLICY.f_for(m) for m in range(3, 10)] == [1, 1, 1, 2, 2, 2, 2]
    # the step reads as a threshold, not as the number of agents used (with 2-5 agents)
    assert DEFAULT_POLICY.method == "trimmed_mean(f=1 (f=2 from 6 agents on), tempered)"
    two = dataclasses.replace(DEFAULT_POLICY, f_steps=((6, 2), (9, 3)))
    assert two.method == "trimmed_mean(f=1 (f=2 from 6 agents on; f=3 from 9 agents on), " \
        "tempered)"
    # only the trimmed mean steps: other rules keep f (Krum with f = 2 would need 7 agents)
    krum = dataclasses.replace(DEFAULT_POLICY, aggregator=Aggregator.KRUM)
    assert krum.f_for(6) == 1 and krum.f_for(100) == 1
    assert DEFAULT_POLICY.aggregator.min_agents(DEFAULT_POLICY.f) == 3  # still 3 agents needed
    # a larger f overrides the step; a smaller one keeps it
    assert dataclasses.replace(DEFAULT_POLICY, f=3).f_for(7) == 3
    assert dataclasses.replace(DEFAULT_POLICY, f=0).f_for(2) == 0
    assert dataclasses.replace(DEFAULT_POLICY, f=0).f_for(6) == 2


@pytest.mark.parametrize("steps", [((4, 2),), ((6, -1),), ((6, 2.0),), [(6, 2)], ((6,),),
                                   ((True, 2),), "6:2"])
def test_bad_steps_are_refused(steps: object) -> None:
    with pytest.raises(InvalidParameter, match="f_steps"):
        Policy(f=1, f_steps=steps)  # type: ignore[arg-type]


def _rows(rng: np.random.Generator, m: int) -> np.ndarray:
    v = rng.uniform(0.01, 0.05, m)
    return np.column_stack([v, 1.3 * v, 0.9 * v, 1.1 * v, 1.2 * v, 1.4 * v])


@pytest.mark.parametrize("m", [3, 5, 6, 7])
def test_stepped_rule_is_the_plain_rule_with_the_stepped_f(m: int) -> None:
    rng = np.random.default_rng(m)
    rows, w = _rows(rng, m), rng.dirichlet(np.ones(m))
    plain = dataclasses.replace(STEPPED, f=STEPPED.f_for(m), f_steps=())
    got, want = aggregate_rows(rows, STEPPED, w), aggregate_rows(rows, plain, w)
    assert got[:4] == want[:4]
    np.testing.assert_array_equal(got[4], want[4])
    assert np.count_nonzero(got[4]) == m - 2 * STEPPED.f_for(m)
    days = np.stack([rows, rows[::-1]])
    many, many_plain = (aggregate_many(days, p, np.stack([w, w[::-1]])) for p in (STEPPED, plain))
    for a, b in zip(many, many_plain, strict=True):
        np.testing.assert_array_equal(a, b)


def _signed(keys: dict, vars_: list[float]) -> list[Estimate]:
    return [sign_estimate(Estimate(agent_id=a, portfolio="spx", alpha=0.99, horizon=1, var=v,
                                   es=1.25 * v, var_interval=(0.9 * v, 1.1 * v),
                                   es_interval=(1.1 * v, 1.4 * v), as_of=NOW, seq=1), keys[a])
            for a, v in zip(sorted(keys), vars_, strict=True)]


@pytest.mark.parametrize("n", [5, 6, 7])
def test_combine_serves_what_the_backtest_path_gives(n: int) -> None:
    """The live float path and the backtest's many-day path use the same f for n agents."""
    keys = {f"a{i}": private_key_from_seed(bytes([i + 1]) * 32) for i in range(n)}
    ring = KeyRing({a: k.public_key() for a, k in keys.items()})
    rng = np.random.default_rng(n)
    v = list(rng.uniform(0.01, 0.05, n))
    w = rng.dirichlet(np.ones(n))
    c = combine(_signed(keys, v), STEPPED, keyring=ring, now=NOW,
                weights={a: float(x) for a, x in zip(sorted(keys), w, strict=True)})
    rows = np.array([[x, 1.25 * x, 0.9 * x, 1.1 * x, 1.1 * x, 1.4 * x] for x in v])
    path = consensus_levels(np.zeros(1), {0.99: LevelForecasts(
        rows[None, :, 0], rows[None, :, 1], rows[None, :, 2:4], rows[None, :, 4:6])},
        dataclasses.replace(STEPPED, weighting=DEFAULT_POLICY.weighting))
    day = aggregate_many(rows[None], STEPPED, (w / w.sum())[None])
    assert c.var == day[0][0] and c.es == day[1][0]
    assert c.var_interval == pytest.approx(tuple(day[2][0]), rel=1e-14)
    assert len(c.trimmed) == 2 * STEPPED.f_for(n)
    assert path[0.99].var.shape == (1,)
    assert "f=2 from 6 agents on" in c.method


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.005, 0.1), min_size=4, max_size=5),
       st.lists(st.sampled_from([0.0, 1e-9, 1e9, 1e90]), min_size=2, max_size=2),
       st.lists(st.floats(0.0, 1.0), min_size=7, max_size=7))
def test_two_bad_rows_of_six_or_seven_stay_outside(honest: list[float], bad: list[float],
                                                   weights: list[float]) -> None:
    """With the f = 2 step, two Byzantine rows cannot move the result out of the honest range,
    whatever they report and whatever their weights."""
    values = np.array(honest + bad)
    m = values.size
    rows = np.column_stack([values, values, values, values, values, values])
    w = np.array(weights[:m]) + 1e-12
    w[-2:] = 1e6  # the bad rows weigh the most
    var = aggregate_rows(rows, STEPPED, w)[0]
    assert min(honest) <= var <= max(honest)
