"""StudentT's h-day scale mixture: per-draw VaR by safeguarded Newton, against scipy's brentq."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special

from swarmvar.models._scale_mixture import ScaleMixtureFamily, h_day_scales


def _family(seed: int, horizon: int, draws: int = 24, m: int = 64) -> ScaleMixtureFamily:
    rng = np.random.default_rng(seed)
    nu = rng.uniform(2.5, 12.0, draws)  # heavy and light tails: wide component brackets
    sigma = rng.uniform(0.005, 0.02, draws)
    mu = rng.normal(0.0, 5e-4, draws)
    return ScaleMixtureFamily(horizon * mu, sigma[:, None] * h_day_scales(nu, horizon, m, rng),
                              np.ones(draws))


@pytest.mark.parametrize(("seed", "horizon", "alpha"),
                         [(0, 2, 0.99), (1, 10, 0.975), (2, 60, 0.99), (3, 10, 0.999)])
def test_each_draws_var_is_the_root_of_its_tail(seed: int, horizon: int, alpha: float) -> None:
    fam = _family(seed, horizon)
    v = fam.var(alpha)
    np.testing.assert_allclose(fam.tail(v), 1.0 - alpha, rtol=0, atol=1e-15)
    for s in range(v.size):  # the brentq root of the draw's own mixture
        loc, scale = fam.loc[s, 0], fam.scale[s]

        def excess(x: float, loc: float = loc, scale: np.ndarray = scale) -> float:
            return float(special.ndtr(-(x + loc) / scale).mean()) - (1.0 - alpha)

        comp = -loc + scale * special.ndtri(alpha)
        want = optimize.brentq(excess, comp.min(), comp.max(), xtol=1e-16, rtol=1e-15)
        assert v[s] == pytest.approx(want, rel=1e-12)


def test_one_component_per_draw_is_the_normal_quantile() -> None:
    loc, scale = np.array([0.001, -0.002]), np.array([[0.01], [0.03]])
    fam = ScaleMixtureFamily(loc, scale, np.ones(2))
    np.testing.assert_allclose(fam.var(0.99), -loc + scale[:, 0] * special.ndtri(0.99),
                               rtol=1e-13)
