"""A plug-in edited while the swarm runs, met in a new sandbox worker outside a beat: at a
checkpoint's rebase (the agent restored in place) and as a lost host's portfolios are
restored. Either is the beat's plug-in-changed violation: the agent held out, the
violation ledgered, its breaker opened; the run goes on and the edited code never votes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from _halflife_plugin import EDITED, SPEC, write_plugin  # tests/_halflife_plugin.py
from swarmvar import data, sandbox
from swarmvar.consensus import DEFAULT_POLICY
from swarmvar.errors import Violation
from swarmvar.sandbox import profiles
from swarmvar.swarm import Replay, RoleConfig, Swarm, sandboxing
from swarmvar.swarm.executors import HostLost
from swarmvar.swarm.sandboxing import SandboxSetup

from .test_swarm_restore_async import _Faulty


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, SandboxSetup]:
    folder = tmp_path / "plugins"
    module = write_plugin(folder)
    # its workers recycled after 4 tasks (the realtime profile's 1,000, shortened)
    monkeypatch.setitem(profiles.PROFILES, sandboxing.PROFILE, sandbox.Profile(
        sandboxing.PROFILE, cpu_seconds=30, wall_seconds=60, memory_bytes=3 << 30,
        processes=64, file_bytes=1 << 20, tasks_per_worker=4))
    return module, SandboxSetup("none", (SPEC,), (str(folder),))


def _edit(module: Path) -> None:
    module.write_text(EDITED)


def _swarm(home: Path, setup: SandboxSetup, **kw: Any) -> Swarm:
    return Swarm(("sp500",), home=home, agents=("NormalInverseGamma", "BayesianBootstrap"),
                 policy=dataclasses.replace(DEFAULT_POLICY, f=0), window=150, fsync=False,
                 roles=RoleConfig.quiet(), sandbox=setup, **kw)


def _ledgered(swarm: Swarm) -> tuple[list[dict[str, Any]], list[bool]]:
    entries = list(swarm.ledger.entries(0))
    flows = [e.data["result"] for e in entries
             if e.kind == "flow" and e.data["flow"] == "sandbox"]
    beats = [e.data for e in entries if e.kind == "consensus" and "beat" in e.data]
    return flows, ["HalfLife" in b["levels"][0]["used"] for b in beats]


def _held_out(flows: list[dict[str, Any]], used: list[bool], beats: int) -> None:
    assert len(used) == beats  # the run went on
    assert flows and {tuple(f["agents"]) for f in flows} == {("HalfLife",)}
    assert "its files changed since the swarm started" in str(flows[0]["detail"])
    assert flows[0]["detail"]["violation"] == Violation.PLUGIN_CHANGED.value
    first = int(flows[0]["seq"])
    assert not any(used[first - 1:])  # the edited code never votes


def test_a_checkpoints_rebase_in_a_new_worker_holds_an_edited_plugin_out(
        tmp_path: Path, plugin: tuple[Path, SandboxSetup]) -> None:
    """Every beat checkpointed: the rebase (a restore task) meets the recycled worker."""
    module, setup = plugin
    series = data.load("sp500").iloc[:165]

    def edit(report: object) -> None:
        if int(getattr(report, "seq", 0)) == 1:
            _edit(module)

    with _swarm(tmp_path / "h", setup, checkpoint_every=1) as swarm:
        swarm.start(series.iloc[:150])
        swarm.run(Replay(series, portfolio="sp500", start=150), beats=15, on_beat=edit)
        flows, used = _ledgered(swarm)
        state = swarm.breakers.load("sandbox:sp500:HalfLife").state.value
    _held_out(flows, used, 15)
    # its breaker's trial beats saw no violation, but the agent ran in none: not closed
    assert state in ("open", "half_open")


def test_a_lost_hosts_restore_holds_an_edited_plugin_out(
        tmp_path: Path, plugin: tuple[Path, SandboxSetup]) -> None:
    """The host dies after the edit: its portfolio is restored in new workers, which import
    the edited files; the portfolio is restored without the agent and beats on."""
    module, setup = plugin
    series = data.load("sp500").iloc[:165]
    executor = _Faulty(workers=0)

    def kill(inputs: object) -> object:
        executor.fault = None
        raise HostLost("host died", ["sp500"], {}, {})

    def edit(report: object) -> None:
        if int(getattr(report, "seq", 0)) == 2:
            _edit(module)
            executor.fault = kill

    with _swarm(tmp_path / "h", setup, executor=executor, checkpoint_every=1) as swarm:
        swarm.start(series.iloc[:150])
        swarm.run(Replay(series, portfolio="sp500", start=150), on_beat=edit)
        flows, used = _ledgered(swarm)
    _held_out(flows, used, 15)  # every tick beaten: the portfolio did not stop
    assert all(used[:2])  # the start's code voted before the edit


def test_an_unreadable_agent_state_still_refuses_a_resume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a sandbox's refusal is set aside at a restore: a built-in agent's state the code
    cannot read (its format moved on) refuses the resume, as before, instead of the agent
    silently missing from every beat after it."""
    import swarmvar.models.base as base
    from swarmvar.errors import InvalidState
    from swarmvar.swarm import Replay, RoleConfig, Swarm

    s = data.load("sp500").iloc[:160]

    def made() -> Swarm:
        return Swarm(("sp500",), home=tmp_path / "h", agents=("NormalInverseGamma",
                     "BayesianBootstrap"), policy=dataclasses.replace(DEFAULT_POLICY, f=0),
                     window=150, fsync=False, roles=RoleConfig.quiet(), checkpoint_every=1)

    with made() as sw:
        sw.start(s.iloc[:150])
        sw.run(Replay(s, portfolio="sp500", start=150), beats=3)
    monkeypatch.setattr(base, "STATE_FORMAT", base.STATE_FORMAT + 1)
    with pytest.raises(InvalidState, match="format"), made() as sw:
        sw.start(s.iloc[:150])
