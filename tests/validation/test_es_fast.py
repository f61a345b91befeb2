"""The cheap paths of the ES tests give the numbers of the plain formulas, bit for bit.

* Z2 with a sampler censored at its VaR sums only the tail draws
  (``CensoredStudentT.tail``); its p-value must equal the one the plain loop
  (the whole ``(m, T)`` array through ``z2_statistic``) gives with the same
  random numbers, ties at the observed value included.
* The censored sampler's array is the one of the former closure's formula.
* ``matched_student_t``'s grid + secant solver reaches the ``df`` of scipy's
  bracketing solver (``elementwise.find_root``, the former path) to the
  problem's conditioning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special
from scipy.optimize import elementwise

from swarmvar.errors import InvalidParameter
from swarmvar.validation import (
    CensoredStudentT,
    acerbi_szekely_z2,
    es_tests,
    matched_student_t,
    student_t_sampler,
    t_predictive,
    z2,
)
from swarmvar.validation.z2 import z2_statistic


def _plain(sampler: es_tests.Sampler) -> es_tests.Sampler:
    """The same draws through the generic path (not recognised as censored)."""
    return lambda rng, m: sampler(rng, m)


def _case(seed: int, n: int, alpha: float, normal_share: float) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    loc = rng.normal(0, 0.002, n)
    scale = rng.uniform(0.005, 0.03, n)
    df = np.where(rng.random(n) < normal_share, np.inf, rng.uniform(2.5, 30, n))
    nu = np.where(np.isinf(df), 1e6, df)
    var = loc + scale * special.stdtrit(nu, alpha) * rng.uniform(0.8, 1.2, n)
    es = np.abs(var) * rng.uniform(1.05, 1.6, n) + 1e-4
    return loc, scale, df, var, es


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 400),
    alpha=st.sampled_from([0.4, 0.9, 0.975, 0.99]),  # 0.4: draws below the median
    normal_share=st.sampled_from([0.0, 0.3, 1.0]),
    n_sim=st.integers(1, 300),
    chunk=st.integers(1, 120),
)
def test_censored_z2_equals_the_plain_formula(
    seed: int, n: int, alpha: float, normal_share: float, n_sim: int, chunk: int
) -> None:
    loc, scale, df, var, es = _case(seed, n, alpha, normal_share)
    sampler = student_t_sampler(loc, scale, df, above=var)
    assert isinstance(sampler, CensoredStudentT)
    losses = loc + scale * np.random.default_rng(seed + 1).standard_t(4, n) * 1.3
    fast = acerbi_szekely_z2(losses, var, es, alpha, sampler=sampler, n_sim=n_sim,
                             seed=seed, chunk=chunk)
    slow = acerbi_szekely_z2(losses, var, es, alpha, sampler=_plain(sampler), n_sim=n_sim,
                             seed=seed, chunk=chunk)
    assert (fast.statistic, fast.pvalue) == (slow.statistic, slow.pvalue)


@pytest.mark.parametrize("path", [0, 7, 63])
def test_ties_at_the_observed_value_are_counted_as_the_plain_formula_counts_them(
    path: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    loc, scale, df, var, es = _case(3, 500, 0.975, 0.2)
    sampler = student_t_sampler(loc, scale, df, above=var)
    # the observed losses are one simulated path itself: its Z2 ties with the observed value
    sims = sampler(np.random.default_rng(11), 64)
    losses = sims[path]
    observed = float(z2_statistic(losses, var, es, 0.975))
    assert observed in z2_statistic(sims, var, es, 0.975)
    calls: list[tuple[int, ...]] = []
    plain_z2 = z2.z2_statistic  # the censored count's own reference (its module's name)

    def counted(*a: Any) -> np.ndarray:
        calls.append(np.shape(a[0]))
        return plain_z2(*a)

    monkeypatch.setattr(z2, "z2_statistic", counted)
    fast = acerbi_szekely_z2(losses, var, es, 0.975, sampler=sampler, n_sim=64,
                             seed=np.random.default_rng(11), chunk=64)
    assert (64, 500) in calls  # the straddling path was decided on the rebuilt chunk
    slow = acerbi_szekely_z2(losses, var, es, 0.975, sampler=_plain(sampler), n_sim=64,
                             seed=np.random.default_rng(11), chunk=64)
    assert fast.pvalue == slow.pvalue and fast.statistic == slow.statistic


def test_no_observed_hit_ties_with_every_path_without_a_tail_draw() -> None:
    loc, scale, df, var, es = _case(5, 30, 0.99, 0.5)
    losses = var - 1.0  # no hit: Z2 = -1, as every path without a draw beyond its VaR
    sampler = student_t_sampler(loc, scale, df, above=var)
    fast = acerbi_szekely_z2(losses, var, es, 0.99, sampler=sampler, n_sim=500, seed=2)
    slow = acerbi_szekely_z2(losses, var, es, 0.99, sampler=_plain(sampler), n_sim=500, seed=2)
    assert fast.statistic == -1.0 and fast.pvalue == slow.pvalue == 1.0


def test_the_censored_sampler_draws_the_former_closures_array() -> None:
    loc, scale, df, var, _ = _case(8, 300, 0.99, 0.3)
    got = student_t_sampler(loc, scale, df, above=var)(np.random.default_rng(4), 50)
    # the former closure, verbatim
    normal = np.isinf(df)
    nu_finite = np.where(normal, 1.0, df)
    keep = np.where(normal, special.ndtr((var - loc) / scale),
                    special.stdtr(nu_finite, (var - loc) / scale))
    u = np.random.default_rng(4).random((50, 300))
    out = np.broadcast_to(var, u.shape).copy()
    tail = u > keep
    s_idx, t_idx = np.nonzero(tail)
    ut = u[tail]
    q = np.where(normal[t_idx], special.ndtri(ut), special.stdtrit(nu_finite[t_idx], ut))
    out[s_idx, t_idx] = np.maximum(loc[t_idx] + scale[t_idx] * q, var[t_idx])
    assert np.array_equal(got, out)


def test_a_sampler_censored_elsewhere_takes_the_plain_path() -> None:
    loc, scale, df, var, es = _case(9, 200, 0.975, 0.0)
    sampler = student_t_sampler(loc, scale, df, above=var * 0.9)  # floor below the VaR
    losses = loc + scale * 2.5
    a = acerbi_szekely_z2(losses, var, es, 0.975, sampler=sampler, n_sim=200, seed=1)
    b = acerbi_szekely_z2(losses, var, es, 0.975, sampler=_plain(sampler), n_sim=200, seed=1)
    assert (a.statistic, a.pvalue) == (b.statistic, b.pvalue)


@pytest.mark.parametrize("df_range", [(2.05, 1e4), (4.7, 10.8), (6.0, 6.0)])
def test_the_quantile_grid_brackets_the_exact_quantile(df_range: tuple[float, float]) -> None:
    rng = np.random.default_rng(2)
    df = np.exp(rng.uniform(np.log(df_range[0]), np.log(df_range[1]), 300))
    df[:2] = df_range
    keep = rng.uniform(0.9, 0.999, 300)
    grid = t_predictive._QuantileGrid.of(df, np.zeros(300, dtype=bool), keep)
    assert grid is not None
    t_idx = rng.integers(0, 300, 20_000)
    u = 1.0 - (1.0 - keep[t_idx]) * rng.random(20_000) ** 3  # beyond keep, some far out
    u[:3] = [keep[t_idx[0]], 1.0 - 2.0**-53, 1.0 - 1e-8]
    covered = grid.covers(t_idx, u)
    assert covered.mean() > 0.99
    lo, hi = grid.bracket(t_idx[covered], u[covered])
    exact = special.stdtrit(df[t_idx[covered]], u[covered])
    assert np.all(lo <= exact) and np.all(exact <= hi)
    assert np.median((hi - lo) / exact) < 0.1  # tight enough to decide most paths


def _find_root_df(var: np.ndarray, es: np.ndarray, alpha: float) -> np.ndarray:
    """The former solver: Chandrupatla's bracketing method on log df."""
    lo, hi = np.log(2.05), np.log(1e4)
    res = elementwise.find_root(
        lambda x, t: t_predictive._t_ratio(np.exp(x), alpha) - t, (lo, hi), args=(es / var,),
        tolerances={"xatol": 1e-13, "xrtol": 4 * np.finfo(float).eps},
    )
    return np.asarray(np.exp(res.x))


@pytest.mark.parametrize("alpha", [0.95, 0.975, 0.99])
def test_matched_student_t_reaches_the_bracketing_solvers_df(alpha: float) -> None:
    true_df = np.exp(np.linspace(np.log(2.06), np.log(9000.0), 800))
    var = np.full(true_df.size, 0.02)
    es = var * t_predictive._t_ratio(true_df, alpha)
    _, df = matched_student_t(var, es, alpha)
    ref = _find_root_df(var, es, alpha)
    target = es / var
    well = true_df <= 20  # the ratio flattens as df -> inf: there rounding moves the root
    for got in (df, ref):  # as accurate as each other: the ratio misses the target by rounding
        miss = np.abs(t_predictive._t_ratio(got, alpha) - target) / target
        assert np.max(miss[well]) <= 1e-13 and np.max(miss) <= 5e-11
    assert np.max(np.abs(df[well] / ref[well] - 1)) <= 1e-12
    assert np.max(np.abs(df / ref - 1)) <= 1e-6


def test_non_finite_draws_are_refused_on_both_paths() -> None:
    loc, scale, df, var, es = _case(4, 50, 0.99, 0.0)
    loc[7] = np.inf  # every draw of day 7 is beyond its VaR, and infinite
    sampler = student_t_sampler(loc, scale, df, above=var)
    for s in (sampler, _plain(sampler)):
        with pytest.raises(InvalidParameter, match="finite losses"):
            acerbi_szekely_z2(var * 0.5, var, es, 0.99, sampler=s, n_sim=20, seed=0)


@settings(max_examples=30, deadline=None)
@given(chunk=st.one_of(st.integers(-5, 0), st.booleans(), st.floats(allow_nan=True),
                       st.none(), st.text(max_size=2)),
       censored=st.booleans())
def test_a_chunk_that_is_not_a_positive_whole_number_is_refused(chunk: object,
                                                               censored: bool) -> None:
    """0 would loop for ever, a negative one reach numpy; both paths refuse it first."""
    loc, scale, df, var, es = _case(5, 20, 0.975, 0.0)
    sampler = student_t_sampler(loc, scale, df, above=var if censored else None)
    with pytest.raises(InvalidParameter, match="chunk"):
        acerbi_szekely_z2(var * 0.5, var, es, 0.975, sampler=sampler, n_sim=10,
                          chunk=chunk)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(sizes=st.tuples(*[st.sampled_from([1, 3, 5]) for _ in range(4)]),
       scalar=st.tuples(*[st.booleans() for _ in range(4)]))
def test_above_broadcasts_with_the_other_arguments(sizes: tuple[int, ...],
                                                   scalar: tuple[bool, ...]) -> None:
    """``above`` broadcasts like loc, scale and df (an array of 5 with scalars gives 5
    days); shapes that do not broadcast are refused naming them."""
    values = [np.full(n, v) if not s else v
              for n, s, v in zip(sizes, scalar, (0.0, 0.01, 4.0, 0.02), strict=True)]
    shapes = {n for n, s in zip(sizes, scalar, strict=True) if not s} - {1}
    if len(shapes) > 1:
        with pytest.raises(InvalidParameter, match="do not broadcast"):
            student_t_sampler(*values[:3], above=values[3])
        return
    n = max(shapes, default=1)
    sampler = student_t_sampler(*values[:3], above=values[3])
    assert isinstance(sampler, CensoredStudentT) and sampler.floor.shape == (n,)
    want = student_t_sampler(np.zeros(n), np.full(n, 0.01), np.full(n, 4.0),
                             above=np.full(n, 0.02))
    rng = np.random.default_rng(9)
    assert np.array_equal(sampler(rng, 7), want(np.random.default_rng(9), 7))
