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

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParameter, InvalidState
from ..types import Forecast
from . import _score_driven_jax as jlik
from . import _score_driven_lik as lik
from ._online_agent import DEFAULT_PARTICLES, HORIZON_PATHS, ParticleCost
from ._particle_agent import MOVES, STAGE_MOVED, ParticleAgent
from ._score_driven_bridge import bridge
from ._score_driven_family import SkewTCache, skew_level_measures_block
from .base import Seed, check_whole, rng_from
from .risk import risk_measures, risk_measures_block

FloatArray = NDArray[np.float64]

#: Most days solved together by forecast_block: a backtest's whole refit interval (20
#: days) in one batch costs ~30% less than batches of 8, with the same numbers.
BLOCK_DAYS = 32
#: A resample-move of a reweighted posterior cloud - a warm refit whose reweighting left
#: between REFIT_MIN_ESS and ess_threshold of the particles effective, an update whose
#: weights fell below ess_threshold - stops its independent-MH sweeps once this share
#: has moved: the cloud is already the target up to those weights, so the sweeps only
#: undo the resample's duplicates (two sweeps at the usual ~60% acceptance; 0.95 took
#: four or five, ~a third of a backtest's likelihood passes).
REWEIGHTED_MOVED = 0.8


class _Model:
    """The model interface :class:`._particle_agent.ParticleAgent` runs on: the priors of
    :mod:`._score_driven_lik` and the compiled likelihood pass, whose filter state is
    ``lambda`` of the next day ``(1, S)``."""

    PARAMS = lik.PARAMS
    DIM = lik.DIM
    sample_prior = staticmethod(lik.sample_prior)
    to_unconstrained = staticmethod(lik.to_unconstrained)
    from_unconstrained = staticmethod(lik.from_unconstrained)
    log_prior_u = staticmethod(lik.log_prior_u)

    @staticmethod
    def filter_fast(r: FloatArray, th: lik.Theta) -> tuple[FloatArray, FloatArray]:
        ll, lam = jlik.loglik(r, th)
        return ll, lam[None, :]

    @staticmethod
    def draws(th: lik.Theta) -> dict[str, FloatArray]:
        return th.as_dict()


class BetaSkewTEgarch(ParticleAgent):
    """Bayesian Beta-Skew-t-EGARCH(1,1) with leverage (score-driven scale), online by SMC.

    The parameters ``particles`` (500 by default, ``DEFAULT_PARTICLES``), ``runs``
    and ``ess_threshold`` are :class:`._online_agent.OnlineAgent`'s (checked there).

    ``forecast`` (:meth:`._particle_agent.ParticleAgent.forecast`) at horizon 1
    is over the particles: a mixture of scaled skew-t's, its per-draw
    quantiles exact and its mixture quantile solved on the tabulated t CDF
    (:mod:`._score_driven_family`; within 1e-6 relative of the ``stdtr``
    path, :class:`._score_driven_lik.FernandezSteelSkewTFamily`). Longer
    horizons run the recursion forward: ``HORIZON_PATHS`` paths from each of
    ``HORIZON_DRAWS`` particles (systematically resampled) with each
    particle's own skew-t shocks, drawn from ``seed``.
    """

    name = "BetaSkewTEgarch"
    _model: Any = _Model
    _label = "Beta-Skew-t-EGARCH"
    _aux_key = "lam"
    _reweighted_moved = REWEIGHTED_MOVED
    block_days = BLOCK_DAYS
    #: How the last fit or refit got its posterior: "fit" (tempered from the prior),
    #: "reweight", "move", "bridge" (tempered from the history's posterior) or "prior"
    #: (a refit whose bridge stalled, fitted from the prior).
    refit_route: str = "fit"
    #: ms of a backtest day at h = 1, refits included (3.0 at 1,000 particles, ~1.5 at 500:
    #: the whole day scales with the particles), a 10-day forecast.
    cost_hint = ParticleCost(0.0, 3.0, 90.0)

    def __init__(self, particles: int = DEFAULT_PARTICLES, runs: int = 4,
                 ess_threshold: float = 0.5) -> None:
        super().__init__(particles, runs, ess_threshold)

    @property
    def _lam(self) -> FloatArray:
        """Each particle's ``lambda`` of the next day ``(S,)`` (the filter state)."""
        lam: FloatArray = self._aux
        return lam

    @_lam.setter
    def _lam(self, value: FloatArray) -> None:
        self._aux = value

    def _bridge(self, r: FloatArray, rng: np.random.Generator, ll: FloatArray,
                aux: Any) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray,
                                   float] | None:
        """Tempered from the history's posterior to the window's
        (:func:`._score_driven_bridge.bridge`, starting from the reweighting's pass
        ``ll``, ``aux``); None if that stalls."""
        bridged = bridge(self.history, r, self._u, self._ll, self._logw, rng,
                         self.ess_threshold, MOVES, STAGE_MOVED, window_pass=(ll, aux))
        if bridged is None:
            return None
        u, ll, lam, logw, acc, _ = bridged
        return u, ll, lam, logw, acc

    def _unstack(self, aux: FloatArray) -> FloatArray:
        lam: FloatArray = aux[0]
        return lam

    def _new_particles(self) -> None:
        self._step = lik.Step.of(self._theta)
        self._cache: SkewTCache | None = None  # the predictive's constants, when asked

    def _filter_step(self, x: float) -> tuple[FloatArray, FloatArray]:
        return lik.step(self._step, self._lam, x)

    # --- the predictive --------------------------------------------------------------

    def next_moments(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """One-step-ahead law of the next return per particle: ``loc + scale * skew-t``.

        Returns ``loc = mu``, ``scale = exp(lambda_{n+1})`` (fractions),
        ``df = nu``, the skewness ``gamma`` and the normalized weights, each ``(S,)``.
        """
        self._require_fitted()
        th = self._theta
        return th.mu.copy(), np.exp(self._lam), th.nu.copy(), th.gamma.copy(), self._weights()

    def _simulate_paths(self, idx: NDArray[np.intp], h: int,
                        rng: np.random.Generator) -> FloatArray:
        return lik.simulate_paths(self._theta.take(idx), self._lam[idx], h, HORIZON_PATHS, rng)

    def _skew_cache(self) -> SkewTCache:
        if self._cache is None:
            self._cache = SkewTCache(self._theta.nu, self._theta.gamma)
        return self._cache

    _day_cache = _skew_cache

    def _forecast_days(self, th: lik.Theta, cache: SkewTCache, lams: list[FloatArray],
                       ws: list[FloatArray], levels: tuple[float, ...]) -> list[Forecast]:
        """Horizon-1 forecasts from one particle set at each day's ``lambda`` and weights."""
        scale = np.exp(np.stack(lams))
        w = np.stack(ws)
        m = skew_level_measures_block(cache, th.mu, scale, w, levels)
        days = risk_measures_block(levels, m.var, m.es, m.cond_var, m.cond_es, w)
        for d in m.redo:  # not solved by the batch (not seen): the exact family
            family = lik.FernandezSteelSkewTFamily(th.mu, scale[d], th.nu, th.gamma, w[d])
            days[d] = risk_measures(family, levels)
        return [Forecast(model=self.name, horizon=1, levels=day) for day in days]

    def standardized_residuals(self) -> FloatArray:
        """``(r_t - mu) / exp(lambda_t)`` ``(n,)`` at the posterior-mean parameters (skew-t
        under the model)."""
        self._require_fitted()
        w = self._weights()
        p = {k: float(w @ v) for k, v in zip(lik.PARAMS, self._theta, strict=True)}
        r = self._returns
        result: FloatArray = (r - p["mu"]) / np.exp(lik.lambda_path(r, p)[:-1])
        return result

    # --- generative side and state -------------------------------------------------------

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

    def _check_state(self, u: FloatArray, aux: FloatArray, ll: FloatArray, logw: FloatArray,
                     hist: FloatArray) -> None:
        if aux.shape != (self.particles,):
            raise InvalidState(f"BetaSkewTEgarch state arrays do not match {self.particles} "
                               "particles")
        if not (np.all(np.isfinite(hist)) and np.all(np.abs(hist) <= self.return_bound)
                and np.all(np.isfinite(aux)) and np.all(np.abs(aux) < 700.0)):
            raise InvalidState("BetaSkewTEgarch state holds non-finite returns or log scales")
