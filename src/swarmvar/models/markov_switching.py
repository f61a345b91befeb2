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

import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..data import MAX_ABS_RETURN
from ..errors import InvalidParameter, InvalidReturns, InvalidState
from ..types import Diagnostics, Forecast
from . import _markov_switching_garch_lik as garch_lik
from . import _markov_switching_lik as lik
from . import _sir
from ._garch_family import TQuantileCache
from ._markov_switching_family import SwitchingTFamily
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
#: Days solved together by forecast_block (as GarchT's BLOCK_DAYS).
BLOCK_DAYS = 8
#: Most tempering stages of a fit.
MAX_STAGES = 200
#: Independent-MH sweeps per rejuvenation, and the acceptance below which
#: random-walk sweeps follow.
MOVES = 6
LEAST_INDEPENDENT_ACCEPTANCE = 0.2
#: Share of every run's particles moved before a non-final tempering stage stops sweeping.
STAGE_MOVED = 0.8


class MarkovSwitching(Agent):
    """Bayesian two-state Markov-switching Student-t volatility with an online SMC posterior.

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

    name = "MarkovSwitching"
    #: The model's priors, filter and simulation (a module; see :class:`MarkovSwitchingGarch`).
    _model: Any = lik
    _support = "finite mu, 0 < sigma1 < sigma2, 0 < p11, p22 < 1 and nu > 2"
    min_observations = 100
    needs_variation = True
    #: How the last fit or refit got its posterior: "fit", "reweight", "move" or "prior"
    #: (a refit whose reweighting left too few particles, fitted from the prior).
    refit_route: str = "fit"
    cost_hint = (5.0, 65.0)  # ms: a backtest day at h = 1 (refits included), a 10-day forecast

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
        (:meth:`_rejuvenate`) until the power is 1. Split R-hat and ESS across
        the runs are checked (a ``ConvergenceWarning`` if poor); the pooled
        particles, thinned to ``particles``, are the online posterior.

        Raises
        ------
        InvalidReturns
            Bad returns, or a series the sampler cannot temper in ``MAX_STAGES`` stages.
        """
        r = self._history(returns)
        rng = np.random.default_rng(rng_from(seed).integers(0, 2**63 - 1))
        start = time.perf_counter()
        runs, per = self.runs, self.particles
        m = self._model
        u = m.to_unconstrained(m.sample_prior(runs * per, rng))
        lp = m.log_prior_u(u)
        ll, aux = m.filter_fast(r, m.from_unconstrained(u))
        ll = np.where(np.isfinite(lp), ll, -np.inf)
        logw, gamma = np.zeros(u.shape[0]), np.zeros(runs)
        blocks = _sir.run_slices(u.shape[0], runs)
        stages, acceptance = 0, 1.0
        while np.any(gamma < 1.0):
            if stages >= MAX_STAGES:
                raise InvalidReturns(
                    f"the Markov-switching posterior was not reached in {MAX_STAGES} tempering "
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
            moved = self._rejuvenate(r, u[idx], logw[idx], np.vstack([ll[idx], aux[:, idx]]),
                                     powers, rng, len(active), enough)
            u[idx], ll[idx], aux[:, idx], acceptance = moved
            logw[idx] = 0.0
            stages += 1
        draws = m.draws(m.from_unconstrained(u))
        rhat, ess_b, ess_t = summarize({k: v.reshape(runs, per) for k, v in draws.items()})
        keep = _sir.systematic_resample(np.full(u.shape[0], 1.0 / u.shape[0]),
                                        float(rng.random()), per)
        self._install(r, u[keep], ll[keep], aux[:, keep], np.zeros(per), rng)
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
        p(history | theta)`` - one filter pass over the window, which also
        gives each particle's state probability at the window's end - and,
        when the ESS falls below ``ess_threshold * particles``, resampled and
        moved targeting the window's posterior. Below ``REFIT_MIN_ESS *
        particles`` effective particles the window is fitted from the prior
        (:meth:`fit`); ``refit_route`` says which. A refused window leaves the
        agent as it was.
        """
        if not self._fitted:
            return self.fit(returns, seed=seed)
        r = self._history(returns)
        rng = np.random.default_rng(rng_from(seed).integers(0, 2**63 - 1))
        ll, aux = self._model.filter_fast(r, self._theta)
        logw = self._logw + ll - self._ll
        logw = np.where(np.isfinite(logw), logw, -np.inf)
        if not np.any(np.isfinite(logw)) or _sir.ess(logw) < REFIT_MIN_ESS * self.particles:
            self.fit(r, seed=rng)
            self.refit_route = "prior"
            return self
        if _sir.ess(logw) >= self.ess_threshold * self.particles:
            self._install(r, self._u, ll, aux, logw, rng)  # healthy weights: as IBIS would
            self.refit_route = "reweight"
            return self
        u, ll, aux, acc = self._rejuvenate(r, self._u, logw, np.vstack([ll, aux]),
                                           np.ones(self.particles), rng, 1)
        self._install(r, u, ll, aux, np.zeros(self.particles), rng)
        self._acceptance = acc
        self.refit_route = "move"
        return self

    def _rejuvenate(self, r: FloatArray, u: FloatArray, logw: FloatArray, aux: FloatArray,
                    powers: FloatArray, rng: np.random.Generator, runs: int,
                    enough: float = 0.95) -> tuple[FloatArray, FloatArray, FloatArray, float]:
        """Resample each run by ``logw`` and move it, targeting ``prior * L(r)^power``.

        ``u`` ``(S, d)``; ``aux`` ``(1 + k, S)`` holds each particle's ``log
        L(r)`` and its filter state (next-day ``P(s = 1)``, and the states'
        variances for MS-GARCH); ``powers`` ``(S,)`` each particle's run's
        power. Returns the particles, their log-likelihoods and filter
        states ``(k, S)``, and the acceptance rate.
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

        m = self._model

        def log_target(th: FloatArray) -> tuple[FloatArray, FloatArray]:
            lp = m.log_prior_u(th)
            ll, state = m.filter_fast(r, m.from_unconstrained(th))
            ll = np.where(np.isfinite(lp), ll, -np.inf)
            return lp + _scaled(ll, powers), np.vstack([ll, state])

        current = (m.log_prior_u(u) + _scaled(aux[0], powers), aux)
        u2, lt, aux2, rate, _ = _sir.independent_moves(u, log_target, current, rng, MOVES, mean,
                                                        cov, enough_moved=enough, runs=runs)
        if rate < LEAST_INDEPENDENT_ACCEPTANCE:
            u2, _, aux2, rate = _sir.random_walk_moves(
                u2, log_target, (lt, aux2), rng, MOVES, (2.38**2 / d) * cov, runs=runs)
        return u2, aux2[0].copy(), aux2[1:].copy(), rate

    def _install(self, r: FloatArray, u: FloatArray, ll: FloatArray, aux: FloatArray,
                 logw: FloatArray, rng: np.random.Generator) -> None:
        cap = max(64, 1 << (r.size + 256).bit_length())
        self._buf = np.empty(cap)
        self._buf[: r.size] = r
        self._n = r.size
        self._rng = rng
        if getattr(self, "_u", None) is not u:  # new particles: their constants anew
            self._u = u
            self._theta = self._model.from_unconstrained(u)
            self._norm = lik.t_log_norm(self._theta.nu)
            self._cache = TQuantileCache(self._theta.nu)
        self._ll, self._aux = ll, aux
        self._logw = logw - np.max(logw)

    @property
    def history(self) -> FloatArray:
        """Returns the posterior conditions on (fit or refit window, then updates) ``(n,)``."""
        self._require_fitted()
        return self._buf[: self._n].copy()

    # --- online ------------------------------------------------------------------------

    def update(self, r: float) -> float:
        """Absorb one return (a Hamilton filter step per particle, then IBIS reweighting).

        Returns the log predictive density of ``r`` before absorbing it.
        """
        x = self._check_return(r)
        self._require_fitted()
        dens, aux = self._model.filter_step(self._theta, self._norm, self._aux, x)
        lw = self._logw + dens
        top = float(np.max(lw))
        if not np.isfinite(top):
            raise InvalidReturns(f"return {x!r} has zero density under every particle")
        out = top + float(np.log(np.exp(lw - top).sum() / np.exp(self._logw).sum()))
        if self._n == self._buf.size:
            self._buf = np.concatenate([self._buf, np.empty(self._buf.size)])
        self._buf[self._n] = x
        self._n += 1
        self._ll, self._aux, self._logw = self._ll + dens, aux, lw - top
        if _sir.ess(self._logw) < self.ess_threshold * self.particles:
            hist = self._buf[: self._n]
            u, ll, aux, acc = self._rejuvenate(hist, self._u, self._logw,
                                               np.vstack([self._ll, self._aux]),
                                               np.ones(self.particles), self._rng, 1)
            self._install(hist.copy(), u, ll, aux, np.zeros(self.particles), self._rng)
            self._acceptance = acc
        return out

    # --- the predictive ----------------------------------------------------------------

    def _weights(self) -> FloatArray:
        return _sir.normalized_weights(self._logw)

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

    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast:
        """VaR/ES of the next ``horizon`` returns' sum, with 90% credible intervals.

        Horizon 1 is exact over the particles and the two states (a mixture of
        scaled t's; :class:`._markov_switching_family.SwitchingTFamily`).
        Longer horizons walk the chain forward: ``HORIZON_PATHS`` paths from
        each of ``HORIZON_DRAWS`` particles (systematically resampled), each
        path's first state drawn from its particle's predicted probabilities,
        with shocks drawn from ``seed``.
        """
        levels = check_alphas(alphas)
        h = self._check_horizon(horizon)
        self._require_fitted()
        if h == 1:
            return self._forecast_days(self._theta, self._cache, [self._aux],
                                       [self._weights()], levels)[0]
        rng = rng_from(seed)
        idx = _sir.systematic_resample(self._weights(), float(rng.random()), HORIZON_DRAWS)
        paths = self._model.simulate_aux_paths(self._theta.take(idx), self._aux[:, idx], h,
                                               HORIZON_PATHS, rng)
        return Forecast(model=self.name, horizon=h,
                        levels=risk_measures(EmpiricalFamily(paths), levels))

    def _horizon_one_block(
        self, xs: FloatArray, levels: tuple[float, ...], seeds: Sequence[Seed]
    ) -> tuple[list[Forecast], FloatArray]:
        """:meth:`Agent.forecast_block` at horizon 1, vectorized.

        The updates run day by day as :meth:`update` (resample-moves
        included); the forecasts of the days on one particle set are solved
        together, ``BLOCK_DAYS`` at a time, by the code :meth:`forecast` runs
        for one day (each root iterated on its own: the same numbers).
        """
        forecasts: list[Forecast] = []
        dens = np.empty(xs.size)
        auxs: list[FloatArray] = []
        ws: list[FloatArray] = []
        for j, x in enumerate(xs.tolist()):
            theta, cache = self._theta, self._cache
            auxs.append(self._aux)
            ws.append(self._weights())
            dens[j] = self.update(x)
            if self._theta is not theta or len(auxs) == BLOCK_DAYS:
                forecasts += self._forecast_days(theta, cache, auxs, ws, levels)
                auxs, ws = [], []
        if auxs:
            forecasts += self._forecast_days(self._theta, self._cache, auxs, ws, levels)
        return forecasts, dens

    def _forecast_days(self, th: Any, cache: TQuantileCache, auxs: list[FloatArray],
                       ws: list[FloatArray], levels: tuple[float, ...]) -> list[Forecast]:
        """Horizon-1 forecasts from one particle set at each day's filter state."""
        w = np.stack(ws)
        aux = np.stack(auxs)  # (D, k, S)
        s1, s2 = self._model.state_scales(th, aux)
        fam = SwitchingTFamily(th.mu, s1, s2, aux[:, 0], cache, w)
        m = fam.block_measures(levels)
        days = risk_measures_block(levels, m.var, m.es, m.cond_var, m.cond_es, fam.day_weights)
        return [Forecast(model=self.name, horizon=1, levels=day) for day in days]

    # --- diagnostics ------------------------------------------------------------------

    def _diagnostics(self) -> Diagnostics:
        return smc_diagnostics(self._fit_diag, ess=_sir.ess(self._logw),
                               acceptance=self._acceptance, draws=self.runs * self.particles,
                               seconds=self._seconds)

    # --- generative side ---------------------------------------------------------------

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, FloatArray]:
        """``n`` prior draws of the model's parameters (``mu, sigma1, sigma2, p11, p22, nu``)."""
        n = check_whole("n", n, 1, 10**7)
        m = self._model
        return dict(m.draws(m.sample_prior(n, rng_from(seed))))

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

    def posterior_draws(self) -> dict[str, FloatArray]:
        """The particles resampled to equal weights (systematic, deterministic offset 0.5)."""
        self._require_fitted()
        idx = _sir.systematic_resample(self._weights(), 0.5)
        return dict(self._model.draws(self._theta.take(idx)))

    # --- state -------------------------------------------------------------------------

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        scalars = {
            "rng": self._rng.bit_generator.state,
            "fit_diag": self._fit_diag,
            "acceptance": self._acceptance,
            "seconds": self._seconds,
            "refit_route": self.refit_route,
        }
        arrays = {"history": self.history, "u": self._u, "ll": self._ll, "aux": self._aux,
                  "logw": self._logw}
        return scalars, arrays

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            u = np.asarray(arrays["u"], dtype=float)
            ll, aux, logw = (np.asarray(arrays[k], dtype=float) for k in ("ll", "aux", "logw"))
            hist = np.asarray(arrays["history"], dtype=float)
            rng = np.random.default_rng()
            rng.bit_generator.state = dict(scalars["rng"])
            fit_diag = fit_record(scalars["fit_diag"])
            acceptance, seconds = float(scalars["acceptance"]), float(scalars["seconds"])
            route = str(scalars.get("refit_route", "fit"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidState(f"{self.name} state is incomplete or malformed: {exc}") from exc
        s = self.particles
        m = self._model
        if u.shape != (s, m.DIM) or aux.shape != (m.AUX_ROWS, s) or any(
                v.shape != (s,) for v in (ll, logw)) or (
                hist.ndim != 1 or hist.size < self.min_observations):
            raise InvalidState(f"{self.name} state arrays do not match {s} particles")
        if not (np.all(np.isfinite(hist)) and np.all(np.abs(hist) <= MAX_ABS_RETURN)
                and np.all(np.isfinite(aux)) and np.all((aux[0] >= 0.0) & (aux[0] <= 1.0))
                and np.all(aux[1:] > 0.0)):
            raise InvalidState(f"{self.name} state holds non-finite returns or state "
                               "probabilities outside [0, 1]")
        if not np.all(np.isfinite(m.log_prior_u(u))):
            raise InvalidState(f"{self.name} state holds particles outside the prior's support")
        if np.any(np.isnan(ll)) or np.any(ll == np.inf):
            raise InvalidState(f"{self.name} state's log-likelihoods are NaN or +inf")
        if np.any(np.isnan(logw)) or np.any(logw == np.inf) or not np.any(np.isfinite(logw)):
            raise InvalidState(f"{self.name} state's particle log weights are NaN, +inf or all "
                               "-inf")
        self._install(hist, u, ll, aux, logw, rng)
        self._logw = logw.copy()  # exact, not re-normalized
        self._fit_diag = fit_diag
        self._acceptance = acceptance
        self._seconds = seconds
        self.refit_route = route


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


def _scaled(ll: FloatArray, power: float | FloatArray) -> FloatArray:
    """``power * ll`` with ``0 * -inf = -inf`` (a zero-likelihood particle stays dead)."""
    with np.errstate(invalid="ignore"):
        out = power * ll
    result: FloatArray = np.where(np.isfinite(ll), out, -np.inf)
    return result
