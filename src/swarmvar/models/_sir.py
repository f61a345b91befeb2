"""Sequential importance resampling building blocks shared by particle agents.

Plain functions on numpy arrays: effective sample size of importance
weights, systematic resampling, adaptive tempering exponents, and
random-walk and independent Metropolis-Hastings rejuvenation moves on a
particle cloud. The moves also serve ``runs`` independent SMC runs held as
one batch: the particles ``(runs * P, d)`` are the runs' clouds one after the
other and each run has its own proposal, so that one likelihood pass serves
every run while the runs stay independent (what R-hat across runs needs).
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


def reweighted(log_weights: FloatArray, ll_new: FloatArray, ll_old: FloatArray) -> FloatArray:
    """Log weights moved from one target to another: ``log_weights + ll_new - ll_old``
    ``(S,)``, a non-finite result (a particle the new target excludes) set to ``-inf``."""
    logw = log_weights + ll_new - ll_old
    out: FloatArray = np.where(np.isfinite(logw), logw, -np.inf)
    return out


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


def run_slices(size: int, runs: int) -> list[slice]:
    """The ``runs`` contiguous equal blocks of a batch of ``size`` particles."""
    if runs < 1 or size % runs:
        raise ValueError(f"{size} particles do not split into {runs} equal runs")
    p = size // runs
    return [slice(g * p, (g + 1) * p) for g in range(runs)]


def _per_run_product(z: FloatArray, mats: FloatArray) -> FloatArray:
    """``z (S, d)`` with each run's block multiplied by its ``mats[g].T`` (``mats (R, d, d)``)."""
    out = np.empty_like(z)
    for g, sl in enumerate(run_slices(z.shape[0], mats.shape[0])):
        out[sl] = z[sl] @ mats[g].T
    return out


def _least_share(counts: NDArray[np.intp] | NDArray[np.bool_], runs: int, per: int) -> float:
    """The smallest over the runs of (the run's total of ``counts (S,)``) / ``per``."""
    return float(np.min(counts.reshape(runs, -1).sum(axis=1))) / per


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
    runs: int = 1,
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """Rejuvenate equally weighted particles by Gaussian random-walk Metropolis-Hastings.

    Each move leaves the target invariant, so the particles stay a sample of it
    while their duplicates (from resampling) spread out again.

    Parameters
    ----------
    theta : array ``(S, d)``
        Particles in an unconstrained parameterization (``runs`` equal blocks).
    log_target : callable
        Log target density (with Jacobian) and carried auxiliaries.
    current : (array ``(S,)``, array ``(k, S)``)
        ``log_target(theta)`` already computed.
    n_moves : int
        Number of MH sweeps over all particles.
    cov : array ``(d, d)`` or ``(runs, d, d)``
        Proposal covariance (e.g. ``2.38^2 / d`` times the particle covariance),
        one per run.
    runs : int
        Independent runs in the batch.

    Returns
    -------
    theta, log target ``(S,)``, auxiliaries ``(k, S)``, the lowest of the
    runs' acceptance rates.
    """
    lt, aux = current
    theta, lt, aux = theta.copy(), lt.copy(), aux.copy()
    d = theta.shape[1]
    chol = np.asarray(np.linalg.cholesky(np.reshape(cov, (runs, d, d)) + 1e-12 * np.eye(d)),
                      dtype=float)
    accepted = np.zeros(theta.shape[0], dtype=np.intp)
    for _ in range(n_moves):
        proposal = theta + _per_run_product(rng.standard_normal(theta.shape), chol)
        lt_new, aux_new = log_target(proposal)
        log_u = np.log(rng.random(theta.shape[0]))
        ok = log_u < lt_new - lt
        theta[ok], lt[ok], aux[:, ok] = proposal[ok], lt_new[ok], aux_new[:, ok]
        accepted += ok
    rate = _least_share(accepted, runs, max(1, n_moves * theta.shape[0] // runs))
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
    runs: int = 1,
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
    target. Stops early once ``enough_moved`` of every run's particles have
    moved. With ``runs > 1``, ``mean (runs, d)`` and ``cov (runs, d, d)``
    give each run (a block of ``theta``) its own proposal.

    Returns
    -------
    theta, log target ``(S,)``, auxiliaries ``(k, S)``, the lowest of the
    runs' acceptance rates, the lowest of the runs' fractions of particles
    moved at least once.
    """
    lt, aux = current
    theta, lt, aux = theta.copy(), lt.copy(), aux.copy()
    s, d = theta.shape
    means = np.reshape(mean, (runs, d))
    chol = np.asarray(np.linalg.cholesky(np.reshape(cov, (runs, d, d)) + 1e-12 * np.eye(d)),
                      dtype=float)
    inv_chol = np.asarray(np.linalg.inv(chol), dtype=float)
    blocks = run_slices(s, runs)
    centers = np.empty((s, d))
    for g, sl in enumerate(blocks):
        centers[sl] = means[g]

    def log_q(th: FloatArray) -> FloatArray:  # up to a constant, which cancels
        m = _per_run_product(th - centers, inv_chol) ** 2
        return np.asarray(-0.5 * (df + d) * np.log1p(m.sum(axis=1) / df))

    lq = log_q(theta)
    moved = np.zeros(s, dtype=bool)
    accepted, sweeps, per = np.zeros(s, dtype=np.intp), 0, s // runs
    for _ in range(n_moves):
        z = _per_run_product(rng.standard_normal((s, d)), chol)
        proposal = centers + z / np.sqrt(rng.chisquare(df, (s, 1)) / df)
        lq_new = log_q(proposal)
        lt_new, aux_new = log_target(proposal)
        log_u = np.log(rng.random(s))
        ok = log_u < (lt_new - lt) - (lq_new - lq)
        theta[ok], lt[ok], aux[:, ok], lq[ok] = proposal[ok], lt_new[ok], aux_new[:, ok], lq_new[ok]
        moved |= ok
        accepted += ok
        sweeps += 1
        if _least_share(moved, runs, per) >= enough_moved:
            break
    rate = _least_share(accepted, runs, max(1, sweeps * per))
    return theta, lt, aux, rate, _least_share(moved, runs, per)
