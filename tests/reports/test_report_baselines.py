"""arch baselines: the GJR row, refits that do not converge, and arch's own forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arch import arch_model

from swarmvar.errors import ConvergenceWarning, InvalidParameter
from swarmvar.validation import GarchTBaseline, backtest
from swarmvar.validation.backtest import Baseline


def _returns(n: int, seed: int = 0) -> np.ndarray:
    return 0.01 * np.random.default_rng(seed).standard_t(5, n) * np.sqrt(3 / 5)


@pytest.mark.parametrize("asymmetric", [False, True])
def test_forecast_variance_is_archs(asymmetric: bool) -> None:
    r = _returns(600)
    b = GarchTBaseline(asymmetric).fit(r)
    res = arch_model(100 * r, mean="Constant", vol="GARCH", p=1, o=int(asymmetric), q=1,
                     dist="t", rescale=False).fit(disp="off", show_warning=False)
    variance = res.forecast(horizon=5, reindex=False).variance.to_numpy()[-1]
    assert b._s2 == pytest.approx(variance[0], rel=1e-10)
    loc, scale, nu = b.predictive_t(5)
    assert (100 * scale) ** 2 * nu / (nu - 2) == pytest.approx(variance.sum(), rel=1e-10)
    assert loc == pytest.approx(-5 * res.params["mu"] / 100)
    assert b.name == ("arch GJR-GARCH(1,1)-t" if asymmetric else "arch GARCH(1,1)-t")


def test_a_refit_that_does_not_converge_keeps_the_previous_fit_and_is_noted() -> None:
    good = _returns(600)
    tiny = 1e-6 * np.random.default_rng(1).standard_normal(600)  # arch's optimizer: flag 4
    b = GarchTBaseline().fit(good)
    before = b._params
    b.refit(tiny)
    assert b._params == before and b.failed_fits == 1
    assert len(b.notes) == 1 and "kept the previous fit" in b.notes[0]
    assert np.isfinite(b.forecast((0.99,)).at(0.99).var)
    # with nothing to fall back on, the first fit is used and a warning says so
    with pytest.warns(ConvergenceWarning):
        fresh = GarchTBaseline().fit(tiny)
    assert fresh.notes == ["first fit did not converge (arch flag 4)"]
    with pytest.raises(InvalidParameter):
        GarchTBaseline("yes")  # type: ignore[arg-type]


def test_backtest_adds_both_baselines_and_carries_their_notes() -> None:
    r = np.r_[_returns(330), 1e-6 * np.random.default_rng(2).standard_normal(400)]
    series = pd.Series(r, index=pd.bdate_range("2020-01-01", periods=r.size))
    result = backtest(series, {}, window=300, refit_every=100, alphas=(0.99,), progress=False,
                      baseline=[Baseline.ARCH, "arch-gjr"], n_sim=20)
    assert result.rows == ("arch GARCH(1,1)-t", "arch GJR-GARCH(1,1)-t")
    assert result.baselines == result.rows and result.baseline == "arch GARCH(1,1)-t"
    assert any("kept the previous fit" in n for n in result.notes["arch GARCH(1,1)-t"])
    with pytest.raises(InvalidParameter, match="unknown baseline"):
        backtest(series, {}, window=300, progress=False, baseline="garch")
