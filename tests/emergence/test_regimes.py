"""Bayesian online change-point detection against a brute-force segmentation sum."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from swarmvar.emergence import OnlineChangePoint, run_length_posterior, standardize
from swarmvar.errors import InvalidParameter, InvalidReturns, InvalidState, SwarmVarError

PRIOR = dict(mu0=0.3, kappa0=0.5, alpha0=1.5, beta0=0.8)


def log_evidence(x: np.ndarray, mu0: float, kappa0: float, alpha0: float, beta0: float) -> float:
    """Closed-form Normal-Inverse-Gamma marginal likelihood of one segment (not sequential)."""
    n = x.size
    mean = x.mean()
    kn, an = kappa0 + n, alpha0 + n / 2
    bn = beta0 + 0.5 * np.sum((x - mean) ** 2) + kappa0 * n * (mean - mu0) ** 2 / (2 * kn)
    return float(special.gammaln(an) - special.gammaln(alpha0) + alpha0 * np.log(beta0)
                 - an * np.log(bn) + 0.5 * np.log(kappa0 / kn) - 0.5 * n * np.log(2 * np.pi))


def brute_force(x: np.ndarray, hazard: float) -> np.ndarray:
    """P(r_T = r | x) by summing over all 2^(T-1) segmentations of x."""
    t = x.size
    post = np.full(t, -np.inf)
    for cuts in itertools.product([0, 1], repeat=t - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [t]
        logp = sum(cuts) * np.log(hazard) + (t - 1 - sum(cuts)) * np.log1p(-hazard)
        logp += sum(log_evidence(x[a:b], **PRIOR) for a, b in itertools.pairwise(bounds))
        r = bounds[-1] - bounds[-2]
        post[r - 1] = np.logaddexp(post[r - 1], logp)
    return np.exp(post - special.logsumexp(post))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_run_length_posterior_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 1, 5), rng.normal(1, 3, 5)])
    det = OnlineChangePoint(hazard=0.2, max_run=50, window=3, **PRIOR)
    for k in range(x.size):
        step = det.update(float(x[k]))
        np.testing.assert_allclose(step.run_length_posterior, brute_force(x[: k + 1], 0.2),
                                   rtol=1e-10, atol=1e-14)
    post = step.run_length_posterior
    assert step.map_run_length == int(np.argmax(post)) + 1
    assert step.prob_change == pytest.approx(post[:3].sum())
    assert step.flag == (step.prob_change > 0.5)


def test_batch_equals_online_and_state_round_trip() -> None:
    rng = np.random.default_rng(3)
    z = np.concatenate([rng.standard_normal(150), 3 * rng.standard_normal(60)])
    batch = run_length_posterior(z, hazard=0.01, max_run=80, window=10)
    det = OnlineChangePoint(hazard=0.01, max_run=80, window=10)
    for k, v in enumerate(z):
        if k == 100:  # save and restore mid-series: the same continuation
            det = OnlineChangePoint.from_state(det.to_state())
        step = det.update(float(v))
        np.testing.assert_array_equal(batch.probs[k, : step.run_length_posterior.size],
                                      step.run_length_posterior)
        assert batch.prob_change[k] == step.prob_change
        assert batch.map_run_length[k] == step.map_run_length
    assert batch.probs.shape == (210, 80)
    np.testing.assert_allclose(batch.probs.sum(axis=1), 1.0)


def test_detects_a_volatility_break_and_dates_it() -> None:
    rng = np.random.default_rng(11)
    z = np.concatenate([rng.standard_normal(400), 4 * rng.standard_normal(100)])
    res = run_length_posterior(z)
    after = res.detections()[res.detections() >= 400]
    assert after.size >= 1 and after[0] <= 410
    k = int(np.flatnonzero(res.detections() == after[0])[0])
    assert abs(int(res.change_points()[k]) - 400) <= 5
    assert res.flags[:400].mean() < 0.05


def test_first_returns_are_no_change() -> None:
    res = run_length_posterior(np.zeros(5) + 0.1, window=20)
    assert not res.flags.any()
    assert res.prob_change[0] == 0.0


@pytest.mark.parametrize("kw", [dict(hazard=0.0), dict(hazard=1.0), dict(hazard=float("nan")),
                                dict(hazard="x"), dict(threshold=1.5), dict(max_run=1),
                                dict(window=0), dict(window=1000), dict(kappa0=-1.0),
                                dict(beta0=float("inf")), dict(max_run=2.5)])
def test_bad_parameters_raise(kw: dict[str, object]) -> None:
    with pytest.raises(InvalidParameter):
        OnlineChangePoint(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("z", [float("nan"), float("inf"), "1", None, True, 1e300])
def test_bad_returns_raise(z: object) -> None:
    with pytest.raises(InvalidReturns):
        OnlineChangePoint().update(z)  # type: ignore[arg-type]
    with pytest.raises(InvalidReturns):
        run_length_posterior([0.1, z, 0.2])  # type: ignore[list-item]


def test_standardize() -> None:
    r = np.array([0.01, -0.02, 0.03])
    assert np.std(standardize(r), ddof=1) == pytest.approx(1.0)
    with pytest.raises(InvalidReturns):
        standardize(np.ones(4))


def test_corrupt_states_raise() -> None:
    det = OnlineChangePoint(max_run=30)
    for v in (0.1, -2.0, 0.5):
        det.update(v)
    b = det.to_state()
    for bad in (b[:-1], b"x" + b, b[:20], b"", bytes(len(b))):
        with pytest.raises(InvalidState):
            OnlineChangePoint.from_state(bad)
    with pytest.raises(InvalidState):
        OnlineChangePoint.from_state("text")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=200), st.integers(0, 10_000))
def test_fuzzed_states_raise_or_restore(junk: bytes, pos: int) -> None:
    det = OnlineChangePoint(max_run=10, window=3)
    det.update(0.3)
    b = bytearray(det.to_state())
    b[pos % len(b)] ^= 1 + (pos % 255)
    for cand in (bytes(b), junk):
        try:
            OnlineChangePoint.from_state(cand)
        except SwarmVarError:
            pass
        else:  # only an unaltered state may restore
            raise AssertionError("altered state restored")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6) | st.sampled_from([1e6, -1e6, 5e-324, -0.0]),
                min_size=1, max_size=40))
def test_any_finite_series_gives_a_distribution(z: list[float]) -> None:
    res = run_length_posterior(z, max_run=16, window=4)
    assert np.all(np.isfinite(res.probs))
    np.testing.assert_allclose(res.probs.sum(axis=1), 1.0, rtol=1e-9)
    assert np.all((res.prob_change >= 0) & (res.prob_change <= 1))
