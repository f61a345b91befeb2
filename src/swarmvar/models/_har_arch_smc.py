"""Particle posterior of the HAR-ARCH skewed-t model: a tempered fit and resample-move.

* :func:`tempered_fit` - likelihood-tempered SMC along the path
  ``pi_phi ∝ q^(1 - phi) (p(theta) L(theta))^phi`` from a start proposal
  ``q`` to the posterior, ``phi`` raised adaptively so that each step keeps
  ``target_ess`` effective particles per run (Jasra et al. 2011). ``q`` is a
  defensive mixture: 90% a multivariate t(5) at the posterior mode with
  twice the inverse Hessian as scale (Laplace), 10% the prior; it only
  shortens the path (``phi = 0`` is ``q``, ``phi = 1`` the posterior,
  whatever ``q``). ``runs`` independent runs share every likelihood pass.
* :func:`rejuvenate` - resample, then independent Metropolis-Hastings from a
  t fitted to the cloud (Chopin's 2002 IBIS kernel), random-walk steps if
  those are rarely accepted; used online and by the warm refit.

The moves are :mod:`._sir`'s, on a :data:`~._sir.LogTarget` whose
auxiliary rows carry each particle's log prior, log-likelihood, log ``q``
and next variance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, special

from . import _har_arch_lik as lik
from . import _sir

FloatArray = NDArray[np.float64]

#: Start proposal: t degrees of freedom, scale inflation over the Laplace covariance,
#: share of prior draws.
START_DF = 5.0
START_INFLATION = 2.0
PRIOR_SHARE = 0.1
#: Most tempering stages of a fit (a handful from the start proposal).
MAX_STAGES = 100
#: Below this acceptance the independent proposal is too far from the target: random walk.
LEAST_INDEPENDENT_ACCEPTANCE = 0.2
#: Rows of the auxiliary array a LogTarget carries.
LP, LL, LQ, H = range(4)


@dataclass
class Cloud:
    """Particles ``u (S, 10)`` and their rows ``aux (4, S)``: log prior, ll, log q, h_next."""

    u: FloatArray
    aux: FloatArray

    def take(self, idx: NDArray[np.intp]) -> Cloud:
        return Cloud(self.u[idx], self.aux[:, idx])


@dataclass(frozen=True)
class StartProposal:
    """The fit's start law ``q``: 90% t(5) at the mode (Laplace scale x 2), 10% prior."""

    mean: FloatArray
    chol: FloatArray

    def log_density(self, u: FloatArray) -> FloatArray:
        d = self.mean.size
        z = np.linalg.solve(self.chol, (u - self.mean).T).T
        log_t = (special.gammaln(0.5 * (START_DF + d)) - special.gammaln(0.5 * START_DF)
                 - 0.5 * d * math.log(START_DF * math.pi) - np.log(np.diag(self.chol)).sum()
                 - 0.5 * (START_DF + d) * np.log1p((z * z).sum(axis=1) / START_DF))
        lp = lik.log_prior(u)
        return np.asarray(np.logaddexp(math.log(1 - PRIOR_SHARE) + log_t,
                                       math.log(PRIOR_SHARE) + lp))

    def sample(self, n: int, rng: np.random.Generator) -> FloatArray:
        d = self.mean.size
        z = rng.standard_normal((n, d)) @ self.chol.T
        t = self.mean + z / np.sqrt(rng.chisquare(START_DF, (n, 1)) / START_DF)
        prior = lik.unconstrain(lik.sample_prior(n, rng))
        pick = rng.random(n) < PRIOR_SHARE
        return np.asarray(np.where(pick[:, None], prior, t))


def evaluate(r: FloatArray, u: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Log prior, log-likelihood and next variance of particles ``u``."""
    lp = lik.log_prior(u)
    ll, h = lik.loglik(r, lik.constrain(u))
    return lp, ll, h


def _start_point(r: FloatArray) -> FloatArray:
    """A plausible start for the mode search: persistence 0.95, mostly monthly and leverage."""
    v = float(np.var(r))
    x = np.array([0.05, 0.1, 0.3, 0.05, 0.1, 0.2])
    x = x / x.sum() * 0.95 * np.array([1, 1, 1, 1, 1, 1.0])
    th = lik.theta(mu=float(np.mean(r)), omega=v * 0.05, b1=x[0], b5=x[1], b22=x[2],
                   g1=2 * x[3], g5=2 * x[4], g22=2 * x[5], nu=8.0, lam=-0.05)
    return np.asarray(lik.unconstrain(th)[0])


def find_mode(r: FloatArray) -> tuple[FloatArray, FloatArray] | None:
    """Posterior mode in ``u`` and the Cholesky factor of the inflated Laplace covariance.

    L-BFGS-B on ``-(log prior + ll)`` with central-difference gradients
    evaluated as one batch of particles; the Hessian by central second
    differences of the batched gradient. None if the search or the Hessian fails.
    """
    d = lik.DIM
    eps = 1e-4

    def f_and_grad(u: FloatArray) -> tuple[float, FloatArray]:
        pts = np.vstack([u, u + eps * np.eye(d), u - eps * np.eye(d)])
        lp, ll, _ = evaluate(r, pts)
        v = -(lp + ll)
        if not np.all(np.isfinite(v)):
            return (float(v[0]) if np.isfinite(v[0]) else 1e300), np.zeros(d)
        return float(v[0]), (v[1 : d + 1] - v[d + 1 :]) / (2 * eps)

    u0 = _start_point(r)
    res = optimize.minimize(f_and_grad, u0, jac=True, method="L-BFGS-B",
                            options={"maxiter": 300})
    mode = np.asarray(res.x, dtype=float)
    if not np.isfinite(res.fun):
        return None
    step = 1e-3
    pts = [mode + step * e for e in np.eye(d)] + [mode - step * e for e in np.eye(d)]
    grads = np.array([f_and_grad(p)[1] for p in pts])
    hess = (grads[:d] - grads[d:]) / (2 * step)
    hess = 0.5 * (hess + hess.T)
    try:
        cov = np.linalg.inv(hess)
        chol = np.linalg.cholesky(START_INFLATION * 0.5 * (cov + cov.T))
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(chol)):
        return None
    return mode, np.asarray(chol)


@dataclass
class FitResult:
    """The pooled cloud ``(runs * P)``, ordered run by run, equally weighted."""

    cloud: Cloud
    acceptance: float
    stages: int
    from_mode: bool


def _log_target(r: FloatArray, phi: FloatArray,
                log_q: Callable[[FloatArray], FloatArray]) -> _sir.LogTarget:
    def target(u: FloatArray) -> tuple[FloatArray, FloatArray]:
        lp, ll, h = evaluate(r, u)
        lq = log_q(u)
        post = np.where(np.isfinite(lp) & np.isfinite(ll), lp + ll, -np.inf)
        val = np.where(phi > 0, phi * post, 0.0) + np.where(phi < 1, (1 - phi) * lq, 0.0)
        aux = np.vstack([lp, ll, lq, h])
        return np.asarray(np.where(np.isfinite(val), val, -np.inf)), aux

    return target


def _path_value(aux: FloatArray, phi: FloatArray) -> FloatArray:
    post = aux[LP] + aux[LL]
    return np.asarray(np.where(phi > 0, phi * post, 0.0) + np.where(phi < 1, (1 - phi) * aux[LQ],
                                                                     0.0))


def move(r: FloatArray, cloud: Cloud, logw: FloatArray, phi: FloatArray, runs: int,
         rng: np.random.Generator, moves: int,
         log_q: Callable[[FloatArray], FloatArray]) -> tuple[Cloud, float, float]:
    """Resample each run, then MH moves targeting ``pi_phi`` (``phi (S,)``, per particle).

    Returns the moved cloud, the lowest run's acceptance rate and the lowest
    run's fraction of particles moved.
    """
    blocks = _sir.run_slices(cloud.u.shape[0], runs)
    d = cloud.u.shape[1]
    idx = np.empty(cloud.u.shape[0], dtype=np.intp)
    mean, cov = np.empty((runs, d)), np.empty((runs, d, d))
    for g, b in enumerate(blocks):
        w = _sir.normalized_weights(logw[b])
        cov[g] = _sir.weighted_covariance(cloud.u[b], w) + 1e-10 * np.eye(d)
        mean[g] = w @ cloud.u[b]
        idx[b] = b.start + _sir.systematic_resample(w, float(rng.random()))
    cloud = cloud.take(idx)
    target = _log_target(r, phi, log_q)
    current = (_path_value(cloud.aux, phi), cloud.aux)
    u, lt, aux, rate, moved = _sir.independent_moves(cloud.u, target, current, rng, moves,
                                                     mean, cov, runs=runs)
    if rate >= LEAST_INDEPENDENT_ACCEPTANCE:
        return Cloud(u, aux), rate, moved
    start = cloud.u
    u, _, aux, rate = _sir.random_walk_moves(u, target, (lt, aux), rng, moves,
                                             (2.38**2 / d) * cov, runs=runs)
    moved = min(float(np.mean(np.any(u[b] != start[b], axis=1))) for b in blocks)
    return Cloud(u, aux), rate, moved


def tempered_fit(r: FloatArray, runs: int, particles: int, rng: np.random.Generator,
                 target_ess: float, moves: int) -> FitResult:
    """``runs`` tempered SMC runs of ``particles`` each from the start proposal to the posterior.

    Raises RuntimeError if the runs do not reach ``phi = 1`` in ``MAX_STAGES`` stages.
    """
    found = find_mode(r)
    if found is not None:
        start = StartProposal(*found)
        log_q: Callable[[FloatArray], FloatArray] = start.log_density
        u = start.sample(runs * particles, rng)
    else:  # from the prior: q = prior, the classic likelihood-tempering path
        log_q = lik.log_prior
        u = lik.unconstrain(lik.sample_prior(runs * particles, rng))
    lp, ll, h = evaluate(r, u)
    cloud = Cloud(u, np.vstack([lp, ll, log_q(u), h]))
    blocks = _sir.run_slices(u.shape[0], runs)
    phi_run, logw = np.zeros(runs), np.zeros(u.shape[0])
    acceptance, stages = 1.0, 0
    while np.any(phi_run < 1.0):
        if stages >= MAX_STAGES:
            raise RuntimeError("tempering did not reach the posterior")
        inc = cloud.aux[LP] + cloud.aux[LL] - cloud.aux[LQ]
        inc = np.where(np.isfinite(inc), inc, -np.inf)
        for g, b in enumerate(blocks):
            if phi_run[g] >= 1.0:
                continue
            finite = np.where(np.isfinite(inc[b]), inc[b], -1e300)
            nxt = _sir.next_temperature(logw[b], finite, float(phi_run[g]),
                                        target_ess * particles)
            logw[b] = logw[b] + (nxt - phi_run[g]) * np.where(np.isfinite(inc[b]), inc[b],
                                                               -np.inf)
            phi_run[g] = nxt
        phi = np.repeat(phi_run, particles)
        cloud, acceptance, _ = move(r, cloud, logw, phi, runs, rng, moves, log_q)
        logw = np.zeros(u.shape[0])
        stages += 1
    return FitResult(cloud, acceptance, stages, found is not None)


def rejuvenate(r: FloatArray, cloud: Cloud, logw: FloatArray, rng: np.random.Generator,
               moves: int) -> tuple[Cloud, float]:
    """Resample-move on the posterior given ``r`` (the history); the cloud's ll is of ``r``."""
    cloud, rate, _ = move(r, cloud, logw, np.ones(cloud.u.shape[0]), 1, rng, moves,
                          lik.log_prior)
    return cloud, rate


def bridge(history: FloatArray, window: FloatArray, cloud: Cloud, logw: FloatArray,
           rng: np.random.Generator, target_ess: float, moves: int
           ) -> tuple[Cloud, FloatArray, float] | None:
    """Move a cloud from the posterior given ``history`` to the one given ``window``.

    Tempered along ``prior × L(history)^(1-g) × L(window)^g`` (``g`` from 0
    to 1, each step keeping ``target_ess`` of the particles effective), with
    a resample-move after each step; the warm refit's alternative to a fresh
    fit when the one-step reweighting leaves too few effective particles.
    ``cloud``'s log-likelihood row is of ``history``. Returns the cloud
    (rows of ``window``), its log weights and the last acceptance rate, or
    None if the moves stall (fewer than 30% of the particles moved) or the
    bridge takes more than ``MAX_STAGES`` steps.
    """
    size = cloud.u.shape[0]
    lp, ll_win, h = evaluate(window, cloud.u)
    u, ll_hist = cloud.u, cloud.aux[LL]
    aux = np.vstack([lp, ll_win, lp, h, ll_hist])
    g, rate = 0.0, 1.0
    for _ in range(MAX_STAGES):
        inc = aux[LL] - aux[4]
        inc = np.where(np.isfinite(inc), inc, -np.inf)
        nxt = _sir.next_temperature(logw, np.where(np.isfinite(inc), inc, -1e300), g,
                                    target_ess * size)
        logw = logw + (nxt - g) * inc
        g = nxt
        if g >= 1.0 and _sir.ess(logw) >= target_ess * size:
            return Cloud(u, aux[:4]), logw, rate
        w = _sir.normalized_weights(logw)
        d = u.shape[1]
        cov = _sir.weighted_covariance(u, w) + 1e-10 * np.eye(d)
        mean = w @ u
        idx = _sir.systematic_resample(w, float(rng.random()))
        u, aux = u[idx], aux[:, idx]

        def target(v: FloatArray, g: float = g) -> tuple[FloatArray, FloatArray]:
            lp_v, ll_w, h_v = evaluate(window, v)
            _, ll_h, _ = evaluate(history, v)
            val = lp_v + (1 - g) * ll_h + g * ll_w
            return (np.asarray(np.where(np.isfinite(val), val, -np.inf)),
                    np.vstack([lp_v, ll_w, lp_v, h_v, ll_h]))

        current = (aux[LP] + (1 - g) * aux[4] + g * aux[LL], aux)
        u, _, aux, rate, moved = _sir.independent_moves(u, target, current, rng, moves, mean,
                                                        cov)
        logw = np.zeros(size)
        if moved < 0.3:
            return None
        if g >= 1.0:
            return Cloud(u, aux[:4]), logw, rate
    return None
