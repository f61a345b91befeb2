"""StudentT: iid location-scale Student-t returns, tempered SMC at fit, particles online.

Model: ``r_t = mu + sigma * T_t`` with ``T_t`` iid Student-t(``nu``) and priors
on the daily-return scale (fractions)::

    mu ~ Normal(0, 0.01)      sigma ~ HalfNormal(0.05)      nu - 2 ~ Gamma(2, rate 0.1)

``fit`` draws the posterior by likelihood-tempered SMC from the prior:
``runs`` independent runs in one vectorized batch, split R-hat and ESS
across the runs, then ``particles`` of the pooled particles kept (numpy
only). ``sampler="nuts"`` uses NUTS instead (numpyro, 4 vectorized chains,
compiled once per process; JAX is imported only then), and the SMC sampler
falls back to it when its moves cannot spread the particles. ``update`` is
sequential importance resampling: each particle's
weight is multiplied by the t density of the new return; when the ESS falls
below ``ess_threshold * S`` the particles are resampled (systematic) and
rejuvenated by Metropolis-Hastings on the full iid likelihood of the history
(independent proposals from a t fitted to the cloud, as in Chopin's IBIS;
random-walk steps if those are rarely accepted). ``forecast_block`` (the
backtest between refits) is that forecast-then-update loop, bit for bit, with
each stretch of days between moves forecast together. ``refit(window)``
warm-starts from the current particles: reweighting by the window-to-history
likelihood ratio, with adaptive tempering, resampling and moves when that
leaves too few effective particles, instead of a fresh fit. See docs/models-student-t-evt.md.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter, InvalidState
from ..types import Diagnostics, Forecast, RiskMeasure
from . import _sir
from . import _student_t_lik as lik
from ._scale_mixture import ScaleMixtureFamily, h_day_scales
from ._sir_tmixture import MixtureLevel, mixture_level, risk_measure, risk_measures_block
from ._student_t_lik import constrain, log_const, log_prior, t_loglik
from .base import Agent, Seed, check_real, check_whole, rng_from
from .diagnostics import summarize
from .risk import check_alphas, risk_measures

FloatArray = NDArray[np.float64]


def _own(seed: Seed) -> np.random.Generator:
    """A generator the agent owns (its state is saved), seeded from ``seed``."""
    return np.random.default_rng(int(rng_from(seed).integers(0, 2**63 - 1)))


PARAMS = ("mu", "sigma", "nu")
#: Posterior samplers for :meth:`StudentT.fit`.
SAMPLERS = ("smc", "nuts")
#: Particles, and simulated variance mixings per particle, for horizon > 1: each
#: particle's h-day law is a mixture of that many normals, whose tails are exact
#: (see _scale_mixture), in place of 4000 simulated paths per particle.
_HORIZON_PARTICLES, _HORIZON_MIXING = 128, 256
#: Below this acceptance the independent proposal is too far from the target and
#: rejuvenation switches to random-walk steps.
_LEAST_INDEPENDENT_ACCEPTANCE = 0.2
#: A fit or refit whose moves leave fewer particles moved than this (in some run)
#: starts afresh: the SMC fit falls back to NUTS.
_LEAST_MOVED = 0.3
#: Most tempering steps of an SMC fit (7-12 on real data).
_MAX_TEMPERING_STEPS = 200
#: Most particles one fit holds (particles x runs).
_MAX_PARTICLES = 200_000


def _dropped_prefix(history: FloatArray, window: FloatArray) -> FloatArray | None:
    """The returns a refit drops when ``window`` is the tail of ``history`` (else None)."""
    k = history.size - window.size
    if k < 0 or not np.array_equal(history[k:], window):
        return None
    return history[:k]


class StudentT(Agent):
    """Iid Student-t returns with unknown location, scale and degrees of freedom.

    Parameters
    ----------
    num_chains, num_warmup, num_samples : int
        NUTS settings (``sampler="nuts"``). All ``num_chains * num_samples``
        draws enter the R-hat and ESS checks; evenly thinned to at most
        ``particles`` they become the particles.
    particles : int
        Particles per SMC run, and most particles kept for the online posterior.
    ess_threshold : float in (0, 1)
        Resample and rejuvenate when the particle ESS falls below this
        fraction; also the ESS each SMC tempering step keeps.
    moves : int
        Most Metropolis-Hastings sweeps per rejuvenation (independent proposals
        stop earlier, once 95% of the particles have moved).
    sampler : {"smc", "nuts"}
        How :meth:`fit` samples the posterior: tempered SMC from the prior
        (numpy only, no compilation; NUTS if its moves cannot spread the
        particles) or NUTS (JAX, compiled once per process and data-length
        bucket). Both check split R-hat and ESS.
    runs : int
        Independent SMC runs in :meth:`fit` (>= 2), for R-hat and ESS across
        runs; ``runs * particles`` particles share every likelihood pass.
    """

    name = "StudentT"
    min_observations = 30
    needs_variation = True
    cost_hint = (0.5, 45.0)  # ms: a backtest day at h = 1, a 10-day forecast

    def __init__(self, num_chains: int = 4, num_warmup: int = 500, num_samples: int = 1000,
                 particles: int = 2000, ess_threshold: float = 0.5, moves: int = 5,
                 sampler: str = "smc", runs: int = 4) -> None:
        num_chains = check_whole("num_chains", num_chains, 1, 64)
        num_warmup = check_whole("num_warmup", num_warmup, 10, 100_000)
        num_samples = check_whole("num_samples", num_samples, 10, 100_000)
        particles = check_whole("particles", particles, 10, _MAX_PARTICLES)
        moves = check_whole("moves", moves, 1, 1000)
        runs = check_whole("runs", runs, 2, 64)
        if particles * runs > _MAX_PARTICLES or num_chains * num_samples > _MAX_PARTICLES * 10:
            raise InvalidParameter(
                f"particles x runs = {particles * runs:,} (at most {_MAX_PARTICLES:,}) or "
                f"num_chains x num_samples = {num_chains * num_samples:,} (at most "
                f"{_MAX_PARTICLES * 10:,}) is more than one fit may hold; lower them")
        ess_threshold = check_real("ess_threshold", ess_threshold, 0.0, 1.0, low_open=True,
                                   high_open=True)
        if not isinstance(sampler, str) or sampler not in SAMPLERS:
            raise InvalidParameter(f"sampler must be one of {SAMPLERS}, not {sampler!r}")
        self.num_chains, self.num_warmup, self.num_samples = num_chains, num_warmup, num_samples
        self.particles = particles
        self.ess_threshold, self.moves = float(ess_threshold), moves
        self.sampler, self.runs = sampler, runs
        self._levels: dict[float, MixtureLevel] = {}
        #: last one-day VaR per level: a start for the next level's nodes (a cache only)
        self._last_var: dict[float, float] = {}

    # --- fitting ----------------------------------------------------------

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Posterior from a history of log returns ``(n,)``, oldest first.

        ``sampler="smc"``: ``runs`` tempered SMC samplers from the prior (no
        compilation; NUTS if their moves cannot keep the particles apart).
        ``sampler="nuts"``: NUTS. Either way split R-hat and ESS are checked
        and a :class:`~swarmvar.errors.ConvergenceWarning` raised when they
        fall short.
        """
        y = self._history(returns)
        rng = _own(seed)
        if self.sampler == "smc" and self._fit_smc(y, rng):
            return self
        return self._fit_nuts(y, rng)

    def _fit_nuts(self, y: FloatArray, rng: np.random.Generator) -> Self:
        from ._nuts_student_t import run_nuts  # JAX: imported only by a process that needs it

        started = time.perf_counter()
        draws = run_nuts(y, seed=int(rng.integers(0, 2**31 - 1)), num_warmup=self.num_warmup,
                         num_samples=self.num_samples, num_chains=self.num_chains)
        rhat, ess_bulk, ess_tail = summarize({"mu": draws.mu, "sigma": draws.sigma,
                                              "nu": draws.nu})
        thin = -(-draws.mu.size // self.particles)  # ceil: keep at most `particles`
        mu, sigma, nu = (d[:, ::thin].ravel() for d in (draws.mu, draws.sigma, draws.nu))
        theta = np.column_stack([mu, np.log(sigma), np.log(nu - 2.0)])
        mu, sigma, nu = constrain(theta)
        self._install(theta, np.zeros(theta.shape[0]), t_loglik(mu, sigma, nu, y), y, rng)
        self._fit_info: dict[str, Any] = {"method": "nuts", "rhat": rhat, "ess_bulk": ess_bulk,
                          "ess_tail": ess_tail, "divergences": draws.divergences,
                          "draws": int(draws.mu.size),
                          "seconds": time.perf_counter() - started}
        self._acceptance: float | None = None
        self._fitted = True
        self._warn_if_unconverged(self._diagnostics())
        return self

    def _fit_smc(self, y: FloatArray, rng: np.random.Generator) -> bool:
        """Tempered SMC from the prior (Del Moral, Doucet & Jasra 2006); False if degenerate.

        ``runs`` independent runs of ``particles`` prior draws, held as one
        batch so that every likelihood pass serves all of them. Each run
        raises its likelihood's power as far as keeps its ESS at
        ``ess_threshold`` (bisection), resamples and rejuvenates with the
        refit's MH moves (its own proposal) on ``prior * L(y)^g``, until
        ``g = 1``; a finished run waits for the others. Split R-hat and
        bulk/tail ESS across the runs are checked like NUTS's chains; the
        pooled particles, evenly thinned to ``particles``, become the online
        posterior. Returns False (nothing installed) when a step's moves
        leave fewer than 30% of some run's particles moved, or when the
        runs take more than ``_MAX_TEMPERING_STEPS`` steps.
        """
        started = time.perf_counter()
        runs, per = self.runs, self.particles
        prior = self.sample_prior(runs * per, seed=rng)
        theta = np.column_stack([prior["mu"], np.log(prior["sigma"]),
                                 np.log(prior["nu"] - 2.0)])
        ll = t_loglik(*constrain(theta), y)
        logw, gamma = np.zeros(theta.shape[0]), np.zeros(runs)
        steps, moved, acceptance = 0, 1.0, 0.0
        blocks = _sir.run_slices(theta.shape[0], runs)
        while np.any(gamma < 1.0) and steps < _MAX_TEMPERING_STEPS and moved >= _LEAST_MOVED:
            active = [g for g in range(runs) if gamma[g] < 1.0]
            for g in active:
                b = blocks[g]
                step = _sir.next_temperature(logw[b], ll[b], float(gamma[g]),
                                             self.ess_threshold * per)
                logw[b] += (step - gamma[g]) * ll[b]
                gamma[g] = step
            idx = np.concatenate([np.arange(blocks[g].start, blocks[g].stop) for g in active])
            powers = np.repeat(gamma[active], per)[None, :]  # each particle's run's power
            theta[idx], rows, acceptance, moved = self._rejuvenate(
                theta[idx], logw[idx], ll[None, idx], (y,), powers, rng, runs=len(active))
            ll[idx], logw[idx] = rows[0], 0.0
            steps += 1
        if np.any(gamma < 1.0) or moved < _LEAST_MOVED:
            return False
        mu, sigma, nu = constrain(theta)
        rhat, ess_bulk, ess_tail = summarize({k: v.reshape(runs, per) for k, v in
                                              zip(PARAMS, (mu, sigma, nu), strict=True)})
        keep = _sir.systematic_resample(np.full(theta.shape[0], 1.0 / theta.shape[0]),
                                        float(rng.random()), per)
        self._install(theta[keep], np.zeros(per), ll[keep], y, rng)
        self._fit_info = {"method": "smc", "rhat": rhat, "ess_bulk": ess_bulk,
                          "ess_tail": ess_tail, "divergences": 0, "draws": int(theta.shape[0]),
                          "seconds": time.perf_counter() - started, "tempering_steps": steps,
                          "moved": moved}
        self._acceptance = acceptance
        self._fitted = True
        self._warn_if_unconverged(self._diagnostics())
        return True

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Posterior given a new window ``(n,)``, warm-started from the current particles.

        Same target as :meth:`fit`, no NUTS run: IBIS / resample-move (Chopin
        2002). The particles (posterior given the current history) are
        reweighted by the likelihood ratio of window to history; if the ESS
        stays above ``ess_threshold`` that is all. Otherwise adaptive
        tempering: absorb the largest fraction of the log ratio that keeps the
        ESS at ``ess_threshold``, resample, rejuvenate by MH moves on the
        full-window posterior, repeat until the whole ratio is absorbed. When
        the window is the history minus its oldest returns (the backtest's
        rolling window) the ratio is the likelihood of the dropped returns
        alone, so reweighting costs a pass over those, not over the window.
        Falls back to :meth:`fit` when not fitted, when the bridge stalls, or
        when the moves cannot spread the particles.
        """
        if not self._fitted:
            return self.fit(returns, seed=seed)
        y = self._history(returns)
        rng = copy.deepcopy(self._rng) if seed is None else _own(seed)
        started = time.perf_counter()
        theta, logw = self._theta, self._logw
        dropped = _dropped_prefix(self._hist, y)
        if dropped is not None:  # history = dropped + window: target L(y) L(dropped)^(1-g)
            ll_drop = t_loglik(*constrain(theta), dropped)
            rows, data = np.vstack([self._loglik - ll_drop, ll_drop]), (y, dropped)

            def powers(g: float) -> FloatArray:
                return np.array([1.0, 1.0 - g])

            def increment(rows: FloatArray) -> FloatArray:
                return np.asarray(-rows[1])
        else:  # unrelated window: target L(history)^(1-g) L(y)^g
            rows = np.vstack([t_loglik(*constrain(theta), y), self._loglik])
            data = (y, self._hist)

            def powers(g: float) -> FloatArray:
                return np.array([g, 1.0 - g])

            def increment(rows: FloatArray) -> FloatArray:
                return np.asarray(rows[0] - rows[1])
        gamma, acceptance, target = 0.0, self._acceptance, self.ess_threshold * theta.shape[0]
        full = logw + increment(rows)
        ess_reweighted = _sir.ess(full)
        steps, moved = 0, 1.0
        if ess_reweighted >= target:  # weights still healthy: reweight only, as IBIS would
            gamma, logw = 1.0, full
        for _ in range(500):
            if gamma >= 1.0:
                break
            inc = increment(rows)
            step = _sir.next_temperature(logw, inc, gamma, target)
            logw = logw + (step - gamma) * inc
            gamma = step
            if gamma >= 1.0 and _sir.ess(logw) >= target:
                break  # the last bridge step left healthy weights: no resampling needed
            theta, rows, acceptance, moved = self._rejuvenate(theta, logw, rows, data,
                                                              powers(gamma), rng)
            logw = np.zeros(theta.shape[0])
            steps += 1
            if moved < _LEAST_MOVED:  # the moves cannot keep up: sample afresh
                gamma = 0.0
                break
        else:
            gamma = 0.0
        if gamma < 1.0:  # degenerate or stalled (a window unrelated to the particles)
            return self.fit(y, seed=rng)  # afresh (the SMC fit falls back to NUTS)
        if steps == 0:  # same particles: the cached per-particle forecast pieces stay valid
            levels = self._levels
            self._install(theta, logw, rows[0], y, rng)
            self._levels = levels
        else:
            self._install(theta, logw, rows[0], y, rng)
        self._acceptance = acceptance
        self._fit_info = {"method": "ibis", "rhat": {}, "ess_bulk": {}, "ess_tail": {},
                          "divergences": 0, "draws": int(theta.shape[0]),
                          "seconds": time.perf_counter() - started,
                          "ess_reweighted": ess_reweighted, "tempering_steps": steps,
                          "moved": moved}
        return self

    def _install(self, theta: FloatArray, logw: FloatArray, loglik: FloatArray,
                 history: FloatArray, rng: np.random.Generator) -> None:
        self._theta, self._logw, self._loglik = theta, logw - logw.max(), loglik
        self._hist, self._rng = history, rng
        self._mu, self._sigma, self._nu = constrain(theta)
        self._const = log_const(self._sigma, self._nu)
        self._levels = {}

    def _rejuvenate(self, theta: FloatArray, logw: FloatArray, loglik: FloatArray,
                    data: tuple[FloatArray, ...], powers: FloatArray, rng: np.random.Generator,
                    runs: int = 1) -> tuple[FloatArray, FloatArray, float, float]:
        """Systematic resample, then Metropolis-Hastings sweeps, run by run.

        The target is ``prior * prod_k L(data_k) ** powers_k``; ``loglik (k, S)``
        holds each particle's ``log L(data_k)`` and is carried along; ``powers``
        is ``(k,)``, or ``(k, S)`` for a power per particle. ``runs`` equal
        blocks of the particles are independent runs: each is resampled
        within itself and gets its own proposal. Independent MH from a t
        fitted to the weighted cloud first (up to ``moves`` sweeps, fewer once
        95% of the particles have moved); if its acceptance is too low for
        that (a cloud far from Gaussian), random-walk sweeps instead. Returns
        the particles, their likelihood rows, the (lowest run's) acceptance
        rate and fraction of particles moved.
        """
        blocks = _sir.run_slices(theta.shape[0], runs)
        idx = np.empty(theta.shape[0], dtype=np.intp)
        mean, cov = np.empty((runs, theta.shape[1])), np.empty((runs,) + (theta.shape[1],) * 2)
        for g, b in enumerate(blocks):
            w = _sir.normalized_weights(logw[b])
            cov[g] = _sir.weighted_covariance(theta[b], w)
            mean[g] = w @ theta[b]
            idx[b] = b.start + _sir.systematic_resample(w, float(rng.random()))
        theta, loglik = theta[idx], loglik[:, idx]

        def weigh(parts: FloatArray) -> FloatArray:
            return np.asarray(powers @ parts if powers.ndim == 1
                              else (powers * parts).sum(axis=0))

        def log_target(th: FloatArray) -> tuple[FloatArray, FloatArray]:
            # a data set with power 0 does not enter the target: skip its likelihood
            # (its row is then not carried, and the caller must not use it)
            parts = np.vstack([t_loglik(*constrain(th), d) if np.any(p != 0)
                               else np.zeros(th.shape[0])
                               for d, p in zip(data, powers, strict=True)])
            return log_prior(th) + weigh(parts), parts

        current = (log_prior(theta) + weigh(loglik), loglik)
        moved_theta, lt, moved_ll, rate, moved = _sir.independent_moves(
            theta, log_target, current, rng, self.moves, mean, cov, runs=runs)
        if rate >= _LEAST_INDEPENDENT_ACCEPTANCE:
            return moved_theta, moved_ll, rate, moved
        # a proposal far from the target: local random-walk steps from where it got
        start = theta.copy()
        theta, _, loglik, rate = _sir.random_walk_moves(
            moved_theta, log_target, (lt, moved_ll), rng, self.moves,
            (2.38**2 / theta.shape[1]) * cov, runs=runs)
        moved = min(float(np.mean(np.any(theta[b] != start[b], axis=1))) for b in blocks)
        return theta, loglik, rate, moved

    # --- online -----------------------------------------------------------

    def update(self, r: float) -> float:
        """Reweight the particles by the t density of ``r``; return ``log p(r | past)``."""
        self._require_fitted()
        value = self._check_return(r)
        xs = np.array([value])
        _, lpds, pending = self._reweigh_days(xs, self._log_densities(xs))
        if pending is not None:
            self._rejuvenate_after(*pending)
        return lpds[0]

    def _log_densities(self, xs: FloatArray) -> FloatArray:
        """Each particle's t log density of each return: ``(D, S)`` for ``xs (D,)``."""
        z = (xs[:, None] - self._mu) / self._sigma
        return np.asarray(self._const - 0.5 * (self._nu + 1.0) * np.log1p(z * z / self._nu))

    def _reweigh_days(self, xs: FloatArray, lp: FloatArray) -> tuple[
            list[FloatArray], list[float], tuple[FloatArray, FloatArray, FloatArray] | None]:
        """Absorb returns ``xs (D,)`` with particle log densities ``lp (D, S)`` into the weights.

        Day by day as far as the first return after which the ESS falls below
        ``ess_threshold * S``; the days before it are absorbed (weights,
        likelihoods, history). Returns the normalized weights each absorbed
        or stopping day was forecast with, those days' log predictive
        densities, and for a stopping day its unnormalized log weights,
        likelihoods and history, to resample and move from (None if none).
        Only the last day's weights are exponentiated (``self._logw`` has
        maximum exactly 0, so they are what :func:`_sir.normalized_weights`
        would give; the next day's denominator is this day's sum). StudentT is no
        :class:`._online_agent.OnlineAgent`: this many-day step is its own, not
        ``OnlineAgent._reweigh``'s one day.
        """
        logw, loglik = self._logw, self._loglik
        weights, denominator = _sir.normalized_weights(logw), np.exp(logw).sum()
        least = self.ess_threshold * logw.size
        seen, lpds = [], []
        for j in range(xs.size):
            seen.append(weights)
            new = logw + lp[j]
            top = new.max()
            shifted = new - top
            e = np.exp(shifted)
            total = e.sum()
            lpds.append(float(top + np.log(total) - np.log(denominator)))
            weights = e / total
            if float(1.0 / np.dot(weights, weights)) < least:
                self._absorbed(logw, loglik, xs[:j])
                return seen, lpds, (new, loglik + lp[j], np.append(self._hist, xs[j]))
            logw, loglik, denominator = shifted, loglik + lp[j], total
        self._absorbed(logw, loglik, xs)
        return seen, lpds, None

    def _absorbed(self, logw: FloatArray, loglik: FloatArray, xs: FloatArray) -> None:
        if xs.size:
            self._logw, self._loglik = logw, loglik
            self._hist = np.concatenate([self._hist, xs])

    def _rejuvenate_after(self, logw: FloatArray, loglik: FloatArray, history: FloatArray) -> None:
        """Resample and move after a return left too few effective particles."""
        rng = copy.deepcopy(self._rng)
        theta, aux, rate, _ = self._rejuvenate(self._theta, logw, loglik[None, :], (history,),
                                               np.ones(1), rng)
        self._install(theta, np.zeros(theta.shape[0]), aux[0], history, rng)
        self._acceptance = rate

    # --- forecasting ------------------------------------------------------

    def _level(self, alpha: float, weights: FloatArray) -> MixtureLevel:
        level = self._levels.get(alpha)
        if level is None:  # new particles, nearly the same predictive: start from its VaR
            level = mixture_level(self._mu, self._sigma, self._nu, alpha, weights,
                                  self._last_var.get(alpha))
            self._levels[alpha] = level
        return level

    def _one_step(self, alpha: float, weights: FloatArray) -> RiskMeasure:
        measure = risk_measure(self._level(alpha, weights), weights)
        self._last_var[alpha] = measure.var
        return measure

    def forecast(self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *,
                 seed: Seed = None) -> Forecast:
        """VaR/ES of the posterior predictive of the next ``horizon``-period log return.

        ``horizon = 1`` is exact (a weighted t mixture, per-particle pieces
        cached between rejuvenations). ``horizon > 1``: for 128 systematically
        resampled particles, the sum of ``horizon`` iid t returns is a normal
        given its variance mixing ``V``; 256 simulated ``V`` per particle make
        its h-day law a mixture of normals, exact in each component's tail
        (:mod:`~swarmvar.models._scale_mixture`). ``seed=None`` uses a copy of
        the agent's generator, so the same state gives the same forecast.
        """
        self._require_fitted()
        levels = check_alphas(alphas)
        h = self._check_horizon(horizon)
        w = _sir.normalized_weights(self._logw)
        if h == 1:
            return Forecast(self.name, 1, tuple(self._one_step(a, w) for a in levels))
        rng = copy.deepcopy(self._rng) if seed is None else rng_from(seed)
        idx = _sir.systematic_resample(w, float(rng.random()), _HORIZON_PARTICLES)
        mu, sigma, nu = self._mu[idx], self._sigma[idx], self._nu[idx]
        scale = sigma[:, None] * h_day_scales(nu, h, _HORIZON_MIXING, rng)
        family = ScaleMixtureFamily(h * mu, scale, np.ones(idx.size))
        return Forecast(self.name, h, risk_measures(family, levels))

    def _horizon_one_block(
        self, xs: FloatArray, levels: tuple[float, ...], seeds: Sequence[Seed]
    ) -> tuple[list[Forecast], FloatArray]:
        """:meth:`Agent.forecast_block` at horizon 1, vectorized.

        Bit for bit the loop of :meth:`forecast` and :meth:`update` (tested),
        for fewer passes: between resample-moves the particles are fixed, so
        one ``(days, S)`` matrix holds every remaining day's t log densities,
        the weights advance day by day as :meth:`update` advances them (one
        exponential a day), and each stretch of days on one particle set is
        forecast together (credible intervals in one pass, the VaR/ES roots
        day by day on the cached nodes). A day that leaves too few effective
        particles is resampled and moved exactly where :meth:`update` would,
        with the same random stream.
        """
        measures: list[list[RiskMeasure]] = []
        dens = np.empty(xs.size)
        start = 0
        while start < xs.size:
            rest = xs[start:]
            seen, lpds, pending = self._reweigh_days(rest, self._log_densities(rest))
            by_level = []
            for a in levels:  # before any resample-move: these particles made the forecasts
                stretch = risk_measures_block(self._level(a, seen[0]), seen)
                self._last_var[a] = stretch[-1].var
                by_level.append(stretch)
            measures.extend(list(day) for day in zip(*by_level, strict=True))
            dens[start:start + len(seen)] = lpds
            start += len(seen)
            if pending is not None:
                self._rejuvenate_after(*pending)
        return [Forecast(self.name, 1, tuple(day)) for day in measures], dens

    # --- diagnostics, generative side, state ------------------------------------

    def _diagnostics(self) -> Diagnostics:
        info = self._fit_info
        return Diagnostics(method=f"{info['method']}+sir", rhat=dict(info["rhat"]),
                           ess_bulk=dict(info["ess_bulk"]), ess_tail=dict(info["ess_tail"]),
                           ess=_sir.ess(self._logw), acceptance=self._acceptance,
                           draws=int(info["draws"]),
                           seconds=float(info["seconds"]), particles=int(self._logw.size))

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, FloatArray]:
        """``n`` prior draws of ``mu``, ``sigma``, ``nu``."""
        rng = rng_from(seed)
        return {"mu": rng.normal(0.0, lik.MU_PRIOR_SD, n),
                "sigma": np.abs(rng.normal(0.0, lik.SIGMA_PRIOR_SD, n)),
                "nu": 2.0 + rng.gamma(lik.NU_SHAPE, 1.0 / lik.NU_RATE, n)}

    def simulate(self, params: Mapping[str, float], n: int, *, seed: Seed = None) -> FloatArray:
        """``n`` iid returns ``mu + sigma * T_nu``."""
        try:
            mu, sigma, nu = (float(params[k]) for k in PARAMS)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameter(f"StudentT.simulate needs numbers {PARAMS}: {exc}") from exc
        if not (np.isfinite(mu) and sigma > 0 and nu > 2 and np.isfinite(sigma * nu)):
            raise InvalidParameter(f"need finite mu, sigma > 0, nu > 2; got {mu}, {sigma}, {nu}")
        rng = rng_from(seed)
        return np.asarray(mu + sigma * rng.standard_t(nu, n))

    def posterior_draws(self) -> dict[str, FloatArray]:
        """Particles resampled to equal weights (systematic, deterministic offset 0.5)."""
        self._require_fitted()
        idx = _sir.systematic_resample(_sir.normalized_weights(self._logw), 0.5)
        return {"mu": self._mu[idx].copy(), "sigma": self._sigma[idx].copy(),
                "nu": self._nu[idx].copy()}

    @property
    def history(self) -> FloatArray:
        """The returns the posterior conditions on ``(n,)`` (fit window plus updates)."""
        self._require_fitted()
        return self._hist.copy()

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        scalars = {"rng": self._rng.bit_generator.state, "fit_info": self._fit_info,
                   "acceptance": self._acceptance}
        arrays = {"theta": self._theta, "logw": self._logw, "loglik": self._loglik,
                  "history": self._hist}
        return scalars, arrays

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            theta = np.asarray(arrays["theta"], dtype=float)
            logw = np.asarray(arrays["logw"], dtype=float)
            loglik = np.asarray(arrays["loglik"], dtype=float)
            history = np.asarray(arrays["history"], dtype=float)
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = scalars["rng"]
            info = dict(scalars["fit_info"])
            acceptance = scalars["acceptance"]
            _ = (info["method"], info["rhat"], info["ess_bulk"], info["ess_tail"],
                 info["draws"], info["seconds"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"StudentT state is incomplete or malformed: {exc}") from exc
        s = theta.shape[0] if theta.ndim == 2 else -1
        if (theta.ndim != 2 or theta.shape[1] != 3 or s < 1 or logw.shape != (s,)
                or loglik.shape != (s,) or history.ndim != 1
                or history.size < self.min_observations):
            raise InvalidState("StudentT state arrays have inconsistent shapes")
        if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(logw))
                and np.all(np.isfinite(loglik)) and np.all(np.isfinite(history))):
            raise InvalidState("StudentT state holds non-finite numbers")
        self._install(theta, logw, loglik, history, rng)
        self._fit_info, self._acceptance = info, acceptance
