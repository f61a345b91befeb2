"""``BayesianBootstrap``: historical simulation with a posterior over the weights.

Model. The next return is drawn from the distribution that puts weight
``w_i`` on each of the last ``N`` returns (a rolling window, default 500), and
the weights have the Bayesian bootstrap posterior ``w ~ Dirichlet(1, ..., 1)``
(Rubin 1981: the posterior of a multinomial model with a non-informative
Dirichlet prior on the observed support). Each posterior draw is a weighted
empirical distribution; its VaR is the weighted quantile and its ES the
weighted tail mean, and the spread of those across draws is the credible
interval. The posterior predictive is the plain empirical distribution
(the mean of Dirichlet(1,...,1) is uniform), so the point VaR equals classic
historical-simulation VaR.

Online. The window is a ring buffer: ``update`` overwrites the oldest return
in O(1). Its log score smooths the empirical predictive with a Gaussian kernel
(Silverman's bandwidth), since a discrete predictive has no density at a new
value.

Horizon 1 draws only the weights of the largest losses (every VaR/ES at the
levels asked depends on no other), exactly: see :meth:`BayesianBootstrap._conditional`.
Horizons ``h > 1`` resample ``h`` returns per path from each draw's weighted
empirical distribution and sum them.

Blocks. :meth:`BayesianBootstrap.forecast_block` (the backtest between refits)
does a run of horizon-1 days together when each day has its own generator:
the days' windows are the rows of one matrix, sorted, KDE-scored and
historically simulated at once; each day still draws from its own generator
what :meth:`~BayesianBootstrap.forecast` draws, so the numbers are the loop's,
bit for bit. Its tail sums and counts run in buffers that every day of the
block reuses (:class:`_TailDays`: the same arithmetic, less of it around).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter, InvalidState
from ..types import Forecast, RiskMeasure
from .base import Agent, Seed, check_whole, rng_from
from .risk import EmpiricalFamily, check_alphas, risk_measures

#: The tail-restricted draws first keep the ``n (1 - alpha) + 4 sqrt(n (1 - alpha)) + 2``
#: largest losses (29 of 500 at 0.975; 41 before the extension below): a draw
#: puts less than ``1 - alpha`` of its weight on them with probability ~3e-5
#: (~3% of days have one such draw), and then it gets more rows
#: (:func:`_split_gamma`), so the margin trades rows for extensions (speed),
#: never accuracy. Margins from 1.5 to 4 sd cost the same to within noise.
_TAIL_SD, _TAIL_PAD = 4.0, 2.0

#: Days of a :meth:`BayesianBootstrap.forecast_block` done together (the
#: ``(days, window)`` matrices stay small).
_BLOCK_DAYS = 32
#: Largest window, draws or paths (100,000 returns are 400 years of trading days).
MAX_SIZE = 100_000
#: Most values one forecast may hold: draws x window (the weights) or draws x paths.
MAX_CELLS = 20_000_000
#: Values of simulated daily returns held at once by an h-day forecast.
_PATH_CELLS = 4_000_000


class BayesianBootstrap(Agent):
    """Historical simulation with Dirichlet(1,…,1) posterior weights over a rolling window.

    Parameters
    ----------
    window : int
        Number of most recent returns kept (default 500).
    draws : int
        Posterior draws of the weight vector per forecast (default 1000).
    paths : int
        Simulated paths per draw for horizons > 1 (default 200).
    """

    name = "BayesianBootstrap"
    min_observations = 50
    cost_hint = (0.3, 150.0)  # ms: a backtest day at h = 1, a 10-day forecast

    def __init__(self, window: int = 500, draws: int = 1000, paths: int = 200) -> None:
        window = check_whole("window", window, 50, MAX_SIZE)
        draws = check_whole("draws", draws, 20, MAX_SIZE)
        paths = check_whole("paths", paths, 50, MAX_SIZE)
        if draws * max(window, paths) > MAX_CELLS:
            raise InvalidParameter(
                f"draws x max(window, paths) = {draws * max(window, paths):,} values, beyond the "
                f"{MAX_CELLS:,} one forecast may hold in memory; lower draws, window or paths")
        self.window, self.draws, self.paths = window, draws, paths
        #: which order statistics of ``draws`` values are their 5% and 95% quantiles
        self._ci_index = _even_quantile_index(self.draws)
        # zeros, not np.empty: the slots a short history leaves unfilled are saved with the
        # state, so they must not hold whatever the allocator left there
        self._buffer = np.zeros(self.window)
        self._count = 0
        self._head = 0
        self._rng = np.random.default_rng(0)

    # --- posterior -------------------------------------------------------------

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> Self:
        """Keep the last ``window`` returns; seed the Dirichlet draws."""
        x = self._history(returns)[-self.window :]
        rng = rng_from(seed)  # checked before anything changes
        self._buffer = np.zeros(self.window)  # unfilled slots zero (the state's bytes)
        self._buffer[: x.size] = x
        self._count, self._head = x.size, x.size % self.window
        self._rng = rng
        self._fitted = True
        return self

    def sample(self) -> NDArray[np.float64]:
        """The returns in the window, oldest first."""
        self._require_fitted()
        if self._count < self.window:
            return self._buffer[: self._count].copy()
        return np.roll(self._buffer, -self._head)

    def update(self, r: float) -> float:
        """Replace the oldest return by ``r``; return the kernel-smoothed log score of ``r``."""
        self._require_fitted()
        value = self._check_return(r)
        x = self._buffer[: self._count]
        log_score = float(_log_scores(x[None, :], np.sort(x)[None, :], np.array([value]))[0])
        self._buffer[self._head] = value
        self._head = (self._head + 1) % self.window
        self._count = min(self._count + 1, self.window)
        return log_score

    def _dirichlet(self, rng: np.random.Generator, size: int) -> NDArray[np.float64]:
        g = rng.standard_exponential((self.draws, size))
        return np.asarray(g / g.sum(axis=1, keepdims=True))

    def _one_day(self, x: NDArray[np.float64], rng: np.random.Generator,
                 levels: tuple[float, ...]) -> tuple[RiskMeasure, ...]:
        """Horizon 1: exact historical-simulation point values, intervals from the draws."""
        ascending = np.sort(x)  # numpy's vectorized sort
        cond_var, cond_es = self._conditional(ascending, rng, levels)
        return self._measures(levels, _hs_points(ascending[None, :], levels)[0], cond_var,
                              cond_es)

    def _conditional(self, ascending: NDArray[np.float64], rng: np.random.Generator,
                     levels: tuple[float, ...]
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The draws' conditional VaR and ES ``(levels, draws)`` of the window ``ascending``.

        The Dirichlet posterior is restricted, exactly, to the largest losses:
        with ``w = g / sum(g)``, ``g_i ~ Exp(1)``, only the ``K`` largest losses
        can hold a tail quantile at ``alpha`` when they hold at least ``1 -
        alpha`` of the weight, and the other ``N - K`` weights enter only
        through their sum, which is ``Gamma(N - K, 1)``: ``K`` exponentials and
        one gamma per draw are the same distribution as the full Dirichlet for
        every VaR/ES at these levels, at a fraction of the cost. The rest of
        the mass sits on the ``(K+1)``-th largest loss, below every such VaR.
        A draw whose ``K`` largest losses hold too little weight is extended
        (:func:`_split_gamma`, exact) until they hold enough.

        Per draw, with the losses in descending order ``L_0 >= L_1 >= ...`` and
        ``C_m``, ``A_m`` the cumulative weight and weighted loss of the ``m``
        largest, the VaR is ``L_m`` for the largest ``m`` with ``C_m <= 1 -
        alpha`` and ``E[(L - VaR)^+] = A_m - VaR C_m``: two cumulative sums
        shared by every level instead of a sort and a pass per level. The same
        numbers (to rounding) as :func:`~swarmvar.models.risk.risk_measures`
        on the weighted empirical distributions (tested).
        """
        n = ascending.size
        k = _tail_rows(n, 1.0 - min(levels))
        top = rng.standard_exponential((k, self.draws))  # one row per loss
        rest = rng.standard_gamma(n - k, size=self.draws) if k < n else np.zeros(self.draws)
        return _tail_measures(top, rest, -ascending, rng, 1.0 - np.asarray(levels))

    def _measures(self, levels: tuple[float, ...], point: list[tuple[float, float]],
                  cond_var: NDArray[np.float64], cond_es: NDArray[np.float64]
                  ) -> tuple[RiskMeasure, ...]:
        """Point VaR/ES per level with 90% intervals of the draws' conditional VaR/ES.

        ``cond_var`` and ``cond_es`` are ``(levels, draws)``; the intervals are
        order statistics, all found by one sort along the draws.
        """
        ci = np.sort(np.vstack([cond_var, cond_es]), axis=1)[:, self._ci_index].tolist()
        return _risk_measures(levels, point, ci)

    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast:
        """Weighted-quantile VaR/ES per Dirichlet draw; the agent's own RNG unless ``seed``.

        The point VaR/ES are those of the exact posterior predictive (equal
        weights: historical simulation); the intervals come from the draws.
        """
        self._require_fitted()
        h = self._check_horizon(horizon)
        levels = check_alphas(alphas)
        rng = self._rng if seed is None else rng_from(seed)
        x = self._buffer[: self._count]
        if h == 1:
            return Forecast(model=self.name, horizon=h, levels=self._one_day(x, rng, levels))
        return Forecast(model=self.name, horizon=h, levels=risk_measures(
            EmpiricalFamily(self._path_sums(x, h, rng)), levels))

    def _path_sums(self, x: NDArray[np.float64], h: int,
                   rng: np.random.Generator) -> NDArray[np.float64]:
        """Sums of ``h`` returns drawn from each draw's weighted window ``(draws, paths)``.

        Draw ``d``'s ``paths x h`` daily returns are iid from its weights
        ``w_d``: how often each window return occurs among them is
        ``Multinomial(paths x h, w_d)`` and their order a uniform random
        permutation, which is how they are drawn (one multinomial per draw for
        all its days, one shuffle) - about twice as fast as inverse-CDF
        sampling day by day. Days are taken in chunks, so memory stays about
        ``4e6`` values whatever the horizon.
        """
        n, draws, paths = x.size, self.draws, self.paths
        weights = self._dirichlet(rng, n)
        tiled = np.tile(x, draws)
        total = np.zeros((draws, paths))
        chunk = max(1, _PATH_CELLS // (draws * paths))
        for first in range(0, h, chunk):
            days = min(chunk, h - first)
            counts = rng.multinomial(paths * days, weights)
            values = np.repeat(tiled, counts.ravel()).reshape(draws, paths * days)
            values = rng.permuted(values, axis=1)
            total += values.reshape(draws, paths, days).sum(axis=2)
        return total

    def _horizon_one_block(
        self, xs: NDArray[np.float64], levels: tuple[float, ...], seeds: Sequence[Seed]
    ) -> tuple[list[Forecast], NDArray[np.float64]]:
        """:meth:`Agent.forecast_block` at horizon 1, vectorized.

        The same forecasts, log scores and end state as the loop, bit for
        bit (tested). With a full window a block's days are done together:
        each day's window is its row of a ``(days, window)`` matrix, sorted
        and scored in one pass, and each day draws from its own generator
        exactly what :meth:`forecast` draws; the tail cumulative sums stay per
        day (in cache, they are cheaper than across days), in buffers every
        day reuses (:class:`_TailDays`). The days draw in order, each from the
        generator ``forecast`` would use (the agent's own for ``seed=None``),
        so a generator shared by several days gives the loop's numbers too. A
        window still filling runs one day at a time.
        """
        rngs = self._generators(seeds)
        forecasts: list[Forecast] = []
        dens = np.empty(xs.size)
        day = 0
        while day < xs.size and self._count < self.window:  # a filling window: one by one
            forecasts.append(self.forecast(levels, seed=rngs[day]))
            dens[day] = self.update(float(xs[day]))
            day += 1
        step = min(self.window, _BLOCK_DAYS)
        for lo in range(day, xs.size, step):
            hi = min(lo + step, xs.size)
            forecasts += self._full_window_days(xs[lo:hi], levels, rngs[lo:hi], dens[lo:hi])
        return forecasts, dens

    def _generators(self, seeds: Sequence[Seed]) -> list[np.random.Generator]:
        """Each day's generator, as :meth:`forecast` takes it (the agent's own for ``None``)."""
        return [self._rng if seed is None else rng_from(seed)
                for seed in (seeds[j] for j in range(len(seeds)))]  # a lazy sequence: read once

    def _full_window_days(self, xs: NDArray[np.float64], levels: tuple[float, ...],
                          rngs: list[np.random.Generator], dens: NDArray[np.float64]
                          ) -> list[Forecast]:
        """Horizon-1 forecasts and log scores (into ``dens``) of ``xs.size <= window`` days.

        The buffer is full; day ``j``'s window is the buffer with its next
        ``j`` slots overwritten by ``xs[:j]``, in the ring's order.
        """
        days = xs.size
        slots = (self._head + np.arange(days)) % self.window
        windows = np.repeat(self._buffer[None, :], days, axis=0)
        later, earlier = np.tril_indices(days, -1)
        windows[later, slots[earlier]] = xs[earlier]
        ascending = np.sort(windows, axis=1)
        dens[:] = _log_scores(windows, ascending, xs)
        ci = _tail_block(-ascending, rngs, 1.0 - np.asarray(levels), self.draws,
                         self._ci_index).tolist()
        points = _hs_points(ascending, levels)
        self._buffer[slots] = xs
        self._head = (self._head + days) % self.window
        return [Forecast(model=self.name, horizon=1, levels=_risk_measures(levels, p, c))
                for p, c in zip(points, ci, strict=True)]

    # --- generative side ----------------------------------------------------

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, NDArray[np.float64]]:
        """The Dirichlet(1,…,1) weights over a window of ``window`` returns (``n`` draws)."""
        rng = rng_from(seed)
        g = rng.standard_exponential((n, self.window))
        return {"weights": g / g.sum(axis=1, keepdims=True)}

    def simulate(
        self, params: Mapping[str, float], n: int, *, seed: Seed = None
    ) -> NDArray[np.float64]:
        """Resample ``n`` returns from the current window with the given weights."""
        rng = rng_from(seed)
        x = self.sample()
        w = np.asarray(params.get("weights", np.full(x.size, 1.0 / x.size)), dtype=float)
        if w.shape != x.shape:
            raise InvalidParameter(f"weights must have the window's length {x.size}")
        return np.asarray(rng.choice(x, size=n, p=w / w.sum()))

    def posterior_draws(self) -> dict[str, NDArray[np.float64]]:
        """Draws of the posterior mean return (a functional of the Dirichlet weights)."""
        self._require_fitted()
        rng = np.random.default_rng(0)
        x = self.sample()
        return {"mean": self._dirichlet(rng, x.size) @ x}

    # --- state -----------------------------------------------------------------

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return (
            {"count": self._count, "head": self._head,
             "rng": self._rng.bit_generator.state},
            {"buffer": self._buffer.copy()},
        )

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            buffer = np.array(arrays["buffer"], dtype=float)  # its own copy, written below
            count, head = int(scalars["count"]), int(scalars["head"])
            rng = np.random.default_rng()
            rng.bit_generator.state = scalars["rng"]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"BayesianBootstrap state is incomplete: {exc}") from exc
        if buffer.shape != (self.window,) or not 0 < count <= self.window or \
                not 0 <= head < self.window:
            raise InvalidState("BayesianBootstrap state does not match its window")
        if count < self.window and head != count:  # a filling ring writes at slot count
            raise InvalidState(f"BayesianBootstrap state holds {count} of {self.window} "
                               f"returns but its next slot is {head}, not {count}")
        if not np.all(np.isfinite(buffer[:count])):
            raise InvalidState("BayesianBootstrap state holds non-finite returns")
        if count < self.window:  # never read; a state saved before they were zeroed
            buffer[count:] = 0.0
        self._buffer, self._count, self._head, self._rng = buffer, count, head, rng


def _hs_points(ascending: NDArray[np.float64], levels: tuple[float, ...]
               ) -> list[list[tuple[float, float]]]:
    """Historical-simulation VaR and ES at each level of each row of ``ascending (D, N)``.

    Each row is a window's returns sorted ascending. The values are those of
    :func:`~swarmvar.models.risk.weighted_quantile` and the tail mean with
    equal weights, computed as they are there: one dot product of the
    window's ascending losses per day and level (a matrix-vector product
    would sum in another order).
    """
    days, n = ascending.shape
    even = np.full(n, 1.0 / n)
    at = np.minimum(np.searchsorted(np.cumsum(even), np.asarray(levels) - 1e-12, side="left"),
                    n - 1)
    losses = -ascending[:, ::-1]  # ascending losses per row
    out: list[list[tuple[float, float]]] = [[] for _ in range(days)]
    for alpha, j in zip(levels, at.tolist(), strict=True):
        var = losses[:, j]
        above = np.maximum(losses - var[:, None], 0.0)
        for row, v, a in zip(out, var.tolist(), above, strict=True):
            row.append((v, v + float(even @ a) / (1.0 - alpha)))
    return out


def _tail_measures(top: NDArray[np.float64], rest: NDArray[np.float64],
                   losses: NDArray[np.float64], rng: np.random.Generator,
                   tails: NDArray[np.float64]
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Conditional VaR and ES ``(levels, D)`` of draws restricted to the largest losses.

    ``top (K, D)`` are the Exp(1) weights of the ``K`` largest of ``losses``
    (all ``N``, largest first), ``rest (D,)`` the Gamma(N - K) weight of the
    others, ``tails`` the levels' ``1 - alpha``. Draws whose ``K`` losses
    hold less than the largest tail get ``K`` more rows from ``rng``
    (:func:`_split_gamma`) and are done again.
    """
    k, draws = top.shape
    cum_w = _cumulative_rows(top)    # (k + 1, draws): C_0 = 0, ..., C_k
    total = cum_w[-1] + rest
    short = cum_w[-1] < float(tails.max()) * total
    any_short = bool(short.any())
    m = _rows_at_most(cum_w, (tails + 1e-12)[:, None] * total)
    if any_short:
        m[:, short] = 0  # done below, with more rows
    deepest = int(m.max())
    desc = losses[: k + 1]             # the k + 1 largest losses (k < N when a draw is short)
    # A_m, the weighted losses above each VaR: rows up to the deepest VaR only
    cum_l = _cumulative_rows(top[:deepest] * desc[:deepest, None])
    cond_var = desc[m]
    at = m * draws + np.arange(draws)  # flat positions of (m, column)
    excess = (cum_l.take(at) - cond_var * cum_w.take(at)) / total
    cond_es = cond_var + excess / tails[:, None]
    if any_short:
        more, rest_more = _split_gamma(rest[short], losses.size - k, min(k, losses.size - k), rng)
        cond_var[:, short], cond_es[:, short] = _tail_measures(
            np.vstack([top[:, short], more]), rest_more, losses, rng, tails)
    return cond_var, cond_es


def _tail_rows(n: int, tail: float) -> int:
    """How many of ``n`` largest losses get their own Exp(1) weight for the tail ``1 - alpha``."""
    return int(min(n, math.ceil(n * tail + _TAIL_SD * math.sqrt(n * tail) + _TAIL_PAD)))


def _tail_block(losses: NDArray[np.float64], rngs: Sequence[np.random.Generator],
                tails: NDArray[np.float64], draws: int, order: NDArray[np.intp]
                ) -> NDArray[np.float64]:
    """Order statistics ``order`` of several days' conditional VaR and ES: ``(days, 2 L, order)``.

    ``losses (days, N)`` are each day's window's losses, largest first,
    ``tails`` the ``L`` levels' ``1 - alpha``; rows ``:L`` are VaR, ``L:``
    ES. Day ``j`` draws from ``rngs[j]`` what
    :meth:`BayesianBootstrap._conditional` draws and gets its numbers, bit
    for bit (:class:`_TailDays`).
    """
    work = _TailDays(losses.shape[1], draws, tails)
    out = np.empty((losses.shape[0], 2 * tails.size, order.size))
    for j, rng in enumerate(rngs):
        cond = work.day(losses[j], rng)
        cond.sort(axis=1)
        out[j] = cond[:, order]
    return out


class _TailDays:
    """:func:`_tail_measures` day after day for one window size, in buffers every day reuses.

    Each day's conditional VaR and ES are :func:`_tail_measures`', bit for
    bit: the same products, summed in the same order, compared with the
    same limits, the same arithmetic after, and the same extension of short
    draws from the same generator. What differs is the work around them.
    The buffers are made once a block and nothing of the block's size is
    allocated (glibc trims the free top of its heap when large arrays leave
    it, and every fresh array is then paged in anew: a version with
    ``(days, ...)`` arrays took ~20 page faults a day); the exponentials
    are drawn into the rows of the weighted losses' partial sums and turned
    into them in place, down to the deepest VaR only; and each level counts
    its rows up to its own margin (:func:`_tail_rows`), all of them only
    when a draw reaches it.
    """

    def __init__(self, n: int, draws: int, tails: NDArray[np.float64]) -> None:
        self.n, self.tails = n, tails
        self.k = k = _tail_rows(n, float(tails.max()))
        self.depths = [min(k, _tail_rows(n, tail)) for tail in tails.tolist()]
        self.limits = [tail + 1e-12 for tail in tails.tolist()]
        self.cum_w = np.empty((k + 1, draws))  # C_0 = 0, ..., C_k
        self.cum_l = np.empty((k + 1, draws))  # rows 1..k: the draws, then A_1, ..., A_k
        self.cum_w[0], self.cum_l[0] = 0.0, 0.0
        self.w_rows, self.l_rows = list(self.cum_w), list(self.cum_l)  # views made once
        self.below = np.empty((k + 1, draws), dtype=bool)
        self.count = np.empty(draws, dtype=np.uint8 if k + 1 < 256 else np.intp)
        self.rest, self.total, self.lim = np.zeros(draws), np.empty(draws), np.empty(draws)
        self.short = np.empty(draws, dtype=bool)
        self.m, self.at = (np.empty((tails.size, draws), dtype=np.intp) for _ in range(2))
        self.held, self.above = np.empty((tails.size, draws)), np.empty((tails.size, draws))
        self.cond = np.empty((2 * tails.size, draws))
        self.column = np.arange(draws)

    def day(self, losses: NDArray[np.float64], rng: np.random.Generator
            ) -> NDArray[np.float64]:
        """Conditional VaR and ES ``(2 L, draws)`` of ``losses (N,)``, largest first.

        The array is the buffer the next day overwrites.
        """
        k, n, levels = self.k, self.n, self.tails.size
        top = self.cum_l[1:]
        rng.standard_exponential(top.shape, out=top)
        if k < n:  # else every weight has its row and rest stays 0
            rng.standard_gamma(n - k, size=self.rest.size, out=self.rest)
        short = self._weights()
        if short is not None:  # their first rows, before they turn into weighted losses
            short_top, short_rest = top[:, short], self.rest[short]
        m = self._rows(short)
        self._measures(losses, m)
        if short is not None:  # as _tail_measures extends them, from the same generator
            more, rest_more = _split_gamma(short_rest, n - k, min(k, n - k), rng)
            self.cond[:levels, short], self.cond[levels:, short] = _tail_measures(
                np.vstack([short_top, more]), rest_more, losses, rng, self.tails)
        return self.cond

    def _weights(self) -> NDArray[np.bool_] | None:
        """``C_1..C_k`` of the drawn rows, the total weight; the short draws' mask, if any."""
        w_rows, l_rows = self.w_rows, self.l_rows
        for i in range(self.k):
            np.add(w_rows[i], l_rows[i + 1], out=w_rows[i + 1])
        np.add(w_rows[self.k], self.rest, out=self.total)
        np.multiply(self.total, float(self.tails.max()), out=self.lim)
        short = np.less(w_rows[self.k], self.lim, out=self.short)
        return short if bool(short.any()) else None

    def _rows(self, short: NDArray[np.bool_] | None) -> NDArray[np.intp]:
        """Per level and draw, the last row ``m`` with ``C_m <= (1 - alpha + 1e-12) total``."""
        below, below_u8, count = self.below, self.below.view(np.uint8), self.count
        for level, (limit, depth) in enumerate(zip(self.limits, self.depths, strict=True)):
            np.multiply(self.total, limit, out=self.lim)
            rows = depth + 1
            while True:  # C increases down each column: the rows at most the limit come first
                np.less_equal(self.cum_w[:rows], self.lim, out=below[:rows])
                np.add.reduce(below_u8[:rows], axis=0, dtype=count.dtype, out=count)
                if rows > self.k or int(count.max()) < rows:
                    break
                rows = self.k + 1  # a draw reaches the margin: all rows
            np.subtract(count, 1, out=self.m[level])
        if short is not None:
            self.m[:, short] = 0  # done with more rows
        return self.m

    def _measures(self, losses: NDArray[np.float64], m: NDArray[np.intp]) -> None:
        """VaR ``L_m`` and ES ``VaR + (A_m - VaR C_m) / total / (1 - alpha)`` into ``cond``."""
        levels, cum_l, l_rows = self.tails.size, self.cum_l, self.l_rows
        deepest = int(m.max())
        products = cum_l[1 : deepest + 1]
        np.multiply(products, losses[:deepest, None], out=products)
        for i in range(deepest):
            np.add(l_rows[i], l_rows[i + 1], out=l_rows[i + 1])
        var, es, held, above = self.cond[:levels], self.cond[levels:], self.held, self.above
        # every index is in range by construction; "raise" would buffer each output
        losses.take(m, out=var, mode="clip")
        np.multiply(m, self.column.size, out=self.at)
        np.add(self.at, self.column, out=self.at)
        self.cum_w.take(self.at, out=held, mode="clip")
        cum_l.take(self.at, out=above, mode="clip")
        np.multiply(var, held, out=held)
        np.subtract(above, held, out=above)
        np.divide(above, self.total, out=above)
        np.divide(above, self.tails[:, None], out=es)
        np.add(var, es, out=es)


def _split_gamma(g: NDArray[np.float64], shape: int, rows: int, rng: np.random.Generator
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Split ``g (D,) ~ Gamma(shape)`` into ``rows`` Exp(1) ``(rows, D)`` and a Gamma(shape - rows).

    Exact: ``(E_1, ..., E_rows, G) / S`` with ``S`` their sum is Dirichlet(1, ...,
    1, shape - rows) and independent of ``S``, so ``g`` times it is
    independent Exp(1)s and a Gamma(shape - rows), as if drawn so from the
    start (beta-gamma algebra).
    """
    e = rng.standard_exponential((rows, g.size))
    left = rng.standard_gamma(shape - rows, size=g.size) if rows < shape else np.zeros(g.size)
    scale = g / (e.sum(axis=0) + left)
    return e * scale, left * scale


def _risk_measures(levels: tuple[float, ...], point: list[tuple[float, float]],
                   ci: list[list[float]]) -> tuple[RiskMeasure, ...]:
    """One day's measures: ``ci`` holds the VaR intervals per level, then the ES intervals."""
    n = len(levels)
    return tuple(RiskMeasure(alpha=float(alpha), var=var, es=es,
                             var_interval=(ci[i][0], ci[i][1]),
                             es_interval=(ci[n + i][0], ci[n + i][1]))
                 for i, (alpha, (var, es)) in enumerate(zip(levels, point, strict=True)))


def _even_quantile_index(n: int) -> NDArray[np.intp]:
    """Order statistics of ``n`` equally weighted values that are their 5% and 95% quantiles.

    Those :func:`~swarmvar.models.risk.weighted_quantile` picks, so that
    indexing the sorted values gives the same numbers.
    """
    cum = np.cumsum(np.full(n, 1.0 / n))
    cum /= cum[-1]
    return np.asarray(np.minimum(np.searchsorted(cum, np.array([0.05, 0.95]) - 1e-12,
                                                 side="left"), n - 1))


def _even_quantiles(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """5% and 95% :func:`~swarmvar.models.risk.weighted_quantile` of equally weighted values.

    By a full sort: numpy's vectorized sort of a thousand values is several
    times faster than ``partition`` at two ``kth`` (introselect's branches).
    """
    return np.asarray(np.sort(values)[_even_quantile_index(values.size)])


def _rows_at_most(cum: NDArray[np.float64], limits: NDArray[np.float64]) -> NDArray[np.intp]:
    """Per limit row ``l`` and column ``d``, the last row ``m`` with ``cum[m, d] <= limits[l, d]``.

    ``cum (k + 1, D)`` increases down each column from ``cum[0] = 0``, so the
    row is the count of such rows minus one, ``(L, D)`` for ``limits (L, D)``.
    The count adds the comparisons' bytes: several times cheaper than summing
    booleans into integers.
    """
    below = cum[None, :, :] <= limits[:, None, :]
    small = np.uint8 if cum.shape[0] < 256 else np.intp
    count = below.view(np.uint8).sum(axis=1, dtype=small).astype(np.intp)
    return np.asarray(count - 1)


def _cumulative_rows(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Partial sums over the rows of ``a (k, D)``: ``(k + 1, D)``, the first row zero.

    A loop of row additions: numpy's ``cumsum`` along an axis of a few dozen
    is several times slower than ``k`` vectorized adds of length ``D``.
    """
    out = np.empty((a.shape[0] + 1, a.shape[1]))
    out[0] = 0.0
    rows, sums = list(a), list(out)  # views made once: indexing costs as much as the add
    for i, row in enumerate(rows):
        np.add(sums[i], row, out=sums[i + 1])
    return out


def _log_scores(windows: NDArray[np.float64], ascending: NDArray[np.float64],
                values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Log density of ``values[d]`` under a Gaussian KDE of ``windows[d]`` (Silverman bandwidth).

    ``windows (D, N)`` in the ring buffer's order (the sums run in it),
    ``ascending`` the same rows sorted. One row is :meth:`BayesianBootstrap.update`;
    the rows of a block are the same numbers (the row reductions sum each
    row as a 1-d array, and the logs are taken per row, as there).
    """
    n = windows.shape[1]
    sd = np.std(windows, axis=1, ddof=1) if n > 1 else np.zeros(windows.shape[0])
    iqr = (_sorted_percentile(ascending, 0.75) - _sorted_percentile(ascending, 0.25)) / 1.349
    spread = np.where(iqr > 0, np.minimum(sd, iqr), sd)
    bandwidth = np.maximum(0.9 * spread * float(n) ** -0.2, 1e-8)
    z = (values[:, None] - windows) / bandwidth[:, None]
    e = -0.5 * z * z
    top = e.max(axis=1)
    mass = np.exp(e - top[:, None]).sum(axis=1)
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    return np.array([t + math.log(s) - math.log(n * b) - half_log_2pi for t, s, b
                     in zip(top.tolist(), mass.tolist(), bandwidth.tolist(), strict=True)])


def _sorted_percentile(ascending: NDArray[np.float64], q: float) -> NDArray[np.float64]:
    """``numpy.percentile(row, 100 q)`` (linear method) of each sorted row of ``ascending``."""
    n = ascending.shape[1]
    pos = q * (n - 1)
    i = int(math.floor(pos))
    t = pos - i
    a, b = ascending[:, i], ascending[:, min(i + 1, n - 1)]
    # numpy's _lerp, for bit-equal results
    return np.asarray(b - (b - a) * (1.0 - t) if t >= 0.5 else a + (b - a) * t)
