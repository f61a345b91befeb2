"""NormalInverseWishart's posterior over its forgetting factor (``lams=``, a grid).

Checked: each grid point's log evidence is the brute-force sum of scipy's
multivariate-t log densities over the history (fit and online); ``update``
scores the mixture; after a simulated volatility break the posterior mass
moves to shorter memories; a one-point grid is the fixed ``lam``; states
(the grid's, and the format written before the grid) restore exactly; bad
parameters and corrupted states raise SwarmVarError subclasses (hypothesis).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from swarmvar.errors import InvalidParameter, InvalidReturns, InvalidState, NotFitted
from swarmvar.models.book_baselines import RiskMetrics
from swarmvar.models.joint_niw import (
    GRID_LAMS,
    NormalInverseWishart,
    allocate_draws,
)

SIGMA = np.array([[1.0, 0.4, 0.1], [0.4, 1.5, -0.2], [0.1, -0.2, 0.8]]) * 1e-4


def _scipy_scores(x: np.ndarray, lam: float, p: np.ndarray | None = None) -> np.ndarray:
    """Day t's multivariate-t predictive log density given days < t, from the textbook
    (weighted-count) NIW formulas and scipy, one day at a time (``kappa0 = 1``,
    ``prior_vol = 0.01``); with positions ``p``, the density of ``p'x_t`` under the
    predictive's marginal along ``p`` (scipy's univariate t)."""
    kappa0, prior_vol = 1.0, 0.01
    n = x.shape[1]
    nu0 = n + 2.0
    psi0 = np.eye(n) * prior_vol ** 2 * (nu0 - n - 1)
    out = np.empty(len(x))
    for t in range(len(x)):
        c = lam ** np.arange(t - 1, -1, -1.0)
        prev = x[:t]
        w = c.sum()
        xbar = c @ prev / w if w > 0 else np.zeros(n)
        scatter = ((prev - xbar) * c[:, None]).T @ (prev - xbar)
        kappa = kappa0 + w
        psi = psi0 + scatter + kappa0 * w / kappa * np.outer(xbar, xbar)
        df = nu0 + w - n + 1
        loc, shape = w * xbar / kappa, psi * (kappa + 1) / (kappa * df)
        out[t] = (stats.multivariate_t(loc=loc, shape=shape, df=df).logpdf(x[t]) if p is None
                  else stats.t(df, loc=p @ loc, scale=np.sqrt(p @ shape @ p)).logpdf(p @ x[t]))
    return out


def test_each_lams_log_evidence_is_the_sum_of_its_multivariate_t_scores() -> None:
    x = np.random.default_rng(0).multivariate_normal(np.zeros(3), SIGMA, size=90)
    lams = (0.9, 0.97, 1.0)
    agent = NormalInverseWishart(lams=lams, kappa0=1.0, prior_vol=0.01, evidence="assets",
                                 evidence_forgetting=1.0).fit(x[:60])
    scores = np.array([_scipy_scores(x, lam) for lam in lams])  # (G, T)
    np.testing.assert_allclose(agent.log_evidence(), scores[:, :60].sum(axis=1), rtol=1e-10)
    for t in range(60, 90):  # online: the mixture's score, then the evidence grows by each score
        pi = agent.lam_posterior()
        np.testing.assert_allclose(pi, special.softmax(scores[:, :t].sum(axis=1)), rtol=1e-9)
        assert agent.update(x[t]) == pytest.approx(special.logsumexp(scores[:, t], b=pi),
                                                   rel=1e-10)
    np.testing.assert_allclose(agent.log_evidence(), scores.sum(axis=1), rtol=1e-10)
    # with the evidence forgotten at rate a, day t counts a^(T-1-t)
    a = 0.95
    dma = NormalInverseWishart(lams=lams, evidence_forgetting=a, evidence="assets").fit(x)
    np.testing.assert_allclose(dma.log_evidence(), scores @ a ** np.arange(89, -1, -1.0),
                               rtol=1e-10)
    np.testing.assert_allclose(dma.lam_posterior(), special.softmax(a * dma.log_evidence()))


def test_the_book_evidence_is_the_sum_of_the_t_marginals_along_the_positions() -> None:
    x = np.random.default_rng(5).multivariate_normal(np.zeros(3), SIGMA, size=70)
    p = np.array([0.5, -0.3, 0.2])
    lams = (0.9, 0.99)
    agent = NormalInverseWishart(lams=lams, evidence="book", evidence_forgetting=1.0,
                                 positions=tuple(p)).fit(x[:50])
    # the P&L per unit of the largest position (the scale does not change the weights)
    ref = np.array([_scipy_scores(x, lam, p / 0.5) for lam in lams])  # (G, T)
    np.testing.assert_allclose(agent.log_evidence(), ref[:, :50].sum(axis=1), rtol=1e-10)
    for row in x[50:]:
        agent.update(row)
    np.testing.assert_allclose(agent.log_evidence(), ref.sum(axis=1), rtol=1e-10)


def test_the_book_evidence_follows_positions_changed_between_updates() -> None:
    x = np.random.default_rng(9).multivariate_normal(np.zeros(3), SIGMA, size=70)
    p1, p2 = np.array([0.5, -0.3, 0.2]), np.array([-1.0, 2.0, 4.0])
    lams = (0.9, 0.99)
    agent = NormalInverseWishart(lams=lams, evidence="book", evidence_forgetting=1.0,
                                 positions=tuple(p1)).fit(x[:50])
    agent.update(x[50])  # the first direction
    agent.positions = tuple(p2)
    for row in x[51:]:
        agent.update(row)
    ref1 = np.array([_scipy_scores(x[:51], lam, p1 / 0.5) for lam in lams]).sum(axis=1)
    ref2 = np.array([_scipy_scores(x, lam, p2 / 4.0)[51:] for lam in lams]).sum(axis=1)
    np.testing.assert_allclose(agent.log_evidence(), ref1 + ref2, rtol=1e-10)
    agent.positions = (0.0, 0.0, 0.0)
    with pytest.raises(InvalidParameter, match="all zero"):
        agent.update(x[0])


@pytest.mark.parametrize("evidence", ["assets", "book"])
def test_after_a_volatility_break_the_mass_moves_to_shorter_memories(evidence: str) -> None:
    rng = np.random.default_rng(1)
    calm = rng.multivariate_normal(np.zeros(3), SIGMA, size=500)
    storm = rng.multivariate_normal(np.zeros(3), SIGMA * 16, size=40)
    agent = NormalInverseWishart(evidence=evidence).fit(calm)  # the default grid, a = 0.99
    assert agent.grid == GRID_LAMS and agent.evidence_forgetting == 0.99
    grid = np.array(agent.grid)
    before = agent.lam_posterior() @ grid
    assert before > 0.985  # a stable covariance: long memories win
    for row in storm:
        agent.update(row)
    after = agent.lam_posterior() @ grid
    assert after < 0.98 and after < before - 0.015
    # the posterior's own VaR follows: the grid's forecast is above the fixed 0.99's
    fixed = NormalInverseWishart(lam=0.99, draws=20, paths=500).fit(np.vstack([calm, storm]))
    mixed = NormalInverseWishart(evidence=evidence, draws=20, paths=500).fit(
        np.vstack([calm, storm]))
    assert mixed.forecast((0.99,), seed=0).at(0.99).var > fixed.forecast(
        (0.99,), seed=0).at(0.99).var


def test_a_one_point_grid_is_the_fixed_lam_and_grid_states_restore() -> None:
    x = np.random.default_rng(2).multivariate_normal(np.zeros(3), SIGMA, size=200)
    fixed = NormalInverseWishart(lam=0.98, draws=10, paths=200).fit(x[:150])
    one = NormalInverseWishart(lams=(0.98,), draws=10, paths=200).fit(x[:150])
    for row in x[150:]:
        assert fixed.update(row) == one.update(row)
    assert fixed.forecast((0.99,), seed=3) == one.forecast((0.99,), seed=3)
    grid = NormalInverseWishart(lams=(0.95, 0.99), evidence_forgetting=0.98, draws=10,
                                paths=200).fit(x[:150])
    scen = grid.scenarios(2, seed=1)
    assert scen.weights.sum() == pytest.approx(1.0) and scen.returns.shape == (10, 200, 3)
    again = NormalInverseWishart.from_state(grid.state())
    assert again.forecast((0.99, 0.975), seed=4) == grid.forecast((0.99, 0.975), seed=4)
    assert again.update(x[150]) == grid.update(x[150])
    draws = grid.posterior_draws()
    assert set(np.unique(draws["lam"])) <= {0.95, 0.99} and draws["sigma"].shape == (10, 3, 3)


class _FormatOne(NormalInverseWishart):
    """Writes the state layout of the agent before the grid (one lam, scalar ``w``)."""

    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"n": self._n, "w": float(self._w[0])}, {"sx": self._sx[0], "sxx": self._sxx[0]}


def test_states_written_before_the_grid_still_read() -> None:
    x = np.random.default_rng(3).multivariate_normal(np.zeros(3), SIGMA, size=120)
    old = _FormatOne(lam=0.99, draws=10, paths=200).fit(x)
    restored = NormalInverseWishart.from_state(old.state())
    assert restored.grid == (0.99,)
    assert restored.forecast((0.99,), seed=1) == old.forecast((0.99,), seed=1)
    grid_params = _FormatOne(lams=(0.95, 0.99)).fit(x)
    with pytest.raises(InvalidState, match="grid"):
        NormalInverseWishart.from_state(grid_params.state())  # a format-1 state has one lam


def test_draws_are_allocated_by_largest_remainders() -> None:
    assert allocate_draws(np.array([0.5, 0.3, 0.2]), 10).tolist() == [5, 3, 2]
    assert allocate_draws(np.array([0.334, 0.333, 0.333]), 100).tolist() == [34, 33, 33]
    assert allocate_draws(np.array([1e-9, 1 - 1e-9]), 7).tolist() == [0, 7]


_number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3),
                    st.booleans(), st.text(max_size=3), st.none())


@settings(max_examples=60, deadline=None)
@given(lam=st.one_of(st.none(), _number),
       lams=st.one_of(st.lists(_number, max_size=5).map(tuple),
                      st.lists(st.floats(0.5, 1.0), max_size=60).map(tuple), _number),
       forgetting=_number, evidence=st.one_of(st.sampled_from(["assets", "book"]), _number))
def test_bad_forgetting_parameters_are_refused_clearly(lam: Any, lams: Any, forgetting: Any,
                                                       evidence: Any) -> None:
    try:
        agent = NormalInverseWishart(lam=lam, lams=lams, evidence_forgetting=forgetting,
                                     evidence=evidence)
    except InvalidParameter:
        return
    assert all(0 < v <= 1 for v in agent.grid) and 0 < agent.evidence_forgetting <= 1
    assert len(set(agent.grid)) == len(agent.grid) and agent.grid == tuple(sorted(agent.grid))
    assert agent.evidence in ("assets", "book")


def test_the_book_evidence_needs_exposure_and_ignores_the_scale() -> None:
    x = np.random.default_rng(6).multivariate_normal(np.zeros(3), SIGMA, size=60)
    with pytest.raises(InvalidParameter, match="all zero"):
        NormalInverseWishart(positions=(0.0, 0.0, 0.0)).fit(x)
    small = NormalInverseWishart(positions=(1e-300, -2e-300, 0.0)).fit(x)
    large = NormalInverseWishart(positions=(1e300, -2e300, 0.0)).fit(x)
    np.testing.assert_allclose(small.lam_posterior(), large.lam_posterior(), rtol=1e-12)
    assert np.isfinite(small.log_evidence()).all()


@settings(max_examples=30, deadline=None)
@given(key=st.sampled_from(["w", "sx", "sxx", "logev"]),
       how=st.sampled_from(["nan", "shape", "negative", "drop"]))
def test_corrupted_grid_states_are_refused(key: str, how: str) -> None:
    x = np.random.default_rng(4).multivariate_normal(np.zeros(3), SIGMA, size=60)
    agent = NormalInverseWishart(lams=(0.95, 0.99), draws=5, paths=50).fit(x)
    scalars, arrays = agent._get_state()
    arrays = dict(arrays)
    a = np.array(arrays[key], dtype=float)
    if how == "nan":
        a.flat[0] = math.nan
    elif how == "shape":
        a = a[..., :1]
    elif how == "negative":
        a = -np.abs(a) - 1.0
    if how == "drop":
        del arrays[key]
    else:
        arrays[key] = a
    if how == "negative" and key == "logev":
        return  # any finite log evidence is a valid state
    if how == "negative" and key in ("sx",):
        return  # negative sums of returns are valid
    clone = NormalInverseWishart(lams=(0.95, 0.99), draws=5, paths=50)
    with pytest.raises(InvalidState):
        clone._set_state(scalars, arrays)


def test_a_state_loads_only_into_the_grid_it_was_written_for(monkeypatch) -> None:
    """Review: a default agent's state did not record its grid, so a retuned default grid
    of the same size took the old sums at the wrong forgetting factors, silently."""
    import swarmvar.models.joint_niw as niw

    x = np.random.default_rng(7).multivariate_normal(np.zeros(3), SIGMA, size=80)
    state = NormalInverseWishart(draws=5, paths=50).fit(x).state()
    assert NormalInverseWishart.from_state(state).grid == niw.DEFAULT_LAMS
    other = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.999)
    assert len(other) == len(niw.DEFAULT_LAMS)
    monkeypatch.setattr(niw, "DEFAULT_LAMS", other)
    with pytest.raises(InvalidState, match="forgetting factors"):
        NormalInverseWishart.from_state(state)
    agent = NormalInverseWishart(draws=5, paths=50).fit(x)  # the retuned grid itself
    scalars, arrays = agent._get_state()
    del scalars["grid"]  # as the first grid states were written
    arrays = dict(arrays, w=np.full(len(other), 16.6))  # more days than lam 0.5 can hold
    with pytest.raises(InvalidState, match="1 / \\(1 - lam\\)"):
        NormalInverseWishart(draws=5, paths=50)._set_state(scalars, arrays)


@pytest.mark.parametrize("index", [7, -1, 1.7, "2", True, None])
def test_posterior_index_must_be_a_grid_point(index: Any) -> None:
    x = np.random.default_rng(8).multivariate_normal(np.zeros(3), SIGMA, size=60)
    agent = NormalInverseWishart(draws=5, paths=50).fit(x)
    if index is None:
        assert agent.posterior()[0].shape == (3,)
        return
    with pytest.raises(InvalidParameter, match="grid point"):
        agent.posterior(index)


@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    """Joint agents fitted once; a refused row must leave them unchanged."""
    x = np.random.default_rng(10).multivariate_normal(np.zeros(3), SIGMA, size=60)
    return {"grid": NormalInverseWishart(draws=5, paths=50).fit(x),
            "lam": NormalInverseWishart(lam=0.97, draws=5, paths=50).fit(x),
            "riskmetrics": RiskMetrics(paths=100).fit(x)}


_BAD_ROWS = st.one_of(
    st.lists(st.floats(-0.05, 0.05), min_size=0, max_size=6).filter(lambda v: len(v) != 3),
    st.tuples(st.integers(0, 2), st.sampled_from([math.nan, math.inf, -math.inf, 1.5, -7.0]))
    .map(lambda b: [b[1] if i == b[0] else 0.001 for i in range(3)]),
    st.lists(st.sampled_from(["", "a", "x1", "1,0", "nan?"]), min_size=3, max_size=3),
    st.just([[0.0, 0.0], [0.0]]), st.just(np.zeros((2, 3))), st.just(None), st.just("0.01"),
)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["grid", "lam", "riskmetrics"]), row=_BAD_ROWS)
def test_bad_rows_are_refused_by_update_and_log_predictive_and_change_nothing(
        fitted: dict[str, Any], kind: str, row: Any) -> None:
    agent = fitted[kind]
    before = agent.state()
    with pytest.raises(InvalidReturns):
        agent.update(row)
    if isinstance(agent, NormalInverseWishart):
        with pytest.raises(InvalidReturns):
            agent.log_predictive(row)
    assert agent.state() == before


def test_log_predictive_needs_a_fit_and_takes_a_row_or_a_one_row_matrix(
        fitted: dict[str, Any]) -> None:
    with pytest.raises(NotFitted):
        NormalInverseWishart().log_predictive([0.0, 0.0, 0.0])
    agent = fitted["grid"]
    row = [0.001, -0.002, 0.0005]
    assert agent.log_predictive(row) == agent.log_predictive(np.array([row]))


def test_a_fixed_lam_gives_the_numbers_of_the_agent_before_the_grid() -> None:
    """``lam=0.99`` alone: the update densities and the forecast the NIW agent gave before
    the grid of forgetting factors (recorded from that code, commit 41a1950)."""
    x = np.random.default_rng(0).multivariate_normal(np.zeros(3), np.diag([1, 2, 3]) * 1e-4,
                                                     size=300)
    agent = NormalInverseWishart(lam=0.99, draws=10, paths=200).fit(x[:250])
    dens = sum(agent.update(r) for r in x[250:])
    f = agent.forecast((0.99,), seed=3).at(0.99)
    assert dens == pytest.approx(453.31901914107664, rel=1e-12)
    assert (f.var, f.es) == (pytest.approx(0.016727119984041427, rel=1e-12),
                             pytest.approx(0.020922290391800116, rel=1e-12))
