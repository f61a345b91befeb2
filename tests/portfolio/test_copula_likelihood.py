"""The copula agent's (DCC, df) likelihood: against scipy, and on data of known truth."""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from swarmvar.models.joint_copula import DCC_GRID, DF_GRID, LIK_BLOCK, dcc_correlations, grid_loglik


def _pseudo(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = z.shape[0]
    ranks = z.argsort(axis=0).argsort(axis=0)
    levels = np.arange(1, t + 1) / (t + 1)
    return special.ndtri(levels)[ranks], ranks, levels


def _simulate(t: int, n: int, a: float, b: float, nu: float, seed: int) -> np.ndarray:
    """t-copula scores with DCC correlation (Qbar: equicorrelation 0.5), recursion on the
    normal scores of the t-scores, as the agent models it."""
    rng = np.random.default_rng(seed)
    qbar = np.full((n, n), 0.5) + 0.5 * np.eye(n)
    q_t = qbar.copy()
    out = np.empty((t, n))
    for i in range(t):
        d = np.sqrt(np.diag(q_t))
        r = q_t / np.outer(d, d)
        x = np.linalg.cholesky(r) @ rng.standard_normal(n) / np.sqrt(rng.chisquare(nu) / nu)
        out[i] = x
        s = special.ndtri(stats.t.cdf(x, nu))
        q_t = (1 - a - b) * qbar + a * np.outer(s, s) + b * q_t
    return out


def test_grid_loglik_is_the_t_copula_density_along_the_dcc_path() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_t(5, size=(150, 3)) @ np.array([[1, 0.5, 0.2], [0, 1, -0.3], [0, 0, 1]])
    q, ranks, levels = _pseudo(z)
    ll = grid_loglik(q, ranks, levels)
    assert ll.shape == (DCC_GRID.shape[0], DF_GRID.size)
    qbar = q.T @ q / len(q) + 1e-6 * np.eye(3)
    for g in (0, 7):  # constant correlation, and a dynamic grid point
        a, b = DCC_GRID[g]
        # the DCC recursion written out day by day
        qt, rs = qbar.copy(), []
        for s in q:
            d = np.sqrt(np.diag(qt))
            rs.append(qt / np.outer(d, d))
            qt = (1 - a - b) * qbar + a * np.outer(s, s) + b * qt
        np.testing.assert_allclose(dcc_correlations(q, qbar, a, b), np.array(rs), atol=1e-12)
        for d, nu in enumerate(DF_GRID):
            x = stats.t.ppf(levels, nu)[ranks]
            ref = sum(stats.multivariate_t(shape=r, df=nu).logpdf(xi)
                      for xi, r in zip(x, rs, strict=True))
            ref -= stats.t.logpdf(x, nu).sum()
            np.testing.assert_allclose(ll[g, d], ref, rtol=1e-9, atol=1e-6)


def test_grid_posterior_finds_known_dynamics_and_tails() -> None:
    """Simulated DCC t copula (a, b, nu) = (0.04, 0.90, 6), 8 assets, 1500 days: the posterior
    mode is the truth; constant-correlation normal-copula data put a = 0 or the largest df
    ahead."""
    z = _simulate(1500, 8, 0.04, 0.90, 6.0, seed=1)
    q, ranks, levels = _pseudo(z)
    ll = grid_loglik(q, ranks, levels)
    g, d = np.unravel_index(ll.argmax(), ll.shape)
    assert tuple(DCC_GRID[g]) == (0.04, 0.90) and DF_GRID[d] == 6.0
    z = _simulate(1500, 8, 0.0, 0.0, 1e6, seed=2)
    q, ranks, levels = _pseudo(z)
    ll = grid_loglik(q, ranks, levels)
    g, d = np.unravel_index(ll.argmax(), ll.shape)
    assert DCC_GRID[g, 0] <= 0.005 and DF_GRID[d] == DF_GRID.max()


def test_large_books_use_blocks_on_alternate_days() -> None:
    """Over LIK_BLOCK assets: block i's full likelihood on days i, i + B, ... (B blocks)."""
    rng = np.random.default_rng(3)
    n, t = LIK_BLOCK + 4, 60
    z = rng.standard_normal((t, 1)) + rng.standard_normal((t, n))
    q, ranks, levels = _pseudo(z)
    ll = grid_loglik(q, ranks, levels)
    nu = DF_GRID[-1]
    x = stats.t.ppf(levels, nu)[ranks]
    ref = 0.0
    for i, cols in enumerate([slice(0, LIK_BLOCK), slice(LIK_BLOCK, n)]):
        qb = q[:, cols]
        qbar = qb.T @ qb / t + 1e-6 * np.eye(qb.shape[1])
        d = np.sqrt(np.diag(qbar))
        r = qbar / np.outer(d, d)
        xb = x[i::2, cols]
        ref += stats.multivariate_t(shape=r, df=nu).logpdf(xb).sum() - stats.t.logpdf(xb, nu).sum()
    np.testing.assert_allclose(ll[0, -1], ref, rtol=1e-9)
