"""The arbiter in the swarm's checkpoints: after a stop or kill -9 and a restart it decides
exactly as an uninterrupted run (same beats, same recorded beat times)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _kill_at import kill_at  # tests/_kill_at.py (on the path: tests/conftest.py)
from swarmvar.arbiter import Arbiter
from swarmvar.errors import InvalidState
from swarmvar.evolution import BreakerState
from swarmvar.ledger import Ledger
from swarmvar.swarm import Replay

from . import _arbiter_child as child

CHILD = Path(child.__file__)


def _record(home: Path) -> dict[int, dict[str, Any]]:
    """Per beat: consensus, recorded time, the arbiter's pulse, PID step and decisions."""
    with Ledger.open(home) as ledger:
        assert ledger.verify_chain().ok
        out: dict[int, dict[str, Any]] = {}
        for e in ledger.entries():
            d = e.data
            if e.kind == "consensus" and "beat" in d:
                seq = d["beat"]["seq"]
                assert "consensus" not in out.get(seq, {}), f"beat {seq} recorded twice"
                out.setdefault(seq, {})["consensus"] = (
                    [(c["var"], c["es"], c["var_interval"]) for c in d["levels"]],
                    d["beat"]["beat_seconds"], d["beat"].get("late", False),
                    d["beat"]["excluded"], d["beat"]["factors"])
            elif e.kind == "pulse":
                assert "pulse" not in out.get(d["seq"], {}), f"pulse {d['seq']} twice"
                out.setdefault(d["seq"], {})["pulse"] = (d["beat_seconds"], d["late"])
            elif e.kind == "flow" and d["flow"] == "pid":
                r = d["result"]
                out.setdefault(r["seq"], {})["pid"] = (r["error"], r["integral"], r["after"])
            elif e.kind == "decision":
                out.setdefault(d["seq"], {}).setdefault("decisions", []).append(
                    (d["action"], d["agents"], d["threat"], d["signals"], d["weights"]))
        return out


def _reference(tmp_path: Path, days: int) -> dict[int, dict[str, Any]]:
    home = tmp_path / "reference"
    child.run(home, days)
    return _record(home)


def test_stop_and_resume_decide_as_an_uninterrupted_run(tmp_path: Path) -> None:
    """Stops between checkpoints (every 7 beats): the arbiter is restored and re-fed the
    replayed beats with their recorded times; its PID, late beats and decisions match."""
    days = 30
    expected = _reference(tmp_path, days)
    assert sorted(expected) == list(range(1, days + 1))
    assert all(set(v) == {"consensus", "pulse", "pid", "decisions"} for v in expected.values())
    late = [s for s, v in expected.items() if v["pulse"][1]]
    assert 0 < len(late) < days and all(expected[s]["consensus"][2] for s in late)
    home = tmp_path / "stop-go"
    for stop in (5, 11, 23, days):
        child.run(home, days, beats=stop - _done(home))
    assert _record(home) == expected


def _done(home: Path) -> int:
    return len(_record(home)) if (home / "ledger.sqlite").exists() else 0


def _spawn(home: Path, days: int, hook: str, marker: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(marker.with_suffix(".err"), "wb") as err:
        return subprocess.Popen([sys.executable, str(CHILD), str(home), str(days), hook,
                                 str(marker)], env=env, stdout=subprocess.DEVNULL, stderr=err)


def _battery(tmp_path: Path, days: int, plan: list[str], seed: int) -> None:
    expected = _reference(tmp_path, days)
    home = tmp_path / "killed"
    rng = random.Random(seed)
    kills = 0
    for step, kind in enumerate(plan):
        marker = tmp_path / f"marker-{step}"
        proc = _spawn(home, days, kind if kind != "random" else "none", marker)
        kills += kill_at(proc, kind, marker, rng, (0.5, 2.5))
        got = _record(home)
        done = sorted(s for s, v in got.items() if "consensus" in v)
        assert done == list(range(1, len(done) + 1))
        assert all(got[s] == expected[s] for s in done)
        assert set(got) == set(done)  # no arbiter entry without its beat
    final = _spawn(home, days, "none", tmp_path / "marker-final")
    final.wait(timeout=300)
    assert final.returncode == 0, (tmp_path / "marker-final.err").read_text()[-2000:]
    assert _record(home) == expected
    assert kills >= (2 * len(plan)) // 3


def test_kill_minus_nine_the_arbiter_resumes_where_it_was(tmp_path: Path) -> None:
    """Three kills (inside a checkpoint write, inside a ledger transaction, at random): each
    beat's pulse, PID step and decision is in the ledger once and equals the reference."""
    _battery(tmp_path, 40, ["checkpoint", "ledger", "random"], seed=7)


@pytest.mark.slow
def test_kill_minus_nine_battery_of_12_with_the_arbiter(tmp_path: Path) -> None:
    plan = ["random"] * 4 + ["checkpoint"] * 4 + ["ledger"] * 4
    random.Random(8).shuffle(plan)
    _battery(tmp_path, 120, plan, seed=9)


def test_quarantine_breakers_and_operator_actions_resume(tmp_path: Path) -> None:
    """An operator's quarantine between checkpoints is replayed; breakers are restored."""
    r = child.load("sp500").iloc[: child.WINDOW + 12]
    outs = {}
    for name, stops in (("straight", (12,)), ("stopped", (3, 12))):
        home = tmp_path / name
        for stop in stops:
            fake = child.FakeTime()
            swarm, arbiter, cadence = child.paced_swarm(home, fake, checkpoint_every=4)
            with swarm, arbiter:
                swarm.start({"sp500": r.iloc[: child.WINDOW]})
                source = Replay(r, portfolio="sp500", start=child.WINDOW)
                if swarm.seq["sp500"] < 2:
                    swarm.run(source, pace=cadence, beats=2)
                    arbiter.quarantine_now("sp500", "NormalInverseGamma")
                    source = Replay(r, portfolio="sp500", start=child.WINDOW)
                swarm.run(source, pace=cadence, beats=stop - swarm.seq["sp500"])
                snap = arbiter.breakers.load("arbiter:sp500:NormalInverseGamma")
                outs[name] = (snap, arbiter.state("sp500"), arbiter.excluded("sp500"))
        assert _record(home)[3]["consensus"][3] == ["NormalInverseGamma"]
    assert outs["stopped"] == outs["straight"]
    assert outs["straight"][0].state is not BreakerState.CLOSED


def test_a_bad_arbiter_state_is_refused() -> None:
    arbiter = Arbiter()
    blob = arbiter.checkpoint_state("sp500")
    Arbiter().restore_state("sp500", blob)  # a fresh state round-trips

    @settings(max_examples=40, deadline=None)
    @given(st.integers(0, len(blob) - 1), st.integers(1, 255))
    def flipped(i: int, x: int) -> None:
        bad = bytearray(blob)
        bad[i] ^= x
        with pytest.raises(InvalidState):
            Arbiter().restore_state("sp500", bytes(bad))

    flipped()
    for bad in (b"", blob[: len(blob) // 2], b"x" * 100):
        with pytest.raises(InvalidState):
            Arbiter().restore_state("sp500", bad)


def test_an_operator_action_before_a_portfolios_checkpoint_is_not_applied_twice(
        tmp_path: Path) -> None:
    """Two portfolios checkpointed at different ledger sizes: the replay starts at the
    older mark, yet an operator action already inside the newer checkpoint is not redone."""
    from swarmvar.swarm import Swarm
    from swarmvar.swarm.ticks import as_utc
    from swarmvar.types import Tick

    r = child.load("sp500").iloc[: child.WINDOW + 10]
    days = list(r.iloc[child.WINDOW:].items())
    agent = "NormalInverseGamma"

    def session(home: Path, plan: list[str]) -> dict[str, Any]:
        swarm = Swarm(["a", "b"], home=home, **{**child.SETTINGS, "checkpoint_every": 4,
                                                 "ledger_batch": 1})
        arbiter = Arbiter.from_options(record_decisions=False)
        arbiter.ledger, arbiter.breakers = swarm.beat_entries, swarm.breakers
        swarm.add_observer(arbiter)
        with swarm, arbiter:
            history = r.iloc[: child.WINDOW]
            swarm.start({"a": history, "b": history})
            for what in plan:
                if what == "quarantine":
                    arbiter.quarantine_now("a", agent)
                    arbiter.quarantine_now("b", agent)
                    continue
                day, value = days[swarm.seq[what]]
                swarm.step(Tick(what, as_utc(day), value=float(value)))
            return {p: arbiter.breakers.load(f"arbiter:{p}:{agent}") for p in ("a", "b")}

    plan = ["b", "b", "a", "quarantine", "a", "a", "a", "b"]  # a checkpoints at its beat 4
    straight = session(tmp_path / "straight", [*plan, "a", "b"])
    session(tmp_path / "stopped", plan)
    resumed = session(tmp_path / "stopped", ["a", "b"])
    assert resumed == straight
    assert straight["a"].failures >= 1 and straight["b"].failures >= 1


def test_retraining_resumes_without_publishing_twice(tmp_path: Path) -> None:
    """The threat model retrained on the arbiter's own history (every 5 beats here) and
    published in the home's variant store: a stop and restart give the same models, and a
    retraining replayed after the restart reuses the version the first run published."""
    from swarmvar.arbiter import Retraining, ThreatVersions
    from swarmvar.evolution import Database, SqliteVariantStore

    days = 40
    sp = child.load("sp500")
    autumn = int(sp.index.searchsorted("2008-09-01"))  # breaches to learn from
    r = sp.iloc[autumn - child.WINDOW: autumn + days]

    def session(home: Path, beats: int) -> tuple[dict[int, dict[str, Any]], list[str]]:
        home.mkdir(exist_ok=True)
        db = Database(home / "threat.sqlite")
        versions = ThreatVersions(SqliteVariantStore(db), clock=lambda: 0.0)
        options = {"versions": versions, "retraining": Retraining(
            every=5, min_beats=10, horizon=2, window=100)}
        swarm, arbiter, cadence = child.paced_swarm(home, child.FakeTime(), options,
                                                    checkpoint_every=7)
        try:
            with swarm, arbiter:
                swarm.start({"sp500": r.iloc[: child.WINDOW]})
                swarm.run(Replay(r, portfolio="sp500", start=child.WINDOW), pace=cadence,
                          beats=beats - swarm.seq["sp500"])
                models = [e.data["result"]["version"] for e in swarm.ledger.entries()
                          if e.kind == "flow" and e.data["flow"] == "E"]
            return _record(home), versions.versions() + models[-1:]
        finally:
            db.close()

    straight, straight_versions = session(tmp_path / "straight", days)
    session(tmp_path / "stopped", 19)  # 19: retrained at 15, checkpointed at 14
    resumed, resumed_versions = session(tmp_path / "stopped", days)
    assert len(straight_versions) > 2  # retrained and published more than once
    assert resumed == straight
    assert len(resumed_versions) == len(straight_versions)


def test_an_operator_action_is_in_the_ledger_when_the_call_returns(tmp_path: Path) -> None:
    """Between beats an operator's quarantine is committed at once (a kill -9 before the
    next beat would otherwise lose it: it waited in the beat's pending batch)."""
    r = child.load("sp500").iloc[: child.WINDOW + 4]
    home = tmp_path / "home"
    swarm, arbiter, cadence = child.paced_swarm(home, child.FakeTime())
    with swarm, arbiter:
        swarm.start({"sp500": r.iloc[: child.WINDOW]})
        swarm.run(Replay(r, portfolio="sp500", start=child.WINDOW), pace=cadence, beats=2)
        arbiter.quarantine_now("sp500", "NormalInverseGamma")
        with Ledger.open(home) as reader:  # what a restart after kill -9 would read
            actions = [e.data for e in reader.entries() if e.kind == "action"
                       and e.data.get("type") == "quarantine"]
        assert [a["details"]["by"] for a in actions] == ["operator"]
