"""The cached t-mixture VaR/ES equals the shared risk function on hard mixtures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.models._sir_tmixture import (
    MixtureLevel,
    _Nodes,
    _quantile_rows,
    mixture_level,
    risk_measure,
)
from swarmvar.models.risk import StudentTFamily, risk_measures, weighted_quantile


def _compare(loc, scale, df, w, alpha):  # type: ignore[no-untyped-def]
    fast = risk_measure(mixture_level(loc, scale, df, alpha), w / w.sum())
    (ref,) = risk_measures(StudentTFamily(loc, scale, df, w), (alpha,))
    assert fast.var == pytest.approx(ref.var, rel=1e-8, abs=1e-12)
    assert fast.es == pytest.approx(ref.es, rel=1e-8, abs=1e-12)
    assert fast.var_interval == pytest.approx(ref.var_interval, rel=1e-12)
    assert fast.es_interval == pytest.approx(ref.es_interval, rel=1e-12)


def test_identical_components() -> None:
    s = 50
    _compare(np.full(s, 1e-3), np.full(s, 0.01), np.full(s, 4.0), np.ones(s), 0.99)


def test_two_very_different_components() -> None:
    _compare(np.array([0.0, -0.02]), np.array([0.005, 0.05]), np.array([30.0, 2.5]),
             np.array([0.97, 0.03]), 0.99)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.integers(2, 300),
       alpha=st.sampled_from([0.9, 0.95, 0.975, 0.99, 0.999]))
def test_random_mixtures(seed: int, size: int, alpha: float) -> None:
    rng = np.random.default_rng(seed)
    loc = rng.normal(0, 2e-3, size)
    scale = rng.uniform(0.004, 0.03, size)
    df = 2.05 + rng.gamma(2.0, 5.0, size)
    w = rng.dirichlet(np.full(size, 0.3))
    _compare(loc, scale, df, w + 1e-300, alpha)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.integers(1, 700), days=st.integers(1, 6),
       concentration=st.sampled_from([0.01, 0.3, 5.0]))
def test_chunked_quantiles_are_the_weighted_quantiles(seed: int, size: int, days: int,
                                                      concentration: float) -> None:
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(0.02, 0.003, size), 4)  # ties, as resampled particles have
    order = np.argsort(values, kind="stable")
    w = rng.dirichlet(np.full(size, concentration), days) + 1e-300
    got = _quantile_rows(values, order, w, (0.05, 0.95))
    for d in range(days):
        assert got[d].tolist() == weighted_quantile(values, w[d], (0.05, 0.95)).tolist()
        assert np.array_equal(_quantile_rows(values, order, w[d : d + 1], (0.05, 0.95))[0], got[d])


class _DenseLevel(MixtureLevel):
    """The search as it was: every node of a lattice window filled when the window is made."""

    def _window(self, v: float) -> _Nodes:
        nodes = super()._window(v)
        self._fill(nodes, range(len(nodes.points)))
        return nodes


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.integers(2, 400),
       alpha=st.sampled_from([0.95, 0.975, 0.99]), drift=st.sampled_from([0.05, 0.3, 1.5]))
def test_lazily_filled_nodes_give_the_dense_search_bit_for_bit(seed: int, size: int,
                                                               alpha: float,
                                                               drift: float) -> None:
    # the same days on the same components: a level filling only the nodes its root
    # search looks at, against one filling whole windows (the root wanders, by Newton
    # steps and window moves, as far as `drift` carries the weights)
    rng = np.random.default_rng(seed)
    loc, scale = rng.normal(3e-4, 1e-3, size), rng.uniform(0.006, 0.02, size)
    df = 2.05 + rng.gamma(2.0, 3.0, size)
    family = StudentTFamily(loc, scale, df)
    lazy, dense = MixtureLevel(family, alpha), _DenseLevel(family, alpha)
    logw = np.zeros(size)
    for day in range(12):
        logw = logw + rng.normal(0.0, drift, size)
        w = np.exp(logw - logw.max())
        w /= w.sum()
        if day == 0:
            start = float(w @ lazy.cond_var)
            lazy.nodes, dense.nodes = lazy.place(w, start), dense.place(w, start)
        assert risk_measure(lazy, w) == risk_measure(dense, w)
