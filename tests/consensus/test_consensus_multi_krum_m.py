"""``Policy.multi_krum_m``: None (``n - f``) or a whole number >= 1; its words say how many
agents the rule needs, exactly where the rule refuses (was: 0 read as unset, and 9 over 6
agents described as "the mean of the 9 agents closest to the others" of 6)."""

from __future__ import annotations

import numpy as np
import pytest

from swarmvar.consensus import Aggregator, Policy
from swarmvar.consensus.rows import aggregate_rows
from swarmvar.errors import InvalidParameter, SwarmVarError


def _rows(m: int) -> np.ndarray:
    """``m`` agents' (VaR, ES, VaR lo, VaR hi, ES lo, ES hi), distinct and ordered."""
    var = np.linspace(0.015, 0.025, m) + np.random.default_rng(m).uniform(0, 1e-4, m)
    es = 1.4 * var
    return np.column_stack([var, es, 0.9 * var, 1.1 * var, 0.9 * es, 1.1 * es])


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "3", np.int64(2)])
def test_multi_krum_m_is_none_or_a_whole_number_from_1(bad: object) -> None:
    with pytest.raises(InvalidParameter, match=r"multi_krum_m .* None \(n - f\) or an int >= 1"):
        Policy(aggregator=Aggregator.MULTI_KRUM, multi_krum_m=bad)  # type: ignore[arg-type]
    for good in (None, 1, 9):
        assert Policy(aggregator=Aggregator.MULTI_KRUM, multi_krum_m=good).multi_krum_m == good


def test_too_few_agents_for_multi_krum_m_are_said_as_the_rule_refuses() -> None:
    policy = Policy(aggregator=Aggregator.MULTI_KRUM, f=1, multi_krum_m=9)
    assert policy.describe(6, weights=False) == (
        "a multi-Krum averaging 9 agents, tolerating 1 faulty agent, needs at least 10 agents")
    with pytest.raises(InvalidParameter, match=r"multi-Krum selects m in \[1, n - f\]"):
        aggregate_rows(_rows(6), policy)
    assert policy.describe(10, weights=False) == (
        "multi-Krum (mean of the 9 agents closest to the others) of 10 agents, tolerating "
        "1 faulty agent")
    *_, share = aggregate_rows(_rows(10), policy)
    assert int(np.count_nonzero(share)) == policy.multi_krum_kept(10) == 9
    none = Policy(aggregator=Aggregator.MULTI_KRUM, f=0, multi_krum_m=4)
    assert none.describe(3, weights=False) == (
        "a multi-Krum averaging 4 agents needs at least 4 agents")


@pytest.mark.parametrize(("f", "kept"), [(0, None), (1, None), (0, 1), (1, 2), (1, 6),
                                         (2, 3), (0, 5)])
def test_the_words_need_as_many_agents_as_the_rule(f: int, kept: int | None) -> None:
    """For every count of agents, the words name a need exactly when the rule refuses, and
    otherwise the number of agents it averages is the number it keeps."""
    policy = Policy(aggregator=Aggregator.MULTI_KRUM, f=f, multi_krum_m=kept)
    for m in range(1, 12):
        words = policy.describe(m, weights=False)
        try:
            *_, share = aggregate_rows(_rows(m), policy)
        except SwarmVarError:
            assert "needs at least" in words, (m, words)
            continue
        assert "needs at least" not in words, (m, words)
        assert int(np.count_nonzero(share)) == policy.multi_krum_kept(m), (m, words)
        assert f"mean of the {policy.multi_krum_kept(m)} agents" in words
