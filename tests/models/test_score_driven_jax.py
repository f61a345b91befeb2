"""The compiled (JAX) Beta-Skew-t-EGARCH likelihood against the numpy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from swarmvar.data import load
from swarmvar.models import _score_driven_jax as jlik
from swarmvar.models import _score_driven_lik as lik


def _windows() -> list[np.ndarray]:
    r = load("sp500")
    return [r.loc["2007-06-01":"2011-06-01"].to_numpy()[:1000],  # the 2008 crash inside
            r.to_numpy()[-1020:], r.to_numpy()[-257:], r.to_numpy()[-256:],
            r.to_numpy()[-100:], r.to_numpy()[-1:]]


def _stable(r: np.ndarray, th: lik.Theta) -> np.ndarray:
    """Particles whose reference log-likelihood moves by < 1e-9 when the data move by 1e-15
    (relative): the well-conditioned ones. With a large score loading (kappa ~ 1, nu ~ 20)
    the recursion in lambda is chaotic and the last bits of any two evaluation orders part
    ways; the numpy reference disagrees with itself there just as much."""
    ll0, _ = lik.loglik(r, th)
    ll1, _ = lik.loglik(r * (1.0 + 1e-15), th)
    with np.errstate(invalid="ignore"):
        return np.asarray((np.abs(ll1 - ll0) < 1e-9) | (ll0 == ll1))


@pytest.mark.parametrize("particles", [1, 7, 100, 1000])
def test_compiled_loglik_matches_the_reference_on_real_windows(particles: int) -> None:
    rng = np.random.default_rng(particles)
    th = lik.sample_prior(particles, rng)
    for r in _windows():
        ll_ref, lam_ref = lik.loglik(r, th)
        ll, lam = jlik.loglik(r, th)
        assert ll.shape == lam.shape == (particles,)
        np.testing.assert_array_equal(np.isfinite(ll), np.isfinite(ll_ref))
        ok = _stable(r, th) & np.isfinite(ll_ref)
        assert ok.mean() >= 0.9 or particles < 10
        np.testing.assert_allclose(ll[ok], ll_ref[ok], rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(lam[ok], lam_ref[ok], rtol=1e-12, atol=1e-12)


def test_compiled_loglik_matches_the_reference_at_posterior_particles() -> None:
    """Particles near S&P 500's posterior (what refits evaluate): every one agrees."""
    r = load("sp500").to_numpy()[-1000:]
    rng = np.random.default_rng(3)
    n = 500
    th = lik.Theta(rng.normal(5e-4, 2e-4, n), rng.normal(-4.9, 0.3, n),
                   np.tanh(rng.normal(3.0, 0.3, n)), np.exp(rng.normal(math.log(0.04), 0.3, n)),
                   rng.normal(0.03, 0.01, n), 2.0 + np.exp(rng.normal(2.0, 0.4, n)),
                   np.exp(rng.normal(-0.1, 0.05, n)))
    ll_ref, lam_ref = lik.loglik(r, th)
    ll, lam = jlik.loglik(r, th)
    assert np.all(np.isfinite(ll_ref))
    np.testing.assert_allclose(ll, ll_ref, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(lam, lam_ref, rtol=1e-12, atol=1e-12)


def test_compiled_loglik_edge_cases_match_the_reference() -> None:
    """A collapsed scale (z ~ e^200: a factor that would overflow an 8-day product), an
    overflowing one (exp(m) = inf: -inf), returns equal to mu (the sign 0) and a masked
    last chunk."""
    r = load("sp500").to_numpy()[-300:].copy()
    base = lik.sample_prior(6, np.random.default_rng(0))._replace(
        kappa=np.full(6, 0.05), nu=np.full(6, 6.0), phi=np.full(6, 0.95))
    th = base._replace(omega=np.array([-100.0, -400.0, -4.5, -4.5, -4.5, 2.0]))
    r[10] = th.mu[2]
    r[11] = th.mu[3]
    ll_ref, lam_ref = lik.loglik(r, th)
    ll, lam = jlik.loglik(r, th)
    assert math.isfinite(ll_ref[0]) and ll_ref[0] < -1e5  # finite, astronomically unlikely
    assert ll_ref[1] == -np.inf and ll[1] == -np.inf
    fin = np.isfinite(ll_ref)
    np.testing.assert_allclose(ll[fin], ll_ref[fin], rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(lam[fin], lam_ref[fin], rtol=1e-12)


def test_capacity_pads_a_few_sizes_per_octave() -> None:
    sizes = {jlik.capacity(n) for n in range(64, 4097)}
    assert len(sizes) <= 8 * 7
    for n in (1, 64, 100, 1000, 4000, 4096, 100_000):
        cap = jlik.capacity(n)
        assert cap >= n and (cap <= 1.25 * n or n < 64)
    assert jlik.capacity(1000) == 1024 and jlik.capacity(4000) == 4096
