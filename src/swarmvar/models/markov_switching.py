"""``MarkovSwitching``: Bayesian two-state Markov-switching Student-t volatility, online by SMC.

Model (log returns as fractions; priors and the filter in
:mod:`._markov_switching_lik`)::

    r_t = mu + sigma_{s_t} eps_t,   eps_t unit-variance Student-t(nu),   sigma_1 < sigma_2
    s_t a two-state Markov chain staying with probabilities p11, p22

(Hamilton 1989). Where the GARCH agents raise their variance gradually after
a shock, this one moves probability mass between a calm and a turbulent
state: after a volatility regime flips it follows as soon as a few returns
make the other state likelier, and its predictive is a mixture of the two
states' laws, not one scaled t (Ardia, Bluteau, Boudt, Catania & Trottier
2018, "Forecasting risk with Markov-switching GARCH models", IJF).

Posterior over ``(mu, sigma1, sigma2, p11, p22, nu)`` by particles, with the
generic blocks of :mod:`._sir`: ``fit`` runs ``runs`` independent
likelihood-tempered SMC samplers from the prior (one batch; split R-hat and
ESS across the runs); ``update`` is iterated batch importance sampling
(Chopin 2002): each particle carries its predicted probability of state 1
for the next day (its Hamilton filter), a new return reweights it by its
predictive density, and when the ESS falls below ``ess_threshold *
particles`` the particles are resampled and moved by independent
Metropolis-Hastings from a multivariate t fitted to them (random-walk moves
when those are rarely accepted), targeting the posterior given the whole
history. ``refit`` warm-starts from the current particles. Details in
docs/models-markov-switching.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParameter, InvalidState
from ..types import Forecast
from . import _markov_switching_garch_lik as garch_lik
from . import _markov_switching_lik as lik
from ._garch_family import TQuantileCache
from ._markov_switching_family import SwitchingTFamily
from ._online_agent import HORIZON_PATHS
from ._particle_agent import ParticleAgent
from .base import Seed, check_whole, rng_from
from .risk import risk_measures_block, t_log_norm

FloatArray = NDArray[np.float64]

class MarkovSwitching(ParticleAgent):
    """Bayesian two-state Markov-switching Student-t volatility with an online SMC posterior.

    The parameters ``particles``, ``runs`` and ``ess_threshold`` are
    :class:`._online_agent.OnlineAgent`'s (checked there).
    """

    name = "MarkovSwitching"
    #: The model's priors, filter and simulation (a module; see :class:`MarkovSwitchingGarch`).
    _model: Any = lik
    _label = "Markov-switching"
    _support = "finite mu, 0 < sigma1 < sigma2, 0 < p11, p22 < 1 and nu > 2"
    #: How the last fit or refit got its posterior: "fit", "reweight", "move" or "prior"
    #: (a refit whose reweighting left too few particles, fitted from the prior).
    refit_route: str = "fit"
    cost_hint = (5.0, 65.0)  # ms: a backtest day at h = 1 (refits included), a 10-day forecast

    def _new_particles(self) -> None:
        self._norm = t_log_norm(self._theta.nu)
        self._cache = TQuantileCache(self._theta.nu)

    def _filter_step(self, x: float) -> tuple[FloatArray, FloatArray]:
        """A Hamilton filter step per particle."""
        dens, aux = self._model.filter_step(self._theta, self._norm, self._aux, x)
        return dens, aux

    # --- the predictive ----------------------------------------------------------------

    def turbulent_probability(self) -> float:
        """Posterior predictive probability that the next day is in the turbulent state 2."""
        self._require_fitted()
        return float(self._weights() @ (1.0 - self._aux[0]))

    def predictive_family(self) -> SwitchingTFamily:
        """The one-step predictive: per particle a two-state t mixture, with the weights."""
        self._require_fitted()
        s1, s2 = self._model.state_scales(self._theta, self._aux)
        return SwitchingTFamily(self._theta.mu, s1, s2, self._aux[0], self._cache,
                                self._weights())

    def _day_cache(self) -> TQuantileCache:
        return self._cache

    def _simulate_paths(self, idx: NDArray[np.intp], h: int,
                        rng: np.random.Generator) -> FloatArray:
        """The chain walked forward, each path's first state drawn from its particle's
        predicted probabilities."""
        paths: FloatArray = self._model.simulate_aux_paths(
            self._theta.take(idx), self._aux[:, idx], h, HORIZON_PATHS, rng)
        return paths

    def _forecast_days(self, th: Any, cache: TQuantileCache, auxs: list[FloatArray],
                       ws: list[FloatArray], levels: tuple[float, ...]) -> list[Forecast]:
        """Horizon-1 forecasts from one particle set at each day's filter state: exact over
        the particles and the two states (a mixture of scaled t's, :class:`SwitchingTFamily`)."""
        w = np.stack(ws)
        aux = np.stack(auxs)  # (D, k, S)
        s1, s2 = self._model.state_scales(th, aux)
        fam = SwitchingTFamily(th.mu, s1, s2, aux[:, 0], cache, w)
        m = fam.block_measures(levels)
        days = risk_measures_block(levels, m.var, m.es, m.cond_var, m.cond_es, fam.day_weights)
        return [Forecast(model=self.name, horizon=1, levels=day) for day in days]

    # --- generative side and state -------------------------------------------------------

    def simulate(self, params: Mapping[str, float], n: int, *, seed: Seed = None) -> FloatArray:
        """``n`` returns from the model at ``params`` (first state from the ergodic law)."""
        n = check_whole("n", n, 1, 10**7)
        try:
            p = {k: float(params[k]) for k in self._model.PARAMS}
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameter(
                f"simulate needs numbers for {self._model.PARAMS}: {exc}") from exc
        if not bool(self._model.is_valid(self._model.theta(**p))[0]):
            raise InvalidParameter(f"{self.name} parameters outside the model's support "
                                   f"({self._support}); got {p}")
        return np.asarray(self._model.simulate(p, n, rng_from(seed))[0], dtype=float)

    def _check_state(self, u: FloatArray, aux: FloatArray, ll: FloatArray, logw: FloatArray,
                     hist: FloatArray) -> None:
        if aux.shape != (self._model.AUX_ROWS, self.particles):
            raise InvalidState(f"{self.name} state arrays do not match {self.particles} "
                               "particles")
        if not (np.all(np.isfinite(hist)) and np.all(np.abs(hist) <= self.return_bound)
                and np.all(np.isfinite(aux)) and np.all((aux[0] >= 0.0) & (aux[0] <= 1.0))
                and np.all(aux[1:] > 0.0)):
            raise InvalidState(f"{self.name} state holds non-finite returns or state "
                               "probabilities outside [0, 1]")


class MarkovSwitchingGarch(MarkovSwitching):
    """Bayesian two-state Markov-switching (GJR-)GARCH(1,1)-t (Haas, Mittnik & Paolella 2004).

    Each state keeps its own GARCH(1,1) variance driven by the common returns,
    ``h_{k,t} = omega_k + (alpha_k + gamma_k 1[e_{t-1} < 0]) e_{t-1}^2 + beta_k
    h_{k,t-1}`` (``gamma_k = 0`` unless ``asymmetric``: GJR leverage in each
    state), ordered by their unconditional variances
    (:mod:`._markov_switching_garch_lik`): the regime switch of
    :class:`MarkovSwitching` plus the gradual volatility of
    :class:`~swarmvar.models.garch_t.GarchT` inside each regime. The same
    sampler, filter steps (each particle also carries the two states' next
    variances) and exact mixture forecasts as :class:`MarkovSwitching`.

    Parameters
    ----------
    particles, runs, ess_threshold
        As :class:`MarkovSwitching`.
    asymmetric : bool
        GJR leverage in each state (negative returns raise the variance more).
    """

    name = "MarkovSwitchingGarch"
    _model: Any = garch_lik.ASYMMETRIC
    _support = ("finite mu, omega_k > 0, alpha_k, alpha_k + gamma_k, beta_k >= 0, "
                "alpha_k + gamma_k / 2 + beta_k < 1, state 1's unconditional variance below "
                "state 2's, 0 < p11, p22 < 1 and nu > 2 (gamma_k = 0 unless asymmetric)")
    cost_hint = (6.0, 80.0)  # ms: a backtest day at h = 1 (refits included), a 10-day forecast

    def __init__(self, particles: int = 1000, runs: int = 4, ess_threshold: float = 0.5,
                 asymmetric: bool = True) -> None:
        super().__init__(particles, runs, ess_threshold)
        if not isinstance(asymmetric, (bool, np.bool_)):
            raise InvalidParameter(f"asymmetric must be True or False, not {asymmetric!r}")
        self.asymmetric = bool(asymmetric)
        self._model = garch_lik.ASYMMETRIC if self.asymmetric else garch_lik.SYMMETRIC
