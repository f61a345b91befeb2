"""The conditional loss law per posterior draw: :class:`GPDTailFamily` (empirical body, GPD tail).

:class:`GPDTailFamily` is the conditional loss law per posterior draw for
:func:`~swarmvar.models.risk.risk_measures`: ``L = loc + scale * X`` where
``X`` is empirical below ``u`` and GPD above it (McNeil & Frey 2000), with
closed-form tail probability, quantile and expected excess, and the mixture
VaR/ES of several levels solved together (:meth:`GPDTailFamily.level_measures`,
safeguarded Halley steps).

Where it sits: GarchEVT's forecasts. ``GarchEVT.family`` builds one (through
:meth:`GPDTailFamily.unchecked`, from the agent's own GPD draws and sorted
body) for ``forecast``, and ``forecast_block`` for the days the block solve
(:mod:`._gpd_tail_block`) leaves to it. State: its arrays, set at
construction (``unchecked`` keeps the caller's arrays without copying them;
nothing here writes to them); the methods compute and return new arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidParameter
from ._gpd_law import _TINY_XI, gpd_survival
from .risk import LevelMeasures

FloatArray = NDArray[np.float64]


def body_suffix_sums(body: FloatArray) -> FloatArray:
    """``(m + 1,)``: the sum of the sorted body losses from index ``i`` on (0 at ``m``).

    For :class:`GPDTailFamily`'s expected excess in O(log m).
    """
    return np.concatenate([np.cumsum(body[::-1])[::-1], [0.0]])


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
        self._suffix = body_suffix_sums(b)
        size = self.xi.size
        if weights is None:
            self._weights = np.full(size, 1.0 / size)
        else:
            w = np.asarray(weights, dtype=float)
            if w.shape != (size,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise InvalidParameter(f"posterior weights must be {size} finite non-negative "
                                       "numbers")
            self._weights = w / w.sum()
        self._constants()

    @classmethod
    def unchecked(cls, u: float, xi: FloatArray, beta: FloatArray, p_u: FloatArray,
                  body: FloatArray, suffix: FloatArray, loc: FloatArray, scale: FloatArray,
                  weights: FloatArray) -> GPDTailFamily:
        """The family without the constructor's checks, copies and sort (for GarchEVT's forecasts).

        Every argument must already be what the constructor would make of it:
        float arrays ``(S,)`` that satisfy its conditions, ``body`` sorted,
        ``suffix`` its :func:`body_suffix_sums`; ``weights`` are normalized
        here. Nothing is copied, so the caller must not change them.
        """
        family = cls.__new__(cls)
        family.xi, family.beta, family.p_u, family.loc, family.scale = xi, beta, p_u, loc, scale
        family.u, family.body, family._suffix = float(u), body, suffix
        family._weights = weights / weights.sum()
        family._constants()
        return family

    def _constants(self) -> None:
        self._small = np.abs(self.xi) < _TINY_XI
        self._any_small = bool(self._small.any())
        self._safe_xi = np.where(self._small, 1.0, self.xi)

    @property
    def weights(self) -> FloatArray:
        return self._weights

    def _tail_x(self, x: FloatArray) -> FloatArray:
        above = gpd_survival(np.maximum(x - self.u, 0.0), self.xi, self.beta) * self.p_u
        if self.body.size == 0:
            return np.asarray(np.where(x >= self.u, above, self.p_u))
        frac = (self.body.size - np.searchsorted(self.body, x, side="right")) / self.body.size
        return np.asarray(np.where(x >= self.u, above, self.p_u + (1 - self.p_u) * frac))

    def _survival(self, y: FloatArray) -> FloatArray:
        """:func:`gpd_survival` at ``y`` with this family's ``xi`` and ``beta`` (same values)."""
        arg = self._safe_xi * y / self.beta
        with np.errstate(divide="ignore", invalid="ignore"):
            general = np.where(arg > -1.0, np.exp(-np.log1p(np.maximum(arg, -1.0)) / self._safe_xi),
                               0.0)
        if not self._any_small:
            return np.asarray(general)
        return np.asarray(np.where(self._small, np.exp(-y / self.beta), general))

    def _excess_x(self, x: FloatArray) -> FloatArray:
        over = np.maximum(x - self.u, 0.0)
        tail = self._survival(over)
        gpd_part = self.p_u * tail * (self.beta + self.xi * over) / (1.0 - self.xi)
        gpd_part = np.where(tail > 0, gpd_part, 0.0)
        if float(x.min()) >= self.u:  # every point in the GPD tail: the body part is not used
            return np.asarray(gpd_part)
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
        return np.asarray(self.loc + self.scale * self._var_x(np.float64(1.0 - alpha)))

    def _var_x(self, q: FloatArray | np.float64) -> FloatArray:
        """Standardized conditional VaR per draw at tail probability ``q`` (a scalar or ``(L, 1)``).

        The same values as :meth:`var` forms, before its affine map.
        """
        small, safe_xi = self._small, self._safe_xi
        ratio = q / self.p_u
        with np.errstate(divide="ignore", invalid="ignore"):
            if self._any_small:
                tail_z = np.where(small, self.u - self.beta * np.log(ratio),
                                  self.u + self.beta * np.expm1(-safe_xi * np.log(ratio)) / safe_xi)
            else:
                tail_z = self.u + self.beta * np.expm1(-safe_xi * np.log(ratio)) / safe_xi
        if bool(np.all(ratio <= 1.0)):  # every draw in its GPD tail: the body is not used
            return np.asarray(tail_z)
        if self.body.size:
            # smallest body loss b with P(X > b) <= q, i.e. #{> b}/m <= (q - p)/(1 - p)
            need = np.clip((q - self.p_u) / (1.0 - self.p_u), 0.0, 1.0)
            k = np.ceil(self.body.size * (1.0 - need) - 1e-9).astype(int)
            body_z = self.body[np.clip(k - 1, 0, self.body.size - 1)]
        else:
            body_z = np.full_like(tail_z, self.u)
        return np.asarray(np.where(ratio <= 1.0, tail_z, body_z))

    def tail(self, v: float) -> FloatArray:
        """``P_s(L > v)`` per draw ``(S,)``."""
        return self._tail_x((v - self.loc) / self.scale)

    def _smooth_tail(self, over: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray,
                                                      list[bool]] | None:
        """:meth:`_tail_density` where every draw is inside its GPD tail (the usual case).

        ``over = x - u`` ``(L, S)``; None when some draw is below ``u`` or past
        a negative-``xi`` endpoint, or has ``xi`` ~ 0 (the general path then).
        """
        if self._any_small or float(over.min()) < 0.0:
            return None
        y = over * (self.xi / self.beta)
        if float(y.min()) <= -1.0:
            return None
        tail = self.p_u * np.exp(np.log1p(y) * (-1.0 / self.xi))  # p_u (1 + y)^(-1/xi)
        den = self.beta + self.xi * over  # beta (1 + y)
        dens = tail / den
        dens *= 1.0 / self.scale
        curv = dens * ((1.0 + self.xi) / self.scale) / den
        return tail, dens, curv, [True] * over.shape[0]

    def _smooth_excess(self, v: FloatArray, weights: FloatArray) -> FloatArray:
        """``sum_s w_s E_s[(L - v)^+]`` ``(L,)`` where every draw is inside its GPD tail at ``v``.

        ``p_u S (beta + xi (x - u)) / (1 - xi)`` per draw, ``x`` the
        standardized ``v``: :meth:`excess` without the body, for the ES.
        """
        over = (v - self.loc) / self.scale - self.u
        tail = self.p_u * np.exp(np.log1p(over * (self.xi / self.beta)) * (-1.0 / self.xi))
        result: FloatArray = (tail * (self.beta + self.xi * over)) @ (
            weights * self.scale / (1.0 - self.xi))
        return result

    def _tail_density(self, v: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray,
                                                    list[bool]]:
        """``P_s(L > v)``, the density of ``L`` at ``v`` from the GPD part and its derivative.

        ``v`` is ``(L, 1)`` (one point per level); returns ``(L, S)`` arrays
        of the tail probability, the density and minus its derivative, and per
        level whether every draw is in its (smooth) GPD tail there. The
        empirical body has no density (0 there); one pass for Halley steps.
        """
        x = (v - self.loc) / self.scale
        fast = self._smooth_tail(x - self.u)
        if fast is not None:
            return fast
        above = x >= self.u
        over = np.maximum(x - self.u, 0.0)
        y = self.xi * over / self.beta
        inside = y > -1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            log_sf = -np.log1p(np.maximum(y, -1.0)) / self._safe_xi
            if self._any_small:
                log_sf = np.where(self._small, -over / self.beta, log_sf)
            sf = np.where(inside, np.exp(log_sf), 0.0)
            # f = p_u / beta * S(y) / (1 + y), S the GPD survival; f' = -f (1 + xi) / (beta (1 + y))
            dens = np.where(above & inside, self.p_u * sf / (self.beta * (1.0 + y)), 0.0)
            dens /= self.scale
            curv = np.where(above & inside,
                            dens * (1.0 + self.xi) / (self.beta * (1.0 + y) * self.scale), 0.0)
        tail = self.p_u * sf
        smooth = (above & inside).all(axis=1).tolist()
        if not all(smooth):
            if self.body.size == 0:
                tail = np.where(above, tail, self.p_u)
            else:
                frac = (self.body.size - np.searchsorted(self.body, x, side="right")) / (
                    self.body.size)
                tail = np.where(above, tail, self.p_u + (1 - self.p_u) * frac)
        return np.asarray(tail), np.asarray(dens), np.asarray(curv), smooth

    def mixture_var(self, alpha: float) -> float:
        """The ``alpha`` quantile of the weighted mixture loss (see :meth:`level_measures`)."""
        return self.level_measures((alpha,))[0].var

    def level_measures(self, alphas: Sequence[float]) -> tuple[LevelMeasures, ...]:
        """Point and per-draw VaR and ES at every level, the mixture quantiles solved together.

        The per-draw VaR and ES are closed form. The mixture VaR of each level
        is bracketed by the smallest and largest conditional VaR (where it
        must lie) and found by safeguarded Halley steps, all levels in one
        ``(L, S)`` batch per step (slope and curvature from the GPD density;
        bisection where a step leaves the bracket, e.g. at a jump from the
        empirical body, which has no density). Where every draw is in its
        smooth GPD tail a step below 1e-6 of ``v`` ends the search (the error
        left is then of order 1e-18), the ES's partial moment carried over
        it by its second-order Taylor expansion; otherwise steps go on to
        1e-9 of ``v`` and the partial moment is taken at the root. The same
        root as the generic Brent search of ``risk.mixture_var``, to 1e-9.
        """
        levels = tuple(float(a) for a in alphas)
        keep = np.array([1.0 - a for a in levels])[:, None]
        cond_var = self.loc + self.scale * self._var_x(keep)
        cond_es = cond_var + self.excess(cond_var) / keep
        var, es = self._solve(levels, cond_var)
        return tuple(LevelMeasures(v, e, cond_var[i], cond_es[i])
                     for i, (v, e) in enumerate(zip(var, es, strict=True)))

    def _solve(self, alphas: tuple[float, ...], cond: FloatArray) -> tuple[list[float],
                                                                         list[float]]:
        """Mixture VaR and ES per level given the conditional VaRs ``(L, S)``."""
        w = self._weights
        lo, hi = cond.min(axis=1).tolist(), cond.max(axis=1).tolist()
        v = (cond @ w).tolist()
        var, es = list(hi), [0.0] * len(alphas)
        todo, exact = [], []
        for j in range(len(alphas)):
            if hi[j] - lo[j] > 1e-15 * max(1.0, abs(hi[j])):
                todo.append(j)
            else:  # every draw has the same VaR
                v[j] = hi[j]
                exact.append(j)
        for _ in range(100):
            if not todo:
                break
            at = np.array([v[j] for j in todo])[:, None]
            tail, dens, curv, smooth = self._tail_density(at)
            total, slope, bend = (tail @ w).tolist(), (dens @ w).tolist(), (curv @ w).tolist()
            left, carried = [], []
            for row, j in enumerate(todo):
                x, g = v[j], total[row] - (1.0 - alphas[j])
                if g > 0:
                    lo[j] = x
                else:
                    hi[j] = x
                den = 2.0 * slope[row] * slope[row] - g * bend[row]
                nxt = x + 2.0 * g * slope[row] / den if slope[row] > 0 and den > 0 else np.inf
                halley = lo[j] < nxt < hi[j]
                if not halley:
                    nxt = 0.5 * (lo[j] + hi[j])
                v[j] = nxt
                step, size = abs(nxt - x), max(abs(x), 1e-300)
                if halley and smooth[row] and step <= 1e-6 * size:
                    carried.append((row, j, nxt - x))
                elif step <= 1e-9 * size or hi[j] - lo[j] <= 1e-9 * size:
                    exact.append(j)
                else:
                    left.append(j)
            if carried:
                # E[(L - v)^+] at the evaluated point, then over the step d by Taylor:
                # its derivatives in v are -P(L > v) and the density of L
                points = at[[r for r, _, _ in carried]]
                part = (self.excess(points) @ w if self._any_small
                        else self._smooth_excess(points, w))
                for (row, j, d), e in zip(carried, part.tolist(), strict=True):
                    moved = e - d * total[row] + 0.5 * d * d * slope[row]
                    var[j] = v[j]
                    es[j] = v[j] + moved / (1.0 - alphas[j])
            todo = left
        exact += todo  # no convergence in 100 steps (not seen): the last point
        if exact:
            at = np.array([v[j] for j in exact])
            part = self.excess(at[:, None]) @ w
            for j, x, e in zip(exact, at.tolist(), part.tolist(), strict=True):
                var[j] = x
                es[j] = x + e / (1.0 - alphas[j])
        return var, es

    def excess(self, v: float | FloatArray) -> FloatArray:
        """``E_s[(L - v)^+]`` per draw ``(S,)``."""
        x = (np.asarray(v, dtype=float) - self.loc) / self.scale
        return np.asarray(np.maximum(self.scale * self._excess_x(x), 0.0))
