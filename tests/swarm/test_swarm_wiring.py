"""``swarmvar run --arbiter`` and ``--sandbox``/``--plugin``: both wired into the beat."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from swarmvar.cli import build_app
from swarmvar.errors import InvalidParameter, SandboxError
from swarmvar.evolution import BreakerState, Database, SqliteBreakerStorage
from swarmvar.ledger import Ledger
from swarmvar.swarm import Replay
from swarmvar.swarm.sandboxed import seed_words
from swarmvar.swarm.sandboxing import SandboxSetup
from swarmvar.types import Action, BeatReport, Decision

from .conftest import TINY, TINY_POLICY, make_swarm

FAST = ["--window", "150", "--quiet"]
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                 reason="bubblewrap is not installed")


def _entries(home: Path) -> list[Any]:
    with Ledger.open(home) as ledger:
        assert ledger.verify_chain().ok
        return list(ledger.entries())


def _run(home: Path, *args: str) -> Any:
    return CliRunner().invoke(build_app(), ["run", "--home", str(home), *args])


# --- the arbiter ------------------------------------------------------------------------


def test_arbiter_records_pulses_decisions_and_feeds_the_pid_the_beat_time(tmp_path):
    home = tmp_path / "h"
    res = _run(home, "--data", "sp500", "--beats", "15", "--agents", "nig,bootstrap,student-t",
               "--arbiter", "--k-flows", "4", "--p-nodes", "5", "--t-threshold", "0.02",
               "--t1", "0.001", *FAST)
    assert res.exit_code == 0, res.output
    entries = _entries(home)
    pulses = [e.data for e in entries if e.kind == "pulse"]
    decisions = [e.data for e in entries if e.kind == "decision"]
    pids = [e.data["result"] for e in entries if e.kind == "flow" and e.data["flow"] == "pid"]
    assert [p["seq"] for p in pulses] == list(range(1, 16))
    assert [d["seq"] for d in decisions] == list(range(1, 16))
    assert {d["action"] for d in decisions} <= {a.value for a in Action}
    # decisions are recorded once (by the swarm), not also as the arbiter's own actions
    assert not [e for e in entries if e.kind == "action" and e.data["type"] == "noop"]
    budget = pulses[0]["t_lambda"]
    assert budget == pytest.approx(0.004211, abs=1e-6)
    for pulse, pid in zip(pulses, pids, strict=True):
        # the PID's error is the measured beat time against the pulse budget
        assert pulse["beat_seconds"] > 0
        assert pid["error"] == pytest.approx((pulse["beat_seconds"] - budget) / budget)
        assert pulse["late"] == (pulse["beat_seconds"] > budget)


def test_without_the_flag_there_is_no_arbiter(tmp_path):
    res = _run(tmp_path / "h", "--beats", "3", "--agents", "nig,bootstrap,student-t", *FAST)
    assert res.exit_code == 0, res.output
    kinds = {e.kind for e in _entries(tmp_path / "h")}
    assert "pulse" not in kinds and "decision" not in kinds


@pytest.mark.parametrize("bad", [["--k-flows", "0.2"], ["--k-flows", "1", "--p-nodes", "1"],
                                 ["--p-nodes", "-5"], ["--t1", "nan"], ["--t-threshold", "inf"]])
def test_bad_arbiter_options_are_usage_errors(tmp_path, bad):
    res = _run(tmp_path / "h", "--beats", "2", "--arbiter", *bad, *FAST)
    assert res.exit_code == 2, res.output
    assert not (tmp_path / "h").exists()  # refused before the home is touched


class _Optimizer:
    """An observer that asks for a refit of every agent at every beat (APPLY_OPTIMIZE),
    with a fixed optional-work level: what the runtime does with the arbiter's PID."""

    def __init__(self, work: float) -> None:
        self.work = work

    def observe(self, report: BeatReport) -> Sequence[Decision]:
        return (Decision(Action.APPLY_OPTIMIZE, report.portfolio, report.seq, ("*",), {}, 0.0,
                         "test"),)

    def excluded(self, portfolio: str) -> frozenset[str]:
        return frozenset()

    def weight_factors(self, portfolio: str) -> Mapping[str, float]:
        return {}

    def optional_work(self, portfolio: str) -> float:
        return self.work


@pytest.mark.parametrize(("work", "honoured"), [(1.0, 8), (0.25, 2), (0.0, 0)])
def test_optional_work_paces_the_arbiters_refits(tmp_path, sp500, work, honoured):
    with make_swarm(tmp_path / "h", agents=TINY, policy=TINY_POLICY, window=150,
                    refit_every=1000, observers=[_Optimizer(work)]) as swarm:
        swarm.start(sp500.iloc[:150])
        swarm.run(Replay(sp500, portfolio="sp500", start=150), beats=8)
    beats = [e.data["beat"] for e in _entries(tmp_path / "h")
             if e.kind == "consensus" and "beat" in e.data]
    assert sum(len(b["optimize"]) for b in beats) == honoured
    assert sum(len(b.get("optimize_deferred", [])) for b in beats) == 8 - honoured


# --- sandboxes ----------------------------------------------------------------------


@needs_bwrap
def test_sandboxed_agents_give_the_same_consensus_bit_for_bit(tmp_path, sp500):
    """NIG + bootstrap (+ StudentT, whose refit is a warm start) on a short replay with two
    refits, in process and each agent in its own bwrap sandbox: the same levels,
    intervals, weights and breaches (the seeds' words cross the sandbox, so the bootstrap
    draws the same resamples; the refit inside is the agent's own)."""
    def levels(home: Path, setup: SandboxSetup | None) -> list[Any]:
        with make_swarm(home, agents=(*TINY, "StudentT"), policy=TINY_POLICY, window=150,
                        refit_every=10,
                        sandbox=setup) as swarm:
            swarm.start(sp500.iloc[:150])
            swarm.run(Replay(sp500, portfolio="sp500", start=150), beats=25)
        return [(e.data["levels"], e.data["breaches"]) for e in _entries(home)
                if e.kind == "consensus"]

    outside = levels(tmp_path / "in", None)
    inside = levels(tmp_path / "box", SandboxSetup("bwrap"))
    assert len(inside) == 25 and all(lv for lv, _ in inside)
    assert inside == outside
    setup = [e.data for e in _entries(tmp_path / "box") if e.kind == "action"
             and e.data["type"] == "sandbox"]
    assert setup and setup[0]["details"]["backend"] == "bwrap"


PLUGINS = """
    import socket

    from swarmvar.models import NormalInverseGamma


    class HalfLife(NormalInverseGamma):
        name = "HalfLife"

        def __init__(self, forgetting=0.97):
            super().__init__(forgetting=forgetting)


    class Sneaky(NormalInverseGamma):
        name = "Sneaky"

        def update(self, r):
            socket.create_connection(("127.0.0.1", 9), timeout=0.1)  # phones home
            return super().update(r)
"""


def _plugins(tmp_path):
    """A plug-in folder holding PLUGINS as ``house_agents``."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "house_agents.py").write_text(textwrap.dedent(PLUGINS))
    return folder


@needs_bwrap
def test_plugins_run_in_bwrap_and_a_violating_one_is_held_out(tmp_path):
    folder = _plugins(tmp_path)
    home = tmp_path / "h"
    res = _run(home, "--beats", "3", "--agents", "nig,bootstrap", "--sandbox", "bwrap",
               "--plugin", "house_agents:HalfLife", "--plugin", "house_agents:Sneaky",
               "--plugin-path", str(folder), *FAST)
    assert res.exit_code == 0, res.output
    entries = _entries(home)
    signed = [{x["agent_id"] for x in e.data["estimates"]} for e in entries
              if e.kind == "estimate"]
    assert all("HalfLife" in s for s in signed)  # the good plug-in votes every beat
    beats = [e.data for e in entries if e.kind == "consensus" and "beat" in e.data]
    assert len(beats) == 3
    for b in beats:
        for level in b["levels"]:
            assert "Sneaky" not in level["used"] and "Sneaky" not in level["weights"]
            assert (level["available"], level["total"]) == (3, 4)
    violations = [e.data["result"] for e in entries if e.kind == "flow"
                  and e.data["flow"] == "sandbox"]
    assert violations and violations[0]["seq"] == 1
    assert {tuple(v["agents"]) for v in violations} == {("Sneaky",)}
    assert all(v["detail"]["violation"] == "network" for v in violations)
    db = Database(home)
    try:
        breaker = SqliteBreakerStorage(db).load("sandbox:sp500:Sneaky")
    finally:
        db.close()
    assert breaker.state is BreakerState.OPEN
    assert "HalfLife" not in __import__("sys").modules


def test_a_plugin_without_a_sandbox_is_refused(tmp_path):
    res = _run(tmp_path / "h", "--beats", "2", "--plugin", "house_agents:HalfLife", *FAST)
    assert res.exit_code == 2 and "sandbox" in res.output
    assert not (tmp_path / "h").exists()
    for bad in (["--sandbox", "docker"], ["--sandbox", "bwrap", "--plugin", "nocolon"],
                ["--sandbox", "bwrap", "--plugin-path", str(tmp_path / "missing")]):
        assert _run(tmp_path / "h", "--beats", "2", *bad, *FAST).exit_code == 2


def test_sandbox_none_with_a_plugin_is_warned_in_the_ledger(tmp_path):
    folder = _plugins(tmp_path)
    home = tmp_path / "h"
    res = _run(home, "--beats", "3", "--agents", "nig,bootstrap", "--sandbox", "none",
               "--plugin", "house_agents:HalfLife", "--plugin-path", str(folder), *FAST)
    assert res.exit_code == 0, res.output
    warned = [e.data["details"] for e in _entries(home) if e.kind == "action"
              and e.data["type"] == "sandbox-warning"]
    assert warned and "HalfLife" in warned[0]["warning"] and warned[0]["backend"] == "none"


JUMPY = """
    import socket

    from swarmvar.models import NormalInverseGamma


    class Jumpy(NormalInverseGamma):
        name = "Jumpy"

        def update(self, r):  # NIG's fit does not go through update
            if r > 0.02:  # a big up day: phones home
                socket.socket()
            return super().update(r)
"""


@needs_bwrap
def test_a_violator_is_held_out_then_back_after_a_clean_trial(tmp_path, sp500):
    """Jumpy breaks its sandbox on 1999-08-13 only (the first return above 2%): held out
    that beat, kept out while its breaker is open (five days of data time), back after
    one clean trial beat; the ledger says each step."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "jumpy.py").write_text(textwrap.dedent(JUMPY))
    setup = SandboxSetup("bwrap", ("jumpy:Jumpy",), (str(folder),))
    home = tmp_path / "h"
    with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=150, sandbox=setup) as swarm:
        swarm.start(sp500.iloc[:150])
        swarm.run(Replay(sp500, portfolio="sp500", start=150), beats=12)
        breaker = swarm.breakers.load("sandbox:sp500:Jumpy")
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0
    beats = {e.data["beat"]["as_of"][:10]: e.data for e in _entries(home)
             if e.kind == "consensus" and "beat" in e.data}
    entries = _entries(home)
    violations = [e.data["result"] for e in entries
                  if e.kind == "flow" and e.data["flow"] == "sandbox"]
    assert [(v["seq"], v["agents"]) for v in violations] == [(4, ["Jumpy"])]

    def voted(day: str) -> bool:
        return "Jumpy" in beats[day]["levels"][0]["used"]

    assert voted("1999-08-12") and not voted("1999-08-13")
    assert beats["1999-08-13"]["levels"][0]["available"] == 2
    assert not voted("1999-08-16") and not voted("1999-08-17")  # breaker open
    assert "Jumpy" in beats["1999-08-16"]["beat"]["excluded"]
    assert voted("1999-08-18") and voted("1999-08-25")  # trial (5 days on), then closed


@needs_bwrap
def test_a_sandboxed_swarm_resumes_exactly(tmp_path, sp500):
    """Checkpoints rebase the agents inside their sandboxes and a restart restores them
    there: 5 + 4 beats in bwrap equal 9 uninterrupted beats in process."""
    def run(home: Path, setup: SandboxSetup | None, beats: int) -> None:
        with make_swarm(home, agents=TINY, policy=TINY_POLICY, window=150, refit_every=4,
                        checkpoint_every=3, sandbox=setup) as swarm:
            swarm.start(sp500.iloc[:150])
            swarm.run(Replay(sp500, portfolio="sp500", start=150), beats=beats)

    run(tmp_path / "once", None, 9)
    run(tmp_path / "twice", SandboxSetup("bwrap"), 5)
    run(tmp_path / "twice", SandboxSetup("bwrap"), 4)

    def levels(home: Path) -> list[Any]:
        return [e.data["levels"] for e in _entries(home) if e.kind == "consensus"]

    assert len(levels(tmp_path / "twice")) == 9
    assert levels(tmp_path / "twice") == levels(tmp_path / "once")


@settings(max_examples=60, deadline=None)
@given(backend=st.one_of(st.none(), st.sampled_from(["none", "bwrap", "e2b"]),
                        st.text(max_size=8)),
       plugins=st.lists(st.text(max_size=20), max_size=3))
def test_sandbox_setups_are_valid_or_refused_clearly(backend, plugins):
    try:
        setup = SandboxSetup(backend, tuple(plugins))
    except InvalidParameter as exc:
        assert str(exc)
        return
    assert setup.backend in (None, "none", "bwrap", "e2b")
    assert not plugins or setup.backend in ("none", "bwrap")
    assert all(spec.partition(":")[2].isidentifier() for spec in setup.plugins)


@settings(max_examples=60, deadline=None)
@given(seed=st.one_of(st.integers(-5, 2**40), st.floats(), st.booleans(), st.text(max_size=3),
                      st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4)))
def test_seeds_cross_the_sandbox_as_words_or_are_refused(seed):
    if isinstance(seed, list):
        number, words = seed_words(np.random.default_rng(seed))
        assert number == 0 and np.random.default_rng(words).random() == \
            np.random.default_rng(seed).random()
        return
    try:
        number, words = seed_words(seed)
    except InvalidParameter:
        assert isinstance(seed, (bool, float, str)) or seed < 0
        return
    assert number == seed and words is None


def test_an_unusable_sandbox_backend_is_a_usage_error(tmp_path, monkeypatch):
    """E2B without its key (and bubblewrap with the home inside a bind) fail before any
    agent is fitted, instead of silently taking every agent out of the beat."""
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    res = _run(tmp_path / "h", "--beats", "2", "--sandbox", "e2b", *FAST)
    assert res.exit_code == 2, res.output
    if shutil.which("bwrap") is not None:
        import swarmvar

        inside = Path(swarmvar.__file__).parent / "__never_a_home__"
        with pytest.raises(SandboxError):
            SandboxSetup("bwrap").probe(str(inside))
        assert not inside.exists()
