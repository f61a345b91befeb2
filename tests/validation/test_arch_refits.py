"""The arch GARCH-t baselines share one refit rule (models.book_baselines.ArchRefits): a fit
that does not converge keeps the previous parameters; a first fit with a non-finite parameter
is refused (was: used, NaN forecasts downstream)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from swarmvar.errors import ConvergenceWarning, InvalidReturns
from swarmvar.models.book_baselines import ArchGjrT, ArchRefits, garch_filter, garch_step
from swarmvar.validation.baseline import GarchTBaseline

GOOD = (0.05, 0.02, 0.05, 0.08, 0.9, 6.0)
X = np.random.default_rng(0).normal(0.0, 1.0, 200)  # percent


@pytest.mark.parametrize("row", [ArchGjrT(), GarchTBaseline(), GarchTBaseline(True)])
def test_both_baselines_share_the_rule(row: ArchRefits) -> None:
    assert isinstance(row, ArchRefits)
    with pytest.raises(InvalidReturns, match="first fit gave a non-finite parameter"):
        row._take("row", X, (*GOOD[:5], math.nan), 0, 1.0)
    assert row._params is None and row.failed_fits == 1
    row._take("row", X, GOOD, 0, 1.5)  # converged: used
    assert row._params == GOOD and row._s2 == 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a kept fit only notes it
        row._take("row", X, (math.nan, *GOOD[1:]), 0, 2.0)  # non-finite: kept
        row._take("row", X, (0.1, *GOOD[1:]), 4, 2.0)  # did not converge: kept
    assert row._params == GOOD and row.failed_fits == 3
    assert row._s2 == pytest.approx(garch_filter(X, GOOD), rel=1e-12)
    assert [n.split(" did")[0] for n in row.notes] == ["fit 3", "fit 4"], row.notes


def test_a_finite_first_fit_that_does_not_converge_is_used_with_a_warning() -> None:
    row = ArchRefits()
    with pytest.warns(ConvergenceWarning, match="did not converge on its first window"):
        row._take("row", X, GOOD, 4, 1.0)
    assert row._params == GOOD and row.notes == ["first fit did not converge (arch flag 4)"]


def test_the_step_is_arch_s_gjr_recursion() -> None:
    mu, omega, a, g, b, _ = GOOD
    assert garch_step(2.0, mu - 1.0, GOOD) == pytest.approx(omega + (a + g) + b * 2.0)
    assert garch_step(2.0, mu + 1.0, GOOD) == pytest.approx(omega + a + b * 2.0)


def test_the_single_series_baseline_still_fits_and_forecasts() -> None:
    r = 0.01 * np.random.default_rng(3).standard_t(6, 400) * math.sqrt(4 / 6)
    row = GarchTBaseline(asymmetric=True).fit(r)
    assert row.failed_fits == 0 and row.notes == []
    before = row._s2
    row.update(float(r[-1]))
    assert row._s2 == pytest.approx(garch_step(before, 100 * float(r[-1]), row._fitted()))
    var = row.forecast((0.99,)).levels[0].var
    assert math.isfinite(var) and 0.005 < var < 0.1, var
