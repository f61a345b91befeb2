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

from ..errors import InvalidReturns
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
#: The fit's start proposal (see StartProposal): t degrees of freedom, covariance
#: inflation over the Laplace approximation, share of draws from the prior.
START_DF = 5.0
START_INFLATION = 2.0
PRIOR_SHARE = 0.1
#: Most tempering stages of a fit (real series take a handful from the mode, a few dozen
#: from the prior; each stage raises phi by at least 1e-12, so without a cap a series
#: the sampler cannot handle would run for hours).
MAX_STAGES = 200


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

    def replaced(self, idx: IntArray, other: Cloud) -> Cloud:
        """A copy with the particles at ``idx`` replaced by ``other``'s (in order)."""
        out = Cloud(self.u.copy(), self.lp.copy(), self.ll.copy(), self.h.copy())
        out.u[idx], out.lp[idx], out.ll[idx], out.h[idx] = other.u, other.lp, other.ll, other.h
        return out


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
    start: StartProposal | None = None,
    batch: int | None = None,
) -> tuple[Cloud, float]:
    """Random-walk Metropolis moves targeting ``p(theta) p(r|theta)^phi`` per particle.

    ``phi`` and ``groups`` are ``(S,)``; each group has its own proposal
    covariance. The number of moves adapts to the first move's acceptance.
    With a ``start`` proposal ``q`` the target is the path from ``q`` instead,
    ``q^(1-phi) (p(theta) p(r|theta))^phi``. ``batch``: as in :func:`evaluate`.
    Returns the moved cloud and the mean acceptance rate.
    """
    chols = np.stack([_chol(cloud.u[groups == g]) for g in range(n_groups)])
    scale = np.full(n_groups, 2.38 / math.sqrt(cloud.u.shape[1]))
    accepted, proposed, n_moves, k = 0.0, 0, 1, 0
    while k < n_moves:
        z = rng.standard_normal(cloud.u.shape)
        step = np.einsum("sij,sj->si", chols[groups], z) * scale[groups, None]
        prop = evaluate(r, cloud.u + step, batch)
        if start is None:
            log_ratio = prop.lp + phi * np.where(np.isfinite(prop.ll), prop.ll, -np.inf) - (
                cloud.lp + phi * cloud.ll
            )
        else:
            log_ratio = _log_path(prop, phi, start) - _log_path(cloud, phi, start)
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
    """Outcome of :func:`tempered_fit`: ``cloud`` is ordered run by run (``runs * P``).

    ``from_mode``: whether the runs started from the :class:`StartProposal`
    (else from the prior).
    """

    cloud: Cloud
    acceptance: float
    stages: int
    from_mode: bool = False


@dataclass(frozen=True)
class StartProposal:
    """Where the tempered fit starts: a multivariate t around the posterior mode.

    ``q = (1 - PRIOR_SHARE) t_df(mean, S) + PRIOR_SHARE * prior``, with ``S``
    the Laplace covariance inflated by ``START_INFLATION``: heavier tails and
    a wider spread than the posterior, and the prior share keeps ``q``
    positive wherever the posterior is (a defensive mixture, Hesterberg 1995).
    """

    mean: FloatArray
    chol: FloatArray
    asymmetric: bool

    @classmethod
    def at_mode(cls, r: FloatArray, asymmetric: bool) -> StartProposal | None:
        """Around the posterior mode of ``r``; ``None`` when the mode search fails."""
        found = lik.posterior_mode(r, asymmetric)
        if found is None:
            return None
        mode, cov = found
        try:
            chol = np.asarray(np.linalg.cholesky(cov * START_INFLATION), dtype=float)
        except np.linalg.LinAlgError:
            return None
        return cls(mode, chol, asymmetric)

    def sample(self, n: int, rng: np.random.Generator) -> FloatArray:
        """``n`` draws ``(n, d)``: from the prior with probability ``PRIOR_SHARE``."""
        from_prior = rng.uniform(size=n) < PRIOR_SHARE
        g = rng.standard_normal((n, self.mean.size))
        w = rng.chisquare(START_DF, n) / START_DF
        u = self.mean + (g @ self.chol.T) / np.sqrt(w)[:, None]
        k = int(from_prior.sum())
        if k:
            u[from_prior] = lik.to_unconstrained(
                lik.sample_prior(k, rng, self.asymmetric), self.asymmetric
            )
        return u

    def logpdf(self, u: FloatArray, lp: FloatArray) -> FloatArray:
        """Normalized log density of ``q`` at ``u`` ``(S, d)``, given the log prior ``lp`` there."""
        d = self.mean.size
        norm = (math.lgamma(0.5 * (START_DF + d)) - math.lgamma(0.5 * START_DF)
                - 0.5 * d * math.log(START_DF * math.pi)
                - float(np.log(np.diag(self.chol)).sum()))
        lt = norm + _mvt_logpdf(u, self.mean, self.chol, START_DF)
        result: FloatArray = np.logaddexp(math.log1p(-PRIOR_SHARE) + lt,
                                          math.log(PRIOR_SHARE) + lp)
        return result


def _log_path(c: Cloud, phi: FloatArray, start: StartProposal) -> FloatArray:
    """``(1 - phi) log q + phi log(p(theta) p(r|theta))`` at the particles, ``(S,)``."""
    ll = np.where(np.isfinite(c.ll), c.ll, -np.inf)
    result: FloatArray = (1.0 - phi) * start.logpdf(c.u, c.lp) + phi * (c.lp + ll)
    return result


def tempered_fit(
    r: FloatArray,
    runs: int,
    particles: int,
    rng: np.random.Generator,
    target_ess: float = 0.5,
    asymmetric: bool = False,
    from_mode: bool = True,
) -> FitResult:
    """Posterior particles for the history ``r`` by adaptive tempering.

    Returns equally weighted particles, ``runs`` independent runs of
    ``particles`` each, concatenated run by run. ``asymmetric``: GJR-GARCH.
    ``from_mode``: temper from :class:`StartProposal` to the posterior,
    evaluating likelihoods in passes of ``particles`` (the online cloud's
    size: one compiled shape per process); when the mode search fails, or
    with ``from_mode=False``, temper the likelihood from the prior (in passes
    of ``runs * particles``: ~130 of them, where one pass costs less than
    ``runs`` smaller ones).
    """
    proposal = StartProposal.at_mode(r, asymmetric) if from_mode else None
    if proposal is None:
        return _fit_from_prior(r, runs, particles, rng, target_ess, asymmetric)
    return _fit_from_proposal(r, runs, particles, rng, target_ess, proposal)


def _fit_from_prior(
    r: FloatArray, runs: int, particles: int, rng: np.random.Generator, target_ess: float,
    asymmetric: bool,
) -> FitResult:
    """Likelihood tempering from the prior: ``p(theta) p(r|theta)^phi``, phi from 0 to 1."""
    s = runs * particles
    groups = np.repeat(np.arange(runs), particles)
    prior = lik.sample_prior(s, rng, asymmetric)
    cloud = evaluate(r, lik.to_unconstrained(prior, asymmetric))
    phi = np.zeros(runs)
    stages, acc = 0, 0.0
    while np.any(phi < 1.0):
        _check_stages(stages, phi)
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
    return FitResult(cloud, acc, stages, from_mode=False)


def _fit_from_proposal(
    r: FloatArray, runs: int, particles: int, rng: np.random.Generator, target_ess: float,
    start: StartProposal,
) -> FitResult:
    """Tempering from ``q`` to the posterior: ``q^(1-phi) (p(theta) p(r|theta))^phi``.

    Each run draws its own particles from ``q`` and proceeds as
    :func:`_fit_from_prior` with the log weight ``log p + log L - log q`` in
    place of ``log L``; after each reweighting it resamples and moves by
    independent Metropolis-Hastings from a multivariate t fitted to the
    run's weighted particles (random-walk moves when those are rarely
    accepted). A good ``q`` reaches ``phi = 1`` in one or two stages.
    """
    cloud = evaluate(r, start.sample(runs * particles, rng), particles)
    phi = np.zeros(runs)
    stages, acc = 0, 0.0
    d = cloud.u.shape[1]
    while np.any(phi < 1.0):
        _check_stages(stages, phi)
        ll = np.where(np.isfinite(cloud.ll), cloud.ll, -np.inf)
        log_ratio = cloud.lp + ll - start.logpdf(cloud.u, cloud.lp)
        log_ratio = np.where(np.isnan(log_ratio), -np.inf, log_ratio)
        # only the runs still short of phi = 1 take this stage (those at 1 have moved there)
        active = np.flatnonzero(phi < 1.0)
        idx = np.empty(active.size * particles, dtype=np.intp)
        means, chols = np.empty((active.size, d)), np.empty((active.size, d, d))
        for k, g in enumerate(active):
            sl = slice(g * particles, (g + 1) * particles)
            new = _next_phi(log_ratio[sl], float(phi[g]), target_ess * particles)
            logw = _scaled(log_ratio[sl], new - phi[g])
            phi[g] = new
            w = np.exp(logw - np.max(logw))
            w /= w.sum()
            means[k], chols[k] = _weighted_moments(cloud.u[sl], w)
            idx[k * particles : (k + 1) * particles] = g * particles + systematic_resample(
                w, particles, rng.uniform())
        part = cloud.take(idx)
        local = np.repeat(np.arange(active.size), particles)
        temps = np.repeat(phi[active], particles)
        part, acc = _move_runs_independent(r, part, temps, local, means, chols, start, rng,
                                           particles)
        if acc < MIN_INDEPENDENT_ACCEPTANCE:
            part, acc = move(r, part, temps, local, active.size, rng, start=start,
                             batch=particles)
        pos = (active[:, None] * particles + np.arange(particles)).ravel()
        cloud = cloud.replaced(pos, part)
        stages += 1
    return FitResult(cloud, acc, stages, from_mode=True)


def _check_stages(stages: int, phi: FloatArray) -> None:
    if stages >= MAX_STAGES:
        raise InvalidReturns(
            f"the GARCH posterior was not reached in {MAX_STAGES} tempering stages (the "
            f"slowest run got to {float(phi.min()):.3g} of the likelihood): the series gives "
            "the sampler nothing to hold on to - check it for long stale stretches or a unit "
            "mistake, or use a longer one")


def _weighted_moments(u: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean ``(d,)`` and Cholesky factor ``(d, d)`` of the covariance of ``u`` under ``w``."""
    mean = np.asarray(w @ u, dtype=float)
    dev = u - mean
    cov = (dev * w[:, None]).T @ dev / max(1.0 - float(w @ w), 1e-12) + 1e-10 * np.eye(u.shape[1])
    try:
        return mean, np.asarray(np.linalg.cholesky(cov), dtype=float)
    except np.linalg.LinAlgError:
        return mean, np.diag(np.sqrt(np.maximum(np.diag(cov), 1e-10)))


def _move_runs_independent(
    r: FloatArray, cloud: Cloud, phi: FloatArray, groups: IntArray, means: FloatArray,
    chols: FloatArray, start: StartProposal, rng: np.random.Generator, batch: int,
) -> tuple[Cloud, float]:
    """Independent MH moves per run targeting the tempered path of :func:`_log_path`.

    Run ``g``'s proposal is a multivariate t (``PROPOSAL_DF``) with mean
    ``means[g]`` and Cholesky factor ``chols[g]``. The first move's
    acceptance sets how many follow (a particle has then moved with
    probability ~ 1 - ``MISS``). Returns the cloud and the mean acceptance.
    """
    n, d = cloud.u.shape
    mean_s, chol_s = means[groups], chols[groups]

    def proposal_logpdf(u: FloatArray) -> FloatArray:
        out = np.empty(n)
        for g in range(means.shape[0]):
            sel = groups == g
            out[sel] = _mvt_logpdf(u[sel], means[g], chols[g], PROPOSAL_DF)
        return out

    lq = proposal_logpdf(cloud.u)
    target = _log_path(cloud, phi, start)
    accepted, n_moves, k = 0.0, 1, 0
    while k < n_moves:
        g = rng.standard_normal((n, d))
        w = rng.chisquare(PROPOSAL_DF, n) / PROPOSAL_DF
        u_new = mean_s + np.einsum("sij,sj->si", chol_s, g) / np.sqrt(w)[:, None]
        prop = evaluate(r, u_new, batch)
        lq_new = proposal_logpdf(u_new)
        target_new = _log_path(prop, phi, start)
        cloud, ok = _mh_select(cloud, prop, (target_new - lq_new) - (target - lq), rng)
        lq = np.where(ok, lq_new, lq)
        target = np.where(ok, target_new, target)
        accepted += float(ok.sum())
        if k == 0:
            rate = max(float(ok.mean()), 1e-3)
            n_moves = int(min(MAX_MOVES, max(1, math.ceil(math.log(MISS) / math.log1p(-rate)))))
        k += 1
    return cloud, accepted / (n_moves * n)


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
    mean, chol = _weighted_moments(cloud.u, w)
    idx = systematic_resample(w, w.size, rng.uniform())
    cloud = cloud.take(idx)
    cloud, acc = move_independent(r, cloud, mean, chol, rng)
    if acc < MIN_INDEPENDENT_ACCEPTANCE:
        n = cloud.u.shape[0]
        cloud, acc = move(r, cloud, np.ones(n), np.zeros(n, dtype=np.intp), 1, rng)
    return cloud, acc
