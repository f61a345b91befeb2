"""``HarArch``: Bayesian HAR-ARCH with leverage and skewed-t innovations, online by SMC.

Model (log returns as fractions), ``e_t = r_t - mu``::

    r_t = mu + sqrt(h_t) z_t,     z_t ~ Hansen's skewed t(nu, lam), mean 0, variance 1
    h_t = omega + b1 e_{t-1}^2 + b5 mean(e^2, 5 days) + b22 mean(e^2, 22 days)
                + g1, g5, g22 times the same of e^2 1[e < 0]

the heterogeneous ARCH of Müller et al. (1997) and Corsi (2009) on daily
squared returns, with leverage at each horizon (Corsi & Renò 2012). Unlike
GJR-GARCH (``GarchT``, ``GarchEVT``), whose variance is an exponentially
decaying memory of every past shock, this one forgets a shock completely
after 22 days and weighs the last week and month as blocks: a different
error pattern, which is what a combination needs. Priors and the likelihood
are in :mod:`._har_arch_lik`; the screening that chose this family and its
backtests are in docs/models-har-arch.md.

Posterior. ``fit`` runs ``runs`` tempered SMC samplers from a start proposal
at the posterior mode (:mod:`._har_arch_smc`), checks split R-hat and ESS
across runs and keeps ``particles`` of the pooled particles. ``update`` is
iterated batch importance sampling (Chopin 2002): each particle carries the
next return's variance; a return reweights the particles by its predictive
density, and when the ESS falls below ``ess_threshold * particles`` they are
resampled and moved by Metropolis steps targeting the posterior given the
whole history. ``refit`` warm-starts from the current particles.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter, InvalidReturns, InvalidState
from ..types import Forecast
from . import _har_arch_lik as lik
from . import _har_arch_smc as smc
from . import _sir
from ._location_scale import LocationScaleFamily
from ._online_agent import HORIZON_DRAWS, HORIZON_PATHS, OnlineAgent
from .base import Seed, check_whole, rng_from
from .risk import EmpiricalFamily, LevelMeasures, check_alphas, mixture_var, risk_measures

FloatArray = NDArray[np.float64]

#: Returns simulate() discards before the ones it gives (the lags start at the
#: unconditional variance).
BURN_IN = 250
#: Most Newton steps of the one-step mixture VaR (it takes 3-6).
MAX_NEWTON = 30


class HansenSkewTFamily(LocationScaleFamily):
    """Losses ``L = -(mu_s + s_s z)``, ``z`` Hansen's skewed t per particle (a risk.Family).

    Hansen's (1994) unit-variance skewed t (``nu``, ``lam``; constants in
    ``st``), not BetaSkewTEgarch's Fernandez-Steel skew-t
    (:class:`._score_driven_lik.FernandezSteelSkewTFamily`); the
    location-scale plumbing both share is :class:`._location_scale.LocationScaleFamily`.
    ``standard`` caches, per confidence level, each particle's standardized
    quantile ``q_s`` of ``z`` at ``1 - alpha`` and tail mean ``E[z | z < q_s]``:
    they depend on ``(nu, lam)`` only, so an agent keeps them while its
    particles stay the same (between resample-moves).
    """

    def __init__(self, mu: FloatArray, scale: FloatArray, st: lik.SkewT,
                 weights: FloatArray,
                 standard: dict[float, tuple[FloatArray, FloatArray]] | None = None) -> None:
        super().__init__(mu, scale, weights)
        self.st = st
        self._standard = {} if standard is None else standard

    def standard(self, alpha: float) -> tuple[FloatArray, FloatArray]:
        """``(q_s, E[z | z < q_s])`` ``(S,)`` at level ``alpha`` (cached)."""
        hit = self._standard.get(alpha)
        if hit is None:
            q = lik.skew_t_ppf(1.0 - alpha, self.st)
            _, part = lik.skew_t_cdf_and_partial(q, self.st)
            hit = (q, part / (1.0 - alpha))
            self._standard[alpha] = hit
        return hit

    def level_measures(self, alphas: Sequence[float]) -> tuple[LevelMeasures, ...]:
        """Point and per-particle VaR/ES at each level (see risk.LevelMeasures)."""
        out = []
        for alpha in alphas:
            q, m = self.standard(alpha)
            cond_var = -self.loc - self.scale * q
            cond_es = -self.loc - self.scale * m
            v = self.mixture_var(alpha)
            if v is None:
                v = mixture_var(_Generic(self), alpha, cond_var)
            es = v + float(self._weights @ self.excess(v)) / (1.0 - alpha)
            out.append(LevelMeasures(float(v), float(es), cond_var, cond_es))
        return tuple(out)

    def level_quantile(self, alpha: float) -> FloatArray:
        return self.standard(alpha)[0]

    def _cdf(self, z: FloatArray) -> FloatArray:
        return lik.skew_t_cdf(z, self.st)

    def _cdf_and_partial(self, z: FloatArray) -> tuple[FloatArray, FloatArray]:
        return lik.skew_t_cdf_and_partial(z, self.st)

    def mixture_var(self, alpha: float) -> float | None:
        """The mixture's VaR by Newton's method on its tail from the mean per-particle VaR.

        The tail ``sum_s w_s P_s(L > v)`` falls smoothly in ``v`` with slope
        minus the mixture density, so a few steps reach ``1e-12`` relative;
        None (the generic bracketed root) if they do not.
        """
        w, target = self._weights, 1.0 - alpha
        v = float(w @ self.var(alpha))
        for _ in range(MAX_NEWTON):
            c = (-v - self.loc) / self.scale
            tail = float(w @ lik.skew_t_cdf(c, self.st))
            dens = float(w @ (np.exp(lik.skew_t_logpdf(c, self.st)) / self.scale))
            if not (dens > 0 and np.isfinite(tail)):
                return None
            step = (tail - target) / dens
            v += step
            if abs(step) <= 1e-12 * max(1e-3, abs(v)):
                return v
        return None


class _Generic:
    """A family's plain Family methods, without its shortcuts (for the bracketed root)."""

    def __init__(self, family: HansenSkewTFamily) -> None:
        self.weights, self.var, self.tail = family.weights, family.var, family.tail
        self.excess = family.excess


def simulate_paths(th: lik.Theta, tail: FloatArray, steps: int,
                   rng: np.random.Generator) -> FloatArray:
    """Returns ``(P, steps)`` from the model at particles ``th`` ``(P,)``.

    ``tail`` ``(P, LAGS)`` are each path's last ``LAGS`` returns before the first.
    """
    p = th.mu.size
    e = tail - th.mu[:, None]
    e2 = np.concatenate([e * e, np.empty((p, steps))], axis=1)
    n2 = np.concatenate([np.where(e < 0, e * e, 0.0), np.empty((p, steps))], axis=1)
    st = lik.skew_t(th.nu, th.lam)
    sc = np.sqrt((th.nu - 2) / th.nu)
    out = np.empty((p, steps))
    k = lik.LAGS
    for t in range(steps):
        j = k + t
        h = (th.omega + th.b1 * e2[:, j - 1] + th.b5 * e2[:, j - 5 : j].mean(axis=1)
             + th.b22 * e2[:, j - 22 : j].mean(axis=1) + th.g1 * n2[:, j - 1]
             + th.g5 * n2[:, j - 5 : j].mean(axis=1) + th.g22 * n2[:, j - 22 : j].mean(axis=1))
        h = np.maximum(h, lik.H_FLOOR)
        left = rng.random(p) < 0.5 * (1.0 - th.lam)
        mag = np.abs(rng.standard_t(th.nu)) * sc / st.b
        z = st.mode_point + np.where(left, -(1.0 - th.lam) * mag, (1.0 + th.lam) * mag)
        eps = np.sqrt(h) * z
        out[:, t] = th.mu + eps
        e2[:, j] = eps * eps
        n2[:, j] = np.where(eps < 0, eps * eps, 0.0)
    return out


class HarArch(OnlineAgent):
    """Bayesian HAR-ARCH (1, 5, 22 days, with leverage) with skewed-t innovations.

    Parameters
    ----------
    particles : int
        Particles in the online posterior, and per run in ``fit`` (>= 100).
    runs : int
        Independent SMC runs in ``fit``, for split R-hat across runs (>= 2).
    ess_threshold : float
        Resample-move when the weights' ESS falls below this fraction of
        ``particles``; also the ESS each tempering step keeps (0 < value < 1).
    moves : int
        Most Metropolis-Hastings sweeps per resample-move (independent
        proposals stop once 95% of the particles have moved).
    """

    name = "HarArch"
    cost_hint = (25.0, 300.0)  # ms: a backtest day at h = 1 (refits included), a 10-day forecast
    _theta: lik.Theta

    def __init__(self, particles: int = 1000, runs: int = 4, ess_threshold: float = 0.5,
                 moves: int = 6) -> None:
        super().__init__(particles, runs, ess_threshold)
        self.moves = check_whole("moves", moves, 1, 100)

    # --- fitting --------------------------------------------------------------

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Posterior given ``returns`` (oldest first) by tempered SMC from a start proposal."""
        r = self._history(returns)
        rng = np.random.default_rng(rng_from(seed).integers(0, 2**63 - 1))
        start = time.perf_counter()
        try:
            res = smc.tempered_fit(r, self.runs, self.particles, rng, self.ess_threshold,
                                   self.moves)
        except RuntimeError as exc:
            raise InvalidReturns(
                f"HarArch could not fit these {r.size} returns ({exc} within "
                f"{smc.MAX_STAGES} tempering stages); give a longer or less degenerate "
                "history") from exc
        draws = lik.constrain(res.cloud.u).as_dict()
        total = res.cloud.u.shape[0]
        keep = _sir.systematic_resample(np.full(total, 1.0 / total), float(rng.random()),
                                        self.particles)
        self._install(r, res.cloud.take(keep), np.zeros(self.particles), rng)
        self._finish_fit({k: v.reshape(self.runs, self.particles) for k, v in draws.items()},
                         float(res.acceptance), start)
        return self

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Warm re-anchoring on a trailing window: the posterior given ``returns`` only.

        The current particles (posterior given the history absorbed so far)
        are reweighted by ``p(returns | theta) / p(history | theta)`` (one
        likelihood pass); if the ESS stays above ``ess_threshold`` that is
        all, else they are resampled and moved targeting the window
        posterior; below ``REFIT_MIN_ESS`` (a window unlike the history) a
        tempered bridge from the history's posterior to the window's
        (:func:`._har_arch_smc.bridge`), and a fresh :meth:`fit` only if
        that stalls.
        """
        if not self._fitted:
            return self.fit(returns, seed=seed)
        r = self._history(returns)
        rng = np.random.default_rng(rng_from(seed).integers(0, 2**63 - 1))
        lp, ll, h = smc.evaluate(r, self._cloud.u)
        logw = _sir.reweighted(self._logw, ll, self._cloud.aux[smc.LL])
        route = self._route(logw)
        if route == "prior":
            return self.fit(r, seed=rng)
        if route == "bridge":
            bridged = smc.bridge(self._returns, r, self._cloud, self._logw, rng,
                                 self.ess_threshold, self.moves)
            if bridged is None:
                return self.fit(r, seed=rng)
            cloud, logw, acc = bridged
            self._install(r, cloud, logw, rng)
            self._acceptance = acc
            return self
        cloud = smc.Cloud(self._cloud.u, np.vstack([lp, ll, lp, h]))
        if route == "reweight":
            self._install(r, cloud, logw, rng)
            return self
        moved, acc = smc.rejuvenate(r, cloud, logw, rng, self.moves)
        self._install(r, moved, np.zeros(self.particles), rng)
        self._acceptance = acc
        return self

    def _install(self, r: FloatArray, cloud: smc.Cloud, logw: FloatArray,
                 rng: np.random.Generator) -> None:
        self._start_history(r)
        self._rng = rng
        self._set_cloud(cloud, logw)

    def _set_cloud(self, cloud: smc.Cloud, logw: FloatArray) -> None:
        self._cloud = cloud
        self._logw = logw - np.max(logw)
        self._theta = lik.constrain(cloud.u)
        self._st = lik.skew_t(self._theta.nu, self._theta.lam)
        #: per level, the particles' standardized quantiles and tail means (a cache only)
        self._standard: dict[float, tuple[FloatArray, FloatArray]] = {}

    # --- online ------------------------------------------------------------------

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
        th, h = self._theta, self._cloud.aux[smc.H]
        z = (x - th.mu) / np.sqrt(h)
        step = lik.skew_t_logpdf(z, self._st) - 0.5 * np.log(h)
        lw, e, total, pred = self._reweigh(x, step)
        self._append_return(x)
        hist = self._returns
        aux = self._cloud.aux.copy()
        aux[smc.LL] = aux[smc.LL] + step
        aux[smc.H] = lik.next_variance(hist[-lik.LAGS :], th)
        cloud = smc.Cloud(self._cloud.u, aux)
        if self._keep_reweighed(lw, e, total) < self.ess_threshold * self.particles:
            cloud, self._acceptance = smc.rejuvenate(hist, cloud, lw, self._rng, self.moves)
            self._set_cloud(cloud, np.zeros(self.particles))
        else:
            self._cloud, self._logw = cloud, lw
        return pred

    # --- the predictive ---------------------------------------------------------------

    def forecast(self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *,
                 seed: Seed = None) -> Forecast:
        """VaR/ES of the next ``horizon`` returns' sum, with 90% credible intervals.

        Horizon 1 is exact over the particles (a skewed-t mixture, VaR by
        root-finding its tail). Longer horizons simulate ``HORIZON_PATHS``
        paths from each of ``HORIZON_DRAWS`` systematically resampled
        particles with ``seed`` (``None``: fresh entropy).
        """
        levels = check_alphas(alphas)
        h = self._check_horizon(horizon)
        self._require_fitted()
        w = self._weights()
        if h == 1:
            th = self._theta
            family = HansenSkewTFamily(th.mu, np.sqrt(self._cloud.aux[smc.H]), self._st, w,
                                 self._standard)
            return Forecast(model=self.name, horizon=1, levels=risk_measures(family, levels))
        rng = rng_from(seed)
        idx = _sir.systematic_resample(w, float(rng.random()), HORIZON_DRAWS)
        th = self._theta.take(np.repeat(idx, HORIZON_PATHS))
        tail = np.broadcast_to(self._returns[-lik.LAGS :], (th.mu.size, lik.LAGS))
        paths = simulate_paths(th, tail, h, rng).sum(axis=1)
        fam = EmpiricalFamily(paths.reshape(HORIZON_DRAWS, HORIZON_PATHS))
        return Forecast(model=self.name, horizon=h, levels=risk_measures(fam, levels))

    # --- diagnostics ----------------------------------------------------------------

    # --- generative side ----------------------------------------------------------------

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, FloatArray]:
        """``n`` prior draws of the ten parameters (see :mod:`._har_arch_lik`)."""
        n = check_whole("n", n, 1, 10_000_000)
        return lik.sample_prior(n, rng_from(seed)).as_dict()

    def simulate(self, params: Mapping[str, float], n: int, *, seed: Seed = None) -> FloatArray:
        """``n`` returns from the model at ``params`` (after ``BURN_IN`` discarded returns).

        The lags start at the unconditional variance ``omega / (1 - p)``.
        """
        n = check_whole("n", n, 1, 10_000_000)
        try:
            th = lik.theta(**{k: float(params[k]) for k in lik.PARAMS})
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameter(f"HarArch.simulate needs numbers {lik.PARAMS}: {exc}") from exc
        if not bool(lik.is_valid(th)[0]):
            raise InvalidParameter(
                "HarArch parameters need omega > 0, coefficients >= 0, b1 + b5 + b22 + "
                f"(g1 + g5 + g22)/2 < 1, nu > 2 and |lam| < 1; got {dict(params)}")
        rng = rng_from(seed)
        v = float(th.omega[0] / (1.0 - th.persistence[0]))
        tail = th.mu[0] + np.sqrt(v) * np.where(np.arange(lik.LAGS) % 2 == 0, 1.0, -1.0)
        out = simulate_paths(th, tail[None, :], BURN_IN + n, rng)[0]
        return np.asarray(out[BURN_IN:])

    def posterior_draws(self) -> dict[str, FloatArray]:
        """The particles resampled to equal weights (systematic, deterministic offset 0.5)."""
        self._require_fitted()
        idx = _sir.systematic_resample(self._weights(), 0.5, self.particles)
        return self._theta.take(idx).as_dict()

    # --- state ---------------------------------------------------------------------------

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        scalars = self._smc_scalars()
        arrays = {"history": self.history, "u": self._cloud.u, "aux": self._cloud.aux,
                  "logw": self._logw}
        return scalars, arrays

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            u = np.asarray(arrays["u"], dtype=float)
            aux = np.asarray(arrays["aux"], dtype=float)
            logw = np.asarray(arrays["logw"], dtype=float)
            hist = np.asarray(arrays["history"], dtype=float)
            rng, fit_diag, acceptance, seconds = self._read_smc_scalars(scalars)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidState(f"HarArch state is incomplete or malformed: {exc}") from exc
        s = self.particles
        if (u.shape != (s, lik.DIM) or aux.shape != (4, s) or logw.shape != (s,)
                or hist.ndim != 1 or hist.size < self.min_observations):
            raise InvalidState(f"HarArch state arrays do not match {s} particles")
        if not (np.all(np.isfinite(u)) and np.all(np.isfinite(hist))
                and np.all(np.isfinite(aux[smc.H])) and np.all(aux[smc.H] > 0)):
            raise InvalidState("HarArch state holds non-finite particles or variances")
        self._check_log_weights(logw)
        self._install(hist, smc.Cloud(u, aux), logw, rng)
        self._restore(logw, fit_diag, acceptance, seconds)
