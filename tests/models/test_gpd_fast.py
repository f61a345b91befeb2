"""GPD grid log-likelihood by tabulated sums: against scipy's summed log densities."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from swarmvar.models.gpd import XI_RANGE, XI_STEP, gpd_posterior, grid_loglik


def _scipy_grid(y: np.ndarray, xi: np.ndarray, beta: np.ndarray) -> np.ndarray:
    logpdf = stats.genpareto.logpdf(y[:, None, None], c=xi[None, :, None],
                                    scale=beta[None, None, :])
    return np.asarray(logpdf.sum(axis=0))


def _check(y: np.ndarray, xi: np.ndarray, beta: np.ndarray) -> None:
    ref = _scipy_grid(y, xi, beta)
    got = grid_loglik(y, xi, beta)
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(got), finite)
    # ~1e-11 relative; absolute up to ~1e-9 where 1/xi (xi near 0) magnifies the sum
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-10, atol=1e-8)


@pytest.mark.parametrize("shape", [-0.3, 0.0, 0.15, 0.5])
@pytest.mark.parametrize("size", [5, 100, 400])
def test_grid_loglik_on_the_posterior_grid(shape: float, size: int) -> None:
    # the grid gpd_posterior builds (every xi node, log beta +-2.5 around the mean excess);
    # bounded excesses (shape < 0) put the support's end inside the grid
    y = stats.genpareto(c=shape, scale=0.6).rvs(size=size, random_state=size)
    lo, hi = XI_RANGE
    xi = np.linspace(lo, hi, int(round((hi - lo) / XI_STEP)) + 1)
    beta = np.exp(np.log(y.mean()) + np.linspace(-2.5, 2.5, 41))
    _check(y, xi, beta)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), size=st.integers(1, 60), tail=st.floats(0.05, 3.0),
       spread=st.floats(0.1, 6.0))
def test_grid_loglik_any_excesses(seed: int, size: int, tail: float, spread: float) -> None:
    # ties, a single excess, excesses all above half the largest (no table on the
    # negative side), wide and narrow beta ranges, xi at and near 0 (|xi| < 1e-9 takes
    # the exponential limit, which scipy does not: those rows are left out)
    rng = np.random.default_rng(seed)
    y = rng.pareto(1.0 / tail, size) + 1e-3
    if size > 3:
        y[1] = y[0]
    xi = np.concatenate([np.linspace(-0.9, 0.95, 38), [0.0, -1e-4, 1e-4, 1e-7]])
    beta = np.exp(np.log(y.mean()) + np.linspace(-spread, spread, 23))
    _check(y, xi, beta)


def test_posterior_mode_and_probabilities_stay_put() -> None:
    # the tabulated sums move the grid posterior only at rounding level
    y = stats.genpareto(c=0.2, scale=0.5).rvs(size=100, random_state=3)
    post = gpd_posterior(y, 1000)
    ref = _scipy_grid(y, post.xi, np.exp(post.log_beta))
    assert np.unravel_index(np.argmax(post.log_post), ref.shape) == np.unravel_index(
        np.argmax(ref), ref.shape)
    p_ref = np.exp(ref - ref.max())
    np.testing.assert_allclose(post.probabilities, p_ref / p_ref.sum(), rtol=1e-9, atol=1e-300)
