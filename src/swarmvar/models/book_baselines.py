"""The baselines every book backtest shows: RiskMetrics and arch's GJR-GARCH-t on the book's P&L.

* :class:`RiskMetrics` (J.P. Morgan/Reuters 1996): the EWMA covariance
  ``Sigma_{t+1} = lam Sigma_t + (1 - lam) r_t r_t'`` with ``lam = 0.94``, zero
  mean, normal returns, and the delta-normal VaR/ES of the book,
  ``VaR = z_alpha sqrt(h p' Sigma p)``, ``ES = phi(z_alpha) / (1 - alpha) sqrt(h p' Sigma p)``;
  its Euler contributions in closed form, ``p_i (Sigma p)_i / sqrt(p' Sigma p)``
  times the same factors (:meth:`RiskMetrics.delta_normal`). It is not
  Bayesian: its intervals have zero width. Its scenarios (for the what-if
  analysis of the book API) are normal with that covariance, one draw.
* :class:`ArchGjrT`: ``arch_model(100 x, vol="GARCH", p=1, o=1, q=1, dist="t")``
  on the book's own P&L series (a univariate forecaster, like the backtest's
  GARCH(1,1)-t row), fitted by maximum likelihood on each window and filtered
  forward between refits.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ..errors import (
    InvalidParameter,
    InvalidState,
    NotFitted,
)
from ..types import Forecast, RiskMeasure
from ._arch_refits import (
    _SCALE,
    ArchRefits,
    GarchParams,
    garch_filter,
    garch_step,
    standardized_t_var_es,
)
from .base import Seed, rng_from
from .joint_base import FloatArray, JointAgent, Scenarios, common_normals
from .risk import check_alphas

# the shared refit rule and recursion live in ._arch_refits (validation's baseline imports
# them from there); named here too for code that imported them from this module
__all__ = ["ArchGjrT", "ArchRefits", "GarchParams", "RiskMetrics", "garch_filter",
           "garch_step", "standardized_t_var_es"]


class RiskMetrics(JointAgent):
    """RiskMetrics EWMA covariance, delta-normal VaR/ES (see the module docstring).

    Parameters
    ----------
    lam : float
        EWMA decay (0.94 for daily data, as RiskMetrics 1996).
    paths : int
        Normal scenarios for attribution.
    positions : tuple of float
        The book ``forecast`` reports.
    """

    name = "RiskMetrics"
    min_observations = 30
    _sigma: FloatArray

    def __init__(self, lam: float = 0.94, paths: int = 20000,
                 positions: tuple[float, ...] = ()) -> None:
        if not 0.0 < lam < 1.0 or int(paths) < 10:
            raise InvalidParameter("lam must be in (0, 1) and paths >= 10")
        self.lam, self.paths = float(lam), int(paths)
        self.positions = self._set_positions(positions)

    def _fit_matrix(self, x: FloatArray, seed: Seed) -> None:
        k = min(30, x.shape[0])
        sigma = x[:k].T @ x[:k] / k
        for row in x[k:]:
            sigma = self.lam * sigma + (1 - self.lam) * np.outer(row, row)
        self._sigma = sigma

    def _update_row(self, x: FloatArray) -> float:
        n = x.size
        chol = np.linalg.cholesky(self._sigma + 1e-18 * np.eye(n))
        z = np.linalg.solve(chol, x)
        dens = float(-0.5 * z @ z - np.log(np.diag(chol)).sum() - n / 2 * math.log(2 * math.pi))
        self._sigma = self.lam * self._sigma + (1 - self.lam) * np.outer(x, x)
        return dens

    @property
    def covariance(self) -> FloatArray:
        """The EWMA covariance of the next day's log returns ``(N, N)``."""
        self._require_fitted()
        return self._sigma.copy()

    def delta_normal(self, positions: ArrayLike, alpha: float, horizon: int = 1
                     ) -> tuple[float, float, FloatArray, FloatArray]:
        """Delta-normal ``(VaR, ES, component VaR (N,), component ES (N,))`` of ``positions``."""
        p = np.asarray(positions, dtype=float)
        sp = self._sigma @ p * horizon
        sd = math.sqrt(max(float(p @ sp), 0.0))
        z = float(special.ndtri(alpha))
        es_factor = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) / (1 - alpha)
        comp = p * sp / sd if sd > 0 else np.zeros_like(p)
        return z * sd, es_factor * sd, z * comp, es_factor * comp

    def forecast(self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *,
                 seed: Seed = None) -> Forecast:
        self._require_fitted()
        h = self._check_horizon(horizon)
        p = self.book_positions()
        levels = []
        for alpha in check_alphas(alphas):
            var, es, _, _ = self.delta_normal(p, alpha, h)
            levels.append(RiskMeasure(alpha, var, es, (var, var), (es, es)))
        return Forecast(self.name, h, tuple(levels), interval_mass=0.0)

    def scenarios(self, horizon: int = 1, *, seed: Seed = None) -> Scenarios:
        self._require_fitted()
        h = self._check_horizon(horizon)
        self._scenario_budget(1, self.paths)
        chol = np.linalg.cholesky(self._sigma + 1e-18 * np.eye(self._n))
        z = common_normals(seed, self.paths, self._n)
        return Scenarios((math.sqrt(h) * z @ chol.T)[None], np.ones(1), None, h)

    def sample_prior(self, n: int, *, seed: Seed = None) -> dict[str, NDArray[np.float64]]:
        raise InvalidParameter("RiskMetrics is not Bayesian: it has no prior")

    def simulate(self, params: Mapping[str, Any], n: int, *, seed: Seed = None
                 ) -> NDArray[np.float64]:
        sigma = np.asarray(params["sigma"], dtype=float)
        out: NDArray[np.float64] = rng_from(seed).multivariate_normal(
            np.zeros(sigma.shape[0]), sigma, size=n)
        return out

    def posterior_draws(self) -> dict[str, NDArray[np.float64]]:
        return {"sigma": self.covariance[None]}

    def _get_state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return {"n": self._n}, {"sigma": self._sigma}

    def _set_state(self, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
        try:
            self._n = int(scalars["n"])
            self._sigma = np.asarray(arrays["sigma"], float)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"RiskMetrics state is incomplete: {exc}") from exc
        if self._sigma.shape != (self._n, self._n):
            raise InvalidState("RiskMetrics state covariance does not match its asset count")


class ArchGjrT(ArchRefits):
    """arch's GJR-GARCH(1,1)-t MLE on a univariate series (the book's P&L), a backtest row.

    Fits that do not converge are handled by
    :class:`~swarmvar.models._arch_refits.ArchRefits` (the previous
    parameters kept, a note; a non-finite first fit refused), as
    :class:`swarmvar.validation.baseline.GarchTBaseline` handles them.

    Parameters
    ----------
    options : mapping, optional
        Passed to arch's optimizer (``scipy.optimize.minimize`` options, e.g.
        ``{"maxiter": 100}``); None for arch's defaults.
    """

    name = "arch GJR-GARCH-t"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        if options is not None and not isinstance(options, Mapping):
            raise InvalidParameter(f"options must be a mapping or None, not {options!r}")
        super().__init__()
        self.options = None if options is None else dict(options)

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> ArchGjrT:
        """MLE on ``returns`` (fractions); ``seed`` is unused (deterministic).

        Raises
        ------
        InvalidParameter
            Not a 1-D window of at least 100 values.
        InvalidReturns
            A first fit with a non-finite parameter (:class:`ArchRefits`).
        """
        from arch import arch_model

        x = _SCALE * np.asarray(returns, dtype=float)
        if x.ndim != 1 or x.size < 100:
            raise InvalidParameter("the GJR-GARCH baseline needs a 1-D window of >= 100 values")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = arch_model(x, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="t").fit(
                disp="off", show_warning=False, options=self.options)
            s2 = float(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0])
        p = res.params
        params: GarchParams = (float(p["mu"]), float(p["omega"]), float(p["alpha[1]"]),
                               float(p["gamma[1]"]), float(p["beta[1]"]), float(p["nu"]))
        self._take(self.name, x, params, int(res.convergence_flag), s2)
        return self

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> ArchGjrT:
        return self.fit(returns, seed=seed)

    def _fitted(self) -> GarchParams:
        if self._params is None:
            raise NotFitted("the GJR-GARCH baseline is not fitted; call fit(returns) first")
        return self._params

    def update(self, r: float) -> float:
        params = self._fitted()
        mu, nu = params[0], params[5]
        x = _SCALE * float(r)
        s = math.sqrt(self._s2) * math.sqrt((nu - 2) / nu)
        z = (x - mu) / s
        logpdf = float(special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2)
                       - 0.5 * math.log(nu * math.pi) - (nu + 1) / 2 * math.log1p(z * z / nu)
                       - math.log(s) + math.log(_SCALE))
        self._s2 = garch_step(self._s2, x, params)
        return logpdf

    def forecast(self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *,
                 seed: Seed = None) -> Forecast:
        mu, omega, a, g, b, nu = self._fitted()
        s2, total = self._s2, 0.0
        for _ in range(int(horizon)):
            total += s2
            s2 = omega + (a + g / 2 + b) * s2
        sd = math.sqrt(total) / _SCALE
        levels = []
        for alpha in check_alphas(alphas):
            v, e = standardized_t_var_es(nu, alpha)
            var, es = -horizon * mu / _SCALE + sd * v, -horizon * mu / _SCALE + sd * e
            levels.append(RiskMeasure(alpha, var, es, (var, var), (es, es)))
        return Forecast(self.name, int(horizon), tuple(levels), interval_mass=0.0)
