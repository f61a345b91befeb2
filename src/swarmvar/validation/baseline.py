"""The baseline every backtest shows: arch's GARCH(1,1)-t, fitted by maximum likelihood.

``arch.arch_model(100 * r, mean="Constant", vol="GARCH", p=1, q=1, dist="t")``
is fitted on each trailing window; between refits the conditional variance
is filtered forward with the fitted parameters,
``s2[t+1] = omega + a (x_t - mu)^2 + b s2[t]`` (``x = 100 r``, percent), the
same recursion arch uses. The one-step predictive of the return is
``mu + s * e`` with ``e`` a *standardized* Student-t(``nu``) (unit variance).

It is not Bayesian: its "credible" intervals are the point values (width
zero). For ``horizon > 1`` the cumulative return is taken as Student-t with
the summed multi-step variance (a common approximation; exact for ``h = 1``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ..errors import ConvergenceWarning, InvalidParameter, NotFitted
from ..models.base import Seed
from ..models.risk import check_alphas
from ..types import Forecast, RiskMeasure

#: Returns are fitted in percent, as arch recommends for its optimizer.
SCALE = 100.0


def standardized_t_var_es(nu: float, alpha: float) -> tuple[float, float]:
    """VaR and ES (positive losses) of a unit-variance Student-t(``nu``) at ``alpha``."""
    q = float(special.stdtrit(nu, alpha))
    log_pdf = (
        special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(nu * math.pi)
        - (nu + 1) / 2 * math.log1p(q * q / nu)
    )
    es = math.exp(log_pdf) * (nu + q * q) / ((nu - 1) * (1 - alpha))
    unit = math.sqrt((nu - 2) / nu)
    return q * unit, es * unit


class GarchTBaseline:
    """arch's GARCH(1,1)-t MLE as a forecaster with ``fit``/``refit``/``update``/``forecast``."""

    name = "arch GARCH(1,1)-t"

    def __init__(self) -> None:
        self._params: tuple[float, float, float, float, float] | None = None
        self._s2 = float("nan")
        self.failed_fits = 0

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> GarchTBaseline:
        """MLE on ``returns`` (log returns, fractions); ``seed`` is unused (deterministic)."""
        from arch import arch_model

        x = SCALE * np.asarray(returns, dtype=float)
        if x.ndim != 1 or x.size < 100:
            raise InvalidParameter("the GARCH baseline needs a 1-D window of at least 100 returns")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # arch's own optimizer chatter; checked below
            res = arch_model(x, mean="Constant", vol="GARCH", p=1, q=1, dist="t").fit(
                disp="off"
            )
            s2 = float(res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0])
        if res.convergence_flag != 0:
            self.failed_fits += 1
            warnings.warn(
                f"arch GARCH(1,1)-t did not converge (flag {res.convergence_flag}); "
                "its baseline forecasts for this window are doubtful",
                ConvergenceWarning,
                stacklevel=2,
            )
        p = res.params
        self._params = (
            float(p["mu"]), float(p["omega"]), float(p["alpha[1]"]), float(p["beta[1]"]),
            float(p["nu"]),
        )
        self._s2 = s2
        return self

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> GarchTBaseline:
        """Refit from scratch on a new trailing window."""
        return self.fit(returns, seed=seed)

    def _fitted(self) -> tuple[float, float, float, float, float]:
        if self._params is None:
            raise NotFitted("the GARCH baseline is not fitted; call fit(returns) first")
        return self._params

    def update(self, r: float) -> float:
        """Filter the variance forward by one return; its log predictive density first."""
        mu, omega, a, b, nu = self._fitted()
        x = SCALE * float(r)
        s = math.sqrt(self._s2)
        z = (x - mu) / (s * math.sqrt((nu - 2) / nu))
        log_t = float(
            special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(nu * math.pi)
            - (nu + 1) / 2 * math.log1p(z * z / nu)
        )
        logpdf = log_t - math.log(s * math.sqrt((nu - 2) / nu)) + math.log(SCALE)
        self._s2 = omega + a * (x - mu) ** 2 + b * self._s2
        return logpdf

    def predictive_t(self, horizon: int = 1) -> tuple[float, float, float]:
        """``(loc, scale, df)`` of the loss ``-r`` as ``loc + scale * T_df`` (return units)."""
        mu, omega, a, b, nu = self._fitted()
        s2, total = self._s2, 0.0
        for _ in range(horizon):
            total += s2
            s2 = omega + (a + b) * s2
        scale = math.sqrt(total * (nu - 2) / nu) / SCALE
        return -horizon * mu / SCALE, scale, nu

    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast:
        """VaR/ES of the next ``horizon`` returns (zero-width intervals: this is an MLE)."""
        loc, scale, nu = self.predictive_t(horizon)
        unit = math.sqrt(nu / (nu - 2))  # standardized -> plain t scale factor
        levels = []
        for alpha in check_alphas(alphas):
            v_std, e_std = standardized_t_var_es(nu, alpha)
            var = loc + scale * unit * v_std
            es = loc + scale * unit * e_std
            levels.append(RiskMeasure(alpha, var, es, (var, var), (es, es)))
        return Forecast(self.name, horizon, tuple(levels), interval_mass=0.0)
