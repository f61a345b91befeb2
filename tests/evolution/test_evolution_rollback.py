"""Rollback points: snapshot, atomic restore (with an injected mid-write fault), limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmvar.errors import CapacityExceeded
from swarmvar.evolution import (
    EvolutionConfig,
    RollbackConfig,
    StateConfig,
    UnknownRollbackPoint,
    UnknownState,
    open_home,
)
from swarmvar.evolution.errors import CorruptStore, VariantStoreFailed


def home_with_agents(tmp_path: Path, n: int = 6, **cfg):
    config = EvolutionConfig(state=StateConfig(fsync=False), **cfg)
    home = open_home(tmp_path, config)
    for i in range(n):
        home.assignments.assign(f"a{i}", "variant-old")
        home.states.put(f"a{i}", f"old state {i}".encode(), now=1.0)
    return home


def snapshot(home):
    return home.assignments.all(), {a: home.states.ref(a).version
                                    for a in home.assignments.all()}


def test_rollback_restores_assignments_and_states(tmp_path: Path) -> None:
    home = home_with_agents(tmp_path)
    before = snapshot(home)
    point = home.points.create("before v2", now=10.0)
    for i in range(6):
        home.assignments.assign(f"a{i}", "variant-new")
        home.states.put(f"a{i}", f"new state {i}".encode(), now=11.0)
    home.assignments.assign("late", "variant-new")
    home.points.rollback(point.id)
    assert snapshot(home) == before
    assert home.states.get("a3") == b"old state 3"
    assert [r.version for r in home.states.versions("a3")] == [1, 2]  # nothing lost
    assert home.points.protected_versions("a3") == {1}


def test_rollback_is_atomic_under_a_mid_write_fault(tmp_path: Path) -> None:
    home = home_with_agents(tmp_path)
    point = home.points.create("p", now=10.0)
    for i in range(6):
        home.assignments.assign(f"a{i}", "variant-new")
        home.states.put(f"a{i}", b"new", now=11.0)
    after = snapshot(home)
    # a real fault inside SQLite, half-way through the restore of state pointers
    home.db.read("CREATE TRIGGER boom BEFORE UPDATE ON state_current WHEN NEW.agent_id='a4' "
                 "BEGIN SELECT RAISE(ABORT, 'disk went away'); END")
    # (RAISE(ABORT) is SQLITE_CONSTRAINT: not damage, the neutral VariantStoreFailed)
    with pytest.raises(VariantStoreFailed, match="disk went away") as got:
        home.points.rollback(point.id)
    assert not isinstance(got.value, CorruptStore) and "nothing was changed" in str(got.value)
    assert snapshot(home) == after  # neither assignments nor states moved
    home.db.read("DROP TRIGGER boom")
    home.points.rollback(point.id)
    assert home.assignments.get("a0") == "variant-old"


def test_rollback_refuses_when_a_state_was_pruned(tmp_path: Path) -> None:
    home = home_with_agents(tmp_path, n=2)
    point = home.points.create("p", now=10.0)
    home.states.put("a1", b"new", now=11.0)
    home.assignments.assign("a0", "variant-new")
    home.states.prune("a1", keep=1)  # not protecting the point's version
    with pytest.raises(UnknownState, match="version 1 of agent 'a1'"):
        home.points.rollback(point.id)
    assert home.assignments.get("a0") == "variant-new"
    with pytest.raises(UnknownRollbackPoint):
        home.points.rollback("nope")


def test_capacity_and_retention(tmp_path: Path) -> None:
    home = home_with_agents(tmp_path, n=1, rollback=RollbackConfig(max_points=3,
                                                                   retention_s=100.0))
    for t in (0.0, 50.0, 90.0):
        home.points.create(f"t{t}", now=t)
    with pytest.raises(CapacityExceeded, match="max_points=3"):
        home.points.create("full", now=95.0)
    assert len(home.points.list()) == 3
    home.points.create("expired one dropped", now=120.0)  # t=0 is past 100 s
    assert [p.label for p in home.points.list()] == ["t50.0", "t90.0", "expired one dropped"]
    assert home.points.expire(now=1000.0) == 3
