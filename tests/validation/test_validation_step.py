"""Backtests on every ``step``-th day: non-overlapping h-day windows, as the h-day track record."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.consensus import Aggregator, Policy, TrackRecord, Weighting, agent_weights
from swarmvar.errors import InvalidParameter
from swarmvar.models import BayesianBootstrap, NormalInverseGamma
from swarmvar.validation import backtest


def simulated(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.01 * rng.standard_t(5, n) * math.sqrt(3 / 5)


def _rows(known_mean_normal: Any) -> dict[str, Any]:
    return {"known": known_mean_normal(window=60), "nig": NormalInverseGamma(),
            "boot": BayesianBootstrap(window=80, draws=100, paths=50)}


#: a consensus without trimming, so that its VaR weights are the agents' tempered weights
MEAN = Policy(aggregator=Aggregator.MEAN, f=0, weighting=Weighting.TEMPERED, window=60)


@pytest.mark.parametrize(("horizon", "step"), [(5, 5), (3, 2), (1, 4)])
def test_a_forecast_day_is_the_every_day_runs_same_day(known_mean_normal: Any, horizon: int,
                                                       step: int) -> None:
    r = simulated(230, 1)
    every = backtest(r, _rows(known_mean_normal), window=100, refit_every=7, horizon=horizon,
                     alphas=(0.99, 0.975), baseline=None, progress=False, n_sim=10, seed=3)
    some = backtest(r, _rows(known_mean_normal), window=100, refit_every=7, horizon=horizon,
                    alphas=(0.99, 0.975), baseline=None, progress=False, n_sim=10, seed=3,
                    step=step)
    days = r.size - 100 - horizon + 1
    assert some.step == step and len(some.dates) == math.ceil(days / step)
    np.testing.assert_array_equal(some.dates, every.dates[::step])
    np.testing.assert_array_equal(some.returns, every.returns[::step])
    np.testing.assert_allclose(some.returns, [r[t : t + horizon].sum()
                                              for t in range(100, 100 + days, step)])
    for row in every.rows:
        for alpha in every.alphas:
            a, b = every.series[row][alpha], some.series[row][alpha]
            for field in ("var", "es", "var_lo", "var_hi", "es_lo", "es_hi", "hits"):
                np.testing.assert_array_equal(getattr(b, field), getattr(a, field)[::step])
        if horizon == 1:
            np.testing.assert_array_equal(some.logscore[row], every.logscore[row][::step])


def test_the_consensus_weighs_the_realized_non_overlapping_windows(
        known_mean_normal: Any) -> None:
    """Day k's weights: the live rule (agent_weights) on the windows realized before it."""
    r, h = simulated(330, 2), 5
    res = backtest(r, _rows(known_mean_normal), window=100, refit_every=10, horizon=h,
                   alphas=(0.99, 0.975), baseline=None, progress=False, n_sim=10, step=h,
                   consensus={"mean": MEAN})
    names = list(res.agents)
    keep = math.ceil(MEAN.window / h)  # 60 calendar days: 12 windows
    for k in (1, 5, 13, len(res.dates) - 1):
        first = max(0, k - keep)
        records = [TrackRecord(tuple(names), res.returns[first:k], alpha,
                               np.column_stack([res.series[n][alpha].var[first:k]
                                                for n in names]),
                               np.column_stack([res.series[n][alpha].es[first:k]
                                                for n in names]))
                   for alpha in res.alphas]
        want = agent_weights(names, MEAN, records)
        got = res.consensus_weights["mean"][0.99][k]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert not np.allclose(res.consensus_weights["mean"][0.99][-1], 1 / 3)  # not equal


def test_workers_give_the_same_strided_numbers(known_mean_normal: Any) -> None:
    r = simulated(200, 4)
    kw: dict[str, Any] = dict(window=100, horizon=4, step=4, alphas=(0.99,), baseline=None,
                              progress=False, n_sim=10)
    seen: list[tuple[int, int]] = []
    one = backtest(r, _rows(known_mean_normal), **kw)
    two = backtest(r, _rows(known_mean_normal), workers=2, on_day=lambda d, t: seen.append((d, t)),
                   **kw)
    for row in one.rows:
        np.testing.assert_array_equal(one.series[row][0.99].var, two.series[row][0.99].var)
    assert seen[-1] == (3 * 25, 3 * 25)  # 97 calendar days, 25 forecast days, 3 rows


@pytest.mark.parametrize("step", [0, -1, 2.0, True, "5"])
def test_a_bad_step_is_a_clear_error(known_mean_normal: Any, step: object) -> None:
    with pytest.raises(InvalidParameter, match="step"):
        backtest(simulated(150, 5), [known_mean_normal()], window=100, step=step,
                 baseline=None, progress=False)


def test_workers_get_the_costliest_rows_first() -> None:
    from swarmvar.models import DEFAULT_AGENTS, agent_class
    from swarmvar.validation.backtest import _longest_first

    rows: dict[str, Any] = {n: agent_class(n)() for n in DEFAULT_AGENTS}
    # horizon 1: the reverse of the default roster (cheapest first), as before the hints
    assert _longest_first(rows, 1) == list(DEFAULT_AGENTS)[::-1]
    # horizon 10: the bootstrap's path simulation is the costliest row (the score-driven
    # agent ties GarchEVT's hint and keeps its place, the later in the roster first)
    assert _longest_first(rows, 10) == ["BayesianBootstrap", "BetaSkewTEgarch", "GarchEVT",
                                        "GarchT", "StudentT", "NormalInverseGamma"]
    rows["unhinted"] = object()  # a row without a hint: first, its cost unknown
    assert _longest_first(rows, 10)[0] == "unhinted"


@settings(max_examples=40, deadline=None)
@given(step=st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=5), st.booleans(),
                      st.none(), st.lists(st.integers(), max_size=2)))
def test_any_step_but_a_whole_number_from_1_is_refused(step: object) -> None:
    with pytest.raises(InvalidParameter, match="step"):
        backtest(simulated(120, 6), [NormalInverseGamma()], window=100, step=step,
                 baseline=None, progress=False)
