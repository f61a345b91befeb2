"""``CopulaGarchEVT``: GJR-GARCH + EVT margins joined by a Student-t copula with DCC correlation.

Margins (McNeil & Frey 2000; McNeil, Frey & Embrechts, *QRM*, ch. 7): each
asset's GJR-GARCH filter (:mod:`~swarmvar.models.joint_garch`, exact grid
posterior) gives standardized residuals ``z``; their distribution is the
empirical one between the 10% and 90% quantiles and a generalized Pareto
tail beyond each (probability-weighted moments, Hosking & Wallis 1987).

Dependence: a Student-t copula on the pseudo-observations ``u = rank/(T+1)``
with dynamic conditional correlation (Engle 2002) on their normal scores
``q = Phi^-1(u)``:

    Q_{t+1} = (1 - a - b) Qbar + a q_t q_t' + b Q_t,   R_t = diag(Q_t)^-1/2 Q_t diag(Q_t)^-1/2.

Posterior: ``(a, b)`` of the DCC and the copula's degrees of freedom
jointly on a grid (uniform prior), weighted by the t copula's own
likelihood with the DCC path ``R_t`` of each grid point (:func:`grid_loglik`:
the full ``N``-dimensional likelihood for books of up to 20 assets; larger
books a block composite likelihood, tempered). ``Qbar`` is inverse-Wishart
around the scores' covariance with ``T`` pseudo-observations (the posterior
of a covariance under a flat prior, scores taken as normal). So correlations
can jump: a draw with large ``a`` moves ``R`` quickly after a joint shock.

An earlier version weighted ``(a, b)`` by the composite likelihood of
adjacent pairs (Engle, Shephard & Sheppard 2008) and the df by the
likelihood at the *constant* correlation. Both disagree with the model the
scenarios use: on the 20 stocks the pairs chose ``a = 0.04`` where the
20-dimensional likelihood puts ``a = 0.01`` ahead by 220 to 310 log units
(a fast DCC makes ``R`` noisy in the directions hedged books live in), and
a df fitted without the correlation's dynamics mistakes them for tail
dependence.

Scenarios: per draw, ``x = L_s g / sqrt(W / nu_s)`` from common normals
``g`` and a common uniform behind ``W ~ chi2(nu_s)``; ``z = F^-1(t_nu(x))``
through a tabulated monotone map per asset (no per-scenario t CDF); the
next-day return ``mu + s_s z`` with the draw's GJR variance. Over ``h`` days
the variances follow each draw's GJR recursion and the correlation its
DCC mean reversion ``E[Q_{t+k}] = Qbar + (a + b)^(k-1) (Q_{t+1} - Qbar)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import signal, special

from ..errors import InvalidParameter, InvalidState
from .base import Seed, rng_from
from .joint_base import FloatArray, JointAgent, Scenarios
from .joint_garch import GjrFilters
from .joint_niw import bartlett_factors
from .risk import t_log_norm

#: Grid of the DCC parameters ``(a, b)`` (``a = 0``: constant correlation).
DCC_GRID: FloatArray = np.array([(0.0, 0.0)] + [(a, b) for a in (0.005, 0.01, 0.02, 0.04, 0.07)
                                                for b in (0.85, 0.90, 0.94, 0.97)
                                                if a + b < 0.995])
#: Grid of the copula's degrees of freedom.
DF_GRID: FloatArray = np.array([3.0, 4.0, 6.0, 9.0, 15.0, 30.0])
#: Most assets in one block of the copula's likelihood (see :func:`grid_loglik`).
LIK_BLOCK = 20
#: Tail fraction beyond which each margin is generalized Pareto.
TAIL = 0.10
_PROBS = special.expit(np.linspace(-16.0, 16.0, 801))
#: The copula-score -> residual maps are tabulated on a uniform grid of asinh(x).
_Y = np.linspace(-10.0, 10.0, 2001)
_DY = float(_Y[1] - _Y[0])


def _gpd_pwm(excess: FloatArray) -> tuple[float, float]:
    """GPD ``(xi, beta)`` from probability-weighted moments of positive excesses."""
    x = np.sort(excess)
    n = x.size
    b0 = x.mean()
    b1 = float(((n - 1 - np.arange(n)) / max(n - 1, 1) * x).mean())  # E[X (1 - F)]
    xi = 2.0 - b0 / (b0 - 2.0 * b1)
    beta = 2.0 * b0 * b1 / (b0 - 2.0 * b1)
    xi = float(np.clip(xi, -0.4, 0.45))
    return xi, float(max(beta, 1e-6))


def _gpd_quantile(xi: float, beta: float, q: FloatArray) -> FloatArray:
    """Excess at conditional exceedance probability ``q`` (``P(X > x) = q``)."""
    if abs(xi) < 1e-9:
        out: FloatArray = -beta * np.log(q)
        return out
    res: FloatArray = beta / xi * (q ** -xi - 1.0)
    return res


def margin_quantiles(z: FloatArray, probs: FloatArray) -> FloatArray:
    """Semi-parametric inverse CDF of each column of ``z`` ``(T, N)`` at ``probs`` -> ``(P, N)``."""
    t, n = z.shape
    zs = np.sort(z, axis=0)
    out = np.empty((probs.size, n))
    lo_thr, hi_thr = np.quantile(zs, TAIL, axis=0), np.quantile(zs, 1 - TAIL, axis=0)
    body = (probs >= TAIL) & (probs <= 1 - TAIL)
    ranks = (np.arange(1, t + 1)) / (t + 1)
    for j in range(n):
        out[body, j] = np.interp(probs[body], ranks, zs[:, j])
        lo = probs < TAIL
        xi, beta = _gpd_pwm(lo_thr[j] - zs[zs[:, j] < lo_thr[j], j])
        out[lo, j] = lo_thr[j] - _gpd_quantile(xi, beta, probs[lo] / TAIL)
        hi = probs > 1 - TAIL
        xi, beta = _gpd_pwm(zs[zs[:, j] > hi_thr[j], j] - hi_thr[j])
        out[hi, j] = hi_thr[j] + _gpd_quantile(xi, beta, (1 - probs[hi]) / TAIL)
    return np.maximum.accumulate(out, axis=0)


def _corr(q: FloatArray) -> FloatArray:
    d = np.sqrt(np.clip(np.diag(q), 1e-12, None))
    out: FloatArray = q / d[:, None] / d[None, :]
    np.fill_diagonal(out, 1.0)
    return out


def _log_t_margins(x: FloatArray, nu: float) -> float:
    """Sum of the univariate Student-t(``nu``) log densities at ``x``."""
    return float((t_log_norm(nu) - (nu + 1) / 2 * np.log1p(x * x / nu)).sum())


def _normalize(qt: FloatArray) -> FloatArray:
    d = np.sqrt(np.diagonal(qt, axis1=-2, axis2=-1))
    out: FloatArray = qt / d[..., :, None] / d[..., None, :]
    return out


def _discounted_outer(q: FloatArray, b: float) -> FloatArray:
    """``S_t = sum_{s < t} b^(t-1-s) q_s q_s'`` for days ``0 .. T-1`` ``(T, N, N)``."""
    t, n = q.shape
    y = signal.lfilter([1.0], [1.0, -b], (q[:, :, None] * q[:, None, :]).reshape(t, n * n),
                       axis=0)
    return np.concatenate([np.zeros((1, n, n)), y[:-1].reshape(t - 1, n, n)])


def dcc_correlations(q: FloatArray, qbar: FloatArray, a: float, b: float,
                     outer: FloatArray | None = None, days: slice = slice(None)) -> FloatArray:
    """The DCC correlations ``R_t`` ``(T, N, N)`` of days ``0 .. T-1`` (``Q_0 = Qbar``).

    ``Q_t = Qbar ((1 - a - b)(1 - b^t)/(1 - b) + b^t) + a S_t`` with ``S_t`` the
    discounted outer products (:func:`_discounted_outer`, passed as ``outer``
    to share it between grid points with the same ``b``); ``days`` selects
    the days returned.
    """
    t, n = q.shape
    idx = np.arange(t)[days]
    if a == 0.0:
        return np.broadcast_to(_corr(qbar), (idx.size, n, n))
    s = (_discounted_outer(q, b) if outer is None else outer)[days]
    bt = b ** idx.astype(float)
    coef = (1 - a - b) * (1 - bt) / (1 - b) + bt
    return _normalize(coef[:, None, None] * qbar[None] + a * s)


def _forward_solve(chol: FloatArray, x: FloatArray) -> FloatArray:
    """``L^-1 x`` for lower-triangular ``chol`` ``(T, N, N)`` and ``x`` ``(T, N, D)``."""
    y = np.empty_like(x)
    for i in range(chol.shape[-1]):
        acc = x[:, i] - np.einsum("tj,tjd->td", chol[:, i, :i], y[:, :i])
        y[:, i] = acc / chol[:, i, i, None]
    return y


def grid_loglik(q: FloatArray, ranks: NDArray[np.intp], levels: FloatArray) -> FloatArray:
    """Log-likelihood of the t copula with DCC correlation at every ``(DCC, df)`` grid point.

    ``q`` ``(T, N)`` normal scores drive the DCC recursion; the copula density
    of day ``t`` is the Student-t(``nu``) copula with correlation ``R_t`` at the
    t-scores ``t_nu^-1(u_t)`` (``u = levels[ranks]``). Books of up to
    :data:`LIK_BLOCK` assets get the full likelihood. Larger books split
    into ``B`` consecutive blocks of at most :data:`LIK_BLOCK` assets, each
    block's full likelihood taken on every ``B``-th day (block ``i`` on days
    ``i, i + B, ...``; the DCC recursion still runs over every day): a block
    composite likelihood holding about one block's worth of days, so its
    cost and its weight stay those of a 20-asset book. Returns ``(G, D)``.
    """
    t, n = q.shape
    scores = [special.stdtrit(nu, levels)[ranks] for nu in DF_GRID]  # D x (T, N)
    out = np.zeros((DCC_GRID.shape[0], DF_GRID.size))
    starts = range(0, n, LIK_BLOCK)
    for i, lo in enumerate(starts):
        blk = slice(lo, min(n, lo + LIK_BLOCK))
        days = slice(i, None, len(starts))
        qb = q[:, blk]
        k = qb.shape[1]
        qbar = qb.T @ qb / t + 1e-6 * np.eye(k)  # the ridge: identical or collinear assets
        xs = np.stack([x[days, blk] for x in scores], axis=-1)  # (T', k, D)
        m = xs.shape[0]
        marg = np.array([_log_t_margins(xs[..., d], nu) for d, nu in enumerate(DF_GRID)])
        outers = {float(b): _discounted_outer(qb, float(b)) for b in np.unique(DCC_GRID[:, 1])
                  if b > 0}
        for g, (a, b) in enumerate(DCC_GRID):
            r = dcc_correlations(qb, qbar, float(a), float(b), outers.get(float(b)), days)
            chol = np.linalg.cholesky(r if a > 0 else r[:1])
            logdet = float(np.broadcast_to(
                2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1), (m,)).sum())
            y = _forward_solve(np.broadcast_to(chol, (m, k, k)), xs)
            quads = (y * y).sum(axis=1)  # (T, D)
            for d, nu in enumerate(DF_GRID):
                joint = (m * (special.gammaln((nu + k) / 2) - special.gammaln(nu / 2)
                              - k / 2 * np.log(nu * np.pi))
                         - 0.5 * logdet - (nu + k) / 2 * float(np.log1p(quads[:, d] / nu).sum()))
                out[g, d] += joint - marg[d]
    return out


class CopulaGarchEVT(JointAgent):
    """t-copula + DCC + GJR-GARCH-EVT margins agent (see the module docstring).

    Parameters
    ----------
    window : int
        Most residual vectors kept.
    draws, paths : int
        Posterior draws and common scenarios per draw (``paths`` also for ``h > 1``).
    positions : tuple of float
        The book ``forecast`` reports.
    """

    name = "CopulaGarchEVT"
    min_observations = 250

    def __init__(self, window: int = 1000, draws: int = 100, paths: int = 1000,
                 positions: tuple[float, ...] = ()) -> None:
        if int(window) < 100 or int(draws) < 2 or int(paths) < 10:
            raise InvalidParameter("window must be >= 100, draws >= 2 and paths >= 10")
        self.window, self.draws, self.paths = int(window), int(draws), int(paths)
        self.positions = self._set_positions(positions)

    # --- fit ----------------------------------------------------------------

    def _fit_matrix(self, x: FloatArray, seed: Seed) -> None:
        self._filters, z = GjrFilters.fit(x)
        self._z = z[-self.window:]
        self._refresh()

    def _refresh(self) -> None:
        """Margins, normal scores and the joint (DCC, df) posterior from the stored residuals."""
        z = self._z
        t, n = z.shape
        ranks = z.argsort(axis=0).argsort(axis=0)  # 0 .. t-1
        levels = np.arange(1, t + 1) / (t + 1)  # the t pseudo-observations any column takes
        q = special.ndtri(levels)[ranks]
        self._q = q
        self._table = margin_quantiles(z, _PROBS)  # (P, N)
        self._maps = self._score_maps()
        self._grid_logpost = grid_loglik(q, ranks, levels)

    def _score_maps(self) -> FloatArray:
        """``z = F^-1(t_nu(x))`` on the asinh grid, per df and asset ``(D, Y, N)``."""
        x = np.sinh(_Y)
        out = np.empty((DF_GRID.size, _Y.size, self._n))
        logit_p = np.log(_PROBS / (1 - _PROBS))
        for d, nu in enumerate(DF_GRID):
            p = np.clip(special.stdtr(nu, x), _PROBS[0], _PROBS[-1])
            lp = np.log(p / (1 - p))
            for j in range(self._n):
                out[d, :, j] = np.interp(lp, logit_p, self._table[:, j])
        return out

    def _update_row(self, x: FloatArray) -> float:
        """Filter the row and append its residual and normal score (the DCC sees it at once);
        the margins and the grid posteriors stay as fitted until the next ``fit``/``refit``."""
        z, dens = self._filters.update(x)
        u = np.array([np.interp(z[j], self._table[:, j], _PROBS) for j in range(self._n)])
        q = special.ndtri(np.clip(u, _PROBS[0], _PROBS[-1]))
        self._z = np.vstack([self._z, z[None]])[-self.window:]
        self._q = np.vstack([self._q, q[None]])[-self.window:]
        return dens

    # --- posterior draws and scenarios --------------------------------------

    @staticmethod
    def _pick(logpost: FloatArray, u: FloatArray) -> NDArray[np.intp]:
        w = np.exp(logpost - logpost.max())
        cum = np.cumsum(w / w.sum())
        out: NDArray[np.intp] = np.minimum(np.searchsorted(cum, u), logpost.size - 1)
        return out

    def _draw_correlations(self, rng: np.random.Generator, s: int
                           ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Per draw: ``R_{t+1}`` ``(S, N, N)``, ``Qbar`` ``(S, N, N)``, ``a + b`` ``(S,)``, df."""
        q = self._q
        t, n = q.shape
        cell = self._pick(self._grid_logpost.reshape(-1), rng.random(s))
        gi, di = np.divmod(cell, DF_GRID.size)
        # Qbar's posterior: inverse-Wishart around the scores' covariance (T pseudo-days)
        mean = q.T @ q / t
        # (a 1e-6 ridge keeps it positive definite for identical or collinear assets)
        fac = bartlett_factors(rng, (mean + 1e-6 * np.eye(n)) * t, float(t + n + 1), s)
        qbar = fac @ np.swapaxes(fac, 1, 2)
        a, b = DCC_GRID[gi, 0], DCC_GRID[gi, 1]
        inner = np.zeros_like(qbar)
        k = np.arange(t - 1, -1, -1, dtype=float)
        for bb in np.unique(b[a > 0]):
            sel = np.flatnonzero((b == bb) & (a > 0))
            inner[sel] = ((q * (bb ** k)[:, None]).T @ q)[None]  # sum_t b^(T-1-t) q_t q_t'
        level = np.where(b > 0, (1 - b ** t) / np.where(b > 0, 1 - b, 1.0), 1.0)
        coef = (1 - a - b) * level + b ** t
        qn = coef[:, None, None] * qbar + a[:, None, None] * inner
        d = np.sqrt(np.diagonal(qn, axis1=1, axis2=2))
        rnext = qn / d[:, :, None] / d[:, None, :]
        return rnext, qbar, a + b, DF_GRID[di]

    def _copula_shocks(self, chol: NDArray[Any], df: FloatArray, g: FloatArray, v: FloatArray
                       ) -> FloatArray:
        """Standardized residuals ``(S, M, N)`` from common normals ``g`` ``(M, N)``, uniforms."""
        n = g.shape[1]
        x = np.matmul(g[None], np.swapaxes(chol, 1, 2))  # (S, M, N) correlated normals
        scale = np.sqrt(special.chdtri(DF_GRID[:, None], v[None, :]) / DF_GRID[:, None])  # (D, M)
        di = np.searchsorted(DF_GRID, df)
        x /= scale[di][:, :, None]
        np.arcsinh(x, out=x)
        x -= _Y[0]
        x /= _DY
        np.clip(x, 0.0, _Y.size - 1.000001, out=x)
        i = x.astype(np.intp)
        x -= i  # the fraction between grid points
        i *= n
        i += np.arange(n)
        i += (di * (_Y.size * n))[:, None, None]
        flat = self._maps.reshape(-1)
        lo = flat.take(i)
        i += n
        hi = flat.take(i)
        hi -= lo
        hi *= x
        hi += lo
        out: FloatArray = hi
        return out

    def scenarios(self, horizon: int = 1, *, seed: Seed = None) -> Scenarios:
        self._require_fitted()
        h = self._check_horizon(horizon)
        rng = rng_from(seed)
        s, n = self.draws, self._n
        m = self._paths_within_budget(s, self.paths if h == 1 else self.paths // 2)
        self._scenario_budget(s, m * (1 if h == 1 else 2))
        f = self._filters
        idx, params = f.draw(rng.random((s, n)))
        s2 = f.s2[idx, np.arange(n)[None, :]]
        rnext, qbar, persist, df = self._draw_correlations(rng, s)
        chol = np.linalg.cholesky(rnext + 1e-10 * np.eye(n))
        if h == 1:
            z = self._copula_shocks(chol, df, rng.standard_normal((m, n)), rng.random(m))
            r = f.mu + np.sqrt(s2)[:, None, :] * z
            return Scenarios(r, np.full(s, 1.0 / s), None, 1)

        def shocks(k: int) -> FloatArray:
            ck = chol
            if k > 0:
                qk = qbar + persist[:, None, None] ** k * (rnext - qbar)
                d = np.sqrt(np.diagonal(qk, axis1=1, axis2=2))
                ck = np.linalg.cholesky(qk / d[:, :, None] / d[:, None, :] + 1e-10 * np.eye(n))
            return self._copula_shocks(ck, df, rng.standard_normal((m, n)), rng.random(m))

        r = f.simulate_paths(params, s2, h, shocks)
        return Scenarios(r, np.full(s, 1.0 / s), None, h)

    # --- generative side and state ----------------------------------------------

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, NDArray[np.float64]]:
        rng = rng_from(seed)
        return {"dcc": DCC_GRID[rng.integers(0, DCC_GRID.shape[0], size=n)],
                "df": DF_GRID[rng.integers(0, DF_GRID.size, size=n)]}

    def simulate(self, params: Mapping[str, Any], n: int, *, seed: Seed = None
                 ) -> NDArray[np.float64]:
        """``n`` t-scores ``(n, 2)`` of a bivariate t copula (``params["df"]``, ``["rho"]``)."""
        nu, rho = float(params["df"]), float(params["rho"])
        rng = rng_from(seed)
        chol = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))
        g = rng.standard_normal((n, 2)) @ chol.T
        out: NDArray[np.float64] = g / np.sqrt(rng.chisquare(nu, size=(n, 1)) / nu)
        return out

    def posterior_draws(self) -> dict[str, NDArray[np.float64]]:
        self._require_fitted()
        rng = np.random.default_rng(0)
        rnext, _, persist, df = self._draw_correlations(rng, self.draws)
        return {"correlation": rnext, "persistence": persist, "df": df}

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return {"n": self._n}, {"z": self._z, "q": self._q, "table": self._table,
                                "grid_logpost": self._grid_logpost, **self._filters.arrays()}

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            self._n = int(scalars["n"])
            self._z, self._q = np.asarray(arrays["z"], float), np.asarray(arrays["q"], float)
            self._table = np.asarray(arrays["table"], float)
            self._grid_logpost = np.asarray(arrays["grid_logpost"], float)
            self._filters = GjrFilters.from_arrays(dict(arrays))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"CopulaGarchEVT state is incomplete: {exc}") from exc
        n = self._n
        self._maps = self._score_maps() if self._table.shape == (_PROBS.size, n) else self._table
        if (self._z.ndim != 2 or self._z.shape[1] != n or self._q.shape != self._z.shape
                or self._table.shape != (_PROBS.size, n)
                or self._grid_logpost.shape != (DCC_GRID.shape[0], DF_GRID.size)):
            raise InvalidState("CopulaGarchEVT state arrays do not match its asset count")
