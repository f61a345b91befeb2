"""Scoring rules, track-record and BMA weights, log-sum-exp stability, mixture VaR/ES."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from swarmvar.consensus import (
    Loss,
    SampleLoss,
    StudentTLoss,
    TrackRecordWeights,
    bma_weights,
    fz0_loss,
    joint_weights,
    mixture_var_es,
    pinball_loss,
    softmax_log,
    track_record_weights,
)
from swarmvar.errors import InvalidParameter


def test_pinball_is_minimized_at_the_empirical_quantile():
    rng = np.random.default_rng(0)
    r = rng.standard_t(4, size=2001) * 0.01
    grid = np.sort(-r)
    total = [pinball_loss(r, np.full(r.size, v), 0.95).sum() for v in grid]
    best = grid[int(np.argmin(total))]
    assert best == pytest.approx(np.quantile(-r, 0.95, method="inverted_cdf"))
    # by hand: L = 0.03 above VaR 0.02 costs alpha * 0.01; below costs (1 - alpha) * gap
    assert pinball_loss([-0.03, 0.01], [0.02, 0.02], 0.99).tolist() == pytest.approx(
        [0.99 * 0.01, 0.01 * 0.03]
    )


def test_fz0_expected_loss_is_minimized_at_true_var_es():
    # Patton, Ziegel & Chen (2019): FZ0 is strictly consistent for (VaR, ES)
    rng = np.random.default_rng(1)
    r = rng.normal(0.0, 0.01, size=200_000)
    alpha = 0.975
    true_var = 0.01 * stats.norm.ppf(alpha)
    true_es = 0.01 * stats.norm.pdf(stats.norm.ppf(alpha)) / (1 - alpha)
    res = optimize.minimize(
        lambda p: fz0_loss(r, np.full(r.size, p[0]), np.full(r.size, p[1]), alpha).mean(),
        x0=[0.015, 0.02],
        method="Nelder-Mead",
        options={"xatol": 1e-7, "fatol": 1e-10},
    )
    assert res.x[0] == pytest.approx(true_var, rel=0.03)
    assert res.x[1] == pytest.approx(true_es, rel=0.03)
    with pytest.raises(InvalidParameter, match="ES > 0"):
        fz0_loss([0.0], [0.0], [0.0], 0.99)


def test_track_record_prefers_the_calibrated_agent():
    rng = np.random.default_rng(2)
    r = rng.normal(0, 0.01, size=500)
    alpha = 0.99
    v = 0.01 * stats.norm.ppf(alpha)
    e = 0.01 * stats.norm.pdf(stats.norm.ppf(alpha)) / (1 - alpha)
    var = np.column_stack([np.full(500, v), np.full(500, v * 0.5), np.full(500, v * 3)])
    es = var * (e / v)
    for loss in (Loss.PINBALL, Loss.FZ0):
        out = track_record_weights(r, var, alpha, es=es, loss=loss, window=250)
        assert out.weights.sum() == pytest.approx(1.0)
        assert np.argmax(out.weights) == 0
        # weights are exactly the softmax of -eta * scores
        ref = np.exp(-out.eta * out.scores - special.logsumexp(-out.eta * out.scores))
        np.testing.assert_allclose(out.weights, ref, rtol=1e-12)
    # window: only the last 250 returns count
    pin = track_record_weights(r, var, alpha, window=250)
    assert pin.scores == pytest.approx(pinball_loss(r[-250:], var[-250:], alpha).sum(axis=0))
    with pytest.raises(InvalidParameter, match="FZ0"):
        track_record_weights(r, var, alpha, loss=Loss.FZ0)


def test_bma_weights_are_posterior_model_probabilities():
    rng = np.random.default_rng(3)
    r = rng.standard_t(5, size=300) * 0.01
    models = [stats.norm(0, 0.01), stats.t(5, 0, 0.01), stats.norm(0, 0.02)]
    log_scores = np.column_stack([m.logpdf(r) for m in models])
    w = bma_weights(log_scores, prior=[1, 1, 2])
    evidence = np.exp(log_scores.sum(axis=0) - log_scores.sum(axis=0).max()) * np.array([1, 1, 2])
    np.testing.assert_allclose(w, evidence / evidence.sum(), rtol=1e-10)
    assert np.argmax(w) == 1


@pytest.mark.parametrize("shift", [-1e6 + 30.0, -5e5, -1000.0, 0.0])
def test_log_sum_exp_is_stable_for_a_million_values_in_minus_1e6_to_0(shift):
    # x_i = shift + log(u_i); x_i - shift is exact (Sterbenz), so the exact log-sum-exp of the
    # stored x is shift + log(sum exp(x_i - shift)), summed with fsum as the reference
    rng = np.random.default_rng(4)
    x = shift + np.log(rng.uniform(1e-12, 1.0, size=1_000_000))
    assert x.min() >= -1e6 and x.max() <= 0.0
    u = np.exp(x - shift)
    exact = shift + math.log(math.fsum(u.tolist()))
    if shift < -800:
        with np.errstate(under="ignore"):
            assert np.exp(x).sum() == 0.0  # naive exponentiation underflows to nothing
    w = softmax_log(x)
    # log Z is a float near -1e6: its own rounding (1e-10 absolute) scales all weights alike
    assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0, rel=1e-9)
    np.testing.assert_allclose(w / w.sum(), u / math.fsum(u.tolist()), rtol=1e-12)
    assert special.logsumexp(x) == pytest.approx(exact, rel=1e-15, abs=1e-9)


def test_student_t_loss_matches_scipy():
    for df in (3.0, 8.0, np.inf):
        d = StudentTLoss(loc=0.001, scale=0.01, df=df)
        ref = stats.norm(0.001, 0.01) if np.isinf(df) else stats.t(df, 0.001, 0.01)
        assert d.ppf(0.99) == pytest.approx(ref.ppf(0.99), rel=1e-12)
        assert d.sf(0.02) == pytest.approx(ref.sf(0.02), rel=1e-12)
        excess = integrate.quad(
            lambda t, ref=ref: (t - 0.015) * ref.pdf(t), 0.015, np.inf, epsabs=1e-14
        )[0]
        assert d.expected_excess(0.015) == pytest.approx(excess, rel=1e-7)


def test_single_component_mixture_is_the_component():
    d = StudentTLoss(0.0, 0.01, 4.0)
    v, es = mixture_var_es([d], [1.0], 0.99)
    ref = stats.t(4, 0, 0.01)
    assert v == pytest.approx(ref.ppf(0.99), rel=1e-10)
    tail_mean = integrate.quad(lambda t: t * ref.pdf(t), v, np.inf, epsabs=1e-14)[0] / 0.01
    assert es == pytest.approx(tail_mean, rel=1e-7)


def test_mixture_var_es_against_numerical_integration():
    comps = [
        StudentTLoss(0.0, 0.01, 4.0),
        StudentTLoss(0.002, 0.02, np.inf),
        StudentTLoss(-0.001, 0.015, 6.0),
    ]
    refs = [stats.t(4, 0, 0.01), stats.norm(0.002, 0.02), stats.t(6, -0.001, 0.015)]
    w = np.array([0.5, 0.2, 0.3])
    alpha = 0.99
    v, es = mixture_var_es(comps, w, alpha)

    def cdf(x: float) -> float:
        return float(sum(wi * r.cdf(x) for wi, r in zip(w, refs, strict=True)))

    ref_v = optimize.bisect(lambda x: cdf(x) - alpha, -1, 1, xtol=1e-15)
    assert v == pytest.approx(ref_v, rel=1e-9)
    pdf = lambda x: sum(wi * r.pdf(x) for wi, r in zip(w, refs, strict=True))  # noqa: E731
    ref_es = integrate.quad(lambda x: x * pdf(x), ref_v, np.inf, epsabs=1e-14)[0] / (1 - alpha)
    assert es == pytest.approx(ref_es, rel=1e-7)


def test_sample_loss_matches_brute_force():
    rng = np.random.default_rng(5)
    s = rng.normal(0, 0.01, size=999)
    v, es = mixture_var_es([SampleLoss(s)], [1.0], 0.95)
    q = np.sort(s)[int(np.ceil(0.95 * 999)) - 1]
    assert v == pytest.approx(q, abs=1e-12)
    # Rockafellar-Uryasev: ES = min_v v + E[(L - v)^+] / (1 - alpha), brute force over samples
    ru = min(c + np.maximum(s - c, 0).mean() / 0.05 for c in s)
    assert es == pytest.approx(ru, rel=1e-9)


def test_joint_weights_are_the_normalized_product_of_the_levels_weights():
    rng = np.random.default_rng(11)
    r = rng.standard_t(4, size=300) * 0.01
    scale = np.array([0.8, 1.0, 1.3, 2.0])
    parts = []
    for alpha, q in ((0.99, 2.33), (0.975, 1.96)):
        var = np.tile(q * 0.0125 * scale, (300, 1))
        parts.append(track_record_weights(r, var, alpha, es=var * 1.2, loss=Loss.FZ0))
    joint = joint_weights(parts)
    product = parts[0].weights * parts[1].weights
    np.testing.assert_allclose(joint, product / product.sum(), rtol=1e-10)
    assert joint.sum() == pytest.approx(1.0)
    # stable where the product of the weights underflows
    far = [TrackRecordWeights(p.weights, p.scores * 1e4, p.eta) for p in parts]
    assert np.all(np.isfinite(joint_weights(far))) and joint_weights(far).max() == 1.0
    with pytest.raises(InvalidParameter):
        joint_weights([])
