"""The shared VaR/ES function against scipy and brute force."""

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from swarmvar.errors import InvalidParameter
from swarmvar.models.risk import EmpiricalFamily, StudentTFamily, risk_measures, weighted_quantile


@pytest.mark.parametrize("df", [3.0, 7.5, 30.0, np.inf])
@pytest.mark.parametrize("alpha", [0.95, 0.975, 0.99])
def test_single_student_t_matches_scipy(df, alpha):
    loc, scale = 0.0005, 0.012
    dist = stats.norm(loc, scale) if np.isinf(df) else stats.t(df, loc, scale)
    (m,) = risk_measures(StudentTFamily(loc, scale, df), (alpha,))
    var = -dist.ppf(1 - alpha)
    es = -dist.expect(lambda r: r, ub=dist.ppf(1 - alpha)) / (1 - alpha)
    assert m.var == pytest.approx(var, rel=1e-10)
    assert m.es == pytest.approx(es, rel=1e-7)
    assert m.var_interval == pytest.approx((var, var), rel=1e-10)


def test_mixture_var_and_es_by_direct_integration():
    loc = np.array([0.0, 0.001, -0.002])
    scale = np.array([0.01, 0.02, 0.015])
    df = np.array([4.0, 6.0, np.inf])
    w = np.array([0.5, 0.3, 0.2])
    comps = [stats.t(4, 0.0, 0.01), stats.t(6, 0.001, 0.02), stats.norm(-0.002, 0.015)]

    def cdf(r):
        return sum(wi * c.cdf(r) for wi, c in zip(w, comps, strict=True))

    alpha = 0.99
    r_q = optimize.brentq(lambda r: cdf(r) - (1 - alpha), -1, 1, xtol=1e-14)
    tail_mean = sum(
        wi * integrate.quad(lambda r, c=c: r * c.pdf(r), -np.inf, r_q)[0]
        for wi, c in zip(w, comps, strict=True)
    )
    (m,) = risk_measures(StudentTFamily(loc, scale, df, weights=w), (alpha,))
    assert m.var == pytest.approx(-r_q, rel=1e-9)
    assert m.es == pytest.approx(-tail_mean / (1 - alpha), rel=1e-7)
    # the interval is the weighted 5%..95% range of the conditional VaRs
    cond = np.array([-c.ppf(1 - alpha) for c in comps])
    order = np.argsort(cond)
    cum = np.cumsum(w[order])
    assert m.var_interval == (cond[order][np.argmax(cum >= 0.05)],
                              cond[order][np.argmax(cum >= 0.95)])


def test_weighted_quantile_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.normal(size=rng.integers(1, 40))
        w = rng.random(x.size) + 0.01
        p = rng.random()
        order = np.argsort(x)
        cum = np.cumsum(w[order]) / w.sum()
        brute = x[order][np.argmax(cum >= p - 1e-12)]
        assert weighted_quantile(x, w, p)[0] == brute
    x = rng.normal(size=101)
    expect = np.quantile(x, 0.3, method="inverted_cdf")
    assert weighted_quantile(x, np.ones_like(x), 0.3)[0] == expect


def test_empirical_es_brute_force_with_ties_and_weights():
    rng = np.random.default_rng(1)
    x = np.round(rng.normal(size=200), 1)  # many ties
    sw = rng.random((3, 200))
    fam = EmpiricalFamily(x, sample_weights=sw)
    for alpha in (0.9, 0.975):
        cond_var = fam.var(alpha)
        for s in range(3):
            w = sw[s] / sw[s].sum()
            losses = -x
            order = np.argsort(losses)
            cum = np.cumsum(w[order])
            v = losses[order][np.argmax(cum >= alpha - 1e-12)]
            assert cond_var[s] == v
            # ES as the mean of the upper (1-alpha) tail: the atoms beyond v, then
            # the part of the atom at v needed to fill the tail mass exactly.
            beyond = losses > v
            fill = (1 - alpha) - w[beyond].sum()
            es = (w[beyond] @ losses[beyond] + fill * v) / (1 - alpha)
            assert v + fam.excess(v)[s] / (1 - alpha) == pytest.approx(es, rel=1e-12)


def test_bad_family_and_alphas():
    with pytest.raises(InvalidParameter):
        StudentTFamily(0.0, -1.0, 5.0)
    with pytest.raises(InvalidParameter):
        StudentTFamily(0.0, 1.0, 1.0)
    with pytest.raises(InvalidParameter, match="strictly between"):
        risk_measures(StudentTFamily(0.0, 1.0, 5.0), (1.2,))
    with pytest.raises(InvalidParameter):
        risk_measures(StudentTFamily(0.0, 1.0, 5.0), ())
    with pytest.raises(InvalidParameter):
        EmpiricalFamily([0.1, np.nan])


def test_intervals_equal_the_stable_weighted_quantile_bit_for_bit():
    # risk_measures sorts with numpy's unstable sort; ties (resampled copies) must not matter
    from swarmvar.models.risk import _interval_quantiles

    rng = np.random.default_rng(7)
    probs = (0.05, 0.95)
    for case in range(200):
        s = int(rng.integers(1, 60))
        x = rng.normal(size=s)
        w = rng.random(s)
        if case % 4 == 1:  # copies of a few particles with equal weights, as after resampling
            pick = rng.integers(0, max(1, s // 3), s)
            x, w = x[pick], w[pick]
        elif case % 4 == 2:  # ties with different weights: must fall back to the stable sort
            x = np.round(x, 1)
        elif case % 4 == 3:  # signed zeros and infinities among the ties
            x[rng.random(s) < 0.3] = 0.0
            x[rng.random(s) < 0.2] = -0.0
            x[rng.random(s) < 0.1] = np.inf
        rows = np.stack([x, -x, x[::-1].copy()])
        got = _interval_quantiles(rows, w, probs)
        for r in range(rows.shape[0]):
            ref = weighted_quantile(rows[r], w, probs)
            assert got[r].tobytes() == ref.tobytes()
        # one row of weights per row of values (forecast_block's days)
        ws = np.stack([w, w[::-1].copy(), np.ones(s)])
        got = _interval_quantiles(rows, ws, probs)
        for r in range(rows.shape[0]):
            ref = weighted_quantile(rows[r], ws[r], probs)
            assert got[r].tobytes() == ref.tobytes()
    x = np.array([0.3, np.nan, -1.0, 0.3])
    got = _interval_quantiles(x[None, :], np.ones(4), probs)[0]
    np.testing.assert_array_equal(got, weighted_quantile(x, np.ones(4), probs))


def test_a_family_may_compute_its_level_measures_itself():
    from swarmvar.models.risk import LevelMeasures

    plain = StudentTFamily([0.0, 0.001], [0.01, 0.02], [5.0, 8.0], [0.3, 0.7])

    class Batched(StudentTFamily):
        def level_measures(self, alphas):
            return tuple(LevelMeasures(1.0 + a, 2.0 + a, self.var(a), self.var(a) + 1.0)
                         for a in alphas)

    fam = Batched([0.0, 0.001], [0.01, 0.02], [5.0, 8.0], [0.3, 0.7])
    got = risk_measures(fam, (0.99, 0.975))
    ref = risk_measures(plain, (0.99, 0.975))
    assert [(m.var, m.es) for m in got] == [(1.99, 2.99), (1.975, 2.975)]
    assert [m.var_interval for m in got] == [m.var_interval for m in ref]
    assert got[0].es_interval == pytest.approx(tuple(c + 1.0 for c in ref[0].var_interval))


def test_risk_measures_block_is_risk_measures_day_by_day():
    from swarmvar.models.risk import level_measures, risk_measures_block

    rng = np.random.default_rng(3)
    levels = (0.99, 0.975)
    fams = [StudentTFamily(rng.normal(0, 1e-3, 50), rng.uniform(0.005, 0.02, 50),
                           rng.uniform(3, 30, 50), rng.random(50)) for _ in range(4)]
    rows = [[level_measures(f, a) for a in levels] for f in fams]
    got = risk_measures_block(
        levels,
        np.array([[m.var for m in day] for day in rows]),
        np.array([[m.es for m in day] for day in rows]),
        np.array([[m.cond_var for m in day] for day in rows]),
        np.array([[m.cond_es for m in day] for day in rows]),
        np.stack([f.weights for f in fams]),
    )
    assert got == [risk_measures(f, levels) for f in fams]


def test_interval_sort_keys_fall_back_where_values_share_a_key():
    # the integer-key sort orders values that agree to their last ~10 bits arbitrarily;
    # such rows, negative values, NaN of either sign and rows over 1,024 values must still
    # give the stable weighted quantile exactly
    from swarmvar.models.risk import _interval_quantiles

    rng = np.random.default_rng(11)
    probs = (0.05, 0.95)
    for case in range(60):
        s = int(rng.integers(2, 1500))
        x = rng.normal(0.0, 0.02, s)
        w = rng.random(s)
        if case % 3 == 0:  # neighbours one ulp apart, in either column order
            x[1::2] = np.nextafter(x[::2][: s // 2], np.inf) if case % 2 else np.nextafter(
                x[::2][: s // 2], -np.inf)
        elif case % 3 == 1:  # copies with equal weights among negative and positive values
            pick = rng.integers(0, max(1, s // 4), s)
            x, w = x[pick] - 0.01, w[pick]
        rows = np.stack([x, -x, x[::-1].copy()])
        ws = np.stack([w, w[::-1].copy(), np.ones(s)])
        got = _interval_quantiles(rows, ws, probs)
        for r in range(rows.shape[0]):
            assert got[r].tobytes() == weighted_quantile(rows[r], ws[r], probs).tobytes()
    x = np.array([0.3, -np.nan, -1.0, 0.3, np.inf, -np.inf])
    got = _interval_quantiles(x[None, :], np.ones(6), probs)[0]
    np.testing.assert_array_equal(got, weighted_quantile(x, np.ones(6), probs))


def test_pooled_mixture_var_of_separate_samples_is_the_root_of_the_tail():
    rng = np.random.default_rng(5)
    samples = rng.standard_t(4, (30, 200)) * rng.uniform(0.01, 0.03, (30, 1))
    weights = rng.uniform(0.5, 2.0, 30)
    family = EmpiricalFamily(samples, weights=weights)
    w = family.weights
    for alpha in (0.99, 0.975, 0.9):
        got = family.mixture_var(alpha)
        # the definition: the smallest pooled loss with P(L <= v) >= alpha
        losses = -samples.ravel()
        mass = np.repeat(w / samples.shape[1], samples.shape[1])
        below = np.array([mass[losses <= v].sum() for v in np.sort(losses)])
        assert got == np.sort(losses)[np.argmax(below >= alpha - 1e-12)]
        # the root a search on the tail converges to, and P(L > v) <= 1 - alpha there
        assert float(w @ family.tail(got)) <= 1 - alpha + 1e-12
        assert float(w @ family.tail(np.nextafter(got, -1.0))) > 1 - alpha - 1e-12
    # every level shares one sort, and the measures are those of the whole pooled sample
    (m,) = risk_measures(family, (0.99,))
    pooled = -samples.ravel()
    tail = pooled >= m.var
    es_direct = m.var + float(mass @ np.maximum(pooled - m.var, 0.0)) / 0.01
    assert m.es == pytest.approx(es_direct, rel=1e-12) and tail.any()


def test_scale_mixture_family_against_scipy_and_a_brute_force_sum():
    from swarmvar.models._scale_mixture import ScaleMixtureFamily, h_day_scales

    # one component per draw: a normal, so every measure is scipy's
    loc, scale = np.array([0.001, -0.002]), np.array([[0.01], [0.02]])
    fam = ScaleMixtureFamily(loc, scale, np.array([1.0, 1.0]))
    for alpha in (0.99, 0.975):
        expect = stats.norm.ppf(alpha, loc=-loc, scale=scale[:, 0])
        np.testing.assert_allclose(fam.var(alpha), expect, rtol=1e-10)
        z = (expect + loc) / scale[:, 0]
        es = -loc + scale[:, 0] * stats.norm.pdf(z) / (1 - alpha)
        np.testing.assert_allclose(expect + fam.excess(expect) / (1 - alpha), es, rtol=1e-10)
    # the h-day sum of iid t returns: the normal mixture against simulated sums
    nu, sigma, h = np.array([4.0]), 0.01, 5
    fam = ScaleMixtureFamily(np.zeros(1), sigma * h_day_scales(nu, h, 20_000,
                                                                 np.random.default_rng(1)),
                             np.ones(1))
    sums = sigma * np.random.default_rng(2).standard_t(4.0, (400_000, h)).sum(axis=1)
    assert fam.var(0.99)[0] == pytest.approx(-np.quantile(sums, 0.01), rel=0.02)


def test_a_zero_dimensional_array_is_one_level_and_short_draws_are_named() -> None:
    import numpy as np

    from swarmvar.errors import InvalidParameter
    from swarmvar.models.diagnostics import split_chains
    from swarmvar.models.risk import check_alphas

    assert check_alphas(np.array(0.99)) == (0.99,)
    with pytest.raises(InvalidParameter, match="confidence level"):
        check_alphas(np.array(0.3))
    with pytest.raises(InvalidParameter, match="at least 4 draws"):
        split_chains([1.0, 2.0])
