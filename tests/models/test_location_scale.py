"""The two skewed-t predictive families on their shared location-scale plumbing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from swarmvar.models import _har_arch_lik as hl
from swarmvar.models._location_scale import LocationScaleFamily
from swarmvar.models._score_driven_lik import FernandezSteelSkewTFamily
from swarmvar.models.har_arch import HansenSkewTFamily

LOC, SCALE = np.array([0.001, -0.002]), np.array([0.01, 0.02])
W = np.array([0.3, 0.7])


def _families() -> list[LocationScaleFamily]:
    nu = np.array([5.0, 9.0])
    return [FernandezSteelSkewTFamily(LOC, SCALE, nu, np.array([0.8, 1.2]), W),
            HansenSkewTFamily(LOC, SCALE, hl.skew_t(nu, np.array([-0.3, 0.2])), W)]


@pytest.mark.parametrize("family", _families(), ids=["fernandez-steel", "hansen"])
def test_var_tail_and_excess_agree_per_draw(family: LocationScaleFamily) -> None:
    """Per draw: P(L > VaR) = 1 - alpha, and E[(L - v)^+] is the tail's integral above v."""
    alpha = 0.975
    var = family.var(alpha)
    for s in range(2):
        assert family.tail(float(var[s]))[s] == pytest.approx(1.0 - alpha, rel=1e-9)
    v = 0.01
    for s in range(2):
        area, _ = integrate.quad(lambda x, s=s: float(family.tail(x)[s]), v, 1.0, limit=200)
        assert float(family.excess(v)[s]) == pytest.approx(area, rel=1e-6)
    assert family.weights == pytest.approx(W)
    assert np.all(family.excess(np.array([5.0, 5.0])) >= 0.0)
