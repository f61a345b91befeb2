"""``GarchT``: Bayesian GARCH(1,1) or GJR-GARCH(1,1) with Student-t innovations, online by SMC.

Model (log returns as fractions), ``e_t = r_t - mu``::

    r_t = mu + sqrt(h_t) * eps_t,   eps_t = sqrt((nu-2)/nu) * T_t,  T_t ~ t_nu
    h_t = omega + (alpha + gamma 1[e_{t-1} < 0]) e_{t-1}^2 + beta h_{t-1}

so ``h_t`` is the conditional variance; ``gamma = 0`` unless ``asymmetric``
(GJR: Glosten, Jagannathan & Runkle 1993, the leverage effect). Priors:
``mu ~ N(0, 0.01^2)``, ``log omega ~ N(log 1e-6, 2.5^2)``, ``nu - 2 ~
Gamma(2, rate 0.1)``; ``(alpha, beta, 1 - alpha - beta) ~ Dirichlet(1, 1, 1)``
(uniform on the stationary triangle), or for GJR ``(alpha/2, (alpha+gamma)/2,
beta, 1 - alpha - gamma/2 - beta) ~ Dirichlet(1, 1, 1, 1)`` (uniform on the
stationary region, no prior lean towards either sign of ``gamma``).

Posterior. ``fit`` runs ``runs`` independent likelihood-tempered SMC samplers
of ``particles`` particles each (one vectorized batch), checks split R-hat
and ESS across the runs, and keeps ``particles`` of the pooled particles as
the online posterior. ``update`` is iterated batch importance sampling
(Chopin 2002): each particle carries its conditional variance ``h``; a new
return reweights every particle by its one-step predictive density; when
the weights' ESS falls below ``ess_threshold * particles`` the particles are
resampled and moved by Metropolis steps that target the posterior given the
whole history. Details in docs/models-garch.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter, InvalidState
from ..types import Forecast
from . import _garch_lik as lik
from . import _garch_smc as smc
from . import _sir
from ._garch_family import TQuantileCache, level_measures_block, simulate_paths
from ._online_agent import (
    DEFAULT_PARTICLES,
    HORIZON_DRAWS,
    HORIZON_PATHS,
    OnlineAgent,
    ParticleCost,
)
from .base import Seed, rng_from
from .risk import EmpiricalFamily, check_alphas, risk_measures, risk_measures_block

FloatArray = NDArray[np.float64]

#: GJR (asymmetric) or symmetric GARCH by default; see docs/models-garch.md for the evidence.
ASYMMETRIC_DEFAULT = True
#: Days solved together by forecast_block: more share each numpy call, fewer keep its
#: arrays in the core's cache (measured best at 5-10 for 1,000 particles and two levels).
BLOCK_DAYS = 8


class Particles(NamedTuple):
    """The online posterior as particles (see :meth:`GarchT.posterior_particles`).

    ``theta`` holds ``mu, omega, alpha, beta, nu, gamma`` each ``(S,)``
    (``gamma = 0`` for the symmetric model); ``h_next`` ``(S,)`` is each
    particle's conditional variance of the next return (fraction^2);
    ``weights`` ``(S,)`` are normalized.
    """

    theta: lik.Theta
    h_next: FloatArray
    weights: FloatArray


class GarchT(OnlineAgent):
    """Bayesian GARCH(1,1)-t or GJR-GARCH(1,1)-t with an online SMC (IBIS) posterior.

    Parameters
    ----------
    particles : int
        Particles in the online posterior, and per run in ``fit`` (>= 100;
        default ``DEFAULT_PARTICLES`` = 500).
    runs : int
        Independent SMC runs in ``fit``, for split R-hat across runs (>= 2).
    ess_threshold : float
        Resample-move when the weights' ESS falls below this fraction of
        ``particles`` (0 < value < 1).
    asymmetric : bool
        GJR-GARCH: negative shocks raise the variance by ``alpha + gamma``,
        positive ones by ``alpha`` (the leverage effect of equity returns).
    """

    name = "GarchT"
    #: ms of a backtest day at h = 1 (0.7 at 1,000 particles; 0.52 at 500, where the row
    #: measured 1.03x StudentT's CPU: 1.62 s against 1.57 s), a 10-day forecast.
    cost_hint = ParticleCost(0.34, 0.36, 60.0)
    block_days = BLOCK_DAYS
    _theta: lik.Theta

    def __init__(self, particles: int = DEFAULT_PARTICLES, runs: int = 4,
                 ess_threshold: float = 0.5, asymmetric: bool = ASYMMETRIC_DEFAULT) -> None:
        super().__init__(particles, runs, ess_threshold)
        if not isinstance(asymmetric, (bool, np.bool_)):
            raise InvalidParameter(f"asymmetric must be True or False, not {asymmetric!r}")
        self.asymmetric = bool(asymmetric)

    # --- fitting -----------------------------------------------------------

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Posterior given ``returns`` (oldest first) by tempered SMC from the prior."""
        r = self._history(returns)
        rng = np.random.default_rng(rng_from(seed).integers(0, 2**63 - 1))
        start = time.perf_counter()
        res = smc.tempered_fit(r, self.runs, self.particles, rng, asymmetric=self.asymmetric)
        draws = lik.from_unconstrained(res.cloud.u).as_dict(self.asymmetric)
        total = self.runs * self.particles
        keep = smc.systematic_resample(np.ones(total), self.particles, rng.uniform())
        self._install(r, res.cloud.take(keep), np.zeros(self.particles), rng)
        self._finish_fit({k: v.reshape(self.runs, self.particles) for k, v in draws.items()},
                         res.acceptance, start)
        return self

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Warm re-anchoring on a trailing window: the posterior given ``returns`` only.

        Targets the same posterior as ``fit(returns)``, ``p(theta) p(returns |
        theta)``. The current particles (which target ``p(theta) p(history |
        theta)``, the history being what this agent has absorbed) are
        reweighted by ``p(returns | theta) / p(history | theta)`` - one
        vectorized likelihood pass - and, when the weights' ESS falls below
        ``ess_threshold * particles``, resampled and moved by Metropolis
        steps targeting the window posterior. The conditional variances are
        recomputed on the window. If the reweighting leaves fewer than
        ``REFIT_MIN_ESS * particles`` effective particles (the window is too
        different from the history) it falls back to ``fit``. Costs a few
        likelihood passes over the window: tens of milliseconds for 1,000
        particles and 1,000 returns.
        """
        if not self._fitted:
            return self.fit(returns, seed=seed)
        r = self._history(returns)
        rng = np.random.default_rng(rng_from(seed).integers(0, 2**63 - 1))
        win = smc.evaluate(r, self._cloud.u)
        logw = _sir.reweighted(self._logw, win.ll, self._cloud.ll)
        route = self._route(logw)
        if route in ("prior", "bridge"):  # no bridge for this agent: a fit from the prior
            return self.fit(returns, seed=rng)
        if route == "reweight":
            self._install(r, win, logw, rng)  # weights still healthy: as IBIS would
            return self
        cloud, acc = smc.rejuvenate(r, win, logw, rng)
        self._install(r, cloud, np.zeros(self.particles), rng)
        self._acceptance = acc
        return self

    def _install(
        self, r: FloatArray, cloud: smc.Cloud, logw: FloatArray, rng: np.random.Generator
    ) -> None:
        self._start_history(r)
        # the backcast reads the first returns only, which updates never change
        self._backcast = lik.backcast_moments(r)
        self._rng = rng
        self._set_cloud(cloud, logw)

    def _set_cloud(self, cloud: smc.Cloud, logw: FloatArray) -> None:
        # A warm refit that needs no move keeps the particles (the same array): their
        # parameters, t constants and cached quantiles stay valid.
        previous: smc.Cloud | None = getattr(self, "_cloud", None)
        kept = previous is not None and cloud.u is previous.u
        self._cloud = cloud
        self._logw = logw - np.max(logw)
        if not kept:
            self._theta = lik.from_unconstrained(cloud.u)
            self._alpha_neg = self._theta.alpha_neg  # read by every update
            self._consts = lik.t_constants(self._theta.nu)
            self._quantiles = TQuantileCache(self._theta.nu)

    # --- online ----------------------------------------------------------------

    def update(self, r: float) -> float:
        """Absorb one return by IBIS; the log predictive density of ``r`` before absorbing it.

        Raises
        ------
        InvalidReturns
            ``r`` is not a finite return within bounds, or every particle gives it zero
            density (:meth:`._online_agent.OnlineAgent._zero_density`); the agent is unchanged.
        """
        x = self._check_return(r)
        self._require_fitted()
        th, h = self._theta, self._cloud.h
        e = x - th.mu
        ee = e * e
        const, half_nu1, inv_nm2 = self._consts
        step = const - 0.5 * np.log(h) - half_nu1 * np.log1p(ee * inv_nm2 / h)
        logw, w, w_sum, pred = self._reweigh(x, step)
        # lik.next_variance(th, e, h), its alpha + gamma and e * e formed once
        h_next = th.omega + np.where(e < 0, self._alpha_neg, th.alpha) * ee + th.beta * h
        cloud = smc.Cloud(self._cloud.u, self._cloud.lp, self._cloud.ll + step, h_next)
        self._append_return(x)
        self._cloud, self._logw = cloud, logw
        if self._keep_reweighed(logw, w, w_sum) < self.ess_threshold * self.particles:
            moved, self._acceptance = smc.rejuvenate(self._returns, cloud, self._logw, self._rng)
            self._set_cloud(moved, np.zeros(self.particles))
        return pred

    def _particle_set(self) -> tuple[lik.Theta, TQuantileCache]:
        return self._theta, self._quantiles

    def _day_state(self) -> tuple[FloatArray, FloatArray]:
        return self._cloud.h, self._weight_memo()[0]

    def _forecast_days(self, th: lik.Theta, cache: TQuantileCache, hs: list[FloatArray],
                       weights: list[FloatArray], levels: tuple[float, ...]) -> list[Forecast]:
        """Horizon-1 forecasts from one particle set at each day's variances and normalized
        weights (at most ``block_days`` days: :meth:`OnlineAgent._horizon_one_block` cuts
        them)."""
        w = np.stack(weights)  # _weights(), day by day
        scale = np.sqrt(np.stack(hs) * (th.nu - 2.0) / th.nu)
        norm = w / w.sum(axis=1, keepdims=True)  # as the family normalizes them again
        m = level_measures_block(cache, th.mu, scale, norm, levels)
        days = risk_measures_block(levels, m.var, m.es, m.cond_var, m.cond_es, norm)
        for d in m.redo:
            days[d] = risk_measures(cache.predictive(th.mu, scale[d], w[d]), levels)
        return [Forecast(model=self.name, horizon=1, levels=day) for day in days]

    # --- the predictive ----------------------------------------------------------

    def next_moments(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """One-step-ahead law of ``r_{n+1}`` per particle: ``loc + scale * t(df)``.

        Returns
        -------
        loc, scale, df, weights : each ``(S,)``
            ``loc = mu`` (fraction), ``scale = sqrt(h (nu-2)/nu)`` (fraction),
            ``df = nu``, and normalized posterior weights.
        """
        self._require_fitted()
        th = self._theta
        scale = np.sqrt(self._cloud.h * (th.nu - 2.0) / th.nu)
        return th.mu.copy(), scale, th.nu.copy(), self._weights()

    def posterior_particles(self) -> Particles:
        """The particles behind the one-step predictive: parameters, next variance, weights.

        Copies: changing them does not change the agent. For simulating the
        recursion forward (horizons > 1), as :class:`GarchEVT` does.
        """
        self._require_fitted()
        th = lik.Theta(*(np.array(p, dtype=float) for p in self._theta))
        return Particles(th, self._cloud.h.copy(), self._weights())

    def standardized_residuals(self) -> FloatArray:
        """``z_t = (r_t - mu) / sqrt(h_t)`` ``(n,)`` over the history, at the posterior mean.

        Unit variance under the model (``eps_t``, not the standard t). The
        parameters are the posterior means of the current particles.
        """
        mu, h = self._mean_variance_path()
        result: FloatArray = (self._returns - mu) / np.sqrt(h[:-1])
        return result

    def newest_residual(self) -> float:
        """The last of :meth:`standardized_residuals` (the same number), without the others."""
        mu, h = self._mean_variance_path()
        return float((self._returns[-1] - mu) / np.sqrt(h[-2]))

    def _mean_variance_path(self) -> tuple[float, FloatArray]:
        """``mu`` and the variances ``h_1..h_{n+1}`` at the posterior-mean parameters."""
        self._require_fitted()
        w = self._weights()
        th = self._theta
        mu, omega, alpha, beta, gamma = (float(w @ p) for p in (
            th.mu, th.omega, th.alpha, th.beta, th.gamma))
        return mu, lik.variance_path(self._returns, mu, omega, alpha, beta, gamma,
                                     moments=self._backcast)

    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast:
        """VaR/ES of the next ``horizon`` returns' sum, with 90% credible intervals.

        Horizon 1 is exact over the particles (a Student-t mixture); longer
        horizons simulate ``HORIZON_PATHS`` paths from each of
        ``HORIZON_DRAWS`` particles (systematically resampled) using ``seed``.
        """
        levels = check_alphas(alphas)
        h = self._check_horizon(horizon)
        self._require_fitted()
        if h == 1:  # next_moments() without its copies
            th = self._theta
            scale = np.sqrt(self._cloud.h * (th.nu - 2.0) / th.nu)
            family = self._quantiles.predictive(th.mu, scale, self._weights())
        else:
            rng = rng_from(seed)
            idx = smc.systematic_resample(self._weights(), HORIZON_DRAWS, rng.uniform())
            th = self._theta.take(idx)
            paths = simulate_paths(th, self._cloud.h[idx], h, HORIZON_PATHS, rng)
            family = EmpiricalFamily(paths)  # type: ignore[assignment]
        return Forecast(model=self.name, horizon=h, levels=risk_measures(family, levels))

    # --- diagnostics ---------------------------------------------------------------

    def _weights_ess(self) -> float:
        """The weights' ESS by :func:`._garch_smc.ess` (the rule its update's resample-move
        compares)."""
        return smc.ess(self._logw)

    def _reweighed_ess(self, w: FloatArray, e: FloatArray, total: float) -> float:
        """An update's ESS by :func:`._garch_smc.ess`'s rule (its diagnostics'), ``(sum
        e)^2 / (e @ e)``, from the exps ``e`` :meth:`_reweigh` formed (``logw``'s largest
        entry is exactly 0, so they are ``smc.ess``'s)."""
        return total * total / float(e @ e)

    # --- generative side ---------------------------------------------------------------

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, FloatArray]:
        """``n`` prior draws of ``mu, omega, alpha, beta, nu`` (and ``gamma`` if asymmetric)."""
        return lik.sample_prior(int(n), rng_from(seed), self.asymmetric).as_dict(self.asymmetric)

    def simulate(self, params: Mapping[str, float], n: int, *, seed: Seed = None) -> FloatArray:
        """``n`` returns from (GJR-)GARCH(1,1)-t at ``params``, started at the stationary variance.

        ``gamma`` (default 0) is read only when the model is asymmetric.
        """
        p = {k: float(params[k]) for k in lik.PARAMS}
        p["gamma"] = float(params.get("gamma", 0.0)) if self.asymmetric else 0.0
        th = lik.theta(**p)
        if not bool(lik.is_valid(th)[0]):
            raise InvalidParameter(
                "GARCH-t parameters need omega > 0, alpha, alpha + gamma, beta >= 0, "
                f"alpha + gamma / 2 + beta < 1 and nu > 2; got {p}"
            )
        rng = rng_from(seed)
        eps = rng.standard_t(p["nu"], n) * np.sqrt((p["nu"] - 2.0) / p["nu"])
        out = np.empty(n)
        h = p["omega"] / (1.0 - float(th.persistence[0]))
        a_pos, a_neg = p["alpha"], p["alpha"] + p["gamma"]
        for t in range(n):
            out[t] = p["mu"] + np.sqrt(h) * eps[t]
            e = out[t] - p["mu"]
            h = p["omega"] + (a_neg if e < 0 else a_pos) * e * e + p["beta"] * h
        return out

    def posterior_draws(self) -> dict[str, FloatArray]:
        """The particles resampled to equal weights (systematic, deterministic offset 0.5)."""
        self._require_fitted()
        idx = smc.systematic_resample(self._weights(), self.particles, 0.5)
        return self._theta.take(idx).as_dict(self.asymmetric)

    # --- state -------------------------------------------------------------------------

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        scalars = self._smc_scalars()
        c = self._cloud
        arrays = {"history": self.history, "u": c.u, "lp": c.lp, "ll": c.ll, "h": c.h,
                  "logw": self._logw}
        return scalars, arrays

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            u = np.asarray(arrays["u"], dtype=float)
            vecs = [np.asarray(arrays[k], dtype=float) for k in ("lp", "ll", "h", "logw")]
            hist = np.asarray(arrays["history"], dtype=float)
            rng, fit_diag, acceptance, seconds = self._read_smc_scalars(scalars)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"GarchT state is incomplete or malformed: {exc}") from exc
        s = self.particles
        if u.shape != (s, lik.dim(self.asymmetric)) or any(
            v.shape != (s,) for v in vecs
        ) or hist.ndim != 1 or hist.size < self.min_observations:
            raise InvalidState(f"GarchT state arrays do not match {s} particles")
        if not (np.all(np.isfinite(u)) and np.all(np.isfinite(hist)) and np.all(vecs[2] > 0)):
            raise InvalidState("GarchT state holds non-finite particles or variances")
        lp, ll, h, logw = vecs
        self._check_log_weights(logw)
        self._install(hist, smc.Cloud(u, lp, ll, h), logw, rng)
        self._restore(logw, fit_diag, acceptance, seconds)
