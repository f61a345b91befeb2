"""The baselines every backtest shows: arch's GARCH(1,1)-t and GJR-GARCH(1,1)-t, by MLE.

``arch.arch_model(100 * r, mean="Constant", vol="GARCH", p=1, o=o, q=1,
dist="t")`` (``o = 0`` symmetric, ``o = 1`` GJR leverage) is fitted on each
trailing window; between refits the conditional variance is filtered forward
with the fitted parameters,
``s2[t+1] = omega + (a + g 1{x_t < mu}) (x_t - mu)^2 + b s2[t]``
(``x = 100 r``, percent), the same recursion arch uses. The one-step
predictive of the return is ``mu + s * e`` with ``e`` a *standardized*
Student-t(``nu``) (unit variance).

A refit whose optimizer does not converge (arch's ``convergence_flag != 0``,
e.g. code 4 with an absurd mean on a heavy-tailed window) or gives a
non-finite parameter is not used: the previous window's parameters are kept
and the failure is recorded in :attr:`GarchTBaseline.notes` (arch's own
warning is silenced with ``show_warning=False``). A first fit that does not
converge has nothing to fall back on: it is used, with a
:class:`ConvergenceWarning` and a note, unless a parameter is non-finite
(refused: its forecasts would be NaN). That bookkeeping is shared with the
book backtest's GJR-GARCH-t row (:class:`swarmvar.models._arch_refits.ArchRefits`).

It is not Bayesian: its "credible" intervals are the point values (width
zero). For ``horizon > 1`` the cumulative return is taken as Student-t with
the summed multi-step variance (a common approximation; exact for ``h = 1``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from numpy.typing import ArrayLike
from scipy import special

from ..data import as_array
from ..errors import InvalidParameter, NotFitted
from ..models._arch_refits import (
    ArchRefits,
    GarchParams,
    garch_step,
    standardized_t_var_es,
)
from ..models.base import MAX_HORIZON, Agent, Seed, check_whole
from ..types import Forecast, RiskMeasure
from ._checks import named_alphas as check_levels

#: Returns are fitted in percent, as arch recommends for its optimizer.
SCALE = 100.0


#: Fitted parameters ``(mu, omega, alpha, gamma, beta, nu)`` (percent units; gamma 0
#: for the symmetric model).
Params = GarchParams

__all__ = ["SCALE", "GarchTBaseline", "Params", "standardized_t_var_es"]


class GarchTBaseline(ArchRefits):
    """arch's GARCH(1,1)-t (or GJR-GARCH(1,1)-t) MLE with ``fit``/``refit``/``update``/``forecast``.

    Parameters
    ----------
    asymmetric : bool
        ``True`` for GJR-GARCH(1,1)-t (``o=1``: negative returns raise the
        variance more), arch's strongest configuration of this family.
    """

    def __init__(self, asymmetric: bool = False) -> None:
        if not isinstance(asymmetric, bool):
            raise InvalidParameter(f"asymmetric must be True or False, not {asymmetric!r}")
        super().__init__()
        self.asymmetric = asymmetric

    @property
    def name(self) -> str:
        return "arch GJR-GARCH(1,1)-t" if self.asymmetric else "arch GARCH(1,1)-t"

    def fit(self, returns: ArrayLike, *, seed: Seed = None) -> GarchTBaseline:
        """MLE on ``returns`` (log returns, fractions); ``seed`` is unused (deterministic).

        A fit that does not converge keeps the previous parameters (if any)
        and is recorded in :attr:`notes` (:class:`~swarmvar.models._arch_refits.ArchRefits`).

        Raises
        ------
        InvalidParameter
            Not a 1-D window of at least 100 returns.
        InvalidReturns
            Bad returns (:func:`swarmvar.data.as_array`), or a first fit with a
            non-finite parameter.
        """
        from arch import arch_model

        # a backtest's window, judged for looking like prices where it entered
        x = SCALE * as_array(returns, who="the GARCH baseline", judge_prices=False)
        if x.ndim != 1 or x.size < 100:
            raise InvalidParameter("the GARCH baseline needs a 1-D window of at least 100 returns")
        model = arch_model(x, mean="Constant", vol="GARCH", p=1, o=int(self.asymmetric), q=1,
                           dist="t", rescale=False)  # the percent scale is ours, on purpose
        res = model.fit(disp="off", show_warning=False)
        p = res.params
        params: Params = (
            float(p["mu"]), float(p["omega"]), float(p["alpha[1]"]),
            float(p["gamma[1]"]) if self.asymmetric else 0.0, float(p["beta[1]"]),
            float(p["nu"]),
        )
        s2 = garch_step(float(res.conditional_volatility[-1] ** 2), float(x[-1]), params)
        self._take(self.name, x, params, int(res.convergence_flag), s2)
        return self

    def refit(self, returns: ArrayLike, *, seed: Seed = None) -> GarchTBaseline:
        """Refit from scratch on a new trailing window."""
        return self.fit(returns, seed=seed)

    def _fitted(self) -> Params:
        if self._params is None:
            raise NotFitted("the GARCH baseline is not fitted; call fit(returns) first")
        return self._params

    def update(self, r: float) -> float:
        """Filter the variance forward by one return; its log predictive density first."""
        params = self._fitted()
        mu, nu = params[0], params[5]
        x = SCALE * Agent._check_return(r)  # noqa: SLF001 (the agents' one check of a return)
        s = math.sqrt(self._s2)
        z = (x - mu) / (s * math.sqrt((nu - 2) / nu))
        log_t = float(
            special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(nu * math.pi)
            - (nu + 1) / 2 * math.log1p(z * z / nu)
        )
        logpdf = log_t - math.log(s * math.sqrt((nu - 2) / nu)) + math.log(SCALE)
        self._s2 = garch_step(self._s2, x, params)
        return logpdf

    def predictive_t(self, horizon: int = 1) -> tuple[float, float, float]:
        """``(loc, scale, df)`` of the loss ``-r`` as ``loc + scale * T_df`` (return units)."""
        mu, omega, a, g, b, nu = self._fitted()
        horizon = check_whole("horizon", horizon, 1, MAX_HORIZON)
        s2, total = self._s2, 0.0
        for _ in range(horizon):  # E[s2] steps: half the days are below the mean (symmetric t)
            total += s2
            s2 = omega + (a + 0.5 * g + b) * s2
        scale = math.sqrt(total * (nu - 2) / nu) / SCALE
        return -horizon * mu / SCALE, scale, nu

    def forecast(
        self, alphas: Sequence[float] = (0.99,), horizon: int = 1, *, seed: Seed = None
    ) -> Forecast:
        """VaR/ES of the next ``horizon`` returns (zero-width intervals: this is an MLE)."""
        loc, scale, nu = self.predictive_t(horizon)
        unit = math.sqrt(nu / (nu - 2))  # standardized -> plain t scale factor
        levels = []
        for alpha in check_levels(alphas):
            v_std, e_std = standardized_t_var_es(nu, alpha)
            var = loc + scale * unit * v_std
            es = loc + scale * unit * e_std
            levels.append(RiskMeasure(alpha, var, es, (var, var), (es, es)))
        return Forecast(self.name, horizon, tuple(levels), interval_mass=0.0)
