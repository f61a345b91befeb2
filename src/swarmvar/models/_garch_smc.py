"""Sequential Monte Carlo for the (GJR-)GARCH(1,1)-t posterior.

Two samplers share one particle move:

* :func:`tempered_fit` - likelihood-tempered SMC from the prior,
  ``pi_phi(theta) ∝ p(theta) p(r | theta)^phi`` with ``phi`` raised from 0 to
  1 adaptively so that each reweighting keeps an effective sample size of
  ``target_ess * P`` (Jasra et al. 2011); ``runs`` independent runs share
  every likelihood evaluation (one vectorized batch) so that R-hat across
  runs can be computed.
* :func:`rejuvenate` - the resample-move step of iterated batch importance
  sampling (Chopin 2002), used online and by the warm refit, with an
  independent multivariate-t proposal fitted to the particles (Chopin's own
  choice) and random-walk moves as a fallback.

The move is a random-walk Metropolis kernel in the unconstrained
coordinates of :mod:`._garch_lik`, with a Gaussian proposal whose covariance
is ``(2.38^2 / d)`` times the particle covariance of its group, rescaled by
the acceptance rate. It leaves ``pi_phi`` invariant, so the particle system
stays a consistent approximation whatever the proposal scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from . import _garch_lik as lik

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: Moves per stage: enough that a particle has moved with probability ~ 1 - MISS.
MISS = 0.05
MAX_MOVES = 12
#: Online rejuvenation: independent t proposals, fewer moves, random walk as fallback.
MISS_ONLINE = 0.1
MAX_INDEPENDENT_MOVES = 6
PROPOSAL_DF = 10.0
MIN_INDEPENDENT_ACCEPTANCE = 0.25


@dataclass
class Cloud:
    """Particles in unconstrained coordinates with their cached log densities.

    ``u`` ``(S, d)`` (d = 5 for GARCH, 6 for GJR); ``lp`` log prior; ``ll``
    log-likelihood of the history the cloud targets; ``h`` conditional
    variance of the next return (all ``(S,)``).
    """

    u: FloatArray
    lp: FloatArray
    ll: FloatArray
    h: FloatArray

    def take(self, idx: IntArray) -> Cloud:
        return Cloud(self.u[idx], self.lp[idx], self.ll[idx], self.h[idx])


def evaluate(r: FloatArray, u: FloatArray, batch: int | None = None) -> Cloud:
    """Prior and likelihood of the history ``r`` at the particles ``u``.

    ``batch`` splits the likelihood into passes over that many particles
    (the values do not change: each particle's pass is its own), so that a
    larger cloud reuses the likelihood compiled for ``batch`` particles.
    """
    th = lik.from_unconstrained(u)
    if batch is None or u.shape[0] <= batch:
        ll, h = lik.loglik(r, th)
    else:
        parts = [lik.loglik(r, th.take(np.arange(k, min(k + batch, u.shape[0]))))
                 for k in range(0, u.shape[0], batch)]
        ll, h = (np.concatenate(p) for p in zip(*parts, strict=True))
    return Cloud(u, lik.log_prior_u(u), ll, h)


def ess(logw: FloatArray) -> float:
    """Effective sample size ``(sum w)^2 / sum w^2`` of log weights ``(S,)``."""
    w = np.exp(logw - np.max(logw))
    return float(w.sum() ** 2 / (w @ w))


def systematic_resample(w: FloatArray, m: int, u0: float) -> IntArray:
    """``m`` ancestor indices by systematic resampling of weights ``w`` ``(S,)``."""
    c = np.cumsum(w)
    c /= c[-1]
    idx = np.searchsorted(c, (u0 + np.arange(m)) / m, side="left")
    return np.minimum(idx, w.size - 1).astype(np.intp)


def _chol(u: FloatArray) -> FloatArray:
    cov = np.cov(u, rowvar=False) + 1e-10 * np.eye(u.shape[1])
    try:
        return np.asarray(np.linalg.cholesky(cov), dtype=float)
    except np.linalg.LinAlgError:
        return np.diag(np.sqrt(np.maximum(np.diag(cov), 1e-10)))


def move(
    r: FloatArray,
    cloud: Cloud,
    phi: FloatArray,
    groups: IntArray,
    n_groups: int,
    rng: np.random.Generator,
    max_moves: int = MAX_MOVES,
) -> tuple[Cloud, float]:
    """Random-walk Metropolis moves targeting ``p(theta) p(r|theta)^phi`` per particle.

    ``phi`` and ``groups`` are ``(S,)``; each group has its own proposal
    covariance. The number of moves adapts to the first move's acceptance.
    Returns the moved cloud and the mean acceptance rate.
    """
    chols = np.stack([_chol(cloud.u[groups == g]) for g in range(n_groups)])
    scale = np.full(n_groups, 2.38 / math.sqrt(cloud.u.shape[1]))
    accepted, proposed, n_moves, k = 0.0, 0, 1, 0
    while k < n_moves:
        z = rng.standard_normal(cloud.u.shape)
        step = np.einsum("sij,sj->si", chols[groups], z) * scale[groups, None]
        prop = evaluate(r, cloud.u + step)
        log_ratio = prop.lp + phi * np.where(np.isfinite(prop.ll), prop.ll, -np.inf) - (
            cloud.lp + phi * cloud.ll
        )
        cloud, ok = _mh_select(cloud, prop, log_ratio, rng)
        acc_g = np.bincount(groups, weights=ok, minlength=n_groups) / np.maximum(
            np.bincount(groups, minlength=n_groups), 1
        )
        # keep acceptance near 0.25 (Roberts, Gelman & Gilks 1997)
        scale *= np.exp(np.clip(acc_g - 0.25, -0.2, 0.2) * 2.0)
        accepted += float(ok.sum())
        proposed += ok.size
        if k == 0:
            rate = max(float(ok.mean()), 1e-3)
            n_moves = int(min(max_moves, max(1, math.ceil(math.log(MISS) / math.log1p(-rate)))))
        k += 1
    return cloud, accepted / proposed


def _next_phi(ll: FloatArray, phi: float, target: float) -> float:
    """Largest ``phi' <= 1`` with ESS of ``exp((phi' - phi) ll)`` at least ``target``."""
    finite = np.where(np.isfinite(ll), ll, -np.inf)
    if ess(_scaled(finite, 1.0 - phi)) >= target:
        return 1.0
    lo, hi = 0.0, 1.0 - phi
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if ess(_scaled(finite, mid)) >= target:
            lo = mid
        else:
            hi = mid
    return phi + max(lo, 1e-12)


def _scaled(ll: FloatArray, d: float) -> FloatArray:
    return np.where(np.isfinite(ll), ll * d, -np.inf)


@dataclass
class FitResult:
    """Outcome of :func:`tempered_fit`: ``cloud`` is ordered run by run (``runs * P``)."""

    cloud: Cloud
    acceptance: float
    stages: int


def tempered_fit(
    r: FloatArray,
    runs: int,
    particles: int,
    rng: np.random.Generator,
    target_ess: float = 0.5,
    asymmetric: bool = False,
) -> FitResult:
    """Posterior particles for the history ``r`` by adaptive likelihood tempering.

    Returns equally weighted particles, ``runs`` independent runs of
    ``particles`` each, concatenated run by run. ``asymmetric``: GJR-GARCH.
    """
    s = runs * particles
    groups = np.repeat(np.arange(runs), particles)
    prior = lik.sample_prior(s, rng, asymmetric)
    cloud = evaluate(r, lik.to_unconstrained(prior, asymmetric))
    phi = np.zeros(runs)
    stages, acc = 0, 0.0
    while np.any(phi < 1.0):
        idx_all = np.empty(s, dtype=np.intp)
        for g in range(runs):
            sl = slice(g * particles, (g + 1) * particles)
            ll_g = cloud.ll[sl]
            if phi[g] < 1.0:
                new = _next_phi(ll_g, float(phi[g]), target_ess * particles)
                logw = _scaled(ll_g, new - phi[g])
                phi[g] = new
            else:
                logw = np.zeros(particles)
            w = np.exp(logw - np.max(logw))
            idx_all[sl] = g * particles + systematic_resample(w, particles, rng.uniform())
        cloud = cloud.take(idx_all)
        cloud, acc = move(r, cloud, phi[groups], groups, runs, rng)
        stages += 1
    return FitResult(cloud, acc, stages)


def _mvt_logpdf(u: FloatArray, mean: FloatArray, chol: FloatArray, df: float) -> FloatArray:
    """Multivariate-t log density up to a constant, ``(S,)``."""
    z = np.linalg.solve(chol, (u - mean).T)
    result: FloatArray = -0.5 * (df + u.shape[1]) * np.log1p((z * z).sum(axis=0) / df)
    return result


def move_independent(
    r: FloatArray,
    cloud: Cloud,
    mean: FloatArray,
    chol: FloatArray,
    rng: np.random.Generator,
    max_moves: int = MAX_INDEPENDENT_MOVES,
) -> tuple[Cloud, float]:
    """Independent Metropolis-Hastings moves targeting ``p(theta) p(r|theta)``.

    The proposal is a multivariate t (``PROPOSAL_DF`` degrees of freedom)
    with the particles' mean ``(d,)`` and Cholesky factor ``(d, d)`` of their
    covariance. Once the posterior is close to Gaussian (hundreds of returns
    on) an accepted move is a fresh draw, so a few moves rejuvenate the cloud.
    The first move's acceptance sets how many follow; the later moves'
    proposals do not depend on the current particles and are drawn two moves
    at a time (one random draw for both), scored, then accepted move by move.
    They are scored in passes of ``n`` particles: a pass of ``2 n`` would
    cost a little less, but a compiled likelihood of its own (a few tenths
    of a second, once per process, more than all the passes of a backtest
    save).
    """
    n = cloud.u.shape[0]
    lq = _mvt_logpdf(cloud.u, mean, chol, PROPOSAL_DF)
    prop, lq_new = _independent_proposals(r, n, mean, chol, rng)
    cloud, lq, ok = _accept(cloud, lq, prop, lq_new, rng)
    rate = max(float(ok.mean()), 1e-3)
    wanted = math.ceil(math.log(MISS_ONLINE) / math.log1p(-rate))
    n_moves = int(min(max_moves, max(1, wanted)))
    accepted = float(ok.sum())
    for first in range(1, n_moves, 2):  # two moves' proposals drawn at once
        pair = min(2, n_moves - first)
        props, lqs = _independent_proposals(r, pair * n, mean, chol, rng, batch=n)
        for k in range(pair):
            idx = np.arange(k * n, (k + 1) * n)
            cloud, lq, ok = _accept(cloud, lq, props.take(idx), lqs[idx], rng)
            accepted += float(ok.sum())
    return cloud, accepted / (n_moves * n)


def _independent_proposals(
    r: FloatArray, m: int, mean: FloatArray, chol: FloatArray, rng: np.random.Generator,
    batch: int | None = None,
) -> tuple[Cloud, FloatArray]:
    """``m`` draws from the multivariate-t proposal, scored, and their proposal log density."""
    g = rng.standard_normal((m, mean.size))
    w = rng.chisquare(PROPOSAL_DF, m) / PROPOSAL_DF
    u_new = mean + (g @ chol.T) / np.sqrt(w)[:, None]
    return evaluate(r, u_new, batch), _mvt_logpdf(u_new, mean, chol, PROPOSAL_DF)


def _accept(
    cloud: Cloud, lq: FloatArray, prop: Cloud, lq_new: FloatArray, rng: np.random.Generator
) -> tuple[Cloud, FloatArray, NDArray[np.bool_]]:
    """One independent MH accept/reject per particle; the new cloud, its proposal density."""
    log_ratio = (prop.lp + prop.ll - lq_new) - (cloud.lp + cloud.ll - lq)
    moved, ok = _mh_select(cloud, prop, log_ratio, rng)
    return moved, np.where(ok, lq_new, lq), ok


def _mh_select(
    cloud: Cloud, prop: Cloud, log_ratio: FloatArray, rng: np.random.Generator
) -> tuple[Cloud, NDArray[np.bool_]]:
    """Metropolis-Hastings: keep each proposal with probability min(1, exp(log_ratio))."""
    log_ratio = np.where(np.isnan(log_ratio), -np.inf, log_ratio)
    ok = np.log(rng.uniform(size=log_ratio.size)) < log_ratio
    moved = Cloud(
        np.where(ok[:, None], prop.u, cloud.u),
        np.where(ok, prop.lp, cloud.lp),
        np.where(ok, prop.ll, cloud.ll),
        np.where(ok, prop.h, cloud.h),
    )
    return moved, ok


def rejuvenate(
    r: FloatArray, cloud: Cloud, logw: FloatArray, rng: np.random.Generator
) -> tuple[Cloud, float]:
    """Resample by ``logw`` and move at full temperature: the IBIS resample-move step.

    Tries independent moves from a multivariate t fitted to the weighted
    particles; when their acceptance is poor (a posterior far from
    Gaussian, typically on a short history) it continues with random-walk
    moves. Returns the moved cloud and the acceptance rate of the last kernel.
    """
    w = np.exp(logw - np.max(logw))
    w /= w.sum()
    mean = np.asarray(w @ cloud.u, dtype=float)
    d = cloud.u - mean
    cov = (d * w[:, None]).T @ d / max(1.0 - float(w @ w), 1e-12) + 1e-10 * np.eye(d.shape[1])
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        chol = np.diag(np.sqrt(np.maximum(np.diag(cov), 1e-10)))
    idx = systematic_resample(w, w.size, rng.uniform())
    cloud = cloud.take(idx)
    cloud, acc = move_independent(r, cloud, mean, chol, rng)
    if acc < MIN_INDEPENDENT_ACCEPTANCE:
        n = cloud.u.shape[0]
        cloud, acc = move(r, cloud, np.ones(n), np.zeros(n, dtype=np.intp), 1, rng)
    return cloud, acc
