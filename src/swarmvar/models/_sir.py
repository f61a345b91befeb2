"""Sequential importance resampling building blocks shared by particle agents.

Plain functions on numpy arrays: effective sample size of importance
weights, systematic resampling, adaptive tempering exponents, and
random-walk Metropolis-Hastings rejuvenation moves on a particle cloud.
Nothing here reads a clock or a global random source; every random step
takes a ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: ``log_target(theta (S, d)) -> (log density (S,), auxiliary (k, S))``; the
#: auxiliary rows (cached log-likelihoods, say) are carried with accepted moves.
LogTarget = Callable[[FloatArray], tuple[FloatArray, FloatArray]]


def normalized_weights(log_weights: FloatArray) -> FloatArray:
    """Weights ``(S,)`` summing to one from unnormalized log weights ``(S,)``."""
    w = np.exp(log_weights - log_weights.max())
    return np.asarray(w / w.sum())


def ess(log_weights: FloatArray) -> float:
    """Effective sample size ``1 / sum(w_s^2)`` of normalized importance weights."""
    w = normalized_weights(log_weights)
    return float(1.0 / np.dot(w, w))


def systematic_resample(weights: FloatArray, u: float, n: int | None = None) -> NDArray[np.intp]:
    """Indices ``(n,)`` of a systematic resample of particles (Kitagawa 1996).

    Parameters
    ----------
    weights : array ``(S,)``
        Normalized weights.
    u : float
        The one uniform offset in ``[0, 1)``; ``0.5`` gives a deterministic resample.
    n : int, optional
        Number of indices to draw (default ``S``).
    """
    n = weights.size if n is None else n
    positions = (u + np.arange(n)) / n
    cum = np.cumsum(weights)
    cum[-1] = 1.0
    return np.asarray(np.minimum(np.searchsorted(cum, positions, side="right"), weights.size - 1))


def next_temperature(
    log_weights: FloatArray, increment: FloatArray, current: float, target_ess: float
) -> float:
    """Largest step ``g`` in ``(current, 1]`` keeping ESS of ``w * exp((g - current) * inc)``.

    Bisection on the tempering exponent (Jasra et al. 2011): the next bridge
    distribution is as far along as the particles can follow with ``target_ess``
    effective particles.
    """
    if ess(log_weights + (1.0 - current) * increment) >= target_ess:
        return 1.0
    lo, hi = current, 1.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if ess(log_weights + (mid - current) * increment) >= target_ess:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-6:
            break
    return max(lo, current + 1e-6)


def weighted_covariance(theta: FloatArray, weights: FloatArray) -> FloatArray:
    """Weighted covariance ``(d, d)`` of particles ``theta (S, d)``."""
    mean = weights @ theta
    centered = theta - mean
    cov = (centered * weights[:, None]).T @ centered
    return np.asarray(np.atleast_2d(cov))


def random_walk_moves(
    theta: FloatArray,
    log_target: LogTarget,
    current: tuple[FloatArray, FloatArray],
    rng: np.random.Generator,
    n_moves: int,
    cov: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """Rejuvenate equally weighted particles by Gaussian random-walk Metropolis-Hastings.

    Each move leaves the target invariant, so the particles stay a sample of it
    while their duplicates (from resampling) spread out again.

    Parameters
    ----------
    theta : array ``(S, d)``
        Particles in an unconstrained parameterization.
    log_target : callable
        Log target density (with Jacobian) and carried auxiliaries.
    current : (array ``(S,)``, array ``(k, S)``)
        ``log_target(theta)`` already computed.
    n_moves : int
        Number of MH sweeps over all particles.
    cov : array ``(d, d)``
        Proposal covariance (e.g. ``2.38^2 / d`` times the particle covariance).

    Returns
    -------
    theta, log target ``(S,)``, auxiliaries ``(k, S)``, mean acceptance rate.
    """
    lt, aux = current
    theta, lt, aux = theta.copy(), lt.copy(), aux.copy()
    d = theta.shape[1]
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(d))
    accepted = 0
    for _ in range(n_moves):
        proposal = theta + rng.standard_normal(theta.shape) @ chol.T
        lt_new, aux_new = log_target(proposal)
        log_u = np.log(rng.random(theta.shape[0]))
        ok = log_u < lt_new - lt
        theta[ok], lt[ok], aux[:, ok] = proposal[ok], lt_new[ok], aux_new[:, ok]
        accepted += int(ok.sum())
    rate = accepted / max(1, n_moves * theta.shape[0])
    return theta, lt, aux, rate


def independent_moves(
    theta: FloatArray,
    log_target: LogTarget,
    current: tuple[FloatArray, FloatArray],
    rng: np.random.Generator,
    n_moves: int,
    mean: FloatArray,
    cov: FloatArray,
    df: float = 10.0,
    enough_moved: float = 0.95,
) -> tuple[FloatArray, FloatArray, FloatArray, float, float]:
    """Rejuvenate by independent Metropolis-Hastings from a multivariate t fitted to the cloud.

    The kernel of Chopin's IBIS (2002): propose ``theta' ~ t_df(mean, cov)``
    independently of the current particle and accept with probability
    ``min(1, pi(theta') q(theta) / (pi(theta) q(theta')))``. When the
    proposal is close to the target (a posterior given hundreds of returns
    is nearly Gaussian in an unconstrained parameterization) most proposals
    are accepted, and an accepted move is a fresh draw, not a small step, so
    one or two sweeps undo the duplicates of a resample that random-walk
    moves need several sweeps for. The proposal's ``t`` tails keep the
    importance ratio bounded where a Gaussian would be lighter than the
    target. Stops early once ``enough_moved`` of the particles have moved.

    Returns
    -------
    theta, log target ``(S,)``, auxiliaries ``(k, S)``, mean acceptance rate,
    fraction of particles moved at least once.
    """
    lt, aux = current
    theta, lt, aux = theta.copy(), lt.copy(), aux.copy()
    s, d = theta.shape
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(d))
    inv_chol = np.linalg.inv(chol)

    def log_q(th: FloatArray) -> FloatArray:  # up to a constant, which cancels
        m = ((th - mean) @ inv_chol.T) ** 2
        return np.asarray(-0.5 * (df + d) * np.log1p(m.sum(axis=1) / df))

    lq = log_q(theta)
    moved = np.zeros(s, dtype=bool)
    accepted, sweeps = 0, 0
    for _ in range(n_moves):
        z = rng.standard_normal((s, d)) @ chol.T
        proposal = mean + z / np.sqrt(rng.chisquare(df, (s, 1)) / df)
        lq_new = log_q(proposal)
        lt_new, aux_new = log_target(proposal)
        log_u = np.log(rng.random(s))
        ok = log_u < (lt_new - lt) - (lq_new - lq)
        theta[ok], lt[ok], aux[:, ok], lq[ok] = proposal[ok], lt_new[ok], aux_new[:, ok], lq_new[ok]
        moved |= ok
        accepted += int(ok.sum())
        sweeps += 1
        if moved.mean() >= enough_moved:
            break
    return theta, lt, aux, accepted / max(1, sweeps * s), float(moved.mean())
