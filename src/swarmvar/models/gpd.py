"""Bayesian generalized Pareto tail: a grid posterior of ``(xi, beta)`` and its loss family.

Peaks over threshold: excesses ``y = x - u > 0`` of a loss ``x`` over a
threshold ``u`` are modelled as GPD(``xi``, ``beta``) with survival function
``(1 + xi y / beta)^(-1/xi)`` (``exp(-y / beta)`` at ``xi = 0``), the
parameterization of ``scipy.stats.genpareto(c=xi, scale=beta)``.

Posterior. A 2-D grid over ``xi`` (default ``[-0.5, 0.95]``, step 0.01) and
``log beta`` (``log`` of the mean excess +- 2.5, 201 nodes), with a flat
prior on ``xi`` over the grid (``xi < 1`` so that ES exists) and a flat prior
on ``log beta`` (``p(beta) ~ 1/beta``). The grid posterior is exact up to
discretization, needs no tuning or convergence checks, and absorbs one new
excess online in O(grid) by adding its log density at every node. The
exceedance probability ``p_u`` gets its own Jeffreys posterior
``Beta(k + 1/2, n - k + 1/2)`` from ``k`` exceedances in ``n`` observations.

:class:`GPDTailFamily` is the conditional loss law per posterior draw for
:func:`~swarmvar.models.risk.risk_measures`: ``L = loc + scale * X`` where
``X`` is empirical below ``u`` and GPD above it (McNeil & Frey 2000), with
closed-form tail probability, quantile and expected excess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter, InvalidReturns

FloatArray = NDArray[np.float64]

XI_RANGE = (-0.5, 0.95)
XI_STEP = 0.01
LOG_BETA_HALF_WIDTH = 2.5
LOG_BETA_NODES = 201
_TINY_XI = 1e-9


def gpd_logpdf(y: ArrayLike, xi: ArrayLike, beta: ArrayLike) -> FloatArray:
    """Log density of GPD(``xi``, ``beta``) at excesses ``y`` (broadcast); ``-inf`` off support."""
    y_a, xi_a, beta_a = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (y, xi, beta)))
    small = np.abs(xi_a) < _TINY_XI
    safe_xi = np.where(small, 1.0, xi_a)
    arg = 1.0 + safe_xi * y_a / beta_a
    with np.errstate(divide="ignore", invalid="ignore"):
        # log1p: for xi near 0 (1 + xi y / beta) rounds away the information
        general = -np.log(beta_a) - (1.0 + 1.0 / safe_xi) * np.log1p(safe_xi * y_a / beta_a)
    out = np.where(small, -np.log(beta_a) - y_a / beta_a, general)
    ok = (y_a >= 0) & (small | (arg > 0))
    return np.asarray(np.where(ok, out, -np.inf))


def gpd_survival(y: ArrayLike, xi: ArrayLike, beta: ArrayLike) -> FloatArray:
    """``P(Y > y)`` for GPD(``xi``, ``beta``), ``y >= 0`` (broadcast)."""
    y_a, xi_a, beta_a = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (y, xi, beta)))
    small = np.abs(xi_a) < _TINY_XI
    safe_xi = np.where(small, 1.0, xi_a)
    arg = safe_xi * y_a / beta_a
    with np.errstate(divide="ignore", invalid="ignore"):
        # exp(-log1p(.)/xi), not (1 + .)^(-1/xi): accurate for xi near 0 (a power of a
        # rounded 1 + 1e-15 is off by 1e-7)
        general = np.where(arg > -1.0, np.exp(-np.log1p(np.maximum(arg, -1.0)) / safe_xi), 0.0)
    return np.asarray(np.where(small, np.exp(-y_a / beta_a), general))


@dataclass(frozen=True)
class GPDPosterior:
    """Grid posterior of GPD ``(xi, beta)`` plus the exceedance counts.

    Attributes
    ----------
    xi : array ``(nx,)``
        Grid of shape parameters.
    log_beta : array ``(nb,)``
        Grid of log scales (scale in the units of the excesses).
    log_post : array ``(nx, nb)``
        Unnormalized log posterior at the nodes (flat priors: the log-likelihood).
    n_exceed, n_obs : int
        Exceedances and observations seen (for the ``p_u`` posterior).
    """

    xi: FloatArray
    log_beta: FloatArray
    log_post: FloatArray
    n_exceed: int
    n_obs: int

    @property
    def probabilities(self) -> FloatArray:
        """Normalized posterior mass at the nodes ``(nx, nb)``."""
        p = np.exp(self.log_post - self.log_post.max())
        return np.asarray(p / p.sum())

    def add_excess(self, y: float) -> GPDPosterior:
        """The posterior after one more exceedance ``y > 0`` (O(grid))."""
        value = _check_excesses(np.array([y]))[0]
        step = gpd_logpdf(value, self.xi[:, None], np.exp(self.log_beta)[None, :])
        log_post = self.log_post + step
        if not np.isfinite(log_post.max()):
            raise InvalidReturns(f"excess {value!r} lies beyond the support of every grid node")
        return GPDPosterior(self.xi, self.log_beta, log_post, self.n_exceed + 1, self.n_obs + 1)

    def add_non_exceedance(self) -> GPDPosterior:
        """The posterior after one more observation below the threshold."""
        return GPDPosterior(self.xi, self.log_beta, self.log_post, self.n_exceed, self.n_obs + 1)

    def marginal(self, name: str) -> tuple[FloatArray, FloatArray]:
        """Nodes and marginal mass of ``"xi"`` or ``"log_beta"``."""
        p = self.probabilities
        if name == "xi":
            return self.xi, np.asarray(p.sum(axis=1))
        if name == "log_beta":
            return self.log_beta, np.asarray(p.sum(axis=0))
        raise InvalidParameter(f"no GPD parameter {name!r}; use 'xi' or 'log_beta'")

    def interval(self, name: str, mass: float = 0.90) -> tuple[float, float]:
        """Equal-tailed credible interval of ``xi`` or ``log_beta`` (node resolution)."""
        nodes, p = self.marginal(name)
        cum = np.cumsum(p)
        lo = nodes[min(int(np.searchsorted(cum, (1 - mass) / 2)), nodes.size - 1)]
        hi = nodes[min(int(np.searchsorted(cum, (1 + mass) / 2)), nodes.size - 1)]
        return float(lo), float(hi)

    def mean(self, name: str) -> float:
        """Posterior mean of ``xi`` or ``log_beta``."""
        nodes, p = self.marginal(name)
        return float(nodes @ p)

    def draws(self, n: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``n`` posterior draws of ``(xi, beta, p_u)``, each ``(n,)``.

        Nodes are drawn by their mass and jittered uniformly within their cell,
        which turns the grid into a piecewise-constant density; ``p_u`` is drawn
        from ``Beta(k + 1/2, n - k + 1/2)``.
        """
        p = self.probabilities.ravel()
        cells = rng.choice(p.size, size=n, p=p)
        i, j = np.unravel_index(cells, self.log_post.shape)
        dx = self.xi[1] - self.xi[0] if self.xi.size > 1 else 0.0
        db = self.log_beta[1] - self.log_beta[0] if self.log_beta.size > 1 else 0.0
        xi = self.xi[i] + dx * (rng.random(n) - 0.5)
        beta = np.exp(self.log_beta[j] + db * (rng.random(n) - 0.5))
        p_u = rng.beta(self.n_exceed + 0.5, self.n_obs - self.n_exceed + 0.5, size=n)
        return np.asarray(xi), np.asarray(beta), np.asarray(p_u)


def _check_excesses(excesses: ArrayLike) -> FloatArray:
    y = np.asarray(excesses, dtype=float).ravel()
    bad = ~(np.isfinite(y) & (y > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidReturns(
            f"excess #{i} is {y[i]!r}; excesses over the threshold must be finite and > 0"
        )
    return y


def grid_loglik(y: FloatArray, xi: FloatArray, beta: FloatArray) -> FloatArray:
    """GPD log-likelihood of excesses ``y`` ``(k,)`` at every node of ``xi`` x ``beta``.

    ``(nx, nb)``; ``-inf`` where an excess is off the support. Equal to summing
    :func:`gpd_logpdf` over ``y`` (as ``add_excess`` does) up to ~1e-5: one
    vectorized pass over ``-k log beta - (1 + 1/xi) sum_i log(1 + (xi/beta) y_i)``
    whose ``k * nx * nb`` logarithms are taken in float32 (SIMD, ~20x faster
    than float64 here; relative error ~1e-7 per term, summed in float64), far
    below the grid's own discretization error.
    """
    small = np.abs(xi) < _TINY_XI
    safe_xi = np.where(small, 1.0, xi)
    c = safe_xi[:, None] / beta[None, :]
    ok = (1.0 + c * y.max() > 0) | small[:, None]  # support: every excess, so the largest
    c32 = np.where(ok, c, 0.0).astype(np.float32)  # off-support nodes are masked below
    total = np.zeros_like(c)
    buf = np.empty_like(c32)
    for value in y.astype(np.float32):  # one contiguous pass per excess: SIMD, no temporaries
        np.multiply(c32, value, out=buf)
        np.log1p(buf, out=buf)
        total += buf
    k_log_beta = y.size * np.log(beta)[None, :]
    general = -k_log_beta - (1.0 + 1.0 / safe_xi)[:, None] * total
    exponential = -k_log_beta - y.sum() / beta[None, :]
    out = np.where(small[:, None], exponential, general)
    return np.asarray(np.where(ok, out, -np.inf))


def gpd_posterior(excesses: ArrayLike, n_obs: int, *, xi_range: tuple[float, float] = XI_RANGE,
                  xi_step: float = XI_STEP) -> GPDPosterior:
    """Grid posterior of GPD ``(xi, beta)`` given excesses ``(k,)`` among ``n_obs`` observations.

    Raises
    ------
    InvalidReturns
        If an excess is not finite and positive, or there are fewer than 5.
    InvalidParameter
        If ``n_obs < k`` or the ``xi`` range is not inside ``(-1, 1)``.
    """
    y = _check_excesses(excesses)
    if y.size < 5:
        raise InvalidReturns(f"need at least 5 excesses over the threshold for a GPD tail, got "
                             f"{y.size}; lower the threshold or give more data")
    if isinstance(n_obs, bool) or not isinstance(n_obs, (int, np.integer)) or n_obs < y.size:
        raise InvalidParameter(f"n_obs must be a whole number >= {y.size} excesses, not {n_obs!r}")
    lo, hi = xi_range
    if not -1.0 < lo < hi < 1.0 or not 0 < xi_step <= (hi - lo):
        raise InvalidParameter(f"xi grid {xi_range} step {xi_step} must lie inside (-1, 1)")
    xi = np.linspace(lo, hi, int(round((hi - lo) / xi_step)) + 1)
    center = float(np.log(y.mean()))
    log_beta = np.linspace(center - LOG_BETA_HALF_WIDTH, center + LOG_BETA_HALF_WIDTH,
                           LOG_BETA_NODES)
    log_post = grid_loglik(y, xi, np.exp(log_beta))
    if not np.isfinite(log_post.max()):
        raise InvalidReturns("no grid node supports every excess; the xi range is too narrow")
    return GPDPosterior(xi, log_beta, log_post, int(y.size), int(n_obs))


class GPDTailFamily:
    """Losses ``L = loc_s + scale_s * X_s``: empirical body below ``u``, GPD tail above.

    ``P(X_s > x) = p_s (1 + xi_s (x - u) / beta_s)^(-1/xi_s)`` for ``x >= u``
    and ``p_s + (1 - p_s) * #{b_i > x} / m`` below ``u`` (``b``: the ``m``
    body losses, all ``<= u``). Per-draw arrays broadcast to ``(S,)``.

    Parameters
    ----------
    u : float
        Threshold on the standardized loss ``X``.
    xi, beta, p_u : array ``(S,)``
        GPD shape (< 1), scale (> 0) and exceedance probability in (0, 1).
    body : array ``(m,)``
        Standardized losses at or below ``u`` (may be empty only if never used).
    loc, scale : array ``(S,)``
        Affine map from ``X`` to the loss (scale > 0).
    weights : array ``(S,)`` or None
        Posterior weights.
    """

    def __init__(self, u: float, xi: ArrayLike, beta: ArrayLike, p_u: ArrayLike,
                 body: ArrayLike, loc: ArrayLike = 0.0, scale: ArrayLike = 1.0,
                 weights: ArrayLike | None = None) -> None:
        arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(a, dtype=float))
                                       for a in (xi, beta, p_u, loc, scale)))
        self.xi, self.beta, self.p_u, self.loc, self.scale = (a.copy() for a in arrays)
        b = np.sort(np.asarray(body, dtype=float).ravel())
        if not (np.isfinite(u) and np.all(self.xi < 1) and np.all(self.beta > 0)
                and np.all((self.p_u > 0) & (self.p_u < 1)) and np.all(self.scale > 0)
                and np.all(np.isfinite(self.loc)) and np.all(np.isfinite(b))
                and (b.size == 0 or b[-1] <= u)):
            raise InvalidParameter("GPD tail family needs finite u, xi < 1, beta > 0, "
                                   "0 < p_u < 1, scale > 0 and finite body losses <= u")
        self.u = float(u)
        self.body = b
        # suffix sums: sum of body losses above index i, for O(log m) expected excess
        self._suffix = np.concatenate([np.cumsum(b[::-1])[::-1], [0.0]])
        size = self.xi.size
        if weights is None:
            self._weights = np.full(size, 1.0 / size)
        else:
            w = np.asarray(weights, dtype=float)
            if w.shape != (size,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise InvalidParameter(f"posterior weights must be {size} finite non-negative "
                                       "numbers")
            self._weights = w / w.sum()

    @property
    def weights(self) -> FloatArray:
        return self._weights

    def _tail_x(self, x: FloatArray) -> FloatArray:
        above = gpd_survival(np.maximum(x - self.u, 0.0), self.xi, self.beta) * self.p_u
        if self.body.size == 0:
            return np.asarray(np.where(x >= self.u, above, self.p_u))
        frac = (self.body.size - np.searchsorted(self.body, x, side="right")) / self.body.size
        return np.asarray(np.where(x >= self.u, above, self.p_u + (1 - self.p_u) * frac))

    def _excess_x(self, x: FloatArray) -> FloatArray:
        over = np.maximum(x - self.u, 0.0)
        tail = gpd_survival(over, self.xi, self.beta)
        gpd_part = self.p_u * tail * (self.beta + self.xi * over) / (1.0 - self.xi)
        gpd_part = np.where(tail > 0, gpd_part, 0.0)
        if self.body.size == 0:
            body_part = np.zeros_like(x)
        else:
            i = np.searchsorted(self.body, x, side="right")
            count = self.body.size - i
            body_part = (self._suffix[i] - count * x) / self.body.size
        below = (1 - self.p_u) * body_part + self.p_u * (
            (self.u - x) + self.beta / (1.0 - self.xi))
        return np.asarray(np.where(x >= self.u, gpd_part, below))

    def var(self, alpha: float) -> FloatArray:
        """Conditional VaR per draw: the tail estimator above ``u``, the body quantile below."""
        q = 1.0 - alpha
        small = np.abs(self.xi) < _TINY_XI
        safe_xi = np.where(small, 1.0, self.xi)
        ratio = q / self.p_u
        with np.errstate(divide="ignore", invalid="ignore"):
            tail_z = np.where(small, self.u - self.beta * np.log(ratio),
                              self.u + self.beta * np.expm1(-safe_xi * np.log(ratio)) / safe_xi)
        if self.body.size:
            # smallest body loss b with P(X > b) <= q, i.e. #{> b}/m <= (q - p)/(1 - p)
            need = np.clip((q - self.p_u) / (1.0 - self.p_u), 0.0, 1.0)
            k = np.ceil(self.body.size * (1.0 - need) - 1e-9).astype(int)
            body_z = self.body[np.clip(k - 1, 0, self.body.size - 1)]
        else:
            body_z = np.full_like(tail_z, self.u)
        z = np.where(ratio <= 1.0, tail_z, body_z)
        return np.asarray(self.loc + self.scale * z)

    def tail(self, v: float) -> FloatArray:
        """``P_s(L > v)`` per draw ``(S,)``."""
        return self._tail_x((v - self.loc) / self.scale)

    def _tail_density(self, v: float) -> tuple[FloatArray, FloatArray]:
        """``P_s(L > v)`` and the density of ``L`` at ``v`` from the GPD part, per draw.

        The empirical body has no density (0 there); one pass for Newton steps.
        """
        x = (v - self.loc) / self.scale
        above = x >= self.u
        over = np.maximum(x - self.u, 0.0)
        y = self.xi * over / self.beta
        small = np.abs(self.xi) < _TINY_XI
        safe_xi = np.where(small, 1.0, self.xi)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_sf = np.where(small, -over / self.beta, -np.log1p(np.maximum(y, -1.0)) / safe_xi)
            sf = np.where(y > -1.0, np.exp(log_sf), 0.0)
            # f = p_u / beta * S(y) / (1 + xi y / beta), S the GPD survival
            dens = np.where(above & (y > -1.0), self.p_u * sf / (self.beta * (1.0 + y)), 0.0)
        tail = self.p_u * sf
        if self.body.size == 0:
            tail = np.where(above, tail, self.p_u)
        else:
            frac = (self.body.size - np.searchsorted(self.body, x, side="right")) / self.body.size
            tail = np.where(above, tail, self.p_u + (1 - self.p_u) * frac)
        return np.asarray(tail), np.asarray(dens / self.scale)

    def mixture_var(self, alpha: float) -> float:
        """The ``alpha`` quantile of the weighted mixture loss, by safeguarded Newton steps.

        Bracketed by the smallest and largest conditional VaR (where it must
        lie); a Newton step from the GPD density, bisection where it leaves the
        bracket (e.g. at a jump from the empirical body, which has no density).
        Same root as the generic Brent search of ``risk.mixture_var`` (to 1e-9
        relative), a few times faster.
        """
        cond = self.var(alpha)
        w = self._weights
        lo, hi = float(cond.min()), float(cond.max())
        if hi - lo <= 1e-15 * max(1.0, abs(hi)):
            return hi
        target = 1.0 - alpha
        v = float(w @ cond)
        for _ in range(100):
            tail, dens = self._tail_density(v)
            g = float(w @ tail) - target
            if g > 0:
                lo = v
            else:
                hi = v
            slope = float(w @ dens)
            nxt = v + g / slope if slope > 0 else np.inf
            if not lo < nxt < hi:
                nxt = 0.5 * (lo + hi)
            # 1e-9 relative: far below any Monte Carlo error; much tighter and the steps
            # stall on rounding and on the body's atoms (12 evaluations on average, not 4)
            tol = 1e-9 * max(abs(v), 1e-300)
            if abs(nxt - v) <= tol or hi - lo <= tol:
                return nxt
            v = nxt
        return v

    def excess(self, v: float | FloatArray) -> FloatArray:
        """``E_s[(L - v)^+]`` per draw ``(S,)``."""
        x = (np.asarray(v, dtype=float) - self.loc) / self.scale
        return np.asarray(np.maximum(self.scale * self._excess_x(x), 0.0))
