"""GarchEVT at full size on the S&P 500: calibrated one-day VaR out of sample."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from swarmvar.data import load
from swarmvar.models.garch_evt import GarchEVT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("asymmetric", [
    False,
    pytest.param(True, marks=pytest.mark.xfail(strict=True, reason=(
        "known: after one fit on 1999-2008 and online updates only through 2014-11, the GJR "
        "filter has 56 breaches of the 97.5% VaR in 1,500 days (p = 0.004; symmetric: 48, "
        "p = 0.10); with the backtest's 1,000-day refits GJR passes - docs/models-garch.md"))),
])
def test_out_of_sample_var_exceedances_pass_kupiec(asymmetric: bool) -> None:
    r = load("sp500").to_numpy()
    agent = GarchEVT(asymmetric=asymmetric).fit(r[:2500], seed=0)
    hits = {0.99: 0, 0.975: 0}
    stream = r[2500:4000]
    for x in stream:
        f = agent.forecast(tuple(hits))
        for alpha in hits:
            hits[alpha] += -x > f.at(alpha).var
        agent.update(float(x))
    for alpha, k in hits.items():
        # Kupiec's unconditional coverage (two-sided binomial) at the 1% level
        p = stats.binomtest(k, stream.size, 1 - alpha).pvalue
        assert p > 0.01, (alpha, k)
    f = agent.forecast((0.95, 0.99, 0.995))
    assert all(np.diff([lv.var for lv in f.levels]) > 0)
    assert all(lv.es >= lv.var for lv in f.levels)
