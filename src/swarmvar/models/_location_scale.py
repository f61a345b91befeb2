"""What the skewed-t predictive families share: a location-scale mixture over draws.

HarArch's :class:`~swarmvar.models.har_arch.HansenSkewTFamily` (Hansen's
unit-variance skewed t, ``lambda`` parametrization) and BetaSkewTEgarch's
:class:`~swarmvar.models._score_driven_lik.FernandezSteelSkewTFamily`
(Fernandez & Steel's skew-t, ``gamma`` parametrization) are different
distributions, each with its own quantile, CDF, partial moment and
mixture-VaR Newton steps. Both are returns ``loc_s + scale_s * eps_s`` per
posterior draw, so their :class:`~swarmvar.models.risk.Family` plumbing -
weights, per-draw VaR, tail probability and expected excess from the
standardized law - is this one class.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


class LocationScaleFamily:
    """Losses ``L = -(loc_s + scale_s eps_s)`` per draw, ``eps_s`` a standardized law.

    A subclass gives the standardized law: :meth:`level_quantile` (its
    ``1 - alpha`` quantile per draw), :meth:`_cdf` and :meth:`_cdf_and_partial`.
    ``loc``, ``scale``, ``weights`` ``(S,)``; the weights are normalized here.
    """

    def __init__(self, loc: FloatArray, scale: FloatArray, weights: FloatArray) -> None:
        self.loc, self.scale = loc, scale
        self._weights: FloatArray = np.asarray(weights / weights.sum())

    @property
    def weights(self) -> FloatArray:
        return self._weights

    def level_quantile(self, alpha: float) -> FloatArray:
        """The standardized law's ``1 - alpha`` quantile per draw ``(S,)``."""
        raise NotImplementedError

    def _cdf(self, z: FloatArray) -> FloatArray:
        """``P(eps < z)`` per draw."""
        raise NotImplementedError

    def _cdf_and_partial(self, z: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``P(eps < z)`` and ``E[eps 1{eps < z}]`` per draw."""
        raise NotImplementedError

    def var(self, alpha: float) -> FloatArray:
        result: FloatArray = -(self.loc + self.scale * self.level_quantile(alpha))
        return result

    def tail(self, v: float) -> FloatArray:
        return self._cdf((-v - self.loc) / self.scale)

    def excess(self, v: float | FloatArray) -> FloatArray:
        z = (-np.asarray(v, dtype=float) - self.loc) / self.scale
        cdf, part = self._cdf_and_partial(z)
        return np.asarray(np.maximum(self.scale * (z * cdf - part), 0.0))
