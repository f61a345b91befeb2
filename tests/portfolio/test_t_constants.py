"""The t-copula's margins use the shared Student-t constant, bit for bit the old formula.

``risk.t_log_norm`` computes ``gammaln((nu+1)/2) - gammaln(nu/2) - log(pi nu)/2`` with
numpy's log; the copula's inline copy did the same with numpy's log, so the numbers are
identical. (Copies that use ``math.log`` - nig, book_baselines, validation.baseline -
stay: numpy's and libm's log differ in the last bit for some arguments.)
"""

from __future__ import annotations

import numpy as np
from scipy import special

from swarmvar.models.joint_copula import _log_t_margins


def _inline(x: np.ndarray, nu: float) -> float:
    """The copula's former inline formula, verbatim."""
    return float((special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2)
                  - 0.5 * np.log(nu * np.pi) - (nu + 1) / 2 * np.log1p(x * x / nu)).sum())


def test_log_t_margins_equal_the_inline_formula_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    for nu in [*rng.uniform(2.01, 80.0, 400).tolist(), 2.5, 4.0, 30.0, 1e6]:
        x = rng.standard_t(min(nu, 50.0), size=(40, 3))
        assert _log_t_margins(x, nu) == _inline(x, nu), nu
