"""``BetaSkewTEgarch``: Harvey's score-driven Beta-Skew-t-EGARCH with leverage, online by SMC.

Model (log returns as fractions; see :mod:`._score_driven_lik` for the
score, the skew-t and the priors)::

    r_t = mu + exp(lambda_t) eps_t,   eps_t ~ skew-t(nu, gamma) (Fernandez-Steel, unit scale)
    lambda_{t+1} = omega + phi (lambda_t - omega) + kappa u_t + kappa_star sgn(-e_t)(u_t + 1)

``u_t = (nu+1) b_t - 1`` is the score of the density in the log scale
``lambda_t`` (``b_t ~ Beta(1/2, nu/2)``), bounded in ``[-1, nu]``: the
scale reacts to an outlier by a bounded amount, where GARCH's variance
reacts to its square. That, the log-scale (EGARCH) dynamics and the skewed
tails make its forecast errors differ from the GJR-GARCH agents' (Harvey &
Chakravarty 2008; Harvey 2013, "Dynamic Models for Volatility and Heavy
Tails"; Harvey & Sucarrat 2014, "EGARCH models with fat tails, skewness and
leverage"). ``gamma = 1`` is the symmetric Beta-t-EGARCH.

Posterior over ``(mu, omega, phi, kappa, kappa_star, nu, gamma)`` by
particles, with the generic blocks of :mod:`._sir`: ``fit`` runs ``runs``
independent likelihood-tempered SMC samplers from the prior (one batch;
split R-hat and ESS across the runs); ``update`` is iterated batch
importance sampling (Chopin 2002): each particle carries its ``lambda`` for
the next day, a new return reweights it by its density, and when the ESS
falls below ``ess_threshold * particles`` the particles are resampled and
moved by independent Metropolis-Hastings from a multivariate t fitted to
them (random-walk moves when those are rarely accepted), targeting the
posterior given the whole history. ``refit`` warm-starts from the current
particles. The likelihood passes run compiled (:mod:`._score_driven_jax`).
Details in docs/models-score-driven.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..data import MAX_ABS_RETURN
from ..errors import InvalidParameter, InvalidReturns, InvalidState
from ..types import Diagnostics, Forecast
from . import _score_driven_jax as jlik
from . import _score_driven_lik as lik
from . import _sir
from ._score_driven_bridge import bridge
from ._score_driven_family import SkewTCache, skew_level_measures_block
from .base import Agent, Seed, check_real, check_whole, rng_from
from .diagnostics import fit_record, smc_diagnostics, summarize
from .risk import EmpiricalFamily, check_alphas, risk_measures, risk_measures_block

FloatArray = NDArray[np.float64]

#: Draws and paths per draw for horizons > 1.
HORIZON_DRAWS = 200
HORIZON_PATHS = 500
#: Below this ESS fraction after a warm refit's reweighting, refit from scratch.
REFIT_MIN_ESS = 0.05
#: Most particles one fit holds (particles x runs), and most runs.
MAX_PARTICLES, MAX_RUNS = 200_000, 64
#: Most days solved together by forecast_block: a backtest's whole refit interval (20
#: days) in one batch costs ~30% less than batches of 8, with the same numbers.
BLOCK_DAYS = 32
#: Most tempering stages of a fit (a real series takes a few dozen).
MAX_STAGES = 200
#: Independent-MH sweeps per rejuvenation (fewer once 95% of the particles moved), and
#: the acceptance below which random-walk sweeps follow.
MOVES = 6
LEAST_INDEPENDENT_ACCEPTANCE = 0.2
#: At a tempering stage before the last, the independent-MH sweeps stop once this share
#: of every run's particles has moved (the proposal is refitted to the cloud at every
#: stage); the last stage, whose particles are the posterior, moves 95% (``_sir``'s rule).
STAGE_MOVED = 0.8
#: A resample-move of a reweighted posterior cloud - a warm refit whose reweighting left
#: between REFIT_MIN_ESS and ess_threshold of the particles effective, an update whose
#: weights fell below ess_threshold - stops its independent-MH sweeps once this share
#: has moved: the cloud is already the target up to those weights, so the sweeps only
#: undo the resample's duplicates (two sweeps at the usual ~60% acceptance; 0.95 took
#: four or five, ~a third of a backtest's likelihood passes).
REWEIGHTED_MOVED = 0.8


class BetaSkewTEgarch(Agent):
    """Bayesian Beta-Skew-t-EGARCH(1,1) with leverage (score-driven scale), online by SMC.

    Parameters
    ----------
    particles : int
        Particles in the online posterior, and per run in ``fit`` (>= 100).
    runs : int
        Independent tempered SMC runs in ``fit``, for split R-hat across runs (>= 2).
    ess_threshold : float
        Resample-move when the weights' ESS falls below this fraction of
        ``particles`` (0 < value < 1); also each tempering step's target ESS.
    """

    name = "BetaSkewTEgarch"
    min_observations = 100
    needs_variation = True
    #: How the last fit or refit got its posterior: "fit" (tempered from the prior),
    #: "reweight", "move", "bridge" (tempered from the history's posterior) or "prior"
    #: (a refit whose bridge stalled, fitted from the prior).
    refit_route: str = "fit"
    cost_hint = (3.0, 90.0)  # ms: a backtest day at h = 1 (refits included), a 10-day forecast

    def __init__(self, particles: int = 1000, runs: int = 4, ess_threshold: float = 0.5) -> None:
        particles = check_whole("particles", particles, 100, MAX_PARTICLES)
        runs = check_whole("runs", runs, 2, MAX_RUNS)
        if particles * runs > MAX_PARTICLES:
            raise InvalidParameter(
                f"particles x runs = {particles * runs:,}, beyond the {MAX_PARTICLES:,} one fit "
                "may hold; lower particles or runs")
        ess_threshold = check_real("ess_threshold", ess_threshold, 0.0, 1.0, low_open=True,
                                   high_open=True)
        self.particles = int(particles)
        self.runs = int(runs)
        self.ess_threshold = float(ess_threshold)

    # --- fitting -------------------------------------------------------------------

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Posterior given ``returns`` (oldest first) by likelihood-tempered SMC from the prior.

        ``runs`` runs of ``particles`` prior draws in one batch; each raises its
        likelihood's power as far as keeps its ESS at ``ess_threshold``
        (bisection, :func:`._sir.next_temperature`), resamples and moves
        (:meth:`_rejuvenate`) until the power is 1. Split R-hat and ESS
        across the runs are checked (a ``ConvergenceWarning`` if poor); the
        pooled particles, thinned to ``particles``, are the online posterior.

        Raises
        ------
        InvalidReturns
            Bad returns, or a series the sampler cannot temper in ``MAX_STAGES`` stages.
        """
        r = self._history(returns)
        rng = np.random.default_rng(rng_from(seed).integers(0, 2**63 - 1))
        start = time.perf_counter()
        runs, per = self.runs, self.particles
        u = lik.to_unconstrained(lik.sample_prior(runs * per, rng))
        lp = lik.log_prior_u(u)
        ll, lam = jlik.loglik(r, lik.from_unconstrained(u))
        ll = np.where(np.isfinite(lp), ll, -np.inf)
        logw, gamma = np.zeros(u.shape[0]), np.zeros(runs)
        blocks = _sir.run_slices(u.shape[0], runs)
        stages, acceptance = 0, 1.0
        while np.any(gamma < 1.0):
            if stages >= MAX_STAGES:
                raise InvalidReturns(
                    f"the Beta-Skew-t-EGARCH posterior was not reached in {MAX_STAGES} tempering "
                    f"stages (the slowest run got to {float(gamma.min()):.3g} of the "
                    "likelihood): check the series for stale stretches or a unit mistake")
            active = [g for g in range(runs) if gamma[g] < 1.0]
            for g in active:
                b = blocks[g]
                nxt = _sir.next_temperature(logw[b], ll[b], float(gamma[g]),
                                            self.ess_threshold * per)
                logw[b] += _scaled(ll[b], nxt - gamma[g])
                gamma[g] = nxt
            idx = np.concatenate([np.arange(blocks[g].start, blocks[g].stop) for g in active])
            powers = np.repeat(gamma[active], per)
            enough = 0.95 if np.any(gamma[active] >= 1.0) else STAGE_MOVED
            moved = self._rejuvenate(r, u[idx], logw[idx], np.vstack([ll[idx], lam[idx]]),
                                     powers, rng, len(active), enough)
            u[idx], ll[idx], lam[idx], acceptance = moved
            logw[idx] = 0.0
            stages += 1
        draws = lik.from_unconstrained(u).as_dict()
        rhat, ess_b, ess_t = summarize({k: v.reshape(runs, per) for k, v in draws.items()})
        keep = _sir.systematic_resample(np.full(u.shape[0], 1.0 / u.shape[0]),
                                        float(rng.random()), per)
        self._install(r, u[keep], ll[keep], lam[keep], np.zeros(per), rng)
        self._fit_diag = {"rhat": rhat, "ess_bulk": ess_b, "ess_tail": ess_t}
        self._acceptance = acceptance
        self._seconds = time.perf_counter() - start
        self._fitted = True
        self.refit_route = "fit"
        self._warn_if_unconverged(self._diagnostics())
        return self

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Warm re-anchoring on a trailing window: the posterior given ``returns`` only.

        The same target as ``fit(returns)``. The particles (the posterior given
        the absorbed history) are reweighted by ``p(returns | theta) /
        p(history | theta)`` - one likelihood pass over the window, which also
        gives each particle's ``lambda`` at the window's end - and, when the
        ESS falls below ``ess_threshold * particles``, resampled and moved
        targeting the window's posterior. Below ``REFIT_MIN_ESS * particles``
        effective particles the particles are tempered from the history's
        posterior to the window's (:func:`._score_driven_bridge.bridge`), and
        only if that stalls is the window fitted from the prior (:meth:`fit`);
        ``refit_route`` says which. A refused window leaves the agent as it was.
        """
        if not self._fitted:
            return self.fit(returns, seed=seed)
        r = self._history(returns)
        rng = np.random.default_rng(rng_from(seed).integers(0, 2**63 - 1))
        ll, lam = jlik.loglik(r, self._theta)
        logw = self._logw + ll - self._ll
        logw = np.where(np.isfinite(logw), logw, -np.inf)
        if not np.any(np.isfinite(logw)):
            return self._refit_from_prior(r, rng)
        if _sir.ess(logw) < REFIT_MIN_ESS * self.particles:
            bridged = bridge(self.history, r, self._u, self._ll, self._logw, rng,
                             self.ess_threshold, MOVES, STAGE_MOVED)
            if bridged is None:
                return self._refit_from_prior(r, rng)
            u, ll, lam, logw, acc, _ = bridged
            self._install(r, u, ll, lam, logw, rng)
            self._acceptance = acc
            self.refit_route = "bridge"
            return self
        if _sir.ess(logw) >= self.ess_threshold * self.particles:
            self._install(r, self._u, ll, lam, logw, rng)  # healthy weights: as IBIS would
            self.refit_route = "reweight"
            return self
        u, ll, lam, acc = self._rejuvenate(r, self._u, logw, np.vstack([ll, lam]),
                                           np.ones(self.particles), rng, 1, REWEIGHTED_MOVED)
        self._install(r, u, ll, lam, np.zeros(self.particles), rng)
        self._acceptance = acc
        self.refit_route = "move"
        return self

    def _refit_from_prior(self, r: FloatArray, rng: np.random.Generator) -> Self:
        self.fit(r, seed=rng)
        self.refit_route = "prior"
        return self

    def _rejuvenate(self, r: FloatArray, u: FloatArray, logw: FloatArray, aux: FloatArray,
                    powers: FloatArray, rng: np.random.Generator, runs: int,
                    enough: float = 0.95) -> tuple[FloatArray, FloatArray, FloatArray, float]:
        """Resample each run by ``logw`` and move it, targeting ``prior * L(r)^power``.

        ``u`` ``(S, 7)``; ``aux`` ``(2, S)`` holds each particle's ``log L(r)``
        and ``lambda_{n+1}``; ``powers`` ``(S,)`` each particle's run's power.
        Independent MH from a multivariate t fitted to each run's weighted
        particles; random-walk MH from there when its acceptance is low.
        Returns the particles, their log-likelihoods and ``lambda``, and the
        acceptance rate.
        """
        blocks = _sir.run_slices(u.shape[0], runs)
        d = u.shape[1]
        idx = np.empty(u.shape[0], dtype=np.intp)
        mean, cov = np.empty((runs, d)), np.empty((runs, d, d))
        for g, b in enumerate(blocks):
            w = _sir.normalized_weights(logw[b])
            mean[g] = w @ u[b]
            cov[g] = _sir.weighted_covariance(u[b], w) + 1e-10 * np.eye(d)
            idx[b] = b.start + _sir.systematic_resample(w, float(rng.random()))
        u, aux = u[idx], aux[:, idx]

        def log_target(th: FloatArray) -> tuple[FloatArray, FloatArray]:
            lp = lik.log_prior_u(th)
            ll, lam = jlik.loglik(r, lik.from_unconstrained(th))
            ll = np.where(np.isfinite(lp), ll, -np.inf)
            return lp + _scaled(ll, powers), np.vstack([ll, lam])

        current = (lik.log_prior_u(u) + _scaled(aux[0], powers), aux)
        u2, lt, aux2, rate, _ = _sir.independent_moves(u, log_target, current, rng, MOVES, mean,
                                                        cov, enough_moved=enough, runs=runs)
        if rate < LEAST_INDEPENDENT_ACCEPTANCE:
            u2, _, aux2, rate = _sir.random_walk_moves(
                u2, log_target, (lt, aux2), rng, MOVES, (2.38**2 / d) * cov, runs=runs)
        return u2, aux2[0].copy(), aux2[1].copy(), rate

    def _install(self, r: FloatArray, u: FloatArray, ll: FloatArray, lam: FloatArray,
                 logw: FloatArray, rng: np.random.Generator) -> None:
        cap = max(64, 1 << (r.size + 256).bit_length())
        self._buf = np.empty(cap)
        self._buf[: r.size] = r
        self._n = r.size
        self._rng = rng
        if getattr(self, "_u", None) is not u:  # new particles: their constants anew
            self._u = u
            self._theta = lik.from_unconstrained(u)
            self._step = lik.Step.of(self._theta)
            self._cache: SkewTCache | None = None  # the predictive's constants, when asked
        self._ll, self._lam = ll, lam
        self._logw = logw - np.max(logw)

    @property
    def history(self) -> FloatArray:
        """Returns the posterior conditions on (fit or refit window, then updates) ``(n,)``."""
        self._require_fitted()
        return self._buf[: self._n].copy()

    # --- online ------------------------------------------------------------------------

    def update(self, r: float) -> float:
        """Absorb one return by IBIS; the log predictive density of ``r`` before absorbing it."""
        x = self._check_return(r)
        self._require_fitted()
        dens, lam = lik.step(self._step, self._lam, x)
        lw = self._logw + dens
        top = float(np.max(lw))
        if not np.isfinite(top):
            raise InvalidReturns(f"return {x!r} has zero density under every particle")
        pred = top + float(np.log(np.exp(lw - top).sum() / np.exp(self._logw).sum()))
        if self._n == self._buf.size:
            self._buf = np.concatenate([self._buf, np.empty(self._buf.size)])
        self._buf[self._n] = x
        self._n += 1
        self._ll, self._lam, self._logw = self._ll + dens, lam, lw - top
        if _sir.ess(self._logw) < self.ess_threshold * self.particles:
            hist = self._buf[: self._n]
            u, ll, lam, acc = self._rejuvenate(hist, self._u, self._logw,
                                               np.vstack([self._ll, self._lam]),
                                               np.ones(self.particles), self._rng, 1,
                                               REWEIGHTED_MOVED)
            self._install(hist.copy(), u, ll, lam, np.zeros(self.particles), self._rng)
            self._acceptance = acc
        return pred

    # --- the predictive --------------------------------------------------------------

    def _weights(self) -> FloatArray:
        return _sir.normalized_weights(self._logw)

    def next_moments(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """One-step-ahead law of the next return per particle: ``loc + scale * skew-t``.

        Returns ``loc = mu``, ``scale = exp(lambda_{n+1})`` (fractions),
        ``df = nu``, the skewness ``gamma`` and the normalized weights, each ``(S,)``.
        """
        self._require_fitted()
        th = self._theta
        return th.mu.copy(), np.exp(self._lam), th.nu.copy(), th.gamma.copy(), self._weights()

    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast:
        """VaR/ES of the next ``horizon`` returns' sum, with 90% credible intervals.

        Horizon 1 is over the particles: a mixture of scaled skew-t's, its
        per-draw quantiles exact and its mixture quantile solved on the
        tabulated t CDF (:mod:`._score_driven_family`; within 1e-6 relative
        of the ``stdtr`` path, :class:`._score_driven_lik.SkewTFamily`).
        Longer horizons run the recursion forward: ``HORIZON_PATHS`` paths
        from each of ``HORIZON_DRAWS`` particles (systematically resampled)
        with each particle's own skew-t shocks, drawn from ``seed``.
        """
        levels = check_alphas(alphas)
        h = self._check_horizon(horizon)
        self._require_fitted()
        if h == 1:
            return self._forecast_days(self._theta, self._skew_cache(), [self._lam],
                                       [self._weights()], levels)[0]
        rng = rng_from(seed)
        idx = _sir.systematic_resample(self._weights(), float(rng.random()), HORIZON_DRAWS)
        paths = lik.simulate_paths(self._theta.take(idx), self._lam[idx], h, HORIZON_PATHS, rng)
        return Forecast(model=self.name, horizon=h,
                        levels=risk_measures(EmpiricalFamily(paths), levels))

    def _skew_cache(self) -> SkewTCache:
        if self._cache is None:
            self._cache = SkewTCache(self._theta.nu, self._theta.gamma)
        return self._cache

    def _horizon_one_block(
        self, xs: FloatArray, levels: tuple[float, ...], seeds: Sequence[Seed]
    ) -> tuple[list[Forecast], FloatArray]:
        """:meth:`Agent.forecast_block` at horizon 1, vectorized.

        The updates run day by day as :meth:`update` (resample-moves
        included); the forecasts of the days on one particle set are solved
        together, ``BLOCK_DAYS`` at a time, by the code :meth:`forecast`
        runs for one day (so each day's numbers are the same, bit for bit).
        """
        forecasts: list[Forecast] = []
        dens = np.empty(xs.size)
        lams: list[FloatArray] = []
        ws: list[FloatArray] = []
        for j, x in enumerate(xs.tolist()):
            theta, cache = self._theta, self._skew_cache()
            lams.append(self._lam)
            ws.append(self._weights())
            dens[j] = self.update(x)
            if self._theta is not theta or len(lams) == BLOCK_DAYS:
                forecasts += self._forecast_days(theta, cache, lams, ws, levels)
                lams, ws = [], []
        if lams:
            forecasts += self._forecast_days(self._theta, self._skew_cache(), lams, ws, levels)
        return forecasts, dens

    def _forecast_days(self, th: lik.Theta, cache: SkewTCache, lams: list[FloatArray],
                       ws: list[FloatArray], levels: tuple[float, ...]) -> list[Forecast]:
        """Horizon-1 forecasts from one particle set at each day's ``lambda`` and weights."""
        scale = np.exp(np.stack(lams))
        w = np.stack(ws)
        m = skew_level_measures_block(cache, th.mu, scale, w, levels)
        days = risk_measures_block(levels, m.var, m.es, m.cond_var, m.cond_es, w)
        for d in m.redo:  # not solved by the batch (not seen): the exact family
            days[d] = risk_measures(lik.SkewTFamily(th.mu, scale[d], th.nu, th.gamma, w[d]),
                                    levels)
        return [Forecast(model=self.name, horizon=1, levels=day) for day in days]

    def standardized_residuals(self) -> FloatArray:
        """``(r_t - mu) / exp(lambda_t)`` ``(n,)`` at the posterior-mean parameters (skew-t
        under the model)."""
        self._require_fitted()
        w = self._weights()
        p = {k: float(w @ v) for k, v in zip(lik.PARAMS, self._theta, strict=True)}
        r = self._buf[: self._n]
        result: FloatArray = (r - p["mu"]) / np.exp(lik.lambda_path(r, p)[:-1])
        return result

    # --- diagnostics ------------------------------------------------------------------

    def _diagnostics(self) -> Diagnostics:
        return smc_diagnostics(self._fit_diag, ess=_sir.ess(self._logw),
                               acceptance=self._acceptance, draws=self.runs * self.particles,
                               seconds=self._seconds)

    # --- generative side ---------------------------------------------------------------

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, FloatArray]:
        """``n`` prior draws of ``mu, omega, phi, kappa, kappa_star, nu, gamma``."""
        n = check_whole("n", n, 1, 10**7)
        return lik.sample_prior(n, rng_from(seed)).as_dict()

    def simulate(self, params: Mapping[str, float], n: int, *, seed: Seed = None) -> FloatArray:
        """``n`` returns from the model at ``params`` (``lambda_1 = omega``)."""
        n = check_whole("n", n, 1, 10**7)
        try:
            p = {k: float(params[k]) for k in lik.PARAMS}
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameter(f"simulate needs numbers for {lik.PARAMS}: {exc}") from exc
        th = lik.Theta(*(np.array([p[k]]) for k in lik.PARAMS))
        if not bool(lik.prior_box(th)[0]):
            raise InvalidParameter(
                "Beta-Skew-t-EGARCH parameters need finite mu, omega, kappa_star, |phi| < 1, "
                f"kappa > 0, nu > 2 and gamma > 0 (within the prior's support); got {p}")
        return lik.simulate(p, n, rng_from(seed))

    def posterior_draws(self) -> dict[str, FloatArray]:
        """The particles resampled to equal weights (systematic, deterministic offset 0.5)."""
        self._require_fitted()
        idx = _sir.systematic_resample(self._weights(), 0.5)
        return self._theta.take(idx).as_dict()

    # --- state -------------------------------------------------------------------------

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        scalars = {
            "rng": self._rng.bit_generator.state,
            "fit_diag": self._fit_diag,
            "acceptance": self._acceptance,
            "seconds": self._seconds,
            "refit_route": self.refit_route,
        }
        arrays = {"history": self.history, "u": self._u, "ll": self._ll, "lam": self._lam,
                  "logw": self._logw}
        return scalars, arrays

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            u = np.asarray(arrays["u"], dtype=float)
            ll, lam, logw = (np.asarray(arrays[k], dtype=float) for k in ("ll", "lam", "logw"))
            hist = np.asarray(arrays["history"], dtype=float)
            rng = np.random.default_rng()
            rng.bit_generator.state = dict(scalars["rng"])
            fit_diag = fit_record(scalars["fit_diag"])
            acceptance, seconds = float(scalars["acceptance"]), float(scalars["seconds"])
            route = str(scalars.get("refit_route", "fit"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"BetaSkewTEgarch state is incomplete or malformed: {exc}") from exc
        s = self.particles
        if u.shape != (s, lik.DIM) or any(v.shape != (s,) for v in (ll, lam, logw)) or (
                hist.ndim != 1 or hist.size < self.min_observations):
            raise InvalidState(f"BetaSkewTEgarch state arrays do not match {s} particles")
        if not (np.all(np.isfinite(hist)) and np.all(np.abs(hist) <= MAX_ABS_RETURN)
                and np.all(np.isfinite(lam)) and np.all(np.abs(lam) < 700.0)):
            raise InvalidState("BetaSkewTEgarch state holds non-finite returns or log scales")
        if not np.all(np.isfinite(lik.log_prior_u(u))):
            raise InvalidState("BetaSkewTEgarch state holds particles outside the prior's support")
        if np.any(np.isnan(ll)) or np.any(ll == np.inf):
            raise InvalidState("BetaSkewTEgarch state's log-likelihoods are NaN or +inf")
        if np.any(np.isnan(logw)) or np.any(logw == np.inf) or not np.any(np.isfinite(logw)):
            raise InvalidState("BetaSkewTEgarch state's particle log weights are NaN, +inf or all "
                               "-inf")
        self._install(hist, u, ll, lam, logw, rng)
        self._logw = logw.copy()  # exact, not re-normalized
        self._fit_diag = fit_diag
        self._acceptance = acceptance
        self._seconds = seconds
        self.refit_route = route


def _scaled(ll: FloatArray, power: float | FloatArray) -> FloatArray:
    """``power * ll`` with ``0 * -inf = -inf`` (a zero-likelihood particle stays dead)."""
    with np.errstate(invalid="ignore"):
        out = power * ll
    result: FloatArray = np.where(np.isfinite(ll), out, -np.inf)
    return result
