"""``robust_read`` of the statistics CRDT: a contribution of no data carries no sums."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.consensus.partition import Contribution, NormalStats, StatsCRDT
from swarmvar.consensus.robust_stats import robust_read


def _honest(seed: int, replicas: int = 5) -> dict[str, Contribution]:
    rng = np.random.default_rng(seed)
    return {f"n{k}": Contribution(1, NormalStats.of(rng.normal(0.0, 0.01, 200)))
            for k in range(replicas)}


@settings(max_examples=40, deadline=None)
@given(total=st.floats(-1e12, 1e12, allow_nan=False), total_sq=st.floats(0, 1e24),
       f=st.sampled_from([0, 1]))
def test_a_count_zero_contribution_with_sums_moves_nothing(total: float, total_sq: float,
                                                           f: int) -> None:
    honest = _honest(3)
    clean = robust_read(StatsCRDT(dict(honest)), f)
    lie = StatsCRDT({**honest, "liar": Contribution(7, NormalStats(0, total, total_sq))})
    read = robust_read(lie, f)
    assert read.stats == clean.stats
    if total != 0 or total_sq != 0:
        assert "liar" in read.bounded
    assert read.contributions["liar"] == NormalStats(0, 0.0, 0.0)


def test_an_honest_empty_replica_is_not_bounded() -> None:
    crdt = StatsCRDT({**_honest(4), "idle": Contribution(0, NormalStats(0, 0.0, 0.0))})
    read = robust_read(crdt, 1)
    assert read.bounded == () and read.stats == crdt.read()


@pytest.mark.parametrize("f", [0, 1])
def test_the_unbounded_paths_refuse_the_lie_too(f: int) -> None:
    # f = 0, and too few holders for the bounds: the exact read, but without the lie
    honest = dict(list(_honest(5, replicas=2).items()))
    lie = StatsCRDT({**honest, "liar": Contribution(1, NormalStats(0, -1e6, 1e12))})
    assert robust_read(lie, f).stats == StatsCRDT(honest).read()


def test_honest_replicas_are_almost_never_bounded() -> None:
    """The slacks' design point (docs/mesh.md): Normal daily returns, 80-120 observations
    per replica, 4-7 replicas, f = 1 — an honest replica is pulled into the bounds in a
    tiny share of draws (3 of 21,820 with this seed; the test allows 0.25%)."""
    rng = np.random.default_rng(11)
    draws = bounded = 0
    for _ in range(4000):
        k = int(rng.integers(4, 8))
        crdt = StatsCRDT({f"n{j}": Contribution(1, NormalStats.of(
            rng.normal(0.0, 0.01, int(rng.integers(80, 121))))) for j in range(k)})
        read = robust_read(crdt, 1)
        draws += k
        bounded += len(read.bounded)
    assert bounded / draws <= 0.0025, f"{bounded} of {draws} honest replicas bounded"
