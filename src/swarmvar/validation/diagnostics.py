"""MCMC convergence diagnostics (computed by :mod:`swarmvar.models.diagnostics`).

Rank-normalized split R-hat, bulk ESS and tail ESS of Vehtari, Gelman,
Simpson, Carpenter & Bürkner (2021). They are implemented with the models,
which check their own fits with them (models sit below validation); this
module is the validation-facing name, and checks what a user hands it. Each
takes ``draws`` of shape ``(chains, draws_per_chain)`` (or one chain ``(n,)``).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidParameter
from ..models import diagnostics as _diag
from ..models.diagnostics import ess_basic, rank_normalize, split_chains
from ._checks import FloatArray, float_array

__all__ = ["ess_basic", "ess_bulk", "ess_tail", "rank_normalize", "rhat", "split_chains"]


def _draws(draws: ArrayLike) -> FloatArray:
    """Finite draws ``(chains, n)`` with ``n >= 4``, or :class:`InvalidParameter` saying why."""
    x = float_array(draws, "draws")
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 4:
        raise InvalidParameter(f"draws must be (chains, draws) with at least 4 draws per chain; "
                               f"got shape {np.shape(draws)}")
    top = max(float(x.max()), -float(x.min()))  # the largest size, without a copy of |x|
    if top > 1e300:  # sums of draws near the float limit overflow; the diagnostics are
        x = x * 2.0 ** -math.frexp(top)[1]  # scale-free, and a power of 2 scales exactly
    return x


def rhat(draws: ArrayLike) -> float:
    """Rank-normalized split R-hat (``inf`` when chains that are each constant disagree).

    Raises
    ------
    InvalidParameter
        Draws that are not a finite ``(chains, n >= 4)`` array, or all equal
        (no variance: R-hat is undefined).
    """
    x = _draws(draws)
    if np.all(x == x.flat[0]):
        raise InvalidParameter("draws are all equal: R-hat is undefined (nothing varies)")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _diag.rhat(x)
    if math.isnan(out):  # every chain half constant and equal after ranks: no variance
        raise InvalidParameter("draws do not vary within any chain: R-hat is undefined")
    return out


def ess_bulk(draws: ArrayLike) -> float:
    """Bulk ESS: ESS of the rank-normalized split chains."""
    return _diag.ess_bulk(_draws(draws))


def ess_tail(draws: ArrayLike) -> float:
    """Tail ESS: the smaller ESS of the 5% and 95% quantile indicators."""
    return _diag.ess_tail(_draws(draws))
