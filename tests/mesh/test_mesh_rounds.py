"""Agreement rounds as a node runs them, against the consensus engine's in-process driver."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmvar.consensus.agreement import run_agreement
from swarmvar.errors import InvalidParameter, NotEnoughAgents, RefusedMessage
from swarmvar.mesh import AgreementRun

NODES = [f"n{i}" for i in range(7)]


def _network(values: list[float], f: int, rounds: int) -> list[AgreementRun]:
    """``len(values)`` honest nodes and ``f`` silent ones (never heard: NaN each round)."""
    everyone = NODES[: len(values) + f]
    runs = [AgreementRun("r", everyone, NODES[i], f, rounds, v, 1.0, 0.0)
            for i, v in enumerate(values)]
    now = 0.0
    while not runs[0].done:
        for a in runs:
            for b in runs:
                if a is not b:
                    b.receive(a.me, a.round, a.value)
        now += 2.0  # past the round timeout: the silent ones are not waited for
        for r in runs:
            assert r.ready(now)
            r.advance(now)
    return runs


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=5), st.integers(0, 1))
def test_mesh_rounds_equal_the_engines_rounds(values: list[float], f: int) -> None:
    ref = run_agreement(values, f, eps=1e-300, relative=False, max_rounds=5)
    runs = _network(values, f, ref.rounds or 1)
    got = np.array([r.value for r in runs])
    want = ref.values if ref.rounds else np.full(len(values), float(np.mean(values)))
    if ref.rounds:
        np.testing.assert_array_equal(got, want)  # the same numbers, bit for bit
    else:  # already agreed: one round keeps the common value
        np.testing.assert_allclose(got, want, rtol=1e-15)


def test_a_round_waits_for_missing_values_then_mutes_them() -> None:
    run = AgreementRun("r", NODES[:4], "n0", 1, 3, 1.0, round_timeout=0.5, now=0.0)
    run.receive("n1", 0, 2.0)
    run.receive("n2", 0, 3.0)
    assert not run.ready(0.1)
    assert run.ready(0.1, absent={"n3"})  # a dead node is not waited for
    assert run.ready(0.6)  # nor anyone after the timeout
    run.advance(0.6)
    assert run.muted == {"n3"}
    # trimmed with n3's value replaced by n0's own (1.0): sorted 1,1,2,3 -> mean(1, 2)
    assert run.value == 1.5
    run.receive("n1", 1, 2.0)
    run.receive("n2", 1, 2.0)
    assert run.ready(0.61)  # n3 is muted: not waited for again


def test_equivocation_and_bad_values_are_refused() -> None:
    run = AgreementRun("r", NODES[:4], "n0", 1, 3, 1.0, 0.5, 0.0)
    run.receive("n1", 0, 2.0)
    run.receive("n1", 0, 2.0)  # the same again is harmless
    with pytest.raises(RefusedMessage, match="equivocation"):
        run.receive("n1", 0, 5.0)
    for bad in (math.nan, math.inf):
        with pytest.raises(RefusedMessage, match="malformed"):
            run.receive("n2", 0, bad)
    with pytest.raises(RefusedMessage, match="malformed"):
        run.receive("eve", 0, 1.0)


def test_bad_runs_are_refused() -> None:
    with pytest.raises(NotEnoughAgents):
        AgreementRun("r", NODES[:3], "n0", 1, 3, 1.0, 0.5, 0.0)
    with pytest.raises(InvalidParameter):
        AgreementRun("r", NODES[:4], "n0", 1, 0, 1.0, 0.5, 0.0)
    with pytest.raises(InvalidParameter):
        AgreementRun("r", NODES[:4], "zz", 1, 3, 1.0, 0.5, 0.0)
    with pytest.raises(InvalidParameter):
        AgreementRun("r", NODES[:4], "n0", 1, 3, math.nan, 0.5, 0.0)
