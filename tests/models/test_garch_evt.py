"""GarchEVT on the S&P 500: closed-form conditional VaR/ES, Monte Carlo, updates, state, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from swarmvar.data import load
from swarmvar.errors import InvalidParameter, InvalidReturns, InvalidState, NotFitted
from swarmvar.models.garch_evt import GarchEVT
from swarmvar.models.garch_t import GarchT

pytestmark = pytest.mark.filterwarnings("ignore::swarmvar.errors.ConvergenceWarning")


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    return load("sp500").to_numpy()


@pytest.fixture(scope="module")
def fitted(returns: np.ndarray) -> GarchEVT:
    return GarchEVT(particles=200, runs=2).fit(returns[:1500], seed=3)


def _copy(agent: GarchEVT) -> GarchEVT:
    return GarchEVT.from_state(agent.state())


def test_sp500_var_es_finite_ordered_and_monotone(fitted: GarchEVT) -> None:
    f = fitted.forecast((0.95, 0.975, 0.99, 0.995))
    vars_ = [lv.var for lv in f.levels]
    assert all(np.isfinite(vars_)) and all(np.diff(vars_) > 0)
    for lv in f.levels:
        assert np.isfinite(lv.es) and lv.es >= lv.var > 0
        assert lv.var_interval[0] <= lv.var <= lv.var_interval[1]
        assert lv.es_interval[0] <= lv.es <= lv.es_interval[1]


def test_threshold_and_tail_posterior(fitted: GarchEVT) -> None:
    losses = -fitted._garch.standardized_residuals()
    assert fitted.threshold_loss == pytest.approx(np.quantile(losses, 0.90))
    post = fitted.tail_posterior()
    assert post.n_obs == 1500 and post.n_exceed == int(np.sum(losses > fitted.threshold_loss))
    lo, hi = post.interval("xi")
    assert -0.5 < lo < hi < 0.95  # the posterior sits inside the grid, not at its edge


def test_conditional_var_is_the_mcneil_frey_estimator(fitted: GarchEVT) -> None:
    loc, scale, df, _ = fitted._garch.next_moments()
    vol = scale * np.sqrt(df / (df - 2))
    xi, beta, p_u = fitted._draws
    fam = fitted.family()
    for alpha in (0.95, 0.99, 0.999):
        z = fitted.threshold_loss + stats.genpareto.isf((1 - alpha) / p_u, xi, scale=beta)
        np.testing.assert_allclose(fam.var(alpha), -loc + vol * z, rtol=1e-9)


def test_forecast_matches_monte_carlo_of_the_mixture(fitted: GarchEVT) -> None:
    fam = fitted.family()
    rng = np.random.default_rng(0)
    m = 400_000
    s = rng.choice(fam.weights.size, size=m, p=fam.weights)
    tail = rng.random(m) < fam.p_u[s]
    gpd = stats.genpareto.rvs(fam.xi[s], scale=fam.beta[s], random_state=rng)
    x = np.where(tail, fitted.threshold_loss + gpd, rng.choice(fam.body, size=m))
    losses = fam.loc[s] + fam.scale[s] * x
    (lv,) = fitted.forecast((0.99,)).levels
    mc_var = np.quantile(losses, 0.99)
    assert lv.var == pytest.approx(mc_var, rel=0.02)
    assert lv.es == pytest.approx(losses[losses >= mc_var].mean(), rel=0.02)


def test_simulated_one_step_paths_agree_with_closed_form(fitted: GarchEVT) -> None:
    paths = fitted._simulate_paths(1, np.random.default_rng(1))
    (lv,) = fitted.forecast((0.975,)).levels
    assert -np.quantile(paths, 0.025) == pytest.approx(lv.var, rel=0.03)


def test_horizon_forecast(fitted: GarchEVT) -> None:
    a = fitted.forecast((0.99, 0.975), horizon=5, seed=2)
    assert a == fitted.forecast((0.99, 0.975), horizon=5, seed=2)
    assert fitted.forecast((0.99,), horizon=5) == fitted.forecast((0.99,), horizon=5)
    one = fitted.forecast((0.99,)).at(0.99).var
    assert one < a.at(0.99).var < 5 * one
    assert a.at(0.99).es >= a.at(0.99).var > a.at(0.975).var


def test_update_is_garch_update_plus_gpd_step(fitted: GarchEVT, returns: np.ndarray) -> None:
    agent = _copy(fitted)
    twin = GarchT.from_state(fitted._garch.state())
    exceed, n_obs, u = agent._gpd.n_exceed, agent._gpd.n_obs, agent.threshold_loss
    for r in returns[1500:1560]:
        assert agent.update(float(r)) == twin.update(float(r))
        exceed += -twin.standardized_residuals()[-1] > u
        n_obs += 1
    post = agent.tail_posterior()
    assert (post.n_exceed, post.n_obs) == (exceed, n_obs)
    assert agent._body.size == n_obs - exceed and np.all(np.diff(agent._body) >= 0)


def test_state_round_trips_exactly(fitted: GarchEVT, returns: np.ndarray) -> None:
    a, b = _copy(fitted), _copy(fitted)
    assert a.state() == fitted.state()
    for r in [-0.06, *returns[1500:1520]]:
        assert a.update(float(r)) == b.update(float(r))
    assert a.state() == b.state()
    assert a.forecast((0.99,), horizon=3) == b.forecast((0.99,), horizon=3)


def test_refit_on_a_window(fitted: GarchEVT, returns: np.ndarray) -> None:
    agent = _copy(fitted)
    for r in returns[1500:1520]:
        agent.update(float(r))
    agent.refit(returns[520:1520], seed=4)
    assert agent.tail_posterior().n_obs == 1000 and agent._garch.history.size == 1000
    assert np.isfinite(agent.forecast((0.99,)).at(0.99).es)


def test_invalid_inputs_raise_named_errors(fitted: GarchEVT, returns: np.ndarray) -> None:
    fresh = GarchEVT(particles=200, runs=2)
    for call in (lambda: fresh.update(0.01), lambda: fresh.forecast(), lambda: fresh.family(),
                 lambda: fresh.state(), lambda: fresh.posterior_draws()):
        with pytest.raises(NotFitted):
            call()
    for bad in (0.3, 0.995, True, "0.9"):
        with pytest.raises(InvalidParameter):
            GarchEVT(threshold=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter):
        GarchEVT(particles=10)
    with pytest.raises(InvalidReturns):
        fresh.fit(returns[:100])
    agent = _copy(fitted)
    before = agent.state()
    for bad_r in (float("nan"), 2.0, "x"):
        with pytest.raises(InvalidReturns):
            agent.update(bad_r)  # type: ignore[arg-type]
    assert agent.state() == before
    with pytest.raises(InvalidParameter):
        agent.forecast((0.99,), horizon=0)
    with pytest.raises(InvalidState):
        GarchEVT.from_state(fitted._garch.state())  # a GarchT state is not a GarchEVT one
    scalars, arrays = fitted._get_state()
    with pytest.raises(InvalidState):
        GarchEVT(particles=200, runs=2)._set_state(scalars, {**arrays, "body": np.r_[arrays[
            "body"], 99.0]})
    with pytest.raises(InvalidState):
        GarchEVT(particles=300, runs=2)._set_state(scalars, arrays)


def test_posterior_draws_hold_garch_and_gpd_parameters(fitted: GarchEVT) -> None:
    d = fitted.posterior_draws()
    assert set(d) == {"mu", "omega", "alpha", "beta", "nu", "gamma", "gpd_xi", "gpd_beta",
                      "gpd_p_u"}
    assert all(v.shape == (200,) for v in d.values())
    np.testing.assert_array_equal(d["beta"], fitted._garch.posterior_draws()["beta"])
    post = fitted.tail_posterior()
    sd = np.sqrt(post.marginal("xi")[1] @ (post.xi - post.mean("xi")) ** 2)
    assert np.mean(d["gpd_xi"]) == pytest.approx(post.mean("xi"), abs=4 * sd / np.sqrt(200))


class _PublicOnly:
    """A GarchT seen only through its public API (any private attribute access fails)."""

    def __init__(self, garch: GarchT) -> None:
        object.__setattr__(self, "_wrapped", garch)

    def __getattr__(self, name: str):  # noqa: ANN204
        if name.startswith("_"):
            raise AttributeError(f"GarchEVT read GarchT's private {name!r}")
        return getattr(object.__getattribute__(self, "_wrapped"), name)


def test_horizon_forecasts_use_only_garch_public_api(fitted: GarchEVT) -> None:
    agent = _copy(fitted)
    expect = agent.forecast((0.99, 0.975), horizon=5, seed=7)
    agent._garch = _PublicOnly(agent._garch)  # type: ignore[assignment]
    assert agent.forecast((0.99, 0.975), horizon=5, seed=7) == expect
    assert agent.forecast((0.99,)) == fitted.forecast((0.99,))
    agent.update(-0.01)  # updates too


def test_gjr_is_the_default_and_symmetric_is_an_option(fitted: GarchEVT,
                                                       returns: np.ndarray) -> None:
    assert fitted.asymmetric and GarchEVT().params()["asymmetric"] is True
    sym = GarchEVT(particles=200, runs=2, asymmetric=False).fit(returns[:1500], seed=3)
    assert "gamma" not in sym.posterior_draws() and "gamma" in fitted.posterior_draws()
    assert GarchEVT.from_state(sym.state()).asymmetric is False
    # a -3% day raises tomorrow's VaR more under GJR than under the symmetric filter
    rises = []
    for agent in (_copy(fitted), sym):
        before = agent.forecast((0.99,)).at(0.99).var
        agent.update(-0.03)
        rises.append(agent.forecast((0.99,)).at(0.99).var / before)
    assert rises[0] > rises[1]


def test_newest_residual_is_the_last_standardized_residual(fitted: GarchEVT,
                                                           returns: np.ndarray) -> None:
    agent = _copy(fitted)
    for r in [-0.05, *returns[1500:1505]]:
        agent.update(float(r))
        garch = agent._garch
        assert garch.newest_residual() == garch.standardized_residuals()[-1]


def test_a_failed_refit_leaves_the_agent_as_it_was(fitted: GarchEVT, returns: np.ndarray,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # the GARCH filter is refitted on a shallow copy: its own arrays must stay untouched
    agent = _copy(fitted)
    before = agent.state()
    garch = agent._garch
    arrays = {k: v.copy() for k, v in vars(garch).items() if isinstance(v, np.ndarray)}

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("after the GARCH refit")

    monkeypatch.setattr(GarchEVT, "_install", fail)
    with pytest.raises(RuntimeError):
        agent.refit(returns[200:1500], seed=1)
    assert agent._garch is garch and agent.state() == before
    for k, v in arrays.items():
        np.testing.assert_array_equal(getattr(garch, k), v)
    assert agent.forecast((0.99,)) == fitted.forecast((0.99,))


def test_state_with_an_unsorted_body_is_rejected(fitted: GarchEVT) -> None:
    scalars, arrays = fitted._get_state()
    body = arrays["body"].copy()
    body[[0, -1]] = body[[-1, 0]]
    with pytest.raises(InvalidState):
        GarchEVT(particles=200, runs=2)._set_state(scalars, {**arrays, "body": body})
