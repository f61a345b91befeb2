"""A plug-in's files edited while the swarm runs: a recycled sandbox worker (which imports
the plug-in from its files again) runs it only while they hash to the digest the swarm
started with, the one its checkpoints record; otherwise a violation: held out, ledgered,
its breaker open."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from _halflife_plugin import EDITED, PLUGIN, SPEC, write_plugin  # tests/_halflife_plugin.py
from swarmvar import data, sandbox
from swarmvar.consensus import DEFAULT_POLICY
from swarmvar.errors import SandboxViolation
from swarmvar.sandbox import profiles
from swarmvar.swarm import Replay, RoleConfig, Swarm, sandboxing
from swarmvar.swarm.sandboxed import PLUGIN_CHANGED, SandboxedAgent
from swarmvar.swarm.sandboxing import SandboxSetup, plugin_digest

#: a worker recycled after 4 tasks (the realtime profile's 1,000, shortened)
SHORT = sandbox.Profile("short", cpu_seconds=30, wall_seconds=60, memory_bytes=3 << 30,
                        processes=64, file_bytes=1 << 20, tasks_per_worker=4)




def test_a_recycled_worker_does_not_run_an_edited_plugin(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    module = write_plugin(folder)
    start = plugin_digest(SPEC, [str(folder)])
    assert start is not None
    r = data.load("sp500").to_numpy()
    with sandbox.create("none", SHORT, plugin_paths=[str(folder)]) as box:
        agent = SandboxedAgent(box, plugin=SPEC, plugin_paths=[str(folder)],
                               source=start).fit(r[:200], seed=1)  # tasks 1, 2
        agent.update(r[200])  # the worker of the fit: it holds the start's code
        module.write_text(EDITED)
        with pytest.raises(SandboxViolation, match=r"house\.agents:HalfLife: its files "
                           r"changed since the swarm started .*not run") as caught:
            for x in r[201:210]:  # bounded: the worker is recycled after 4 tasks
                agent.update(x)
        assert caught.value.violation is PLUGIN_CHANGED
        module.write_text(PLUGIN)  # the start's code again: it runs
        assert np.isfinite(agent.update(r[210]))


def test_an_edited_plugin_is_held_out_after_its_worker_is_recycled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "plugins"
    module = write_plugin(folder)
    setup = SandboxSetup("none", (SPEC,), (str(folder),))
    monkeypatch.setitem(profiles.PROFILES, sandboxing.PROFILE,  # its workers recycled soon
                        dataclasses.replace(SHORT, name=sandboxing.PROFILE))
    series = data.load("sp500").iloc[:190]  # 40 beats: past the breaker's trial beats

    states: dict[int, str] = {}

    def edit(report: object) -> None:  # mid-run: the hosts' workers hold the start's code
        seq = int(getattr(report, "seq", 0))
        if seq == 1:
            module.write_text(EDITED)
        states[seq] = swarm.breakers.load("sandbox:sp500:HalfLife").state.value

    home = tmp_path / "h"
    with Swarm(("sp500",), home=home, agents=("NormalInverseGamma", "BayesianBootstrap"),
               policy=dataclasses.replace(DEFAULT_POLICY, f=0), window=150, fsync=False,
               roles=RoleConfig.quiet(), sandbox=setup) as swarm:
        swarm.start(series.iloc[:150])
        swarm.run(Replay(series, portfolio="sp500", start=150), beats=40, on_beat=edit)
        entries = list(swarm.ledger.entries(0))
    flows = [e.data["result"] for e in entries
             if e.kind == "flow" and e.data["flow"] == "sandbox"]
    assert flows and {tuple(f["agents"]) for f in flows} == {("HalfLife",)}
    assert "its files changed since the swarm started" in str(flows[0]["detail"])
    first = int(flows[0]["seq"])  # the first beat after the worker of the start recycled
    assert 1 < first < 8 and states[first] == "open"
    assert flows[0]["detail"]["violation"] == PLUGIN_CHANGED.value == "plugin_changed"
    beats = [e.data for e in entries if e.kind == "consensus" and "beat" in e.data]
    used = ["HalfLife" in b["levels"][0]["used"] for b in beats]
    assert len(used) == 40
    # the edited code never votes: not after its breaker's trial either (its refits run in
    # new workers, which get the start's digest from the swarm: without it they would
    # take the edited files' as theirs and let them vote)
    assert all(used[:first - 1]) and not any(used[first - 1:])
    assert "closed" not in [states[s] for s in range(first, 41)]


def test_a_worker_that_died_after_the_check_does_not_hand_back_edited_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checked worker dies before the task: the sandbox starts another, unchecked, for
    it; the files are checked after the task and its result is not taken."""
    folder = tmp_path / "plugins"
    module = write_plugin(folder)
    r = data.load("sp500").to_numpy()
    with sandbox.create("none", SHORT, plugin_paths=[str(folder)]) as box:
        agent = SandboxedAgent(box, plugin=SPEC, plugin_paths=[str(folder)],
                               source=plugin_digest(SPEC, [str(folder)]))
        agent.fit(r[:200], seed=1)
        state = agent.state()
        module.write_text(EDITED)
        monkeypatch.setattr(box, "start", lambda: None)  # the check sees the old worker
        proc = box._proc  # type: ignore[attr-defined]
        assert proc is not None
        proc.kill()  # ... which is dead by the time the task is sent
        proc.wait(timeout=10)
        before = box.workers_started
        with pytest.raises(SandboxViolation) as caught:
            agent.restore(state)  # a task that needs no handle: it runs in the new worker
        assert box.workers_started == before + 1  # it did run there, unchecked
        assert caught.value.violation is PLUGIN_CHANGED


def test_a_direct_user_is_checked_against_the_sandboxs_plugin_folders(
        tmp_path: Path) -> None:
    """No plugin_paths nor source given: the box's own folders are hashed (not ``sys.path``,
    where the plug-in is not found and every digest would be None, changed or not)."""
    folder = tmp_path / "plugins"
    module = write_plugin(folder)
    r = data.load("sp500").to_numpy()
    with sandbox.create("none", SHORT, plugin_paths=[str(folder)]) as box:
        agent = SandboxedAgent(box, plugin=SPEC).fit(r[:200], seed=1)  # its first worker
        module.write_text(EDITED)
        with pytest.raises(SandboxViolation, match="cannot|hash to") as caught:
            for x in r[200:210]:  # bounded: the worker is recycled after 4 tasks
                agent.update(x)
        assert caught.value.violation is PLUGIN_CHANGED
