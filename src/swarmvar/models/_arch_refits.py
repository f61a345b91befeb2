"""What arch's GARCH-t baselines share: the recursion, the refit rule, the t's VaR/ES.

Neutral ground for :class:`swarmvar.models.book_baselines.ArchGjrT` (the book
backtest's GJR-GARCH-t row) and :class:`swarmvar.validation.baseline.GarchTBaseline`
(the single-series backtest's GARCH-t rows): :func:`garch_step`/:func:`garch_filter`
(arch's GJR recursion in percent units), :class:`ArchRefits` (which fits are used,
kept or refused, and the notes) and :func:`standardized_t_var_es`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.typing import NDArray
from scipy import special

from ..errors import ConvergenceWarning, InvalidReturns

__all__ = ["ArchRefits", "GarchParams", "garch_filter", "garch_step",
           "standardized_t_var_es"]

#: Returns are fitted in percent, as arch recommends for its optimizer.
_SCALE = 100.0

#: Fitted parameters of arch's GARCH-t baselines ``(mu, omega, alpha, gamma, beta, nu)``,
#: percent units (gamma 0 for the symmetric GARCH(1,1)-t).
GarchParams = tuple[float, float, float, float, float, float]


def garch_step(s2: float, x: float, params: GarchParams) -> float:
    """The next variance: ``omega + (a + g 1{x < mu}) (x - mu)^2 + b s2`` (arch's recursion)."""
    mu, omega, a, g, b, _ = params
    e = x - mu
    return omega + (a + (g if e < 0 else 0.0)) * e * e + b * s2


def garch_filter(x: NDArray[np.float64], params: GarchParams) -> float:
    """Next-day variance after filtering ``x`` (percent) from its sample variance."""
    s2 = float(np.mean((x - params[0]) ** 2))  # arch's backcast is close; this is a restart
    for v in x:
        s2 = garch_step(s2, float(v), params)
    return s2


class ArchRefits:
    """What arch's GARCH-t baselines share between fits: the parameters kept and the notes.

    A fit whose optimizer does not converge (arch's ``convergence_flag != 0``)
    or gives a non-finite parameter or variance is not used: the previous
    fit's parameters are kept (they filter the new window from its start),
    the fit is counted in :attr:`failed_fits` and recorded in :attr:`notes`
    (a backtest shows a row's notes). A first fit has nothing to fall back
    on: one that does not converge but is finite is used, with a
    :class:`~swarmvar.errors.ConvergenceWarning` and a note; one with a
    non-finite parameter is refused (its forecasts would be NaN).
    """

    def __init__(self) -> None:
        self._params: GarchParams | None = None
        self._s2 = float("nan")
        self._fits = 0
        #: How many fits were not used as fitted (their window kept the previous parameters).
        self.failed_fits = 0
        #: One line per fit not used as fitted (what was kept instead).
        self.notes: list[str] = []

    #: The kept parameters' filter over a window (:func:`garch_filter`).
    _filter = staticmethod(garch_filter)

    def _take(self, who: str, x: NDArray[np.float64], params: GarchParams, flag: int,
              s2: float) -> None:
        """Use a fit (``params``, arch's ``flag``, next variance ``s2``) on window ``x`` or not.

        Raises
        ------
        InvalidReturns
            A first fit with a non-finite parameter or variance.
        """
        self._fits += 1
        finite = all(math.isfinite(v) for v in (*params, s2))
        if flag == 0 and finite:
            self._params, self._s2 = params, s2
            return
        self.failed_fits += 1
        if self._params is not None:
            self.notes.append(f"fit {self._fits} did not converge (arch flag {flag}, "
                              f"mu {params[0]:.3g}%); kept the previous fit")
            self._s2 = garch_filter(x, self._params)  # the kept parameters, from its start
            return
        if not finite:
            raise InvalidReturns(
                f"{who}: the first fit gave a non-finite parameter or variance (arch flag "
                f"{flag}, mu {params[0]:.3g}%, nu {params[5]:.3g}) on {x.size} values; its "
                "forecasts would be NaN - give a longer or another window, or leave the "
                "baselines out")
        self.notes.append(f"first fit did not converge (arch flag {flag})")
        warnings.warn(f"{who} did not converge on its first window (flag {flag}); its "
                      "baseline forecasts are doubtful", ConvergenceWarning, stacklevel=3)
        self._params, self._s2 = params, s2


def standardized_t_var_es(nu: float, alpha: float) -> tuple[float, float]:
    """VaR and ES (positive losses) of a unit-variance Student-t(``nu``) at ``alpha``."""
    q = float(special.stdtrit(nu, alpha))
    log_pdf = (special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2)
               - 0.5 * math.log(nu * math.pi) - (nu + 1) / 2 * math.log1p(q * q / nu))
    es = math.exp(log_pdf) * (nu + q * q) / ((nu - 1) * (1 - alpha))
    unit = math.sqrt((nu - 2) / nu)
    return q * unit, es * unit
