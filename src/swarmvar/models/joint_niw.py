"""``NormalInverseWishart``: conjugate multivariate Normal model with forgetting (exact, online).

The multivariate sibling of :class:`~swarmvar.models.nig.NormalInverseGamma`.
Model: ``r_t | mu, Sigma ~ N_N(mu, Sigma)``; prior ``Sigma ~ IW(nu0, Psi0)``,
``mu | Sigma ~ N(m0, Sigma / kappa0)`` with ``m0 = 0``, ``nu0 = N + 2`` and
``Psi0 = prior_vol^2 (nu0 - N - 1) I`` (prior mean of ``Sigma``:
``prior_vol^2 I``).

Forgetting: day ``t`` of ``T`` enters the likelihood with weight
``c_t = lam^(T - t)`` (a power likelihood; ``lam = 1`` is the iid posterior).
With ``W = sum c_t``, ``xbar = sum c_t r_t / W`` and
``S = sum c_t (r_t - xbar)(r_t - xbar)'`` the posterior is NIW with

    kappa = kappa0 + W,   m = (kappa0 m0 + W xbar) / kappa,
    nu = nu0 + W,         Psi = Psi0 + S + kappa0 W / kappa (xbar - m0)(xbar - m0)'

(Murphy 2007, "Conjugate Bayesian analysis of the Gaussian distribution",
eq. 250-254, with weighted counts). The agent keeps ``W``, ``sum c r`` and
``sum c r r'``; an update is ``x <- lam x + new``: O(N^2).

Predictive: one day is multivariate t with ``nu - N + 1`` degrees of
freedom, location ``m`` and scale ``Psi (kappa + 1) / (kappa (nu - N + 1))``
(the log score of ``update``). Over ``h`` days, given ``(mu, Sigma)`` the
cumulative log return is ``N(h mu, h Sigma)``; scenarios draw ``(mu,
Sigma)`` from the posterior (Bartlett decomposition) and ``M`` common
normals per draw. The book's P&L is exact, ``p'(exp(R) - 1)``.

A posterior over the forgetting factor (``lams=``, a grid): each grid point
``lam_g`` keeps its own weighted statistics (an update is O(G N^2) plus G
Cholesky factors for the scores) and its log evidence, the sum of its exact
one-day predictive log densities, ``E_g = sum_t a^(T-t) log p(r_t | r_<t,
lam_g)``, and the weights are ``pi_g ~ exp(a E_g)``. With
``evidence_forgetting`` ``a = 1`` and a uniform prior over the grid they
are the exact posterior of a fixed ``lam``; with ``a < 1`` they are those
of dynamic model averaging (Raftery,
Karny & Ettler 2010: ``pi_(t|t-1) ~ pi_(t-1)^a``), so the mass can move
to a shorter memory after a break. The predictive is the mixture over the
grid: ``update`` scores ``log sum_g pi_g p_g(r)`` and the scenarios give
each grid point ``n_g ~ S pi_g`` draws (largest remainders) weighted
``pi_g / n_g``, an exact mixture of the points that get a draw.

``evidence="book"`` scores each grid point on the book's P&L instead of
the whole asset vector: ``log p(p'r_t | r_<t, lam_g)``, the univariate t
that is the exact marginal of the multivariate-t predictive along the
positions ``p`` (the P&L linear in log returns, ``p'r``; its scale does not
change the weights). It is a prequential (Dawid 1984) weighting focused on
the quantity forecast: the grid then follows the memory that predicts this
book, not the 20-asset vector, whose evidence is dominated by the market
direction. This evidence is cheaper too: O(G N^2) per day, no
factorization (``update`` still factors each point's scale for the joint
log score it returns).

Defaults: ``NormalInverseWishart()`` averages over :data:`GRID_LAMS` with
``evidence="book"`` and ``a = 0.99`` (chosen on the book backtests,
docs/portfolio.md); ``lam=`` fixes one factor and gives the agent's
numbers from before the grid exactly (its states still read).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special
from scipy.signal import lfilter

from ..errors import InvalidParameter, InvalidState
from .base import Seed, rng_from
from .joint_base import FloatArray, JointAgent, Scenarios, common_normals


def bartlett_factors(rng: np.random.Generator, psi: FloatArray, nu: float, draws: int
                     ) -> FloatArray:
    """Factors ``L_s`` ``(S, N, N)`` with ``L_s L_s' ~ IW(nu, Psi)`` (Bartlett decomposition).

    ``W = C A A' C' ~ Wishart(nu, Psi^-1)`` with ``C = U^-T`` (``Psi = U U'``)
    and ``A`` lower triangular (``sqrt(chi2(nu - i))`` on the diagonal,
    standard normals below); ``Sigma = W^-1 = (U A^-T)(U A^-T)'``.
    """
    n = psi.shape[0]
    u = np.linalg.cholesky(psi)
    a = np.zeros((draws, n, n))
    low = np.tril_indices(n, -1)
    a[:, low[0], low[1]] = rng.standard_normal((draws, low[0].size))
    diag = np.arange(n)
    a[:, diag, diag] = np.sqrt(rng.chisquare(nu - diag, size=(draws, n)))
    inv = np.linalg.inv(a)
    return np.asarray(u[None] @ np.swapaxes(inv, 1, 2), dtype=np.float64)


#: The grid a default agent averages over (see docs/portfolio.md, "A posterior over the
#: forgetting factor"): effective windows ``1 / (1 - lam)`` of 17 to 1000 days.
GRID_LAMS: tuple[float, ...] = (0.94, 0.96, 0.97, 0.98, 0.99, 0.995, 0.999)
#: What ``NormalInverseWishart()`` uses when neither ``lam`` nor ``lams`` is given (chosen
#: on the equal-weight and long/short books' backtests, docs/portfolio.md).
DEFAULT_LAMS: tuple[float, ...] = GRID_LAMS
#: What each grid point's evidence scores: the asset vector or the book's P&L.
EVIDENCE: tuple[str, ...] = ("assets", "book")
#: Largest grid ``lams`` may hold.
MAX_LAMS = 50
#: Version of the agent's own state arrays (1: one ``lam``, scalars ``w`` and 1-d ``sx``).
NIW_STATE = 2
#: Scenario-sized chunk (values) the history's scores are computed in (memory bound).
_CHUNK_VALUES = 4_000_000


def _check_lam(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidParameter(f"{what} must be a number in (0, 1], not {value!r}")
    lam = float(value)
    if not 0.0 < lam <= 1.0:
        raise InvalidParameter(f"{what} must be in (0, 1], not {value!r}")
    return lam


def _grid(lam: float | None, lams: tuple[float, ...]) -> tuple[float, ...]:
    """The forgetting factors the agent averages over, checked."""
    if not isinstance(lams, (tuple, list)):
        raise InvalidParameter(f"lams must be a tuple of forgetting factors, not {lams!r}")
    if len(lams) > MAX_LAMS:
        raise InvalidParameter(f"lams holds {len(lams)} forgetting factors; at most {MAX_LAMS}")
    grid = tuple(_check_lam(v, "every lams value") for v in lams)
    if len(set(grid)) != len(grid):
        raise InvalidParameter(f"lams has repeated values: {lams!r}")
    if lam is not None:
        one = _check_lam(lam, "lam")
        if grid and grid != (one,):
            raise InvalidParameter("give lam (one fixed forgetting factor) or lams (a grid to "
                                   f"average over), not both: lam={lam!r}, lams={lams!r}")
        return (one,)
    return tuple(sorted(grid)) if grid else DEFAULT_LAMS


def allocate_draws(weights: FloatArray, draws: int) -> NDArray[np.int64]:
    """Draws per grid point ``(G,)``: ``draws * weights`` rounded by largest remainders."""
    share = np.asarray(weights, dtype=float) * draws
    counts: NDArray[np.int64] = np.floor(share).astype(np.int64)
    left = draws - int(counts.sum())
    if left > 0:
        order = np.argsort(-(share - counts), kind="stable")
        counts[order[:left]] += 1
    return counts


class NormalInverseWishart(JointAgent):
    """Conjugate NIW agent of ``N`` assets with exponential forgetting (see the module docstring).

    Parameters
    ----------
    lam : float, optional
        One fixed forgetting factor in (0, 1]; effective window ``1 / (1 - lam)`` days.
    lams : tuple of float
        A grid of forgetting factors to average over by their evidence (not with
        ``lam``). Neither given: :data:`DEFAULT_LAMS`.
    evidence_forgetting : float
        ``a`` in (0, 1]: the grid's log evidence forgets old days as ``a^age``
        (1 with ``evidence="assets"``: the exact posterior over a fixed ``lam``;
        default 0.99, dynamic model averaging's). Unused with one ``lam``.
    evidence : {"book", "assets"}
        What the grid's evidence scores: the book's P&L ``p'r`` (its
        univariate-t marginal along ``positions``; the default) or the asset
        vector's multivariate-t predictive (the posterior over ``lam``).
    kappa0 : float
        Prior strength of the mean (pseudo-days).
    prior_vol : float
        Prior daily volatility of each asset (fraction).
    draws, paths : int
        Posterior draws and scenarios per draw of a forecast.
    positions : tuple of float
        The book ``forecast`` reports (currency per asset; empty: equal weights summing to 1).
    """

    name = "NormalInverseWishart"
    min_observations = 30

    def __init__(self, lam: float | None = None, kappa0: float = 1.0, prior_vol: float = 0.01,
                 draws: int = 100, paths: int = 1000, positions: tuple[float, ...] = (),
                 lams: tuple[float, ...] = (), evidence_forgetting: float = 0.99,
                 evidence: str = "book") -> None:
        grid = _grid(lam, lams)
        if evidence not in EVIDENCE:
            raise InvalidParameter(f"evidence must be one of {EVIDENCE}, not {evidence!r}")
        self.evidence = str(evidence)
        if not kappa0 > 0 or not prior_vol > 0:
            raise InvalidParameter("kappa0 and prior_vol must be positive")
        if int(draws) < 2 or int(paths) < 10:
            raise InvalidParameter("draws must be >= 2 and paths >= 10")
        self.lam = None if lam is None else grid[0]
        self.lams = tuple(float(v) for v in lams)
        self.evidence_forgetting = _check_lam(evidence_forgetting, "evidence_forgetting")
        self._grid = np.array(grid)
        self.kappa0, self.prior_vol = float(kappa0), float(prior_vol)
        self.draws, self.paths = int(draws), int(paths)
        self.positions = self._set_positions(positions)

    @property
    def grid(self) -> tuple[float, ...]:
        """The forgetting factors the agent averages over (one: a fixed ``lam``)."""
        return tuple(float(v) for v in self._grid)

    # --- the conjugate posterior ---------------------------------------

    def _prior(self) -> tuple[float, float, FloatArray]:
        n = self._n
        nu0 = n + 2.0
        return self.kappa0, nu0, np.eye(n) * self.prior_vol ** 2 * (nu0 - n - 1)

    def posterior(self, index: int | None = None) -> tuple[FloatArray, float, float, FloatArray]:
        """``(m, kappa, nu, Psi)`` of the NIW posterior given grid point ``index``.

        ``None``: the most probable grid point (the only one with a fixed ``lam``).
        """
        self._require_fitted()
        if index is None:
            return self._posterior_of(int(np.argmax(self.lam_posterior())))
        if (isinstance(index, bool) or not isinstance(index, (int, np.integer))
                or not 0 <= index < self._grid.size):
            raise InvalidParameter(f"index must be a grid point 0..{self._grid.size - 1}, "
                                   f"not {index!r}")
        return self._posterior_of(int(index))

    def _posterior_of(self, g: int) -> tuple[FloatArray, float, float, FloatArray]:
        kappa0, nu0, psi0 = self._prior()
        w = float(self._w[g])
        sx, sxx = self._sx[g], self._sxx[g]
        xbar = sx / w if w > 0 else np.zeros(self._n)
        scatter = sxx - w * np.outer(xbar, xbar)
        kappa = kappa0 + w
        m = w * xbar / kappa
        psi = psi0 + scatter + kappa0 * w / kappa * np.outer(xbar, xbar)
        return m, kappa, nu0 + w, 0.5 * (psi + psi.T)

    def lam_posterior(self) -> FloatArray:
        """Weights ``(G,)`` of the grid's forgetting factors for the next day (sum to one)."""
        self._require_fitted()
        if self._grid.size == 1:
            return np.ones(1)
        out: FloatArray = np.exp(self._log_weights())
        return out

    def _log_weights(self) -> FloatArray:
        z = self.evidence_forgetting * self._logev
        out: FloatArray = z - _logsumexp(z)
        return out

    def log_evidence(self) -> FloatArray:
        """Each grid point's (forgotten) log evidence ``(G,)``, nats; zeros with one ``lam``.

        With ``evidence="book"`` it is the density of the P&L per unit of the
        largest position, ``p'r / max|p|`` (of ``p'r`` with ``p = 1 / N`` when no
        positions are given).
        """
        self._require_fitted()
        return self._logev.copy()

    def _fit_matrix(self, x: FloatArray, seed: Seed) -> None:
        t, n = x.shape
        g = self._grid.size
        self._w, self._sx, self._sxx = np.empty(g), np.empty((g, n)), np.empty((g, n, n))
        for k, lam in enumerate(self._grid):
            c = float(lam) ** np.arange(t - 1, -1, -1, dtype=float)
            self._w[k] = float(c.sum())
            self._sx[k] = c @ x
            self._sxx[k] = (x * c[:, None]).T @ x
        self._logev = np.zeros(g)
        if g > 1:
            a = self.evidence_forgetting
            age = a ** np.arange(t - 1, -1, -1, dtype=float)
            scores = (self._book_history_scores if self.evidence == "book"
                      else self._history_scores)
            self._logev = np.array([scores(x, float(lam)) @ age for lam in self._grid])

    def _book(self) -> FloatArray:
        """The direction the book evidence projects on: the positions over their largest
        (the scale does not change the weights), equal weights if none are given."""
        p = self._positions_for(self._n)
        if self.positions:
            top = float(np.abs(p).max())
            if not top > 0:
                raise InvalidParameter(
                    f"{self.name}'s positions are all zero: the book evidence "
                    "(evidence='book') needs exposure; give positions, evidence='assets' "
                    "or one lam")
            p = p / top
        return p

    def _book_history_scores(self, x: FloatArray, lam: float) -> FloatArray:
        """Log predictive ``(T,)`` of each day's book P&L ``p'x_t`` given the days before it."""
        kappa0, nu0, psi0 = self._prior()
        p = self._book()
        y = x @ p
        t = y.size
        after = lfilter([1.0], [1.0, -lam], np.column_stack([np.ones(t), y, y * y]), axis=0)
        before = np.vstack([np.zeros((1, 3)), after[:-1]])
        return _book_t_scores(y, before[:, 0], before[:, 1], before[:, 2], kappa0, nu0,
                              float(p @ psi0 @ p), self._n)

    def _history_scores(self, x: FloatArray, lam: float) -> FloatArray:
        """Log predictive ``(T,)`` of each day of ``x`` given the days before it (one ``lam``)."""
        t, n = x.shape
        kappa0, nu0, psi0 = self._prior()
        out = np.empty(t)
        w, sx, sxx = 0.0, np.zeros(n), np.zeros((n, n))  # the statistics before the chunk
        chunk = max(1, _CHUNK_VALUES // (n * n))
        for start in range(0, t, chunk):
            xb = x[start:start + chunk]
            k = xb.shape[0]
            # after-day statistics, y_j = lam y_(j-1) + x_j, started from the carried ones
            after_w = lfilter([1.0], [1.0, -lam], np.ones(k), zi=[lam * w])[0]
            after_sx = lfilter([1.0], [1.0, -lam], xb, axis=0, zi=(lam * sx)[None])[0]
            outer = (xb[:, :, None] * xb[:, None, :]).reshape(k, n * n)
            after_sxx = lfilter([1.0], [1.0, -lam], outer, axis=0,
                                zi=(lam * sxx).reshape(1, n * n))[0].reshape(k, n, n)
            bw = np.concatenate([[w], after_w[:-1]])
            bsx = np.concatenate([sx[None], after_sx[:-1]])
            bsxx = np.concatenate([sxx[None], after_sxx[:-1]])
            out[start:start + k] = _t_scores(xb, bw, bsx, bsxx, kappa0, nu0, psi0)
            w, sx, sxx = float(after_w[-1]), after_sx[-1], after_sxx[-1]
        return out

    def _update_row(self, x: FloatArray) -> float:
        if self._grid.size == 1:
            dens = self._log_predictive(x)
        else:
            prior = self._prior()
            dens, scores = self._mixture_score(x, prior)
            if self.evidence == "book":
                kappa0, nu0, psi0 = prior
                p = self._book()
                scores = _book_t_scores(np.full(self._grid.size, x @ p), self._w, self._sx @ p,
                                        np.einsum("gij,i,j->g", self._sxx, p, p), kappa0, nu0,
                                        float(p @ psi0 @ p), self._n)
            self._logev = self.evidence_forgetting * self._logev + scores
        lam = self._grid
        self._w = lam * self._w + 1.0
        self._sx = lam[:, None] * self._sx + x
        self._sxx = lam[:, None, None] * self._sxx + np.outer(x, x)
        return dens

    def _mixture_score(self, x: FloatArray, prior: tuple[float, float, FloatArray]
                       ) -> tuple[float, FloatArray]:
        """``log sum_g pi_g p_g(x)`` of ``x`` ``(N,)`` under the grid's mixture, and each
        point's multivariate-t log density ``log p_g(x)`` ``(G,)``; ``prior`` is ``_prior()``."""
        kappa0, nu0, psi0 = prior
        scores = _t_scores(np.broadcast_to(x, self._sx.shape), self._w, self._sx, self._sxx,
                           kappa0, nu0, psi0)
        return float(_logsumexp(scores + self._log_weights())), scores

    def log_predictive(self, x: ArrayLike) -> float:
        """Log density of the one-day predictive at ``x`` ``(N,)`` (the mixture over the grid).

        Raises
        ------
        NotFitted
            Before ``fit``.
        InvalidReturns
            Unless ``x`` is one finite row of as many log returns as assets.
        """
        self._require_fitted()
        return self._log_predictive(self._check_row(x, "log_predictive"))

    def _log_predictive(self, x: FloatArray) -> float:
        """:meth:`log_predictive` of a checked row."""
        if self._grid.size > 1:
            return self._mixture_score(x, self._prior())[0]
        m, kappa, nu, psi = self.posterior(0)
        n = self._n
        df = nu - n + 1
        scale = psi * (kappa + 1) / (kappa * df)
        chol = np.linalg.cholesky(scale)
        z = np.linalg.solve(chol, x - m)
        q = float(z @ z)
        logdet = 2.0 * float(np.log(np.diag(chol)).sum())
        return float(special.gammaln((df + n) / 2) - special.gammaln(df / 2)
                     - n / 2 * math.log(df * math.pi) - 0.5 * logdet
                     - (df + n) / 2 * math.log1p(q / df))

    def _posterior_factors(self, rng: np.random.Generator, draws: int
                           ) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.int64]]:
        """``(mu, L, weights, grid index)`` of ``draws`` draws, ``n_g`` per grid point."""
        counts = allocate_draws(self.lam_posterior(), draws)
        mus, facs, which = [], [], []
        for g in np.flatnonzero(counts):
            m, kappa, nu, psi = self.posterior(int(g))
            fac = bartlett_factors(rng, psi, nu, int(counts[g]))
            z = rng.standard_normal((int(counts[g]), self._n))
            mus.append(m + np.einsum("sij,sj->si", fac, z) / math.sqrt(kappa))
            facs.append(fac)
            which.append(np.full(int(counts[g]), g))
        idx = np.concatenate(which)
        if self._grid.size == 1:
            weights = np.full(draws, 1.0 / draws)
        else:
            pi = self.lam_posterior()
            weights = pi[idx] / counts[idx]
            weights /= weights.sum()
        return np.concatenate(mus), np.concatenate(facs), weights, idx

    def scenarios(self, horizon: int = 1, *, seed: Seed = None) -> Scenarios:
        self._require_fitted()
        h = self._check_horizon(horizon)
        paths = self._paths_within_budget(self.draws, self.paths)
        self._scenario_budget(self.draws, paths)
        rng = rng_from(seed)
        mu, fac, weights, _ = self._posterior_factors(rng, self.draws)
        z = common_normals(rng, paths, self._n)
        r = h * mu[:, None, :] + math.sqrt(h) * np.matmul(z[None], np.swapaxes(fac, 1, 2))
        return Scenarios(r, weights, None, h)

    # --- generative side -------------------------------------------------

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, NDArray[np.float64]]:
        self._require_fitted()
        rng = rng_from(seed)
        kappa0, nu0, psi0 = self._prior()
        fac = bartlett_factors(rng, psi0, nu0, n)
        sigma = fac @ np.swapaxes(fac, 1, 2)
        mu = np.einsum("sij,sj->si", fac, rng.standard_normal((n, self._n))) / math.sqrt(kappa0)
        return {"mu": mu, "sigma": sigma}

    def simulate(self, params: Mapping[str, Any], n: int, *, seed: Seed = None
                 ) -> NDArray[np.float64]:
        """``n`` rows ``(n, N)`` from ``N(mu, sigma)`` (``params["mu"]``, ``params["sigma"]``)."""
        mu = np.asarray(params["mu"], dtype=float)
        sigma = np.asarray(params["sigma"], dtype=float)
        out: NDArray[np.float64] = rng_from(seed).multivariate_normal(mu, sigma, size=n)
        return out

    def posterior_draws(self) -> dict[str, NDArray[np.float64]]:
        """``draws`` draws of ``mu``, ``sigma`` and ``lam`` (grid points by rounded weights)."""
        mu, fac, _, idx = self._posterior_factors(np.random.default_rng(0), self.draws)
        return {"mu": mu, "sigma": fac @ np.swapaxes(fac, 1, 2), "lam": self._grid[idx]}

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return ({"n": self._n, "niw_state": NIW_STATE, "grid": [float(v) for v in self._grid]},
                {"w": self._w, "sx": self._sx, "sxx": self._sxx, "logev": self._logev})

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        g = self._grid.size
        try:
            n, version = int(scalars["n"]), scalars.get("niw_state", 1)
            if version == 1:  # one lam: w a scalar, 1-d sums (states written before the grid)
                w = np.array([float(scalars["w"])])
                sx = np.asarray(arrays["sx"], float)[None]
                sxx = np.asarray(arrays["sxx"], float)[None]
                logev = np.zeros(1)
            elif version == NIW_STATE:
                w, logev = np.asarray(arrays["w"], float), np.asarray(arrays["logev"], float)
                sx, sxx = np.asarray(arrays["sx"], float), np.asarray(arrays["sxx"], float)
                written = scalars.get("grid")  # (absent in the first grid states)
                if written is not None and tuple(float(v) for v in written) != self.grid:
                    raise InvalidState(
                        f"NormalInverseWishart state was written for the forgetting factors "
                        f"{list(written)}, this agent averages over {list(self.grid)}; "
                        "give the same lam/lams")
            else:
                raise InvalidState(f"NormalInverseWishart state version {version!r} is not 1 "
                                   f"or {NIW_STATE}")
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"NormalInverseWishart state is incomplete: {exc}") from exc
        if (n < 1 or w.shape != (g,) or sx.shape != (g, n) or sxx.shape != (g, n, n)
                or logev.shape != (g,)):
            raise InvalidState("NormalInverseWishart state arrays do not match its asset count "
                               f"and its grid of {g} forgetting factors")
        if not ((w > 0).all() and np.isfinite(sx).all() and np.isfinite(sxx).all()
                and np.isfinite(logev).all()):
            raise InvalidState("NormalInverseWishart state holds non-finite or non-positive "
                               "statistics")
        with np.errstate(divide="ignore"):  # lam = 1: no bound on the weighted count
            most = np.where(self._grid < 1.0, 1.0 / (1.0 - self._grid), np.inf)
        if np.any(w > most * (1.0 + 1e-9) + 1e-9):  # w = sum lam^k < 1 / (1 - lam)
            raise InvalidState("NormalInverseWishart state's weighted day counts exceed "
                               "1 / (1 - lam): it was written for other forgetting factors")
        self._n, self._w, self._sx, self._sxx, self._logev = n, w, sx, sxx, logev
        for k in range(g):  # every grid point's scale matrix must be positive definite
            try:
                np.linalg.cholesky(self._posterior_of(k)[3])
            except np.linalg.LinAlgError as exc:
                raise InvalidState("NormalInverseWishart state's sums of squares are not a "
                                   "covariance (not positive definite)") from exc


def _t_scores(x: FloatArray, w: FloatArray, sx: FloatArray, sxx: FloatArray, kappa0: float,
              nu0: float, psi0: FloatArray) -> FloatArray:
    """Multivariate-t predictive log densities ``(K,)`` of rows ``x`` ``(K, N)``, each given
    its own weighted statistics ``w`` ``(K,)``, ``sx`` ``(K, N)``, ``sxx`` ``(K, N, N)``.

    ``m = sx / kappa`` and ``Psi = Psi0 + sxx - sx sx' / kappa`` (the module's
    formulas with ``xbar = sx / w`` and ``m0 = 0``), ``kappa = kappa0 + w``.
    """
    n = x.shape[1]
    kappa = kappa0 + w
    df = nu0 + w - n + 1
    ratio = (kappa + 1) / (kappa * df)
    # scale = (Psi0 + sxx - sx sx' / kappa) (kappa + 1) / (kappa df); symmetric by construction
    scale = sxx - sx[:, :, None] * (sx / kappa[:, None])[:, None, :]
    scale += psi0
    scale *= ratio[:, None, None]
    chol = np.linalg.cholesky(scale)
    d = x - sx / kappa[:, None]
    if d.shape[0] < 64:  # an update: a few grid points
        z = np.linalg.solve(chol, d[:, :, None])[:, :, 0]
    else:  # a history: forward substitution, vectorized over the K rows
        z = np.empty_like(d)
        for i in range(n):
            z[:, i] = (d[:, i] - np.einsum("kj,kj->k", chol[:, i, :i], z[:, :i])) / chol[:, i, i]
    q = np.einsum("ki,ki->k", z, z)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    out: FloatArray = (special.gammaln((df + n) / 2) - special.gammaln(df / 2)
                       - n / 2 * np.log(df * math.pi) - 0.5 * logdet
                       - (df + n) / 2 * np.log1p(q / df))
    return out


def _logsumexp(z: FloatArray) -> float:
    """``log sum exp(z)`` of a finite-or-minus-infinity vector (scipy's costs ~100 us a call)."""
    top = float(np.max(z))
    return top + math.log(float(np.exp(z - top).sum()))


def _book_t_scores(y: FloatArray, w: FloatArray, s1: FloatArray, s2: FloatArray, kappa0: float,
                   nu0: float, q0: float, n: int) -> FloatArray:
    """Univariate-t log densities ``(K,)`` of book P&L values ``y`` ``(K,)``: the marginals
    along ``p`` of the multivariate-t predictives, given ``w``, ``s1 = p'sx`` and
    ``s2 = p'sxx p`` ``(K,)`` and ``q0 = p'Psi0 p``."""
    kappa = kappa0 + w
    df = nu0 + w - n + 1
    var = (q0 + s2 - s1 * s1 / kappa) * (kappa + 1) / (kappa * df)
    z2 = (y - s1 / kappa) ** 2 / var
    # Not risk.t_log_norm(df) - log(var) / 2: one log of the product rounds once (the
    # two-log form moves the last bits of the scores).
    out: FloatArray = (special.gammaln((df + 1) / 2) - special.gammaln(df / 2)
                       - 0.5 * np.log(df * math.pi * var) - (df + 1) / 2 * np.log1p(z2 / df))
    return out
