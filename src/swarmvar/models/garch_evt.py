"""GarchEVT: conditional extreme value theory (McNeil & Frey 2000), fully Bayesian.

Two stages, as in McNeil & Frey:

1. a :class:`~swarmvar.models.garch_t.GarchT` posterior (GJR-GARCH(1,1)-t by
   default, the leverage effect; ``asymmetric=False`` for the symmetric
   filter) filters the returns: ``r_t = mu + sqrt(h_t) z_t``, and gives the
   standardized residuals ``z_t`` (unit variance, at the posterior mean)
   and, per particle, the next return's location ``mu_s`` and volatility
   ``sqrt(h_s)``;
2. the standardized losses ``x_t = -z_t`` get a semi-parametric law: the
   empirical distribution below a threshold ``u`` (by default the 90%
   quantile of the ``x_t``; ``threshold`` sets the level) and a Bayesian
   generalized Pareto tail above it (:mod:`swarmvar.models.gpd`: exact grid
   posterior of ``(xi, beta)``, Jeffreys Beta posterior of the exceedance
   probability ``p_u``).

The next loss under draw ``s`` is ``L = -mu_s + sqrt(h_s) X`` with ``X`` from
GPD draw ``s`` (GARCH particle ``s`` paired with an independent GPD posterior
draw, the two-stage approximation of the joint posterior), so each draw has a
closed-form conditional VaR (the tail estimator ``u + beta/xi
(((1-alpha)/p_u)^(-xi) - 1)``) and ES, and the shared
:func:`~swarmvar.models.risk.risk_measures` gives VaR/ES and their credible
intervals. ``update`` = ``GarchT.update`` plus an O(grid) GPD update with the
new standardized residual.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidState
from ..types import Diagnostics, Forecast
from ._garch_family import simulate_paths
from ._online_agent import DEFAULT_PARTICLES, ParticleCost
from .base import Agent, Seed, check_real, rng_from
from .garch_t import ASYMMETRIC_DEFAULT, BLOCK_DAYS, GarchT
from .gpd import (
    GPDPosterior,
    GPDTailFamily,
    body_suffix_sums,
    gpd_posterior,
    tail_level_measures_block,
)
from .risk import EmpiricalFamily, check_alphas, risk_measures, risk_measures_block

FloatArray = NDArray[np.float64]


def _own(seed: Seed) -> np.random.Generator:
    """A generator the agent owns (its state is saved), seeded from ``seed``."""
    return np.random.default_rng(int(rng_from(seed).integers(0, 2**63 - 1)))


class _Day(NamedTuple):
    """What a day's forecast reads: GARCH locations, volatilities, weights; GPD draws, body."""

    loc: FloatArray
    vol: FloatArray
    weights: FloatArray
    draws: tuple[FloatArray, FloatArray, FloatArray]
    body: FloatArray


#: Particles and paths per particle for horizons > 1 (filtered historical simulation).
HORIZON_PARTICLES, HORIZON_PATHS = 200, 1000


class GarchEVT(Agent):
    """GJR-GARCH(1,1)-t (or GARCH(1,1)-t) filter with a Bayesian generalized Pareto loss tail.

    Parameters
    ----------
    threshold : float in (0.5, 0.99)
        Quantile level of the standardized losses used as the GPD threshold.
    particles, runs, ess_threshold, asymmetric
        Passed to the :class:`~swarmvar.models.garch_t.GarchT` filter
        (``asymmetric``: GJR-GARCH, the leverage effect; ``particles`` 500 by default).
    """

    name = "GarchEVT"
    min_observations = 200
    needs_variation = True
    #: ms of a backtest day at h = 1 (1.0 at 1,000 particles, ~0.87 at 500: the GPD stage
    #: does not scale with the particles), a 10-day forecast.
    cost_hint = ParticleCost(0.74, 0.26, 90.0)

    def __init__(self, threshold: float = 0.90, particles: int = DEFAULT_PARTICLES, runs: int = 4,
                 ess_threshold: float = 0.5, asymmetric: bool = ASYMMETRIC_DEFAULT) -> None:
        self.threshold = check_real("threshold (a quantile level, e.g. 0.90)", threshold, 0.5,
                                    0.99, low_open=True, high_open=True)
        self._garch = GarchT(particles=particles, runs=runs, ess_threshold=ess_threshold,
                             asymmetric=asymmetric)
        self.particles, self.runs = self._garch.particles, self._garch.runs
        self.ess_threshold, self.asymmetric = self._garch.ess_threshold, self._garch.asymmetric

    # --- fitting ------------------------------------------------------------------

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """GARCH-t posterior, then the GPD tail of its standardized losses."""
        y = self._history(returns)
        rng = _own(seed)
        started = time.perf_counter()
        garch = GarchT(self.particles, self.runs, self.ess_threshold, self.asymmetric)
        if self.return_bound > garch.return_bound:  # a book's agent: its filter takes them too
            garch.take_book_returns()
        garch.fit(y, seed=int(rng.integers(0, 2**31 - 1)))
        self._install(garch, rng, started)
        return self

    def take_book_returns(self) -> Self:
        """Take a book's computed returns (:meth:`Agent.take_book_returns`), and so does
        the GARCH-t filter inside: the one held now, each one :meth:`fit` builds, and
        the one a state brings back (a state from before the widening carries none).

        Returns
        -------
        Self
            This agent, widened.
        """
        super().take_book_returns()
        self._garch.take_book_returns()
        return self

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Warm ``GarchT.refit`` on the window, then the GPD tail rebuilt on its residuals.

        The GPD grid posterior is exact and cheap (tens of ms), so only the GARCH
        part is warm-started.
        """
        if not self._fitted:
            return self.fit(returns, seed=seed)
        y = self._history(returns)
        rng = _own(seed) if seed is not None else copy.deepcopy(self._rng)
        started = time.perf_counter()
        # Refit a copy, all-or-nothing. A shallow one is enough: GarchT.refit binds new
        # arrays to its attributes and never writes into the ones it holds.
        garch = copy.copy(self._garch)
        garch.refit(y, seed=int(rng.integers(0, 2**31 - 1)))
        self._install(garch, rng, started)
        return self

    def _install(self, garch: GarchT, rng: np.random.Generator, started: float) -> None:
        losses = -garch.standardized_residuals()
        u = float(np.quantile(losses, self.threshold))
        excess = losses[losses > u] - u
        gpd = gpd_posterior(excess, losses.size)
        self._garch, self._rng, self._u = garch, rng, u
        self._body = np.sort(losses[losses <= u])
        self._suffix: FloatArray | None = None
        self._gpd = gpd
        self._draws = gpd.draws(self.particles, rng)
        self._seconds = time.perf_counter() - started
        self._fitted = True

    # --- online ---------------------------------------------------------------------

    def update(self, r: float) -> float:
        """``GarchT.update`` then the GPD posterior with the new standardized loss.

        Returns the GARCH-t log predictive density of ``r`` (the GPD tail refines
        the VaR/ES, not the one-step density).
        """
        self._require_fitted()
        return self._absorb(self._check_return(r))

    def _absorb(self, value: float) -> float:
        """:meth:`update` of a checked return."""
        # The GPD steps below cannot fail for a finite residual, so after the
        # GARCH update (all-or-nothing itself) nothing can leave a half-update.
        lpd = self._garch.update(value)
        x = -self._garch.newest_residual()
        if x > self._u:
            self._gpd = self._gpd.add_excess(x - self._u)
            self._draws = self._gpd.draws(self.particles, self._rng)
        else:
            self._gpd = self._gpd.add_non_exceedance()
            at = int(np.searchsorted(self._body, x))
            self._body = np.concatenate((self._body[:at], [x], self._body[at:]))
            self._suffix = None
            k, n = self._gpd.n_exceed, self._gpd.n_obs
            xi, beta, _ = self._draws
            self._draws = (xi, beta, self._rng.beta(k + 0.5, n - k + 0.5, self.particles))
        return lpd

    def _horizon_one_block(
        self, xs: FloatArray, levels: tuple[float, ...], seeds: Sequence[Seed]
    ) -> tuple[list[Forecast], FloatArray]:
        """:meth:`Agent.forecast_block` at horizon 1, vectorized.

        The updates run day by day as :meth:`update`; each day's family is
        recorded as :meth:`family` would build it, and the days that share the
        GARCH particles are solved together
        (:func:`~swarmvar.models.gpd.tail_level_measures_block`, the same
        numbers, bit for bit, as :meth:`forecast` day by day).
        """
        dens = np.empty(xs.size)
        days: list[_Day] = []
        sets: list[object] = []  # each day's GARCH particle set (its parameters' object)
        garch = self._garch
        for j, x in enumerate(xs.tolist()):
            # next_moments() and family()'s vol = scale * sqrt(df / (df - 2)), the same
            # operations without the copies; the per-particle factors once per particle set
            th = garch._theta  # noqa: SLF001 - the filter is this agent's own
            if not sets or th is not sets[-1]:
                nm2, unit = th.nu - 2.0, np.sqrt(th.nu / (th.nu - 2.0))
            scale = np.sqrt(garch._cloud.h * nm2 / th.nu)  # noqa: SLF001
            days.append(_Day(th.mu, scale * unit, garch._weights(), self._draws,  # noqa: SLF001
                             self._body))
            sets.append(th)
            dens[j] = self._absorb(x)
        forecasts: list[Forecast] = []
        start = 0
        for end in range(1, len(days) + 1):  # runs of days on one particle set, in chunks
            if end == len(days) or end - start == BLOCK_DAYS or sets[end] is not sets[start]:
                forecasts += self._forecast_days(days[start:end], levels)
                start = end
        return forecasts, dens

    def _forecast_days(self, days: list[_Day], levels: tuple[float, ...]) -> list[Forecast]:
        """Horizon-1 forecasts of days that share the GARCH particles' locations."""
        w = np.stack([d.weights for d in days])
        norm = w / w.sum(axis=1, keepdims=True)  # as the family normalizes them
        xi, beta, p_u = (np.stack([d.draws[i] for d in days]) for i in range(3))
        vol = np.stack([d.vol for d in days])
        loc = -days[0].loc
        m = tail_level_measures_block(self._u, xi, beta, p_u, loc, vol, norm, levels)
        out = risk_measures_block(levels, m.var, m.es, m.cond_var, m.cond_es, norm)
        for i in m.redo:
            d = days[i]
            family = GPDTailFamily.unchecked(self._u, *d.draws, d.body, body_suffix_sums(d.body),
                                             loc=-d.loc, scale=d.vol, weights=d.weights)
            out[i] = risk_measures(family, levels)
        return [Forecast(self.name, 1, day) for day in out]

    # --- forecasting --------------------------------------------------------------------

    def family(self) -> GPDTailFamily:
        """The one-step conditional loss law per GARCH particle, paired with GPD draws."""
        self._require_fitted()
        loc, scale, df, w = self._garch.next_moments()
        vol = scale * np.sqrt(df / (df - 2.0))  # sqrt(h_s): residuals have unit variance
        xi, beta, p_u = self._draws
        if self._suffix is None:  # the body's suffix sums, once per body
            self._suffix = body_suffix_sums(self._body)
        # the arrays are the agent's own, valid and (the body) sorted: no checks or copies
        return GPDTailFamily.unchecked(self._u, xi, beta, p_u, self._body, self._suffix,
                                       loc=-loc, scale=vol, weights=w)

    def forecast(self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *,
                 seed: Seed = None) -> Forecast:
        """VaR/ES of the next ``horizon``-period log return.

        Horizon 1 is closed form per draw. Longer horizons use filtered
        historical simulation with GPD tails: per resampled particle, paths of
        the GARCH recursion driven by standardized losses drawn from the body
        (bootstrap) or the particle's GPD tail. ``seed=None`` uses a copy of the
        agent's generator, so the same state gives the same forecast.
        """
        self._require_fitted()
        levels = check_alphas(alphas)
        h = self._check_horizon(horizon)
        if h == 1:
            return Forecast(self.name, 1, risk_measures(self.family(), levels))
        rng = copy.deepcopy(self._rng) if seed is None else rng_from(seed)
        paths = self._simulate_paths(h, rng)
        return Forecast(self.name, h, risk_measures(EmpiricalFamily(paths), levels))

    def _simulate_paths(self, horizon: int, rng: np.random.Generator) -> FloatArray:
        cloud = self._garch.posterior_particles()
        w = cloud.weights
        idx = np.minimum(np.searchsorted(np.cumsum(w), (rng.random() + np.arange(
            HORIZON_PARTICLES)) / HORIZON_PARTICLES), w.size - 1)
        xi, gbeta, p_u = (d[idx][:, None] for d in self._draws)

        def shocks(g: np.random.Generator, shape: tuple[int, int]) -> FloatArray:
            return -self._draw_losses(xi, gbeta, p_u, g, shape)

        return simulate_paths(cloud.theta.take(idx), cloud.h_next[idx], horizon, HORIZON_PATHS,
                              rng, shocks)

    def _draw_losses(self, xi: FloatArray, beta: FloatArray, p_u: FloatArray,
                     rng: np.random.Generator, shape: tuple[int, int]) -> FloatArray:
        """Standardized losses from the body (bootstrap) or the GPD tail, ``shape``."""
        tail = rng.random(shape) < p_u
        v = rng.random(shape)
        out = self._body[rng.integers(0, self._body.size, shape)]
        # the GPD quantile only where a tail draw is used (~1 - threshold of them): the
        # same elementwise operations on those entries as on the whole array
        rows = np.nonzero(tail)[0]
        xi_t, beta_t, log_v = xi[rows, 0], beta[rows, 0], np.log(v[tail])
        small = np.abs(xi_t) < 1e-9
        safe = np.where(small, 1.0, xi_t)
        gpd = np.where(small, -beta_t * log_v, beta_t * np.expm1(-safe * log_v) / safe)
        out[tail] = self._u + gpd
        return np.asarray(out)

    # --- diagnostics, generative side, state -------------------------------------------

    def _diagnostics(self) -> Diagnostics:
        d = self._garch.diagnostics
        return Diagnostics(method=f"{d.method}+gpd-grid", rhat=d.rhat, ess_bulk=d.ess_bulk,
                           ess_tail=d.ess_tail, ess=d.ess, acceptance=d.acceptance,
                           draws=d.draws, seconds=self._seconds, particles=d.particles)

    def tail_posterior(self) -> GPDPosterior:
        """The current grid posterior of the GPD tail of standardized losses."""
        self._require_fitted()
        return self._gpd

    @property
    def threshold_loss(self) -> float:
        """The GPD threshold ``u`` on the standardized-loss scale."""
        self._require_fitted()
        return self._u

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, FloatArray]:
        """Prior draws of the GARCH-t parameters (the generative model of the filter)."""
        return self._garch.sample_prior(n, seed=seed)

    def simulate(self, params: Mapping[str, float], n: int, *, seed: Seed = None) -> FloatArray:
        """Returns from (GJR-)GARCH(1,1)-t at ``params``; the t innovations lie in the
        GPD domain of attraction with ``xi = 1 / nu``."""
        return self._garch.simulate(params, n, seed=seed)

    def posterior_draws(self) -> dict[str, FloatArray]:
        """GARCH-t draws (equal weights) and the GPD draws ``gpd_xi``, ``gpd_beta``, ``gpd_p_u``."""
        self._require_fitted()
        draws = self._garch.posterior_draws()
        names = ("gpd_xi", "gpd_beta", "gpd_p_u")
        draws.update(zip(names, (d.copy() for d in self._draws), strict=True))
        return draws

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        g = self._gpd
        scalars: dict[str, Any] = {
            "rng": self._rng.bit_generator.state, "u": self._u, "n_exceed": g.n_exceed,
            "n_obs": g.n_obs, "seconds": self._seconds,
        }
        arrays: dict[str, NDArray[Any]] = {
            "garch": np.frombuffer(self._garch.state(), dtype=np.uint8), "body": self._body,
            "xi_grid": g.xi, "log_beta_grid": g.log_beta, "log_post": g.log_post,
            "draw_xi": self._draws[0], "draw_beta": self._draws[1], "draw_p_u": self._draws[2],
        }
        return scalars, arrays

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            if arrays["garch"].dtype != np.uint8:
                raise InvalidState("GarchEVT state's GARCH part is not bytes")
            garch = GarchT.from_state(arrays["garch"].tobytes())
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = scalars["rng"]
            u, seconds = float(scalars["u"]), float(scalars["seconds"])
            gpd = GPDPosterior(np.asarray(arrays["xi_grid"], dtype=float),
                               np.asarray(arrays["log_beta_grid"], dtype=float),
                               np.asarray(arrays["log_post"], dtype=float),
                               int(scalars["n_exceed"]), int(scalars["n_obs"]))
            body = np.asarray(arrays["body"], dtype=float)
            draws = tuple(np.asarray(arrays[k], dtype=float)
                          for k in ("draw_xi", "draw_beta", "draw_p_u"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"GarchEVT state is incomplete or malformed: {exc}") from exc
        if garch.params() != self._garch.params():
            raise InvalidState("GarchEVT state's GARCH settings differ from its parameters")
        if self.return_bound > garch.return_bound:  # a state whose filter was not widened
            garch.take_book_returns()
        if (gpd.log_post.shape != (gpd.xi.size, gpd.log_beta.size) or body.ndim != 1
                or any(d.shape != (self.particles,) for d in draws)
                or not np.isfinite(u) or not np.all(np.isfinite(body))
                or bool(np.any(np.diff(body) < 0)) or (body.size and body[-1] > u)):
            raise InvalidState("GarchEVT state arrays are inconsistent")
        xi, beta, p_u = draws
        grid_ok = (gpd.xi.ndim == 1 and gpd.log_beta.ndim == 1 and gpd.xi.size >= 2
                   and gpd.log_beta.size >= 2 and bool(np.all(np.isfinite(gpd.xi)))
                   and bool(np.all(np.isfinite(gpd.log_beta)))
                   and bool(np.all(np.diff(gpd.xi) > 0)) and bool(np.all(np.diff(gpd.log_beta) > 0))
                   and not bool(np.any(np.isnan(gpd.log_post)))
                   and bool(np.any(np.isfinite(gpd.log_post)))
                   and 1 <= gpd.n_exceed <= gpd.n_obs)
        if not (grid_ok and body.size >= 1 and bool(np.all(np.isfinite(xi)))
                and bool(np.all((beta > 0) & np.isfinite(beta)))
                and bool(np.all((p_u > 0) & (p_u < 1)))):
            raise InvalidState("GarchEVT state's tail posterior or draws are out of range "
                               "(GPD grid, scale > 0, exceedance probability in (0, 1))")
        self._garch, self._rng, self._u, self._seconds = garch, rng, u, seconds
        self._gpd, self._body, self._suffix = gpd, body, None
        self._draws = (draws[0], draws[1], draws[2])
