"""NormalInverseGamma against scipy.stats.t, a brute-force posterior and Monte Carlo."""

import math

import numpy as np
import pytest
from scipy import stats

from swarmvar.errors import InvalidParameter, InvalidReturns, InvalidState, NotFitted
from swarmvar.models.nig import NormalInverseGamma
from swarmvar.models.risk import StudentTFamily, risk_measures


def _brute_posterior(x, lam, m0, k0, a0, b0):
    """Discounted NIG by the sufficient-statistic form (no recursion on m)."""
    n = len(x)
    w = lam ** np.arange(n - 1, -1, -1.0)  # weight of each return at the end
    kappa = lam**n * k0 + w.sum()
    m = (lam**n * k0 * m0 + w @ x) / kappa
    a = lam**n * a0 + 0.5 * w.sum()
    # b from the weighted sum of squares around the weighted posterior mean
    b = lam**n * b0 + 0.5 * (w @ x**2 + lam**n * k0 * m0**2 - kappa * m**2)
    return m, kappa, a, b


@pytest.mark.parametrize("lam", [1.0, 0.97, 0.9])
def test_recursion_matches_closed_form_posterior(lam):
    x = np.random.default_rng(3).normal(0.001, 0.02, size=300)
    agent = NormalInverseGamma(forgetting=lam).fit(x)
    expect = _brute_posterior(x, lam, 0.0, 1.0, 2.0, 1e-4)
    assert agent.sufficient() == pytest.approx(expect, rel=1e-9)


def test_predictive_and_log_score_match_scipy_t():
    x = np.random.default_rng(4).standard_t(5, size=500) * 0.01
    agent = NormalInverseGamma().fit(x[:400])
    for r in x[400:]:
        loc, scale, df = agent.predictive()
        expect = stats.t.logpdf(r, df, loc, scale)
        assert agent.update(r) == pytest.approx(expect, rel=1e-10)


@pytest.mark.parametrize("horizon", [1, 10])
def test_point_var_es_match_scipy_and_shared_function(horizon):
    x = np.random.default_rng(5).normal(0, 0.012, size=800)
    agent = NormalInverseGamma().fit(x)
    loc, scale, df = agent.predictive(horizon)
    fc = agent.forecast((0.99, 0.975), horizon=horizon)
    for m in fc.levels:
        dist = stats.t(df, loc, scale)
        assert m.var == pytest.approx(-dist.ppf(1 - m.alpha), rel=1e-10)
        es = -dist.expect(lambda r: r, ub=dist.ppf(1 - m.alpha)) / (1 - m.alpha)
        assert m.es == pytest.approx(es, rel=1e-7)
    shared = risk_measures(StudentTFamily(loc, scale, df), (0.99, 0.975))
    assert [m.var for m in fc.levels] == pytest.approx([s.var for s in shared], rel=1e-10)


@pytest.mark.parametrize("horizon", [1, 5])
def test_credible_intervals_match_monte_carlo_posterior(horizon):
    x = np.random.default_rng(6).normal(0, 0.01, size=1000)
    agent = NormalInverseGamma().fit(x, seed=1)
    fc = agent.forecast((0.99,), horizon=horizon).levels[0]
    d = agent.posterior_draws(200_000)
    # conditional h-day law given (mu, sigma): N(h mu, h sigma^2)
    fam = StudentTFamily(horizon * d["mu"], np.sqrt(horizon * d["sigma2"]), np.inf)
    (mc,) = risk_measures(fam, (0.99,))
    assert fc.var_interval == pytest.approx(mc.var_interval, rel=3e-3)
    assert fc.es_interval == pytest.approx(mc.es_interval, rel=3e-3)
    assert fc.var == pytest.approx(mc.var, rel=3e-3)
    assert fc.var_interval[0] < fc.var < fc.var_interval[1] < fc.es_interval[1]


def test_h_day_predictive_by_simulation():
    x = np.random.default_rng(7).normal(0, 0.01, size=200)
    agent = NormalInverseGamma(forgetting=1.0).fit(x, seed=2)
    d = agent.posterior_draws(400_000)
    rng = np.random.default_rng(8)
    sums = rng.normal(5 * d["mu"], np.sqrt(5 * d["sigma2"]))
    loc, scale, df = agent.predictive(5)
    assert stats.kstest(sums, stats.t(df, loc, scale).cdf).pvalue > 0.001


def test_state_round_trip_is_exact():
    x = np.random.default_rng(9).normal(0, 0.01, size=300)
    agent = NormalInverseGamma(forgetting=0.95, prior_scale=2e-4).fit(x, seed=3)
    clone = NormalInverseGamma.from_state(agent.state())
    assert clone.params() == agent.params()
    assert clone.forecast((0.99,)) == agent.forecast((0.99,))
    assert clone.update(0.01) == agent.update(0.01)
    assert clone.state() == agent.state()


def test_bad_input_is_refused_and_nothing_changes():
    agent = NormalInverseGamma()
    with pytest.raises(NotFitted):
        agent.update(0.01)
    with pytest.raises(NotFitted):
        agent.forecast()
    with pytest.raises(InvalidReturns, match="index 2"):
        agent.fit([0.01, 0.02, math.nan, 0.0])
    with pytest.raises(InvalidReturns, match="at least 2"):
        agent.fit([0.01])
    with pytest.raises(InvalidReturns, match="shape"):
        agent.fit(np.zeros((3, 2)))
    with pytest.raises(InvalidReturns, match="percent"):
        agent.fit([1.5, 0.3, 0.2])
    agent.fit(np.random.default_rng(0).normal(0, 0.01, 100))
    before = agent.state()
    for bad in (math.inf, math.nan, "x", 3.0):
        with pytest.raises(InvalidReturns):
            agent.update(bad)
    assert agent.state() == before
    with pytest.raises(InvalidParameter):
        agent.forecast((0.3,))
    with pytest.raises(InvalidParameter):
        agent.forecast((0.99,), horizon=0)
    for kwargs in ({"forgetting": 0.0}, {"forgetting": 1.1}, {"prior_shape": 1.0},
                   {"prior_scale": -1.0}, {"prior_kappa": math.nan}):
        with pytest.raises(InvalidParameter):
            NormalInverseGamma(**kwargs)
    with pytest.raises(InvalidState):
        NormalInverseGamma.from_state(b"not a state")


def test_state_of_another_model_is_refused():
    from swarmvar.models.bootstrap import BayesianBootstrap

    boot = BayesianBootstrap().fit(np.random.default_rng(0).normal(0, 0.01, 100), seed=0)
    with pytest.raises(InvalidState, match="BayesianBootstrap"):
        NormalInverseGamma.from_state(boot.state())


def test_a_state_with_a_shape_no_series_reaches_is_refused() -> None:
    """A state whose a (or kappa) passes 1e9 (a = a0 + n/2: more returns than any series)
    is refused: restored, its Student-t quantiles lost the digits that keep ES >= VaR (a
    fuzz case, a = 4.6e14)."""
    import numpy as np
    import pytest

    from swarmvar.errors import InvalidState
    from swarmvar.models.nig import NormalInverseGamma

    agent = NormalInverseGamma().fit(np.random.default_rng(0).normal(0, 0.01, 300))
    for name, value in (("a", 4.6e14), ("kappa", 2e9)):
        setattr(agent, name, value)
        with pytest.raises(InvalidState, match="more returns than any series"):
            NormalInverseGamma.from_state(agent.state())
        agent = NormalInverseGamma().fit(np.random.default_rng(0).normal(0, 0.01, 300))
