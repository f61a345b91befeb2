"""The swarm's equal-weight fallback (no track record yet) changes the weighting alone.

Was: the fallback rebuilt the policy from six of its fields, so a policy's
``min_available``, ``on_bound``, ``drift``, ``multi_krum_m``, ``window``, ``loss`` and
``eta`` went back to their defaults (a DEGRADE policy refused, a multi-Krum of 3 became
one of ``m - f``) whenever no track record was given.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import swarmvar.swarm.consensus as swarm_consensus_module
from swarmvar.consensus import Policy, Weighting
from swarmvar.consensus.partition import BoundMode, StalenessBound
from swarmvar.consensus.robust import Aggregator
from swarmvar.consensus.weights import Loss
from swarmvar.swarm.consensus import swarm_consensus
from swarmvar.swarm.local import AgentRun
from swarmvar.types import Forecast, RiskMeasure

#: Every field away from its default (the weighting too: the fallback replaces it).
POLICY = Policy(aggregator=Aggregator.MULTI_KRUM, f=2, weighting=Weighting.TRACK_RECORD,
                loss=Loss.PINBALL, window=30, eta=0.7,
                staleness=StalenessBound(max_versions=3, max_age=60.0), min_available=0.5,
                on_bound=BoundMode.DEGRADE, interval_mass=0.8, drift=0.1, multi_krum_m=3,
                f_steps=((9, 3),))
KEPT = ("aggregator", "f", "loss", "window", "eta", "staleness", "min_available",
        "on_bound", "interval_mass", "drift", "multi_krum_m", "f_steps")


def _run(name: str, var: float) -> AgentRun:
    level = RiskMeasure(0.99, var, 1.3 * var, (0.9 * var, 1.1 * var),
                        (1.2 * var, 1.4 * var))
    return AgentRun(name, Forecast(name, 1, (level,), interval_mass=0.8), None, 0.1)


def test_a_policy_without_a_track_record_keeps_all_but_its_weighting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = Policy()
    assert all(getattr(POLICY, name) != getattr(default, name) for name in KEPT)
    used: list[Policy] = []
    real = swarm_consensus_module.combine

    def recording(signed: Any, policy: Policy, **kw: Any) -> Any:
        used.append(policy)
        return real(signed, policy, **kw)

    monkeypatch.setattr(swarm_consensus_module, "combine", recording)
    names = [f"a{i}" for i in range(7)]  # multi-Krum with f = 2 needs 7
    runs = [_run(n, 0.02 + 0.001 * i) for i, n in enumerate(names)]
    keys = {n: Ed25519PrivateKey.generate() for n in names}
    out = swarm_consensus(runs, keys, as_of=datetime(2026, 1, 5, tzinfo=UTC), seq=1,
                          portfolio="p", horizon=1, policy=POLICY, track=None)
    assert len(used) == 1 and len(out) == 1
    assert used[0].weighting is Weighting.EQUAL
    assert {name: getattr(used[0], name) for name in KEPT} == {
        name: getattr(POLICY, name) for name in KEPT}
    assert used[0] == dataclasses.replace(POLICY, weighting=Weighting.EQUAL)
    assert out[0].method == used[0].method
