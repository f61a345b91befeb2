"""Exactly once after kill -9: every tick once in the ledger, the chain verifies, and the
forecasts after a restart equal an uninterrupted run's."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from _kill_at import kill_at  # tests/_kill_at.py (on the path: tests/conftest.py)
from swarmvar.ledger import Ledger
from swarmvar.swarm import Replay

from . import _kill_child as child
from .conftest import make_swarm

CHILD = Path(child.__file__)
#: Ticks a second for the long batteries: a random kill lands 0.2-3 s after the spawn and a
#: hook within a checkpoint or ledger batch, so at 10 beats a second the 160 beats outlast
#: the 24 steps (unpaced, an idle machine finished the run by the third step).
RATE = 10.0


def _beats(home: Path) -> dict[int, list]:
    with Ledger.open(home) as ledger:
        assert ledger.verify_chain().ok
        out: dict[int, list] = {}
        for e in ledger.entries():
            if e.kind == "consensus" and "beat" in e.data:
                seq = e.data["beat"]["seq"]
                assert seq not in out, f"beat {seq} recorded twice"
                out[seq] = [(c["var"], c["es"], c["var_interval"], c["es_interval"])
                            for c in e.data["levels"]]
        return out


def _reference(tmp_path: Path, sp500, days: int, lag: int = 0) -> dict[int, list]:
    home = tmp_path / f"reference-{lag}"
    r = sp500.iloc[: child.WINDOW + days]
    with make_swarm(home, **child.settings(lag)) as swarm:  # unspread: spread runs equal it
        swarm.start({"sp500": r.iloc[: child.WINDOW]})
        swarm.run(Replay(r, portfolio="sp500", start=child.WINDOW))
    return _beats(home)


def _spawn(home: Path, days: int, hook: str, marker: Path, lag: int = 0, spread: int = 1,
           workers: int = 0, rate: float = 0.0) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(marker.with_suffix(".err"), "wb") as err:
        return subprocess.Popen([sys.executable, str(CHILD), str(home), str(days), hook,
                                 str(marker), str(lag), str(spread), str(workers), str(rate)],
                                env=env,
                                stdout=subprocess.DEVNULL, stderr=err)


def _battery(tmp_path: Path, sp500, days: int, plan: list[str], seed: int, lag: int = 0,
             spread: int = 1, workers: int = 0, rate: float = 0.0) -> None:
    """Kill a run at each step of ``plan``; ``rate`` (ticks a second, 0: unpaced) keeps a long
    plan's run alive across its kills on a fast, idle machine (a run that has finished leaves
    the later steps nothing to kill)."""
    expected = _reference(tmp_path, sp500, days, lag)
    assert sorted(expected) == list(range(1, days + 1))
    home = tmp_path / "killed"
    rng = random.Random(seed)
    kills = 0
    for step, kind in enumerate(plan):
        marker = tmp_path / f"marker-{step}"
        proc = _spawn(home, days, kind if kind != "random" else "none", marker, lag, spread,
                      workers, rate)
        kills += kill_at(proc, kind, marker, rng, (0.2, 3.0))
        got = _beats(home)  # after every kill: a gap-free prefix, each beat once, as expected
        assert sorted(got) == list(range(1, len(got) + 1))
        assert all(got[s] == expected[s] for s in got)
    final = _spawn(home, days, "none", tmp_path / "marker-final", lag, spread, workers)
    final.wait(timeout=300)
    assert final.returncode == 0, (tmp_path / "marker-final.err").read_text()[-2000:]
    got = _beats(home)
    assert got == expected
    assert kills >= len(plan) // 2  # most kills landed while the run was alive
    assert _starts(home) == 1  # a start killed before its checkpoint is not recorded twice


def _starts(home: Path) -> int:
    with Ledger.open(home) as ledger:
        return sum(1 for e in ledger.entries()
                   if e.kind.value == "action" and e.data.get("type") == "swarm-start")


def test_kill_minus_nine_small_battery(tmp_path, sp500):
    """Four kills: at random, inside a checkpoint write, inside a ledger transaction."""
    _battery(tmp_path, sp500, 45, ["checkpoint", "ledger", "random", "checkpoint"], seed=1)


def test_kill_minus_nine_while_the_start_fits_lost_hosts_again(tmp_path, sp500):
    """Killed twice inside the start's fit of hosts lost before the seq-0 checkpoint
    (Swarm._fit_again), then at a checkpoint and at random: each restart is a fresh start
    (no checkpoint yet) and takes up the one ``swarm-start`` entry instead of writing
    another; every tick once, the uninterrupted run's numbers."""
    _battery(tmp_path, sp500, 30, ["fit-again", "fit-again", "checkpoint", "random"],
             seed=12, workers=2)
    # both kills landed inside _fit_again (the hook paused there), not elsewhere
    assert (tmp_path / "marker-0").exists() and (tmp_path / "marker-1").exists()


def test_kill_minus_nine_spread_portfolio(tmp_path, sp500):
    """The portfolio's agents in two groups (the runtime combines): three kills, exactly once,
    and the same numbers as the unspread uninterrupted run."""
    _battery(tmp_path, sp500, 40, ["checkpoint", "ledger", "random"], seed=7, spread=2)
    with Ledger.open(tmp_path / "killed") as ledger:  # each beat names its groups, all up
        groups = [e.data["beat"].get("groups") for e in ledger.entries()
                  if e.kind == "consensus" and "beat" in e.data]
    assert groups and all(g == ["sp500#g0", "sp500#g1"] for g in groups)


@pytest.mark.slow
def test_kill_minus_nine_spread_battery_of_12(tmp_path, sp500):
    plan = ["random"] * 6 + ["checkpoint"] * 3 + ["ledger"] * 3
    random.Random(8).shuffle(plan)
    _battery(tmp_path, sp500, 120, plan, seed=9, spread=2, rate=RATE)


@pytest.mark.slow
def test_kill_minus_nine_spread_over_worker_processes(tmp_path, sp500):
    """The groups on two worker processes: the run (and with it its workers) killed 8 times."""
    plan = ["random"] * 4 + ["checkpoint"] * 2 + ["ledger"] * 2
    random.Random(10).shuffle(plan)
    _battery(tmp_path, sp500, 80, plan, seed=11, spread=2, workers=2, rate=RATE)


@pytest.mark.slow
def test_kill_minus_nine_battery_of_24(tmp_path, sp500):
    plan = ["random"] * 12 + ["checkpoint"] * 6 + ["ledger"] * 6
    random.Random(5).shuffle(plan)
    _battery(tmp_path, sp500, 160, plan, seed=2, rate=RATE)


@pytest.mark.slow
def test_kill_minus_nine_with_refits_in_flight(tmp_path, sp500):
    """Refits landing 3 beats after their cut: jobs pending at a kill are in the checkpoint."""
    plan = ["random"] * 4 + ["checkpoint"] * 4 + ["ledger"] * 4
    random.Random(6).shuffle(plan)
    _battery(tmp_path, sp500, 120, plan, seed=3, lag=3, rate=RATE)


@pytest.mark.parametrize("lag", [0, 3])
def test_close_and_reopen_equals_an_uninterrupted_run(tmp_path, sp500, lag):
    days = 40
    expected = _reference(tmp_path, sp500, days, lag)
    home = tmp_path / "stop-go"
    r = sp500.iloc[: child.WINDOW + days]
    for stop in (11, 23, days) if lag == 0 else (12, days):  # mid-batch, between checkpoints
        with make_swarm(home, **child.settings(lag)) as swarm:
            swarm.start({"sp500": r.iloc[: child.WINDOW]})
            swarm.run(Replay(r, portfolio="sp500", start=child.WINDOW), beats=stop
                      - swarm.seq["sp500"])
    assert _beats(home) == expected


def test_corrupted_states_and_other_settings_are_refused(tmp_path, sp500):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from swarmvar.errors import InvalidState, ResumeMismatch
    from swarmvar.swarm import PortfolioSwarm

    home = tmp_path / "home"
    r = sp500.iloc[: child.WINDOW + 5]
    with make_swarm(home, **child.SETTINGS) as swarm:
        swarm.start({"sp500": r.iloc[: child.WINDOW]})
        swarm.run(Replay(r, portfolio="sp500", start=child.WINDOW))
        config = swarm.configs["sp500"]
        blob = swarm.executor.states(["sp500"])["sp500"]

    @settings(max_examples=25, deadline=None)
    @given(st.integers(0, len(blob) - 1), st.integers(1, 255))
    def flipped(i: int, x: int) -> None:
        bad = bytearray(blob)
        bad[i] ^= x
        with pytest.raises(InvalidState):
            PortfolioSwarm.restore(config, bytes(bad))

    flipped()
    with pytest.raises(InvalidState):
        PortfolioSwarm.restore(config, blob[: len(blob) // 2])
    with pytest.raises(ResumeMismatch, match="window"):
        with make_swarm(home, **{**child.SETTINGS, "window": 120}) as other:
            other.start({"sp500": r.iloc[:120]})
