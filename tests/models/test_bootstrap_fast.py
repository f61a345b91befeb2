"""BayesianBootstrap's one-day shortcut against the shared risk function on the same draws."""

import math

import numpy as np
import pytest

from swarmvar.models import bootstrap
from swarmvar.models.bootstrap import BayesianBootstrap
from swarmvar.models.risk import EmpiricalFamily, risk_measures


def _reference(agent, rng, alphas):
    """The forecast rebuilt from the same random draws with EmpiricalFamily/risk_measures.

    The draws' weights over the window's losses, largest first: ``K`` Exp(1),
    then, for a draw whose ``K`` hold less than the tail, its Gamma(N - K)
    split into ``min(K, N - K)`` more Exp(1) and a Gamma, again until enough,
    in the order the agent draws them; the last gamma sits on the next loss.
    """
    x = agent.sample()
    n, tail = x.size, 1.0 - min(alphas)
    k = int(min(n, math.ceil(n * tail + bootstrap._TAIL_SD * math.sqrt(n * tail)
                             + bootstrap._TAIL_PAD)))
    weights = np.zeros((agent.draws, n))
    weights[:, :k] = rng.standard_exponential((k, agent.draws)).T
    rest = rng.standard_gamma(n - k, size=agent.draws) if k < n else np.zeros(agent.draws)
    rows_of = np.full(agent.draws, k)  # rows drawn per draw
    active, depth = np.arange(agent.draws), k
    while depth < n:
        held = weights[active, :depth].sum(axis=1)
        short = active[held < tail * (held + rest[active])]
        if short.size == 0:
            break
        rows = min(depth, n - depth)
        e = rng.standard_exponential((rows, short.size))
        left = rng.standard_gamma(n - depth - rows, size=short.size) if rows < n - depth \
            else np.zeros(short.size)
        scale = rest[short] / (e.sum(axis=0) + left)
        weights[short, depth : depth + rows] = (e * scale).T
        rest[short] = left * scale
        active, depth = short, depth + rows
        rows_of[short] = depth
    inside = rows_of < n
    weights[np.flatnonzero(inside), rows_of[inside]] = rest[inside]
    order = np.argsort(x, kind="stable")  # ascending returns: largest losses first
    draws = risk_measures(EmpiricalFamily(x[order], sample_weights=weights), alphas)
    point = risk_measures(EmpiricalFamily(x), alphas)
    return draws, point, int(rows_of.max())


@pytest.mark.parametrize("window", [60, 500, 1000])
@pytest.mark.parametrize("alphas", [(0.99, 0.975), (0.95,), (0.999, 0.9)])
def test_one_day_equals_the_shared_risk_function(window, alphas):
    x = np.random.default_rng(window).standard_t(3, size=window + 40) * 0.01
    agent = BayesianBootstrap(window=window).fit(x, seed=1)
    fast = agent.forecast(alphas, seed=7)
    draws, point, _ = _reference(agent, np.random.default_rng(7), alphas)
    for f, d, p in zip(fast.levels, draws, point, strict=True):
        assert f.var == pytest.approx(p.var, rel=1e-13)
        assert f.es == pytest.approx(p.es, rel=1e-13)
        assert f.var_interval == pytest.approx(d.var_interval, rel=1e-12)
        assert f.es_interval == pytest.approx(d.es_interval, rel=1e-12)


@pytest.mark.parametrize("window", [60, 500])
@pytest.mark.parametrize("alphas", [(0.99, 0.975), (0.999, 0.9)])
def test_short_draws_are_extended_exactly(monkeypatch, window, alphas):
    # no margin: about half the draws hold too little weight on their first
    # rows (at 60 returns, some need a second extension)
    monkeypatch.setattr(bootstrap, "_TAIL_SD", 0.0)
    monkeypatch.setattr(bootstrap, "_TAIL_PAD", 0.0)
    x = np.random.default_rng(window).standard_t(3, size=window + 40) * 0.01
    agent = BayesianBootstrap(window=window).fit(x, seed=1)
    fast = agent.forecast(alphas, seed=7)
    draws, point, deepest = _reference(agent, np.random.default_rng(7), alphas)
    k = math.ceil(window * (1 - min(alphas)))
    assert deepest >= min(2 * k, window)  # extended
    if window == 60:
        assert deepest > 2 * k  # twice
    for f, d, p in zip(fast.levels, draws, point, strict=True):
        assert f.var == p.var
        assert f.var_interval == pytest.approx(d.var_interval, rel=1e-12)
        assert f.es_interval == pytest.approx(d.es_interval, rel=1e-12)


def test_split_gamma_gives_independent_exponentials_and_a_gamma():
    from scipy import stats

    rng = np.random.default_rng(11)
    g = rng.standard_gamma(30, size=40_000)
    e, left = bootstrap._split_gamma(g, 30, 4, rng)
    assert e.shape == (4, 40_000)
    np.testing.assert_allclose(e.sum(axis=0) + left, g, rtol=1e-12)
    for row in e:
        assert stats.kstest(row, stats.expon.cdf).pvalue > 1e-3
    assert stats.kstest(left, stats.gamma(26).cdf).pvalue > 1e-3
    assert abs(np.corrcoef(e[0], left)[0, 1]) < 0.02  # independent of the rest
    last, none = bootstrap._split_gamma(g[:5], 3, 3, rng)  # all of it: no gamma left
    np.testing.assert_allclose(last.sum(axis=0), g[:5], rtol=1e-12)
    assert np.all(none == 0.0)


def test_ties_and_a_light_tail():
    # a window of few distinct values: ties at the VaR
    x = np.tile(np.array([-0.03, -0.01, 0.0, 0.01, 0.02]), 20)
    agent = BayesianBootstrap(window=100).fit(x, seed=0)
    fc = agent.forecast((0.99, 0.95), seed=3)
    for m in fc.levels:
        assert m.var_interval[0] <= m.var_interval[1] and m.es >= m.var
        assert m.var in (0.03, 0.01, 0.0)


def test_percentile_and_log_score_helpers_are_numpy_exact():
    rng = np.random.default_rng(0)
    for n in (50, 77, 500, 501):
        x = rng.standard_t(4, (3, n))
        for q in (0.25, 0.75):
            np.testing.assert_array_equal(bootstrap._sorted_percentile(np.sort(x, axis=1), q),
                                          np.percentile(x, 100 * q, axis=1))


def test_block_log_scores_are_the_rows_one_by_one():
    # the (days, window) reductions sum each row as update's 1-d reductions do
    rng = np.random.default_rng(1)
    windows = rng.standard_t(3, (7, 500)) * 0.01
    values = rng.normal(0, 0.01, 7)
    block = bootstrap._log_scores(windows, np.sort(windows, axis=1), values)
    for w, v, b in zip(windows, values, block, strict=True):
        one = bootstrap._log_scores(w[None, :], np.sort(w)[None, :], np.array([v]))
        assert one[0] == b


def test_even_quantiles_equal_the_weighted_quantile():
    from swarmvar.models.risk import weighted_quantile

    rng = np.random.default_rng(4)
    for n in (20, 999, 1000, 1001):
        v = rng.standard_t(3, n)
        v[::7] = v[0]  # ties
        expect = weighted_quantile(v, np.full(n, 1.0 / n), (0.05, 0.95))
        np.testing.assert_array_equal(bootstrap._even_quantiles(v), expect)


def test_long_window_counts_past_a_byte():
    # k + 1 >= 256 candidate losses: the row count no longer fits the uint8 tally
    x = np.random.default_rng(9).standard_t(3, size=5000) * 0.01
    agent = BayesianBootstrap(window=5000, draws=300).fit(x, seed=2)
    fast = agent.forecast((0.9,), seed=5)
    draws, point, _ = _reference(agent, np.random.default_rng(5), (0.9,))
    assert fast.levels[0].var == pytest.approx(point[0].var, rel=1e-13)
    assert fast.levels[0].var_interval == pytest.approx(draws[0].var_interval, rel=1e-12)
    assert fast.levels[0].es_interval == pytest.approx(draws[0].es_interval, rel=1e-12)


def test_rows_at_most_counts_like_a_column_search():
    rng = np.random.default_rng(3)
    cum = np.vstack([np.zeros(200), np.cumsum(rng.exponential(size=(30, 200)), axis=0)])
    limits = rng.uniform(0, 40, size=(3, 200))
    expect = [[np.searchsorted(cum[:, d], lim[d], side="right") - 1 for d in range(200)]
              for lim in limits]
    np.testing.assert_array_equal(bootstrap._rows_at_most(cum, limits), expect)
