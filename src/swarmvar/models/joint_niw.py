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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import special

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


class NormalInverseWishart(JointAgent):
    """Conjugate NIW agent of ``N`` assets with exponential forgetting (see the module docstring).

    Parameters
    ----------
    lam : float
        Forgetting factor in (0, 1]; effective window ``1 / (1 - lam)`` days.
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

    def __init__(self, lam: float = 0.99, kappa0: float = 1.0, prior_vol: float = 0.01,
                 draws: int = 100, paths: int = 1000, positions: tuple[float, ...] = ()) -> None:
        if not 0.0 < lam <= 1.0:
            raise InvalidParameter(f"lam must be in (0, 1], not {lam!r}")
        if not kappa0 > 0 or not prior_vol > 0:
            raise InvalidParameter("kappa0 and prior_vol must be positive")
        if int(draws) < 2 or int(paths) < 10:
            raise InvalidParameter("draws must be >= 2 and paths >= 10")
        self.lam, self.kappa0, self.prior_vol = float(lam), float(kappa0), float(prior_vol)
        self.draws, self.paths = int(draws), int(paths)
        self.positions = self._set_positions(positions)

    # --- the conjugate posterior ---------------------------------------

    def _prior(self) -> tuple[float, float, FloatArray]:
        n = self._n
        nu0 = n + 2.0
        return self.kappa0, nu0, np.eye(n) * self.prior_vol ** 2 * (nu0 - n - 1)

    def posterior(self) -> tuple[FloatArray, float, float, FloatArray]:
        """``(m, kappa, nu, Psi)`` of the NIW posterior."""
        self._require_fitted()
        kappa0, nu0, psi0 = self._prior()
        w = self._w
        xbar = self._sx / w if w > 0 else np.zeros(self._n)
        scatter = self._sxx - w * np.outer(xbar, xbar)
        kappa = kappa0 + w
        m = w * xbar / kappa
        psi = psi0 + scatter + kappa0 * w / kappa * np.outer(xbar, xbar)
        return m, kappa, nu0 + w, 0.5 * (psi + psi.T)

    def _fit_matrix(self, x: FloatArray, seed: Seed) -> None:
        t = x.shape[0]
        c = self.lam ** np.arange(t - 1, -1, -1, dtype=float)
        self._w = float(c.sum())
        self._sx = c @ x
        self._sxx = (x * c[:, None]).T @ x

    def _update_row(self, x: FloatArray) -> float:
        dens = self.log_predictive(x)
        self._w = self.lam * self._w + 1.0
        self._sx = self.lam * self._sx + x
        self._sxx = self.lam * self._sxx + np.outer(x, x)
        return dens

    def log_predictive(self, x: FloatArray) -> float:
        """Log density of the one-day multivariate-t predictive at ``x`` ``(N,)``."""
        m, kappa, nu, psi = self.posterior()
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
                           ) -> tuple[FloatArray, FloatArray]:
        m, kappa, nu, psi = self.posterior()
        fac = bartlett_factors(rng, psi, nu, draws)
        g = rng.standard_normal((draws, self._n))
        mu = m + np.einsum("sij,sj->si", fac, g) / math.sqrt(kappa)
        return mu, fac

    def scenarios(self, horizon: int = 1, *, seed: Seed = None) -> Scenarios:
        self._require_fitted()
        h = self._check_horizon(horizon)
        paths = self._paths_within_budget(self.draws, self.paths)
        self._scenario_budget(self.draws, paths)
        rng = rng_from(seed)
        mu, fac = self._posterior_factors(rng, self.draws)
        z = common_normals(rng, paths, self._n)
        r = h * mu[:, None, :] + math.sqrt(h) * np.matmul(z[None], np.swapaxes(fac, 1, 2))
        return Scenarios(r, np.full(self.draws, 1.0 / self.draws), None, h)

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
        mu, fac = self._posterior_factors(np.random.default_rng(0), self.draws)
        return {"mu": mu, "sigma": fac @ np.swapaxes(fac, 1, 2)}

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return {"n": self._n, "w": self._w}, {"sx": self._sx, "sxx": self._sxx}

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            n, w = int(scalars["n"]), float(scalars["w"])
            sx, sxx = np.asarray(arrays["sx"], float), np.asarray(arrays["sxx"], float)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"NormalInverseWishart state is incomplete: {exc}") from exc
        if sx.shape != (n,) or sxx.shape != (n, n) or not (w > 0 and np.isfinite(sxx).all()):
            raise InvalidState("NormalInverseWishart state arrays do not match its asset count")
        self._n, self._w, self._sx, self._sxx = n, w, sx, sxx
