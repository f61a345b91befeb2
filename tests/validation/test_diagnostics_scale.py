"""The diagnostics are scale-free: draws near the float limit, of either sign, give the
numbers of the same draws at an ordinary scale (they are scaled by a power of 2 first)."""

from __future__ import annotations

import numpy as np
import pytest

from swarmvar.validation.diagnostics import ess_bulk, ess_tail, rhat


@pytest.mark.parametrize("sign", [1.0, -1.0])  # the largest size is a maximum or a minimum
def test_draws_near_the_float_limit_give_the_ordinary_scale_numbers(sign: float) -> None:
    rng = np.random.default_rng(3)
    x = 5.0 + rng.standard_normal((4, 200)) + 0.2 * np.arange(4)[:, None]
    huge = sign * 2.0**1015 * x  # exact scaling; sums of these overflow unscaled
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(np.var(huge))  # what the scaling is there for
    assert rhat(huge) == pytest.approx(rhat(sign * x), rel=1e-12)
    assert ess_bulk(huge) == pytest.approx(ess_bulk(sign * x), rel=1e-12)
    assert ess_tail(huge) == pytest.approx(ess_tail(sign * x), rel=1e-12)
