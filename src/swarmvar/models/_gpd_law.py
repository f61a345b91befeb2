"""The generalized Pareto law: log density and survival of GPD(``xi``, ``beta``).

Peaks over threshold: excesses ``y = x - u > 0`` of a loss ``x`` over a
threshold ``u`` are modelled as GPD(``xi``, ``beta``) with survival function
``(1 + xi y / beta)^(-1/xi)`` (``exp(-y / beta)`` at ``xi = 0``), the
parameterization of ``scipy.stats.genpareto(c=xi, scale=beta)``.

Where it sits: the reference formulas of the GPD tail (:mod:`.gpd`). The grid
likelihood (:mod:`._gpd_grid`) and :class:`~._gpd_tail_family.GPDTailFamily`
form the same values by the same operations (tested); ``_TINY_XI``, the
``|xi|`` below which the exponential limit is used, is shared by every GPD
module. Pure functions of their arguments: no state read or written.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

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
