"""What the online particle agents share: sizes, the history buffer, the state's SMC part.

``GarchT``, ``HarArch`` and :class:`._particle_agent.ParticleAgent` (so
``BetaSkewTEgarch`` and the Markov-switching agents) hold a weighted particle
posterior that absorbs returns one at a time (IBIS) and is moved given the
whole history. :class:`OnlineAgent` checks their sizes (``particles``,
``runs``, ``ess_threshold``), holds the constants they share (the draws and
paths of a longer horizon, the ESS below which a warm refit leaves its warm
route), chooses a warm refit's route from the reweighted weights
(:meth:`OnlineAgent._route`), keeps that history in a buffer that doubles
when full (an update appends in O(1), where ``np.append`` would copy the
history every day), reweighs an update's particles by the day's log densities
(:meth:`OnlineAgent._reweigh` and :meth:`OnlineAgent._keep_reweighed`, the one
IBIS step: new log weights, their predictive density, normalized weights kept and
their ESS, by GarchT's own rule for GarchT), keeps the normalized weights
of the log weights it holds (formed once per log-weight array, read-only),
finishes a fit the same way (split R-hat and ESS across runs, timing, the
convergence warning), runs ``forecast_block`` at horizon 1 (the days on one
particle set solved together), and reads and writes the part of
:meth:`~.base.Agent.state` they all have: the generator, the fit's
diagnostics, the last acceptance rate and the fit's seconds, and the check
of the particles' log weights.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter, InvalidReturns, InvalidState
from ..types import WEIGHTS_MIN_SHARE, Diagnostics, Forecast
from . import _sir
from .base import Agent, Seed, check_real, check_whole
from .diagnostics import fit_record, smc_diagnostics, summarize

FloatArray = NDArray[np.float64]

#: Most particles one fit holds (particles x runs), and most runs.
MAX_PARTICLES, MAX_RUNS = 200_000, 64
#: Default particles of GarchT, GarchEVT and BetaSkewTEgarch: 500, not 1,000, since
#: 2026-12-07 - the rows' projected two-worker CPU makespan over arch 2.54x -> 1.67x (the
#: measured wall ratio: median 2.78x -> 2.0x) with every model check inside its tolerance
#: (docs/models-score-driven.md, "Fewer particles"). HarArch and the Markov-switching
#: agents keep this class's 1,000.
DEFAULT_PARTICLES = 500
#: Draws and paths per draw for horizons > 1.
HORIZON_DRAWS = 200
HORIZON_PATHS = 500
#: Below this ESS fraction after a warm refit's reweighting, the agent leaves the warm route
#: (the arbiter's, the guards' and the fit warning's share: ``types.WEIGHTS_MIN_SHARE``).
REFIT_MIN_ESS = WEIGHTS_MIN_SHARE

#: A warm refit's route: fit from the prior, bridge from the history's posterior to the
#: window's, keep the reweighted particles, or resample and move them.
RefitRoute = Literal["prior", "bridge", "reweight", "move"]


class ParticleCost:
    """A particle agent's ``cost_hint``, read on the class or on an agent: ms of a backtest
    day at horizon 1 (``fixed_ms + per_thousand_ms * particles / 1000``: the filter, the
    forecast and the refits scale with the particles, a GPD stage or the day's fixed work
    does not) and of a 10-day forecast (over ``HORIZON_DRAWS`` resampled particles: the
    same at any count). On the class it reads :data:`DEFAULT_PARTICLES`, the default of
    every agent that uses it.
    """

    def __init__(self, fixed_ms: float, per_thousand_ms: float, horizon_ms: float) -> None:
        self.fixed_ms, self.per_thousand_ms, self.horizon_ms = (fixed_ms, per_thousand_ms,
                                                                horizon_ms)

    def __get__(self, obj: object, owner: type | None = None) -> tuple[float, float]:
        particles = getattr(obj, "particles", None) if obj is not None else None
        count = DEFAULT_PARTICLES if not isinstance(particles, int) else particles
        return (round(self.fixed_ms + self.per_thousand_ms * count / 1000.0, 3),
                self.horizon_ms)


class OnlineAgent(Agent):
    """An agent with an online particle posterior and the history it conditions on.

    Parameters
    ----------
    particles : int
        Particles in the online posterior, and per run in ``fit`` (>= 100).
    runs : int
        Independent SMC runs in ``fit``, for split R-hat across runs (>= 2;
        ``particles x runs <= MAX_PARTICLES``).
    ess_threshold : float
        Resample-move when the weights' ESS falls below this fraction of
        ``particles`` (0 < value < 1).

    Raises
    ------
    InvalidParameter
        Naming the value that is out of range.
    """

    _buf: FloatArray
    _n: int
    _rng: np.random.Generator
    _logw: FloatArray
    _fit_diag: dict[str, dict[str, float]]
    _acceptance: float
    _seconds: float
    _theta: Any
    #: ``(log weights, their normalized weights, sum of exp(log weights - m), m = their
    #: largest)`` for the log-weight array the agent holds (matched by identity; both
    #: arrays read-only: new weights are new arrays), so a day's update, ESS and forecast
    #: exponentiate it once (:meth:`_weight_memo`).
    _w_memo: tuple[FloatArray, FloatArray, float, float] | None = None
    particles: int
    runs: int
    #: Most days one particle set's horizon-1 forecasts are solved together (0: the agent
    #: has no vectorized horizon-1 block, ``forecast_block`` runs day by day).
    block_days = 0
    min_observations = 100
    needs_variation = True

    def __init__(self, particles: int = 1000, runs: int = 4, ess_threshold: float = 0.5) -> None:
        particles = check_whole("particles", particles, 100, MAX_PARTICLES)
        runs = check_whole("runs", runs, 2, MAX_RUNS)
        if particles * runs > MAX_PARTICLES:
            raise InvalidParameter(
                f"particles x runs = {particles * runs:,}, beyond the {MAX_PARTICLES:,} one fit "
                "may hold; lower particles or runs")
        self.particles, self.runs = int(particles), int(runs)
        self.ess_threshold = float(check_real("ess_threshold", ess_threshold, 0.0, 1.0,
                                              low_open=True, high_open=True))

    # --- the history ---------------------------------------------------------------

    def _start_history(self, r: FloatArray) -> None:
        """Hold ``r`` ``(n,)`` as the history (copied into a buffer with room to grow)."""
        cap = max(64, 1 << (r.size + 256).bit_length())
        self._buf = np.empty(cap)
        self._buf[: r.size] = r
        self._n = r.size

    def _append_return(self, x: float) -> None:
        """Add one return to the history (the buffer doubles when full)."""
        if self._n == self._buf.size:
            self._buf = np.concatenate([self._buf, np.empty(self._buf.size)])
        self._buf[self._n] = x
        self._n += 1

    @property
    def _returns(self) -> FloatArray:
        """The history ``(n,)``, a view of the buffer (copy it to keep it)."""
        return self._buf[: self._n]

    @property
    def history(self) -> FloatArray:
        """Returns the posterior conditions on (fit or refit window, then updates) ``(n,)``."""
        self._require_fitted()
        return self._buf[: self._n].copy()

    def _zero_density(self, x: float) -> InvalidReturns:
        """The error of an update whose return ``x`` has zero predictive density under
        every particle (the same class and message for every online agent)."""
        return InvalidReturns(
            f"{self.name}: return {x!r} has zero density under every particle; check its "
            "units (returns are fractions: 0.01 is 1%) or refit on a window that holds "
            "returns like it")

    # --- weights and diagnostics ------------------------------------------------------

    def _weights(self) -> FloatArray:
        """The particles' normalized weights ``(S,)`` (a copy: the caller may keep it)."""
        return self._weight_memo()[0].copy()

    def _keep_weights(self, logw: FloatArray, w: FloatArray, total: float,
                      top: float = 0.0) -> None:
        """Keep ``w = exp(logw - top) / total`` (``total`` the sum of those exps, ``top =
        max(logw)``) as :meth:`_weight_memo`'s for the log-weight array ``logw``: one the
        agent holds as ``_logw`` or is about to hold, or an update's reweighted cloud that a
        resample-move then replaces (its weights were formed for the ESS anyway). The memo
        is matched by identity, so one kept for an array the agent never holds is never
        read. Both arrays become read-only: an in-place write would leave the memo stale, so
        it raises instead."""
        logw.flags.writeable = False
        w.flags.writeable = False
        self._w_memo = (logw, w, total, top)

    def _weight_memo(self) -> tuple[FloatArray, float, float]:
        """``(_sir.normalized_weights(self._logw)`` (shared, read-only), ``exp(self._logw -
        m).sum()``, ``m = max(self._logw))``, computed once per log-weight array.

        ``m`` is 0 for every log-weight array the agents form; a loaded state's may be
        any (its weights are exact, not re-normalized), and the sum is shift-free."""
        memo, logw = self._w_memo, self._logw
        if memo is None or memo[0] is not logw:
            top = float(np.max(logw))
            e = np.exp(logw - top)
            total = e.sum()
            memo = (logw, e / total, float(total), top)  # e / total: normalized_weights
            self._keep_weights(*memo)
        return memo[1], memo[2], memo[3]

    def _reweigh(self, x: float,
                 dens: FloatArray) -> tuple[FloatArray, FloatArray, float, float]:
        """An IBIS update's new weights, from the day's log densities ``dens`` ``(S,)`` of
        the return ``x`` under each particle. The new weights are not kept (that is
        :meth:`_keep_reweighed`'s); the memo of the held weights may be filled
        (:meth:`_weight_memo`, whose sum the density reads).

        Returns ``logw = self._logw + dens - top`` (``top`` the largest: ``max(logw)`` is
        exactly 0), ``e = exp(logw)``, ``total = e.sum()`` and the log predictive density
        of ``x``, ``log sum_s w_s exp(dens_s)`` over the held normalized weights ``w`` (from
        :meth:`_weight_memo`'s sum, exponentiated once). GarchT, HarArch and
        :class:`._particle_agent.ParticleAgent` update through it.

        Raises
        ------
        InvalidReturns
            Every particle gives ``x`` zero density (:meth:`_zero_density`).
        """
        lw = self._logw + dens
        top = float(np.max(lw))
        if not np.isfinite(top):
            raise self._zero_density(x)
        _, before, m = self._weight_memo()  # exp(self._logw - m).sum(), m = max(self._logw)
        logw = lw - top
        e = np.exp(logw)
        total = float(e.sum())
        pred = (top - m) + float(np.log(total / before))  # m is 0 unless a state was loaded
        return logw, e, total, pred

    def _keep_reweighed(self, logw: FloatArray, e: FloatArray, total: float) -> float:
        """Keep :meth:`_reweigh`'s weights ``w = e / total`` as the memo's for ``logw`` (see
        :meth:`_keep_weights`) and return their ESS by the agent's rule,
        :meth:`_reweighed_ess`. As ``logw``'s largest entry is exactly 0, ``w`` is
        ``_sir.normalized_weights(logw)`` bit for bit."""
        w = e / total
        self._keep_weights(logw, w, total)
        return self._reweighed_ess(w, e, total)

    def _reweighed_ess(self, w: FloatArray, e: FloatArray, total: float) -> float:
        """The ESS an update's resample-move test reads, from :meth:`_reweigh`'s exps ``e``,
        their sum ``total`` and the normalized weights ``w = e / total``: ``1 / (w @ w)``,
        ``_sir.ess(logw)`` bit for bit (GarchT: its own rule, :func:`._garch_smc.ess`'s,
        the one its diagnostics read)."""
        return float(1.0 / np.dot(w, w))

    def _weights_ess(self) -> float:
        """The held weights' ESS, :func:`._sir.ess` (GarchT: its own rule)."""
        return _sir.ess(self._logw)

    def _diagnostics(self) -> Diagnostics:
        """The fit's diagnostics over its runs, the weights' ESS and the cloud they weigh:
        its actual size, the log weights' (as StudentT's), the one source of every online
        agent's ``Diagnostics.particles``."""
        return smc_diagnostics(self._fit_diag, ess=self._weights_ess(),
                               acceptance=self._acceptance, draws=self.runs * self.particles,
                               seconds=self._seconds, particles=int(self._logw.size))

    def _route(self, logw: FloatArray) -> RefitRoute:
        """A warm refit's route from the particles' log weights ``(S,)`` reweighted from
        the history to the window.

        ``"prior"`` when no weight is finite; else, by the weights' ESS (computed
        once): ``"bridge"`` below ``REFIT_MIN_ESS * particles`` (the window is
        unlike the history: a bridge if the agent has one, else a fit from the
        prior), ``"reweight"`` at or above ``ess_threshold * particles`` (keep the
        reweighted particles, as IBIS would), ``"move"`` between (resample and move
        them targeting the window's posterior).
        """
        if not np.any(np.isfinite(logw)):
            return "prior"
        ess = _sir.ess(logw)
        if ess < REFIT_MIN_ESS * self.particles:
            return "bridge"
        if ess >= self.ess_threshold * self.particles:
            return "reweight"
        return "move"

    # --- horizon-1 blocks -------------------------------------------------------------

    def _particle_set(self) -> tuple[Any, Any]:
        """The current particles' parameters (a move makes new ones: compared by identity)
        and the predictive's constants for them."""
        raise NotImplementedError

    def _day_state(self) -> tuple[Any, FloatArray]:
        """What a day's horizon-1 forecast reads besides the particle set, taken before the
        day's update (e.g. each particle's next variance and the log weights)."""
        raise NotImplementedError

    def _forecast_days(self, th: Any, cache: Any, states: list[Any], weights: list[FloatArray],
                       levels: tuple[float, ...]) -> list[Forecast]:
        """Horizon-1 forecasts from one particle set, one per day's :meth:`_day_state`."""
        raise NotImplementedError

    def _horizon_one_block(
        self, xs: FloatArray, levels: tuple[float, ...], seeds: Sequence[Seed]
    ) -> tuple[list[Forecast], FloatArray] | None:
        """:meth:`Agent.forecast_block` at horizon 1, vectorized (None if ``block_days`` is 0).

        The updates run day by day as :meth:`update` (resample-moves
        included); the forecasts of the days on one particle set are solved
        together, ``block_days`` at a time, by the code :meth:`forecast` runs
        for one day (so each day's numbers are the same, bit for bit).
        """
        if not self.block_days:
            return None
        forecasts: list[Forecast] = []
        dens = np.empty(xs.size)
        states: list[Any] = []
        weights: list[FloatArray] = []
        for j, x in enumerate(xs.tolist()):
            theta, cache = self._particle_set()
            state, w = self._day_state()
            states.append(state)
            weights.append(w)
            dens[j] = self.update(x)
            if self._theta is not theta or len(states) == self.block_days:
                forecasts += self._forecast_days(theta, cache, states, weights, levels)
                states, weights = [], []
        if states:
            forecasts += self._forecast_days(*self._particle_set(), states, weights, levels)
        return forecasts, dens

    # --- a fit's end ------------------------------------------------------------------

    def _finish_fit(self, draws: dict[str, ArrayLike], acceptance: float,
                    start: float) -> None:
        """Record a fit: split R-hat and ESS of ``draws`` (each ``(runs, particles)``),
        the acceptance rate and the seconds since ``start`` (``time.perf_counter``);
        warn if it did not converge."""
        rhat, ess_b, ess_t = summarize(draws)
        self._fit_diag = {"rhat": rhat, "ess_bulk": ess_b, "ess_tail": ess_t}
        self._acceptance = acceptance
        self._seconds = time.perf_counter() - start
        self._fitted = True
        self._warn_if_unconverged(self._diagnostics())

    # --- the state's common part -----------------------------------------------------

    def _smc_scalars(self) -> dict[str, Any]:
        """The state's scalars every online agent has (in this order)."""
        return {"rng": self._rng.bit_generator.state, "fit_diag": self._fit_diag,
                "acceptance": self._acceptance, "seconds": self._seconds}

    @staticmethod
    def _read_smc_scalars(
            scalars: Mapping[str, Any]) -> tuple[np.random.Generator, dict[str, dict[str, float]],
                                                 float, float]:
        """The generator, fit diagnostics, acceptance and seconds from a state's scalars.

        Raises ``KeyError``, ``TypeError``, ``ValueError`` (or ``AttributeError``)
        on malformed ones, for the caller to turn into :class:`InvalidState`.
        """
        rng = np.random.default_rng()
        rng.bit_generator.state = dict(scalars["rng"])
        fit_diag = fit_record(scalars["fit_diag"])
        return rng, fit_diag, float(scalars["acceptance"]), float(scalars["seconds"])

    def _check_log_weights(self, logw: FloatArray) -> None:
        """-inf drops a particle, but NaN, +inf or no finite weight is no posterior."""
        if np.any(np.isnan(logw)) or np.any(logw == np.inf) or not np.any(np.isfinite(logw)):
            raise InvalidState(f"{self.name} state's particle log weights are NaN, +inf or "
                               "all -inf")

    def _restore(self, logw: FloatArray, fit_diag: dict[str, dict[str, float]], acceptance: float,
                 seconds: float) -> None:
        """After installing a state's particles: its exact log weights and its scalars."""
        self._logw = logw.copy()  # exact, not re-normalized
        self._fit_diag = fit_diag
        self._acceptance = acceptance
        self._seconds = seconds
