"""StudentT: iid location-scale Student-t returns, NUTS at fit, particles online.

Model: ``r_t = mu + sigma * T_t`` with ``T_t`` iid Student-t(``nu``) and priors
on the daily-return scale (fractions)::

    mu ~ Normal(0, 0.01)      sigma ~ HalfNormal(0.05)      nu - 2 ~ Gamma(2, rate 0.1)

``fit`` draws the posterior with NUTS (numpyro, 4 vectorized chains, the
compiled sampler reused across fits); the draws become equally weighted
particles. ``update`` is sequential importance resampling: each particle's
weight is multiplied by the t density of the new return; when the ESS falls
below ``ess_threshold * S`` the particles are resampled (systematic) and
rejuvenated by Metropolis-Hastings on the full iid likelihood of the history
(independent proposals from a t fitted to the cloud, as in Chopin's IBIS;
random-walk steps if those are rarely accepted). ``refit(window)``
warm-starts from the current particles: reweighting by the window-to-history
likelihood ratio, with adaptive tempering, resampling and moves when that
leaves too few effective particles, instead of a fresh NUTS run. See docs/models-student-t-evt.md.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ..errors import InvalidParameter, InvalidState
from ..types import Diagnostics, Forecast, RiskMeasure
from . import _sir
from ._nuts_student_t import MU_PRIOR_SD, NU_RATE, NU_SHAPE, SIGMA_PRIOR_SD, run_nuts
from ._sir_tmixture import MixtureLevel, mixture_level, risk_measure
from .base import Agent, Seed, rng_from
from .diagnostics import summarize
from .risk import EmpiricalFamily, check_alphas, risk_measures

FloatArray = NDArray[np.float64]


def _own(seed: Seed) -> np.random.Generator:
    """A generator the agent owns (its state is saved), seeded from ``seed``."""
    return np.random.default_rng(int(rng_from(seed).integers(0, 2**63 - 1)))


PARAMS = ("mu", "sigma", "nu")
#: Posterior samplers for :meth:`StudentT.fit`.
SAMPLERS = ("nuts", "smc")
#: Elements per block when evaluating the likelihood: a block of particles times
#: observations small enough to stay in cache (2-3x faster than one S x n pass).
_BLOCK = 1 << 16
#: Particles and simulated paths per particle for horizon > 1 (enough paths that
#: each particle's 99% VaR rests on ~40 tail draws).
_HORIZON_PARTICLES, _HORIZON_PATHS = 128, 4000
#: Below this acceptance the independent proposal is too far from the target and
#: rejuvenation switches to random-walk steps.
_LEAST_INDEPENDENT_ACCEPTANCE = 0.2
#: A refit whose moves leave fewer particles moved than this falls back to NUTS.
_LEAST_MOVED = 0.3


def _log_const(sigma: FloatArray, nu: FloatArray) -> FloatArray:
    """Per-particle normalizing constant of the t log density ``(S,)``."""
    return np.asarray(special.gammaln(0.5 * (nu + 1.0)) - special.gammaln(0.5 * nu)
                      - 0.5 * np.log(nu * np.pi) - np.log(sigma))


def t_loglik(mu: FloatArray, sigma: FloatArray, nu: FloatArray, y: FloatArray) -> FloatArray:
    """Iid Student-t log-likelihood of returns ``y (n,)`` for each particle ``(S,)``.

    ``log(1 + z^2/nu)`` is taken as ``log`` of ``1 + (z / sqrt(nu))^2``: numpy's
    ``log`` is vectorized and ``log1p`` is not, and the absolute error (~1e-16 a
    term) is far below anything a likelihood ratio can notice.
    """
    total = np.empty(mu.shape)
    if y.size == 0:
        total[:] = 0.0
        return total
    rows = max(1, _BLOCK // y.size)
    inv = 1.0 / (sigma * np.sqrt(nu))
    buf = np.empty((min(rows, mu.size), y.size))
    for start in range(0, mu.size, rows):
        stop = min(start + rows, mu.size)
        b = buf[:stop - start]
        np.subtract(y[None, :], mu[start:stop, None], out=b)
        b *= inv[start:stop, None]
        np.square(b, out=b)
        b += 1.0
        np.log(b, out=b)
        total[start:stop] = b.sum(axis=1)
    return np.asarray(y.size * _log_const(sigma, nu) - 0.5 * (nu + 1.0) * total)


def _dropped_prefix(history: FloatArray, window: FloatArray) -> FloatArray | None:
    """The returns a refit drops when ``window`` is the tail of ``history`` (else None)."""
    k = history.size - window.size
    if k < 0 or not np.array_equal(history[k:], window):
        return None
    return history[:k]


def _constrain(theta: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    return theta[:, 0], np.exp(theta[:, 1]), 2.0 + np.exp(theta[:, 2])


def log_prior(theta: FloatArray) -> FloatArray:
    """Log prior density of unconstrained ``(mu, log sigma, log(nu - 2))`` ``(S, 3)``.

    Includes the Jacobians ``sigma`` and ``nu - 2`` of the log transforms.
    """
    mu, sigma, nu = _constrain(theta)
    x = nu - 2.0
    return np.asarray(
        -0.5 * (mu / MU_PRIOR_SD) ** 2 - 0.5 * (sigma / SIGMA_PRIOR_SD) ** 2 + theta[:, 1]
        + NU_SHAPE * np.log(NU_RATE) - special.gammaln(NU_SHAPE)
        + NU_SHAPE * np.log(x) - NU_RATE * x
        + np.log(2.0) - np.log(2.0 * np.pi * MU_PRIOR_SD * SIGMA_PRIOR_SD)
    )


class StudentT(Agent):
    """Iid Student-t returns with unknown location, scale and degrees of freedom.

    Parameters
    ----------
    num_chains, num_warmup, num_samples : int
        NUTS settings. All ``num_chains * num_samples`` draws enter the R-hat
        and ESS checks; evenly thinned to at most ``particles`` they become
        the particles (enough draws that split R-hat's own noise stays well
        under 1.01, few enough particles that rejuvenation stays cheap).
    particles : int
        Most particles kept for the online posterior.
    ess_threshold : float in (0, 1)
        Resample and rejuvenate when the particle ESS falls below this fraction.
    sampler : {"nuts", "smc"}
        How :meth:`fit` samples the posterior: NUTS (compiled once per process
        and data-length bucket, R-hat and ESS checked) or tempered SMC from the
        prior with the refit's moves (numpy only, no compilation).
    moves : int
        Most Metropolis-Hastings sweeps per rejuvenation (independent proposals
        stop earlier, once 95% of the particles have moved).
    """

    name = "StudentT"
    min_observations = 30

    def __init__(self, num_chains: int = 4, num_warmup: int = 500, num_samples: int = 1000,
                 particles: int = 2000, ess_threshold: float = 0.5, moves: int = 5,
                 sampler: str = "nuts") -> None:
        for label, value, least in (("num_chains", num_chains, 1), ("num_warmup", num_warmup, 10),
                                    ("num_samples", num_samples, 10), ("particles", particles, 10),
                                    ("moves", moves, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InvalidParameter(f"{label} must be a whole number >= {least}, not {value!r}")
        if not isinstance(ess_threshold, (int, float)) or not 0.0 < ess_threshold < 1.0:
            raise InvalidParameter(f"ess_threshold must lie in (0, 1), not {ess_threshold!r}")
        if sampler not in SAMPLERS:
            raise InvalidParameter(f"sampler must be one of {SAMPLERS}, not {sampler!r}")
        self.num_chains, self.num_warmup, self.num_samples = num_chains, num_warmup, num_samples
        self.particles = particles
        self.ess_threshold, self.moves = float(ess_threshold), moves
        self.sampler = sampler
        self._levels: dict[float, MixtureLevel] = {}
        #: last one-day VaR per level: a start for the next level's nodes (a cache only)
        self._last_var: dict[float, float] = {}

    # --- fitting ----------------------------------------------------------

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Posterior from a history of log returns ``(n,)``, oldest first.

        ``sampler="nuts"``: NUTS, R-hat and ESS checked. ``sampler="smc"``: a
        tempered SMC sampler from the prior (no compilation; NUTS if its moves
        cannot keep the particles apart).
        """
        y = self._history(returns)
        rng = _own(seed)
        if self.sampler == "smc" and self._fit_smc(y, rng):
            return self
        return self._fit_nuts(y, rng)

    def _fit_nuts(self, y: FloatArray, rng: np.random.Generator) -> Self:
        started = time.perf_counter()
        draws = run_nuts(y, seed=int(rng.integers(0, 2**31 - 1)), num_warmup=self.num_warmup,
                         num_samples=self.num_samples, num_chains=self.num_chains)
        rhat, ess_bulk, ess_tail = summarize({"mu": draws.mu, "sigma": draws.sigma,
                                              "nu": draws.nu})
        thin = -(-draws.mu.size // self.particles)  # ceil: keep at most `particles`
        mu, sigma, nu = (d[:, ::thin].ravel() for d in (draws.mu, draws.sigma, draws.nu))
        theta = np.column_stack([mu, np.log(sigma), np.log(nu - 2.0)])
        mu, sigma, nu = _constrain(theta)
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

        ``particles`` prior draws; each step raises the likelihood's power as
        far as keeps the ESS at ``ess_threshold`` (bisection), resamples and
        rejuvenates with the refit's MH moves on ``prior * L(y)^g``, until
        ``g = 1``. Returns False (nothing installed) when a step's moves leave
        fewer than 30% of the particles moved, or after 200 steps.
        """
        started = time.perf_counter()
        prior = self.sample_prior(self.particles, seed=rng)
        theta = np.column_stack([prior["mu"], np.log(prior["sigma"]),
                                 np.log(prior["nu"] - 2.0)])
        ll = t_loglik(*_constrain(theta), y)
        logw, gamma, steps, moved = np.zeros(theta.shape[0]), 0.0, 0, 1.0
        target, acceptance = self.ess_threshold * theta.shape[0], 0.0
        while gamma < 1.0 and steps < 200 and moved >= _LEAST_MOVED:
            step = _sir.next_temperature(logw, ll, gamma, target)
            logw = logw + (step - gamma) * ll
            gamma = step
            theta, rows, acceptance, moved = self._rejuvenate(
                theta, logw, ll[None, :], (y,), np.array([gamma]), rng)
            ll, logw = rows[0], np.zeros(theta.shape[0])
            steps += 1
        if gamma < 1.0 or moved < _LEAST_MOVED:
            return False
        self._install(theta, logw, ll, y, rng)
        self._fit_info = {"method": "smc", "rhat": {}, "ess_bulk": {}, "ess_tail": {},
                          "divergences": 0, "draws": int(theta.shape[0]),
                          "seconds": time.perf_counter() - started, "tempering_steps": steps,
                          "moved": moved}
        self._acceptance = acceptance
        self._fitted = True
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
        Falls back to :meth:`fit` (NUTS) when not fitted, when the bridge
        stalls, or when the moves cannot spread the particles.
        """
        if not self._fitted:
            return self.fit(returns, seed=seed)
        y = self._history(returns)
        rng = copy.deepcopy(self._rng) if seed is None else _own(seed)
        started = time.perf_counter()
        theta, logw = self._theta, self._logw
        dropped = _dropped_prefix(self._hist, y)
        if dropped is not None:  # history = dropped + window: target L(y) L(dropped)^(1-g)
            ll_drop = t_loglik(*_constrain(theta), dropped)
            rows, data = np.vstack([self._loglik - ll_drop, ll_drop]), (y, dropped)

            def powers(g: float) -> FloatArray:
                return np.array([1.0, 1.0 - g])

            def increment(rows: FloatArray) -> FloatArray:
                return np.asarray(-rows[1])
        else:  # unrelated window: target L(history)^(1-g) L(y)^g
            rows = np.vstack([t_loglik(*_constrain(theta), y), self._loglik])
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
            return self.fit(y, seed=rng)  # afresh (the SMC sampler falls back to NUTS)
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
        self._mu, self._sigma, self._nu = _constrain(theta)
        self._const = _log_const(self._sigma, self._nu)
        self._levels = {}

    def _rejuvenate(self, theta: FloatArray, logw: FloatArray, loglik: FloatArray,
                    data: tuple[FloatArray, ...], powers: FloatArray,
                    rng: np.random.Generator) -> tuple[FloatArray, FloatArray, float, float]:
        """Systematic resample, then Metropolis-Hastings sweeps.

        The target is ``prior * prod_k L(data_k) ** powers_k``; ``loglik (k, S)``
        holds each particle's ``log L(data_k)`` and is carried along. Independent
        MH from a t fitted to the weighted cloud first (up to ``moves`` sweeps,
        fewer once 95% of the particles have moved); if its acceptance is too
        low for that (a cloud far from Gaussian), random-walk sweeps instead.
        Returns the particles, their likelihood rows, the acceptance rate and
        the fraction of particles moved.
        """
        w = _sir.normalized_weights(logw)
        cov = _sir.weighted_covariance(theta, w)
        mean = w @ theta
        idx = _sir.systematic_resample(w, float(rng.random()))
        theta, loglik = theta[idx], loglik[:, idx]

        def log_target(th: FloatArray) -> tuple[FloatArray, FloatArray]:
            # a data set with power 0 does not enter the target: skip its likelihood
            # (its row is then not carried, and the caller must not use it)
            parts = np.vstack([t_loglik(*_constrain(th), d) if p != 0 else np.zeros(th.shape[0])
                               for d, p in zip(data, powers, strict=True)])
            return log_prior(th) + powers @ parts, parts

        current = (log_prior(theta) + powers @ loglik, loglik)
        moved_theta, lt, moved_ll, rate, moved = _sir.independent_moves(
            theta, log_target, current, rng, self.moves, mean, cov)
        if rate >= _LEAST_INDEPENDENT_ACCEPTANCE:
            return moved_theta, moved_ll, rate, moved
        # a proposal far from the target: local random-walk steps from where it got
        start = theta.copy()
        theta, _, loglik, rate = _sir.random_walk_moves(
            moved_theta, log_target, (lt, moved_ll), rng, self.moves,
            (2.38**2 / theta.shape[1]) * cov)
        moved = float(np.mean(np.any(theta != start, axis=1)))
        return theta, loglik, rate, moved

    # --- online -----------------------------------------------------------

    def update(self, r: float) -> float:
        """Reweight the particles by the t density of ``r``; return ``log p(r | past)``."""
        self._require_fitted()
        value = self._check_return(r)
        z = (value - self._mu) / self._sigma
        lp = self._const - 0.5 * (self._nu + 1.0) * np.log1p(z * z / self._nu)
        logw, loglik = self._logw + lp, self._loglik + lp
        top = logw.max()
        lpd = float(top + np.log(np.exp(logw - top).sum()) - np.log(np.exp(self._logw).sum()))
        history = np.append(self._hist, value)
        if _sir.ess(logw) >= self.ess_threshold * logw.size:
            self._logw, self._loglik, self._hist = logw - logw.max(), loglik, history
            return lpd
        rng = copy.deepcopy(self._rng)
        theta, aux, rate, _ = self._rejuvenate(self._theta, logw, loglik[None, :], (history,),
                                               np.ones(1), rng)
        self._install(theta, np.zeros(theta.shape[0]), aux[0], history, rng)
        self._acceptance = rate
        return lpd

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
        cached between rejuvenations). ``horizon > 1`` simulates, for 128
        systematically resampled particles, 4000 sums of ``horizon`` iid t draws
        each; ``seed=None`` uses a copy of the agent's generator, so the same
        state gives the same forecast.
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
        total = np.zeros((idx.size, _HORIZON_PATHS))
        for _ in range(h):  # memory stays (particles, paths) whatever the horizon
            total += rng.standard_t(nu[:, None], size=total.shape)
        paths = h * mu[:, None] + sigma[:, None] * total
        return Forecast(self.name, h, risk_measures(EmpiricalFamily(paths), levels))

    # --- diagnostics, generative side, state ------------------------------------

    def _diagnostics(self) -> Diagnostics:
        info = self._fit_info
        return Diagnostics(method=f"{info['method']}+sir", rhat=dict(info["rhat"]),
                           ess_bulk=dict(info["ess_bulk"]), ess_tail=dict(info["ess_tail"]),
                           ess=_sir.ess(self._logw), acceptance=self._acceptance,
                           draws=int(info["draws"]),
                           seconds=float(info["seconds"]))

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, FloatArray]:
        """``n`` prior draws of ``mu``, ``sigma``, ``nu``."""
        rng = rng_from(seed)
        return {"mu": rng.normal(0.0, MU_PRIOR_SD, n),
                "sigma": np.abs(rng.normal(0.0, SIGMA_PRIOR_SD, n)),
                "nu": 2.0 + rng.gamma(NU_SHAPE, 1.0 / NU_RATE, n)}

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
