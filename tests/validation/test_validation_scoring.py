"""Pinball, FZ0 and Diebold-Mariano against direct computations and independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from arch.covariance.kernel import Bartlett
from scipy import stats

from swarmvar.errors import InvalidParameter
from swarmvar.validation import (
    diebold_mariano,
    fz0_loss,
    long_run_variance,
    newey_west_lags,
    pinball_loss,
)


def test_pinball_matches_the_textbook_check_function() -> None:
    rng = np.random.default_rng(0)
    loss, var = rng.standard_normal(200), rng.standard_normal(200) + 1
    got = pinball_loss(loss, var, 0.99)
    for i in range(200):
        u = loss[i] - var[i]
        assert got[i] == pytest.approx(u * (0.99 - (1.0 if u < 0 else 0.0)), abs=1e-15)
    assert np.all(got >= 0)


def test_pinball_is_minimised_at_the_true_quantile() -> None:
    rng = np.random.default_rng(1)
    loss = rng.standard_t(5, 200_000)
    grid = np.linspace(2.0, 5.0, 301)
    mean = [pinball_loss(loss, np.full(loss.size, g), 0.99).mean() for g in grid]
    best = grid[int(np.argmin(mean))]
    assert best == pytest.approx(np.quantile(loss, 0.99), abs=0.02)
    assert best == pytest.approx(stats.t.ppf(0.99, 5), abs=0.1)


def fz0_returns_convention(y: float, v: float, e: float, tau: float) -> float:
    """Patton, Ziegel & Chen (2019), eq. for L_FZ0, returns Y, v and e < 0 return quantile/ES."""
    return -1.0 / (tau * e) * (1.0 if y <= v else 0.0) * (v - y) + v / e + math.log(-e) - 1.0


def test_fz0_matches_the_published_return_convention() -> None:
    rng = np.random.default_rng(2)
    r = 0.01 * rng.standard_t(4, 500)
    var = 0.02 + 0.01 * rng.random(500)
    es = var * (1.1 + 0.3 * rng.random(500))
    got = fz0_loss(-r, var, es, 0.975)
    for i in range(500):
        want = fz0_returns_convention(r[i], -var[i], -es[i], 0.025)
        assert got[i] == pytest.approx(want, rel=1e-13, abs=1e-13)


def test_fz0_prefers_the_true_var_and_es() -> None:
    # losses ~ Student-t(5) * 0.01: true VaR/ES in closed form
    nu, alpha, scale = 5.0, 0.975, 0.01
    q = stats.t.ppf(alpha, nu)
    es_true = scale * stats.t.pdf(q, nu) * (nu + q * q) / ((nu - 1) * (1 - alpha))
    var_true = scale * q
    loss = scale * np.random.default_rng(3).standard_t(nu, 400_000)

    def score(v: float, e: float) -> float:
        return float(fz0_loss(loss, np.full(loss.size, v), np.full(loss.size, e), alpha).mean())

    best = score(var_true, es_true)
    for dv, de in [(1.1, 1.0), (0.9, 1.0), (1.0, 1.1), (1.0, 0.9), (0.9, 0.9), (1.1, 1.1)]:
        assert score(var_true * dv, es_true * de) > best


def test_diebold_mariano_matches_a_direct_computation_and_arch_bartlett() -> None:
    rng = np.random.default_rng(4)
    n = 700
    e = rng.standard_normal(n + 1)
    d = 0.1 + e[1:] + 0.6 * e[:-1]  # MA(1) loss differential, mean 0.1
    a, b = 1.0 + d, np.ones(n)
    for lags in (0, 1, 3, None):
        q = newey_west_lags(n) if lags is None else lags
        dbar = d.mean()
        c = d - dbar
        gamma = [float(np.sum(c[j:] * c[: n - j])) / n for j in range(q + 1)]
        lrv = gamma[0] + 2 * sum((1 - j / (q + 1)) * gamma[j] for j in range(1, q + 1))
        ref = Bartlett(d, bandwidth=q, force_int=True).cov.long_run[0, 0]
        assert lrv == pytest.approx(ref, rel=1e-12)
        assert long_run_variance(d, q) == pytest.approx(ref, rel=1e-12)
        res = diebold_mariano(a, b, lags=lags)
        stat = dbar / math.sqrt(lrv / n)
        assert res.statistic == pytest.approx(stat, rel=1e-12)
        assert res.pvalue == pytest.approx(2 * stats.norm.sf(abs(stat)), rel=1e-10)
    assert newey_west_lags(700) == math.floor(4 * 7 ** (2 / 9))


def test_diebold_mariano_size_and_power() -> None:
    rng = np.random.default_rng(5)
    null = [diebold_mariano(rng.standard_normal(500), rng.standard_normal(500)).pvalue
            for _ in range(1000)]
    assert 0.03 < np.mean(np.array(null) < 0.05) < 0.08
    better = diebold_mariano(rng.standard_normal(500), rng.standard_normal(500) + 0.5)
    assert better.statistic < 0 and better.pvalue < 1e-6


def test_scoring_rejects_bad_input() -> None:
    with pytest.raises(InvalidParameter):
        pinball_loss([1.0, 2.0], [1.0], 0.99)
    with pytest.raises(InvalidParameter):
        pinball_loss([1.0, np.nan], [1.0, 1.0], 0.99)
    with pytest.raises(InvalidParameter):
        fz0_loss([1.0], [1.0], [0.0], 0.99)
    with pytest.raises(InvalidParameter):
        fz0_loss([1.0], [1.0], [1.0], 1.5)
    with pytest.raises(InvalidParameter):
        diebold_mariano([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(InvalidParameter):
        diebold_mariano([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])  # constant non-zero differential
    with pytest.raises(InvalidParameter):
        diebold_mariano([1.0, 2.0, 3.0], [0.0, 1.0, 5.0], lags=-1)
    same = diebold_mariano([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.pvalue == 1.0
