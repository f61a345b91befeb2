"""The online particle agent shared by ``MarkovSwitching(Garch)`` and ``BetaSkewTEgarch``.

:class:`ParticleAgent` holds what those agents do alike with the generic
blocks of :mod:`._sir`: the likelihood-tempered SMC ``fit`` (``runs``
samplers from the prior in one batch, split R-hat and ESS across them), the
resample-move rejuvenation (independent Metropolis-Hastings from a
multivariate t fitted to each run, random-walk moves when those are rarely
accepted), IBIS ``update``, the warm ``refit`` (reweight, move, a subclass's
bridge, or a fit from the prior), the horizon-1 block forecasts, diagnostics
and the state's common part; the constructor's checks, the history buffer and
the state's SMC scalars are :class:`._online_agent.OnlineAgent`'s, which
``GarchT`` and ``HarArch`` share. A subclass brings its model as ``_model`` -
an object with ``sample_prior``, ``to_unconstrained``, ``from_unconstrained``,
``log_prior_u``, ``filter_fast(r, theta) -> (ll (S,), filter state (k, S))``
and ``draws`` (as :mod:`._markov_switching_lik` offers them) - and the few
hooks below.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidReturns, InvalidState
from ..types import Forecast
from . import _sir
from ._online_agent import HORIZON_DRAWS, OnlineAgent
from .base import Seed, check_whole, rng_from
from .risk import EmpiricalFamily, check_alphas, risk_measures

FloatArray = NDArray[np.float64]

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


def scaled(ll: FloatArray, power: float | FloatArray) -> FloatArray:
    """``power * ll`` with ``0 * -inf = -inf`` (a zero-likelihood particle stays dead)."""
    with np.errstate(invalid="ignore"):
        out = power * ll
    result: FloatArray = np.where(np.isfinite(ll), out, -np.inf)
    return result


class ParticleAgent(OnlineAgent):
    """An online SMC agent: tempered fit, IBIS updates, resample-move rejuvenation.

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

    #: The model (see the module's docstring).
    _model: Any
    #: The model's name in the message of a fit that cannot temper.
    _label = ""
    #: Key of the per-particle filter state in :meth:`state`'s arrays.
    _aux_key = "aux"
    #: Share moved before the independent-MH sweeps of a reweighted cloud's resample-move
    #: (an update's, or a warm refit's between the two ESS thresholds) stop.
    _reweighted_moved = 0.95
    block_days = 8
    #: How the last fit or refit got its posterior (the subclass lists the routes).
    refit_route: str = "fit"
    _aux: Any

    # --- hooks -------------------------------------------------------------------------

    def _unstack(self, aux: FloatArray) -> Any:
        """The filter state as the agent holds it, from its ``(k, S)`` form."""
        return aux

    def _new_particles(self) -> None:
        """Constants of new particles ``self._theta`` (the subclass's caches)."""

    def _filter_step(self, x: float) -> tuple[FloatArray, Any]:
        """One day's log densities ``(S,)`` and next filter state."""
        raise NotImplementedError

    def _day_cache(self) -> Any:
        """The predictive's constants for the current particles."""
        raise NotImplementedError

    def _particle_set(self) -> tuple[Any, Any]:
        return self._theta, self._day_cache()

    def _day_state(self) -> tuple[Any, FloatArray]:
        return self._aux, self._weight_memo()[0]

    def _simulate_paths(self, idx: NDArray[np.intp], h: int,
                        rng: np.random.Generator) -> FloatArray:
        """Sums of ``h`` returns ``(P, HORIZON_PATHS)`` from particles ``idx``."""
        raise NotImplementedError

    def _check_state(self, u: FloatArray, aux: FloatArray, ll: FloatArray, logw: FloatArray,
                     hist: FloatArray) -> None:
        """Raise :class:`InvalidState` unless the arrays fit this agent."""
        raise NotImplementedError

    def _bridge(self, r: FloatArray, rng: np.random.Generator, ll: FloatArray,
                aux: Any) -> tuple[FloatArray, FloatArray, Any, FloatArray, float] | None:
        """A warm refit's rescue when the reweighting leaves fewer than ``REFIT_MIN_ESS *
        particles`` effective particles: the particles ``u``, their log-likelihoods of
        ``r``, filter states, log weights and the acceptance rate of a route from the
        history's posterior to the window's, or None (the default: no such route; the
        window is fitted from the prior). ``ll`` and ``aux`` are the current particles'
        log-likelihoods of ``r`` and filter states at its end (the reweighting's pass)."""
        return None

    # --- fitting -----------------------------------------------------------------------

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Posterior given ``returns`` (oldest first) by likelihood-tempered SMC from the prior.

        ``runs`` runs of ``particles`` prior draws in one batch; each raises its
        likelihood's power as far as keeps its ESS at ``ess_threshold``
        (bisection, :func:`._sir.next_temperature`), resamples and moves
        (:meth:`_move`) until the power is 1. Split R-hat and ESS across
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
                    f"the {self._label} posterior was not reached in {MAX_STAGES} tempering "
                    f"stages (the slowest run got to {float(gamma.min()):.3g} of the "
                    "likelihood): check the series for stale stretches or a unit mistake")
            active = [g for g in range(runs) if gamma[g] < 1.0]
            for g in active:
                b = blocks[g]
                nxt = _sir.next_temperature(logw[b], ll[b], float(gamma[g]),
                                            self.ess_threshold * per)
                logw[b] += scaled(ll[b], nxt - gamma[g])
                gamma[g] = nxt
            idx = np.concatenate([np.arange(blocks[g].start, blocks[g].stop) for g in active])
            powers = np.repeat(gamma[active], per)
            enough = 0.95 if np.any(gamma[active] >= 1.0) else STAGE_MOVED
            moved = self._move(r, u[idx], logw[idx], np.vstack([ll[idx], aux[:, idx]]),
                               powers, rng, len(active), enough)
            u[idx], ll[idx], aux[:, idx], acceptance = moved
            logw[idx] = 0.0
            stages += 1
        draws = m.draws(m.from_unconstrained(u))
        keep = _sir.systematic_resample(np.full(u.shape[0], 1.0 / u.shape[0]),
                                        float(rng.random()), per)
        self._install(r, u[keep], ll[keep], self._unstack(aux[:, keep]), np.zeros(per), rng)
        self.refit_route = "fit"
        self._finish_fit({k: v.reshape(runs, per) for k, v in draws.items()}, acceptance, start)
        return self

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Warm re-anchoring on a trailing window: the posterior given ``returns`` only.

        The same target as ``fit(returns)``. The particles (the posterior given
        the absorbed history) are reweighted by ``p(returns | theta) /
        p(history | theta)`` - one filter pass over the window, which also
        gives each particle's filter state at the window's end - and, when the
        ESS falls below ``ess_threshold * particles``, resampled and moved
        targeting the window's posterior. Below ``REFIT_MIN_ESS * particles``
        effective particles the subclass's :meth:`_bridge` may carry the
        particles from the history's posterior to the window's; without one,
        or if it stalls, the window is fitted from the prior (:meth:`fit`).
        ``refit_route`` says which. A refused window leaves the agent as it was.
        """
        if not self._fitted:
            return self.fit(returns, seed=seed)
        r, rng, ll, aux, logw = self._reweighted(returns, seed)
        route = self._route(logw)
        if route == "prior":
            return self._refit_from_prior(r, rng)
        if route == "bridge":
            bridged = self._bridge(r, rng, ll, aux)
            if bridged is None:
                return self._refit_from_prior(r, rng)
            u, ll, aux, logw, acc = bridged
            self._install(r, u, ll, aux, logw, rng)
            self._acceptance = acc
        elif route == "reweight":
            self._install(r, self._u, ll, aux, logw, rng)  # healthy weights: as IBIS would
        else:
            self._move_installed(r, ll, aux, logw, rng, self._reweighted_moved)
        self.refit_route = route
        return self

    def _refit_from_prior(self, r: FloatArray, rng: np.random.Generator) -> Self:
        self.fit(r, seed=rng)
        self.refit_route = "prior"
        return self

    def _reweighted(self, returns: ArrayLike,
                    seed: Seed) -> tuple[FloatArray, np.random.Generator, FloatArray, Any,
                                         FloatArray]:
        """A warm refit's start: the window, its generator, its log-likelihoods and filter
        states, and the particles' weights reweighted from the history to the window."""
        r = self._history(returns)
        rng = np.random.default_rng(rng_from(seed).integers(0, 2**63 - 1))
        ll, aux = self._model.filter_fast(r, self._theta)
        logw = _sir.reweighted(self._logw, ll, self._ll)
        return r, rng, ll, self._unstack(aux), logw

    def _move_installed(self, r: FloatArray, ll: FloatArray, aux: Any, logw: FloatArray,
                        rng: np.random.Generator, enough: float) -> None:
        """Resample-move the current particles at ``logw`` targeting the posterior given
        ``r`` and install them (a warm refit's or an update's rejuvenation).

        ``r`` is only read - by the model's ``filter_fast`` and by
        :meth:`_start_history`, which copies it into a new buffer - so it may be
        a view of the history buffer (:attr:`_returns`)."""
        u, ll, aux, acc = self._move(r, self._u, logw, np.vstack([ll, aux]),
                                     np.ones(self.particles), rng, 1, enough)
        self._install(r, u, ll, self._unstack(aux), np.zeros(self.particles), rng)
        self._acceptance = acc

    def _move(self, r: FloatArray, u: FloatArray, logw: FloatArray, aux: FloatArray,
              powers: FloatArray, rng: np.random.Generator, runs: int,
              enough: float = 0.95) -> tuple[FloatArray, FloatArray, FloatArray, float]:
        """Resample each run by ``logw`` and move it, targeting ``prior * L(r)^power``.

        ``u`` ``(S, d)``; ``aux`` ``(1 + k, S)`` holds each particle's ``log
        L(r)`` and its filter state; ``powers`` ``(S,)`` each particle's run's
        power. Returns the particles, their log-likelihoods and filter states
        ``(k, S)``, and the acceptance rate.
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
            return lp + scaled(ll, powers), np.vstack([ll, state])

        current = (m.log_prior_u(u) + scaled(aux[0], powers), aux)
        u2, lt, aux2, rate, _ = _sir.independent_moves(u, log_target, current, rng, MOVES, mean,
                                                        cov, enough_moved=enough, runs=runs)
        if rate < LEAST_INDEPENDENT_ACCEPTANCE:
            u2, _, aux2, rate = _sir.random_walk_moves(
                u2, log_target, (lt, aux2), rng, MOVES, (2.38**2 / d) * cov, runs=runs)
        return u2, aux2[0].copy(), aux2[1:].copy(), rate

    def _install(self, r: FloatArray, u: FloatArray, ll: FloatArray, aux: Any,
                 logw: FloatArray, rng: np.random.Generator) -> None:
        self._start_history(r)
        self._rng = rng
        if getattr(self, "_u", None) is not u:  # new particles: their constants anew
            self._u = u
            self._theta = self._model.from_unconstrained(u)
            self._new_particles()
        self._ll, self._aux = ll, aux
        self._logw = logw - np.max(logw)

    # --- online ------------------------------------------------------------------------

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
        dens, aux = self._filter_step(x)
        logw, e, total, out = self._reweigh(x, dens)
        self._append_return(x)
        self._ll, self._aux, self._logw = self._ll + dens, aux, logw
        if self._keep_reweighed(logw, e, total) < self.ess_threshold * self.particles:
            self._move_installed(self._returns, self._ll, self._aux, self._logw, self._rng,
                                 self._reweighted_moved)
        return out

    # --- the predictive ----------------------------------------------------------------

    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast:
        """VaR/ES of the next ``horizon`` returns' sum, with 90% credible intervals.

        Horizon 1 is over the particles (the subclass's predictive family);
        longer horizons simulate ``HORIZON_PATHS`` paths from each of
        ``HORIZON_DRAWS`` particles (systematically resampled), drawn from ``seed``.
        """
        levels = check_alphas(alphas)
        h = self._check_horizon(horizon)
        self._require_fitted()
        if h == 1:
            return self._forecast_days(self._theta, self._day_cache(), [self._aux],
                                       [self._weight_memo()[0]], levels)[0]
        rng = rng_from(seed)
        idx = _sir.systematic_resample(self._weight_memo()[0], float(rng.random()),
                                       HORIZON_DRAWS)
        paths = self._simulate_paths(idx, h, rng)
        return Forecast(model=self.name, horizon=h,
                        levels=risk_measures(EmpiricalFamily(paths), levels))

    # --- diagnostics and the generative side -------------------------------------------

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, FloatArray]:
        """``n`` prior draws of the model's parameters."""
        n = check_whole("n", n, 1, 10**7)
        m = self._model
        return dict(m.draws(m.sample_prior(n, rng_from(seed))))

    def posterior_draws(self) -> dict[str, FloatArray]:
        """The particles resampled to equal weights (systematic, deterministic offset 0.5)."""
        self._require_fitted()
        idx = _sir.systematic_resample(self._weight_memo()[0], 0.5)
        return dict(self._model.draws(self._theta.take(idx)))

    # --- state -------------------------------------------------------------------------

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        scalars = {**self._smc_scalars(), "refit_route": self.refit_route}
        arrays = {"history": self.history, "u": self._u, "ll": self._ll,
                  self._aux_key: self._aux, "logw": self._logw}
        return scalars, arrays

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            u = np.asarray(arrays["u"], dtype=float)
            ll, aux, logw = (np.asarray(arrays[k], dtype=float)
                             for k in ("ll", self._aux_key, "logw"))
            hist = np.asarray(arrays["history"], dtype=float)
            rng, fit_diag, acceptance, seconds = self._read_smc_scalars(scalars)
            route = str(scalars.get("refit_route", "fit"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidState(f"{self.name} state is incomplete or malformed: {exc}") from exc
        s = self.particles
        if u.shape != (s, self._model.DIM) or any(v.shape != (s,) for v in (ll, logw)) or (
                hist.ndim != 1 or hist.size < self.min_observations):
            raise InvalidState(f"{self.name} state arrays do not match {s} particles")
        self._check_state(u, aux, ll, logw, hist)
        if not np.all(np.isfinite(self._model.log_prior_u(u))):
            raise InvalidState(f"{self.name} state holds particles outside the prior's support")
        if np.any(np.isnan(ll)) or np.any(ll == np.inf):
            raise InvalidState(f"{self.name} state's log-likelihoods are NaN or +inf")
        self._check_log_weights(logw)
        self._install(hist, u, ll, aux, logw, rng)
        self._restore(logw, fit_diag, acceptance, seconds)
        self.refit_route = route
