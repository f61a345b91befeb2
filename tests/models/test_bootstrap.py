"""BayesianBootstrap against brute-force weighted quantiles and the full Dirichlet."""

import numpy as np
import pytest

from swarmvar.errors import InvalidParameter, InvalidReturns, NotFitted
from swarmvar.models import bootstrap
from swarmvar.models.bootstrap import BayesianBootstrap
from swarmvar.models.risk import EmpiricalFamily, risk_measures


def _hs(x, alpha):
    losses = np.sort(-x)
    k = int(np.ceil(alpha * x.size)) - 1  # smallest loss with empirical CDF >= alpha
    var = losses[k]
    es = var + np.maximum(losses - var, 0).mean() / (1 - alpha)
    return var, es


def test_point_forecast_is_historical_simulation():
    x = np.random.default_rng(0).standard_t(4, size=700) * 0.01
    agent = BayesianBootstrap(window=500).fit(x, seed=1)
    fc = agent.forecast((0.99, 0.975, 0.95))
    for m in fc.levels:
        var, es = _hs(x[-500:], m.alpha)
        assert m.var == pytest.approx(var, rel=1e-12)
        assert m.es == pytest.approx(es, rel=1e-12)
        assert m.var_interval[0] <= m.var <= m.var_interval[1]


@pytest.mark.parametrize("margin", [None, (0.0, 0.0)])
def test_tail_restricted_draws_match_full_dirichlet(monkeypatch, margin):
    if margin is not None:  # no margin: about half the draws are extended (_split_gamma)
        monkeypatch.setattr(bootstrap, "_TAIL_SD", margin[0])
        monkeypatch.setattr(bootstrap, "_TAIL_PAD", margin[1])
    x = np.random.default_rng(2).standard_t(4, size=500) * 0.01
    agent = BayesianBootstrap(window=500, draws=20_000).fit(x, seed=3)
    fast = agent.forecast((0.99, 0.975))
    g = np.random.default_rng(4).standard_exponential((20_000, 500))
    full = risk_measures(EmpiricalFamily(x, sample_weights=g), (0.99, 0.975))
    for a, b in zip(fast.levels, full, strict=True):
        assert a.var_interval == pytest.approx(b.var_interval, rel=0.03)
        assert a.es_interval == pytest.approx(b.es_interval, rel=0.02)


def test_ring_buffer_keeps_the_last_window():
    x = np.random.default_rng(5).normal(0, 0.01, size=300)
    agent = BayesianBootstrap(window=100).fit(x[:150], seed=0)
    for r in x[150:]:
        agent.update(r)
    np.testing.assert_array_equal(agent.sample(), x[-100:])
    refit = BayesianBootstrap(window=100).fit(x, seed=0)
    assert agent.forecast((0.99,)).levels[0].var == refit.forecast((0.99,)).levels[0].var


def test_log_score_is_a_gaussian_kernel_density():
    x = np.random.default_rng(6).normal(0, 0.01, size=200)
    agent = BayesianBootstrap(window=200).fit(x, seed=0)
    from scipy import stats

    sd, iqr = np.std(x, ddof=1), stats.iqr(x) / 1.349
    bw = 0.9 * min(sd, iqr) * 200 ** (-0.2)
    kde = stats.gaussian_kde(x, bw_method=bw / np.std(x, ddof=1))
    assert agent.update(0.003) == pytest.approx(np.log(kde(0.003)[0]), rel=1e-9)


def test_multi_day_horizon_scales_roughly_with_sqrt_h():
    x = np.random.default_rng(7).normal(0, 0.01, size=500)
    agent = BayesianBootstrap().fit(x, seed=0)
    one = agent.forecast((0.99,), seed=1).levels[0].var
    ten = agent.forecast((0.99,), horizon=10, seed=1).levels[0].var
    assert 2.4 < ten / one < 4.0


def test_state_round_trip_including_rng():
    x = np.random.default_rng(8).normal(0, 0.01, size=600)
    agent = BayesianBootstrap().fit(x, seed=9)
    agent.update(0.002)
    clone = BayesianBootstrap.from_state(agent.state())
    assert clone.forecast((0.99,)) == agent.forecast((0.99,))
    assert clone.update(-0.01) == agent.update(-0.01)
    assert clone.forecast((0.975,)) == agent.forecast((0.975,))


def test_bad_input():
    with pytest.raises(InvalidParameter):
        BayesianBootstrap(window=10)
    with pytest.raises(NotFitted):
        BayesianBootstrap().forecast()
    with pytest.raises(InvalidReturns, match="at least 50"):
        BayesianBootstrap().fit(np.zeros(20))
    agent = BayesianBootstrap().fit(np.random.default_rng(0).normal(0, 0.01, 100), seed=0)
    before = agent.state()
    with pytest.raises(InvalidReturns):
        agent.update(float("nan"))
    assert agent.state() == before
